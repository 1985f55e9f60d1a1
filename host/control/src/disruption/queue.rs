//! The command queue: a proposed command waits out the validation delay
//! and is validated again (one at a time); a valid one taints its
//! candidates `karpenter.sh/disrupted:NoSchedule`, records why on their
//! NodeClaims and launches its replacements. Several commands can then be
//! executing at once. Once every replacement is initialised the candidates'
//! NodeClaims are deleted and termination drains them; a replacement that
//! is lost, or not initialised within the retry window, makes the command
//! give up: the taints and reasons are taken back.

use std::sync::Arc;

use dovetail_core::catalog::Catalog;
use dovetail_core::disruption::{self, Command, Settings};
use dovetail_core::model::{Taint, TaintEffect};
use dovetail_core::nodeclaim::{ConditionReason, ConditionStatus, ConditionType, DISRUPTED_TAINT};
use dovetail_core::policy::ConsolidationScorer;
use dovetail_core::sym::Sym;

use super::Timings;
use crate::actions::{Action, Event, EventReason, ObjectRef};
use crate::decision::{AbandonReason, Decision};
use crate::lifecycle::Step;
use crate::names::Names;
use crate::snapshot::snapshot;
use crate::state::{ClaimId, ClusterState};
use crate::template;

#[derive(Debug, Clone)]
struct Executing {
    command: Command,
    /// The candidates' NodeClaims.
    candidates: Vec<Sym>,
    replacements: Vec<Sym>,
    started_ms: u64,
}

#[derive(Debug)]
pub struct Queue {
    validation_delay_ms: u64,
    replacement_timeout_ms: u64,
    /// The command waiting out the validation delay, and when it is due.
    proposed: Option<(u64, Command)>,
    executing: Vec<Executing>,
}

/// The NodeClaim behind a snapshot node name.
fn claim_for(state: &ClusterState, node: Sym) -> Option<ClaimId> {
    state
        .node_by_name(node)
        .and_then(|n| state.claim_of_node(n))
        .or_else(|| state.claim_id(node))
}

fn disrupted_taint() -> Taint {
    Taint {
        key: Sym::new(DISRUPTED_TAINT),
        value: None,
        effect: TaintEffect::NoSchedule,
    }
}

/// Deletes the command's NodeClaims: termination takes it from here.
pub fn execute(state: &ClusterState, command: Command, replacements: Vec<Sym>) -> Step {
    let mut step = Step::default();
    for &node in &command.nodes {
        let Some(claim) = claim_for(state, node).and_then(|c| state.claim(c)) else {
            continue;
        };
        step.actions.push(Action::Event(Event::normal(
            ObjectRef::node_claim(claim.name),
            EventReason::DisruptionTerminating,
            format!("Disrupting NodeClaim: {}", command.reason),
        )));
        step.actions
            .push(Action::DeleteNodeClaim { name: claim.name });
    }
    step.decisions.push(Decision::Disrupting {
        command,
        replacements,
    });
    step
}

impl Queue {
    pub fn new(t: &Timings) -> Self {
        Self {
            validation_delay_ms: t.validation_delay_ms,
            replacement_timeout_ms: t.replacement_timeout_ms,
            proposed: None,
            executing: Vec::new(),
        }
    }

    pub fn validating(&self) -> bool {
        self.proposed.is_some()
    }

    pub fn propose(&mut self, command: Command, now_ms: u64) {
        self.proposed = Some((now_ms + self.validation_delay_ms, command));
    }

    /// Whether `name` (a NodeClaim, or a node without one) is a candidate
    /// of an executing command.
    pub fn holds(&self, name: Sym) -> bool {
        self.executing
            .iter()
            .any(|e| e.candidates.contains(&name) || e.command.nodes.contains(&name))
    }

    pub fn is_replacement(&self, claim: Sym) -> bool {
        self.executing
            .iter()
            .any(|e| e.replacements.contains(&claim))
    }

    pub fn executing(&self) -> usize {
        self.executing.len()
    }

    /// After the validation delay: the command is checked against the
    /// cluster as it is now and, if it still holds, started.
    pub fn validate_due(
        &mut self,
        state: &ClusterState,
        catalog: &Arc<Catalog>,
        scorer: &dyn ConsolidationScorer,
        settings: &Settings,
        names: &mut Names,
        now_ms: u64,
    ) -> Option<Step> {
        let (due, _) = self.proposed.as_ref()?;
        if *due > now_ms {
            return None;
        }
        let (_, command) = self.proposed.take()?;
        let view = snapshot(state, catalog, true, now_ms);
        if let Err(e) =
            disruption::validate(&command, &view.snapshot, now_ms / 1000, scorer, settings)
        {
            let mut step = Step::default();
            step.decisions.push(Decision::CommandInvalidated {
                command,
                why: e.to_string(),
            });
            return Some(step);
        }
        Some(self.start(state, command, names, now_ms))
    }

    fn start(
        &mut self,
        state: &ClusterState,
        command: Command,
        names: &mut Names,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        let mut candidates = Vec::new();
        for &node in &command.nodes {
            if let Some(n) = state.node_by_name(node) {
                step.actions.push(Action::TaintNode {
                    name: n.node.name,
                    taint: disrupted_taint(),
                });
            }
            if let Some(claim) = claim_for(state, node).and_then(|c| state.claim(c)) {
                let mut c = claim.clone();
                c.set_condition(
                    ConditionType::DisruptionReason,
                    ConditionStatus::True,
                    ConditionReason::Other(command.reason.to_string()),
                    "",
                    now_ms,
                );
                step.actions.push(Action::UpdateNodeClaim(c));
                candidates.push(claim.name);
            }
        }
        let mut replacements = Vec::new();
        for plan in &command.replacements {
            let pool = state.node_pool(plan.node_pool);
            let name = names.next(plan.node_pool.as_str(), state, &replacements);
            replacements.push(name);
            step.actions
                .push(Action::CreateNodeClaim(template::node_claim(
                    name,
                    plan,
                    pool,
                    plan.offerings.clone(),
                    now_ms,
                )));
            step.actions.push(Action::Event(Event::normal(
                ObjectRef::node_claim(name),
                EventReason::DisruptionLaunching,
                format!("Launching NodeClaim: {}", command.reason),
            )));
        }
        step.decisions.push(Decision::CommandStarted {
            command: command.clone(),
            replacements: replacements.clone(),
        });
        if replacements.is_empty() {
            step.extend(execute(state, command, replacements));
        } else {
            self.executing.push(Executing {
                command,
                candidates,
                replacements,
                started_ms: now_ms,
            });
        }
        step
    }

    /// Hands commands whose replacements are all initialised to
    /// termination; gives up on those that lost one or ran out of time.
    pub fn advance(&mut self, state: &ClusterState, now_ms: u64) -> Step {
        let mut step = Step::default();
        for e in std::mem::take(&mut self.executing) {
            let lost = e
                .replacements
                .iter()
                .copied()
                .find(|&r| state.claim_by_name(r).is_none_or(|c| c.deleting()));
            let ready = e
                .replacements
                .iter()
                .all(|&r| state.claim_by_name(r).is_some_and(|c| c.initialized()));
            if let Some(r) = lost {
                step.extend(give_up(state, e, AbandonReason::ReplacementLost(r)));
            } else if ready {
                step.extend(execute(state, e.command, e.replacements));
            } else if now_ms.saturating_sub(e.started_ms) >= self.replacement_timeout_ms {
                step.extend(give_up(state, e, AbandonReason::ReplacementTimeout));
            } else {
                self.executing.push(e);
            }
        }
        step
    }
}

/// Takes back a command's taints and reasons from candidates not being
/// deleted.
fn give_up(state: &ClusterState, e: Executing, why: AbandonReason) -> Step {
    let mut step = Step::default();
    for &node in &e.command.nodes {
        let claim = claim_for(state, node).and_then(|c| state.claim(c));
        if claim.is_some_and(|c| c.deleting()) {
            continue;
        }
        if let Some(n) = state.node_by_name(node)
            && n.deletion_ms.is_none()
        {
            step.actions.push(Action::UntaintNode {
                name: n.node.name,
                key: Sym::new(DISRUPTED_TAINT),
            });
        }
        if let Some(c) = claim {
            let mut c = c.clone();
            if c.clear_condition(ConditionType::DisruptionReason) {
                step.actions.push(Action::UpdateNodeClaim(c));
            }
        }
    }
    step.decisions.push(Decision::CommandAbandoned {
        command: e.command,
        why,
    });
    step
}
