//! A catalog compiled for matching: each instance type's labels and
//! available offerings as requirements, as Karpenter's `InstanceType`
//! carries them. The scheduler matches pods against this form; a catalog
//! makes it once and keeps it ([`super::Catalog::compiled`]).

use crate::labels::{self, WellKnown};
use crate::requirements::{Requirement, Requirements};
use crate::resources::Resources;
use crate::sym::Sym;

use super::{CapacityType, Catalog};

/// An offering compiled for matching.
#[derive(Debug, Clone)]
pub(crate) struct CompiledOffering {
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub capacity_label: Sym,
    pub price: f64,
    pub available: bool,
    /// Position in [`Types::by_rank`]: the catalog's offerings by price,
    /// then type name, then zone.
    pub rank: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledType {
    pub name: Sym,
    /// Position among the catalog's types ordered by name.
    pub name_rank: u32,
    pub requirements: Requirements,
    pub capacity: Resources,
    pub allocatable: Resources,
    pub offerings: Vec<CompiledOffering>,
}

impl CompiledType {
    /// Whether an available offering satisfies `reqs`' zone and capacity type.
    pub fn has_offering(&self, reqs: &Requirements, keys: &OfferingKeys) -> bool {
        let zone = reqs.get(keys.zone);
        let ct = reqs.get(keys.capacity_type);
        self.offerings.iter().any(|o| {
            o.available
                && zone.is_none_or(|r| r.has(o.zone))
                && ct.is_none_or(|r| r.has(o.capacity_label))
        })
    }

    /// The cheapest available offering price under `reqs`.
    pub fn cheapest(&self, reqs: &Requirements, keys: &OfferingKeys) -> f64 {
        let zone = reqs.get(keys.zone);
        let ct = reqs.get(keys.capacity_type);
        self.offerings
            .iter()
            .filter(|o| {
                o.available
                    && zone.is_none_or(|r| r.has(o.zone))
                    && ct.is_none_or(|r| r.has(o.capacity_label))
            })
            .map(|o| o.price)
            .fold(f64::INFINITY, f64::min)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OfferingKeys {
    pub zone: Sym,
    pub capacity_type: Sym,
    pub hostname: Sym,
}

impl OfferingKeys {
    pub fn new() -> Self {
        Self {
            zone: Sym::new(labels::ZONE),
            capacity_type: Sym::new(labels::CAPACITY_TYPE),
            hostname: Sym::new(labels::HOSTNAME),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Types {
    pub list: Vec<CompiledType>,
    /// Every offering as (type, offering) positions, cheapest first; equal
    /// prices by type name, then zone, then position. Sorting offerings by
    /// rank orders them so without comparing any text.
    pub by_rank: Vec<(u32, u32)>,
    pub keys: OfferingKeys,
    /// The catalog's own well-known label keys, sorted.
    well_known: Vec<Sym>,
}

impl Types {
    pub fn compile(catalog: &Catalog) -> Self {
        let keys = OfferingKeys::new();
        let mut list: Vec<CompiledType> = catalog
            .instance_types
            .iter()
            .map(|it| {
                let mut requirements =
                    Requirements::from_labels(it.labels.iter().map(|(k, v)| (k, v)));
                for (key, values) in &it.label_values {
                    requirements.set(Requirement::is_in(*key, values.iter().copied()));
                }
                // As Karpenter requires of a provider's types, every
                // well-known label is defined: a type without one does not
                // match a pod that asks for it.
                for &key in catalog.well_known_labels() {
                    if !requirements.has(key) {
                        requirements.add(Requirement::does_not_exist(key));
                    }
                }
                let available = it.offerings.iter().filter(|o| o.available);
                requirements.add(Requirement::is_in(
                    keys.zone,
                    available.clone().map(|o| o.zone),
                ));
                requirements.add(Requirement::is_in(
                    keys.capacity_type,
                    available.map(|o| Sym::new(o.capacity_type.label())),
                ));
                CompiledType {
                    name: it.name,
                    name_rank: 0,
                    requirements,
                    capacity: it.capacity.clone(),
                    allocatable: it.allocatable(),
                    offerings: it
                        .offerings
                        .iter()
                        .map(|o| CompiledOffering {
                            zone: o.zone,
                            capacity_type: o.capacity_type,
                            capacity_label: Sym::new(o.capacity_type.label()),
                            price: o.price,
                            available: o.available,
                            rank: 0,
                        })
                        .collect(),
                }
            })
            .collect();
        let mut by_name: Vec<u32> = (0..list.len() as u32).collect();
        by_name.sort_by(|&a, &b| {
            list[a as usize]
                .name
                .cmp(&list[b as usize].name)
                .then(a.cmp(&b))
        });
        for (rank, &t) in by_name.iter().enumerate() {
            list[t as usize].name_rank = rank as u32;
        }
        let mut by_rank: Vec<(u32, u32)> = list
            .iter()
            .enumerate()
            .flat_map(|(t, it)| (0..it.offerings.len() as u32).map(move |o| (t as u32, o)))
            .collect();
        let offering = |&(t, o): &(u32, u32)| {
            let it = &list[t as usize];
            (&it.offerings[o as usize], it.name_rank)
        };
        by_rank.sort_by(|a, b| {
            let ((x, xn), (y, yn)) = (offering(a), offering(b));
            x.price
                .total_cmp(&y.price)
                .then(xn.cmp(&yn))
                .then(x.zone.cmp(&y.zone))
                .then(a.cmp(b))
        });
        for (rank, &(t, o)) in by_rank.iter().enumerate() {
            list[t as usize].offerings[o as usize].rank = rank as u32;
        }
        Types {
            list,
            by_rank,
            keys,
            well_known: catalog.well_known_labels().to_vec(),
        }
    }

    /// These types with each one's capacity and allocatable from `sizes`
    /// (index-aligned with the list).
    pub fn sized(&self, sizes: &[super::Sizing]) -> Self {
        let mut out = self.clone();
        for (t, s) in out.list.iter_mut().zip(sizes) {
            t.capacity = s.capacity.clone();
            t.allocatable = s.allocatable();
        }
        out
    }

    /// The labels a NodeClaim may leave undefined: Karpenter's well-known
    /// labels and the catalog's own.
    pub fn well_known(&self) -> WellKnown<'_> {
        WellKnown::with(&self.well_known)
    }
}
