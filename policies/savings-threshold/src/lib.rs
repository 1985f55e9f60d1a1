//! Consolidate only when it pays: approve a move only if it saves at least
//! `min-savings-percent` of what the removed nodes cost (default 20).
//! Ranking is Karpenter's.
//!
//! Config: `{"min-savings-percent": 20}`.

use dovetail_policy_sdk::prelude::*;

pub struct SavingsThreshold {
    min_percent: f64,
}

impl Default for SavingsThreshold {
    fn default() -> Self {
        Self { min_percent: 20.0 }
    }
}

impl Policy for SavingsThreshold {
    const NAME: &'static str = "savings-threshold";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "approve consolidation moves only when they save at least min-savings-percent";

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        config.deny_unknown(&["min-savings-percent"])?;
        self.min_percent = config.number("min-savings-percent", 20.0, 0.0, 100.0)?;
        Ok(())
    }
}

impl ScoreConsolidation for SavingsThreshold {
    fn approve_move(&self, ctx: &ConsolidationContext, mv: &ProposedMove) -> Verdict {
        approve_with_savings_threshold(ctx, mv, self.min_percent)
    }
}

dovetail_policy_sdk::export_consolidation_scorer!(SavingsThreshold);

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_policy_sdk::document::ConsolidationDocument;
    use serde_json::json;

    fn round() -> (ConsolidationContext, Vec<ProposedMove>) {
        let doc: ConsolidationDocument = serde_json::from_value(json!({
            "candidates": [
                {"node": "a", "node_pool": "default", "instance_type": "m7i.2xlarge", "capacity_type": "on-demand",
                 "zone": "us-east-1a", "price_per_hour": 1.0, "pods": 4, "reason": "Underutilized"},
                {"node": "b", "node_pool": "default", "instance_type": "m7i.2xlarge", "capacity_type": "on-demand",
                 "zone": "us-east-1a", "price_per_hour": 1.0, "pods": 0, "reason": "Empty"}
            ],
            "moves": [
                {"removed": ["a"], "replacement_price_per_hour": 0.95},
                {"removed": ["a"], "replacement_price_per_hour": 0.5},
                {"removed": ["b"]}
            ]
        }))
        .unwrap();
        doc.to_request().unwrap()
    }

    #[test]
    fn twenty_percent_rejects_a_five_percent_saving() {
        let (ctx, moves) = round();
        let mut p = SavingsThreshold::default();
        p.configure(&Config::parse(r#"{"min-savings-percent": 20}"#).unwrap())
            .unwrap();
        let v = p.approve(&ctx, &moves).unwrap();
        assert!(!v[0].approve);
        assert!(v[0].reason.contains("5.0%"), "{}", v[0].reason);
        assert!(v[1].approve);
        assert!(v[2].approve, "deleting an empty node saves 100%");
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut p = SavingsThreshold::default();
        let e = p
            .configure(&Config::parse(r#"{"min-savings-percent": -1}"#).unwrap())
            .unwrap_err();
        assert_eq!(e.field, "min-savings-percent");
        let e = p
            .configure(&Config::parse(r#"{"min_savings": 5}"#).unwrap())
            .unwrap_err();
        assert_eq!(e.field, "min_savings");
    }
}
