//! EC2's instance types and offerings, as `DescribeInstanceTypes` and
//! `DescribeInstanceTypeOfferings` report them, turned into dovetail-core's
//! catalog with core's capacity math ([`Ec2InstanceInfo::resolve`]) and the
//! price book.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    EphemeralNvmeSupport, InstanceTypeInfo, InstanceTypeOffering, LocationType,
};
use dovetail_core::catalog::aws::{Accelerator, Ec2InstanceInfo, Gpu};
use dovetail_core::catalog::{
    CapacityType, Catalog, CatalogSettings, InstanceType, Offering, PriceSource, Sizing,
};
use dovetail_core::sym::Sym;

use crate::pricing::PriceBook;

/// How often Karpenter refreshes instance types and offerings.
pub const REFRESH_INTERVAL_MS: u64 = 12 * 60 * 60 * 1000;

/// The `DescribeInstanceTypes` filters Karpenter sends: hardware-virtualised
/// types of the two architectures Kubernetes nodes run on.
pub fn describe_filters() -> [(&'static str, &'static [&'static str]); 2] {
    [
        ("supported-virtualization-type", &["hvm"]),
        (
            "processor-info.supported-architecture",
            &["x86_64", "arm64"],
        ),
    ]
}

/// A `DescribeInstanceTypes` entry without a fact the capacity math needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance type {instance_type}: DescribeInstanceTypes gave no {field}")]
pub struct IncompleteInfo {
    pub instance_type: String,
    pub field: &'static str,
}

/// The facts core's capacity math reads, from one `DescribeInstanceTypes`
/// entry.
pub fn instance_info(info: &InstanceTypeInfo) -> Result<Ec2InstanceInfo, IncompleteInfo> {
    let name = info
        .instance_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let missing = |field| IncompleteInfo {
        instance_type: name.clone(),
        field,
    };
    if name.is_empty() {
        return Err(missing("instanceType"));
    }
    let vcpus = info
        .v_cpu_info()
        .and_then(|v| v.default_v_cpus())
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| missing("vCpuInfo.defaultVCpus"))?;
    let memory_mib = info
        .memory_info()
        .and_then(|m| m.size_in_mib())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| missing("memoryInfo.sizeInMiB"))?;
    let processor = info.processor_info();
    let architectures: Vec<Sym> = processor
        .map(|p| p.supported_architectures())
        .unwrap_or_default()
        .iter()
        .map(|a| Sym::new(a.as_str()))
        .collect();
    if architectures.is_empty() {
        return Err(missing("processorInfo.supportedArchitectures"));
    }
    let network = info.network_info();
    // The VPC CNI only uses the default network card's interfaces.
    let default_card = network.and_then(|n| {
        let index = n.default_network_card_index().unwrap_or(0);
        n.network_cards()
            .iter()
            .find(|c| c.network_card_index().unwrap_or(0) == index)
    });
    let max_network_interfaces = default_card
        .and_then(|c| c.maximum_network_interfaces())
        .or_else(|| network.and_then(|n| n.maximum_network_interfaces()))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    let ipv4_per_interface = network
        .and_then(|n| n.ipv4_addresses_per_interface())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0);
    let network_bandwidth_mbps = default_card
        .and_then(|c| c.baseline_bandwidth_in_gbps())
        .filter(|&g| g > 0.0)
        .map(|g| (g * 1000.0).round() as u64);
    let local_nvme_gb = info
        .instance_storage_info()
        .filter(|s| s.nvme_support() != Some(&EphemeralNvmeSupport::Unsupported))
        .and_then(|s| s.total_size_in_gb())
        .and_then(|gb| u64::try_from(gb).ok())
        .filter(|&gb| gb > 0);
    let gpus = info
        .gpu_info()
        .map(|g| g.gpus())
        .unwrap_or_default()
        .iter()
        .map(|g| Gpu {
            name: Sym::new(g.name().unwrap_or_default()),
            manufacturer: Sym::new(g.manufacturer().unwrap_or_default()),
            count: g.count().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            memory_mib: g
                .memory_info()
                .and_then(|m| m.size_in_mib())
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        })
        .collect();
    // Neuron devices (Inferentia, Trainium) are AWS's own accelerators.
    let accelerators = info
        .neuron_info()
        .map(|n| n.neuron_devices())
        .unwrap_or_default()
        .iter()
        .map(|d| Accelerator {
            name: Sym::new(d.name().unwrap_or_default()),
            manufacturer: Sym::new("AWS"),
            count: d.count().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        })
        .collect();
    Ok(Ec2InstanceInfo {
        name: Sym::new(&name),
        vcpus,
        memory_mib,
        architectures,
        cpu_manufacturer: processor.and_then(|p| p.manufacturer()).map(Sym::new),
        sustained_clock_ghz: processor.and_then(|p| p.sustained_clock_speed_in_ghz()),
        hypervisor: Sym::new(info.hypervisor().map_or("", |h| h.as_str())),
        usage_classes: info
            .supported_usage_classes()
            .iter()
            .map(|u| Sym::new(u.as_str()))
            .collect(),
        gpus,
        accelerators,
        max_network_interfaces,
        ipv4_per_interface,
        network_bandwidth_mbps,
        local_nvme_gb,
    })
}

/// The zones each instance type is offered in, from
/// `DescribeInstanceTypeOfferings` with location type `availability-zone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneOfferings {
    zones: BTreeMap<String, BTreeSet<String>>,
}

/// An offering that is not of an availability zone in the region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferingError {
    #[error("an instance type offering without {0}")]
    Missing(&'static str),
    #[error(
        "offering of {instance_type} is by {location_type}, not availability-zone: ask with LocationType=availability-zone"
    )]
    NotByZone {
        instance_type: String,
        location_type: String,
    },
}

impl ZoneOfferings {
    /// Adds a page of offerings.
    pub fn add<'a>(
        &mut self,
        offerings: impl IntoIterator<Item = &'a InstanceTypeOffering>,
    ) -> Result<(), OfferingError> {
        for o in offerings {
            let instance_type = o
                .instance_type()
                .ok_or(OfferingError::Missing("instanceType"))?
                .as_str()
                .to_string();
            match o.location_type() {
                Some(LocationType::AvailabilityZone) => {}
                other => {
                    return Err(OfferingError::NotByZone {
                        instance_type,
                        location_type: other.map_or("nothing", |l| l.as_str()).to_string(),
                    });
                }
            }
            let zone = o.location().ok_or(OfferingError::Missing("location"))?;
            self.zones
                .entry(instance_type)
                .or_default()
                .insert(zone.to_string());
        }
        Ok(())
    }

    /// The zones `instance_type` is offered in, sorted.
    pub fn zones(&self, instance_type: &str) -> impl Iterator<Item = &str> {
        self.zones
            .get(instance_type)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Why a described instance type is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error(transparent)]
    Incomplete(#[from] IncompleteInfo),
    #[error("{0}: not offered in any zone of the region")]
    NotOffered(String),
    /// EC2 Mac types and other architectures Kubernetes has no name for.
    #[error("{0}: no Kubernetes architecture")]
    UnsupportedArchitecture(String),
    /// No zone had a price for any capacity type it supports.
    #[error("{0}: no known price")]
    NoPrice(String),
}

/// A catalog built from the API, and the types left out.
#[derive(Debug, Clone)]
pub struct Built {
    pub catalog: Catalog,
    /// The facts behind each of the catalog's types, to size them again
    /// for an EC2NodeClass ([`sized_for_classes`]).
    pub infos: BTreeMap<Sym, Ec2InstanceInfo>,
    pub dropped: Vec<Dropped>,
}

/// The region's catalog: every described type offered in a zone, with an
/// on-demand offering per zone when it has an on-demand price and a spot
/// offering per zone when it has a spot price there, each as its usage
/// classes allow (capacity blocks are left out, as Karpenter leaves them
/// out of ordinary offerings). `settings` carries the operator's
/// `VM_MEMORY_OVERHEAD_PERCENT` and `RESERVED_ENIS` and the EC2NodeClass's
/// kubelet settings.
pub fn catalog(
    region: &str,
    infos: &[InstanceTypeInfo],
    offerings: &ZoneOfferings,
    prices: &PriceBook,
    settings: &CatalogSettings,
) -> Built {
    let region_sym = Sym::new(region);
    let mut types: Vec<InstanceType> = Vec::new();
    let mut kept = BTreeMap::new();
    let mut dropped = Vec::new();
    for raw in infos {
        let info = match instance_info(raw) {
            Ok(info) => info,
            Err(e) => {
                dropped.push(Dropped::Incomplete(e));
                continue;
            }
        };
        let name = info.name.as_str();
        if info.architecture().is_none() {
            dropped.push(Dropped::UnsupportedArchitecture(name.to_string()));
            continue;
        }
        let zones: Vec<&str> = offerings.zones(name).collect();
        if zones.is_empty() {
            dropped.push(Dropped::NotOffered(name.to_string()));
            continue;
        }
        let mut offered = Vec::new();
        for zone in zones {
            let zone_sym = Sym::new(zone);
            let mut offer = |capacity_type, price: Option<f64>| {
                if let Some(price) = price.filter(|_| info.supports(capacity_type)) {
                    offered.push(Offering {
                        zone: zone_sym,
                        capacity_type,
                        price,
                        available: true,
                    });
                }
            };
            offer(CapacityType::OnDemand, prices.on_demand_price(name));
            offer(CapacityType::Spot, prices.spot_price(name, zone));
        }
        if offered.is_empty() {
            dropped.push(Dropped::NoPrice(name.to_string()));
            continue;
        }
        // The architecture was checked above.
        types.extend(info.resolve(region_sym, offered, settings));
        kept.insert(info.name, info);
    }
    let source = if prices.spot_observed() {
        PriceSource::Observed
    } else {
        PriceSource::Given
    };
    Built {
        catalog: Catalog::new(region_sym, types, source),
        infos: kept,
        dropped,
    }
}

/// `catalog` with each EC2NodeClass of `classes` sizing its nodes with its
/// own settings (kubelet `maxPods`, `podsPerCore`, reserved resources and
/// eviction thresholds, root volume), recomputed from `infos` with core's
/// capacity math, as Karpenter resolves instance types per EC2NodeClass. A
/// class sized as the catalog is adds nothing.
pub fn sized_for_classes(
    catalog: &Catalog,
    infos: &BTreeMap<Sym, Ec2InstanceInfo>,
    classes: &[(String, CatalogSettings)],
) -> Catalog {
    let mut out = catalog.clone();
    for (name, settings) in classes {
        out = out.with_class_sizing(name, |it| match infos.get(&it.name) {
            Some(info) => Sizing {
                capacity: info.capacity(settings),
                overhead: info.overhead(settings),
            },
            None => Sizing {
                capacity: it.capacity.clone(),
                overhead: it.overhead.clone(),
            },
        });
    }
    out
}

/// An operator setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "VM_MEMORY_OVERHEAD_PERCENT is {0}: give a fraction from 0 up to (not including) 1, such as 0.075"
    )]
    VmMemoryOverhead(f64),
}

/// Karpenter's defaults with the operator's `VM_MEMORY_OVERHEAD_PERCENT`
/// (a fraction: 0.075 is 7.5 %) and `RESERVED_ENIS`; an EC2NodeClass's
/// kubelet settings go on top (`EC2NodeClass::catalog_settings`).
pub fn operator_settings(
    vm_memory_overhead_percent: f64,
    reserved_enis: u32,
) -> Result<CatalogSettings, SettingsError> {
    if !(0.0..1.0).contains(&vm_memory_overhead_percent) {
        return Err(SettingsError::VmMemoryOverhead(vm_memory_overhead_percent));
    }
    Ok(CatalogSettings {
        vm_memory_overhead_percent,
        reserved_enis,
        ..CatalogSettings::default()
    })
}
