//! Label selectors and node selector requirements, checked as the API server
//! checks them, with Karpenter's label aliases.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use dovetail_core::labels;
use dovetail_core::model::{self, SelectorOperator, SelectorRequirement, sorted_labels};
use dovetail_core::requirements::{
    NodeSelectorRequirement, Operator, Requirement, RequirementError,
};
use dovetail_core::sym::Sym;

use crate::error::{ErrorKind, Path};

use super::report::Report;

/// Deprecated label keys and the keys Karpenter reads them as (core's
/// `NormalizedLabels`, with the AWS provider's EBS CSI zone).
const ALIASES: &[(&str, &str)] = &[
    ("failure-domain.beta.kubernetes.io/zone", labels::ZONE),
    ("failure-domain.beta.kubernetes.io/region", labels::REGION),
    ("beta.kubernetes.io/arch", labels::ARCH),
    ("beta.kubernetes.io/os", labels::OS),
    ("beta.kubernetes.io/instance-type", labels::INSTANCE_TYPE),
    ("topology.ebs.csi.aws.com/zone", labels::ZONE),
];

/// The key Karpenter reads a node selector or affinity key as: deprecated
/// aliases become their current label.
pub fn normalized_label(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |&(_, to)| to)
}

/// A selector that matches no labels: what Kubernetes reads a missing
/// `labelSelector` as in affinity terms, spread constraints and budgets.
pub(crate) fn nothing() -> model::LabelSelector {
    model::LabelSelector {
        match_labels: Vec::new(),
        // `In` no values: no label value is in the empty set.
        match_expressions: vec![SelectorRequirement {
            key: Sym::new(""),
            operator: SelectorOperator::In,
            values: Vec::new(),
        }],
    }
}

/// A label selector; `None` matches nothing.
pub(crate) fn label_selector(
    selector: Option<&meta::LabelSelector>,
    path: &Path,
    report: &mut Report,
) -> model::LabelSelector {
    let Some(s) = selector else {
        return nothing();
    };
    let match_labels = sorted_labels(
        s.match_labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut match_expressions = Vec::new();
    for (i, e) in s.match_expressions.iter().flatten().enumerate() {
        let at = path.field("matchExpressions").index(i);
        let values = e.values.as_deref().unwrap_or_default();
        let (operator, needs_values) = match e.operator.as_str() {
            "In" => (SelectorOperator::In, true),
            "NotIn" => (SelectorOperator::NotIn, true),
            "Exists" => (SelectorOperator::Exists, false),
            "DoesNotExist" => (SelectorOperator::DoesNotExist, false),
            other => {
                report.not_supported(
                    &at.field("operator"),
                    other,
                    &["In", "NotIn", "Exists", "DoesNotExist"],
                );
                continue;
            }
        };
        if e.key.is_empty() {
            report.required(&at.field("key"), "name the label the expression tests");
            continue;
        }
        if needs_values && values.is_empty() {
            report.required(
                &at.field("values"),
                format!("list the values `{}` allows", e.operator),
            );
            continue;
        }
        if !needs_values && !values.is_empty() {
            report.error(
                &at.field("values"),
                ErrorKind::Forbidden,
                format!("`{}` takes no values", e.operator),
                "remove `values`, or use In or NotIn",
            );
            continue;
        }
        match_expressions.push(SelectorRequirement {
            key: Sym::new(&e.key),
            operator,
            values: values.iter().map(|v| Sym::new(v)).collect(),
        });
    }
    model::LabelSelector {
        match_labels,
        match_expressions,
    }
}

/// A node selector term's expressions as core requirements, each checked as
/// the engines read it; `matchFields` is the caller's to report.
pub(crate) fn node_selector_term(
    term: &k8s::NodeSelectorTerm,
    path: &Path,
    report: &mut Report,
) -> Vec<NodeSelectorRequirement> {
    term.match_expressions
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, r)| node_requirement(r, &path.field("matchExpressions").index(i), report))
        .collect()
}

/// The operators a node selector requirement may have.
pub(crate) const NODE_OPERATORS: [&str; 6] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];

/// A node selector requirement's operator, if Kubernetes has it.
pub(crate) fn node_operator(op: &str) -> Option<Operator> {
    Some(match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::Gt,
        "Lt" => Operator::Lt,
        _ => return None,
    })
}

/// One node selector requirement, with its key normalised.
pub(crate) fn node_requirement(
    r: &k8s::NodeSelectorRequirement,
    path: &Path,
    report: &mut Report,
) -> Option<NodeSelectorRequirement> {
    let Some(operator) = node_operator(&r.operator) else {
        report.not_supported(&path.field("operator"), &r.operator, &NODE_OPERATORS);
        return None;
    };
    let term = NodeSelectorRequirement {
        key: normalized_label(&r.key).to_owned(),
        operator,
        values: r.values.clone().unwrap_or_default(),
        min_values: None,
    };
    checked(term, path, report)
}

/// `term` if the engines can read it; otherwise an error at `path`.
pub(crate) fn checked(
    term: NodeSelectorRequirement,
    path: &Path,
    report: &mut Report,
) -> Option<NodeSelectorRequirement> {
    match Requirement::from_term(&term) {
        Ok(_) => Some(term),
        Err(e) => {
            let (field, message, fix) = match &e {
                RequirementError::EmptyKey => (
                    "key",
                    "is empty".to_owned(),
                    format!("name a node label such as `{}`", labels::ZONE),
                ),
                RequirementError::InNeedsValues { op, .. } => (
                    "values",
                    format!("`{op}` needs at least one value"),
                    "list the values it allows".to_owned(),
                ),
                RequirementError::NoValuesAllowed { op, .. } => (
                    "values",
                    format!("`{op}` takes no values"),
                    "remove `values`, or use In or NotIn".to_owned(),
                ),
                RequirementError::NeedsInteger { op, values, .. } => (
                    "values",
                    format!("`{op}` needs exactly one non-negative integer, got {values:?}"),
                    "give one whole number, e.g. `values: [\"4\"]`".to_owned(),
                ),
                RequirementError::MinValuesTooLarge { .. } => {
                    ("values", e.to_string(), "lower minValues".to_owned())
                }
            };
            report.error(&path.field(field), ErrorKind::Invalid, message, fix);
            None
        }
    }
}
