use std::time::{Duration, Instant};
use dovetail_core::builders::{aws_catalog, node_pool, pod};
use dovetail_core::labels;
use dovetail_core::model::ConsolidationPolicy;
use dovetail_core::policy::Builtin;
use dovetail_core::requirements::Operator;
use dovetail_core::scheduler::Snapshot;
use dovetail_sim::*;

fn main() {
    let hours: u64 = std::env::args().nth(1).map_or(24, |a| a.parse().unwrap());
    let scale: usize = std::env::args().nth(2).map_or(1, |a| a.parse().unwrap());
    let mut cluster = Snapshot::new(aws_catalog());
    cluster.node_pools.push(
        node_pool("default")
            .require(labels::INSTANCE_CATEGORY, Operator::In, &["c", "m", "r"])
            .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand", "spot"])
            .require("karpenter.k8s.aws/instance-cpu", Operator::Lt, &["17"])
            .consolidation_policy(ConsolidationPolicy::WhenEmptyOrUnderutilized)
            .consolidate_after(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut s = Scenario::new(cluster, hours * 3_600_000, 7);
    for (name, cpu, mem, min, max) in [("web", "500m", "1Gi", 2000, 12000), ("api", "1", "2Gi", 1000, 6000), ("worker", "2", "4Gi", 300, 2000)] {
        s.deployments.push(Deployment { name: name.into(), replicas: 0, template: pod(name).cpu(cpu).memory(mem).label("app", name).build(),
            diurnal: Some(Diurnal { min: min / scale, max: max / scale, peak_at_ms: 16 * 3_600_000, period_ms: 24 * 3_600_000, step_ms: 300_000 }) });
    }
    let t = Instant::now();
    let mut last = Instant::now();
    let r = Simulation::new(s, &Builtin, &Builtin).run_with_progress(&mut |_| {}, &mut |f| {
        if last.elapsed().as_secs_f64() > 5.0 { eprintln!("{:.1}% at {:.1}s", f * 100.0, t.elapsed().as_secs_f64()); last = Instant::now(); }
    });
    println!("wall {:.1}s peak {} launched {} terminated {} cost {:.2} evicted {} disruptions {} p95 {}", t.elapsed().as_secs_f64(), r.totals.peak_nodes, r.totals.nodes_launched, r.totals.nodes_terminated, r.totals.cost_usd, r.totals.pods_evicted, r.totals.disruptions, r.totals.pending_p95_seconds);
}
