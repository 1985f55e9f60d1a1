//! Taints as NodePools and NodeClaims carry them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::enums::string_enum;
use crate::error::{ErrorKind, Errors, Path};
use crate::rules;

string_enum! {
    pub enum TaintEffect {
        NoSchedule = "NoSchedule",
        PreferNoSchedule = "PreferNoSchedule",
        NoExecute = "NoExecute",
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    #[serde(default)]
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true), length(min = 1), pattern(rules::QUALIFIED_KEY.source())))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(pattern(rules::QUALIFIED_KEY.source())))]
    pub value: Option<String>,
    #[cfg_attr(feature = "kube", schemars(extend("x-dovetail-required" = true)))]
    pub effect: TaintEffect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<Time>,
}

impl Taint {
    pub fn new(key: &str, value: Option<&str>, effect: TaintEffect) -> Self {
        Self {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect,
            time_added: None,
        }
    }
}

/// Checks `taints` at `taints_path` and `startup` at `startup_path`, and
/// that no key and effect repeats across both lists.
pub(crate) fn validate_taints(
    taints: &[Taint],
    taints_path: &Path,
    startup: &[Taint],
    startup_path: &Path,
    errors: &mut Errors,
) {
    let mut seen: Vec<(&str, &str, Path)> = Vec::new();
    for (list, path) in [(taints, taints_path), (startup, startup_path)] {
        for (i, t) in list.iter().enumerate() {
            let at = path.index(i);
            if t.key.is_empty() {
                errors.required(
                    &at.field("key"),
                    "name the taint key, such as `example.com/gpu`",
                );
            } else {
                errors.pattern(&at.field("key"), &t.key, &rules::QUALIFIED_KEY);
            }
            if let Some(v) = &t.value {
                errors.pattern(&at.field("value"), v, &rules::QUALIFIED_KEY);
            }
            t.effect.check(&at.field("effect"), errors);
            if let Some((_, _, first)) = seen
                .iter()
                .find(|(k, e, _)| *k == t.key && *e == t.effect.as_str())
            {
                errors.push(
                    &at,
                    ErrorKind::Duplicate,
                    format!(
                        "repeats the key `{}` and effect {} of {first}",
                        t.key, t.effect
                    ),
                    "give each key and effect once across taints and startupTaints",
                );
            } else {
                seen.push((&t.key, t.effect.as_str(), at));
            }
        }
    }
}
