//! A cluster to consolidate, for `dovetail bench consolidation` and tests:
//! `nodes` on-demand nodes of the AWS catalog, `pods` pods spread unevenly
//! over them so that some nodes are nearly empty and most are busy.

use crate::builders::{aws_catalog, node, node_pool, pod};
use crate::catalog::CapacityType;
use crate::labels;
use crate::rng::SplitMix;
use crate::scheduler::Snapshot;

const TYPES: [&str; 4] = ["m5.4xlarge", "m5.2xlarge", "c5.4xlarge", "r5.2xlarge"];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const CPU: [&str; 4] = ["100m", "200m", "300m", "500m"];
const MEMORY: [&str; 4] = ["128Mi", "256Mi", "512Mi", "1Gi"];

/// The snapshot and the time (Unix seconds) to run the pass at. Pods belong
/// to 50 deployments; a fifth of the deployments spread over zones.
pub fn consolidation_cluster(nodes: usize, pods: usize, seed: u64) -> (Snapshot, u64) {
    let now = 1_800_000_000;
    let catalog = aws_catalog();
    let mut snapshot = Snapshot::new(catalog.clone());
    snapshot.node_pools.push(
        node_pool("default")
            .require(
                labels::INSTANCE_CATEGORY,
                crate::requirements::Operator::In,
                &["c", "m", "r"],
            )
            .require(
                labels::CAPACITY_TYPE,
                crate::requirements::Operator::In,
                &["on-demand"],
            )
            .build(),
    );
    let mut rng = SplitMix::new(seed);
    let mut built = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let t = TYPES[i % TYPES.len()];
        let z = ZONES[i % ZONES.len()];
        let mut n = node(
            &catalog,
            &format!("node-{i:05}"),
            t,
            z,
            CapacityType::OnDemand,
        )
        .in_pool("default")
        .build();
        n.created_at = now - 86_400;
        n.last_pod_event = now - 3_600;
        built.push(n);
    }
    // Uneven fill: node i gets a share proportional to a random weight, so
    // some nodes end up with few pods and are worth consolidating.
    let weights: Vec<f64> = (0..nodes).map(|_| 0.2 + rng.next_f64()).collect();
    let total: f64 = weights.iter().sum();
    let mut placed = 0usize;
    for (i, w) in weights.iter().enumerate() {
        let want = if i + 1 == nodes {
            pods - placed
        } else {
            ((w / total) * pods as f64).round() as usize
        }
        .min(pods - placed);
        for _ in 0..want {
            let d = (rng.next_u64() % 50) as usize;
            let mut b = pod(&format!("app-{d}-{placed}"))
                .cpu(CPU[d % CPU.len()])
                .memory(MEMORY[(d / 4) % MEMORY.len()])
                .label("app", &format!("app-{d}"));
            if d.is_multiple_of(5) {
                let app = format!("app-{d}");
                b = b.spread_anyway(labels::ZONE, 1, &[("app", app.as_str())]);
            }
            let mut p = b.build();
            p.created = placed as u64;
            p.started_at = now - 7_200;
            let n = &mut built[i];
            // Keep the fixture honest: never overfill a node.
            let used: i64 = n.pods.iter().map(|p| p.requests.cpu).sum();
            if used + p.requests.cpu > n.allocatable.cpu
                || n.pods.len() as i64 + 1 > n.allocatable.pods
            {
                break;
            }
            n.pods.push(std::sync::Arc::new(p));
            placed += 1;
        }
    }
    snapshot.nodes = built;
    (snapshot, now)
}
