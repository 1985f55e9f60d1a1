//! Karpenter's `NodeSelectorRequirementWithMinValues` and the checks its
//! CRD (OpenAPI and CEL) and its run-time validation make.

use serde::{Deserialize, Serialize};

use crate::enums::string_enum;
use crate::error::{ErrorKind, Errors, Path};
use crate::rules::{self, KeyUse};

string_enum! {
    /// A requirement's operator. `Gte` and `Lte` are Karpenter's own.
    pub enum Operator {
        Gte = "Gte",
        Lte = "Lte",
        In = "In",
        NotIn = "NotIn",
        Exists = "Exists",
        DoesNotExist = "DoesNotExist",
        Gt = "Gt",
        Lt = "Lt",
    }
}

/// The most requirements a NodePool or NodeClaim may have.
pub const MAX_REQUIREMENTS: usize = 100;
/// `minValues` bounds.
pub const MIN_VALUES_RANGE: (i64, i64) = (1, 50);
pub const MAX_KEY_LENGTH: usize = 316;
pub const MAX_LABEL_VALUE_LENGTH: usize = 63;

/// A node selector requirement with Karpenter's `minValues`: at least that
/// many distinct values of `key` among the instance types a launch may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirementWithMinValues {
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub key: String,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Alpha in Karpenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_values: Option<i64>,
}

impl NodeSelectorRequirementWithMinValues {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Self {
        Self {
            key: key.to_owned(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            min_values: None,
        }
    }
}

/// Label keys whose values Karpenter knows: an `In` must name at least one
/// (and `minValues`) of them.
fn known_values(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "karpenter.sh/capacity-type" => Some(&["on-demand", "spot", "reserved"]),
        "karpenter.k8s.aws/instance-tenancy" => Some(&["default", "dedicated"]),
        _ => None,
    }
}

/// Checks a requirements list at `path`.
pub(crate) fn validate_requirements(
    requirements: &[NodeSelectorRequirementWithMinValues],
    path: &Path,
    used: KeyUse,
    errors: &mut Errors,
) {
    errors.max_items(path, requirements.len(), MAX_REQUIREMENTS, "requirements");
    for (i, r) in requirements.iter().enumerate() {
        validate_requirement(r, &path.index(i), used, errors);
    }
}

fn validate_requirement(
    r: &NodeSelectorRequirementWithMinValues,
    path: &Path,
    used: KeyUse,
    errors: &mut Errors,
) {
    let key = path.field("key");
    if r.key.is_empty() {
        errors.required(
            &key,
            "name the label key, such as `karpenter.sh/capacity-type`",
        );
    } else {
        errors.max_len(&key, &r.key, MAX_KEY_LENGTH);
        errors.pattern(&key, &r.key, &rules::QUALIFIED_KEY);
        if let Some((message, fix)) = rules::restricted_key(&r.key, used) {
            errors.forbidden(&key, message, fix);
        }
    }
    let operator = path.field("operator");
    r.operator.check(&operator, errors);
    let values = path.field("values");
    for (j, v) in r.values.iter().enumerate() {
        let at = values.index(j);
        errors.max_len(&at, v, MAX_LABEL_VALUE_LENGTH);
        errors.pattern(&at, v, &rules::LABEL_VALUE);
    }
    match r.operator {
        Operator::In if r.values.is_empty() => errors.required(
            &values,
            "operator In needs at least one value; use Exists to allow any value",
        ),
        Operator::Gt | Operator::Lt | Operator::Gte | Operator::Lte => {
            let one_integer =
                matches!(&r.values[..], [v] if v.parse::<i64>().is_ok_and(|n| n >= 0));
            if !one_integer {
                errors.invalid(
                    &values,
                    format!(
                        "operator {} takes exactly one value, a non-negative integer; got {:?}",
                        r.operator, r.values
                    ),
                    "give one whole number such as `4`",
                );
            }
        }
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => errors.invalid(
            &values,
            format!("operator {} takes no values", r.operator),
            "remove the values, or use In or NotIn",
        ),
        _ => {}
    }
    let min_values = path.field("minValues");
    if let Some(m) = r.min_values {
        let (lo, hi) = MIN_VALUES_RANGE;
        errors.range(&min_values, m, Some(lo), Some(hi));
        if r.operator == Operator::In && (r.values.len() as i64) < m {
            errors.push(
                &min_values,
                ErrorKind::Invalid,
                format!(
                    "is {m} but only {} value{} listed",
                    r.values.len(),
                    if r.values.len() == 1 { " is" } else { "s are" }
                ),
                "list at least minValues values, or lower minValues",
            );
        }
    }
    if r.operator == Operator::In
        && let Some(known) = known_values(&r.key)
    {
        let valid = r
            .values
            .iter()
            .filter(|v| known.contains(&v.as_str()))
            .count();
        let needed = r.min_values.unwrap_or(1).max(1);
        if (valid as i64) < needed {
            errors.invalid(
                &values,
                format!(
                    "has {valid} of the values Karpenter knows for `{}`, fewer than {needed}",
                    r.key
                ),
                format!("use {}", known.join(", ")),
            );
        }
    }
}
