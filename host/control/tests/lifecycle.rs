//! The NodeClaim lifecycle: Launched → Registered → Initialized, the
//! timeouts, and what insufficient capacity does.

mod support;

use dovetail_control::actions::EventReason;
use dovetail_control::decision::ClaimFailure;
use dovetail_control::{Action, CreateError, Decision};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::labels;
use dovetail_core::model::Taint;
use dovetail_core::model::{Labels, TaintEffect};
use dovetail_core::nodeclaim::{
    ConditionStatus, ConditionType, DO_NOT_SYNC_TAINTS_LABEL, NODEPOOL_HASH_ANNOTATION, NodeClaim,
    UNREGISTERED_TAINT,
};
use dovetail_core::resources::NVIDIA_GPU;
use dovetail_core::sym::Sym;
use support::*;

fn condition(c: &NodeClaim, kind: ConditionType) -> (ConditionStatus, String, String) {
    let c = c
        .condition(kind)
        .unwrap_or_else(|| panic!("{kind} is not set"));
    (c.status, c.reason.to_string(), c.message.clone())
}

/// One pending pod planned and launched: the NodeClaim's name.
fn launched(w: &mut World, p: dovetail_core::model::Pod) -> Sym {
    w.pending(p);
    w.until("a NodeClaim", 5 * S, S, |w| !w.claim_names().is_empty());
    let c = *w.claim_names().last().unwrap();
    assert!(w.claim(c).launched());
    c
}

fn failures(w: &World) -> Vec<(u64, Sym, ClaimFailure)> {
    w.decided(|d| matches!(d, Decision::ClaimFailed { .. }))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::ClaimFailed { claim, failure } => (t, claim, failure),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_registered_node_is_synced_with_its_node_claim() {
    let mut p = pool("default", &["m5.large"]);
    p.labels = vec![(sym("team"), sym("web"))];
    p.annotations = vec![(sym("example.com/owner"), sym("web-team"))];
    p.taints = vec![Taint::new("dedicated", "web", TaintEffect::NoSchedule)];
    p.startup_taints = vec![Taint::new("example.com/agent", "", TaintEffect::NoSchedule)];
    let mut w = World::new(vec![p]);
    let c = launched(
        &mut w,
        pod("web")
            .cpu("1")
            .tolerate("dedicated", "web", None)
            .build(),
    );
    // A kubelet started without the NodeClaim's taints.
    let node = w.register_with(c, |n| {
        n.taints.retain(|t| t.key.as_str() == UNREGISTERED_TAINT);
    });
    w.run_for(S, S);

    let claim = w.claim(c);
    assert!(claim.registered());
    let n = w.node(node);
    assert_eq!(claim.status.node_name, Some(n.node.name));
    assert!(n.finalizer, "karpenter.sh/termination added");
    assert!(!n.has_taint(UNREGISTERED_TAINT));
    assert!(n.has_taint("dedicated") && n.has_taint("example.com/agent"));
    let l = &n.node.labels;
    assert_eq!(label(l, "karpenter.sh/registered").as_deref(), Some("true"));
    assert_eq!(label(l, labels::NODE_POOL).as_deref(), Some("default"));
    assert_eq!(label(l, "team").as_deref(), Some("web"));
    assert_eq!(label(l, labels::INSTANCE_TYPE).as_deref(), Some("m5.large"));
    assert_eq!(
        label(l, labels::CAPACITY_TYPE).as_deref(),
        Some("on-demand")
    );
    let a = &n.node.annotations;
    assert_eq!(label(a, "example.com/owner").as_deref(), Some("web-team"));
    assert!(label(a, NODEPOOL_HASH_ANNOTATION).is_some());
}

#[test]
fn a_node_that_asks_not_to_sync_taints_keeps_its_own() {
    let mut p = pool("default", &["m5.large"]);
    p.taints = vec![Taint::new("dedicated", "web", TaintEffect::NoSchedule)];
    let mut w = World::new(vec![p]);
    let c = launched(
        &mut w,
        pod("web")
            .cpu("1")
            .tolerate("dedicated", "web", None)
            .build(),
    );
    let node = w.register_with(c, |n| {
        n.taints.retain(|t| t.key.as_str() == UNREGISTERED_TAINT);
        n.labels.push((sym(DO_NOT_SYNC_TAINTS_LABEL), sym("true")));
        n.labels.sort_by_key(|&(k, _)| k);
    });
    w.run_for(S, S);
    assert!(w.claim(c).registered());
    assert!(!w.tainted(node, "dedicated"));
    assert!(!w.tainted(node, UNREGISTERED_TAINT));
}

#[test]
fn a_node_is_initialised_only_once_it_is_ready() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let c = launched(&mut w, pod("web").cpu("1").build());
    let node = w.register(c);
    w.run_for(5 * S, S);
    assert_eq!(
        condition(w.claim(c), ConditionType::Initialized),
        (
            ConditionStatus::Unknown,
            "NodeNotReady".into(),
            "Node status is NotReady".into()
        )
    );
    assert_eq!(
        label(&w.node(node).node.labels, "karpenter.sh/initialized"),
        None
    );
    w.set_ready(node, true);
    w.run_for(S, S);
    assert!(w.claim(c).initialized());
    assert_eq!(
        label(&w.node(node).node.labels, "karpenter.sh/initialized").as_deref(),
        Some("true")
    );
}

#[test]
fn a_node_is_initialised_only_once_its_start_up_taints_are_gone() {
    let mut p = pool("default", &["m5.large"]);
    p.startup_taints = vec![Taint::new("example.com/agent", "", TaintEffect::NoSchedule)];
    let mut w = World::new(vec![p]);
    let c = launched(&mut w, pod("web").cpu("1").build());
    let node = w.register(c);
    w.set_ready(node, true);
    w.run_for(5 * S, S);
    let (status, reason, message) = condition(w.claim(c), ConditionType::Initialized);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::Unknown, "StartupTaintsExist")
    );
    assert!(message.contains("example.com/agent"), "{message}");
    // The agent is up and takes its taint off.
    w.cluster.state.remove_node_taint(node, "example.com/agent");
    w.run_for(S, S);
    assert!(w.claim(c).initialized());
}

#[test]
fn a_node_is_initialised_only_once_known_ephemeral_taints_are_gone() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let c = launched(&mut w, pod("web").cpu("1").build());
    let node = w.register_with(c, |n| {
        n.taints.push(Taint::new(
            "node.cloudprovider.kubernetes.io/uninitialized",
            "true",
            TaintEffect::NoSchedule,
        ));
    });
    w.set_ready(node, true);
    w.run_for(5 * S, S);
    let (status, reason, _) = condition(w.claim(c), ConditionType::Initialized);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::Unknown, "KnownEphemeralTaintsExist")
    );
    w.cluster
        .state
        .remove_node_taint(node, "node.cloudprovider.kubernetes.io/uninitialized");
    w.run_for(S, S);
    assert!(w.claim(c).initialized());
}

#[test]
fn a_node_is_initialised_only_once_requested_extended_resources_are_registered() {
    let mut w = World::new(vec![pool("gpu", &["g4dn.xlarge"])]);
    let c = launched(&mut w, pod("train").cpu("1").gpus(1).build());
    assert!(w.claim(c).requests.extended(sym(NVIDIA_GPU)) > 0);
    // The device plugin has not advertised the GPU yet.
    let node = w.register_with(c, |n| n.allocatable.set(NVIDIA_GPU, 0));
    w.set_ready(node, true);
    w.run_for(5 * S, S);
    let (status, reason, message) = condition(w.claim(c), ConditionType::Initialized);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::Unknown, "ResourceNotRegistered")
    );
    assert!(message.contains(NVIDIA_GPU), "{message}");
    w.cluster
        .state
        .update_node(node, |n| n.node.allocatable.set(NVIDIA_GPU, 1));
    w.run_for(S, S);
    assert!(w.claim(c).initialized());
}

#[test]
fn ready_follows_launched_registered_and_initialized() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let c = launched(&mut w, pod("web").cpu("1").build());
    let ready = |w: &World| condition(w.claim(c), ConditionType::Ready);
    assert_eq!(
        ready(&w),
        (
            ConditionStatus::Unknown,
            "ReconcilingDependents".into(),
            "Registered=Unknown, Initialized=Unknown".into()
        )
    );
    let node = w.register(c);
    w.run_for(S, S);
    assert_eq!(ready(&w).0, ConditionStatus::Unknown);
    assert_eq!(ready(&w).2, "Initialized=Unknown");
    w.set_ready(node, true);
    w.run_for(S, S);
    assert_eq!(
        ready(&w),
        (ConditionStatus::True, "Ready".into(), String::new())
    );
}

#[test]
fn insufficient_capacity_everywhere_deletes_the_claim_and_hides_the_offering_for_three_minutes() {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.xlarge"])]);
    let large = offering("m5.large", CapacityType::OnDemand);
    let xlarge = offering("m5.xlarge", CapacityType::OnDemand);
    w.cloud.insufficient.insert(large);
    let pinned = pod("pinned")
        .cpu("1")
        .node_selector(labels::INSTANCE_TYPE, "m5.large")
        .build();
    let pinned_id = w.pending(pinned.clone());
    w.until("a launch attempt", 5 * S, S, |w| {
        !w.cloud.create_calls.is_empty()
    });
    let ice_at = w.now;
    let first = w.cloud.create_calls[0];
    assert_eq!(
        failures(&w),
        vec![(
            ice_at,
            first,
            ClaimFailure::InsufficientCapacity(vec![large])
        )]
    );
    assert!(!w.has_claim(first), "deleted, and never launched: gone");
    assert_eq!(w.events(EventReason::InsufficientCapacityError).len(), 1);
    assert!(w.state().pending().contains(&pinned_id));
    assert_eq!(w.nominated_claim(pinned_id), None, "back to provisioning");
    assert!(w.ctl.unavailable().is_unavailable(&large, ice_at));

    // Capacity comes back at once, but the offering stays hidden.
    w.cloud.insufficient.clear();
    w.run_to(ice_at + 30 * S);
    let other = w.pending(pod("other").cpu("1").build());
    w.until("a NodeClaim for the other pod", 5 * S, S, |w| {
        w.nominated_claim(other).is_some()
    });
    let c = w.nominated_claim(other).unwrap();
    assert_eq!(
        keys(&w.claim(c).launch),
        vec![xlarge],
        "m5.large is left out"
    );
    assert_eq!(w.nominated_claim(pinned_id), None, "nothing it may use");

    w.run_to(ice_at + 3 * MIN - S);
    assert_eq!(w.nominated_claim(pinned_id), None, "still hidden at 2:59");
    w.run_to(ice_at + 3 * MIN);
    let again = w
        .nominated_claim(pinned_id)
        .expect("planned again once the 3 minutes are over");
    assert_eq!(keys(&w.claim(again).launch), vec![large]);
    assert!(w.claim(again).launched());
}

#[test]
fn insufficient_capacity_on_some_offerings_falls_back_within_one_launch() {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.xlarge"])]);
    let large = offering("m5.large", CapacityType::OnDemand);
    let xlarge = offering("m5.xlarge", CapacityType::OnDemand);
    w.cloud.insufficient.insert(large);
    let c = launched(&mut w, pod("web").cpu("1").label("app", "web").build());
    assert_eq!(
        keys(&w.claim(c).launch),
        vec![large, xlarge],
        "cheapest first"
    );
    assert_eq!(w.cloud.create_calls, vec![c], "one create call");
    let got = w.claim(c).status.launched.expect("launched");
    assert_eq!(got.instance_type, sym("m5.xlarge"));
    assert!(failures(&w).is_empty());
    assert!(w.ctl.unavailable().is_unavailable(&large, w.now));
    // The next NodeClaim is planned without the failed offering.
    w.cloud.insufficient.clear();
    w.run_for(10 * S, S);
    let next = w.pending(
        pod("api")
            .cpu("1")
            .anti_affinity(labels::HOSTNAME, &[("app", "web")])
            .build(),
    );
    w.until("a second NodeClaim", 5 * S, S, |w| {
        w.nominated_claim(next).is_some()
    });
    let second = w.nominated_claim(next).unwrap();
    assert_ne!(second, c);
    assert_eq!(keys(&w.claim(second).launch), vec![xlarge]);
}

fn create_error() -> CreateError {
    CreateError::Failed {
        reason: "LaunchTemplateNotFound".into(),
        message: "the launch template is being recreated".into(),
    }
}

#[test]
fn other_launch_errors_are_retried_with_backoff_until_the_launch_timeout() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    w.cloud.next_errors.extend((0..10).map(|_| create_error()));
    let p = w.pending(pod("web").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    let created = w.claim(c).created_ms;
    assert_eq!(created, START + S);
    assert!(!w.claim(c).launched());
    let (status, reason, message) = condition(w.claim(c), ConditionType::Launched);
    assert_eq!(status, ConditionStatus::Unknown);
    assert_eq!(reason, "LaunchTemplateNotFound");
    assert_eq!(message, "the launch template is being recreated");
    assert_eq!(
        condition(w.claim(c), ConditionType::Ready).0,
        ConditionStatus::Unknown
    );

    w.run_to(created + 5 * MIN - S);
    assert!(!w.deleting(c), "not before the launch timeout");
    let tries: Vec<u64> = w
        .cloud
        .create_times
        .iter()
        .map(|t| (t - created) / S)
        .collect();
    assert_eq!(tries, vec![0, 1, 3, 7, 15, 31, 63, 123, 183, 243]);
    assert_eq!(
        w.events(EventReason::LaunchFailed).len(),
        1,
        "one event per reason"
    );

    w.run_to(created + 5 * MIN);
    assert!(
        !w.has_claim(c),
        "deleted at 5 minutes, never launched: gone"
    );
    assert!(matches!(
        failures(&w).as_slice(),
        [(t, n, ClaimFailure::LaunchTimeout(why))]
            if *t == created + 5 * MIN && *n == c && why.contains("launch template")
    ));
    // Its pod is planned again, and this time the cloud obliges.
    w.run_for(2 * S, S);
    let again = w.nominated_claim(p).expect("planned again");
    assert_ne!(again, c);
    assert!(w.claim(again).launched());
}

#[test]
fn a_launch_that_succeeds_after_an_error_goes_on_normally() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    w.cloud.next_errors.push_back(create_error());
    w.pending(pod("web").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    assert!(!w.claim(c).launched());
    w.run_for(S, S);
    assert!(w.claim(c).launched(), "retried a second later");
    assert_eq!(condition(w.claim(c), ConditionType::Launched).1, "Launched");
    w.bring_up(c);
}

#[test]
fn a_launched_claim_without_a_node_is_deleted_at_the_registration_timeout() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let p = w.pending(pod("web").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    let launched_at = w.now;
    let pid = w.claim(c).status.provider_id.clone().unwrap();
    w.run_to(launched_at + 15 * MIN - S);
    assert!(!w.deleting(c), "not before 15 minutes");
    assert!(w.cloud.instances.contains_key(&pid));
    w.run_to(launched_at + 15 * MIN);
    assert!(matches!(
        failures(&w).as_slice(),
        [(t, n, ClaimFailure::RegistrationTimeout)] if *t == launched_at + 15 * MIN && *n == c
    ));
    assert!(!w.has_claim(c), "instance terminated, finalizer removed");
    assert!(
        !w.cloud.instances.contains_key(&pid),
        "the instance is terminated"
    );
    assert_eq!(w.cloud.delete_calls, vec![pid]);
    w.run_for(2 * S, S);
    assert!(
        w.nominated_claim(p).is_some_and(|n| n != c),
        "planned again"
    );
}

#[test]
fn the_update_that_launches_a_claim_keeps_its_labels_and_adds_the_instance_s() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let c = launched(&mut w, pod("web").cpu("1").build());
    let claim = w.claim(c);
    let l: &Labels = &claim.labels;
    assert_eq!(label(l, labels::NODE_POOL).as_deref(), Some("default"));
    assert_eq!(label(l, labels::ZONE).as_deref(), Some(ZONE));
    assert_eq!(label(l, labels::INSTANCE_TYPE).as_deref(), Some("m5.large"));
    assert!(
        claim
            .status
            .provider_id
            .as_deref()
            .is_some_and(|p| p.starts_with("aws:///"))
    );
    assert_eq!(claim.status.image_id.as_deref(), Some("ami-test"));
    assert!(claim.status.allocatable.cpu > 0);
    assert_eq!(
        w.actions(|a| matches!(a, Action::UpdateNodeClaim(u) if u.name == c))
            .len(),
        1
    );
}

/// `claim` as a restarted controller reads it back from the API: no launch
/// list (the object does not hold one).
fn read_back(w: &mut World, claim: Sym) {
    let mut c = w.claim(claim).clone();
    c.launch.clear();
    w.cluster.state.apply_claim(c, w.now);
}

#[test]
fn a_claim_read_back_after_a_restart_launches_from_its_requirements() {
    let mut w = World::new(vec![pool(
        "default",
        &["m5.large", "m5.xlarge", "m5.2xlarge"],
    )]);
    // The first launch fails; the controller restarts before it retries.
    w.cloud.next_errors.push_back(create_error());
    let p = w.pending(pod("web").cpu("3").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    assert!(!w.claim(c).launched());
    w.restart();
    read_back(&mut w, c);

    w.run_for(S, S);
    let claim = w.claim(c);
    assert!(claim.launched(), "launched from its requirements");
    let got = claim.status.launched.expect("launched");
    assert_eq!(
        (got.instance_type, got.zone, got.capacity_type),
        (sym("m5.xlarge"), sym(ZONE), CapacityType::OnDemand),
        "the cheapest offering that holds 3 vCPUs"
    );
    assert!(failures(&w).is_empty());
    w.run_for(5 * S, S);
    assert_eq!(w.claim_names(), vec![c], "no second NodeClaim for the pod");
    assert_eq!(w.nominated_claim(p), Some(c));
}

#[test]
fn a_claim_read_back_leaves_out_offerings_the_cache_holds_unavailable() {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.xlarge"])]);
    let large = offering("m5.large", CapacityType::OnDemand);
    w.cloud.insufficient.insert(large);
    let first = launched(&mut w, pod("web").cpu("1").label("app", "web").build());
    assert!(w.ctl.unavailable().is_unavailable(&large, w.now));
    // Capacity is back, but the cache still hides m5.large. A claim whose
    // launch failed before another controller's restart is read back.
    w.cloud.insufficient.clear();
    w.cloud.next_errors.push_back(create_error());
    w.pending(
        pod("api")
            .cpu("1")
            .anti_affinity(labels::HOSTNAME, &[("app", "web")])
            .build(),
    );
    w.until("a second NodeClaim", 5 * S, S, |w| {
        w.claim_names().len() == 2
    });
    let second = w.claim_names()[1];
    assert_ne!(second, first);
    assert!(!w.claim(second).launched());
    read_back(&mut w, second);

    w.run_for(S, S);
    let got = w.claim(second).status.launched.expect("launched");
    assert_eq!(got.instance_type, sym("m5.xlarge"), "m5.large is left out");
}

#[test]
fn a_claim_read_back_with_nothing_it_may_use_fails_for_insufficient_capacity() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    w.cloud.next_errors.push_back(create_error());
    w.pending(pod("big").cpu("1").build());
    w.run_for(S, S);
    let c = w.claim_names()[0];
    w.restart();
    read_back(&mut w, c);
    // Nothing in the catalog holds what it asks for any more.
    let mut claim = w.claim(c).clone();
    claim.requests.cpu = 1_000_000;
    w.cluster.state.apply_claim(claim, w.now);

    w.run_for(S, S);
    assert_eq!(w.cloud.create_calls, vec![c, c], "the cloud was asked");
    assert_eq!(
        failures(&w),
        vec![(w.now, c, ClaimFailure::InsufficientCapacity(Vec::new()))]
    );
    assert!(!w.has_claim(c));
}
