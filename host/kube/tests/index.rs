//! The index as the runner drives it: changes in, core values out.

use dovetail_control::actions::ObjectKind;
use dovetail_control::{ClusterState, Nominee};
use dovetail_core::model::PodKey;
use dovetail_core::sym::Sym;
use dovetail_kube::index::Index;
use dovetail_kube::observed::{Change, Lookup, Observed, WatchedKind};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000_000;

fn object<T: serde::de::DeserializeOwned>(v: Value) -> Box<T> {
    Box::new(serde_json::from_value(v).expect("a valid object"))
}

fn pod_json(name: &str, rv: u64, node: Option<&str>) -> Value {
    let mut spec = json!({
        "containers": [{
            "name": "app",
            "image": "app:1",
            "resources": { "requests": { "cpu": "1", "memory": "1Gi" } },
        }],
    });
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": { "app": "web" },
        },
        "spec": spec,
        "status": { "phase": if node.is_some() { "Running" } else { "Pending" } },
    })
}

fn pod(name: &str, rv: u64, node: Option<&str>) -> Observed {
    Observed::Pod(object(pod_json(name, rv, node)))
}

fn node_json(name: &str, rv: u64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": { "kubernetes.io/hostname": name },
            "finalizers": ["karpenter.sh/termination"],
        },
        "spec": { "providerID": format!("aws:///us-east-1a/i-{name}") },
        "status": {
            "capacity": { "cpu": "4", "memory": "16Gi", "pods": "110" },
            "allocatable": { "cpu": "4", "memory": "16Gi", "pods": "110" },
            "conditions": [{ "type": "Ready", "status": "True" }],
        },
    })
}

fn node(name: &str, rv: u64) -> Observed {
    Observed::Node(object(node_json(name, rv)))
}

fn pool_json(name: &str, rv: u64, operator: &str) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
        },
        "spec": {
            "template": { "spec": {
                "requirements": [
                    { "key": "karpenter.sh/capacity-type", "operator": operator, "values": ["on-demand"] },
                ],
                "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            }},
        },
    })
}

fn pool(name: &str, rv: u64, operator: &str) -> Observed {
    Observed::NodePool(object(pool_json(name, rv, operator)))
}

fn claim_json(name: &str, rv: u64) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
            "labels": { "karpenter.sh/nodepool": "default" },
            "finalizers": ["karpenter.sh/termination"],
        },
        "spec": {
            "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            "requirements": [{ "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"] }],
        },
    })
}

fn applied(index: &mut Index, o: Observed) {
    index.apply(Change::Applied(o), NOW);
}

fn key(name: &str) -> PodKey {
    PodKey {
        namespace: Sym::new("default"),
        name: Sym::new(name),
    }
}

fn pod_labels(state: &ClusterState, name: &str) -> Vec<(String, String)> {
    let id = state.pod_id(&key(name)).expect("the pod is held");
    state
        .pod(id)
        .unwrap()
        .pod
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn each_version_of_an_object_is_converted_once() {
    let mut index = Index::new();
    applied(&mut index, pod("web-1", 5, None));
    assert_eq!(index.conversions(), 1);
    let version = index.state().version();

    // The watch's copy of what a write's response already brought, and an
    // older copy arriving late: neither is converted, nothing changes.
    applied(&mut index, pod("web-1", 5, None));
    let mut old = pod_json("web-1", 4, None);
    old["metadata"]["labels"]["app"] = json!("stale");
    applied(&mut index, Observed::Pod(object(old)));
    assert_eq!(index.conversions(), 1);
    assert_eq!(index.state().version(), version);
    assert_eq!(
        pod_labels(index.state(), "web-1"),
        [("app".into(), "web".into())]
    );

    // Resource versions are numbers: 10 is newer than 5.
    let mut newer = pod_json("web-1", 10, None);
    newer["metadata"]["labels"]["app"] = json!("api");
    applied(&mut index, Observed::Pod(object(newer)));
    assert_eq!(index.conversions(), 2);
    assert_eq!(
        pod_labels(index.state(), "web-1"),
        [("app".into(), "api".into())]
    );
    assert_eq!(
        index.resource_version(ObjectKind::Pod, Some("default"), "web-1"),
        Some("10".into())
    );
    assert_eq!(
        index.uid(ObjectKind::Pod, Some("default"), "web-1"),
        Some("uid-web-1".into())
    );
}

#[test]
fn a_relist_deletes_the_objects_that_vanished_and_only_of_its_kind() {
    let mut index = Index::new();
    let earlier = NOW - 60_000;
    index.apply(Change::Applied(node("n1", 1)), earlier);
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        index.apply(Change::Applied(pod(name, 2 + i as u64, None)), earlier);
    }
    assert_eq!(index.state().pending().len(), 3);

    index.apply(Change::Relisting(WatchedKind::Pod), NOW);
    applied(&mut index, pod("a", 2, None));
    applied(&mut index, pod("b", 3, None));
    index.apply(Change::Listed(WatchedKind::Pod), NOW);

    let state = index.state();
    assert!(state.pod_id(&key("a")).is_some() && state.pod_id(&key("b")).is_some());
    assert!(state.pod_id(&key("c")).is_none(), "c was not listed again");
    assert_eq!(state.pending().len(), 2);
    assert_eq!(index.count(WatchedKind::Pod), 2);
    assert_eq!(state.node_count(), 1, "a relist of pods leaves nodes alone");
    assert_eq!(index.uid(ObjectKind::Pod, Some("default"), "c"), None);

    index.apply(Change::Relisting(WatchedKind::Node), NOW);
    index.apply(Change::Listed(WatchedKind::Node), NOW);
    assert_eq!(index.state().node_count(), 0);
}

#[test]
fn an_object_applied_just_before_a_relist_that_missed_it_is_kept_until_the_watch_decides() {
    let mut index = Index::new();
    let doubt = dovetail_kube::index::RELIST_DOUBT.as_millis() as u64;
    // A NodeClaim created by the controller: its response is applied, then
    // the relist that began before the create lists without it.
    let claim = || Observed::NodeClaim(object(claim_json("default-new", 50)));
    index.apply(Change::Applied(claim()), NOW);
    index.apply(Change::Applied(pod("old", 10, None)), NOW - 60_000);
    index.apply(Change::Relisting(WatchedKind::NodeClaim), NOW + 100);
    index.apply(Change::Listed(WatchedKind::NodeClaim), NOW + 200);
    index.apply(Change::Relisting(WatchedKind::Pod), NOW + 100);
    index.apply(Change::Listed(WatchedKind::Pod), NOW + 200);
    assert_eq!(index.state().claims().count(), 1, "kept in doubt");
    assert_eq!(index.state().pod_count(), 0, "long gone: deleted at once");
    // The watch brings it back: no longer in doubt.
    index.apply(Change::Applied(claim()), NOW + 300);
    index.settle(NOW + 200 + doubt);
    assert_eq!(index.state().claims().count(), 1);

    // Another, never brought back, goes once the doubt has passed.
    let other = || Observed::NodeClaim(object(claim_json("default-gone", 60)));
    index.apply(Change::Applied(other()), NOW + 1_000);
    index.apply(Change::Relisting(WatchedKind::NodeClaim), NOW + 1_100);
    index.apply(Change::Applied(claim()), NOW + 1_150);
    index.apply(Change::Listed(WatchedKind::NodeClaim), NOW + 1_200);
    index.settle(NOW + 1_200 + doubt - 1);
    assert_eq!(index.state().claims().count(), 2);
    index.settle(NOW + 1_200 + doubt);
    let names: Vec<&str> = index
        .state()
        .claims()
        .map(|(_, c)| c.name.as_str())
        .collect();
    assert_eq!(names, ["default-new"]);
}

#[test]
fn a_pod_bound_before_its_node_arrives_waits_for_it_and_is_never_pending() {
    let mut index = Index::new();
    applied(&mut index, pod("web-1", 1, Some("n1")));
    assert!(
        index.state().pending().is_empty(),
        "it is bound, not pending"
    );
    assert_eq!(index.state().pod_count(), 0);
    assert_eq!(index.parked_pods(), 1);

    applied(&mut index, node("n1", 2));
    let state = index.state();
    let node = state.node_id(Sym::new("n1")).unwrap();
    let id = state
        .pod_id(&key("web-1"))
        .expect("bound once its node arrived");
    assert_eq!(state.pod(id).unwrap().node, Some(node));
    assert_eq!(state.node(node).unwrap().pods, [id]);
    assert_eq!(state.node(node).unwrap().requested.cpu, 1000);
    assert_eq!(index.parked_pods(), 0);

    // A pod bound to a node already held binds at once; a pending pod that
    // gets bound moves onto its node.
    applied(&mut index, pod("web-2", 3, None));
    assert_eq!(index.state().pending().len(), 1);
    applied(&mut index, pod("web-2", 4, Some("n1")));
    let state = index.state();
    assert!(state.pending().is_empty());
    assert_eq!(state.node(node).unwrap().pods.len(), 2);

    // The node goes: its pods still name it, so they wait again rather
    // than look pending.
    index.apply(Change::Deleted(self::node("n1", 5)), NOW);
    assert_eq!(index.state().node_count(), 0);
    assert!(index.state().pending().is_empty());
    assert_eq!(index.parked_pods(), 2);
    index.apply(Change::Deleted(pod("web-1", 6, Some("n1"))), NOW);
    assert_eq!(index.parked_pods(), 1);
}

#[test]
fn terminal_pods_leave_terminating_pods_are_marked_and_nominations_survive_updates() {
    let mut index = Index::new();
    applied(&mut index, pod("job-1", 1, None));
    applied(&mut index, pod("web-1", 2, None));
    let id = index.state().pod_id(&key("web-1")).unwrap();
    index
        .state_mut()
        .nominate(id, Nominee::Node(dovetail_control::NodeId(99)), NOW);

    let mut done = pod_json("job-1", 3, None);
    done["status"]["phase"] = json!("Succeeded");
    applied(&mut index, Observed::Pod(object(done)));
    assert!(index.state().pod_id(&key("job-1")).is_none());
    assert_eq!(index.state().pending().len(), 1);

    let mut deleting = pod_json("web-1", 4, None);
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-02T00:00:00Z");
    applied(&mut index, Observed::Pod(object(deleting)));
    let e = index.state().pod(id).expect("same pod, same id");
    assert_eq!(e.pod.deleting_since, Some(1_704_153_600));
    assert_eq!(
        e.nominated,
        Some(Nominee::Node(dovetail_control::NodeId(99))),
        "an update keeps the nomination"
    );
}

#[test]
fn nodes_carry_provider_id_finalizer_readiness_and_deletion_time() {
    let mut index = Index::new();
    applied(&mut index, node("n1", 1));
    let id = index.state().node_id(Sym::new("n1")).unwrap();
    let e = index.state().node(id).unwrap();
    assert_eq!(e.provider_id.as_deref(), Some("aws:///us-east-1a/i-n1"));
    assert!(e.finalizer && e.node.ready && e.deletion_ms.is_none());

    let mut n = node_json("n1", 2);
    n["status"]["conditions"][0]["status"] = json!("False");
    n["metadata"]["deletionTimestamp"] = json!("2024-01-02T00:00:00Z");
    applied(&mut index, Observed::Node(object(n)));
    let e = index.state().node(id).unwrap();
    assert!(!e.node.ready);
    assert_eq!(e.deletion_ms, Some(1_704_153_600_000));
    assert_eq!(index.state().deleting_nodes().count(), 1);
}

#[test]
fn a_malformed_node_pool_is_recorded_and_dropped_while_the_others_keep_working() {
    let mut index = Index::new();
    applied(&mut index, pool("general", 1, "In"));
    applied(&mut index, pool("gpu", 2, "In"));
    assert_eq!(index.state().node_pools().len(), 2);

    applied(&mut index, pool("gpu", 3, "Inn"));
    let names: Vec<&str> = index
        .state()
        .node_pools()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["general"],
        "the previous good gpu pool is dropped too"
    );
    let problems: Vec<(&str, &str)> = index.node_pool_problems().collect();
    assert_eq!(problems.len(), 1);
    let (name, message) = problems[0];
    assert_eq!(name, "gpu");
    assert!(
        message.contains("spec.template.spec.requirements[0].operator") && message.contains("Inn"),
        "names the field: {message}"
    );
    assert!(
        !message.contains('\n'),
        "one line, for a condition: {message}"
    );
    // The writes still find it, to report the problem on it.
    assert_eq!(
        index.uid(ObjectKind::NodePool, None, "gpu"),
        Some("uid-gpu".into())
    );

    applied(&mut index, pool("gpu", 4, "In"));
    assert_eq!(index.state().node_pools().len(), 2);
    assert_eq!(index.node_pool_problems().count(), 0);
}

#[test]
fn an_object_that_cannot_be_converted_is_recorded_and_the_rest_go_on() {
    let mut index = Index::new();
    let mut bad = pod_json("bad", 1, None);
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
    applied(&mut index, Observed::Pod(object(bad)));
    applied(&mut index, pod("good", 2, None));
    let problems: Vec<_> = index.problems().collect();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].kind, problems[0].namespace, problems[0].name),
        (WatchedKind::Pod, Some("default"), "bad")
    );
    assert!(
        problems[0].message.contains("requests[cpu]"),
        "{}",
        problems[0].message
    );
    assert_eq!(index.state().pending().len(), 1);

    applied(&mut index, pod("bad", 3, None));
    assert_eq!(index.problems().count(), 0, "fixed");
    assert_eq!(index.state().pending().len(), 2);
}

#[test]
fn a_claim_keeps_the_launch_plan_its_object_does_not_carry() {
    let mut index = Index::new();
    let mut planned = {
        let c: dovetail_api::NodeClaim =
            serde_json::from_value(claim_json("default-abc", 1)).unwrap();
        c.to_core().unwrap()
    };
    planned.launch = vec![dovetail_core::scheduler::OfferingRef {
        instance_type: Sym::new("m5.large"),
        zone: Sym::new("us-east-1a"),
        capacity_type: dovetail_core::catalog::CapacityType::OnDemand,
        price: 0.096,
    }];
    index.expect_claim(&planned, NOW);
    applied(
        &mut index,
        Observed::NodeClaim(object(claim_json("default-abc", 1))),
    );
    let mut update = claim_json("default-abc", 2);
    update["status"] = json!({ "providerID": "aws:///us-east-1a/i-1" });
    applied(&mut index, Observed::NodeClaim(object(update)));
    let c = index
        .state()
        .claim_by_name(Sym::new("default-abc"))
        .unwrap();
    assert_eq!(c.launch, planned.launch);
    assert_eq!(
        c.status.provider_id.as_deref(),
        Some("aws:///us-east-1a/i-1")
    );
    assert!(c.finalizer);

    index.apply(
        Change::Deleted(Observed::NodeClaim(object(claim_json("default-abc", 3)))),
        NOW,
    );
    assert_eq!(index.state().claims().count(), 0);
}

#[test]
fn a_late_delete_of_an_earlier_incarnation_leaves_the_new_object() {
    let mut index = Index::new();
    // Deleted at 7 and created again at 8; the create's response arrives
    // before the watch's delete.
    applied(&mut index, node("n1", 8));
    index.apply(Change::Deleted(node("n1", 7)), NOW);
    assert_eq!(index.state().node_count(), 1);
    index.apply(Change::Deleted(node("n1", 9)), NOW);
    assert_eq!(index.state().node_count(), 0);
}

fn pdb_json(rv: u64, selector: &str, allowed: i32) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": { "name": "web", "namespace": "default", "resourceVersion": rv.to_string() },
        "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": selector } } },
        "status": {
            "disruptionsAllowed": allowed, "currentHealthy": 2, "desiredHealthy": 1,
            "expectedPods": 2,
        },
    })
}

#[test]
fn budgets_daemon_sets_and_namespaces_reach_the_state() {
    let mut index = Index::new();
    applied(&mut index, pod("web-1", 1, None));
    applied(&mut index, Observed::Pdb(object(pdb_json(2, "web", 1))));
    let id = index.state().pod_id(&key("web-1")).unwrap();
    assert_eq!(index.state().pdbs().len(), 1);
    assert_eq!(index.state().pod(id).unwrap().pdbs, [0]);

    applied(&mut index, Observed::Pdb(object(pdb_json(3, "web", 0))));
    assert_eq!(index.state().pdbs()[0].disruptions_allowed, 0);
    applied(&mut index, Observed::Pdb(object(pdb_json(4, "db", 0))));
    assert!(
        index.state().pod(id).unwrap().pdbs.is_empty(),
        "a new selector covers other pods"
    );

    applied(
        &mut index,
        Observed::Namespace(object(json!({
            "metadata": { "name": "team-a", "resourceVersion": "5", "labels": { "team": "a" } },
        }))),
    );
    let ns = &index.state().namespaces()[0];
    assert_eq!(ns.name.as_str(), "team-a");
    applied(
        &mut index,
        Observed::DaemonSet(object(json!({
            "metadata": { "name": "agent", "namespace": "kube-system", "resourceVersion": "6" },
            "spec": {
                "selector": { "matchLabels": { "app": "agent" } },
                "template": {
                    "metadata": { "labels": { "app": "agent" } },
                    "spec": { "containers": [{ "name": "a", "image": "a",
                        "resources": { "requests": { "cpu": "100m" } } }] },
                },
            },
        }))),
    );
    assert_eq!(index.state().daemon_sets().len(), 1);
    assert_eq!(
        index.state().daemon_sets()[0].pod.requests.cpu,
        100,
        "the DaemonSet's pod as the scheduler will see it"
    );
    index.apply(
        Change::Deleted(Observed::Pdb(object(pdb_json(9, "db", 0)))),
        NOW,
    );
    assert!(index.state().pdbs().is_empty());
}

#[test]
fn node_class_readiness_is_exposed() {
    let mut index = Index::new();
    let class = |rv: u64, ready: &str| {
        Observed::Ec2NodeClass(object(json!({
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": { "name": "default", "resourceVersion": rv.to_string() },
            "spec": {
                "role": "KarpenterNodeRole",
                "amiSelectorTerms": [{ "alias": "al2023@latest" }],
                "subnetSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "c" } }],
                "securityGroupSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "c" } }],
            },
            "status": { "conditions": [{
                "type": "Ready", "status": ready, "reason": "Ready",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }] },
        })))
    };
    assert_eq!(index.node_class_ready("default"), None);
    applied(&mut index, class(1, "False"));
    assert_eq!(index.node_class_ready("default"), Some(false));
    applied(&mut index, class(2, "True"));
    assert_eq!(index.node_class_ready("default"), Some(true));
}

#[test]
fn budgets_listed_after_many_pods_reach_the_state_once_their_list_ends() {
    let mut index = Index::new();
    for i in 0..50 {
        applied(&mut index, pod(&format!("web-{i}"), 1 + i, None));
    }
    index.apply(Change::Relisting(WatchedKind::Pdb), NOW);
    let pdb = |name: &str, rv: u64| {
        let mut v = pdb_json(rv, "web", 1);
        v["metadata"]["name"] = json!(name);
        Observed::Pdb(object(v))
    };
    applied(&mut index, pdb("a", 100));
    applied(&mut index, pdb("b", 101));
    let version = index.state().version();
    assert!(
        index.state().pdbs().is_empty(),
        "not handed over one by one, each recomputing every pod's budgets"
    );
    index.apply(Change::Listed(WatchedKind::Pdb), NOW);
    assert_eq!(index.state().pdbs().len(), 2);
    assert!(index.state().version() > version);
    let id = index.state().pod_id(&key("web-7")).unwrap();
    assert_eq!(index.state().pod(id).unwrap().pdbs, [0, 1]);

    // Outside a list, a status update changes its budget in place.
    let mut v = pdb_json(102, "web", 0);
    v["metadata"]["name"] = json!("b");
    applied(&mut index, Observed::Pdb(object(v)));
    let allowed: Vec<i32> = index
        .state()
        .pdbs()
        .iter()
        .map(|p| p.disruptions_allowed)
        .collect();
    assert_eq!(allowed, [1, 0]);
}
