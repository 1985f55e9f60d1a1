//! The observed-state index: the pending set, nominations and when they are
//! lost, the provisioning idle timer's reference, and version bumps.

use dovetail_control::{ClusterState, NodeId, Nominee, PodId};
use dovetail_core::builders::{node_pool, pod};
use dovetail_core::model::Taint;
use dovetail_core::model::{LabelSelector, Node, PodDisruptionBudget, TaintEffect};
use dovetail_core::nodeclaim::{DISRUPTED_TAINT, NodeClaim, NodeClaimStatus};
use dovetail_core::sym::Sym;

fn claim(name: &str, provider_id: Option<&str>) -> NodeClaim {
    NodeClaim {
        name: Sym::new(name),
        node_pool: Some(Sym::new("default")),
        labels: Vec::new(),
        annotations: Vec::new(),
        requirements: Vec::new(),
        requests: Default::default(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: Default::default(),
        expire_after: None,
        termination_grace_period: None,
        launch: Vec::new(),
        node_pool_hash: None,
        created_ms: 0,
        deletion_ms: None,
        finalizer: true,
        status: NodeClaimStatus {
            provider_id: provider_id.map(str::to_string),
            ..NodeClaimStatus::default()
        },
    }
}

fn node(state: &mut ClusterState, name: &str, provider_id: &str, now: u64) -> NodeId {
    let n = Node {
        name: Sym::new(name),
        ready: true,
        ..Node::default()
    };
    state.apply_node(n, Some(provider_id.to_string()), true, now)
}

/// A claim with a registered node.
fn claim_with_node(state: &mut ClusterState, name: &str) -> (dovetail_control::ClaimId, NodeId) {
    let pid = format!("aws:///us-east-1a/i-{name}");
    let node_name = format!("ip-{name}");
    let mut c = claim(name, Some(&pid));
    c.status.node_name = Some(Sym::new(&node_name));
    let id = state.apply_claim(c, 0);
    let n = node(state, &node_name, &pid, 0);
    (id, n)
}

fn pending(state: &mut ClusterState, name: &str, now: u64) -> PodId {
    state.apply_pod(pod(name).cpu("1").build(), None, now)
}

fn nominated(state: &ClusterState, p: PodId) -> Option<Nominee> {
    state.pod(p).unwrap().nominated
}

#[test]
fn pending_pods_are_the_unbound_ones_daemon_set_pods_excepted() {
    let mut s = ClusterState::new();
    let n = node(&mut s, "n1", "aws:///z/i-1", 0);
    let a = pending(&mut s, "a", 10);
    let b = s.apply_pod(pod("b").cpu("1").build(), Some(n), 10);
    let ds = s.apply_pod(pod("ds-x").daemon("ds").build(), None, 10);
    assert_eq!(s.pending().iter().copied().collect::<Vec<_>>(), vec![a]);
    assert_eq!(s.pod(b).unwrap().node, Some(n));
    assert_eq!(s.pod(ds).unwrap().node, None);
    assert_eq!(s.waiting(100), vec![a]);
}

#[test]
fn binding_takes_a_pod_out_of_pending_and_unbinding_puts_it_back() {
    let mut s = ClusterState::new();
    let n = node(&mut s, "n1", "aws:///z/i-1", 0);
    let p = pending(&mut s, "web", 10);
    s.bind(p, n, 20);
    assert!(s.pending().is_empty());
    let e = s.node(n).unwrap();
    assert_eq!(e.pods, vec![p]);
    assert_eq!(e.requested.cpu, 1000);
    assert_eq!(e.last_pod_event_ms, 20);
    // Evicted: its controller's replacement waits again, from now.
    s.unbind(p, 30);
    assert!(s.pending().contains(&p));
    assert_eq!(s.pod(p).unwrap().pending_since_ms, 30);
    let e = s.node(n).unwrap();
    assert!(e.pods.is_empty());
    assert_eq!(e.requested.cpu, 0);
    assert_eq!(e.last_pod_event_ms, 30);
    // A DaemonSet pod taken off its node is gone, not pending.
    let ds = s.apply_pod(pod("ds-x").daemon("ds").build(), Some(n), 40);
    s.unbind(ds, 50);
    assert!(s.pod(ds).is_none());
    assert!(!s.pending().contains(&ds));
}

#[test]
fn the_idle_timer_reference_moves_only_when_the_pending_set_changes() {
    let mut s = ClusterState::new();
    let n = node(&mut s, "n1", "aws:///z/i-1", 0);
    let a = pending(&mut s, "a", 10);
    assert_eq!(s.last_pending_change_ms(), 10);
    // An update to a pod already pending is not a new pod.
    s.apply_pod(pod("a").cpu("2").build(), None, 15);
    assert_eq!(s.last_pending_change_ms(), 10);
    let bound = s.apply_pod(pod("bound").build(), Some(n), 16);
    assert_eq!(s.last_pending_change_ms(), 10, "a bound pod is not pending");
    let b = pending(&mut s, "b", 20);
    assert_eq!(s.last_pending_change_ms(), 20);
    s.bind(a, n, 30);
    assert_eq!(s.last_pending_change_ms(), 30);
    s.delete_pod(bound, 35);
    assert_eq!(s.last_pending_change_ms(), 30, "a bound pod went");
    s.delete_pod(b, 40);
    assert_eq!(s.last_pending_change_ms(), 40);
}

#[test]
fn a_nomination_to_a_node_claim_is_lost_when_the_claim_is_deleted() {
    let mut s = ClusterState::new();
    let c = s.apply_claim(claim("c1", None), 0);
    let p = pending(&mut s, "web", 10);
    let q = pending(&mut s, "other", 10);
    s.nominate(p, Nominee::Claim(c), 10);
    assert!(holds(&s, Nominee::Claim(c)));
    assert_eq!(s.waiting(100), vec![q], "a nominated pod is not waiting");
    assert_eq!(s.last_pending_change_ms(), 10, "nominating is not a change");
    let mut deleting = s.claim(c).unwrap().clone();
    deleting.deletion_ms = Some(50);
    s.apply_claim(deleting, 50);
    assert_eq!(nominated(&s, p), None);
    assert!(!holds(&s, Nominee::Claim(c)));
    assert_eq!(s.waiting(100), vec![p, q]);
    assert_eq!(
        s.last_pending_change_ms(),
        50,
        "its pods wait again from now"
    );
}

#[test]
fn a_nomination_to_a_node_claim_is_lost_when_the_claim_is_gone() {
    let mut s = ClusterState::new();
    let c = s.apply_claim(claim("c1", Some("aws:///z/i-1")), 0);
    let p = pending(&mut s, "web", 10);
    s.nominate(p, Nominee::Claim(c), 10);
    assert!(s.delete_claim(Sym::new("c1"), 60).is_some());
    assert_eq!(nominated(&s, p), None);
    assert_eq!(s.last_pending_change_ms(), 60);
    assert_eq!(s.claim_by_provider_id("aws:///z/i-1"), None);
    assert_eq!(s.claim_id(Sym::new("c1")), None);
}

#[test]
fn nominations_to_a_node_and_its_claim_are_lost_when_it_is_tainted_for_disruption() {
    let mut s = ClusterState::new();
    let (c, n) = claim_with_node(&mut s, "c1");
    let (_, other) = claim_with_node(&mut s, "c2");
    let on_node = pending(&mut s, "a", 10);
    let on_claim = pending(&mut s, "b", 10);
    let elsewhere = pending(&mut s, "c", 10);
    s.nominate(on_node, Nominee::Node(n), 10);
    s.nominate(on_claim, Nominee::Claim(c), 10);
    s.nominate(elsewhere, Nominee::Node(other), 10);
    // Another taint changes nothing.
    s.add_node_taint(
        n,
        Taint::new("example.com/x", "", TaintEffect::NoSchedule),
        20,
    );
    assert_eq!(nominated(&s, on_node), Some(Nominee::Node(n)));
    assert_eq!(s.last_pending_change_ms(), 10);
    let disrupted = Taint::new(DISRUPTED_TAINT, "", TaintEffect::NoSchedule);
    let disrupted = dovetail_core::model::Taint {
        value: None,
        ..disrupted
    };
    assert!(s.add_node_taint(n, disrupted, 30));
    assert!(!s.add_node_taint(n, disrupted, 31), "already there");
    assert_eq!(nominated(&s, on_node), None);
    assert_eq!(nominated(&s, on_claim), None);
    assert_eq!(nominated(&s, elsewhere), Some(Nominee::Node(other)));
    assert_eq!(s.last_pending_change_ms(), 30);
    assert!(!holds(&s, Nominee::Node(n)));
    assert!(!holds(&s, Nominee::Claim(c)), "its node is leaving");
    assert!(s.remove_node_taint(n, DISRUPTED_TAINT));
    assert!(holds(&s, Nominee::Claim(c)), "un-tainted, it holds again");
}

#[test]
fn a_nomination_to_a_node_is_lost_when_the_node_is_deleted() {
    let mut s = ClusterState::new();
    let n = node(&mut s, "n1", "aws:///z/i-1", 0);
    let m = node(&mut s, "n2", "aws:///z/i-2", 0);
    let p = pending(&mut s, "a", 10);
    let q = pending(&mut s, "b", 10);
    s.nominate(p, Nominee::Node(n), 10);
    s.nominate(q, Nominee::Node(m), 10);
    s.mark_node_deleting(n, 20);
    assert_eq!(nominated(&s, p), None);
    assert_eq!(s.last_pending_change_ms(), 20);
    let bound = s.apply_pod(pod("bound").build(), Some(m), 25);
    let unbound = s.delete_node(m, 30);
    assert_eq!(unbound, vec![bound]);
    assert_eq!(s.pod(bound).unwrap().node, None);
    assert_eq!(nominated(&s, q), None);
    assert_eq!(s.last_pending_change_ms(), 30);
    assert_eq!(s.node_by_provider_id("aws:///z/i-2"), None);
    assert_eq!(s.node_id(Sym::new("n2")), None);
}

#[test]
fn binding_a_nominated_pod_clears_its_nomination() {
    let mut s = ClusterState::new();
    let (c, n) = claim_with_node(&mut s, "c1");
    let p = pending(&mut s, "a", 10);
    s.nominate(p, Nominee::Claim(c), 10);
    s.bind(p, n, 20);
    assert_eq!(nominated(&s, p), None);
    assert!(s.waiting(100).is_empty());
}

#[test]
fn the_version_moves_with_every_change_and_only_then() {
    let mut s = ClusterState::new();
    let v = |s: &ClusterState| s.version();
    let pool = node_pool("default").build();
    let before = v(&s);
    s.apply_node_pool(pool.clone());
    assert!(v(&s) > before);
    let before = v(&s);
    s.apply_node_pool(pool.clone());
    assert_eq!(v(&s), before, "the same NodePool again");
    let mut changed = pool;
    changed.weight = 10;
    s.apply_node_pool(changed);
    assert!(v(&s) > before);

    let n = node(&mut s, "n1", "aws:///z/i-1", 0);
    let before = v(&s);
    s.set_node_ready(n, true);
    assert_eq!(v(&s), before, "already Ready");
    s.set_node_ready(n, false);
    assert!(v(&s) > before);

    let p = pending(&mut s, "a", 0);
    let c = s.apply_claim(claim("c1", None), 0);
    s.nominate(p, Nominee::Claim(c), 10);
    let before = v(&s);
    s.nominate(p, Nominee::Claim(c), 10);
    assert_eq!(v(&s), before, "the same nomination");

    s.set_pdbs(vec![PodDisruptionBudget {
        namespace: Sym::new("default"),
        name: Sym::new("web"),
        selector: LabelSelector::default(),
        disruptions_allowed: 1,
    }]);
    let before = v(&s);
    s.set_disruptions_allowed(0, 1);
    assert_eq!(v(&s), before, "unchanged status");
    s.set_disruptions_allowed(0, 0);
    assert!(v(&s) > before);

    let before = v(&s);
    s.bind(p, n, 5);
    assert!(v(&s) > before);
    let before = v(&s);
    s.delete_node_pool(Sym::new("absent"));
    assert_eq!(v(&s), before);
    s.delete_node_pool(Sym::new("default"));
    assert!(v(&s) > before);
}

#[test]
fn provider_ids_find_nodes_and_claims_and_follow_changes() {
    let mut s = ClusterState::new();
    let (c, n) = claim_with_node(&mut s, "c1");
    let pid = "aws:///us-east-1a/i-c1";
    assert_eq!(s.claim_by_provider_id(pid), Some(c));
    assert_eq!(s.node_by_provider_id(pid), Some(n));
    assert_eq!(s.claim_of_node(s.node(n).unwrap()), Some(c));
    assert_eq!(s.node_of_claim(s.claim(c).unwrap()), Some(n));
    // Relaunched under another instance: the old ID no longer finds it.
    let mut moved = s.claim(c).unwrap().clone();
    moved.status.provider_id = Some("aws:///us-east-1a/i-other".into());
    s.apply_claim(moved, 10);
    assert_eq!(s.claim_by_provider_id(pid), None);
    assert_eq!(s.claim_by_provider_id("aws:///us-east-1a/i-other"), Some(c));
    assert_eq!(
        s.node_of_claim(s.claim(c).unwrap()),
        None,
        "the node is another instance's"
    );
}

#[test]
fn budgets_cover_the_pods_their_selector_matches_in_their_namespace() {
    let mut s = ClusterState::new();
    let web = s.apply_pod(pod("web").label("app", "web").build(), None, 0);
    let other_ns = s.apply_pod(
        pod("web").namespace("other").label("app", "web").build(),
        None,
        0,
    );
    let api = s.apply_pod(pod("api").label("app", "api").build(), None, 0);
    let budget = |name: &str, app: &str| PodDisruptionBudget {
        namespace: Sym::new("default"),
        name: Sym::new(name),
        selector: LabelSelector::labels([("app", app)]),
        disruptions_allowed: 1,
    };
    s.set_pdbs(vec![budget("web", "web"), budget("api", "api")]);
    assert_eq!(s.pod(web).unwrap().pdbs, vec![0]);
    assert_eq!(s.pod(api).unwrap().pdbs, vec![1]);
    assert!(s.pod(other_ns).unwrap().pdbs.is_empty());
    // A pod that arrives later is matched too.
    let late = s.apply_pod(pod("web-2").label("app", "web").build(), None, 5);
    assert_eq!(s.pod(late).unwrap().pdbs, vec![0]);
}

/// Whether a pod nominated to `nominee` (at 10 ms) would still wait for it
/// at 100 ms.
fn holds(s: &ClusterState, nominee: Nominee) -> bool {
    let (_, e) = s.pods().next().expect("a pod");
    let mut e = e.clone();
    e.nominated = Some(nominee);
    e.nominated_ms = 10;
    s.nomination_holds(&e, 100)
}
