//! What a conversion could not carry over exactly. A warning never hides a
//! field that changes a decision: each names the object, the field and what
//! Dovetail will do differently because of it.

use std::fmt;

use super::ObjectRef;

/// A field the conversion read approximately, ignored, or could not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub object: ObjectRef,
    /// From the object's root, e.g.
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields`.
    pub path: String,
    pub reason: WarningReason,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.path, self.reason)
    }
}

/// Why a field is not carried over exactly, and what that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningReason {
    /// `matchFields` in a node selector term: Dovetail, like Karpenter,
    /// plans with `matchExpressions` only.
    MatchFields,
    /// A node selector term with neither expressions nor fields.
    EmptyNodeSelectorTerm,
    /// `spec.schedulingGates`: the pod is held back from scheduling.
    SchedulingGates { gates: Vec<String> },
    /// `spec.resourceClaims` (dynamic resource allocation).
    ResourceClaims,
    /// A PersistentVolumeClaim the lookup does not have.
    UnresolvedClaim { namespace: String, name: String },
    /// A PersistentVolume the lookup does not have.
    UnresolvedVolume { name: String },
    /// A StorageClass the lookup does not have.
    UnresolvedStorageClass { name: String },
    /// A PriorityClass the lookup does not have.
    UnresolvedPriorityClass { name: String },
    /// A RuntimeClass the lookup does not have (pod templates only: a
    /// created pod already carries its class's overhead and scheduling).
    UnresolvedRuntimeClass { name: String },
    /// A volume's topology on a key other than the zone: applied as required
    /// node affinity.
    VolumeRequirement { key: String },
    /// The pod's volumes allow no zone in common.
    DisjointVolumeZones,
    /// `karpenter.sh/do-not-disrupt` with a value that is neither `"true"`
    /// nor a duration.
    InvalidDoNotDisrupt { value: String },
    /// `controller.kubernetes.io/pod-deletion-cost` that is not an integer.
    InvalidDeletionCost { value: String },
    /// `karpenter.sh/nodepool-hash` that is not a hash Dovetail writes.
    InvalidNodePoolHash { value: String },
    /// A PodDisruptionBudget without `status` (not read from a cluster).
    MissingDisruptionStatus,
    /// `unhealthyPodEvictionPolicy: AlwaysAllow`.
    AlwaysAllowUnhealthy,
}

impl fmt::Display for WarningReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MatchFields => f.write_str(
                "matchFields is not modelled (Karpenter ignores it too): the term is read from its matchExpressions alone, so the pod may be planned onto a node its matchFields exclude; use a matchExpressions term on kubernetes.io/hostname instead",
            ),
            Self::EmptyNodeSelectorTerm => f.write_str(
                "an empty node selector term matches no node in Kubernetes, but Dovetail, like Karpenter, reads it as matching every node; remove the term or give it matchExpressions",
            ),
            Self::SchedulingGates { gates } => write!(
                f,
                "the pod is held back from scheduling by {}; Karpenter does not provision for gated pods, but Dovetail's engines would plan a node for it if it is treated as pending",
                gates
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::ResourceClaims => f.write_str(
                "dynamic resource allocation claims are not modelled (Karpenter ignores them by default): Dovetail may plan a node without the devices the claims ask for",
            ),
            Self::UnresolvedClaim { namespace, name } => write!(
                f,
                "PersistentVolumeClaim `{namespace}/{name}` was not given, so the zone its volume is in is unknown and the pod may be planned in another zone; add the claim (and its PersistentVolume or StorageClass) to the lookup"
            ),
            Self::UnresolvedVolume { name } => write!(
                f,
                "PersistentVolume `{name}` was not given, so the zone it is in is unknown and the pod may be planned in another zone; add the volume to the lookup"
            ),
            Self::UnresolvedStorageClass { name } => write!(
                f,
                "StorageClass `{name}` was not given, so its allowed topologies are unknown and the pod may be planned in a zone it cannot provision in; add the class to the lookup"
            ),
            Self::UnresolvedPriorityClass { name } => write!(
                f,
                "PriorityClass `{name}` was not given, so the pod's priority is taken as 0, which changes the order pods are planned in; add the class to the lookup or set spec.priority"
            ),
            Self::UnresolvedRuntimeClass { name } => write!(
                f,
                "RuntimeClass `{name}` was not given, so its pod overhead and scheduling constraints, which the API server adds to each pod, are left out; add the class to the lookup"
            ),
            Self::VolumeRequirement { key } => write!(
                f,
                "the volume's topology on `{key}` is applied as required node affinity (only zones are modelled as volume topology), so it also narrows the domains of topology spread with nodeAffinityPolicy: Honor"
            ),
            Self::DisjointVolumeZones => f.write_str(
                "the pod's volumes are in different zones, so no node can run it; Dovetail will not plan a node for it",
            ),
            Self::InvalidDoNotDisrupt { value } => write!(
                f,
                "`{value}` is neither \"true\" nor a duration such as `5m`, so it does not protect the pod (Karpenter ignores it too)"
            ),
            Self::InvalidDeletionCost { value } => write!(
                f,
                "`{value}` is not a 32-bit integer, so the pod's deletion cost is taken as 0, which changes which nodes consolidation prefers"
            ),
            Self::InvalidNodePoolHash { value } => write!(
                f,
                "`{value}` is not a NodePool hash Dovetail writes (a decimal number), so the node is never found drifted from its NodePool's template"
            ),
            Self::MissingDisruptionStatus => f.write_str(
                "status.disruptionsAllowed is absent (the object was not read from a cluster), so no voluntary eviction is allowed; compute it from the pods the budget covers",
            ),
            Self::AlwaysAllowUnhealthy => f.write_str(
                "unhealthy pods may be evicted whatever the budget allows, which Dovetail does not model: it counts them against the budget",
            ),
        }
    }
}
