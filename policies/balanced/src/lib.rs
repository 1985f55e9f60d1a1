//! Karpenter's Balanced consolidation: a move's score is its share of the
//! NodePool's cost saved divided by its share of the NodePool's disruption
//! (each node weighs 1 on top of its pods' costs); approve when the score is
//! at least 1/k. Candidates whose deletion alone could not pass are excluded,
//! the rest ranked best score first.
//!
//! Config: `{"k": 2}` (k >= 1; larger k approves more).

use dovetail_policy_sdk::prelude::*;

pub struct Balanced {
    k: f64,
}

impl Default for Balanced {
    fn default() -> Self {
        Self { k: 2.0 }
    }
}

impl Policy for Balanced {
    const NAME: &'static str = "balanced";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Karpenter's Balanced policy: approve when savings share / disruption share >= 1/k";

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        config.deny_unknown(&["k"])?;
        self.k = config.number("k", 2.0, 1.0, 1000.0)?;
        Ok(())
    }
}

impl ScoreConsolidation for Balanced {
    fn rank(&self, ctx: &ConsolidationContext) -> Result<Ranking, PolicyError> {
        Ok(balanced_rank(ctx, self.k))
    }

    fn approve_move(&self, ctx: &ConsolidationContext, mv: &ProposedMove) -> Verdict {
        approve_balanced(ctx, mv, self.k)
    }
}

dovetail_policy_sdk::export_consolidation_scorer!(Balanced);

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_policy_sdk::document::ConsolidationDocument;
    use serde_json::json;

    fn round() -> (ConsolidationContext, Vec<ProposedMove>) {
        let node = |name: &str, price: f64, pods: u32| {
            json!({"node": name, "node_pool": "default", "instance_type": "m7i.xlarge",
                   "capacity_type": "on-demand", "zone": "us-east-1a", "price_per_hour": price,
                   "pods": pods, "reason": if pods == 0 { "Empty" } else { "Underutilized" }})
        };
        let doc: ConsolidationDocument = serde_json::from_value(json!({
            "candidates": [node("busy", 0.2, 40), node("idle", 0.2, 0), node("n3", 0.2, 5), node("n4", 0.2, 5)],
            "moves": [
                {"removed": ["busy"], "replacement_price_per_hour": 0.19},
                {"removed": ["idle"]}
            ]
        }))
        .unwrap();
        doc.to_request().unwrap()
    }

    #[test]
    fn rejects_high_disruption_low_saving_and_approves_cheap_wins() {
        let (ctx, moves) = round();
        let v = Balanced::default().approve(&ctx, &moves).unwrap();
        assert!(!v[0].approve, "{}", v[0].reason);
        assert!(v[0].reason.contains("small for the disruption"));
        assert!(v[1].approve, "{}", v[1].reason);
    }

    #[test]
    fn larger_k_is_more_permissive() {
        let (ctx, moves) = round();
        let mut p = Balanced::default();
        p.configure(&Config::parse(r#"{"k": 100}"#).unwrap())
            .unwrap();
        assert!(p.approve(&ctx, &moves).unwrap()[0].approve);
    }

    #[test]
    fn ranks_idle_first_and_excludes_hopeless_candidates() {
        let (ctx, _) = round();
        let rank = Balanced::default().rank(&ctx).unwrap();
        assert_eq!(rank[0], None, "deleting the busy node can never pass");
        let idle = rank[1].unwrap();
        assert!(rank[2..].iter().all(|s| s.unwrap() > idle));
    }
}
