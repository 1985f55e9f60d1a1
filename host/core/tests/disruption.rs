//! Disruption scenarios with native scorers: Karpenter's built-in one, and
//! native equivalents of the shipped `balanced` and `savings-threshold`
//! policies.

use dovetail_core::policy::consolidate::{
    approve_strictly_cheaper, balanced_score, default_rank, delete_move, is_strictly_cheaper,
    removed_cost,
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
        let ranking = (0..ctx.candidates.len())
            .map(|i| {
                let score = balanced_score(ctx, &delete_move(ctx, i));
                (score >= 1.0 / self.k).then(|| -score.min(f64::MAX))
            })
            .collect();
        Decided::by(ranking, "balanced@native")
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let verdicts = moves
            .iter()
            .map(|mv| {
                if !is_strictly_cheaper(ctx, mv) {
                    return approve_strictly_cheaper(ctx, mv);
                }
                let score = balanced_score(ctx, mv);
                let threshold = 1.0 / self.k;
                if score >= threshold {
                    Verdict::approve(format!("score {score:.3} >= {threshold:.3}"))
                } else {
                    Verdict::reject(format!(
                        "score {score:.3} < {threshold:.3}: the saving is small for the disruption"
                    ))
                }
            })
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
            .map(|mv| {
                if !is_strictly_cheaper(ctx, mv) {
                    return approve_strictly_cheaper(ctx, mv);
                }
                let percent = 100.0 * mv.savings_per_hour / removed_cost(ctx, mv);
                if percent >= self.min_percent {
                    Verdict::approve(format!(
                        "saves {percent:.1}% (threshold {}%)",
                        self.min_percent
                    ))
                } else {
                    Verdict::reject(format!(
                        "saves only {percent:.1}%, below the {}% threshold",
                        self.min_percent
                    ))
                }
            })
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
