//! The launch choice: every planned NodeClaim goes to the instance-selection
//! port in one batched call, and the answer is checked before it is used.

// Keys are interned pointers: a fast non-cryptographic hash is enough.
use rustc_hash::FxHashMap as HashMap;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::labels;
use crate::model::Pod;
use crate::policy::InstanceSelector;
use crate::policy::ports::BUILTIN;
use crate::policy::select::default_select;
use crate::policy::types::{
    Attribute, Demand, Dictionaries, Dictionary, LaunchRequest, MinValues, OfferingTable,
    Selection, SelectionRequest,
};
use crate::policy::validate::check_selection;
use crate::resources::MIB;
use crate::sym::Sym;

use super::plan::{OfferingRef, Plan};
use super::{Snapshot, solve};

/// The launch list for one NodeClaim: offerings in order of preference, or
/// why it cannot launch.
pub type LaunchDecision = Result<Vec<OfferingRef>, String>;

#[derive(Debug, Clone)]
pub struct LaunchChoice {
    /// One per planned NodeClaim, in plan order.
    pub launches: Vec<LaunchDecision>,
    /// `name@version` of the policy that chose.
    pub by: String,
    /// Set when the configured policy failed and the built-in chose instead.
    pub fallback: Option<String>,
}

/// Builds a policy request's dictionaries, each name once: instance types
/// with their family, category and architecture, zones and NodePools.
#[derive(Debug, Default)]
pub(crate) struct DictionaryIndex {
    pub dicts: Dictionaries,
    types: HashMap<Sym, u32>,
    zones: HashMap<Sym, u16>,
    pools: HashMap<Sym, u16>,
    small: HashMap<(u8, Sym), u32>,
}

impl DictionaryIndex {
    /// The id of instance type `name`, described from `catalog`.
    pub fn instance_type(&mut self, catalog: &Catalog, name: Sym) -> u32 {
        if let Some(&id) = self.types.get(&name) {
            return id;
        }
        let found = catalog.get(name.as_str());
        let get = |key: &str| found.and_then(|t| t.label(key)).unwrap_or_default();
        let d = &mut self.dicts;
        let small = &mut self.small;
        let mut intern = |kind: u8, dict: &mut Dictionary, v: Sym| {
            *small
                .entry((kind, v))
                .or_insert_with(|| dict.push(v.as_str()))
        };
        let f = intern(0, &mut d.families, get(labels::INSTANCE_FAMILY));
        let c = intern(1, &mut d.categories, get(labels::INSTANCE_CATEGORY));
        let a = intern(2, &mut d.architectures, get(labels::ARCH));
        d.type_family.push(f as u16);
        d.type_category.push(c as u16);
        d.type_architecture.push(a as u8);
        let id = d.instance_types.push(name.as_str());
        self.types.insert(name, id);
        id
    }

    pub fn zone(&mut self, zone: Sym) -> u16 {
        let d = &mut self.dicts;
        *self
            .zones
            .entry(zone)
            .or_insert_with(|| d.zones.push(zone.as_str()) as u16)
    }

    pub fn node_pool(&mut self, pool: Sym) -> u16 {
        let d = &mut self.dicts;
        *self
            .pools
            .entry(pool)
            .or_insert_with(|| d.node_pools.push(pool.as_str()) as u16)
    }
}

/// The selection request for `plan`'s NodeClaims, and the offering behind
/// each row of its table.
pub fn selection_request(
    plan: &Plan,
    catalog: &Catalog,
    now_ms: u64,
    seed: u64,
) -> (SelectionRequest, Vec<OfferingRef>) {
    let mut index = DictionaryIndex::default();
    // An offering's row holds its type's allocatable, which depends on the
    // node class sizing it, so rows are per class too.
    let mut rows: HashMap<(Sym, Sym, u8, Sym), u32> = HashMap::default();
    let mut table = OfferingTable::default();
    let mut refs = Vec::new();
    let mut requests = Vec::with_capacity(plan.node_claims.len());
    for claim in &plan.node_claims {
        let pool = index.node_pool(claim.node_pool);
        let mut compatible = Vec::with_capacity(claim.offerings.len());
        for o in &claim.offerings {
            let code = o.capacity_type.code();
            let row = *rows
                .entry((o.instance_type, o.zone, code, claim.node_class))
                .or_insert_with(|| {
                    let (Some(it), Some(size)) = (
                        catalog.get(o.instance_type.as_str()),
                        catalog.sizing(o.instance_type.as_str(), claim.node_class.as_str()),
                    ) else {
                        return u32::MAX;
                    };
                    let type_id = index.instance_type(catalog, it.name);
                    let zone = index.zone(o.zone);
                    let alloc = size.allocatable();
                    table.instance_type.push(type_id);
                    table.vcpu.push((size.capacity.cpu / 1000) as u32);
                    table.memory_mib.push((size.capacity.memory / MIB) as u64);
                    table.gpus.push(it.gpus() as u32);
                    table.alloc_cpu_milli.push(alloc.cpu.max(0) as u64);
                    table
                        .alloc_memory_mib
                        .push((alloc.memory.max(0) / MIB) as u64);
                    table.alloc_pods.push(alloc.pods.max(0) as u32);
                    table.zone.push(zone);
                    table.capacity_type.push(code);
                    table.price_per_hour.push(o.price);
                    table.available.push(true);
                    refs.push(*o);
                    (refs.len() - 1) as u32
                });
            if row != u32::MAX {
                compatible.push(row);
            }
        }
        let min_values = claim
            .compiled
            .iter()
            .filter_map(|r| {
                let min = r.min_values?;
                Some(MinValues {
                    attribute: Attribute::from_label(r.key.as_str())?,
                    min,
                })
            })
            .collect();
        let d = &claim.requests;
        requests.push(LaunchRequest {
            node_pool: pool,
            demand: Demand {
                cpu_milli: d.cpu.max(0) as u64,
                // Rounded down like the allocatable column, so a policy
                // never rejects an offering the simulation found room on.
                memory_mib: (d.memory.max(0) / MIB) as u64,
                pods: d.pods.max(0) as u32,
                gpus: d.gpus().max(0) as u32,
            },
            compatible,
            min_values,
            picks: 0,
        });
    }
    let request = SelectionRequest {
        now_ms,
        seed,
        dictionaries: index.dicts,
        offerings: table,
        requests,
    };
    (request, refs)
}

/// Asks `selector` for every NodeClaim's launch list in one call.
pub fn choose_launches(
    plan: &Plan,
    catalog: &Catalog,
    selector: &dyn InstanceSelector,
    now_ms: u64,
    seed: u64,
) -> LaunchChoice {
    if plan.node_claims.is_empty() {
        return LaunchChoice {
            launches: Vec::new(),
            by: BUILTIN.into(),
            fallback: None,
        };
    }
    let (request, refs) = selection_request(plan, catalog, now_ms, seed);
    let decided = selector.select(&request);
    let (selection, by, fallback): (Selection, String, Option<String>) =
        match check_selection(&request, &decided.value) {
            Ok(()) => (decided.value, decided.by, decided.fallback),
            Err(e) => (
                default_select(&request),
                BUILTIN.to_string(),
                Some(format!(
                    "policy `{}` returned an invalid selection: {e}",
                    decided.by
                )),
            ),
        };
    let launches = plan
        .node_claims
        .iter()
        .zip(selection)
        .map(|(claim, picked)| {
            if let Some(e) = &claim.error {
                return Err(e.clone());
            }
            picked
                .map(|rows| rows.iter().map(|&r| refs[r as usize]).collect())
                .map_err(|e| e.message)
        })
        .collect();
    LaunchChoice {
        launches,
        by,
        fallback,
    }
}

/// A provisioning round: the plan and the launch choice for it.
#[derive(Debug, Clone)]
pub struct Provisioning {
    pub plan: super::Plan,
    pub launch: LaunchChoice,
}

/// Solves, then chooses launches through `selector`.
pub fn provision(
    snapshot: &Snapshot,
    pending: &[Pod],
    selector: &dyn InstanceSelector,
    clock: &dyn Clock,
    seed: u64,
) -> Provisioning {
    let plan = solve(snapshot, pending);
    let launch = choose_launches(&plan, &snapshot.catalog, selector, clock.now_ms(), seed);
    Provisioning { plan, launch }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::builders::{Given, node_pool, pod};
    use crate::catalog::{Catalog, CatalogSettings};
    use crate::labels;
    use crate::requirements::Operator;

    use super::selection_request;

    #[test]
    fn a_policy_sees_each_offering_sized_by_the_claims_node_class() {
        let four = Catalog::aws_us_east_1_with(&CatalogSettings {
            max_pods: Some(4),
            ..Default::default()
        });
        let catalog = Arc::new(Catalog::aws_us_east_1().with_class_sized_as("few-pods", &four));
        let m5 = &["m5.large"];
        let given = Given::with_catalog(catalog.clone())
            .node_pool(node_pool("few").node_class("few-pods").require(
                labels::INSTANCE_TYPE,
                Operator::In,
                m5,
            ))
            .node_pool(node_pool("many").require(labels::INSTANCE_TYPE, Operator::In, m5))
            .pod(pod("a").cpu("10m").node_selector(labels::NODE_POOL, "few"))
            .pod(pod("b").cpu("10m").node_selector(labels::NODE_POOL, "many"));
        let plan = given.solve();
        let (request, _) = selection_request(&plan, &catalog, 0, 0);
        let pods_of = |pool: &str| -> Vec<u32> {
            let claim = plan
                .node_claims
                .iter()
                .position(|c| c.node_pool.as_str() == pool)
                .expect("a claim per pool");
            request.requests[claim]
                .compatible
                .iter()
                .map(|&r| request.offerings.alloc_pods[r as usize])
                .collect()
        };
        let few = pods_of("few");
        assert!(!few.is_empty() && few.iter().all(|&p| p == 4), "{few:?}");
        let many = pods_of("many");
        assert!(
            !many.is_empty() && many.iter().all(|&p| p == 29),
            "{many:?}"
        );
    }
}
