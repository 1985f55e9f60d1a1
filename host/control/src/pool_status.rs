//! A NodePool's status as Karpenter computes it, as plain values: what its
//! nodes add up to (the counter controller) and its conditions (the
//! validation and readiness controllers). The adapter writes them to the
//! NodePool's `status`.

use std::collections::BTreeMap;
use std::fmt;

use dovetail_core::labels;
use dovetail_core::model::label;
use dovetail_core::nodeclaim::ConditionStatus;
use dovetail_core::resources::Resources;
use dovetail_core::sym::Sym;

use crate::state::{ClusterState, NodeEntry};

/// What a NodePool's nodes add up to: `status.resources` and
/// `status.nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePoolUsage {
    /// The summed capacity of the pool's nodes.
    pub resources: Resources,
    pub nodes: i64,
}

/// Usage per NodePool, as Karpenter's counter sums it: every launched
/// NodeClaim (with its node, once registered) and every node carrying the
/// `karpenter.sh/nodepool` label without a NodeClaim, except those being
/// deleted. A claim not launched yet has no capacity to count. Until a
/// node is initialised, a resource its status reports as zero is taken from
/// the NodeClaim, so the pool's usage moves as soon as the instance exists.
///
/// Every NodePool in `state` is listed, with zero usage when it has no
/// nodes, and so is any pool a node names that `state` does not hold (a
/// malformed one, whose status still counts its nodes).
pub fn usage(state: &ClusterState) -> BTreeMap<Sym, NodePoolUsage> {
    let mut out: BTreeMap<Sym, NodePoolUsage> = state
        .node_pools()
        .iter()
        .map(|p| (p.name, NodePoolUsage::default()))
        .collect();
    let mut add = |pool: Sym, capacity: &Resources| {
        let u = out.entry(pool).or_default();
        u.resources.add(capacity);
        u.nodes += 1;
    };
    for (_, claim) in state.claims() {
        let Some(pool) = claim.node_pool else {
            continue;
        };
        if claim.deleting() || claim.status.provider_id.is_none() {
            continue;
        }
        let node = state.node_of_claim(claim).and_then(|id| state.node(id));
        if node.is_some_and(|n| n.deletion_ms.is_some()) {
            continue;
        }
        match node {
            Some(n) if claim.initialized() => add(pool, &n.node.capacity),
            Some(n) => add(pool, &filled(&n.node.capacity, &claim.status.capacity)),
            None => add(pool, &claim.status.capacity),
        }
    }
    for (_, node) in state.nodes() {
        if state.claim_of_node(node).is_some() || node.deletion_ms.is_some() {
            continue;
        }
        if let Some(pool) = pool_label(node) {
            add(pool, &node.node.capacity);
        }
    }
    out
}

fn pool_label(node: &NodeEntry) -> Option<Sym> {
    label(&node.node.labels, Sym::new(labels::NODE_POOL))
}

/// `node`, with each resource it reports as zero taken from `claim`.
fn filled(node: &Resources, claim: &Resources) -> Resources {
    let mut r = node.clone();
    for name in [
        dovetail_core::resources::CPU,
        dovetail_core::resources::MEMORY,
        dovetail_core::resources::PODS,
        dovetail_core::resources::EPHEMERAL_STORAGE,
    ] {
        if r.get(name) == 0 {
            r.set(name, claim.get(name));
        }
    }
    for &(name, v) in &claim.extended {
        if r.extended(name) == 0 {
            r.set(name.as_str(), v);
        }
    }
    r
}

/// The NodePool condition types Dovetail sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolConditionType {
    ValidationSucceeded,
    NodeClassReady,
    /// The root: True when both others are.
    Ready,
}

impl PoolConditionType {
    pub const ALL: [Self; 3] = [Self::ValidationSucceeded, Self::NodeClassReady, Self::Ready];

    pub fn name(self) -> &'static str {
        match self {
            Self::ValidationSucceeded => "ValidationSucceeded",
            Self::NodeClassReady => "NodeClassReady",
            Self::Ready => "Ready",
        }
    }
}

impl fmt::Display for PoolConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a NodePool condition has its status: Karpenter's reasons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolConditionReason {
    /// True: the condition's own type.
    Succeeded(PoolConditionType),
    NodePoolValidationFailed,
    NodeClassNotFound,
    NodeClassTerminating,
    NodeClassReadinessUnknown,
    /// The node class's own `Ready` reason, carried over.
    NodeClass(String),
    UnhealthyDependents,
    ReconcilingDependents,
}

impl fmt::Display for PoolConditionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded(t) => f.write_str(t.name()),
            Self::NodePoolValidationFailed => f.write_str("NodePoolValidationFailed"),
            Self::NodeClassNotFound => f.write_str("NodeClassNotFound"),
            Self::NodeClassTerminating => f.write_str("NodeClassTerminating"),
            Self::NodeClassReadinessUnknown => f.write_str("NodeClassReadinessUnknown"),
            Self::NodeClass(r) => f.write_str(r),
            Self::UnhealthyDependents => f.write_str("UnhealthyDependents"),
            Self::ReconcilingDependents => f.write_str("ReconcilingDependents"),
        }
    }
}

/// One NodePool condition, without its transition time (the writer keeps
/// the stored one while the status stays the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCondition {
    pub kind: PoolConditionType,
    pub status: ConditionStatus,
    pub reason: PoolConditionReason,
    pub message: String,
}

impl PoolCondition {
    fn succeeded(kind: PoolConditionType) -> Self {
        Self {
            kind,
            status: ConditionStatus::True,
            reason: PoolConditionReason::Succeeded(kind),
            message: String::new(),
        }
    }

    fn failed(kind: PoolConditionType, reason: PoolConditionReason, message: &str) -> Self {
        Self {
            kind,
            status: ConditionStatus::False,
            reason,
            message: message.to_owned(),
        }
    }
}

/// Whether the NodePool passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    Succeeded,
    /// The validation errors, as the user should read them.
    Failed(String),
}

/// The state of the node class a NodePool references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeClassReadiness {
    Ready,
    NotFound,
    Terminating,
    /// Its `Ready` condition is False, with the class's reason and message.
    NotReady {
        reason: String,
        message: String,
    },
    /// It has no `Ready` condition yet, or an Unknown one.
    Unknown,
}

/// A NodePool's conditions, as Karpenter's NodePool controllers set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePoolConditions {
    pub validation_succeeded: PoolCondition,
    pub node_class_ready: PoolCondition,
    pub ready: PoolCondition,
}

impl NodePoolConditions {
    pub fn new(validation: &Validation, node_class: &NodeClassReadiness) -> Self {
        use PoolConditionReason as R;
        use PoolConditionType as T;
        let validation_succeeded = match validation {
            Validation::Succeeded => PoolCondition::succeeded(T::ValidationSucceeded),
            Validation::Failed(message) => {
                PoolCondition::failed(T::ValidationSucceeded, R::NodePoolValidationFailed, message)
            }
        };
        let node_class_ready = match node_class {
            NodeClassReadiness::Ready => PoolCondition::succeeded(T::NodeClassReady),
            NodeClassReadiness::NotFound => PoolCondition::failed(
                T::NodeClassReady,
                R::NodeClassNotFound,
                "NodeClass not found on cluster",
            ),
            NodeClassReadiness::Terminating => PoolCondition::failed(
                T::NodeClassReady,
                R::NodeClassTerminating,
                "NodeClass is Terminating",
            ),
            NodeClassReadiness::NotReady { reason, message } => {
                PoolCondition::failed(T::NodeClassReady, R::NodeClass(reason.clone()), message)
            }
            NodeClassReadiness::Unknown => PoolCondition::failed(
                T::NodeClassReady,
                R::NodeClassReadinessUnknown,
                "Node Class Readiness Unknown",
            ),
        };
        let deps = [&validation_succeeded, &node_class_ready];
        let ready = if deps.iter().all(|c| c.status == ConditionStatus::True) {
            PoolCondition::succeeded(T::Ready)
        } else {
            let any_false = deps.iter().any(|c| c.status == ConditionStatus::False);
            PoolCondition {
                kind: T::Ready,
                status: if any_false {
                    ConditionStatus::False
                } else {
                    ConditionStatus::Unknown
                },
                reason: if any_false {
                    R::UnhealthyDependents
                } else {
                    R::ReconcilingDependents
                },
                message: deps
                    .iter()
                    .filter(|c| c.status != ConditionStatus::True)
                    .map(|c| format!("{}={}", c.kind, c.status))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        };
        Self {
            validation_succeeded,
            node_class_ready,
            ready,
        }
    }

    /// In the order Karpenter lists them.
    pub fn all(&self) -> [&PoolCondition; 3] {
        [
            &self.validation_succeeded,
            &self.node_class_ready,
            &self.ready,
        ]
    }
}

#[cfg(test)]
mod tests {
    use dovetail_core::model::{Node, NodePool};
    use dovetail_core::nodeclaim::{NodeClaim, NodeClaimStatus};
    use dovetail_core::resources::GIB;

    use super::*;

    fn claim(name: &str, pool: &str, provider: Option<&str>, capacity: Resources) -> NodeClaim {
        NodeClaim {
            name: Sym::new(name),
            node_pool: Some(Sym::new(pool)),
            labels: Vec::new(),
            annotations: Vec::new(),
            requirements: Vec::new(),
            requests: Resources::default(),
            taints: Vec::new(),
            startup_taints: Vec::new(),
            node_class_ref: Default::default(),
            expire_after: None,
            termination_grace_period: None,
            launch: Vec::new(),
            node_pool_hash: None,
            created_ms: 0,
            deletion_ms: None,
            finalizer: true,
            status: NodeClaimStatus {
                provider_id: provider.map(str::to_owned),
                capacity,
                ..NodeClaimStatus::default()
            },
        }
    }

    fn node(name: &str, labels: &[(&str, &str)], capacity: Resources) -> Node {
        Node {
            name: Sym::new(name),
            labels: dovetail_core::model::sorted_labels(labels.iter().copied()),
            capacity,
            ..Node::default()
        }
    }

    fn res(cpu: i64, gib: i64, pods: i64) -> Resources {
        let mut r = Resources::new(cpu, gib * GIB);
        r.pods = pods;
        r
    }

    #[test]
    fn usage_counts_launched_claims_and_pool_nodes_but_not_deleting_ones() {
        let mut s = ClusterState::new();
        s.apply_node_pool(NodePool::new("default"));
        s.apply_node_pool(NodePool::new("idle"));
        // Launched, no node yet: the claim's capacity.
        s.apply_claim(claim("a", "default", Some("p-a"), res(2000, 8, 29)), 0);
        // Not launched: nothing to count.
        s.apply_claim(claim("b", "default", None, res(4000, 16, 58)), 0);
        // Registered, not initialised: the node's zero memory from the claim.
        let mut c = claim("c", "default", Some("p-c"), res(4000, 16, 58));
        c.status.node_name = Some(Sym::new("node-c"));
        s.apply_claim(c, 0);
        s.apply_node(
            node("node-c", &[], res(4000, 0, 58)),
            Some("p-c".into()),
            true,
            0,
        );
        // Deleting: left out.
        let mut d = claim("d", "default", Some("p-d"), res(8000, 32, 110));
        d.deletion_ms = Some(1);
        s.apply_claim(d, 0);
        // A node of a pool the state does not hold (malformed), no claim.
        s.apply_node(
            node(
                "orphan",
                &[("karpenter.sh/nodepool", "broken")],
                res(1000, 4, 10),
            ),
            Some("p-o".into()),
            false,
            0,
        );
        // A node outside any pool.
        s.apply_node(node("static", &[], res(1000, 4, 10)), None, false, 0);
        let u = usage(&s);
        assert_eq!(u[&Sym::new("default")].nodes, 2);
        assert_eq!(u[&Sym::new("default")].resources, res(6000, 24, 87));
        assert_eq!(u[&Sym::new("idle")], NodePoolUsage::default());
        assert_eq!(u[&Sym::new("broken")].nodes, 1);
        assert_eq!(u.len(), 3);
    }

    #[test]
    fn an_initialised_node_counts_what_it_reports() {
        let mut s = ClusterState::new();
        s.apply_node_pool(NodePool::new("default"));
        let mut c = claim("c", "default", Some("p-c"), res(4000, 16, 58));
        c.status.node_name = Some(Sym::new("node-c"));
        for t in dovetail_core::nodeclaim::ConditionType::READY_DEPENDENTS {
            c.set_true(t, 1);
        }
        s.apply_claim(c, 0);
        s.apply_node(
            node("node-c", &[], res(3900, 15, 58)),
            Some("p-c".into()),
            true,
            0,
        );
        assert_eq!(usage(&s)[&Sym::new("default")].resources, res(3900, 15, 58));
    }

    #[test]
    fn ready_follows_validation_and_the_node_class() {
        let ok = NodePoolConditions::new(&Validation::Succeeded, &NodeClassReadiness::Ready);
        assert!(ok.all().iter().all(|c| c.status == ConditionStatus::True));
        assert_eq!(ok.ready.reason.to_string(), "Ready");

        let bad = NodePoolConditions::new(
            &Validation::Failed("spec.template.spec.taints[0].key: Required value".into()),
            &NodeClassReadiness::Ready,
        );
        assert_eq!(bad.validation_succeeded.status, ConditionStatus::False);
        assert_eq!(
            bad.validation_succeeded.reason.to_string(),
            "NodePoolValidationFailed"
        );
        assert_eq!(bad.ready.status, ConditionStatus::False);
        assert_eq!(bad.ready.reason.to_string(), "UnhealthyDependents");
        assert_eq!(bad.ready.message, "ValidationSucceeded=False");

        let missing =
            NodePoolConditions::new(&Validation::Succeeded, &NodeClassReadiness::NotFound);
        assert_eq!(
            missing.node_class_ready.reason.to_string(),
            "NodeClassNotFound"
        );
        assert_eq!(missing.ready.message, "NodeClassReady=False");

        let class = NodePoolConditions::new(
            &Validation::Succeeded,
            &NodeClassReadiness::NotReady {
                reason: "SubnetsNotFound".into(),
                message: "no subnets match".into(),
            },
        );
        assert_eq!(class.node_class_ready.reason.to_string(), "SubnetsNotFound");
        assert_eq!(class.node_class_ready.message, "no subnets match");
    }
}
