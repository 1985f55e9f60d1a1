//! Instance types: recorded `DescribeInstanceTypes` and
//! `DescribeInstanceTypeOfferings` responses through the SDK, into
//! dovetail-core's catalog.

mod support;

use aws_sdk_ec2::types::{InstanceTypeInfo, InstanceTypeOffering, LocationType};
use dovetail_aws::instance_types::{
    self, Dropped, OfferingError, SettingsError, ZoneOfferings, catalog, operator_settings,
};
use dovetail_aws::pricing::PriceBook;
use dovetail_core::catalog::{CapacityType, Catalog, CatalogSettings};
use dovetail_core::resources::MIB;

async fn described() -> (Vec<InstanceTypeInfo>, ZoneOfferings) {
    let ec2 = support::ec2(support::fixture("describe-instance-types.xml"));
    let types = ec2
        .describe_instance_types()
        .send()
        .await
        .expect("the recorded response deserialises")
        .instance_types()
        .to_vec();
    let ec2 = support::ec2(support::fixture("describe-instance-type-offerings.xml"));
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .send()
        .await
        .expect("the recorded response deserialises");
    let mut zones = ZoneOfferings::default();
    zones.add(out.instance_type_offerings()).unwrap();
    (types, zones)
}

async fn built(settings: &CatalogSettings) -> instance_types::Built {
    let (types, zones) = described().await;
    catalog(
        "us-east-1",
        &types,
        &zones,
        &PriceBook::new("us-east-1"),
        settings,
    )
}

#[tokio::test]
async fn the_live_api_resolves_types_exactly_as_the_embedded_catalog() {
    let built = built(&CatalogSettings::default()).await;
    let embedded = Catalog::aws_us_east_1();
    let names: Vec<&str> = built
        .catalog
        .instance_types
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "c5.metal",
            "g5.xlarge",
            "inf2.xlarge",
            "m5.large",
            "m7g.xlarge",
            "p4d.24xlarge",
            "t3.nano"
        ]
    );
    for live in &built.catalog.instance_types {
        let known = embedded.get(live.name.as_str()).unwrap();
        assert_eq!(live.labels, known.labels, "{} labels", live.name);
        assert_eq!(live.capacity, known.capacity, "{} capacity", live.name);
        assert_eq!(live.overhead, known.overhead, "{} overhead", live.name);
    }
    assert_eq!(
        built.dropped,
        [Dropped::UnsupportedArchitecture("mac1.metal".into())]
    );
}

#[tokio::test]
async fn capacity_follows_karpenters_math() {
    let built = built(&CatalogSettings::default()).await;
    let m5 = built.catalog.get("m5.large").unwrap();
    // 8 GiB less 7.5 % VM overhead rounded up to the MiB.
    assert_eq!(m5.capacity.memory, (8192 - 615) * MIB);
    // (3 ENIs) × (10 addresses − 1) + 2.
    assert_eq!(m5.capacity.pods, 29);
    assert_eq!(m5.capacity.cpu, 2000);
    assert_eq!(m5.overhead.kube_reserved.cpu, 70);
    assert_eq!(m5.overhead.kube_reserved.memory, (11 * 29 + 255) * MIB);
    // Graviton loses 64 MiB to the CMA before the overhead.
    let m7g = built.catalog.get("m7g.xlarge").unwrap();
    let mib = 16384 - 64;
    assert_eq!(
        m7g.capacity.memory,
        (mib - (mib as f64 * 0.075).ceil() as i64) * MIB
    );
    assert_eq!(m7g.architecture().as_str(), "arm64");
    // The default network card's interfaces, not all four cards'.
    let p4d = built.catalog.get("p4d.24xlarge").unwrap();
    assert_eq!(p4d.capacity.pods, 15 * 49 + 2);
    assert_eq!(p4d.capacity.get("nvidia.com/gpu"), 8);
    assert_eq!(
        p4d.label("karpenter.k8s.aws/instance-local-nvme")
            .unwrap()
            .as_str(),
        "8000"
    );
    assert_eq!(
        p4d.label("karpenter.k8s.aws/instance-network-bandwidth")
            .unwrap()
            .as_str(),
        "100000"
    );
    let inf2 = built.catalog.get("inf2.xlarge").unwrap();
    assert_eq!(inf2.capacity.get("aws.amazon.com/neuron"), 1);
    assert_eq!(
        inf2.label("karpenter.k8s.aws/instance-accelerator-name")
            .unwrap()
            .as_str(),
        "inferentia2"
    );
    let g5 = built.catalog.get("g5.xlarge").unwrap();
    assert_eq!(
        g5.label("karpenter.k8s.aws/instance-gpu-name")
            .unwrap()
            .as_str(),
        "a10g"
    );
    // Bare metal has no hypervisor.
    let metal = built.catalog.get("c5.metal").unwrap();
    assert_eq!(
        metal
            .label("karpenter.k8s.aws/instance-hypervisor")
            .unwrap()
            .as_str(),
        ""
    );
}

#[tokio::test]
async fn vm_memory_overhead_and_reserved_enis_change_capacity() {
    let settings = operator_settings(0.0, 1).unwrap();
    let built = built(&settings).await;
    let m5 = built.catalog.get("m5.large").unwrap();
    assert_eq!(m5.capacity.memory, 8192 * MIB);
    // One ENI kept back: (3 − 1) × 9 + 2.
    assert_eq!(m5.capacity.pods, 20);
    // AL2023 still sizes kube-reserved memory from all ENIs.
    assert_eq!(m5.overhead.kube_reserved.memory, (11 * 29 + 255) * MIB);
    // t3.nano has two ENIs of two addresses: 1 × 1 + 2.
    assert_eq!(built.catalog.get("t3.nano").unwrap().capacity.pods, 3);
    let all_reserved = built_with(operator_settings(0.075, 15).unwrap()).await;
    assert_eq!(
        all_reserved.catalog.get("c5.metal").unwrap().capacity.pods,
        0
    );

    assert_eq!(
        operator_settings(1.0, 0).unwrap_err(),
        SettingsError::VmMemoryOverhead(1.0)
    );
    assert!(operator_settings(-0.1, 0).is_err());
    assert!(operator_settings(f64::NAN, 0).is_err());
    assert!(
        operator_settings(1.5, 0)
            .unwrap_err()
            .to_string()
            .contains("such as 0.075")
    );
}

async fn built_with(settings: CatalogSettings) -> instance_types::Built {
    built(&settings).await
}

#[tokio::test]
async fn offerings_follow_zones_usage_classes_and_prices() {
    let built = built(&CatalogSettings::default()).await;
    let inf2 = built.catalog.get("inf2.xlarge").unwrap();
    let zones: Vec<&str> = built.catalog.zones().iter().map(|z| z.as_str()).collect();
    assert_eq!(
        zones,
        [
            "us-east-1a",
            "us-east-1b",
            "us-east-1c",
            "us-east-1d",
            "us-east-1e",
            "us-east-1f"
        ]
    );
    let inf2_zones: Vec<(&str, CapacityType)> = inf2
        .offerings
        .iter()
        .map(|o| (o.zone.as_str(), o.capacity_type))
        .collect();
    assert_eq!(inf2_zones.len(), 10);
    assert!(inf2_zones.contains(&("us-east-1e", CapacityType::Spot)));
    assert!(!inf2_zones.iter().any(|(z, _)| *z == "us-east-1f"));
    // Before spot prices are observed, spot costs what on-demand does.
    let m5 = built.catalog.get("m5.large").unwrap();
    let od = m5.offering("us-east-1a", CapacityType::OnDemand).unwrap();
    let spot = m5.offering("us-east-1a", CapacityType::Spot).unwrap();
    assert_eq!((od.price, spot.price), (0.096, 0.096));
    // p4d's capacity-block usage class gives no offering of its own.
    let p4d = built.catalog.get("p4d.24xlarge").unwrap();
    assert_eq!(p4d.offerings.len(), 6);
}

#[tokio::test]
async fn observed_spot_prices_replace_the_stand_in_and_unpriced_zones_drop() {
    let (types, zones) = described().await;
    let mut book = PriceBook::new("us-east-1");
    let spot = [(("m5.large", "us-east-1a"), 0.0387)]
        .into_iter()
        .map(|((t, z), p)| ((t.to_string(), z.to_string()), p))
        .collect();
    book.record_spot(Ok::<_, String>(spot), 1);
    let built = catalog(
        "us-east-1",
        &types,
        &zones,
        &book,
        &CatalogSettings::default(),
    );
    let m5 = built.catalog.get("m5.large").unwrap();
    let spot: Vec<(&str, f64)> = m5
        .offerings
        .iter()
        .filter(|o| o.capacity_type == CapacityType::Spot)
        .map(|o| (o.zone.as_str(), o.price))
        .collect();
    assert_eq!(spot, [("us-east-1a", 0.0387)]);
    assert_eq!(
        built.catalog.spot_prices,
        dovetail_core::catalog::PriceSource::Observed
    );
    // A type with no on-demand price and no observed spot price is dropped.
    let mut no_prices = PriceBook::new("us-east-1");
    no_prices.record_on_demand(Ok::<_, String>(Default::default()), 1);
    no_prices.record_spot(Ok::<_, String>(Default::default()), 1);
    let built = catalog(
        "us-east-1",
        &types,
        &zones,
        &no_prices,
        &CatalogSettings::default(),
    );
    assert!(built.catalog.instance_types.is_empty());
    assert!(built.dropped.contains(&Dropped::NoPrice("m5.large".into())));
}

#[test]
fn incomplete_entries_and_regional_offerings_are_named() {
    let bare = InstanceTypeInfo::builder()
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .build();
    let zones = ZoneOfferings::default();
    let built = catalog(
        "us-east-1",
        &[bare],
        &zones,
        &PriceBook::new("us-east-1"),
        &CatalogSettings::default(),
    );
    assert_eq!(
        built.dropped[0].to_string(),
        "instance type m5.large: DescribeInstanceTypes gave no vCpuInfo.defaultVCpus"
    );
    let regional = InstanceTypeOffering::builder()
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .location_type(LocationType::Region)
        .location("us-east-1")
        .build();
    let mut zones = ZoneOfferings::default();
    let err = zones.add([&regional]).unwrap_err();
    assert!(matches!(err, OfferingError::NotByZone { .. }));
    assert!(err.to_string().contains("LocationType=availability-zone"));
}

#[test]
fn describe_filters_ask_for_hvm_x86_and_arm() {
    let f = instance_types::describe_filters();
    assert_eq!(f[0], ("supported-virtualization-type", &["hvm"][..]));
    assert_eq!(f[1].1, ["x86_64", "arm64"]);
}
