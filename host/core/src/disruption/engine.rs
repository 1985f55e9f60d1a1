//! One disruption pass: which nodes to remove or replace, and why.
//!
//! Karpenter's order, one method acting per pass: emptiness, drift,
//! multi-node consolidation, single-node consolidation; expiration is
//! forceful and outside budgets. Every fit check is a what-if solve of the
//! provisioning engine over the cluster without the candidates, so the
//! constraints are exactly the scheduler's. The consolidation-scoring port
//! ranks candidates and approves each proposed move.

use super::balanced::PoolPolicies;
use crate::model::{Node, Pod};
use crate::policy::ConsolidationScorer;
use crate::scheduler::{NodeClaimPlan, NodeIndex, Prepared, Snapshot};

use super::budgets::{BudgetReport, DisruptionReason, PoolCounts, budget_report};
use super::candidates::{Candidate, CandidateIndex, PoolIndex, reschedulable, settling};
use super::command::{Command, Method, Pass};
use super::settings::Settings;

/// Runs one disruption pass over `snapshot` at `now` (Unix seconds).
pub fn disrupt(
    snapshot: &Snapshot,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Pass {
    let prepared = Prepared::reusable(snapshot);
    Engine::new(snapshot, &prepared, now, scorer, settings).run()
}

/// As [`disrupt`], with `prepared` made by [`Prepared::reusable`] from this
/// same `snapshot`: a caller that passes over an unchanged cluster again
/// (a simulator) compiles it once.
pub fn disrupt_prepared(
    snapshot: &Snapshot,
    prepared: &Prepared,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Pass {
    Engine::new(snapshot, prepared, now, scorer, settings).run()
}

/// One pass's state: the cluster, the candidates and budgets found in it,
/// and what the methods have decided so far.
pub(super) struct Engine<'a> {
    pub(super) snapshot: &'a Snapshot,
    pub(super) now: u64,
    pub(super) scorer: PoolPolicies<'a>,
    pub(super) settings: &'a Settings,
    pub(super) prepared: &'a Prepared,
    pub(super) candidates: Vec<Candidate>,
    pub(super) budgets: Vec<BudgetReport>,
    /// Nodes this pass expires: gone for every other decision.
    pub(super) expiring: Vec<NodeIndex>,
    /// Pods of nodes already on their way out (marked for deletion or
    /// expiring): every what-if must find them a place too, as Karpenter's
    /// simulation does, or two moves would count on the same room.
    pub(super) deleting_pods: Vec<Pod>,
    /// Drifted nodes, candidates or not.
    pub(super) drifted: Vec<NodeIndex>,
    /// Nodes still settling after a pod event (inside their NodePool's
    /// `consolidateAfter`): consolidation moves no pods onto them.
    pub(super) settling: Vec<NodeIndex>,
    pub(super) pass: Pass,
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        snapshot: &'a Snapshot,
        prepared: &'a Prepared,
        now: u64,
        scorer: &'a dyn ConsolidationScorer,
        settings: &'a Settings,
    ) -> Self {
        let mut engine = Engine {
            snapshot,
            now,
            scorer: PoolPolicies::new(scorer, &snapshot.node_pools),
            settings,
            prepared,
            candidates: Vec::new(),
            budgets: Vec::new(),
            expiring: Vec::new(),
            deleting_pods: Vec::new(),
            drifted: Vec::new(),
            settling: Vec::new(),
            pass: Pass::default(),
        };
        engine.settling = (0..snapshot.nodes.len())
            .map(NodeIndex)
            .filter(|&i| {
                let node = &snapshot.nodes[i];
                engine
                    .pool_index(node)
                    .is_some_and(|p| settling(&snapshot.node_pools[p], node, now))
            })
            .collect();
        engine
    }

    pub(super) fn pool_index(&self, node: &Node) -> Option<PoolIndex> {
        let name = node.node_pool?;
        self.snapshot
            .node_pools
            .iter()
            .position(|p| p.name == name)
            .map(PoolIndex)
    }

    fn run(mut self) -> Pass {
        let s = self.snapshot;
        // Expiration is forceful and independent of the methods below, which
        // then see the expiring nodes as already going.
        self.expire();
        self.expiring = self
            .pass
            .commands
            .iter()
            .flat_map(|c| c.node_indices.iter().copied())
            .collect();
        self.deleting_pods = s
            .nodes
            .iter()
            .enumerate()
            .filter(|&(i, n)| n.marked_for_deletion || self.expiring.contains(&NodeIndex(i)))
            .flat_map(|(_, n)| {
                n.pods
                    .iter()
                    .filter(|p| reschedulable(p))
                    .map(|p| Pod::clone(p))
            })
            .collect();
        self.compute_budgets();
        self.collect_candidates();
        let _ = self.emptiness() || self.drift() || self.multi_node() || self.single_node();
        let going: Vec<NodeIndex> = self
            .pass
            .commands
            .iter()
            .flat_map(|c| c.node_indices.iter().copied())
            .collect();
        self.pass.drifted = self
            .drifted
            .iter()
            .filter(|i| !going.contains(i))
            .map(|&i| s.nodes[i].name)
            .collect();
        self.explain_unconsolidated();
        self.pass.budgets = std::mem::take(&mut self.budgets);
        self.pass
    }

    /// Each NodePool's budgets, in NodePool order, counting the nodes this
    /// pass expires as leaving.
    pub(super) fn compute_budgets(&mut self) {
        let s = self.snapshot;
        for pool in &s.node_pools {
            let mut counts = PoolCounts::default();
            for (i, n) in s.nodes.iter().enumerate() {
                if n.node_pool == Some(pool.name) {
                    counts.add_node(
                        n.ready,
                        n.marked_for_deletion || self.expiring.contains(&NodeIndex(i)),
                    );
                }
            }
            let report = budget_report(pool, counts, self.now);
            if let Some(e) = &report.error {
                self.pass.budget_errors.push(e.to_string());
            }
            self.budgets.push(report);
        }
    }

    pub(super) fn allowed(&self, pool: PoolIndex, reason: DisruptionReason) -> u32 {
        self.budgets[pool].allowed(reason)
    }

    pub(super) fn command(
        &self,
        method: Method,
        reason: DisruptionReason,
        cands: &[CandidateIndex],
        replacements: Vec<NodeClaimPlan>,
        savings: f64,
        (decided_by, policy_reason): (String, String),
    ) -> Command {
        let s = self.snapshot;
        Command {
            method,
            reason: reason.into(),
            nodes: cands
                .iter()
                .map(|&c| s.nodes[self.candidates[c].node].name)
                .collect(),
            node_indices: cands.iter().map(|&c| self.candidates[c].node).collect(),
            replacements,
            savings_per_hour: savings,
            pods_evicted: cands
                .iter()
                .flat_map(|&c| self.candidates[c].pods.iter().map(|p| p.key()))
                .collect(),
            decided_by,
            policy_reason,
        }
    }
}
