//! Builders for pods, NodePools, nodes and DaemonSets: readable scenarios
//! for tests, fixtures and the simulator.
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
    Container, DaemonSet, HostPort, InclusionPolicy, LabelSelector, Namespace, Node, NodePool, Pod,
    PodAffinityTerm, PreferredSchedulingTerm, Taint, TaintEffect, Toleration, TolerationOperator,
    TopologySpreadConstraint, WeightedPodAffinityTerm, WhenUnsatisfiable, effective_requests,
    sorted_labels,
};
use crate::requirements::{NodeSelectorRequirement, Operator};
use crate::resources::{self, Resources};
use crate::scheduler::{Plan, Snapshot, solve};
use crate::sym::Sym;

fn parse_cpu(q: &str) -> i64 {
    resources::parse_milli(q).unwrap_or_else(|e| panic!("cpu {q}: {e}"))
}

fn parse_bytes(q: &str) -> i64 {
    resources::parse_units(q).unwrap_or_else(|e| panic!("quantity {q}: {e}"))
}

/// A pod; `name` is a prefix when the builder stamps out several.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    pod: Pod,
    containers: Vec<Container>,
    init: Vec<Container>,
    overhead: Resources,
}

pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        pod: Pod {
            namespace: Sym::new("default"),
            name: Sym::new(name),
            ..Pod::default()
        },
        containers: vec![Container::default()],
        init: Vec::new(),
        overhead: Resources::default(),
    }
}

impl PodBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.pod.namespace = Sym::new(ns);
        self
    }

    /// CPU of the main container (`500m`, `2`).
    pub fn cpu(mut self, q: &str) -> Self {
        self.containers[0].requests.cpu = parse_cpu(q);
        self
    }

    /// Memory of the main container (`512Mi`, `2Gi`).
    pub fn memory(mut self, q: &str) -> Self {
        self.containers[0].requests.memory = parse_bytes(q);
        self
    }

    /// Any resource of the main container (`nvidia.com/gpu`, `1`).
    pub fn request(mut self, name: &str, q: &str) -> Self {
        match name {
            resources::CPU => self.containers[0].requests.cpu = parse_cpu(q),
            _ => self.containers[0].requests.set(name, parse_bytes(q)),
        }
        self
    }

    pub fn gpus(self, n: u32) -> Self {
        self.request(resources::NVIDIA_GPU, &n.to_string())
    }

    /// Another container.
    pub fn container(mut self, cpu: &str, memory: &str) -> Self {
        self.containers.push(Container {
            requests: Resources::new(parse_cpu(cpu), parse_bytes(memory)),
            restartable: false,
        });
        self
    }

    /// An init container; `sidecar` makes it restartable.
    pub fn init_container(mut self, cpu: &str, memory: &str, sidecar: bool) -> Self {
        self.init.push(Container {
            requests: Resources::new(parse_cpu(cpu), parse_bytes(memory)),
            restartable: sidecar,
        });
        self
    }

    pub fn overhead(mut self, cpu: &str, memory: &str) -> Self {
        self.overhead = Resources::new(parse_cpu(cpu), parse_bytes(memory));
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.pod.labels.push((Sym::new(k), Sym::new(v)));
        self.pod.labels = sorted_labels(
            self.pod
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.pod.annotations.push((Sym::new(k), Sym::new(v)));
        self.pod.annotations = sorted_labels(
            self.pod
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self
    }

    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.pod.node_selector.push((Sym::new(k), Sym::new(v)));
        self.pod.node_selector = sorted_labels(
            self.pod
                .node_selector
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self
    }

    /// Adds a requirement to the (first) required node-affinity term.
    pub fn require(mut self, key: &str, op: Operator, values: &[&str]) -> Self {
        if self.pod.required_node_affinity.is_empty() {
            self.pod.required_node_affinity.push(Vec::new());
        }
        self.pod.required_node_affinity[0].push(NodeSelectorRequirement::new(key, op, values));
        self
    }

    /// Adds a required node-affinity OR-term.
    pub fn require_term(mut self, term: &[(&str, Operator, &[&str])]) -> Self {
        self.pod.required_node_affinity.push(
            term.iter()
                .map(|(k, op, v)| NodeSelectorRequirement::new(k, *op, v))
                .collect(),
        );
        self
    }

    pub fn prefer(mut self, weight: i32, key: &str, op: Operator, values: &[&str]) -> Self {
        self.pod
            .preferred_node_affinity
            .push(PreferredSchedulingTerm {
                weight,
                requirements: vec![NodeSelectorRequirement::new(key, op, values)],
            });
        self
    }

    fn term(key: &str, selector: &[(&str, &str)]) -> PodAffinityTerm {
        PodAffinityTerm {
            selector: LabelSelector::labels(selector.iter().copied()),
            topology_key: Sym::new(key),
            namespaces: Vec::new(),
            namespace_selector: None,
        }
    }

    pub fn affinity(mut self, key: &str, selector: &[(&str, &str)]) -> Self {
        self.pod.pod_affinity.push(Self::term(key, selector));
        self
    }

    /// Pod affinity to pods in namespaces whose labels match `namespaces`.
    pub fn affinity_across(
        mut self,
        key: &str,
        selector: &[(&str, &str)],
        namespaces: &[(&str, &str)],
    ) -> Self {
        let mut t = Self::term(key, selector);
        t.namespace_selector = Some(LabelSelector::labels(namespaces.iter().copied()));
        self.pod.pod_affinity.push(t);
        self
    }

    pub fn anti_affinity(mut self, key: &str, selector: &[(&str, &str)]) -> Self {
        self.pod.pod_anti_affinity.push(Self::term(key, selector));
        self
    }

    pub fn prefer_affinity(mut self, weight: i32, key: &str, selector: &[(&str, &str)]) -> Self {
        self.pod
            .preferred_pod_affinity
            .push(WeightedPodAffinityTerm {
                weight,
                term: Self::term(key, selector),
            });
        self
    }

    pub fn prefer_anti_affinity(
        mut self,
        weight: i32,
        key: &str,
        selector: &[(&str, &str)],
    ) -> Self {
        self.pod
            .preferred_pod_anti_affinity
            .push(WeightedPodAffinityTerm {
                weight,
                term: Self::term(key, selector),
            });
        self
    }

    /// A `DoNotSchedule` spread over `key` for pods matching `selector`.
    pub fn spread(self, key: &str, max_skew: i32, selector: &[(&str, &str)]) -> Self {
        self.spread_with(key, max_skew, selector, |_| {})
    }

    /// A `ScheduleAnyway` spread.
    pub fn spread_anyway(self, key: &str, max_skew: i32, selector: &[(&str, &str)]) -> Self {
        self.spread_with(key, max_skew, selector, |c| {
            c.when_unsatisfiable = WhenUnsatisfiable::ScheduleAnyway
        })
    }

    /// A spread with any field adjusted (`minDomains`, policies, `matchLabelKeys`).
    pub fn spread_with(
        mut self,
        key: &str,
        max_skew: i32,
        selector: &[(&str, &str)],
        adjust: impl FnOnce(&mut TopologySpreadConstraint),
    ) -> Self {
        let mut c = TopologySpreadConstraint {
            max_skew,
            topology_key: Sym::new(key),
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
            selector: LabelSelector::labels(selector.iter().copied()),
            min_domains: None,
            node_affinity_policy: InclusionPolicy::Honor,
            node_taints_policy: InclusionPolicy::Ignore,
            match_label_keys: Vec::new(),
        };
        adjust(&mut c);
        self.pod.topology_spread.push(c);
        self
    }

    pub fn tolerate(mut self, key: &str, value: &str, effect: Option<TaintEffect>) -> Self {
        self.pod.tolerations.push(Toleration {
            key: Some(Sym::new(key)),
            operator: TolerationOperator::Equal,
            value: Some(Sym::new(value)),
            effect,
        });
        self
    }

    /// `operator: Exists` for one key.
    pub fn tolerate_exists(mut self, key: &str, effect: Option<TaintEffect>) -> Self {
        self.pod.tolerations.push(Toleration {
            key: Some(Sym::new(key)),
            operator: TolerationOperator::Exists,
            value: None,
            effect,
        });
        self
    }

    pub fn tolerate_all(mut self) -> Self {
        self.pod.tolerations.push(Toleration {
            key: None,
            operator: TolerationOperator::Exists,
            value: None,
            effect: None,
        });
        self
    }

    pub fn host_port(mut self, port: u16) -> Self {
        self.pod.host_ports.push(HostPort {
            port,
            protocol: Sym::new("TCP"),
            host_ip: Sym::new("0.0.0.0"),
        });
        self
    }

    /// A bound volume that pins the pod to these zones.
    pub fn volume_in(mut self, zones: &[&str]) -> Self {
        self.pod.volume_zones = zones.iter().map(|z| Sym::new(z)).collect();
        self
    }

    pub fn priority(mut self, p: i32) -> Self {
        self.pod.priority = p;
        self
    }

    /// When it started running (Unix seconds).
    pub fn started_at(mut self, seconds: u64) -> Self {
        self.pod.started_at = seconds;
        self
    }

    /// `controller.kubernetes.io/pod-deletion-cost`.
    pub fn deletion_cost(self, cost: i32) -> Self {
        self.annotation(crate::model::DELETION_COST, &cost.to_string())
    }

    /// `karpenter.sh/do-not-disrupt` with `value` (`"true"` or a duration).
    pub fn do_not_disrupt(self, value: &str) -> Self {
        self.annotation(labels::DO_NOT_DISRUPT, value)
    }

    /// Owned by DaemonSet `name` (not rescheduled, not counted as a
    /// reason to keep a node).
    pub fn daemon(mut self, name: &str) -> Self {
        self.pod.daemon_set = Some(Sym::new(name));
        self
    }

    pub fn build(&self) -> Pod {
        let mut p = self.pod.clone();
        p.requests = effective_requests(&self.containers, &self.init, &self.overhead);
        p
    }

    /// `n` copies named `<name>-0`, `<name>-1`, …
    pub fn build_many(&self, n: usize) -> Vec<Pod> {
        let base = self.build();
        (0..n)
            .map(|i| {
                let mut p = base.clone();
                p.name = Sym::new(&format!("{}-{i}", base.name));
                p
            })
            .collect()
    }
}

pub fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: Sym::new(key),
        value: (!value.is_empty()).then(|| Sym::new(value)),
        effect,
    }
}

#[derive(Debug, Clone)]
pub struct NodePoolBuilder(NodePool);

pub fn node_pool(name: &str) -> NodePoolBuilder {
    NodePoolBuilder(NodePool::new(name))
}

impl NodePoolBuilder {
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
        self.0.labels.push((Sym::new(k), Sym::new(v)));
        self.0.labels = sorted_labels(self.0.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.0.taints.push(taint(key, value, effect));
        self
    }

    pub fn startup_taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.0.startup_taints.push(taint(key, value, effect));
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
        self.0.taints.push(taint(key, value, effect));
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
        self.0.pods.extend(pods);
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

/// The embedded catalog, loaded once per process.
pub fn aws_catalog() -> Arc<Catalog> {
    static CATALOG: std::sync::OnceLock<Arc<Catalog>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| Arc::new(Catalog::aws_us_east_1()))
        .clone()
}
