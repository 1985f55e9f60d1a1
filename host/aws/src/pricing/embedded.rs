//! The static on-demand price table shipped in the binary: the fallback
//! when the Pricing API cannot be reached (isolated VPCs, test servers
//! without it). It is dovetail-core's embedded AWS data, not a copy.

use std::collections::BTreeMap;

use dovetail_core::catalog::aws::{self, US_EAST_1};

/// Where an on-demand price table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The embedded table of `region`. `exact` is false when the cluster's
    /// region has no table of its own and this one stands in, so prices are
    /// indicative (their order across types mostly holds across regions).
    Embedded { region: &'static str, exact: bool },
    /// The Pricing API.
    PricingApi,
}

/// The embedded on-demand prices for `region`, and their origin.
pub fn on_demand(region: &str) -> (BTreeMap<String, f64>, Origin) {
    // The data is compiled in, and core's tests parse all of it.
    let table = |r: &str| {
        aws::on_demand_prices(r)
            .expect("embedded AWS price data parses")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>()
    };
    // Only us-east-1 is embedded; other regions borrow its prices.
    let exact = region == US_EAST_1;
    (
        table(US_EAST_1),
        Origin::Embedded {
            region: US_EAST_1,
            exact,
        },
    )
}
