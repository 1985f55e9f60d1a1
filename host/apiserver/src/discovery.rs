//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>` and the resource lists.
//!
//! Answers are the plain (non-aggregated) forms; clients that ask for aggregated discovery fall
//! back to them, as client-go does.

use serde_json::{Value, json};

use crate::resource::{Registry, ResourceInfo};

/// The Kubernetes version this server speaks (matches the `k8s-openapi` feature in use).
pub const KUBERNETES_MAJOR: &str = "1";
pub const KUBERNETES_MINOR: &str = "33";

/// Verbs every served resource supports.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

pub fn version() -> Value {
    json!({
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0-dovetail"),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "none",
        "compiler": "dovetail",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group_doc(registry: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(g, v)| json!({ "groupVersion": format!("{g}/{v}"), "version": v }))
        .collect();
    json!({
        "name": group,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        "versions": versions,
    })
}

pub fn group_list(registry: &Registry) -> Value {
    let mut groups: Vec<String> = Vec::new();
    for (g, _) in registry.group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.iter().map(|g| group_doc(registry, g)).collect::<Vec<_>>(),
    })
}

/// `/apis/<group>`, or `None` when the group is not served.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    if group.is_empty() || !registry.all().iter().any(|r| r.group == group) {
        return None;
    }
    let mut doc = group_doc(registry, group);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
        "shortNames": r.short_names,
    })];
    if r.builtin && r.group.is_empty() && r.plural == "pods" {
        out.push(json!({
            "name": "pods/binding",
            "singularName": "",
            "namespaced": true,
            "kind": "Binding",
            "verbs": ["create"],
        }));
    }
    if crate::scale::has_scale(r) {
        out.push(json!({
            "name": format!("{}/scale", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    if r.status_subresource {
        out.push(json!({
            "name": format!("{}/status", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": STATUS_VERBS,
        }));
    }
    out
}

/// `/api/v1` or `/apis/<group>/<version>`, or `None` when not served.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = registry
        .in_group_version(group, version)
        .flat_map(resource_entries)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_exclude_core_and_resource_lists_show_status_subresources() {
        let r = Registry::default();
        let groups = group_list(&r);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"apps") && names.contains(&"rbac.authorization.k8s.io"));
        assert!(!names.contains(&""));
        let core = resource_list(&r, "", "v1").unwrap();
        let res: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert!(
            res.contains(&"pods")
                && res.contains(&"pods/status")
                && !res.contains(&"configmaps/status")
        );
        assert!(resource_list(&r, "apps", "v2").is_none());
        assert_eq!(
            group(&r, "apps").unwrap()["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
    }
}
