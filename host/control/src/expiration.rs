//! Expiration: a NodeClaim older than its own `expireAfter` (fixed when it
//! was made) is deleted at that moment, forcefully: no budgets, no
//! replacement, no disruption pass. Its pods are provisioned again as it
//! drains.

use std::time::Duration;

use dovetail_core::sym::Sym;

use crate::actions::{Action, Event, EventReason, ObjectRef};
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::ClusterState;

#[derive(Debug, Clone, Default)]
pub struct Expiration {
    /// The state version the next expiry was computed at, and that expiry.
    next: Option<(u64, Option<u64>)>,
}

impl Expiration {
    pub fn reconcile(&mut self, state: &ClusterState, now_ms: u64) -> Step {
        let mut step = Step::default();
        let next = match self.next {
            Some((version, next)) if version == state.version() => next,
            _ => {
                let next = state
                    .claims()
                    .filter(|(_, c)| !c.deleting())
                    .filter_map(|(_, c)| Some(c.created_ms + c.expire_after?.as_millis() as u64))
                    .min();
                self.next = Some((state.version(), next));
                next
            }
        };
        if next.is_none_or(|t| t > now_ms) {
            return step;
        }
        let expired: Vec<(Sym, Duration)> = state
            .claims()
            .filter(|(_, c)| !c.deleting())
            .filter_map(|(_, c)| {
                let after = c.expire_after?;
                (c.created_ms + after.as_millis() as u64 <= now_ms).then_some((c.name, after))
            })
            .collect();
        for (claim, after) in expired {
            step.actions.push(Action::Event(Event::normal(
                ObjectRef::node_claim(claim),
                EventReason::DisruptionTerminating,
                format!(
                    "Disrupting NodeClaim: Expired (expireAfter {}s)",
                    after.as_secs()
                ),
            )));
            step.actions.push(Action::DeleteNodeClaim { name: claim });
            step.decisions.push(Decision::Expired { claim, after });
        }
        step
    }
}
