//! How the index names objects and orders their versions.

use dovetail_core::sym::Sym;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::observed::WatchedKind;

/// An object's identity within its kind: namespace (namespaced kinds only)
/// and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub namespace: Option<Sym>,
    pub name: Sym,
}

impl Key {
    /// `None` for an object without a name: the API server never sends
    /// one, and there is nothing to index it by.
    pub fn of(kind: WatchedKind, meta: &ObjectMeta) -> Option<Key> {
        let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
        let namespace = namespaced(kind).then(|| {
            Sym::new(
                meta.namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("default"),
            )
        });
        Some(Key {
            namespace,
            name: Sym::new(name),
        })
    }

    pub fn new(namespace: Option<&str>, name: &str) -> Key {
        Key {
            namespace: namespace.map(Sym::new),
            name: Sym::new(name),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

pub(crate) fn namespaced(kind: WatchedKind) -> bool {
    matches!(
        kind,
        WatchedKind::Pod | WatchedKind::DaemonSet | WatchedKind::Pdb
    )
}

/// `metadata.resourceVersion`. Kubernetes calls it opaque; every server
/// in practice (etcd's revision, the in-memory one's) writes a number, and
/// only numbers are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rv {
    Number(u64),
    Text(Box<str>),
}

impl Rv {
    pub fn of(meta: &ObjectMeta) -> Rv {
        let text = meta.resource_version.as_deref().unwrap_or("");
        match text.parse() {
            Ok(n) => Rv::Number(n),
            Err(_) => Rv::Text(text.into()),
        }
    }

    /// Whether an object at `self` replaces one held at `held`. Versions
    /// that are not both numbers cannot be ordered: the newcomer wins.
    pub fn newer_than(&self, held: &Rv) -> bool {
        match (self, held) {
            (Rv::Number(a), Rv::Number(b)) => a > b,
            _ => true,
        }
    }

    /// Whether `self` is known to be older than `other`.
    pub fn older_than(&self, other: &Rv) -> bool {
        matches!((self, other), (Rv::Number(a), Rv::Number(b)) if a < b)
    }
}

impl std::fmt::Display for Rv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rv::Number(n) => write!(f, "{n}"),
            Rv::Text(t) => f.write_str(t),
        }
    }
}

/// What the writes need of an object: its uid (owner references) and
/// resource version (guarded updates); and when the index last applied it.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub uid: Box<str>,
    pub rv: Rv,
    /// Unix ms.
    pub applied_ms: u64,
}

impl Meta {
    pub fn of(meta: &ObjectMeta, applied_ms: u64) -> Meta {
        Meta {
            uid: meta.uid.as_deref().unwrap_or("").into(),
            rv: Rv::of(meta),
            applied_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> Rv {
        Rv::of(&ObjectMeta {
            resource_version: Some(s.into()),
            ..ObjectMeta::default()
        })
    }

    #[test]
    fn numeric_versions_are_ordered_and_others_always_replace() {
        assert!(
            rv("10").newer_than(&rv("9")),
            "compared as numbers, not text"
        );
        assert!(!rv("9").newer_than(&rv("10")));
        assert!(!rv("7").newer_than(&rv("7")), "the same version is no news");
        assert!(rv("abc").newer_than(&rv("abc")));
        assert!(rv("7").newer_than(&rv("x")));
        assert!(rv("9").older_than(&rv("10")) && !rv("x").older_than(&rv("10")));
    }

    #[test]
    fn keys_default_a_namespaced_objects_namespace_and_drop_a_cluster_objects() {
        let meta = |ns: Option<&str>| ObjectMeta {
            name: Some("a".into()),
            namespace: ns.map(Into::into),
            ..ObjectMeta::default()
        };
        assert_eq!(
            Key::of(WatchedKind::Pod, &meta(None)).unwrap().to_string(),
            "default/a"
        );
        assert_eq!(
            Key::of(WatchedKind::Node, &meta(Some("x")))
                .unwrap()
                .to_string(),
            "a"
        );
        assert!(Key::of(WatchedKind::Node, &ObjectMeta::default()).is_none());
    }
}
