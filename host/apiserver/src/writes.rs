//! Writes as a request makes them: field validation first (Strict refuses, Warn collects
//! warnings), unknown fields dropped as upstream's decoding drops them, then the store write
//! with field ownership recorded in `metadata.managedFields`.

use serde_json::Value;

use crate::apply::{self, ApplyRequest};
use crate::field_schema::custom_schema;
use crate::managed_fields::{self, Manager, Operation};
use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{Store, Subresource, WriteOptions, meta_str};
use crate::validation::{self, Directive, Problem};

/// What a write request says about itself beyond its body.
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The request's User-Agent, which names the manager when `fieldManager` is absent.
    pub user_agent: String,
    pub directive: Directive,
    /// The `force` query parameter.
    pub force: Option<bool>,
    /// Warnings for the response's `Warning` headers.
    pub warnings: Vec<String>,
    /// `dryRun`.
    pub write: WriteOptions,
}

impl WriteContext {
    fn manager(&self, res: &ResourceInfo, sub: Subresource) -> Manager {
        Manager {
            name: managed_fields::manager_name(self.field_manager.as_deref(), &self.user_agent),
            operation: Operation::Update,
            api_version: res.api_version(),
            subresource: subresource_name(sub),
        }
    }

    /// Checks the written object per the directive and returns its unknown fields.
    fn validate(
        &mut self,
        res: &ResourceInfo,
        schema: Option<&Value>,
        obj: &Value,
        body: Option<&[u8]>,
    ) -> Result<Vec<String>, ApiError> {
        let problems = validation::problems(res, schema, obj, body);
        self.warnings
            .extend(validation::enforce(self.directive, res, &problems)?);
        Ok(problems
            .into_iter()
            .filter_map(|p| match p {
                Problem::Unknown(p) => Some(p),
                Problem::Duplicate(_) => None,
            })
            .collect())
    }
}

fn subresource_name(sub: Subresource) -> String {
    match sub {
        Subresource::Main => String::new(),
        Subresource::Status => "status".into(),
    }
}

/// The steps of a path such as `spec.containers[0].imagee`: field names and list indices.
fn steps(path: &str) -> Option<Vec<Result<String, usize>>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            steps.push(Ok(rest[..i].to_string()));
            rest = &rest[i..];
            while !rest.is_empty() {
                let index = rest.strip_prefix('[')?;
                let end = index.find(']')?;
                steps.push(Err(index[..end].parse().ok()?));
                rest = &index[end + 1..];
            }
        } else {
            steps.push(Ok(rest.to_string()));
        }
    }
    Some(steps)
}

/// A path such as `spec.containers[0].imagee` as upstream's apply names it
/// (`.spec.containers[name="web"].imagee`), by the list types of the object's kind.
fn apply_path(obj: &Value, ty: crate::field_schema::Ty<'_>, path: &str) -> String {
    let Some(steps) = steps(path) else {
        return format!(".{path}");
    };
    let (mut v, mut ty, mut out) = (Some(obj), ty, String::new());
    for step in steps {
        match step {
            Ok(k) => {
                out.push_str(&format!(".{k}"));
                v = v.and_then(|v| v.get(&k));
                ty = ty.field(&k);
            }
            Err(i) => {
                let item = v.and_then(|v| v.get(i));
                let pe = match (ty.list_type(), item) {
                    (Ok(list), Some(item)) => {
                        managed_fields::item_element(&list, &[], i, item).ok()
                    }
                    _ => None,
                };
                out.push_str(&pe.map_or_else(|| format!("[{i}]"), |pe| pe.to_string()));
                v = item;
                ty = ty.item();
            }
        }
    }
    out
}

/// Removes a field named by a path such as `spec.containers[0].imagee`.
fn remove_dotted(obj: &mut Value, path: &str) {
    let Some(steps) = steps(path) else {
        return;
    };
    let Some((last, init)) = steps.split_last() else {
        return;
    };
    let mut v = obj;
    for step in init {
        let next = match step {
            Ok(k) => v.get_mut(k.as_str()),
            Err(i) => v.get_mut(*i),
        };
        match next {
            Some(n) => v = n,
            None => return,
        }
    }
    if let (Ok(k), Some(m)) = (last, v.as_object_mut()) {
        m.remove(k);
    }
}

/// Drops what the kind does not have: unknown fields of built-in kinds, and everything a custom
/// resource's schema prunes.
fn drop_unknown(obj: &mut Value, unknown: &[String], schema: Option<&Value>, builtin: bool) {
    if builtin {
        for p in unknown {
            remove_dotted(obj, p);
        }
    } else if let Some(s) = schema {
        validation::prune_custom(obj, s);
    }
}

/// Records `manager`'s write; like upstream, a write whose ownership cannot be computed
/// (e.g. duplicate list keys) is stored with its managedFields cleared rather than refused.
fn record(
    old: Option<&Value>,
    new: &mut Value,
    res: &ResourceInfo,
    schema: Option<&Value>,
    manager: &Manager,
) {
    let ty = apply::object_type(res, schema);
    if managed_fields::record_update(old, new, ty, manager).is_err()
        && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("managedFields");
    }
}

/// POST: creates an object.
pub fn create(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    obj: Value,
    body: &[u8],
    ctx: &mut WriteContext,
) -> Result<Value, ApiError> {
    let schema = custom_schema(store, res);
    let unknown = ctx.validate(res, schema.as_ref(), &obj, Some(body))?;
    let manager = ctx.manager(res, Subresource::Main);
    store.create_with(res, namespace, obj, ctx.write, |old, new| {
        drop_unknown(new, &unknown, schema.as_ref(), res.builtin);
        record(old, new, res, schema.as_ref(), &manager);
        Ok(())
    })
}

/// PUT, or the result of a patch: replaces an object through the main endpoint or `/status`.
#[allow(clippy::too_many_arguments)]
pub fn update(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    obj: Value,
    sub: Subresource,
    body: Option<&[u8]>,
    ctx: &mut WriteContext,
) -> Result<Value, ApiError> {
    let schema = custom_schema(store, res);
    let unknown = ctx.validate(res, schema.as_ref(), &obj, body)?;
    let manager = ctx.manager(res, sub);
    store.update_with(res, namespace, name, obj, sub, ctx.write, |old, new| {
        drop_unknown(new, &unknown, schema.as_ref(), res.builtin);
        record(old, new, res, schema.as_ref(), &manager);
        Ok(())
    })
}

/// Server-side apply; returns the object and whether it was created.
pub fn apply(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    sub: Subresource,
    body: &[u8],
    ctx: &mut WriteContext,
) -> Result<(Value, bool), ApiError> {
    let Some(manager) = ctx.field_manager.clone().filter(|m| !m.is_empty()) else {
        return Err(ApiError::Invalid {
            target: Target::new("meta.k8s.io", "PatchOptions", ""),
            message: "fieldManager: Required value: is required for apply patch".into(),
        });
    };
    let config = apply::parse_config(res, body)?;
    if let Some(n) = meta_str(&config, "name").filter(|n| !n.is_empty() && *n != name) {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if res.namespaced
        && let Some(ns) =
            meta_str(&config, "namespace").filter(|n| !n.is_empty() && *n != namespace)
    {
        return Err(ApiError::BadRequest(format!(
            "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
        )));
    }
    let schema = custom_schema(store, res);
    let ty = apply::object_type(res, schema.as_ref());
    // Upstream cannot type an applied configuration with undeclared fields, whatever the
    // validation directive, and answers a bare 500 naming them.
    let unknown: Vec<String> = validation::problems(res, schema.as_ref(), &config, None)
        .into_iter()
        .filter_map(|p| match p {
            Problem::Unknown(p) => Some(format!(
                "{}: field not declared in schema",
                apply_path(&config, ty, &p)
            )),
            Problem::Duplicate(_) => None,
        })
        .collect();
    if !unknown.is_empty() {
        let errors = if let [one] = unknown.as_slice() {
            one.clone()
        } else {
            format!("errors:\n  {}", unknown.join("\n  "))
        };
        return Err(ApiError::Unclassified(format!(
            "failed to create typed patch object ({namespace}/{name}; {}): {errors}",
            apply::gvk(&res.api_version(), &res.kind)
        )));
    }
    if ctx.directive != Directive::Ignore && serde_json::from_slice::<Value>(body).is_ok() {
        let duplicates: Vec<Problem> = validation::duplicate_fields(body)
            .into_iter()
            .map(Problem::Duplicate)
            .collect();
        if ctx.directive == Directive::Strict && !duplicates.is_empty() {
            let list: Vec<String> = duplicates.iter().map(ToString::to_string).collect();
            return Err(ApiError::BadRequest(format!(
                "error strict decoding YAML: {}",
                list.join(", ")
            )));
        }
        ctx.warnings
            .extend(duplicates.iter().map(ToString::to_string));
    }
    let req = ApplyRequest {
        manager,
        force: ctx.force.unwrap_or(false),
        subresource: sub,
    };
    const ATTEMPTS: usize = 5;
    let object = format!("{namespace}/{name}");
    let pinned = config.pointer("/metadata/resourceVersion").is_some();
    for attempt in 1..=ATTEMPTS {
        match store.get(res, namespace, name) {
            Err(ApiError::NotFound(_)) if sub == Subresource::Main => {
                let mut obj = apply::apply_to(res, ty, None, &config, &req, &object)?;
                let m = crate::store::meta_mut(&mut obj);
                m.insert("name".into(), Value::String(name.to_string()));
                let managed = m.get("managedFields").cloned();
                match store.create_with(res, namespace, obj, ctx.write, |_, new| {
                    if let Some(mf) = managed {
                        crate::store::meta_mut(new).insert("managedFields".into(), mf);
                    }
                    Ok(())
                }) {
                    Err(ApiError::AlreadyExists(_)) if attempt < ATTEMPTS => continue,
                    r => return r.map(|v| (v, true)),
                }
            }
            Err(e) => return Err(e),
            Ok(current) => {
                let obj = apply::apply_to(res, ty, Some(&current), &config, &req, &object)?;
                let managed = obj.pointer("/metadata/managedFields").cloned();
                match store.update_with(res, namespace, name, obj, sub, ctx.write, |_, new| {
                    let m = crate::store::meta_mut(new);
                    match managed {
                        Some(mf) => m.insert("managedFields".into(), mf),
                        None => m.remove("managedFields"),
                    };
                    Ok(())
                }) {
                    Err(ApiError::Conflict { .. }) if attempt < ATTEMPTS && !pinned => continue,
                    r => return r.map(|v| (v, false)),
                }
            }
        }
    }
    Err(ApiError::Internal(
        "server-side apply kept conflicting with concurrent writes".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(manager: Option<&str>, directive: Directive) -> WriteContext {
        WriteContext {
            field_manager: manager.map(str::to_string),
            user_agent: "kubectl/v1.32.4 (linux/amd64)".into(),
            directive,
            ..WriteContext::default()
        }
    }

    #[test]
    fn apply_needs_a_field_manager_and_honours_a_resource_version_precondition() {
        let s = Store::default();
        let cms = s.resource("", "v1", "configmaps").unwrap();
        let body =
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#;
        let e = apply(
            &s,
            &cms,
            "default",
            "a",
            Subresource::Main,
            body,
            &mut ctx(None, Directive::Warn),
        )
        .unwrap_err();
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.to_string(),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        let (created, was_created) = apply(
            &s,
            &cms,
            "default",
            "a",
            Subresource::Main,
            body,
            &mut ctx(Some("m"), Directive::Warn),
        )
        .unwrap();
        assert!(was_created);
        assert_eq!(created["metadata"]["managedFields"][0]["manager"], "m");
        let stale = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1"},"data":{"k":"w"}}"#;
        let e = apply(
            &s,
            &cms,
            "default",
            "a",
            Subresource::Main,
            stale,
            &mut ctx(Some("m"), Directive::Warn),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "Conflict");
        let e = apply(
            &s,
            &cms,
            "default",
            "b",
            Subresource::Main,
            body,
            &mut ctx(Some("m"), Directive::Warn),
        )
        .unwrap_err();
        assert_eq!(e.code(), 400, "the name must match the URL: {e}");
    }

    #[test]
    fn ordinary_writes_warn_drop_unknown_fields_and_name_the_user_agent_manager() {
        let s = Store::default();
        let cms = s.resource("", "v1", "configmaps").unwrap();
        let body = br#"{"metadata":{"name":"a"},"data":{"k":"v"},"bogus":1,"bogus":2}"#;
        let obj: Value = serde_json::from_slice(body).unwrap();
        let mut c = ctx(None, Directive::Warn);
        let created = create(&s, &cms, "default", obj.clone(), body, &mut c).unwrap();
        assert_eq!(
            c.warnings,
            vec!["duplicate field \"bogus\"", "unknown field \"bogus\""]
        );
        assert!(created.get("bogus").is_none());
        assert_eq!(
            created["metadata"]["managedFields"][0]["manager"],
            "kubectl"
        );
        let mut c = ctx(None, Directive::Ignore);
        let mut again = obj.clone();
        again["metadata"]["name"] = json!("b");
        create(&s, &cms, "default", again, body, &mut c).unwrap();
        assert!(c.warnings.is_empty());
        let e = create(
            &s,
            &cms,
            "default",
            obj,
            body,
            &mut ctx(None, Directive::Strict),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"bogus\", unknown field \"bogus\""
        );
    }

    #[test]
    fn dotted_paths_remove_nested_fields() {
        let mut v = json!({ "spec": { "containers": [{ "name": "c", "imagee": "x" }], "foo": 1 } });
        remove_dotted(&mut v, "spec.containers[0].imagee");
        remove_dotted(&mut v, "spec.foo");
        // Names that only look like indices are left alone rather than misread.
        remove_dotted(&mut v, "spec.a[0]]");
        remove_dotted(&mut v, "spec.a[x]");
        assert_eq!(v, json!({ "spec": { "containers": [{ "name": "c" }] } }));
    }
}
