//! The region's instance types, offerings and prices, read from the APIs and
//! refreshed every 12 hours, kept as they were when a refresh fails.
//!
//! The caller drives refreshes (`due`, then `refresh`), so nothing runs in
//! the background here and tests control the clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::{Filter, InstanceTypeInfo, LocationType};
use aws_sdk_pricing::types::{Filter as PricingFilter, FilterType};
use dovetail_core::catalog::aws::Ec2InstanceInfo;
use dovetail_core::catalog::{Catalog, CatalogSettings, PriceSource};
use dovetail_core::sym::Sym;

use crate::api_error::ApiError;
use crate::clients::Clients;
use crate::instance_types::{self, Dropped, OfferingError, ZoneOfferings};
use crate::pricing::on_demand::{self, OnDemandError, ProductSet};
use crate::pricing::spot::{self, SpotError, SpotHistory};
use crate::pricing::{LastGood, Origin, PriceBook};

/// How long after a successful refresh the next is due.
pub const REFRESH_INTERVAL_MS: u64 = instance_types::REFRESH_INTERVAL_MS;

/// How long after a failed refresh (of any source) the next is due.
pub const RETRY_INTERVAL_MS: u64 = 60 * 1000;

/// Items per page asked of the paginated APIs.
const PAGE_SIZE: i32 = 100;

/// Why a source could not be refreshed. Instance-type and offering failures
/// fail the refresh; price failures are reported in [`Refreshed`] and keep
/// the last good prices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "ec2:DescribeInstanceTypeOfferings: {0}; check the endpoint is EC2's for the cluster's region"
    )]
    Offerings(#[from] OfferingError),
    #[error(
        "ec2:DescribeInstanceTypes returned no instance type in {region}: check the region and the endpoint"
    )]
    NoInstanceTypes { region: String },
    #[error(
        "ec2:DescribeInstanceTypeOfferings returned no offering in {region}: check the region and the endpoint"
    )]
    NoOfferings { region: String },
    #[error("pricing:GetProducts: {0}; check the region has on-demand prices")]
    OnDemand(#[from] OnDemandError),
    #[error("ec2:DescribeSpotPriceHistory: {0}; spot offerings keep their last known prices")]
    Spot(#[from] SpotError),
    #[error("could not build the {action} request: {message}")]
    Request {
        action: &'static str,
        message: String,
    },
}

/// Where the spot prices of the catalog came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotOrigin {
    /// None observed yet: each type's on-demand price stands in.
    OnDemandStandsIn,
    /// `DescribeSpotPriceHistory`, with this many (type, zone) prices.
    History { prices: usize },
}

/// What a successful refresh built.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    /// Instance types `DescribeInstanceTypes` described.
    pub described_types: usize,
    /// (type, zone) pairs `DescribeInstanceTypeOfferings` listed.
    pub zone_offerings: usize,
    /// Instance types in the catalog.
    pub instance_types: usize,
    /// Offerings (type, zone, capacity type) in the catalog.
    pub offerings: usize,
    /// Described types left out of the catalog, and why.
    pub dropped: Vec<Dropped>,
    pub on_demand: Origin,
    pub on_demand_prices: usize,
    pub spot: SpotOrigin,
    /// Price sources that failed this time; their last good prices were used.
    pub price_failures: Vec<DiscoveryError>,
    /// Whether the catalog differs from the one before.
    pub changed: bool,
}

/// The instance types, offerings and prices of one region, and the catalog
/// built from them.
#[derive(Debug)]
pub struct Discovery {
    region: String,
    settings: CatalogSettings,
    types: LastGood<Vec<InstanceTypeInfo>>,
    offerings: LastGood<ZoneOfferings>,
    prices: PriceBook,
    catalog: Arc<Catalog>,
    /// The facts behind the catalog's types, for sizing them per class.
    infos: Arc<BTreeMap<Sym, Ec2InstanceInfo>>,
    /// Unix ms of the last refresh, and whether every source succeeded.
    last: Option<(u64, bool)>,
}

impl Discovery {
    /// Starts with no instance types and the embedded on-demand prices.
    pub fn new(region: &str, settings: CatalogSettings) -> Self {
        Self {
            region: region.to_string(),
            settings,
            types: LastGood::new(Vec::new()),
            offerings: LastGood::new(ZoneOfferings::default()),
            prices: PriceBook::new(region),
            catalog: Arc::new(Catalog::new(
                Sym::new(region),
                Vec::new(),
                PriceSource::Given,
            )),
            infos: Arc::default(),
            last: None,
        }
    }

    /// The current catalog: the same `Arc` until a refresh changes it.
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog)
    }

    /// The facts behind the current catalog's types, changed with it.
    pub fn infos(&self) -> Arc<BTreeMap<Sym, Ec2InstanceInfo>> {
        Arc::clone(&self.infos)
    }

    /// The operator's settings every type is sized with.
    pub fn settings(&self) -> &CatalogSettings {
        &self.settings
    }

    /// The prices held.
    pub fn prices(&self) -> &PriceBook {
        &self.prices
    }

    /// Whether a refresh is due: at first, 12 h after a refresh in which
    /// every source succeeded, a minute after one in which any failed.
    pub fn due(&self, now_ms: u64) -> bool {
        match self.last {
            None => true,
            Some((at, ok)) => {
                let wait = if ok {
                    REFRESH_INTERVAL_MS
                } else {
                    RETRY_INTERVAL_MS
                };
                now_ms >= at.saturating_add(wait)
            }
        }
    }

    /// Reads every source and rebuilds the catalog. A failed instance-type
    /// or offering read fails the refresh and leaves the catalog as it was;
    /// a failed price read keeps that source's last good prices.
    pub async fn refresh(
        &mut self,
        clients: &Clients,
        now_ms: u64,
    ) -> Result<Refreshed, DiscoveryError> {
        let types = describe_types(&clients.ec2).await;
        let offerings = describe_offerings(&clients.ec2).await;
        let mut price_failures = Vec::new();
        if clients.pricing_reachable {
            let result = get_on_demand(&clients.pricing, &self.region).await;
            if let Err(e) = &result {
                price_failures.push(e.clone());
            }
            self.prices.record_on_demand(result, now_ms);
        }
        let spot = spot_prices(&clients.ec2, now_ms).await;
        if let Err(e) = &spot {
            price_failures.push(e.clone());
        }
        self.prices.record_spot(spot, now_ms);

        let types = types.and_then(|t| {
            if t.is_empty() {
                Err(DiscoveryError::NoInstanceTypes {
                    region: self.region.clone(),
                })
            } else {
                Ok(t)
            }
        });
        let offerings = offerings.and_then(|(o, count)| {
            if count == 0 {
                Err(DiscoveryError::NoOfferings {
                    region: self.region.clone(),
                })
            } else {
                Ok((o, count))
            }
        });
        let first_error = types.as_ref().err().or(offerings.as_ref().err()).cloned();
        let zone_offerings = offerings.as_ref().map_or(0, |(_, n)| *n);
        self.types.record(types, now_ms);
        self.offerings.record(offerings.map(|(o, _)| o), now_ms);
        if let Some(e) = first_error {
            self.last = Some((now_ms, false));
            return Err(e);
        }
        self.last = Some((now_ms, price_failures.is_empty()));

        let built = instance_types::catalog(
            &self.region,
            self.types.value(),
            self.offerings.value(),
            &self.prices,
            &self.settings,
        );
        let changed = built.catalog != *self.catalog;
        if changed {
            self.catalog = Arc::new(built.catalog);
            self.infos = Arc::new(built.infos);
        }
        let catalog = &self.catalog;
        Ok(Refreshed {
            described_types: self.types.value().len(),
            zone_offerings,
            instance_types: catalog.instance_types.len(),
            offerings: catalog
                .instance_types
                .iter()
                .map(|t| t.offerings.len())
                .sum(),
            dropped: built.dropped,
            on_demand: self.prices.on_demand.value().origin,
            on_demand_prices: self.prices.on_demand.value().prices.len(),
            spot: match self.prices.spot.value() {
                None => SpotOrigin::OnDemandStandsIn,
                Some(p) => SpotOrigin::History { prices: p.len() },
            },
            price_failures,
            changed,
        })
    }
}

fn ec2_filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// `DescribeInstanceTypes` with Karpenter's filters, every page.
async fn describe_types(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<InstanceTypeInfo>, DiscoveryError> {
    const ACTION: &str = "ec2:DescribeInstanceTypes";
    let filters = instance_types::describe_filters()
        .iter()
        .map(|(name, values)| ec2_filter(name, values))
        .collect();
    let mut pages = ec2
        .describe_instance_types()
        .set_filters(Some(filters))
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut types = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::from_sdk(ACTION, &e))?;
        types.extend(page.instance_types().iter().cloned());
    }
    Ok(types)
}

/// `DescribeInstanceTypeOfferings` by availability zone, every page, and
/// how many (type, zone) pairs it listed.
async fn describe_offerings(
    ec2: &aws_sdk_ec2::Client,
) -> Result<(ZoneOfferings, usize), DiscoveryError> {
    const ACTION: &str = "ec2:DescribeInstanceTypeOfferings";
    let mut pages = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .max_results(1000)
        .into_paginator()
        .send();
    let mut offerings = ZoneOfferings::default();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::from_sdk(ACTION, &e))?;
        count += page.instance_type_offerings().len();
        offerings.add(page.instance_type_offerings())?;
    }
    Ok((offerings, count))
}

/// The Pricing API's on-demand prices of `region`: both product sets, every
/// page, merged as Karpenter merges them.
async fn get_on_demand(
    pricing: &aws_sdk_pricing::Client,
    region: &str,
) -> Result<BTreeMap<String, f64>, DiscoveryError> {
    const ACTION: &str = "pricing:GetProducts";
    let mut pages_by_set = Vec::new();
    for set in ProductSet::ALL {
        let filters = set
            .filters(region)
            .into_iter()
            .map(|(field, value)| {
                PricingFilter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(field)
                    .value(value)
                    .build()
                    .map_err(|e| DiscoveryError::Request {
                        action: ACTION,
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut pages = pricing
            .get_products()
            .service_code(on_demand::SERVICE_CODE)
            .format_version("aws_v1")
            .set_filters(Some(filters))
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ApiError::from_sdk(ACTION, &e))?;
            items.extend(page.price_list().iter().cloned());
        }
        pages_by_set.push(on_demand::parse_price_list(
            items.iter().map(String::as_str),
            set,
            region,
        ));
    }
    let bare_metal = pages_by_set.pop().unwrap_or_default();
    let shared = pages_by_set.pop().unwrap_or_default();
    Ok(on_demand::merge(region, shared, bare_metal)?)
}

/// The latest Linux spot price of each (type, zone), from the prices in
/// force at `now_ms` on.
async fn spot_prices(
    ec2: &aws_sdk_ec2::Client,
    now_ms: u64,
) -> Result<BTreeMap<(String, String), f64>, DiscoveryError> {
    const ACTION: &str = "ec2:DescribeSpotPriceHistory";
    let start = DateTime::from_millis(i64::try_from(now_ms).unwrap_or(i64::MAX));
    let mut pages = ec2
        .describe_spot_price_history()
        .set_product_descriptions(Some(
            spot::product_descriptions()
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        ))
        .start_time(start)
        .max_results(1000)
        .into_paginator()
        .send();
    let mut history = SpotHistory::default();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::from_sdk(ACTION, &e))?;
        history.add(page.spot_price_history());
    }
    Ok(history.finish()?)
}
