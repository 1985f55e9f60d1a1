//! User data: how a node finds its cluster and registers with the labels,
//! taints and kubelet settings its NodeClaim and EC2NodeClass ask for.
//!
//! Label and taint keys and values must be Kubernetes label syntax:
//! kubelet's `--node-labels` has no escaping, so a value with `,`, `=` or a
//! quote would change what it means, and a node could not register with it
//! anyway. Everything else is written by a YAML or TOML serialiser, which
//! quotes and escapes it.

pub mod bottlerocket;
pub mod mime;
pub mod nodeadm;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use dovetail_api::ec2nodeclass::{AmiFamily, KubeletConfiguration};
use dovetail_api::rules;
use dovetail_core::catalog::{CapacityType, SizingRef};
use dovetail_core::model::{Taint, TaintEffect};
use dovetail_core::resources::{self, Resources};
use dovetail_core::sym::Sym;

/// EC2's limit on user data, before base64.
pub const MAX_BYTES: usize = 16 * 1024;

pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";
pub const CAPACITY_TYPE_LABEL: &str = "karpenter.sh/capacity-type";
pub const DO_NOT_SYNC_TAINTS_LABEL: &str = "karpenter.sh/do-not-sync-taints";
/// Labels in this domain (and its subdomains) are the node authorizer's to
/// set; a kubelet that sets them itself is refused.
const NODE_RESTRICTION_DOMAIN: &str = "node-restriction.kubernetes.io";

/// A taint as the kubelet registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTaint {
    pub key: String,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl From<&Taint> for NodeTaint {
    fn from(t: &Taint) -> Self {
        Self {
            key: t.key.as_str().to_string(),
            value: t.value.map(|v| v.as_str().to_string()),
            effect: effect_name(t.effect).to_string(),
        }
    }
}

fn effect_name(effect: TaintEffect) -> &'static str {
    match effect {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

/// Everything a node's user data carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub cluster_name: String,
    pub cluster_endpoint: String,
    /// The cluster's CA bundle, base64 (`CLUSTER_CA_BUNDLE`).
    pub ca_bundle: Option<String>,
    /// The service CIDR; AL2023's nodeadm requires it.
    pub cluster_cidr: Option<String>,
    /// Resolved for the instance type ([`resolved_kubelet`]).
    pub kubelet: KubeletConfiguration,
    /// The node's labels ([`node_labels`]).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    pub startup_taints: Vec<NodeTaint>,
    /// `instanceStorePolicy: RAID0`.
    pub instance_store_raid0: bool,
    /// The EC2NodeClass's `userData`.
    pub custom: Option<String>,
}

/// User data that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    #[error("label key {key:?}: {problem}")]
    LabelKey { key: String, problem: String },
    #[error("label {key}: value {value:?} is not a label value: {}", rules::LABEL_VALUE.hint())]
    LabelValue { key: String, value: String },
    #[error("taint key {key:?}: {problem}")]
    TaintKey { key: String, problem: String },
    #[error("taint {key}: value {value:?} is not a label value: {}", rules::LABEL_VALUE.hint())]
    TaintValue { key: String, value: String },
    #[error("taint {key}: effect {effect:?} is not NoSchedule, PreferNoSchedule or NoExecute")]
    TaintEffect { key: String, effect: String },
    #[error("{field} {value:?} is empty or holds control characters")]
    Setting { field: &'static str, value: String },
    #[error("the cluster CA bundle is not base64: set CLUSTER_CA_BUNDLE to the base64 of the PEM")]
    CaBundle,
    #[error(
        "AL2023 nodes need the cluster's service CIDR, which is not known: set SERVICE_CIDR (e.g. 10.100.0.0/16)"
    )]
    NoClusterCidr,
    #[error("{0}")]
    Mime(#[from] mime::MimeError),
    #[error("the EC2NodeClass's userData is not valid Bottlerocket TOML: {0}")]
    BottlerocketToml(String),
    #[error("AMI family {0} is not supported yet: use AL2023, Bottlerocket or Custom")]
    UnsupportedFamily(String),
    #[error(
        "user data is {0} bytes, more than EC2's {MAX_BYTES}: shorten the EC2NodeClass's userData"
    )]
    TooLarge(usize),
    #[error("encoding user data: {0}")]
    Encode(String),
}

impl Bootstrap {
    /// Taints the kubelet registers with: the NodeClaim's taints and
    /// startup taints, then `karpenter.sh/unregistered:NoExecute`, which
    /// Dovetail lifts once it has synced the node.
    fn register_taints(&self) -> impl Iterator<Item = NodeTaint> + '_ {
        let unregistered = NodeTaint {
            key: UNREGISTERED_TAINT.to_string(),
            value: None,
            effect: "NoExecute".to_string(),
        };
        let has = self
            .taints
            .iter()
            .chain(&self.startup_taints)
            .any(|t| t.key == unregistered.key && t.effect == unregistered.effect);
        self.taints
            .iter()
            .chain(&self.startup_taints)
            .cloned()
            .chain((!has).then_some(unregistered))
    }

    /// The labels the kubelet sets: all but the node authorizer's.
    fn kubelet_labels(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .filter(|(k, _)| !in_node_restriction_domain(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn validate(&self) -> Result<(), UserDataError> {
        for (field, value) in [
            ("cluster name", &self.cluster_name),
            ("cluster endpoint", &self.cluster_endpoint),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(UserDataError::Setting {
                    field,
                    value: value.clone(),
                });
            }
        }
        if let Some(ca) = &self.ca_bundle
            && BASE64.decode(ca.trim()).is_err()
        {
            return Err(UserDataError::CaBundle);
        }
        for (key, value) in &self.labels {
            if let Some(problem) = rules::qualified_name_problem(key) {
                return Err(UserDataError::LabelKey {
                    key: key.clone(),
                    problem,
                });
            }
            if value.len() > 63 || !rules::LABEL_VALUE.is_match(value) {
                return Err(UserDataError::LabelValue {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        for t in self.taints.iter().chain(&self.startup_taints) {
            if let Some(problem) = rules::qualified_name_problem(&t.key) {
                return Err(UserDataError::TaintKey {
                    key: t.key.clone(),
                    problem,
                });
            }
            if let Some(v) = &t.value
                && (v.len() > 63 || !rules::LABEL_VALUE.is_match(v))
            {
                return Err(UserDataError::TaintValue {
                    key: t.key.clone(),
                    value: v.clone(),
                });
            }
            if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
                return Err(UserDataError::TaintEffect {
                    key: t.key.clone(),
                    effect: t.effect.clone(),
                });
            }
        }
        Ok(())
    }
}

fn in_node_restriction_domain(key: &str) -> bool {
    let Some((prefix, _)) = key.rsplit_once('/') else {
        return false;
    };
    prefix == NODE_RESTRICTION_DOMAIN || prefix.ends_with(&format!(".{NODE_RESTRICTION_DOMAIN}"))
}

/// The user data for `family`, base64 as EC2 takes it. `Custom` is the
/// EC2NodeClass's `userData` as written.
pub fn user_data(family: &AmiFamily, b: &Bootstrap) -> Result<String, UserDataError> {
    let text = match family {
        AmiFamily::Custom => b.custom.clone().unwrap_or_default(),
        AmiFamily::AL2023 => {
            b.validate()?;
            nodeadm::user_data(b)?
        }
        AmiFamily::Bottlerocket => {
            b.validate()?;
            bottlerocket::user_data(b)?
        }
        other => return Err(UserDataError::UnsupportedFamily(other.as_str().to_string())),
    };
    if text.len() > MAX_BYTES {
        return Err(UserDataError::TooLarge(text.len()));
    }
    Ok(BASE64.encode(text))
}

/// The node's labels: the NodeClaim's, its capacity type, and
/// `karpenter.sh/do-not-sync-taints=true` (the kubelet registers the
/// taints itself) unless the family is `Custom`.
pub fn node_labels(
    claim_labels: &[(Sym, Sym)],
    capacity_type: CapacityType,
    family: &AmiFamily,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = claim_labels
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
        .collect();
    labels.insert(
        CAPACITY_TYPE_LABEL.to_string(),
        capacity_type.label().to_string(),
    );
    if *family != AmiFamily::Custom {
        labels.insert(DO_NOT_SYNC_TAINTS_LABEL.to_string(), "true".to_string());
    }
    labels
}

/// The EC2NodeClass's kubelet settings completed for an instance type as
/// the class sizes it (`size`, from the catalog): `maxPods` is its pod
/// capacity, kube-reserved and system-reserved its overhead (so the node
/// reports the allocatable the scheduler planned with), and `clusterDNS`
/// the cluster's DNS service address when the class names none.
pub fn resolved_kubelet(
    class: Option<&KubeletConfiguration>,
    size: SizingRef<'_>,
    cluster_dns: Option<&str>,
) -> KubeletConfiguration {
    let mut k = class.cloned().unwrap_or_default();
    k.max_pods = Some(i32::try_from(size.capacity.pods).unwrap_or(i32::MAX));
    k.kube_reserved = quantities(&size.overhead.kube_reserved);
    k.system_reserved = quantities(&size.overhead.system_reserved);
    if k.cluster_dns.is_empty()
        && let Some(ip) = cluster_dns
    {
        k.cluster_dns = vec![ip.to_string()];
    }
    k
}

/// cpu, memory and ephemeral-storage as Kubernetes quantities, leaving out
/// zeros.
fn quantities(r: &Resources) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if r.cpu != 0 {
        out.insert(resources::CPU.to_string(), resources::format_cpu(r.cpu));
    }
    if r.memory != 0 {
        out.insert(
            resources::MEMORY.to_string(),
            resources::format_bytes(r.memory),
        );
    }
    if r.ephemeral != 0 {
        out.insert(
            resources::EPHEMERAL_STORAGE.to_string(),
            resources::format_bytes(r.ephemeral),
        );
    }
    out
}
