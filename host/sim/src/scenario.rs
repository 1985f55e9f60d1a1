//! Scenario files: YAML, with NodePools written exactly as `karpenter.sh/v1`
//! NodePool manifests (paste your own; read, checked and converted by
//! `dovetail-api`, and `nodeClassRef` may be left out), optionally the
//! `karpenter.k8s.aws/v1` EC2NodeClass manifests they use, plus an optional
//! catalog, the cluster at the start, workloads, events, the baseline's node
//! groups, model parameters and policies. Durations are Go durations (`90s`,
//! `30m`, `1h30m`), quantities Kubernetes ones (`500m`, `1536Mi`). Errors
//! name the field, and the line when the YAML itself is wrong. NodePool
//! fields Karpenter's v1 schema does not have are ignored, as the API server
//! ignores them, and listed in [`Scenario::warnings`] with their lines.
//!
//! With `nodeClasses`, every NodePool's `nodeClassRef` must name one of them,
//! and the AWS catalog sizes nodes as those classes do (kubelet `maxPods`,
//! `podsPerCore`, `kubeReserved`, `systemReserved`, `evictionHard`, the root
//! volume). A cluster has one catalog, so the classes the NodePools use must
//! size nodes alike; with a custom `catalog`, which states each type's
//! capacity and overhead itself, they may not change sizing at all. Without
//! `nodeClasses`, nodes are sized with Karpenter's defaults (AL2023, no
//! kubelet overrides, a 20 GiB root volume).
//!
//! ```yaml
//! seed: 42                          # default 0
//! duration: 2h
//! startUnixSeconds: 1800000000      # default
//! region: us-east-1                 # of `catalog`; default us-east-1
//! catalog:                          # optional; replaces the AWS us-east-1 catalog
//!   - name: small
//!     labels: { kubernetes.io/arch: amd64, kubernetes.io/os: [linux, windows] }
//!     capacity: { cpu: "2", memory: 4Gi, pods: "30" }   # pods default 110
//!     overhead: { kubeReserved: { cpu: 100m, memory: 256Mi } }   # optional
//!     offerings:
//!       - { zone: zone-a, capacityType: on-demand, price: 0.05 }
//!       - { zone: zone-a, capacityType: spot, price: 0.02, available: false }
//! # or, to declare labels of its own well-known (a NodePool may leave them
//! # out and a pod still require them, as with Karpenter's own):
//! # catalog: { wellKnownLabels: [example.com/gpu-model], instanceTypes: [...] }
//! settings:                         # Karpenter's settings; every key optional
//!   minValuesPolicy: Strict         # or BestEffort
//!   preferencePolicy: Respect       # or Ignore
//!   featureGates: { spotToSpotConsolidation: false }
//! nodeClasses:                      # optional; default Karpenter's sizing
//!   - apiVersion: karpenter.k8s.aws/v1
//!     kind: EC2NodeClass
//!     metadata: { name: default }
//!     spec:
//!       role: KarpenterNodeRole-my-cluster
//!       amiSelectorTerms: [{ alias: al2023@latest }]
//!       subnetSelectorTerms: [{ tags: { karpenter.sh/discovery: my-cluster } }]
//!       securityGroupSelectorTerms: [{ tags: { karpenter.sh/discovery: my-cluster } }]
//!       kubelet: { maxPods: 58, kubeReserved: { cpu: 200m }, evictionHard: { memory.available: 5% } }
//!       blockDeviceMappings:
//!         - { deviceName: /dev/xvda, rootVolume: true, ebs: { volumeSize: 100Gi } }
//! nodePools:
//!   - apiVersion: karpenter.sh/v1
//!     kind: NodePool
//!     metadata: { name: default }
//!     spec:
//!       template:
//!         spec:
//!           requirements:
//!             - { key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r] }
//!       disruption: { consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 30s }
//! cluster:                          # the start state; default empty
//!   nodes:
//!     - name: web-1                 # default <nodePool>-init-<index>
//!       instanceType: m5.large
//!       zone: us-east-1a
//!       capacityType: spot          # default on-demand
//!       nodePool: default
//!       age: 2h                     # default 0s
//!       initialized: true           # default true
//!       pods: [{ workload: my-app, count: 2 }]   # a Deployment's pods
//!   daemonSets: [{ name: node-exporter, cpu: 100m, memory: 128Mi }]
//!   podDisruptionBudgets:
//!     - name: my-app
//!       namespace: default          # default
//!       selector: { matchLabels: { app: my-app } }   # and/or matchExpressions
//!       maxUnavailable: 1           # or minAvailable; a number of pods
//! workloads:
//!   - deployment: my-app
//!     namespace: default            # default
//!     replicas: 50                  # optional with diurnal: the curve at 0
//!     cpu: "1"
//!     memory: 1536Mi
//!     labels: { app: my-app }
//!     nodeSelector: { karpenter.sh/capacity-type: spot }
//!     diurnal: { min: 10, max: 60, peakAt: 14h, period: 24h, step: 5m }
//!   - job: report
//!     at: 1h                        # default 0s
//!     completions: 20
//!     parallelism: 5                # default completions
//!     duration: 10m
//!     cpu: 500m
//!     memory: 1Gi
//! events:
//!   - at: 10m
//!     scale: { deployment: my-app, replicas: 5 }
//!   - at: 20m
//!     interruption: { count: 2, instanceTypes: [m5.large], zones: [us-east-1a] }
//!   - at: 30m
//!     capacityShortage: { for: 30m, instanceTypes: [m5.large], capacityType: spot }
//! baseline:                         # the static node groups' baseline
//!   nodeGroups:
//!     - { instanceType: m5.xlarge, capacityType: on-demand, zones: [], max: 1000 }
//! models:                           # every key optional; the defaults:
//!   launchTime: 5s
//!   readyTime: 30s
//!   batchIdle: 1s
//!   batchMax: 10s
//!   disruptionInterval: 10s
//!   validationDelay: 15s
//!   consolidationRecheck: 5m
//!   unavailableOfferingTtl: 3m
//!   interruptionWarning: 2m
//!   sampleEvery: 10s
//!   baseline: { utilizationThreshold: 0.5, unneededTime: 10m, scanInterval: 10s }
//! policies: { instanceSelection: select.wasm, consolidationScoring: score.wasm }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use dovetail_api::NodePool as NodePoolManifest;
use dovetail_api::node_class_ref::{EC2_NODE_CLASS_GROUP, EC2_NODE_CLASS_KIND};
use dovetail_api::{EC2NodeClass, NodeClassReference};
use dovetail_core::catalog::aws_catalog;
use dovetail_core::catalog::{
    CapacityType, Catalog, CatalogSettings, InstanceType, InstanceTypeSpec,
};
use dovetail_core::disruption::{Settings, parse_go_duration};
use dovetail_core::model::{
    DaemonSet, LabelSelector, NodePool, SelectorOperator, SelectorRequirement, TaintEffect,
    sorted_labels, untolerated,
};
use dovetail_core::resources::{self, QuantityError, Resources};
use dovetail_core::scheduler::{
    MinValuesPolicy, PreferencePolicy, Settings as SchedulerSettings, Snapshot,
};
use dovetail_core::sym::Sym;
use dovetail_core::template::pod;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::types::{
    BaselineModel, Deployment, Diurnal, Event, EventKind, InitialNode, Job, Models, NodeError,
    NodeGroup, PdbSpec, PolicyFiles, Scenario, node_for,
};
use crate::unknown_fields;

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Yaml(String),
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_START_UNIX_SECONDS: u64 = 1_800_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    #[serde(default)]
    seed: u64,
    duration: GoDuration,
    #[serde(default)]
    start_unix_seconds: Option<u64>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    catalog: Option<CatalogFile>,
    /// Checked only when given: without it nodes are sized as Karpenter's
    /// defaults size them, whatever the NodePools' `nodeClassRef` says.
    #[serde(default)]
    node_classes: Option<Vec<EC2NodeClass>>,
    node_pools: Vec<NodePoolManifest>,
    #[serde(default)]
    cluster: ClusterSpec,
    #[serde(default)]
    workloads: Vec<Workload>,
    #[serde(default)]
    events: Vec<EventSpec>,
    #[serde(default)]
    settings: SettingsSpec,
    #[serde(default)]
    baseline: BaselineSpec,
    #[serde(default)]
    models: ModelsSpec,
    #[serde(default)]
    policies: PoliciesSpec,
}

/// `catalog:`: a list of instance types, or a map with `instanceTypes` and
/// the catalog's own `wellKnownLabels`.
#[derive(Debug)]
struct CatalogFile {
    /// Whether written as a map (errors then name `catalog.instanceTypes`).
    map: bool,
    well_known_labels: Vec<String>,
    instance_types: Vec<InstanceTypeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogMap {
    #[serde(default)]
    well_known_labels: Vec<String>,
    instance_types: Vec<InstanceTypeSpec>,
}

impl<'de> Deserialize<'de> for CatalogFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CatalogFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of instance types, or a map with `instanceTypes` and `wellKnownLabels`",
                )
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<CatalogFile, A::Error> {
                Ok(CatalogFile {
                    map: false,
                    well_known_labels: Vec::new(),
                    instance_types: Deserialize::deserialize(
                        de::value::SeqAccessDeserializer::new(seq),
                    )?,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<CatalogFile, A::Error> {
                let m = CatalogMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(CatalogFile {
                    map: true,
                    well_known_labels: m.well_known_labels,
                    instance_types: m.instance_types,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsSpec {
    /// Karpenter's `--min-values-policy`.
    #[serde(default)]
    min_values_policy: Option<MinValuesPolicySpec>,
    /// Karpenter's `--preference-policy`.
    #[serde(default)]
    preference_policy: Option<PreferencePolicySpec>,
    /// Karpenter's feature gates, named as its Helm chart's
    /// `settings.featureGates` names them.
    #[serde(default)]
    feature_gates: FeatureGates,
    /// The `SpotToSpotConsolidation` gate as scenarios wrote it before
    /// `featureGates`.
    #[serde(default)]
    spot_to_spot_consolidation: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum MinValuesPolicySpec {
    Strict,
    BestEffort,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum PreferencePolicySpec {
    Respect,
    Ignore,
}

/// The feature gates Dovetail models.
#[derive(Debug, Default)]
struct FeatureGates {
    spot_to_spot_consolidation: Option<bool>,
}

/// Karpenter's feature gates Dovetail does not model, with their defaults:
/// accepted at the default, refused otherwise.
const UNMODELLED_GATES: &[(&str, bool)] = &[
    ("nodeRepair", false),
    ("reservedCapacity", true),
    ("nodeOverlay", false),
    ("staticCapacity", false),
    ("capacityBuffer", false),
];

const SPOT_TO_SPOT_GATE: &str = "spotToSpotConsolidation";

impl<'de> Deserialize<'de> for FeatureGates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FeatureGates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of feature gates, e.g. `{ spotToSpotConsolidation: true }`")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FeatureGates, A::Error> {
                let mut gates = FeatureGates::default();
                while let Some(name) = map.next_key::<String>()? {
                    let on: bool = map.next_value()?;
                    if name == SPOT_TO_SPOT_GATE {
                        gates.spot_to_spot_consolidation = Some(on);
                    } else if let Some(&(_, default)) =
                        UNMODELLED_GATES.iter().find(|(g, _)| *g == name)
                    {
                        if on != default {
                            return Err(de::Error::custom(format!(
                                "feature gate `{name}` is not modelled by Dovetail; leave it at Karpenter's default ({default}) or remove it"
                            )));
                        }
                    } else {
                        let known: Vec<&str> = std::iter::once(SPOT_TO_SPOT_GATE)
                            .chain(UNMODELLED_GATES.iter().map(|(g, _)| *g))
                            .collect();
                        let hint = known
                            .iter()
                            .find(|g| g.eq_ignore_ascii_case(&name))
                            .map(|g| format!(" (write `{g}`)"))
                            .unwrap_or_default();
                        return Err(de::Error::custom(format!(
                            "unknown feature gate `{name}`{hint}; the known gates are {}",
                            known.join(", ")
                        )));
                    }
                }
                Ok(gates)
            }
        }
        d.deserialize_map(V)
    }
}

// Values checked as they are read, so that a bad one gets its line.

/// A Go duration (`90s`, `30m`, `1h30m`; a bare `0` too), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GoDuration(u64);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `90s`, `30m` or `24h`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<GoDuration, E> {
                parse_go_duration(text)
                    .map(|d| GoDuration(d.as_millis() as u64))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "`{text}` is not a duration; write e.g. `90s`, `30m` or `24h`"
                        ))
                    })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<GoDuration, E> {
                if n == 0 {
                    Ok(GoDuration(0))
                } else {
                    Err(E::custom(format!(
                        "`{n}` has no unit; write e.g. `{n}s` or `{n}m`"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<GoDuration, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("`{n}` is negative"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A quantity as written (`"1"`, `500m`, `1536Mi`, or a bare number),
/// checked with `parse` and not negative.
fn quantity<'de, D: Deserializer<'de>>(
    d: D,
    parse: fn(&str) -> Result<i64, QuantityError>,
) -> Result<String, D::Error> {
    struct V(fn(&str) -> Result<i64, QuantityError>);
    impl V {
        fn check<E: de::Error>(&self, text: String) -> Result<String, E> {
            match (self.0)(&text) {
                Ok(v) if v < 0 => Err(E::custom(format!("`{text}` is negative"))),
                Ok(_) => Ok(text),
                Err(e) => Err(E::custom(e)),
            }
        }
    }
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a quantity such as `500m`, `2` or `1536Mi`")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            self.check(text.to_string())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
            self.check(n.to_string())
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
            self.check(n.to_string())
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
            self.check(n.to_string())
        }
    }
    d.deserialize_any(V(parse))
}

/// A CPU quantity (`500m`, `2`).
#[derive(Debug, Clone)]
struct Cpu(String);

impl<'de> Deserialize<'de> for Cpu {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        quantity(d, resources::parse_milli).map(Cpu)
    }
}

/// A memory quantity (`1536Mi`, `2Gi`).
#[derive(Debug, Clone)]
struct Memory(String);

impl<'de> Deserialize<'de> for Memory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        quantity(d, resources::parse_units).map(Memory)
    }
}

/// A PodDisruptionBudget's `minAvailable`/`maxUnavailable`: a number of
/// pods (percentages are refused).
#[derive(Debug, Clone, Copy)]
struct PodCount(u32);

impl<'de> Deserialize<'de> for PodCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PodCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of pods")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PodCount, E> {
                u32::try_from(n)
                    .map(PodCount)
                    .map_err(|_| E::custom(format!("{n} pods is too many")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PodCount, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("`{n}` is negative"))),
                }
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<PodCount, E> {
                if text.trim_end().ends_with('%') {
                    Err(E::custom(format!(
                        "`{text}`: percentages are not supported; give a number of pods, e.g. `1`"
                    )))
                } else {
                    Err(E::custom(format!(
                        "`{text}` is not a number of pods; write it unquoted, e.g. `1`"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

// The start state.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterSpec {
    #[serde(default)]
    nodes: Vec<NodeSpec>,
    #[serde(default)]
    daemon_sets: Vec<DaemonSetSpec>,
    #[serde(default)]
    pod_disruption_budgets: Vec<PdbYaml>,
}

fn on_demand() -> CapacityType {
    CapacityType::OnDemand
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NodeSpec {
    #[serde(default)]
    name: Option<String>,
    instance_type: String,
    zone: String,
    #[serde(default = "on_demand")]
    capacity_type: CapacityType,
    node_pool: String,
    #[serde(default)]
    age: GoDuration,
    #[serde(default = "yes")]
    initialized: bool,
    #[serde(default)]
    pods: Vec<BoundPods>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoundPods {
    workload: String,
    count: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonSetSpec {
    name: String,
    cpu: Cpu,
    memory: Memory,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PdbYaml {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    selector: SelectorSpec,
    #[serde(default)]
    min_available: Option<PodCount>,
    #[serde(default)]
    max_unavailable: Option<PodCount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SelectorSpec {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<SelectorExpression>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorExpression {
    key: String,
    operator: SelectorOp,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum SelectorOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

// Workloads.

/// A Deployment (`deployment: NAME`) or a Job (`job: NAME`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Workload {
    #[serde(default)]
    deployment: Option<String>,
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    // Deployments.
    #[serde(default)]
    replicas: Option<usize>,
    #[serde(default)]
    diurnal: Option<DiurnalSpec>,
    // Jobs.
    #[serde(default)]
    at: Option<GoDuration>,
    #[serde(default)]
    completions: Option<usize>,
    #[serde(default)]
    parallelism: Option<usize>,
    #[serde(default)]
    duration: Option<GoDuration>,
    // Both.
    cpu: Cpu,
    memory: Memory,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Pod annotations, e.g. `karpenter.sh/do-not-disrupt: "true"` or
    /// `controller.kubernetes.io/pod-deletion-cost`.
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    /// Spreads of the workload's own pods (selected by its `labels`).
    #[serde(default)]
    topology_spread_constraints: Vec<SpreadSpec>,
    /// Topology keys the workload's pods must not share (required
    /// anti-affinity against its own `labels`), e.g. `kubernetes.io/hostname`.
    #[serde(default)]
    pod_anti_affinity: Vec<String>,
    #[serde(default)]
    tolerations: Vec<TolerationSpec>,
    #[serde(default)]
    priority: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpreadSpec {
    topology_key: String,
    #[serde(default = "one")]
    max_skew: i32,
    #[serde(default)]
    when_unsatisfiable: Unsatisfiable,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Default, Deserialize)]
enum Unsatisfiable {
    #[default]
    DoNotSchedule,
    ScheduleAnyway,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TolerationSpec {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    operator: TolerationOp,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    effect: Option<TaintEffect>,
}

#[derive(Debug, Default, Deserialize)]
enum TolerationOp {
    #[default]
    Equal,
    Exists,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DiurnalSpec {
    min: usize,
    max: usize,
    peak_at: GoDuration,
    #[serde(default)]
    period: Option<GoDuration>,
    #[serde(default)]
    step: Option<GoDuration>,
}

// Events.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventSpec {
    at: GoDuration,
    #[serde(default)]
    scale: Option<ScaleSpec>,
    #[serde(default)]
    interruption: Option<InterruptionSpec>,
    #[serde(default)]
    capacity_shortage: Option<ShortageSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    deployment: String,
    replicas: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InterruptionSpec {
    #[serde(default)]
    count: Option<usize>,
    #[serde(default)]
    instance_types: Vec<String>,
    #[serde(default)]
    zones: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ShortageSpec {
    #[serde(rename = "for")]
    for_: GoDuration,
    #[serde(default)]
    instance_types: Vec<String>,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    capacity_type: Option<CapacityType>,
}

// The baseline, models and policies.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BaselineSpec {
    #[serde(default)]
    node_groups: Vec<NodeGroupSpec>,
}

fn thousand() -> usize {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NodeGroupSpec {
    instance_type: String,
    #[serde(default = "on_demand")]
    capacity_type: CapacityType,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default = "thousand")]
    max: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModelsSpec {
    #[serde(default)]
    launch_time: Option<GoDuration>,
    #[serde(default)]
    ready_time: Option<GoDuration>,
    #[serde(default)]
    batch_idle: Option<GoDuration>,
    #[serde(default)]
    batch_max: Option<GoDuration>,
    #[serde(default)]
    disruption_interval: Option<GoDuration>,
    #[serde(default)]
    validation_delay: Option<GoDuration>,
    #[serde(default)]
    consolidation_recheck: Option<GoDuration>,
    #[serde(default)]
    unavailable_offering_ttl: Option<GoDuration>,
    #[serde(default)]
    interruption_warning: Option<GoDuration>,
    #[serde(default)]
    sample_every: Option<GoDuration>,
    #[serde(default)]
    baseline: BaselineModelSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BaselineModelSpec {
    #[serde(default)]
    utilization_threshold: Option<f64>,
    #[serde(default)]
    unneeded_time: Option<GoDuration>,
    #[serde(default)]
    scan_interval: Option<GoDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PoliciesSpec {
    #[serde(default)]
    instance_selection: Option<String>,
    #[serde(default)]
    consolidation_scoring: Option<String>,
}

/// The name a NodePool that leaves out `nodeClassRef` uses.
const DEFAULT_NODE_CLASS: &str = "default";

/// A NodePool manifest: Karpenter's `karpenter.sh/v1` NodePool, read,
/// validated and converted by `dovetail-api`. For brevity a scenario may
/// leave out `spec.template.spec.nodeClassRef` (the EC2NodeClass `default`).
fn node_pool(i: usize, mut m: NodePoolManifest) -> Result<NodePool, ScenarioError> {
    let template = &mut m.spec.template.spec;
    if template.node_class_ref.is_none() {
        template.node_class_ref = Some(NodeClassReference::ec2(DEFAULT_NODE_CLASS));
    }
    m.to_core()
        .map_err(|e| api_error(&format!("nodePools[{i}]"), e))
}

/// `dovetail-api`'s errors for the object at `at`: every problem, each
/// with its path under `at` and its fix.
fn api_error(at: &str, e: dovetail_api::ConversionError) -> ScenarioError {
    let dovetail_api::ConversionError::Invalid(e) = e;
    let mut errors = e.errors.iter().map(|f| {
        (
            format!("{at}.{}", f.path),
            format!("{}; {}", f.message, f.fix),
        )
    });
    let (path, mut message) = errors
        .next()
        .unwrap_or_else(|| (at.to_string(), e.to_string()));
    for (path, more) in errors {
        message.push_str(&format!("\n  {path}: {more}"));
    }
    invalid(path, message)
}

/// EC2NodeClass manifests, each validated as Karpenter validates it, with
/// unique names.
fn node_classes(manifests: Vec<EC2NodeClass>) -> Result<Vec<EC2NodeClass>, ScenarioError> {
    if manifests.is_empty() {
        return Err(invalid(
            "nodeClasses",
            "list at least one EC2NodeClass, or leave `nodeClasses` out to size nodes with Karpenter's defaults",
        ));
    }
    let mut names = BTreeMap::new();
    for (i, class) in manifests.iter().enumerate() {
        class
            .validate()
            .map_err(|e| api_error(&format!("nodeClasses[{i}]"), e.into()))?;
        if let Some(first) = names.insert(class.name(), i) {
            return Err(invalid(
                format!("nodeClasses[{i}].metadata.name"),
                format!(
                    "`{}` is listed twice (also nodeClasses[{first}])",
                    class.name()
                ),
            ));
        }
    }
    Ok(manifests)
}

/// How the embedded AWS catalog sizes nodes: the settings of the
/// EC2NodeClasses the NodePools use, or None for Karpenter's defaults.
///
/// A snapshot has one catalog, so the classes in use must size nodes alike.
/// A custom `catalog` states every type's capacity and overhead itself, so
/// there a class in use may not change them.
fn node_sizing(
    classes: &[EC2NodeClass],
    pools: &[(NodePool, bool)],
    custom_catalog: bool,
) -> Result<Option<CatalogSettings>, ScenarioError> {
    let base = CatalogSettings::default();
    let mut settings: Vec<Option<CatalogSettings>> = vec![None; classes.len()];
    // The first NodePool and its class, which the others must size alike.
    let mut first: Option<(usize, usize)> = None;
    for (j, (pool, left_out)) in pools.iter().enumerate() {
        let at = format!("nodePools[{j}].spec.template.spec.nodeClassRef");
        let r = &pool.node_class_ref;
        for (field, value, want) in [
            ("group", &r.group, EC2_NODE_CLASS_GROUP),
            ("kind", &r.kind, EC2_NODE_CLASS_KIND),
        ] {
            if value != want {
                return Err(invalid(
                    format!("{at}.{field}"),
                    format!(
                        "NodePool `{}` uses a `{}` of group `{}`, but nodeClasses holds EC2NodeClasses; write `group: {EC2_NODE_CLASS_GROUP}, kind: {EC2_NODE_CLASS_KIND}`",
                        pool.name, r.kind, r.group
                    ),
                ));
            }
        }
        let Some(k) = classes.iter().position(|c| c.name() == r.name) else {
            let (at, why) = if *left_out {
                (at, " (nodeClassRef is left out, which means `default`)")
            } else {
                (format!("{at}.name"), "")
            };
            return Err(invalid(
                at,
                format!(
                    "NodePool `{}` uses EC2NodeClass `{}`{why}, which is not in nodeClasses; they are {}. Name one of them in nodeClassRef, or add `{}` to nodeClasses",
                    pool.name,
                    r.name,
                    list(classes.iter().map(|c| format!("`{}`", c.name()))),
                    r.name
                ),
            ));
        };
        if settings[k].is_none() {
            let class = &classes[k];
            let at = format!("nodeClasses[{k}]");
            let own = class
                .catalog_settings(&base)
                .map_err(|e| api_error(&at, e))?;
            if custom_catalog {
                // What the class's kubelet and block devices change, against
                // its AMI family alone.
                let mut plain = class.clone();
                plain.spec.kubelet = None;
                plain.spec.block_device_mappings.clear();
                let family = plain
                    .catalog_settings(&base)
                    .map_err(|e| api_error(&at, e))?;
                let changed = sizing_differences(&family, &own);
                if !changed.is_empty() {
                    return Err(invalid(
                        format!("{at}.spec"),
                        format!(
                            "EC2NodeClass `{}` (used by NodePool `{}`) changes how nodes are sized ({}), but `catalog` states each instance type's capacity and overhead itself. Put them in `catalog` (`capacity.pods`, `capacity.ephemeral-storage`, `overhead.kubeReserved`, `overhead.systemReserved`, `overhead.evictionThreshold`) and take them out of the class",
                            class.name(),
                            pool.name,
                            list(changed.iter().map(|d| d.field))
                        ),
                    ));
                }
            }
            settings[k] = Some(own);
        }
        let Some((i, c)) = first else {
            first = Some((j, k));
            continue;
        };
        // A custom catalog's sizing is its own, checked above.
        if custom_catalog {
            continue;
        }
        if let (Some(a), Some(b)) = (&settings[c], &settings[k])
            && a != b
        {
            let (a_name, b_name) = (classes[c].name(), classes[k].name());
            let differences: Vec<String> = sizing_differences(a, b)
                .into_iter()
                .map(|d| match d.values {
                    Some((x, y)) => format!("{} {x} in `{a_name}`, {y} in `{b_name}`", d.field),
                    None => d.field.to_string(),
                })
                .collect();
            return Err(invalid(
                if *left_out { at } else { format!("{at}.name") },
                format!(
                    "NodePool `{}` uses EC2NodeClass `{b_name}` and NodePool `{}` uses `{a_name}`, which size nodes differently ({}). The cluster has one instance-type catalog, so every NodePool must size its nodes the same way: point the NodePools at one EC2NodeClass, or give the classes the same kubelet and blockDeviceMappings",
                    pool.name,
                    pools[i].0.name,
                    differences.join("; ")
                ),
            ));
        }
    }
    if custom_catalog {
        return Ok(None);
    }
    Ok(first
        .and_then(|(_, c)| settings[c].take())
        .filter(|s| *s != base))
}

/// One way two catalog settings size nodes differently, named by the
/// EC2NodeClass field behind it, with both values where they read simply.
struct SizingDifference {
    field: &'static str,
    values: Option<(String, String)>,
}

fn sizing_differences(a: &CatalogSettings, b: &CatalogSettings) -> Vec<SizingDifference> {
    // Destructured so that a new setting cannot be left out here.
    let CatalogSettings {
        vm_memory_overhead_percent: _,
        reserved_enis: _,
        max_pods,
        pods_per_core,
        kube_reserved,
        system_reserved,
        eni_limited_memory_overhead,
        eviction_memory,
        eviction_nodefs,
        ephemeral_storage,
        spot: _,
    } = a;
    let pods = |p: &Option<u32>, unset: &str| p.map_or(unset.to_string(), |n| n.to_string());
    let mut out = Vec::new();
    let mut differs = |same: bool, field, values| {
        if !same {
            out.push(SizingDifference { field, values });
        }
    };
    differs(
        *max_pods == b.max_pods,
        "kubelet.maxPods",
        Some((
            pods(max_pods, "ENI-limited"),
            pods(&b.max_pods, "ENI-limited"),
        )),
    );
    differs(
        *pods_per_core == b.pods_per_core,
        "kubelet.podsPerCore",
        Some((
            pods(pods_per_core, "unset"),
            pods(&b.pods_per_core, "unset"),
        )),
    );
    differs(
        *kube_reserved == b.kube_reserved,
        "kubelet.kubeReserved",
        None,
    );
    differs(
        *system_reserved == b.system_reserved,
        "kubelet.systemReserved",
        None,
    );
    differs(
        *eviction_memory == b.eviction_memory && *eviction_nodefs == b.eviction_nodefs,
        "kubelet.evictionHard",
        None,
    );
    differs(
        *ephemeral_storage == b.ephemeral_storage,
        "root volume (blockDeviceMappings)",
        Some((
            resources::format_bytes(*ephemeral_storage),
            resources::format_bytes(b.ephemeral_storage),
        )),
    );
    differs(
        *eni_limited_memory_overhead == b.eni_limited_memory_overhead,
        "amiFamily (which sizes kube-reserved memory)",
        None,
    );
    out
}

/// The scenario's catalog, or the AWS one.
fn catalog(
    region: Option<String>,
    file: Option<CatalogFile>,
    sizing: Option<&CatalogSettings>,
) -> Result<Arc<Catalog>, ScenarioError> {
    let Some(file) = file else {
        return match (region, sizing) {
            (Some(r), _) if r != DEFAULT_REGION => Err(invalid(
                "region",
                format!(
                    "the built-in AWS catalog is {DEFAULT_REGION}; list the instance types of `{r}` under `catalog`"
                ),
            )),
            (_, Some(settings)) => Ok(Arc::new(Catalog::aws_us_east_1_with(settings))),
            (_, None) => Ok(aws_catalog()),
        };
    };
    let specs = &file.instance_types;
    let at = if file.map {
        "catalog.instanceTypes"
    } else {
        "catalog"
    };
    if specs.is_empty() {
        return Err(invalid(
            at,
            "list at least one instance type, or leave `catalog` out for AWS us-east-1",
        ));
    }
    let mut well_known = Vec::with_capacity(file.well_known_labels.len());
    for (i, key) in file.well_known_labels.iter().enumerate() {
        let field = format!("catalog.wellKnownLabels[{i}]");
        if let Some(problem) = dovetail_api::rules::qualified_name_problem(key) {
            return Err(invalid(
                field,
                format!("`{key}` is not a label key: {problem}"),
            ));
        }
        if key == dovetail_core::labels::HOSTNAME {
            return Err(invalid(
                field,
                format!("`{key}` cannot be well-known: every node gets its own"),
            ));
        }
        if file.well_known_labels[..i].contains(key) {
            return Err(invalid(field, format!("`{key}` is listed twice")));
        }
        well_known.push(Sym::new(key));
    }
    let region = region.as_deref().unwrap_or(DEFAULT_REGION);
    Catalog::from_specs(region, specs)
        .map(|c| Arc::new(c.with_well_known_labels(well_known)))
        .map_err(|e| {
            // A repeated name is reported at its second entry.
            let named = |s: &InstanceTypeSpec| s.name == e.instance_type;
            let i = if e.field == "name" {
                specs.iter().rposition(named)
            } else {
                specs.iter().position(named)
            }
            .unwrap_or(0);
            invalid(
                format!("{at}[{i}].{}", e.field),
                format!("instance type `{}`: {}", e.instance_type, e.message),
            )
        })
}

/// The scheduler settings and the spot-to-spot gate from `settings`.
fn settings(spec: SettingsSpec) -> Result<(SchedulerSettings, bool), ScenarioError> {
    let gate = spec.feature_gates.spot_to_spot_consolidation;
    let spot_to_spot = match (spec.spot_to_spot_consolidation, gate) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                "settings.featureGates.spotToSpotConsolidation",
                format!(
                    "is {b} but `settings.spotToSpotConsolidation` is {a}; keep only the feature gate"
                ),
            ));
        }
        (a, b) => a.or(b).unwrap_or(false),
    };
    let mut scheduler = SchedulerSettings::default();
    if let Some(p) = spec.min_values_policy {
        scheduler.min_values_policy = match p {
            MinValuesPolicySpec::Strict => MinValuesPolicy::Strict,
            MinValuesPolicySpec::BestEffort => MinValuesPolicy::BestEffort,
        };
    }
    if let Some(p) = spec.preference_policy {
        scheduler.preference_policy = match p {
            PreferencePolicySpec::Respect => PreferencePolicy::Respect,
            PreferencePolicySpec::Ignore => PreferencePolicy::Ignore,
        };
    }
    Ok((scheduler, spot_to_spot))
}

fn list(names: impl IntoIterator<Item = impl fmt::Display>) -> String {
    names
        .into_iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The instance type `name` of `catalog`.
fn instance_type<'a>(
    catalog: &'a Catalog,
    at: String,
    name: &str,
) -> Result<&'a InstanceType, ScenarioError> {
    catalog.get(name).ok_or_else(|| {
        let hint = if catalog.instance_types.len() <= 20 {
            format!(
                "; it has {}",
                list(catalog.instance_types.iter().map(|it| it.name))
            )
        } else {
            String::new()
        };
        invalid(
            at,
            format!("instance type `{name}` is not in the catalog{hint}"),
        )
    })
}

/// `name` as a zone some type of `catalog` is offered in.
fn zone(zones: &[Sym], at: String, name: &str) -> Result<Sym, ScenarioError> {
    zones
        .iter()
        .copied()
        .find(|z| z.as_str() == name)
        .ok_or_else(|| {
            invalid(
                at,
                format!(
                    "no instance type is offered in zone `{name}`; the catalog's zones are {}",
                    list(zones)
                ),
            )
        })
}

fn pod_template(
    at: &str,
    name: &str,
    w: &Workload,
    extra_labels: &[(&str, &str)],
) -> Result<dovetail_core::model::Pod, ScenarioError> {
    let mut b = pod(name)
        .namespace(w.namespace.as_deref().unwrap_or("default"))
        .cpu(&w.cpu.0)
        .memory(&w.memory.0);
    for (k, v) in extra_labels {
        b = b.label(k, v);
    }
    for (k, v) in &w.labels {
        b = b.label(k, v);
    }
    for (k, v) in &w.annotations {
        b = b.annotation(k, v);
    }
    for (k, v) in &w.node_selector {
        b = b.node_selector(k, v);
    }
    // Spread and anti-affinity select the workload's own pods.
    let own: Vec<(&str, &str)> = extra_labels
        .iter()
        .copied()
        .chain(w.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let needs_labels = |field: &str| {
        invalid(
            format!("{at}.{field}"),
            "selects the workload's own pods by its `labels`; give it some, e.g. `labels: { app: web }`",
        )
    };
    for (i, c) in w.topology_spread_constraints.iter().enumerate() {
        if own.is_empty() {
            return Err(needs_labels("topologySpreadConstraints"));
        }
        if c.max_skew < 1 {
            return Err(invalid(
                format!("{at}.topologySpreadConstraints[{i}].maxSkew"),
                "must be at least 1",
            ));
        }
        b = match c.when_unsatisfiable {
            Unsatisfiable::DoNotSchedule => b.spread(&c.topology_key, c.max_skew, &own),
            Unsatisfiable::ScheduleAnyway => b.spread_anyway(&c.topology_key, c.max_skew, &own),
        };
    }
    for key in &w.pod_anti_affinity {
        if own.is_empty() {
            return Err(needs_labels("podAntiAffinity"));
        }
        b = b.anti_affinity(key, &own);
    }
    for (i, t) in w.tolerations.iter().enumerate() {
        b = match (&t.operator, &t.key, &t.value) {
            (TolerationOp::Exists, None, _) => b.tolerate_all(),
            (TolerationOp::Exists, Some(key), _) => b.tolerate_exists(key, t.effect),
            (TolerationOp::Equal, Some(key), value) => {
                b.tolerate(key, value.as_deref().unwrap_or(""), t.effect)
            }
            (TolerationOp::Equal, None, _) => {
                return Err(invalid(
                    format!("{at}.tolerations[{i}].key"),
                    "`Equal` needs a key; use `operator: Exists` to tolerate every taint",
                ));
            }
        };
    }
    if let Some(p) = w.priority {
        b = b.priority(p);
    }
    Ok(b.build())
}

/// The Deployments and the Jobs, in the order written.
fn workloads(specs: Vec<Workload>) -> Result<(Vec<Deployment>, Vec<Job>), ScenarioError> {
    let mut deployments = Vec::new();
    let mut jobs = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, w) in specs.into_iter().enumerate() {
        let at = format!("workloads[{i}]");
        let (kind, name, is_job) = match (&w.deployment, &w.job) {
            (Some(d), None) => ("deployment", d.clone(), false),
            (None, Some(j)) => ("job", j.clone(), true),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at,
                    "has both `deployment` and `job`; an entry is one or the other",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    at,
                    "needs `deployment: NAME` for a Deployment or `job: NAME` for a Job",
                ));
            }
        };
        if name.trim().is_empty() {
            return Err(invalid(format!("{at}.{kind}"), "must not be empty"));
        }
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(invalid(
                format!("{at}.{kind}"),
                format!("`{name}` is already the name of workloads[{first}]"),
            ));
        }
        let misplaced = if is_job {
            [
                ("replicas", w.replicas.is_some()),
                ("diurnal", w.diurnal.is_some()),
            ]
            .into_iter()
            .find(|f| f.1)
            .map(|(f, _)| (f, "deployment"))
        } else {
            [
                ("at", w.at.is_some()),
                ("completions", w.completions.is_some()),
                ("parallelism", w.parallelism.is_some()),
                ("duration", w.duration.is_some()),
            ]
            .into_iter()
            .find(|f| f.1)
            .map(|(f, _)| (f, "job"))
        };
        if let Some((field, owner)) = misplaced {
            return Err(invalid(
                format!("{at}.{field}"),
                format!("only a {owner} has `{field}`; this entry is {kind} `{name}`"),
            ));
        }
        if is_job {
            jobs.push(job(&at, name, &w)?);
        } else {
            deployments.push(deployment(&at, name, &w)?);
        }
    }
    Ok((deployments, jobs))
}

fn deployment(at: &str, name: String, w: &Workload) -> Result<Deployment, ScenarioError> {
    let diurnal = w
        .diurnal
        .as_ref()
        .map(|d| {
            let at = format!("{at}.diurnal");
            if d.min > d.max {
                return Err(invalid(
                    format!("{at}.max"),
                    format!("{} is below `min` ({})", d.max, d.min),
                ));
            }
            let period_ms = d.period.map_or(24 * 3_600_000, |p| p.0);
            let step_ms = d.step.map_or(300_000, |s| s.0);
            for (field, ms) in [("period", period_ms), ("step", step_ms)] {
                if ms == 0 {
                    return Err(invalid(format!("{at}.{field}"), "must be more than 0s"));
                }
            }
            Ok(Diurnal {
                min: d.min,
                max: d.max,
                peak_at_ms: d.peak_at.0,
                period_ms,
                step_ms,
            })
        })
        .transpose()?;
    let replicas = match (w.replicas, &diurnal) {
        (Some(r), _) => r,
        (None, Some(d)) => d.replicas_at(0),
        (None, None) => {
            return Err(invalid(
                format!("{at}.replicas"),
                "is required, unless `diurnal` gives the curve",
            ));
        }
    };
    Ok(Deployment {
        template: pod_template(at, &name, w, &[])?,
        name,
        replicas,
        diurnal,
    })
}

fn job(at: &str, name: String, w: &Workload) -> Result<Job, ScenarioError> {
    let completions = w
        .completions
        .ok_or_else(|| invalid(format!("{at}.completions"), "a job needs `completions`"))?;
    let parallelism = w.parallelism.unwrap_or(completions);
    for (field, n) in [("completions", completions), ("parallelism", parallelism)] {
        if n == 0 {
            return Err(invalid(format!("{at}.{field}"), "must be at least 1"));
        }
    }
    let duration_ms = match w.duration {
        Some(d) if d.0 > 0 => d.0,
        Some(_) => {
            return Err(invalid(format!("{at}.duration"), "must be more than 0s"));
        }
        None => {
            return Err(invalid(
                format!("{at}.duration"),
                "a job needs `duration`, how long each pod runs",
            ));
        }
    };
    if let Some(v) = w.labels.get("job-name")
        && *v != name
    {
        return Err(invalid(
            format!("{at}.labels.job-name"),
            format!("`{v}` differs from the job's name `{name}`"),
        ));
    }
    Ok(Job {
        template: pod_template(at, &name, w, &[("job-name", &name)])?,
        name,
        at_ms: w.at.map_or(0, |a| a.0),
        completions,
        parallelism,
        duration_ms,
    })
}

fn daemon_sets(specs: Vec<DaemonSetSpec>) -> Result<Vec<DaemonSet>, ScenarioError> {
    let mut seen = BTreeSet::new();
    specs
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            if !seen.insert(d.name.clone()) {
                return Err(invalid(
                    format!("cluster.daemonSets[{i}].name"),
                    format!("`{}` is listed twice", d.name),
                ));
            }
            Ok(DaemonSet {
                name: Sym::new(&d.name),
                pod: pod(&d.name)
                    .cpu(&d.cpu.0)
                    .memory(&d.memory.0)
                    .daemon(&d.name)
                    .build(),
            })
        })
        .collect()
}

fn initial_nodes(
    cluster: &Snapshot,
    deployments: &[Deployment],
    jobs: &[Job],
    specs: Vec<NodeSpec>,
    start_unix_seconds: u64,
) -> Result<Vec<InitialNode>, ScenarioError> {
    let mut nodes: Vec<InitialNode> = Vec::with_capacity(specs.len());
    let mut names = BTreeMap::new();
    let mut placed = vec![0usize; deployments.len()];
    for (i, n) in specs.into_iter().enumerate() {
        let at = format!("cluster.nodes[{i}]");
        let Some(pool) = cluster
            .node_pools
            .iter()
            .find(|p| p.name.as_str() == n.node_pool)
        else {
            return Err(invalid(
                format!("{at}.nodePool"),
                format!(
                    "no NodePool named `{}` in nodePools; they are {}",
                    n.node_pool,
                    list(cluster.node_pools.iter().map(|p| p.name))
                ),
            ));
        };
        let name = n
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-init-{i}", n.node_pool));
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(invalid(
                format!("{at}.name"),
                format!("`{name}` is already the name of cluster.nodes[{first}]"),
            ));
        }
        let created_at = start_unix_seconds.saturating_sub(n.age.0 / 1000);
        let mut node = node_for(
            cluster,
            Some(pool.name),
            &n.instance_type,
            Sym::new(&n.zone),
            n.capacity_type,
            Sym::new(&name),
            created_at,
        )
        .map_err(|e| {
            let field = match &e {
                NodeError::UnknownType(_) => "instanceType",
                NodeError::NoOffering { .. } => {
                    let offered_in_zone = cluster
                        .catalog
                        .get(&n.instance_type)
                        .is_some_and(|it| it.offerings.iter().any(|o| o.zone.as_str() == n.zone));
                    if offered_in_zone {
                        "capacityType"
                    } else {
                        "zone"
                    }
                }
            };
            invalid(format!("{at}.{field}"), e.to_string())
        })?;
        node.initialized = n.initialized;
        node.ready = n.initialized;

        let mut pods = Vec::with_capacity(n.pods.len());
        let mut requests = Resources::default();
        let mut count = 0;
        for ds in &cluster.daemon_sets {
            requests.add(&ds.pod.requests);
            count += 1;
        }
        for (j, b) in n.pods.iter().enumerate() {
            let at = format!("{at}.pods[{j}]");
            let Some(d) = deployments.iter().position(|d| d.name == b.workload) else {
                let why = if jobs.iter().any(|job| job.name == b.workload) {
                    format!(
                        "`{}` is a job; only a deployment's pods can be bound at the start",
                        b.workload
                    )
                } else {
                    format!("no deployment named `{}` in workloads", b.workload)
                };
                return Err(invalid(format!("{at}.workload"), why));
            };
            let template = &deployments[d].template;
            if let Some((k, v)) = template
                .node_selector
                .iter()
                .find(|&&(k, v)| dovetail_core::model::label(&node.labels, k) != Some(v))
            {
                return Err(invalid(
                    format!("{at}.workload"),
                    format!(
                        "`{}` selects nodes with {k}={v}, which node `{name}` does not have",
                        b.workload
                    ),
                ));
            }
            if let Some(t) = untolerated(&node.taints, &template.tolerations) {
                return Err(invalid(
                    format!("{at}.workload"),
                    format!(
                        "`{}` does not tolerate node `{name}`'s taint {t} (from NodePool `{}`)",
                        b.workload, pool.name
                    ),
                ));
            }
            placed[d] += b.count;
            if placed[d] > deployments[d].replicas {
                return Err(invalid(
                    format!("{at}.count"),
                    format!(
                        "{} pods of `{}` are bound at the start but it has {} replicas{}",
                        placed[d],
                        b.workload,
                        deployments[d].replicas,
                        if deployments[d].diurnal.is_some() {
                            " (with `diurnal`, `replicas` defaults to the curve at 0)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            for _ in 0..b.count {
                requests.add(&template.requests);
            }
            count += b.count;
            pods.push((d, b.count));
        }
        requests.pods = i64::try_from(count).unwrap_or(i64::MAX);
        if let Some(resource) = requests.first_excess(&node.allocatable) {
            return Err(invalid(
                format!("{at}.pods"),
                format!(
                    "the pods bound here, with the DaemonSets', need {requests} but a {} has {} allocatable; {resource} does not fit",
                    n.instance_type, node.allocatable
                ),
            ));
        }
        nodes.push(InitialNode {
            node,
            capacity_type: n.capacity_type,
            ready: n.initialized,
            pods,
        });
    }
    Ok(nodes)
}

fn pdbs(
    specs: Vec<PdbYaml>,
    deployments: &[Deployment],
    jobs: &[Job],
) -> Result<Vec<PdbSpec>, ScenarioError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for (i, p) in specs.into_iter().enumerate() {
        let at = format!("cluster.podDisruptionBudgets[{i}]");
        let namespace = p.namespace.as_deref().unwrap_or("default");
        if !seen.insert((namespace.to_string(), p.name.clone())) {
            return Err(invalid(
                format!("{at}.name"),
                format!("`{namespace}/{}` is listed twice", p.name),
            ));
        }
        let (min_available, max_unavailable) = match (p.min_available, p.max_unavailable) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at,
                    "give one of `minAvailable` and `maxUnavailable`, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    at,
                    "give `minAvailable` or `maxUnavailable`, a number of pods",
                ));
            }
            (min, max) => (min.map(|m| m.0), max.map(|m| m.0)),
        };
        let mut match_expressions = Vec::with_capacity(p.selector.match_expressions.len());
        for (j, e) in p.selector.match_expressions.iter().enumerate() {
            let (operator, needs_values) = match e.operator {
                SelectorOp::In => (SelectorOperator::In, true),
                SelectorOp::NotIn => (SelectorOperator::NotIn, true),
                SelectorOp::Exists => (SelectorOperator::Exists, false),
                SelectorOp::DoesNotExist => (SelectorOperator::DoesNotExist, false),
            };
            if needs_values == e.values.is_empty() {
                return Err(invalid(
                    format!("{at}.selector.matchExpressions[{j}].values"),
                    format!(
                        "{:?} {}",
                        e.operator,
                        if needs_values {
                            "needs values"
                        } else {
                            "takes no values"
                        }
                    ),
                ));
            }
            match_expressions.push(SelectorRequirement {
                key: Sym::new(&e.key),
                operator,
                values: e.values.iter().map(|v| Sym::new(v)).collect(),
            });
        }
        let selector = LabelSelector {
            match_labels: sorted_labels(
                p.selector
                    .match_labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            match_expressions,
        };
        let namespace = Sym::new(namespace);
        let covers =
            |t: &dovetail_core::model::Pod| t.namespace == namespace && selector.matches(&t.labels);
        if !deployments.iter().any(|d| covers(&d.template))
            && !jobs.iter().any(|j| covers(&j.template))
        {
            return Err(invalid(
                format!("{at}.selector"),
                format!("selects the pods of no workload in namespace `{namespace}`"),
            ));
        }
        out.push(PdbSpec {
            namespace,
            name: Sym::new(&p.name),
            selector,
            min_available,
            max_unavailable,
        });
    }
    Ok(out)
}

fn events(
    catalog: &Catalog,
    deployments: &[Deployment],
    specs: Vec<EventSpec>,
) -> Result<Vec<Event>, ScenarioError> {
    let zones = catalog.zones();
    let types = |at: &str, names: &[String]| -> Result<Vec<Sym>, ScenarioError> {
        names
            .iter()
            .enumerate()
            .map(|(j, n)| {
                instance_type(catalog, format!("{at}.instanceTypes[{j}]"), n).map(|it| it.name)
            })
            .collect()
    };
    let in_zones = |at: &str, names: &[String]| -> Result<Vec<Sym>, ScenarioError> {
        names
            .iter()
            .enumerate()
            .map(|(j, n)| zone(&zones, format!("{at}.zones[{j}]"), n))
            .collect()
    };
    let mut out = Vec::with_capacity(specs.len());
    for (i, e) in specs.into_iter().enumerate() {
        let at = format!("events[{i}]");
        let kind = match (e.scale, e.interruption, e.capacity_shortage) {
            (Some(s), None, None) => {
                if !deployments.iter().any(|d| d.name == s.deployment) {
                    return Err(invalid(
                        format!("{at}.scale.deployment"),
                        format!("no deployment named `{}` in workloads", s.deployment),
                    ));
                }
                EventKind::Scale {
                    deployment: s.deployment,
                    replicas: s.replicas,
                }
            }
            (None, Some(s), None) => {
                let at = format!("{at}.interruption");
                let count = s.count.unwrap_or(1);
                if count == 0 {
                    return Err(invalid(format!("{at}.count"), "must be at least 1"));
                }
                let instance_types = types(&at, &s.instance_types)?;
                for (j, t) in instance_types.iter().enumerate() {
                    let spot = catalog.get(t.as_str()).is_some_and(|it| {
                        it.offerings
                            .iter()
                            .any(|o| o.capacity_type == CapacityType::Spot)
                    });
                    if !spot {
                        return Err(invalid(
                            format!("{at}.instanceTypes[{j}]"),
                            format!(
                                "`{t}` has no spot offering, so none of its nodes can be interrupted"
                            ),
                        ));
                    }
                }
                EventKind::Interruption {
                    count,
                    instance_types,
                    zones: in_zones(&at, &s.zones)?,
                }
            }
            (None, None, Some(s)) => {
                let at = format!("{at}.capacityShortage");
                if s.for_.0 == 0 {
                    return Err(invalid(format!("{at}.for"), "must be more than 0s"));
                }
                EventKind::CapacityShortage {
                    for_ms: s.for_.0,
                    instance_types: types(&at, &s.instance_types)?,
                    zones: in_zones(&at, &s.zones)?,
                    capacity_type: s.capacity_type,
                }
            }
            _ => {
                return Err(invalid(
                    at,
                    "give exactly one of `scale`, `interruption` and `capacityShortage`",
                ));
            }
        };
        out.push(Event {
            at_ms: e.at.0,
            kind,
        });
    }
    Ok(out)
}

fn node_groups(
    catalog: &Catalog,
    specs: Vec<NodeGroupSpec>,
) -> Result<Vec<NodeGroup>, ScenarioError> {
    let zones = catalog.zones();
    let mut out = Vec::with_capacity(specs.len());
    for (i, g) in specs.into_iter().enumerate() {
        let at = format!("baseline.nodeGroups[{i}]");
        let it = instance_type(catalog, format!("{at}.instanceType"), &g.instance_type)?;
        let offered = |z: Sym| {
            it.offerings
                .iter()
                .any(|o| o.zone == z && o.capacity_type == g.capacity_type)
        };
        let mut group_zones = Vec::with_capacity(g.zones.len());
        for (j, z) in g.zones.iter().enumerate() {
            let z_at = format!("{at}.zones[{j}]");
            let z = zone(&zones, z_at.clone(), z)?;
            if !offered(z) {
                return Err(invalid(
                    z_at,
                    format!("`{}` has no {} offering in `{z}`", it.name, g.capacity_type),
                ));
            }
            group_zones.push(z);
        }
        if group_zones.is_empty()
            && !it
                .offerings
                .iter()
                .any(|o| o.capacity_type == g.capacity_type)
        {
            return Err(invalid(
                format!("{at}.capacityType"),
                format!("`{}` has no {} offering", it.name, g.capacity_type),
            ));
        }
        if g.max == 0 {
            return Err(invalid(format!("{at}.max"), "must be at least 1"));
        }
        out.push(NodeGroup {
            instance_type: it.name,
            capacity_type: g.capacity_type,
            zones: group_zones,
            max: g.max,
        });
    }
    Ok(out)
}

fn models(m: ModelsSpec, spot_to_spot: bool) -> Result<Models, ScenarioError> {
    let d = Models::default();
    let b = BaselineModel::default();
    let or = |v: Option<GoDuration>, default: u64| v.map_or(default, |v| v.0);
    let models = Models {
        launch_ms: or(m.launch_time, d.launch_ms),
        ready_ms: or(m.ready_time, d.ready_ms),
        batch_idle_ms: or(m.batch_idle, d.batch_idle_ms),
        batch_max_ms: or(m.batch_max, d.batch_max_ms),
        disruption_interval_ms: or(m.disruption_interval, d.disruption_interval_ms),
        validation_delay_ms: or(m.validation_delay, d.validation_delay_ms),
        consolidation_recheck_ms: or(m.consolidation_recheck, d.consolidation_recheck_ms),
        unavailable_offering_ms: or(m.unavailable_offering_ttl, d.unavailable_offering_ms),
        interruption_warning_ms: or(m.interruption_warning, d.interruption_warning_ms),
        sample_every_ms: or(m.sample_every, d.sample_every_ms),
        disruption: Settings {
            spot_to_spot,
            ..Settings::default()
        },
        baseline: BaselineModel {
            utilization_threshold: m
                .baseline
                .utilization_threshold
                .unwrap_or(b.utilization_threshold),
            unneeded_ms: or(m.baseline.unneeded_time, b.unneeded_ms),
            scan_ms: or(m.baseline.scan_interval, b.scan_ms),
        },
    };
    // Periods of zero would never let the clock move.
    for (field, ms) in [
        ("models.disruptionInterval", models.disruption_interval_ms),
        ("models.sampleEvery", models.sample_every_ms),
        ("models.baseline.scanInterval", models.baseline.scan_ms),
    ] {
        if ms == 0 {
            return Err(invalid(field, "must be more than 0s"));
        }
    }
    let t = models.baseline.utilization_threshold;
    if !(0.0..=1.0).contains(&t) {
        return Err(invalid(
            "models.baseline.utilizationThreshold",
            format!("{t} is not a share between 0 and 1"),
        ));
    }
    Ok(models)
}

/// Reads a scenario from YAML text. Fields of its NodePool manifests that
/// Karpenter's v1 schema does not have are ignored, as the API server
/// ignores them, and listed in the scenario's `warnings`.
pub fn parse_scenario(text: &str) -> Result<Scenario, ScenarioError> {
    let mut ignored = Vec::new();
    let file: File = serde_ignored::deserialize(serde_norway::Deserializer::from_str(text), |p| {
        ignored.push(unknown_fields::steps(&p))
    })
    .map_err(|e| ScenarioError::Yaml(e.to_string()))?;
    let warnings = unknown_fields::node_pool_warnings(text, &ignored);
    let mut pools: Vec<(NodePool, bool)> = Vec::with_capacity(file.node_pools.len());
    for (i, m) in file.node_pools.into_iter().enumerate() {
        let left_out = m.spec.template.spec.node_class_ref.is_none();
        let pool = node_pool(i, m)?;
        if pools.iter().any(|(p, _)| p.name == pool.name) {
            return Err(invalid(
                format!("nodePools[{i}].metadata.name"),
                format!("`{}` is listed twice", pool.name),
            ));
        }
        pools.push((pool, left_out));
    }
    let sizing = match file.node_classes {
        Some(manifests) => {
            let classes = node_classes(manifests)?;
            node_sizing(&classes, &pools, file.catalog.is_some())?
        }
        None => None,
    };
    let mut cluster = Snapshot::new(catalog(file.region, file.catalog, sizing.as_ref())?);
    let (scheduler_settings, spot_to_spot) = settings(file.settings)?;
    cluster.settings = scheduler_settings;
    cluster.node_pools = pools.into_iter().map(|(p, _)| p).collect();
    let (deployments, jobs) = workloads(file.workloads)?;
    cluster.daemon_sets = daemon_sets(file.cluster.daemon_sets)?;
    let start_unix_seconds = file
        .start_unix_seconds
        .unwrap_or(DEFAULT_START_UNIX_SECONDS);
    let initial_nodes = initial_nodes(
        &cluster,
        &deployments,
        &jobs,
        file.cluster.nodes,
        start_unix_seconds,
    )?;
    let pdbs = pdbs(file.cluster.pod_disruption_budgets, &deployments, &jobs)?;
    let events = events(&cluster.catalog, &deployments, file.events)?;
    let node_groups = node_groups(&cluster.catalog, file.baseline.node_groups)?;
    let models = models(file.models, spot_to_spot)?;

    let mut scenario = Scenario::new(cluster, file.duration.0, file.seed);
    scenario.initial_nodes = initial_nodes;
    scenario.deployments = deployments;
    scenario.jobs = jobs;
    scenario.pdbs = pdbs;
    scenario.events = events;
    scenario.start_unix_seconds = start_unix_seconds;
    scenario.models = models;
    scenario.node_groups = node_groups;
    scenario.policies = PolicyFiles {
        instance_selection: file.policies.instance_selection,
        consolidation_scoring: file.policies.consolidation_scoring,
    };
    scenario.warnings = warnings;
    Ok(scenario)
}
