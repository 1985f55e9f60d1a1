//! Real Wasm policies deciding inside the simulator, in fuel mode.

use std::sync::Arc;

use dovetail_core::policy::Builtin;
use dovetail_core::policy::types::Decision;
use dovetail_policy::{LoadedPolicy, PolicyHost, Runtime, RuntimeConfig};
use dovetail_sim::{Report, Simulation, parse_scenario};
use dovetail_tests::{example, guest_bytes};

fn scorer(package: &str, config: &str) -> PolicyHost {
    let rt = Runtime::new(RuntimeConfig::deterministic(10_000_000_000)).expect("runtime");
    let p = LoadedPolicy::load(&rt, package, &guest_bytes(package), Some(config))
        .unwrap_or_else(|e| panic!("{package} loads: {e}"));
    let host = PolicyHost::new(rt);
    host.install(Decision::ConsolidationScoring, Arc::new(p))
        .unwrap_or_else(|e| panic!("{package} installs: {e}"));
    host
}

fn start_state() -> dovetail_sim::Scenario {
    let text = std::fs::read_to_string(example("scenarios/start-state.yaml")).unwrap();
    parse_scenario(&text).unwrap()
}

fn consolidations(r: &Report) -> Vec<&str> {
    r.decisions
        .iter()
        .filter(|d| d.kind.contains("Consolidation") || d.kind == "Emptiness")
        .map(|d| d.kind.as_str())
        .collect()
}

#[test]
fn savings_threshold_changes_the_number_of_consolidation_moves() {
    let builtin = Simulation::new(start_state(), &Builtin, &Builtin).run(&mut |_| {});
    let host = scorer(
        "dovetail-policy-savings-threshold",
        r#"{"min-savings-percent": 95}"#,
    );
    let strict = Simulation::new(start_state(), &Builtin, &host).run(&mut |_| {});
    let (a, b) = (consolidations(&builtin), consolidations(&strict));
    assert!(
        b.len() < a.len(),
        "built-in {a:?} vs savings-threshold 95% {b:?}"
    );
    // Deletions save everything and still pass; the replacements the
    // built-in made save less than 95 % and do not.
    let replaced = |r: &Report| {
        r.decisions
            .iter()
            .filter(|d| d.kind != "provisioning" && !d.launched.is_empty())
            .count()
    };
    assert!(replaced(&builtin) > 0, "{:#?}", builtin.decisions);
    assert_eq!(replaced(&strict), 0, "{:#?}", strict.decisions);
    assert!(
        strict
            .decisions
            .iter()
            .filter(|d| d.kind != "provisioning")
            .all(|d| d.decided_by.starts_with("savings-threshold")),
        "{:#?}",
        strict.decisions
    );
    assert_eq!(host.status(Decision::ConsolidationScoring).fallbacks, 0);
}

#[test]
fn a_wasm_policy_in_fuel_mode_gives_the_same_report_twice() {
    let run = || {
        let host = scorer("dovetail-policy-balanced", r#"{"k": 2}"#);
        let r = Simulation::new(start_state(), &Builtin, &host).run(&mut |_| {});
        serde_json::to_string(&r).unwrap()
    };
    assert_eq!(run(), run());
}
