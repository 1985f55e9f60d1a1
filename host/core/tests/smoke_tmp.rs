use dovetail_core::scheduler::{fixtures, solve};
use std::time::Instant;

#[test]
fn bench_shape() {
    for n in [100usize, 1000, 5000] {
        let s = fixtures::benchmark_snapshot(400);
        let pods = fixtures::diverse_pods(n, 42);
        let t = Instant::now();
        let plan = solve(&s, &pods);
        eprintln!(
            "{n} pods -> {} nodes, {} unschedulable, {:?}",
            plan.node_claims.len(),
            plan.unschedulable.len(),
            t.elapsed()
        );
        if let Some(u) = plan.unschedulable.first() {
            eprintln!("{}: {}", u.pod, u.reason);
        }
    }
}
