//! Instance prices: on-demand from the Pricing API, spot from EC2's spot
//! price history, each refreshed on its own schedule and kept when a
//! refresh fails, starting from the embedded on-demand table.

pub mod embedded;
pub mod last_good;
pub mod on_demand;
pub mod spot;

use std::collections::BTreeMap;

pub use embedded::Origin;
pub use last_good::{Failure, LastGood, Refreshed};

/// How often Karpenter refreshes both price lists.
pub const REFRESH_INTERVAL_MS: u64 = 12 * 60 * 60 * 1000;

/// On-demand prices by instance type, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OnDemand {
    pub origin: Origin,
    /// USD (CNY in China) per hour.
    pub prices: BTreeMap<String, f64>,
}

/// Spot prices by (instance type, zone); `None` until first observed.
pub type Spot = Option<BTreeMap<(String, String), f64>>;

/// Every price the adapter knows for one region.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBook {
    region: String,
    pub on_demand: LastGood<OnDemand>,
    pub spot: LastGood<Spot>,
}

impl PriceBook {
    /// Starts from the embedded on-demand table, with no spot price
    /// observed.
    pub fn new(region: &str) -> Self {
        let (prices, origin) = embedded::on_demand(region);
        Self {
            region: region.to_string(),
            on_demand: LastGood::new(OnDemand { origin, prices }),
            spot: LastGood::new(None),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Applies an on-demand refresh from the Pricing API.
    pub fn record_on_demand<E: std::fmt::Display>(
        &mut self,
        result: Result<BTreeMap<String, f64>, E>,
        now_ms: u64,
    ) -> Refreshed {
        self.on_demand.record(
            result.map(|prices| OnDemand {
                origin: Origin::PricingApi,
                prices,
            }),
            now_ms,
        )
    }

    /// Applies a spot refresh from `DescribeSpotPriceHistory`.
    pub fn record_spot<E: std::fmt::Display>(
        &mut self,
        result: Result<BTreeMap<(String, String), f64>, E>,
        now_ms: u64,
    ) -> Refreshed {
        self.spot.record(result.map(Some), now_ms)
    }

    pub fn on_demand_price(&self, instance_type: &str) -> Option<f64> {
        self.on_demand.value().prices.get(instance_type).copied()
    }

    /// The spot price of `instance_type` in `zone`. Until spot prices have
    /// been observed once, a type's on-demand price stands in for every
    /// zone, as in Karpenter; afterwards only observed (type, zone) pairs
    /// have a price, and a spot offering without one is not offered.
    pub fn spot_price(&self, instance_type: &str, zone: &str) -> Option<f64> {
        match self.spot.value() {
            None => self.on_demand_price(instance_type),
            Some(prices) => prices
                .get(&(instance_type.to_string(), zone.to_string()))
                .copied(),
        }
    }

    /// Whether any spot price has been observed.
    pub fn spot_observed(&self) -> bool {
        self.spot.value().is_some()
    }
}
