//! Pods: pending, bound to a node the index holds, or parked until their
//! node arrives (the Pod and Node watches are independent, so a bound pod
//! can come first).

use dovetail_api::k8s;
use dovetail_control::NodeId;
use dovetail_core::model::{Pod, PodKey};
use dovetail_core::sym::Sym;
use k8s_openapi::api::core::v1 as core;

use crate::observed::WatchedKind;

use super::keys::Key;
use super::{Index, Parked, one_line, pod_key};

impl Index {
    pub(super) fn apply_pod(&mut self, key: Key, pod: &core::Pod, now_ms: u64) {
        let pkey = pod_key(key);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // It holds nothing and will never run again.
            self.clear_problem(WatchedKind::Pod, key);
            self.delete_pod(pkey, now_ms);
            return;
        }
        let value = match k8s::pod(pod, &self.lookup) {
            Ok(c) => c.value,
            Err(e) => {
                self.problem(WatchedKind::Pod, key, one_line(&e));
                return;
            }
        };
        self.clear_problem(WatchedKind::Pod, key);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
            .map(Sym::new);
        match node {
            None => self.place_pod(pkey, value, None, now_ms),
            Some(n) => match self.state.node_id(n) {
                Some(id) => self.place_pod(pkey, value, Some(id), now_ms),
                None => self.park_pod(pkey, n, value, now_ms),
            },
        }
    }

    /// Puts a pod in the state, pending or bound to `node`; a pod already
    /// there keeps its id and nomination.
    fn place_pod(&mut self, key: PodKey, pod: Pod, node: Option<NodeId>, now_ms: u64) {
        self.unpark(key);
        let Some(id) = self.state.pod_id(&key) else {
            self.state.apply_pod(pod, node, now_ms);
            return;
        };
        let held = self.state.pod(id).expect("indexed");
        let bound = held.node;
        if bound.is_some() && held.pod.requests != pod.requests {
            // Resized in place: its node's requested total must follow.
            self.state.delete_pod(id, now_ms);
            self.state.apply_pod(pod, node, now_ms);
            return;
        }
        if *held.pod != pod {
            self.state.apply_pod(pod, node, now_ms);
        }
        match node {
            Some(n) if bound != Some(n) => self.state.bind(id, n, now_ms),
            None if bound.is_some() => self.state.unbind(id, now_ms),
            _ => {}
        }
    }

    /// Keeps a pod bound to a node the index does not hold, out of the
    /// state: it is neither pending nor taking room anywhere.
    pub(super) fn park_pod(&mut self, key: PodKey, node: Sym, pod: Pod, now_ms: u64) {
        if let Some(id) = self.state.pod_id(&key) {
            self.state.delete_pod(id, now_ms);
        }
        self.unpark(key);
        self.waiting.entry(node).or_default().push(key);
        self.parked.insert(key, Parked { node, pod });
    }

    fn unpark(&mut self, key: PodKey) {
        let Some(p) = self.parked.remove(&key) else {
            return;
        };
        if let Some(keys) = self.waiting.get_mut(&p.node) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.waiting.remove(&p.node);
            }
        }
    }

    /// The node `name` arrived as `id`: the pods waiting for it are bound.
    pub(super) fn bind_waiting(&mut self, name: Sym, id: NodeId, now_ms: u64) {
        for key in self.waiting.remove(&name).unwrap_or_default() {
            if let Some(p) = self.parked.remove(&key) {
                self.state.apply_pod(p.pod, Some(id), now_ms);
            }
        }
    }

    pub(super) fn delete_pod(&mut self, key: PodKey, now_ms: u64) {
        self.unpark(key);
        if let Some(id) = self.state.pod_id(&key) {
            self.state.delete_pod(id, now_ms);
        }
    }

    /// Pods bound to a node the index does not hold (yet).
    pub fn parked_pods(&self) -> usize {
        self.parked.len()
    }
}
