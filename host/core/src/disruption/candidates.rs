//! Disruption candidates (Karpenter's `GetCandidates`): managed, initialized
//! nodes not already leaving, each with the pods that would have to move and
//! their disruption cost; nodes that cannot be disrupted at all are left out
//! with a reason.

use std::sync::Arc;

use crate::catalog::CapacityType;
use crate::labels;
use crate::model::{Node, NodePool, OwnerKind, Pod, label};
use crate::policy::consolidate::pod_disruption_cost;
use crate::scheduler::{NodeIndex, Snapshot, index_by};
use crate::sym::Sym;

use super::budgets::BudgetReport;
use super::command::Exclusion;
use super::drift::{PoolFacts, drift};
use super::duration::parse_go_duration;
use super::engine::Engine;

/// A candidate's position in a pass's candidates (not a [`NodeIndex`]:
/// most nodes are not candidates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct CandidateIndex(pub usize);

index_by!(CandidateIndex => Candidate);

/// A NodePool's position in [`Snapshot::node_pools`], and so in a pass's
/// budgets, which follow that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PoolIndex(pub usize);

index_by!(PoolIndex => NodePool);
index_by!(PoolIndex => BudgetReport);

/// A disruption candidate.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub node: NodeIndex,
    pub pool: PoolIndex,
    /// Pods that would have to move (not DaemonSet pods).
    pub pods: Vec<Arc<Pod>>,
    pub price: f64,
    pub capacity_type: CapacityType,
    pub instance_type: Sym,
    pub zone: Sym,
    pub disruption_cost: f64,
    pub consolidatable: bool,
    pub drift: Option<String>,
}

/// Whether `pod`'s `karpenter.sh/do-not-disrupt` protects it at `now`:
/// `"true"`, or a duration it has not yet run for. Other values are ignored,
/// as Karpenter ignores them.
pub fn protected_pod(pod: &Pod, now: u64) -> bool {
    match do_not_disrupt(pod) {
        Some(v) if v.as_str() == "true" => true,
        Some(_) => protection_ends(pod).is_some_and(|end| now < end),
        None => false,
    }
}

/// When `pod`'s duration-form `karpenter.sh/do-not-disrupt` runs out (Unix
/// seconds): its start plus the duration. `None` for `"true"`, an invalid
/// value or none.
pub fn protection_ends(pod: &Pod) -> Option<u64> {
    let d = parse_go_duration(do_not_disrupt(pod)?.as_str())?;
    Some(pod.started_at.saturating_add(d.as_secs()))
}

fn do_not_disrupt(pod: &Pod) -> Option<Sym> {
    // By text: this runs for every pod, and interning takes a global lock.
    pod.annotations
        .iter()
        .find(|(k, _)| k.as_str() == labels::DO_NOT_DISRUPT)
        .map(|&(_, v)| v)
}

/// Whether `pod` would need a new place if its node went (Karpenter's
/// `IsReschedulable`): a running pod not owned by a DaemonSet or its node.
/// Finished and terminating pods are going anyway, except a terminating
/// StatefulSet pod: its replacement is only created once it is gone, so it
/// is planned for as if it still ran.
pub(super) fn reschedulable(pod: &Pod) -> bool {
    let stateful = pod.owner.is_some_and(|o| o.kind == OwnerKind::StatefulSet);
    (active(pod) || (stateful && pod.is_terminating())) && !pod.is_daemon() && !pod.is_static()
}

/// Neither finished nor terminating.
fn active(pod: &Pod) -> bool {
    !pod.is_terminal() && !pod.is_terminating()
}

/// Whether `node`'s pods changed within its NodePool's `consolidateAfter`
/// (Karpenter's `IsUnderConsolidateAfter`): consolidation does not move
/// pods onto it yet. `Never` sets no window: such a node is never a
/// candidate, but always a place for moved pods.
pub(super) fn settling(pool: &NodePool, node: &Node, now: u64) -> bool {
    node.initialized
        && pool
            .disruption
            .consolidate_after
            .is_some_and(|after| now.saturating_sub(node.last_pod_event) < after.as_secs())
}

/// The reason a node cannot be disrupted at all, if any.
fn blocked(snapshot: &Snapshot, node: &Node, now: u64) -> Option<String> {
    if label(&node.annotations, Sym::new(labels::DO_NOT_DISRUPT))
        .is_some_and(|v| v.as_str() == "true")
    {
        return Some(format!(
            "node has annotation {}=true",
            labels::DO_NOT_DISRUPT
        ));
    }
    if node.nominated {
        return Some("node is nominated for pending pods".into());
    }
    // A pod on its way out neither protects its node nor needs evicting.
    for pod in node.pods.iter().filter(|p| reschedulable(p) && active(p)) {
        if protected_pod(pod, now) {
            return Some(format!(
                "pod {} has annotation {}",
                pod.key(),
                labels::DO_NOT_DISRUPT
            ));
        }
        let pdbs: Vec<_> = snapshot.pdbs.iter().filter(|b| b.covers(pod)).collect();
        if pdbs.len() > 1 {
            return Some(format!(
                "pod {} is covered by {} PodDisruptionBudgets, so it cannot be evicted",
                pod.key(),
                pdbs.len()
            ));
        }
        if let Some(b) = pdbs.first()
            && b.disruptions_allowed <= 0
        {
            return Some(format!(
                "PodDisruptionBudget {}/{} prevents evicting pod {}",
                b.namespace,
                b.name,
                pod.key()
            ));
        }
    }
    None
}

impl Engine<'_> {
    /// Finds the candidates, and the exclusions with their reasons.
    pub(super) fn collect_candidates(&mut self) {
        let s = self.snapshot;
        let ct_key = Sym::new(labels::CAPACITY_TYPE);
        let it_key = Sym::new(labels::INSTANCE_TYPE);
        let zone_key = Sym::new(labels::ZONE);
        let facts: Vec<PoolFacts> = s.node_pools.iter().map(PoolFacts::new).collect();
        for (i, node) in s.nodes.iter().enumerate() {
            if node.marked_for_deletion
                || !node.initialized
                || self.expiring.contains(&NodeIndex(i))
            {
                continue;
            }
            let Some(p) = self.pool_index(node) else {
                continue;
            };
            let pool = &s.node_pools[p];
            let drift = drift(pool, &facts[p.0], node);
            if drift.is_some() {
                self.drifted.push(NodeIndex(i));
            }
            if let Some(why) = blocked(s, node, self.now) {
                self.pass.exclusions.push(Exclusion {
                    node: node.name,
                    reason: why,
                });
                continue;
            }
            let (Some(instance_type), Some(zone), Some(capacity_type)) = (
                label(&node.labels, it_key),
                label(&node.labels, zone_key),
                label(&node.labels, ct_key).and_then(|c| CapacityType::from_label(c.as_str())),
            ) else {
                self.pass.exclusions.push(Exclusion {
                    node: node.name,
                    reason: "node lacks its instance-type, zone or capacity-type label".into(),
                });
                continue;
            };
            let consolidatable = match pool.disruption.consolidate_after {
                None => false,
                Some(after) => self.now.saturating_sub(node.last_pod_event) >= after.as_secs(),
            };
            let pods: Vec<Arc<Pod>> = node
                .pods
                .iter()
                .filter(|p| reschedulable(p))
                .cloned()
                .collect();
            let disruption_cost = pods
                .iter()
                .map(|p| pod_disruption_cost(p.deletion_cost(), p.priority))
                .sum();
            self.candidates.push(Candidate {
                node: NodeIndex(i),
                pool: p,
                pods,
                price: node.price_per_hour,
                capacity_type,
                instance_type,
                zone,
                disruption_cost,
                consolidatable,
                drift,
            });
        }
    }
}
