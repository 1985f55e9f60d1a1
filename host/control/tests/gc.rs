//! Garbage collection: instances no NodeClaim owns, and NodeClaims whose
//! instance is gone.

mod support;

use dovetail_control::{Action, CreateError, Decision};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::Node;
use dovetail_core::sym::Sym;
use support::*;

fn world() -> World {
    World::new(vec![pool("default", &["m5.large"])])
}

/// An instance launched outside any NodeClaim at `now`, whose kubelet
/// registered a Node.
fn leak(w: &mut World) -> (String, Sym) {
    let pid = w.cloud.leak("m5.large", ZONE, w.now);
    let name = Sym::new(&format!("ip-{}", pid.rsplit('/').next().unwrap()));
    let node = Node {
        name,
        ready: true,
        ..Node::default()
    };
    w.cluster
        .state
        .apply_node(node, Some(pid.clone()), false, w.now);
    (pid, name)
}

fn collected(w: &World) -> Vec<(u64, String)> {
    w.decided(|d| matches!(d, Decision::InstanceCollected { .. }))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::InstanceCollected { provider_id } => (t, provider_id),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn an_instance_without_a_node_claim_is_terminated_once_it_is_thirty_seconds_old() {
    let mut w = world();
    let (old, old_node) = leak(&mut w);
    w.reconcile();
    w.run_to(START + 20 * S);
    let (young, _) = leak(&mut w);
    w.run_to(START + 29 * S);
    assert!(w.cloud.instances.contains_key(&old), "29 s old");
    w.run_to(START + 30 * S);
    assert!(!w.cloud.instances.contains_key(&old));
    assert!(
        w.state().node_by_name(old_node).is_none(),
        "its Node deleted"
    );
    assert!(
        w.first(|a| matches!(a, Action::DeleteNode { name } if *name == old_node))
            .is_some()
    );
    assert!(w.cloud.instances.contains_key(&young), "10 s old");
    w.run_to(START + 49 * S);
    assert!(w.cloud.instances.contains_key(&young));
    w.run_to(START + 50 * S);
    assert_eq!(
        collected(&w),
        vec![(START + 30 * S, old), (START + 50 * S, young)]
    );
}

#[test]
fn after_twenty_quick_checks_instances_are_checked_every_two_minutes() {
    let mut w = world();
    w.reconcile();
    w.run_to(START + 205 * S);
    let (pid, _) = leak(&mut w);
    // Checks at +0, +10, … +190 s, +200 s, then every 2 minutes.
    w.run_to(START + 319 * S);
    assert!(w.cloud.instances.contains_key(&pid));
    w.run_to(START + 320 * S);
    assert_eq!(collected(&w), vec![(START + 320 * S, pid)]);
}

#[test]
fn an_instance_whose_node_claim_is_still_being_created_is_kept() {
    let mut w = world();
    w.cloud
        .next_errors
        .extend((0..20).map(|_| CreateError::Failed {
            reason: "RequestLimitExceeded".into(),
            message: "throttled".into(),
        }));
    w.pending(pod("web").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    assert!(!w.claim(c).launched());
    // CreateFleet made the instance, but the answer was lost: the claim
    // does not know its provider ID yet. The tag names it.
    let pid = w.cloud.leak("m5.large", ZONE, w.now);
    w.cloud.instances.get_mut(&pid).unwrap().node_claim = Some(c);
    w.run_for(2 * MIN, S);
    assert!(w.cloud.instances.contains_key(&pid));
    assert!(collected(&w).is_empty());
}

#[test]
fn a_registered_node_claim_whose_instance_is_gone_is_deleted_at_the_two_minute_check() {
    let mut w = world();
    w.cluster.graceful_eviction = true;
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    let web = pod("web").cpu("1").build();
    w.run_pod(web.clone(), node);
    let pid = w.claim(claim).status.provider_id.clone().unwrap();
    w.reconcile();
    w.run_to(START + 5 * S);
    // The instance is gone (terminated outside Dovetail); its kubelet stops.
    w.cloud.instances.remove(&pid);
    w.set_ready(node, false);
    w.run_to(START + 119 * S);
    assert!(!w.deleting(claim), "checked every 2 minutes");
    w.run_to(START + 120 * S);
    assert!(w.deleting(claim));
    assert!(matches!(
        w.decided(|d| matches!(d, Decision::ClaimCollected { .. })).as_slice(),
        [(t, Decision::ClaimCollected { claim: c })] if *t == START + 120 * S && *c == claim
    ));
    // Nothing runs there to drain: the Node and NodeClaim go at once.
    w.run_for(S, S);
    assert!(!w.has_claim(claim), "{:?}", w.timeline.last());
    assert!(!w.has_node(node));
    assert!(w.evictions(&web).is_empty(), "no eviction on a dead node");
}

#[test]
fn a_node_claim_whose_instance_is_gone_but_whose_node_is_ready_is_kept() {
    let mut w = world();
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("web").cpu("1").build(), node);
    let pid = w.claim(claim).status.provider_id.clone().unwrap();
    w.reconcile();
    w.cloud.instances.remove(&pid);
    w.run_to(START + 5 * MIN);
    assert!(
        w.decided(|d| matches!(d, Decision::ClaimCollected { .. }))
            .is_empty()
    );
    assert!(!w.deleting(claim), "its kubelet still reports Ready");
}
