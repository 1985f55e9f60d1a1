//! Field validation (`fieldValidation=Strict|Warn|Ignore`): unknown and duplicate fields in a
//! written object are refused (Strict, 400), reported in `Warning` headers (Warn, the server's
//! default) or ignored, as upstream's strict decoding does.
//!
//! Built-in kinds are checked against their k8s-openapi types (every field the type ignores
//! is unknown); custom resources against their CRD's structural schema, whose unknown fields
//! are also pruned before the object is stored.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resource::ResourceInfo;
use crate::status::ApiError;

/// What to do with unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Directive {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl Directive {
    /// The `fieldValidation` query parameter; absent means Warn.
    pub fn parse(param: Option<&str>) -> Result<Self, ApiError> {
        match param {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation={other:?} is not one of Ignore, Warn, Strict"
            ))),
        }
    }
}

/// One strict-decoding problem, worded as upstream words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unknown(String),
    Duplicate(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(p) => write!(f, "unknown field {p:?}"),
            Self::Duplicate(p) => write!(f, "duplicate field {p:?}"),
        }
    }
}

/// Applies the directive: Strict refuses with upstream's 400, Warn returns one warning per
/// problem, Ignore returns none.
pub fn enforce(
    directive: Directive,
    res: &ResourceInfo,
    problems: &[Problem],
) -> Result<Vec<String>, ApiError> {
    if problems.is_empty() || directive == Directive::Ignore {
        return Ok(Vec::new());
    }
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    match directive {
        Directive::Strict => Err(ApiError::BadRequest(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = res.kind,
            version = res.version,
        ))),
        _ => Ok(list),
    }
}

/// The `Warning` header value for a warning (RFC 7234 form, code 299).
pub fn warning_header(text: &str) -> String {
    format!(
        "299 - \"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

fn display_path(path: &serde_ignored::Path<'_>) -> String {
    match path {
        serde_ignored::Path::Root => String::new(),
        serde_ignored::Path::Seq { parent, index } => format!("{}[{index}]", display_path(parent)),
        serde_ignored::Path::Map { parent, key } => {
            let p = display_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => display_path(parent),
    }
}

/// Fields of `obj` that `T` does not know. `None` when `obj` does not decode as `T` at all
/// (a type error this server does not check).
fn ignored_by<T: DeserializeOwned>(obj: &Value) -> Option<Vec<String>> {
    let mut unknown = Vec::new();
    let r: Result<T, _> = serde_ignored::deserialize(obj, |p| unknown.push(display_path(&p)));
    r.ok().map(|_| unknown)
}

/// Unknown fields of an object of a built-in kind, by its k8s-openapi type.
pub fn unknown_builtin(res: &ResourceInfo, obj: &Value) -> Vec<String> {
    use k8s_openapi::api::{apps, coordination, core, events, policy, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let mut obj = obj.clone();
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(res.api_version()));
        m.insert("kind".into(), Value::String(res.kind.clone()));
    }
    let found = match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => ignored_by::<core::v1::Pod>(&obj),
        ("", "Node") => ignored_by::<core::v1::Node>(&obj),
        ("", "Namespace") => ignored_by::<core::v1::Namespace>(&obj),
        ("", "ConfigMap") => ignored_by::<core::v1::ConfigMap>(&obj),
        ("", "Event") => ignored_by::<core::v1::Event>(&obj),
        ("", "Service") => ignored_by::<core::v1::Service>(&obj),
        ("apps", "Deployment") => ignored_by::<apps::v1::Deployment>(&obj),
        ("apps", "ReplicaSet") => ignored_by::<apps::v1::ReplicaSet>(&obj),
        ("apps", "DaemonSet") => ignored_by::<apps::v1::DaemonSet>(&obj),
        ("policy", "PodDisruptionBudget") => ignored_by::<policy::v1::PodDisruptionBudget>(&obj),
        ("coordination.k8s.io", "Lease") => ignored_by::<coordination::v1::Lease>(&obj),
        ("events.k8s.io", "Event") => ignored_by::<events::v1::Event>(&obj),
        ("rbac.authorization.k8s.io", "Role") => ignored_by::<rbac::v1::Role>(&obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => ignored_by::<rbac::v1::RoleBinding>(&obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => ignored_by::<rbac::v1::ClusterRole>(&obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            ignored_by::<rbac::v1::ClusterRoleBinding>(&obj)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            ignored_by::<apiext::CustomResourceDefinition>(&obj)
        }
        _ => None,
    };
    found.unwrap_or_default()
}

/// Unknown fields of `metadata`, by ObjectMeta.
fn unknown_metadata(meta: &Value, prefix: &str) -> Vec<String> {
    ignored_by::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(meta)
        .unwrap_or_default()
        .into_iter()
        .map(|p| format!("{prefix}.{p}"))
        .collect()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Removes the fields of a custom resource its CRD's structural schema does not allow
/// (apiextensions structural pruning) and returns their paths.
pub fn prune_custom(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(obj, schema, "", true, &mut out);
    out
}

fn prune_at(v: &mut Value, s: &Value, path: &str, embedded: bool, out: &mut Vec<String>) {
    let preserve = s
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties");
            let mut gone = Vec::new();
            for (k, child) in m.iter_mut() {
                let p = join(path, k);
                if embedded && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if embedded && k == "metadata" {
                    out.extend(unknown_metadata(child, &p));
                    prune_metadata(child);
                    continue;
                }
                if let Some(cs) = props.and_then(|pr| pr.get(k)) {
                    let child_embedded = cs
                        .get("x-kubernetes-embedded-resource")
                        .and_then(Value::as_bool)
                        == Some(true);
                    prune_at(child, cs, &p, child_embedded, out);
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    prune_at(child, a, &p, false, out);
                } else if preserve || additional.and_then(Value::as_bool) == Some(true) {
                    continue;
                } else {
                    out.push(p);
                    gone.push(k.clone());
                }
            }
            for k in gone {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item, is, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Drops the fields ObjectMeta does not have.
fn prune_metadata(meta: &mut Value) {
    let known: Option<Value> = serde_json::from_value::<
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    >(meta.clone())
    .ok()
    .and_then(|m| serde_json::to_value(m).ok());
    if let (Some(Value::Object(k)), Value::Object(m)) = (known, meta) {
        m.retain(|key, _| k.contains_key(key));
    }
}

/// Keys that appear twice in the same JSON object of `body`, by path. Bodies that are not
/// JSON (YAML) are checked as YAML mappings.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    if serde::de::DeserializeSeed::deserialize(
        Dups {
            path: String::new(),
            out: &mut out,
        },
        &mut de,
    )
    .is_err()
    {
        return Vec::new();
    }
    out
}

struct Dups<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Dups<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Dups<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let seed = Dups {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let p = join(&self.path, &key);
            if !seen.insert(key) {
                self.out.push(p.clone());
            }
            map.next_value_seed(Dups {
                path: p,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// Everything strict decoding would report about a written object: duplicate keys in `body`
/// (when the object came from one) and unknown fields of `obj`.
pub fn problems(
    res: &ResourceInfo,
    crd_schema: Option<&Value>,
    obj: &Value,
    body: Option<&[u8]>,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = body
        .map(duplicate_fields)
        .unwrap_or_default()
        .into_iter()
        .map(Problem::Duplicate)
        .collect();
    let unknown = if res.builtin {
        unknown_builtin(res, obj)
    } else {
        match crd_schema {
            Some(s) => prune_custom(&mut obj.clone(), s),
            None => Vec::new(),
        }
    };
    out.extend(unknown.into_iter().map(Problem::Unknown));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;
    use serde_json::json;

    #[test]
    fn unknown_fields_of_built_in_kinds_are_named_by_path() {
        let res = Registry::default()
            .find("apps", "v1", "deployments")
            .unwrap()
            .clone();
        let d = json!({
            "metadata": { "name": "web", "labelz": {} },
            "spec": { "selector": {}, "replicas": 1, "foo": 1, "template": { "spec": { "containers": [{ "name": "c", "imagee": "x" }] } } },
        });
        let mut u = unknown_builtin(&res, &d);
        u.sort();
        assert_eq!(
            u,
            vec![
                "metadata.labelz",
                "spec.foo",
                "spec.template.spec.containers[0].imagee"
            ]
        );
        let e = enforce(
            Directive::Strict,
            &res,
            &[Problem::Unknown("spec.foo".into())],
        )
        .unwrap_err();
        assert_eq!(e.code(), 400);
        assert_eq!(
            e.to_string(),
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.foo\""
        );
        assert_eq!(
            warning_header("unknown field \"spec.foo\""),
            "299 - \"unknown field \\\"spec.foo\\\"\""
        );
    }

    #[test]
    fn custom_resources_are_pruned_by_their_schema() {
        let schema = json!({ "type": "object", "properties": {
            "spec": { "type": "object", "properties": {
                "known": { "type": "string" },
                "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                "map": { "type": "object", "additionalProperties": { "type": "object", "properties": { "a": { "type": "string" } } } },
                "list": { "type": "array", "items": { "type": "object", "properties": { "b": { "type": "string" } } } },
            } },
        } });
        let mut obj = json!({ "apiVersion": "x/v1", "kind": "X", "metadata": { "name": "a", "bogus": 1 },
            "spec": { "known": "k", "foo": 1, "free": { "any": 1 }, "map": { "k": { "a": "1", "z": 2 } }, "list": [{ "b": "x", "c": 1 }] } });
        let mut gone = prune_custom(&mut obj, &schema);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.list[0].c",
                "spec.map.k.z"
            ]
        );
        assert_eq!(
            obj["spec"],
            json!({ "known": "k", "free": { "any": 1 }, "map": { "k": { "a": "1" } }, "list": [{ "b": "x" }] })
        );
        assert!(obj["metadata"].get("bogus").is_none());
    }

    #[test]
    fn duplicate_keys_are_found_anywhere() {
        assert_eq!(
            duplicate_fields(br#"{"a":1,"spec":{"b":1,"b":2,"l":[{"c":1,"c":1}]}}"#),
            vec!["spec.b", "spec.l[0].c"]
        );
    }
}
