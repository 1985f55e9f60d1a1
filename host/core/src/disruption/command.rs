//! What a pass decides: commands to carry out, the nodes it left out and why,
//! and the moves the policy rejected.

use std::fmt;

use serde::Serialize;

use crate::model::PodKey;
use crate::scheduler::{NodeClaimPlan, NodeIndex};
use crate::sym::Sym;

use super::budgets::{BudgetReport, DisruptionReason};
use super::unconsolidated::Unconsolidated;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Expiration,
    Emptiness,
    Drift,
    MultiNodeConsolidation,
    SingleNodeConsolidation,
}

/// Why a command removes its nodes, by the names Karpenter gives them in
/// events and metrics: expiration, which is forceful and outside budgets, or
/// one of the voluntary reasons budgets count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CommandReason {
    Expired,
    Empty,
    Drifted,
    Underutilized,
}

impl CommandReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::Expired => "Expired",
            Self::Empty => "Empty",
            Self::Drifted => "Drifted",
            Self::Underutilized => "Underutilized",
        }
    }

    /// The budget reason that limits such commands; `None` for expiration.
    pub fn budget(self) -> Option<DisruptionReason> {
        match self {
            Self::Expired => None,
            Self::Empty => Some(DisruptionReason::Empty),
            Self::Drifted => Some(DisruptionReason::Drifted),
            Self::Underutilized => Some(DisruptionReason::Underutilized),
        }
    }
}

impl From<DisruptionReason> for CommandReason {
    fn from(reason: DisruptionReason) -> Self {
        match reason {
            DisruptionReason::Empty => Self::Empty,
            DisruptionReason::Drifted => Self::Drifted,
            DisruptionReason::Underutilized => Self::Underutilized,
        }
    }
}

impl fmt::Display for CommandReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decision to carry out: remove `nodes`, launching `replacements` first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    pub method: Method,
    pub reason: CommandReason,
    pub nodes: Vec<Sym>,
    /// The same nodes, in the same order, as positions in the snapshot the
    /// pass ran over.
    #[serde(skip)]
    pub node_indices: Vec<NodeIndex>,
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
    /// Drifted nodes the pass left in place (held by budgets, protected, or
    /// with nowhere for their pods yet): drift is looked at again on every
    /// poll, however settled the rest of the cluster.
    pub drifted: Vec<Sym>,
    /// Each NodePool's budgets as this pass counted them, in NodePool order.
    #[serde(skip)]
    pub budgets: Vec<BudgetReport>,
    /// Candidates not consolidated, with why.
    #[serde(skip)]
    pub unconsolidated: Vec<Unconsolidated>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_and_serialize_as_karpenter_names_them() {
        for (reason, name) in [
            (CommandReason::Expired, "Expired"),
            (CommandReason::Empty, "Empty"),
            (CommandReason::Drifted, "Drifted"),
            (CommandReason::Underutilized, "Underutilized"),
        ] {
            assert_eq!(reason.to_string(), name);
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn every_budget_reason_is_a_command_reason_and_back() {
        for r in DisruptionReason::ALL {
            let c = CommandReason::from(r);
            assert_eq!(c.budget(), Some(r));
            assert_eq!(c.name(), r.name());
        }
        assert_eq!(CommandReason::Expired.budget(), None);
    }
}
