//! Termination: a deleted NodeClaim's node is drained in Karpenter's tiers,
//! honouring budgets and do-not-disrupt up to the grace period; then the
//! instance is terminated and the finalizers removed.

mod support;

use std::time::Duration;

use dovetail_control::actions::EventReason;
use dovetail_control::{Action, CreateError, NodeId};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::{LabelSelector, Pod, PodDisruptionBudget, TaintEffect};
use dovetail_core::nodeclaim::{ConditionStatus, ConditionType, DISRUPTED_TAINT};
use dovetail_core::sym::Sym;
use support::*;

fn world() -> World {
    World::new(vec![pool("default", &["m5.xlarge"])])
}

fn node(w: &mut World) -> (Sym, NodeId) {
    w.existing_node("default", "m5.xlarge", CapacityType::OnDemand, 10 * MIN)
}

fn delete(w: &mut World, claim: Sym) {
    w.act(Action::DeleteNodeClaim { name: claim });
}

fn set_grace(w: &mut World, claim: Sym, grace: Duration) {
    let mut c = w.claim(claim).clone();
    c.termination_grace_period = Some(grace);
    w.cluster.state.apply_claim(c, w.now);
}

fn pdb(name: &str, app: &str, allowed: i32) -> PodDisruptionBudget {
    PodDisruptionBudget {
        namespace: sym("default"),
        name: sym(name),
        selector: LabelSelector::labels([("app", app)]),
        disruptions_allowed: allowed,
    }
}

fn gone(w: &World, p: &Pod) -> bool {
    w.pod_id(p).is_none()
}

fn deleted(w: &World, p: &Pod) -> Vec<u64> {
    let key = p.key();
    w.actions(|a| matches!(a, Action::DeletePod { pod } if *pod == key))
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn pods_are_evicted_in_four_tiers_each_once_the_one_before_is_gone() {
    let mut w = world();
    w.cluster.graceful_eviction = true;
    let (claim, n) = node(&mut w);
    let app = pod("app").cpu("100m").build();
    let ds = pod("logs-x1").cpu("100m").daemon("logs").build();
    let critical = pod("coredns").cpu("100m").priority(2_000_000_000).build();
    let critical_ds = pod("cni-x1")
        .cpu("100m")
        .priority(2_000_001_000)
        .daemon("cni")
        .build();
    // Listed in reverse, to show the order is the tiers', not the node's.
    for p in [&critical_ds, &critical, &ds, &app] {
        w.run_pod(p.clone(), n);
    }
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    assert!(w.tainted(n, DISRUPTED_TAINT));
    for (i, p) in [&app, &ds, &critical, &critical_ds].into_iter().enumerate() {
        let at = t0 + i as u64 * S;
        assert_eq!(w.evictions(p), vec![at], "{} evicted at +{i} s", p.name);
        // Its tier terminates for a while; nothing else is evicted meanwhile,
        // and it is not evicted again.
        w.run_for(S / 2, S / 2);
        for later in [&app, &ds, &critical, &critical_ds].into_iter().skip(i + 1) {
            assert!(w.evictions(later).is_empty(), "{} waits", later.name);
        }
        assert_eq!(w.evictions(p).len(), 1);
        let id = w.pod_id(p).unwrap();
        assert!(w.state().pod(id).unwrap().pod.is_terminating());
        w.cluster.state.delete_pod(id, w.now);
        w.run_for(S / 2, S / 2);
    }
    assert!(w.has_claim(claim), "drained at +4 s, but not before 5 s");
    w.run_to(t0 + 5 * S);
    assert!(!w.has_claim(claim));
    assert!(!w.has_node(n));
}

#[test]
fn an_eviction_a_budget_refuses_is_retried_with_backoff_and_reported_once() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    let web = pod("web").label("app", "web").cpu("1").build();
    w.run_pod(web.clone(), n);
    w.cluster.state.set_pdbs(vec![pdb("web", "web", 0)]);
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    w.run_for(35 * S, 100);
    let tries: Vec<u64> = w.evictions(&web).iter().map(|t| t - t0).collect();
    // 100 ms doubling, at most 10 s.
    assert_eq!(
        tries,
        vec![
            0, 100, 300, 700, 1_500, 3_100, 6_300, 12_700, 22_700, 32_700
        ]
    );
    let events = w.events(EventReason::FailedDraining);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].message.contains("PodDisruptionBudget"));
    assert!(!gone(&w, &web));
    assert!(
        w.cloud.delete_calls.is_empty(),
        "the instance waits for the drain"
    );
    // The budget allows one now: the next try gets through.
    w.cluster.state.set_disruptions_allowed(0, 1);
    w.run_to(t0 + 42 * S);
    assert!(!gone(&w, &web));
    w.run_for(700, 100);
    assert_eq!(w.evictions(&web).last(), Some(&(t0 + 42_700)));
    assert!(gone(&w, &web));
    w.run_for(S, S);
    assert!(!w.has_claim(claim));
}

#[test]
fn a_pod_under_two_budgets_is_retried_until_one_goes() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    let web = pod("web").label("app", "web").cpu("1").build();
    w.run_pod(web.clone(), n);
    w.cluster
        .state
        .set_pdbs(vec![pdb("web", "web", 5), pdb("web-too", "web", 5)]);
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.run_for(5 * S, 100);
    assert!(
        w.evictions(&web).len() >= 5,
        "retried: {:?}",
        w.evictions(&web)
    );
    assert!(!gone(&w, &web));
    let events = w.events(EventReason::FailedDraining);
    assert_eq!(events.len(), 1);
    assert!(
        events[0].message.contains("more than one"),
        "{}",
        events[0].message
    );
    w.cluster.state.set_pdbs(vec![pdb("web", "web", 5)]);
    w.run_to(t0 + 20 * S);
    assert!(gone(&w, &web));
    assert!(!w.has_claim(claim));
}

#[test]
fn a_do_not_disrupt_pod_holds_the_drain_until_the_grace_period_then_every_pod_left_is_deleted() {
    let mut w = world();
    w.cluster.graceful_eviction = true;
    let (claim, n) = node(&mut w);
    set_grace(&mut w, claim, Duration::from_secs(120));
    let batch = pod("batch").cpu("1").do_not_disrupt("true").build();
    let web = pod("web").cpu("1").build();
    let ds = pod("logs-x1").cpu("100m").daemon("logs").build();
    for p in [&batch, &web, &ds] {
        w.run_pod(p.clone(), n);
    }
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    // Evicted at once, and slow to shut down.
    assert_eq!(w.evictions(&web), vec![t0]);
    w.run_to(t0 + 2 * MIN - S);
    assert!(w.evictions(&batch).is_empty(), "never evicted");
    assert!(w.evictions(&ds).is_empty(), "its tier waits for the first");
    assert!(!gone(&w, &batch) && !gone(&w, &ds));
    assert!(w.cloud.delete_calls.is_empty());
    assert!(w.has_node(n));
    w.run_to(t0 + 2 * MIN);
    assert_eq!(deleted(&w, &batch), vec![t0 + 2 * MIN]);
    assert_eq!(
        deleted(&w, &ds),
        vec![t0 + 2 * MIN],
        "every tier at the deadline"
    );
    assert!(deleted(&w, &web).is_empty(), "already terminating");
    assert_eq!(w.events(EventReason::Disrupted).len(), 2);
    let id = w.pod_id(&web).unwrap();
    w.cluster.state.delete_pod(id, w.now);
    w.run_for(S, S);
    assert!(!w.has_claim(claim), "drain over, instance gone");
    assert_eq!(w.cloud.delete_calls.len(), 1);
}

#[test]
fn a_do_not_disrupt_duration_holds_only_while_the_pod_is_younger() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    let now_s = w.now / S;
    let young = pod("young")
        .cpu("1")
        .do_not_disrupt("5m")
        .started_at(now_s - 4 * 60)
        .build();
    let old = pod("old")
        .cpu("1")
        .do_not_disrupt("5m")
        .started_at(now_s - 10 * 60)
        .build();
    w.run_pod(young.clone(), n);
    w.run_pod(old.clone(), n);
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    assert_eq!(w.evictions(&old), vec![t0], "ran 10 minutes: not protected");
    w.run_to(t0 + MIN - S);
    assert!(w.evictions(&young).is_empty(), "ran 4:59");
    w.run_to(t0 + MIN);
    assert_eq!(w.evictions(&young), vec![t0 + MIN], "ran 5 minutes");
}

#[test]
fn pods_that_tolerate_the_disrupted_taint_are_neither_evicted_nor_waited_for() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    let agent = pod("agent")
        .cpu("100m")
        .tolerate_exists(DISRUPTED_TAINT, Some(TaintEffect::NoSchedule))
        .build();
    let anything = pod("anything").cpu("100m").tolerate_all().build();
    w.run_pod(agent.clone(), n);
    w.run_pod(anything.clone(), n);
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    w.run_to(t0 + 5 * S);
    assert!(w.evictions(&agent).is_empty() && w.evictions(&anything).is_empty());
    assert!(!w.has_claim(claim), "terminated after the minimum drain");
    assert!(!w.has_node(n));
}

#[test]
fn a_drain_takes_at_least_five_seconds() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    let drained = |w: &World| {
        let c = w.claim(claim).condition(ConditionType::Drained).unwrap();
        (c.status, c.reason.to_string())
    };
    assert_eq!(drained(&w), (ConditionStatus::Unknown, "Draining".into()));
    assert!(w.tainted(n, DISRUPTED_TAINT));
    assert!(w.node(n).deletion_ms.is_some(), "the Node is being deleted");
    w.run_to(t0 + 4 * S);
    assert!(w.cloud.delete_calls.is_empty());
    assert!(w.has_claim(claim));
    w.run_to(t0 + 5 * S);
    assert_eq!(w.cloud.delete_calls.len(), 1);
    assert!(!w.has_claim(claim));
}

#[test]
fn the_instance_is_terminated_before_the_finalizers_are_removed() {
    let mut w = world();
    w.cloud.slow_termination = true;
    let (claim, n) = node(&mut w);
    let pid = w.claim(claim).status.provider_id.clone().unwrap();
    w.reconcile();
    delete(&mut w, claim);
    let t0 = w.now;
    w.reconcile();
    w.run_to(t0 + 5 * S);
    assert_eq!(w.cloud.delete_calls, vec![pid.clone()]);
    let c = w.claim(claim);
    assert!(c.is_true(ConditionType::Drained));
    assert!(c.is_true(ConditionType::InstanceTerminating));
    // EC2 takes a while to shut the instance down.
    w.run_to(t0 + 40 * S);
    assert!(w.has_claim(claim) && w.has_node(n), "finalizers held");
    assert_eq!(w.cloud.delete_calls.len(), 1, "asked once");
    w.cloud.finish_termination(&pid);
    w.run_for(S, S);
    assert!(!w.has_claim(claim) && !w.has_node(n));
    let node_name = Sym::new(&format!("ip-{claim}"));
    let order: Vec<&Action> = w
        .timeline
        .iter()
        .map(|(_, a)| a)
        .filter(|a| {
            matches!(
                a,
                Action::RemoveNodeFinalizer { .. } | Action::RemoveNodeClaimFinalizer { .. }
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            &Action::RemoveNodeFinalizer { name: node_name },
            &Action::RemoveNodeClaimFinalizer { name: claim }
        ]
    );
}

#[test]
fn a_node_claim_that_never_launched_goes_at_once() {
    let mut w = world();
    w.cloud.next_errors.push_back(CreateError::Failed {
        reason: "SubnetResolutionFailed".into(),
        message: "no subnet".into(),
    });
    w.pending(pod("web").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    assert!(!w.claim(c).launched());
    delete(&mut w, c);
    w.reconcile();
    assert!(!w.has_claim(c));
    assert!(w.cloud.delete_calls.is_empty(), "no instance to terminate");
}

#[test]
fn a_node_deleted_by_someone_else_takes_its_node_claim_with_it() {
    let mut w = world();
    let (claim, n) = node(&mut w);
    let web = pod("web").cpu("1").build();
    w.run_pod(web.clone(), n);
    w.reconcile();
    let name = w.node(n).node.name;
    w.act(Action::DeleteNode { name });
    assert!(w.has_node(n), "held by its finalizer");
    let t0 = w.now;
    w.reconcile();
    assert!(w.deleting(claim), "its NodeClaim is deleted too");
    w.run_to(t0 + 6 * S);
    assert!(gone(&w, &web), "drained");
    assert!(!w.has_claim(claim) && !w.has_node(n));
    assert_eq!(w.cloud.delete_calls.len(), 1);
}
