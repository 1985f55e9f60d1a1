//! The cluster as the decision core sees it: a `dovetail_core` snapshot
//! built from the observed state, with each node matched to its NodeClaim.
//!
//! Registered nodes appear as observed, with what their NodeClaim adds
//! (NodePool, price, initialisation, template hash). NodeClaims without a
//! node yet appear as the node they will become — the launched offering, or
//! the first of their launch list — with their taints *and* start-up taints:
//! until it is initialised, a new node carries them.

use std::collections::HashMap;
use std::sync::Arc;

use dovetail_core::catalog::{CapacityType, Catalog, InstanceType};
use dovetail_core::labels;
use dovetail_core::model::{Labels, Node, Pod};
use dovetail_core::nodeclaim::{ConditionStatus, ConditionType, NodeClaim};
use dovetail_core::requirements::{NodeSelectorRequirement, Requirements};
use dovetail_core::scheduler::Snapshot;
use dovetail_core::sym::Sym;

use crate::state::{ClaimId, ClusterState, NodeEntry, NodeId, Nominee, PodId, node_leaving};

/// What a snapshot node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// A NodeClaim, with its node once registered.
    Claim(ClaimId),
    /// A node no NodeClaim owns.
    Node(NodeId),
}

/// A snapshot and, for each of its nodes, what it stands for.
#[derive(Debug, Clone)]
pub struct View {
    pub snapshot: Snapshot,
    pub slots: Vec<Slot>,
}

impl View {
    /// The slot of the snapshot node named `name`.
    pub fn slot(&self, name: Sym) -> Option<Slot> {
        self.snapshot
            .nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| self.slots[i])
    }
}

/// Labels of a node launched from an offering for a NodeClaim with
/// `requirements`: the instance type's (of a multi-valued label, the value
/// the requirements allow), zone and capacity type.
pub fn instance_labels(
    it: &InstanceType,
    zone: Sym,
    capacity_type: CapacityType,
    requirements: &[NodeSelectorRequirement],
) -> Labels {
    let mut l = if it.label_values.is_empty() {
        it.labels.clone()
    } else {
        it.node_labels(&Requirements::from_terms(requirements).unwrap_or_default())
    };
    l.push((Sym::new(labels::ZONE), zone));
    l.push((
        Sym::new(labels::CAPACITY_TYPE),
        Sym::new(capacity_type.label()),
    ));
    sort_labels(l)
}

/// Sorts by key; for a key given twice the later value wins.
pub fn sort_labels(mut l: Labels) -> Labels {
    l.reverse();
    l.sort_by_key(|&(k, _)| k);
    l.dedup_by_key(|(k, _)| *k);
    l
}

/// Takes a snapshot of `state` against `catalog`. With `nominated`, the
/// pods whose nomination holds at `now_ms` count as already on their node
/// or NodeClaim.
pub fn snapshot(
    state: &ClusterState,
    catalog: &Arc<Catalog>,
    nominated: bool,
    now_ms: u64,
) -> View {
    let mut s = Snapshot::new(catalog.clone());
    s.node_pools = state.node_pools().to_vec();
    s.daemon_sets = state.daemon_sets().to_vec();
    s.namespaces = state.namespaces().to_vec();
    s.settings = state.settings().clone();
    s.pdbs = state.pdbs().to_vec();
    let mut waiting: HashMap<Nominee, Vec<PodId>> = HashMap::new();
    if nominated {
        for &p in state.pending() {
            if let Some(e) = state.pod(p)
                && let Some(n) = e.nominated
                && state.nomination_holds(e, now_ms)
            {
                waiting.entry(n).or_default().push(p);
            }
        }
    }
    // A finished pod stays bound until deleted but takes no room, as
    // kube-scheduler sees it; it neither fits nor blocks anything.
    // The pods are shared with the state, not copied. Sized for every pod,
    // bound and nominated: a vector grown by pushes keeps up to half again
    // as much room.
    let pods_of = |ids: &[PodId], extra: &[PodId]| -> Vec<Arc<Pod>> {
        let mut pods = Vec::with_capacity(ids.len() + extra.len());
        pods.extend(
            ids.iter()
                .chain(extra)
                .filter_map(|p| state.pod(*p))
                .filter(|e| !e.pod.is_terminal())
                .map(|e| e.pod.clone()),
        );
        pods
    };
    let mut slots = Vec::new();
    let mut owned = std::collections::HashSet::new();
    for (id, claim) in state.claims() {
        let extra: Vec<PodId> = waiting
            .get(&Nominee::Claim(id))
            .cloned()
            .unwrap_or_default();
        let node = match state.node_of_claim(claim) {
            Some(n) => {
                owned.insert(n);
                let entry = state.node(n).expect("indexed");
                let mut extra = extra;
                extra.extend(waiting.get(&Nominee::Node(n)).into_iter().flatten());
                let mut node = registered(entry, Some(claim), catalog);
                node.pods = pods_of(&entry.pods, &extra);
                node.nominated = !extra.is_empty();
                node
            }
            None => {
                let Some(mut node) = in_flight(claim, catalog) else {
                    continue;
                };
                node.nominated = !extra.is_empty();
                node.pods = pods_of(&extra, &[]);
                node
            }
        };
        s.nodes.push(node);
        slots.push(Slot::Claim(id));
    }
    for (id, entry) in state.nodes() {
        if owned.contains(&id) || state.claim_of_node(entry).is_some() {
            continue;
        }
        let extra = waiting.get(&Nominee::Node(id)).cloned().unwrap_or_default();
        let mut node = registered(entry, None, catalog);
        node.pods = pods_of(&entry.pods, &extra);
        node.nominated = !extra.is_empty();
        s.nodes.push(node);
        slots.push(Slot::Node(id));
    }
    View { snapshot: s, slots }
}

/// A registered node, with what its NodeClaim (if any) adds.
fn registered(entry: &NodeEntry, claim: Option<&NodeClaim>, catalog: &Catalog) -> Node {
    let mut node = entry.node.clone();
    node.last_pod_event = entry.last_pod_event_ms / 1000;
    node.marked_for_deletion = node_leaving(entry);
    match claim {
        Some(c) => {
            node.node_pool = c.node_pool;
            node.startup_taints = c.startup_taints.clone();
            node.initialized = c.initialized();
            node.marked_for_deletion |= c.deleting();
            node.created_at = c.created_ms / 1000;
            node.node_pool_hash = c.node_pool_hash;
            node.cloud_drift = c
                .condition(ConditionType::Drifted)
                .filter(|d| d.status == ConditionStatus::True)
                .map(|d| d.reason.to_string());
            if let Some(l) = c.offering(Some(catalog)) {
                node.price_per_hour = l.price;
            }
        }
        None => {
            node.node_pool = dovetail_core::model::label(&node.labels, Sym::new(labels::NODE_POOL));
            node.initialized = node.ready;
            if node.price_per_hour == 0.0 {
                node.price_per_hour = observed_price(&node, catalog).unwrap_or(0.0);
            }
        }
    }
    node
}

/// The price of the offering a node's labels name.
fn observed_price(node: &Node, catalog: &Catalog) -> Option<f64> {
    let get = |k: &str| dovetail_core::model::label(&node.labels, Sym::new(k));
    let it = catalog.get(get(labels::INSTANCE_TYPE)?.as_str())?;
    let ct = CapacityType::from_label(get(labels::CAPACITY_TYPE)?.as_str())?;
    it.offering(get(labels::ZONE)?.as_str(), ct)
        .map(|o| o.price)
}

/// The node a NodeClaim will become; `None` when it has not launched and
/// no offering fits it.
pub fn in_flight(claim: &NodeClaim, catalog: &Catalog) -> Option<Node> {
    let (labels, capacity, allocatable, price) = match &claim.status.launched {
        Some(l) => (
            claim.labels.clone(),
            claim.status.capacity.clone(),
            claim.status.allocatable.clone(),
            l.price,
        ),
        None => {
            // A claim read back from the API (after a restart) carries no
            // launch list: it will launch from its requirements, so its
            // pods are counted on the cheapest offering that fits.
            let derived;
            let first = match claim.launch.first() {
                Some(first) => first,
                None => {
                    let requirements =
                        dovetail_core::requirements::Requirements::from_terms(&claim.requirements)
                            .ok()?;
                    derived = dovetail_core::scheduler::compatible_offerings(
                        catalog,
                        &claim.node_class_ref.name,
                        &requirements,
                        &claim.requests,
                    );
                    derived.first()?
                }
            };
            let it = catalog.get(first.instance_type.as_str())?;
            let size = catalog.sizing(first.instance_type.as_str(), &claim.node_class_ref.name)?;
            let mut l = instance_labels(it, first.zone, first.capacity_type, &claim.requirements);
            l.extend(claim.labels.iter().copied());
            (
                sort_labels(l),
                size.capacity.clone(),
                size.allocatable(),
                first.price,
            )
        }
    };
    let mut labels = labels;
    if dovetail_core::model::label(&labels, Sym::new(labels::HOSTNAME)).is_none() {
        labels.push((Sym::new(labels::HOSTNAME), claim.name));
        labels = sort_labels(labels);
    }
    let mut taints = claim.taints.clone();
    taints.extend(claim.startup_taints.iter().copied());
    Some(Node {
        name: claim.name,
        node_pool: claim.node_pool,
        labels,
        annotations: claim.annotations.clone(),
        taints,
        startup_taints: claim.startup_taints.clone(),
        capacity,
        allocatable,
        initialized: false,
        pods: Vec::new(),
        marked_for_deletion: claim.deleting(),
        price_per_hour: price,
        created_at: claim.created_ms / 1000,
        ready: false,
        nominated: false,
        last_pod_event: claim.created_ms / 1000,
        node_pool_hash: claim.node_pool_hash,
        cloud_drift: None,
    })
}
