//! A run where nothing can ever fit says why: the report names the NodePool
//! and what ruled the pods out, one line per workload and reason, and the
//! pending figures count the pods that never ran.

use dovetail_core::policy::Builtin;
use dovetail_sim::text::{self, Run};
use dovetail_sim::{Report, Scenario, Simulation, compare_html, parse_scenario};

const MINUTES: u64 = 10;

/// A 10-minute run of one NodePool with `requirements` and 30 pods of
/// `workload` (a YAML flow mapping's inner fields).
fn scenario(requirements: &str, workload: &str) -> Scenario {
    let text = format!(
        r#"
seed: 7
duration: {MINUTES}m
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: {{ name: general }}
    spec:
      template:
        spec:
          requirements:
{requirements}
            - {{ key: karpenter.sh/capacity-type, operator: In, values: [on-demand] }}
workloads:
  - {{ deployment: web, replicas: 30, {workload} }}
"#
    );
    parse_scenario(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn run(scenario: Scenario) -> Report {
    Simulation::new(scenario, &Builtin, &Builtin).run(&mut |_| {})
}

/// What every case shares: nothing launched, one record for the 30 pods
/// naming the NodePool and `cause`, and the pods counted as pending for the
/// whole run; then the text report's headline and section.
fn assert_never_ran(report: &Report, scenario: &Scenario, cause: &str) {
    assert_eq!(report.totals.nodes_launched, 0);
    assert_eq!(report.unschedulable.len(), 1, "{:#?}", report.unschedulable);
    let u = &report.unschedulable[0];
    assert_eq!(u.workload(), "Deployment default/web");
    assert_eq!((u.pods, u.never_ran), (30, 30), "{u:#?}");
    assert!(u.reason.contains("NodePool `general`"), "{}", u.reason);
    assert!(u.reason.contains(cause), "{:?} lacks {cause:?}", u.reason);
    assert!(u.first_at_seconds < 30, "{u:#?}");
    assert!(
        u.last_at_seconds > (MINUTES - 1) * 60,
        "retried until the end: {u:#?}"
    );

    let t = &report.totals;
    assert_eq!((t.pending_at_end, t.pods_never_ran), (30, 30));
    let whole_run = (MINUTES * 60) as f64;
    assert_eq!(t.pending_max_seconds, whole_run);
    assert_eq!(t.pending_p50_seconds, whole_run);
    assert_eq!(t.all_running_after_seconds, None);

    let json = serde_json::to_value(report).unwrap();
    assert_eq!(json["totals"]["pods_never_ran"], 30);
    assert_eq!(json["unschedulable"][0]["never_ran"], 30);
    assert_eq!(json["unschedulable"][0]["kind"], "Deployment");

    let html = report.to_html("case");
    for part in [
        "<h2>Unschedulable pods <span class=\"muted\">(30 never ran;",
        "<div class=\"k\">pods never ran</div><div class=\"v\">30</div>",
        "Deployment default/web",
        "NodePool `general`: ",
        cause,
    ] {
        assert!(html.contains(part), "the page lacks {part:?}");
    }

    let run = Run {
        label: "scenario".into(),
        report: report.clone(),
        deciders: Some(["built-in".into(), "built-in".into()]),
        notes: Vec::new(),
    };
    let out = text::report("case.yaml", scenario, std::slice::from_ref(&run));
    let headline = out.lines().nth(1).unwrap_or_default();
    assert_eq!(
        headline, "30 pods never ran: see unschedulable pods below",
        "{out}"
    );
    let row = |name: &str, value: &str| {
        out.lines()
            .any(|l| l.starts_with(name) && l.ends_with(&format!("  {value}")))
    };
    assert!(row("pods never ran", "30"), "{out}");
    assert!(row("pending max (s)", "600"), "{out}");
    assert!(
        out.contains(
            "\nunschedulable pods (30 never ran):\n  Deployment default/web: 30 pods, 30 never ran"
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("    ") && l.contains("NodePool `general`: ")),
        "{out}"
    );
    assert!(out.contains(cause), "{out}");

    // Side by side, each run says so and has its own section.
    let other = Run {
        label: "other".into(),
        ..run.clone()
    };
    let both = [run, other];
    let out = text::report("case.yaml", scenario, &both);
    assert!(
        out.contains(
            "\nscenario: 30 pods never ran: see unschedulable pods below\n\
             other: 30 pods never ran: see unschedulable pods below\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\nunschedulable pods in `other` (30 never ran):\n"),
        "{out}"
    );
    let page = compare_html("case", &both);
    assert!(
        page.contains("<th>run</th><th>workload</th>"),
        "a run column"
    );
    assert!(page.contains("(60 never ran;"), "both runs' pods");
}

#[test]
fn contradictory_requirements_name_the_node_pool_and_the_conflict() {
    let s = scenario(
        "            - { key: kubernetes.io/arch, operator: In, values: [amd64] }",
        r#"cpu: 500m, memory: 1Gi, nodeSelector: { kubernetes.io/arch: arm64 }"#,
    );
    let r = run(s.clone());
    assert_never_ran(&r, &s, "incompatible requirements");
    let reason = &r.unschedulable[0].reason;
    assert!(
        reason.contains("arm64") && reason.contains("amd64"),
        "{reason}"
    );
}

#[test]
fn an_instance_type_that_does_not_exist_leaves_the_node_pool_nothing_to_launch() {
    let s = scenario(
        "            - { key: node.kubernetes.io/instance-type, operator: In, values: [m5.huge] }",
        "cpu: 500m, memory: 1Gi",
    );
    let r = run(s.clone());
    assert_never_ran(&r, &s, "leave no instance type");
    assert!(
        r.unschedulable[0].reason.contains("m5.huge"),
        "{:?}",
        r.unschedulable
    );
}

#[test]
fn unmeetable_min_values_say_how_many_were_wanted() {
    let s = scenario(
        "            - { key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, m9x, m9y], minValues: 3 }",
        "cpu: 500m, memory: 1Gi",
    );
    let r = run(s.clone());
    assert_never_ran(&r, &s, "minValues");
    assert!(
        r.unschedulable[0]
            .reason
            .contains("needs at least 3 distinct values"),
        "{:?}",
        r.unschedulable
    );
}

#[test]
fn a_pod_larger_than_any_instance_names_the_largest() {
    let s = scenario(
        "            - { key: karpenter.k8s.aws/instance-category, operator: In, values: [m] }",
        "cpu: \"5000\", memory: 1Gi",
    );
    let r = run(s.clone());
    assert_never_ran(&r, &s, "no instance type has room for");
    assert!(
        r.unschedulable[0].reason.contains("the largest has"),
        "{:?}",
        r.unschedulable
    );
}

#[test]
fn pods_that_wait_and_then_run_are_not_counted_as_never_ran() {
    let s = scenario(
        "            - { key: karpenter.k8s.aws/instance-category, operator: In, values: [m] }",
        "cpu: 500m, memory: 1Gi",
    );
    let r = run(s.clone());
    assert!(r.unschedulable.is_empty(), "{:?}", r.unschedulable);
    assert_eq!((r.totals.pending_at_end, r.totals.pods_never_ran), (0, 0));
    assert!(r.totals.pending_max_seconds > 0.0 && r.totals.pending_max_seconds < 120.0);
    let json = serde_json::to_value(&r).unwrap();
    assert!(
        json.get("unschedulable").is_none(),
        "additive: absent when empty"
    );
    let out = text::summary(&Run {
        label: "scenario".into(),
        report: r,
        deciders: Some(["built-in".into(), "built-in".into()]),
        notes: Vec::new(),
    });
    assert!(!out.contains("never ran"), "{out}");
}
