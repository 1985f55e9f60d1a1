//! Server-side apply (`PATCH` with `application/apply-patch+yaml`), as structured-merge-diff's
//! `Updater.Apply` does it:
//!
//! 1. the applied configuration is merged into the live object: maps key by key, lists by
//!    their list type (keyed lists item by item, sets value by value, atomic lists replaced);
//! 2. the manager now owns exactly the fields it applied;
//! 3. fields it applied before but omits now are removed, unless another manager owns them;
//! 4. a field another manager owns whose value would change is a conflict (409) unless the
//!    request forces, which takes the field from that manager.

use serde_json::{Map, Value, json};

use crate::field_schema::{ListType, Ty};
use crate::fieldpath::{FieldSet, Path, PathElement, display};
use crate::managed_fields::{
    self, Managed, Manager, Operation, SchemaError, item_element, strip, to_field_set,
};
use crate::resource::ResourceInfo;
use crate::status::ApiError;
use crate::store::Subresource;

/// One field another manager owns that the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: Manager,
    pub path: Path,
}

/// The 409 upstream answers (apiserver fieldmanager `NewConflictError`).
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| {
            (
                display(&c.path),
                format!("conflict with {}", c.manager.describe()),
            )
        })
        .collect();
    let message = if let [c] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager.describe(),
            display(&c.path)
        )
    } else {
        let mut managers: Vec<String> = conflicts.iter().map(|c| c.manager.describe()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in &managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| &c.manager.describe() == m) {
                lines.push(format!("- {}", display(&c.path)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::ApplyConflict { message, causes }
}

/// What an apply request asks.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub manager: String,
    pub force: bool,
    pub subresource: Subresource,
}

/// The type to walk objects of `res` with: a built-in kind's, or its CRD's schema.
pub fn object_type<'s>(res: &ResourceInfo, crd_schema: Option<&'s Value>) -> Ty<'s> {
    if res.builtin {
        Ty::builtin(&res.group, &res.kind)
    } else {
        match crd_schema {
            Some(s) => Ty::CustomRoot(s),
            None => Ty::Untyped,
        }
    }
}

/// A group-version-kind as Go prints it: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
pub fn gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// Parses and checks an applied configuration: YAML or JSON, naming this resource's
/// `apiVersion` and `kind`, without managedFields.
pub fn parse_config(res: &ResourceInfo, body: &[u8]) -> Result<Value, ApiError> {
    let config: Value = serde_norway::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    }
    let api_version = config["apiVersion"].as_str().unwrap_or("");
    let kind = config["kind"].as_str().unwrap_or("");
    let want = gvk(&res.api_version(), &res.kind);
    if kind.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "invalid object type: {}",
            gvk(api_version, kind)
        )));
    }
    if gvk(api_version, kind) != want {
        return Err(ApiError::BadRequest(format!(
            "invalid object type: {}, expected: {want}",
            gvk(api_version, kind)
        )));
    }
    if config.pointer("/metadata/managedFields").is_some() {
        return Err(ApiError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok(config)
}

/// Which object a typing error is about, as upstream names it.
#[derive(Debug, Clone, Copy)]
enum Typed {
    Patch,
    Live,
}

/// A value that does not fit its type is upstream's bare 500 (`failed to create typed patch
/// object (default/web; apps/v1, Kind=Deployment): ...`); a schema feature this server does not
/// implement is a 400 naming it.
fn schema_error(res: &ResourceInfo, object: &str, which: Typed, e: SchemaError) -> ApiError {
    match e {
        SchemaError::Unsupported { .. } => ApiError::BadRequest(format!(
            "server-side apply of {} {object:?} needs what this server does not implement: {e}",
            res.kind
        )),
        other => ApiError::Unclassified(format!(
            "failed to create typed {} object ({object}; {}): {other}",
            match which {
                Typed::Patch => "patch",
                Typed::Live => "live",
            },
            gvk(&res.api_version(), &res.kind)
        )),
    }
}

/// The part of an applied configuration a write through `sub` may set: the main endpoint of a
/// kind with a status subresource ignores `status`; `/status` ignores all but `status`.
fn reset_fields(res: &ResourceInfo, sub: Subresource, config: &Value) -> Value {
    let mut c = config.clone();
    let m = c.as_object_mut().expect("checked to be an object");
    match sub {
        Subresource::Main if res.status_subresource => {
            m.remove("status");
        }
        Subresource::Main => {}
        Subresource::Status => {
            m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace"));
            }
        }
    }
    c
}

/// The object and managedFields an apply produces from `live` (`None` to create), or the
/// conflicts that stop it. `object` names it in errors (`namespace/name`).
pub fn apply_to(
    res: &ResourceInfo,
    ty: Ty<'_>,
    live: Option<&Value>,
    config: &Value,
    req: &ApplyRequest,
    object: &str,
) -> Result<Value, ApiError> {
    let config = reset_fields(res, req.subresource, config);
    let manager = Manager {
        name: req.manager.clone(),
        operation: Operation::Apply,
        api_version: res.api_version(),
        subresource: match req.subresource {
            Subresource::Main => String::new(),
            Subresource::Status => "status".into(),
        },
    };
    let mut managed = live.map(Managed::decode).unwrap_or_default();
    let live_plain = live
        .map(managed_fields::without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let applied =
        strip(to_field_set(&config, ty).map_err(|e| schema_error(res, object, Typed::Patch, e))?);
    to_field_set(&live_plain, ty).map_err(|e| schema_error(res, object, Typed::Live, e))?;
    let merged = merge(Some(&live_plain), Some(&config), ty, &mut Vec::new())
        .map_err(|e| schema_error(res, object, Typed::Patch, e))?
        .unwrap_or_else(|| json!({}));
    let last = managed.find(&manager).map(|e| e.fields.clone());
    managed.set(&manager, applied.clone(), None);
    let merged = match last {
        Some(last) => prune(merged, ty, &last, &applied, &managed, &manager),
        None => merged,
    };
    let cmp = managed_fields::compare(&live_plain, &merged, ty)
        .map_err(|e| schema_error(res, object, Typed::Live, e))?;
    let changed = strip(cmp.changed());
    let removed = strip(cmp.removed.clone());
    let mut conflicts = Vec::new();
    for e in &managed.entries {
        if e.manager.same_identity(&manager) {
            continue;
        }
        for p in e.fields.intersection(&changed).iter() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                path: p.clone(),
            });
        }
    }
    if !conflicts.is_empty() && !req.force {
        conflicts
            .sort_by(|a, b| (a.manager.describe(), &a.path).cmp(&(b.manager.describe(), &b.path)));
        return Err(conflict_error(&conflicts));
    }
    for e in &mut managed.entries {
        if e.manager.same_identity(&manager) {
            continue;
        }
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    let object_changed = live_plain != merged;
    let has_time = managed.find(&manager).is_some_and(|e| e.time.is_some());
    if object_changed || !has_time {
        managed.set(&manager, applied, Some(managed_fields::now()));
    }
    let mut out = merged;
    // A resourceVersion in the configuration is a precondition; otherwise the write is
    // against the live object as read.
    if config.pointer("/metadata/resourceVersion").is_none()
        && let Some(live) = live
        && let Some(rv) = live.pointer("/metadata/resourceVersion")
    {
        crate::store::meta_mut(&mut out).insert("resourceVersion".into(), rv.clone());
    }
    managed_fields::set_managed_fields(&mut out, &managed);
    Ok(out)
}

/// Merges `applied` into `live`: the applied value wins at every leaf.
fn merge(
    live: Option<&Value>,
    applied: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Path,
) -> Result<Option<Value>, SchemaError> {
    let (live, applied) = match (live, applied) {
        (l, None) => return Ok(l.cloned()),
        (None, Some(a)) => (&Value::Null, a),
        (Some(l), Some(a)) => (l, a),
    };
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !ty.is_atomic_map() => {
            let mut out = l.clone();
            for (k, v) in a {
                path.push(PathElement::Field(k.clone()));
                if let Some(m) = merge(l.get(k), Some(v), ty.field(k), path)? {
                    out.insert(k.clone(), m);
                }
                path.pop();
            }
            Ok(Some(Value::Object(out)))
        }
        (Value::Null, Value::Object(a)) if !ty.is_atomic_map() => {
            // Validate what is below even though nothing merges with it.
            merge(
                Some(&Value::Object(Map::new())),
                Some(&Value::Object(a.clone())),
                ty,
                path,
            )
        }
        (Value::Array(l), Value::Array(a)) => {
            let list = ty.list_type().map_err(|e| SchemaError::Unsupported {
                path: display(path),
                message: e.0,
            })?;
            if list == ListType::Atomic {
                return Ok(Some(applied.clone()));
            }
            merge_list(l, a, &list, ty, path).map(|v| Some(Value::Array(v)))
        }
        (Value::Null, Value::Array(a)) => merge(
            Some(&Value::Array(Vec::new())),
            Some(&Value::Array(a.clone())),
            ty,
            path,
        ),
        _ => Ok(Some(applied.clone())),
    }
}

/// Merges two non-atomic lists item by item: applied items in their order, live-only items
/// kept where they were relative to the items both have.
fn merge_list(
    live: &[Value],
    applied: &[Value],
    list: &ListType,
    ty: Ty<'_>,
    path: &mut Path,
) -> Result<Vec<Value>, SchemaError> {
    let index = |items: &[Value], path: &Path| -> Result<Vec<(PathElement, Value)>, SchemaError> {
        let mut out: Vec<(PathElement, Value)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pe = item_element(list, path, i, item)?;
            if out.iter().any(|(p, _)| *p == pe) {
                return Err(SchemaError::DuplicateKey {
                    path: display(path),
                    key: pe.to_string(),
                });
            }
            out.push((pe, item.clone()));
        }
        Ok(out)
    };
    let l = index(live, path)?;
    let a = index(applied, path)?;
    let in_a = |pe: &PathElement| a.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
    let in_l = |pe: &PathElement| l.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
    let mut out = Vec::new();
    let (mut li, mut ai) = (0, 0);
    while li < l.len() || ai < a.len() {
        // Live-only items before the next item both have stay in place.
        if li < l.len() && in_a(&l[li].0).is_none() {
            out.push(l[li].1.clone());
            li += 1;
            continue;
        }
        if ai < a.len() {
            let (pe, v) = &a[ai];
            path.push(pe.clone());
            let merged = if *list == ListType::Set {
                Some(v.clone())
            } else {
                merge(in_l(pe), Some(v), ty.item(), path)?
            };
            path.pop();
            out.extend(merged);
            if li < l.len() && l[li].0 == *pe {
                li += 1;
            }
            ai += 1;
            continue;
        }
        // Only shared items remain on the live side; they were emitted in applied order.
        li += 1;
    }
    Ok(out)
}

/// Removes what the manager applied last time but not now, unless someone else owns it
/// (structured-merge-diff `prune`).
fn prune(
    mut merged: Value,
    ty: Ty<'_>,
    last: &FieldSet,
    applied: &FieldSet,
    managed: &Managed,
    manager: &Manager,
) -> Value {
    let others: Vec<&FieldSet> = managed
        .entries
        .iter()
        .filter(|e| !e.manager.same_identity(manager))
        .map(|e| &e.fields)
        .collect();
    let gone: Vec<Path> = last
        .difference(applied)
        .iter()
        .filter(|p| !applied.covers(p) && !others.iter().any(|o| o.covers(p)))
        .cloned()
        .collect();
    // Removing an item or map removes what is below it.
    let outermost: Vec<&Path> = gone
        .iter()
        .filter(|p| !gone.iter().any(|q| q.len() < p.len() && p.starts_with(q)))
        .collect();
    for p in outermost {
        remove_path(&mut merged, ty, p);
    }
    merged
}

/// Removes the value at `path`, then any object the removal left empty.
fn remove_path(v: &mut Value, ty: Ty<'_>, path: &[PathElement]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (v, first) {
        (Value::Object(m), PathElement::Field(k)) => {
            if rest.is_empty() {
                return m.remove(k).is_some();
            }
            let child_ty = ty.field(k);
            let Some(child) = m.get_mut(k) else {
                return false;
            };
            let removed = remove_path(child, child_ty, rest);
            if removed && child.as_object().is_some_and(Map::is_empty) {
                m.remove(k);
            }
            removed
        }
        (Value::Array(items), pe) => {
            let Ok(list) = ty.list_type() else {
                return false;
            };
            let pos = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(&list, &[], i, item).is_ok_and(|p| &p == pe));
            let Some(pos) = pos else {
                return false;
            };
            if rest.is_empty() {
                items.remove(pos);
                return true;
            }
            remove_path(&mut items[pos], ty.item(), rest)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;

    fn deployments() -> ResourceInfo {
        Registry::default()
            .find("apps", "v1", "deployments")
            .unwrap()
            .clone()
    }

    fn req(manager: &str, force: bool) -> ApplyRequest {
        ApplyRequest {
            manager: manager.into(),
            force,
            subresource: Subresource::Main,
        }
    }

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "labels": { "app": "web" } },
            "spec": { "replicas": replicas, "template": { "spec": { "containers": [{ "name": "c", "image": image, "ports": [{ "containerPort": 80 }] }] } } },
        })
    }

    #[test]
    fn apply_creates_then_merges_and_owns_what_it_applied() {
        let res = deployments();
        let ty = object_type(&res, None);
        let created = apply_to(&res, ty, None, &config(1, "a"), &req("m", false), "web").unwrap();
        let mf = &created["metadata"]["managedFields"][0];
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(
            mf["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]
                ["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            json!({ ".": {}, "f:containerPort": {} })
        );
        let mut live = created.clone();
        live["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{ "name": "X", "value": "1" }]);
        let updated = apply_to(
            &res,
            ty,
            Some(&live),
            &config(2, "b"),
            &req("m", false),
            "web",
        )
        .unwrap();
        assert_eq!(updated["spec"]["replicas"], 2);
        let c = &updated["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            (c["image"].clone(), c["env"][0]["name"].clone()),
            (json!("b"), json!("X"))
        );
    }

    #[test]
    fn another_manager_conflicts_unless_forced_and_omitted_fields_go() {
        let res = deployments();
        let ty = object_type(&res, None);
        let live = apply_to(&res, ty, None, &config(1, "a"), &req("first", false), "web").unwrap();
        let e = apply_to(
            &res,
            ty,
            Some(&live),
            &config(3, "a"),
            &req("second", false),
            "web",
        )
        .unwrap_err();
        assert_eq!(e.code(), 409);
        assert_eq!(
            e.to_string(),
            "Apply failed with 1 conflict: conflict with \"first\": .spec.replicas"
        );
        let s = e.to_status();
        assert_eq!(
            s["details"]["causes"][0],
            json!({ "reason": "FieldManagerConflict", "message": "conflict with \"first\"", "field": ".spec.replicas" })
        );
        // Same value: shared ownership, no conflict.
        let shared = apply_to(
            &res,
            ty,
            Some(&live),
            &config(1, "a"),
            &req("second", false),
            "web",
        )
        .unwrap();
        assert_eq!(
            shared["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let forced = apply_to(
            &res,
            ty,
            Some(&live),
            &config(3, "a"),
            &req("second", true),
            "web",
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let first = Managed::decode(&forced);
        let f = first
            .entries
            .iter()
            .find(|e| e.manager.name == "first")
            .unwrap();
        assert!(
            !f.fields.to_fields_v1()["f:spec"]
                .as_object()
                .unwrap()
                .contains_key("f:replicas")
        );

        // "first" stops applying the label: it goes, since no one else owns it.
        let mut less = config(1, "a");
        less["metadata"].as_object_mut().unwrap().remove("labels");
        let pruned = apply_to(&res, ty, Some(&live), &less, &req("first", false), "web").unwrap();
        assert!(pruned["metadata"].get("labels").is_none(), "{pruned}");
    }

    #[test]
    fn sets_of_objects_in_a_crd_schema_fail_loudly() {
        let schema = json!({ "type": "object", "properties": { "spec": { "type": "object", "properties": {
            "objs": { "type": "array", "x-kubernetes-list-type": "set", "items": { "type": "object" } } } } } });
        let mut res = deployments();
        res.builtin = false;
        let ty = object_type(&res, Some(&schema));
        let c = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "w" }, "spec": { "objs": [{ "a": 1 }] } });
        let e = apply_to(&res, ty, None, &c, &req("m", false), "w").unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(e.to_string().contains("set of non-scalar"), "{e}");
    }

    #[test]
    fn an_item_without_its_key_is_upstreams_typed_patch_error() {
        let res = deployments();
        let ty = object_type(&res, None);
        let mut c = config(1, "a");
        c["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{ "name": "http" }]);
        let e = apply_to(&res, ty, None, &c, &req("m", false), "default/web").unwrap_err();
        assert_eq!((e.code(), e.reason()), (500, ""));
        assert_eq!(
            e.to_string(),
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"c\"].ports: element 0: associative list with keys has an element that omits key field \"containerPort\" (and doesn't have default value)"
        );
    }

    #[test]
    fn custom_resources_merge_lists_by_their_schema_keys_and_replace_atomic_ones() {
        let schema = json!({ "type": "object", "properties": { "spec": { "type": "object", "properties": {
            "requirements": { "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"],
                "items": { "type": "object", "properties": { "key": { "type": "string" }, "values": { "type": "array", "items": { "type": "string" } } } } },
            "taints": { "type": "array", "items": { "type": "object" } },
            "selector": { "type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": { "type": "string" } },
        } } } });
        let mut res = deployments();
        res.builtin = false;
        let ty = object_type(&res, Some(&schema));
        let cr = |spec: Value| json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "w" }, "spec": spec });
        let live = apply_to(
            &res,
            ty,
            None,
            &cr(json!({
                "requirements": [{ "key": "a", "values": ["1"] }],
                "taints": [{ "key": "t1" }],
                "selector": { "x": "1", "y": "2" },
            })),
            &req("one", false),
            "w",
        )
        .unwrap();
        let merged = apply_to(
            &res,
            ty,
            Some(&live),
            &cr(json!({
                "requirements": [{ "key": "b", "values": ["2"] }],
            })),
            &req("two", false),
            "w",
        )
        .unwrap();
        assert_eq!(
            merged["spec"]["requirements"],
            json!([{ "key": "a", "values": ["1"] }, { "key": "b", "values": ["2"] }])
        );
        let e = apply_to(
            &res,
            ty,
            Some(&merged),
            &cr(json!({ "taints": [{ "key": "t2" }] })),
            &req("two", false),
            "w",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("conflict with \"one\": .spec.taints"),
            "{e}"
        );
        let e = apply_to(
            &res,
            ty,
            Some(&merged),
            &cr(json!({ "selector": { "x": "1" } })),
            &req("two", false),
            "w",
        )
        .unwrap_err();
        assert!(
            e.to_string().ends_with(".spec.selector"),
            "atomic maps are owned whole: {e}"
        );
        let fields = &merged["metadata"]["managedFields"][1]["fieldsV1"];
        assert_eq!(
            fields,
            &json!({ "f:spec": { "f:requirements": { "k:{\"key\":\"b\"}": { ".": {}, "f:key": {}, "f:values": {} } } } })
        );
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..4).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            let key = prop_oneof![
                Just("name".to_string()),
                Just("containerPort".to_string()),
                Just("protocol".to_string()),
                Just("image".to_string()),
                Just("containers".to_string()),
                Just("ports".to_string()),
                Just("spec".to_string()),
                Just("template".to_string()),
                Just("metadata".to_string()),
                Just("labels".to_string()),
                Just("finalizers".to_string()),
                Just("status".to_string()),
                Just("conditions".to_string()),
                Just("type".to_string()),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map(key, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_configuration_on_any_live_object_applies_or_is_refused_without_panicking(
            live in value(),
            applied in value(),
            force in proptest::prelude::any::<bool>(),
        ) {
            let res = Registry::default().find("", "v1", "pods").unwrap().clone();
            let ty = object_type(&res, None);
            let mut c = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" } });
            if let Value::Object(m) = applied {
                for (k, v) in m.into_iter().filter(|(k, _)| k != "metadata") {
                    c[k] = v;
                }
            }
            let live = live.is_object().then_some(live);
            let first = apply_to(&res, ty, live.as_ref(), &c, &req("a", force), "default/p");
            if let Ok(obj) = first {
                let again = apply_to(&res, ty, Some(&obj), &c, &req("b", force), "default/p");
                if let Err(e) = again {
                    proptest::prop_assert!((400..600).contains(&e.code()), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn config_needs_kind_and_matching_version() {
        let res = deployments();
        let e = parse_config(&res, b"apiVersion: apps/v1\nmetadata: {name: x}\n").unwrap_err();
        assert_eq!(e.to_string(), "invalid object type: apps/v1, Kind=");
        let e = parse_config(&res, br#"{"apiVersion":"v1","kind":"Deployment"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid object type: /v1, Kind=Deployment, expected: apps/v1, Kind=Deployment"
        );
    }
}
