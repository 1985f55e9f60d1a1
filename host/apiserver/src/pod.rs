//! Pod rules the API server enforces: graceful deletion of bound pods, binding to a node, and
//! the narrow set of spec fields an update may change.

use serde_json::{Value, json};

use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{Store, meta_mut, now};

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 30;

/// True for the core/v1 pods resource.
pub fn is_pods(res: &ResourceInfo) -> bool {
    res.builtin && res.group.is_empty() && res.plural == "pods"
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Seconds a deletion waits for the kubelet (0: delete at once). An unscheduled or finished
/// pod goes at once; a running one waits for its grace period (pod `CheckGracefulDelete`).
pub fn deletion_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name(pod).is_empty() || matches!(phase, "Succeeded" | "Failed") {
        return 0;
    }
    let spec_grace = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let grace = requested
        .or(spec_grace)
        .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS);
    // A negative request cannot mean "sooner than now"; upstream turns it into 1s.
    if grace < 0 { 1 } else { grace }
}

/// Spec fields an update may change: images, activeDeadlineSeconds, tolerations (additions),
/// terminationGracePeriodSeconds. Anything else is refused as upstream validation does.
pub fn check_spec_update(old: &Value, new: &Value) -> Result<(), String> {
    let mask = |pod: &Value| -> Value {
        let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.as_object_mut() {
            for field in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
            ] {
                m.remove(field);
            }
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        spec
    };
    if mask(old) != mask(new) {
        return Err("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into());
    }
    let tolerations = |pod: &Value| -> Vec<Value> {
        pod.pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let after = tolerations(new);
    if tolerations(old).iter().any(|t| !after.contains(t)) {
        return Err("spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".into());
    }
    Ok(())
}

/// `POST …/pods/NAME/binding`: assigns an unbound pod to a node, marks it scheduled, and
/// answers with a success `Status` (201). A dry run checks the same and changes nothing.
pub fn bind(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    binding: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let target = || Target::new("", "pods", name);
    if let Some(n) = binding.pointer("/metadata/name").and_then(Value::as_str)
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::BadRequest(format!(
            "the name of the binding ({n}) does not match the pod name on the URL ({name})"
        )));
    }
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::Invalid {
            target: target(),
            message: "target.name: Required value".into(),
        });
    }
    match binding.pointer("/target/kind").and_then(Value::as_str) {
        None | Some("" | "Node") => {}
        Some(kind) => {
            return Err(ApiError::Invalid {
                target: target(),
                message: format!(
                    "target.kind: Unsupported value: {kind:?}: supported values: \"Node\""
                ),
            });
        }
    }
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    store.guaranteed_update(res, namespace, name, |pod| {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                target: target(),
                message: format!("pod {name} is being deleted, cannot be assigned to a host"),
            });
        }
        let current = node_name(pod);
        if !current.is_empty() {
            return Err(ApiError::Conflict {
                target: target(),
                message: format!("pod {name} is already assigned to node {current:?}"),
            });
        }
        if dry_run {
            // Unchanged, so nothing is written.
            return Ok(pod.clone());
        }
        let mut pod = pod.clone();
        pod["spec"]["nodeName"] = json!(node);
        if let Some(extra) = &annotations {
            let m = meta_mut(&mut pod);
            let a = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = a.as_object_mut() {
                a.extend(extra.clone());
            }
        }
        set_condition(&mut pod, "PodScheduled", "True");
        Ok(pod)
    })?;
    Ok(
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    )
}

/// Sets a condition with a reason and message, moving `lastTransitionTime` only when the status
/// changes.
pub(crate) fn set_condition_with(
    pod: &mut Value,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    set_condition(pod, kind, status);
    if let Some(c) = pod["status"]["conditions"]
        .as_array_mut()
        .and_then(|cs| cs.iter_mut().find(|c| c["type"] == kind))
    {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
}

fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status_obj = &mut pod["status"];
    if !status_obj.get("conditions").is_some_and(Value::is_array) {
        status_obj["conditions"] = json!([]);
    }
    let conditions = status_obj["conditions"].as_array_mut().expect("just set");
    let now = now();
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(c) if c["status"] == status => {}
        Some(c) => {
            c["status"] = json!(status);
            c["lastTransitionTime"] = json!(now);
        }
        None => conditions.push(json!({ "type": kind, "status": status, "lastTransitionTime": now, "lastProbeTime": null })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_period_applies_only_to_running_bound_pods() {
        let unbound = json!({ "spec": {}, "status": { "phase": "Pending" } });
        assert_eq!(deletion_grace_period(&unbound, None), 0);
        let bound = json!({ "spec": { "nodeName": "n1" }, "status": { "phase": "Running" } });
        assert_eq!(deletion_grace_period(&bound, None), 30);
        assert_eq!(deletion_grace_period(&bound, Some(0)), 0);
        assert_eq!(deletion_grace_period(&bound, Some(-5)), 1);
        let custom = json!({ "spec": { "nodeName": "n1", "terminationGracePeriodSeconds": 5 } });
        assert_eq!(deletion_grace_period(&custom, None), 5);
        let done = json!({ "spec": { "nodeName": "n1" }, "status": { "phase": "Succeeded" } });
        assert_eq!(deletion_grace_period(&done, None), 0);
    }

    #[test]
    fn updates_may_change_images_but_not_node_name() {
        let old = json!({ "spec": { "containers": [{ "name": "a", "image": "x:1" }] } });
        let image = json!({ "spec": { "containers": [{ "name": "a", "image": "x:2" }] } });
        assert!(check_spec_update(&old, &image).is_ok());
        let node = json!({ "spec": { "nodeName": "n1", "containers": [{ "name": "a", "image": "x:1" }] } });
        assert!(
            check_spec_update(&old, &node)
                .unwrap_err()
                .starts_with("spec: Forbidden")
        );
        let tol = json!({ "spec": { "containers": [{ "name": "a", "image": "x:1" }], "tolerations": [{ "key": "k", "operator": "Exists" }] } });
        assert!(
            check_spec_update(&old, &tol).is_ok(),
            "tolerations may be added"
        );
        assert!(check_spec_update(&tol, &old).is_err(), "but not removed");
    }
}
