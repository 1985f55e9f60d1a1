//! Disruption scenarios with native scorers: Karpenter's built-in one, and
//! the shipped `balanced` and `savings-threshold` policies' rules run
//! natively (the policies call the same core functions).

use dovetail_core::policy::consolidate::{
    approve_balanced, approve_with_savings_threshold, balanced_rank, default_rank,
};
use dovetail_core::policy::{
    Builtin, ConsolidationContext, ConsolidationScorer, Decided, ProposedMove, Ranking, Verdict,
};

/// `policies/balanced`: approve when savings share / disruption share is at
/// least 1/k; rank by the score of deleting each candidate, best first,
/// leaving out candidates whose deletion alone could not pass.
struct Balanced {
    k: f64,
}

impl ConsolidationScorer for Balanced {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        Decided::by(balanced_rank(ctx, self.k), "balanced@native")
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let verdicts = moves
            .iter()
            .map(|mv| approve_balanced(ctx, mv, self.k))
            .collect();
        Decided::by(verdicts, "balanced@native")
    }
}

/// `policies/savings-threshold`: Karpenter's ranking; approve a move only if
/// it saves at least `min_percent` of what the removed nodes cost.
struct SavingsThreshold {
    min_percent: f64,
}

impl ConsolidationScorer for SavingsThreshold {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        Decided::by(default_rank(ctx), "savings-threshold@native")
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let verdicts = moves
            .iter()
            .map(|mv| approve_with_savings_threshold(ctx, mv, self.min_percent))
            .collect();
        Decided::by(verdicts, "savings-threshold@native")
    }
}

fn scorer(name: &str) -> Box<dyn ConsolidationScorer> {
    match name {
        "default" => Box::new(Builtin),
        "balanced" => Box::new(Balanced { k: 2.0 }),
        "savings-threshold" => Box::new(SavingsThreshold { min_percent: 20.0 }),
        other => panic!("no scorer named {other}"),
    }
}

include!("scenarios/disruption.rs");
