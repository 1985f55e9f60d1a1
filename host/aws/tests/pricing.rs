//! Pricing: recorded `GetProducts` and `DescribeSpotPriceHistory` responses
//! through the SDK, into the price book.

mod support;

use std::collections::BTreeMap;

use dovetail_aws::pricing::on_demand::{
    self, Mismatch, ProductSet, Skipped, parse_price_list, pricing_api_region,
};
use dovetail_aws::pricing::spot::{SkippedRecord, SpotHistory};
use dovetail_aws::pricing::{Origin, PriceBook, REFRESH_INTERVAL_MS, Refreshed};

async fn price_list() -> Vec<String> {
    let client = support::pricing(support::fixture("get-products-us-east-1.json"));
    let out = client
        .get_products()
        .service_code(on_demand::SERVICE_CODE)
        .send()
        .await
        .expect("the recorded response deserialises");
    out.price_list().to_vec()
}

async fn spot_history() -> SpotHistory {
    let client = support::ec2(support::fixture("describe-spot-price-history.xml"));
    let out = client
        .describe_spot_price_history()
        .send()
        .await
        .expect("the recorded response deserialises");
    let mut history = SpotHistory::default();
    history.add(out.spot_price_history());
    history
}

#[tokio::test]
async fn shared_tenancy_prices_are_linux_used_capacity_without_software() {
    let items = price_list().await;
    assert_eq!(items.len(), 12);
    let page = parse_price_list(
        items.iter().map(String::as_str),
        ProductSet::SharedTenancy,
        "us-east-1",
    );
    let want: BTreeMap<String, f64> = [
        ("m5.large", 0.096),
        ("m7g.xlarge", 0.1632),
        ("t3.nano", 0.0052),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(page.prices, want);
    // Each other m5.large line is refused for the attribute that differs.
    let refused: Vec<(&str, Option<&str>)> = page
        .skipped
        .iter()
        .filter_map(|s| match s {
            Skipped::OtherProduct {
                instance_type,
                mismatch: Mismatch { attribute, found },
            } if instance_type == "m5.large" => Some((*attribute, found.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("operatingSystem", Some("Windows")),
            ("capacitystatus", Some("UnusedCapacityReservation")),
            ("capacitystatus", Some("AllocatedCapacityReservation")),
            ("preInstalledSw", Some("SQL Std")),
            ("tenancy", Some("Dedicated")),
            ("regionCode", Some("us-west-2")),
        ]
    );
    // Bare metal is not in the shared set, and a zero price is no price.
    assert!(page.skipped.iter().any(|s| matches!(s,
        Skipped::OtherProduct { instance_type, mismatch } if instance_type == "c5.metal" && mismatch.attribute == "tenancy")));
    assert!(page.skipped.iter().any(|s| matches!(s,
        Skipped::OtherProduct { instance_type, mismatch } if instance_type == "c5.metal" && mismatch.attribute == "productFamily")));
    assert!(page.skipped.contains(&Skipped::NoPrice {
        instance_type: "m5.xlarge".into(),
        currency: "USD"
    }));
    assert_eq!(page.skipped.len(), 9);
}

#[tokio::test]
async fn bare_metal_is_priced_from_dedicated_tenancy_and_merged_last() {
    let items = price_list().await;
    let shared = parse_price_list(
        items.iter().map(String::as_str),
        ProductSet::SharedTenancy,
        "us-east-1",
    );
    let metal = parse_price_list(
        items.iter().map(String::as_str),
        ProductSet::DedicatedBareMetal,
        "us-east-1",
    );
    assert_eq!(
        metal.prices,
        BTreeMap::from([("c5.metal".to_string(), 4.08)])
    );
    let merged = on_demand::merge("us-east-1", shared, metal).unwrap();
    assert_eq!(merged.len(), 4);
    assert_eq!(merged["c5.metal"], 4.08);
    assert_eq!(merged["m5.large"], 0.096);
}

#[tokio::test]
async fn another_regions_list_prices_nothing_here() {
    let items = price_list().await;
    let page = parse_price_list(
        items.iter().map(String::as_str),
        ProductSet::SharedTenancy,
        "us-west-2",
    );
    assert_eq!(
        page.prices,
        BTreeMap::from([("m5.large".to_string(), 0.112)])
    );
    let err = on_demand::merge("eu-west-1", Default::default(), Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Pricing API returned no on-demand price for eu-west-1"
    );
}

#[test]
fn malformed_items_are_skipped_with_the_reason() {
    let page = parse_price_list(
        [
            "not json",
            r#"{"product":{"attributes":{}}}"#,
            r#"{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":"x1.large"}}}"#,
        ],
        ProductSet::SharedTenancy,
        "us-east-1",
    );
    assert!(page.prices.is_empty());
    assert!(matches!(page.skipped[0], Skipped::Malformed(_)));
    assert_eq!(page.skipped[1], Skipped::NoInstanceType);
    assert_eq!(
        page.skipped[2].to_string(),
        "x1.large: regionCode is missing"
    );
}

#[test]
fn requests_carry_karpenters_filters() {
    let filters = ProductSet::SharedTenancy.filters("eu-west-1");
    assert_eq!(
        filters,
        [
            ("regionCode", "eu-west-1".to_string()),
            ("serviceCode", "AmazonEC2".to_string()),
            ("preInstalledSw", "NA".to_string()),
            ("operatingSystem", "Linux".to_string()),
            ("capacitystatus", "Used".to_string()),
            ("marketoption", "OnDemand".to_string()),
            ("tenancy", "Shared".to_string()),
            ("productFamily", "Compute Instance".to_string()),
        ]
    );
    let metal = ProductSet::DedicatedBareMetal.filters("eu-west-1");
    assert_eq!(metal[6], ("tenancy", "Dedicated".to_string()));
    assert_eq!(
        metal[7],
        ("productFamily", "Compute Instance (bare metal)".to_string())
    );
    assert_eq!(pricing_api_region("ap-northeast-1"), "ap-south-1");
    assert_eq!(pricing_api_region("eu-west-3"), "eu-central-1");
    assert_eq!(pricing_api_region("cn-north-1"), "cn-northwest-1");
    assert_eq!(pricing_api_region("us-west-2"), "us-east-1");
    assert_eq!(on_demand::currency("cn-north-1"), "CNY");
    assert_eq!(on_demand::currency("sa-east-1"), "USD");
}

#[test]
fn china_prices_are_read_in_yuan() {
    let item = r#"{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":"m5.large","regionCode":"cn-north-1","servicecode":"AmazonEC2","preInstalledSw":"NA","operatingSystem":"Linux","capacitystatus":"Used","marketoption":"OnDemand","tenancy":"Shared"}},"terms":{"OnDemand":{"A.B":{"priceDimensions":{"A.B.C":{"pricePerUnit":{"CNY":"0.6720000000"}}}}}}}"#;
    let page = parse_price_list([item], ProductSet::SharedTenancy, "cn-north-1");
    assert_eq!(page.prices["m5.large"], 0.672);
    let usd = item.replace("CNY", "USD");
    let page = parse_price_list([usd.as_str()], ProductSet::SharedTenancy, "cn-north-1");
    assert!(page.prices.is_empty(), "a USD price is not a yuan price");
}

#[tokio::test]
async fn spot_keeps_the_latest_linux_price_per_type_and_zone() {
    let history = spot_history().await;
    let prices = history.prices();
    let key = |t: &str, z: &str| (t.to_string(), z.to_string());
    assert_eq!(
        prices,
        BTreeMap::from([
            (key("m5.large", "us-east-1a"), 0.0387),
            (key("m5.large", "us-east-1b"), 0.0431),
            (key("m7g.xlarge", "us-east-1c"), 0.0693),
        ])
    );
    assert_eq!(
        history.skipped,
        [
            SkippedRecord::NotLinux {
                instance_type: "m5.large".into(),
                zone: "us-east-1b".into(),
                product: "Windows".into()
            },
            SkippedRecord::BadPrice {
                instance_type: "t3.nano".into(),
                zone: "us-east-1a".into(),
                price: "0.000000".into()
            },
        ]
    );
}

#[tokio::test]
async fn spot_order_of_pages_does_not_matter() {
    let client = support::ec2(support::fixture("describe-spot-price-history.xml"));
    let out = client.describe_spot_price_history().send().await.unwrap();
    let mut reversed = SpotHistory::default();
    reversed.add(out.spot_price_history().iter().rev());
    assert_eq!(reversed.prices(), spot_history().await.prices());
    assert!(SpotHistory::default().finish().is_err());
}

#[tokio::test]
async fn the_book_starts_embedded_and_keeps_the_last_good_prices() {
    let mut book = PriceBook::new("us-east-1");
    assert_eq!(
        book.on_demand.value().origin,
        Origin::Embedded {
            region: "us-east-1",
            exact: true
        }
    );
    // The embedded table is core's: m5.large's public list price.
    assert_eq!(book.on_demand_price("m5.large"), Some(0.096));
    // Before any spot observation, on-demand stands in for spot.
    assert_eq!(book.spot_price("m5.large", "us-east-1f"), Some(0.096));
    assert!(!book.spot_observed());

    let items = price_list().await;
    let page = |set| parse_price_list(items.iter().map(String::as_str), set, "us-east-1");
    let fetched = on_demand::merge(
        "us-east-1",
        page(ProductSet::SharedTenancy),
        page(ProductSet::DedicatedBareMetal),
    );
    assert_eq!(book.record_on_demand(fetched, 1_000), Refreshed::Updated);
    assert_eq!(book.on_demand.value().origin, Origin::PricingApi);
    assert_eq!(book.on_demand_price("m7g.xlarge"), Some(0.1632));
    // A type the API did not price is no longer priced from the table.
    assert_eq!(book.on_demand_price("c6i.large"), None);

    let spot = spot_history().await.finish();
    assert_eq!(book.record_spot(spot, 2_000), Refreshed::Updated);
    assert!(book.spot_observed());
    assert_eq!(book.spot_price("m5.large", "us-east-1a"), Some(0.0387));
    assert_eq!(book.spot_price("m5.large", "us-east-1f"), None);

    // Failures keep everything, and are counted.
    let failed = book.record_on_demand(
        Err::<BTreeMap<String, f64>, _>("connection refused"),
        REFRESH_INTERVAL_MS,
    );
    let Refreshed::KeptLastGood(f) = failed else {
        panic!("expected the last good prices kept")
    };
    assert_eq!(
        (f.consecutive, f.message.as_str()),
        (1, "connection refused")
    );
    let empty = on_demand::merge("us-east-1", Default::default(), Default::default());
    assert!(matches!(
        book.record_on_demand(empty, REFRESH_INTERVAL_MS + 60_000),
        Refreshed::KeptLastGood(Failure { consecutive: 2, .. })
    ));
    assert_eq!(book.on_demand_price("m7g.xlarge"), Some(0.1632));
    assert_eq!(book.on_demand.refreshed_ms(), Some(1_000));
    assert!(matches!(
        book.record_spot(SpotHistory::default().finish(), 3_000),
        Refreshed::KeptLastGood(_)
    ));
    assert_eq!(book.spot_price("m5.large", "us-east-1a"), Some(0.0387));
}

use dovetail_aws::pricing::Failure;

#[test]
fn regions_without_an_embedded_table_borrow_us_east_1s() {
    let book = PriceBook::new("eu-west-1");
    assert_eq!(
        book.on_demand.value().origin,
        Origin::Embedded {
            region: "us-east-1",
            exact: false
        }
    );
    assert_eq!(book.on_demand_price("m5.large"), Some(0.096));
}

#[test]
fn refreshes_are_due_on_schedule_and_retried_sooner_after_a_failure() {
    let mut v = dovetail_aws::pricing::LastGood::new(0u32);
    let (interval, retry) = (REFRESH_INTERVAL_MS, 60_000);
    assert!(v.due(0, interval, retry), "never refreshed");
    v.record(Ok::<_, String>(1), 10);
    assert!(!v.due(10 + interval - 1, interval, retry));
    assert!(v.due(10 + interval, interval, retry));
    v.record(Err("throttled"), 20);
    assert!(!v.due(20 + retry - 1, interval, retry));
    assert!(v.due(20 + retry, interval, retry));
    assert_eq!(*v.value(), 1);
    assert_eq!(v.failure().map(|f| f.consecutive), Some(1));
    v.record(Ok::<_, String>(2), 30);
    assert_eq!((*v.value(), v.failure()), (2, None));
}
