//! Objects as the API server returned them, from a watch or from a write.
//! The index applies both the same way, so a NodeClaim the controller just
//! created is in its state before the watch brings it back, and the watch's
//! copy (same or older resource version) changes nothing.

use dovetail_api::{EC2NodeClass, NodeClaim, NodePool};
use dovetail_control::actions::ObjectKind;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

/// One object of a kind the controller watches.
#[derive(Debug, Clone)]
pub enum Observed {
    NodePool(Box<NodePool>),
    NodeClaim(Box<NodeClaim>),
    Ec2NodeClass(Box<EC2NodeClass>),
    Node(Box<Node>),
    Pod(Box<Pod>),
    DaemonSet(Box<DaemonSet>),
    Pdb(Box<PodDisruptionBudget>),
    Namespace(Box<Namespace>),
}

/// The kinds the controller watches, for the synced gate and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchedKind {
    NodePool,
    NodeClaim,
    Ec2NodeClass,
    Node,
    Pod,
    DaemonSet,
    Pdb,
    Namespace,
}

impl WatchedKind {
    pub const ALL: [WatchedKind; 8] = [
        WatchedKind::NodePool,
        WatchedKind::NodeClaim,
        WatchedKind::Ec2NodeClass,
        WatchedKind::Node,
        WatchedKind::Pod,
        WatchedKind::DaemonSet,
        WatchedKind::Pdb,
        WatchedKind::Namespace,
    ];
}

impl Observed {
    pub fn kind(&self) -> WatchedKind {
        match self {
            Observed::NodePool(_) => WatchedKind::NodePool,
            Observed::NodeClaim(_) => WatchedKind::NodeClaim,
            Observed::Ec2NodeClass(_) => WatchedKind::Ec2NodeClass,
            Observed::Node(_) => WatchedKind::Node,
            Observed::Pod(_) => WatchedKind::Pod,
            Observed::DaemonSet(_) => WatchedKind::DaemonSet,
            Observed::Pdb(_) => WatchedKind::Pdb,
            Observed::Namespace(_) => WatchedKind::Namespace,
        }
    }
}

/// What a watch (or a write) tells the index.
#[derive(Debug, Clone)]
pub enum Change {
    /// Created or updated.
    Applied(Observed),
    Deleted(Observed),
    /// A (re)list of `kind` begins: objects not seen again before
    /// [`Change::Listed`] are gone (after a 410 the watcher relists).
    Relisting(WatchedKind),
    /// The list of `kind` is complete.
    Listed(WatchedKind),
}

/// What the writes need to know about objects in the index: owner
/// references need the NodePool's uid; updates are guarded by resource
/// version.
pub trait Lookup {
    /// `metadata.uid` of an object the index holds.
    fn uid(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> Option<String>;
    /// `metadata.resourceVersion` of an object the index holds.
    fn resource_version(
        &self,
        kind: ObjectKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<String>;
}

impl WatchedKind {
    /// The kind's plural, as messages name it.
    pub fn plural(self) -> &'static str {
        match self {
            WatchedKind::NodePool => "NodePools",
            WatchedKind::NodeClaim => "NodeClaims",
            WatchedKind::Ec2NodeClass => "EC2NodeClasses",
            WatchedKind::Node => "Nodes",
            WatchedKind::Pod => "Pods",
            WatchedKind::DaemonSet => "DaemonSets",
            WatchedKind::Pdb => "PodDisruptionBudgets",
            WatchedKind::Namespace => "Namespaces",
        }
    }

    /// The kind's name, as Kubernetes spells it.
    pub fn name(self) -> &'static str {
        match self {
            WatchedKind::NodePool => "NodePool",
            WatchedKind::NodeClaim => "NodeClaim",
            WatchedKind::Ec2NodeClass => "EC2NodeClass",
            WatchedKind::Node => "Node",
            WatchedKind::Pod => "Pod",
            WatchedKind::DaemonSet => "DaemonSet",
            WatchedKind::Pdb => "PodDisruptionBudget",
            WatchedKind::Namespace => "Namespace",
        }
    }

    /// Position in [`WatchedKind::ALL`], for per-kind tables.
    pub fn position(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for WatchedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The annotation `kubectl apply` writes: the whole object again, read by
/// no decision.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops the metadata no decision reads and that can dwarf the rest of an
/// object: `managedFields` and kubectl's last-applied configuration.
pub fn trim_metadata(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = &mut meta.annotations {
        a.remove(LAST_APPLIED_ANNOTATION);
    }
}

impl Observed {
    /// The object's metadata, whatever its kind.
    pub fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Observed::NodePool(o) => &o.metadata,
            Observed::NodeClaim(o) => &o.metadata,
            Observed::Ec2NodeClass(o) => &o.metadata,
            Observed::Node(o) => &o.metadata,
            Observed::Pod(o) => &o.metadata,
            Observed::DaemonSet(o) => &o.metadata,
            Observed::Pdb(o) => &o.metadata,
            Observed::Namespace(o) => &o.metadata,
        }
    }
}

impl Observed {
    pub fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Observed::NodePool(o) => &mut o.metadata,
            Observed::NodeClaim(o) => &mut o.metadata,
            Observed::Ec2NodeClass(o) => &mut o.metadata,
            Observed::Node(o) => &mut o.metadata,
            Observed::Pod(o) => &mut o.metadata,
            Observed::DaemonSet(o) => &mut o.metadata,
            Observed::Pdb(o) => &mut o.metadata,
            Observed::Namespace(o) => &mut o.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kinds_position_is_its_place_in_all() {
        for (i, kind) in WatchedKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.position(), i, "{kind}");
        }
    }
}
