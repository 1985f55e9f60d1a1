//! A NodeClaim as Dovetail reasons about it: the request for one node (what
//! the provisioner or a disruption command asked for) and what became of it
//! (launched instance, registered node, conditions). `dovetail-api` converts
//! the `karpenter.sh/v1` object to and from this value; the orchestration in
//! `dovetail-control` reads and updates it.

use std::fmt;
use std::time::Duration;

use crate::catalog::{CapacityType, Catalog};
use crate::model::{Labels, NodeClassRef, Taint};
use crate::requirements::NodeSelectorRequirement;
use crate::resources::Resources;
use crate::scheduler::OfferingRef;
use crate::sym::Sym;

/// The finalizer Karpenter puts on NodeClaims and Nodes it terminates.
pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";
/// Tainted on disruption candidates and deleting nodes.
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
/// Registered with the kubelet, removed once the node is synced.
pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";
pub const REGISTERED_LABEL: &str = "karpenter.sh/registered";
pub const INITIALIZED_LABEL: &str = "karpenter.sh/initialized";
/// Set on nodes whose kubelet already received the NodeClaim's taints.
pub const DO_NOT_SYNC_TAINTS_LABEL: &str = "karpenter.sh/do-not-sync-taints";
pub const NODEPOOL_HASH_ANNOTATION: &str = "karpenter.sh/nodepool-hash";
pub const NODEPOOL_HASH_VERSION_ANNOTATION: &str = "karpenter.sh/nodepool-hash-version";
/// `"true"` when `minValuesPolicy: BestEffort` relaxed a `minValues` to
/// plan the NodeClaim, else `"false"`.
pub const MIN_VALUES_RELAXED_ANNOTATION: &str = "karpenter.sh/nodeclaim-min-values-relaxed";
pub const TERMINATION_TIMESTAMP_ANNOTATION: &str = "karpenter.sh/nodeclaim-termination-timestamp";

/// The condition types Karpenter sets on a NodeClaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionType {
    Launched,
    Registered,
    Initialized,
    Ready,
    Drifted,
    Consolidatable,
    DisruptionReason,
    Drained,
    VolumesDetached,
    InstanceTerminating,
    ConsistentStateFound,
}

impl ConditionType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Launched => "Launched",
            Self::Registered => "Registered",
            Self::Initialized => "Initialized",
            Self::Ready => "Ready",
            Self::Drifted => "Drifted",
            Self::Consolidatable => "Consolidatable",
            Self::DisruptionReason => "DisruptionReason",
            Self::Drained => "Drained",
            Self::VolumesDetached => "VolumesDetached",
            Self::InstanceTerminating => "InstanceTerminating",
            Self::ConsistentStateFound => "ConsistentStateFound",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Launched,
            Self::Registered,
            Self::Initialized,
            Self::Ready,
            Self::Drifted,
            Self::Consolidatable,
            Self::DisruptionReason,
            Self::Drained,
            Self::VolumesDetached,
            Self::InstanceTerminating,
            Self::ConsistentStateFound,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The conditions the root `Ready` condition depends on.
    pub const READY_DEPENDENTS: [Self; 3] = [Self::Launched, Self::Registered, Self::Initialized];
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        })
    }
}

/// Why a condition has its status: Karpenter's reason strings, typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConditionReason {
    /// Set true: the reason is the condition's own type name.
    Succeeded(ConditionType),
    AwaitingReconciliation,
    ReconcilingDependents,
    UnhealthyDependents,
    LaunchFailed,
    /// A cloud-specific create error (e.g. `SubnetResolutionFailed`).
    CreateError(String),
    NodeNotFound,
    MultipleNodesFound,
    NodeNotReady,
    StartupTaintsExist,
    KnownEphemeralTaintsExist,
    ResourceNotRegistered,
    Draining,
    /// `DisruptionReason` and `Drifted` carry their reason as text.
    Other(String),
}

impl ConditionReason {
    /// The reason a condition of type `kind` carries as written in the
    /// object: Karpenter's named reasons come back as themselves, so a
    /// condition read from the API compares equal to the one that was
    /// written. A launch's unnamed reason is the cloud's create error.
    pub fn parse(kind: ConditionType, reason: &str) -> Self {
        match reason {
            "AwaitingReconciliation" => Self::AwaitingReconciliation,
            "ReconcilingDependents" => Self::ReconcilingDependents,
            "UnhealthyDependents" => Self::UnhealthyDependents,
            "LaunchFailed" => Self::LaunchFailed,
            "NodeNotFound" => Self::NodeNotFound,
            "MultipleNodesFound" => Self::MultipleNodesFound,
            "NodeNotReady" => Self::NodeNotReady,
            "StartupTaintsExist" => Self::StartupTaintsExist,
            "KnownEphemeralTaintsExist" => Self::KnownEphemeralTaintsExist,
            "ResourceNotRegistered" => Self::ResourceNotRegistered,
            "Draining" => Self::Draining,
            r if r == kind.name() => Self::Succeeded(kind),
            r if kind == ConditionType::Launched => Self::CreateError(r.to_string()),
            r => Self::Other(r.to_string()),
        }
    }
}

impl fmt::Display for ConditionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded(t) => f.write_str(t.name()),
            Self::AwaitingReconciliation => f.write_str("AwaitingReconciliation"),
            Self::ReconcilingDependents => f.write_str("ReconcilingDependents"),
            Self::UnhealthyDependents => f.write_str("UnhealthyDependents"),
            Self::LaunchFailed => f.write_str("LaunchFailed"),
            Self::CreateError(r) | Self::Other(r) => f.write_str(r),
            Self::NodeNotFound => f.write_str("NodeNotFound"),
            Self::MultipleNodesFound => f.write_str("MultipleNodesFound"),
            Self::NodeNotReady => f.write_str("NodeNotReady"),
            Self::StartupTaintsExist => f.write_str("StartupTaintsExist"),
            Self::KnownEphemeralTaintsExist => f.write_str("KnownEphemeralTaintsExist"),
            Self::ResourceNotRegistered => f.write_str("ResourceNotRegistered"),
            Self::Draining => f.write_str("Draining"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: ConditionType,
    pub status: ConditionStatus,
    pub reason: ConditionReason,
    pub message: String,
    /// Unix milliseconds; changes only when `status` changes.
    pub last_transition_ms: u64,
}

/// The offering a NodeClaim was launched on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaunchedOffering {
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub price: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeClaimStatus {
    /// `aws:///<zone>/<instance-id>` once launched.
    pub provider_id: Option<String>,
    pub image_id: Option<String>,
    pub node_name: Option<Sym>,
    pub capacity: Resources,
    pub allocatable: Resources,
    pub launched: Option<LaunchedOffering>,
    /// Last pod bound to or removed from its node (Unix ms).
    pub last_pod_event_ms: Option<u64>,
    pub conditions: Vec<Condition>,
}

/// A request for one node, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeClaim {
    pub name: Sym,
    /// The owning NodePool; `None` for nodes made outside NodePools (the
    /// simulator's static baseline).
    pub node_pool: Option<Sym>,
    pub labels: Labels,
    pub annotations: Labels,
    pub requirements: Vec<NodeSelectorRequirement>,
    /// The pods' requests plus DaemonSet overhead, as planned.
    pub requests: Resources,
    pub taints: Vec<Taint>,
    pub startup_taints: Vec<Taint>,
    pub node_class_ref: NodeClassRef,
    /// `None` = `Never`.
    pub expire_after: Option<Duration>,
    /// `None`: a drain waits for as long as it takes.
    pub termination_grace_period: Option<Duration>,
    /// The offerings to try, in order, as instance selection ranked them.
    pub launch: Vec<OfferingRef>,
    /// The NodePool template hash it was made from.
    pub node_pool_hash: Option<u64>,
    pub created_ms: u64,
    /// Deletion was requested (`metadata.deletionTimestamp`), Unix ms.
    pub deletion_ms: Option<u64>,
    /// Whether `karpenter.sh/termination` is still on it.
    pub finalizer: bool,
    pub status: NodeClaimStatus,
}

impl NodeClaim {
    pub fn condition(&self, kind: ConditionType) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.kind == kind)
    }

    pub fn is_true(&self, kind: ConditionType) -> bool {
        self.condition(kind)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// The offering this claim runs on: its launch result, or, for a claim
    /// read back from the API (whose object holds none), the one its
    /// instance-type, zone and capacity-type labels name. `price` is what
    /// `catalog` asks for it, 0 when the catalog no longer offers it.
    pub fn offering(&self, catalog: Option<&Catalog>) -> Option<LaunchedOffering> {
        if let Some(l) = self.status.launched {
            return Some(l);
        }
        let get = |k: &str| crate::model::label(&self.labels, Sym::new(k));
        let instance_type = get(crate::labels::INSTANCE_TYPE)?;
        let zone = get(crate::labels::ZONE)?;
        let capacity_type = CapacityType::from_label(get(crate::labels::CAPACITY_TYPE)?.as_str())?;
        let price = catalog
            .and_then(|c| c.get(instance_type.as_str()))
            .and_then(|it| it.offering(zone.as_str(), capacity_type))
            .map_or(0.0, |o| o.price);
        Some(LaunchedOffering {
            instance_type,
            zone,
            capacity_type,
            price,
        })
    }

    pub fn launched(&self) -> bool {
        self.is_true(ConditionType::Launched)
    }

    pub fn registered(&self) -> bool {
        self.is_true(ConditionType::Registered)
    }

    pub fn initialized(&self) -> bool {
        self.is_true(ConditionType::Initialized)
    }

    pub fn deleting(&self) -> bool {
        self.deletion_ms.is_some()
    }

    /// Sets a condition as Karpenter's condition sets do: the transition
    /// time moves only when the status changes, and the root `Ready` follows
    /// its dependents. Returns whether anything changed.
    pub fn set_condition(
        &mut self,
        kind: ConditionType,
        status: ConditionStatus,
        reason: ConditionReason,
        message: impl Into<String>,
        now_ms: u64,
    ) -> bool {
        let message = message.into();
        let changed = match self.status.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                let changed = c.status != status || c.reason != reason || c.message != message;
                if c.status != status {
                    c.last_transition_ms = now_ms;
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
                changed
            }
            None => {
                self.status.conditions.push(Condition {
                    kind,
                    status,
                    reason,
                    message,
                    last_transition_ms: now_ms,
                });
                true
            }
        };
        if changed && kind != ConditionType::Ready {
            self.update_ready(now_ms);
        }
        changed
    }

    /// Sets a condition True with its own name as the reason.
    pub fn set_true(&mut self, kind: ConditionType, now_ms: u64) -> bool {
        self.set_condition(
            kind,
            ConditionStatus::True,
            ConditionReason::Succeeded(kind),
            "",
            now_ms,
        )
    }

    pub fn clear_condition(&mut self, kind: ConditionType) -> bool {
        let before = self.status.conditions.len();
        self.status.conditions.retain(|c| c.kind != kind);
        before != self.status.conditions.len()
    }

    fn update_ready(&mut self, now_ms: u64) {
        let deps: Vec<(ConditionType, ConditionStatus)> = ConditionType::READY_DEPENDENTS
            .iter()
            .map(|&t| {
                (
                    t,
                    self.condition(t)
                        .map_or(ConditionStatus::Unknown, |c| c.status),
                )
            })
            .collect();
        let (status, reason) = if deps.iter().all(|(_, s)| *s == ConditionStatus::True) {
            (
                ConditionStatus::True,
                ConditionReason::Succeeded(ConditionType::Ready),
            )
        } else if deps.iter().any(|(_, s)| *s == ConditionStatus::False) {
            (ConditionStatus::False, ConditionReason::UnhealthyDependents)
        } else {
            (
                ConditionStatus::Unknown,
                ConditionReason::ReconcilingDependents,
            )
        };
        let message = if status == ConditionStatus::True {
            String::new()
        } else {
            deps.iter()
                .filter(|(_, s)| *s != ConditionStatus::True)
                .map(|(t, s)| format!("{t}={s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.set_condition(ConditionType::Ready, status, reason, message, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> NodeClaim {
        NodeClaim {
            name: Sym::new("default-abc"),
            node_pool: Some(Sym::new("default")),
            labels: Vec::new(),
            annotations: Vec::new(),
            requirements: Vec::new(),
            requests: Resources::default(),
            taints: Vec::new(),
            startup_taints: Vec::new(),
            node_class_ref: NodeClassRef::default(),
            expire_after: None,
            termination_grace_period: None,
            launch: Vec::new(),
            node_pool_hash: None,
            created_ms: 0,
            deletion_ms: None,
            finalizer: true,
            status: NodeClaimStatus::default(),
        }
    }

    #[test]
    fn ready_follows_its_dependents_and_keeps_transition_times() {
        let mut c = claim();
        assert!(c.set_true(ConditionType::Launched, 1_000));
        let ready = c.condition(ConditionType::Ready).unwrap();
        assert_eq!(ready.status, ConditionStatus::Unknown);
        assert_eq!(ready.message, "Registered=Unknown, Initialized=Unknown");
        c.set_true(ConditionType::Registered, 2_000);
        c.set_true(ConditionType::Initialized, 3_000);
        let ready = c.condition(ConditionType::Ready).unwrap();
        assert_eq!(ready.status, ConditionStatus::True);
        assert_eq!(ready.last_transition_ms, 3_000);
        assert!(!c.set_true(ConditionType::Launched, 9_000), "no change");
        assert_eq!(
            c.condition(ConditionType::Launched)
                .unwrap()
                .last_transition_ms,
            1_000
        );
        c.set_condition(
            ConditionType::Initialized,
            ConditionStatus::False,
            ConditionReason::NodeNotReady,
            "node not ready",
            10_000,
        );
        let ready = c.condition(ConditionType::Ready).unwrap();
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason.to_string(), "UnhealthyDependents");
    }
}
