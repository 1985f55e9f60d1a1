//! Consolidation (Karpenter's `consolidation.go`): the candidates for
//! underutilisation moves, and the move for a set of them — delete, or
//! replace by one strictly cheaper NodeClaim. Multi-node and single-node
//! consolidation search over these moves.

mod multi_node;
mod single_node;

use crate::catalog::CapacityType;
use crate::model::ConsolidationPolicy;
use crate::policy::types::{ConsolidationContext, ProposedMove};
use crate::scheduler::NodeClaimPlan;
use crate::sym::Sym;

use super::budgets::DisruptionReason;
use super::candidates::CandidateIndex;
use super::engine::Engine;
use super::simulate::Fit;

/// Karpenter's single-node spot-to-spot rule: at least this many cheaper
/// types, and the current one not among them.
pub const SPOT_TO_SPOT_TYPES: usize = 15;

/// A proposed move and its replacement NodeClaims, or why there is none.
type MoveResult = Result<(ProposedMove, Vec<NodeClaimPlan>), String>;

impl Engine<'_> {
    /// Candidates for underutilisation moves, in the policy's order, within
    /// budgets.
    fn underutilized(
        &mut self,
    ) -> (
        Vec<CandidateIndex>,
        Vec<CandidateIndex>,
        ConsolidationContext,
    ) {
        let rows: Vec<CandidateIndex> = (0..self.candidates.len())
            .map(CandidateIndex)
            .filter(|&c| {
                let cand = &self.candidates[c];
                cand.consolidatable
                    && self.snapshot.node_pools[cand.pool]
                        .disruption
                        .consolidation_policy
                        != ConsolidationPolicy::WhenEmpty
                    && self.allowed(cand.pool, DisruptionReason::Underutilized) > 0
            })
            .collect();
        let (order, ctx) = self.ranked(rows.clone(), DisruptionReason::Underutilized);
        (rows, order, ctx)
    }

    /// A consolidation move for `cands`: delete, or replace by one strictly
    /// cheaper NodeClaim. `multi` relaxes the spot-to-spot type count rule.
    pub(in crate::disruption) fn consolidation_move(
        &self,
        cands: &[CandidateIndex],
        multi: bool,
    ) -> MoveResult {
        let price: f64 = cands.iter().map(|&c| self.candidates[c].price).sum();
        let evicted: u32 = cands
            .iter()
            .map(|&c| self.candidates[c].pods.len() as u32)
            .sum();
        let cost: f64 = cands
            .iter()
            .map(|&c| self.candidates[c].disruption_cost)
            .sum();
        let all_spot = cands
            .iter()
            .all(|&c| self.candidates[c].capacity_type == CapacityType::Spot);
        let any_on_demand = cands
            .iter()
            .any(|&c| self.candidates[c].capacity_type == CapacityType::OnDemand);
        let own_types: Vec<Sym> = cands
            .iter()
            .map(|&c| self.candidates[c].instance_type)
            .collect();
        let mv = |replacement: Option<f64>| ProposedMove {
            reason: DisruptionReason::Underutilized.code(),
            removed: Vec::new(),
            replacement_price_per_hour: replacement,
            savings_per_hour: price - replacement.unwrap_or(0.0),
            pods_evicted: evicted,
            disruption_cost: cost,
        };
        match self.fit(cands, Some(price)) {
            Fit::No(why) => Err(why),
            Fit::Delete => Ok((mv(None), Vec::new())),
            Fit::Replace(claims) if claims.len() > 1 => Err(format!(
                "its pods need {} new nodes; consolidation never replaces one node by several",
                claims.len()
            )),
            Fit::Replace(mut claims) => {
                let mut claim = claims.remove(0);
                // Only strictly cheaper offerings; for several nodes, never
                // one of the same type as a removed node.
                claim.offerings.retain(|o| {
                    o.price < price && !(multi && own_types.contains(&o.instance_type))
                });
                if claim.offerings.is_empty() {
                    return Err(format!("no replacement is cheaper than ${price:.4}/h"));
                }
                let spot_offered = claim
                    .offerings
                    .iter()
                    .any(|o| o.capacity_type == CapacityType::Spot);
                if all_spot && spot_offered {
                    claim
                        .offerings
                        .retain(|o| o.capacity_type == CapacityType::Spot);
                    if !self.settings.spot_to_spot {
                        return Err("spot-to-spot consolidation is disabled".into());
                    }
                    let mut cheaper: Vec<Sym> = Vec::new();
                    for o in &claim.offerings {
                        if !cheaper.contains(&o.instance_type) {
                            cheaper.push(o.instance_type);
                        }
                    }
                    if !multi {
                        if cheaper.len() < SPOT_TO_SPOT_TYPES {
                            return Err(format!(
                                "spot-to-spot needs at least {SPOT_TO_SPOT_TYPES} cheaper instance types, found {}",
                                cheaper.len()
                            ));
                        }
                        if cheaper[..SPOT_TO_SPOT_TYPES].contains(&own_types[0]) {
                            return Err(format!(
                                "spot-to-spot: {} is already among the {SPOT_TO_SPOT_TYPES} cheapest types",
                                own_types[0]
                            ));
                        }
                    }
                    let keep: Vec<Sym> = cheaper.into_iter().take(SPOT_TO_SPOT_TYPES).collect();
                    claim.offerings.retain(|o| keep.contains(&o.instance_type));
                } else if any_on_demand && spot_offered {
                    // On-demand to [on-demand, spot]: prices were compared
                    // assuming spot, so launch spot only.
                    claim
                        .offerings
                        .retain(|o| o.capacity_type == CapacityType::Spot);
                }
                let mut types: Vec<Sym> = Vec::new();
                for o in &claim.offerings {
                    if !types.contains(&o.instance_type) {
                        types.push(o.instance_type);
                    }
                }
                claim.instance_types = types;
                let replacement = claim.offerings[0].price;
                Ok((mv(Some(replacement)), vec![claim]))
            }
        }
    }
}
