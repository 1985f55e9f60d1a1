//! Cloud drift: every 5 minutes every initialised NodeClaim's instance is
//! checked against its node class (image, subnets, security groups…); the
//! answer is kept in the claim's `Drifted` condition, which the disruption
//! engine reads. NodePool and requirement drift the engine finds itself.

use dovetail_core::nodeclaim::{ConditionReason, ConditionStatus, ConditionType};

use crate::actions::Action;
use crate::cloud::CloudProvider;
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::ClusterState;

/// Karpenter's drift re-check.
pub const RECHECK_MS: u64 = 300_000;

#[derive(Debug, Clone, Default)]
pub struct DriftChecker {
    /// When the initialised NodeClaims are next checked.
    next_sweep_ms: u64,
}

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
        self.next_sweep_ms = now_ms + RECHECK_MS;
        for (_, claim) in state.claims() {
            if claim.deleting() || !claim.initialized() {
                continue;
            }
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
        step
    }
}
