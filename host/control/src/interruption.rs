//! Interruption messages (EC2 spot interruption warnings, rebalance
//! recommendations, scheduled changes, instance state changes): the
//! NodeClaim of the instance is deleted ahead of the cloud taking it, and a
//! reclaimed spot offering leaves launch plans for the unavailable-offering
//! window.

use dovetail_core::catalog::CapacityType;

use crate::actions::{Action, Event, EventReason, ObjectRef};
use crate::cloud::OfferingKey;
use crate::decision::Decision;
use crate::lifecycle::Step;
use crate::state::ClusterState;
use crate::unavailable::UnavailableOfferings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterruptionKind {
    SpotInterruption,
    RebalanceRecommendation,
    ScheduledChange,
    InstanceStopping,
    InstanceTerminating,
    CapacityReservationInterruption,
}

/// One message about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub kind: InterruptionKind,
    /// The EC2 instance ID (`i-…`), the last segment of the provider ID.
    pub instance_id: String,
}

pub fn handle(
    state: &ClusterState,
    unavailable: &mut UnavailableOfferings,
    message: &Interruption,
    now_ms: u64,
) -> Step {
    let mut step = Step::default();
    let suffix = format!("/{}", message.instance_id);
    let Some((_, claim)) = state.claims().find(|(_, c)| {
        c.status
            .provider_id
            .as_deref()
            .is_some_and(|p| p.ends_with(&suffix))
    }) else {
        return step;
    };
    if claim.deleting() {
        return step;
    }
    let object = ObjectRef::node_claim(claim.name);
    let (reason, text) = match message.kind {
        InterruptionKind::SpotInterruption => (
            EventReason::SpotInterrupted,
            "Spot interruption warning was triggered",
        ),
        InterruptionKind::RebalanceRecommendation => {
            step.actions.push(Action::Event(Event::normal(
                object,
                EventReason::SpotRebalanceRecommendation,
                "Spot rebalance recommendation was triggered",
            )));
            return step;
        }
        InterruptionKind::ScheduledChange => (
            EventReason::InstanceTerminating,
            "A scheduled change will stop or terminate the instance",
        ),
        InterruptionKind::InstanceStopping => {
            (EventReason::InstanceStopping, "Instance is stopping")
        }
        InterruptionKind::InstanceTerminating => {
            (EventReason::InstanceTerminating, "Instance is terminating")
        }
        InterruptionKind::CapacityReservationInterruption => (
            EventReason::InstanceTerminating,
            "Capacity reservation interruption warning was triggered",
        ),
    };
    if message.kind == InterruptionKind::SpotInterruption
        && let Some(l) = claim.offering(None)
    {
        unavailable.mark(
            OfferingKey {
                capacity_type: CapacityType::Spot,
                instance_type: l.instance_type,
                zone: l.zone,
            },
            now_ms,
        );
    }
    step.actions
        .push(Action::Event(Event::warning(object.clone(), reason, text)));
    step.actions.push(Action::Event(Event::warning(
        object,
        EventReason::TerminatingOnInterruption,
        "Interruption triggered termination for the NodeClaim",
    )));
    step.actions
        .push(Action::DeleteNodeClaim { name: claim.name });
    step.decisions.push(Decision::Interrupted {
        claim: claim.name,
        kind: message.kind,
    });
    step
}
