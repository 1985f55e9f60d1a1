//! {{ name }}: a Dovetail decision policy.
//!
//! It starts as Karpenter's built-in behaviour plus one setting per
//! decision. Change the function marked `YOUR POLICY` below, then run
//! `cargo test` and the commands in README.md.
//!
//! Config (JSON, see config.json):
{% if selection %}
//! - `max-price-per-hour` (USD, default no limit): never pick an offering
//!   that costs more.
{% endif %}
{% if scoring %}
//! - `min-savings-percent` (0 to 100, default 0): approve a consolidation
//!   move only when it saves at least this share of what it removes.
{% endif %}

use dovetail_policy_sdk::prelude::*;

pub struct MyPolicy {
{% if selection %}
    max_price_per_hour: f64,
{% endif %}
{% if scoring %}
    min_savings_percent: f64,
{% endif %}
}

impl Default for MyPolicy {
    fn default() -> Self {
        Self {
{% if selection %}
            max_price_per_hour: 10_000.0,
{% endif %}
{% if scoring %}
            min_savings_percent: 0.0,
{% endif %}
        }
    }
}

impl Policy for MyPolicy {
    const NAME: &'static str = "{{ name }}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "{{ name }}: Karpenter's behaviour, to be changed";

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
{% if selection and scoring %}
        config.deny_unknown(&["max-price-per-hour", "min-savings-percent"])?;
{% elif selection %}
        config.deny_unknown(&["max-price-per-hour"])?;
{% else %}
        config.deny_unknown(&["min-savings-percent"])?;
{% endif %}
{% if selection %}
        self.max_price_per_hour = config.number("max-price-per-hour", 10_000.0, 0.0, 10_000.0)?;
{% endif %}
{% if scoring %}
        self.min_savings_percent = config.number("min-savings-percent", 0.0, 0.0, 100.0)?;
{% endif %}
        Ok(())
    }
}
{% if selection %}

impl MyPolicy {
    /// YOUR POLICY: put the acceptable offering rows in order, best first
    /// (or drop some). Karpenter's order: reserved, then spot no pricier than
    /// the cheapest on-demand, then on-demand; cheapest first in each.
    /// `req.offering(row)` reads a row: `.price()`, `.architecture()`,
    /// `.family()`, `.zone()`, `.capacity_type()`, `.vcpu()`, ...
    fn order(&self, req: &SelectionRequest, rows: &mut Vec<u32>) {
        rank_cheapest(req, rows);
    }
}

impl SelectInstances for MyPolicy {
    fn pick(
        &self,
        req: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError> {
        // Compatible, available, and with room for the pods.
        let mut rows = acceptable_or_error(req, launch)?;
        rows.retain(|&r| req.offering(r).price() <= self.max_price_per_hour);
        if rows.is_empty() {
            return Err(PolicyError::new(
                ErrorKind::NoAcceptableOffering,
                format!(
                    "no acceptable offering costs at most ${}/h (max-price-per-hour)",
                    self.max_price_per_hour
                ),
            ));
        }
        self.order(req, &mut rows);
        // The pick limit, keeping the NodePool's minValues.
        truncate(req, launch, &rows)
    }
}
{% endif %}
{% if scoring %}

impl ScoreConsolidation for MyPolicy {
    // `rank` (which candidates to try first) is Karpenter's unless you
    // override it here: one score per candidate, lowest first, None to skip.

    /// YOUR POLICY: whether a proposed move is worth its disruption.
    /// `removed_cost(ctx, mv)`, `mv.savings_per_hour`, `mv.pods_evicted` and
    /// `ctx.candidate(row)` help decide.
    fn approve_move(&self, ctx: &ConsolidationContext, mv: &ProposedMove) -> Verdict {
        approve_with_savings_threshold(ctx, mv, self.min_savings_percent)
    }
}
{% endif %}

{% if selection and scoring %}
dovetail_policy_sdk::export_policy!(MyPolicy);
{% elif selection %}
dovetail_policy_sdk::export_instance_selector!(MyPolicy);
{% else %}
dovetail_policy_sdk::export_consolidation_scorer!(MyPolicy);
{% endif %}

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_policy_sdk::document::RequestDocument;

    fn configured(config: &str) -> MyPolicy {
        let mut policy = MyPolicy::default();
        policy.configure(&Config::parse(config).unwrap()).unwrap();
        policy
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut policy = MyPolicy::default();
        let e = policy
            .configure(&Config::parse(r#"{"no-such-setting": 1}"#).unwrap())
            .unwrap_err();
        assert_eq!(e.field, "no-such-setting");
        let example = include_str!("../config.json");
        policy.configure(&Config::parse(example).unwrap()).unwrap();
    }
{% if selection %}

    /// The request of requests/selection.json (and of cases.yaml).
    fn selection() -> SelectionRequest {
        match serde_json::from_str(include_str!("../requests/selection.json")).unwrap() {
            RequestDocument::InstanceSelection(doc) => doc.to_request().unwrap(),
            _ => panic!("requests/selection.json is not an instance-selection request"),
        }
    }

    #[test]
    fn picks_spot_first_then_cheapest() {
        let req = selection();
        let picks = MyPolicy::default().pick(&req, &req.requests[0]).unwrap();
        assert_eq!(picks, [2, 1, 0, 3]);
    }

    #[test]
    fn max_price_drops_dear_offerings_and_fails_when_none_is_left() {
        let req = selection();
        let picks = configured(r#"{"max-price-per-hour": 0.2}"#)
            .pick(&req, &req.requests[0])
            .unwrap();
        assert_eq!(picks, [2, 1]);
        let e = configured(r#"{"max-price-per-hour": 0.01}"#)
            .pick(&req, &req.requests[0])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoAcceptableOffering);
        assert!(e.message.contains("max-price-per-hour"), "{}", e.message);
    }
{% endif %}
{% if scoring %}

    /// The round of requests/consolidation.json (and of cases.yaml):
    /// moves delete `empty`, replace `busy` for 5% less, replace `steady`
    /// at the same price.
    fn consolidation() -> (ConsolidationContext, Vec<ProposedMove>) {
        match serde_json::from_str(include_str!("../requests/consolidation.json")).unwrap() {
            RequestDocument::ConsolidationScoring(doc) => doc.to_request().unwrap(),
            _ => panic!("requests/consolidation.json is not a consolidation-scoring request"),
        }
    }

    #[test]
    fn approves_cheaper_moves_and_the_threshold_holds_back_small_savings() {
        let (ctx, moves) = consolidation();
        let approved = |p: &MyPolicy| -> Vec<bool> {
            p.approve(&ctx, &moves)
                .unwrap()
                .iter()
                .map(|v| v.approve)
                .collect()
        };
        assert_eq!(approved(&MyPolicy::default()), [true, true, false]);
        let strict = configured(r#"{"min-savings-percent": 10}"#);
        assert_eq!(approved(&strict), [true, false, false]);
    }

    #[test]
    fn the_empty_node_is_tried_first() {
        let (ctx, _) = consolidation();
        let scores = MyPolicy::default().rank(&ctx).unwrap();
        // Scores follow the candidates: busy, empty, steady.
        assert!(scores[1] < scores[0], "{scores:?}");
    }
{% endif %}
}
