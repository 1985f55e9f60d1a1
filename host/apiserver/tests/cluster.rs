//! The cluster in a box: nodes for the fake cloud's instances, the
//! scheduler, the workload controllers and PodDisruptionBudget status, all
//! observed through the API as a user or a controller would.

use std::future::Future;
use std::time::Duration;

use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_control::cloud::{CloudProvider, CreateError, InstanceState};
use dovetail_core::catalog::CapacityType;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const READY_AFTER: Duration = Duration::from_millis(300);

async fn start() -> Cluster {
    Cluster::start(ClusterConfig {
        node_ready_after: READY_AFTER,
        grace_period_scale: 0.0,
        resync: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .expect("cluster starts")
}

/// Polls `check` until it returns `Some`, failing with `what` after 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

fn taint_keys(node: &Node) -> Vec<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

async fn node_for(nodes: &Api<Node>, provider_id: &str) -> Option<Node> {
    nodes
        .list(&ListParams::default())
        .await
        .ok()?
        .items
        .into_iter()
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
}

/// Launches an instance and waits for its node to be Ready; then removes
/// the `karpenter.sh/unregistered` taint, as the controller does once it
/// has registered the node.
async fn ready_node(cluster: &Cluster, claim: &str, instance_type: &str) -> String {
    let launch = cluster
        .cloud()
        .launch(claim, instance_type, "us-east-1a", CapacityType::OnDemand)
        .expect("launch");
    let nodes: Api<Node> = Api::all(cluster.client());
    let pid = launch.instance.provider_id.clone();
    let node = eventually("a Ready node", || async {
        node_for(&nodes, &pid)
            .await
            .filter(|n| condition(n, "Ready") == Some("True"))
    })
    .await;
    let name = node.metadata.name.clone().unwrap();
    let taints: Vec<_> = node
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != "karpenter.sh/unregistered")
        .collect();
    nodes
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "taints": taints } })),
        )
        .await
        .expect("untaint");
    name
}

fn deployment(
    name: &str,
    replicas: i32,
    cpu: &str,
    node_selector: Option<(&str, &str)>,
) -> Deployment {
    let selector = node_selector.map(|(k, v)| json!({ k: v }));
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "nodeSelector": selector,
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": { "requests": { "cpu": cpu, "memory": "64Mi" } },
                    }],
                },
            },
        },
    }))
    .unwrap()
}

async fn pods_of(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

#[tokio::test]
async fn a_launched_instance_registers_a_node_that_turns_ready_after_the_delay() {
    let cluster = start().await;
    let launch = cluster
        .cloud()
        .launch(
            "default-x7k2p",
            "m5.large",
            "us-east-1a",
            CapacityType::OnDemand,
        )
        .expect("launch");
    let nodes: Api<Node> = Api::all(cluster.client());
    let pid = launch.instance.provider_id.clone();
    let started = std::time::Instant::now();
    let node = eventually("the node", || node_for(&nodes, &pid)).await;
    let name = node.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("ip-10-") && name.ends_with(".ec2.internal"),
        "{name}"
    );
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["node.kubernetes.io/instance-type"], "m5.large");
    assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1a");
    assert_eq!(labels["karpenter.sh/capacity-type"], "on-demand");
    assert_eq!(labels["kubernetes.io/hostname"], name);
    let taints = taint_keys(&node);
    assert!(
        taints.contains(&"karpenter.sh/unregistered:NoExecute".to_string()),
        "{taints:?}"
    );
    assert_eq!(
        node.status.as_ref().unwrap().capacity.as_ref().unwrap()["cpu"].0,
        "2"
    );
    assert_ne!(condition(&node, "Ready"), Some("True"));

    let ready = eventually("Ready", || async {
        nodes
            .get(&name)
            .await
            .ok()
            .filter(|n| condition(n, "Ready") == Some("True"))
    })
    .await;
    assert!(
        started.elapsed() >= READY_AFTER,
        "Ready after {:?}",
        started.elapsed()
    );
    let taints = taint_keys(&ready);
    assert!(
        !taints
            .iter()
            .any(|t| t.starts_with("node.kubernetes.io/not-ready")),
        "{taints:?}"
    );
    assert!(
        taints.contains(&"karpenter.sh/unregistered:NoExecute".to_string()),
        "the controller removes it: {taints:?}"
    );

    let leases: Api<Lease> = Api::namespaced(cluster.client(), "kube-node-lease");
    let lease = eventually("the node's lease", || async {
        leases.get(&name).await.ok()
    })
    .await;
    assert!(lease.spec.unwrap().renew_time.is_some());
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_terminated_instance_leaves_its_node_not_ready() {
    let cluster = start().await;
    let name = ready_node(&cluster, "default-t3rm1", "m5.large").await;
    let nodes: Api<Node> = Api::all(cluster.client());
    let pid = nodes
        .get(&name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .provider_id
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("lone", 1, "100m", None))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let first = eventually("a Running pod", || async {
        pods_of(&pods, "lone")
            .await
            .into_iter()
            .find(|p| phase(p) == "Running")
    })
    .await;
    cluster.cloud().terminate(&pid);
    let node = eventually("Ready=Unknown", || async {
        nodes
            .get(&name)
            .await
            .ok()
            .filter(|n| condition(n, "Ready") == Some("Unknown"))
    })
    .await;
    assert!(taint_keys(&node).contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string()));
    // The pod stays as last reported: no kubelet is left to change it.
    let still = pods
        .get(first.metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(phase(&still), "Running");

    // Once the node is deleted its pods are collected and replaced; the
    // replacement has nowhere to go.
    nodes.delete(&name, &DeleteParams::default()).await.unwrap();
    let replacement = eventually("a replacement pod", || async {
        let ps = pods_of(&pods, "lone").await;
        (ps.len() == 1 && ps[0].metadata.name != first.metadata.name).then(|| ps[0].clone())
    })
    .await;
    assert_eq!(node_of(&replacement), "");
    cluster.shutdown().await;
}

#[tokio::test]
async fn deployments_run_where_they_fit_and_replace_deleted_pods() {
    let cluster = start().await;
    let a = ready_node(&cluster, "default-aaaaa", "m5.large").await;
    let b = ready_node(&cluster, "default-bbbbb", "m5.large").await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pp = PostParams::default();
    deployments
        .create(&pp, &deployment("web", 4, "700m", None))
        .await
        .unwrap();
    deployments
        .create(&pp, &deployment("huge", 1, "64", None))
        .await
        .unwrap();
    deployments
        .create(
            &pp,
            &deployment(
                "picky",
                1,
                "100m",
                Some(("node.kubernetes.io/instance-type", "p5.48xlarge")),
            ),
        )
        .await
        .unwrap();

    let running = eventually("4 web pods Running", || async {
        let ps = pods_of(&pods, "web").await;
        (ps.len() == 4 && ps.iter().all(|p| phase(p) == "Running")).then_some(ps)
    })
    .await;
    // 2 × 700m fill an m5.large (1930m allocatable): two pods on each node.
    for n in [&a, &b] {
        assert_eq!(
            running.iter().filter(|p| node_of(p) == n.as_str()).count(),
            2,
            "on {n}"
        );
    }
    let p = &running[0];
    let status = p.status.as_ref().unwrap();
    assert!(status.pod_ip.is_some() && status.host_ip.is_some() && status.start_time.is_some());
    assert!(status.container_statuses.as_ref().unwrap()[0].ready);

    for (app, why) in [
        ("huge", "2 Insufficient cpu"),
        (
            "picky",
            "2 node(s) didn't match Pod's node affinity/selector",
        ),
    ] {
        let pod = eventually("an Unschedulable condition", || async {
            pods_of(&pods, app).await.into_iter().find(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.type_ == "PodScheduled"
                                && c.status == "False"
                                && c.reason.as_deref() == Some("Unschedulable")
                        })
                    })
            })
        })
        .await;
        assert_eq!(node_of(&pod), "", "{app} stays pending");
        let message = pod
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")
            .unwrap()
            .message
            .unwrap();
        assert!(
            message.starts_with("0/2 nodes are available: "),
            "{message}"
        );
        assert!(message.contains(why), "{app}: {message}");
    }

    let d = eventually("Deployment status", || async {
        deployments.get("web").await.ok().filter(|d| {
            d.status
                .as_ref()
                .is_some_and(|s| s.ready_replicas == Some(4) && s.available_replicas == Some(4))
        })
    })
    .await;
    let status = d.status.unwrap();
    assert_eq!(status.replicas, Some(4));
    assert_eq!(status.observed_generation, d.metadata.generation);
    let owner = &running[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("ReplicaSet", Some(true))
    );
    assert!(owner.name.starts_with("web-"));

    let victim = running[0].metadata.name.clone().unwrap();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually("a replacement pod", || async {
        let ps = pods_of(&pods, "web").await;
        (ps.len() == 4
            && ps.iter().all(|p| phase(p) == "Running")
            && !ps
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(victim.as_str())))
        .then_some(())
    })
    .await;

    // A new template replaces the ReplicaSet: the old one goes to 0.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "spec": { "template": { "metadata": { "labels": { "version": "2" } } } } }),
            ),
        )
        .await
        .unwrap();
    eventually("pods of the new template", || async {
        let ps = pods_of(&pods, "web").await;
        (ps.len() == 4
            && ps
                .iter()
                .all(|p| p.metadata.labels.as_ref().unwrap().get("version").is_some()))
        .then_some(())
    })
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client(), "default");
    let mut scales: Vec<i32> = sets
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.spec.as_ref().unwrap().replicas.unwrap())
        .collect();
    scales.sort();
    assert_eq!(scales, [0, 4], "the old ReplicaSet is scaled to 0");

    // Deleting the Deployment takes its ReplicaSets and pods with it.
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("web's ReplicaSets and pods collected", || async {
        let left = sets
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?
            .items;
        (left.is_empty() && pods_of(&pods, "web").await.is_empty()).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_daemonset_runs_one_pod_per_node() {
    let cluster = start().await;
    let a = ready_node(&cluster, "default-d1111", "m5.large").await;
    let b = ready_node(&cluster, "default-d2222", "m5.xlarge").await;
    let sets: Api<DaemonSet> = Api::namespaced(cluster.client(), "default");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": { "name": "agent", "namespace": "default" },
        "spec": {
            "selector": { "matchLabels": { "app": "agent" } },
            "template": {
                "metadata": { "labels": { "app": "agent" } },
                "spec": { "containers": [{ "name": "agent", "image": "agent:1", "resources": { "requests": { "cpu": "100m" } } }] },
            },
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &ds).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let ps = eventually("a Running agent on each node", || async {
        let ps = pods_of(&pods, "agent").await;
        (ps.len() == 2 && ps.iter().all(|p| phase(p) == "Running")).then_some(ps)
    })
    .await;
    let mut on: Vec<&str> = ps.iter().map(node_of).collect();
    on.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(on, want);
    let tolerations = ps[0].spec.as_ref().unwrap().tolerations.clone().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready"))
    );
    let status = eventually("DaemonSet status", || async {
        sets.get("agent")
            .await
            .ok()
            .and_then(|d| d.status)
            .filter(|s| s.number_ready == 2)
    })
    .await;
    assert_eq!(
        (
            status.desired_number_scheduled,
            status.current_number_scheduled
        ),
        (2, 2)
    );

    // A third node gets its own.
    ready_node(&cluster, "default-d3333", "m5.large").await;
    eventually("a third agent", || async {
        let ps = pods_of(&pods, "agent").await;
        (ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running")).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn pod_disruption_budget_status_is_computed() {
    let cluster = start().await;
    ready_node(&cluster, "default-p1111", "m5.xlarge").await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    deployments
        .create(&PostParams::default(), &deployment("db", 3, "100m", None))
        .await
        .unwrap();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(cluster.client(), "default");
    for (name, rule) in [
        ("db-min", json!({ "minAvailable": 2 })),
        ("db-max", json!({ "maxUnavailable": "50%" })),
    ] {
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "default" },
            "spec": { "selector": { "matchLabels": { "app": "db" } } },
        }))
        .unwrap();
        let mut pdb = pdb;
        let spec = pdb.spec.as_mut().unwrap();
        spec.min_available = serde_json::from_value(rule["minAvailable"].clone()).unwrap();
        spec.max_unavailable = serde_json::from_value(rule["maxUnavailable"].clone()).unwrap();
        budgets.create(&PostParams::default(), &pdb).await.unwrap();
    }
    let min = eventually("db-min status", || async {
        budgets
            .get("db-min")
            .await
            .ok()
            .and_then(|b| b.status)
            .filter(|s| s.current_healthy == 3)
    })
    .await;
    assert_eq!(
        (
            min.expected_pods,
            min.desired_healthy,
            min.disruptions_allowed
        ),
        (3, 2, 1)
    );
    let c = &min.conditions.unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("DisruptionAllowed", "True", "SufficientPods")
    );
    assert!(min.observed_generation.is_some());
    // 50% of 3 rounds up to 2 unavailable: 1 must stay healthy.
    let max = eventually("db-max status", || async {
        budgets
            .get("db-max")
            .await
            .ok()
            .and_then(|b| b.status)
            .filter(|s| s.current_healthy == 3)
    })
    .await;
    assert_eq!(
        (
            max.expected_pods,
            max.desired_healthy,
            max.disruptions_allowed
        ),
        (3, 1, 2)
    );

    // Scaling down to 2 leaves db-min no room.
    deployments
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 2 } })),
        )
        .await
        .unwrap();
    let min = eventually("db-min blocked", || async {
        budgets
            .get("db-min")
            .await
            .ok()
            .and_then(|b| b.status)
            .filter(|s| s.current_healthy == 2)
    })
    .await;
    assert_eq!(min.disruptions_allowed, 0);
    assert_eq!(min.conditions.unwrap()[0].reason, "InsufficientPods");

    // An eviction's record of a pod that is gone is pruned.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let mut pdb = budgets.get("db-max").await.unwrap();
    let status = pdb.status.as_mut().unwrap();
    status.disrupted_pods = Some(
        [(
            "no-such-pod".to_string(),
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
        )]
        .into_iter()
        .collect(),
    );
    budgets
        .replace_status("db-max", &PostParams::default(), &pdb)
        .await
        .unwrap();
    eventually("disruptedPods pruned", || async {
        budgets
            .get("db-max")
            .await
            .ok()
            .and_then(|b| b.status)
            .filter(|s| s.disrupted_pods.as_ref().is_none_or(|d| d.is_empty()))
    })
    .await;
    assert_eq!(pods_of(&pods, "db").await.len(), 2);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_carries_its_node_claims_labels_and_taints() {
    let cluster = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    for crd in dovetail_api::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"),
        "nodeclaims",
    );
    let claims: Api<DynamicObject> = Api::all_with(cluster.client(), &resource);
    let claim: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": "gpu-k2x9d",
            "labels": { "karpenter.sh/nodepool": "gpu", "team": "ml" },
        },
        "spec": {
            "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            "requirements": [{ "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"] }],
            "taints": [{ "key": "nvidia.com/gpu", "effect": "NoSchedule" }],
            "startupTaints": [{ "key": "example.com/agent-not-ready", "effect": "NoSchedule" }],
        },
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let launch = cluster
        .cloud()
        .launch("gpu-k2x9d", "m5.large", "us-east-1b", CapacityType::Spot)
        .expect("launch");
    let nodes: Api<Node> = Api::all(cluster.client());
    let pid = launch.instance.provider_id.clone();
    let node = eventually("the node", || node_for(&nodes, &pid)).await;
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["karpenter.sh/nodepool"], "gpu");
    assert_eq!(labels["team"], "ml");
    assert_eq!(labels["karpenter.sh/capacity-type"], "spot");
    let taints = taint_keys(&node);
    for t in [
        "nvidia.com/gpu:NoSchedule",
        "example.com/agent-not-ready:NoSchedule",
        "karpenter.sh/unregistered:NoExecute",
        "node.kubernetes.io/not-ready:NoSchedule",
    ] {
        assert!(taints.contains(&t.to_string()), "{t} in {taints:?}");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_fake_cloud_sells_the_catalog_and_runs_short_when_told() {
    let cluster = start().await;
    let cloud = cluster.cloud();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 60_000;
    cloud.add_shortage(
        until,
        &["m5.large"],
        &["us-east-1a"],
        Some(CapacityType::Spot),
    );
    let e = cloud
        .launch(
            "default-s1111",
            "m5.large",
            "us-east-1a",
            CapacityType::Spot,
        )
        .unwrap_err();
    assert!(matches!(e, CreateError::InsufficientCapacity { .. }), "{e}");
    let ok = cloud
        .launch(
            "default-s2222",
            "m5.large",
            "us-east-1a",
            CapacityType::OnDemand,
        )
        .expect("on-demand is not short");
    assert_eq!(ok.instance.state, InstanceState::Running);
    assert!(ok.instance.price > 0.0);
    let e = cloud
        .launch(
            "default-s3333",
            "no.such-type",
            "us-east-1a",
            CapacityType::OnDemand,
        )
        .unwrap_err();
    assert!(e.to_string().contains("no.such-type"), "{e}");
    // The CloudProvider port sees the same instances.
    let listed = CloudProvider::list(cloud).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].provider_id, ok.instance.provider_id);
    cloud.terminate(&ok.instance.provider_id);
    assert!(CloudProvider::get(cloud, &ok.instance.provider_id).is_err());
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_kubelet_confirms_a_graceful_deletion_after_the_scaled_grace_period() {
    let cluster = Cluster::start(ClusterConfig {
        node_ready_after: READY_AFTER,
        grace_period_scale: 0.05,
        resync: Duration::from_millis(100),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let node = ready_node(&cluster, "default-g1111", "m5.large").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "slow", "namespace": "default", "labels": { "app": "slow" } },
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{ "name": "slow", "image": "slow:1" }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the pod Running", || async {
        pods.get("slow")
            .await
            .ok()
            .filter(|p| phase(p) == "Running" && node_of(p) == node)
    })
    .await;
    let asked = std::time::Instant::now();
    pods.delete("slow", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("slow").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    eventually("the pod gone", || async {
        pods.get_opt("slow")
            .await
            .ok()
            .and_then(|p| p.is_none().then_some(()))
    })
    .await;
    // 10 s × 0.05
    assert!(
        asked.elapsed() >= Duration::from_millis(500),
        "gone after {:?}",
        asked.elapsed()
    );
    cluster.shutdown().await;
}

/// The fake cloud resolves every EC2NodeClass, as the AWS provider would a
/// class whose subnets, security groups, AMIs and role exist: its
/// conditions turn True at its generation, are restamped when the spec
/// changes, and are not written again while nothing changes.
#[tokio::test]
async fn every_ec2_node_class_becomes_ready_at_its_generation() {
    let cluster = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    for crd in dovetail_api::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let classes: Api<dovetail_api::EC2NodeClass> = Api::all(cluster.client());
    let class: dovetail_api::EC2NodeClass = serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": { "name": "default" },
        "spec": {
            "role": "KarpenterNodeRole-my-cluster",
            "amiSelectorTerms": [{ "alias": "al2023@latest" }],
            "subnetSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "my-cluster" } }],
            "securityGroupSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "my-cluster" } }],
        },
    }))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let types = [
        "SubnetsReady",
        "SecurityGroupsReady",
        "AMIsReady",
        "InstanceProfileReady",
        "ValidationSucceeded",
        "Ready",
    ];
    let conditions_at = |generation: i64| {
        let classes = classes.clone();
        async move {
            let c = classes.get("default").await.ok()?;
            let conditions = c.status.as_ref()?.conditions.clone();
            types
                .iter()
                .all(|t| {
                    conditions.iter().any(|c| {
                        c.type_ == *t
                            && c.status == dovetail_api::ConditionStatus::True
                            && c.reason == *t
                            && c.observed_generation == Some(generation)
                    })
                })
                .then_some(c)
        }
    };
    let ready = eventually("every condition True at generation 1", || conditions_at(1)).await;
    let ready_since = |c: &dovetail_api::EC2NodeClass| {
        c.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .last_transition_time
            .clone()
    };

    // Several resync periods with nothing changed: nothing is written.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = classes.get("default").await.unwrap();
    assert_eq!(
        still.metadata.resource_version, ready.metadata.resource_version,
        "an unchanged status is not written again"
    );

    classes
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "role": "KarpenterNodeRole-other" } })),
        )
        .await
        .unwrap();
    let changed = eventually("the conditions restamped at generation 2", || {
        conditions_at(2)
    })
    .await;
    assert_eq!(
        ready_since(&changed),
        ready_since(&ready),
        "Ready stayed True, so its transition time holds"
    );
    cluster.shutdown().await;
}
