//! NodeClaims: create (then status), update labels, annotations and
//! status, delete, and the termination finalizer.

use dovetail_api::nodeclaim::NodeClaimStatus;
use dovetail_api::{NodeClaim, NodePool};
use dovetail_control::actions::{ActionError, ObjectKind};
use dovetail_core::nodeclaim::{self as core, ConditionType};
use dovetail_core::sym::Sym;
use kube::api::{Api, Patch};
use serde_json::{Map, Value, json};

use super::error::{self, Target};
use super::finalizer;
use super::{ATTEMPTS, Executed, Executor, merge};
use crate::observed::{Change, Lookup, Observed};

fn applied(c: NodeClaim) -> Change {
    Change::Applied(Observed::NodeClaim(Box::new(c)))
}

fn api(ex: &Executor) -> Api<NodeClaim> {
    Api::all(ex.client.clone())
}

/// Creates the claim, then writes its status through `/status` (the main
/// endpoint drops it). A claim already there is the same write done before
/// (names are generated per claim): it is read back and left as it is,
/// except that a status never written is written.
pub(super) async fn create(
    ex: &Executor,
    claim: &core::NodeClaim,
    lookup: &dyn Lookup,
) -> Result<Executed, ActionError> {
    let name = claim.name.as_str();
    let target = Target::new("create", "nodeclaims", name);
    let pool_uid = match claim.node_pool {
        Some(pool) => Some(node_pool_uid(ex, pool, lookup, &target).await?),
        None => None,
    };
    let mut object = NodeClaim::from_core(claim, pool_uid.as_deref());
    // The server sets these; a client's values are not its to give.
    object.metadata.creation_timestamp = None;
    object.metadata.deletion_timestamp = None;
    let status = object.status.take();
    let api = api(ex);
    let stored = match api.create(&ex.post_params(), &object).await {
        Ok(c) => c,
        Err(e) if error::is(&e, 409) => {
            let existing = api.get(name).await.map_err(|e| target.read().failed(&e))?;
            let pool_of = |c: &NodeClaim| {
                c.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(dovetail_core::labels::NODE_POOL))
                    .cloned()
            };
            if pool_of(&existing) != pool_of(&object) {
                return Err(target.refused(format!(
                    "a NodeClaim of that name already exists for NodePool {:?}; delete it if it is not Dovetail's",
                    pool_of(&existing).unwrap_or_default()
                )));
            }
            existing
        }
        Err(e) => return Err(target.failed(&e)),
    };
    let unwritten = stored
        .status
        .as_ref()
        .is_none_or(|s| *s == NodeClaimStatus::default());
    let stored = match status {
        Some(status) if unwritten => {
            let target = Target::new("patch", "nodeclaims/status", name);
            api.patch_status(
                name,
                &ex.patch_params(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map_err(|e| target.failed(&e))?
        }
        _ => stored,
    };
    Ok(Executed::done(vec![applied(stored)]))
}

/// The owning NodePool's uid, from the index or else from the server.
async fn node_pool_uid(
    ex: &Executor,
    pool: Sym,
    lookup: &dyn Lookup,
    target: &Target,
) -> Result<String, ActionError> {
    if let Some(uid) = lookup.uid(ObjectKind::NodePool, None, pool.as_str()) {
        return Ok(uid);
    }
    let pools: Api<NodePool> = Api::all(ex.client.clone());
    match pools.get_opt(pool.as_str()).await {
        Ok(Some(p)) => p.metadata.uid.ok_or_else(|| {
            target.refused(format!(
                "NodePool {pool} has no uid; the API server must set one"
            ))
        }),
        Ok(None) => Err(target.refused(format!(
            "its NodePool {pool} no longer exists; nothing is launched for a deleted NodePool"
        ))),
        Err(e) => Err(Target::new("get", "nodepools", pool.as_str()).failed(&e)),
    }
}

/// Sets the claim's labels and annotations (others' stay) and makes its
/// status the claim's, keeping conditions of types Dovetail does not set.
/// Each write is guarded by the resource version it was computed from; on
/// a conflict both are computed again from a fresh read. Nothing differs:
/// no write. The claim gone: done, nothing to update.
pub(super) async fn update(
    ex: &Executor,
    claim: &core::NodeClaim,
) -> Result<Executed, ActionError> {
    let name = claim.name.as_str();
    let api = api(ex);
    let desired = NodeClaim::from_core(claim, None);
    let meta_target = Target::new("patch", "nodeclaims", name);
    let status_target = Target::new("patch", "nodeclaims/status", name);
    for attempt in 0..ATTEMPTS {
        let Some(mut current) = api
            .get_opt(name)
            .await
            .map_err(|e| meta_target.read().failed(&e))?
        else {
            return Ok(Executed::done(Vec::new()));
        };
        let mut metadata = Map::new();
        for (field, want, have) in [
            ("labels", &desired.metadata.labels, &current.metadata.labels),
            (
                "annotations",
                &desired.metadata.annotations,
                &current.metadata.annotations,
            ),
        ] {
            let set: Map<String, Value> = want
                .iter()
                .flatten()
                .filter(|(k, v)| have.as_ref().and_then(|h| h.get(*k)) != Some(*v))
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            if !set.is_empty() {
                metadata.insert(field.into(), Value::Object(set));
            }
        }
        if !metadata.is_empty() {
            metadata.insert(
                "resourceVersion".into(),
                json!(current.metadata.resource_version),
            );
            match api
                .patch(
                    name,
                    &ex.patch_params(),
                    &Patch::Merge(json!({ "metadata": metadata })),
                )
                .await
            {
                Ok(c) => current = c,
                Err(e) if error::is(&e, 404) => return Ok(Executed::done(Vec::new())),
                Err(e) if error::is(&e, 409) => {
                    ex.conflicted(attempt).await;
                    continue;
                }
                Err(e) => return Err(meta_target.failed(&e)),
            }
        }
        let have = current.status.clone().unwrap_or_default();
        let want = status_for(&desired, &have);
        let old = serde_json::to_value(&have).expect("a status serialises");
        let new = serde_json::to_value(&want).expect("a status serialises");
        let Some(diff) = merge::diff(&old, &new) else {
            return Ok(Executed::done(vec![applied(current)]));
        };
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "status": diff,
        });
        match api
            .patch_status(name, &ex.patch_params(), &Patch::Merge(patch))
            .await
        {
            Ok(c) => return Ok(Executed::done(vec![applied(c)])),
            Err(e) if error::is(&e, 404) => return Ok(Executed::done(Vec::new())),
            Err(e) if error::is(&e, 409) => ex.conflicted(attempt).await,
            Err(e) => return Err(status_target.failed(&e)),
        }
    }
    Err(meta_target.kept_conflicting(ATTEMPTS))
}

/// The status to store: the claim's, with the conditions of types Dovetail
/// does not set kept from `have`, and what the claim leaves unset (node
/// name, provider ID…) kept as stored.
fn status_for(desired: &NodeClaim, have: &NodeClaimStatus) -> NodeClaimStatus {
    let mut want = desired.status.clone().unwrap_or_default();
    want.conditions.extend(
        have.conditions
            .iter()
            .filter(|c| ConditionType::from_name(&c.type_).is_none())
            .cloned(),
    );
    if want.node_name.is_none() {
        want.node_name.clone_from(&have.node_name);
    }
    if want.provider_id.is_none() {
        want.provider_id.clone_from(&have.provider_id);
    }
    if want.image_id.is_none() {
        want.image_id.clone_from(&have.image_id);
    }
    if want.capacity.is_empty() {
        want.capacity.clone_from(&have.capacity);
    }
    if want.allocatable.is_empty() {
        want.allocatable.clone_from(&have.allocatable);
    }
    if want.last_pod_event_time.is_none() {
        want.last_pod_event_time
            .clone_from(&have.last_pod_event_time);
    }
    want
}

/// Requests deletion, of this very claim when its uid is known.
pub(super) async fn delete(
    ex: &Executor,
    name: Sym,
    lookup: &dyn Lookup,
) -> Result<Executed, ActionError> {
    let target = Target::new("delete", "nodeclaims", name.as_str());
    let uid = lookup.uid(ObjectKind::NodeClaim, None, name.as_str());
    finalizer::delete(&api(ex), name.as_str(), uid, &target, |o| {
        Observed::NodeClaim(Box::new(o))
    })
    .await
}

pub(super) async fn remove_finalizer(ex: &Executor, name: Sym) -> Result<Executed, ActionError> {
    let target = Target::new("patch", "nodeclaims", name.as_str());
    finalizer::remove_executed(ex, &api(ex), name.as_str(), &target, |o| {
        Observed::NodeClaim(Box::new(o))
    })
    .await
}
