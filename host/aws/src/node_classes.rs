//! The EC2NodeClasses launches use, as last resolved: spec and status
//! (subnets, security groups, AMIs, instance profile). The node-class loop
//! writes them; the cloud provider reads them at each launch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dovetail_api::ec2nodeclass::EC2NodeClass;

/// Shared between the resolving loop and the cloud provider; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NodeClasses(Arc<Store>);

#[derive(Debug, Default)]
struct Store {
    classes: RwLock<BTreeMap<String, Arc<EC2NodeClass>>>,
    /// Bumped when a class is added or removed or its spec changes, so
    /// what is derived from the specs (node sizing) is remade only then.
    generation: AtomicU64,
}

impl NodeClasses {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `class` (with its resolved status) under its name.
    pub fn set(&self, class: EC2NodeClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        let mut classes = self.write();
        let changed = classes.get(&name).is_none_or(|old| old.spec != class.spec);
        classes.insert(name, Arc::new(class));
        if changed {
            self.0.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub fn remove(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        let removed = self.write().remove(name);
        if removed.is_some() {
            self.0.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    pub fn get(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        self.read().get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<EC2NodeClass>> {
        self.read().values().cloned().collect()
    }

    /// Changes with every added or removed class and every spec change.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<EC2NodeClass>>> {
        self.0.classes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<EC2NodeClass>>> {
        self.0.classes.write().unwrap_or_else(|e| e.into_inner())
    }
}
