use std::collections::BTreeSet;

use super::aws::{self, Dropped, category_and_generation, kube_reserved_cpu};
use super::*;
use crate::resources::{AWS_NEURON, GIB, MIB, NVIDIA_GPU};

fn aws() -> Catalog {
    Catalog::aws_us_east_1()
}

fn labels_of(it: &InstanceType) -> Vec<(&'static str, &'static str)> {
    it.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn every_embedded_row_parses() {
    let types = aws::embedded_instance_types().unwrap();
    assert_eq!(types.len(), 1395);
    let loaded = aws::load_us_east_1(&CatalogSettings::default()).unwrap();
    let count = |reason| loaded.dropped.iter().filter(|(_, r)| *r == reason).count();
    assert_eq!(count(Dropped::NotOffered), 20);
    assert_eq!(count(Dropped::UnsupportedArchitecture), 9, "EC2 Mac");
    assert_eq!(count(Dropped::NoOnDemandPrice), 26, "r9g, r9gd, t8i");
    assert_eq!(loaded.catalog.instance_types.len(), 1395 - 20 - 9 - 26);
    assert!(
        loaded
            .dropped
            .iter()
            .filter(|(_, r)| *r == Dropped::UnsupportedArchitecture)
            .all(|(n, _)| n.as_str().starts_with("mac"))
    );
    // Every offering and price row was read: one on-demand offering per
    // kept (type, zone) row of offerings.csv.
    let offerings: usize = loaded
        .catalog
        .instance_types
        .iter()
        .map(|it| it.offerings.len())
        .sum();
    assert_eq!(offerings, 6306 + 6264);
}

#[test]
fn catalog_loads_with_its_invariants() {
    let catalog = aws();
    assert_eq!(catalog.region.as_str(), "us-east-1");
    assert_eq!(catalog.instance_types.len(), 1340);
    let zones: Vec<&str> = catalog.zones().iter().map(|z| z.as_str()).collect();
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
    assert!(catalog.instance_types.is_sorted_by(|a, b| a.name < b.name));
    for it in &catalog.instance_types {
        assert!(it.labels.is_sorted_by(|a, b| a.0 < b.0), "{}", it.name);
        assert!(it.label(crate::labels::ZONE).is_none());
        assert!(it.label(crate::labels::CAPACITY_TYPE).is_none());
        assert_eq!(it.label(crate::labels::INSTANCE_TYPE), Some(it.name));
        assert!(!it.offerings.is_empty());
        assert!(
            it.offerings
                .is_sorted_by(|a, b| (a.zone, a.capacity_type) < (b.zone, b.capacity_type))
        );
        assert!(
            it.offerings
                .iter()
                .all(|o| o.price.is_finite() && o.price > 0.0)
        );
        let alloc = it.allocatable();
        assert!(
            alloc.cpu > 0 && alloc.memory > 0 && alloc.pods > 0,
            "{}",
            it.name
        );
        assert!(
            catalog
                .get(it.name.as_str())
                .is_some_and(|g| g.name == it.name)
        );
    }
    assert!(
        catalog.get("p3.2xlarge").is_none(),
        "absent from the snapshot"
    );
    assert!(catalog.get("mac1.metal").is_none());
    assert!(catalog.get("r9g.large").is_none());
}

#[test]
fn m5_large_matches_karpenter() {
    let catalog = aws();
    let it = catalog.get("m5.large").unwrap();
    // 8192 MiB − ceil(8192 × 0.075) = 8192 − 615.
    let memory = (8192 - 615) * MIB;
    // ENI-limited: 3 ENIs × (10 IPv4 − 1) + 2.
    let pods = 3 * (10 - 1) + 2;
    assert_eq!(pods, 29);
    assert_eq!(it.capacity.cpu, 2000);
    assert_eq!(it.capacity.memory, memory);
    assert_eq!(it.capacity.pods, 29);
    assert_eq!(it.capacity.ephemeral, 20 * GIB);
    assert!(it.capacity.extended.is_empty());

    let kube = &it.overhead.kube_reserved;
    assert_eq!(kube.cpu, 60 + 10, "6 % of core 1, 1 % of core 2");
    assert_eq!(kube.memory, (11 * 29 + 255) * MIB);
    assert_eq!(kube.memory, 574 * MIB);
    assert_eq!(kube.ephemeral, GIB);
    assert_eq!(it.overhead.system_reserved, Resources::default());
    assert_eq!(it.overhead.eviction_threshold.memory, 100 * MIB);
    assert_eq!(
        it.overhead.eviction_threshold.ephemeral,
        2 * GIB,
        "10 % of 20 GiB"
    );

    let alloc = it.allocatable();
    assert_eq!(alloc.cpu, 1930);
    assert_eq!(alloc.memory, memory - 574 * MIB - 100 * MIB);
    assert_eq!(alloc.memory, 6903 * MIB);
    assert_eq!(alloc.pods, 29);
    assert_eq!(alloc.ephemeral, 17 * GIB);

    assert_eq!(
        labels_of(it),
        [
            ("karpenter.k8s.aws/instance-capability-flex", "false"),
            ("karpenter.k8s.aws/instance-category", "m"),
            ("karpenter.k8s.aws/instance-cpu", "2"),
            ("karpenter.k8s.aws/instance-cpu-manufacturer", "intel"),
            (
                "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz",
                "3100"
            ),
            ("karpenter.k8s.aws/instance-family", "m5"),
            ("karpenter.k8s.aws/instance-generation", "5"),
            ("karpenter.k8s.aws/instance-hypervisor", "nitro"),
            ("karpenter.k8s.aws/instance-memory", "8192"),
            ("karpenter.k8s.aws/instance-network-bandwidth", "750"),
            ("karpenter.k8s.aws/instance-size", "large"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/os", "linux"),
            ("node.kubernetes.io/instance-type", "m5.large"),
            ("topology.kubernetes.io/region", "us-east-1"),
        ]
    );

    let od = it.offering("us-east-1a", CapacityType::OnDemand).unwrap();
    assert_eq!(od.price, 0.096);
    assert!(od.available);
    // m5.large is offered in every us-east-1 zone but 1e.
    let zones: BTreeSet<&str> = it.offerings.iter().map(|o| o.zone.as_str()).collect();
    let expected: BTreeSet<&str> = include_str!("../../data/aws/offerings.csv")
        .lines()
        .filter_map(|l| l.strip_suffix(",m5.large"))
        .map(|l| l.trim_start_matches("us-east-1,"))
        .collect();
    assert_eq!(zones, expected);
    assert_eq!(it.offerings.len(), 2 * zones.len());
}

#[test]
fn graviton_is_arm64_and_loses_64_mib_to_cma() {
    let catalog = aws();
    let it = catalog.get("m7g.large").unwrap();
    assert_eq!(it.architecture().as_str(), "arm64");
    assert_eq!(
        it.label("karpenter.k8s.aws/instance-cpu-manufacturer")
            .unwrap()
            .as_str(),
        "aws"
    );
    // (8192 − 64) MiB − ceil(8128 × 0.075) = 8128 − 610.
    assert_eq!(it.capacity.memory, (8128 - 610) * MIB);
    assert_eq!(
        it.label("karpenter.k8s.aws/instance-memory")
            .unwrap()
            .as_str(),
        "8192"
    );
    // i386|x86_64 maps to amd64 through its x86_64 entry.
    assert_eq!(
        catalog.get("t2.micro").unwrap().architecture().as_str(),
        "amd64"
    );
    assert_eq!(
        catalog.get("m5.large").unwrap().architecture().as_str(),
        "amd64"
    );
}

#[test]
fn gpu_and_neuron_types() {
    let catalog = aws();
    let g5 = catalog.get("g5.xlarge").unwrap();
    assert_eq!(g5.capacity.get(NVIDIA_GPU), 1);
    assert_eq!(g5.gpus(), 1);
    let label = |it: &InstanceType, k: &str| it.label(k).map(|v| v.as_str());
    assert_eq!(
        label(g5, "karpenter.k8s.aws/instance-gpu-name"),
        Some("a10g")
    );
    assert_eq!(
        label(g5, "karpenter.k8s.aws/instance-gpu-manufacturer"),
        Some("nvidia")
    );
    assert_eq!(label(g5, "karpenter.k8s.aws/instance-gpu-count"), Some("1"));
    assert_eq!(
        label(g5, "karpenter.k8s.aws/instance-gpu-memory"),
        Some("22888")
    );
    assert_eq!(
        label(g5, "karpenter.k8s.aws/instance-local-nvme"),
        Some("250")
    );
    assert_eq!(
        label(g5, "karpenter.k8s.aws/instance-accelerator-name"),
        None
    );
    assert_eq!(
        catalog.get("g5.12xlarge").unwrap().capacity.get(NVIDIA_GPU),
        4
    );
    assert_eq!(
        label(
            catalog.get("g7.2xlarge").unwrap(),
            "karpenter.k8s.aws/instance-gpu-name"
        ),
        Some("rtx-pro-4500")
    );

    let inf2 = catalog.get("inf2.xlarge").unwrap();
    assert_eq!(inf2.capacity.get(AWS_NEURON), 1);
    assert_eq!(inf2.capacity.get(NVIDIA_GPU), 0);
    assert_eq!(inf2.gpus(), 1);
    assert_eq!(
        label(inf2, "karpenter.k8s.aws/instance-accelerator-name"),
        Some("inferentia2")
    );
    assert_eq!(
        label(inf2, "karpenter.k8s.aws/instance-accelerator-manufacturer"),
        Some("aws")
    );
    assert_eq!(
        label(inf2, "karpenter.k8s.aws/instance-accelerator-count"),
        Some("1")
    );
    assert_eq!(label(inf2, "karpenter.k8s.aws/instance-gpu-name"), None);
    assert_eq!(
        catalog
            .get("trn1.32xlarge")
            .unwrap()
            .capacity
            .get(AWS_NEURON),
        16
    );

    let m5 = catalog.get("m5.large").unwrap();
    assert_eq!(m5.gpus(), 0);
}

#[test]
fn small_burstable_types_are_eni_limited() {
    let catalog = aws();
    let t3 = catalog.get("t3.micro").unwrap();
    // 2 ENIs × (2 IPv4 − 1) + 2.
    assert_eq!(t3.capacity.pods, 4);
    assert_eq!(t3.overhead.kube_reserved.memory, (11 * 4 + 255) * MIB);
    // 1024 − ceil(76.8) − 299 − 100.
    assert_eq!(t3.allocatable().memory, (1024 - 77 - 299 - 100) * MIB);
    // t2.nano supports on-demand only: no spot offerings.
    let nano = catalog.get("t2.nano").unwrap();
    assert!(
        nano.offerings
            .iter()
            .all(|o| o.capacity_type == CapacityType::OnDemand)
    );
}

#[test]
fn labels_follow_karpenter_name_parsing() {
    assert_eq!(category_and_generation("m5.large"), Some(("m", "5")));
    assert_eq!(category_and_generation("u-6tb1.56xlarge"), Some(("u", "1")));
    assert_eq!(
        category_and_generation("u7i-12tb.224xlarge"),
        Some(("u", "7"))
    );
    assert_eq!(category_and_generation("m7i-flex.large"), Some(("m", "7")));
    assert_eq!(
        category_and_generation("p6-b200.48xlarge"),
        Some(("p", "6"))
    );
    assert_eq!(category_and_generation("x2iedn.metal"), Some(("x", "2")));
    assert_eq!(category_and_generation("mac-m4.metal"), None);
    assert_eq!(category_and_generation("m5"), None, "needs a size");
    assert_eq!(category_and_generation("5m.large"), None);

    let catalog = aws();
    let u = catalog.get("u-6tb1.56xlarge").unwrap();
    assert_eq!(
        u.label("karpenter.k8s.aws/instance-generation")
            .unwrap()
            .as_str(),
        "1"
    );
    assert_eq!(
        u.label("karpenter.k8s.aws/instance-family")
            .unwrap()
            .as_str(),
        "u-6tb1"
    );
    let flex = catalog.get("m7i-flex.large").unwrap();
    assert_eq!(
        flex.label("karpenter.k8s.aws/instance-capability-flex")
            .unwrap()
            .as_str(),
        "true"
    );
    // Bare metal has no hypervisor; Karpenter still writes the label, empty.
    let metal = catalog.get("m5.metal").unwrap();
    assert_eq!(
        metal
            .label("karpenter.k8s.aws/instance-hypervisor")
            .unwrap()
            .as_str(),
        ""
    );
}

#[test]
fn kube_reserved_cpu_per_core_range() {
    assert_eq!(kube_reserved_cpu(1000), 60);
    assert_eq!(kube_reserved_cpu(2000), 70);
    assert_eq!(kube_reserved_cpu(4000), 80);
    assert_eq!(kube_reserved_cpu(8000), 90);
    assert_eq!(kube_reserved_cpu(96_000), 80 + 230);
    // 0.25 % of 500 m is 1.25 m, truncated per range as Karpenter does.
    assert_eq!(kube_reserved_cpu(4500), 81);
}

#[test]
fn spot_is_modelled_cheaper_and_deterministic() {
    let a = aws();
    let b = aws();
    assert_eq!(a, b, "two loads give identical catalogs");
    let model = SpotModel::default();
    assert_eq!(a.spot_prices, PriceSource::Model(model));
    let mut spot_offerings = 0;
    for it in &a.instance_types {
        for o in it
            .offerings
            .iter()
            .filter(|o| o.capacity_type == CapacityType::Spot)
        {
            spot_offerings += 1;
            let od = it
                .offering(o.zone.as_str(), CapacityType::OnDemand)
                .unwrap();
            let ratio = o.price / od.price;
            assert!(o.price < od.price, "{} {}", it.name, o.zone);
            assert!((0.25 - 1e-12..=0.45 + 1e-12).contains(&ratio), "{ratio}");
        }
    }
    assert_eq!(spot_offerings, 6264);

    // One discount per (family, zone): sizes share it, zones differ.
    let ratio = |name: &str, zone: &str| {
        let it = a.get(name).unwrap();
        it.offering(zone, CapacityType::Spot).unwrap().price
            / it.offering(zone, CapacityType::OnDemand).unwrap().price
    };
    assert!((ratio("m5.large", "us-east-1a") - ratio("m5.4xlarge", "us-east-1a")).abs() < 1e-12);
    let per_zone: BTreeSet<u64> = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
        .iter()
        .map(|z| ratio("m5.large", z).to_bits())
        .collect();
    assert!(per_zone.len() > 1, "zones differ");

    let reseeded = Catalog::aws_us_east_1_with(&CatalogSettings {
        spot: SpotModel { seed: 7, ..model },
        ..CatalogSettings::default()
    });
    let price = |c: &Catalog| {
        c.get("m5.large")
            .unwrap()
            .offering("us-east-1a", CapacityType::Spot)
            .unwrap()
            .price
    };
    assert_ne!(price(&a), price(&reseeded));
}

#[test]
fn observed_spot_prices_replace_modelled_ones() {
    let mut catalog = aws();
    assert!(catalog.set_spot_price("m5.large", "us-east-1b", 0.0321));
    assert_eq!(catalog.spot_prices, PriceSource::Observed);
    let it = catalog.get("m5.large").unwrap();
    assert_eq!(
        it.offering("us-east-1b", CapacityType::Spot).unwrap().price,
        0.0321
    );
    assert!(
        !catalog.set_spot_price("t2.nano", "us-east-1a", 0.001),
        "no spot offering"
    );
    assert!(!catalog.set_spot_price("m5.large", "us-east-1z", 0.01));
    for bad in [f64::NAN, -0.01, 1e308] {
        assert!(
            !catalog.set_spot_price("m5.large", "us-east-1b", bad),
            "{bad}"
        );
    }
    let it = catalog.get("m5.large").unwrap();
    assert_eq!(
        it.offering("us-east-1b", CapacityType::Spot).unwrap().price,
        0.0321,
        "a refused price leaves the last good one"
    );
}

#[test]
fn mark_unavailable_hits_one_offering() {
    let mut catalog = aws();
    let before = catalog.get("m5.large").unwrap().clone();
    assert!(catalog.mark_unavailable("m5.large", "us-east-1a", CapacityType::Spot));
    let after = catalog.get("m5.large").unwrap();
    for (b, a) in before.offerings.iter().zip(&after.offerings) {
        let hit = a.zone.as_str() == "us-east-1a" && a.capacity_type == CapacityType::Spot;
        assert_eq!(a.available, !hit);
        assert!(b.available);
    }
    assert!(!catalog.mark_unavailable("m5.large", "us-east-1z", CapacityType::Spot));
    assert!(!catalog.mark_unavailable("m5.large", "us-east-1a", CapacityType::Reserved));
    assert!(!catalog.mark_unavailable("m9.huge", "us-east-1a", CapacityType::Spot));
    // The cheapest offering is now another spot zone, never the one marked.
    let cheapest = catalog
        .get("m5.large")
        .unwrap()
        .cheapest_offering()
        .unwrap();
    assert_eq!(cheapest.capacity_type, CapacityType::Spot);
    assert_ne!(cheapest.zone.as_str(), "us-east-1a");
}

#[test]
fn settings_change_capacity_and_allocatable() {
    let default = aws();
    let base = default.get("m5.large").unwrap();
    let with = |settings: CatalogSettings| {
        Catalog::aws_us_east_1_with(&settings)
            .get("m5.large")
            .unwrap()
            .clone()
    };

    let max_pods = with(CatalogSettings {
        max_pods: Some(110),
        ..CatalogSettings::default()
    });
    assert_eq!(max_pods.capacity.pods, 110);
    assert_eq!(max_pods.allocatable().pods, 110);
    assert_ne!(max_pods.allocatable(), base.allocatable());
    // AL2023 sizes kube-reserved memory from ENI-limited pods regardless.
    assert_eq!(max_pods.overhead.kube_reserved.memory, 574 * MIB);
    let bottlerocket = with(CatalogSettings {
        max_pods: Some(110),
        eni_limited_memory_overhead: false,
        ..CatalogSettings::default()
    });
    assert_eq!(
        bottlerocket.overhead.kube_reserved.memory,
        (11 * 110 + 255) * MIB
    );

    let no_vm_overhead = with(CatalogSettings {
        vm_memory_overhead_percent: 0.0,
        ..CatalogSettings::default()
    });
    assert_eq!(no_vm_overhead.capacity.memory, 8192 * MIB);
    assert_eq!(
        no_vm_overhead.allocatable().memory,
        (8192 - 574 - 100) * MIB
    );

    let per_core = with(CatalogSettings {
        pods_per_core: Some(10),
        ..CatalogSettings::default()
    });
    assert_eq!(per_core.capacity.pods, 20);

    let reserved_eni = with(CatalogSettings {
        reserved_enis: 1,
        ..CatalogSettings::default()
    });
    assert_eq!(reserved_eni.capacity.pods, 2 * 9 + 2);
    assert_eq!(reserved_eni.overhead.kube_reserved.memory, 574 * MIB);

    let explicit = with(CatalogSettings {
        kube_reserved: KubeReserved {
            cpu: Some(500),
            memory: Some(GIB),
            ephemeral_storage: Some(0),
        },
        system_reserved: Resources::new(100, 0),
        eviction_memory: EvictionThreshold::Quantity(0),
        eviction_nodefs: EvictionThreshold::Quantity(0),
        ephemeral_storage: 100 * GIB,
        ..CatalogSettings::default()
    });
    assert_eq!(explicit.allocatable().cpu, 2000 - 500 - 100);
    assert_eq!(explicit.allocatable().memory, (8192 - 615 - 1024) * MIB);
    assert_eq!(explicit.allocatable().ephemeral, 100 * GIB);

    // Entries replace only their own resource; percentages are of capacity.
    let partial = with(CatalogSettings {
        kube_reserved: KubeReserved {
            cpu: Some(200),
            ..KubeReserved::default()
        },
        eviction_memory: EvictionThreshold::Percent(5.0),
        eviction_nodefs: EvictionThreshold::Quantity(GIB),
        ..CatalogSettings::default()
    });
    assert_eq!(partial.overhead.kube_reserved.cpu, 200);
    assert_eq!(
        partial.overhead.kube_reserved.memory,
        base.overhead.kube_reserved.memory
    );
    assert_eq!(
        partial.overhead.eviction_threshold.memory,
        (base.capacity.memory as f64 * 0.05).ceil() as i64
    );
    assert_eq!(partial.overhead.eviction_threshold.ephemeral, GIB);
}

#[test]
fn synthetic_benchmark_matches_karpenters_fake_types() {
    let catalog = Catalog::synthetic_benchmark(400);
    assert_eq!(catalog.instance_types.len(), 400);
    assert_eq!(catalog.spot_prices, PriceSource::Given);
    let zones: Vec<&str> = catalog.zones().iter().map(|z| z.as_str()).collect();
    assert_eq!(zones, ["test-zone-1", "test-zone-2", "test-zone-3"]);
    for i in 0..400 {
        let it = catalog.get(&format!("fake-it-{i}")).unwrap();
        let n = i as i64 + 1;
        assert_eq!(it.capacity.cpu, n * 1000);
        assert_eq!(it.capacity.memory, 2 * n * GIB);
        assert_eq!(it.capacity.pods, 10 * n);
        assert_eq!(it.capacity.ephemeral, 0);
        let alloc = it.allocatable();
        assert_eq!(
            (alloc.cpu, alloc.memory),
            (n * 1000 - 100, 2 * n * GIB - 10 * MIB)
        );
        let price = 0.1 * n as f64 + 0.1 * (2 * n * GIB) as f64 / 1e9;
        let offered: Vec<(&str, CapacityType)> = it
            .offerings
            .iter()
            .map(|o| (o.zone.as_str(), o.capacity_type))
            .collect();
        assert_eq!(
            offered,
            [
                ("test-zone-1", CapacityType::OnDemand),
                ("test-zone-1", CapacityType::Spot),
                ("test-zone-2", CapacityType::OnDemand),
                ("test-zone-2", CapacityType::Spot),
                ("test-zone-3", CapacityType::OnDemand),
            ]
        );
        assert!(it.offerings.iter().all(|o| o.price == price && o.available));
        let label = |k: &str| it.label(k).map(|v| v.as_str());
        assert_eq!(label("size"), Some(if i >= 4 { "large" } else { "small" }));
        assert_eq!(label("special"), (i >= 4).then_some("optional"));
        assert_eq!(label("integer"), Some(n.to_string().as_str()));
        assert_eq!(it.architecture().as_str(), "amd64");
    }
}

fn spec_json() -> &'static str {
    r#"{
        "name": "big.box",
        "labels": {"kubernetes.io/arch": "arm64", "team": "a"},
        "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
        "overhead": {"kubeReserved": {"cpu": "100m", "memory": "1Gi"}},
        "offerings": [
            {"zone": "z-b", "capacityType": "spot", "price": 0.4},
            {"zone": "z-a", "capacityType": "on-demand", "price": 1.2, "available": false}
        ]
    }"#
}

#[test]
fn specs_build_a_catalog() {
    let spec: InstanceTypeSpec = serde_json::from_str(spec_json()).unwrap();
    let catalog = Catalog::from_specs("lab-1", std::slice::from_ref(&spec)).unwrap();
    assert_eq!(catalog.spot_prices, PriceSource::Given);
    let it = catalog.get("big.box").unwrap();
    assert_eq!(it.architecture().as_str(), "arm64");
    assert_eq!(
        it.label(crate::labels::INSTANCE_TYPE).unwrap().as_str(),
        "big.box"
    );
    assert_eq!(it.label(crate::labels::REGION).unwrap().as_str(), "lab-1");
    assert!(it.labels.is_sorted_by(|a, b| a.0 < b.0));
    assert_eq!(it.capacity.pods, 110, "kubelet default");
    assert_eq!(it.gpus(), 2);
    assert_eq!(it.allocatable().cpu, 7900);
    assert_eq!(it.allocatable().memory, 31 * GIB);
    assert_eq!(it.offerings[0].zone.as_str(), "z-a");
    assert!(!it.offerings[0].available);
    assert_eq!(it.offerings[1].capacity_type, CapacityType::Spot);
}

#[test]
fn aws_catalog_round_trips_through_specs() {
    let catalog = aws();
    let specs = catalog.to_specs();
    let back = Catalog::from_specs("us-east-1", &specs).unwrap();
    assert_eq!(back.instance_types, catalog.instance_types);
    let m5 = InstanceTypeSpec::from(catalog.get("m5.large").unwrap());
    assert_eq!(m5.capacity.0["memory"], "7577Mi");
    assert_eq!(m5.overhead.kube_reserved.0["cpu"], "70m");
    let json = serde_json::to_string(&m5).unwrap();
    assert!(json.contains(r#""capacityType":"on-demand""#), "{json}");
}

#[test]
fn spec_errors_name_type_and_field() {
    let base: InstanceTypeSpec = serde_json::from_str(spec_json()).unwrap();
    let err = |edit: &dyn Fn(&mut InstanceTypeSpec)| {
        let mut spec = base.clone();
        edit(&mut spec);
        Catalog::from_specs("lab-1", &[spec]).unwrap_err()
    };

    let e = err(&|s| {
        s.capacity.0.insert("memory".into(), "32Gx".into());
    });
    assert_eq!(
        (e.instance_type.as_str(), e.field.as_str()),
        ("big.box", "capacity.memory")
    );
    assert!(
        e.to_string()
            .starts_with("instance type `big.box`, capacity.memory: `32Gx`"),
        "{e}"
    );

    let e = err(&|s| {
        s.capacity.0.remove("cpu");
    });
    assert_eq!(e.field, "capacity.cpu");
    let e = err(&|s| {
        s.overhead
            .kube_reserved
            .0
            .insert("memory".into(), "-1Gi".into());
    });
    assert_eq!(e.field, "overhead.kubeReserved.memory");
    let e = err(&|s| {
        s.labels
            .insert("topology.kubernetes.io/zone".into(), "z-a".into());
    });
    assert_eq!(e.field, "labels.topology.kubernetes.io/zone");
    let e = err(&|s| {
        s.labels
            .insert("topology.kubernetes.io/region".into(), "elsewhere".into());
    });
    assert_eq!(e.field, "labels.topology.kubernetes.io/region");
    let e = err(&|s| {
        s.labels
            .insert("node.kubernetes.io/instance-type".into(), "other".into());
    });
    assert_eq!(e.field, "labels.node.kubernetes.io/instance-type");
    let e = err(&|s| {
        let dup = s.offerings[0].clone();
        s.offerings.push(dup);
    });
    assert_eq!(e.field, "offerings[2]");
    let e = err(&|s| s.offerings[1].price = f64::NAN);
    assert_eq!(e.field, "offerings[1].price");
    let e = err(&|s| s.offerings[0].price = 1e308);
    assert_eq!(e.field, "offerings[0].price");
    assert!(
        e.to_string()
            .contains("1e308 USD per hour is above the limit of 10000 USD per hour"),
        "{e}"
    );
    let e = err(&|s| s.offerings[1].price = -0.1);
    assert!(e.to_string().contains("-0.1 is negative"), "{e}");
    let e = err(&|s| s.offerings.clear());
    assert_eq!(e.field, "offerings");

    let twice = Catalog::from_specs("lab-1", &[base.clone(), base.clone()]).unwrap_err();
    assert_eq!(
        (twice.instance_type.as_str(), twice.field.as_str()),
        ("big.box", "name")
    );

    let bad_type = spec_json().replace("\"spot\"", "\"preemptible\"");
    let serde_err = serde_json::from_str::<InstanceTypeSpec>(&bad_type).unwrap_err();
    assert!(serde_err.to_string().contains("preemptible"), "{serde_err}");
}

#[test]
fn capacity_type_labels_and_codes() {
    for ct in CapacityType::ALL {
        assert_eq!(CapacityType::from_label(ct.label()), Some(ct));
        assert_eq!(CapacityType::from_code(ct.code()), Some(ct));
        assert_eq!(
            serde_json::to_string(&ct).unwrap(),
            format!("\"{}\"", ct.label())
        );
    }
    assert_eq!(CapacityType::OnDemand.label(), "on-demand");
    assert_eq!(CapacityType::Spot.code(), 1);
    assert_eq!(CapacityType::Reserved.code(), 2);
    assert_eq!(CapacityType::from_label("preemptible"), None);
}

#[test]
fn a_node_class_sizes_its_nodes_apart_and_an_identical_one_is_not_kept() {
    let four = Catalog::aws_us_east_1_with(&CatalogSettings {
        max_pods: Some(4),
        ..Default::default()
    });
    let base = Catalog::aws_us_east_1();
    let catalog = base
        .clone()
        .with_class_sized_as("few-pods", &four)
        .with_class_sized_as("same", &Catalog::aws_us_east_1());
    let sized: Vec<_> = catalog.sized_classes().map(|c| c.as_str()).collect();
    assert_eq!(sized, ["few-pods"]);
    let few = catalog.sizing("m5.large", "few-pods").unwrap();
    assert_eq!(few.capacity.pods, 4);
    assert_eq!(few.allocatable().pods, 4);
    let own = catalog.sizing("m5.large", "default").unwrap();
    assert_eq!(own.capacity.pods, 29);
    assert!(catalog.sizing("m5.nonesuch", "few-pods").is_none());
    // Offerings stay shared: marking one unavailable keeps the class sizing.
    let mut marked = catalog.clone();
    assert!(marked.mark_unavailable("m5.large", "us-east-1a", CapacityType::Spot));
    assert_eq!(
        marked.sizing("m5.large", "few-pods").unwrap().capacity.pods,
        4
    );
    assert_ne!(marked, base);
    // Sizing a class back to the catalog's own forgets it.
    let back = catalog.with_class_sized_as("few-pods", &base);
    assert_eq!(back.sized_classes().count(), 0);
    assert_eq!(back, base);
}
