//! Prefer Graviton: arm64 offerings that fit come first (cheapest first),
//! then everything else by Karpenter's order. Only matters when the NodePool
//! allows both architectures, i.e. the workloads are multi-arch.

use dovetail_policy_sdk::prelude::*;

#[derive(Default)]
pub struct GravitonFirst;

impl Policy for GravitonFirst {
    const NAME: &'static str = "graviton-first";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "arm64 (Graviton) offerings first when they fit, then price";
}

impl SelectInstances for GravitonFirst {
    fn pick(
        &self,
        req: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError> {
        let mut rows = acceptable_or_error(req, launch)?;
        rank_cheapest(req, &mut rows);
        // Stable: keeps Karpenter's order within each architecture.
        rows.sort_by_key(|&r| req.offering(r).architecture() != "arm64");
        truncate(req, launch, &rows)
    }
}

dovetail_policy_sdk::export_instance_selector!(GravitonFirst);

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_policy_sdk::document::SelectionDocument;
    use serde_json::json;

    #[test]
    fn arm64_first_even_when_pricier() {
        let o = |t: &str, price: f64| {
            json!({"instance_type": t, "vcpu": 4, "memory_mib": 16384, "zone": "us-east-1a",
                   "capacity_type": "on-demand", "price_per_hour": price})
        };
        let doc: SelectionDocument = serde_json::from_value(json!({
            "offerings": [o("m6a.xlarge", 0.17), o("m7g.xlarge", 0.16), o("c7g.xlarge", 0.18), o("m7i.xlarge", 0.2)],
            "requests": [{"node_pool": "default"}]
        }))
        .unwrap();
        let req = doc.to_request().unwrap();
        let picks = GravitonFirst.pick(&req, &req.requests[0]).unwrap();
        let names: Vec<_> = picks
            .iter()
            .map(|&r| req.offering(r).instance_type())
            .collect();
        assert_eq!(
            names,
            ["m7g.xlarge", "c7g.xlarge", "m6a.xlarge", "m7i.xlarge"]
        );
    }

    #[test]
    fn falls_back_to_amd64_when_no_arm64_fits() {
        let doc: SelectionDocument = serde_json::from_value(json!({
            "offerings": [
                {"instance_type": "m7g.large", "vcpu": 2, "memory_mib": 8192, "zone": "us-east-1a",
                 "capacity_type": "on-demand", "price_per_hour": 0.08},
                {"instance_type": "m7i.2xlarge", "vcpu": 8, "memory_mib": 32768, "zone": "us-east-1a",
                 "capacity_type": "on-demand", "price_per_hour": 0.4}
            ],
            "requests": [{"node_pool": "default", "demand": {"cpu_milli": 4000, "memory_mib": 1024, "pods": 1, "gpus": 0}}]
        }))
        .unwrap();
        let req = doc.to_request().unwrap();
        let picks = GravitonFirst.pick(&req, &req.requests[0]).unwrap();
        assert_eq!(picks, [1]);
    }
}
