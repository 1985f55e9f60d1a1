//! The in-memory object store: one global resourceVersion over every kind, optimistic
//! concurrency, the object lifecycle (uid, creationTimestamp, generation, finalizers and
//! deletionTimestamp) and the status subresource split.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::crd;
use crate::event_log::{Compacted, Event, EventLog, EventType, ObjectKey};
use crate::pod;
use crate::resource::{Registry, ResourceInfo, StatusOnCreate, builtin_resources};
use crate::status::{ApiError, Target};
use crate::stored::Stored;

/// Which endpoint a write came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself: `.status` changes are ignored for kinds with a status subresource.
    Main,
    /// `/status`: everything but `.status` is ignored.
    Status,
}

/// What a DELETE may carry: preconditions and, for pods, a grace period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub grace_period_seconds: Option<i64>,
    /// `dryRun=All`: answer as if deleted, keep everything.
    pub dry_run: bool,
}

/// How a create or update is carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `dryRun=All`: validated and answered as if written, but nothing is stored, no
    /// resourceVersion is used and no watch event is sent.
    pub dry_run: bool,
}

/// Namespaces every cluster starts with.
pub const INITIAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Namespaces that cannot be deleted.
pub const PROTECTED_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Objects in key order, shared with the store.
pub type Snapshot = Vec<(ObjectKey, Arc<Stored>)>;

/// Default number of events retained for watches before compaction.
pub const DEFAULT_EVENT_LOG_CAPACITY: usize = 100_000;

struct State {
    revision: u64,
    /// Shared with the event log and with snapshots, so reads never copy objects.
    objects: BTreeMap<ObjectKey, Arc<Stored>>,
    log: EventLog,
    /// Built-in resources plus those the stored CRDs serve.
    registry: Registry,
}

/// Thread-safe store; cheap to share behind an `Arc`.
pub struct Store {
    state: Mutex<State>,
    revision_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_LOG_CAPACITY)
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything a spec change means for `generation`: all but metadata, status and type fields.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn without_resource_version(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    o
}

/// The stored Services, for the addresses and ports they hold.
fn services(st: &State) -> impl Iterator<Item = &Value> {
    let first = ObjectKey {
        resource: "services".into(),
        namespace: String::new(),
        name: String::new(),
    };
    st.objects
        .range(first..)
        .take_while(|(k, _)| k.resource == "services")
        .map(|(_, v)| v.value())
}

fn is_namespace(res: &ResourceInfo) -> bool {
    res.builtin && res.group.is_empty() && res.plural == "namespaces"
}

/// A parsed resourceVersion, refused with 400 when it is not a number.
pub fn parse_resource_version(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "invalid resource version {s:?}: not a non-negative integer"
        ))
    })
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Why `name` cannot be a URL path segment (upstream's `IsValidPathSegmentName`), if it cannot.
fn path_segment_problem(name: &str) -> Option<String> {
    match name {
        "." | ".." => Some(format!("may not be '{name}'")),
        _ => ['/', '%']
            .into_iter()
            .find(|c| name.contains(*c))
            .map(|c| format!("may not contain '{c}'")),
    }
}

fn random_suffix() -> String {
    // Kubernetes' generateName alphabet: no vowels or confusable digits.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl Store {
    /// An empty store with the initial namespaces, retaining `event_log_capacity` events.
    pub fn new(event_log_capacity: usize) -> Self {
        let (revision_tx, _) = watch::channel(1);
        let store = Self {
            state: Mutex::new(State {
                revision: 1,
                objects: BTreeMap::new(),
                log: EventLog::new(event_log_capacity, 1),
                registry: Registry::default(),
            }),
            revision_tx,
        };
        let namespaces = builtin_resources()
            .into_iter()
            .find(|r| r.plural == "namespaces" && r.group.is_empty())
            .expect("namespaces are built in");
        for ns in INITIAL_NAMESPACES {
            store
                .create(&namespaces, "", json!({ "metadata": { "name": ns } }))
                .expect("initial namespaces are valid");
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every write is applied at
        // once at the end), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current global resourceVersion.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The resources served now (built-ins and those of established CRDs).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// One served resource.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.lock().registry.find(group, version, plural).cloned()
    }

    /// Changes to the revision, to wake watchers.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision_tx.subscribe()
    }

    /// Drops all retained watch history up to the current revision, as etcd compaction does:
    /// any watch or list still at an older revision gets 410.
    pub fn compact(&self) {
        let mut st = self.lock();
        let rev = st.revision;
        st.log.compact(rev);
    }

    fn key(res: &ResourceInfo, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            resource: res.storage_key(),
            namespace: if res.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn target(res: &ResourceInfo, name: &str) -> Target {
        Target::new(&res.group, &res.plural, name)
    }

    fn commit(
        &self,
        st: &mut State,
        event_type: EventType,
        key: ObjectKey,
        mut object: Value,
    ) -> Value {
        let object_resource = key.resource.clone();
        let object_namespace = key.namespace.clone();
        st.revision += 1;
        let rv = st.revision;
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        let shared = Arc::new(Stored::new(object));
        // The stored version is the one this change replaces; the log shares it.
        let previous = st.objects.get(&key).cloned();
        match event_type {
            EventType::Deleted => {
                st.objects.remove(&key);
            }
            _ => {
                st.objects.insert(key.clone(), shared.clone());
            }
        }
        st.log.push(Event {
            resource_version: rv,
            event_type,
            key,
            object: shared.clone(),
            previous,
        });
        let object = shared.value().clone();
        self.revision_tx.send_replace(rv);
        if object_resource == crd::CRD_KEY {
            self.crd_changed(st, event_type == EventType::Deleted, &object);
        }
        if event_type == EventType::Deleted && !object_namespace.is_empty() {
            self.reap_namespace(st, &object_namespace);
        }
        object
    }

    /// Commits a write, or for a dry run returns what it would have produced: a new object has
    /// no resourceVersion yet and a changed one keeps its current one (upstream's
    /// `DryRunnableStorage`).
    fn commit_unless_dry_run(
        &self,
        st: &mut State,
        dry_run: bool,
        event_type: EventType,
        key: ObjectKey,
        mut object: Value,
    ) -> Value {
        if !dry_run {
            return self.commit(st, event_type, key, object);
        }
        let stored_rv = st
            .objects
            .get(&key)
            .and_then(|p| meta_str(p, "resourceVersion"))
            .map(str::to_string);
        let m = meta_mut(&mut object);
        match stored_rv {
            Some(rv) => m.insert("resourceVersion".into(), json!(rv)),
            None => m.remove("resourceVersion"),
        };
        object
    }

    /// Serves what the stored CRDs define; a removed CRD takes its objects with it.
    fn crd_changed(&self, st: &mut State, removed: bool, crd: &Value) {
        if removed {
            let resource = meta_str(crd, "name").unwrap_or("").to_string();
            let keys: Vec<ObjectKey> = st
                .objects
                .keys()
                .filter(|k| k.resource == resource)
                .cloned()
                .collect();
            for key in keys {
                if let Some(old) = st.objects.get(&key).map(|o| Value::clone(o)) {
                    self.commit(st, EventType::Deleted, key, old);
                }
            }
        }
        let mut resources = builtin_resources();
        for (_, crd) in st
            .objects
            .iter()
            .filter(|(k, _)| k.resource == crd::CRD_KEY)
        {
            resources.extend(crd::resources(crd));
        }
        st.registry = Registry::new(resources);
    }

    /// Refuses a CRD that is malformed or would take over a resource already served.
    fn check_crd(
        st: &State,
        res: &ResourceInfo,
        crd: &Value,
        existing: bool,
    ) -> Result<(), ApiError> {
        let name = meta_str(crd, "name").unwrap_or("").to_string();
        let invalid = |message: String| ApiError::Invalid {
            target: Self::target(res, &name),
            message,
        };
        crd::validate(crd).map_err(invalid)?;
        if !existing {
            for r in crd::resources(crd) {
                if st
                    .registry
                    .all()
                    .iter()
                    .any(|x| x.group == r.group && x.plural == r.plural)
                {
                    return Err(invalid(format!(
                        "spec.names.plural: Invalid value: {:?}: already served in group {:?}",
                        r.plural, r.group
                    )));
                }
            }
        }
        Ok(())
    }

    /// Sets `apiVersion` and `kind` from the URL, refusing a body that names another type.
    fn check_type(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        let api_version = res.api_version();
        for (field, want) in [
            ("apiVersion", api_version.as_str()),
            ("kind", res.kind.as_str()),
        ] {
            match map.get(field) {
                None | Some(Value::Null) => {
                    map.insert(field.into(), json!(want));
                }
                Some(Value::String(s)) if s == want || s.is_empty() => {
                    map.insert(field.into(), json!(want));
                }
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "the {field} of the provided object ({other}) does not match the {field} of the resource ({want})"
                    )));
                }
            }
        }
        if map.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::BadRequest("metadata must be an object".into()));
        }
        Ok(())
    }

    /// Creates an object. `namespace` is the request's namespace (ignored for cluster-scoped).
    pub fn create(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.create_with(res, namespace, obj, WriteOptions::default(), |_, _| Ok(()))
    }

    /// Creates an object, possibly as a dry run, letting `finish` adjust it last (e.g. record
    /// field managers); it gets no previous object and runs under the store's lock, so it must
    /// not call the store.
    pub fn create_with(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        mut obj: Value,
        opts: WriteOptions,
        finish: impl FnOnce(Option<&Value>, &mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        Self::check_type(res, &mut obj)?;
        let body_ns = meta_str(&obj, "namespace").unwrap_or("").to_string();
        if res.namespaced && !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        if meta_str(&obj, "resourceVersion").is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::Internal(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName").filter(|g| !g.is_empty()) {
                Some(prefix) => name = format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::Invalid {
                        target: Self::target(res, ""),
                        message: "metadata.name: Required value: name or generateName is required"
                            .into(),
                    });
                }
            }
        }
        if res.group == "rbac.authorization.k8s.io" {
            // RBAC names are path segments (`system:discovery`), as upstream validates them.
            if let Some(problem) = path_segment_problem(&name) {
                return Err(ApiError::Invalid {
                    target: Self::target(res, &name),
                    message: format!("metadata.name: Invalid value: {name:?}: {problem}"),
                });
            }
        } else if !is_dns_subdomain(&name) {
            return Err(ApiError::Invalid {
                target: Self::target(res, &name),
                message: format!(
                    "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            });
        }
        let mut st = self.lock();
        if res.namespaced {
            let ns_key = ObjectKey {
                resource: "namespaces".into(),
                namespace: String::new(),
                name: namespace.to_string(),
            };
            match st.objects.get(&ns_key) {
                None => return Err(ApiError::NotFound(Target::new("", "namespaces", namespace))),
                Some(ns) if meta_str(ns, "deletionTimestamp").is_some() => {
                    return Err(ApiError::Forbidden {
                        target: Self::target(res, &name),
                        message: format!(
                            "unable to create new content in namespace {namespace} because it is being terminated"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let key = Self::key(res, namespace, &name);
        if st.objects.contains_key(&key) {
            return Err(ApiError::AlreadyExists(Self::target(res, &name)));
        }
        let is_crd = key.resource == crd::CRD_KEY;
        if is_crd {
            Self::check_crd(&st, res, &obj, false)?;
        }
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if res.namespaced {
            m.insert("namespace".into(), json!(namespace));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now()));
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            m.remove(field);
        }
        if res.generation {
            m.insert("generation".into(), json!(1));
        }
        match res.status_on_create {
            StatusOnCreate::Keep => {}
            StatusOnCreate::Clear => {
                obj.as_object_mut().expect("checked").remove("status");
            }
            StatusOnCreate::PodPending => obj["status"] = json!({ "phase": "Pending" }),
            StatusOnCreate::NamespaceActive => {
                obj["status"] = json!({ "phase": "Active" });
            }
        }
        crate::defaults::on_create(res, &mut obj, services(&st))?;
        if is_crd {
            // What the apiextensions controllers do at once for a CRD without name conflicts.
            obj["status"] = crd::accepted_status(&obj, &now());
        }
        finish(None, &mut obj)?;
        Ok(self.commit_unless_dry_run(&mut st, opts.dry_run, EventType::Added, key, obj))
    }

    pub fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&Self::key(res, namespace, name))
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::NotFound(Self::target(res, name)))
    }

    /// Replaces an object (PUT), through the main endpoint or `/status`.
    pub fn update(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        sub: Subresource,
    ) -> Result<Value, ApiError> {
        self.update_with(
            res,
            namespace,
            name,
            obj,
            sub,
            WriteOptions::default(),
            |_, _| Ok(()),
        )
    }

    /// Replaces an object, possibly as a dry run, letting `finish` adjust the result last,
    /// given the stored object (e.g. record field managers); it runs under the store's lock,
    /// so it must not call the store.
    #[allow(clippy::too_many_arguments)]
    pub fn update_with(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        mut obj: Value,
        sub: Subresource,
        opts: WriteOptions,
        finish: impl FnOnce(Option<&Value>, &mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        Self::check_type(res, &mut obj)?;
        if let Some(body_name) = meta_str(&obj, "name").filter(|n| !n.is_empty())
            && body_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if res.namespaced
            && let Some(body_ns) = meta_str(&obj, "namespace").filter(|n| !n.is_empty())
            && body_ns != namespace
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let mut st = self.lock();
        let key = Self::key(res, namespace, name);
        let old = st
            .objects
            .get(&key)
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::NotFound(Self::target(res, name)))?;
        match meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty()) {
            Some(rv) => {
                let rv = parse_resource_version(rv)?;
                if Some(rv.to_string().as_str()) != meta_str(&old, "resourceVersion") {
                    return Err(ApiError::Conflict {
                        target: Self::target(res, name),
                        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                    });
                }
            }
            None if res.require_resource_version_on_update => {
                return Err(ApiError::Invalid {
                    target: Self::target(res, name),
                    message: "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".into(),
                });
            }
            None => {}
        }
        let mut new = match sub {
            Subresource::Status => {
                let mut n = old.clone();
                match obj.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut()
                            .expect("stored objects are objects")
                            .remove("status");
                    }
                }
                n
            }
            Subresource::Main => {
                let mut n = obj;
                if res.status_subresource {
                    let map = n.as_object_mut().expect("checked");
                    match old.get("status") {
                        Some(s) => map.insert("status".into(), s.clone()),
                        None => map.remove("status"),
                    };
                }
                // System-owned metadata keeps the stored values.
                let old_meta = meta(&old).cloned().unwrap_or_default();
                let m = meta_mut(&mut n);
                for field in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old_meta.get(field) {
                        Some(v) => m.insert(field.into(), v.clone()),
                        None => m.remove(field),
                    };
                }
                crate::defaults::on_update(res, &mut n, &old, services(&st))?;
                n
            }
        };
        if key.resource == crd::CRD_KEY {
            Self::check_crd(&st, res, &new, true)?;
        }
        if sub == Subresource::Main && pod::is_pods(res) {
            pod::check_spec_update(&old, &new).map_err(|message| ApiError::Invalid {
                target: Self::target(res, name),
                message,
            })?;
        }
        let deleting = meta_str(&old, "deletionTimestamp").is_some();
        if deleting {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::Invalid {
                    target: Self::target(res, name),
                    message: format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                });
            }
        }
        if res.generation && spec_part(&new) != spec_part(&old) {
            let generation = meta(&old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if meta(&new).is_none_or(|m| !m.contains_key("managedFields"))
            && let Some(mf) = meta(&old).and_then(|m| m.get("managedFields"))
        {
            // Writers that do not track ownership keep the recorded managers.
            meta_mut(&mut new).insert("managedFields".into(), mf.clone());
        }
        finish(Some(&old), &mut new)?;
        if without_resource_version(&new) == without_resource_version(&old) {
            // A write that changes nothing neither bumps the revision nor emits an event.
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(self.commit_unless_dry_run(&mut st, true, EventType::Modified, key, new));
        }
        if is_namespace(res) {
            // A namespace goes when it is empty, not when its finalizers are.
            let updated = self.commit(&mut st, EventType::Modified, key, new);
            return Ok(self.reap_namespace(&mut st, name).unwrap_or(updated));
        }
        if deleting && finalizers(&new).is_empty() {
            return Ok(self.commit(&mut st, EventType::Deleted, key, new));
        }
        Ok(self.commit(&mut st, EventType::Modified, key, new))
    }

    /// Applies `change` to the current object and commits the result, unless it changes
    /// nothing (etcd's `GuaranteedUpdate`, for server-side changes such as binding).
    pub fn guaranteed_update(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let key = Self::key(res, namespace, name);
        let old = st
            .objects
            .get(&key)
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::NotFound(Self::target(res, name)))?;
        let new = change(&old)?;
        if without_resource_version(&new) == without_resource_version(&old) {
            return Ok(old);
        }
        Ok(self.commit(&mut st, EventType::Modified, key, new))
    }

    /// Deletes an object, or with finalizers, marks it for deletion (`deletionTimestamp`).
    pub fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let preconditions = options;
        let mut st = self.lock();
        let key = Self::key(res, namespace, name);
        let old = st
            .objects
            .get(&key)
            .map(|o| Value::clone(o))
            .ok_or_else(|| ApiError::NotFound(Self::target(res, name)))?;
        if let Some(uid) = &preconditions.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::Conflict {
                target: Self::target(res, name),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            });
        }
        if let Some(rv) = &preconditions.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::Conflict {
                target: Self::target(res, name),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or("")
                ),
            });
        }
        if is_namespace(res) {
            return self.terminate_namespace(&mut st, key, old, options.dry_run);
        }
        Ok(self.delete_locked(&mut st, res, key, old, options))
    }

    /// The deletion itself, once found and preconditions hold.
    fn delete_locked(
        &self,
        st: &mut State,
        res: &ResourceInfo,
        key: ObjectKey,
        old: Value,
        options: &DeleteOptions,
    ) -> Value {
        // Pods bound to a node wait for their kubelet; everything else goes at once.
        let grace = if pod::is_pods(res) {
            pod::deletion_grace_period(&old, options.grace_period_seconds)
        } else {
            0
        };
        let terminating = meta_str(&old, "deletionTimestamp").is_some();
        let current_grace = meta(&old)
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64);
        if grace == 0 && finalizers(&old).is_empty() {
            return self.commit_unless_dry_run(st, options.dry_run, EventType::Deleted, key, old);
        }
        if terminating && current_grace.is_some_and(|g| g <= grace) {
            // Already terminating at least as soon as asked.
            return old;
        }
        let mut new = old.clone();
        let deadline = chrono::Utc::now() + chrono::Duration::seconds(grace);
        let m = meta_mut(&mut new);
        m.insert(
            "deletionTimestamp".into(),
            json!(deadline.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        if res.generation && !terminating {
            let generation = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
            m.insert("generation".into(), json!(generation + 1));
        }
        self.commit_unless_dry_run(st, options.dry_run, EventType::Modified, key, new)
    }

    /// Deleting a namespace: refused for the built-in ones; otherwise it turns Terminating,
    /// its content is deleted (with each object's own rules), and it goes once empty.
    fn terminate_namespace(
        &self,
        st: &mut State,
        key: ObjectKey,
        old: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let name = key.name.clone();
        if PROTECTED_NAMESPACES.contains(&name.as_str()) {
            return Err(ApiError::Forbidden {
                target: Target::new("", "namespaces", &name),
                message: "this namespace may not be deleted".into(),
            });
        }
        let mut current = old.clone();
        if meta_str(&old, "deletionTimestamp").is_none() {
            let mut new = old.clone();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            new["status"] = json!({ "phase": "Terminating" });
            if dry_run {
                return Ok(self.commit_unless_dry_run(st, true, EventType::Modified, key, new));
            }
            current = self.commit(st, EventType::Modified, key, new);
        }
        if dry_run {
            return Ok(current);
        }
        let content: Vec<ObjectKey> = st
            .objects
            .keys()
            .filter(|k| k.namespace == name)
            .cloned()
            .collect();
        for k in content {
            let Some(res) = st.registry.by_storage_key(&k.resource).cloned() else {
                continue;
            };
            let Some(obj) = st.objects.get(&k).map(|o| Value::clone(o)) else {
                continue;
            };
            self.delete_locked(st, &res, k, obj, &DeleteOptions::default());
        }
        Ok(self.reap_namespace(st, &name).unwrap_or(current))
    }

    /// Removes a terminating namespace once nothing is left in it; returns the deleted object.
    fn reap_namespace(&self, st: &mut State, name: &str) -> Option<Value> {
        let key = ObjectKey {
            resource: "namespaces".into(),
            namespace: String::new(),
            name: name.to_string(),
        };
        let ns = st.objects.get(&key)?;
        if meta_str(ns, "deletionTimestamp").is_none()
            || !finalizers(ns).is_empty()
            || st.objects.keys().any(|k| k.namespace == name)
        {
            return None;
        }
        let mut gone = Value::clone(ns);
        gone["spec"] = json!({});
        Some(self.commit(st, EventType::Deleted, key, gone))
    }

    /// Objects of one resource (one namespace, or all when `namespace` is empty) at revision
    /// `at` (the current one when `None`), in key order after `after` (namespace, name), and
    /// the revision they are at. Objects are shared, not copied.
    pub fn snapshot(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        at: Option<u64>,
        after: Option<&(String, String)>,
    ) -> Result<(u64, Snapshot), Compacted> {
        let st = self.lock();
        let resource = res.storage_key();
        let in_scope = |k: &ObjectKey| {
            k.resource == resource
                && (namespace.is_empty() || k.namespace == namespace)
                && after.is_none_or(|(ns, name)| {
                    (k.namespace.as_str(), k.name.as_str()) > (ns.as_str(), name.as_str())
                })
        };
        let lower = match after {
            Some((ns, name)) if namespace.is_empty() || ns == namespace => {
                Bound::Excluded(ObjectKey {
                    resource: resource.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                })
            }
            _ => Bound::Included(ObjectKey {
                resource: resource.clone(),
                namespace: namespace.to_string(),
                name: String::new(),
            }),
        };
        let current = st
            .objects
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| {
                k.resource == resource && (namespace.is_empty() || k.namespace == namespace)
            })
            .filter(|(k, _)| in_scope(k))
            .map(|(k, v)| (k.clone(), v.clone()));
        let Some(at) = at.filter(|at| *at < st.revision) else {
            return Ok((st.revision, current.collect()));
        };
        let mut objects: BTreeMap<ObjectKey, Arc<Stored>> = current.collect();
        // Undo every later change, newest first.
        for e in st.log.since(at)?.rev() {
            if !in_scope(&e.key) {
                continue;
            }
            match &e.previous {
                Some(prev) => objects.insert(e.key.clone(), prev.clone()),
                None => objects.remove(&e.key),
            };
        }
        Ok((at, objects.into_iter().collect()))
    }

    /// Changes to one resource (one namespace, or all when `namespace` is empty) after
    /// revision `after`, and the revision they reach.
    pub fn events_since(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        after: u64,
    ) -> Result<(u64, Vec<Event>), Compacted> {
        let st = self.lock();
        let resource = res.storage_key();
        let events = st
            .log
            .since(after)?
            .filter(|e| {
                e.key.resource == resource && (namespace.is_empty() || e.key.namespace == namespace)
            })
            .cloned()
            .collect();
        Ok((st.revision, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;

    fn res(group: &str, plural: &str) -> ResourceInfo {
        Registry::default()
            .find(group, "v1", plural)
            .unwrap()
            .clone()
    }

    fn cm(name: &str) -> Value {
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "a": "1" } })
    }

    fn rv(obj: &Value) -> u64 {
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn create_sets_server_fields_and_one_global_revision() {
        let s = Store::default();
        let start = s.revision();
        let a = s
            .create(&res("", "configmaps"), "default", cm("a"))
            .unwrap();
        let n = s
            .create(
                &res("", "nodes"),
                "",
                json!({ "metadata": { "name": "n1" } }),
            )
            .unwrap();
        assert_eq!(rv(&a), start + 1);
        assert_eq!(rv(&n), start + 2);
        assert_eq!(a["metadata"]["namespace"], "default");
        assert!(a["metadata"]["uid"].as_str().unwrap().len() >= 32);
        assert!(
            a["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        assert!(
            a["metadata"].get("generation").is_none(),
            "configmaps have no generation"
        );
        assert!(n["metadata"].get("namespace").is_none());
    }

    #[test]
    fn duplicate_create_is_already_exists_and_missing_namespace_is_not_found() {
        let s = Store::default();
        s.create(&res("", "configmaps"), "default", cm("a"))
            .unwrap();
        let e = s
            .create(&res("", "configmaps"), "default", cm("a"))
            .unwrap_err();
        assert_eq!((e.code(), e.reason()), (409, "AlreadyExists"));
        let e = s
            .create(&res("", "configmaps"), "nope", cm("a"))
            .unwrap_err();
        assert_eq!(e.to_string(), "namespaces \"nope\" not found");
    }

    #[test]
    fn create_refuses_bad_names_and_fills_generate_name() {
        let s = Store::default();
        let e = s
            .create(&res("", "configmaps"), "default", cm("Bad_Name"))
            .unwrap_err();
        assert_eq!(e.reason(), "Invalid");
        let e = s
            .create(&res("", "configmaps"), "default", json!({ "metadata": {} }))
            .unwrap_err();
        assert!(
            e.to_string().contains("name or generateName is required"),
            "{e}"
        );
        let g = s
            .create(
                &res("", "configmaps"),
                "default",
                json!({ "metadata": { "generateName": "web-" } }),
            )
            .unwrap();
        let name = g["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    }

    #[test]
    fn stale_update_is_conflict_and_noop_update_keeps_revision() {
        let s = Store::default();
        let r = res("", "configmaps");
        let a = s.create(&r, "default", cm("a")).unwrap();
        let mut b = a.clone();
        b["data"]["a"] = json!("2");
        let b = s.update(&r, "default", "a", b, Subresource::Main).unwrap();
        assert!(rv(&b) > rv(&a));
        let mut stale = a.clone();
        stale["data"]["a"] = json!("3");
        let e = s
            .update(&r, "default", "a", stale, Subresource::Main)
            .unwrap_err();
        assert_eq!((e.code(), e.reason()), (409, "Conflict"));
        let before = s.revision();
        let same = s
            .update(&r, "default", "a", b.clone(), Subresource::Main)
            .unwrap();
        assert_eq!(same, b);
        assert_eq!(s.revision(), before);
    }

    #[test]
    fn generation_follows_spec_only_and_status_is_split() {
        let s = Store::default();
        let r = res("apps", "deployments");
        let d = s
            .create(
                &r,
                "default",
                json!({ "metadata": { "name": "web" }, "spec": { "replicas": 1 }, "status": { "replicas": 9 } }),
            )
            .unwrap();
        assert_eq!(d["metadata"]["generation"], 1);
        assert!(d.get("status").is_none(), "status is dropped on create");

        let mut st = d.clone();
        st["status"] = json!({ "replicas": 1 });
        st["spec"]["replicas"] = json!(5);
        let st = s
            .update(&r, "default", "web", st, Subresource::Status)
            .unwrap();
        assert_eq!(st["status"]["replicas"], 1);
        assert_eq!(st["spec"]["replicas"], 1, "/status ignores spec");
        assert_eq!(st["metadata"]["generation"], 1);

        let mut main = st.clone();
        main["status"] = json!({ "replicas": 7 });
        main["metadata"]["labels"] = json!({ "a": "b" });
        let main = s
            .update(&r, "default", "web", main, Subresource::Main)
            .unwrap();
        assert_eq!(
            main["status"]["replicas"], 1,
            "main endpoint ignores status"
        );
        assert_eq!(main["metadata"]["generation"], 1, "labels are not spec");

        let mut spec = main.clone();
        spec["spec"]["replicas"] = json!(3);
        let spec = s
            .update(&r, "default", "web", spec, Subresource::Main)
            .unwrap();
        assert_eq!(spec["metadata"]["generation"], 2);
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let s = Store::default();
        let r = res("", "configmaps");
        let mut c = cm("f");
        c["metadata"]["finalizers"] = json!(["example.com/x"]);
        let start = s.revision();
        s.create(&r, "default", c).unwrap();
        let marked = s
            .delete(&r, "default", "f", &DeleteOptions::default())
            .unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(
            s.get(&r, "default", "f").is_ok(),
            "object stays while finalizers remain"
        );

        let mut more = marked.clone();
        more["metadata"]["finalizers"] = json!(["example.com/x", "example.com/y"]);
        let e = s
            .update(&r, "default", "f", more, Subresource::Main)
            .unwrap_err();
        assert_eq!((e.code(), e.reason()), (422, "Invalid"));

        let mut done = marked.clone();
        done["metadata"]["finalizers"] = json!([]);
        s.update(&r, "default", "f", done, Subresource::Main)
            .unwrap();
        assert_eq!(s.get(&r, "default", "f").unwrap_err().code(), 404);
        let (_, events) = s.events_since(&r, "default", start).unwrap();
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            vec![EventType::Added, EventType::Modified, EventType::Deleted]
        );
    }

    #[test]
    fn a_crd_serves_its_resource_until_deleted_and_takes_its_objects_with_it() {
        let s = Store::default();
        let crds = res("apiextensions.k8s.io", "customresourcedefinitions");
        let crd = json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "names": { "plural": "widgets", "kind": "Widget" },
                "scope": "Namespaced",
                "versions": [{ "name": "v1", "served": true, "storage": true, "subresources": { "status": {} } }],
            },
        });
        let created = s.create(&crds, "", crd.clone()).unwrap();
        assert_eq!(created["status"]["conditions"][1]["type"], "Established");
        let widgets = s
            .resource("example.com", "v1", "widgets")
            .expect("served once the CRD exists");
        let w = s
            .create(
                &widgets,
                "default",
                json!({ "metadata": { "name": "w" }, "spec": { "size": 1 }, "status": { "x": 1 } }),
            )
            .unwrap();
        assert_eq!(w["metadata"]["generation"], 1);
        assert!(w.get("status").is_none());
        let mut unversioned = w.clone();
        unversioned["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        let e = s
            .update(&widgets, "default", "w", unversioned, Subresource::Main)
            .unwrap_err();
        assert_eq!(
            e.code(),
            422,
            "custom resources need a resourceVersion on update"
        );

        let mut other_group = crd.clone();
        other_group["metadata"]["name"] = json!("pods.example.com");
        other_group["spec"]["names"] = json!({ "plural": "pods", "kind": "Pod" });
        s.create(&crds, "", other_group).unwrap();
        assert!(
            s.resource("example.com", "v1", "pods").is_some(),
            "same plural, other group is fine"
        );
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("x.example.com");
        assert_eq!(s.create(&crds, "", bad).unwrap_err().reason(), "Invalid");

        let before = s.revision();
        s.delete(&crds, "", "widgets.example.com", &DeleteOptions::default())
            .unwrap();
        assert!(s.resource("example.com", "v1", "widgets").is_none());
        let (_, events) = s.events_since(&widgets, "", before).unwrap();
        assert_eq!(events.len(), 1, "the widget is deleted with its CRD");
        assert_eq!(events[0].event_type, EventType::Deleted);
    }

    #[test]
    fn deleting_a_namespace_deletes_its_content_then_itself() {
        let s = Store::default();
        let nss = res("", "namespaces");
        let cms = res("", "configmaps");
        s.create(&nss, "", json!({ "metadata": { "name": "team" } }))
            .unwrap();
        s.create(&cms, "team", cm("plain")).unwrap();
        let mut held = cm("held");
        held["metadata"]["finalizers"] = json!(["example.com/x"]);
        let held = s.create(&cms, "team", held).unwrap();

        let ns = s
            .delete(&nss, "", "team", &DeleteOptions::default())
            .unwrap();
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert_eq!(s.get(&cms, "team", "plain").unwrap_err().code(), 404);
        let e = s.create(&cms, "team", cm("new")).unwrap_err();
        assert_eq!((e.code(), e.reason()), (403, "Forbidden"));

        let mut released = s.get(&cms, "team", "held").unwrap();
        assert!(released["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(released["metadata"]["uid"], held["metadata"]["uid"]);
        released["metadata"]["finalizers"] = json!([]);
        s.update(&cms, "team", "held", released, Subresource::Main)
            .unwrap();
        assert_eq!(
            s.get(&nss, "", "team").unwrap_err().code(),
            404,
            "empty, so gone"
        );

        let e = s
            .delete(&nss, "", "default", &DeleteOptions::default())
            .unwrap_err();
        assert_eq!((e.code(), e.reason()), (403, "Forbidden"));
    }

    #[test]
    fn delete_options_are_checked() {
        let s = Store::default();
        let r = res("", "configmaps");
        s.create(&r, "default", cm("p")).unwrap();
        let e = s
            .delete(
                &r,
                "default",
                "p",
                &DeleteOptions {
                    uid: Some("other".into()),
                    ..DeleteOptions::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.reason(), "Conflict");
        s.delete(&r, "default", "p", &DeleteOptions::default())
            .unwrap();
        assert_eq!(
            s.delete(&r, "default", "p", &DeleteOptions::default())
                .unwrap_err()
                .code(),
            404
        );
    }

    #[test]
    fn snapshot_rebuilds_an_older_revision_until_compacted() {
        let s = Store::default();
        let r = res("", "configmaps");
        s.create(&r, "default", cm("a")).unwrap();
        let at = s.revision();
        s.create(&r, "default", cm("b")).unwrap();
        s.delete(&r, "default", "a", &DeleteOptions::default())
            .unwrap();
        let names = |v: Vec<(ObjectKey, Arc<Stored>)>| {
            v.into_iter().map(|(k, _)| k.name).collect::<Vec<_>>()
        };
        assert_eq!(names(s.snapshot(&r, "", None, None).unwrap().1), vec!["b"]);
        let (rev, old) = s.snapshot(&r, "", Some(at), None).unwrap();
        assert_eq!((rev, names(old)), (at, vec!["a".to_string()]));
        s.compact();
        assert!(s.snapshot(&r, "", Some(at), None).is_err());
    }
}
