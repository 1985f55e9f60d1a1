//! Consolidation (Karpenter's `consolidation.go`): the candidates for
//! underutilisation moves, and the move for a set of them — delete, or
//! replace by one strictly cheaper NodeClaim. Multi-node and single-node
//! consolidation search over these moves.

mod multi_node;
mod single_node;

use std::collections::HashSet;

use crate::catalog::CapacityType;
use crate::catalog::compiled::{CompiledType, OfferingKeys};
use crate::model::ConsolidationPolicy;
use crate::policy::types::{ConsolidationContext, ProposedMove};
use crate::requirements::Requirements;
use crate::scheduler::{NodeClaimPlan, check_min_values};
use crate::sym::Sym;

use super::budgets::DisruptionReason;
use super::candidates::CandidateIndex;
use super::engine::Engine;
use super::simulate::{Fit, Purpose};

/// Karpenter's single-node spot-to-spot rule: at least this many cheaper
/// types, and the current one not among them.
pub const SPOT_TO_SPOT_TYPES: usize = 15;

/// A proposed move and its replacement NodeClaims, or why there is none.
type MoveResult = Result<(ProposedMove, Vec<NodeClaimPlan>), String>;

impl Engine<'_> {
    /// Candidates for underutilisation moves, in the policy's order, within
    /// budgets. Empty nodes are Emptiness's alone: one left over was held
    /// back by the Empty budgets, which consolidation must not get round.
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
                    && !cand.pods.is_empty()
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
    /// The saving is counted from the replacement's cheapest offering, as
    /// Karpenter estimates it.
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
        match self.fit(cands, Some(price), Purpose::Consolidation) {
            Fit::No(why) => Err(why),
            Fit::Delete => Ok((mv(None), Vec::new())),
            Fit::Replace(claims) if claims.len() > 1 => Err(format!(
                "its pods need {} new nodes; consolidation never replaces one node by several",
                claims.len()
            )),
            Fit::Replace(mut claims) => {
                let mut claim = claims.remove(0);
                // Only types whose every offering the fleet might launch is
                // strictly cheaper; for several nodes, never one of the same
                // type as a removed node. What is left must still meet the
                // NodePool's minValues.
                let types = self.snapshot.catalog.compiled();
                let kept: Vec<u32> = claim
                    .instance_types
                    .iter()
                    .filter(|t| !(multi && own_types.contains(t)))
                    .filter_map(|t| types.list.binary_search_by(|c| c.name.cmp(t)).ok())
                    .filter(|&i| {
                        worst_launch_price(&types.list[i], &claim.compiled, &types.keys) < price
                    })
                    .map(|i| i as u32)
                    .collect();
                let names: HashSet<Sym> =
                    kept.iter().map(|&i| types.list[i as usize].name).collect();
                claim
                    .offerings
                    .retain(|o| o.price < price && names.contains(&o.instance_type));
                if claim.offerings.is_empty() {
                    return Err(format!("no replacement is cheaper than ${price:.4}/h"));
                }
                check_min_values(&claim.compiled, &kept, &types)
                    .map_err(|e| format!("the replacements cheaper than ${price:.4}/h fail {e}"))?;
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

/// The most a node of type `it` may cost when a NodeClaim with `reqs`
/// launches (Karpenter's `WorstLaunchPrice`): its dearest available
/// offering in the zones and capacity types `reqs` allows, among the
/// capacity type the launch prefers (reserved, then spot, then on-demand).
/// Infinite when there is none.
fn worst_launch_price(it: &CompiledType, reqs: &Requirements, keys: &OfferingKeys) -> f64 {
    let zone = reqs.get(keys.zone);
    let ct = reqs.get(keys.capacity_type);
    [
        CapacityType::Reserved,
        CapacityType::Spot,
        CapacityType::OnDemand,
    ]
    .into_iter()
    .find_map(|capacity| {
        it.offerings
            .iter()
            .filter(|o| {
                o.available
                    && o.capacity_type == capacity
                    && zone.is_none_or(|r| r.has(o.zone))
                    && ct.is_none_or(|r| r.has(o.capacity_label))
            })
            .map(|o| o.price)
            .reduce(f64::max)
    })
    .unwrap_or(f64::INFINITY)
}
