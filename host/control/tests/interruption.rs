//! Interruption messages: which delete the NodeClaim ahead of the cloud, which
//! only tell, and what a spot interruption does to later launches.

mod support;

use dovetail_control::actions::{EventReason, ObjectKind};
use dovetail_control::{Decision, Interruption, InterruptionKind};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::sym::Sym;
use support::*;

fn spot_world() -> (World, Sym, String) {
    let mut w = World::new(vec![pool_with("spot", &["m5.large", "m5.xlarge"], "spot")]);
    let (claim, node) = w.existing_node("spot", "m5.large", CapacityType::Spot, 10 * MIN);
    w.run_pod(pod("web").cpu("1").build(), node);
    w.reconcile();
    let pid = w.claim(claim).status.provider_id.clone().unwrap();
    let instance_id = pid.rsplit('/').next().unwrap().to_string();
    (w, claim, instance_id)
}

fn message(kind: InterruptionKind, instance_id: &str) -> Interruption {
    Interruption {
        kind,
        instance_id: instance_id.to_string(),
    }
}

#[test]
fn a_spot_interruption_deletes_the_claim_and_keeps_the_offering_out_for_three_minutes() {
    let (mut w, claim, id) = spot_world();
    let spot_large = offering("m5.large", CapacityType::Spot);
    let spot_xlarge = offering("m5.xlarge", CapacityType::Spot);
    let at = w.now;
    let d = w.interrupt(&message(InterruptionKind::SpotInterruption, &id));
    assert!(matches!(
        d.as_slice(),
        [Decision::Interrupted { claim: c, kind: InterruptionKind::SpotInterruption }] if *c == claim
    ));
    assert!(w.deleting(claim));
    for reason in [
        EventReason::SpotInterrupted,
        EventReason::TerminatingOnInterruption,
    ] {
        let e = w.events(reason);
        assert_eq!(e.len(), 1, "{reason}");
        assert_eq!(
            (e[0].object.kind, e[0].object.name),
            (ObjectKind::NodeClaim, claim)
        );
    }
    assert!(w.ctl.unavailable().is_unavailable(&spot_large, at));
    // The node drains; new pods meanwhile are planned without the offering.
    w.run_for(10 * S, S);
    assert!(!w.has_claim(claim));
    let p = w.pending(pod("api").cpu("1").build());
    let pinned = w.pending(
        pod("pinned")
            .cpu("1")
            .node_selector(dovetail_core::labels::INSTANCE_TYPE, "m5.large")
            .build(),
    );
    w.until("planned", 5 * S, S, |w| w.nominated_claim(p).is_some());
    let c = w.nominated_claim(p).unwrap();
    assert_eq!(keys(&w.claim(c).launch), vec![spot_xlarge]);
    w.run_to(at + 3 * MIN - S);
    assert_eq!(w.nominated_claim(pinned), None, "nothing it may use yet");
    // Three minutes on, the offering is back.
    w.run_to(at + 3 * MIN);
    let again = w.nominated_claim(pinned).expect("planned at 3 minutes");
    assert_eq!(keys(&w.claim(again).launch), vec![spot_large]);
}

#[test]
fn a_rebalance_recommendation_only_emits_an_event() {
    let (mut w, claim, id) = spot_world();
    let before = w.timeline.len();
    let d = w.interrupt(&message(InterruptionKind::RebalanceRecommendation, &id));
    assert!(d.is_empty());
    let new: Vec<_> = w.timeline[before..]
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let e = w.events(EventReason::SpotRebalanceRecommendation);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].object.name, claim);
    w.run_for(MIN, S);
    assert!(!w.deleting(claim));
    assert!(w.ctl.unavailable().is_empty());
}

#[test]
fn a_stopping_instance_deletes_the_claim_but_leaves_the_offering_available() {
    for kind in [
        InterruptionKind::InstanceStopping,
        InterruptionKind::ScheduledChange,
        InterruptionKind::InstanceTerminating,
    ] {
        let (mut w, claim, id) = spot_world();
        w.interrupt(&message(kind, &id));
        assert!(w.deleting(claim), "{kind:?}");
        assert!(w.ctl.unavailable().is_empty(), "{kind:?}");
        assert_eq!(w.events(EventReason::TerminatingOnInterruption).len(), 1);
    }
}

#[test]
fn a_message_for_an_unknown_instance_does_nothing() {
    let (mut w, claim, _) = spot_world();
    let before = w.timeline.len();
    for kind in [
        InterruptionKind::SpotInterruption,
        InterruptionKind::InstanceTerminating,
        InterruptionKind::RebalanceRecommendation,
    ] {
        let d = w.interrupt(&message(kind, "i-0123456789abcdef0"));
        assert!(d.is_empty());
    }
    assert_eq!(w.timeline.len(), before, "no action");
    assert!(!w.deleting(claim));
    assert!(w.ctl.unavailable().is_empty());
}

#[test]
fn a_second_message_for_a_claim_already_going_does_nothing_more() {
    let (mut w, claim, id) = spot_world();
    w.interrupt(&message(InterruptionKind::SpotInterruption, &id));
    assert!(w.deleting(claim));
    let before = w.timeline.len();
    let d = w.interrupt(&message(InterruptionKind::InstanceTerminating, &id));
    assert!(d.is_empty());
    assert_eq!(w.timeline.len(), before);
}

#[test]
fn a_spot_interruption_of_a_claim_read_back_after_a_restart_keeps_its_offering_out() {
    let (mut w, claim, id) = spot_world();
    // The API object holds no launch result: its labels name the offering.
    let mut c = w.claim(claim).clone();
    c.launch.clear();
    c.status.launched = None;
    w.cluster.state.apply_claim(c, w.now);
    w.restart();
    let at = w.now;
    w.interrupt(&message(InterruptionKind::SpotInterruption, &id));
    assert!(w.deleting(claim));
    assert!(
        w.ctl
            .unavailable()
            .is_unavailable(&offering("m5.large", CapacityType::Spot), at)
    );
}
