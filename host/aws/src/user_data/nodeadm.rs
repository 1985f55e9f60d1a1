//! AL2023: nodeadm's `NodeConfig`, last part of a MIME multipart document
//! after the user's own parts.

use serde::Serialize;
use serde_json::{Map, Value};

use super::mime::{self, Part};
use super::{Bootstrap, UserDataError};

/// The NodeConfig Dovetail writes for one launch template.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeConfig {
    api_version: &'static str,
    kind: &'static str,
    metadata: Map<String, Value>,
    spec: NodeConfigSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeConfigSpec {
    cluster: Cluster,
    containerd: Map<String, Value>,
    instance: Instance,
    kubelet: Kubelet,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    name: String,
    api_server_endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority: Option<String>,
    cidr: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Instance {
    local_storage: LocalStorage,
}

#[derive(Serialize)]
struct LocalStorage {
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<&'static str>,
}

#[derive(Serialize)]
struct Kubelet {
    config: Map<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<String>,
}

/// The first line of Dovetail's NodeConfig part.
pub const HEADER: &str = "# Dovetail Generated NodeConfig";

/// The user data: the user's parts, then the NodeConfig.
pub(super) fn user_data(b: &Bootstrap) -> Result<String, UserDataError> {
    let cidr = b.cluster_cidr.clone().ok_or(UserDataError::NoClusterCidr)?;
    let mut config = kubelet_config(b)?;
    let taints: Vec<Value> = b
        .register_taints()
        .map(|t| {
            let mut m = Map::new();
            m.insert("key".into(), Value::String(t.key.clone()));
            if let Some(v) = &t.value {
                m.insert("value".into(), Value::String(v.clone()));
            }
            m.insert("effect".into(), Value::String(t.effect.clone()));
            Value::Object(m)
        })
        .collect();
    config.insert("registerWithTaints".into(), Value::Array(taints));
    let labels = b.kubelet_labels();
    let flags = if labels.is_empty() {
        Vec::new()
    } else {
        let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Keys and values were checked to be label syntax, so neither `,`,
        // `=` nor `"` can occur inside one.
        vec![format!("--node-labels=\"{}\"", list.join(","))]
    };
    let node_config = NodeConfig {
        api_version: "node.eks.aws/v1alpha1",
        kind: "NodeConfig",
        metadata: Map::new(),
        spec: NodeConfigSpec {
            cluster: Cluster {
                name: b.cluster_name.clone(),
                api_server_endpoint: b.cluster_endpoint.clone(),
                certificate_authority: b.ca_bundle.clone(),
                cidr,
            },
            containerd: Map::new(),
            instance: Instance {
                local_storage: LocalStorage {
                    strategy: b.instance_store_raid0.then_some("RAID0"),
                },
            },
            kubelet: Kubelet { config, flags },
        },
    };
    let yaml =
        serde_norway::to_string(&node_config).map_err(|e| UserDataError::Encode(e.to_string()))?;
    let mut parts = user_parts(b.custom.as_deref())?;
    parts.push(Part::new(mime::NODE_CONFIG, &format!("{HEADER}\n{yaml}")));
    Ok(mime::serialize(&parts))
}

/// The class's kubelet settings as KubeletConfiguration fields.
fn kubelet_config(b: &Bootstrap) -> Result<Map<String, Value>, UserDataError> {
    match serde_json::to_value(&b.kubelet) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(UserDataError::Encode(format!(
            "kubelet settings are not an object: {other}"
        ))),
        Err(e) => Err(UserDataError::Encode(e.to_string())),
    }
}

/// The user's user data as parts: a MIME document's own parts, a YAML
/// mapping as a NodeConfig part (nodeadm merges NodeConfigs in order, so
/// Dovetail's, last, wins where both set a field), anything else as a
/// shell script.
fn user_parts(custom: Option<&str>) -> Result<Vec<Part>, UserDataError> {
    let Some(text) = custom.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    if mime::looks_like_mime(text) {
        return Ok(mime::parse(text)?);
    }
    let is_mapping = matches!(
        serde_norway::from_str::<serde_norway::Value>(text),
        Ok(serde_norway::Value::Mapping(_))
    );
    let content_type = if is_mapping {
        mime::NODE_CONFIG
    } else {
        mime::SHELL_SCRIPT
    };
    Ok(vec![Part::new(content_type, text)])
}
