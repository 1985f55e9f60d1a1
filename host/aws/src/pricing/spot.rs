//! Spot prices from `DescribeSpotPriceHistory`: the latest record per
//! (instance type, zone).
//!
//! Karpenter asks for the Linux product descriptions from "now", which
//! returns each (type, zone)'s price in force and any later changes; the
//! newest record wins. Records for other operating systems are ignored here
//! too, in case the filter was not applied.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{RiProductDescription, SpotPrice};

/// The product descriptions Karpenter asks spot prices for.
pub fn product_descriptions() -> [RiProductDescription; 2] {
    [
        RiProductDescription::LinuxUnix,
        RiProductDescription::LinuxUnixAmazonVpc,
    ]
}

/// Why a spot-price record was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkippedRecord {
    #[error("record without {0}")]
    Missing(&'static str),
    #[error("{instance_type} in {zone}: product `{product}` is not Linux")]
    NotLinux {
        instance_type: String,
        zone: String,
        product: String,
    },
    #[error("{instance_type} in {zone}: price `{price}` is not a positive number")]
    BadPrice {
        instance_type: String,
        zone: String,
        price: String,
    },
}

/// The newest spot price of each (instance type, zone) seen so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpotHistory {
    /// (instance type, zone) → (epoch seconds and nanos of the record, USD/h).
    latest: BTreeMap<(String, String), ((i64, u32), f64)>,
    pub skipped: Vec<SkippedRecord>,
}

impl SpotHistory {
    /// Adds a page of records; order does not matter.
    pub fn add<'a>(&mut self, records: impl IntoIterator<Item = &'a SpotPrice>) {
        for record in records {
            if let Err(skipped) = self.add_one(record) {
                self.skipped.push(skipped);
            }
        }
    }

    fn add_one(&mut self, record: &SpotPrice) -> Result<(), SkippedRecord> {
        let instance_type = record
            .instance_type()
            .map(|t| t.as_str().to_string())
            .ok_or(SkippedRecord::Missing("instance type"))?;
        let zone = record
            .availability_zone()
            .ok_or(SkippedRecord::Missing("availability zone"))?
            .to_string();
        let when = record
            .timestamp()
            .ok_or(SkippedRecord::Missing("timestamp"))?;
        let product = record
            .product_description()
            .ok_or(SkippedRecord::Missing("product description"))?;
        if !product_descriptions().contains(product) {
            return Err(SkippedRecord::NotLinux {
                instance_type,
                zone,
                product: product.as_str().to_string(),
            });
        }
        let text = record.spot_price().ok_or(SkippedRecord::Missing("price"))?;
        let price = match text.parse::<f64>() {
            Ok(p) if p.is_finite() && p > 0.0 => p,
            _ => {
                return Err(SkippedRecord::BadPrice {
                    instance_type,
                    zone,
                    price: text.to_string(),
                });
            }
        };
        let stamp = (when.secs(), when.subsec_nanos());
        let entry = self
            .latest
            .entry((instance_type, zone))
            .or_insert((stamp, price));
        if stamp > entry.0 {
            *entry = (stamp, price);
        }
        Ok(())
    }

    /// The prices kept, by (instance type, zone).
    pub fn prices(&self) -> BTreeMap<(String, String), f64> {
        self.latest
            .iter()
            .map(|(k, &(_, price))| (k.clone(), price))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// Why a spot refresh is refused, keeping the prices already held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpotError {
    #[error("DescribeSpotPriceHistory returned no Linux spot price")]
    Empty,
}

impl SpotHistory {
    /// The prices, or an error when there are none: keeping the last good
    /// prices beats dropping every spot offering.
    pub fn finish(self) -> Result<BTreeMap<(String, String), f64>, SpotError> {
        if self.is_empty() {
            Err(SpotError::Empty)
        } else {
            Ok(self.prices())
        }
    }
}
