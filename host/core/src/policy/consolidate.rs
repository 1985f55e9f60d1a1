//! Consolidation scoring: Karpenter's built-in ranking and approval, and the
//! formulas policies build on.

use super::types::{ConsolidationContext, ProposedMove, Ranking, Verdict};

/// Karpenter's per-pod eviction cost: 1 + deletion-cost/2^27 + priority/2^25,
/// clamped to [-10, 10].
pub fn pod_disruption_cost(deletion_cost: i32, priority: i32) -> f64 {
    let cost = 1.0 + f64::from(deletion_cost) / 2f64.powi(27) + f64::from(priority) / 2f64.powi(25);
    cost.clamp(-10.0, 10.0)
}

/// Fraction of a node's lifetime left before `expireAfter`, in [0, 1]; 1 when
/// the node never expires. Nodes close to expiry are cheap to disrupt: they
/// will be replaced soon anyway.
pub fn lifetime_remaining(age_seconds: u64, expire_after_seconds: u64) -> f64 {
    if expire_after_seconds == 0 {
        return 1.0;
    }
    (1.0 - age_seconds as f64 / expire_after_seconds as f64).clamp(0.0, 1.0)
}

/// Candidate `i`'s disruption cost scaled by its remaining lifetime.
pub fn scaled_disruption_cost(ctx: &ConsolidationContext, i: usize) -> f64 {
    let c = &ctx.candidates;
    c.disruption_cost[i] * lifetime_remaining(c.age_seconds[i], c.expire_after_seconds[i])
}

/// Karpenter's built-in ranking: cheapest to disrupt first.
pub fn default_rank(ctx: &ConsolidationContext) -> Ranking {
    if !ctx.candidates.is_rectangular() {
        return vec![None; ctx.candidates.len()];
    }
    (0..ctx.candidates.len())
        .map(|i| Some(scaled_disruption_cost(ctx, i)))
        .collect()
}

/// Hourly price of the nodes a move removes.
pub fn removed_cost(ctx: &ConsolidationContext, mv: &ProposedMove) -> f64 {
    mv.removed
        .iter()
        .filter_map(|&r| ctx.candidates.price_per_hour.get(r as usize))
        .sum()
}

/// Whether a move costs less per hour after than before.
pub fn is_strictly_cheaper(ctx: &ConsolidationContext, mv: &ProposedMove) -> bool {
    mv.savings_per_hour > 0.0
        && mv
            .replacement_price_per_hour
            .is_none_or(|price| price < removed_cost(ctx, mv))
}

/// Karpenter's built-in approval: any strictly cheaper move.
pub fn approve_strictly_cheaper(ctx: &ConsolidationContext, mv: &ProposedMove) -> Verdict {
    let current = removed_cost(ctx, mv);
    match mv.replacement_price_per_hour {
        Some(price) if price >= current => Verdict::reject(format!(
            "replacement costs ${price:.4}/h, not less than the ${current:.4}/h it replaces"
        )),
        _ if mv.savings_per_hour <= 0.0 => {
            Verdict::reject(format!("saves nothing (${:.4}/h)", mv.savings_per_hour))
        }
        _ => Verdict::approve(format!("saves ${:.4}/h", mv.savings_per_hour)),
    }
}

/// Karpenter's built-in approval for a batch.
pub fn default_approve(ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Vec<Verdict> {
    moves
        .iter()
        .map(|mv| approve_strictly_cheaper(ctx, mv))
        .collect()
}

/// NodePools a move touches, deduplicated.
pub fn pools_of(ctx: &ConsolidationContext, mv: &ProposedMove) -> Vec<u16> {
    let mut pools: Vec<u16> = mv
        .removed
        .iter()
        .filter_map(|&r| ctx.candidates.node_pool.get(r as usize).copied())
        .collect();
    pools.sort_unstable();
    pools.dedup();
    pools
}

/// Karpenter's Balanced score of a move: its share of the NodePools' cost
/// saved, divided by its share of their disruption (each node weighs 1 on top
/// of its pods). Infinite when the move disrupts nothing measurable.
pub fn balanced_score(ctx: &ConsolidationContext, mv: &ProposedMove) -> f64 {
    let stats = &ctx.node_pools;
    let (mut pool_cost, mut pool_disruption) = (0.0, 0.0);
    for p in pools_of(ctx, mv) {
        let p = p as usize;
        pool_cost += stats.cost_per_hour.get(p).copied().unwrap_or(0.0);
        pool_disruption += stats.disruption_cost.get(p).copied().unwrap_or(0.0)
            + f64::from(stats.nodes.get(p).copied().unwrap_or(0));
    }
    let move_disruption = mv.disruption_cost + mv.removed.len() as f64;
    if pool_cost <= 0.0 {
        return 0.0;
    }
    let savings_share = mv.savings_per_hour / pool_cost;
    if move_disruption <= 0.0 || pool_disruption <= 0.0 {
        return f64::INFINITY;
    }
    savings_share / (move_disruption / pool_disruption)
}

/// Karpenter's Balanced score of a move for one of the NodePools it
/// touches (`EvaluateBalancedMove`): that pool's share of the saving (the
/// saving split by what each pool's removed nodes cost) over its share of
/// the pool's cost, divided by the disruption of its removed nodes (each
/// weighing 1 on top of its pods) over the pool's. Equal to
/// [`balanced_score`] for a move within one pool.
pub fn balanced_pool_score(ctx: &ConsolidationContext, mv: &ProposedMove, pool: u16) -> f64 {
    let c = &ctx.candidates;
    let pools = pools_of(ctx, mv);
    if pools.len() <= 1 {
        return balanced_score(ctx, mv);
    }
    let rows: Vec<usize> = mv
        .removed
        .iter()
        .map(|&r| r as usize)
        .filter(|&r| c.node_pool.get(r) == Some(&pool))
        .collect();
    let total_removed = removed_cost(ctx, mv);
    let pool_removed: f64 = rows.iter().filter_map(|&r| c.price_per_hour.get(r)).sum();
    let savings = if total_removed > 0.0 {
        mv.savings_per_hour * pool_removed / total_removed
    } else {
        mv.savings_per_hour
    };
    let stats = &ctx.node_pools;
    let p = usize::from(pool);
    let pool_cost = stats.cost_per_hour.get(p).copied().unwrap_or(0.0);
    let pool_disruption = stats.disruption_cost.get(p).copied().unwrap_or(0.0)
        + f64::from(stats.nodes.get(p).copied().unwrap_or(0));
    let move_disruption: f64 = rows
        .iter()
        .map(|&r| c.disruption_cost.get(r).copied().unwrap_or(0.0) + 1.0)
        .sum();
    if pool_cost <= 0.0 {
        return 0.0;
    }
    if move_disruption <= 0.0 || pool_disruption <= 0.0 {
        return f64::INFINITY;
    }
    (savings / pool_cost) / (move_disruption / pool_disruption)
}

/// `savings-threshold`: a strictly cheaper move is approved only when it
/// saves at least `min_percent` of what the removed nodes cost.
pub fn approve_with_savings_threshold(
    ctx: &ConsolidationContext,
    mv: &ProposedMove,
    min_percent: f64,
) -> Verdict {
    if !is_strictly_cheaper(ctx, mv) {
        return approve_strictly_cheaper(ctx, mv);
    }
    let percent = 100.0 * mv.savings_per_hour / removed_cost(ctx, mv);
    if percent >= min_percent {
        Verdict::approve(format!("saves {percent:.1}% (threshold {min_percent}%)"))
    } else {
        Verdict::reject(format!(
            "saves only {percent:.1}%, below the {min_percent}% threshold"
        ))
    }
}

/// Karpenter's Balanced ranking: candidates whose outright deletion scores at
/// least 1/k, best score first; the others are left out.
pub fn balanced_rank(ctx: &ConsolidationContext, k: f64) -> Ranking {
    (0..ctx.candidates.len())
        .map(|i| {
            let score = balanced_score(ctx, &delete_move(ctx, i));
            (score >= 1.0 / k).then(|| -score.min(f64::MAX))
        })
        .collect()
}

/// Karpenter's Balanced approval: a strictly cheaper move whose score is at
/// least 1/k.
pub fn approve_balanced(ctx: &ConsolidationContext, mv: &ProposedMove, k: f64) -> Verdict {
    if !is_strictly_cheaper(ctx, mv) {
        return approve_strictly_cheaper(ctx, mv);
    }
    let score = balanced_score(ctx, mv);
    let threshold = 1.0 / k;
    if score >= threshold {
        Verdict::approve(format!("score {score:.3} >= {threshold:.3}"))
    } else {
        Verdict::reject(format!(
            "score {score:.3} < {threshold:.3}: the saving is small for the disruption"
        ))
    }
}

/// The move Balanced would see if candidate `i` were deleted outright.
pub fn delete_move(ctx: &ConsolidationContext, i: usize) -> ProposedMove {
    let c = &ctx.candidates;
    ProposedMove {
        reason: c.reason[i],
        removed: vec![i as u32],
        replacement_price_per_hour: None,
        savings_per_hour: c.price_per_hour[i],
        pods_evicted: c.pods[i],
        disruption_cost: c.disruption_cost[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cost_follows_karpenter() {
        assert_eq!(pod_disruption_cost(0, 0), 1.0);
        assert!((pod_disruption_cost(1 << 27, 0) - 2.0).abs() < 1e-12);
        assert!((pod_disruption_cost(0, 1 << 25) - 2.0).abs() < 1e-12);
        assert_eq!(pod_disruption_cost(i32::MAX, i32::MAX), 10.0);
        assert_eq!(pod_disruption_cost(i32::MIN, i32::MIN), -10.0);
    }

    #[test]
    fn lifetime_scales_linearly_to_expiry() {
        assert_eq!(lifetime_remaining(10, 0), 1.0);
        assert_eq!(lifetime_remaining(0, 100), 1.0);
        assert_eq!(lifetime_remaining(25, 100), 0.75);
        assert_eq!(lifetime_remaining(500, 100), 0.0);
    }
}
