//! The resources the server knows: group, version, plural, kind, scope and per-kind rules.

/// What happens to `.status` when an object is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOnCreate {
    /// Kept as sent (nodes: the kubelet registers with its status).
    Keep,
    /// Dropped: status is written through `/status` only.
    Clear,
    /// Pods start `Pending`.
    PodPending,
    /// Namespaces start `Active`.
    NamespaceActive,
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    pub version: String,
    /// Plural name used in URLs, e.g. `pods`.
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource (and so the main endpoint ignores status changes).
    pub status_subresource: bool,
    /// `metadata.generation` is tracked (bumped when the spec changes).
    pub generation: bool,
    pub status_on_create: StatusOnCreate,
    /// Built-in kinds omit `kind`/`apiVersion` on list items; custom resources keep them.
    pub builtin: bool,
    /// A PUT without resourceVersion is refused (custom resources).
    pub require_resource_version_on_update: bool,
    pub short_names: Vec<String>,
    /// A CRD version's `additionalPrinterColumns`, for Table output.
    pub printer_columns: Vec<serde_json::Value>,
}

impl ResourceInfo {
    /// What patches and field selectors need to know of the kind.
    pub fn object_type(&self) -> crate::patch::ObjectType<'_> {
        if self.builtin {
            crate::patch::ObjectType::BuiltIn {
                group: &self.group,
                kind: &self.kind,
            }
        } else {
            crate::patch::ObjectType::CustomResource
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Key under which objects of this resource are stored: `pods`, `deployments.apps`.
    pub fn storage_key(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    generation: bool,
    on_create: StatusOnCreate,
    short: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        status: false,
        generation: false,
        on_create: StatusOnCreate::Keep,
        short: &[],
    }
}

const fn with_status(mut x: Builtin, generation: bool, on_create: StatusOnCreate) -> Builtin {
    x.status = true;
    x.generation = generation;
    x.on_create = on_create;
    x
}

const fn short(mut x: Builtin, names: &'static [&'static str]) -> Builtin {
    x.short = names;
    x
}

use StatusOnCreate::{Clear, Keep, NamespaceActive, PodPending};

const BUILTINS: &[Builtin] = &[
    short(
        with_status(b("", "v1", "pods", "Pod", true), false, PodPending),
        &["po"],
    ),
    short(
        with_status(b("", "v1", "nodes", "Node", false), false, Keep),
        &["no"],
    ),
    short(
        with_status(
            b("", "v1", "namespaces", "Namespace", false),
            false,
            NamespaceActive,
        ),
        &["ns"],
    ),
    short(b("", "v1", "configmaps", "ConfigMap", true), &["cm"]),
    b("", "v1", "secrets", "Secret", true),
    short(
        b("", "v1", "serviceaccounts", "ServiceAccount", true),
        &["sa"],
    ),
    short(b("", "v1", "events", "Event", true), &["ev"]),
    short(
        with_status(b("", "v1", "services", "Service", true), false, Clear),
        &["svc"],
    ),
    short(
        with_status(
            b("apps", "v1", "deployments", "Deployment", true),
            true,
            Clear,
        ),
        &["deploy"],
    ),
    short(
        with_status(
            b("apps", "v1", "replicasets", "ReplicaSet", true),
            true,
            Clear,
        ),
        &["rs"],
    ),
    short(
        with_status(
            b("apps", "v1", "daemonsets", "DaemonSet", true),
            true,
            Clear,
        ),
        &["ds"],
    ),
    short(
        with_status(
            b(
                "policy",
                "v1",
                "poddisruptionbudgets",
                "PodDisruptionBudget",
                true,
            ),
            true,
            Clear,
        ),
        &["pdb"],
    ),
    b("coordination.k8s.io", "v1", "leases", "Lease", true),
    short(b("events.k8s.io", "v1", "events", "Event", true), &["ev"]),
    b("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    short(
        with_status(
            b(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            ),
            true,
            Clear,
        ),
        &["crd", "crds"],
    ),
];

/// The built-in resources every server serves.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|x| ResourceInfo {
            group: x.group.to_string(),
            version: x.version.to_string(),
            plural: x.plural.to_string(),
            singular: x.kind.to_lowercase(),
            kind: x.kind.to_string(),
            namespaced: x.namespaced,
            status_subresource: x.status,
            generation: x.generation,
            status_on_create: x.on_create,
            builtin: true,
            require_resource_version_on_update: false,
            short_names: x.short.iter().map(|s| s.to_string()).collect(),
            printer_columns: Vec::new(),
        })
        .collect()
}

/// Served resources, looked up by group, version and plural.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<ResourceInfo>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            resources: builtin_resources(),
        }
    }
}

impl Registry {
    pub fn new(resources: Vec<ResourceInfo>) -> Self {
        Self { resources }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource whose objects are stored under `key` (any of its served versions).
    pub fn by_storage_key(&self, key: &str) -> Option<&ResourceInfo> {
        self.resources.iter().find(|r| r.storage_key() == key)
    }

    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Group-versions served, core first, in registration order.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.resources {
            let gv = (r.group.clone(), r.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceInfo> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_kind_is_served() {
        let r = Registry::default();
        for (g, p) in [
            ("", "pods"),
            ("", "nodes"),
            ("", "namespaces"),
            ("", "configmaps"),
            ("", "events"),
            ("", "services"),
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("apps", "daemonsets"),
            ("policy", "poddisruptionbudgets"),
            ("coordination.k8s.io", "leases"),
            ("events.k8s.io", "events"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
        ] {
            assert!(r.find(g, "v1", p).is_some(), "{g}/{p} missing");
        }
        assert_eq!(
            r.find("apps", "v1", "deployments").unwrap().api_version(),
            "apps/v1"
        );
        assert_eq!(r.find("", "v1", "pods").unwrap().storage_key(), "pods");
        assert!(r.find("", "v1", "widgets").is_none());
    }
}
