//! Scenario files: YAML, with NodePools written exactly as `karpenter.sh/v1`
//! NodePool manifests (paste your own), plus workloads, events, duration
//! and seed. Errors name the field and the line.
//!
//! ```yaml
//! seed: 42
//! duration: 30m
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
//! workloads:
//!   - deployment: my-app
//!     replicas: 50
//!     cpu: "1"
//!     memory: 1536Mi
//! events:
//!   - at: 10m
//!     scale: { deployment: my-app, replicas: 5 }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use dovetail_core::builders::{aws_catalog, pod};
use dovetail_core::disruption::{Settings, parse_go_duration};
use dovetail_core::model::{Budget, ConsolidationPolicy, NodeClassRef, NodePool, TaintEffect};
use dovetail_core::requirements::{NodeSelectorRequirement, Requirement};
use dovetail_core::resources;
use dovetail_core::scheduler::Snapshot;
use dovetail_core::sym::Sym;
use serde::Deserialize;

use crate::types::{Deployment, Event, EventKind, Models, Scenario};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    #[serde(default)]
    seed: u64,
    duration: String,
    #[serde(default)]
    start_unix_seconds: Option<u64>,
    node_pools: Vec<NodePoolManifest>,
    #[serde(default)]
    workloads: Vec<Workload>,
    #[serde(default)]
    events: Vec<EventSpec>,
    #[serde(default)]
    settings: SettingsSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsSpec {
    /// Karpenter's `SpotToSpotConsolidation` feature gate.
    #[serde(default)]
    spot_to_spot_consolidation: bool,
}

// Manifests: only the fields Dovetail reads; others (status, timestamps…)
// are ignored, so a manifest can be pasted as it is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodePoolManifest {
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: NodePoolSpec,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodePoolSpec {
    #[serde(default)]
    template: Template,
    #[serde(default)]
    limits: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    weight: Option<i32>,
    #[serde(default)]
    disruption: Option<DisruptionSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct Template {
    #[serde(default)]
    metadata: TemplateMetadata,
    #[serde(default)]
    spec: TemplateSpec,
}

#[derive(Debug, Default, Deserialize)]
struct TemplateMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateSpec {
    #[serde(default)]
    requirements: Vec<NodeSelectorRequirement>,
    #[serde(default)]
    taints: Vec<TaintSpec>,
    #[serde(default)]
    startup_taints: Vec<TaintSpec>,
    #[serde(default)]
    node_class_ref: Option<NodeClassRef>,
    #[serde(default)]
    expire_after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TaintSpec {
    key: String,
    #[serde(default)]
    value: Option<String>,
    effect: TaintEffect,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisruptionSpec {
    #[serde(default)]
    consolidation_policy: Option<ConsolidationPolicy>,
    #[serde(default)]
    consolidate_after: Option<String>,
    #[serde(default)]
    budgets: Option<Vec<BudgetSpec>>,
}

#[derive(Debug, Deserialize)]
struct BudgetSpec {
    nodes: String,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Workload {
    deployment: String,
    replicas: usize,
    cpu: String,
    memory: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSpec {
    at: String,
    scale: ScaleSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    deployment: String,
    replicas: usize,
}

fn duration(at: &str, text: &str) -> Result<Duration, ScenarioError> {
    parse_go_duration(text).ok_or_else(|| {
        invalid(
            at,
            format!("`{text}` is not a duration; write e.g. `90s`, `30m` or `24h`"),
        )
    })
}

/// `Never` is `None`.
fn nillable(at: &str, text: &str) -> Result<Option<Duration>, ScenarioError> {
    if text == "Never" {
        Ok(None)
    } else {
        duration(at, text).map(Some)
    }
}

fn node_pool(i: usize, m: NodePoolManifest) -> Result<NodePool, ScenarioError> {
    let at = format!("nodePools[{i}]");
    if m.api_version != "karpenter.sh/v1" || m.kind != "NodePool" {
        return Err(invalid(
            &at,
            format!(
                "expected apiVersion karpenter.sh/v1, kind NodePool; got {} {}",
                m.api_version, m.kind
            ),
        ));
    }
    let mut pool = NodePool::new(&m.metadata.name);
    let t = m.spec.template;
    pool.labels = dovetail_core::model::sorted_labels(
        t.metadata
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    pool.annotations = dovetail_core::model::sorted_labels(
        t.metadata
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    for (j, r) in t.spec.requirements.iter().enumerate() {
        Requirement::from_term(r).map_err(|e| {
            invalid(
                format!("{at}.spec.template.spec.requirements[{j}]"),
                e.to_string(),
            )
        })?;
    }
    pool.requirements = t.spec.requirements;
    let taint = |s: &TaintSpec| {
        dovetail_core::builders::taint(&s.key, s.value.as_deref().unwrap_or(""), s.effect)
    };
    pool.taints = t.spec.taints.iter().map(taint).collect();
    pool.startup_taints = t.spec.startup_taints.iter().map(taint).collect();
    if let Some(c) = t.spec.node_class_ref {
        pool.node_class_ref = c;
    }
    if let Some(e) = t.spec.expire_after {
        pool.expire_after = nillable(&format!("{at}.spec.template.spec.expireAfter"), &e)?;
    }
    pool.weight = m.spec.weight.unwrap_or(0);
    for (name, value) in &m.spec.limits {
        let text = match value {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Number(n) => n.to_string(),
            _ => {
                return Err(invalid(
                    format!("{at}.spec.limits.{name}"),
                    "expected a quantity",
                ));
            }
        };
        let parsed = if name == resources::CPU {
            resources::parse_milli(&text)
        } else {
            resources::parse_units(&text)
        }
        .map_err(|e| invalid(format!("{at}.spec.limits.{name}"), e.to_string()))?;
        pool.limits.push((Sym::new(name), parsed));
    }
    if let Some(d) = m.spec.disruption {
        if let Some(p) = d.consolidation_policy {
            pool.disruption.consolidation_policy = p;
        }
        if let Some(after) = d.consolidate_after {
            pool.disruption.consolidate_after =
                nillable(&format!("{at}.spec.disruption.consolidateAfter"), &after)?;
        }
        if let Some(budgets) = d.budgets {
            pool.disruption.budgets = budgets
                .into_iter()
                .enumerate()
                .map(|(j, b)| {
                    let duration = b
                        .duration
                        .map(|t| {
                            duration(&format!("{at}.spec.disruption.budgets[{j}].duration"), &t)
                        })
                        .transpose()?;
                    Ok(Budget {
                        nodes: b.nodes,
                        reasons: b.reasons,
                        schedule: b.schedule,
                        duration,
                    })
                })
                .collect::<Result<_, ScenarioError>>()?;
        }
    }
    dovetail_core::disruption::budgets::validate_budgets(&pool)
        .map_err(|e| invalid(&at, e.to_string()))?;
    Ok(pool)
}

/// Reads a scenario from YAML text.
pub fn parse_scenario(text: &str) -> Result<Scenario, ScenarioError> {
    let file: File =
        serde_norway::from_str(text).map_err(|e| ScenarioError::Yaml(e.to_string()))?;
    let mut cluster = Snapshot::new(aws_catalog());
    for (i, m) in file.node_pools.into_iter().enumerate() {
        cluster.node_pools.push(node_pool(i, m)?);
    }
    let mut deployments = Vec::new();
    for (i, w) in file.workloads.into_iter().enumerate() {
        let at = format!("workloads[{i}]");
        for (field, q) in [("cpu", &w.cpu), ("memory", &w.memory)] {
            resources::parse_milli(q)
                .map_err(|e| invalid(format!("{at}.{field}"), e.to_string()))?;
        }
        let mut b = pod(&w.deployment).cpu(&w.cpu).memory(&w.memory);
        for (k, v) in &w.labels {
            b = b.label(k, v);
        }
        for (k, v) in &w.node_selector {
            b = b.node_selector(k, v);
        }
        deployments.push(Deployment {
            name: w.deployment,
            replicas: w.replicas,
            template: b.build(),
            diurnal: None,
        });
    }
    let mut scales = Vec::new();
    for (i, e) in file.events.into_iter().enumerate() {
        let at_ms = duration(&format!("events[{i}].at"), &e.at)?.as_millis() as u64;
        if !deployments.iter().any(|d| d.name == e.scale.deployment) {
            return Err(invalid(
                format!("events[{i}].scale.deployment"),
                format!("no workload named `{}`", e.scale.deployment),
            ));
        }
        scales.push(Event {
            at_ms,
            kind: EventKind::Scale {
                deployment: e.scale.deployment,
                replicas: e.scale.replicas,
            },
        });
    }
    let mut scenario = Scenario::new(
        cluster,
        duration("duration", &file.duration)?.as_millis() as u64,
        file.seed,
    );
    scenario.deployments = deployments;
    scenario.events = scales;
    scenario.start_unix_seconds = file.start_unix_seconds.unwrap_or(1_800_000_000);
    scenario.models = Models {
        disruption: Settings {
            spot_to_spot: file.settings.spot_to_spot_consolidation,
            ..Settings::default()
        },
        ..Models::default()
    };
    Ok(scenario)
}
