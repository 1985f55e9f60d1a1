//! The cluster as the controllers observe it: an index of NodePools,
//! NodeClaims, Nodes, Pods, DaemonSets, PodDisruptionBudgets and namespaces,
//! kept up to date with `apply_*` and `delete_*` calls.
//!
//! The Kubernetes adapter feeds it from watches; the simulator, whose
//! in-memory cluster has no watch delay, writes its world into it directly.
//! Either way the controllers only read it: what they want changed comes
//! back as [`Action`](crate::Action)s.
//!
//! Every change the disruption engine could react to bumps
//! [`version`](ClusterState::version), so a pass can be skipped while the
//! cluster is unchanged since one that found nothing to do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::actions::NominationTarget;
use dovetail_core::model::{
    DaemonSet, Namespace, Node, NodePool, Pod, PodDisruptionBudget, PodKey, PodPhase, Taint,
};
use dovetail_core::nodeclaim::{ConditionStatus, ConditionType, NodeClaim};
use dovetail_core::resources::Resources;
use dovetail_core::scheduler::Settings as SchedulerSettings;
use dovetail_core::sym::Sym;

/// Karpenter's nomination window: `max(2 × BATCH_MAX_DURATION, 10 s)`.
pub const NOMINATION_WINDOW_MS: u64 = 20_000;

/// A pod's position in the index: assigned once, in the order pods were
/// first seen, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodId(pub u64);

/// A Node object's position in the index, in the order nodes appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

/// A NodeClaim's position in the index, in the order claims appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimId(pub u64);

/// Where the provisioner expects a pending pod to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nominee {
    /// A NodeClaim being launched for it.
    Claim(ClaimId),
    /// A node with room that kube-scheduler has not bound it to yet.
    Node(NodeId),
}

#[derive(Debug, Clone)]
pub struct PodEntry {
    /// Shared with every snapshot taken while it is held.
    pub pod: Arc<Pod>,
    pub node: Option<NodeId>,
    pub nominated: Option<Nominee>,
    /// When it was nominated (Unix ms).
    pub nominated_ms: u64,
    /// Since when it has been waiting for a node (Unix ms).
    pub pending_since_ms: u64,
    /// PodDisruptionBudgets covering it, by position in
    /// [`ClusterState::pdbs`].
    pub pdbs: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct NodeEntry {
    /// The Node object as observed: labels, annotations, taints, capacity,
    /// allocatable, readiness and creation time. Its `pods` is empty (they
    /// are in [`NodeEntry::pods`]); the fields the controller derives
    /// (initialized, marked for deletion, nominated, price, NodePool) are
    /// filled in when a snapshot is taken.
    pub node: Node,
    pub provider_id: Option<String>,
    pub pods: Vec<PodId>,
    /// Sum of the bound pods' requests.
    pub requested: Resources,
    /// Deletion requested (`metadata.deletionTimestamp`), Unix ms.
    pub deletion_ms: Option<u64>,
    pub finalizer: bool,
    /// Last pod bound to or removed from it (Unix ms).
    pub last_pod_event_ms: u64,
}

impl NodeEntry {
    pub fn has_taint(&self, key: &str) -> bool {
        self.node.taints.iter().any(|t| t.key.as_str() == key)
    }
}

#[derive(Debug, Default, Clone)]
pub struct ClusterState {
    node_pools: Vec<NodePool>,
    daemon_sets: Vec<DaemonSet>,
    namespaces: Vec<Namespace>,
    pdbs: Vec<PodDisruptionBudget>,
    settings: SchedulerSettings,
    claims: BTreeMap<ClaimId, NodeClaim>,
    claim_ids: HashMap<Sym, ClaimId>,
    claims_by_provider: HashMap<String, ClaimId>,
    /// NodeClaims not yet initialised, or being deleted: what the lifecycle
    /// and termination look at.
    unsettled: BTreeSet<ClaimId>,
    nodes: BTreeMap<NodeId, NodeEntry>,
    node_ids: HashMap<Sym, NodeId>,
    nodes_by_provider: HashMap<String, NodeId>,
    /// Nodes whose deletion was requested.
    deleting_nodes: BTreeSet<NodeId>,
    pods: HashMap<PodId, PodEntry>,
    pod_ids: HashMap<PodKey, PodId>,
    /// Live pods bound to no node, DaemonSet pods excepted.
    pending: BTreeSet<PodId>,
    next_id: u64,
    nomination_window_ms: u64,
    version: u64,
    last_pending_change_ms: u64,
}

impl ClusterState {
    pub fn new() -> Self {
        Self {
            nomination_window_ms: NOMINATION_WINDOW_MS,
            ..Self::default()
        }
    }

    /// How long a nomination holds once its node can take pods.
    pub fn set_nomination_window(&mut self, ms: u64) {
        self.nomination_window_ms = ms;
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn changed(&mut self) {
        self.version += 1;
    }

    /// Bumped by every change a disruption decision could depend on.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When a pod last became pending, stopped being pending, or lost the
    /// node it was waiting for (Unix ms): the provisioning batch's idle
    /// timer counts from here.
    pub fn last_pending_change_ms(&self) -> u64 {
        self.last_pending_change_ms
    }

    // ---- cluster-wide objects -------------------------------------------

    pub fn node_pools(&self) -> &[NodePool] {
        &self.node_pools
    }

    pub fn node_pool(&self, name: Sym) -> Option<&NodePool> {
        self.node_pools.iter().find(|p| p.name == name)
    }

    pub fn apply_node_pool(&mut self, pool: NodePool) {
        match self.node_pools.iter_mut().find(|p| p.name == pool.name) {
            Some(p) if *p == pool => return,
            Some(p) => *p = pool,
            None => self.node_pools.push(pool),
        }
        self.changed();
    }

    pub fn delete_node_pool(&mut self, name: Sym) {
        let before = self.node_pools.len();
        self.node_pools.retain(|p| p.name != name);
        if self.node_pools.len() != before {
            self.changed();
        }
    }

    pub fn daemon_sets(&self) -> &[DaemonSet] {
        &self.daemon_sets
    }

    pub fn set_daemon_sets(&mut self, daemon_sets: Vec<DaemonSet>) {
        if self.daemon_sets != daemon_sets {
            self.daemon_sets = daemon_sets;
            self.changed();
        }
    }

    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    pub fn set_namespaces(&mut self, namespaces: Vec<Namespace>) {
        if self.namespaces != namespaces {
            self.namespaces = namespaces;
            self.changed();
        }
    }

    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: SchedulerSettings) {
        self.settings = settings;
        self.changed();
    }

    pub fn pdbs(&self) -> &[PodDisruptionBudget] {
        &self.pdbs
    }

    /// Replaces the PodDisruptionBudgets and recomputes which pods each covers.
    pub fn set_pdbs(&mut self, pdbs: Vec<PodDisruptionBudget>) {
        self.pdbs = pdbs;
        let covering: Vec<(PodId, Vec<usize>)> = self
            .pods
            .iter()
            .map(|(&id, e)| (id, covering(&self.pdbs, &e.pod)))
            .collect();
        for (id, c) in covering {
            if let Some(e) = self.pods.get_mut(&id) {
                e.pdbs = c;
            }
        }
        self.changed();
    }

    /// Updates a budget's `status.disruptionsAllowed`; no version bump when
    /// it is unchanged.
    pub fn set_disruptions_allowed(&mut self, pdb: usize, allowed: i32) {
        if let Some(b) = self.pdbs.get_mut(pdb)
            && b.disruptions_allowed != allowed
        {
            b.disruptions_allowed = allowed;
            self.changed();
        }
    }

    // ---- NodeClaims -------------------------------------------------------

    pub fn claims(&self) -> impl Iterator<Item = (ClaimId, &NodeClaim)> {
        self.claims.iter().map(|(&id, c)| (id, c))
    }

    /// NodeClaims not yet initialised, or being deleted, in creation order.
    pub fn unsettled_claims(&self) -> impl Iterator<Item = (ClaimId, &NodeClaim)> {
        self.unsettled.iter().map(|&id| (id, &self.claims[&id]))
    }

    /// Nodes whose deletion was requested.
    pub fn deleting_nodes(&self) -> impl Iterator<Item = (NodeId, &NodeEntry)> {
        self.deleting_nodes.iter().map(|&id| (id, &self.nodes[&id]))
    }

    pub fn claim(&self, id: ClaimId) -> Option<&NodeClaim> {
        self.claims.get(&id)
    }

    pub fn claim_id(&self, name: Sym) -> Option<ClaimId> {
        self.claim_ids.get(&name).copied()
    }

    pub fn claim_by_name(&self, name: Sym) -> Option<&NodeClaim> {
        self.claim_id(name).and_then(|id| self.claims.get(&id))
    }

    pub fn claim_by_provider_id(&self, provider_id: &str) -> Option<ClaimId> {
        self.claims_by_provider.get(provider_id).copied()
    }

    /// Adds or replaces a NodeClaim (by name).
    pub fn apply_claim(&mut self, claim: NodeClaim, now_ms: u64) -> ClaimId {
        let id = match self.claim_ids.get(&claim.name) {
            Some(&id) => id,
            None => {
                let id = ClaimId(self.next());
                self.claim_ids.insert(claim.name, id);
                id
            }
        };
        let was_deleting = self.claims.get(&id).is_some_and(|c| c.deleting());
        if let Some(old) = self.claims.get(&id)
            && let Some(p) = &old.status.provider_id
            && claim.status.provider_id.as_ref() != Some(p)
        {
            self.claims_by_provider.remove(p);
        }
        if let Some(p) = &claim.status.provider_id {
            self.claims_by_provider.insert(p.clone(), id);
        }
        let deleting = claim.deleting();
        if deleting || !claim.initialized() {
            self.unsettled.insert(id);
        } else {
            self.unsettled.remove(&id);
        }
        self.claims.insert(id, claim);
        if deleting && !was_deleting {
            self.nominee_lost(Nominee::Claim(id), now_ms);
        }
        self.changed();
        id
    }

    /// The NodeClaim object is gone (its finalizer was removed).
    pub fn delete_claim(&mut self, name: Sym, now_ms: u64) -> Option<NodeClaim> {
        let id = self.claim_ids.remove(&name)?;
        let claim = self.claims.remove(&id)?;
        self.unsettled.remove(&id);
        if let Some(p) = &claim.status.provider_id {
            self.claims_by_provider.remove(p);
        }
        self.nominee_lost(Nominee::Claim(id), now_ms);
        self.changed();
        Some(claim)
    }

    /// Pods waiting for `nominee` are back to waiting for a decision.
    fn nominee_lost(&mut self, nominee: Nominee, now_ms: u64) {
        let mut lost = false;
        for id in &self.pending {
            if let Some(e) = self.pods.get_mut(id)
                && e.nominated == Some(nominee)
            {
                e.nominated = None;
                lost = true;
            }
        }
        if lost {
            self.last_pending_change_ms = now_ms;
        }
    }

    /// The NodeClaim a node belongs to, matched by provider ID.
    pub fn claim_of_node(&self, node: &NodeEntry) -> Option<ClaimId> {
        node.provider_id
            .as_deref()
            .and_then(|p| self.claim_by_provider_id(p))
    }

    /// The registered node of a NodeClaim.
    pub fn node_of_claim(&self, claim: &NodeClaim) -> Option<NodeId> {
        let name = claim.status.node_name?;
        let id = self.node_id(name)?;
        let node = &self.nodes[&id];
        (node.provider_id == claim.status.provider_id).then_some(id)
    }

    // ---- Nodes ------------------------------------------------------------

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeEntry)> {
        self.nodes.iter().map(|(&id, n)| (id, n))
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.get(&id)
    }

    pub fn node_id(&self, name: Sym) -> Option<NodeId> {
        self.node_ids.get(&name).copied()
    }

    pub fn node_by_name(&self, name: Sym) -> Option<&NodeEntry> {
        self.node_id(name).and_then(|id| self.nodes.get(&id))
    }

    pub fn node_by_provider_id(&self, provider_id: &str) -> Option<NodeId> {
        self.nodes_by_provider.get(provider_id).copied()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a Node object, or replaces its labels, annotations, taints,
    /// resources and readiness (its pods stay).
    pub fn apply_node(
        &mut self,
        node: Node,
        provider_id: Option<String>,
        finalizer: bool,
        now_ms: u64,
    ) -> NodeId {
        match self.node_ids.get(&node.name) {
            Some(&id) => {
                let e = self.nodes.get_mut(&id).expect("indexed");
                let mut node = node;
                node.pods.clear();
                e.node = node;
                if let Some(old) = e.provider_id.take() {
                    self.nodes_by_provider.remove(&old);
                }
                if let Some(p) = &provider_id {
                    self.nodes_by_provider.insert(p.clone(), id);
                }
                e.provider_id = provider_id;
                e.finalizer = finalizer;
                self.changed();
                id
            }
            None => {
                let id = NodeId(self.next());
                self.node_ids.insert(node.name, id);
                if let Some(p) = &provider_id {
                    self.nodes_by_provider.insert(p.clone(), id);
                }
                let mut node = node;
                node.pods.clear();
                self.nodes.insert(
                    id,
                    NodeEntry {
                        node,
                        provider_id,
                        pods: Vec::new(),
                        requested: Resources::default(),
                        deletion_ms: None,
                        finalizer,
                        last_pod_event_ms: now_ms,
                    },
                );
                self.changed();
                id
            }
        }
    }

    /// Changes a node in place (readiness, labels, taints…).
    pub fn update_node(&mut self, id: NodeId, change: impl FnOnce(&mut NodeEntry)) {
        if let Some(e) = self.nodes.get_mut(&id) {
            change(e);
            if e.deletion_ms.is_some() {
                self.deleting_nodes.insert(id);
            } else {
                self.deleting_nodes.remove(&id);
            }
            self.changed();
        }
    }

    pub fn set_node_ready(&mut self, id: NodeId, ready: bool) {
        if let Some(e) = self.nodes.get_mut(&id)
            && e.node.ready != ready
        {
            e.node.ready = ready;
            self.changed();
        }
    }

    pub fn add_node_taint(&mut self, id: NodeId, taint: Taint, now_ms: u64) -> bool {
        let Some(e) = self.nodes.get_mut(&id) else {
            return false;
        };
        if e.node.taints.contains(&taint) {
            return false;
        }
        e.node.taints.push(taint);
        if taint.key.as_str() == dovetail_core::nodeclaim::DISRUPTED_TAINT {
            let claim = self.nodes.get(&id).and_then(|e| self.claim_of_node(e));
            self.nominee_lost(Nominee::Node(id), now_ms);
            if let Some(c) = claim {
                self.nominee_lost(Nominee::Claim(c), now_ms);
            }
        }
        self.changed();
        true
    }

    pub fn remove_node_taint(&mut self, id: NodeId, key: &str) -> bool {
        let Some(e) = self.nodes.get_mut(&id) else {
            return false;
        };
        let before = e.node.taints.len();
        e.node.taints.retain(|t| t.key.as_str() != key);
        if e.node.taints.len() == before {
            return false;
        }
        self.changed();
        true
    }

    /// Deletion requested; the object stays while its finalizer does.
    pub fn mark_node_deleting(&mut self, id: NodeId, now_ms: u64) {
        if let Some(e) = self.nodes.get_mut(&id)
            && e.deletion_ms.is_none()
        {
            e.deletion_ms = Some(now_ms);
            self.deleting_nodes.insert(id);
            self.nominee_lost(Nominee::Node(id), now_ms);
            self.changed();
        }
    }

    /// The Node object is gone. Its pods are unbound and returned: what
    /// happens to them is the workload controllers' business.
    pub fn delete_node(&mut self, id: NodeId, now_ms: u64) -> Vec<PodId> {
        let Some(e) = self.nodes.remove(&id) else {
            return Vec::new();
        };
        self.node_ids.remove(&e.node.name);
        self.deleting_nodes.remove(&id);
        if let Some(p) = &e.provider_id {
            self.nodes_by_provider.remove(p);
        }
        for p in &e.pods {
            if let Some(pod) = self.pods.get_mut(p) {
                pod.node = None;
            }
        }
        self.nominee_lost(Nominee::Node(id), now_ms);
        self.changed();
        e.pods
    }

    // ---- Pods -------------------------------------------------------------

    pub fn pods(&self) -> impl Iterator<Item = (PodId, &PodEntry)> {
        self.pods.iter().map(|(&id, p)| (id, p))
    }

    pub fn pod(&self, id: PodId) -> Option<&PodEntry> {
        self.pods.get(&id)
    }

    pub fn pod_id(&self, key: &PodKey) -> Option<PodId> {
        self.pod_ids.get(key).copied()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Live pods bound to no node (DaemonSet pods excepted), oldest first.
    pub fn pending(&self) -> &BTreeSet<PodId> {
        &self.pending
    }

    /// Adds a pod, bound to `node` or pending. A pod already known by its
    /// key is replaced in place and keeps its binding.
    pub fn apply_pod(&mut self, pod: Pod, node: Option<NodeId>, now_ms: u64) -> PodId {
        if let Some(&id) = self.pod_ids.get(&pod.key()) {
            let pdbs = covering(&self.pdbs, &pod);
            let e = self.pods.get_mut(&id).expect("indexed");
            e.pod = Arc::new(pod);
            e.pdbs = pdbs;
            self.changed();
            return id;
        }
        let id = PodId(self.next());
        self.pod_ids.insert(pod.key(), id);
        let pdbs = covering(&self.pdbs, &pod);
        let daemon = pod.is_daemon();
        self.pods.insert(
            id,
            PodEntry {
                pod: Arc::new(pod),
                node: None,
                nominated: None,
                nominated_ms: 0,
                pending_since_ms: now_ms,
                pdbs,
            },
        );
        match node {
            Some(n) => self.bind(id, n, now_ms),
            None if !daemon => {
                self.pending.insert(id);
                self.last_pending_change_ms = now_ms;
            }
            None => {}
        }
        self.changed();
        id
    }

    /// The pod is gone for good.
    pub fn delete_pod(&mut self, id: PodId, now_ms: u64) -> Option<PodEntry> {
        self.unbind_quietly(id, now_ms);
        let e = self.pods.remove(&id)?;
        self.pod_ids.remove(&e.pod.key());
        if self.pending.remove(&id) {
            self.last_pending_change_ms = now_ms;
        }
        self.changed();
        Some(e)
    }

    /// Deletion requested: the pod is terminating.
    pub fn mark_pod_deleting(&mut self, id: PodId, now_ms: u64) {
        if let Some(e) = self.pods.get_mut(&id)
            && e.pod.deleting_since.is_none()
        {
            Arc::make_mut(&mut e.pod).deleting_since = Some(now_ms / 1000);
            self.changed();
        }
    }

    /// Binds a pod to a node (kube-scheduler's binding).
    pub fn bind(&mut self, id: PodId, node: NodeId, now_ms: u64) {
        self.unbind_quietly(id, now_ms);
        let Some(e) = self.pods.get_mut(&id) else {
            return;
        };
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        e.node = Some(node);
        e.nominated = None;
        n.pods.push(id);
        n.requested.add(&e.pod.requests);
        n.last_pod_event_ms = now_ms;
        if self.pending.remove(&id) {
            self.last_pending_change_ms = now_ms;
        }
        self.changed();
    }

    /// Takes a pod off its node and makes it pending again, as its
    /// controller would replace an evicted pod. DaemonSet pods are deleted
    /// instead.
    pub fn unbind(&mut self, id: PodId, now_ms: u64) {
        let daemon = self.pods.get(&id).is_some_and(|e| e.pod.is_daemon());
        if daemon {
            self.delete_pod(id, now_ms);
            return;
        }
        self.unbind_quietly(id, now_ms);
        if let Some(e) = self.pods.get_mut(&id) {
            e.pending_since_ms = now_ms;
            let pod = Arc::make_mut(&mut e.pod);
            pod.deleting_since = None;
            pod.phase = PodPhase::Pending;
            self.pending.insert(id);
            self.last_pending_change_ms = now_ms;
        }
        self.changed();
    }

    fn unbind_quietly(&mut self, id: PodId, now_ms: u64) {
        let Some(e) = self.pods.get_mut(&id) else {
            return;
        };
        let Some(node) = e.node.take() else {
            return;
        };
        if let Some(n) = self.nodes.get_mut(&node) {
            n.pods.retain(|&p| p != id);
            n.requested.sub(&e.pod.requests);
            n.last_pod_event_ms = now_ms;
        }
        self.changed();
    }

    /// The pod started running (seconds; `do-not-disrupt` durations count
    /// from here).
    pub fn set_pod_running(&mut self, id: PodId, unix_seconds: u64) {
        if let Some(e) = self.pods.get_mut(&id) {
            let pod = Arc::make_mut(&mut e.pod);
            pod.started_at = unix_seconds;
            pod.phase = PodPhase::Running;
        }
    }

    /// Records where the provisioner expects a pending pod to run.
    pub fn nominate(&mut self, id: PodId, nominee: Nominee, now_ms: u64) {
        if let Some(e) = self.pods.get_mut(&id) {
            e.nominated_ms = now_ms;
            if e.nominated != Some(nominee) {
                e.nominated = Some(nominee);
                self.changed();
            }
        }
    }

    /// Records where the provisioner expects `pods` to run, by name.
    pub fn nominate_all(&mut self, pods: &[PodKey], target: NominationTarget, now_ms: u64) {
        let nominee = match target {
            NominationTarget::NodeClaim(n) => self.claim_id(n).map(Nominee::Claim),
            NominationTarget::Node(n) => self.node_id(n).map(Nominee::Node),
        };
        let Some(nominee) = nominee else { return };
        for key in pods {
            if let Some(id) = self.pod_id(key) {
                self.nominate(id, nominee, now_ms);
            }
        }
    }

    /// Whether a pod's nomination still holds at `now_ms`: its NodeClaim
    /// or node exists and is not being deleted or disrupted, and either it
    /// is still launching or the nomination is recent. As in Karpenter, a
    /// nomination lapses a while after the node can take pods
    /// (`max(2 × batch maximum, 10 s)`): a pod kube-scheduler could not place
    /// there after all is provisioned again.
    pub fn nomination_holds(&self, pod: &PodEntry, now_ms: u64) -> bool {
        let Some(nominee) = pod.nominated else {
            return false;
        };
        let recent = |from: u64| now_ms < from.max(pod.nominated_ms) + self.nomination_window_ms;
        match nominee {
            Nominee::Claim(c) => self.claims.get(&c).is_some_and(|c| {
                if c.deleting() {
                    return false;
                }
                let node = self.node_of_claim(c).and_then(|n| self.nodes.get(&n));
                if node.is_some_and(node_leaving) {
                    return false;
                }
                match c.condition(ConditionType::Initialized) {
                    Some(i) if i.status == ConditionStatus::True => recent(i.last_transition_ms),
                    _ => true,
                }
            }),
            Nominee::Node(n) => self
                .nodes
                .get(&n)
                .is_some_and(|n| !node_leaving(n) && recent(0)),
        }
    }

    /// Pending pods not waiting for a NodeClaim or node that still holds.
    pub fn waiting(&self, now_ms: u64) -> Vec<PodId> {
        self.pending
            .iter()
            .copied()
            .filter(|id| !self.nomination_holds(&self.pods[id], now_ms))
            .collect()
    }
}

/// Deleting, or tainted for disruption: takes no new pods.
pub fn node_leaving(n: &NodeEntry) -> bool {
    n.deletion_ms.is_some() || n.has_taint(dovetail_core::nodeclaim::DISRUPTED_TAINT)
}

fn covering(pdbs: &[PodDisruptionBudget], pod: &Pod) -> Vec<usize> {
    (0..pdbs.len()).filter(|&i| pdbs[i].covers(pod)).collect()
}
