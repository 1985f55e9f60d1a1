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
//! The cluster may also be given as Kubernetes manifests, as `kubectl get -o
//! yaml` prints them (`List` kinds too): under `cluster:` as a list of
//! objects or multi-document text, or in `cluster.files` relative to the
//! scenario file ([`parse_scenario_in`]). They may hold the NodePools and
//! EC2NodeClasses too, and events may `apply`, `patch` (a JSON merge patch)
//! or `delete` objects. See `docs/simulator.md`.
//!
//! With `nodeClasses`, every NodePool's `nodeClassRef` must name one of them,
//! and each NodePool's nodes are sized as its class sizes them (kubelet
//! `maxPods`, `podsPerCore`, `kubeReserved`, `systemReserved`,
//! `evictionHard`, the root volume), as Karpenter does. With a custom
//! `catalog`, which states each type's capacity and overhead itself, the
//! classes in use may not change sizing at all. Without `nodeClasses`, nodes
//! are sized with Karpenter's defaults (AL2023, no kubelet overrides, a
//! 20 GiB root volume).
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
use std::path::Path;
use std::sync::Arc;

use dovetail_api::NodePool as NodePoolManifest;
use dovetail_api::k8s::{Objects, PdbAmount, PdbRule};
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

use crate::limits;
use crate::manifests::{self, Doc};
use crate::objects::{self, Key, WorkloadObject};
use crate::types::{
    BaselineModel, Deployment, Diurnal, Event, EventKind, InitialNode, Job, Manifest, Models,
    NodeError, NodeGroup, PdbSpec, PolicyFiles, Scenario, node_for,
};
use crate::unknown_fields::{self, ScenarioWarning, Step};

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Yaml(String),
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

/// Refuses YAML nested past [`dovetail_input::MAX_YAML_DEPTH`] before the
/// parser, whose cost grows with the square of the depth, sees it.
pub(crate) fn too_deep(text: &str) -> Result<(), ScenarioError> {
    dovetail_input::check_yaml_depth(text, dovetail_input::MAX_YAML_DEPTH)
        .map_err(|e| ScenarioError::Yaml(e.to_string()))
}

pub(crate) fn invalid(at: impl Into<String>, message: impl Into<String>) -> ScenarioError {
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
    /// May be left out when the cluster's manifests hold the NodePools.
    #[serde(default)]
    node_pools: Option<Vec<NodePoolManifest>>,
    #[serde(default)]
    cluster: ClusterSection,
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

/// `cluster:`: the shorthand (`nodes`, `daemonSets`,
/// `podDisruptionBudgets`) and Kubernetes manifests (`manifests`, `files`);
/// or manifests alone, as a list of objects or as multi-document YAML text.
#[derive(Debug, Default)]
struct ClusterSection {
    spec: ClusterSpec,
    /// Written as a list or a text right under `cluster:`.
    bare: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterSpec {
    #[serde(default)]
    nodes: Vec<NodeSpec>,
    #[serde(default)]
    daemon_sets: Vec<DaemonSetSpec>,
    #[serde(default)]
    pod_disruption_budgets: Vec<PdbYaml>,
    #[serde(default)]
    manifests: Option<ManifestsSpec>,
    /// Files of multi-document YAML, relative to the scenario file.
    #[serde(default)]
    files: Vec<String>,
}

/// Kubernetes objects: a list of them, or multi-document YAML text.
#[derive(Debug)]
enum ManifestsSpec {
    List(Vec<serde_norway::Value>),
    Text(String),
}

impl<'de> Deserialize<'de> for ManifestsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ManifestsSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of Kubernetes objects, or multi-document YAML text")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<ManifestsSpec, A::Error> {
                Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(ManifestsSpec::List)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ManifestsSpec, E> {
                Ok(ManifestsSpec::Text(text.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ClusterSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClusterSection;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a map (`nodes`, `daemonSets`, `podDisruptionBudgets`, `manifests`, `files`), a list of Kubernetes objects, or multi-document YAML text",
                )
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ClusterSection, A::Error> {
                Ok(ClusterSection {
                    spec: ClusterSpec::deserialize(de::value::MapAccessDeserializer::new(map))?,
                    bare: false,
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<ClusterSection, A::Error> {
                Ok(ClusterSection {
                    spec: ClusterSpec {
                        manifests: Some(ManifestsSpec::List(Deserialize::deserialize(
                            de::value::SeqAccessDeserializer::new(seq),
                        )?)),
                        ..ClusterSpec::default()
                    },
                    bare: true,
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ClusterSection, E> {
                Ok(ClusterSection {
                    spec: ClusterSpec {
                        manifests: Some(ManifestsSpec::Text(text.to_owned())),
                        ..ClusterSpec::default()
                    },
                    bare: true,
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<ClusterSection, E> {
                Ok(ClusterSection::default())
            }
        }
        d.deserialize_any(V)
    }
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
    /// A Kubernetes object (or a `List` of them) to create or change.
    #[serde(default)]
    apply: Option<serde_norway::Value>,
    #[serde(default)]
    patch: Option<PatchSpec>,
    #[serde(default)]
    delete: Option<ObjectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    deployment: String,
    replicas: usize,
}

/// An object by kind, name and namespace (namespaced kinds; default
/// `default`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectSpec {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// A JSON merge patch (`kubectl patch --type merge`) of an object from a
/// manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchSpec {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    patch: serde_norway::Value,
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

/// Where a Karpenter object is written, to name its fields: an entry of a
/// section (`nodePools[0]`) or a Kubernetes manifest.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Section(String),
    Manifest(Doc),
}

impl Origin {
    pub(crate) fn field(&self, path: &str) -> String {
        match self {
            Self::Section(at) if path.is_empty() => at.clone(),
            Self::Section(at) => format!("{at}.{path}"),
            Self::Manifest(doc) => doc.field(path),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Section(at) => at.clone(),
            Self::Manifest(doc) => doc.field(""),
        }
    }
}

/// A NodePool manifest: Karpenter's `karpenter.sh/v1` NodePool, read,
/// validated and converted by `dovetail-api`. For brevity a scenario may
/// leave out `spec.template.spec.nodeClassRef` (the EC2NodeClass `default`).
pub(crate) fn node_pool(
    origin: &Origin,
    mut m: NodePoolManifest,
) -> Result<NodePool, ScenarioError> {
    let template = &mut m.spec.template.spec;
    if template.node_class_ref.is_none() {
        template.node_class_ref = Some(NodeClassReference::ec2(DEFAULT_NODE_CLASS));
    }
    m.to_core().map_err(|e| api_error(origin, e))
}

/// `dovetail-api`'s errors for the object at `origin`: every problem, each
/// with its path and its fix.
fn api_error(origin: &Origin, e: dovetail_api::ConversionError) -> ScenarioError {
    let dovetail_api::ConversionError::Invalid(e) = e;
    let mut errors = e
        .errors
        .iter()
        .map(|f| (origin.field(&f.path), format!("{}; {}", f.message, f.fix)));
    let (path, mut message) = errors
        .next()
        .unwrap_or_else(|| (origin.field(""), e.to_string()));
    for (path, more) in errors {
        message.push_str(&format!("\n  {path}: {more}"));
    }
    invalid(path, message)
}

/// EC2NodeClass manifests, each validated as Karpenter validates it, with
/// unique names.
fn node_classes(
    classes: Vec<(Origin, EC2NodeClass)>,
) -> Result<Vec<(Origin, EC2NodeClass)>, ScenarioError> {
    let mut names: BTreeMap<&str, &Origin> = BTreeMap::new();
    for (origin, class) in &classes {
        class.validate().map_err(|e| api_error(origin, e.into()))?;
        if let Some(first) = names.insert(class.name(), origin) {
            return Err(invalid(
                origin.field("metadata.name"),
                format!("`{}` is listed twice (also {})", class.name(), first.name()),
            ));
        }
    }
    Ok(classes)
}

/// How the embedded AWS catalog sizes nodes: its own sizing, and that of
/// each EC2NodeClass that sizes nodes otherwise.
#[derive(Debug, Default)]
struct NodeSizing {
    /// The catalog's own: the settings of the first NodePool's class, or
    /// None for Karpenter's defaults.
    base: Option<CatalogSettings>,
    /// The declared classes whose settings differ from the base, by name.
    classes: Vec<(String, CatalogSettings)>,
}

/// How the nodes of each EC2NodeClass are sized, as Karpenter resolves a
/// NodePool's instance types with its EC2NodeClass. The first NodePool's
/// class sizes the catalog itself, so classes that agree give the one
/// catalog they always gave. Every declared class is sized, not only those
/// in use at the start, so that a NodePool an event applies finds its class
/// sized; a class whose settings cannot be taken is left out here and
/// refused when a NodePool uses it.
///
/// A custom `catalog` states every type's capacity and overhead itself, so
/// there a class in use may not change them and no class is sized.
fn node_sizing(
    classes: &[(Origin, EC2NodeClass)],
    pools: &[(NodePool, bool, Origin)],
    custom_catalog: bool,
) -> Result<NodeSizing, ScenarioError> {
    let first = check_node_classes(classes, pools, custom_catalog)?;
    if custom_catalog {
        return Ok(NodeSizing::default());
    }
    let defaults = CatalogSettings::default();
    let base = first.unwrap_or_else(|| defaults.clone());
    let sized = classes
        .iter()
        .filter_map(|(_, class)| {
            let settings = class.catalog_settings(&defaults).ok()?;
            (settings != base).then(|| (class.name().to_string(), settings))
        })
        .collect();
    Ok(NodeSizing {
        base: Some(base).filter(|s| *s != defaults),
        classes: sized,
    })
}

/// Checks that each NodePool's `nodeClassRef` names one of `classes` and
/// that its class's settings can be taken, and returns the settings of the
/// first NodePool's class. With a custom `catalog`, a class in use may not
/// change sizing.
fn check_node_classes(
    classes: &[(Origin, EC2NodeClass)],
    pools: &[(NodePool, bool, Origin)],
    custom_catalog: bool,
) -> Result<Option<CatalogSettings>, ScenarioError> {
    let base = CatalogSettings::default();
    let mut first = None;
    for (pool, left_out, origin) in pools {
        let at = origin.field("spec.template.spec.nodeClassRef");
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
        let Some((class_origin, class)) = classes.iter().find(|(_, c)| c.name() == r.name) else {
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
                    list(classes.iter().map(|(_, c)| format!("`{}`", c.name()))),
                    r.name
                ),
            ));
        };
        let own = class
            .catalog_settings(&base)
            .map_err(|e| api_error(class_origin, e))?;
        if custom_catalog {
            // What the class's kubelet and block devices change, against
            // its AMI family alone.
            let mut plain = class.clone();
            plain.spec.kubelet = None;
            plain.spec.block_device_mappings.clear();
            let family = plain
                .catalog_settings(&base)
                .map_err(|e| api_error(class_origin, e))?;
            let changed = sizing_differences(&family, &own);
            if !changed.is_empty() {
                return Err(invalid(
                    class_origin.field("spec"),
                    format!(
                        "EC2NodeClass `{}` (used by NodePool `{}`) changes how nodes are sized ({}), but `catalog` states each instance type's capacity and overhead itself. Put them in `catalog` (`capacity.pods`, `capacity.ephemeral-storage`, `overhead.kubeReserved`, `overhead.systemReserved`, `overhead.evictionThreshold`) and take them out of the class",
                        class.name(),
                        pool.name,
                        list(changed)
                    ),
                ));
            }
        }
        first.get_or_insert(own);
    }
    Ok(first)
}

/// The EC2NodeClass fields behind the ways two catalog settings size nodes
/// differently.
fn sizing_differences(a: &CatalogSettings, b: &CatalogSettings) -> Vec<&'static str> {
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
    [
        (*max_pods == b.max_pods, "kubelet.maxPods"),
        (*pods_per_core == b.pods_per_core, "kubelet.podsPerCore"),
        (*kube_reserved == b.kube_reserved, "kubelet.kubeReserved"),
        (
            *system_reserved == b.system_reserved,
            "kubelet.systemReserved",
        ),
        (
            *eviction_memory == b.eviction_memory && *eviction_nodefs == b.eviction_nodefs,
            "kubelet.evictionHard",
        ),
        (
            *ephemeral_storage == b.ephemeral_storage,
            "root volume (blockDeviceMappings)",
        ),
        (
            *eni_limited_memory_overhead == b.eni_limited_memory_overhead,
            "amiFamily (which sizes kube-reserved memory)",
        ),
    ]
    .into_iter()
    .filter(|(same, _)| !same)
    .map(|(_, field)| field)
    .collect()
}

/// An instance-type catalog file, written as a scenario's `catalog`
/// section is: a list of instance types, or a map with `instanceTypes` and
/// `wellKnownLabels` (region us-east-1).
pub fn parse_catalog(text: &str) -> Result<Arc<Catalog>, ScenarioError> {
    too_deep(text)?;
    let file: CatalogFile =
        serde_norway::from_str(text).map_err(|e| ScenarioError::Yaml(e.to_string()))?;
    catalog(None, Some(file), &NodeSizing::default())
}

/// The scenario's catalog, or the AWS one sized as `sizing` says.
fn catalog(
    region: Option<String>,
    file: Option<CatalogFile>,
    sizing: &NodeSizing,
) -> Result<Arc<Catalog>, ScenarioError> {
    let Some(file) = file else {
        if let Some(r) = region.filter(|r| r != DEFAULT_REGION) {
            return Err(invalid(
                "region",
                format!(
                    "the built-in AWS catalog is {DEFAULT_REGION}; list the instance types of `{r}` under `catalog`"
                ),
            ));
        }
        return Ok(aws_sized(sizing));
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

/// The embedded AWS catalog sized by `sizing`: its own sizing, and each
/// class's beside it, resolved once per distinct settings.
fn aws_sized(sizing: &NodeSizing) -> Arc<Catalog> {
    let base = match &sizing.base {
        Some(settings) => Arc::new(Catalog::aws_us_east_1_with(settings)),
        None => aws_catalog(),
    };
    if sizing.classes.is_empty() {
        return base;
    }
    let mut resolved: Vec<(&CatalogSettings, Catalog)> = Vec::new();
    let mut out = Catalog::clone(&base);
    for (class, settings) in &sizing.classes {
        let i = match resolved.iter().position(|(s, _)| *s == settings) {
            Some(i) => i,
            None => {
                resolved.push((settings, Catalog::aws_us_east_1_with(settings)));
                resolved.len() - 1
            }
        };
        out = out.with_class_sized_as(class, &resolved[i].1);
    }
    Arc::new(out)
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

pub(crate) fn list(names: impl IntoIterator<Item = impl fmt::Display>) -> String {
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
            limits::replicas(format!("{at}.min"), d.min)?;
            limits::replicas(format!("{at}.max"), d.max)?;
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
        (Some(r), _) => {
            limits::replicas(format!("{at}.replicas"), r)?;
            r
        }
        (None, Some(d)) => d.replicas_at(0),
        (None, None) => {
            return Err(invalid(
                format!("{at}.replicas"),
                "is required, unless `diurnal` gives the curve",
            ));
        }
    };
    Ok(Deployment {
        diurnal,
        ..Deployment::new(name.clone(), replicas, pod_template(at, &name, w, &[])?)
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
        limits::replicas(format!("{at}.{field}"), n)?;
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
        succeeded: 0,
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
            claim: None,
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
        let rule = match (min_available, max_unavailable) {
            (Some(n), _) => PdbRule::MinAvailable(PdbAmount::Count(n)),
            (None, Some(n)) => PdbRule::MaxUnavailable(PdbAmount::Count(n)),
            (None, None) => unreachable!("refused above"),
        };
        out.push(PdbSpec {
            namespace,
            name: Sym::new(&p.name),
            selector,
            rule: Some(rule),
        });
    }
    Ok(out)
}

/// What events that apply, patch or delete objects are checked against: the
/// cluster as the events before them leave it.
struct Later<'a> {
    text: &'a str,
    cluster: Snapshot,
    pools: Vec<(NodePool, bool, Origin)>,
    classes: &'a [(Origin, EC2NodeClass)],
    custom_catalog: bool,
    lookup: &'a Objects,
    replica_set_owners: &'a BTreeMap<(String, String), String>,
    start_unix_seconds: u64,
    /// Every object there is, with its manifest when it has one (objects
    /// written in the shorthand have none).
    registry: BTreeMap<Key, Option<serde_json::Value>>,
}

/// The kinds an event may delete.
const DELETABLE: &[&str] = &[
    "Pod",
    "Node",
    "NodeClaim",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "Job",
    "DaemonSet",
    "PodDisruptionBudget",
    "NodePool",
];

impl Later<'_> {
    /// The objects of an `apply` (or a patched object) as the events that
    /// create or change them.
    fn apply(
        &mut self,
        docs: Vec<Doc>,
        warnings: &mut Vec<ScenarioWarning>,
    ) -> Result<Vec<EventKind>, ScenarioError> {
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let Some(kind) = objects::known_kind(&doc)? else {
                return Err(invalid(
                    doc.field("kind"),
                    format!(
                        "{} ({}) is not a kind the simulator models; events apply {}",
                        doc.kind(),
                        doc.api_version(),
                        APPLICABLE
                    ),
                ));
            };
            if doc.name().is_empty() {
                return Err(invalid(
                    doc.field("metadata.name"),
                    "is required: give the object a name",
                ));
            }
            let key = objects::key(kind, doc.namespace(), doc.name());
            let known = self.registry.get(&key);
            if matches!(known, Some(None)) {
                return Err(invalid(
                    doc.field(""),
                    format!(
                        "{} is written in the scenario's shorthand; change it there (or with `scale`), or write it as a manifest",
                        doc.object()
                    ),
                ));
            }
            let manifest = match kind {
                "Deployment" | "StatefulSet" | "ReplicaSet" => {
                    let w = match kind {
                        "Deployment" => WorkloadObject::Deployment(objects::read_warning(
                            &doc, self.text, warnings,
                        )?),
                        "StatefulSet" => WorkloadObject::StatefulSet(objects::read_warning(
                            &doc, self.text, warnings,
                        )?),
                        _ => {
                            let rs: k8s_openapi::api::apps::v1::ReplicaSet =
                                objects::read_warning(&doc, self.text, warnings)?;
                            if rs
                                .metadata
                                .owner_references
                                .iter()
                                .flatten()
                                .any(|o| o.controller == Some(true) && o.kind == "Deployment")
                            {
                                return Err(invalid(
                                    doc.field("metadata.ownerReferences"),
                                    "the ReplicaSet is a Deployment's; apply or patch the Deployment",
                                ));
                            }
                            WorkloadObject::ReplicaSet(rs)
                        }
                    };
                    Some(Manifest::Workload(objects::workload(
                        &doc,
                        &w,
                        self.lookup,
                        warnings,
                    )?))
                }
                "Job" => objects::job(
                    &doc,
                    &objects::read_warning(&doc, self.text, warnings)?,
                    self.lookup,
                    warnings,
                )?
                .map(Manifest::Job),
                "Pod" => {
                    if let Some(Some(old)) = known
                        && old.get("spec") != doc.value.get("spec")
                    {
                        return Err(invalid(
                            doc.field("spec"),
                            "a Pod's spec cannot change once it is created (Kubernetes refuses it); change its workload's template, or delete the pod and apply a new one",
                        ));
                    }
                    objects::pod(
                        &doc,
                        &objects::read_warning(&doc, self.text, warnings)?,
                        self.lookup,
                        self.replica_set_owners,
                        warnings,
                    )?
                    .map(Manifest::Pod)
                }
                "Node" => Some(Manifest::Node(objects::node(
                    &doc,
                    &objects::read_warning(&doc, self.text, warnings)?,
                    None,
                    &self.cluster,
                    self.start_unix_seconds,
                    warnings,
                )?)),
                "DaemonSet" => Some(Manifest::DaemonSet(objects::daemon_set(
                    &doc,
                    &objects::read_warning(&doc, self.text, warnings)?,
                    self.lookup,
                    warnings,
                )?)),
                "PodDisruptionBudget" => Some(Manifest::PodDisruptionBudget(objects::pdb(
                    &doc,
                    &objects::read_warning(&doc, self.text, warnings)?,
                    warnings,
                )?)),
                "Namespace" => Some(Manifest::Namespace(objects::namespace(
                    &doc,
                    &objects::read_warning(&doc, self.text, warnings)?,
                    warnings,
                )?)),
                "NodePool" => {
                    let m: NodePoolManifest = objects::read_warning(&doc, self.text, warnings)?;
                    let left_out = {
                        let m: &NodePoolManifest = &m;
                        m.spec.template.spec.node_class_ref.is_none()
                    };
                    let origin = Origin::Manifest(doc.clone());
                    let pool = node_pool(&origin, m)?;
                    let mut pools = self.pools.clone();
                    pools.retain(|(p, _, _)| p.name != pool.name);
                    pools.push((pool.clone(), left_out, origin));
                    // Every declared class was sized at the start.
                    if !self.classes.is_empty() {
                        check_node_classes(self.classes, &pools, self.custom_catalog)?;
                    }
                    self.pools = pools;
                    self.cluster.node_pools.retain(|p| p.name != pool.name);
                    self.cluster.node_pools.push(pool.clone());
                    Some(Manifest::NodePool(pool))
                }
                other => {
                    return Err(invalid(
                        doc.field("kind"),
                        format!(
                            "{other} objects are read only in the start state (`cluster`); events apply {APPLICABLE}"
                        ),
                    ));
                }
            };
            self.registry.insert(key, Some(doc.value.clone()));
            if let Some(m) = manifest {
                out.push(EventKind::Apply(Box::new(m)));
            }
        }
        Ok(out)
    }

    fn patch(
        &mut self,
        at: &str,
        p: PatchSpec,
        warnings: &mut Vec<ScenarioWarning>,
    ) -> Result<Vec<EventKind>, ScenarioError> {
        let kind = self.kind_of(&format!("{at}.kind"), &p.kind, APPLICABLE_KINDS)?;
        let key = objects::key(kind, p.namespace.as_deref(), &p.name);
        let object = describe(&key);
        let base = match self.registry.get(&key) {
            Some(Some(v)) => v.clone(),
            Some(None) => {
                return Err(invalid(
                    format!("{at}.name"),
                    format!(
                        "{object} is written in the scenario's shorthand, so there is no manifest to patch; change it there (or with `scale`), or write it as a manifest"
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    format!("{at}.name"),
                    format!(
                        "no {object} in the start state's manifests or an earlier `apply`; a patch changes an object from a manifest"
                    ),
                ));
            }
        };
        let patch = serde_json::to_value(&p.patch)
            .map_err(|e| invalid(format!("{at}.patch"), e.to_string()))?;
        let mut merged = base;
        crate::manifests::merge_patch(&mut merged, &patch);
        let doc = Doc {
            at: at.to_owned(),
            steps: None,
            value: merged,
        };
        if objects::key(doc.kind(), doc.namespace(), doc.name()) != key {
            return Err(invalid(
                format!("{at}.patch"),
                format!(
                    "changes the kind, name or namespace of {object}; patch only its other fields"
                ),
            ));
        }
        self.apply(vec![doc], warnings)
    }

    fn delete(&mut self, at: &str, o: ObjectSpec) -> Result<EventKind, ScenarioError> {
        let kind = self.kind_of(&format!("{at}.kind"), &o.kind, DELETABLE)?;
        let key = objects::key(kind, o.namespace.as_deref(), &o.name);
        // Pods, nodes and NodeClaims the simulation makes are not known yet.
        let made_later = matches!(kind, "Pod" | "Node" | "NodeClaim");
        if self.registry.remove(&key).is_none() && !made_later {
            return Err(invalid(
                format!("{at}.name"),
                format!(
                    "no {} in the start state or an earlier `apply`",
                    describe(&key)
                ),
            ));
        }
        if kind == "NodePool" {
            self.cluster
                .node_pools
                .retain(|p| p.name.as_str() != o.name);
            self.pools.retain(|(p, _, _)| p.name.as_str() != o.name);
        }
        Ok(EventKind::Delete(dovetail_api::k8s::ObjectRef {
            kind,
            namespace: key.1,
            name: key.2,
        }))
    }

    fn kind_of(
        &self,
        at: &str,
        kind: &str,
        allowed: &[&'static str],
    ) -> Result<&'static str, ScenarioError> {
        allowed.iter().copied().find(|k| *k == kind).ok_or_else(|| {
            invalid(
                at,
                format!("`{kind}` is not one of {}", list(allowed.iter())),
            )
        })
    }
}

/// The kinds events apply and patch.
const APPLICABLE_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "Job",
    "Pod",
    "Node",
    "DaemonSet",
    "PodDisruptionBudget",
    "NodePool",
    "Namespace",
];

const APPLICABLE: &str = "Deployments, StatefulSets, ReplicaSets, Jobs, Pods, Nodes, DaemonSets, PodDisruptionBudgets, NodePools and Namespaces";

/// `Deployment shop/web`, `Node ip-10-0-1-7`.
fn describe(key: &Key) -> String {
    match &key.1 {
        Some(ns) => format!("{} {ns}/{}", key.0, key.2),
        None => format!("{} {}", key.0, key.2),
    }
}

fn events(
    later: &mut Later<'_>,
    specs: Vec<EventSpec>,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Vec<Event>, ScenarioError> {
    let catalog = later.cluster.catalog.clone();
    let catalog = &*catalog;
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
    // In the order they happen (as the simulation sorts them), so that each
    // is checked against the cluster the events before it leave.
    let mut specs: Vec<(usize, EventSpec)> = specs.into_iter().enumerate().collect();
    specs.sort_by_key(|(_, e)| e.at.0);
    let mut out = Vec::with_capacity(specs.len());
    for (i, e) in specs {
        let at = format!("events[{i}]");
        let given = [
            e.scale.is_some(),
            e.interruption.is_some(),
            e.capacity_shortage.is_some(),
            e.apply.is_some(),
            e.patch.is_some(),
            e.delete.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(invalid(
                at,
                "give exactly one of `scale`, `interruption`, `capacityShortage`, `apply`, `patch` and `delete`",
            ));
        }
        let kinds = if let Some(s) = e.scale {
            limits::replicas(format!("{at}.scale.replicas"), s.replicas)?;
            let matching: Vec<&Key> = later
                .registry
                .keys()
                .filter(|k| {
                    matches!(k.0.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet")
                        && k.2 == s.deployment
                })
                .collect();
            match matching.as_slice() {
                [_] => {}
                [] => {
                    return Err(invalid(
                        format!("{at}.scale.deployment"),
                        format!(
                            "no deployment named `{}` in workloads or the cluster's manifests",
                            s.deployment
                        ),
                    ));
                }
                several => {
                    return Err(invalid(
                        format!("{at}.scale.deployment"),
                        format!(
                            "`{}` names {}; patch the one meant instead (`patch: {{ kind, name, namespace, patch: {{ spec: {{ replicas: {} }} }} }}`)",
                            s.deployment,
                            list(several.iter().map(|k| describe(k))),
                            s.replicas
                        ),
                    ));
                }
            }
            vec![EventKind::Scale {
                deployment: s.deployment,
                replicas: s.replicas,
            }]
        } else if let Some(s) = e.interruption {
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
            vec![EventKind::Interruption {
                count,
                instance_types,
                zones: in_zones(&at, &s.zones)?,
            }]
        } else if let Some(s) = e.capacity_shortage {
            let at = format!("{at}.capacityShortage");
            if s.for_.0 == 0 {
                return Err(invalid(format!("{at}.for"), "must be more than 0s"));
            }
            vec![EventKind::CapacityShortage {
                for_ms: s.for_.0,
                instance_types: types(&at, &s.instance_types)?,
                zones: in_zones(&at, &s.zones)?,
                capacity_type: s.capacity_type,
            }]
        } else if let Some(v) = e.apply {
            let docs = manifests::inline(
                v,
                format!("{at}.apply"),
                vec![
                    Step::Key("events".into()),
                    Step::Index(i),
                    Step::Key("apply".into()),
                ],
            )?;
            later.apply(docs, warnings)?
        } else if let Some(p) = e.patch {
            later.patch(&format!("{at}.patch"), p, warnings)?
        } else if let Some(d) = e.delete {
            vec![later.delete(&format!("{at}.delete"), d)?]
        } else {
            unreachable!("exactly one is given")
        };
        out.extend(kinds.into_iter().map(|kind| Event {
            at_ms: e.at.0,
            kind,
        }));
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

/// The Kubernetes objects of `cluster:`: written in the scenario, and in the
/// files it names (relative to `dir`).
fn cluster_documents(
    section: &mut ClusterSection,
    dir: Option<&Path>,
) -> Result<Vec<Doc>, ScenarioError> {
    let base = if section.bare {
        "cluster"
    } else {
        "cluster.manifests"
    };
    let mut out = Vec::new();
    match section.spec.manifests.take() {
        Some(ManifestsSpec::List(values)) => {
            for (i, v) in values.into_iter().enumerate() {
                let mut steps = vec![Step::Key("cluster".into())];
                if !section.bare {
                    steps.push(Step::Key("manifests".into()));
                }
                steps.push(Step::Index(i));
                out.extend(manifests::inline(v, format!("{base}[{i}]"), steps)?);
            }
        }
        Some(ManifestsSpec::Text(text)) => out.extend(manifests::documents(&text, base)?),
        None => {}
    }
    for (j, file) in section.spec.files.iter().enumerate() {
        let at = format!("cluster.files[{j}]");
        let Some(dir) = dir else {
            return Err(invalid(
                at,
                "files are read relative to the scenario file, whose folder is not known here; read the scenario with `parse_scenario_in`",
            ));
        };
        let path = dir.join(file);
        let text = dovetail_input::read_text(&path, "manifest", dovetail_input::caps::MANIFEST)
            .map_err(|e| {
                invalid(
                    &at,
                    format!("{e} (the path is relative to the scenario file)"),
                )
            })?;
        out.extend(manifests::documents(&text, file)?);
    }
    Ok(out)
}

/// Reads a scenario from YAML text. Fields of its NodePool manifests that
/// Karpenter's v1 schema does not have are ignored, as the API server
/// ignores them, and listed in the scenario's `warnings`, as are kinds the
/// simulator does not model and fields of Kubernetes objects not carried
/// over exactly. A scenario naming manifest files (`cluster.files`) needs
/// [`parse_scenario_in`].
pub fn parse_scenario(text: &str) -> Result<Scenario, ScenarioError> {
    parse(text, None)
}

/// As [`parse_scenario`], with the files the scenario names read relative
/// to `dir` (the scenario file's folder).
pub fn parse_scenario_in(text: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
    parse(text, Some(dir))
}

fn parse(text: &str, dir: Option<&Path>) -> Result<Scenario, ScenarioError> {
    too_deep(text)?;
    let mut ignored = Vec::new();
    let mut file: File =
        serde_ignored::deserialize(serde_norway::Deserializer::from_str(text), |p| {
            ignored.push(unknown_fields::steps(&p))
        })
        .map_err(|e| ScenarioError::Yaml(e.to_string()))?;
    limits::duration(file.duration.0)?;
    let mut warnings = unknown_fields::node_pool_warnings(text, &ignored);
    let docs = cluster_documents(&mut file.cluster, dir)?;
    let from_manifests = !docs.is_empty();
    let read = objects::read(docs, text, &mut warnings)?;

    // NodePools and EC2NodeClasses, from their sections and the manifests.
    let mut registry: BTreeMap<Key, Option<serde_json::Value>> = read
        .registry
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut pools: Vec<(NodePool, bool, Origin)> = Vec::new();
    let pools_section = file.node_pools.is_some();
    let pool_manifests = file
        .node_pools
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| (Origin::Section(format!("nodePools[{i}]")), m))
        .chain(
            read.node_pools
                .iter()
                .map(|(doc, m)| (Origin::Manifest(doc.clone()), m.clone())),
        );
    for (origin, m) in pool_manifests {
        let left_out = m.spec.template.spec.node_class_ref.is_none();
        if let Origin::Section(_) = origin
            && let Ok(v) = serde_json::to_value(&m)
        {
            registry.insert(objects::key("NodePool", None, m.name()), Some(v));
        }
        let pool = node_pool(&origin, m)?;
        if let Some((_, _, first)) = pools.iter().find(|(p, _, _)| p.name == pool.name) {
            return Err(invalid(
                origin.field("metadata.name"),
                format!("`{}` is listed twice (also {})", pool.name, first.name()),
            ));
        }
        pools.push((pool, left_out, origin));
    }
    if !pools_section && read.node_pools.is_empty() {
        return Err(invalid(
            "nodePools",
            "list at least one karpenter.sh/v1 NodePool, under `nodePools` or as a manifest in `cluster`",
        ));
    }
    if matches!(&file.node_classes, Some(c) if c.is_empty()) {
        return Err(invalid(
            "nodeClasses",
            "list at least one EC2NodeClass, or leave `nodeClasses` out to size nodes with Karpenter's defaults",
        ));
    }
    let class_manifests: Vec<(Origin, EC2NodeClass)> = file
        .node_classes
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (Origin::Section(format!("nodeClasses[{i}]")), c))
        .chain(
            read.node_classes
                .iter()
                .map(|(doc, c)| (Origin::Manifest(doc.clone()), c.clone())),
        )
        .collect();
    let custom_catalog = file.catalog.is_some();
    let classes = node_classes(class_manifests)?;
    let sizing = if classes.is_empty() {
        NodeSizing::default()
    } else {
        node_sizing(&classes, &pools, custom_catalog)?
    };
    let mut cluster = Snapshot::new(catalog(file.region, file.catalog, &sizing)?);
    let (scheduler_settings, spot_to_spot) = settings(file.settings)?;
    cluster.settings = scheduler_settings;
    cluster.node_pools = pools.iter().map(|(p, _, _)| p.clone()).collect();

    // Workloads and DaemonSets.
    let (mut deployments, mut jobs) = workloads(file.workloads)?;
    for d in &deployments {
        registry.insert(
            objects::key("Deployment", Some(d.template.namespace.as_str()), &d.name),
            None,
        );
    }
    for j in &jobs {
        registry.insert(
            objects::key("Job", Some(j.template.namespace.as_str()), &j.name),
            None,
        );
    }
    for (doc, w) in &read.workloads {
        let d = objects::workload(doc, w, &read.lookup, &mut warnings)?;
        if let Some(first) = deployments.iter().find(|o| {
            o.kind == d.kind && o.name == d.name && o.template.namespace == d.template.namespace
        }) {
            return Err(invalid(
                doc.field("metadata.name"),
                format!(
                    "{} `{}` is also a `workloads` entry; keep one",
                    first.kind.name(),
                    d.name
                ),
            ));
        }
        deployments.push(d);
    }
    for (doc, j) in &read.jobs {
        if let Some(j) = objects::job(doc, j, &read.lookup, &mut warnings)? {
            if jobs
                .iter()
                .any(|o| o.name == j.name && o.template.namespace == j.template.namespace)
            {
                return Err(invalid(
                    doc.field("metadata.name"),
                    format!("Job `{}` is also a `workloads` entry; keep one", j.name),
                ));
            }
            jobs.push(j);
        }
    }
    cluster.daemon_sets = daemon_sets(file.cluster.spec.daemon_sets)?;
    for ds in &cluster.daemon_sets {
        registry.insert(
            objects::key(
                "DaemonSet",
                Some(ds.pod.namespace.as_str()),
                ds.name.as_str(),
            ),
            None,
        );
    }
    for (doc, ds) in &read.daemon_sets {
        let ds = objects::daemon_set(doc, ds, &read.lookup, &mut warnings)?;
        if cluster
            .daemon_sets
            .iter()
            .any(|o| o.name == ds.name && o.pod.namespace == ds.pod.namespace)
        {
            return Err(invalid(
                doc.field("metadata.name"),
                format!(
                    "DaemonSet `{}` is also in `cluster.daemonSets`; keep one",
                    ds.name
                ),
            ));
        }
        cluster.daemon_sets.push(ds);
    }

    // The start state: nodes, NodeClaims, pods.
    let start_unix_seconds = file
        .start_unix_seconds
        .or(if from_manifests { read.latest } else { None })
        .unwrap_or(DEFAULT_START_UNIX_SECONDS);
    let mut initial = initial_nodes(
        &cluster,
        &deployments,
        &jobs,
        file.cluster.spec.nodes,
        start_unix_seconds,
    )?;
    for n in &initial {
        registry.insert(objects::key("Node", None, n.node.name.as_str()), None);
    }
    let mut claims = Vec::with_capacity(read.claims.len());
    for (doc, c) in &read.claims {
        let claim = objects::node_claim(doc, c)?;
        match claim.node_pool {
            Some(p) if cluster.node_pools.iter().any(|t| t.name == p) => {}
            Some(p) => {
                return Err(invalid(
                    doc.field(&format!(
                        "metadata.labels[{}]",
                        dovetail_core::labels::NODE_POOL
                    )),
                    format!(
                        "the NodeClaim belongs to NodePool `{p}`, which is not among the NodePools; they are {}",
                        list(cluster.node_pools.iter().map(|p| p.name))
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    doc.field("metadata.labels"),
                    format!(
                        "a NodeClaim names its NodePool by the label {}; add it",
                        dovetail_core::labels::NODE_POOL
                    ),
                ));
            }
        }
        claims.push((doc.clone(), claim));
    }
    let (paired, alone) = objects::pair_claims(&read.nodes, claims);
    for ((doc, n), claim) in read.nodes.iter().zip(paired) {
        let node = objects::node(doc, n, claim, &cluster, start_unix_seconds, &mut warnings)?;
        if initial.iter().any(|o| o.node.name == node.node.name) {
            return Err(invalid(
                doc.field("metadata.name"),
                format!(
                    "node `{}` is also in `cluster.nodes`; keep one",
                    node.node.name
                ),
            ));
        }
        initial.push(node);
    }
    let mut initial_claims = Vec::new();
    for (doc, c) in alone {
        let launched = objects::claim_offering(&c).is_some_and(|(it, zone, ct)| {
            cluster
                .catalog
                .get(it.as_str())
                .and_then(|t| t.offering(zone.as_str(), ct))
                .is_some()
        });
        if launched {
            initial_claims.push(c);
        } else {
            warnings.push(ScenarioWarning {
                path: doc.field(""),
                line: None,
                reason: unknown_fields::WarningReason::ClaimNotLaunched,
            });
        }
    }
    let mut initial_pods = Vec::with_capacity(read.pods.len());
    let mut used_namespaces: BTreeSet<Sym> = BTreeSet::new();
    for (doc, p) in &read.pods {
        let Some(pod) = objects::pod(
            doc,
            p,
            &read.lookup,
            &read.replica_set_owners,
            &mut warnings,
        )?
        else {
            continue;
        };
        if let Some(n) = pod.node
            && !initial.iter().any(|o| o.node.name == n)
        {
            return Err(invalid(
                doc.field("spec.nodeName"),
                format!(
                    "no Node `{n}` in the cluster; add its Node manifest, or leave out spec.nodeName for a pending pod"
                ),
            ));
        }
        used_namespaces.insert(pod.pod.namespace);
        initial_pods.push(pod);
    }

    // Budgets and namespaces.
    let mut pdbs = pdbs(
        file.cluster.spec.pod_disruption_budgets,
        &deployments,
        &jobs,
    )?;
    for b in &pdbs {
        registry.insert(
            objects::key(
                "PodDisruptionBudget",
                Some(b.namespace.as_str()),
                b.name.as_str(),
            ),
            None,
        );
    }
    for (doc, b) in &read.pdbs {
        let b = objects::pdb(doc, b, &mut warnings)?;
        if pdbs
            .iter()
            .any(|o| o.namespace == b.namespace && o.name == b.name)
        {
            return Err(invalid(
                doc.field("metadata.name"),
                format!(
                    "PodDisruptionBudget `{}/{}` is also in `cluster.podDisruptionBudgets`; keep one",
                    b.namespace, b.name
                ),
            ));
        }
        pdbs.push(b);
    }
    for (doc, ns) in &read.namespaces {
        cluster
            .namespaces
            .push(objects::namespace(doc, ns, &mut warnings)?);
    }
    if from_manifests {
        used_namespaces.extend(deployments.iter().map(|d| d.template.namespace));
        used_namespaces.extend(jobs.iter().map(|j| j.template.namespace));
        used_namespaces.extend(pdbs.iter().map(|b| b.namespace));
        let implicit = objects::implicit_namespaces(&cluster.namespaces, &used_namespaces);
        cluster.namespaces.extend(implicit);
    }

    let mut later = Later {
        text,
        cluster: cluster.clone(),
        pools,
        classes: &classes,
        custom_catalog,
        lookup: &read.lookup,
        replica_set_owners: &read.replica_set_owners,
        start_unix_seconds,
        registry,
    };
    let events = events(&mut later, file.events, &mut warnings)?;
    let node_groups = node_groups(&cluster.catalog, file.baseline.node_groups)?;
    let models = models(file.models, spot_to_spot)?;

    let mut scenario = Scenario::new(cluster, file.duration.0, file.seed);
    scenario.initial_nodes = initial;
    scenario.initial_pods = initial_pods;
    scenario.initial_claims = initial_claims;
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
    limits::check(&scenario)?;
    Ok(scenario)
}
