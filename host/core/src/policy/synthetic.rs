//! Synthetic decision rounds of any size, generated from a seed: the smoke
//! requests ([`super::smoke`]) are small ones, and benchmarks and tests use
//! larger ones (through `policy::fixtures`, behind the `testing` feature).

use crate::rng::SplitMix;

use super::document::{DictionaryBuilder, InstanceTypeRef};
use super::types::{
    CandidateTable, ConsolidationContext, Demand, Dictionary, LaunchRequest, NodePoolStats,
    OfferingTable, ProposedMove, SelectionRequest, capacity, reason,
};

const FAMILIES: [(&str, &str); 8] = [
    ("m7i", "amd64"),
    ("m7g", "arm64"),
    ("c7i", "amd64"),
    ("c7g", "arm64"),
    ("r7i", "amd64"),
    ("r7g", "arm64"),
    ("m6a", "amd64"),
    ("c6a", "amd64"),
];
const SIZES: [(&str, u32); 6] = [
    ("large", 2),
    ("xlarge", 4),
    ("2xlarge", 8),
    ("4xlarge", 16),
    ("8xlarge", 32),
    ("12xlarge", 48),
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// A selection round over `offerings` rows (instance types × 3 zones ×
/// on-demand/spot), with `launches` launch requests of varied demand.
pub fn synthetic_selection(offerings: usize, launches: usize, seed: u64) -> SelectionRequest {
    let mut rng = SplitMix::new(seed);
    let mut dicts = DictionaryBuilder::default();
    let mut o = OfferingTable::default();
    let mut i = 0usize;
    while o.len() < offerings {
        let (family, arch) = FAMILIES[i % FAMILIES.len()];
        let (size, vcpu) = SIZES[(i / FAMILIES.len()) % SIZES.len()];
        let generation = i / (FAMILIES.len() * SIZES.len());
        let name = if generation == 0 {
            format!("{family}.{size}")
        } else {
            format!("{family}.{size}-g{generation}")
        };
        let memory_per_cpu: u64 = match &family[..1] {
            "c" => 2048,
            "r" => 8192,
            _ => 4096,
        };
        let it = dicts
            .instance_type(InstanceTypeRef {
                instance_type: &name,
                family: Some(family),
                category: Some(&family[..1]),
                architecture: Some(arch),
            })
            .expect("eight families, three categories and two architectures fit");
        let base = 0.0125 * f64::from(vcpu) * if arch == "arm64" { 0.85 } else { 1.0 }
            + memory_per_cpu as f64 / 4096.0 * 0.01 * f64::from(vcpu);
        for zone in ZONES {
            for cap in [capacity::ON_DEMAND, capacity::SPOT] {
                if o.len() >= offerings {
                    break;
                }
                let memory_mib = memory_per_cpu * u64::from(vcpu);
                o.instance_type.push(it);
                o.vcpu.push(vcpu);
                o.memory_mib.push(memory_mib);
                o.gpus.push(0);
                o.alloc_cpu_milli.push(u64::from(vcpu) * 1000 - 80);
                o.alloc_memory_mib.push(memory_mib * 925 / 1000 - 600);
                o.alloc_pods.push(if vcpu <= 2 { 29 } else { 58 });
                o.zone.push(dicts.zone(zone).expect("three zones"));
                o.capacity_type.push(cap);
                let price = if cap == capacity::SPOT {
                    base * (0.3 + 0.4 * rng.next_f64())
                } else {
                    base
                };
                o.price_per_hour.push((price * 1e4).round() / 1e4);
                o.available.push(rng.next_f64() > 0.02);
            }
        }
        i += 1;
    }
    let pool = dicts.node_pool("default").expect("one NodePool");
    let all: Vec<u32> = (0..o.len() as u32).collect();
    let requests = (0..launches)
        .map(|_| LaunchRequest {
            node_pool: pool,
            demand: Demand {
                cpu_milli: 250 + rng.next_u64() % 6000,
                memory_mib: 256 + rng.next_u64() % 12_000,
                pods: 1 + (rng.next_u64() % 20) as u32,
                gpus: 0,
            },
            compatible: all.clone(),
            min_values: Vec::new(),
            picks: 60,
        })
        .collect();
    SelectionRequest {
        now_ms: 1_767_225_600_000,
        seed,
        dictionaries: dicts.finish(),
        offerings: o,
        requests,
    }
}

/// A consolidation round over `nodes` candidates with one delete move per
/// candidate.
pub fn synthetic_consolidation(
    nodes: usize,
    seed: u64,
) -> (ConsolidationContext, Vec<ProposedMove>) {
    let sel = synthetic_selection(96, 0, seed);
    let mut rng = SplitMix::new(seed ^ 0xD1CE);
    let mut names = Dictionary::default();
    let mut c = CandidateTable::default();
    for n in 0..nodes {
        let row = (rng.next_u64() % sel.offerings.len() as u64) as usize;
        c.node
            .push(names.push(&format!("ip-10-0-{}-{}.ec2.internal", n / 250, n % 250)));
        c.node_pool.push(0);
        c.instance_type.push(sel.offerings.instance_type[row]);
        c.capacity_type.push(sel.offerings.capacity_type[row]);
        c.zone.push(sel.offerings.zone[row]);
        c.price_per_hour.push(sel.offerings.price_per_hour[row]);
        c.age_seconds.push(rng.next_u64() % (30 * 86_400));
        c.expire_after_seconds.push(30 * 86_400);
        let util = rng.next_f64() as f32;
        c.cpu_utilisation.push(util);
        c.memory_utilisation.push((util * 0.8).min(1.0));
        let pods = (rng.next_u64() % 30) as u32;
        c.pods.push(pods);
        c.disruption_cost.push(f64::from(pods));
        c.reason.push(if pods == 0 {
            reason::EMPTY
        } else {
            reason::UNDERUTILIZED
        });
    }
    let pools = NodePoolStats {
        nodes: vec![nodes as u32],
        cost_per_hour: vec![c.price_per_hour.iter().sum()],
        disruption_cost: vec![c.disruption_cost.iter().sum()],
    };
    let moves = (0..nodes)
        .map(|i| ProposedMove {
            reason: c.reason[i],
            removed: vec![i as u32],
            replacement_price_per_hour: (i % 2 == 1).then(|| c.price_per_hour[i] * 0.6),
            savings_per_hour: if i % 2 == 1 {
                c.price_per_hour[i] * 0.4
            } else {
                c.price_per_hour[i]
            },
            pods_evicted: c.pods[i],
            disruption_cost: c.disruption_cost[i],
        })
        .collect();
    (
        ConsolidationContext {
            now_ms: sel.now_ms,
            seed,
            dictionaries: sel.dictionaries,
            node_names: names,
            candidates: c,
            node_pools: pools,
        },
        moves,
    )
}
