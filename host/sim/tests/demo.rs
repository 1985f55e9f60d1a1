//! The demo scenario through the real engines.

use dovetail_core::policy::Builtin;
use dovetail_sim::{SimEvent, Simulation, demo_scenario};

fn run(seed: u64) -> (dovetail_sim::Report, Vec<SimEvent>) {
    let mut events = Vec::new();
    let report = Simulation::new(demo_scenario(seed), &Builtin, &Builtin)
        .run(&mut |e| events.push(e.clone()));
    (report, events)
}

#[test]
fn fifty_pods_run_within_two_simulated_minutes() {
    let (report, _) = run(1);
    let after = report
        .totals
        .all_running_after_seconds
        .expect("every pod ran");
    assert!(after <= 120.0, "all pods ran after {after} s");
    assert!(report.totals.nodes_launched >= 1);
}

#[test]
fn scale_down_consolidates_under_used_nodes() {
    let (report, events) = run(1);
    let peak = report
        .timeline
        .iter()
        .map(|s| s.nodes_on_demand + s.nodes_spot)
        .max()
        .unwrap();
    let last = report.timeline.last().unwrap();
    assert!(
        report.totals.nodes_terminated > 0,
        "{:#?}",
        report.decisions
    );
    assert!(
        last.nodes_on_demand + last.nodes_spot < peak,
        "still {} nodes at the end, peak {peak}",
        last.nodes_on_demand + last.nodes_spot
    );
    assert_eq!(last.running_pods, 5);
    assert_eq!(last.pending_pods, 0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SimEvent::NodeDeleted { .. }))
    );
}

#[test]
fn same_seed_same_report() {
    let (a, _) = run(7);
    let (b, _) = run(7);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn the_replacement_is_ready_before_the_old_node_goes() {
    let (report, events) = run(1);
    let replaced = report
        .decisions
        .iter()
        .find(|d| d.kind == "SingleNodeConsolidation" && !d.launched.is_empty())
        .expect("a replacement");
    let old = replaced.nodes[0].as_str();
    let deleted = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeDeleted { at_ms, name, .. } if name.as_str() == old => Some(*at_ms),
            _ => None,
        })
        .expect("the old node goes");
    let launched_at = |e: &SimEvent| match e {
        SimEvent::NodeLaunched { at_ms, name, .. } => Some((*at_ms, *name)),
        _ => None,
    };
    let (_, new) = events
        .iter()
        .filter_map(launched_at)
        .rfind(|(t, _)| *t > 60_000)
        .expect("the replacement launched");
    let ready = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeReady { at_ms, name } if *name == new => Some(*at_ms),
            _ => None,
        })
        .expect("the replacement is Ready");
    assert!(
        ready <= deleted,
        "ready {ready} ms, old node deleted {deleted} ms"
    );
}
