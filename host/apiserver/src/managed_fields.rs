//! Field ownership: which manager owns which fields, kept in `metadata.managedFields` as
//! upstream keeps it (apiserver `fieldmanager`, structured-merge-diff `typed`).
//!
//! Every write records it: an apply makes its manager own exactly the fields it applied; any
//! other write (create, update, patch) gives its manager the fields it added or changed, and
//! takes them from everyone else.

use serde_json::{Map, Value, json};

use crate::field_schema::{ListType, Ty, Unsupported, key_default};
use crate::fieldpath::{FieldSet, Path, PathElement, fields};

/// `Apply` or `Update`, as in `managedFields[].operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// Who wrote: upstream's manager identity (manager, operation, subresource, and for updates
/// the API version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub name: String,
    pub operation: Operation,
    pub api_version: String,
    /// `status` for writes through `/status`, empty otherwise.
    pub subresource: String,
}

impl Manager {
    /// Whether two managers are the same entry (appliers regardless of API version).
    pub fn same_identity(&self, other: &Self) -> bool {
        self.name == other.name
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// As upstream names a manager in conflict messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.name);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: Manager,
    pub time: Option<String>,
    pub fields: FieldSet,
}

/// The managers of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

impl Managed {
    /// Reads `metadata.managedFields`; entries that cannot be read are dropped.
    pub fn decode(obj: &Value) -> Self {
        let entries = obj
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let operation = match e.get("operation").and_then(Value::as_str)? {
                    "Apply" => Operation::Apply,
                    "Update" => Operation::Update,
                    _ => return None,
                };
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Some(Entry {
                    manager: Manager {
                        name: s("manager"),
                        operation,
                        api_version: s("apiVersion"),
                        subresource: s("subresource"),
                    },
                    time: e.get("time").and_then(Value::as_str).map(str::to_string),
                    fields: e
                        .get("fieldsV1")
                        .and_then(FieldSet::from_fields_v1)
                        .unwrap_or_default(),
                })
            })
            .collect();
        Self { entries }
    }

    /// The `metadata.managedFields` value, sorted as upstream sorts it (operation, time,
    /// manager, apiVersion, subresource); managers left with no fields are dropped.
    pub fn encode(&self) -> Value {
        let mut entries: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .collect();
        entries.sort_by(|a, b| {
            (
                a.manager.operation,
                &a.time,
                &a.manager.name,
                &a.manager.api_version,
                &a.manager.subresource,
            )
                .cmp(&(
                    b.manager.operation,
                    &b.time,
                    &b.manager.name,
                    &b.manager.api_version,
                    &b.manager.subresource,
                ))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.manager.name));
                    m.insert("operation".into(), json!(e.manager.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.manager.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                    if !e.manager.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.manager.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    pub fn find(&self, manager: &Manager) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.manager.same_identity(manager))
    }

    /// Sets a manager's fields, keeping its time unless `time` is given.
    pub fn set(&mut self, manager: &Manager, fields: FieldSet, time: Option<String>) {
        match self
            .entries
            .iter_mut()
            .find(|e| e.manager.same_identity(manager))
        {
            Some(e) => {
                e.manager.api_version = manager.api_version.clone();
                e.fields = fields;
                if time.is_some() {
                    e.time = time;
                }
            }
            None => self.entries.push(Entry {
                manager: manager.clone(),
                time,
                fields,
            }),
        }
    }
}

/// Paths no manager ever owns (apiserver fieldmanager `stripMetaManager`).
fn stripped() -> Vec<Path> {
    let mut v = vec![
        fields(&["apiVersion"]),
        fields(&["kind"]),
        fields(&["metadata"]),
    ];
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        v.push(fields(&["metadata", f]));
    }
    v
}

/// Removes the paths no manager owns.
pub fn strip(mut set: FieldSet) -> FieldSet {
    for p in stripped() {
        set.remove(&p);
    }
    set
}

/// Why a value does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "{path}: element {index}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingKey {
        path: String,
        index: usize,
        key: String,
    },
    #[error("{path}: element {index}: associative list can only contain objects")]
    NotAnObject { path: String, index: usize },
    #[error("{path}: duplicate entries for key {key}")]
    DuplicateKey { path: String, key: String },
    #[error("{path}: {message}")]
    Unsupported { path: String, message: String },
}

fn unsupported(path: &[PathElement], e: Unsupported) -> SchemaError {
    SchemaError::Unsupported {
        path: crate::fieldpath::display(path),
        message: e.0,
    }
}

/// The path element of a list item, for lists that are not atomic.
pub fn item_element(
    list: &ListType,
    path: &[PathElement],
    index: usize,
    item: &Value,
) -> Result<PathElement, SchemaError> {
    match list {
        ListType::Atomic => Ok(PathElement::Index(index)),
        ListType::Set => {
            if item.is_object() || item.is_array() {
                return Err(unsupported(
                    path,
                    Unsupported("a set may only hold scalars".into()),
                ));
            }
            Ok(PathElement::value(item))
        }
        ListType::Map(keys) => {
            let obj = item.as_object().ok_or_else(|| SchemaError::NotAnObject {
                path: crate::fieldpath::display(path),
                index,
            })?;
            let mut kv = Vec::new();
            for k in keys {
                let v = match obj.get(k) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => key_default(k).ok_or_else(|| SchemaError::MissingKey {
                        path: crate::fieldpath::display(path),
                        index,
                        key: k.clone(),
                    })?,
                };
                kv.push((k.clone(), v));
            }
            Ok(PathElement::key(&kv))
        }
    }
}

/// The fields a value sets (structured-merge-diff `ToFieldSet`): every scalar, every atomic
/// list or map, every list item and map entry.
pub fn to_field_set(v: &Value, ty: Ty<'_>) -> Result<FieldSet, SchemaError> {
    fn walk(v: &Value, ty: Ty<'_>, path: &mut Path, out: &mut FieldSet) -> Result<(), SchemaError> {
        match v {
            Value::Object(m) => {
                if ty.is_atomic_map() || (m.is_empty() && !path.is_empty()) {
                    out.insert(path.clone());
                    return Ok(());
                }
                for (k, child) in m {
                    path.push(PathElement::Field(k.clone()));
                    walk(child, ty.field(k), path, out)?;
                    if !ty.is_named_field(k) || child.is_null() {
                        out.insert(path.clone());
                    }
                    path.pop();
                }
            }
            Value::Array(items) => {
                let list = ty.list_type().map_err(|e| unsupported(path, e))?;
                if list == ListType::Atomic || items.is_empty() {
                    out.insert(path.clone());
                    return Ok(());
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let pe = item_element(&list, path, i, item)?;
                    if !seen.insert(pe.clone()) {
                        return Err(SchemaError::DuplicateKey {
                            path: crate::fieldpath::display(path),
                            key: pe.to_string(),
                        });
                    }
                    path.push(pe);
                    if list != ListType::Set {
                        walk(item, ty.item(), path, out)?;
                    }
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
        Ok(())
    }
    let mut out = FieldSet::new();
    walk(v, ty, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// What changed between two versions of an object (structured-merge-diff `Compare`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Compares `old` and `new` field by field.
pub fn compare(old: &Value, new: &Value, ty: Ty<'_>) -> Result<Comparison, SchemaError> {
    let mut c = Comparison::default();
    compare_at(Some(old), Some(new), ty, false, &mut Vec::new(), &mut c)?;
    Ok(c)
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    if path.is_empty() {
        return;
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path.to_vec()),
        (Some(_), None) => c.removed.insert(path.to_vec()),
        (Some(a), Some(b)) if a != b => c.modified.insert(path.to_vec()),
        _ => {}
    }
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty<'_>,
    struct_field: bool,
    path: &mut Path,
    c: &mut Comparison,
) -> Result<(), SchemaError> {
    let both_empty = is_empty_container(old) && is_empty_container(new);
    let descended = match (old.unwrap_or(&Value::Null), new.unwrap_or(&Value::Null)) {
        (Value::Object(_) | Value::Null, Value::Object(_) | Value::Null)
            if !both_empty && !ty.is_atomic_map() =>
        {
            let empty = Map::new();
            let a = old.and_then(Value::as_object).unwrap_or(&empty);
            let b = new.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                let named = ty.is_named_field(k);
                compare_at(a.get(k), b.get(k), ty.field(k), named, path, c)?;
                path.pop();
            }
            true
        }
        (Value::Array(_) | Value::Null, Value::Array(_) | Value::Null) if !both_empty => {
            let list = ty.list_type().map_err(|e| unsupported(path, e))?;
            if list == ListType::Atomic {
                false
            } else {
                let index = |v: Option<&Value>| -> Result<Vec<(PathElement, Value)>, SchemaError> {
                    let mut out: Vec<(PathElement, Value)> = Vec::new();
                    for (i, item) in v
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let pe = item_element(&list, path, i, item)?;
                        if !out.iter().any(|(p, _)| *p == pe) {
                            out.push((pe, item.clone()));
                        }
                    }
                    Ok(out)
                };
                let a = index(old)?;
                let b = index(new)?;
                let mut keys: Vec<&PathElement> =
                    a.iter().chain(b.iter()).map(|(p, _)| p).collect();
                keys.sort();
                keys.dedup();
                for pe in keys {
                    let x = a.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
                    let y = b.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
                    path.push(pe.clone());
                    if list == ListType::Set {
                        leaf(x, y, path, c);
                    } else {
                        compare_at(x, y, ty.item(), false, path, c)?;
                    }
                    path.pop();
                }
                true
            }
        }
        _ => false,
    };
    if !descended {
        leaf(old, new, path, c);
        return Ok(());
    }
    // A non-leaf that appeared or went is itself added or removed, except a field of a
    // built-in kind that upstream's empty object of the kind already holds (structs, and
    // lists Go serialises even when empty).
    let always_present = match path.last() {
        Some(PathElement::Field(name)) => struct_field && ty.is_always_present(name),
        _ => false,
    };
    if path.is_empty() || always_present {
        return Ok(());
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path.clone()),
        (Some(_), None) => c.removed.insert(path.clone()),
        _ => {}
    }
    Ok(())
}

/// Drops `metadata.managedFields`, which ownership is never computed over.
pub fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// The current time as managedFields record it.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Records an ordinary write (create, update, patch) by `manager` in `new`'s managedFields:
/// the manager gains what it added or changed, everyone loses what it changed or removed.
/// The managers start from `new`'s own managedFields when the client sent some (`[{}]`
/// clears them), else from `old`'s.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    ty: Ty<'_>,
    manager: &Manager,
) -> Result<(), SchemaError> {
    let sent = new.pointer("/metadata/managedFields").cloned();
    let mut managed = match &sent {
        Some(Value::Array(a)) if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) => {
            Managed::default()
        }
        Some(Value::Array(a)) if !a.is_empty() => Managed::decode(new),
        _ => old.map(Managed::decode).unwrap_or_default(),
    };
    let empty = json!({});
    let old_plain = old.map(without_managed_fields).unwrap_or(empty);
    let new_plain = without_managed_fields(new);
    let cmp = compare(&old_plain, &new_plain, ty)?;
    let changed = strip(cmp.changed());
    let removed = strip(cmp.removed.clone());
    for e in &mut managed.entries {
        e.fields = e.fields.difference(&removed).difference(&changed);
    }
    if !changed.is_empty() {
        let previous = managed
            .find(manager)
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        managed.set(manager, previous.union(&changed), Some(now()));
    }
    set_managed_fields(new, &managed);
    Ok(())
}

/// Writes `managed` into the object (dropping the field when no one owns anything).
pub fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let encoded = managed.encode();
    let m = crate::store::meta_mut(obj);
    if encoded.as_array().is_some_and(Vec::is_empty) {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), encoded);
    }
}

/// The manager named by a request: `fieldManager`, else the User-Agent's first `/`-separated
/// part (apiserver `prefixFromUserAgent`).
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => user_agent.split('/').next().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mgr(name: &str, op: Operation) -> Manager {
        Manager {
            name: name.into(),
            operation: op,
            api_version: "apps/v1".into(),
            subresource: String::new(),
        }
    }

    #[test]
    fn a_created_deployment_owns_maps_and_items_but_not_structs() {
        let d = Ty::builtin("apps", "Deployment");
        let mut new = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "labels": { "app": "web" } },
            "spec": { "replicas": 1, "template": { "spec": { "containers": [{ "name": "c", "image": "i" }] } } },
        });
        record_update(None, &mut new, d, &mgr("kubectl-create", Operation::Update)).unwrap();
        let mf = &new["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl-create");
        assert_eq!(mf["operation"], "Update");
        assert_eq!(
            mf["fieldsV1"],
            json!({
                "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
                "f:spec": {
                    "f:replicas": {},
                    "f:template": { "f:spec": { "f:containers": { "k:{\"name\":\"c\"}": { ".": {}, "f:image": {}, "f:name": {} } } } },
                },
            })
        );
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let d = Ty::builtin("apps", "Deployment");
        let mut old =
            json!({ "metadata": { "name": "a" }, "spec": { "replicas": 1, "paused": false } });
        record_update(None, &mut old, d, &mgr("a", Operation::Update)).unwrap();
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(2);
        record_update(Some(&old), &mut new, d, &mgr("b", Operation::Update)).unwrap();
        let m = Managed::decode(&new);
        assert_eq!(m.entries.len(), 2);
        let a = m.find(&mgr("a", Operation::Update)).unwrap();
        assert_eq!(
            a.fields.to_fields_v1(),
            json!({ "f:spec": { "f:paused": {} } })
        );
        let b = m.find(&mgr("b", Operation::Update)).unwrap();
        assert_eq!(
            b.fields.to_fields_v1(),
            json!({ "f:spec": { "f:replicas": {} } })
        );
    }

    #[test]
    fn manager_defaults_to_the_user_agent_prefix() {
        assert_eq!(
            manager_name(None, "kubectl/v1.32.4 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(manager_name(Some("mine"), "kube-rs/1"), "mine");
    }
}
