//! NodePools with `consolidationPolicy: Balanced`: whichever policy scores
//! consolidation, their underutilisation moves must also reach Karpenter's
//! Balanced score of 1/[`BALANCED_K`], as Karpenter's `balancedEvaluator`
//! gates its own price check. Candidates that could not reach it even by
//! plain deletion are dropped from the ranking (`CanPassThreshold`).
//! Emptiness and drift are not scored, as in Karpenter.

use crate::model::{BALANCED_K, ConsolidationPolicy, NodePool};
use crate::policy::consolidate::{balanced_pool_score, balanced_score, delete_move, pools_of};
use crate::policy::types::{ConsolidationContext, ProposedMove, Ranking, Verdict, reason};
use crate::policy::{ConsolidationScorer, Decided};

/// `inner`, with the Balanced rule applied to Balanced pools' moves. Pool
/// ids in the context are indices into the snapshot's NodePools.
pub(super) struct PoolPolicies<'a> {
    inner: &'a dyn ConsolidationScorer,
    /// Indexed by pool id.
    balanced: Vec<bool>,
}

impl<'a> PoolPolicies<'a> {
    pub(super) fn new(inner: &'a dyn ConsolidationScorer, pools: &[NodePool]) -> Self {
        Self {
            inner,
            balanced: pools
                .iter()
                .map(|p| p.disruption.consolidation_policy == ConsolidationPolicy::Balanced)
                .collect(),
        }
    }

    fn is_balanced(&self, pool: u16) -> bool {
        self.balanced
            .get(usize::from(pool))
            .copied()
            .unwrap_or(false)
    }

    /// Why a move fails the Balanced rule, if it does.
    fn balanced_rejection(&self, ctx: &ConsolidationContext, mv: &ProposedMove) -> Option<String> {
        if mv.reason != reason::UNDERUTILIZED {
            return None;
        }
        let threshold = 1.0 / BALANCED_K;
        pools_of(ctx, mv)
            .into_iter()
            .filter(|&p| self.is_balanced(p))
            .find_map(|p| {
                let score = balanced_pool_score(ctx, mv, p);
                let name = ctx.dictionaries.node_pools.get(usize::from(p));
                (score < threshold).then(|| {
                    format!(
                        "NodePool `{name}` is Balanced: score {score:.3} < {threshold:.3}, the saving is small for the disruption"
                    )
                })
            })
    }
}

impl ConsolidationScorer for PoolPolicies<'_> {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        let mut decided = self.inner.rank(ctx);
        let c = &ctx.candidates;
        for (i, score) in decided.value.iter_mut().enumerate() {
            let gated = c.reason.get(i) == Some(&reason::UNDERUTILIZED)
                && c.node_pool.get(i).is_some_and(|&p| self.is_balanced(p));
            if gated && balanced_score(ctx, &delete_move(ctx, i)) < 1.0 / BALANCED_K {
                *score = None;
            }
        }
        decided
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let mut decided = self.inner.approve(ctx, moves);
        for (mv, verdict) in moves.iter().zip(decided.value.iter_mut()) {
            if verdict.approve
                && let Some(why) = self.balanced_rejection(ctx, mv)
            {
                *verdict = Verdict::reject(why);
            }
        }
        decided
    }
}
