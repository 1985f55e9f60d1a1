//! Scenario files: the example parses and runs like the built-in demo, and
//! a malformed one gets an error naming the field and the line.

use dovetail_core::policy::Builtin;
use dovetail_sim::{Simulation, parse_scenario};

fn example() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/demo.yaml"
    );
    std::fs::read_to_string(path).expect("example scenario")
}

#[test]
fn the_example_scenario_scales_up_and_consolidates() {
    let scenario = parse_scenario(&example()).unwrap();
    assert_eq!(scenario.cluster.node_pools.len(), 1);
    assert_eq!(scenario.deployments[0].replicas, 50);
    let report = Simulation::new(scenario, &Builtin, &Builtin).run(&mut |_| {});
    assert!(
        report
            .totals
            .all_running_after_seconds
            .is_some_and(|s| s <= 120.0)
    );
    assert!(report.totals.nodes_terminated > 0, "{:?}", report.decisions);
}

#[test]
fn malformed_scenarios_name_the_field_and_line() {
    let bad_type = example().replace("replicas: 50", "replicas: fifty");
    let line = bad_type
        .lines()
        .position(|l| l.contains("replicas: fifty"))
        .unwrap()
        + 1;
    let err = parse_scenario(&bad_type).unwrap_err().to_string();
    assert!(
        err.contains("workloads[0].replicas") && err.contains(&format!("line {line}")),
        "{err}"
    );

    let unknown = example().replace("    cpu: \"1\"", "    cpu: \"1\"\n    gpu: 1");
    let err = parse_scenario(&unknown).unwrap_err().to_string();
    assert!(
        err.contains("unknown field `gpu`") && err.contains("line"),
        "{err}"
    );

    let bad_req = example().replace(
        "operator: In\n              values: [\"c\", \"m\", \"r\"]",
        "operator: Gt\n              values: [\"c\"]",
    );
    let err = parse_scenario(&bad_req).unwrap_err().to_string();
    assert!(
        err.contains("nodePools[0].spec.template.spec.requirements[0]"),
        "{err}"
    );

    let bad_cron = example().replace(
        "        consolidateAfter: 30s",
        "        consolidateAfter: 30s\n        budgets:\n          - nodes: \"10%\"\n            schedule: \"61 * * * *\"\n            duration: 1h",
    );
    let err = parse_scenario(&bad_cron).unwrap_err().to_string();
    assert!(
        err.contains("nodePools[0]") && err.contains("schedule"),
        "{err}"
    );

    let bad_event = example().replace(
        "deployment: my-app\n      replicas: 5",
        "deployment: nope\n      replicas: 5",
    );
    let err = parse_scenario(&bad_event).unwrap_err().to_string();
    assert!(err.contains("events[0].scale.deployment"), "{err}");
}
