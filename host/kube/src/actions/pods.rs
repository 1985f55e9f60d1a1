//! Pods: evictions through the Eviction API, deletions past a node's
//! deadline, and nominations (Events only: Karpenter never writes
//! `nominatedNodeName`).

use dovetail_control::actions::{
    ActionError, Event, EventReason, EvictionResult, NominationTarget, ObjectKind, ObjectRef,
    Outcome,
};
use dovetail_core::model::PodKey;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::core::Status;
use serde_json::json;

use super::error::{self, Target};
use super::{Executed, Executor};
use crate::observed::{Change, Lookup, Observed};

fn this_pod(pod: &PodKey, lookup: &dyn Lookup) -> Option<Preconditions> {
    lookup
        .uid(
            ObjectKind::Pod,
            Some(pod.namespace.as_str()),
            pod.name.as_str(),
        )
        .map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        })
}

/// POSTs an Eviction (`policy/v1`) for the pod, for this very pod when its
/// uid is known, and reads the answer as the drain needs it:
/// 201/200 evicted, 429 blocked by a budget, 500 naming several budgets,
/// 404 gone, 409 gone (another pod took its name).
///
/// The body is written here rather than by kube's `evict`, which sends the
/// delete options under a key the API server ignores, losing the uid
/// precondition.
pub(super) async fn evict(
    ex: &Executor,
    pod: PodKey,
    lookup: &dyn Lookup,
) -> Result<Executed, ActionError> {
    let (namespace, name) = (pod.namespace.as_str(), pod.name.as_str());
    let target = Target::new("create", "pods/eviction", format!("{namespace}/{name}"));
    let mut body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": name, "namespace": namespace },
    });
    if let Some(p) = this_pod(&pod, lookup) {
        body["deleteOptions"] = json!({ "preconditions": p });
    }
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(serde_json::to_vec(&body).expect("an Eviction serialises"))
    .map_err(|e| target.refused(format!("cannot build the request: {e}")))?;
    let result = match ex.client.request::<Status>(request).await {
        Ok(_) => EvictionResult::Evicted,
        Err(e) => match error::code(&e) {
            Some(429) => EvictionResult::Blocked,
            Some(404 | 409) => EvictionResult::Gone,
            Some(500) if several_budgets(&e) => EvictionResult::MultiplePdbs,
            _ => return Err(target.failed(&e)),
        },
    };
    Ok(Executed {
        outcome: Outcome::Eviction(result),
        changes: Vec::new(),
    })
}

/// The API server's 500 for a pod covered by more than one budget.
fn several_budgets(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.message.contains("more than one PodDisruptionBudget"))
}

/// Deletes the pod with its own grace period, without asking budgets (the
/// node's deadline has passed). Gone already, or replaced by another pod
/// of the same name: done.
pub(super) async fn delete(
    ex: &Executor,
    pod: PodKey,
    lookup: &dyn Lookup,
) -> Result<Executed, ActionError> {
    let (namespace, name) = (pod.namespace.as_str(), pod.name.as_str());
    let target = Target::new("delete", "pods", format!("{namespace}/{name}"));
    let params = DeleteParams {
        preconditions: this_pod(&pod, lookup),
        ..DeleteParams::default()
    };
    let api: Api<Pod> = Api::namespaced(ex.client.clone(), namespace);
    match api.delete(name, &params).await {
        Ok(either) => Ok(Executed::done(
            either
                .left()
                .map(|p| Change::Applied(Observed::Pod(Box::new(p))))
                .into_iter()
                .collect(),
        )),
        Err(e) if matches!(error::code(&e), Some(404 | 409)) => Ok(Executed::done(Vec::new())),
        Err(e) => Err(target.failed(&e)),
    }
}

/// A `Nominated` Event on each pod, worded as Karpenter's.
pub(super) async fn nominate(
    ex: &Executor,
    pods: &[PodKey],
    target: NominationTarget,
    lookup: &dyn Lookup,
) {
    let on = match target {
        NominationTarget::NodeClaim(c) => format!("nodeclaim/{c}"),
        NominationTarget::Node(n) => format!("node/{n}"),
    };
    for &pod in pods {
        let event = Event::normal(
            ObjectRef::pod(pod),
            EventReason::Nominated,
            format!("Pod should schedule on: {on}"),
        );
        ex.events.record(&ex.client, &event, lookup).await;
    }
}
