//! The scheduler: binds pending pods through `pods/binding` to nodes where
//! they fit, with `dovetail-core`'s scheduling simulation deciding (requests,
//! selectors, affinity, taints, topology spread), and marks the pods it
//! cannot place `PodScheduled=False` with reason `Unschedulable`, as
//! kube-scheduler does (Karpenter provisions for exactly those pods).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dovetail_api::k8s::{
    Objects, namespace as convert_namespace, node as convert_node, pod as convert_pod,
};
use dovetail_core::catalog::Catalog;
use dovetail_core::labels::is_ephemeral_taint;
use dovetail_core::model::{self, TaintEffect, untolerated};
use dovetail_core::scheduler::{Snapshot, solve};
use dovetail_core::sym::Sym;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::informer::Informers;

const DEFAULT_SCHEDULER: &str = "default-scheduler";

pub(crate) async fn run(client: kube::Client, catalog: Arc<Catalog>, resync: Duration) {
    let mut informers = Informers::new(resync);
    let pods = informers.watch::<Pod>(&client);
    let nodes = informers.watch::<Node>(&client);
    let namespaces = informers.watch::<Namespace>(&client);
    let _ = pods.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;
    let _ = namespaces.wait_until_ready().await;
    // Bindings made but not yet seen in the cache, by pod uid: the pods
    // take room on their node meanwhile (kube-scheduler's assumed pods).
    let mut assumed: HashMap<String, String> = HashMap::new();
    let mut explained = Explained::default();
    loop {
        if let Err(e) = pass(
            &client,
            &catalog,
            &pods.state(),
            &nodes.state(),
            &namespaces.state(),
            &mut assumed,
            &mut explained,
        )
        .await
        {
            tracing::warn!("scheduler: {e}");
        }
        informers.changed().await;
    }
}

/// A pod waiting for this scheduler.
fn pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    spec.is_some_and(|s| s.node_name.as_deref().unwrap_or("").is_empty())
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|s| s == DEFAULT_SCHEDULER)
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

async fn pass(
    client: &kube::Client,
    catalog: &Arc<Catalog>,
    pods: &[Arc<Pod>],
    nodes: &[Arc<Node>],
    namespaces: &[Arc<Namespace>],
    assumed: &mut HashMap<String, String>,
    explained: &mut Explained,
) -> Result<(), kube::Error> {
    // Forget assumptions the cache has caught up with.
    assumed.retain(|uid, _| {
        pods.iter()
            .any(|p| p.metadata.uid.as_deref() == Some(uid) && pending(p))
    });
    let waiting: Vec<&Pod> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| pending(p) && !assumed.contains_key(&uid(p)))
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let lookup = Objects::new();
    let mut cluster: Vec<model::Node> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        let Ok(c) = convert_node(n) else { continue };
        let mut node = c.value;
        if node.marked_for_deletion {
            continue;
        }
        node.initialized = true;
        slot.insert(node.name.to_string(), cluster.len());
        cluster.push(node);
    }
    for p in pods {
        let bound = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| assumed.get(&uid(p)).cloned());
        let terminal = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if let (Some(node), false) = (bound, terminal)
            && let Some(&i) = slot.get(&node)
            && let Ok(c) = convert_pod(p, &lookup)
        {
            cluster[i].pods.push(Arc::new(c.value));
        }
    }

    let generation = cluster_generation(nodes, pods);
    explained.messages.retain(|uid, _| {
        waiting
            .iter()
            .any(|p| p.metadata.uid.as_deref() == Some(uid.as_str()))
    });

    // kube-scheduler filters on the start-up taints Karpenter's simulation
    // ignores (not-ready, unregistered…), and on a DaemonSet pod's
    // `matchFields`, which the simulation does not model: each pod is
    // solved against the nodes it passes both on.
    let mut groups: BTreeMap<Vec<usize>, Vec<(&Pod, model::Pod)>> = BTreeMap::new();
    let mut unschedulable: Vec<(&Pod, String)> = Vec::new();
    for &p in &waiting {
        match convert_pod(p, &lookup) {
            Ok(c) => {
                let candidates: Vec<usize> = (0..cluster.len())
                    .filter(|&i| passes_filters(p, &c.value, &cluster[i]))
                    .collect();
                groups.entry(candidates).or_default().push((p, c.value));
            }
            Err(e) => unschedulable.push((p, e.to_string())),
        }
    }
    let mut bindings: Vec<(&Pod, String)> = Vec::new();
    for (candidates, group) in groups {
        let mut snapshot = Snapshot::new(catalog.clone());
        // For pod affinity terms' namespace selectors.
        snapshot.namespaces = namespaces
            .iter()
            .filter_map(|n| convert_namespace(n).ok().map(|c| c.value))
            .collect();
        snapshot.nodes = candidates.iter().map(|&i| cluster[i].clone()).collect();
        let models: Vec<model::Pod> = group.iter().map(|(_, m)| m.clone()).collect();
        let by_key: HashMap<model::PodKey, &Pod> =
            group.iter().map(|(p, m)| (m.key(), *p)).collect();
        let mut placed = solve_on(&mut snapshot, &models);
        for (key, node) in placed.drain(..) {
            if let (Some(&p), Some(&i)) = (by_key.get(&key), slot.get(node.as_str())) {
                if let Some(m) = models.iter().find(|m| m.key() == key) {
                    cluster[i].pods.push(Arc::new(m.clone()));
                }
                bindings.push((p, node.to_string()));
            }
        }
        let bound: BTreeSet<&str> = bindings
            .iter()
            .filter_map(|(p, _)| p.metadata.uid.as_deref())
            .collect();
        for (p, m) in &group {
            if !bound.contains(p.metadata.uid.as_deref().unwrap_or("")) {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                // Explaining costs a solve per node: an unschedulable pod is
                // explained again only when the nodes or their pods change.
                let message = match explained.messages.get(&uid) {
                    Some((at, m)) if *at == generation => m.clone(),
                    _ => {
                        let m = reason(&snapshot, m, &candidates, &cluster);
                        explained.messages.insert(uid, (generation, m.clone()));
                        m
                    }
                };
                unschedulable.push((p, message));
            }
        }
    }
    for (p, node) in bindings {
        let (name, ns) = (
            p.metadata.name.as_deref().unwrap_or(""),
            p.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": { "name": name, "namespace": ns },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node },
        });
        match api
            .create_subresource::<serde_json::Value, serde_json::Value>(
                "binding",
                name,
                &PostParams::default(),
                &binding,
            )
            .await
        {
            Ok(_) => {
                assumed.insert(uid(p), node);
            }
            // Bound or deleted meanwhile: the next pass sees it.
            Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => {}
            Err(e) => tracing::warn!("scheduler: binding {ns}/{name} to {node}: {e}"),
        }
    }
    for (p, message) in unschedulable {
        if let Err(e) = mark_unschedulable(client, p, &message).await {
            let name = p.metadata.name.as_deref().unwrap_or("");
            tracing::warn!("scheduler: marking {name} unschedulable: {e}");
        }
    }
    Ok(())
}

/// The Unschedulable messages last written, by pod uid, with the cluster
/// generation they explain.
#[derive(Debug, Default)]
struct Explained {
    messages: HashMap<String, (u64, String)>,
}

/// Changes whenever a node or a bound pod does (whatever the caches'
/// order).
fn cluster_generation(nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> u64 {
    let version = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        super::kubelet::fnv(m.resource_version.as_deref().unwrap_or(""))
    };
    let bound = pods.iter().filter(|p| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some()
    });
    nodes
        .iter()
        .map(|n| version(&n.metadata))
        .chain(bound.map(|p| version(&p.metadata).rotate_left(1)))
        .fold(0u64, u64::wrapping_add)
}

/// Solves `pods` onto the snapshot's nodes; a pod that fits nowhere is
/// tried again ignoring `PreferNoSchedule` taints, which kube-scheduler
/// scores but does not filter on.
fn solve_on(snapshot: &mut Snapshot, pods: &[model::Pod]) -> Vec<(model::PodKey, Sym)> {
    let plan = solve(snapshot, pods);
    let mut placed: Vec<(model::PodKey, Sym)> =
        plan.bindings.iter().map(|b| (b.pod, b.node)).collect();
    let soft = |n: &model::Node| {
        n.taints
            .iter()
            .any(|t| t.effect == TaintEffect::PreferNoSchedule)
    };
    if !plan.unschedulable.is_empty() && snapshot.nodes.iter().any(soft) {
        for (key, node) in &placed {
            if let (Some(n), Some(p)) = (
                snapshot.nodes.iter_mut().find(|n| n.name == *node),
                pods.iter().find(|p| p.key() == *key),
            ) {
                n.pods.push(Arc::new(p.clone()));
            }
        }
        for n in &mut snapshot.nodes {
            n.taints
                .retain(|t| t.effect != TaintEffect::PreferNoSchedule);
        }
        let left: Vec<model::Pod> = plan
            .unschedulable
            .iter()
            .filter_map(|u| pods.iter().find(|p| p.key() == u.pod).cloned())
            .collect();
        placed.extend(
            solve(snapshot, &left)
                .bindings
                .into_iter()
                .map(|b| (b.pod, b.node)),
        );
    }
    placed
}

/// The filters kube-scheduler applies that the simulation leaves out.
fn passes_filters(pod: &Pod, model: &model::Pod, node: &model::Node) -> bool {
    let hard: Vec<model::Taint> = node
        .taints
        .iter()
        .filter(|t| is_ephemeral_taint(t.key.as_str()) && t.effect != TaintEffect::PreferNoSchedule)
        .cloned()
        .collect();
    untolerated(&hard, &model.tolerations).is_none() && match_fields(pod, node.name.as_str())
}

/// Whether the pod's required node affinity admits `node` by its
/// `matchFields` (`metadata.name`, the only field selectable): some term
/// whose field requirements all hold. Terms without `matchFields` admit any
/// node here; their expressions are the simulation's to check.
fn match_fields(pod: &Pod, node: &str) -> bool {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    if terms.is_empty() {
        return true;
    }
    terms.iter().any(|t| {
        t.match_fields.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            let has = r.key == "metadata.name" && values.iter().any(|v| v == node);
            match r.operator.as_str() {
                "In" => has,
                "NotIn" => !has,
                _ => false,
            }
        })
    })
}

/// kube-scheduler's message: how many nodes were looked at and, per
/// reason, how many turned the pod down. The decision is the simulation's;
/// this only explains it, taking the first filter each node fails.
fn reason(
    snapshot: &Snapshot,
    pod: &model::Pod,
    candidates: &[usize],
    cluster: &[model::Node],
) -> String {
    if cluster.is_empty() {
        return "no nodes available to schedule pods".into();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, node) in cluster.iter().enumerate() {
        let why = if !candidates.contains(&i) {
            match node.taints.iter().find(|t| {
                is_ephemeral_taint(t.key.as_str())
                    && t.effect != TaintEffect::PreferNoSchedule
                    && untolerated(std::slice::from_ref(t), &pod.tolerations).is_some()
            }) {
                Some(t) => untolerated_message(t),
                None => "node(s) didn't match Pod's node affinity/selector".into(),
            }
        } else {
            explain(snapshot, pod, node)
        };
        *counts.entry(why).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    format!(
        "0/{} nodes are available: {}.",
        cluster.len(),
        parts.join(", ")
    )
}

fn untolerated_message(t: &model::Taint) -> String {
    let value = t.value.map(|v| v.to_string()).unwrap_or_default();
    format!("node(s) had untolerated taint {{{}: {value}}}", t.key)
}

/// Why `node` does not take `pod`.
fn explain(snapshot: &Snapshot, pod: &model::Pod, node: &model::Node) -> String {
    let mut used = dovetail_core::resources::Resources::default();
    for p in &node.pods {
        used.add(&p.requests);
        used.pods += 1;
    }
    let mut want = used.plus(&pod.requests);
    want.pods += 1;
    if let Some(resource) = want.first_excess(&node.allocatable) {
        return format!("Insufficient {resource}");
    }
    let hard: Vec<model::Taint> = node
        .taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .copied()
        .collect();
    if let Some(t) = untolerated(&hard, &pod.tolerations) {
        return untolerated_message(t);
    }
    let alone = Snapshot {
        nodes: vec![node.clone()],
        ..snapshot.clone()
    };
    if solve(&alone, std::slice::from_ref(pod)).bindings.is_empty() {
        "node(s) didn't match Pod's node affinity/selector, pod affinity or topology spread constraints".into()
    } else {
        "node(s) were taken by other pending pods".into()
    }
}

async fn mark_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    message: &str,
) -> Result<(), kube::Error> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled");
    if current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(message)
    }) {
        return Ok(());
    }
    let (name, ns) = (
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = json!({ "status": { "conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    }]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e),
    }
}
