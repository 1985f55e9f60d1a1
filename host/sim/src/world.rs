//! The simulated cluster's API server and the controllers around it that
//! are not Dovetail's: it executes the autoscaler's actions on the cluster
//! state, answers evictions as the Eviction API does (PodDisruptionBudgets,
//! computed from the pods they cover), and replaces evicted pods as their
//! workload controllers would.

use std::collections::HashMap;

use dovetail_control::Cluster;
use dovetail_control::actions::{Action, ActionError, EvictionResult, Outcome};
use dovetail_control::state::{ClusterState, NodeId, PodId};
use dovetail_core::sym::Sym;

use crate::types::PdbSpec;

/// Who keeps a pod: what happens to it when it is evicted or deleted.
/// DaemonSet and static pods have none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Owner {
    Deployment(usize),
    Job(usize),
    /// A controller the scenario does not model: it replaces the pod, so an
    /// evicted pod is pending again.
    Other,
    /// No controller: an evicted or deleted pod is gone.
    Bare,
}

#[derive(Debug)]
pub(crate) struct World {
    pub state: ClusterState,
    /// Workload pods (DaemonSet pods have none).
    pub owners: HashMap<PodId, Owner>,
    pub pdb_specs: Vec<PdbSpec>,
    /// `disruptionsAllowed` left this tick, for evictions.
    budget: Option<Vec<i64>>,
    /// The state version the PDB statuses were computed at.
    pdb_version: Option<u64>,
    pub pods_evicted: usize,
    /// kube-scheduler has something new to look at: pods became pending or
    /// room appeared.
    pub sched_dirty: bool,
    /// Running Job pods and when they complete (relative ms).
    pub finishes: HashMap<PodId, u64>,
    /// Nodes removed this tick, with the claims they belonged to.
    pub removed: Vec<Sym>,
    /// Nodes whose labels a patch changed since the DaemonSet controller
    /// last looked (a DaemonSet may select the new labels).
    pub relabelled: Vec<NodeId>,
}

impl World {
    pub fn new(state: ClusterState, pdb_specs: Vec<PdbSpec>) -> Self {
        Self {
            state,
            owners: HashMap::new(),
            pdb_specs,
            budget: None,
            pdb_version: None,
            pods_evicted: 0,
            sched_dirty: true,
            finishes: HashMap::new(),
            removed: Vec::new(),
            relabelled: Vec::new(),
        }
    }

    /// Replaces the PodDisruptionBudgets (an event changed them); their
    /// status is recomputed.
    pub fn set_pdb_specs(&mut self, specs: Vec<PdbSpec>) {
        self.state.set_pdbs(
            specs
                .iter()
                .map(|b| dovetail_core::model::PodDisruptionBudget {
                    namespace: b.namespace,
                    name: b.name,
                    selector: b.selector.clone(),
                    disruptions_allowed: 0,
                })
                .collect(),
        );
        self.pdb_specs = specs;
        self.pdb_version = None;
        self.budget = None;
    }

    /// A new tick: eviction budgets are recomputed from the pods.
    pub fn tick(&mut self) {
        self.budget = None;
    }

    /// PodDisruptionBudgets' `disruptionsAllowed`, from the pods they cover:
    /// healthy pods (on a Ready node) above what the budget must keep.
    pub fn pdb_allowed(&self) -> Vec<i64> {
        let n = self.pdb_specs.len();
        if n == 0 {
            return Vec::new();
        }
        let (mut healthy, mut expected) = (vec![0i64; n], vec![0i64; n]);
        for (_, e) in self.state.pods() {
            for &b in &e.pdbs {
                expected[b] += 1;
                if e.node
                    .and_then(|n| self.state.node(n))
                    .is_some_and(|n| n.node.ready)
                {
                    healthy[b] += 1;
                }
            }
        }
        (0..n)
            .map(|b| {
                let (expected, healthy) = (expected[b].max(0) as u32, healthy[b].max(0) as u32);
                match self.pdb_specs[b].rule {
                    Some(rule) => i64::from(rule.disruptions_allowed(expected, healthy)),
                    None => i64::from(healthy),
                }
            })
            .collect()
    }

    /// Brings the budgets' status up to date, as the disruption controller
    /// of kube-controller-manager does.
    pub fn update_pdb_status(&mut self) {
        if self.pdb_specs.is_empty() || self.pdb_version == Some(self.state.version()) {
            return;
        }
        for (i, a) in self.pdb_allowed().into_iter().enumerate() {
            self.state
                .set_disruptions_allowed(i, a.min(i32::MAX as i64) as i32);
        }
        self.pdb_version = Some(self.state.version());
    }

    /// The pod leaves its node: a workload pod is pending again (its
    /// controller replaces it); a DaemonSet pod, a static pod and a pod
    /// without a controller are gone.
    pub fn lose_pod(&mut self, id: PodId, now_ms: u64, count: bool) {
        let owner = self.owners.get(&id).copied();
        if count && owner.is_some() {
            self.pods_evicted += 1;
        }
        self.finishes.remove(&id);
        let gone = match owner {
            Some(Owner::Bare) => true,
            Some(_) => false,
            None => self.state.pod(id).is_some_and(|e| e.pod.is_static()),
        };
        if gone {
            self.state.delete_pod(id, now_ms);
            self.owners.remove(&id);
        } else {
            self.state.unbind(id, now_ms);
        }
        self.sched_dirty = true;
    }

    fn evict(&mut self, id: PodId, now_ms: u64) -> EvictionResult {
        let Some(e) = self.state.pod(id) else {
            return EvictionResult::Gone;
        };
        if e.node.is_none() {
            return EvictionResult::Gone;
        }
        if e.pdbs.len() > 1 {
            return EvictionResult::MultiplePdbs;
        }
        let pdbs = e.pdbs.clone();
        if self.budget.is_none() {
            self.budget = Some(self.pdb_allowed());
        }
        let budget = self.budget.as_mut().expect("just set");
        if pdbs.iter().any(|&b| budget[b] <= 0) {
            return EvictionResult::Blocked;
        }
        for &b in &pdbs {
            budget[b] -= 1;
        }
        self.lose_pod(id, now_ms, true);
        EvictionResult::Evicted
    }

    fn node(&self, name: Sym) -> Result<NodeId, ActionError> {
        self.state.node_id(name).ok_or_else(|| ActionError {
            action: format!("node {name}"),
            message: "not found".into(),
        })
    }
}

impl Cluster for World {
    fn state(&self) -> &ClusterState {
        &self.state
    }

    fn execute(&mut self, action: Action, now_ms: u64) -> Result<Outcome, ActionError> {
        match action {
            Action::CreateNodeClaim(c) | Action::UpdateNodeClaim(c) => {
                self.state.apply_claim(c, now_ms);
            }
            Action::DeleteNodeClaim { name } => {
                if let Some(c) = self.state.claim_by_name(name)
                    && !c.deleting()
                {
                    let mut c = c.clone();
                    c.deletion_ms = Some(now_ms);
                    self.state.apply_claim(c, now_ms);
                }
            }
            Action::RemoveNodeClaimFinalizer { name } => {
                if self.state.claim_by_name(name).is_some_and(|c| c.deleting()) {
                    self.state.delete_claim(name, now_ms);
                }
            }
            Action::Nominate { pods, target } => {
                self.state.nominate_all(&pods, target, now_ms);
            }
            Action::PatchNode { name, patch } => {
                let id = self.node(name)?;
                // Taints lifted from a Ready node make room for pending pods.
                if !patch.remove_taints.is_empty()
                    && self.state.node(id).is_some_and(|n| n.node.ready)
                {
                    self.sched_dirty = true;
                }
                if !patch.labels.is_empty() {
                    self.relabelled.push(id);
                }
                self.state.update_node(id, |e| patch.apply(e));
            }
            Action::TaintNode { name, taint } => {
                let id = self.node(name)?;
                self.state.add_node_taint(id, taint, now_ms);
            }
            Action::UntaintNode { name, key } => {
                let id = self.node(name)?;
                if self.state.remove_node_taint(id, key.as_str())
                    && self.state.node(id).is_some_and(|n| n.node.ready)
                {
                    self.sched_dirty = true;
                }
            }
            Action::DeleteNode { name } => {
                let id = self.node(name)?;
                let finalizer = self.state.node(id).is_some_and(|n| n.finalizer);
                self.state.mark_node_deleting(id, now_ms);
                if !finalizer {
                    self.remove_node(id, now_ms);
                }
            }
            Action::RemoveNodeFinalizer { name } => {
                let id = self.node(name)?;
                if self.state.node(id).is_some_and(|n| n.deletion_ms.is_some()) {
                    self.remove_node(id, now_ms);
                } else {
                    self.state.update_node(id, |e| e.finalizer = false);
                }
            }
            Action::EvictPod { pod } => {
                let result = match self.state.pod_id(&pod) {
                    Some(id) => self.evict(id, now_ms),
                    None => EvictionResult::Gone,
                };
                return Ok(Outcome::Eviction(result));
            }
            Action::DeletePod { pod } => {
                if let Some(id) = self.state.pod_id(&pod) {
                    self.lose_pod(id, now_ms, true);
                }
            }
            Action::Event(_) => {}
        }
        Ok(Outcome::Done)
    }
}

impl World {
    /// The Node object is gone; its pods with it.
    fn remove_node(&mut self, id: NodeId, now_ms: u64) {
        let name = self.state.node(id).map(|n| n.node.name);
        for p in self.state.delete_node(id, now_ms) {
            self.lose_pod(p, now_ms, true);
        }
        if let Some(n) = name {
            self.removed.push(n);
        }
    }
}
