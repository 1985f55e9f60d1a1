//! Karpenter's built-in behaviour as a policy: the reference every other
//! policy is compared with, and the same code the host falls back to.
//!
//! Selection: cheapest available offerings first; spot preferred when allowed
//! and not pricier than the cheapest on-demand; at most 60 picks, keeping
//! enough distinct values for minValues. Consolidation
//! (WhenEmptyOrUnderutilized): rank by disruption cost scaled by remaining
//! lifetime; approve only strictly cheaper moves.

use dovetail_policy_sdk::prelude::*;

#[derive(Default)]
pub struct KarpenterDefault;

impl Policy for KarpenterDefault {
    const NAME: &'static str = "default";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Karpenter's built-in instance selection and WhenEmptyOrUnderutilized consolidation";
}

impl SelectInstances for KarpenterDefault {
    fn pick(
        &self,
        req: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError> {
        default_pick(req, launch)
    }
}

impl ScoreConsolidation for KarpenterDefault {
    fn approve_move(&self, ctx: &ConsolidationContext, proposed: &ProposedMove) -> Verdict {
        approve_strictly_cheaper(ctx, proposed)
    }
}

dovetail_policy_sdk::export_policy!(KarpenterDefault);

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_policy_sdk::document::{ConsolidationDocument, SelectionDocument};
    use serde_json::json;

    fn offering(t: &str, zone: &str, cap: &str, price: f64) -> serde_json::Value {
        json!({"instance_type": t, "vcpu": 4, "memory_mib": 16384, "zone": zone,
               "capacity_type": cap, "price_per_hour": price})
    }

    fn request(offerings: Vec<serde_json::Value>, launch: serde_json::Value) -> SelectionRequest {
        let doc: SelectionDocument =
            serde_json::from_value(json!({"offerings": offerings, "requests": [launch]})).unwrap();
        doc.to_request().unwrap()
    }

    fn names(req: &SelectionRequest, picks: &[u32]) -> Vec<String> {
        picks
            .iter()
            .map(|&r| {
                let o = req.offering(r);
                format!(
                    "{}/{}/{}",
                    o.instance_type(),
                    o.zone(),
                    o.capacity_type().as_str()
                )
            })
            .collect()
    }

    #[test]
    fn spot_first_when_cheaper_then_on_demand_by_price() {
        let req = request(
            vec![
                offering("m7i.xlarge", "us-east-1a", "on-demand", 0.20),
                offering("m6a.xlarge", "us-east-1a", "on-demand", 0.17),
                offering("m7i.xlarge", "us-east-1b", "spot", 0.08),
                offering("c7i.xlarge", "us-east-1b", "spot", 0.19),
                offering("r7i.xlarge", "us-east-1b", "spot", 0.30),
            ],
            json!({"node_pool": "default", "demand": {"cpu_milli": 1000, "memory_mib": 1024, "pods": 1, "gpus": 0}}),
        );
        let picks = KarpenterDefault.pick(&req, &req.requests[0]).unwrap();
        // r7i spot is pricier than the cheapest on-demand (0.17) and is dropped.
        assert_eq!(
            names(&req, &picks),
            [
                "m7i.xlarge/us-east-1b/spot",
                "m6a.xlarge/us-east-1a/on-demand",
                "m7i.xlarge/us-east-1a/on-demand",
            ]
        );
    }

    #[test]
    fn unavailable_and_too_small_offerings_are_never_picked() {
        let mut small = offering("m7i.large", "us-east-1a", "on-demand", 0.01);
        small["vcpu"] = json!(1);
        let mut gone = offering("m7i.xlarge", "us-east-1a", "on-demand", 0.02);
        gone["available"] = json!(false);
        let req = request(
            vec![
                small,
                gone,
                offering("m7i.2xlarge", "us-east-1a", "on-demand", 0.4),
            ],
            json!({"node_pool": "default", "demand": {"cpu_milli": 2000, "memory_mib": 1024, "pods": 1, "gpus": 0}}),
        );
        let picks = KarpenterDefault.pick(&req, &req.requests[0]).unwrap();
        assert_eq!(names(&req, &picks), ["m7i.2xlarge/us-east-1a/on-demand"]);
    }

    #[test]
    fn at_most_sixty_picks_and_min_values_kept() {
        let mut offerings = Vec::new();
        for i in 0..80 {
            offerings.push(offering(
                &format!("m7i.t{i}"),
                "us-east-1a",
                "on-demand",
                0.1 + i as f64 * 0.001,
            ));
        }
        // Two expensive families that minValues forces in.
        offerings.push(offering("c7i.xlarge", "us-east-1a", "on-demand", 5.0));
        offerings.push(offering("r7i.xlarge", "us-east-1a", "on-demand", 6.0));
        let req = request(
            offerings,
            json!({"node_pool": "default", "demand": {"cpu_milli": 100, "memory_mib": 100, "pods": 1, "gpus": 0},
                   "min_values": [{"key": "karpenter.k8s.aws/instance-family", "min": 3}]}),
        );
        let picks = KarpenterDefault.pick(&req, &req.requests[0]).unwrap();
        assert_eq!(picks.len(), 60);
        let families: std::collections::BTreeSet<&str> =
            picks.iter().map(|&r| req.offering(r).family()).collect();
        assert_eq!(
            families.into_iter().collect::<Vec<_>>(),
            ["c7i", "m7i", "r7i"]
        );
        // Order is still cheapest first.
        assert!(
            picks
                .windows(2)
                .all(|w| req.offering(w[0]).price() <= req.offering(w[1]).price())
        );
    }

    #[test]
    fn unsatisfiable_min_values_is_a_typed_error() {
        let req = request(
            vec![offering("m7i.xlarge", "us-east-1a", "on-demand", 0.2)],
            json!({"node_pool": "default", "min_values": [{"key": "karpenter.k8s.aws/instance-family", "min": 2}]}),
        );
        let err = KarpenterDefault.pick(&req, &req.requests[0]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsatisfiable);
        assert!(err.message.contains("instance-family"), "{}", err.message);
    }

    #[test]
    fn consolidation_ranks_by_lifetime_scaled_cost_and_approves_only_savings() {
        let doc: ConsolidationDocument = serde_json::from_value(json!({
            "candidates": [
                {"node": "busy", "node_pool": "default", "instance_type": "m7i.xlarge", "capacity_type": "on-demand",
                 "zone": "us-east-1a", "price_per_hour": 0.2, "pods": 10, "reason": "Underutilized"},
                {"node": "old", "node_pool": "default", "instance_type": "m7i.xlarge", "capacity_type": "on-demand",
                 "zone": "us-east-1a", "price_per_hour": 0.2, "pods": 10, "age_seconds": 90, "expire_after_seconds": 100,
                 "reason": "Underutilized"},
                {"node": "light", "node_pool": "default", "instance_type": "m7i.xlarge", "capacity_type": "on-demand",
                 "zone": "us-east-1a", "price_per_hour": 0.2, "pods": 2, "reason": "Underutilized"}
            ],
            "moves": [
                {"removed": ["light"]},
                {"removed": ["busy"], "replacement_price_per_hour": 0.2},
                {"removed": ["busy"], "replacement_price_per_hour": 0.19}
            ]
        }))
        .unwrap();
        let (ctx, moves) = doc.to_request().unwrap();
        let rank = KarpenterDefault.rank(&ctx).unwrap();
        assert_eq!(
            rank,
            [Some(10.0), Some(10.0 * (1.0 - 0.9)), Some(2.0)].map(|s| s.map(|v: f64| v))
        );
        let verdicts = KarpenterDefault.approve(&ctx, &moves).unwrap();
        assert_eq!(
            verdicts.iter().map(|v| v.approve).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert!(
            verdicts[1].reason.contains("not less than"),
            "{}",
            verdicts[1].reason
        );
    }
}
