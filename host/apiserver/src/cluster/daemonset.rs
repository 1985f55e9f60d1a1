//! The DaemonSet controller: one pod per node the DaemonSet runs on (by
//! its node selector, affinity and taints, with the tolerations the
//! controller adds), pinned to its node with `matchFields` node affinity
//! and left to the scheduler to bind, as upstream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dovetail_api::k8s::{Objects, daemon_set as convert_daemon_set, node as convert_node};
use dovetail_core::model::TaintEffect;
use dovetail_core::scheduler::daemon_schedules_on;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

use super::expectations::Expectations;
use super::informer::Informers;
use super::{owned_pods, owner_reference, pod_active, pod_ready, write_status};

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    let sets = informers.watch::<DaemonSet>(&client);
    let nodes = informers.watch::<Node>(&client);
    let pods = informers.watch::<Pod>(&client);
    let _ = sets.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let mut expectations = Expectations::default();
    loop {
        let (nodes, pods) = (nodes.state(), pods.state());
        for ds in sets.state() {
            if let Err(e) = sync(&client, &ds, &nodes, &pods, &mut expectations).await {
                tracing::warn!("daemonset controller: {e}");
            }
        }
        informers.changed().await;
    }
}

/// The node a DaemonSet pod is for: where it is bound, else the one its
/// `matchFields` affinity names.
fn pod_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

async fn sync(
    client: &kube::Client,
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    expectations: &mut Expectations,
) -> Result<(), kube::Error> {
    let (Some(name), Some(ns), Some(uid)) = (
        ds.metadata.name.as_deref(),
        ds.metadata.namespace.as_deref(),
        ds.metadata.uid.as_deref(),
    ) else {
        return Ok(());
    };
    let owned = owned_pods(pods, ns, uid);
    if !expectations.satisfied(uid, owned.clone()) {
        return Ok(());
    }
    let template = match convert_daemon_set(ds, &Objects::new()) {
        Ok(c) => c.value.pod,
        Err(e) => {
            tracing::warn!("daemonset controller: {e}");
            return Ok(());
        }
    };
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in owned.filter(|p| pod_active(p)) {
        if let Some(n) = pod_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let deleting = ds.metadata.deletion_timestamp.is_some();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut desired = 0;
    let mut scheduled = 0;
    let mut ready = 0;
    let mut misscheduled = 0;
    let mut eligible: Vec<String> = Vec::new();
    for n in nodes {
        let Ok(c) = convert_node(n) else { continue };
        let node = c.value;
        let node_name = node.name.to_string();
        let here = by_node.remove(&node_name).unwrap_or_default();
        let should_run =
            !deleting && !node.marked_for_deletion && daemon_schedules_on(&template, &node);
        // A pod already there stays unless the node's labels or a NoExecute
        // taint now exclude it (a new NoSchedule taint does not evict).
        let may_stay = !deleting && {
            let mut lenient = node.clone();
            lenient
                .taints
                .retain(|t| t.effect == TaintEffect::NoExecute);
            daemon_schedules_on(&template, &lenient)
        };
        if should_run {
            desired += 1;
            eligible.push(node_name.clone());
            if !here.is_empty() {
                scheduled += 1;
                if here.iter().any(|p| pod_ready(p)) {
                    ready += 1;
                }
            }
        } else if !here.is_empty() {
            misscheduled += 1;
        }
        let keep = usize::from(should_run || may_stay);
        for p in here.iter().skip(keep) {
            delete(&api, p, uid, expectations).await?;
        }
        if should_run && here.is_empty() {
            let pod = daemon_pod(ds, name, ns, &node_name);
            let created = api.create(&PostParams::default(), &pod).await?;
            expectations.created(uid, created.metadata.name.unwrap_or_default());
        }
    }
    // Pods for nodes that no longer exist.
    for p in by_node.values().flatten() {
        delete(&api, p, uid, expectations).await?;
    }
    update_status(client, ds, desired, scheduled, ready, misscheduled).await
}

async fn delete(
    api: &Api<Pod>,
    pod: &Pod,
    owner: &str,
    expectations: &mut Expectations,
) -> Result<(), kube::Error> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            expectations.deleted(owner, pod.metadata.uid.clone().unwrap_or_default());
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pod the DaemonSet runs on `node`: its template, owned by it, pinned
/// to the node and with the controller's default tolerations.
fn daemon_pod(ds: &DaemonSet, name: &str, ns: &str, node: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    // Upstream replaces the required terms: the controller has already
    // checked them against this node.
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
        }],
    });
    let tolerations = spec.tolerations.get_or_insert_default();
    for (key, effect) in default_tolerations(spec.host_network == Some(true)) {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        if !tolerations.contains(&t) {
            tolerations.push(t);
        }
    }
    let mut labels = tmeta.labels.unwrap_or_default();
    if let Some(g) = ds.metadata.generation {
        labels.insert("pod-template-generation".into(), g.to_string());
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: Some(ns.into()),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![owner_reference("apps/v1", "DaemonSet", &ds.metadata)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The tolerations the DaemonSet controller adds to each pod.
fn default_tolerations(host_network: bool) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        v.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    v
}

async fn update_status(
    client: &kube::Client,
    ds: &DaemonSet,
    desired: i32,
    scheduled: i32,
    ready: i32,
    misscheduled: i32,
) -> Result<(), kube::Error> {
    let old = ds.status.clone().unwrap_or_default();
    let new = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: scheduled,
        number_ready: ready,
        number_available: Some(ready),
        number_unavailable: Some((desired - ready).max(0)),
        number_misscheduled: misscheduled,
        updated_number_scheduled: Some(scheduled),
        observed_generation: ds.metadata.generation,
        ..old.clone()
    };
    if new == old {
        return Ok(());
    }
    write_status(client, ds, new).await
}
