//! The shape of Karpenter's scheduling benchmark, for `dovetail bench
//! scheduling` and tests: one unconstrained NodePool, `n` synthetic instance
//! types, and "diverse" pods.

use std::sync::Arc;

use crate::builders::{node_pool, pod};
use crate::catalog::Catalog;
use crate::labels;
use crate::model::Pod;
use crate::rng::SplitMix;

use super::Snapshot;

/// One NodePool with limits far above any benchmark size, over
/// `instance_types` synthetic types.
pub fn benchmark_snapshot(instance_types: usize) -> Snapshot {
    let mut s = Snapshot::new(Arc::new(Catalog::synthetic_benchmark(instance_types)));
    s.node_pools.push(
        node_pool("default")
            .limit("cpu", "10000000")
            .limit("memory", "10000000Gi")
            .build(),
    );
    s
}

const CPU: [&str; 5] = ["100m", "250m", "500m", "1", "1500m"];
const MEMORY: [&str; 6] = ["100Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi"];
const VALUES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

/// `count` pods: a fifth each generic, zone spread, hostname spread, zone
/// self-affinity and hostname self-anti-affinity; the remainder generic.
pub fn diverse_pods(count: usize, seed: u64) -> Vec<Pod> {
    let mut rng = SplitMix::new(seed);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let fifth = count / 5;
    let mut pods = Vec::with_capacity(count);
    let mut push = |kind: usize, i: usize, pick: &mut dyn FnMut(usize) -> usize| {
        let cpu = CPU[pick(CPU.len())];
        let memory = MEMORY[pick(MEMORY.len())];
        let value = VALUES[pick(VALUES.len())];
        let b = pod(&format!("bench-{kind}-{i}")).cpu(cpu).memory(memory);
        let b = match kind {
            0 => b.label("my-label", value),
            1 | 2 => {
                let key = if kind == 1 {
                    labels::ZONE
                } else {
                    labels::HOSTNAME
                };
                let selector = VALUES[pick(VALUES.len())];
                b.label("my-label", value)
                    .spread(key, 1, &[("my-label", selector)])
            }
            3 => b
                .label("my-affinity", value)
                .affinity(labels::ZONE, &[("my-affinity", value)]),
            _ => b
                .label("app", "nginx")
                .anti_affinity(labels::HOSTNAME, &[("app", "nginx")]),
        };
        let mut p = b.build();
        p.created = (kind * count + i) as u64;
        pods.push(p);
    };
    for kind in 0..5 {
        for i in 0..fifth {
            push(kind, i, &mut pick);
        }
    }
    for i in 0..count - 5 * fifth {
        push(0, fifth + i, &mut pick);
    }
    pods
}
