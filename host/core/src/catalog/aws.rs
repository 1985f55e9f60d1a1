//! EC2 instance types resolved as Karpenter's AWS provider resolves them
//! (`pkg/providers/instancetype/types.go`): labels, capacity, kube-reserved,
//! eviction thresholds and offerings.
//!
//! [`Ec2InstanceInfo`] holds the `DescribeInstanceTypes` facts the math
//! needs, so the embedded snapshot and, later, the live EC2 API go through
//! the same code.

use std::collections::HashMap;

use super::csv::{self, DataError};
use super::{CapacityType, Catalog, InstanceType, Offering, Overhead, PriceSource, SpotModel};
use crate::labels;
use crate::resources::{AMD_GPU, AWS_NEURON, GIB, MIB, NVIDIA_GPU, Resources};
use crate::sym::Sym;

const INSTANCE_TYPES_CSV: &str = include_str!("../../data/aws/instance-types.csv");
const OFFERINGS_CSV: &str = include_str!("../../data/aws/offerings.csv");
const ON_DEMAND_PRICES_CSV: &str = include_str!("../../data/aws/on-demand-prices.csv");

pub const US_EAST_1: &str = "us-east-1";
pub const ARCH_AMD64: &str = "amd64";
pub const ARCH_ARM64: &str = "arm64";
pub const HABANA_GAUDI: &str = "habana.ai/gaudi";

/// Karpenter's AWS label keys not in [`crate::labels`].
pub mod keys {
    pub const CPU_MANUFACTURER: &str = "karpenter.k8s.aws/instance-cpu-manufacturer";
    pub const CPU_CLOCK_MHZ: &str = "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz";
    pub const HYPERVISOR: &str = "karpenter.k8s.aws/instance-hypervisor";
    pub const CAPABILITY_FLEX: &str = "karpenter.k8s.aws/instance-capability-flex";
    pub const NETWORK_BANDWIDTH: &str = "karpenter.k8s.aws/instance-network-bandwidth";
    pub const LOCAL_NVME: &str = "karpenter.k8s.aws/instance-local-nvme";
    pub const GPU_NAME: &str = "karpenter.k8s.aws/instance-gpu-name";
    pub const GPU_MANUFACTURER: &str = "karpenter.k8s.aws/instance-gpu-manufacturer";
    pub const GPU_MEMORY: &str = "karpenter.k8s.aws/instance-gpu-memory";
    pub const ACCELERATOR_NAME: &str = "karpenter.k8s.aws/instance-accelerator-name";
    pub const ACCELERATOR_MANUFACTURER: &str =
        "karpenter.k8s.aws/instance-accelerator-manufacturer";
    pub const ACCELERATOR_COUNT: &str = "karpenter.k8s.aws/instance-accelerator-count";
}

/// How instance types are resolved: Karpenter's operator options and
/// EC2NodeClass kubelet settings. [`Default`] is Karpenter's AWS default
/// with the AL2023 AMI family and no kubelet overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSettings {
    /// Fraction of EC2 memory lost to the hypervisor (`VM_MEMORY_OVERHEAD_PERCENT`).
    pub vm_memory_overhead_percent: f64,
    /// ENIs kept from pods (`RESERVED_ENIS`).
    pub reserved_enis: u32,
    /// Kubelet `maxPods`. None: ENI-limited,
    /// (ENIs − reserved) × (IPv4 per ENI − 1) + 2, or 110 without ENI data.
    pub max_pods: Option<u32>,
    /// Kubelet `podsPerCore`: caps pods at this × vCPU when set and > 0.
    pub pods_per_core: Option<u32>,
    /// Kubelet `kubeReserved`: each resource given replaces the computed
    /// one, which is CPU 6 % of the first core, 1 % of the second, 0.5 % of
    /// cores 3–4, 0.25 % of the rest; memory 11 MiB × pods + 255 MiB;
    /// ephemeral-storage 1 GiB.
    pub kube_reserved: KubeReserved,
    pub system_reserved: Resources,
    /// Size kube-reserved memory from the ENI-limited pod count (with no
    /// reserved ENIs) whatever `max_pods` and `pods_per_core` say, as
    /// Karpenter does for AL2 and AL2023; false uses the node's pod count,
    /// as for Bottlerocket.
    pub eni_limited_memory_overhead: bool,
    /// The hard eviction threshold `memory.available`, of the capacity's
    /// memory.
    pub eviction_memory: EvictionThreshold,
    /// The hard eviction threshold `nodefs.available`, of the ephemeral
    /// storage.
    pub eviction_nodefs: EvictionThreshold,
    /// Bytes: the root volume, which is the node's ephemeral storage.
    pub ephemeral_storage: i64,
    pub spot: SpotModel,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            vm_memory_overhead_percent: 0.075,
            reserved_enis: 0,
            max_pods: None,
            pods_per_core: None,
            kube_reserved: KubeReserved::default(),
            system_reserved: Resources::default(),
            eni_limited_memory_overhead: true,
            eviction_memory: EvictionThreshold::Quantity(100 * MIB),
            eviction_nodefs: EvictionThreshold::Percent(10.0),
            ephemeral_storage: 20 * GIB,
            spot: SpotModel::default(),
        }
    }
}

/// Kubelet `kubeReserved` entries, each replacing Karpenter's computed value
/// for its resource (`pid` reserves nothing the scheduler counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeReserved {
    /// Millicores.
    pub cpu: Option<i64>,
    /// Bytes.
    pub memory: Option<i64>,
    /// Bytes.
    pub ephemeral_storage: Option<i64>,
}

/// A kubelet hard eviction threshold: an amount, or a percentage of the
/// resource's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvictionThreshold {
    Quantity(i64),
    Percent(f64),
}

impl EvictionThreshold {
    /// The amount kept free on a node with `capacity` of the resource,
    /// rounded up as Karpenter does.
    pub fn of(self, capacity: i64) -> i64 {
        match self {
            Self::Quantity(q) => q,
            Self::Percent(p) => (capacity as f64 / 100.0 * p).ceil() as i64,
        }
    }
}

/// A GPU model as EC2 describes it; Karpenter labels types with exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpu {
    pub name: Sym,
    /// `NVIDIA`, `AMD` or `Habana`.
    pub manufacturer: Sym,
    pub count: u32,
    /// Per GPU.
    pub memory_mib: u64,
}

/// An inference or training accelerator (Inferentia, Trainium, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accelerator {
    pub name: Sym,
    /// `AWS` for Neuron devices.
    pub manufacturer: Sym,
    pub count: u32,
}

impl Accelerator {
    fn is_neuron(&self) -> bool {
        self.manufacturer.as_str().eq_ignore_ascii_case("aws")
    }
}

/// The `DescribeInstanceTypes` facts Karpenter's resolution reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Ec2InstanceInfo {
    pub name: Sym,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// In EC2's order (`x86_64`, `arm64`, `i386`, `x86_64_mac`, …).
    pub architectures: Vec<Sym>,
    /// `Intel`, `AMD`, `AWS`.
    pub cpu_manufacturer: Option<Sym>,
    pub sustained_clock_ghz: Option<f64>,
    /// `nitro` or `xen`; empty for bare metal.
    pub hypervisor: Sym,
    /// `on-demand`, `spot`, `capacity-block`.
    pub usage_classes: Vec<Sym>,
    pub gpus: Vec<Gpu>,
    pub accelerators: Vec<Accelerator>,
    /// On the default network card.
    pub max_network_interfaces: Option<u32>,
    pub ipv4_per_interface: Option<u32>,
    pub network_bandwidth_mbps: Option<u64>,
    /// Total local instance storage when it is NVMe.
    pub local_nvme_gb: Option<u64>,
}

impl Ec2InstanceInfo {
    /// The Kubernetes architecture: the first EC2 architecture Kubernetes
    /// has a name for. None for EC2 Mac (`x86_64_mac`, `arm64_mac`).
    pub fn architecture(&self) -> Option<&'static str> {
        self.architectures.iter().find_map(|a| match a.as_str() {
            "x86_64" => Some(ARCH_AMD64),
            "arm64" => Some(ARCH_ARM64),
            _ => None,
        })
    }

    pub fn supports(&self, capacity_type: CapacityType) -> bool {
        self.usage_classes
            .iter()
            .any(|u| u.as_str() == capacity_type.label())
    }

    /// The instance type with its offerings, or None when its architecture
    /// has no Kubernetes name.
    pub fn resolve(
        &self,
        region: Sym,
        offerings: Vec<Offering>,
        settings: &CatalogSettings,
    ) -> Option<InstanceType> {
        let arch = self.architecture()?;
        let mut it = InstanceType {
            name: self.name,
            labels: self.labels(region, arch),
            label_values: Vec::new(),
            capacity: self.capacity(settings),
            overhead: self.overhead(settings),
            offerings,
        };
        it.sort_offerings();
        Some(it)
    }

    fn labels(&self, region: Sym, arch: &str) -> Vec<(Sym, Sym)> {
        let name = self.name.as_str();
        let mut out: Vec<(&str, String)> = vec![
            (labels::INSTANCE_TYPE, name.to_string()),
            (labels::ARCH, arch.to_string()),
            (labels::OS, "linux".to_string()),
            (labels::REGION, region.as_str().to_string()),
            (labels::INSTANCE_CPU, self.vcpus.to_string()),
            (labels::INSTANCE_MEMORY, self.memory_mib.to_string()),
            (keys::HYPERVISOR, self.hypervisor.as_str().to_string()),
        ];
        if let Some((category, generation)) = category_and_generation(name) {
            out.push((labels::INSTANCE_CATEGORY, category.to_string()));
            out.push((labels::INSTANCE_GENERATION, generation.to_string()));
        }
        let parts: Vec<&str> = name.split('.').collect();
        if let [family, size] = parts[..] {
            out.push((labels::INSTANCE_FAMILY, family.to_string()));
            out.push((labels::INSTANCE_SIZE, size.to_string()));
        }
        let flex = parts[0].contains("-flex");
        out.push((keys::CAPABILITY_FLEX, flex.to_string()));
        if let Some(gb) = self.local_nvme_gb {
            out.push((keys::LOCAL_NVME, gb.to_string()));
        }
        if let Some(mbps) = self.network_bandwidth_mbps {
            out.push((keys::NETWORK_BANDWIDTH, mbps.to_string()));
        }
        if let [gpu] = self.gpus[..] {
            out.push((keys::GPU_NAME, kebab(gpu.name.as_str())));
            out.push((keys::GPU_MANUFACTURER, kebab(gpu.manufacturer.as_str())));
            out.push((labels::INSTANCE_GPU_COUNT, gpu.count.to_string()));
            out.push((keys::GPU_MEMORY, gpu.memory_mib.to_string()));
        }
        if let [acc] = self.accelerators[..] {
            out.push((keys::ACCELERATOR_NAME, kebab(acc.name.as_str())));
            out.push((
                keys::ACCELERATOR_MANUFACTURER,
                kebab(acc.manufacturer.as_str()),
            ));
            out.push((keys::ACCELERATOR_COUNT, acc.count.to_string()));
        }
        if let Some(m) = self.cpu_manufacturer {
            out.push((keys::CPU_MANUFACTURER, kebab(m.as_str())));
        }
        if let Some(ghz) = self.sustained_clock_ghz {
            let mhz = (ghz * 1000.0).round() as i64;
            out.push((keys::CPU_CLOCK_MHZ, mhz.to_string()));
        }
        let mut labels: Vec<(Sym, Sym)> = out
            .into_iter()
            .map(|(k, v)| (Sym::new(k), Sym::new(&v)))
            .collect();
        labels.sort_by_key(|a| a.0);
        labels
    }

    /// ENI-limited pods with `reserved` ENIs kept back; None without ENI data.
    pub fn eni_limited_pods(&self, reserved: u32) -> Option<i64> {
        let enis = i64::from(self.max_network_interfaces?);
        let ips = i64::from(self.ipv4_per_interface?);
        let usable = (enis - i64::from(reserved)).max(0);
        Some(if usable == 0 {
            0
        } else {
            usable * (ips - 1) + 2
        })
    }

    /// The node's pod capacity.
    pub fn pods(&self, settings: &CatalogSettings) -> i64 {
        let mut pods = match settings.max_pods {
            Some(n) => i64::from(n),
            None => self
                .eni_limited_pods(settings.reserved_enis)
                .unwrap_or(DEFAULT_MAX_PODS),
        };
        if let Some(per_core) = settings.pods_per_core.filter(|&n| n > 0) {
            pods = pods.min(i64::from(per_core) * i64::from(self.vcpus));
        }
        pods
    }

    /// Bytes: EC2's memory, less 64 MiB on Graviton (CMA), less the VM
    /// overhead rounded up to whole MiB.
    pub fn memory(&self, settings: &CatalogSettings) -> i64 {
        let mut mib = self.memory_mib as i64;
        if self.architectures.first().map(|a| a.as_str()) == Some("arm64") {
            mib -= 64;
        }
        let bytes = mib * MIB;
        // Same float operations as Karpenter, so results match to the MiB.
        let overhead =
            (bytes as f64 * settings.vm_memory_overhead_percent / 1024.0 / 1024.0).ceil() as i64;
        bytes - overhead * MIB
    }

    pub fn capacity(&self, settings: &CatalogSettings) -> Resources {
        let mut r = Resources {
            cpu: i64::from(self.vcpus) * 1000,
            memory: self.memory(settings),
            pods: self.pods(settings),
            ephemeral: settings.ephemeral_storage,
            extended: Vec::new(),
        };
        for gpu in &self.gpus {
            let resource = match gpu.manufacturer.as_str() {
                "NVIDIA" => NVIDIA_GPU,
                "AMD" => AMD_GPU,
                "Habana" => HABANA_GAUDI,
                _ => continue,
            };
            r.set(resource, r.get(resource) + i64::from(gpu.count));
        }
        let neurons: i64 = self
            .accelerators
            .iter()
            .filter(|a| a.is_neuron())
            .map(|a| i64::from(a.count))
            .sum();
        r.set(AWS_NEURON, neurons);
        r
    }

    pub fn overhead(&self, settings: &CatalogSettings) -> Overhead {
        let pods = if settings.eni_limited_memory_overhead {
            self.eni_limited_pods(0).unwrap_or(DEFAULT_MAX_PODS)
        } else {
            self.pods(settings)
        };
        let given = &settings.kube_reserved;
        let kube_reserved = Resources {
            cpu: given
                .cpu
                .unwrap_or_else(|| kube_reserved_cpu(i64::from(self.vcpus) * 1000)),
            memory: given.memory.unwrap_or((11 * pods + 255) * MIB),
            ephemeral: given.ephemeral_storage.unwrap_or(GIB),
            ..Resources::default()
        };
        Overhead {
            kube_reserved,
            system_reserved: settings.system_reserved.clone(),
            eviction_threshold: Resources {
                memory: settings.eviction_memory.of(self.memory(settings)),
                ephemeral: settings.eviction_nodefs.of(settings.ephemeral_storage),
                ..Resources::default()
            },
        }
    }
}

/// Kubelet's default pod limit, used when a type has no ENI data.
const DEFAULT_MAX_PODS: i64 = 110;

/// Karpenter's kube-reserved CPU in millicores for `cpu` millicores: 6 % of
/// the first core, 1 % of the second, 0.5 % of cores 3–4, 0.25 % of the
/// rest, each range truncated to whole millicores.
pub fn kube_reserved_cpu(cpu: i64) -> i64 {
    const RANGES: [(i64, i64, f64); 4] = [
        (0, 1000, 0.06),
        (1000, 2000, 0.01),
        (2000, 4000, 0.005),
        (4000, 1 << 31, 0.0025),
    ];
    RANGES
        .iter()
        .filter(|&&(start, _, _)| cpu >= start)
        .map(|&(start, end, share)| ((cpu.min(end) - start) as f64 * share) as i64)
        .sum()
}

/// Category and generation as Karpenter reads them from the name with
/// `(^[a-z]+)(\-[0-9]+tb)?([0-9]+).*\.`: `m5.large` → (m, 5),
/// `u-6tb1.metal` → (u, 1), `m7i-flex.large` → (m, 7).
pub fn category_and_generation(name: &str) -> Option<(&str, &str)> {
    let category_end = name.find(|c: char| !c.is_ascii_lowercase())?;
    if category_end == 0 {
        return None;
    }
    let digits_from = |i: usize| {
        name[i..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(name.len(), |n| i + n)
    };
    let mut at = category_end;
    // The optional `-NNNtb` memory tag of high-memory types.
    if name[at..].starts_with('-') {
        let end = digits_from(at + 1);
        if end > at + 1 && name[end..].starts_with("tb") {
            at = end + 2;
        }
    }
    let generation_end = digits_from(at);
    if generation_end == at || !name[generation_end..].contains('.') {
        return None;
    }
    Some((&name[..category_end], &name[at..generation_end]))
}

/// Karpenter's `lowerKabobCase`: `RTX PRO 4500` → `rtx-pro-4500`.
fn kebab(s: &str) -> String {
    s.replace(' ', "-").to_lowercase()
}

/// Why an embedded type is not in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dropped {
    /// No offering in the region.
    NotOffered,
    /// Offered, but no on-demand price is known, so neither its on-demand
    /// nor its modelled spot price is.
    NoOnDemandPrice,
    /// EC2 Mac: no Kubernetes architecture (and dedicated hosts only).
    UnsupportedArchitecture,
}

/// Embedded types left out of the us-east-1 catalog, and why.
pub fn us_east_1_dropped() -> Vec<(Sym, Dropped)> {
    load_us_east_1(&CatalogSettings::default())
        .expect("embedded AWS data parses")
        .dropped
}

pub(super) struct Loaded {
    pub catalog: Catalog,
    pub dropped: Vec<(Sym, Dropped)>,
}

/// The embedded us-east-1 catalog, and what was left out.
pub(super) fn load_us_east_1(settings: &CatalogSettings) -> Result<Loaded, DataError> {
    let region = Sym::new(US_EAST_1);
    let prices = on_demand_prices(US_EAST_1)?;
    let zones = offered_zones(US_EAST_1)?;
    let mut types = Vec::new();
    let mut dropped = Vec::new();
    for info in embedded_instance_types()? {
        let name = info.name.as_str();
        let Some(zones) = zones.get(name) else {
            dropped.push((info.name, Dropped::NotOffered));
            continue;
        };
        if info.architecture().is_none() {
            dropped.push((info.name, Dropped::UnsupportedArchitecture));
            continue;
        }
        let Some(&on_demand) = prices.get(name) else {
            dropped.push((info.name, Dropped::NoOnDemandPrice));
            continue;
        };
        let offerings = offerings(&info, zones, on_demand, &settings.spot);
        types.extend(info.resolve(region, offerings, settings));
    }
    Ok(Loaded {
        catalog: Catalog::new(region, types, PriceSource::Model(settings.spot)),
        dropped,
    })
}

/// One on-demand and one spot offering per zone, as the usage classes allow;
/// capacity blocks are left out, as Karpenter leaves them out.
fn offerings(
    info: &Ec2InstanceInfo,
    zones: &[Sym],
    on_demand: f64,
    spot: &SpotModel,
) -> Vec<Offering> {
    let family = info.name.as_str().split('.').next().unwrap_or_default();
    let mut out = Vec::with_capacity(zones.len() * 2);
    for &zone in zones {
        if info.supports(CapacityType::OnDemand) {
            out.push(Offering {
                zone,
                capacity_type: CapacityType::OnDemand,
                price: on_demand,
                available: true,
            });
        }
        if info.supports(CapacityType::Spot) {
            out.push(Offering {
                zone,
                capacity_type: CapacityType::Spot,
                price: spot.price(on_demand, family, zone.as_str()),
                available: true,
            });
        }
    }
    out
}

/// The embedded on-demand price list of `region` (Linux, shared tenancy, USD
/// per hour) by instance type; empty for a region the data does not cover
/// (only [`US_EAST_1`] is embedded). The AWS adapter falls back to it when the
/// Pricing API cannot be reached.
pub fn on_demand_prices(region: &str) -> Result<HashMap<&'static str, f64>, DataError> {
    let rows = csv::read(
        "on-demand-prices.csv",
        ON_DEMAND_PRICES_CSV,
        ["region", "instance_type", "usd_per_hour"],
    )?;
    let mut prices = HashMap::with_capacity(rows.len());
    for row in rows.iter().filter(|r| r.fields[0] == region) {
        let price: f64 = row.parse(2, "usd_per_hour")?;
        if !(price.is_finite() && price > 0.0) {
            return Err(row.error(format_args!("price {price} is not positive")));
        }
        if prices.insert(row.fields[1], price).is_some() {
            return Err(row.error(format_args!("{} priced twice", row.fields[1])));
        }
    }
    Ok(prices)
}

/// Zones per instance type, sorted.
fn offered_zones(region: &str) -> Result<HashMap<&'static str, Vec<Sym>>, DataError> {
    let rows = csv::read(
        "offerings.csv",
        OFFERINGS_CSV,
        ["region", "zone", "instance_type"],
    )?;
    let mut zones: HashMap<&str, Vec<Sym>> = HashMap::new();
    let mut interned: HashMap<&str, Sym> = HashMap::new();
    for row in rows.iter().filter(|r| r.fields[0] == region) {
        let [_, zone, name] = row.fields;
        if !zone.starts_with(region) {
            return Err(row.error(format_args!("zone {zone} is not in {region}")));
        }
        let zone = *interned.entry(zone).or_insert_with(|| Sym::new(zone));
        zones.entry(name).or_default().push(zone);
    }
    for list in zones.values_mut() {
        list.sort();
        list.dedup();
    }
    Ok(zones)
}

/// Every row of `instance-types.csv`.
pub(super) fn embedded_instance_types() -> Result<Vec<Ec2InstanceInfo>, DataError> {
    const COLUMNS: [&str; 20] = [
        "instance_type",
        "vcpus",
        "memory_mib",
        "architectures",
        "cpu_manufacturer",
        "sustained_clock_ghz",
        "hypervisor",
        "usage_classes",
        "gpu_name",
        "gpu_manufacturer",
        "gpu_count",
        "gpu_memory_mib",
        "accelerator_name",
        "accelerator_count",
        "max_network_interfaces",
        "ipv4_per_interface",
        "network_baseline_gbps",
        "local_storage_gb",
        "local_nvme",
        "family",
    ];
    let rows = csv::read("instance-types.csv", INSTANCE_TYPES_CSV, COLUMNS)?;
    let mut out = Vec::with_capacity(rows.len());
    // Interning is a locked table lookup; the lists repeat a few values.
    let mut interned: HashMap<&str, Sym> = HashMap::new();
    let mut sym = |s: &'static str| *interned.entry(s).or_insert_with(|| Sym::new(s));
    for row in &rows {
        let f = &row.fields;
        let optional_u32 = |i: usize| -> Result<Option<u32>, DataError> {
            Ok(Some(row.parse::<u32>(i, COLUMNS[i])?).filter(|&n| n > 0))
        };
        let name = f[0];
        if name.is_empty() || f[19].is_empty() {
            return Err(row.error("empty instance type or family"));
        }
        let gpus = if f[8].is_empty() {
            Vec::new()
        } else {
            vec![Gpu {
                name: sym(f[8]),
                manufacturer: sym(f[9]),
                count: row.parse(10, COLUMNS[10])?,
                memory_mib: row.parse(11, COLUMNS[11])?,
            }]
        };
        let accelerators = if f[12].is_empty() {
            Vec::new()
        } else {
            vec![Accelerator {
                name: sym(f[12]),
                manufacturer: sym(accelerator_manufacturer(f[12])),
                count: row.parse(13, COLUMNS[13])?,
            }]
        };
        let gbps: f64 = row.parse(16, COLUMNS[16])?;
        let nvme = match f[18] {
            "0" => false,
            "1" => true,
            other => return Err(row.error(format_args!("local_nvme `{other}` is not 0 or 1"))),
        };
        let local_gb: u64 = row.parse(17, COLUMNS[17])?;
        out.push(Ec2InstanceInfo {
            name: Sym::new(name),
            vcpus: row.parse(1, COLUMNS[1])?,
            memory_mib: row.parse(2, COLUMNS[2])?,
            architectures: f[3].split('|').map(&mut sym).collect(),
            cpu_manufacturer: (!f[4].is_empty()).then(|| sym(f[4])),
            sustained_clock_ghz: if f[5].is_empty() {
                None
            } else {
                Some(row.parse(5, COLUMNS[5])?)
            },
            hypervisor: sym(f[6]),
            usage_classes: f[7].split('|').map(&mut sym).collect(),
            gpus,
            accelerators,
            max_network_interfaces: optional_u32(14)?,
            ipv4_per_interface: optional_u32(15)?,
            network_bandwidth_mbps: (gbps > 0.0).then(|| (gbps * 1000.0).round() as u64),
            local_nvme_gb: (nvme && local_gb > 0).then_some(local_gb),
        });
    }
    Ok(out)
}

/// The data names accelerators but not their makers; Neuron devices are
/// AWS's.
fn accelerator_manufacturer(name: &str) -> &str {
    if name.starts_with("Inferentia") || name.starts_with("Trainium") {
        "AWS"
    } else {
        name.split(' ').next().unwrap_or(name)
    }
}
