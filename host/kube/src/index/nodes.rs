//! Nodes and NodeClaims.

use std::sync::Arc;

use dovetail_api::NodeClaim as NodeClaimObject;
use dovetail_api::k8s;
use dovetail_core::nodeclaim::TERMINATION_FINALIZER;
use dovetail_core::sym::Sym;
use k8s_openapi::api::core::v1 as core;

use crate::observed::WatchedKind;

use super::keys::Key;
use super::{Index, ms, one_line};

impl Index {
    pub(super) fn apply_node(&mut self, key: Key, node: &core::Node, now_ms: u64) {
        let value = match k8s::node(node) {
            Ok(c) => c.value,
            Err(e) => {
                self.problem(WatchedKind::Node, key, one_line(&e));
                return;
            }
        };
        self.clear_problem(WatchedKind::Node, key);
        let provider_id = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .filter(|p| !p.is_empty());
        let finalizer = node
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == TERMINATION_FINALIZER);
        let name = value.name;
        let id = match self.state.node_id(name) {
            Some(id) => {
                let held = self.state.node(id).expect("indexed");
                if held.node != value
                    || held.provider_id != provider_id
                    || held.finalizer != finalizer
                {
                    self.state.apply_node(value, provider_id, finalizer, now_ms);
                }
                id
            }
            None => {
                let id = self.state.apply_node(value, provider_id, finalizer, now_ms);
                self.bind_waiting(name, id, now_ms);
                id
            }
        };
        if let Some(deleted) = node.metadata.deletion_timestamp.as_ref().map(ms)
            && self
                .state
                .node(id)
                .is_some_and(|e| e.deletion_ms != Some(deleted))
        {
            // Nominations to it lapse; the termination's clock starts when
            // the deletion was asked for, not when it was seen.
            self.state.mark_node_deleting(id, now_ms);
            self.state
                .update_node(id, |e| e.deletion_ms = Some(deleted));
        }
    }

    /// The Node object is gone. Its pods still name it: they wait for a
    /// node by that name (or for their own deletion, which follows).
    pub(super) fn delete_node(&mut self, name: Sym, now_ms: u64) {
        let Some(id) = self.state.node_id(name) else {
            return;
        };
        for pod in self.state.delete_node(id, now_ms) {
            if let Some(e) = self.state.delete_pod(pod, now_ms) {
                self.park_pod(e.pod.key(), name, Arc::unwrap_or_clone(e.pod), now_ms);
            }
        }
    }

    pub(super) fn apply_claim(&mut self, key: Key, mut claim: NodeClaimObject, now_ms: u64) {
        fill_type(
            &mut claim.api_version,
            &mut claim.kind,
            dovetail_api::nodeclaim::API_VERSION,
            dovetail_api::nodeclaim::KIND,
        );
        let mut value = match claim.to_core() {
            Ok(v) => v,
            Err(e) => {
                self.problem(WatchedKind::NodeClaim, key, one_line(&e));
                return;
            }
        };
        self.clear_problem(WatchedKind::NodeClaim, key);
        // What the controller planned is not in the object: keep it.
        let held = self.state.claim_by_name(value.name);
        if let Some(plan) = self.launch_plans.remove(&value.name) {
            if value.launch.is_empty() {
                value.launch = plan.launch;
            }
            if value.status.launched.is_none() {
                value.status.launched = plan.launched;
            }
        }
        if let Some(held) = held {
            if value.launch.is_empty() {
                value.launch = held.launch.clone();
            }
            if value.status.launched.is_none() {
                value.status.launched = held.status.launched;
            }
            if *held == value {
                return;
            }
        }
        self.state.apply_claim(value, now_ms);
    }

    pub(super) fn delete_claim(&mut self, name: Sym, now_ms: u64) {
        self.launch_plans.remove(&name);
        self.state.delete_claim(name, now_ms);
    }
}

/// Objects in a list may come without `apiVersion` and `kind`; the
/// validation that comes with the conversion requires them.
pub(super) fn fill_type(
    api_version: &mut String,
    kind: &mut String,
    want_version: &str,
    want_kind: &str,
) {
    if api_version.is_empty() {
        *api_version = want_version.to_owned();
    }
    if kind.is_empty() {
        *kind = want_kind.to_owned();
    }
}
