//! What a pass decides: commands to carry out, the nodes it left out and why,
//! and the moves the policy rejected.

use serde::Serialize;

use crate::model::PodKey;
use crate::scheduler::NodeClaimPlan;
use crate::sym::Sym;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Expiration,
    Emptiness,
    Drift,
    MultiNodeConsolidation,
    SingleNodeConsolidation,
}

/// A decision to carry out: remove `nodes`, launching `replacements` first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    pub method: Method,
    /// `Expired`, `Empty`, `Drifted` or `Underutilized`.
    pub reason: &'static str,
    pub nodes: Vec<Sym>,
    #[serde(skip)]
    pub node_indices: Vec<usize>,
    pub replacements: Vec<NodeClaimPlan>,
    pub savings_per_hour: f64,
    pub pods_evicted: Vec<PodKey>,
    /// `name@version` of the policy that approved it (or `engine`).
    pub decided_by: String,
    pub policy_reason: String,
}

/// A node left out of disruption, with a reason fit for a Kubernetes Event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    pub node: Sym,
    pub reason: String,
}

/// What one pass found and decided.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass {
    pub commands: Vec<Command>,
    pub exclusions: Vec<Exclusion>,
    /// Candidates whose move was computed (fit-checked).
    pub candidates_evaluated: usize,
    /// Moves the policy rejected: the nodes and its reason.
    pub rejected: Vec<(Vec<Sym>, String)>,
    /// Invalid budgets (their NodePools were failed closed).
    pub budget_errors: Vec<String>,
}
