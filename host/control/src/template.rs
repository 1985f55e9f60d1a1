//! A NodeClaim made from a planned one and its NodePool, as Karpenter's
//! NodeClaim template makes them: the pool's labels, annotations, taints,
//! start-up taints, node class, expiry and grace period, the NodePool label,
//! the labels the requirements give (each single-valued one, and a value for
//! each custom one), the template hash, and whether `minValues` was relaxed.

use dovetail_core::labels;
use dovetail_core::model::NodePool;
use dovetail_core::nodeclaim::{
    MIN_VALUES_RELAXED_ANNOTATION, NODEPOOL_HASH_ANNOTATION, NODEPOOL_HASH_VERSION_ANNOTATION,
    NodeClaim, NodeClaimStatus,
};
use dovetail_core::scheduler::{NodeClaimPlan, OfferingRef};
use dovetail_core::sym::Sym;

use crate::snapshot::sort_labels;

/// The hash scheme Dovetail writes beside `karpenter.sh/nodepool-hash`.
pub const NODEPOOL_HASH_VERSION: &str = "v3";

pub fn node_claim(
    name: Sym,
    plan: &NodeClaimPlan,
    pool: Option<&NodePool>,
    launch: Vec<OfferingRef>,
    now_ms: u64,
) -> NodeClaim {
    // Labels from requirements first: the pool's own labels win (the last
    // of a key is kept), as in Karpenter's NodeClaim.
    let mut l: Vec<(Sym, Sym)> = plan
        .labels
        .iter()
        .copied()
        .filter(|(k, _)| k.as_str() != labels::HOSTNAME)
        .collect();
    let mut annotations = vec![(
        Sym::new(MIN_VALUES_RELAXED_ANNOTATION),
        Sym::new(if plan.min_values_relaxed {
            "true"
        } else {
            "false"
        }),
    )];
    if let Some(p) = pool {
        l.extend(p.labels.iter().copied());
        l.push((Sym::new(labels::NODE_POOL), p.name));
        annotations.extend(p.annotations.iter().copied());
        annotations.push((
            Sym::new(NODEPOOL_HASH_ANNOTATION),
            Sym::new(&p.template_hash().to_string()),
        ));
        annotations.push((
            Sym::new(NODEPOOL_HASH_VERSION_ANNOTATION),
            Sym::new(NODEPOOL_HASH_VERSION),
        ));
    }
    NodeClaim {
        name,
        node_pool: pool.map(|p| p.name),
        labels: sort_labels(l),
        annotations: sort_labels(annotations),
        requirements: plan.requirements.clone(),
        requests: plan.requests.clone(),
        taints: pool.map(|p| p.taints.clone()).unwrap_or_default(),
        startup_taints: pool.map(|p| p.startup_taints.clone()).unwrap_or_default(),
        node_class_ref: pool.map(|p| p.node_class_ref.clone()).unwrap_or_default(),
        expire_after: pool.and_then(|p| p.expire_after),
        termination_grace_period: pool.and_then(|p| p.termination_grace_period),
        launch,
        node_pool_hash: pool.map(NodePool::template_hash),
        created_ms: now_ms,
        deletion_ms: None,
        finalizer: true,
        status: NodeClaimStatus::default(),
    }
}
