//! Kubernetes manifests in scenario files: multi-document YAML as `kubectl
//! get -o yaml` prints it, `List` and `*List` kinds included, written inline
//! or in files the scenario names. This module finds the objects and reads
//! each into its `k8s-openapi` or `dovetail-api` type; errors name the
//! document, the object and the field. Converting them to the engines'
//! values is `dovetail-api`'s ([`objects`](crate::objects)).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::scenario::{ScenarioError, invalid};
use crate::unknown_fields::Step;

/// One Kubernetes object of a manifest, and where it is written.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// For messages: `cluster[2]`, `cluster[0].items[4]`,
    /// `shop/cluster.yaml document 1`, `events[3].apply`.
    pub at: String,
    /// Its path from the scenario file's root, when written there (for
    /// line numbers).
    pub steps: Option<Vec<Step>>,
    pub value: Value,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

impl Doc {
    pub fn kind(&self) -> &str {
        str_at(&self.value, &["kind"]).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        str_at(&self.value, &["apiVersion"]).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        str_at(&self.value, &["metadata", "name"]).unwrap_or("")
    }

    /// `metadata.namespace` as written (`None` when left out).
    pub fn namespace(&self) -> Option<&str> {
        str_at(&self.value, &["metadata", "namespace"]).filter(|n| !n.is_empty())
    }

    /// The object as `kubectl` names it: `Pod shop/web-0`, `Node ip-10-0-1-7`.
    pub fn object(&self) -> String {
        let name = match self.name() {
            "" => "(unnamed)",
            n => n,
        };
        match (self.namespace(), namespaced(self.kind())) {
            (Some(ns), _) => format!("{} {ns}/{name}", self.kind()),
            (None, true) => format!("{} default/{name}", self.kind()),
            (None, false) => format!("{} {name}", self.kind()),
        }
    }

    /// Where a field of the object is, for an error or a warning:
    /// `cluster[2] (Pod shop/web-0) spec.nodeName`.
    pub fn field(&self, path: &str) -> String {
        if path.is_empty() {
            format!("{} ({})", self.at, self.object())
        } else {
            format!("{} ({}) {path}", self.at, self.object())
        }
    }

    /// Reads the object as `T`, listing in `ignored` the fields `T` does
    /// not have; an error names the document, the object and the field.
    pub fn read_lenient<T: DeserializeOwned>(
        &self,
        ignored: &mut Vec<Vec<Step>>,
    ) -> Result<T, ScenarioError> {
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(&self.value, &mut track);
        serde_ignored::deserialize(de, |p| ignored.push(crate::unknown_fields::steps(&p)))
            .map_err(|e| self.read_error(track, e))
    }

    fn read_error(&self, track: serde_path_to_error::Track, e: serde_json::Error) -> ScenarioError {
        let path = track.path().to_string();
        let path = if path == "." { String::new() } else { path };
        invalid(self.field(&path), e.to_string())
    }
}

/// Whether objects of `kind` live in a namespace (kinds the simulator
/// reads; anything else is taken as namespaced, as most kinds are).
pub(crate) fn namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Node"
            | "Namespace"
            | "NodePool"
            | "NodeClaim"
            | "EC2NodeClass"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "RuntimeClass"
    )
}

/// The objects of a multi-document YAML text (`---` between documents),
/// `List`s expanded. Documents are named `{at} document N`, from 1.
pub(crate) fn documents(text: &str, at: &str) -> Result<Vec<Doc>, ScenarioError> {
    crate::scenario::too_deep(text).map_err(|e| invalid(at, e.to_string()))?;
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let at = format!("{at} document {}", i + 1);
        let value =
            serde_norway::Value::deserialize(doc).map_err(|e| invalid(&at, e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let value = json(value, &at)?;
        expand(
            Doc {
                at,
                steps: None,
                value,
            },
            &mut out,
        )?;
    }
    Ok(out)
}

/// An object written in the scenario file at `steps`, `List`s expanded.
pub(crate) fn inline(
    value: serde_norway::Value,
    at: String,
    steps: Vec<Step>,
) -> Result<Vec<Doc>, ScenarioError> {
    let value = json(value, &at)?;
    let mut out = Vec::new();
    expand(
        Doc {
            at,
            steps: Some(steps),
            value,
        },
        &mut out,
    )?;
    Ok(out)
}

fn json(value: serde_norway::Value, at: &str) -> Result<Value, ScenarioError> {
    let mut v = serde_json::to_value(value).map_err(|e| {
        invalid(
            at,
            format!("is not a Kubernetes object as JSON can hold it: {e}"),
        )
    })?;
    quantities_as_strings(&mut v);
    Ok(v)
}

/// Resource lists whose quantities are written as bare numbers (`cpu: 2`),
/// which the API server accepts, as the strings the types expect.
fn quantities_as_strings(v: &mut Value) {
    const LISTS: &[&str] = &[
        "requests",
        "limits",
        "overhead",
        "podFixed",
        "capacity",
        "allocatable",
    ];
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if LISTS.contains(&k.as_str())
                    && let Value::Object(list) = child
                {
                    for q in list.values_mut() {
                        if let Value::Number(n) = q {
                            *q = Value::String(n.to_string());
                        }
                    }
                }
                quantities_as_strings(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(quantities_as_strings),
        _ => {}
    }
}

/// A document, or the items of a `List` (`kind: List`, or `PodList` and the
/// like, whose items may leave out their kind and apiVersion).
fn expand(doc: Doc, out: &mut Vec<Doc>) -> Result<(), ScenarioError> {
    if !doc.value.is_object() {
        return Err(invalid(
            &doc.at,
            "is not a Kubernetes object: give a map with apiVersion, kind and metadata",
        ));
    }
    let kind = doc.kind().to_owned();
    if kind.is_empty() {
        return Err(invalid(
            format!("{}.kind", doc.at),
            "is required: name the object's kind, e.g. `kind: Pod`",
        ));
    }
    let item_kind = match kind.strip_suffix("List") {
        Some("") => None,
        Some(k) if doc.value.get("items").is_some() => Some(k.to_owned()),
        _ => {
            out.push(doc);
            return Ok(());
        }
    };
    let Some(items) = doc.value.get("items").and_then(Value::as_array) else {
        return Err(invalid(
            format!("{}.items", doc.at),
            format!("a {kind} holds its objects in `items`, a list"),
        ));
    };
    let api_version = doc.api_version().to_owned();
    for (i, item) in items.iter().enumerate() {
        let mut item = item.clone();
        if let (Some(k), Some(obj)) = (&item_kind, item.as_object_mut()) {
            obj.entry("kind")
                .or_insert_with(|| Value::String(k.clone()));
            obj.entry("apiVersion")
                .or_insert_with(|| Value::String(api_version.clone()));
        }
        let steps = doc.steps.clone().map(|mut s| {
            s.push(Step::Key("items".into()));
            s.push(Step::Index(i));
            s
        });
        expand(
            Doc {
                at: format!("{}.items[{i}]", doc.at),
                steps,
                value: item,
            },
            out,
        )?;
    }
    Ok(())
}

/// RFC 7386 JSON merge patch, as `kubectl patch --type merge` applies it:
/// maps merge key by key, `null` removes a key, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("made a map above")
    };
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The latest time a manifest records (creation, start, condition and
/// heartbeat times), in Unix seconds: about when it was dumped.
pub(crate) fn latest_time(v: &Value) -> Option<u64> {
    match v {
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, child)| match child {
                Value::String(s)
                    if (k.ends_with("Time") || k.ends_with("Timestamp"))
                        && k != "deletionTimestamp" =>
                {
                    s.parse::<k8s_openapi::jiff::Timestamp>()
                        .ok()
                        .and_then(|t| u64::try_from(t.as_second()).ok())
                }
                _ => latest_time(child),
            })
            .max(),
        Value::Array(items) => items.iter().filter_map(latest_time).max(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_maps_removes_nulls_and_replaces_the_rest() {
        let mut v = json!({"spec": {"replicas": 3, "paused": true, "list": [1, 2]}, "x": 1});
        merge_patch(
            &mut v,
            &json!({"spec": {"replicas": 5, "paused": null, "list": [3]}, "y": {"z": 1}}),
        );
        assert_eq!(
            v,
            json!({"spec": {"replicas": 5, "list": [3]}, "x": 1, "y": {"z": 1}})
        );
    }

    #[test]
    fn lists_expand_with_their_item_kind() {
        let docs = documents(
            "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: n}}\n",
            "f.yaml",
        )
        .unwrap();
        let got: Vec<(String, String, String)> = docs
            .iter()
            .map(|d| (d.at.clone(), d.kind().to_owned(), d.object()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "f.yaml document 1.items[0]".into(),
                    "Pod".into(),
                    "Pod default/a".into()
                ),
                (
                    "f.yaml document 3.items[0]".into(),
                    "Node".into(),
                    "Node n".into()
                ),
            ]
        );
    }

    #[test]
    fn the_latest_recorded_time_is_the_dump_time() {
        let v = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z", "deletionTimestamp": "2030-01-01T00:00:00Z"},
            "status": {"conditions": [{"lastHeartbeatTime": "2026-01-02T00:00:00Z"}]}});
        assert_eq!(latest_time(&v), Some(1_767_312_000));
    }
}
