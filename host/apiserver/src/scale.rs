//! `…/deployments/NAME/scale` and `…/replicasets/NAME/scale`: an
//! `autoscaling/v1` Scale view of the object's replicas, read and written as
//! upstream's scale subresource does (what `kubectl scale` patches). A
//! write changes only `spec.replicas`; a Scale naming a resourceVersion is
//! a precondition on the object.

use axum::http::Method;
use serde_json::{Value, json};

use crate::patch::{self, ObjectType, PatchKind};
use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{Store, Subresource};
use crate::writes::WriteContext;

/// Conflicting writes retried for a request that names no resourceVersion.
const ATTEMPTS: usize = 5;

/// Whether `res` has a scale subresource.
pub fn has_scale(res: &ResourceInfo) -> bool {
    res.builtin
        && res.group == "apps"
        && matches!(res.plural.as_str(), "deployments" | "replicasets")
}

/// Serves a scale request on the object `name`.
#[allow(clippy::too_many_arguments)]
pub fn request(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    method: &Method,
    content_type: &str,
    body: &[u8],
    ctx: &mut WriteContext,
) -> Result<Value, ApiError> {
    let kind = match *method {
        Method::GET => return Ok(scale_of(&store.get(res, namespace, name)?)),
        Method::PUT => None,
        Method::PATCH => match PatchKind::from_content_type(content_type) {
            // A Scale has no lists: a strategic merge is a merge.
            Ok(PatchKind::Merge | PatchKind::Strategic) => Some(PatchKind::Merge),
            Ok(PatchKind::Json) => Some(PatchKind::Json),
            Ok(PatchKind::Apply) | Err(_) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the scale subresource accepts merge, strategic merge and JSON patches, not {content_type}"
                )));
            }
        },
        _ => {
            return Err(ApiError::MethodNotAllowed(format!(
                "{method} is not supported on {}/scale; use GET, PUT or PATCH",
                res.plural
            )));
        }
    };
    let mut attempt = 1;
    loop {
        let current = store.get(res, namespace, name)?;
        let old = scale_of(&current);
        let new = match kind {
            None => crate::body::decode("application/json", body)?,
            Some(kind) => patch::apply(kind, &old, body, ObjectType::CustomResource)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        };
        let replicas = replicas(&new, name)?;
        let precondition = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty());
        let pinned = precondition.is_some_and(|rv| {
            kind.is_none()
                || Some(rv)
                    != old
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
        });
        let mut obj = current.clone();
        obj["spec"]["replicas"] = json!(replicas);
        if let Some(rv) = precondition {
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
        match crate::writes::update(
            store,
            res,
            namespace,
            name,
            obj,
            Subresource::Main,
            None,
            ctx,
        ) {
            Err(ApiError::Conflict { .. }) if !pinned && attempt < ATTEMPTS => attempt += 1,
            r => return r.map(|o| scale_of(&o)),
        }
    }
}

fn replicas(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let invalid = |message: String| ApiError::Invalid {
        target: Target::new("autoscaling", "Scale", name),
        message,
    };
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n),
            Some(n) => Err(invalid(format!(
                "spec.replicas: Invalid value: {n}: must be greater than or equal to 0"
            ))),
            None => Err(invalid(format!(
                "spec.replicas: Invalid value: {v}: must be an integer"
            ))),
        },
    }
}

/// The Scale of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut metadata = json!({});
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(key) {
            metadata[key] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector(&obj["spec"]["selector"]),
        },
    })
}

/// A label selector as a string: `app=web,tier in (a,b)`.
fn selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_reads_as_a_scale() {
        let d = json!({
            "metadata": { "name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "9",
                          "labels": { "x": "y" } },
            "spec": { "replicas": 3, "selector": {
                "matchLabels": { "app": "web" },
                "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["a", "b"] }],
            } },
            "status": { "replicas": 2 },
        });
        assert_eq!(
            scale_of(&d),
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": { "name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "9" },
                "spec": { "replicas": 3 },
                "status": { "replicas": 2, "selector": "app=web,tier in (a,b)" },
            })
        );
    }

    #[test]
    fn negative_replicas_are_refused() {
        let e = replicas(&json!({ "spec": { "replicas": -1 } }), "web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
