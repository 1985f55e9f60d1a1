//! Kubernetes objects from manifests as the simulation's start state and
//! events: each read by its kind and converted by `dovetail-api`'s one
//! conversion (pods, workload templates, DaemonSets, nodes, budgets,
//! namespaces, NodePools, NodeClaims); what the conversion does not carry
//! over exactly becomes a warning. What is the simulator's own is only what
//! the cluster's controllers would do with them: which workload a pod
//! belongs to, how a workload rolls out, what a node costs.

use std::collections::{BTreeMap, BTreeSet};

use dovetail_api::k8s::{self, ConvertError, Converted, Objects};
use dovetail_api::{EC2NodeClass, NodeClaim as NodeClaimManifest, NodePool as NodePoolManifest};
use dovetail_core::catalog::CapacityType;
use dovetail_core::labels;
use dovetail_core::model::{self, DaemonSet, Namespace, Node, OwnerKind, label};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::scheduler::Snapshot;
use dovetail_core::sym::Sym;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::manifests::Doc;
use crate::scenario::{ScenarioError, invalid};
use crate::types::{
    Amount, Deployment, InitialNode, InitialPod, Job, PdbSpec, Rollout, WorkloadKind,
};
use crate::unknown_fields::{ScenarioWarning, WarningReason};

/// How long each pod of a Job runs in the simulation (a Go duration), on the
/// Job or its pod template: Kubernetes has no such field.
pub const JOB_RUN_TIME_ANNOTATION: &str = "sim.dovetail.dev/run-time";

/// The label a ReplicaSet's pods carry, whose value ends its name.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The kinds the simulator reads, with their API versions and schema names.
const KINDS: &[(&str, &str, &str)] = &[
    ("Pod", "v1", "v1 Pod"),
    ("Node", "v1", "v1 Node"),
    ("Namespace", "v1", "v1 Namespace"),
    ("PersistentVolumeClaim", "v1", "v1 PersistentVolumeClaim"),
    ("PersistentVolume", "v1", "v1 PersistentVolume"),
    ("Deployment", "apps/v1", "apps/v1 Deployment"),
    ("StatefulSet", "apps/v1", "apps/v1 StatefulSet"),
    ("ReplicaSet", "apps/v1", "apps/v1 ReplicaSet"),
    ("DaemonSet", "apps/v1", "apps/v1 DaemonSet"),
    ("Job", "batch/v1", "batch/v1 Job"),
    (
        "PodDisruptionBudget",
        "policy/v1",
        "policy/v1 PodDisruptionBudget",
    ),
    (
        "StorageClass",
        "storage.k8s.io/v1",
        "storage.k8s.io/v1 StorageClass",
    ),
    (
        "PriorityClass",
        "scheduling.k8s.io/v1",
        "scheduling.k8s.io/v1 PriorityClass",
    ),
    (
        "RuntimeClass",
        "node.k8s.io/v1",
        "node.k8s.io/v1 RuntimeClass",
    ),
    ("NodePool", "karpenter.sh/v1", "karpenter.sh/v1 NodePool"),
    ("NodeClaim", "karpenter.sh/v1", "karpenter.sh/v1 NodeClaim"),
    (
        "EC2NodeClass",
        "karpenter.k8s.aws/v1",
        "karpenter.k8s.aws/v1 EC2NodeClass",
    ),
];

/// Reads a document as `T`, warning of the fields `T` does not have (the
/// API server drops them: a misspelt field would vanish without a word).
pub(crate) fn read_warning<T: serde::de::DeserializeOwned>(
    doc: &Doc,
    text: &str,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<T, ScenarioError> {
    let mut ignored = Vec::new();
    let value = doc.read_lenient(&mut ignored)?;
    if let Some(&(_, _, schema)) = KINDS.iter().find(|(k, _, _)| *k == doc.kind()) {
        warnings.extend(crate::unknown_fields::manifest_warnings(
            text, doc, schema, &ignored,
        ));
    }
    Ok(value)
}

fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The kind as the simulator knows it (`Some` with its static name), or
/// `None` for a kind it does not model. A known kind in another version of
/// its group is refused.
pub(crate) fn known_kind(doc: &Doc) -> Result<Option<&'static str>, ScenarioError> {
    let Some(&(kind, version, _)) = KINDS.iter().find(|(k, _, _)| *k == doc.kind()) else {
        return Ok(None);
    };
    let written = doc.api_version();
    if written == version {
        return Ok(Some(kind));
    }
    if group(written) != group(version) {
        return Ok(None);
    }
    let hint = match kind {
        "NodePool" | "NodeClaim" | "EC2NodeClass" => {
            "; Karpenter's v1 API is the one Dovetail reads: convert it as Karpenter's v1 upgrade guide says"
        }
        _ => "",
    };
    Err(invalid(
        doc.field("apiVersion"),
        format!("`{written}` is not supported for {kind}; use {version}{hint}"),
    ))
}

/// A workload object whose template makes pods.
#[derive(Debug, Clone)]
pub(crate) enum WorkloadObject {
    Deployment(apps::Deployment),
    StatefulSet(apps::StatefulSet),
    ReplicaSet(apps::ReplicaSet),
}

/// The objects of a scenario's manifests, read by kind, not yet converted.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub node_pools: Vec<(Doc, NodePoolManifest)>,
    pub node_classes: Vec<(Doc, EC2NodeClass)>,
    pub nodes: Vec<(Doc, core::Node)>,
    pub claims: Vec<(Doc, NodeClaimManifest)>,
    pub pods: Vec<(Doc, core::Pod)>,
    pub workloads: Vec<(Doc, WorkloadObject)>,
    pub jobs: Vec<(Doc, batch::Job)>,
    pub daemon_sets: Vec<(Doc, apps::DaemonSet)>,
    pub pdbs: Vec<(Doc, PodDisruptionBudget)>,
    pub namespaces: Vec<(Doc, core::Namespace)>,
    /// Claims, volumes and classes the pods refer to.
    pub lookup: Objects,
    /// Deployments by their ReplicaSets' `(namespace, name)`.
    pub replica_set_owners: BTreeMap<(String, String), String>,
    /// The latest time the manifests record (Unix seconds).
    pub latest: Option<u64>,
    /// Every object read, by kind, namespace and name, as written: what a
    /// patch starts from.
    pub registry: BTreeMap<Key, serde_json::Value>,
}

/// An object's identity: kind, namespace (namespaced kinds) and name.
pub(crate) type Key = (String, Option<String>, String);

pub(crate) fn key(kind: &str, namespace: Option<&str>, name: &str) -> Key {
    let namespace = crate::manifests::namespaced(kind).then(|| {
        namespace
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_owned()
    });
    (kind.to_owned(), namespace, name.to_owned())
}

fn doc_key(doc: &Doc) -> Key {
    key(doc.kind(), doc.namespace(), doc.name())
}

fn controller(
    meta: &ObjectMeta,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Reads every document by its kind. Kinds the simulator does not model are
/// warned about, one warning per kind.
pub(crate) fn read(
    docs: Vec<Doc>,
    text: &str,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Read, ScenarioError> {
    let mut r = Read::default();
    let mut unknown: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for doc in docs {
        let Some(kind) = known_kind(&doc)? else {
            let e = unknown
                .entry((doc.kind().to_owned(), doc.api_version().to_owned()))
                .or_insert_with(|| (doc.field(""), 0));
            e.1 += 1;
            continue;
        };
        if doc.name().is_empty() {
            return Err(invalid(
                doc.field("metadata.name"),
                "is required: give the object a name",
            ));
        }
        let key = doc_key(&doc);
        if r.registry.contains_key(&key) {
            return Err(invalid(
                doc.field("metadata.name"),
                format!("{} is given twice", doc.object()),
            ));
        }
        r.latest = r.latest.max(crate::manifests::latest_time(&doc.value));
        r.registry.insert(key, doc.value.clone());
        match kind {
            "NodePool" => r
                .node_pools
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "EC2NodeClass" => r
                .node_classes
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "Node" => r
                .nodes
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "NodeClaim" => r
                .claims
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "Pod" => r
                .pods
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "Deployment" => r.workloads.push((
                doc.clone(),
                WorkloadObject::Deployment(read_warning(&doc, text, warnings)?),
            )),
            "StatefulSet" => r.workloads.push((
                doc.clone(),
                WorkloadObject::StatefulSet(read_warning(&doc, text, warnings)?),
            )),
            "ReplicaSet" => {
                let rs: apps::ReplicaSet = read_warning(&doc, text, warnings)?;
                match controller(&rs.metadata).filter(|o| o.kind == "Deployment") {
                    // A Deployment's: its pods are the Deployment's.
                    Some(d) => {
                        r.replica_set_owners.insert(
                            (
                                doc.namespace().unwrap_or("default").to_owned(),
                                doc.name().to_owned(),
                            ),
                            d.name.clone(),
                        );
                    }
                    None => r.workloads.push((doc, WorkloadObject::ReplicaSet(rs))),
                }
            }
            "Job" => r
                .jobs
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "DaemonSet" => r
                .daemon_sets
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "PodDisruptionBudget" => r
                .pdbs
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "Namespace" => r
                .namespaces
                .push((doc.clone(), read_warning(&doc, text, warnings)?)),
            "PersistentVolumeClaim" => r.lookup.add_claim(read_warning(&doc, text, warnings)?),
            "PersistentVolume" => r.lookup.add_volume(read_warning(&doc, text, warnings)?),
            "StorageClass" => r
                .lookup
                .add_storage_class(read_warning(&doc, text, warnings)?),
            "PriorityClass" => r
                .lookup
                .add_priority_class(read_warning(&doc, text, warnings)?),
            "RuntimeClass" => r
                .lookup
                .add_runtime_class(read_warning(&doc, text, warnings)?),
            _ => unreachable!("every kind of KINDS is read"),
        }
    }
    for ((kind, api_version), (path, count)) in unknown {
        warnings.push(ScenarioWarning {
            path,
            line: None,
            reason: WarningReason::UnmodelledKind {
                kind,
                api_version,
                count,
            },
        });
    }
    add_builtin_priority_classes(&mut r);
    Ok(r)
}

/// The priority classes every API server has.
fn add_builtin_priority_classes(r: &mut Read) {
    use k8s::Lookup;
    for (name, value) in [
        ("system-cluster-critical", 2_000_000_000),
        ("system-node-critical", 2_000_001_000),
    ] {
        if r.lookup.priority_class(name).is_none() {
            r.lookup.add_priority_class(PriorityClass {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                value,
                ..PriorityClass::default()
            });
        }
    }
}

/// A converted value, with its warnings added to `warnings`; or an error
/// naming the document, the object and every bad field.
pub(crate) fn converted<T>(
    doc: &Doc,
    result: Result<Converted<T>, ConvertError>,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<T, ScenarioError> {
    match result {
        Ok(c) => {
            for w in c.warnings {
                warnings.push(ScenarioWarning {
                    path: doc.field(&w.path),
                    line: None,
                    reason: WarningReason::Conversion {
                        object: w.object,
                        reason: w.reason,
                    },
                });
            }
            Ok(c.value)
        }
        Err(e) => Err(convert_error(doc, &e)),
    }
}

fn convert_error(doc: &Doc, e: &ConvertError) -> ScenarioError {
    let mut errors = e
        .errors
        .iter()
        .map(|f| (doc.field(&f.path), format!("{}; {}", f.message, f.fix)));
    let (at, mut message) = errors
        .next()
        .unwrap_or_else(|| (doc.field(""), e.to_string()));
    for (path, more) in errors {
        message.push_str(&format!("\n  {path}: {more}"));
    }
    invalid(at, message)
}

/// `dovetail-api`'s validation errors for a Karpenter object.
pub(crate) fn api_error(doc: &Doc, e: dovetail_api::ConversionError) -> ScenarioError {
    let dovetail_api::ConversionError::Invalid(e) = e;
    let mut errors = e
        .errors
        .iter()
        .map(|f| (doc.field(&f.path), format!("{}; {}", f.message, f.fix)));
    let (at, mut message) = errors
        .next()
        .unwrap_or_else(|| (doc.field(""), e.to_string()));
    for (path, more) in errors {
        message.push_str(&format!("\n  {path}: {more}"));
    }
    invalid(at, message)
}

// ---- workloads ------------------------------------------------------------

fn amount(
    v: Option<&IntOrString>,
    default: Amount,
    at: &str,
    doc: &Doc,
) -> Result<Amount, ScenarioError> {
    match v {
        None => Ok(default),
        Some(IntOrString::Int(n)) => u32::try_from(*n)
            .map(Amount::Count)
            .map_err(|_| invalid(doc.field(at), format!("{n} is negative"))),
        Some(IntOrString::String(s)) => match s.strip_suffix('%').map(str::parse::<u32>) {
            Some(Ok(p)) => Ok(Amount::Percent(p)),
            _ => Err(invalid(
                doc.field(at),
                format!("`{s}` is not a number of pods or a percentage such as `25%`"),
            )),
        },
    }
}

fn replicas(n: Option<i32>, at: &str, doc: &Doc) -> Result<usize, ScenarioError> {
    usize::try_from(n.unwrap_or(1))
        .map_err(|_| invalid(doc.field(at), "is negative; give 0 or more replicas"))
}

/// A Deployment, StatefulSet or ReplicaSet: its replicas and pod template,
/// and how it rolls out a changed template.
pub(crate) fn workload(
    doc: &Doc,
    w: &WorkloadObject,
    lookup: &Objects,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Deployment, ScenarioError> {
    let (template, replicas, kind, rollout) = match w {
        WorkloadObject::Deployment(d) => {
            let spec = d.spec.as_ref();
            let strategy = spec.and_then(|s| s.strategy.as_ref());
            let rollout = match strategy.and_then(|s| s.type_.as_deref()) {
                Some("Recreate") => Rollout::Recreate,
                _ => {
                    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
                    Rollout::Rolling {
                        max_surge: amount(
                            ru.and_then(|r| r.max_surge.as_ref()),
                            Amount::Percent(25),
                            "spec.strategy.rollingUpdate.maxSurge",
                            doc,
                        )?,
                        max_unavailable: amount(
                            ru.and_then(|r| r.max_unavailable.as_ref()),
                            Amount::Percent(25),
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            doc,
                        )?,
                    }
                }
            };
            (
                converted(doc, k8s::pod_template(d, lookup), warnings)?,
                replicas(spec.and_then(|s| s.replicas), "spec.replicas", doc)?,
                WorkloadKind::Deployment,
                rollout,
            )
        }
        WorkloadObject::StatefulSet(s) => {
            let spec = s.spec.as_ref();
            let strategy = spec.and_then(|s| s.update_strategy.as_ref());
            let rollout = match strategy.and_then(|s| s.type_.as_deref()) {
                Some("OnDelete") => Rollout::OnDelete,
                _ => Rollout::Rolling {
                    max_surge: Amount::Count(0),
                    max_unavailable: amount(
                        strategy
                            .and_then(|s| s.rolling_update.as_ref())
                            .and_then(|r| r.max_unavailable.as_ref()),
                        Amount::Count(1),
                        "spec.updateStrategy.rollingUpdate.maxUnavailable",
                        doc,
                    )?,
                },
            };
            (
                converted(doc, k8s::pod_template(s, lookup), warnings)?,
                replicas(spec.and_then(|s| s.replicas), "spec.replicas", doc)?,
                WorkloadKind::StatefulSet,
                rollout,
            )
        }
        WorkloadObject::ReplicaSet(r) => (
            converted(doc, k8s::pod_template(r, lookup), warnings)?,
            replicas(
                r.spec.as_ref().and_then(|s| s.replicas),
                "spec.replicas",
                doc,
            )?,
            WorkloadKind::ReplicaSet,
            // A ReplicaSet does not replace its pods when its template changes.
            Rollout::OnDelete,
        ),
    };
    Ok(Deployment {
        name: doc.name().to_owned(),
        replicas,
        template,
        diurnal: None,
        kind,
        rollout,
    })
}

/// A Job still running (`None` when it has completed or failed). Its pods
/// run for the [`JOB_RUN_TIME_ANNOTATION`], or to the end without it.
pub(crate) fn job(
    doc: &Doc,
    j: &batch::Job,
    lookup: &Objects,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Option<Job>, ScenarioError> {
    let spec = j.spec.as_ref();
    let status = j.status.as_ref();
    let finished = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    let count = |n: Option<i32>, at: &str| -> Result<Option<usize>, ScenarioError> {
        n.map(|n| usize::try_from(n).map_err(|_| invalid(doc.field(at), "is negative")))
            .transpose()
    };
    let parallelism = count(spec.and_then(|s| s.parallelism), "spec.parallelism")?.unwrap_or(1);
    // Without completions any pod's success completes the Job: each of
    // `parallelism` pods runs once.
    let completions =
        count(spec.and_then(|s| s.completions), "spec.completions")?.unwrap_or(parallelism.max(1));
    let succeeded = count(status.and_then(|s| s.succeeded), "status.succeeded")?.unwrap_or(0);
    let template = converted(doc, k8s::pod_template(j, lookup), warnings)?;
    if finished || succeeded >= completions {
        return Ok(None);
    }
    let run_time = j
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(JOB_RUN_TIME_ANNOTATION))
        .map(|v| (v.clone(), "metadata.annotations"))
        .or_else(|| {
            label(&template.annotations, Sym::new(JOB_RUN_TIME_ANNOTATION))
                .map(|v| (v.as_str().to_owned(), "spec.template.metadata.annotations"))
        });
    let duration_ms = match run_time {
        Some((text, at)) => match dovetail_core::disruption::parse_go_duration(&text) {
            Some(d) if !d.is_zero() => d.as_millis() as u64,
            _ => {
                return Err(invalid(
                    doc.field(&format!("{at}[{JOB_RUN_TIME_ANNOTATION}]")),
                    format!("`{text}` is not a duration of more than 0s; write e.g. `10m`"),
                ));
            }
        },
        None => {
            warnings.push(ScenarioWarning {
                path: doc.field(""),
                line: None,
                reason: WarningReason::JobRunsToTheEnd {
                    annotation: JOB_RUN_TIME_ANNOTATION,
                },
            });
            u64::MAX / 4
        }
    };
    let suspended = spec.and_then(|s| s.suspend) == Some(true);
    Ok(Some(Job {
        name: doc.name().to_owned(),
        at_ms: 0,
        completions,
        parallelism: if suspended { 0 } else { parallelism },
        duration_ms,
        template,
        succeeded,
    }))
}

pub(crate) fn daemon_set(
    doc: &Doc,
    ds: &apps::DaemonSet,
    lookup: &Objects,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<DaemonSet, ScenarioError> {
    converted(doc, k8s::daemon_set(ds, lookup), warnings)
}

/// A PodDisruptionBudget; the simulator computes its status.
pub(crate) fn pdb(
    doc: &Doc,
    pdb: &PodDisruptionBudget,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<PdbSpec, ScenarioError> {
    let b = converted(doc, k8s::pdb(pdb), warnings)?;
    // The simulator's disruption controller computes the status.
    warnings.retain(|w| {
        !matches!(
            &w.reason,
            WarningReason::Conversion {
                reason: k8s::WarningReason::MissingDisruptionStatus,
                ..
            }
        )
    });
    let rule = k8s::pdb_rule(pdb).map_err(|e| convert_error(doc, &e))?;
    Ok(PdbSpec {
        namespace: b.namespace,
        name: b.name,
        selector: b.selector,
        rule,
    })
}

pub(crate) fn namespace(
    doc: &Doc,
    ns: &core::Namespace,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Namespace, ScenarioError> {
    converted(doc, k8s::namespace(ns), warnings)
}

// ---- nodes and NodeClaims ---------------------------------------------------

/// The offering a node's labels name: instance type, zone and capacity type
/// (Karpenter's label, or EKS managed node groups' `ON_DEMAND`/`SPOT`; on
/// demand when neither says).
fn offering_of(node: &Node) -> (Option<Sym>, Option<Sym>, CapacityType) {
    let get = |k: &str| label(&node.labels, Sym::new(k));
    let ct = get(labels::CAPACITY_TYPE)
        .and_then(|c| CapacityType::from_label(c.as_str()))
        .or_else(
            || match get("eks.amazonaws.com/capacityType").map(Sym::as_str) {
                Some("SPOT") => Some(CapacityType::Spot),
                Some("ON_DEMAND") => Some(CapacityType::OnDemand),
                _ => None,
            },
        )
        .unwrap_or(CapacityType::OnDemand);
    (get(labels::INSTANCE_TYPE), get(labels::ZONE), ct)
}

/// A Node, managed (a NodePool's, by its `karpenter.sh/nodepool` label or
/// its NodeClaim) or not.
pub(crate) fn node(
    doc: &Doc,
    n: &core::Node,
    claim: Option<NodeClaim>,
    cluster: &Snapshot,
    start_unix_seconds: u64,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<InitialNode, ScenarioError> {
    let mut node = converted(doc, k8s::node(n), warnings)?;
    let pool_label = format!("metadata.labels[{}]", labels::NODE_POOL);
    if node.node_pool.is_none()
        && let Some(p) = claim.as_ref().and_then(|c| c.node_pool)
    {
        node.node_pool = Some(p);
        node.labels.push((Sym::new(labels::NODE_POOL), p));
        node.labels.sort_by_key(|&(k, _)| k);
    }
    let pool = match node.node_pool {
        Some(p) => Some(cluster.node_pools.iter().find(|t| t.name == p).ok_or_else(|| {
            invalid(
                doc.field(&pool_label),
                format!(
                    "the node belongs to NodePool `{p}`, which is not among the NodePools; they are {}",
                    crate::scenario::list(cluster.node_pools.iter().map(|p| p.name))
                ),
            )
        })?),
        None => None,
    };
    let (it, zone, capacity_type) = offering_of(&node);
    let instance = it.and_then(|t| cluster.catalog.get(t.as_str()));
    let price = instance
        .zip(zone)
        .and_then(|(t, z)| t.offering(z.as_str(), capacity_type))
        .map(|o| o.price);
    match (price, pool) {
        (Some(p), _) => node.price_per_hour = p,
        (None, Some(pool)) => {
            return Err(invalid(
                doc.field("metadata.labels"),
                format!(
                    "a node of NodePool `{}` must name a catalog offering by its labels {}, {} and {} (it has {}, {}, {capacity_type}); add the labels, or use an instance type and zone the catalog has",
                    pool.name,
                    labels::INSTANCE_TYPE,
                    labels::ZONE,
                    labels::CAPACITY_TYPE,
                    it.map_or("no instance type".to_owned(), |t| format!("`{t}`")),
                    zone.map_or("no zone".to_owned(), |z| format!("`{z}`")),
                ),
            ));
        }
        (None, None) => warnings.push(ScenarioWarning {
            path: doc.field(""),
            line: None,
            reason: WarningReason::Unpriced {
                instance_type: it.map_or("(none)".into(), |t| t.to_string()),
                zone: zone.map_or("(none)".into(), |z| z.to_string()),
                capacity_type: capacity_type.to_string(),
            },
        }),
    }
    if node.allocatable.cpu == 0 && node.allocatable.memory == 0 {
        let Some(t) = instance else {
            return Err(invalid(
                doc.field("status.allocatable"),
                "is required for a node whose instance type the catalog does not have: give the node's cpu, memory and pods",
            ));
        };
        // Sized by its NodeClaim's class, else its NodePool's, as the
        // engine sizes its instance.
        let class = claim
            .as_ref()
            .map(|c| c.node_class_ref.name.as_str())
            .or_else(|| pool.map(|p| p.node_class_ref.name.as_str()));
        let size = class
            .and_then(|c| cluster.catalog.sizing(t.name.as_str(), c))
            .unwrap_or_else(|| t.own_sizing());
        node.capacity = size.capacity.clone();
        node.allocatable = size.allocatable();
    }
    if node.created_at == 0 {
        node.created_at = start_unix_seconds;
        node.last_pod_event = start_unix_seconds;
    }
    if label(&node.labels, Sym::new(labels::HOSTNAME)).is_none() {
        node.labels.push((Sym::new(labels::HOSTNAME), node.name));
        node.labels.sort_by_key(|&(k, _)| k);
    }
    // Karpenter's template hash is not Dovetail's: a node from a manifest
    // counts as made from its NodePool's current template.
    node.node_pool_hash = pool.map(|p| p.template_hash());
    let claim = claim.map(|mut c| {
        c.node_pool_hash = node.node_pool_hash;
        c
    });
    Ok(InitialNode {
        ready: node.ready,
        capacity_type,
        node,
        pods: Vec::new(),
        claim,
    })
}

/// A NodeClaim as the controller's state holds it.
pub(crate) fn node_claim(doc: &Doc, m: &NodeClaimManifest) -> Result<NodeClaim, ScenarioError> {
    m.to_core().map_err(|e| api_error(doc, e))
}

/// Pairs NodeClaims with their nodes: by `status.nodeName`, or by provider
/// ID. Returns each node's claim (by position in `nodes`) and the claims
/// without a node.
pub(crate) fn pair_claims(
    nodes: &[(Doc, core::Node)],
    claims: Vec<(Doc, NodeClaim)>,
) -> (Vec<Option<NodeClaim>>, Vec<(Doc, NodeClaim)>) {
    let mut paired: Vec<Option<NodeClaim>> = vec![None; nodes.len()];
    let mut alone = Vec::new();
    for (doc, c) in claims {
        let by_name = c.status.node_name.and_then(|n| {
            nodes
                .iter()
                .position(|(_, node)| node.metadata.name.as_deref() == Some(n.as_str()))
        });
        let by_provider = || {
            c.status.provider_id.as_deref().and_then(|p| {
                nodes.iter().position(|(_, node)| {
                    node.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(p)
                })
            })
        };
        match by_name.or_else(by_provider) {
            Some(i) if paired[i].is_none() => paired[i] = Some(c),
            _ => alone.push((doc, c)),
        }
    }
    (paired, alone)
}

/// The offering a NodeClaim without a node was launched on, from its labels.
pub(crate) fn claim_offering(c: &NodeClaim) -> Option<(Sym, Sym, CapacityType)> {
    let get = |k: &str| label(&c.labels, Sym::new(k));
    Some((
        get(labels::INSTANCE_TYPE)?,
        get(labels::ZONE)?,
        CapacityType::from_label(get(labels::CAPACITY_TYPE)?.as_str())?,
    ))
}

// ---- pods -------------------------------------------------------------------

/// A pod, bound (`spec.nodeName`) or pending; `None` for a pod that holds
/// nothing any more (succeeded, failed or terminating: its controller has
/// replaced it or will) and for a pending DaemonSet pod (the simulated
/// DaemonSet controller places its pods).
pub(crate) fn pod(
    doc: &Doc,
    p: &core::Pod,
    lookup: &Objects,
    replica_set_owners: &BTreeMap<(String, String), String>,
    warnings: &mut Vec<ScenarioWarning>,
) -> Result<Option<InitialPod>, ScenarioError> {
    let mut pod = converted(doc, k8s::pod(p, lookup), warnings)?;
    if pod.is_terminal() || pod.is_terminating() {
        return Ok(None);
    }
    let node = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        .map(Sym::new);
    if pod.is_daemon() && node.is_none() {
        return Ok(None);
    }
    if let Some(o) = &mut pod.owner
        && o.kind == OwnerKind::ReplicaSet
    {
        o.name = Sym::new(&replica_set_deployment(
            pod.namespace.as_str(),
            o.name.as_str(),
            &pod.labels,
            replica_set_owners,
        ));
    }
    Ok(Some(InitialPod { pod, node }))
}

/// The Deployment a ReplicaSet belongs to, named as the simulator names a
/// Deployment's ReplicaSet (after the Deployment): from the ReplicaSet's
/// own owner when given, else from its name less the pod template hash;
/// a ReplicaSet of its own keeps its name.
fn replica_set_deployment(
    namespace: &str,
    replica_set: &str,
    pod_labels: &model::Labels,
    owners: &BTreeMap<(String, String), String>,
) -> String {
    if let Some(d) = owners.get(&(namespace.to_owned(), replica_set.to_owned())) {
        return d.clone();
    }
    label(pod_labels, Sym::new(POD_TEMPLATE_HASH))
        .and_then(|h| replica_set.strip_suffix(&format!("-{h}")))
        .unwrap_or(replica_set)
        .to_owned()
}

/// The namespaces objects live in that no Namespace manifest gives, as the
/// API server would have them (with their name label).
pub(crate) fn implicit_namespaces(given: &[Namespace], used: &BTreeSet<Sym>) -> Vec<Namespace> {
    used.iter()
        .filter(|n| !given.iter().any(|g| g.name == **n))
        .map(|n| Namespace {
            name: *n,
            labels: model::sorted_labels([("kubernetes.io/metadata.name", n.as_str())]),
        })
        .collect()
}
