//! Status conditions in the form Karpenter's `operatorpkg` writes them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::enums::string_enum;
use crate::error::{Errors, Path};
use crate::rules;

string_enum! {
    pub enum ConditionStatus {
        True = "True",
        False = "False",
        Unknown = "Unknown",
    }
}

/// One status condition; a list of them is keyed by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), length(max = 316), pattern(rules::CONDITION_TYPE.source())))]
    pub type_: String,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0)))]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub last_transition_time: Option<Time>,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(length(max = 1024)))]
    pub reason: String,
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(length(max = 32768)))]
    pub message: String,
}

/// Which conditions a kind has: NodeClaims allow an empty reason and
/// message, NodePools and EC2NodeClasses do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reasons {
    Required,
    MayBeEmpty,
}

pub(crate) fn validate_conditions(
    conditions: &[Condition],
    path: &Path,
    reasons: Reasons,
    errors: &mut Errors,
) {
    for (i, c) in conditions.iter().enumerate() {
        let at = path.index(i);
        if c.type_.is_empty() {
            errors.required(
                &at.field("type"),
                "name the condition type, such as `Ready`",
            );
        } else {
            errors.max_len(&at.field("type"), &c.type_, 316);
            errors.pattern(&at.field("type"), &c.type_, &rules::CONDITION_TYPE);
        }
        c.status.check(&at.field("status"), errors);
        if let Some(g) = c.observed_generation {
            errors.range(&at.field("observedGeneration"), g, Some(0), None);
        }
        if c.last_transition_time.is_none() {
            errors.required(
                &at.field("lastTransitionTime"),
                "give the RFC 3339 time the status last changed",
            );
        }
        errors.max_len(&at.field("reason"), &c.reason, 1024);
        errors.max_len(&at.field("message"), &c.message, 32768);
        match reasons {
            Reasons::Required if c.reason.is_empty() => {
                errors.required(&at.field("reason"), "give a CamelCase reason")
            }
            Reasons::Required => {
                errors.pattern(&at.field("reason"), &c.reason, &rules::CONDITION_REASON)
            }
            Reasons::MayBeEmpty => errors.pattern(
                &at.field("reason"),
                &c.reason,
                &rules::CONDITION_REASON_OR_EMPTY,
            ),
        }
        if let Some(first) = conditions[..i].iter().position(|o| o.type_ == c.type_) {
            errors.push(
                &at.field("type"),
                crate::error::ErrorKind::Duplicate,
                format!("repeats the type `{}` of {}", c.type_, path.index(first)),
                "give each condition type once",
            );
        }
    }
}
