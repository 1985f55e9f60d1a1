//! Provisioning: when pending pods are planned, and that each is planned
//! once.

mod support;

use dovetail_control::{Action, Decision, NominationTarget};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::PodPhase;
use support::*;

fn world() -> World {
    World::new(vec![pool("default", &["m5.large", "m5.xlarge"])])
}

fn provisioned(w: &World) -> Vec<(u64, usize)> {
    w.decided(|d| matches!(d, Decision::Provisioned { .. }))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::Provisioned { pods, .. } => (t, pods),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_lone_pod_is_planned_after_one_quiet_second() {
    let mut w = world();
    let p = w.pending(pod("web").cpu("1").memory("1Gi").build());
    w.reconcile();
    w.run_for(900, 100);
    assert!(w.claim_names().is_empty(), "still collecting at +0.9 s");
    w.run_for(100, 100);
    assert_eq!(provisioned(&w), vec![(START + S, 1)]);
    let claim = w.claim_names()[0];
    assert_eq!(w.nominated_claim(p), Some(claim));
    assert!(w.claim(claim).launched(), "launched in the same reconcile");
}

#[test]
fn each_new_pod_restarts_the_quiet_second() {
    let mut w = world();
    w.pending(pod("a").cpu("1").build());
    w.reconcile();
    w.run_for(600, 100);
    w.pending(pod("b").cpu("1").build());
    w.run_for(900, 100);
    assert!(w.claim_names().is_empty(), "1 s after a, 0.9 s after b");
    w.run_for(100, 100);
    assert_eq!(provisioned(&w), vec![(START + 1_600, 2)]);
}

#[test]
fn a_steady_stream_of_pods_is_planned_at_ten_seconds() {
    let mut w = world();
    let mut pods = Vec::new();
    // A new pod every half second: the window never goes quiet.
    for i in 0..20 {
        pods.push(w.pending(pod(&format!("stream-{i}")).cpu("100m").build()));
        if i == 0 {
            w.reconcile();
        }
        w.run_for(500, 100);
        if i < 19 {
            assert!(
                w.claim_names().is_empty(),
                "cut early at +{} ms",
                w.now - START
            );
        }
    }
    assert_eq!(w.now, START + 10 * S);
    assert_eq!(provisioned(&w), vec![(START + 10 * S, 20)]);
    for p in pods {
        assert!(w.nominated_claim(p).is_some(), "{p:?} is planned");
    }
}

#[test]
fn a_burst_of_pods_is_planned_in_one_round() {
    let mut w = world();
    let pods: Vec<_> = pod("burst")
        .cpu("1")
        .memory("1Gi")
        .build_many(30)
        .into_iter()
        .map(|p| w.pending(p))
        .collect();
    w.run_for(5 * S, S);
    let rounds = provisioned(&w);
    assert_eq!(rounds, vec![(START + S, 30)]);
    let claims = w.claim_names();
    assert!(claims.len() > 1, "30 CPUs do not fit one m5.xlarge");
    assert_eq!(w.cloud.create_calls, claims, "each claim launched once");
    for p in pods {
        let c = w.nominated_claim(p).expect("every pod nominated");
        assert!(claims.contains(&c));
    }
}

#[test]
fn pods_nominated_to_a_launching_node_claim_are_not_planned_again() {
    let mut w = world();
    let pods: Vec<_> = pod("web")
        .cpu("1")
        .build_many(3)
        .into_iter()
        .map(|p| w.pending(p))
        .collect();
    w.run_for(S, S);
    let claims = w.claim_names();
    assert_eq!(claims.len(), 1);
    // The instance takes its time to register; the pods stay pending.
    w.run_for(3 * MIN, S);
    assert_eq!(provisioned(&w).len(), 1, "one round only");
    assert_eq!(w.claim_names(), claims);
    assert_eq!(w.cloud.create_calls.len(), 1);
    for p in &pods {
        assert!(w.state().pending().contains(p));
        assert_eq!(w.nominated_claim(*p), Some(claims[0]));
    }
    // Once the node is up, kube-scheduler binds them; nothing new either.
    let node = w.bring_up(claims[0]);
    for p in &pods {
        w.cluster.state.bind(*p, node, w.now);
    }
    w.run_for(MIN, S);
    assert_eq!(provisioned(&w).len(), 1);
    assert_eq!(w.claim_names(), claims);
}

#[test]
fn pods_of_a_deleted_node_claim_are_planned_again() {
    let mut w = world();
    let pods: Vec<_> = pod("web")
        .cpu("1")
        .build_many(2)
        .into_iter()
        .map(|p| w.pending(p))
        .collect();
    w.run_for(S, S);
    let first = w.claim_names()[0];
    w.run_for(10 * S, S);
    let deleted_at = w.now;
    w.act(Action::DeleteNodeClaim { name: first });
    for p in &pods {
        assert_eq!(w.nominated_claim(*p), None, "the nomination is gone");
    }
    w.reconcile();
    assert!(!w.has_claim(first), "never registered: released at once");
    assert_eq!(provisioned(&w).len(), 1, "not before a quiet second");
    w.run_for(S, S);
    let rounds = provisioned(&w);
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[1], (deleted_at + S, 2));
    let second = *w.claim_names().last().unwrap();
    assert_ne!(second, first);
    for p in &pods {
        assert_eq!(w.nominated_claim(*p), Some(second));
    }
}

#[test]
fn a_pod_that_fits_on_a_running_node_is_nominated_to_it_without_a_new_node_claim() {
    let mut w = world();
    let (claim, _) = w.existing_node("default", "m5.xlarge", CapacityType::OnDemand, 10 * MIN);
    let p = w.pending(pod("web").cpu("1").build());
    w.run_for(2 * S, S);
    assert_eq!(w.claim_names(), vec![claim], "no new NodeClaim");
    assert!(w.cloud.create_calls.is_empty());
    assert_eq!(w.nominated_claim(p), Some(claim));
    let nominations = w.actions(|a| matches!(a, Action::Nominate { .. }));
    assert_eq!(nominations.len(), 1, "{nominations:?}");
    assert!(matches!(
        &nominations[0].1,
        Action::Nominate { target: NominationTarget::NodeClaim(c), .. } if *c == claim
    ));
}

#[test]
fn a_finished_pod_leaves_its_room_to_pending_pods() {
    let mut w = world();
    let (claim, node) = w.existing_node("default", "m5.xlarge", CapacityType::OnDemand, 10 * MIN);
    // A Job's pod that completed: it stays bound until deleted, but its
    // requests no longer take room on the node (kube-scheduler ignores it).
    let mut done = pod("report-1").cpu("3").build();
    done.phase = PodPhase::Succeeded;
    w.run_pod(done, node);
    let p = w.pending(pod("web").cpu("2").build());
    w.run_for(2 * S, S);
    assert_eq!(w.claim_names(), vec![claim], "no new NodeClaim");
    assert!(w.cloud.create_calls.is_empty());
    assert_eq!(w.nominated_claim(p), Some(claim));
}

#[test]
fn a_pod_that_lost_its_nominated_room_is_planned_again_when_the_nomination_lapses() {
    let mut w = world();
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    let p = w.pending(pod("web").cpu("1").build());
    w.run_for(2 * S, S);
    assert_eq!(
        w.nominated_claim(p),
        Some(claim),
        "room on the running node"
    );
    // Something else takes that room before kube-scheduler binds the pod.
    w.run_pod(pod("other").cpu("1500m").build(), node);
    w.run_to(START + 20 * S);
    assert_eq!(w.claim_names(), vec![claim], "the nomination still holds");
    // Karpenter's window: 20 s after the nomination it lapses and the pod is
    // provisioned again, on a new NodeClaim.
    w.run_to(START + 22 * S);
    let names = w.claim_names();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(w.nominated_claim(p), Some(names[1]));
    let rounds = provisioned(&w);
    assert_eq!(
        rounds.last().map(|r| r.0),
        Some(START + 21 * S),
        "{rounds:?}"
    );
}

#[test]
fn a_pod_that_cannot_be_placed_is_planned_again_every_ten_seconds() {
    let mut w = world();
    w.pending(pod("huge").cpu("64").build());
    w.run_for(35 * S, S);
    // No NodeClaim can hold it; each round says why, on the pod too, and the
    // pod is looked at again every 10 s, not on every reconcile.
    assert!(w.claim_names().is_empty());
    let rounds: Vec<u64> = w
        .decided(|d| matches!(d, Decision::Unschedulable { .. }))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        rounds,
        vec![START + S, START + 11 * S, START + 21 * S, START + 31 * S]
    );
    let events = w.events(dovetail_control::actions::EventReason::FailedScheduling);
    assert_eq!(events.len(), 4);
    assert!(events[0].object.name.as_str().starts_with("huge"));
    assert!(
        events[0]
            .message
            .contains("no instance type has room for cpu 64"),
        "{}",
        events[0].message
    );
}

#[test]
fn a_provisioning_decision_carries_each_launch_list_and_requirements() {
    let mut w = world();
    w.pending(pod("web").cpu("1").memory("1Gi").build());
    w.reconcile();
    w.run_for(1_000, 100);
    let decided = w.decided(|d| matches!(d, Decision::Provisioned { .. }));
    let [(_, Decision::Provisioned { claims, .. })] = &decided[..] else {
        panic!("one round: {decided:?}")
    };
    let [created] = &claims[..] else {
        panic!("one NodeClaim: {claims:?}")
    };
    let claim = w.claim(created.name);
    assert_eq!(created.node_pool, Some(sym("default")));
    assert_eq!(created.pods, 1);
    assert_eq!(created.requirements, claim.requirements);
    assert_eq!(created.launch, claim.launch, "every offering sent");
    // Both types of the NodePool, in its one zone, on-demand.
    assert_eq!(
        keys(&created.launch),
        [
            offering("m5.large", CapacityType::OnDemand),
            offering("m5.xlarge", CapacityType::OnDemand)
        ]
    );
}

#[test]
fn a_provisioning_decision_counts_only_the_pods_its_claims_are_for() {
    let mut w = world();
    w.pending(pod("web").cpu("1").build());
    w.pending(pod("huge").cpu("500").build());
    w.reconcile();
    w.run_for(1_000, 100);
    let decided = w.decided(|d| matches!(d, Decision::Provisioned { .. }));
    let [(_, Decision::Provisioned { pods, claims, .. })] = &decided[..] else {
        panic!("one round: {decided:?}")
    };
    assert_eq!(claims.len(), 1);
    assert_eq!(*pods, 1, "the pod that fits nowhere is not among them");
}
