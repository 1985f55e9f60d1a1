//! Request paths of the Kubernetes API, parsed into what they address.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiPath {
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    /// A collection, an object or an object's subresource.
    Resource(ResourcePath),
}

/// `…/[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let base = |namespace: Option<&str>, rest: &[&str]| -> Option<ResourcePath> {
        if rest.is_empty() || rest.len() > 3 || rest.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: rest[0].to_string(),
            name: rest.get(1).map(|s| s.to_string()),
            subresource: rest.get(2).map(|s| s.to_string()),
        })
    };
    match rest {
        // A namespace's own subresources, not a resource in that namespace.
        ["namespaces", _, "status" | "finalize"] if group.is_empty() => base(None, rest),
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => base(Some(ns), tail),
        _ => base(None, rest),
    }
}

/// Parses a path; `None` when it addresses nothing the API serves.
pub fn parse(path: &str) -> Option<ApiPath> {
    let segments: Vec<&str> = path
        .trim_end_matches('/')
        .trim_start_matches('/')
        .split('/')
        .collect();
    match segments.as_slice() {
        ["version"] => Some(ApiPath::Version),
        ["api"] => Some(ApiPath::CoreVersions),
        ["api", v] => Some(ApiPath::ResourceList {
            group: String::new(),
            version: v.to_string(),
        }),
        ["api", v, rest @ ..] => resource("", v, rest).map(ApiPath::Resource),
        ["apis"] => Some(ApiPath::Groups),
        ["apis", g] => Some(ApiPath::Group(g.to_string())),
        ["apis", g, v] => Some(ApiPath::ResourceList {
            group: g.to_string(),
            version: v.to_string(),
        }),
        ["apis", g, v, rest @ ..] => resource(g, v, rest).map(ApiPath::Resource),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Some(ApiPath::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_cluster_scoped_and_subresource_paths() {
        let p = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            (Some("default"), "pods", Some("web"), Some("status"))
        );
        let p = res("/apis/apps/v1/deployments");
        assert_eq!(
            (p.group.as_str(), p.namespace, p.name),
            ("apps", None, None)
        );
        let p = res("/api/v1/namespaces/kube-system");
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let p = res("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (p.namespace, p.subresource.as_deref()),
            (None, Some("status"))
        );
        let p = res("/api/v1/namespaces/kube-system/configmaps");
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str()),
            (Some("kube-system"), "configmaps")
        );
        assert_eq!(parse("/apis/apps"), Some(ApiPath::Group("apps".into())));
        assert_eq!(parse("/version/"), Some(ApiPath::Version));
        assert!(parse("/api/v1/namespaces/a/pods/b/status/extra").is_none());
        assert!(parse("/healthz/x").is_none());
        assert!(parse("/api/v1//pods").is_none());
    }
}
