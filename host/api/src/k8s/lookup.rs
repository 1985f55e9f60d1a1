//! The objects a pod's conversion refers to: its volumes' claims, volumes
//! and storage classes (for volume topology), and its priority and runtime
//! classes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::object::namespace_of;

/// The annotation that makes a StorageClass the default.
pub const DEFAULT_STORAGE_CLASS: &str = "storageclass.kubernetes.io/is-default-class";

/// Finds the objects a pod refers to. [`Objects`] holds them in memory; the
/// Kubernetes adapter implements it over its caches.
pub trait Lookup {
    fn claim(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim>;
    fn volume(&self, name: &str) -> Option<&PersistentVolume>;
    fn storage_class(&self, name: &str) -> Option<&StorageClass>;
    /// The class a claim without `storageClassName` gets.
    fn default_storage_class(&self) -> Option<&StorageClass>;
    fn priority_class(&self, name: &str) -> Option<&PriorityClass>;
    /// The class with `globalDefault: true`.
    fn default_priority_class(&self) -> Option<&PriorityClass>;
    fn runtime_class(&self, name: &str) -> Option<&RuntimeClass>;
}

/// Objects held in memory, e.g. read from YAML. Empty by default: a pod
/// with no volumes, priority class or runtime class needs nothing.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    claims: BTreeMap<(String, String), PersistentVolumeClaim>,
    volumes: BTreeMap<String, PersistentVolume>,
    storage_classes: BTreeMap<String, StorageClass>,
    priority_classes: BTreeMap<String, PriorityClass>,
    runtime_classes: BTreeMap<String, RuntimeClass>,
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl Objects {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a claim, by namespace and name.
    pub fn add_claim(&mut self, claim: PersistentVolumeClaim) {
        let key = (
            namespace_of(&claim.metadata).to_owned(),
            name(&claim.metadata),
        );
        self.claims.insert(key, claim);
    }

    pub fn add_volume(&mut self, volume: PersistentVolume) {
        self.volumes.insert(name(&volume.metadata), volume);
    }

    pub fn add_storage_class(&mut self, class: StorageClass) {
        self.storage_classes.insert(name(&class.metadata), class);
    }

    pub fn add_priority_class(&mut self, class: PriorityClass) {
        self.priority_classes.insert(name(&class.metadata), class);
    }

    pub fn add_runtime_class(&mut self, class: RuntimeClass) {
        self.runtime_classes.insert(name(&class.metadata), class);
    }
}

impl Lookup for Objects {
    fn claim(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        self.claims.get(&(namespace.to_owned(), name.to_owned()))
    }

    fn volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.volumes.get(name)
    }

    fn storage_class(&self, name: &str) -> Option<&StorageClass> {
        self.storage_classes.get(name)
    }

    fn default_storage_class(&self) -> Option<&StorageClass> {
        // With several defaults the API server picks the newest.
        self.storage_classes
            .values()
            .filter(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_STORAGE_CLASS))
                    .is_some_and(|v| v == "true")
            })
            .max_by(|a, b| {
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
                    .then_with(|| b.metadata.name.cmp(&a.metadata.name))
            })
    }

    fn priority_class(&self, name: &str) -> Option<&PriorityClass> {
        self.priority_classes.get(name)
    }

    fn default_priority_class(&self) -> Option<&PriorityClass> {
        self.priority_classes
            .values()
            .find(|c| c.global_default == Some(true))
    }

    fn runtime_class(&self, name: &str) -> Option<&RuntimeClass> {
        self.runtime_classes.get(name)
    }
}
