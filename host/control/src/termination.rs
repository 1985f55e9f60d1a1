//! Termination: a deleted NodeClaim's node is tainted, drained and its
//! instance terminated, then the finalizers are removed.
//!
//! - The drain evicts through the Eviction API in Karpenter's four tiers —
//!   non-critical pods, non-critical DaemonSet pods, critical pods, critical
//!   DaemonSet pods — a tier only once the one before is gone. Pods that
//!   tolerate `karpenter.sh/disrupted:NoSchedule` and pods already
//!   terminating are neither evicted nor waited for.
//! - A budget's 429 (or a 500 for a pod under two budgets) is retried per
//!   pod with backoff, 100 ms doubling to 10 s.
//! - `karpenter.sh/do-not-disrupt` pods are not evicted: they hold the drain
//!   until the NodeClaim's `terminationGracePeriod` runs out; past that
//!   deadline every remaining pod is deleted without asking budgets.
//! - A drain takes at least 5 s; then the instance is terminated, and once
//!   the cloud reports it gone the node's and NodeClaim's finalizers go.

use std::collections::{HashMap, HashSet};

use dovetail_core::model::{Pod, PodKey, Taint, TaintEffect, Toleration};
use dovetail_core::nodeclaim::{
    ConditionReason, ConditionStatus, ConditionType, DISRUPTED_TAINT, NodeClaim,
};
use dovetail_core::sym::Sym;

use crate::actions::{Action, Event, EventReason, EvictionResult, ObjectRef};
use crate::cloud::{CloudError, CloudProvider};
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::{ClusterState, NodeId};
use dovetail_core::disruption::protected_pod as pod_protected;

pub const MIN_DRAIN_MS: u64 = 5_000;
const EVICTION_BACKOFF_MIN_MS: u64 = 100;
const EVICTION_BACKOFF_MAX_MS: u64 = 10_000;
/// `system-cluster-critical`'s priority; `system-node-critical` is above.
const CRITICAL_PRIORITY: i32 = 2_000_000_000;

#[derive(Debug, Clone, Default)]
struct Drain {
    started_ms: u64,
    /// Pod → (next attempt, current delay) after a refused eviction.
    backoff: HashMap<PodKey, (u64, u64)>,
    instance_deleted: bool,
    drained: bool,
}

#[derive(Debug, Clone)]
pub struct Termination {
    min_drain_ms: u64,
    drains: HashMap<NodeId, Drain>,
    /// Claims whose instance deletion was requested (no node).
    deleted: HashSet<Sym>,
    /// Evicted pod → its node, to route eviction results.
    evicting: HashMap<PodKey, NodeId>,
}

impl Default for Termination {
    fn default() -> Self {
        Self::new(MIN_DRAIN_MS)
    }
}

/// The drain tier of a pod: lower tiers go first.
fn tier(pod: &Pod) -> usize {
    let critical = pod.priority >= CRITICAL_PRIORITY;
    usize::from(critical) * 2 + usize::from(pod.is_daemon())
}

fn tolerates_disruption(pod: &Pod) -> bool {
    let taint = Taint {
        key: Sym::new(DISRUPTED_TAINT),
        value: None,
        effect: TaintEffect::NoSchedule,
    };
    pod.tolerations
        .iter()
        .any(|t: &Toleration| t.tolerates(&taint))
}

impl Termination {
    pub fn new(min_drain_ms: u64) -> Self {
        Self {
            min_drain_ms,
            drains: HashMap::new(),
            deleted: HashSet::new(),
            evicting: HashMap::new(),
        }
    }

    /// Nodes being drained.
    pub fn draining(&self) -> usize {
        self.drains.len()
    }

    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        for (_, claim) in state.unsettled_claims() {
            if !claim.deleting() || !claim.finalizer {
                continue;
            }
            match state.node_of_claim(claim) {
                Some(node) => {
                    self.terminate_node(state, node, Some(claim), cloud, now_ms, &mut step)
                }
                None => self.terminate_claim(claim, cloud, now_ms, &mut step),
            }
        }
        // Nodes deleted by someone else: their NodeClaim goes too, as in
        // Karpenter; a node without one is drained and released.
        for (id, n) in state.deleting_nodes() {
            if !n.finalizer {
                continue;
            }
            match state.claim_of_node(n).and_then(|c| state.claim(c)) {
                Some(c) if !c.deleting() => {
                    step.actions.push(Action::DeleteNodeClaim { name: c.name })
                }
                Some(_) => {}
                None => self.terminate_node(state, id, None, cloud, now_ms, &mut step),
            }
        }
        self.drains.retain(|id, _| state.node(*id).is_some());
        self.deleted
            .retain(|name| state.claim_by_name(*name).is_some());
        step
    }

    fn terminate_claim(
        &mut self,
        claim: &NodeClaim,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
        step: &mut Step,
    ) {
        if let Some(pid) = &claim.status.provider_id {
            if !self.deleted.contains(&claim.name) {
                if let Err(e) = cloud.delete(pid, now_ms) {
                    step.decisions
                        .push(Decision::ActionFailed(format!("terminate {pid}: {e}")));
                    return;
                }
                self.deleted.insert(claim.name);
            }
            if !matches!(cloud.get(pid), Err(CloudError::NotFound(_))) {
                return;
            }
        }
        step.actions
            .push(Action::RemoveNodeClaimFinalizer { name: claim.name });
        step.decisions.push(Decision::Terminated {
            claim: Some(claim.name),
            node: None,
        });
    }

    fn terminate_node(
        &mut self,
        state: &ClusterState,
        id: NodeId,
        claim: Option<&NodeClaim>,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
        step: &mut Step,
    ) {
        let Some(node) = state.node(id) else { return };
        let name = node.node.name;
        if node.deletion_ms.is_none() {
            step.actions.push(Action::DeleteNode { name });
        }
        let provider_id = claim
            .and_then(|c| c.status.provider_id.clone())
            .or_else(|| node.provider_id.clone());
        // The instance is gone and the node not Ready: no kubelet is left to
        // drain it, so it goes at once (a Ready node still has one, whatever
        // the cloud says).
        if !node.node.ready
            && provider_id
                .as_deref()
                .is_some_and(|p| matches!(cloud.get(p), Err(CloudError::NotFound(_))))
        {
            self.finish(name, claim, step);
            return;
        }
        if !node.has_taint(DISRUPTED_TAINT) {
            step.actions.push(Action::TaintNode {
                name,
                taint: Taint {
                    key: Sym::new(DISRUPTED_TAINT),
                    value: None,
                    effect: TaintEffect::NoSchedule,
                },
            });
        }
        let drain = self.drains.entry(id).or_insert_with(|| Drain {
            started_ms: now_ms,
            ..Drain::default()
        });
        let deadline = claim.and_then(|c| {
            let start = c.deletion_ms?;
            Some(start + c.termination_grace_period?.as_millis() as u64)
        });
        if !drain.drained {
            let remaining =
                drain_pods(state, id, drain, deadline, now_ms, step, &mut self.evicting);
            if remaining || now_ms.saturating_sub(drain.started_ms) < self.min_drain_ms {
                if let Some(c) = claim {
                    let mut c = c.clone();
                    if c.set_condition(
                        ConditionType::Drained,
                        ConditionStatus::Unknown,
                        ConditionReason::Draining,
                        "Draining",
                        now_ms,
                    ) {
                        step.actions.push(Action::UpdateNodeClaim(c));
                    }
                }
                return;
            }
            drain.drained = true;
            if let Some(c) = claim {
                let mut c = c.clone();
                c.set_true(ConditionType::Drained, now_ms);
                step.actions.push(Action::UpdateNodeClaim(c));
            }
        }
        if let Some(pid) = provider_id {
            if !drain.instance_deleted {
                if let Err(e) = cloud.delete(&pid, now_ms) {
                    step.decisions
                        .push(Decision::ActionFailed(format!("terminate {pid}: {e}")));
                    return;
                }
                drain.instance_deleted = true;
                if let Some(c) = claim {
                    let mut c = c.clone();
                    c.set_true(ConditionType::Drained, now_ms);
                    c.set_true(ConditionType::InstanceTerminating, now_ms);
                    step.actions.push(Action::UpdateNodeClaim(c));
                }
            }
            if !matches!(cloud.get(&pid), Err(CloudError::NotFound(_))) {
                return;
            }
        }
        self.finish(name, claim, step);
    }

    /// Removes the node's and the NodeClaim's finalizers.
    fn finish(&self, name: Sym, claim: Option<&NodeClaim>, step: &mut Step) {
        step.actions.push(Action::RemoveNodeFinalizer { name });
        if let Some(c) = claim {
            step.actions
                .push(Action::RemoveNodeClaimFinalizer { name: c.name });
        }
        step.decisions.push(Decision::Terminated {
            claim: claim.map(|c| c.name),
            node: Some(name),
        });
    }

    /// What the Eviction API answered for a pod this drain asked to evict.
    pub fn eviction_result(
        &mut self,
        pod: PodKey,
        result: EvictionResult,
        now_ms: u64,
    ) -> Vec<Action> {
        let Some(node) = self.evicting.remove(&pod) else {
            return Vec::new();
        };
        let Some(drain) = self.drains.get_mut(&node) else {
            return Vec::new();
        };
        match result {
            EvictionResult::Evicted | EvictionResult::Gone => {
                drain.backoff.remove(&pod);
                Vec::new()
            }
            EvictionResult::Blocked | EvictionResult::MultiplePdbs => {
                let delay = drain
                    .backoff
                    .get(&pod)
                    .map_or(EVICTION_BACKOFF_MIN_MS, |&(_, d)| {
                        (d * 2).min(EVICTION_BACKOFF_MAX_MS)
                    });
                let first = !drain.backoff.contains_key(&pod);
                drain.backoff.insert(pod, (now_ms + delay, delay));
                if !first {
                    return Vec::new();
                }
                let why = if result == EvictionResult::Blocked {
                    "a PodDisruptionBudget allows no disruption now"
                } else {
                    "it is covered by more than one PodDisruptionBudget"
                };
                vec![Action::Event(Event::warning(
                    ObjectRef::pod(pod),
                    EventReason::FailedDraining,
                    format!("Failed to evict pod {pod}: {why}; retrying"),
                ))]
            }
        }
    }
}

/// Evicts the next tier's pods; true while any pod still has to go.
fn drain_pods(
    state: &ClusterState,
    node: NodeId,
    drain: &mut Drain,
    deadline_ms: Option<u64>,
    now_ms: u64,
    step: &mut Step,
    evicting: &mut HashMap<PodKey, NodeId>,
) -> bool {
    let Some(entry) = state.node(node) else {
        return false;
    };
    let mut tiers: [Vec<&Pod>; 4] = Default::default();
    for &p in &entry.pods {
        let Some(e) = state.pod(p) else { continue };
        if tolerates_disruption(&e.pod) {
            continue;
        }
        // Pods already terminating are waited for, not evicted again.
        tiers[tier(&e.pod)].push(&e.pod);
    }
    let Some(current) = tiers.iter().find(|t| !t.is_empty()) else {
        return false;
    };
    let deleting = |key: &PodKey| {
        state
            .pod_id(key)
            .and_then(|id| state.pod(id))
            .is_some_and(|e| e.pod.is_terminating())
    };
    if deadline_ms.is_some_and(|d| now_ms >= d) {
        // Past the NodeClaim's grace period every pod left goes, whatever
        // its tier; those already terminating are on their way.
        for pod in tiers.iter().flatten() {
            let key = pod.key();
            if deleting(&key) {
                continue;
            }
            step.actions.push(Action::DeletePod { pod: key });
            step.actions.push(Action::Event(Event::normal(
                ObjectRef::pod(key),
                EventReason::Disrupted,
                "Deleting the pod to accommodate the terminationTime of the NodeClaim",
            )));
        }
        return true;
    }
    for pod in current {
        let key = pod.key();
        let deleting = deleting(&key);
        if deleting || pod_protected(pod, now_ms / 1000) {
            continue;
        }
        if drain
            .backoff
            .get(&key)
            .is_some_and(|&(next, _)| next > now_ms)
        {
            continue;
        }
        evicting.insert(key, node);
        step.actions.push(Action::EvictPod { pod: key });
    }
    true
}
