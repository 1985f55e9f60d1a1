//! Which Kubernetes object a warning or an error is about.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An object's kind, namespace (for namespaced kinds) and name, as
/// `kubectl` names it: `Pod default/web-0`, `Node ip-10-0-1-7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object; a missing namespace is `default`, as the API
    /// server fills it in.
    pub(crate) fn namespaced(kind: &'static str, meta: &ObjectMeta) -> Self {
        Self {
            kind,
            namespace: Some(namespace_of(meta).to_owned()),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    pub(crate) fn cluster(kind: &'static str, meta: &ObjectMeta) -> Self {
        Self {
            kind,
            namespace: None,
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// `metadata.namespace`, `default` when left out.
pub(crate) fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "(unnamed)"
        } else {
            &self.name
        };
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{name}", self.kind),
            None => write!(f, "{} {name}", self.kind),
        }
    }
}
