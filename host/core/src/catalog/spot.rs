//! Modelled spot prices.
//!
//! The embedded data has no spot prices (real ones move hourly), so the
//! built-in catalog models them. The model is deterministic, so simulations
//! and tests repeat exactly, and varies by family and zone, as AWS's prices
//! do, so zone choice matters. The AWS adapter replaces modelled prices with
//! observed ones through [`super::Catalog::set_spot_price`].

use serde::{Deserialize, Serialize};

use crate::rng;

/// A model of spot prices, not an observation:
/// `spot = on-demand × (1 − d)`, where the discount `d` is drawn from
/// `[min_discount, max_discount]` by a hash of (instance family, zone, seed).
/// Every size of a family gets the same discount in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpotModel {
    /// Smallest discount off on-demand, as a fraction (0.55 = 55 % off).
    pub min_discount: f64,
    /// Largest discount off on-demand, as a fraction.
    pub max_discount: f64,
    /// Changes every draw; the same seed always gives the same prices.
    pub seed: u64,
}

impl Default for SpotModel {
    /// 55–75 % off: the usual range of EC2 spot savings for general-purpose
    /// families.
    fn default() -> Self {
        Self {
            min_discount: 0.55,
            max_discount: 0.75,
            seed: 0,
        }
    }
}

impl SpotModel {
    /// The modelled discount for `family` in `zone`, within the band.
    pub fn discount(&self, family: &str, zone: &str) -> f64 {
        // FNV-1a then a SplitMix64 finaliser: stable across platforms and
        // releases, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in family.bytes().chain([0xff]).chain(zone.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h ^= self.seed.wrapping_mul(rng::GOLDEN_GAMMA);
        let unit = rng::unit_f64(rng::mix64(h));
        self.min_discount + unit * (self.max_discount - self.min_discount)
    }

    /// The modelled spot price of a type of `family` in `zone`.
    pub fn price(&self, on_demand: f64, family: &str, zone: &str) -> f64 {
        on_demand * (1.0 - self.discount(family, zone))
    }
}

/// Where a catalog's spot prices come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceSource {
    /// Every spot price is modelled; none was observed.
    Model(SpotModel),
    /// At least one spot price was observed (e.g. from
    /// `DescribeSpotPriceHistory`); any not supplied keeps its modelled value.
    Observed,
    /// Prices came with the instance types (a user-supplied catalog or the
    /// synthetic benchmark).
    Given,
}
