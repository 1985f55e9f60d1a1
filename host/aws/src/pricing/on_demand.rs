//! On-demand prices from the Pricing API's `GetProducts`.
//!
//! Each `PriceList` entry is a JSON document, sent as a string, describing
//! one product (`product.attributes`) and its terms (`terms.OnDemand`, and
//! `terms.Reserved`, which is ignored). Karpenter asks for two product sets
//! and merges them, bare metal last: shared-tenancy compute instances, and
//! dedicated bare-metal instances (bare metal is only sold that way). Both are
//! Linux with no pre-installed software, capacity status `Used`, on-demand.
//! The same conditions are checked again on every item here, so an item the
//! server let through by mistake (a Windows price, a capacity-reservation
//! line) cannot become a node's price.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `serviceCode` of EC2 in the Pricing API.
pub const SERVICE_CODE: &str = "AmazonEC2";

/// One of the two product sets Karpenter prices on-demand instances from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductSet {
    /// `tenancy=Shared`, `productFamily=Compute Instance`.
    SharedTenancy,
    /// `tenancy=Dedicated`, `productFamily=Compute Instance (bare metal)`.
    DedicatedBareMetal,
}

impl ProductSet {
    pub const ALL: [ProductSet; 2] = [Self::SharedTenancy, Self::DedicatedBareMetal];

    fn tenancy(self) -> &'static str {
        match self {
            Self::SharedTenancy => "Shared",
            Self::DedicatedBareMetal => "Dedicated",
        }
    }

    fn product_family(self) -> &'static str {
        match self {
            Self::SharedTenancy => "Compute Instance",
            Self::DedicatedBareMetal => "Compute Instance (bare metal)",
        }
    }

    /// The `TERM_MATCH` filters (field, value) of the `GetProducts` request
    /// for this set in `region`.
    pub fn filters(self, region: &str) -> Vec<(&'static str, String)> {
        self.conditions(region)
            .into_iter()
            .map(|c| (c.filter, c.value))
            .collect()
    }

    /// What every product of this set has, in the order Karpenter filters.
    fn conditions(self, region: &str) -> Vec<Condition> {
        let c = |filter, attribute, value: &str| Condition {
            filter,
            attribute,
            value: value.to_string(),
        };
        vec![
            c("regionCode", Attribute::Named("regionCode"), region),
            c("serviceCode", Attribute::Named("servicecode"), SERVICE_CODE),
            c("preInstalledSw", Attribute::Named("preInstalledSw"), "NA"),
            c(
                "operatingSystem",
                Attribute::Named("operatingSystem"),
                "Linux",
            ),
            c("capacitystatus", Attribute::Named("capacitystatus"), "Used"),
            c("marketoption", Attribute::Named("marketoption"), "OnDemand"),
            c("tenancy", Attribute::Named("tenancy"), self.tenancy()),
            c(
                "productFamily",
                Attribute::ProductFamily,
                self.product_family(),
            ),
        ]
    }

    /// The first condition of this set in `region` that `product` fails.
    fn mismatch(self, product: &Product, region: &str) -> Option<Mismatch> {
        self.conditions(region).into_iter().find_map(|c| {
            let got = match c.attribute {
                Attribute::Named(name) => product.attributes.get(name),
                Attribute::ProductFamily => product.product_family.as_ref(),
            };
            (got != Some(&c.value)).then(|| Mismatch {
                attribute: c.filter,
                found: got.cloned(),
            })
        })
    }
}

/// A filter of the request, and where an item's product carries it (the
/// API's filter names and the document's attribute names differ in case).
struct Condition {
    filter: &'static str,
    attribute: Attribute,
    value: String,
}

enum Attribute {
    Named(&'static str),
    ProductFamily,
}

/// The currency prices are read in: the Pricing API quotes China's regions
/// in yuan.
pub fn currency(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "CNY"
    } else {
        "USD"
    }
}

/// The region whose Pricing API endpoint serves `region`: the API runs in
/// a few regions only.
pub fn pricing_api_region(region: &str) -> &'static str {
    if region.starts_with("ap-") {
        "ap-south-1"
    } else if region.starts_with("cn-") {
        "cn-northwest-1"
    } else if region.starts_with("eu-") {
        "eu-central-1"
    } else {
        "us-east-1"
    }
}

/// Why a `PriceList` item gave no price.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Skipped {
    #[error("not a price-list document: {0}")]
    Malformed(String),
    #[error("product has no instanceType")]
    NoInstanceType,
    #[error("{instance_type}: {mismatch}")]
    OtherProduct {
        instance_type: String,
        mismatch: Mismatch,
    },
    #[error("{instance_type}: no positive on-demand price in {currency}")]
    NoPrice {
        instance_type: String,
        currency: &'static str,
    },
}

/// A product attribute that differs from what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attribute} is {}", found.as_deref().map_or("missing".to_string(), |v| format!("`{v}`")))]
pub struct Mismatch {
    pub attribute: &'static str,
    pub found: Option<String>,
}

/// The prices one product set gave, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// USD (CNY in China) per hour by instance type.
    pub prices: BTreeMap<String, f64>,
    pub skipped: Vec<Skipped>,
}

/// Reads `PriceList` items of product set `set` in `region`. An item that
/// gives several positive prices keeps the last, and so does a type priced
/// by several items, as Karpenter's map does.
pub fn parse_price_list<'a>(
    items: impl IntoIterator<Item = &'a str>,
    set: ProductSet,
    region: &str,
) -> Page {
    let mut page = Page::default();
    for item in items {
        match parse_item(item, set, region) {
            Ok((instance_type, price)) => {
                page.prices.insert(instance_type, price);
            }
            Err(skipped) => page.skipped.push(skipped),
        }
    }
    page
}

fn parse_item(item: &str, set: ProductSet, region: &str) -> Result<(String, f64), Skipped> {
    let doc: PriceItem =
        serde_json::from_str(item).map_err(|e| Skipped::Malformed(e.to_string()))?;
    let instance_type = doc
        .product
        .attributes
        .get("instanceType")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or(Skipped::NoInstanceType)?;
    if let Some(mismatch) = set.mismatch(&doc.product, region) {
        return Err(Skipped::OtherProduct {
            instance_type,
            mismatch,
        });
    }
    let currency = currency(region);
    let price = doc
        .terms
        .on_demand
        .values()
        .flat_map(|term| term.price_dimensions.values())
        .filter_map(|d| d.price_per_unit.get(currency)?.parse::<f64>().ok())
        .rfind(|p| p.is_finite() && *p > 0.0);
    match price {
        Some(price) => Ok((instance_type, price)),
        None => Err(Skipped::NoPrice {
            instance_type,
            currency,
        }),
    }
}

/// The parts of a price-list document read here.
#[derive(Deserialize)]
struct PriceItem {
    product: Product,
    #[serde(default)]
    terms: Terms,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Product {
    #[serde(default)]
    product_family: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Terms {
    #[serde(rename = "OnDemand", default)]
    on_demand: BTreeMap<String, Term>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Term {
    #[serde(default)]
    price_dimensions: BTreeMap<String, PriceDimension>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriceDimension {
    #[serde(default)]
    price_per_unit: BTreeMap<String, String>,
}

/// Why an on-demand refresh is refused, keeping the prices already held.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnDemandError {
    #[error("the Pricing API returned no on-demand price for {region}")]
    Empty { region: String },
}

/// The two product sets merged, bare metal last, as Karpenter merges them.
/// An empty result is an error: keeping the last good prices beats pricing
/// every type as unknown.
pub fn merge(
    region: &str,
    shared: Page,
    bare_metal: Page,
) -> Result<BTreeMap<String, f64>, OnDemandError> {
    let mut prices = shared.prices;
    prices.extend(bare_metal.prices);
    if prices.is_empty() {
        return Err(OnDemandError::Empty {
            region: region.to_string(),
        });
    }
    Ok(prices)
}
