//! Scheduling simulation (Karpenter's `SimulateScheduling`): where the pods
//! of some candidates would go without their nodes. Every what-if also
//! places the pods of nodes already leaving.

use crate::model::Pod;
use crate::scheduler::{NodeClaimPlan, NodeIndex, Plan, solve_without};

use super::candidates::CandidateIndex;
use super::engine::Engine;

/// The outcome of a what-if without some nodes.
pub(super) enum Fit {
    /// Every pod fits on the remaining nodes.
    Delete,
    /// Every pod fits with these new NodeClaims.
    Replace(Vec<NodeClaimPlan>),
    No(String),
}

impl Engine<'_> {
    /// What-if: the pods of `cands` rescheduled without their nodes.
    pub(super) fn fit(&self, cands: &[CandidateIndex], price_cap: Option<f64>) -> Fit {
        let removed: Vec<NodeIndex> = cands
            .iter()
            .map(|&c| self.candidates[c].node)
            .chain(self.expiring.iter().copied())
            .collect();
        let mut pods: Vec<Pod> = cands
            .iter()
            .flat_map(|&c| self.candidates[c].pods.iter().cloned())
            .collect();
        if pods.is_empty() {
            return Fit::Delete;
        }
        pods.extend(self.deleting_pods.iter().cloned());
        let plan: Plan = solve_without(self.snapshot, self.prepared, &pods, &removed, price_cap);
        if let Some(u) = plan.unschedulable.first() {
            return Fit::No(format!(
                "pod {} would not fit elsewhere: {}",
                u.pod, u.reason
            ));
        }
        if plan.node_claims.is_empty() {
            Fit::Delete
        } else if plan.node_claims.iter().any(|c| c.offerings.is_empty()) {
            Fit::No("no replacement is cheaper".into())
        } else {
            Fit::Replace(plan.node_claims)
        }
    }
}
