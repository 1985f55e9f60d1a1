//! `karpenter.sh/v1` NodePool: a template for the nodes Dovetail launches,
//! with limits, weight and disruption settings.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::condition::{Condition, Reasons, validate_conditions};
use crate::duration::{GoDuration, NillableDuration};
use crate::enums::string_enum;
use crate::error::{Errors, Path, ValidationErrors};
use crate::node_class_ref::{NodeClassReference, validate_node_class_ref};
use crate::requirement::{NodeSelectorRequirementWithMinValues, validate_requirements};
use crate::rules::{self, KeyUse};
use crate::taint::{Taint, validate_taints};
use crate::validate_quantities;

pub const GROUP: &str = "karpenter.sh";
pub const VERSION: &str = "v1";
pub const API_VERSION: &str = "karpenter.sh/v1";
pub const KIND: &str = "NodePool";

/// Karpenter's default `expireAfter`.
pub const DEFAULT_EXPIRE_AFTER: &str = "720h";
/// Karpenter's default `consolidateAfter` (when `disruption` is left out).
pub const DEFAULT_CONSOLIDATE_AFTER: &str = "0s";
/// Karpenter's default budget.
pub const DEFAULT_BUDGET_NODES: &str = "10%";
pub const MAX_BUDGETS: usize = 50;
pub const MAX_BUDGET_REASONS: usize = 50;
pub const MAX_TEMPLATE_LABELS: usize = 100;

/// A `karpenter.sh/v1` NodePool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    /// `karpenter.sh/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `NodePool`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::metadata")
    )]
    pub metadata: ObjectMeta,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub spec: NodePoolSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodePoolStatus>,
}

/// What a NodePool launches and how its nodes are disrupted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-validations" = crate::crd::cel::node_pool_spec())))]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    /// The NodeClaims this pool launches.
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub template: NodeClaimTemplate,
    /// When and how nodes are disrupted.
    #[serde(default = "Disruption::karpenter_default")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = {"consolidateAfter": "0s"})))]
    pub disruption: Disruption,
    /// Most resources the pool's nodes may add up to (any resource,
    /// including `nodes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::quantities")
    )]
    pub limits: BTreeMap<String, Quantity>,
    /// 1–100; higher pools are tried first; unset counts as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 100)))]
    pub weight: Option<i32>,
    /// A static pool of exactly this many nodes (alpha in Karpenter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub replicas: Option<i64>,
}

/// `spec.template`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct NodeClaimTemplate {
    #[serde(default, skip_serializing_if = "TemplateMetadata::is_empty")]
    pub metadata: TemplateMetadata,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub spec: NodeClaimTemplateSpec,
}

/// Labels and annotations copied to every NodeClaim and node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::template_labels")
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-map-type" = "granular")))]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMetadata {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// `spec.template.spec`: the NodeClaims' spec, less their resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-list-type" = "atomic")))]
    pub taints: Vec<Taint>,
    /// Taints that must be gone before the node counts as initialised; pods
    /// need not tolerate them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(extend("x-kubernetes-list-type" = "atomic")))]
    pub startup_taints: Vec<Taint>,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), schema_with = "crate::crd::schema::node_pool_requirements"))]
    pub requirements: Vec<NodeSelectorRequirementWithMinValues>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), extend("x-kubernetes-validations" = crate::crd::cel::node_class_ref_immutable())))]
    pub node_class_ref: Option<NodeClassReference>,
    /// How long a node lives before it is replaced; `Never` keeps it.
    #[serde(default = "default_expire_after")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = DEFAULT_EXPIRE_AFTER)))]
    pub expire_after: NillableDuration,
    /// How long a draining node waits for its pods before forcing them off;
    /// unset waits for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::DURATION.source())))]
    pub termination_grace_period: Option<GoDuration>,
}

impl Default for NodeClaimTemplateSpec {
    fn default() -> Self {
        Self {
            taints: Vec::new(),
            startup_taints: Vec::new(),
            requirements: Vec::new(),
            node_class_ref: None,
            expire_after: default_expire_after(),
            termination_grace_period: None,
        }
    }
}

pub(crate) fn default_expire_after() -> NillableDuration {
    NillableDuration::new(DEFAULT_EXPIRE_AFTER)
}

string_enum! {
    /// Which nodes consolidation may remove or replace.
    pub enum ConsolidationPolicy {
        WhenEmpty = "WhenEmpty",
        WhenEmptyOrUnderutilized = "WhenEmptyOrUnderutilized",
        Balanced = "Balanced",
    }
}

string_enum! {
    /// The disruption reasons a budget may be limited to.
    pub enum DisruptionReason {
        Underutilized = "Underutilized",
        Empty = "Empty",
        Drifted = "Drifted",
    }
}

/// `spec.disruption`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// How long a node must have had no pod added or removed before
    /// consolidation considers it; `Never` turns consolidation off.
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub consolidate_after: NillableDuration,
    #[serde(default = "default_consolidation_policy")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = "WhenEmptyOrUnderutilized")))]
    pub consolidation_policy: ConsolidationPolicy,
    /// The most restrictive active budget applies; none limits nothing.
    #[serde(default = "default_budgets")]
    #[cfg_attr(feature = "kube", schemars(length(max = MAX_BUDGETS), extend("x-kubernetes-list-type" = "atomic", "x-dovetail-default" = [{"nodes": DEFAULT_BUDGET_NODES}], "x-kubernetes-validations" = crate::crd::cel::budgets())))]
    pub budgets: Vec<Budget>,
}

impl Disruption {
    /// What Karpenter fills in when `disruption` is left out.
    pub fn karpenter_default() -> Self {
        Self {
            consolidate_after: NillableDuration::new(DEFAULT_CONSOLIDATE_AFTER),
            consolidation_policy: default_consolidation_policy(),
            budgets: default_budgets(),
        }
    }
}

impl Default for Disruption {
    fn default() -> Self {
        Self::karpenter_default()
    }
}

fn default_consolidation_policy() -> ConsolidationPolicy {
    ConsolidationPolicy::WhenEmptyOrUnderutilized
}

fn default_budgets() -> Vec<Budget> {
    vec![Budget::nodes(DEFAULT_BUDGET_NODES)]
}

fn default_budget_nodes() -> String {
    DEFAULT_BUDGET_NODES.into()
}

/// At most `nodes` disrupted at once, for `reasons` (all when empty), while
/// the `schedule` window of `duration` is open (always without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "kube", schemars(length(max = MAX_BUDGET_REASONS), extend("x-kubernetes-list-type" = "set")))]
    pub reasons: Vec<DisruptionReason>,
    /// A node count (`5`) or a percentage of the pool's nodes (`10%`,
    /// rounded up).
    #[serde(default = "default_budget_nodes")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), pattern(rules::BUDGET_NODES.source()), extend("x-dovetail-default" = DEFAULT_BUDGET_NODES)))]
    pub nodes: String,
    /// A cron schedule in UTC; the window opens at each hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::BUDGET_SCHEDULE.source())))]
    pub schedule: Option<String>,
    /// How long each window stays open (hours and minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::BUDGET_DURATION.source())))]
    pub duration: Option<GoDuration>,
}

impl Budget {
    /// Always active, for every reason.
    pub fn nodes(nodes: &str) -> Self {
        Self {
            reasons: Vec::new(),
            nodes: nodes.into(),
            schedule: None,
            duration: None,
        }
    }
}

/// `status`, as Karpenter's controllers write it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Sum over the pool's nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::quantities")
    )]
    pub resources: BTreeMap<String, Quantity>,
    /// The pool's node count.
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-default" = 0)))]
    pub nodes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class_observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(schema_with = "crate::crd::schema::node_pool_conditions")
    )]
    pub conditions: Vec<Condition>,
}

top_level!(NodePool, NodePoolSpec);

impl NodePool {
    /// Every OpenAPI and CEL rule of Karpenter's CRD, and the checks its
    /// controller makes before it uses the pool.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = self.type_errors();
        let spec = Path::root("spec");
        validate_spec(&self.spec, &spec, &mut errors);
        if let Some(status) = &self.status {
            let at = Path::root("status");
            validate_quantities(&status.resources, &at.field("resources"), &mut errors);
            validate_conditions(
                &status.conditions,
                &at.field("conditions"),
                Reasons::Required,
                &mut errors,
            );
        }
        errors.into_result(KIND, self.name())
    }
}

fn validate_spec(spec: &NodePoolSpec, path: &Path, errors: &mut Errors) {
    let template = path.field("template");
    validate_labels(
        &spec.template.metadata.labels,
        &template.field("metadata").field("labels"),
        errors,
    );
    let t = &spec.template.spec;
    let tspec = template.field("spec");
    validate_requirements(
        &t.requirements,
        &tspec.field("requirements"),
        KeyUse::NodePool,
        errors,
    );
    validate_taints(
        &t.taints,
        &tspec.field("taints"),
        &t.startup_taints,
        &tspec.field("startupTaints"),
        errors,
    );
    validate_node_class_ref(
        t.node_class_ref.as_ref(),
        &tspec.field("nodeClassRef"),
        errors,
    );
    errors.pattern(
        &tspec.field("expireAfter"),
        t.expire_after.as_str(),
        &rules::NILLABLE_DURATION,
    );
    if let Some(d) = &t.termination_grace_period {
        errors.pattern(
            &tspec.field("terminationGracePeriod"),
            d.as_str(),
            &rules::DURATION,
        );
    }
    validate_disruption(&spec.disruption, &path.field("disruption"), errors);
    validate_quantities(&spec.limits, &path.field("limits"), errors);
    if let Some(w) = spec.weight {
        errors.range(&path.field("weight"), i64::from(w), Some(1), Some(100));
    }
    if let Some(r) = spec.replicas {
        errors.range(&path.field("replicas"), r, Some(0), None);
        if spec.limits.keys().any(|k| k != "nodes") {
            errors.forbidden(
                &path.field("limits"),
                "only `limits.nodes` is supported on static NodePools (with `replicas`)",
                "remove the other limits, or remove `replicas`",
            );
        }
        if spec.weight.is_some() {
            errors.forbidden(
                &path.field("weight"),
                "`weight` is not supported on static NodePools (with `replicas`)",
                "remove `weight`, or remove `replicas`",
            );
        }
    }
}

fn validate_labels(labels: &BTreeMap<String, String>, path: &Path, errors: &mut Errors) {
    errors.max_items(path, labels.len(), MAX_TEMPLATE_LABELS, "labels");
    for (k, v) in labels {
        let at = path.key(k);
        if let Some(problem) = rules::qualified_name_problem(k) {
            errors.invalid(
                &at,
                format!("key `{k}` is not a valid label key: {problem}"),
                "use a key such as `example.com/team`",
            );
        }
        if let Some((message, fix)) = rules::restricted_key(k, KeyUse::NodePool) {
            errors.forbidden(&at, message, fix);
        }
        errors.max_len(&at, v, 63);
        errors.pattern(&at, v, &rules::LABEL_VALUE);
    }
}

fn validate_disruption(d: &Disruption, path: &Path, errors: &mut Errors) {
    let after = path.field("consolidateAfter");
    if d.consolidate_after.is_set() {
        errors.pattern(
            &after,
            d.consolidate_after.as_str(),
            &rules::NILLABLE_DURATION,
        );
    } else {
        errors.required(
            &after,
            "give a duration such as `30s`, `0s` to consolidate at once, or `Never`",
        );
    }
    d.consolidation_policy
        .check(&path.field("consolidationPolicy"), errors);
    let budgets = path.field("budgets");
    errors.max_items(&budgets, d.budgets.len(), MAX_BUDGETS, "budgets");
    for (i, b) in d.budgets.iter().enumerate() {
        let at = budgets.index(i);
        errors.pattern(&at.field("nodes"), &b.nodes, &rules::BUDGET_NODES);
        let reasons = at.field("reasons");
        errors.max_items(&reasons, b.reasons.len(), MAX_BUDGET_REASONS, "reasons");
        for (j, r) in b.reasons.iter().enumerate() {
            r.check(&reasons.index(j), errors);
            if b.reasons[..j].contains(r) {
                errors.push(
                    &reasons.index(j),
                    crate::error::ErrorKind::Duplicate,
                    format!("lists {r} twice"),
                    "list each reason once",
                );
            }
        }
        match (&b.schedule, &b.duration) {
            (Some(s), Some(d)) => {
                let schedule = at.field("schedule");
                if rules::BUDGET_SCHEDULE.is_match(s) {
                    // The CRD only checks the shape; Karpenter's parser decides.
                    if let Err(e) = s.parse::<dovetail_core::disruption::budgets::Schedule>() {
                        // Core's message ends with the same hint.
                        let text = e.to_string();
                        let problem = text.rsplit_once("; ").map_or(text.as_str(), |(p, _)| p);
                        errors.invalid(&schedule, problem, rules::BUDGET_SCHEDULE.hint());
                    }
                } else {
                    errors.pattern(&schedule, s, &rules::BUDGET_SCHEDULE);
                }
                errors.pattern(&at.field("duration"), d.as_str(), &rules::BUDGET_DURATION);
            }
            (Some(_), None) => errors.required(
                &at.field("duration"),
                "`schedule` must be set with `duration`: give how long each window lasts, such as `8h`",
            ),
            (None, Some(_)) => errors.required(
                &at.field("schedule"),
                "`duration` must be set with `schedule`: give a cron schedule such as `0 9 * * mon-fri`, or remove `duration`",
            ),
            (None, None) => {}
        }
    }
}
