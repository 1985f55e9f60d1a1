//! Builders for pods, NodePools, nodes and DaemonSets: readable scenarios
//! for tests, fixtures and benchmarks. Test scaffolding, behind the
//! `testing` feature; run-time code builds pods with [`crate::template`].
//!
//! ```
//! use dovetail_core::builders::{pod, node_pool, Given};
//! let plan = Given::aws()
//!     .node_pool(node_pool("default"))
//!     .pods(3, pod("web").cpu("1").memory("2Gi"))
//!     .solve();
//! assert_eq!(plan.scheduled(), 3);
//! ```

use std::sync::Arc;

use crate::catalog::{CapacityType, Catalog};
use crate::labels;
use crate::model::{
    DaemonSet, LabelSelector, Namespace, Node, NodePool, Pod, Taint, TaintEffect, sorted_labels,
};
use crate::requirements::{NodeSelectorRequirement, Operator};
use crate::resources;
use crate::scheduler::{Plan, Snapshot, solve};
use crate::sym::Sym;

pub use crate::catalog::aws_catalog;
pub use crate::template::{PodBuilder, pod};

use crate::template::{add_label, parse_bytes, parse_cpu};

#[derive(Debug, Clone)]
pub struct NodePoolBuilder(NodePool);

pub fn node_pool(name: &str) -> NodePoolBuilder {
    NodePoolBuilder(NodePool::new(name))
}

impl NodePoolBuilder {
    /// The pool's EC2NodeClass (`nodeClassRef.name`).
    pub fn node_class(mut self, name: &str) -> Self {
        self.0.node_class_ref.name = name.to_string();
        self
    }

    pub fn weight(mut self, w: i32) -> Self {
        self.0.weight = w;
        self
    }

    pub fn require(mut self, key: &str, op: Operator, values: &[&str]) -> Self {
        self.0
            .requirements
            .push(NodeSelectorRequirement::new(key, op, values));
        self
    }

    pub fn require_min_values(mut self, key: &str, values: &[&str], min: u32) -> Self {
        let mut r = NodeSelectorRequirement::new(key, Operator::In, values);
        r.min_values = Some(min);
        self.0.requirements.push(r);
        self
    }

    /// `minValues` on an `Exists` requirement.
    pub fn min_values(mut self, key: &str, min: u32) -> Self {
        let mut r = NodeSelectorRequirement::new(key, Operator::Exists, &[]);
        r.min_values = Some(min);
        self.0.requirements.push(r);
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        add_label(&mut self.0.labels, k, v);
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.0.taints.push(Taint::new(key, value, effect));
        self
    }

    pub fn startup_taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.0.startup_taints.push(Taint::new(key, value, effect));
        self
    }

    /// A limit such as `("cpu", "100")`, `("memory", "400Gi")` or `("nodes", "3")`.
    pub fn limit(mut self, resource: &str, q: &str) -> Self {
        let v = match resource {
            resources::CPU => parse_cpu(q),
            _ => parse_bytes(q),
        };
        self.0.limits.push((Sym::new(resource), v));
        self
    }

    pub fn consolidation_policy(mut self, p: crate::model::ConsolidationPolicy) -> Self {
        self.0.disruption.consolidation_policy = p;
        self
    }

    /// `None` = `Never`.
    pub fn consolidate_after(mut self, after: Option<std::time::Duration>) -> Self {
        self.0.disruption.consolidate_after = after;
        self
    }

    /// `None` = `Never`.
    pub fn expire_after(mut self, after: Option<std::time::Duration>) -> Self {
        self.0.expire_after = after;
        self
    }

    /// Replaces the budgets with `budgets`.
    pub fn budgets(mut self, budgets: Vec<crate::model::Budget>) -> Self {
        self.0.disruption.budgets = budgets;
        self
    }

    pub fn build(&self) -> NodePool {
        self.0.clone()
    }
}

pub fn daemon_set(name: &str, cpu: &str, memory: &str) -> DaemonSet {
    DaemonSet {
        name: Sym::new(name),
        pod: pod(name).cpu(cpu).memory(memory).build(),
    }
}

/// A DaemonSet whose pods are `template` (node selectors, affinity, host
/// ports and all).
pub fn daemon_set_of(name: &str, template: PodBuilder) -> DaemonSet {
    DaemonSet {
        name: Sym::new(name),
        pod: template.daemon(name).build(),
    }
}

/// A node of `instance_type` from `catalog`, as Karpenter would label it.
#[derive(Debug, Clone)]
pub struct NodeBuilder(Node);

pub fn node(
    catalog: &Catalog,
    name: &str,
    instance_type: &str,
    zone: &str,
    capacity_type: CapacityType,
) -> NodeBuilder {
    let it = catalog
        .get(instance_type)
        .unwrap_or_else(|| panic!("instance type {instance_type} is not in the catalog"));
    let mut labels: Vec<(Sym, Sym)> = it.labels.clone();
    labels.push((Sym::new(labels::ZONE), Sym::new(zone)));
    labels.push((
        Sym::new(labels::CAPACITY_TYPE),
        Sym::new(capacity_type.label()),
    ));
    labels.push((Sym::new(labels::HOSTNAME), Sym::new(name)));
    labels.sort_by_key(|&(k, _)| k);
    let price = it.offering(zone, capacity_type).map_or(0.0, |o| o.price);
    NodeBuilder(Node {
        name: Sym::new(name),
        node_pool: None,
        labels,
        annotations: Vec::new(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        capacity: it.capacity.clone(),
        allocatable: it.allocatable(),
        initialized: true,
        pods: Vec::new(),
        marked_for_deletion: false,
        price_per_hour: price,
        created_at: 0,
        ready: true,
        nominated: false,
        last_pod_event: 0,
        node_pool_hash: None,
        cloud_drift: None,
    })
}

impl NodeBuilder {
    pub fn in_pool(mut self, pool: &str) -> Self {
        self.0.node_pool = Some(Sym::new(pool));
        self.0
            .labels
            .push((Sym::new(labels::NODE_POOL), Sym::new(pool)));
        self.0.labels.sort_by_key(|&(k, _)| k);
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0.labels.retain(|(key, _)| key.as_str() != k);
        self.0.labels.push((Sym::new(k), Sym::new(v)));
        self.0.labels.sort_by_key(|&(k, _)| k);
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.0.taints.push(Taint::new(key, value, effect));
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.0.annotations.push((Sym::new(k), Sym::new(v)));
        self.0.annotations.sort_by_key(|&(k, _)| k);
        self
    }

    pub fn not_ready(mut self) -> Self {
        self.0.ready = false;
        self
    }

    pub fn nominated(mut self) -> Self {
        self.0.nominated = true;
        self
    }

    pub fn marked_for_deletion(mut self) -> Self {
        self.0.marked_for_deletion = true;
        self
    }

    /// Created at (Unix seconds); the last pod event too, unless set later.
    pub fn created_at(mut self, seconds: u64) -> Self {
        self.0.created_at = seconds;
        self.0.last_pod_event = self.0.last_pod_event.max(seconds);
        self
    }

    pub fn last_pod_event(mut self, seconds: u64) -> Self {
        self.0.last_pod_event = seconds;
        self
    }

    /// Launched from `pool` as it is now: records its template hash.
    pub fn launched_from(mut self, pool: &NodePool) -> Self {
        self.0.node_pool_hash = Some(pool.template_hash());
        self.in_pool(pool.name.as_str())
    }

    pub fn price(mut self, per_hour: f64) -> Self {
        self.0.price_per_hour = per_hour;
        self
    }

    /// Still launching: not yet initialized.
    pub fn in_flight(mut self) -> Self {
        self.0.initialized = false;
        self
    }

    pub fn with_pods(mut self, pods: Vec<Pod>) -> Self {
        self.0.pods.extend(pods.into_iter().map(Arc::new));
        self
    }

    pub fn build(&self) -> Node {
        self.0.clone()
    }
}

/// A cluster to schedule into, and the pods to schedule.
#[derive(Debug, Clone)]
pub struct Given {
    pub snapshot: Snapshot,
    pub pods: Vec<Pod>,
}

impl Given {
    /// The embedded us-east-1 catalog, no NodePools yet.
    pub fn aws() -> Self {
        Self::with_catalog(aws_catalog())
    }

    pub fn with_catalog(catalog: Arc<Catalog>) -> Self {
        Given {
            snapshot: Snapshot::new(catalog),
            pods: Vec::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.snapshot.catalog
    }

    /// Changes the scheduler's settings (`minValuesPolicy`, …).
    pub fn settings(mut self, edit: impl FnOnce(&mut crate::scheduler::Settings)) -> Self {
        edit(&mut self.snapshot.settings);
        self
    }

    pub fn node_pool(mut self, b: NodePoolBuilder) -> Self {
        self.snapshot.node_pools.push(b.build());
        self
    }

    pub fn daemon_set(mut self, ds: DaemonSet) -> Self {
        self.snapshot.daemon_sets.push(ds);
        self
    }

    pub fn namespace(mut self, name: &str, labels: &[(&str, &str)]) -> Self {
        self.snapshot.namespaces.push(Namespace {
            name: Sym::new(name),
            labels: sorted_labels(labels.iter().copied()),
        });
        self
    }

    /// An existing node; `build` receives the catalog to look types up in.
    pub fn node(mut self, build: impl FnOnce(&Catalog) -> NodeBuilder) -> Self {
        let n = build(&self.snapshot.catalog).build();
        self.snapshot.nodes.push(n);
        self
    }

    /// `n` pending pods from `b`.
    pub fn pods(mut self, n: usize, b: PodBuilder) -> Self {
        self.pods.extend(b.build_many(n));
        self
    }

    pub fn pod(mut self, b: PodBuilder) -> Self {
        self.pods.push(b.build());
        self
    }

    /// A PodDisruptionBudget over pods matching `selector` in `namespace`
    /// that currently allows `disruptions_allowed` evictions.
    pub fn pdb(
        mut self,
        namespace: &str,
        name: &str,
        selector: &[(&str, &str)],
        disruptions_allowed: i32,
    ) -> Self {
        self.snapshot.pdbs.push(crate::model::PodDisruptionBudget {
            namespace: Sym::new(namespace),
            name: Sym::new(name),
            selector: LabelSelector::labels(selector.iter().copied()),
            disruptions_allowed,
        });
        self
    }

    /// Marks an offering unavailable, as after an insufficient-capacity error.
    pub fn unavailable(
        mut self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> Self {
        let mut c = (*self.snapshot.catalog).clone();
        assert!(
            c.mark_unavailable(instance_type, zone, capacity_type),
            "no offering {instance_type} {zone} {capacity_type}"
        );
        self.snapshot.catalog = Arc::new(c);
        self
    }

    pub fn solve(&self) -> Plan {
        solve(&self.snapshot, &self.pods)
    }
}
