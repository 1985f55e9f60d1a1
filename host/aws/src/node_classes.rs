//! The EC2NodeClasses launches use, as last resolved: spec and status
//! (subnets, security groups, AMIs, instance profile). The node-class loop
//! writes them; the cloud provider reads them at each launch.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use dovetail_api::ec2nodeclass::EC2NodeClass;

/// Shared between the resolving loop and the cloud provider; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NodeClasses(Arc<RwLock<BTreeMap<String, Arc<EC2NodeClass>>>>);

impl NodeClasses {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `class` (with its resolved status) under its name.
    pub fn set(&self, class: EC2NodeClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Arc::new(class));
    }

    pub fn remove(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<EC2NodeClass>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<EC2NodeClass>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
