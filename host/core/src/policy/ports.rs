//! Ports: what the decision core asks of a policy, whoever implements it.
//!
//! The built-in implementations are Karpenter's behaviour; `dovetail-policy`
//! implements the same traits with sandboxed Wasm components and falls back to
//! these when a component fails.

use super::consolidate::{default_approve, default_rank};
use super::select::default_select;
use super::types::{
    ConsolidationContext, ProposedMove, Ranking, Selection, SelectionRequest, Verdict,
};

/// A decision and who made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided<T> {
    pub value: T,
    /// `name@version` of the policy whose answer this is.
    pub by: String,
    /// Set when the configured policy failed and a safe answer was given
    /// instead: why.
    pub fallback: Option<String>,
}

impl<T> Decided<T> {
    pub fn by(value: T, by: impl Into<String>) -> Self {
        Self {
            value,
            by: by.into(),
            fallback: None,
        }
    }
}

/// Chooses instance offerings for planned nodes, one batched call per round.
pub trait InstanceSelector: Send + Sync {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection>;
}

/// Ranks consolidation candidates and approves moves.
pub trait ConsolidationScorer: Send + Sync {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking>;
    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>>;
}

/// Name under which the built-in decisions report.
pub const BUILTIN: &str = "builtin-default@0.1.0";

/// Karpenter's behaviour, natively.
#[derive(Debug, Default, Clone, Copy)]
pub struct Builtin;

impl InstanceSelector for Builtin {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        Decided::by(default_select(request), BUILTIN)
    }
}

impl ConsolidationScorer for Builtin {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        Decided::by(default_rank(ctx), BUILTIN)
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        Decided::by(default_approve(ctx, moves), BUILTIN)
    }
}
