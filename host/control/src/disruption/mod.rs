//! Disruption orchestration: when to run a pass of the decision core's
//! disruption engine ([`gate`]), and what to do with the command it
//! returns ([`queue`]): wait out the validation delay, validate again, taint
//! the candidates, launch replacements, wait for them to initialise, then
//! hand the candidates to termination — or give up and take the taints back.

pub mod gate;
pub mod queue;

use std::sync::Arc;

use dovetail_core::catalog::Catalog;
use dovetail_core::disruption::{self, Method, Settings};
use dovetail_core::nodeclaim::{ConditionType, DISRUPTED_TAINT};
use dovetail_core::policy::ConsolidationScorer;
use dovetail_core::scheduler::{Prepared, Snapshot};
use dovetail_core::sym::Sym;

use crate::actions::Action;
use crate::decision::{Decision, PassReport};
use crate::lifecycle::Step;
use crate::names::Names;
use crate::snapshot::snapshot;
use crate::state::ClusterState;

pub use gate::Gate;
pub use queue::Queue;

/// Karpenter's timings.
#[derive(Debug, Clone)]
pub struct Timings {
    /// How often a pass may run.
    pub poll_ms: u64,
    /// A command is validated again this long after it was proposed.
    pub validation_delay_ms: u64,
    /// A "consolidated" cluster (unchanged since a pass that found nothing)
    /// is looked at again after this long.
    pub consolidation_recheck_ms: u64,
    /// Replacements must initialise within this window.
    pub replacement_timeout_ms: u64,
    /// Pods pending for less than this mean a provisioning round is in
    /// flight (the batch window's maximum).
    pub provisioning_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            poll_ms: 10_000,
            validation_delay_ms: 15_000,
            consolidation_recheck_ms: 300_000,
            replacement_timeout_ms: 600_000,
            provisioning_ms: 10_000,
        }
    }
}

/// The disruption controller's memory between reconciles.
#[derive(Debug)]
pub struct Disruption {
    timings: Timings,
    settings: Settings,
    gate: Gate,
    queue: Queue,
    /// The last pass's cluster, by cluster key.
    pass_cache: Option<((u64, u64), Snapshot, Prepared)>,
    /// Leftover taints are looked for once per poll interval.
    next_cleanup_ms: u64,
}

impl Disruption {
    pub fn new(timings: Timings, settings: Settings) -> Self {
        Self {
            gate: Gate::new(&timings),
            queue: Queue::new(&timings),
            timings,
            settings,
            pass_cache: None,
            next_cleanup_ms: 0,
        }
    }

    /// Commands started and not yet handed to termination or given up.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// `catalog_key` changes whenever the catalog view does.
    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        catalog: &Arc<Catalog>,
        catalog_key: u64,
        scorer: &dyn ConsolidationScorer,
        names: &mut Names,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        if now_ms >= self.next_cleanup_ms {
            self.next_cleanup_ms = now_ms + self.timings.poll_ms;
            step.actions.extend(self.stale_taints(state));
        }
        step.extend(self.queue.advance(state, now_ms));
        if self.queue.validating() {
            self.gate.skip(now_ms);
            if let Some(s) =
                self.queue
                    .validate_due(state, catalog, scorer, &self.settings, names, now_ms)
            {
                step.extend(s);
            }
            return step;
        }
        let key = (state.version(), catalog_key);
        let Some(settings) = self
            .gate
            .open(state, &self.settings, &self.queue, key, now_ms)
        else {
            return step;
        };
        let cached = self.pass_cache.take().filter(|(k, _, _)| *k == key);
        let (key, snap, prepared) = match cached {
            Some(c) => c,
            None => {
                let view = snapshot(state, catalog, true, now_ms);
                let prepared = Prepared::reusable(&view.snapshot);
                (key, view.snapshot, prepared)
            }
        };
        let mut pass =
            disruption::disrupt_prepared(&snap, &prepared, now_ms / 1000, scorer, &settings);
        self.pass_cache = Some((key, snap, prepared));
        let drifted = !pass.drifted.is_empty();
        // Expiration is the expiration controller's, by each NodeClaim's
        // own `expireAfter`; a pass's expiration commands are left to it.
        let voluntary = std::mem::take(&mut pass.commands)
            .into_iter()
            .find(|c| c.method != Method::Expiration);
        step.decisions.push(Decision::Pass(Box::new(PassReport::new(
            pass,
            voluntary.as_ref(),
            settings.single_node_only,
        ))));
        match voluntary {
            Some(command) => self.queue.propose(command, now_ms),
            None => self.gate.consolidated(state, key, drifted, now_ms),
        }
        step
    }

    /// `karpenter.sh/disrupted` taints and `DisruptionReason` conditions on
    /// nodes that are neither being deleted nor part of a running command:
    /// left by a command given up while the controller was down. Taken back.
    fn stale_taints(&self, state: &ClusterState) -> Vec<Action> {
        let mut actions = Vec::new();
        for (_, n) in state.nodes() {
            if n.deletion_ms.is_some() {
                continue;
            }
            let claim = state.claim_of_node(n).and_then(|c| state.claim(c));
            let reason = claim.filter(|c| c.condition(ConditionType::DisruptionReason).is_some());
            if !n.has_taint(DISRUPTED_TAINT) && reason.is_none() {
                continue;
            }
            if claim.is_some_and(|c| c.deleting() || self.queue.holds(c.name)) {
                continue;
            }
            if claim.is_none() && self.queue.holds(n.node.name) {
                continue;
            }
            if n.has_taint(DISRUPTED_TAINT) {
                actions.push(Action::UntaintNode {
                    name: n.node.name,
                    key: Sym::new(DISRUPTED_TAINT),
                });
            }
            if let Some(c) = reason {
                let mut c = c.clone();
                c.clear_condition(ConditionType::DisruptionReason);
                actions.push(Action::UpdateNodeClaim(c));
            }
        }
        actions
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }
}
