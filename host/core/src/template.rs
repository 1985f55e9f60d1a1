//! Pod templates as manifests write them: quantities as text, labels,
//! affinity, spread and tolerations added one at a time. The simulator builds
//! its workloads and DaemonSets with it; tests reach it through `builders`.
//!
//! Quantities must already be valid (the scenario reader checks them first):
//! a malformed one is a bug in the caller and panics.

use crate::labels;
use crate::model::{
    Container, HostPort, InclusionPolicy, LabelSelector, Labels, Owner, OwnerKind, Pod,
    PodAffinityTerm, PreferredSchedulingTerm, TaintEffect, Toleration, TolerationOperator,
    TopologySpreadConstraint, WeightedPodAffinityTerm, WhenUnsatisfiable, effective_requests,
    sorted_labels,
};
use crate::requirements::{NodeSelectorRequirement, Operator};
use crate::resources::{self, Resources};
use crate::sym::Sym;

/// Adds `k=v` to `labels`, kept as [`sorted_labels`] keeps them (sorted by
/// key; a key already there keeps its value).
pub(crate) fn add_label(labels: &mut Labels, k: &str, v: &str) {
    labels.push((Sym::new(k), Sym::new(v)));
    *labels = sorted_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

pub(crate) fn parse_cpu(q: &str) -> i64 {
    resources::parse_milli(q).unwrap_or_else(|e| panic!("cpu {q}: {e}"))
}

pub(crate) fn parse_bytes(q: &str) -> i64 {
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
        add_label(&mut self.pod.labels, k, v);
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        add_label(&mut self.pod.annotations, k, v);
        self
    }

    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        add_label(&mut self.pod.node_selector, k, v);
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
        self.pod.owner = Some(Owner {
            kind: OwnerKind::DaemonSet,
            name: Sym::new(name),
        });
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
