//! Instance types, offerings and prices read from the AWS test server.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_ec2::types::LocationType;
use dovetail_aws::clients::Clients;
use dovetail_aws::discovery::{Discovery, DiscoveryError, SpotOrigin};
use dovetail_aws::pricing::Origin;
use dovetail_core::catalog::aws::on_demand_prices;
use dovetail_core::catalog::{CapacityType, CatalogSettings, PriceSource};
use dovetail_moto::Moto;

const HOUR_MS: u64 = 60 * 60 * 1000;
const NOW_MS: u64 = 1_800_000_000_000;

/// The (type, zone) pairs the server offers, asked directly.
async fn offered(clients: &Clients) -> BTreeSet<(String, String)> {
    let mut pages = clients
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .into_paginator()
        .send();
    let mut pairs = BTreeSet::new();
    while let Some(page) = pages.next().await {
        for o in page.expect("offerings").instance_type_offerings() {
            pairs.insert((
                o.instance_type().unwrap().as_str().to_string(),
                o.location().unwrap().to_string(),
            ));
        }
    }
    pairs
}

#[tokio::test]
async fn the_catalog_has_the_servers_types_and_zones_with_embedded_and_spot_prices() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let mut discovery = Discovery::new("us-east-1", CatalogSettings::default());
    assert!(discovery.catalog().instance_types.is_empty());
    assert!(discovery.due(NOW_MS));

    let refreshed = discovery.refresh(&clients, NOW_MS).await.unwrap();
    let catalog = discovery.catalog();
    assert!(refreshed.changed);
    assert!(refreshed.instance_types > 100, "{refreshed:?}");
    assert_eq!(refreshed.instance_types, catalog.instance_types.len());
    assert_eq!(
        refreshed.instance_types + refreshed.dropped.len(),
        refreshed.described_types,
        "every described type is in the catalog or said dropped"
    );
    // The test server has no Pricing API: the embedded table, exact for us-east-1.
    assert_eq!(
        refreshed.on_demand,
        Origin::Embedded {
            region: "us-east-1",
            exact: true
        }
    );
    assert!(refreshed.price_failures.is_empty(), "{refreshed:?}");
    assert!(
        moto.calls()
            .calls
            .keys()
            .all(|k| !k.starts_with("pricing:"))
    );

    // Every catalog zone is one the server offers the type in.
    let pairs = offered(&clients).await;
    assert_eq!(refreshed.zone_offerings, pairs.len());
    let zones: BTreeSet<String> = pairs.iter().map(|(_, z)| z.clone()).collect();
    let catalog_zones: BTreeSet<String> = catalog.zones().iter().map(|z| z.to_string()).collect();
    assert_eq!(catalog_zones, zones);
    for t in &catalog.instance_types {
        for o in &t.offerings {
            assert!(
                pairs.contains(&(t.name.to_string(), o.zone.to_string())),
                "{} offered in {} which the server does not list",
                t.name,
                o.zone
            );
        }
    }

    // The server's spot history: one Linux price, 0.00001, per offered pair.
    assert_eq!(
        refreshed.spot,
        SpotOrigin::History {
            prices: pairs.len()
        }
    );
    assert_eq!(catalog.spot_prices, PriceSource::Observed);
    let embedded = on_demand_prices("us-east-1").unwrap();
    let m5 = catalog.get("m5.large").expect("m5.large is in the catalog");
    let zone = m5.offerings[0].zone;
    assert_eq!(
        m5.offering(zone.as_str(), CapacityType::OnDemand)
            .unwrap()
            .price,
        embedded["m5.large"]
    );
    assert_eq!(
        m5.offering(zone.as_str(), CapacityType::Spot)
            .unwrap()
            .price,
        0.00001
    );

    // Nothing changed: the same catalog, not due for 12 hours.
    assert!(!discovery.due(NOW_MS + 11 * HOUR_MS));
    assert!(discovery.due(NOW_MS + 12 * HOUR_MS));
    let again = discovery
        .refresh(&clients, NOW_MS + 12 * HOUR_MS)
        .await
        .unwrap();
    assert!(!again.changed);
    assert!(Arc::ptr_eq(&catalog, &discovery.catalog()));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_catalog_and_says_what_to_check() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let mut discovery = Discovery::new("us-east-1", CatalogSettings::default());
    discovery.refresh(&clients, NOW_MS).await.unwrap();
    let good = discovery.catalog();
    assert!(!good.instance_types.is_empty());

    // Nothing listens on port 1.
    let unreachable = Clients::local("http://127.0.0.1:1", "us-east-1");
    let later = NOW_MS + 12 * HOUR_MS;
    let err = discovery.refresh(&unreachable, later).await.unwrap_err();
    let DiscoveryError::Api(api) = &err else {
        panic!("not an API error: {err}");
    };
    assert_eq!(api.action, "ec2:DescribeInstanceTypes");
    let text = err.to_string();
    assert!(text.contains("ec2:DescribeInstanceTypes"), "{text}");
    assert!(text.contains("endpoint"), "{text}");

    assert!(Arc::ptr_eq(&good, &discovery.catalog()));
    // Retried within a minute, not in 12 hours.
    assert!(!discovery.due(later + 30_000));
    assert!(discovery.due(later + 60_000));

    // The server back: the next refresh succeeds and is not due again soon.
    discovery.refresh(&clients, later + 60_000).await.unwrap();
    assert!(!discovery.due(later + 120_000));
}
