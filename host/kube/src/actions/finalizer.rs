//! Deleting a NodeClaim or a Node, and removing `karpenter.sh/termination`
//! from it.

use std::fmt::Debug;

use dovetail_control::actions::ActionError;
use dovetail_core::nodeclaim::TERMINATION_FINALIZER;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::{self, Target};
use super::{ATTEMPTS, Executed, Executor};
use crate::observed::{Change, Observed};

/// What became of the object.
pub(super) enum Removed<K> {
    /// It is gone, or went with its last finalizer.
    Gone(Option<K>),
    /// It stays, without the finalizer.
    Kept(K),
}

/// Removes the finalizer with a JSON patch guarded by a `test` of the whole
/// finalizer list as it was read, so another finalizer added or removed
/// meanwhile fails the test (409 or 422) and the removal is computed again
/// from a fresh read. Done already, or the object gone, is success.
pub(super) async fn remove<K>(
    ex: &Executor,
    api: &Api<K>,
    name: &str,
    target: &Target,
) -> Result<Removed<K>, ActionError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    for attempt in 0..ATTEMPTS {
        let obj = match api.get_opt(name).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(Removed::Gone(None)),
            Err(e) => return Err(target.read().failed(&e)),
        };
        let finalizers = obj.finalizers().to_vec();
        let Some(i) = finalizers.iter().position(|f| f == TERMINATION_FINALIZER) else {
            return Ok(Removed::Kept(obj));
        };
        let patch = json!([
            { "op": "test", "path": "/metadata/finalizers", "value": finalizers },
            { "op": "remove", "path": format!("/metadata/finalizers/{i}") },
        ]);
        match json_patch(ex, api, name, &patch).await {
            Ok(o) => {
                let gone = o.meta().deletion_timestamp.is_some() && o.finalizers().is_empty();
                return Ok(if gone {
                    Removed::Gone(Some(o))
                } else {
                    Removed::Kept(o)
                });
            }
            Err(e) if error::is(&e, 404) => return Ok(Removed::Gone(None)),
            Err(e) if matches!(error::code(&e), Some(409 | 422)) => {
                tracing::debug!(object = %target.object, attempt, "finalizer list changed; reading again");
                ex.conflicted(attempt).await;
            }
            Err(e) => return Err(target.failed(&e)),
        }
    }
    Err(target.kept_conflicting(ATTEMPTS))
}

/// A JSON patch (`application/json-patch+json`), sent as a plain request:
/// kube's typed JSON patch needs its own copy of the `json-patch` crate.
async fn json_patch<K>(
    ex: &Executor,
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<K, kube::Error>
where
    K: Resource + DeserializeOwned,
{
    let request = http::Request::patch(format!(
        "{}/{name}?fieldManager={}",
        api.resource_url(),
        ex.field_manager
    ))
    .header(http::header::CONTENT_TYPE, "application/json-patch+json")
    .body(serde_json::to_vec(patch).expect("a JSON patch serialises"))
    .map_err(kube::Error::HttpError)?;
    ex.client.request(request).await
}

/// Requests deletion of `name` (its finalizer holds it until termination is
/// done), of this very object when its `uid` is known: a new object may
/// reuse the name. Gone already is done.
pub(super) async fn delete<K>(
    api: &Api<K>,
    name: &str,
    uid: Option<String>,
    target: &Target,
    wrap: fn(K) -> Observed,
) -> Result<Executed, ActionError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(either) => Ok(Executed::done(
            either
                .left()
                .map(|o| {
                    if o.finalizers().is_empty() {
                        Change::Deleted(wrap(o))
                    } else {
                        Change::Applied(wrap(o))
                    }
                })
                .into_iter()
                .collect(),
        )),
        // 409: the uid precondition failed, so the object meant is gone and
        // another took its name.
        Err(e) if matches!(error::code(&e), Some(404 | 409)) => Ok(Executed::done(Vec::new())),
        Err(e) => Err(target.failed(&e)),
    }
}

/// [`remove`], with what became of the object as the index's change.
pub(super) async fn remove_executed<K>(
    ex: &Executor,
    api: &Api<K>,
    name: &str,
    target: &Target,
    wrap: fn(K) -> Observed,
) -> Result<Executed, ActionError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let changes = match remove(ex, api, name, target).await? {
        Removed::Gone(o) => o.map(|o| Change::Deleted(wrap(o))).into_iter().collect(),
        Removed::Kept(o) => vec![Change::Applied(wrap(o))],
    };
    Ok(Executed::done(changes))
}
