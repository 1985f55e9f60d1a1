//! What a solve decided, as plain values.

use serde::Serialize;

use crate::catalog::CapacityType;
use crate::catalog::compiled::CompiledOffering;
use crate::labels::WellKnown;
use crate::model::PodKey;
use crate::requirements::{NodeSelectorRequirement, Requirements};
use crate::resources::Resources;
use crate::sym::Sym;

use super::claims::{check_min_values, relax_min_values_to};
use super::index::PodIndex;
use super::{MinValuesPolicy, Place, Scheduler};
use crate::policy::select::price_key;

/// One launch option: an instance type in a zone with a capacity type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferingRef {
    pub instance_type: Sym,
    pub zone: Sym,
    pub capacity_type: CapacityType,
    pub price: f64,
}

/// A NodeClaim to create.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimPlan {
    pub node_pool: Sym,
    /// The NodePool's node class, which sizes the instance types.
    #[serde(skip)]
    pub node_class: Sym,
    /// Placeholder hostname used while planning.
    pub hostname: Sym,
    pub requirements: Vec<NodeSelectorRequirement>,
    #[serde(skip)]
    pub compiled: Requirements,
    pub pods: Vec<PodKey>,
    /// The pods' requests plus DaemonSet overhead.
    #[serde(serialize_with = "crate::resources::serialize_resources")]
    pub requests: Resources,
    /// Compatible instance types, cheapest first, at most the configured cap.
    pub instance_types: Vec<Sym>,
    /// Their available offerings that meet the requirements, cheapest first.
    pub offerings: Vec<OfferingRef>,
    /// The labels the requirements give the node: each key with one
    /// allowed value, and, as Karpenter labels a NodeClaim, a key no launch
    /// fills in (not well-known) with a value it allows, so a pod that
    /// selects a NodePool's custom label finds it on the node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(Sym, Sym)>,
    /// `minValuesPolicy: BestEffort` lowered a `minValues` to what the
    /// instance types can meet (`karpenter.sh/nodeclaim-min-values-relaxed`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub min_values_relaxed: bool,
    /// Set when the NodeClaim cannot be launched as planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A pod placed on an existing or in-flight node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub pod: PodKey,
    pub node: Sym,
    /// False for a node still launching.
    pub initialized: bool,
}

/// A pod no node can take, and why, per NodePool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unschedulable {
    pub pod: PodKey,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub node_claims: Vec<NodeClaimPlan>,
    pub bindings: Vec<Binding>,
    pub unschedulable: Vec<Unschedulable>,
    /// Preferences dropped so pods could schedule.
    pub relaxed: Vec<(PodKey, Vec<String>)>,
}

impl Plan {
    /// Pods the plan places, on any node.
    pub fn scheduled(&self) -> usize {
        self.bindings.len() + self.node_claims.iter().map(|c| c.pods.len()).sum::<usize>()
    }

    /// The NodeClaim or node `pod` goes to.
    pub fn placement(&self, pod: &PodKey) -> Option<Placement<'_>> {
        if let Some(b) = self.bindings.iter().find(|b| b.pod == *pod) {
            return Some(Placement::Node(b.node));
        }
        self.node_claims
            .iter()
            .find(|c| c.pods.contains(pod))
            .map(Placement::NodeClaim)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    Node(Sym),
    NodeClaim(&'a NodeClaimPlan),
}

/// The labels a NodeClaim's `requirements` give its node (see
/// [`NodeClaimPlan::labels`]). Well-known keys the launch fills in from the
/// instance type and offering, so only a single allowed value is copied.
fn labels(requirements: &Requirements, well_known: WellKnown<'_>) -> Vec<(Sym, Sym)> {
    requirements
        .iter()
        .filter_map(|r| match r.single_value() {
            Some(v) => Some((r.key, v)),
            None if !well_known.contains(r.key) => r.any().map(|v| (r.key, v)),
            None => None,
        })
        .collect()
}

/// `price_cap`: keep only offerings cheaper than this (what-if solves that
/// look for a cheaper replacement need no others).
pub(super) fn build(s: Scheduler<'_>, price_cap: Option<f64>) -> Plan {
    let keys = s.types.keys;
    let max = s.snapshot.settings.max_instance_types;
    let best_effort = s.snapshot.settings.min_values_policy == MinValuesPolicy::BestEffort;
    let mut plan = Plan::default();
    for claim in &s.claims {
        let template = &s.templates[claim.template];
        // Cheapest first, as Karpenter orders before truncating; equal
        // prices by name (its rank among the catalog's names).
        let mut ordered: Vec<(u64, u32, u32)> = claim
            .types
            .iter()
            .map(|&t| {
                let it = &s.types.list[t as usize];
                (it.cheapest(&claim.requirements, &keys), it.name_rank, t)
            })
            .filter(|o| price_cap.is_none_or(|cap| o.0 < cap))
            .map(|(price, name, t)| (price_key(price), name, t))
            .collect();
        ordered.sort_unstable();
        ordered.truncate(max);
        let kept: Vec<u32> = ordered.iter().map(|o| o.2).collect();
        let mut requirements = claim.requirements.clone();
        let mut relaxed = claim.min_values_relaxed;
        let error = match check_min_values(&requirements, &kept, &s.types) {
            Ok(()) => None,
            Err(_) if best_effort => {
                relaxed |= relax_min_values_to(&mut requirements, &kept, &s.types);
                None
            }
            Err(e) => Some(format!(
                "after keeping the {max} cheapest instance types: {e}"
            )),
        };
        let zone = requirements.get(keys.zone);
        let ct = requirements.get(keys.capacity_type);
        // By price, type name and zone: the catalog ranks its offerings so.
        let wanted = |o: &CompiledOffering| {
            o.available
                && price_cap.is_none_or(|cap| o.price < cap)
                && zone.is_none_or(|r| r.has(o.zone))
                && ct.is_none_or(|r| r.has(o.capacity_label))
        };
        let ranks: Vec<u32> = if kept.len() * 4 >= s.types.list.len() {
            // Most of the catalog: walking it in rank order beats sorting.
            let mut keep = vec![false; s.types.list.len()];
            for &t in &kept {
                keep[t as usize] = true;
            }
            s.types
                .by_rank
                .iter()
                .enumerate()
                .filter(|&(_, &(t, o))| {
                    keep[t as usize] && wanted(&s.types.list[t as usize].offerings[o as usize])
                })
                .map(|(rank, _)| rank as u32)
                .collect()
        } else {
            let mut ranks: Vec<u32> = kept
                .iter()
                .flat_map(|&t| s.types.list[t as usize].offerings.iter())
                .filter(|o| wanted(o))
                .map(|o| o.rank)
                .collect();
            ranks.sort_unstable();
            ranks
        };
        let offerings: Vec<OfferingRef> = ranks
            .into_iter()
            .map(|rank| {
                let (t, o) = s.types.by_rank[rank as usize];
                let it = &s.types.list[t as usize];
                let o = &it.offerings[o as usize];
                OfferingRef {
                    instance_type: it.name,
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                    price: o.price,
                }
            })
            .collect();
        requirements.remove(keys.hostname);
        plan.node_claims.push(NodeClaimPlan {
            node_pool: template.name,
            node_class: template.node_class,
            hostname: claim.hostname,
            requirements: requirements.to_terms(),
            labels: labels(&requirements, s.types.well_known()),
            compiled: requirements,
            pods: claim.pods.iter().map(|&p| s.pods[p].pod.key()).collect(),
            requests: claim.requests.clone(),
            instance_types: kept
                .iter()
                .map(|&t| s.types.list[t as usize].name)
                .collect(),
            offerings,
            min_values_relaxed: relaxed,
            error,
        });
    }
    for (p, place) in s.placed.iter().enumerate() {
        let p = PodIndex(p);
        match place {
            Some(Place::Existing(e)) => {
                let node = s.existing(*e);
                plan.bindings.push(Binding {
                    pod: s.pods[p].pod.key(),
                    node: node.name,
                    initialized: node.initialized,
                });
            }
            Some(Place::Claim) => {}
            None => {
                let reason = s
                    .invalid
                    .iter()
                    .find(|(i, _)| *i == p)
                    .map(|(_, e)| format!("invalid node affinity: {e}"))
                    .or_else(|| s.errors[p].clone())
                    .unwrap_or_else(|| "no node or NodePool could take it".into());
                plan.unschedulable.push(Unschedulable {
                    pod: s.pods[p].pod.key(),
                    reason,
                });
            }
        }
        if !s.pods[p].relaxations.is_empty() && place.is_some() {
            plan.relaxed
                .push((s.pods[p].pod.key(), s.pods[p].relaxations.clone()));
        }
    }
    plan.bindings.sort_by_key(|b| b.pod);
    plan.unschedulable.sort_by_key(|u| u.pod);
    plan.relaxed.sort_by_key(|r| r.0);
    plan
}
