//! Pods: every field Karpenter's scheduler reads, from a created pod or from
//! a workload's pod template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use dovetail_core::disruption::parse_go_duration;
use dovetail_core::labels;
use dovetail_core::model::{
    self, Container, HostPort, InclusionPolicy, Owner, OwnerKind, PodPhase,
    PreferredSchedulingTerm, SelectorOperator, SelectorRequirement, TaintEffect, Toleration,
    TolerationOperator, TopologySpreadConstraint, WeightedPodAffinityTerm, WhenUnsatisfiable,
    effective_requests, label, sorted_labels,
};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::resources::Resources;
use dovetail_core::sym::Sym;

use crate::error::{ErrorKind, Path};

use super::lookup::Lookup;
use super::object::namespace_of;
use super::report::{Report, seconds};
use super::resources::resource_list;
use super::selectors::{label_selector, node_selector_term, normalized_label};
use super::volumes;
use super::{ConvertError, Converted, ObjectRef, WarningReason};

pub(crate) const POD: &str = "Pod";

/// A Pod as the engines see it. Requests follow KEP-753 (sidecars are
/// restartable init containers) plus the overhead, and pod-level resources
/// when set; node selector and affinity keys are read through Karpenter's
/// label aliases; volume topology comes from the claims, volumes and storage
/// classes `lookup` finds. `tolerationSeconds` is ignored: it only bounds
/// how long a pod stays on a node that turns `NoExecute`, which no decision
/// reads. Place a bound pod on its node by `spec.nodeName`.
pub fn pod(pod: &k8s::Pod, lookup: &impl Lookup) -> Result<Converted<model::Pod>, ConvertError> {
    let meta = &pod.metadata;
    let mut report = Report::new(ObjectRef::namespaced(POD, meta));
    let mut out = model::Pod::default();
    let root = Path::root("");
    metadata(meta, &root.field("metadata"), &mut report, &mut out);
    out.owner = owner(meta);
    out.created = meta.creation_timestamp.as_ref().map_or(0, seconds);
    out.deleting_since = meta.deletion_timestamp.as_ref().map(seconds);
    match &pod.spec {
        Some(spec) => {
            let name = meta.name.clone().unwrap_or_default();
            let source = Source {
                spec,
                path: root.field("spec"),
                pod_name: &name,
                template: false,
                claim_templates: &[],
                claim_templates_path: root.field("spec"),
            };
            convert_spec(&source, lookup, &mut report, &mut out);
        }
        None => report.required(&root.field("spec"), "give the pod a spec"),
    }
    if let Some(status) = &pod.status {
        if let Some(phase) = status.phase.as_deref() {
            out.phase = match phase {
                "Pending" => PodPhase::Pending,
                "Running" => PodPhase::Running,
                "Succeeded" => PodPhase::Succeeded,
                "Failed" => PodPhase::Failed,
                "Unknown" => PodPhase::Unknown,
                other => {
                    report.not_supported(
                        &root.field("status").field("phase"),
                        other,
                        &["Pending", "Running", "Succeeded", "Failed", "Unknown"],
                    );
                    PodPhase::Unknown
                }
            };
        }
        out.started_at = status.start_time.as_ref().map_or(0, seconds);
    }
    report.finish(out)
}

/// Name, namespace, labels and annotations, with the annotations Dovetail
/// reads checked.
pub(crate) fn metadata(meta: &ObjectMeta, path: &Path, report: &mut Report, out: &mut model::Pod) {
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => out.name = Sym::new(n),
        _ => report.required(&path.field("name"), "give the object a name"),
    }
    out.namespace = Sym::new(namespace_of(meta));
    out.labels = string_map(meta.labels.as_ref());
    out.annotations = string_map(meta.annotations.as_ref());
    let annotations = meta.annotations.iter().flatten();
    for (k, v) in annotations {
        let at = path.field("annotations").key(k);
        match k.as_str() {
            labels::DO_NOT_DISRUPT
                if v != "true" && v != "false" && parse_go_duration(v).is_none() =>
            {
                report.warn(&at, WarningReason::InvalidDoNotDisrupt { value: v.clone() });
            }
            model::DELETION_COST if v.trim().parse::<i32>().is_err() => {
                report.warn(&at, WarningReason::InvalidDeletionCost { value: v.clone() });
            }
            _ => {}
        }
    }
}

pub(crate) fn string_map(map: Option<&BTreeMap<String, String>>) -> model::Labels {
    sorted_labels(
        map.into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

/// The controller among the owner references.
pub(crate) fn owner(meta: &ObjectMeta) -> Option<Owner> {
    let r = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = match (group, r.kind.as_str()) {
        ("apps", "ReplicaSet") => OwnerKind::ReplicaSet,
        ("apps", "StatefulSet") => OwnerKind::StatefulSet,
        ("apps", "DaemonSet") => OwnerKind::DaemonSet,
        ("batch", "Job") => OwnerKind::Job,
        ("", "Node") => OwnerKind::Node,
        _ => OwnerKind::Other,
    };
    Some(Owner {
        kind,
        name: Sym::new(&r.name),
    })
}

/// A pod spec to convert and where it sits in its object.
pub(crate) struct Source<'a> {
    pub spec: &'a k8s::PodSpec,
    /// `spec`, or `spec.template.spec` in a workload.
    pub path: Path,
    /// The name generic ephemeral volumes' claims are named after.
    pub pod_name: &'a str,
    /// A workload's template: the API server's admission (priority,
    /// runtime class) has not run on it yet.
    pub template: bool,
    /// A StatefulSet's `volumeClaimTemplates`.
    pub claim_templates: &'a [k8s::PersistentVolumeClaim],
    /// Where `claim_templates` sit.
    pub claim_templates_path: Path,
}

/// Fills `out`'s scheduling fields from the spec; `out` already has its
/// namespace, labels and owner.
pub(crate) fn convert_spec(
    src: &Source<'_>,
    lookup: &dyn Lookup,
    report: &mut Report,
    out: &mut model::Pod,
) {
    let spec = src.spec;
    let path = &src.path;
    let mut node_selector = spec.node_selector.clone().unwrap_or_default();
    let mut extra_tolerations = Vec::new();
    let mut overhead_list = spec.overhead.clone();
    if src.template
        && let Some(name) = spec.runtime_class_name.as_deref().filter(|n| !n.is_empty())
    {
        // Admission adds the class's overhead and scheduling to each pod.
        match lookup.runtime_class(name) {
            Some(class) => {
                if overhead_list.is_none() {
                    overhead_list = class.overhead.as_ref().and_then(|o| o.pod_fixed.clone());
                }
                if let Some(s) = &class.scheduling {
                    for (k, v) in s.node_selector.iter().flatten() {
                        node_selector.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    extra_tolerations.extend(s.tolerations.iter().flatten().cloned());
                }
            }
            None => report.warn(
                &path.field("runtimeClassName"),
                WarningReason::UnresolvedRuntimeClass {
                    name: name.to_owned(),
                },
            ),
        }
    }

    out.requests = requests(spec, overhead_list.as_ref(), path, report);

    // Node selector, with Karpenter's aliases; an alias whose current key is
    // also given with another value becomes a requirement, so neither is lost.
    let mut selector: BTreeMap<String, String> = BTreeMap::new();
    let mut clashing = Vec::new();
    for (k, v) in &node_selector {
        let key = normalized_label(k);
        match selector.get(key) {
            Some(existing) if existing != v => {
                clashing.push(NodeSelectorRequirement::new(key, Operator::In, &[v]))
            }
            _ => {
                selector.insert(key.to_owned(), v.clone());
            }
        }
    }
    out.node_selector = string_map(Some(&selector));

    if let Some(affinity) = &spec.affinity {
        let at = path.field("affinity");
        if let Some(na) = &affinity.node_affinity {
            node_affinity(na, &at.field("nodeAffinity"), report, out);
        }
        if let Some(pa) = &affinity.pod_affinity {
            let at = at.field("podAffinity");
            (out.pod_affinity, out.preferred_pod_affinity) = pod_affinity(
                pa.required_during_scheduling_ignored_during_execution
                    .as_deref(),
                pa.preferred_during_scheduling_ignored_during_execution
                    .as_deref(),
                &at,
                report,
                &out.labels,
            );
        }
        if let Some(pa) = &affinity.pod_anti_affinity {
            let at = at.field("podAntiAffinity");
            (out.pod_anti_affinity, out.preferred_pod_anti_affinity) = pod_affinity(
                pa.required_during_scheduling_ignored_during_execution
                    .as_deref(),
                pa.preferred_during_scheduling_ignored_during_execution
                    .as_deref(),
                &at,
                report,
                &out.labels,
            );
        }
    }
    add_to_every_term(&mut out.required_node_affinity, clashing);

    // Sized exactly: the index holds one of these per pod, and a vector
    // grown by pushes keeps room for four.
    let spreads = spec
        .topology_spread_constraints
        .as_deref()
        .unwrap_or_default();
    out.topology_spread.reserve_exact(spreads.len());
    for (i, c) in spreads.iter().enumerate() {
        let at = path.field("topologySpreadConstraints").index(i);
        if let Some(c) = spread(c, &at, report) {
            out.topology_spread.push(c);
        }
    }

    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    out.tolerations
        .reserve_exact(tolerations.len() + extra_tolerations.len());
    for (i, t) in tolerations.iter().enumerate() {
        if let Some(t) = toleration(t, &path.field("tolerations").index(i), report) {
            out.tolerations.push(t);
        }
    }
    for (i, t) in extra_tolerations.iter().enumerate() {
        let at = path.field("runtimeClassName").field("tolerations").index(i);
        if let Some(t) = toleration(t, &at, report) {
            out.tolerations.push(t);
        }
    }

    out.host_ports = host_ports(spec, path, report);

    let topology = volumes::topology(src, out.namespace.as_str(), lookup, report);
    match topology.zones {
        Some(zones) if zones.is_empty() => {
            // No zone satisfies every volume: no node can run the pod.
            add_to_every_term(
                &mut out.required_node_affinity,
                vec![NodeSelectorRequirement::new(
                    labels::ZONE,
                    Operator::DoesNotExist,
                    &[],
                )],
            );
        }
        Some(zones) => out.volume_zones = zones,
        None => {}
    }
    add_to_every_term(&mut out.required_node_affinity, topology.requirements);

    out.priority = priority(spec, path, lookup, report);

    if let Some(gates) = spec.scheduling_gates.as_ref().filter(|g| !g.is_empty()) {
        report.warn(
            &path.field("schedulingGates"),
            WarningReason::SchedulingGates {
                gates: gates.iter().map(|g| g.name.clone()).collect(),
            },
        );
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        report.warn(&path.field("resourceClaims"), WarningReason::ResourceClaims);
    }
}

/// Adds `extra` to every required node-affinity OR-term (to a new one when
/// there is none), as the API server ANDs them with each term.
fn add_to_every_term(
    terms: &mut Vec<Vec<NodeSelectorRequirement>>,
    extra: Vec<NodeSelectorRequirement>,
) {
    if extra.is_empty() {
        return;
    }
    if terms.is_empty() {
        terms.push(Vec::new());
    }
    for t in terms.iter_mut() {
        t.extend(extra.iter().cloned());
    }
}

/// A container's requests, with limits standing in for requests left out
/// (the API server's defaulting).
fn container_requests(
    resources: Option<&k8s::ResourceRequirements>,
    path: &Path,
    report: &mut Report,
) -> Resources {
    let Some(r) = resources else {
        return Resources::default();
    };
    let mut requests = r.requests.clone().unwrap_or_default();
    for (name, q) in r.limits.iter().flatten() {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
    resource_list(Some(&requests), &path.field("requests"), report)
}

/// The pod's effective requests: KEP-753's rule with sidecars, plus the
/// overhead; pod-level resources, where set, replace the containers' sum.
fn requests(
    spec: &k8s::PodSpec,
    overhead: Option<&BTreeMap<String, Quantity>>,
    path: &Path,
    report: &mut Report,
) -> Resources {
    let mut containers = Vec::with_capacity(spec.containers.len());
    for (i, c) in spec.containers.iter().enumerate() {
        let at = path.field("containers").index(i).field("resources");
        containers.push(Container {
            requests: container_requests(c.resources.as_ref(), &at, report),
            restartable: false,
        });
    }
    let mut init = Vec::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let at = path.field("initContainers").index(i);
        let restartable = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                report.error(
                    &at.field("restartPolicy"),
                    ErrorKind::NotSupported,
                    format!("`{other}` is not supported for an init container"),
                    "write `restartPolicy: Always` for a sidecar, or leave it out",
                );
                false
            }
        };
        init.push(Container {
            requests: container_requests(c.resources.as_ref(), &at.field("resources"), report),
            restartable,
        });
    }
    let overhead = resource_list(overhead, &path.field("overhead"), report);
    let mut total = effective_requests(&containers, &init, &overhead);
    if let Some(pod_level) = &spec.resources {
        let pod_level = container_requests(Some(pod_level), &path.field("resources"), report);
        for (name, value) in [
            (dovetail_core::resources::CPU, pod_level.cpu),
            (dovetail_core::resources::MEMORY, pod_level.memory),
        ] {
            if value > 0 {
                total.set(name, value + overhead.get(name));
            }
        }
        for &(name, value) in &pod_level.extended {
            // Hugepages are the other resources pod-level requests may set.
            total.set(name.as_str(), value + overhead.extended(name));
        }
    }
    total
}

fn node_affinity(na: &k8s::NodeAffinity, path: &Path, report: &mut Report, out: &mut model::Pod) {
    let daemon = out.is_daemon();
    let fields = |term: &k8s::NodeSelectorTerm, at: &Path, report: &mut Report| {
        let has_fields = term.match_fields.as_ref().is_some_and(|f| !f.is_empty());
        let has_expressions = term
            .match_expressions
            .as_ref()
            .is_some_and(|e| !e.is_empty());
        // A DaemonSet's controller pins each of its pods with matchFields;
        // its pods are placed by the DaemonSet model, not planned.
        if has_fields && !daemon {
            report.warn(&at.field("matchFields"), WarningReason::MatchFields);
        } else if !has_fields && !has_expressions {
            report.warn(at, WarningReason::EmptyNodeSelectorTerm);
        }
    };
    if let Some(required) = &na.required_during_scheduling_ignored_during_execution {
        let at = path
            .field("requiredDuringSchedulingIgnoredDuringExecution")
            .field("nodeSelectorTerms");
        for (i, term) in required.node_selector_terms.iter().enumerate() {
            let at = at.index(i);
            fields(term, &at, report);
            out.required_node_affinity
                .push(node_selector_term(term, &at, report));
        }
    }
    let at = path.field("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, p) in na
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .enumerate()
    {
        let at = at.index(i);
        if !(1..=100).contains(&p.weight) {
            report.error(
                &at.field("weight"),
                ErrorKind::Invalid,
                format!("{} is out of range", p.weight),
                "use a weight from 1 to 100",
            );
        }
        let pref = at.field("preference");
        fields(&p.preference, &pref, report);
        out.preferred_node_affinity.push(PreferredSchedulingTerm {
            weight: p.weight,
            requirements: node_selector_term(&p.preference, &pref, report),
        });
    }
}

type Terms = (Vec<model::PodAffinityTerm>, Vec<WeightedPodAffinityTerm>);

fn pod_affinity(
    required: Option<&[k8s::PodAffinityTerm]>,
    preferred: Option<&[k8s::WeightedPodAffinityTerm]>,
    path: &Path,
    report: &mut Report,
    pod_labels: &model::Labels,
) -> Terms {
    let mut req = Vec::new();
    let at = path.field("requiredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in required.into_iter().flatten().enumerate() {
        if let Some(t) = affinity_term(t, &at.index(i), report, pod_labels) {
            req.push(t);
        }
    }
    let mut pref = Vec::new();
    let at = path.field("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, w) in preferred.into_iter().flatten().enumerate() {
        let at = at.index(i);
        if !(1..=100).contains(&w.weight) {
            report.error(
                &at.field("weight"),
                ErrorKind::Invalid,
                format!("{} is out of range", w.weight),
                "use a weight from 1 to 100",
            );
        }
        if let Some(term) = affinity_term(
            &w.pod_affinity_term,
            &at.field("podAffinityTerm"),
            report,
            pod_labels,
        ) {
            pref.push(WeightedPodAffinityTerm {
                weight: w.weight,
                term,
            });
        }
    }
    (req, pref)
}

fn affinity_term(
    t: &k8s::PodAffinityTerm,
    path: &Path,
    report: &mut Report,
    pod_labels: &model::Labels,
) -> Option<model::PodAffinityTerm> {
    let errors_before = report.error_count();
    if t.topology_key.is_empty() {
        report.required(
            &path.field("topologyKey"),
            "name the node label that defines the domain, e.g. `topology.kubernetes.io/zone`",
        );
    }
    let mut selector = label_selector(
        t.label_selector.as_ref(),
        &path.field("labelSelector"),
        report,
    );
    // The API server merges matchLabelKeys and mismatchLabelKeys into the
    // selector with the pod's own values when it creates the pod.
    for (field, keys, operator) in [
        ("matchLabelKeys", &t.match_label_keys, SelectorOperator::In),
        (
            "mismatchLabelKeys",
            &t.mismatch_label_keys,
            SelectorOperator::NotIn,
        ),
    ] {
        let Some(keys) = keys.as_ref().filter(|k| !k.is_empty()) else {
            continue;
        };
        if t.label_selector.is_none() {
            report.error(
                &path.field(field),
                ErrorKind::Forbidden,
                "needs a labelSelector to add to",
                "give the term a labelSelector, or remove the keys",
            );
            continue;
        }
        for k in keys {
            if let Some(v) = label(pod_labels, Sym::new(k)) {
                selector.match_expressions.push(SelectorRequirement {
                    key: Sym::new(k),
                    operator,
                    values: vec![v],
                });
            }
        }
    }
    let namespace_selector = t
        .namespace_selector
        .as_ref()
        .map(|s| label_selector(Some(s), &path.field("namespaceSelector"), report));
    (report.error_count() == errors_before).then(|| model::PodAffinityTerm {
        selector,
        topology_key: Sym::new(&t.topology_key),
        namespaces: t.namespaces.iter().flatten().map(|n| Sym::new(n)).collect(),
        namespace_selector,
    })
}

fn spread(
    c: &k8s::TopologySpreadConstraint,
    path: &Path,
    report: &mut Report,
) -> Option<TopologySpreadConstraint> {
    let errors_before = report.error_count();
    if c.max_skew < 1 {
        report.error(
            &path.field("maxSkew"),
            ErrorKind::Invalid,
            format!("{} is out of range", c.max_skew),
            "use a maxSkew of at least 1",
        );
    }
    if c.topology_key.is_empty() {
        report.required(
            &path.field("topologyKey"),
            "name the node label that defines the domain, e.g. `topology.kubernetes.io/zone`",
        );
    }
    let when_unsatisfiable = match c.when_unsatisfiable.as_str() {
        "DoNotSchedule" => WhenUnsatisfiable::DoNotSchedule,
        "ScheduleAnyway" => WhenUnsatisfiable::ScheduleAnyway,
        other => {
            report.not_supported(
                &path.field("whenUnsatisfiable"),
                other,
                &["DoNotSchedule", "ScheduleAnyway"],
            );
            WhenUnsatisfiable::DoNotSchedule
        }
    };
    if let Some(m) = c.min_domains {
        if m < 1 {
            report.error(
                &path.field("minDomains"),
                ErrorKind::Invalid,
                format!("{m} is out of range"),
                "use a minDomains of at least 1, or leave it out",
            );
        } else if when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
            report.error(
                &path.field("minDomains"),
                ErrorKind::Forbidden,
                "applies only with whenUnsatisfiable: DoNotSchedule",
                "remove minDomains, or use DoNotSchedule",
            );
        }
    }
    let mut policy = |field: &str, value: Option<&str>, default: InclusionPolicy| match value {
        None => default,
        Some("Honor") => InclusionPolicy::Honor,
        Some("Ignore") => InclusionPolicy::Ignore,
        Some(other) => {
            report.not_supported(&path.field(field), other, &["Honor", "Ignore"]);
            default
        }
    };
    let node_affinity_policy = policy(
        "nodeAffinityPolicy",
        c.node_affinity_policy.as_deref(),
        InclusionPolicy::Honor,
    );
    let node_taints_policy = policy(
        "nodeTaintsPolicy",
        c.node_taints_policy.as_deref(),
        InclusionPolicy::Ignore,
    );
    let match_label_keys: Vec<Sym> = c
        .match_label_keys
        .iter()
        .flatten()
        .map(|k| Sym::new(k))
        .collect();
    if !match_label_keys.is_empty() && c.label_selector.is_none() {
        report.error(
            &path.field("matchLabelKeys"),
            ErrorKind::Forbidden,
            "needs a labelSelector to add to",
            "give the constraint a labelSelector, or remove matchLabelKeys",
        );
    }
    let selector = label_selector(
        c.label_selector.as_ref(),
        &path.field("labelSelector"),
        report,
    );
    (report.error_count() == errors_before).then(|| TopologySpreadConstraint {
        max_skew: c.max_skew,
        topology_key: Sym::new(&c.topology_key),
        when_unsatisfiable,
        selector,
        min_domains: c.min_domains,
        node_affinity_policy,
        node_taints_policy,
        match_label_keys,
    })
}

pub(crate) fn toleration(
    t: &k8s::Toleration,
    path: &Path,
    report: &mut Report,
) -> Option<Toleration> {
    let operator = match t.operator.as_deref() {
        None | Some("Equal") => TolerationOperator::Equal,
        Some("Exists") => TolerationOperator::Exists,
        Some(other) => {
            report.not_supported(&path.field("operator"), other, &["Equal", "Exists"]);
            return None;
        }
    };
    let key = t.key.as_deref().filter(|k| !k.is_empty());
    if key.is_none() && operator == TolerationOperator::Equal {
        report.error(
            &path.field("operator"),
            ErrorKind::Invalid,
            "must be Exists when the key is empty",
            "name the taint's key, or use `operator: Exists` to tolerate every taint",
        );
        return None;
    }
    let effect = match t.effect.as_deref() {
        None | Some("") => None,
        Some(e) => Some(taint_effect(e, &path.field("effect"), report)?),
    };
    Some(Toleration {
        key: key.map(Sym::new),
        operator,
        value: match operator {
            TolerationOperator::Equal => Some(Sym::new(t.value.as_deref().unwrap_or(""))),
            TolerationOperator::Exists => None,
        }
        .filter(|v| !v.as_str().is_empty()),
        effect,
    })
}

pub(crate) fn taint_effect(effect: &str, path: &Path, report: &mut Report) -> Option<TaintEffect> {
    match effect {
        "NoSchedule" => Some(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
        "NoExecute" => Some(TaintEffect::NoExecute),
        other => {
            report.not_supported(
                path,
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            );
            None
        }
    }
}

/// Host ports of the containers and of the sidecars, which keep theirs for
/// the pod's life. With `hostNetwork` a container port is a host port.
fn host_ports(spec: &k8s::PodSpec, path: &Path, report: &mut Report) -> Vec<HostPort> {
    let host_network = spec.host_network == Some(true);
    let containers = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (path.field("containers").index(i), c));
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
        .map(|(i, c)| (path.field("initContainers").index(i), c));
    let mut out = Vec::new();
    for (at, c) in containers.chain(sidecars) {
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let at = at.field("ports").index(j);
            let port = match p.host_port {
                Some(h) if h != 0 => h,
                _ if host_network => p.container_port,
                _ => continue,
            };
            let port = match u16::try_from(port) {
                Ok(p) if p > 0 => p,
                _ => {
                    report.error(
                        &at.field("hostPort"),
                        ErrorKind::Invalid,
                        format!("{port} is not a port"),
                        "use a port from 1 to 65535",
                    );
                    continue;
                }
            };
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
                report.not_supported(&at.field("protocol"), protocol, &["TCP", "UDP", "SCTP"]);
                continue;
            }
            out.push(HostPort {
                port,
                protocol: Sym::new(protocol),
                host_ip: Sym::new(
                    p.host_ip
                        .as_deref()
                        .filter(|ip| !ip.is_empty())
                        .unwrap_or("0.0.0.0"),
                ),
            });
        }
    }
    out
}

/// `spec.priority`, or the value of the priority class (the default one
/// when none is named), as the API server's admission resolves it.
fn priority(spec: &k8s::PodSpec, path: &Path, lookup: &dyn Lookup, report: &mut Report) -> i32 {
    if let Some(p) = spec.priority {
        return p;
    }
    match spec
        .priority_class_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(name) => match lookup.priority_class(name) {
            Some(class) => class.value,
            None => {
                report.warn(
                    &path.field("priorityClassName"),
                    WarningReason::UnresolvedPriorityClass {
                        name: name.to_owned(),
                    },
                );
                0
            }
        },
        None => lookup.default_priority_class().map_or(0, |c| c.value),
    }
}
