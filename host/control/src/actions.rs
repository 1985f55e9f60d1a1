//! What the orchestration wants done to the cluster, as values. The
//! simulator applies them to its in-memory cluster; the Kubernetes adapter
//! turns them into API calls.

use std::fmt;

use dovetail_core::model::{Labels, PodKey, Taint};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::sym::Sym;

use crate::snapshot::sort_labels;
use crate::state::NodeEntry;

/// Where a pending pod is expected to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NominationTarget {
    NodeClaim(Sym),
    Node(Sym),
}

/// A change to a Node object (a merge patch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePatch {
    /// Set (added or overwritten).
    pub labels: Labels,
    pub annotations: Labels,
    pub add_taints: Vec<Taint>,
    /// Taint keys to remove.
    pub remove_taints: Vec<Sym>,
    /// Add the termination finalizer.
    pub add_finalizer: bool,
}

impl NodePatch {
    /// What the API server does with the patch: labels and annotations set,
    /// taints removed then added (once), the finalizer added.
    pub fn apply(&self, e: &mut NodeEntry) {
        let mut l = e.node.labels.clone();
        l.extend(self.labels.iter().copied());
        e.node.labels = sort_labels(l);
        let mut a = e.node.annotations.clone();
        a.extend(self.annotations.iter().copied());
        e.node.annotations = sort_labels(a);
        e.node
            .taints
            .retain(|t| !self.remove_taints.contains(&t.key));
        for t in &self.add_taints {
            if !e.node.taints.contains(t) {
                e.node.taints.push(*t);
            }
        }
        e.finalizer |= self.add_finalizer;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateNodeClaim(NodeClaim),
    /// Writes the claim's labels, annotations and status.
    UpdateNodeClaim(NodeClaim),
    /// Requests deletion; the finalizer holds the object until termination
    /// is done.
    DeleteNodeClaim {
        name: Sym,
    },
    RemoveNodeClaimFinalizer {
        name: Sym,
    },
    /// Records where pending pods are expected to run (the controller's own
    /// memory, as Karpenter's; the adapter also emits `Nominated` events).
    Nominate {
        pods: Vec<PodKey>,
        target: NominationTarget,
    },
    PatchNode {
        name: Sym,
        patch: NodePatch,
    },
    TaintNode {
        name: Sym,
        taint: Taint,
    },
    UntaintNode {
        name: Sym,
        key: Sym,
    },
    DeleteNode {
        name: Sym,
    },
    RemoveNodeFinalizer {
        name: Sym,
    },
    /// Through the Eviction API: PodDisruptionBudgets are honoured.
    EvictPod {
        pod: PodKey,
    },
    /// Past the node's termination deadline: deleted without asking budgets.
    DeletePod {
        pod: PodKey,
    },
    Event(Event),
}

/// What executing an action gave back, when it matters to the
/// orchestration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Eviction(EvictionResult),
}

/// The Eviction API's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionResult {
    /// 201: the pod is being deleted.
    Evicted,
    /// 429: a PodDisruptionBudget allows no disruption now; retry later.
    Blocked,
    /// 500: the pod is covered by more than one PodDisruptionBudget.
    MultiplePdbs,
    /// 404 (or 409): the pod is already gone.
    Gone,
}

/// An action the cluster refused (conflict, API error…). The orchestration
/// is level-triggered, so the next reconcile tries again from what it sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {message}")]
pub struct ActionError {
    pub action: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Pod,
    Node,
    NodeClaim,
    NodePool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub namespace: Option<Sym>,
    pub name: Sym,
}

impl ObjectRef {
    pub fn node(name: Sym) -> Self {
        Self {
            kind: ObjectKind::Node,
            namespace: None,
            name,
        }
    }

    pub fn node_claim(name: Sym) -> Self {
        Self {
            kind: ObjectKind::NodeClaim,
            namespace: None,
            name,
        }
    }

    pub fn pod(key: PodKey) -> Self {
        Self {
            kind: ObjectKind::Pod,
            namespace: Some(key.namespace),
            name: key.name,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Karpenter's event reasons that Dovetail emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventReason {
    Nominated,
    FailedScheduling,
    InsufficientCapacityError,
    LaunchFailed,
    DisruptionLaunching,
    DisruptionWaitingReadiness,
    DisruptionTerminating,
    DisruptionBlocked,
    Evicted,
    Disrupted,
    FailedDraining,
    TerminationGracePeriodExpiring,
    SpotInterrupted,
    SpotRebalanceRecommendation,
    InstanceStopping,
    InstanceTerminating,
    TerminatingOnInterruption,
    Finalized,
    /// A NodePool failed validation (its `ValidationSucceeded` condition
    /// says why); it provisions nothing until fixed.
    NodePoolValidationFailed,
}

impl fmt::Display for EventReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A Kubernetes Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub object: ObjectRef,
    pub kind: EventType,
    pub reason: EventReason,
    pub message: String,
}

impl Event {
    pub fn normal(object: ObjectRef, reason: EventReason, message: impl Into<String>) -> Self {
        Self {
            object,
            kind: EventType::Normal,
            reason,
            message: message.into(),
        }
    }

    pub fn warning(object: ObjectRef, reason: EventReason, message: impl Into<String>) -> Self {
        Self {
            object,
            kind: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}
