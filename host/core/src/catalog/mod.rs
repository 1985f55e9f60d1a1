//! Instance types and their offerings.
//!
//! A [`Catalog`] is what the scheduler chooses from: instance types with
//! Karpenter's labels, capacity and overhead, each with one [`Offering`] per
//! (zone, capacity type) and its price. Three sources:
//!
//! - [`Catalog::aws_us_east_1`]: EC2's instance types in us-east-1, from data
//!   compiled into the crate (`data/aws/`), resolved with the AWS provider's
//!   capacity math ([`aws`]). On-demand prices are AWS's public list; spot
//!   prices are modelled ([`SpotModel`]) until the AWS adapter supplies
//!   observed ones.
//! - [`Catalog::synthetic_benchmark`]: the fake types of Karpenter's
//!   scheduling benchmark.
//! - [`Catalog::from_specs`]: a user-supplied catalog ([`InstanceTypeSpec`]).

pub mod aws;
pub(crate) mod compiled;
mod csv;
mod price;
mod spec;
mod spot;
mod synthetic;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::labels;
use crate::policy::types::capacity;
use crate::requirements::Requirements;
use crate::resources::Resources;
use crate::sym::Sym;

pub use aws::{CatalogSettings, EvictionThreshold, KubeReserved};
pub use csv::DataError;
pub use price::{MAX_PRICE_PER_HOUR, Number, PriceError, check_price};
pub use spec::{InstanceTypeSpec, LabelValue, OfferingSpec, OverheadSpec, SpecError};
pub use spot::{PriceSource, SpotModel};

/// The embedded us-east-1 catalog ([`Catalog::aws_us_east_1`]), loaded once
/// per process and shared: parsing it takes milliseconds, and sharing one
/// `Arc` shares the scheduler's compiled form too.
pub fn aws_catalog() -> Arc<Catalog> {
    static CATALOG: std::sync::OnceLock<Arc<Catalog>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| Arc::new(Catalog::aws_us_east_1()))
        .clone()
}

/// How an instance is bought. Ordered by policy code: on-demand, spot,
/// reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    OnDemand,
    Spot,
    Reserved,
}

impl CapacityType {
    pub const ALL: [CapacityType; 3] = [Self::OnDemand, Self::Spot, Self::Reserved];

    /// The value of the `karpenter.sh/capacity-type` label.
    pub fn label(self) -> &'static str {
        capacity::name(self.code())
    }

    pub fn from_label(label: &str) -> Option<Self> {
        capacity::from_name(label).and_then(Self::from_code)
    }

    /// The code used in the policy columns (`policy::types::capacity`).
    pub fn code(self) -> u8 {
        match self {
            Self::OnDemand => capacity::ON_DEMAND,
            Self::Spot => capacity::SPOT,
            Self::Reserved => capacity::RESERVED,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl fmt::Display for CapacityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One way to launch an instance type: a zone and a capacity type, at a
/// price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offering {
    pub zone: Sym,
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    /// False after an insufficient-capacity error, or when no price is known.
    pub available: bool,
}

/// What the node keeps for itself: allocatable = capacity − total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overhead {
    pub kube_reserved: Resources,
    pub system_reserved: Resources,
    pub eviction_threshold: Resources,
}

impl Overhead {
    pub fn total(&self) -> Resources {
        self.kube_reserved
            .plus(&self.system_reserved)
            .plus(&self.eviction_threshold)
    }
}

/// A type's capacity and overhead under one node class's kubelet settings
/// (`maxPods`, `kubeReserved`, the root volume, …), where they differ from
/// the catalog's own ([`Catalog::with_class_sizing`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub capacity: Resources,
    pub overhead: Overhead,
}

impl Sizing {
    pub fn allocatable(&self) -> Resources {
        self.capacity.minus(&self.overhead.total())
    }
}

/// How a node of some type is sized: the type's own capacity and overhead,
/// or its node class's ([`Catalog::sizing`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizingRef<'a> {
    pub capacity: &'a Resources,
    pub overhead: &'a Overhead,
}

impl SizingRef<'_> {
    pub fn allocatable(&self) -> Resources {
        self.capacity.minus(&self.overhead.total())
    }
}

/// One node class's sizing of every type of a catalog, index-aligned with
/// [`Catalog::instance_types`], with the scheduler's compiled form of it.
#[derive(Debug)]
struct ClassSizing {
    class: Sym,
    sizes: Arc<[Sizing]>,
    compiled: std::sync::OnceLock<Arc<compiled::Types>>,
}

impl ClassSizing {
    fn new(class: Sym, sizes: Arc<[Sizing]>) -> Self {
        Self {
            class,
            sizes,
            compiled: std::sync::OnceLock::new(),
        }
    }
}

impl Clone for ClassSizing {
    fn clone(&self) -> Self {
        Self::new(self.class, self.sizes.clone())
    }
}

impl PartialEq for ClassSizing {
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class && self.sizes == other.sizes
    }
}

/// An instance type as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub name: Sym,
    /// The labels a node of this type gets, sorted by key: the well-known
    /// Kubernetes ones and, for AWS types, Karpenter's
    /// `karpenter.k8s.aws/instance-*` ones. Never zone or capacity type:
    /// those come from the offering a node launches with.
    pub labels: Vec<(Sym, Sym)>,
    /// Labels with more than one value, sorted by key, each with all its
    /// values in the order given (an os list, say: `kubernetes.io/os` in
    /// `[linux, windows]`). A requirement matches the type if it allows any
    /// of them; `labels` holds the first, and a launched node gets the
    /// value its NodeClaim allows ([`InstanceType::node_labels`]).
    pub label_values: Vec<(Sym, Vec<Sym>)>,
    /// cpu, memory (after VM overhead), pods, ephemeral-storage and devices
    /// (`nvidia.com/gpu`, `amd.com/gpu`, `aws.amazon.com/neuron`, …).
    pub capacity: Resources,
    pub overhead: Overhead,
    /// Sorted by (zone, capacity type); at most one per pair.
    pub offerings: Vec<Offering>,
}

impl InstanceType {
    /// Capacity minus overhead: what pods can request.
    pub fn allocatable(&self) -> Resources {
        self.capacity.minus(&self.overhead.total())
    }

    /// The type's own sizing, as the catalog's settings size it.
    pub fn own_sizing(&self) -> SizingRef<'_> {
        SizingRef {
            capacity: &self.capacity,
            overhead: &self.overhead,
        }
    }

    pub fn label(&self, key: &str) -> Option<Sym> {
        self.labels
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.labels[i].1)
    }

    /// Every value of label `key`: one for most labels, several for a
    /// multi-valued one, none when the type does not have it.
    pub fn label_values(&self, key: Sym) -> &[Sym] {
        if let Ok(i) = self.label_values.binary_search_by(|(k, _)| k.cmp(&key)) {
            return &self.label_values[i].1;
        }
        match self.labels.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => std::slice::from_ref(&self.labels[i].1),
            Err(_) => &[],
        }
    }

    /// The labels a node of this type gets when launched for a NodeClaim
    /// with `requirements`: a multi-valued label takes the first value the
    /// requirements allow (the one they pin), else its first.
    pub fn node_labels(&self, requirements: &Requirements) -> Vec<(Sym, Sym)> {
        let mut out = self.labels.clone();
        for (key, values) in &self.label_values {
            let Some(r) = requirements.get(*key) else {
                continue;
            };
            if let (Some(&v), Ok(i)) = (
                values.iter().find(|&&v| r.has(v)),
                out.binary_search_by(|(k, _)| k.cmp(key)),
            ) {
                out[i].1 = v;
            }
        }
        out
    }

    /// The `kubernetes.io/arch` label; `amd64` for a user-supplied type
    /// that does not say, the common case.
    pub fn architecture(&self) -> Sym {
        self.label(labels::ARCH)
            .unwrap_or_else(|| Sym::new(aws::ARCH_AMD64))
    }

    /// Accelerators of any kind: NVIDIA and AMD GPUs and Neuron devices.
    pub fn gpus(&self) -> i64 {
        self.capacity.gpus()
    }

    pub fn offering(&self, zone: &str, capacity_type: CapacityType) -> Option<&Offering> {
        self.offering_index(zone, capacity_type)
            .map(|i| &self.offerings[i])
    }

    fn offering_index(&self, zone: &str, capacity_type: CapacityType) -> Option<usize> {
        self.offerings
            .binary_search_by(|o| {
                o.zone
                    .as_str()
                    .cmp(zone)
                    .then(o.capacity_type.cmp(&capacity_type))
            })
            .ok()
    }

    /// The cheapest available offering, if any.
    pub fn cheapest_offering(&self) -> Option<&Offering> {
        self.offerings
            .iter()
            .filter(|o| o.available)
            .min_by(|a, b| a.price.total_cmp(&b.price))
    }

    fn sort_offerings(&mut self) {
        self.offerings.sort_by_key(|o| (o.zone, o.capacity_type));
    }
}

/// The instance types a NodePool can launch in one region.
///
/// The scheduler compiles a catalog once, on its first solve, and keeps the
/// result with it: a simulation or controller that solves against the same
/// `Arc<Catalog>` many times pays once. Change a catalog through its methods
/// or on a clone (clones start without the compiled form).
#[derive(Debug)]
pub struct Catalog {
    pub region: Sym,
    /// Sorted by name, which [`Catalog::get`] relies on; [`Catalog::new`]
    /// sorts.
    pub instance_types: Vec<InstanceType>,
    pub spot_prices: PriceSource,
    /// Label keys this catalog declares well-known, sorted: like Karpenter's
    /// own, a NodePool may leave them undefined and a pod may still require
    /// them, and a type without one does not match a pod that requires it.
    well_known_labels: Vec<Sym>,
    /// Node classes whose kubelet settings size nodes differently from
    /// `instance_types`' own capacity and overhead, sorted by class name.
    /// Karpenter sizes a NodePool's types with its EC2NodeClass; one catalog
    /// serves every class, its offerings shared.
    classes: Vec<ClassSizing>,
    compiled: std::sync::OnceLock<Arc<compiled::Types>>,
}

impl Clone for Catalog {
    fn clone(&self) -> Self {
        Self {
            region: self.region,
            instance_types: self.instance_types.clone(),
            spot_prices: self.spot_prices,
            well_known_labels: self.well_known_labels.clone(),
            classes: self.classes.clone(),
            compiled: std::sync::OnceLock::new(),
        }
    }
}

impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        self.region == other.region
            && self.instance_types == other.instance_types
            && self.spot_prices == other.spot_prices
            && self.well_known_labels == other.well_known_labels
            && self.classes == other.classes
    }
}

impl Catalog {
    /// A catalog of `instance_types`, sorted by name with sorted offerings.
    pub fn new(
        region: Sym,
        mut instance_types: Vec<InstanceType>,
        spot_prices: PriceSource,
    ) -> Self {
        instance_types.sort_by_key(|a| a.name);
        for it in &mut instance_types {
            it.sort_offerings();
        }
        Self {
            region,
            instance_types,
            spot_prices,
            well_known_labels: Vec::new(),
            classes: Vec::new(),
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// Sizes nodes of node class `class` with `size` (called once per type,
    /// in catalog order) instead of the types' own capacity and overhead.
    /// A class sized exactly as the catalog is not recorded.
    pub fn with_class_sizing(
        mut self,
        class: &str,
        mut size: impl FnMut(&InstanceType) -> Sizing,
    ) -> Self {
        let sizes: Vec<Sizing> = self.instance_types.iter().map(&mut size).collect();
        let own = self
            .instance_types
            .iter()
            .zip(&sizes)
            .all(|(it, s)| it.capacity == s.capacity && it.overhead == s.overhead);
        let at = self.class_index(class);
        match (at, own) {
            (Ok(i), true) => {
                self.classes.remove(i);
            }
            (Err(_), true) => {}
            (Ok(i), false) => self.classes[i] = ClassSizing::new(Sym::new(class), sizes.into()),
            (Err(i), false) => self
                .classes
                .insert(i, ClassSizing::new(Sym::new(class), sizes.into())),
        }
        self
    }

    /// Sizes nodes of node class `class` as `sized`, the same types resolved
    /// with the class's settings, sizes them; a type `sized` lacks keeps its
    /// own sizing.
    pub fn with_class_sized_as(self, class: &str, sized: &Catalog) -> Self {
        self.with_class_sizing(class, |it| {
            let from = sized.get(it.name.as_str()).unwrap_or(it);
            Sizing {
                capacity: from.capacity.clone(),
                overhead: from.overhead.clone(),
            }
        })
    }

    fn class_index(&self, class: &str) -> Result<usize, usize> {
        self.classes
            .binary_search_by(|c| c.class.as_str().cmp(class))
    }

    /// The node classes sized apart from the catalog's own, sorted.
    pub fn sized_classes(&self) -> impl Iterator<Item = Sym> + '_ {
        self.classes.iter().map(|c| c.class)
    }

    /// How a node of type `name` and node class `class` is sized: the
    /// class's sizing when it has one, else the type's own.
    pub fn sizing(&self, name: &str, class: &str) -> Option<SizingRef<'_>> {
        let i = self.index(name)?;
        let it = &self.instance_types[i];
        Some(match self.class_index(class) {
            Ok(c) => {
                let s = &self.classes[c].sizes[i];
                SizingRef {
                    capacity: &s.capacity,
                    overhead: &s.overhead,
                }
            }
            Err(_) => it.own_sizing(),
        })
    }

    /// Declares `keys` well-known labels of this catalog, beside Karpenter's
    /// own ([`labels::WELL_KNOWN`]).
    pub fn with_well_known_labels(mut self, keys: impl IntoIterator<Item = Sym>) -> Self {
        self.well_known_labels.extend(keys);
        self.well_known_labels.sort();
        self.well_known_labels.dedup();
        self.compiled = std::sync::OnceLock::new();
        self
    }

    /// The label keys this catalog declares well-known, sorted.
    pub fn well_known_labels(&self) -> &[Sym] {
        &self.well_known_labels
    }

    /// Every well-known label of this catalog: Karpenter's and its own.
    pub fn well_known(&self) -> labels::WellKnown<'_> {
        labels::WellKnown::with(&self.well_known_labels)
    }

    /// The compiled form the scheduler matches against, made on first use.
    pub(crate) fn compiled(&self) -> Arc<compiled::Types> {
        self.compiled
            .get_or_init(|| Arc::new(compiled::Types::compile(self)))
            .clone()
    }

    /// The compiled form for NodePools of node class `class`: the same
    /// types and offerings, in the same order, sized as the class sizes
    /// them.
    pub(crate) fn compiled_for(&self, class: &str) -> Arc<compiled::Types> {
        let base = self.compiled();
        let Ok(c) = self.class_index(class) else {
            return base;
        };
        let sizing = &self.classes[c];
        sizing
            .compiled
            .get_or_init(|| Arc::new(base.sized(&sizing.sizes)))
            .clone()
    }

    /// EC2 in us-east-1 with Karpenter's defaults for the AL2023 AMI family.
    pub fn aws_us_east_1() -> Catalog {
        Self::aws_us_east_1_with(&CatalogSettings::default())
    }

    /// EC2 in us-east-1, resolved with `settings` (kubelet and provider
    /// options, spot model).
    pub fn aws_us_east_1_with(settings: &CatalogSettings) -> Catalog {
        // The data is compiled in and a unit test parses all of it.
        aws::load_us_east_1(settings)
            .expect("embedded AWS data parses")
            .catalog
    }

    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.index(name).map(|i| &self.instance_types[i])
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.instance_types
            .binary_search_by(|it| it.name.as_str().cmp(name))
            .ok()
    }

    /// Every zone any type is offered in, sorted.
    pub fn zones(&self) -> Vec<Sym> {
        let mut zones: Vec<Sym> = self
            .instance_types
            .iter()
            .flat_map(|it| it.offerings.iter().map(|o| o.zone))
            .collect();
        zones.sort();
        zones.dedup();
        zones
    }

    /// Karpenter's scheduling-benchmark catalog: `count` fake types named
    /// `fake-it-{i}` with i+1 vCPU, 2(i+1) GiB and 10(i+1) pods, offered as
    /// Karpenter's fake cloud provider offers them.
    pub fn synthetic_benchmark(count: usize) -> Catalog {
        synthetic::benchmark(count)
    }

    /// A catalog from user-supplied types. Labels get
    /// `node.kubernetes.io/instance-type` and `topology.kubernetes.io/region`
    /// when they lack them.
    pub fn from_specs(region: &str, specs: &[InstanceTypeSpec]) -> Result<Catalog, SpecError> {
        spec::catalog(region, specs)
    }

    /// The catalog as specs, e.g. to write it out for a scenario file.
    pub fn to_specs(&self) -> Vec<InstanceTypeSpec> {
        self.instance_types
            .iter()
            .map(InstanceTypeSpec::from)
            .collect()
    }

    /// Marks one offering unavailable, as after an insufficient-capacity
    /// error. False when the catalog has no such offering.
    pub fn mark_unavailable(
        &mut self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> bool {
        self.offering_mut(instance_type, zone, capacity_type)
            .map(|o| o.available = false)
            .is_some()
    }

    /// Replaces a spot price with an observed one and records that the
    /// catalog's spot prices are no longer all modelled. False when the
    /// catalog has no such spot offering, or `price` is not a price
    /// ([`check_price`]): the modelled one is kept.
    pub fn set_spot_price(&mut self, instance_type: &str, zone: &str, price: f64) -> bool {
        if check_price(price).is_err() {
            return false;
        }
        let Some(offering) = self.offering_mut(instance_type, zone, CapacityType::Spot) else {
            return false;
        };
        offering.price = price;
        if matches!(self.spot_prices, PriceSource::Model(_)) {
            self.spot_prices = PriceSource::Observed;
        }
        true
    }

    fn offering_mut(
        &mut self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> Option<&mut Offering> {
        self.compiled = std::sync::OnceLock::new();
        let index = self.index(instance_type)?;
        let it = &mut self.instance_types[index];
        let i = it.offering_index(zone, capacity_type)?;
        Some(&mut it.offerings[i])
    }
}
