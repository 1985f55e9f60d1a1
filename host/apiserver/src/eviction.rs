//! `POST …/pods/NAME/eviction`: deletes a pod unless its PodDisruptionBudget forbids it, as
//! upstream's pod eviction subresource does (pkg/registry/core/pod/storage/eviction.go).
//!
//! The API server only reads and decrements a budget's `status.disruptionsAllowed` and records
//! the pod in `status.disruptedPods`; computing the status is a disruption controller's job.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::resource::ResourceInfo;
use crate::selector::{LabelOperator, LabelRequirement, LabelSelector};
use crate::status::{ApiError, Target};
use crate::store::{DeleteOptions, Store, Subresource, WriteOptions, meta_str, now};

/// Attempts on conflicting writes, as upstream's `EvictionsRetry` backoff.
const ATTEMPTS: usize = 20;

/// More recorded disruptions than this means the disruption controller is not keeping up.
const MAX_DISRUPTED_PODS: usize = 2000;

/// Message of the 500 for a pod covered by several budgets (upstream's exact text).
pub const MULTIPLE_BUDGETS: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Message of the 429 for a budget that allows no disruption (upstream's exact text).
pub const WOULD_VIOLATE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// The `Status` an eviction answers with: success (201), or the 429 and 500 that upstream sends
/// as a Status body rather than as a plain error.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub code: StatusCode,
    pub status: Value,
}

fn success() -> Answer {
    Answer {
        code: StatusCode::CREATED,
        status: json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    }
}

/// The budget blocks the eviction: 429 with a `DisruptionBudget` cause.
fn too_many_requests(cause: String, retry_after_seconds: u32) -> Answer {
    let mut details = json!({ "causes": [{ "reason": "DisruptionBudget", "message": cause }] });
    if retry_after_seconds > 0 {
        details["retryAfterSeconds"] = json!(retry_after_seconds);
    }
    Answer {
        code: StatusCode::TOO_MANY_REQUESTS,
        status: json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": WOULD_VIOLATE, "reason": "TooManyRequests", "details": details, "code": 429,
        }),
    }
}

/// A budget still being processed by its controller (stale `observedGeneration`).
fn still_processing(pdb: &str) -> Answer {
    too_many_requests(
        format!("The disruption budget {pdb} is still being processed by the server."),
        10,
    )
}

/// Upstream answers this case with a bare Status: code 500, no reason.
fn several_budgets() -> Answer {
    Answer {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        status: json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": MULTIPLE_BUDGETS, "code": 500,
        }),
    }
}

/// The parts of an Eviction the server acts on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Request {
    delete: DeleteOptions,
}

/// Reads an Eviction body. `apiVersion`/`kind` may be missing (kube-rs sends neither) and
/// unknown fields are ignored, as upstream's decoder does.
fn parse(name: &str, body: &Value) -> Result<Request, ApiError> {
    match body.get("kind").and_then(Value::as_str) {
        None | Some("" | "Eviction") => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "the body of an eviction must be an Eviction, not a {other}"
            )));
        }
    }
    match body.get("apiVersion").and_then(Value::as_str) {
        None | Some("" | "policy/v1" | "policy/v1beta1") => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "apiVersion {other:?} is not a version of Eviction: use policy/v1"
            )));
        }
    }
    if body.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::BadRequest(
            "name in URL does not match name in Eviction object".into(),
        ));
    }
    let mut delete = DeleteOptions::default();
    if let Some(o) = body.get("deleteOptions").filter(|o| !o.is_null()) {
        let text = |p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_string);
        delete.uid = text("/preconditions/uid");
        delete.resource_version = text("/preconditions/resourceVersion");
        delete.grace_period_seconds = match o.get("gracePeriodSeconds") {
            None | Some(Value::Null) => None,
            Some(g) => Some(g.as_i64().ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "deleteOptions.gracePeriodSeconds must be an integer, got {g}"
                ))
            })?),
        };
        delete.dry_run = crate::dry_run::from_body(&Method::POST, o.get("dryRun"))?;
    }
    Ok(Request { delete })
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminating(pod: &Value) -> bool {
    meta_str(pod, "deletionTimestamp").is_some()
}

/// Terminal, pending or terminating pods are deleted without consulting a budget.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || terminating(pod)
}

/// Whether deleting without a budget check must still pin the pod's resourceVersion, so a pod
/// that just became ready is not deleted behind its budget's back.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || terminating(pod))
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A `metav1.LabelSelector` object as a selector; `None` when it is malformed (upstream skips
/// such a budget).
fn label_selector(selector: &Value) -> Option<LabelSelector> {
    let mut requirements = Vec::new();
    if let Some(labels) = selector.get("matchLabels").filter(|v| !v.is_null()) {
        for (k, v) in labels.as_object()? {
            requirements.push(LabelRequirement {
                key: k.clone(),
                operator: LabelOperator::Equals,
                values: vec![v.as_str()?.to_string()],
            });
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").filter(|v| !v.is_null()) {
        for e in exprs.as_array()? {
            let values: Vec<String> = match e.get("values").filter(|v| !v.is_null()) {
                Some(v) => v
                    .as_array()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
                None => Vec::new(),
            };
            let operator = match e.get("operator").and_then(Value::as_str)? {
                "In" if !values.is_empty() => LabelOperator::In,
                "NotIn" if !values.is_empty() => LabelOperator::NotIn,
                "Exists" if values.is_empty() => LabelOperator::Exists,
                "DoesNotExist" if values.is_empty() => LabelOperator::DoesNotExist,
                _ => return None,
            };
            requirements.push(LabelRequirement {
                key: e.get("key").and_then(Value::as_str)?.to_string(),
                operator,
                values,
            });
        }
    }
    Some(LabelSelector { requirements })
}

/// The budgets whose selector matches the pod's labels. A nil or empty selector matches
/// nothing here, and a pod without labels has no budget.
fn budgets_of(store: &Store, pdbs: &ResourceInfo, namespace: &str, pod: &Value) -> Vec<Value> {
    if pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .is_none_or(|l| l.is_empty())
    {
        return Vec::new();
    }
    let Ok((_, objects)) = store.snapshot(pdbs, namespace, None, None) else {
        return Vec::new();
    };
    objects
        .into_iter()
        .filter(|(_, pdb)| {
            pdb.pointer("/spec/selector")
                .and_then(label_selector)
                .is_some_and(|s| !s.is_empty() && s.matches(pod))
        })
        .map(|(_, pdb)| Value::clone(&pdb))
        .collect()
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// What checking a budget decided.
enum Check {
    /// Decremented (and recorded unless a dry run).
    Allowed,
    /// Refused with this answer.
    Refused(Answer),
}

/// Refuses when the budget allows no disruption; otherwise decrements it and records the pod
/// in one status write, as upstream's `checkAndDecrement`.
fn check_and_decrement(
    store: &Store,
    pdbs: &ResourceInfo,
    namespace: &str,
    pod_name: &str,
    mut pdb: Value,
    dry_run: bool,
) -> Result<Check, ApiError> {
    let name = meta_str(&pdb, "name").unwrap_or("").to_string();
    let forbidden = |message: &str| ApiError::Forbidden {
        target: Target::new("policy", "poddisruptionbudget", &name),
        message: message.into(),
    };
    if int(&pdb, "/status/observedGeneration") < int(&pdb, "/metadata/generation") {
        return Ok(Check::Refused(still_processing(&name)));
    }
    let allowed = int(&pdb, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(forbidden("pdb disruptions allowed is negative"));
    }
    if pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .is_some_and(|m| m.len() > MAX_DISRUPTED_PODS)
    {
        return Err(forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Ok(Check::Refused(too_many_requests(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int(&pdb, "/status/desiredHealthy"),
                int(&pdb, "/status/currentHealthy"),
            ),
            0,
        )));
    }
    let status = &mut pdb["status"];
    status["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        set_insufficient_pods(status);
    }
    if dry_run {
        return Ok(Check::Allowed);
    }
    if !status.get("disruptedPods").is_some_and(Value::is_object) {
        status["disruptedPods"] = json!({});
    }
    status["disruptedPods"][pod_name] = json!(now());
    store.update(pdbs, namespace, &name, pdb, Subresource::Status)?;
    Ok(Check::Allowed)
}

/// The `DisruptionAllowed` condition turns False once the budget is used up.
fn set_insufficient_pods(status: &mut Value) {
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("just set");
    let now = now();
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != "False" {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("False");
            c["reason"] = json!("InsufficientPods");
            c["message"] = json!("");
            c["observedGeneration"] = observed;
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
            "message": "", "observedGeneration": observed, "lastTransitionTime": now,
        })),
    }
}

/// Marks the pod as a disruption target, then deletes it through the normal (graceful) path.
fn add_condition_and_delete(
    store: &Store,
    pods: &ResourceInfo,
    namespace: &str,
    name: &str,
    mut options: DeleteOptions,
) -> Result<(), ApiError> {
    if !options.dry_run {
        let conflict = |message: String| ApiError::Conflict {
            target: Target::new("", "Pod", name),
            message,
        };
        let updated = store.guaranteed_update(pods, namespace, name, |pod| {
            if let Some(uid) = options.uid.as_deref().filter(|u| !u.is_empty())
                && Some(uid) != meta_str(pod, "uid")
            {
                return Err(conflict(format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    meta_str(pod, "uid").unwrap_or("")
                )));
            }
            if let Some(rv) = options.resource_version.as_deref().filter(|r| !r.is_empty())
                && Some(rv) != meta_str(pod, "resourceVersion")
            {
                return Err(conflict(format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    meta_str(pod, "resourceVersion").unwrap_or("")
                )));
            }
            let mut pod = pod.clone();
            crate::pod::set_condition_with(
                &mut pod,
                "DisruptionTarget",
                "True",
                "EvictionByEvictionAPI",
                "Eviction API: evicting",
            );
            Ok(pod)
        })?;
        if options.resource_version.is_some() {
            // This write moved the pod on; the precondition follows it.
            options.resource_version = meta_str(&updated, "resourceVersion").map(str::to_string);
        }
    }
    store.delete(pods, namespace, name, &options)?;
    Ok(())
}

fn resource_version_unset(o: &DeleteOptions) -> bool {
    o.resource_version.as_deref().is_none_or(str::is_empty)
}

/// Evicts `namespace/name` as the Eviction `body` asks; `write.dry_run` (the query's `dryRun`)
/// applies when the body's deleteOptions name none.
pub fn evict(
    store: &Store,
    namespace: &str,
    name: &str,
    body: &Value,
    write: WriteOptions,
) -> Result<Answer, ApiError> {
    let mut request = parse(name, body)?;
    request.delete.dry_run |= write.dry_run;
    let original = request.delete;
    let pods = store
        .resource("", "v1", "pods")
        .ok_or_else(|| ApiError::Internal("pods are always served".into()))?;
    let pdbs = store
        .resource("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::Internal("poddisruptionbudgets are always served".into()))?;
    let retry_conflicts = resource_version_unset(&original);

    // Pods a budget does not protect are deleted at once.
    let mut attempt = 1;
    let pod = loop {
        let pod = store.get(&pods, namespace, name)?;
        if !can_ignore_budget(&pod) {
            break pod;
        }
        let mut options = original.clone();
        if should_enforce_resource_version(&pod) && resource_version_unset(&original) {
            options.resource_version = meta_str(&pod, "resourceVersion").map(str::to_string);
        }
        match add_condition_and_delete(store, &pods, namespace, name, options) {
            Ok(()) => return Ok(success()),
            Err(ApiError::Conflict { .. }) if retry_conflicts && attempt < ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };

    let budgets = budgets_of(store, &pdbs, namespace, &pod);
    if budgets.len() > 1 {
        return Ok(several_budgets());
    }
    let mut pin_pod_version = false;
    let mut budget_name = String::new();
    if let Some(pdb) = budgets.into_iter().next() {
        budget_name = meta_str(&pdb, "name").unwrap_or("").to_string();
        let unhealthy_may_go = !is_ready(&pod)
            && (pdb.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"))
                || (int(&pdb, "/status/currentHealthy") >= int(&pdb, "/status/desiredHealthy")
                    && int(&pdb, "/status/desiredHealthy") > 0));
        if unhealthy_may_go {
            // An unready pod does not count towards the budget: delete it without
            // decrementing, pinned so it cannot become ready in between.
            pin_pod_version = true;
        } else {
            let mut pdb = pdb;
            let mut attempt = 1;
            loop {
                match check_and_decrement(
                    store,
                    &pdbs,
                    namespace,
                    name,
                    pdb.clone(),
                    original.dry_run,
                ) {
                    Ok(Check::Allowed) => break,
                    Ok(Check::Refused(answer)) => return Ok(answer),
                    Err(ApiError::Conflict { .. }) if attempt < ATTEMPTS => {
                        attempt += 1;
                        pdb = store.get(&pdbs, namespace, &budget_name)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    let mut options = original.clone();
    if pin_pod_version {
        options.resource_version = meta_str(&pod, "resourceVersion").map(str::to_string);
    }
    match add_condition_and_delete(store, &pods, namespace, name, options) {
        Ok(()) => Ok(success()),
        // The pod changed since it was judged unhealthy: the client should retry.
        Err(ApiError::Conflict { .. }) if pin_pod_version && resource_version_unset(&original) => {
            Ok(too_many_requests(
                format!(
                    "The disruption budget {budget_name} is still being processed by the server."
                ),
                10,
            ))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_pod(phase: &str, labels: Value) -> (Store, ResourceInfo, ResourceInfo) {
        let s = Store::default();
        let pods = s.resource("", "v1", "pods").unwrap();
        let pdbs = s.resource("policy", "v1", "poddisruptionbudgets").unwrap();
        s.create(
            &pods,
            "default",
            json!({ "metadata": { "name": "p", "labels": labels }, "spec": { "containers": [{ "name": "c", "image": "x" }] } }),
        )
        .unwrap();
        let mut pod = s.get(&pods, "default", "p").unwrap();
        pod["status"]["phase"] = json!(phase);
        pod["status"]["conditions"] = json!([{ "type": "Ready", "status": "True" }]);
        s.update(&pods, "default", "p", pod, Subresource::Status)
            .unwrap();
        (s, pods, pdbs)
    }

    fn pdb(s: &Store, pdbs: &ResourceInfo, name: &str, allowed: i64) {
        s.create(
            pdbs,
            "default",
            json!({ "metadata": { "name": name }, "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": "web" } } } }),
        )
        .unwrap();
        let mut p = s.get(pdbs, "default", name).unwrap();
        p["status"] = json!({ "observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1 });
        s.update(pdbs, "default", name, p, Subresource::Status)
            .unwrap();
    }

    fn body() -> Value {
        json!({ "metadata": { "name": "p" } })
    }

    #[test]
    fn a_budget_with_room_is_decremented_and_the_pod_deleted() {
        let (s, pods, pdbs) = store_with_pod("Running", json!({ "app": "web" }));
        pdb(&s, &pdbs, "web", 1);
        let a = evict(&s, "default", "p", &body(), WriteOptions::default()).unwrap();
        assert_eq!(a.code, StatusCode::CREATED);
        assert_eq!(a.status["status"], "Success");
        let p = s.get(&pdbs, "default", "web").unwrap();
        assert_eq!(p["status"]["disruptionsAllowed"], 0);
        assert!(p["status"]["disruptedPods"]["p"].is_string());
        assert_eq!(p["status"]["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(
            s.get(&pods, "default", "p").unwrap_err().code(),
            404,
            "an unbound pod goes at once"
        );
    }

    #[test]
    fn a_used_up_or_stale_budget_is_429_and_two_budgets_are_500() {
        let (s, pods, pdbs) = store_with_pod("Running", json!({ "app": "web" }));
        pdb(&s, &pdbs, "web", 0);
        let a = evict(&s, "default", "p", &body(), WriteOptions::default()).unwrap();
        assert_eq!(a.code, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.status["reason"], "TooManyRequests");
        assert_eq!(a.status["message"], WOULD_VIOLATE);
        assert_eq!(
            a.status["details"]["causes"][0]["reason"],
            "DisruptionBudget"
        );
        assert!(s.get(&pods, "default", "p").is_ok());

        let mut p = s.get(&pdbs, "default", "web").unwrap();
        p["spec"]["minAvailable"] = json!(0);
        s.update(&pdbs, "default", "web", p, Subresource::Main)
            .unwrap();
        let a = evict(&s, "default", "p", &body(), WriteOptions::default()).unwrap();
        assert_eq!(
            a.code,
            StatusCode::TOO_MANY_REQUESTS,
            "observedGeneration is stale"
        );
        assert!(
            a.status["details"]["causes"][0]["message"]
                .as_str()
                .unwrap()
                .contains("still being processed")
        );

        pdb(&s, &pdbs, "web-too", 5);
        let a = evict(&s, "default", "p", &body(), WriteOptions::default()).unwrap();
        assert_eq!(a.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.status["message"], MULTIPLE_BUDGETS);
    }

    #[test]
    fn pending_pods_skip_budgets_and_dry_runs_change_nothing() {
        let (s, pods, pdbs) = store_with_pod("Running", json!({ "app": "web" }));
        pdb(&s, &pdbs, "web", 1);
        let before = s.revision();
        let a = evict(&s, "default", "p", &body(), WriteOptions { dry_run: true }).unwrap();
        assert_eq!(a.code, StatusCode::CREATED);
        assert_eq!(s.revision(), before, "a dry run writes nothing");
        assert!(s.get(&pods, "default", "p").is_ok());

        let (s, pods, pdbs) = store_with_pod("Pending", json!({ "app": "web" }));
        pdb(&s, &pdbs, "web", 0);
        let a = evict(&s, "default", "p", &body(), WriteOptions::default()).unwrap();
        assert_eq!(a.code, StatusCode::CREATED);
        assert_eq!(s.get(&pods, "default", "p").unwrap_err().code(), 404);
    }

    #[test]
    fn bodies_are_checked_and_missing_pods_are_404() {
        let (s, _, _) = store_with_pod("Running", json!({}));
        let e = evict(&s, "default", "q", &body(), WriteOptions::default()).unwrap_err();
        assert_eq!(e.code(), 400);
        let e = evict(
            &s,
            "default",
            "q",
            &json!({ "metadata": { "name": "q" } }),
            WriteOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (404, "pods \"q\" not found".into())
        );
        // kube-rs' form: no apiVersion/kind and an unknown `delete_options` field.
        let a = evict(
            &s,
            "default",
            "p",
            &json!({ "delete_options": { "x": 1 }, "metadata": { "name": "p" } }),
            WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(a.code, StatusCode::CREATED);
    }
}
