//! Garbage collection: instances the cloud has that no NodeClaim owns, and
//! registered NodeClaims whose instance is gone.
//!
//! - Instances older than 30 s without a NodeClaim are terminated (and their
//!   Node deleted), checked every 10 s for the first 20 runs, then every
//!   2 minutes (Karpenter's AWS provider).
//! - A registered NodeClaim whose instance the cloud no longer has, and
//!   whose node is not Ready, is deleted, checked every 2 minutes.

use dovetail_core::sym::Sym;

use crate::actions::Action;
use crate::cloud::{CloudError, CloudProvider, InstanceState};
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::ClusterState;

pub const INSTANCE_MIN_AGE_MS: u64 = 30_000;
const FAST_INTERVAL_MS: u64 = 10_000;
const FAST_RUNS: u32 = 20;
const INTERVAL_MS: u64 = 120_000;

#[derive(Debug, Clone, Default)]
pub struct GarbageCollector {
    runs: u32,
    next_instances_ms: u64,
    next_claims_ms: u64,
}

impl GarbageCollector {
    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        if now_ms >= self.next_instances_ms {
            self.runs += 1;
            let interval = if self.runs <= FAST_RUNS {
                FAST_INTERVAL_MS
            } else {
                INTERVAL_MS
            };
            self.next_instances_ms = now_ms + interval;
            self.instances(state, cloud, now_ms, &mut step);
        }
        if now_ms >= self.next_claims_ms {
            self.next_claims_ms = now_ms + INTERVAL_MS;
            claims(state, cloud, &mut step);
        }
        step
    }

    fn instances(
        &self,
        state: &ClusterState,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
        step: &mut Step,
    ) {
        let instances = match cloud.list() {
            Ok(i) => i,
            Err(e) => {
                step.decisions
                    .push(Decision::ActionFailed(format!("list instances: {e}")));
                return;
            }
        };
        for i in instances {
            if matches!(
                i.state,
                InstanceState::ShuttingDown | InstanceState::Terminated
            ) || state.claim_by_provider_id(&i.provider_id).is_some()
                || now_ms.saturating_sub(i.launched_ms) < INSTANCE_MIN_AGE_MS
            {
                continue;
            }
            // A claim created but not yet written back with its provider ID.
            if i.node_claim.and_then(|c| state.claim_by_name(c)).is_some() {
                continue;
            }
            if let Err(e) = cloud.delete(&i.provider_id, now_ms) {
                step.decisions.push(Decision::ActionFailed(format!(
                    "terminate {}: {e}",
                    i.provider_id
                )));
                continue;
            }
            if let Some(n) = state
                .node_by_provider_id(&i.provider_id)
                .and_then(|n| state.node(n))
            {
                step.actions.push(Action::DeleteNode { name: n.node.name });
            }
            step.decisions.push(Decision::InstanceCollected {
                provider_id: i.provider_id,
            });
        }
    }
}

fn claims(state: &ClusterState, cloud: &mut dyn CloudProvider, step: &mut Step) {
    let mut gone: Vec<Sym> = Vec::new();
    for (_, c) in state.claims() {
        if c.deleting() || !c.registered() {
            continue;
        }
        let Some(pid) = &c.status.provider_id else {
            continue;
        };
        if !matches!(cloud.get(pid), Err(CloudError::NotFound(_))) {
            continue;
        }
        let ready = state
            .node_of_claim(c)
            .and_then(|n| state.node(n))
            .is_some_and(|n| n.node.ready);
        if !ready {
            gone.push(c.name);
        }
    }
    for name in gone {
        step.actions.push(Action::DeleteNodeClaim { name });
        step.decisions
            .push(Decision::ClaimCollected { claim: name });
    }
}
