//! What a scenario is made of: the cluster at the start, the workloads, the
//! events, the models and which autoscaler runs.

use dovetail_api::k8s::{ObjectRef, PdbRule};
use dovetail_core::catalog::CapacityType;
use dovetail_core::disruption::Settings;
use dovetail_core::labels;
use dovetail_core::model::{DaemonSet, LabelSelector, Namespace, Node, NodePool, Pod};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::scheduler::Snapshot;
use dovetail_core::sym::Sym;

use crate::unknown_fields::ScenarioWarning;

/// Model parameters; the defaults follow Karpenter and AWS as reported.
#[derive(Debug, Clone)]
pub struct Models {
    /// Launch to instance running.
    pub launch_ms: u64,
    /// Running to node Ready (AWS: 30–40 s from launch in total).
    pub ready_ms: u64,
    pub batch_idle_ms: u64,
    pub batch_max_ms: u64,
    pub disruption_interval_ms: u64,
    pub validation_delay_ms: u64,
    /// Karpenter skips a disruption pass when nothing changed since the last
    /// one that found nothing to do, but re-checks after this long.
    pub consolidation_recheck_ms: u64,
    /// How long an offering that failed with insufficient capacity (or whose
    /// spot instance was interrupted) stays out of launch plans.
    pub unavailable_offering_ms: u64,
    /// Spot interruption notice to instance termination.
    pub interruption_warning_ms: u64,
    pub sample_every_ms: u64,
    pub disruption: Settings,
    /// The static node-group baseline (Cluster Autoscaler's defaults).
    pub baseline: BaselineModel,
}

impl Default for Models {
    fn default() -> Self {
        Self {
            launch_ms: 5_000,
            ready_ms: 30_000,
            batch_idle_ms: 1_000,
            batch_max_ms: 10_000,
            disruption_interval_ms: 10_000,
            validation_delay_ms: 15_000,
            consolidation_recheck_ms: 300_000,
            unavailable_offering_ms: 180_000,
            interruption_warning_ms: 120_000,
            sample_every_ms: 10_000,
            disruption: Settings::default(),
            baseline: BaselineModel::default(),
        }
    }
}

/// Cluster Autoscaler's scale-down defaults.
#[derive(Debug, Clone)]
pub struct BaselineModel {
    /// A node whose requested CPU and memory are both below this share of
    /// its allocatable is unneeded (`--scale-down-utilization-threshold`).
    pub utilization_threshold: f64,
    /// How long a node must stay unneeded before removal
    /// (`--scale-down-unneeded-time`).
    pub unneeded_ms: u64,
    /// How often scale-down looks (`--scan-interval`).
    pub scan_ms: u64,
}

impl Default for BaselineModel {
    fn default() -> Self {
        Self {
            utilization_threshold: 0.5,
            unneeded_ms: 600_000,
            scan_ms: 10_000,
        }
    }
}

/// Replicas following a day: `min` at the trough, `max` at `peak_at_ms`
/// (time of day, from the start), a cosine in between, changed every
/// `step_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Diurnal {
    pub min: usize,
    pub max: usize,
    pub peak_at_ms: u64,
    pub period_ms: u64,
    pub step_ms: u64,
}

impl Diurnal {
    pub fn replicas_at(&self, at_ms: u64) -> usize {
        let phase = (at_ms as f64 - self.peak_at_ms as f64) / self.period_ms.max(1) as f64;
        let share = (1.0 + (std::f64::consts::TAU * phase).cos()) / 2.0;
        self.min + ((self.max.saturating_sub(self.min)) as f64 * share).round() as usize
    }
}

/// The controller that keeps a workload's replicas: it decides how its pods
/// are named and who owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    /// Pods owned by its ReplicaSet, named with a random suffix.
    #[default]
    Deployment,
    /// Pods named by ordinal (`web-0`, `web-1`, …), the lowest free first.
    StatefulSet,
    /// A ReplicaSet no Deployment owns.
    ReplicaSet,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::ReplicaSet => "ReplicaSet",
        }
    }
}

/// A number of pods, or a share of the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(u32),
    Percent(u32),
}

impl Amount {
    /// Pods out of `replicas`, a share rounded up or down.
    pub fn of(self, replicas: usize, round_up: bool) -> usize {
        match self {
            Self::Count(n) => n as usize,
            Self::Percent(p) if round_up => (p as usize * replicas).div_ceil(100),
            Self::Percent(p) => p as usize * replicas / 100,
        }
    }
}

/// How a workload replaces its pods when its template changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// New pods come while old ones go: at most `max_surge` pods above the
    /// replicas (a share rounded up) and `max_unavailable` below (rounded
    /// down; 1 when both are 0), as the Deployment and StatefulSet
    /// controllers roll.
    Rolling {
        max_surge: Amount,
        max_unavailable: Amount,
    },
    /// Every old pod goes first, then the new ones come.
    Recreate,
    /// Pods change only when they are deleted (a StatefulSet's `OnDelete`).
    OnDelete,
}

impl Rollout {
    /// A Deployment's default: 25 % surge, 25 % unavailable.
    pub const DEPLOYMENT: Rollout = Rollout::Rolling {
        max_surge: Amount::Percent(25),
        max_unavailable: Amount::Percent(25),
    };
    /// A StatefulSet's default: one pod at a time.
    pub const STATEFUL_SET: Rollout = Rollout::Rolling {
        max_surge: Amount::Count(0),
        max_unavailable: Amount::Count(1),
    };
}

/// A Deployment (or StatefulSet, or ReplicaSet): `replicas` copies of
/// `template`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub name: String,
    pub replicas: usize,
    /// Its namespace is the workload's; its `owner`, when set, is what owns
    /// the pods (a Deployment's pods are owned by its ReplicaSet, named here
    /// after the Deployment).
    pub template: Pod,
    pub diurnal: Option<Diurnal>,
    pub kind: WorkloadKind,
    pub rollout: Rollout,
}

impl Deployment {
    /// `replicas` copies of `template`, as a Deployment with the default
    /// rolling update.
    pub fn new(name: impl Into<String>, replicas: usize, template: Pod) -> Self {
        Self {
            name: name.into(),
            replicas,
            template,
            diurnal: None,
            kind: WorkloadKind::Deployment,
            rollout: Rollout::DEPLOYMENT,
        }
    }
}

/// A Job: `completions` pods, at most `parallelism` at once, each running
/// `duration_ms` once started; an evicted pod starts over.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub at_ms: u64,
    pub completions: usize,
    pub parallelism: usize,
    pub duration_ms: u64,
    pub template: Pod,
    /// Completions already done at the start (`status.succeeded`).
    pub succeeded: usize,
}

/// A PodDisruptionBudget as written: the simulator computes
/// `disruptionsAllowed` from the pods it covers. Without a rule it never
/// blocks an eviction.
#[derive(Debug, Clone, PartialEq)]
pub struct PdbSpec {
    pub namespace: Sym,
    pub name: Sym,
    pub selector: LabelSelector,
    pub rule: Option<PdbRule>,
}

/// A node there at the start, with some of the workloads' pods bound to it.
#[derive(Debug, Clone, PartialEq)]
pub struct InitialNode {
    /// Built with [`node_for`] or read from a Node manifest; `created_at`
    /// gives its age, `ready` and `initialized` its state. A node without a
    /// NodePool (`node_pool: None`) is not Dovetail's: it is never
    /// disrupted, and costs what its instance type's offering costs, if the
    /// catalog has it.
    pub node: Node,
    pub capacity_type: CapacityType,
    /// Not yet Ready: it becomes Ready after the launch model's remaining
    /// time.
    pub ready: bool,
    /// `(deployment index, pod count)`.
    pub pods: Vec<(usize, usize)>,
    /// Its NodeClaim, when a manifest gave one (a managed node without one
    /// gets a NodeClaim made from its NodePool).
    pub claim: Option<NodeClaim>,
}

/// A pod from a manifest: bound to `node` or pending. Its `owner` says which
/// workload it belongs to (a Deployment's pods name the Deployment as their
/// ReplicaSet owner); a pod no workload of the scenario owns is replaced when
/// evicted if it has a controller, and gone if not.
#[derive(Debug, Clone, PartialEq)]
pub struct InitialPod {
    pub pod: Pod,
    pub node: Option<Sym>,
}

/// A Kubernetes object an event applies: created, or changed in place.
// Events hold it boxed, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A Deployment, StatefulSet or ReplicaSet: a new one starts its pods; a
    /// changed one scales to its replicas and rolls out a changed template.
    Workload(Deployment),
    /// A new Job starts; a changed one takes its new parallelism and
    /// completions.
    Job(Job),
    /// A new pod (pending, or bound to its node); a changed one takes its
    /// labels and annotations.
    Pod(InitialPod),
    /// A node joins (or a known one takes its labels, annotations, taints
    /// and readiness).
    Node(InitialNode),
    /// Its pods land on every node it selects (replaced when it changes).
    DaemonSet(DaemonSet),
    PodDisruptionBudget(PdbSpec),
    NodePool(NodePool),
    Namespace(Namespace),
}

/// Something that happens at a given time.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Scale {
        deployment: String,
        replicas: usize,
    },
    /// An object is created or changed, as `kubectl apply` (or a merge
    /// `kubectl patch`) would.
    Apply(Box<Manifest>),
    /// An object is deleted, and the cluster's controllers react as they
    /// would in Kubernetes.
    Delete(ObjectRef),
    /// Interruption notices for `count` spot nodes (those matching the
    /// filters, chosen with the seed); empty filters match all.
    Interruption {
        count: usize,
        instance_types: Vec<Sym>,
        zones: Vec<Sym>,
    },
    /// Launches of matching offerings fail with insufficient capacity for
    /// `for_ms`; empty filters match all.
    CapacityShortage {
        for_ms: u64,
        instance_types: Vec<Sym>,
        zones: Vec<Sym>,
        capacity_type: Option<CapacityType>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at_ms: u64,
    pub kind: EventKind,
}

/// One Cluster-Autoscaler node group: a fixed instance type.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroup {
    pub instance_type: Sym,
    pub capacity_type: CapacityType,
    /// Zones the group may use, balanced; empty: every zone offered.
    pub zones: Vec<Sym>,
    pub max: usize,
}

/// What makes the scaling decisions.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Autoscaler {
    #[default]
    Dovetail,
    /// Cluster-Autoscaler-like static node groups: least-waste scale-up,
    /// scale-down of nodes under the utilisation threshold.
    StaticNodeGroups(Vec<NodeGroup>),
}

/// Policy files named by the scenario (paths as written, relative to the
/// scenario file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFiles {
    pub instance_selection: Option<String>,
    pub consolidation_scoring: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// NodePools, catalog, DaemonSets and namespaces. Its `nodes` and
    /// `pdbs` are not read: the start state is `initial_nodes` and `pdbs`.
    pub cluster: Snapshot,
    pub initial_nodes: Vec<InitialNode>,
    /// Pods from manifests, bound or pending, with the nodes they are on.
    pub initial_pods: Vec<InitialPod>,
    /// NodeClaims launched but without a node yet: their instances register
    /// after the launch model's time.
    pub initial_claims: Vec<NodeClaim>,
    pub deployments: Vec<Deployment>,
    pub jobs: Vec<Job>,
    pub pdbs: Vec<PdbSpec>,
    pub events: Vec<Event>,
    pub duration_ms: u64,
    pub seed: u64,
    /// Unix time of the start, seconds.
    pub start_unix_seconds: u64,
    pub models: Models,
    pub autoscaler: Autoscaler,
    /// Node groups for the static baseline when it is asked for.
    pub node_groups: Vec<NodeGroup>,
    pub policies: PolicyFiles,
    /// What the scenario file has that has no effect or is read
    /// approximately (fields Karpenter's schemas do not have, kinds the
    /// simulator does not model, fields of Kubernetes objects not carried
    /// over exactly), as its reader found it.
    pub warnings: Vec<ScenarioWarning>,
}

impl Scenario {
    /// An empty cluster on `cluster`'s NodePools and catalog.
    pub fn new(cluster: Snapshot, duration_ms: u64, seed: u64) -> Self {
        Self {
            cluster,
            initial_nodes: Vec::new(),
            initial_pods: Vec::new(),
            initial_claims: Vec::new(),
            deployments: Vec::new(),
            jobs: Vec::new(),
            pdbs: Vec::new(),
            events: Vec::new(),
            duration_ms,
            seed,
            start_unix_seconds: 1_800_000_000,
            models: Models::default(),
            autoscaler: Autoscaler::Dovetail,
            node_groups: Vec::new(),
            policies: PolicyFiles::default(),
            warnings: Vec::new(),
        }
    }

    /// The baseline's node groups: the scenario's, or general-purpose
    /// on-demand m5 groups of four sizes.
    pub fn baseline_groups(&self) -> Vec<NodeGroup> {
        if !self.node_groups.is_empty() {
            return self.node_groups.clone();
        }
        ["m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge"]
            .into_iter()
            .filter(|t| self.cluster.catalog.get(t).is_some())
            .map(|t| NodeGroup {
                instance_type: Sym::new(t),
                capacity_type: CapacityType::OnDemand,
                zones: Vec::new(),
                max: 10_000,
            })
            .collect()
    }

    /// The baseline's node groups bought as spot, as Cluster Autoscaler runs
    /// spot node groups: the same instance types, each kept only if the
    /// catalog sells it as spot in some zone (and then only in such zones).
    pub fn spot_baseline_groups(&self) -> Vec<NodeGroup> {
        self.baseline_groups()
            .into_iter()
            .filter_map(|g| {
                let it = self.cluster.catalog.get(g.instance_type.as_str())?;
                let sold = |z: &Sym| it.offering(z.as_str(), CapacityType::Spot).is_some();
                let any = it
                    .offerings
                    .iter()
                    .any(|o| o.capacity_type == CapacityType::Spot);
                (any && (g.zones.is_empty() || g.zones.iter().any(sold))).then(|| NodeGroup {
                    capacity_type: CapacityType::Spot,
                    zones: g.zones.iter().copied().filter(sold).collect(),
                    ..g
                })
            })
            .collect()
    }
}

/// Why a node cannot be made from an offering.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    #[error(
        "instance type `{0}` is not in the catalog; use one of its types or add it under `catalog`"
    )]
    UnknownType(String),
    #[error("instance type `{instance_type}` has no {capacity_type} offering in zone `{zone}`")]
    NoOffering {
        instance_type: String,
        zone: String,
        capacity_type: CapacityType,
    },
}

/// A node of `instance_type` in `zone` as `pool` would launch it: the type's
/// labels, zone, capacity type, hostname, the pool's labels and taints, the
/// offering's price, and the capacity its EC2NodeClass gives it. Not
/// initialized; no pods.
pub fn node_for(
    cluster: &Snapshot,
    pool: Option<Sym>,
    instance_type: &str,
    zone: Sym,
    capacity_type: CapacityType,
    name: Sym,
    created_at: u64,
) -> Result<Node, NodeError> {
    let it = cluster
        .catalog
        .get(instance_type)
        .ok_or_else(|| NodeError::UnknownType(instance_type.to_string()))?;
    let price = it
        .offerings
        .iter()
        .find(|o| o.zone == zone && o.capacity_type == capacity_type)
        .map(|o| o.price)
        .ok_or_else(|| NodeError::NoOffering {
            instance_type: instance_type.to_string(),
            zone: zone.to_string(),
            capacity_type,
        })?;
    let mut node_labels = it.labels.clone();
    node_labels.push((Sym::new(labels::ZONE), zone));
    node_labels.push((
        Sym::new(labels::CAPACITY_TYPE),
        Sym::new(capacity_type.label()),
    ));
    node_labels.push((Sym::new(labels::HOSTNAME), name));
    let template = pool.and_then(|p| cluster.node_pools.iter().find(|t| t.name == p));
    // The pool's EC2NodeClass sizes the node.
    let size = template
        .and_then(|t| {
            cluster
                .catalog
                .sizing(instance_type, &t.node_class_ref.name)
        })
        .unwrap_or_else(|| it.own_sizing());
    if let Some(p) = pool {
        node_labels.push((Sym::new(labels::NODE_POOL), p));
    }
    if let Some(t) = template {
        node_labels.extend(t.labels.iter().copied());
    }
    node_labels.sort_by_key(|&(k, _)| k);
    node_labels.dedup_by_key(|(k, _)| *k);
    Ok(Node {
        name,
        node_pool: pool,
        labels: node_labels,
        annotations: Vec::new(),
        taints: template.map(|t| t.taints.clone()).unwrap_or_default(),
        // Until it is initialised a new node carries its start-up taints.
        startup_taints: template
            .map(|t| t.startup_taints.clone())
            .unwrap_or_default(),
        capacity: size.capacity.clone(),
        allocatable: size.allocatable(),
        initialized: false,
        pods: Vec::new(),
        marked_for_deletion: false,
        price_per_hour: price,
        created_at,
        ready: false,
        nominated: false,
        last_pod_event: created_at,
        node_pool_hash: template.map(|t| t.template_hash()),
        cloud_drift: None,
    })
}
