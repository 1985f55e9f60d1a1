//! The provisioner: waiting pods are batched, planned with the decision
//! core in one round, and turned into NodeClaims with their launch lists
//! and nominations.

use std::collections::HashMap;
use std::sync::Arc;

use dovetail_core::catalog::Catalog;
use dovetail_core::clock::ManualClock;
use dovetail_core::model::{Pod, PodKey};
use dovetail_core::policy::InstanceSelector;
use dovetail_core::scheduler::{Plan, provision};
use dovetail_core::sym::Sym;

use crate::actions::{Action, Event, EventReason, NominationTarget, ObjectRef};
use crate::batcher::Batcher;
use crate::decision::{CreatedClaim, Decision};
use crate::names::Names;
use crate::snapshot::{Slot, View, snapshot};
use crate::state::ClusterState;
use crate::template;

#[derive(Debug, Clone)]
pub struct Provisioner {
    batcher: Batcher,
    seed: u64,
    /// When the last round ran, the pending set's last change then, and
    /// the catalog view's key.
    last_round: Option<(u64, u64, u64)>,
}

/// Pods a round could not place are planned again this often while neither
/// the pending pods nor the offerings change (Karpenter retriggers
/// provisionable pods every 10 s).
pub const RETRY_MS: u64 = 10_000;

/// What one reconcile of the provisioner produced.
#[derive(Debug, Default)]
pub struct Round {
    pub actions: Vec<Action>,
    pub decisions: Vec<Decision>,
}

/// Nominations for the pods a plan put on nodes or NodeClaims already in
/// `view`: they wait there instead of being provisioned again.
pub fn nominations(state: &ClusterState, view: &View, plan: &Plan) -> Vec<Action> {
    let mut onto: HashMap<Sym, Vec<PodKey>> = HashMap::new();
    for b in &plan.bindings {
        onto.entry(b.node).or_default().push(b.pod);
    }
    let mut targets: Vec<(Sym, Vec<PodKey>)> = onto.into_iter().collect();
    targets.sort_by_key(|(n, _)| *n);
    let mut actions = Vec::new();
    for (name, pods) in targets {
        let target = match view.slot(name) {
            Some(Slot::Claim(id)) => match state.claim(id) {
                Some(c) => NominationTarget::NodeClaim(c.name),
                None => continue,
            },
            Some(Slot::Node(_)) => NominationTarget::Node(name),
            None => continue,
        };
        actions.push(Action::Nominate { pods, target });
    }
    actions
}

impl Provisioner {
    pub fn new(batch_idle_ms: u64, batch_max_ms: u64, seed: u64) -> Self {
        Self {
            batcher: Batcher::new(batch_idle_ms, batch_max_ms),
            seed,
            last_round: None,
        }
    }

    /// Once the batch window closes: plans the waiting pods, nominates those
    /// that fit on nodes or NodeClaims already there, and creates a
    /// NodeClaim for each planned one the instance-selection policy found a
    /// launch list for.
    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        catalog: &Arc<Catalog>,
        catalog_key: u64,
        selector: &dyn InstanceSelector,
        names: &mut Names,
        now_ms: u64,
    ) -> Round {
        let waiting = state.waiting(now_ms);
        if let Some((at, change, key)) = self.last_round
            && change == state.last_pending_change_ms()
            && key == catalog_key
            && now_ms < at + RETRY_MS
        {
            return Round::default();
        }
        if !self
            .batcher
            .ready(now_ms, !waiting.is_empty(), state.last_pending_change_ms())
        {
            return Round::default();
        }
        self.last_round = Some((now_ms, state.last_pending_change_ms(), catalog_key));
        let view = snapshot(state, catalog, true, now_ms);
        let pods: Vec<Pod> = waiting
            .iter()
            .filter_map(|&p| state.pod(p))
            .map(|e| Pod::clone(&e.pod))
            .collect();
        let clock = ManualClock::new(now_ms);
        let round = provision(&view.snapshot, &pods, selector, &clock, self.seed ^ now_ms);
        let mut actions = nominations(state, &view, &round.plan);
        let mut claims = Vec::new();
        let mut created = Vec::new();
        for (plan, launch) in round.plan.node_claims.iter().zip(&round.launch.launches) {
            let Ok(offerings) = launch else { continue };
            let pool = state.node_pool(plan.node_pool);
            let name = names.next(plan.node_pool.as_str(), state, &claims);
            claims.push(name);
            let claim = template::node_claim(name, plan, pool, offerings.clone(), now_ms);
            created.push(CreatedClaim::new(&claim, plan.pods.len()));
            actions.push(Action::CreateNodeClaim(claim));
            actions.push(Action::Nominate {
                pods: plan.pods.clone(),
                target: NominationTarget::NodeClaim(name),
            });
        }
        let mut decisions = Vec::new();
        if !round.plan.node_claims.is_empty() {
            decisions.push(Decision::Provisioned {
                // The pods the new claims are for: waiting pods that fit
                // nowhere, or fit a node already there, are not.
                pods: created.iter().map(|c| c.pods).sum(),
                claims: created,
                decided_by: round.launch.by.clone(),
                fallback: round.launch.fallback.clone(),
            });
        }
        if !round.plan.unschedulable.is_empty() {
            for u in &round.plan.unschedulable {
                actions.push(Action::Event(Event::warning(
                    ObjectRef::pod(u.pod),
                    EventReason::FailedScheduling,
                    format!("Failed to schedule pod: {}", u.reason),
                )));
            }
            decisions.push(Decision::Unschedulable {
                pods: round
                    .plan
                    .unschedulable
                    .iter()
                    .map(|u| (u.pod, u.reason.clone()))
                    .collect(),
            });
        }
        Round { actions, decisions }
    }
}
