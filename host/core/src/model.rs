//! The cluster as the decision core sees it: pods, nodes, NodePools and
//! DaemonSets, with the scheduling constraints Kubernetes and Karpenter honour.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::disruption::budgets::{BudgetNodes, BudgetWindow, DisruptionReason};
use crate::requirements::NodeSelectorRequirement;
use crate::resources::Resources;
use crate::sym::Sym;

/// Labels, sorted by key.
pub type Labels = Vec<(Sym, Sym)>;

pub fn label(labels: &Labels, key: Sym) -> Option<Sym> {
    // Pointer comparisons beat an ordered search over a handful of labels.
    if labels.len() <= 12 {
        return labels.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
    }
    labels
        .binary_search_by(|(k, _)| k.cmp(&key))
        .ok()
        .map(|i| labels[i].1)
}

pub fn sorted_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    let mut v: Labels = pairs
        .into_iter()
        .map(|(k, v)| (Sym::new(k), Sym::new(v)))
        .collect();
    v.sort_by_key(|&(k, _)| k);
    v.dedup_by_key(|(k, _)| *k);
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: Sym,
    pub value: Option<Sym>,
    pub effect: TaintEffect,
}

impl Taint {
    /// A taint; an empty `value` is none.
    pub fn new(key: &str, value: &str, effect: TaintEffect) -> Self {
        Self {
            key: Sym::new(key),
            value: (!value.is_empty()).then(|| Sym::new(value)),
            effect,
        }
    }
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}={}:{:?}", self.key, v, self.effect),
            None => write!(f, "{}:{:?}", self.key, self.effect),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TolerationOperator {
    Equal,
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// `None` with `Exists` tolerates every taint.
    pub key: Option<Sym>,
    pub operator: TolerationOperator,
    pub value: Option<Sym>,
    /// `None` matches every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Kubernetes' `ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_some_and(|k| k != taint.key) {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// The first taint in `taints` no toleration covers.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints
        .iter()
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectorRequirement {
    pub key: Sym,
    pub operator: SelectorOperator,
    pub values: Vec<Sym>,
}

/// A Kubernetes label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            match_labels: sorted_labels(pairs),
            match_expressions: Vec::new(),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|&(k, v)| label(labels, k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let got = label(labels, e.key);
                match e.operator {
                    SelectorOperator::In => got.is_some_and(|g| e.values.contains(&g)),
                    SelectorOperator::NotIn => got.is_none_or(|g| !e.values.contains(&g)),
                    SelectorOperator::Exists => got.is_some(),
                    SelectorOperator::DoesNotExist => got.is_none(),
                }
            })
    }
}

/// A pod (anti-)affinity term.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodAffinityTerm {
    pub selector: LabelSelector,
    pub topology_key: Sym,
    /// Empty with no selector: the pod's own namespace.
    pub namespaces: Vec<Sym>,
    pub namespace_selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub term: PodAffinityTerm,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreferredSchedulingTerm {
    pub weight: i32,
    pub requirements: Vec<NodeSelectorRequirement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WhenUnsatisfiable {
    #[default]
    DoNotSchedule,
    ScheduleAnyway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InclusionPolicy {
    Honor,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopologySpreadConstraint {
    pub max_skew: i32,
    pub topology_key: Sym,
    pub when_unsatisfiable: WhenUnsatisfiable,
    pub selector: LabelSelector,
    pub min_domains: Option<i32>,
    /// Kubernetes' default: `Honor`.
    pub node_affinity_policy: InclusionPolicy,
    /// Kubernetes' default: `Ignore`.
    pub node_taints_policy: InclusionPolicy,
    pub match_label_keys: Vec<Sym>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: Sym,
    /// `0.0.0.0` (every address) unless set.
    pub host_ip: Sym,
}

impl HostPort {
    /// Two host ports conflict when protocol and port match and either binds
    /// every address or both bind the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let any = |ip: Sym| matches!(ip.as_str(), "0.0.0.0" | "" | "::");
        self.port == other.port
            && self.protocol == other.protocol
            && (any(self.host_ip) || any(other.host_ip) || self.host_ip == other.host_ip)
    }
}

/// A container's requests, and for init containers whether it is a
/// restartable "sidecar" (`restartPolicy: Always`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub requests: Resources,
    pub restartable: bool,
}

/// A pod's effective requests as Kubernetes computes them (KEP-753): the
/// larger of (every container plus every sidecar) and (each ordinary init
/// container plus the sidecars started before it), plus the pod overhead.
pub fn effective_requests(
    containers: &[Container],
    init_containers: &[Container],
    overhead: &Resources,
) -> Resources {
    let mut sum = Resources::default();
    for c in containers {
        sum.add(&c.requests);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in init_containers {
        if c.restartable {
            sidecars.add(&c.requests);
            init_peak = init_peak.max(&sidecars);
        } else {
            init_peak = init_peak.max(&sidecars.plus(&c.requests));
        }
    }
    sum.add(&sidecars);
    let mut total = sum.max(&init_peak);
    total.add(overhead);
    total
}

/// A pod awaiting a node, or one already bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pod {
    pub namespace: Sym,
    pub name: Sym,
    pub labels: Labels,
    pub annotations: Labels,
    /// Effective requests (see [`effective_requests`]); the scheduler adds
    /// one `pods` slot itself.
    pub requests: Resources,
    pub node_selector: Labels,
    /// OR of terms, each an AND of requirements.
    pub required_node_affinity: Vec<Vec<NodeSelectorRequirement>>,
    pub preferred_node_affinity: Vec<PreferredSchedulingTerm>,
    pub pod_affinity: Vec<PodAffinityTerm>,
    pub preferred_pod_affinity: Vec<WeightedPodAffinityTerm>,
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_pod_anti_affinity: Vec<WeightedPodAffinityTerm>,
    pub topology_spread: Vec<TopologySpreadConstraint>,
    pub tolerations: Vec<Toleration>,
    pub host_ports: Vec<HostPort>,
    /// Zones allowed by the pod's bound volumes (from PersistentVolume node
    /// affinity or StorageClass allowed topologies); empty = any.
    pub volume_zones: Vec<Sym>,
    pub priority: i32,
    /// Creation order; breaks ties in the scheduling queue.
    pub created: u64,
    /// Its controller (`metadata.ownerReferences` with `controller: true`).
    pub owner: Option<Owner>,
    pub phase: PodPhase,
    /// Deletion requested (`metadata.deletionTimestamp`), Unix seconds: the
    /// pod is terminating.
    pub deleting_since: Option<u64>,
    /// When it started running (seconds), for `do-not-disrupt` durations.
    pub started_at: u64,
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PodPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// The kind of a pod's controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// A Deployment's pods are owned by its ReplicaSet.
    ReplicaSet,
    StatefulSet,
    Job,
    DaemonSet,
    /// A static (mirror) pod, owned by its Node.
    Node,
    Other,
}

/// A pod's controller: kind and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: Sym,
}

impl Pod {
    /// The DaemonSet owning it, if any.
    pub fn daemon_set(&self) -> Option<Sym> {
        self.owner
            .filter(|o| o.kind == OwnerKind::DaemonSet)
            .map(|o| o.name)
    }

    pub fn is_daemon(&self) -> bool {
        self.daemon_set().is_some()
    }

    /// Succeeded or failed: it holds no resources any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase, PodPhase::Succeeded | PodPhase::Failed)
    }

    /// Being deleted (it has a deletion timestamp).
    pub fn is_terminating(&self) -> bool {
        self.deleting_since.is_some()
    }

    /// A static pod the kubelet runs from a file; the API shows its mirror.
    pub fn is_static(&self) -> bool {
        self.owner.is_some_and(|o| o.kind == OwnerKind::Node)
    }

    /// `controller.kubernetes.io/pod-deletion-cost`, 0 when absent or malformed.
    pub fn deletion_cost(&self) -> i32 {
        // Compared as text: this runs for every pod of every candidate, and
        // interning the key would take the global symbol lock each time.
        self.annotations
            .iter()
            .find(|(k, _)| k.as_str() == DELETION_COST)
            .and_then(|(_, v)| v.as_str().parse().ok())
            .unwrap_or(0)
    }
}

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A PodDisruptionBudget, with the `disruptionsAllowed` its status reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDisruptionBudget {
    pub namespace: Sym,
    pub name: Sym,
    pub selector: LabelSelector,
    pub disruptions_allowed: i32,
}

impl PodDisruptionBudget {
    pub fn covers(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace && self.selector.matches(&pod.labels)
    }
}

impl Pod {
    pub fn key(&self) -> PodKey {
        PodKey {
            namespace: self.namespace,
            name: self.name,
        }
    }
}

/// `namespace/name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: Sym,
    pub name: Sym,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Serialize for PodKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A node that exists or is being launched (an in-flight NodeClaim).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: Sym,
    /// The owning NodePool; `None` for nodes Dovetail does not manage.
    pub node_pool: Option<Sym>,
    /// Including instance type, zone, capacity type and hostname.
    pub labels: Labels,
    pub annotations: Labels,
    pub taints: Vec<Taint>,
    /// Taints removed once the node is initialized.
    pub startup_taints: Vec<Taint>,
    pub capacity: Resources,
    pub allocatable: Resources,
    /// Ready, start-up taints gone, extended resources registered.
    pub initialized: bool,
    /// Pods bound to it, DaemonSet pods included. Shared with the cluster
    /// state a snapshot is taken from: a snapshot of 20,000 pods then
    /// copies 20,000 pointers, not 20,000 pods.
    pub pods: Vec<Arc<Pod>>,
    /// Being deleted: takes no new pods.
    pub marked_for_deletion: bool,
    pub price_per_hour: f64,
    /// Seconds since the epoch of the snapshot's clock.
    pub created_at: u64,
    /// The node's Ready condition; budgets count not-ready nodes as disrupted.
    pub ready: bool,
    /// Pending pods were nominated to it: disruption leaves it alone.
    pub nominated: bool,
    /// When a pod was last bound to or removed from it (seconds), for
    /// `consolidateAfter`.
    pub last_pod_event: u64,
    /// The NodePool template hash it was launched with
    /// (`karpenter.sh/nodepool-hash`); a different current hash is drift.
    pub node_pool_hash: Option<u64>,
    /// Drift the cloud reported for its instance (image, subnet, security
    /// groups…), e.g. `AMIDrift`.
    pub cloud_drift: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeClassRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

impl Default for NodeClassRef {
    fn default() -> Self {
        Self {
            group: "karpenter.k8s.aws".into(),
            kind: "EC2NodeClass".into(),
            name: "default".into(),
        }
    }
}

/// Which nodes consolidation may remove or replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConsolidationPolicy {
    /// Only empty nodes.
    WhenEmpty,
    /// Empty nodes, and underutilised ones whenever a move is cheaper.
    #[default]
    WhenEmptyOrUnderutilized,
    /// As `WhenEmptyOrUnderutilized`, but a move must also save enough for
    /// what it disrupts: Karpenter's Balanced score at least
    /// 1/[`BALANCED_K`].
    Balanced,
}

/// Karpenter's `BalancedK`: a Balanced pool's move is approved when its
/// score is at least 1/k.
pub const BALANCED_K: f64 = 2.0;

/// A disruption budget: at most `nodes` at once, for the listed reasons (all
/// when empty), while its window is open (always when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub nodes: BudgetNodes,
    pub reasons: Vec<DisruptionReason>,
    pub window: Option<BudgetWindow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DisruptionSettings {
    pub consolidation_policy: ConsolidationPolicy,
    /// `None` = `Never`.
    pub consolidate_after: Option<Duration>,
    pub budgets: Vec<Budget>,
}

impl Budget {
    /// At most `nodes` at once, for every reason, always active.
    pub fn new(nodes: BudgetNodes) -> Self {
        Self {
            nodes,
            reasons: Vec::new(),
            window: None,
        }
    }
}

impl Default for DisruptionSettings {
    fn default() -> Self {
        Self {
            consolidation_policy: ConsolidationPolicy::default(),
            consolidate_after: Some(Duration::ZERO),
            budgets: vec![Budget::new(BudgetNodes::Percent(10))],
        }
    }
}

/// A `karpenter.sh/v1` NodePool.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePool {
    pub name: Sym,
    /// Higher goes first; 0 when unset.
    pub weight: i32,
    pub labels: Labels,
    pub annotations: Labels,
    pub taints: Vec<Taint>,
    pub startup_taints: Vec<Taint>,
    pub requirements: Vec<NodeSelectorRequirement>,
    pub node_class_ref: NodeClassRef,
    /// `None` = `Never`; Karpenter's default is 720h.
    pub expire_after: Option<Duration>,
    /// How long a drain may wait for PodDisruptionBudgets and
    /// `do-not-disrupt` pods before deleting them; `None` waits forever.
    pub termination_grace_period: Option<Duration>,
    /// Most resources the pool's nodes may add up to, by resource name (CPU
    /// in millicores, memory in bytes, `nodes` in nodes); empty = no limit.
    pub limits: Vec<(Sym, i64)>,
    pub disruption: DisruptionSettings,
}

impl NodePool {
    /// The drift hash of the template: labels, annotations, taints, start-up
    /// taints and the node class. Requirements drift is checked separately
    /// and behavioural fields (weight, limits, disruption, expireAfter) never
    /// drift, as in Karpenter. FNV-1a over a canonical rendering, so the value
    /// is the same in every process and version of Dovetail.
    pub fn template_hash(&self) -> u64 {
        let mut text = String::new();
        for (k, v) in self.labels.iter().chain(&self.annotations) {
            text.push_str(&format!("{k}={v};"));
        }
        for (prefix, taints) in [("t", &self.taints), ("s", &self.startup_taints)] {
            for t in taints {
                text.push_str(&format!("{prefix}:{t};"));
            }
        }
        let c = &self.node_class_ref;
        text.push_str(&format!("class:{}/{}/{}", c.group, c.kind, c.name));
        text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    pub fn new(name: &str) -> Self {
        Self {
            name: Sym::new(name),
            weight: 0,
            labels: Labels::new(),
            annotations: Labels::new(),
            taints: Vec::new(),
            startup_taints: Vec::new(),
            requirements: Vec::new(),
            node_class_ref: NodeClassRef::default(),
            expire_after: Some(Duration::from_secs(720 * 3600)),
            termination_grace_period: None,
            limits: Vec::new(),
            disruption: DisruptionSettings::default(),
        }
    }
}

/// A DaemonSet: its pod template runs on every node it tolerates and selects.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSet {
    pub name: Sym,
    pub pod: Pod,
}

/// A namespace and its labels, for namespace selectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub name: Sym,
    pub labels: Labels,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::MIB;

    #[test]
    fn sidecars_count_with_containers_and_init_peaks() {
        let c = |cpu, restartable| Container {
            requests: Resources::new(cpu, 0),
            restartable,
        };
        // Containers 300m, one sidecar 100m, an ordinary init container of 1000m.
        let r = effective_requests(
            &[c(200, false), c(100, false)],
            &[c(100, true), c(1000, false)],
            &Resources::new(10, MIB),
        );
        assert_eq!(r.cpu, 1100 + 10, "init peak 100 + 1000 beats 300 + 100");
        let r = effective_requests(
            &[c(900, false)],
            &[c(100, true), c(500, false)],
            &Resources::default(),
        );
        assert_eq!(r.cpu, 1000, "containers plus sidecar beat the init peak");
    }

    #[test]
    fn tolerations() {
        let taint = Taint {
            key: Sym::new("gpu"),
            value: Some(Sym::new("true")),
            effect: TaintEffect::NoSchedule,
        };
        let equal = Toleration {
            key: Some(Sym::new("gpu")),
            operator: TolerationOperator::Equal,
            value: Some(Sym::new("true")),
            effect: None,
        };
        assert!(equal.tolerates(&taint));
        let wrong = Toleration {
            value: Some(Sym::new("false")),
            ..equal
        };
        assert!(!wrong.tolerates(&taint));
        let all = Toleration {
            key: None,
            operator: TolerationOperator::Exists,
            value: None,
            effect: None,
        };
        assert!(all.tolerates(&taint));
    }
}
