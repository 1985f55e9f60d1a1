//! Moves between the generated WIT types and the core's structs. The shapes
//! are identical, so this only moves vectors; nothing is copied row by row.

use crate::bindings::dovetail::policy::types as w;
use dovetail_core::policy::types as c;

fn dictionary(d: w::Dictionary) -> c::Dictionary {
    c::Dictionary {
        text: d.text,
        ends: d.ends,
    }
}

fn dictionaries(d: w::Dictionaries) -> c::Dictionaries {
    c::Dictionaries {
        instance_types: dictionary(d.instance_types),
        families: dictionary(d.families),
        categories: dictionary(d.categories),
        zones: dictionary(d.zones),
        architectures: dictionary(d.architectures),
        node_pools: dictionary(d.node_pools),
        type_family: d.type_family,
        type_category: d.type_category,
        type_architecture: d.type_architecture,
    }
}

fn attribute(a: w::Attribute) -> c::Attribute {
    match a {
        w::Attribute::InstanceType => c::Attribute::InstanceType,
        w::Attribute::Family => c::Attribute::Family,
        w::Attribute::Category => c::Attribute::Category,
        w::Attribute::Zone => c::Attribute::Zone,
        w::Attribute::CapacityType => c::Attribute::CapacityType,
        w::Attribute::Architecture => c::Attribute::Architecture,
    }
}

pub fn selection_request(r: w::SelectionRequest) -> c::SelectionRequest {
    let o = r.offerings;
    c::SelectionRequest {
        now_ms: r.now_ms,
        seed: r.seed,
        dictionaries: dictionaries(r.dictionaries),
        offerings: c::OfferingTable {
            instance_type: o.instance_type,
            vcpu: o.vcpu,
            memory_mib: o.memory_mib,
            gpus: o.gpus,
            alloc_cpu_milli: o.alloc_cpu_milli,
            alloc_memory_mib: o.alloc_memory_mib,
            alloc_pods: o.alloc_pods,
            zone: o.zone,
            capacity_type: o.capacity_type,
            price_per_hour: o.price_per_hour,
            available: o.available,
        },
        requests: r
            .requests
            .into_iter()
            .map(|l| c::LaunchRequest {
                node_pool: l.node_pool,
                demand: c::Demand {
                    cpu_milli: l.demand.cpu_milli,
                    memory_mib: l.demand.memory_mib,
                    pods: l.demand.pods,
                    gpus: l.demand.gpus,
                },
                compatible: l.compatible,
                min_values: l
                    .min_values
                    .into_iter()
                    .map(|m| c::MinValues {
                        attribute: attribute(m.attribute),
                        min: m.min,
                    })
                    .collect(),
                picks: l.picks,
            })
            .collect(),
    }
}

pub fn policy_error(e: c::PolicyError) -> w::PolicyError {
    w::PolicyError {
        kind: match e.kind {
            c::ErrorKind::InvalidInput => w::ErrorKind::InvalidInput,
            c::ErrorKind::NoAcceptableOffering => w::ErrorKind::NoAcceptableOffering,
            c::ErrorKind::Unsatisfiable => w::ErrorKind::Unsatisfiable,
            c::ErrorKind::Internal => w::ErrorKind::Internal,
        },
        message: e.message,
    }
}

pub fn selection(s: c::Selection) -> Vec<Result<Vec<u32>, w::PolicyError>> {
    s.into_iter().map(|r| r.map_err(policy_error)).collect()
}

pub fn consolidation_context(x: w::ConsolidationContext) -> c::ConsolidationContext {
    let t = x.candidates;
    c::ConsolidationContext {
        now_ms: x.now_ms,
        seed: x.seed,
        dictionaries: dictionaries(x.dictionaries),
        node_names: dictionary(x.node_names),
        candidates: c::CandidateTable {
            node: t.node,
            node_pool: t.node_pool,
            instance_type: t.instance_type,
            capacity_type: t.capacity_type,
            zone: t.zone,
            price_per_hour: t.price_per_hour,
            age_seconds: t.age_seconds,
            expire_after_seconds: t.expire_after_seconds,
            cpu_utilisation: t.cpu_utilisation,
            memory_utilisation: t.memory_utilisation,
            pods: t.pods,
            disruption_cost: t.disruption_cost,
            reason: t.reason,
        },
        node_pools: c::NodePoolStats {
            nodes: x.node_pools.nodes,
            cost_per_hour: x.node_pools.cost_per_hour,
            disruption_cost: x.node_pools.disruption_cost,
        },
    }
}

pub fn moves(m: w::MoveTable) -> Result<Vec<c::ProposedMove>, w::PolicyError> {
    c::MoveTable {
        reason: m.reason,
        removed: m.removed,
        removed_ends: m.removed_ends,
        replaces: m.replaces,
        replacement_price_per_hour: m.replacement_price_per_hour,
        savings_per_hour: m.savings_per_hour,
        pods_evicted: m.pods_evicted,
        disruption_cost: m.disruption_cost,
    }
    .to_moves()
    .ok_or_else(|| w::PolicyError {
        kind: w::ErrorKind::InvalidInput,
        message: "move table columns do not line up".into(),
    })
}

pub fn verdicts(v: Vec<c::Verdict>) -> Vec<w::Verdict> {
    v.into_iter()
        .map(|v| w::Verdict {
            approve: v.approve,
            reason: v.reason,
        })
        .collect()
}
