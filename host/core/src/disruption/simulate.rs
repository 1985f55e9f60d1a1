//! Scheduling simulation (Karpenter's `SimulateScheduling`): where the pods
//! of some candidates would go without their nodes. Every what-if also
//! places the pods of nodes already leaving.

use crate::model::Pod;
use crate::scheduler::{NodeClaimPlan, NodeIndex, Plan, WhatIf, solve_what_if};

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

/// Why the pods move: consolidation leaves nodes still settling alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Drift,
    Consolidation,
}

impl Engine<'_> {
    /// What-if: the pods of `cands` rescheduled without their nodes.
    pub(super) fn fit(
        &self,
        cands: &[CandidateIndex],
        price_cap: Option<f64>,
        purpose: Purpose,
    ) -> Fit {
        let removed: Vec<NodeIndex> = cands
            .iter()
            .map(|&c| self.candidates[c].node)
            .chain(self.expiring.iter().copied())
            .collect();
        let mut pods: Vec<Pod> = cands
            .iter()
            .flat_map(|&c| self.candidates[c].pods.iter().map(|p| Pod::clone(p)))
            .collect();
        if pods.is_empty() {
            return Fit::Delete;
        }
        let moved = pods.len();
        pods.extend(self.deleting_pods.iter().cloned());
        let what_if = WhatIf {
            removed: &removed,
            closed: match purpose {
                Purpose::Consolidation => &self.settling,
                Purpose::Drift => &[],
            },
            moved,
            price_cap,
        };
        let plan: Plan = solve_what_if(self.snapshot, self.prepared, &pods, &what_if);
        if let Some(u) = plan.unschedulable.first() {
            return Fit::No(format!(
                "pod {} would not fit elsewhere: {}",
                u.pod, u.reason
            ));
        }
        // A node still launching may never come up: a move cannot count on
        // it. Pods of nodes already leaving may, as in Karpenter: that
        // node's replacement is assumed to come up.
        let moved = &pods[..moved];
        if let Some(b) = plan
            .bindings
            .iter()
            .filter(|b| !b.initialized)
            .find(|b| moved.iter().any(|p| p.key() == b.pod))
        {
            return Fit::No(format!(
                "pod {} would schedule against uninitialized node {}",
                b.pod, b.node
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
