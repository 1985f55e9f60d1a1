//! Cloud drift: every 5 minutes each initialised NodeClaim's instance is
//! checked against its node class (image, subnets, security groups…); the
//! answer is kept in the claim's `Drifted` condition, which the disruption
//! engine reads. NodePool and requirement drift the engine finds itself.

use std::collections::HashMap;

use dovetail_core::nodeclaim::{ConditionReason, ConditionStatus, ConditionType};
use dovetail_core::sym::Sym;

use crate::actions::Action;
use crate::cloud::CloudProvider;
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::ClusterState;

/// Karpenter's drift re-check.
pub const RECHECK_MS: u64 = 300_000;

#[derive(Debug, Clone, Default)]
pub struct DriftChecker {
    /// Claim → when it is next checked.
    next: HashMap<Sym, u64>,
    /// Claims are looked at every 10 s, not on every reconcile.
    next_sweep_ms: u64,
}

const SWEEP_MS: u64 = 10_000;

impl DriftChecker {
    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        cloud: &dyn CloudProvider,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        if now_ms < self.next_sweep_ms {
            return step;
        }
        self.next_sweep_ms = now_ms + SWEEP_MS;
        for (_, claim) in state.claims() {
            if claim.deleting() || !claim.initialized() {
                continue;
            }
            let due = self.next.entry(claim.name).or_insert(now_ms);
            if *due > now_ms {
                continue;
            }
            *due = now_ms + RECHECK_MS;
            let drift = match cloud.is_drifted(claim) {
                Ok(d) => d,
                Err(e) => {
                    step.decisions.push(Decision::ActionFailed(format!(
                        "drift check for NodeClaim {}: {e}",
                        claim.name
                    )));
                    continue;
                }
            };
            let mut c = claim.clone();
            let changed = match drift {
                Some(d) => c.set_condition(
                    ConditionType::Drifted,
                    ConditionStatus::True,
                    ConditionReason::Other(d.reason().into()),
                    d.reason(),
                    now_ms,
                ),
                None => c.clear_condition(ConditionType::Drifted),
            };
            if changed {
                step.actions.push(Action::UpdateNodeClaim(c));
            }
        }
        self.next
            .retain(|name, _| state.claim_by_name(*name).is_some());
        step
    }
}
