//! `dovetail sim` on scenarios where nothing can ever fit: the run ends, and
//! says which pods never ran and why, naming the NodePool and the
//! requirement or resource that ruled them out. Each run is bounded by a
//! memory cap and a timeout.

use std::path::Path;
use std::time::Duration;

use dovetail_tests::bounded::{self, Bounded, Caps};

const CAPS: Caps = Caps {
    memory_mib: 1024,
    timeout: Duration::from_secs(60),
};

/// A 10-minute scenario: one NodePool with `requirements` (a YAML list
/// item) and `replicas` pods of `workload` (a flow mapping's inner fields).
fn scenario(requirements: &str, replicas: usize, workload: &str) -> String {
    scenario_for("10m", requirements, replicas, workload)
}

fn scenario_for(duration: &str, requirements: &str, replicas: usize, workload: &str) -> String {
    format!(
        r#"seed: 7
duration: {duration}
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: {{ name: general }}
    spec:
      template:
        spec:
          requirements:
            - {{ key: karpenter.sh/capacity-type, operator: In, values: [on-demand] }}
            - {requirements}
workloads:
  - {{ deployment: web, replicas: {replicas}, {workload} }}
"#
    )
}

/// Runs `dovetail sim` on `text`, with `--json`; the run and its JSON report.
fn sim(dir: &Path, text: &str) -> (Bounded, serde_json::Value) {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    let json = dir.join("report.json");
    let run = bounded::run(
        Path::new(env!("CARGO_BIN_EXE_dovetail")),
        &[
            "sim",
            path.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        None,
        CAPS,
    );
    run.expect_code(0);
    let report = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("{}: {e}; {run:#?}", json.display()));
    (run, serde_json::from_str(&report).unwrap())
}

/// What a user sees when the 30 pods of `web` never ran because of
/// `cause`: the headline, the table's row, the section naming the NodePool,
/// and the same in the JSON report.
fn expect_never_ran(dir: &Path, text: &str, cause: &str) -> serde_json::Value {
    let (run, report) = sim(dir, text);
    let out = &run.stdout;
    assert_eq!(
        out.lines().nth(1),
        Some("30 pods never ran: see unschedulable pods below"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods never ran ") && l.ends_with(" 30")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("pending max (s) ") && l.ends_with(" 600")),
        "pods waited the whole run: {out}"
    );
    assert!(
        out.contains(
            "\nunschedulable pods (30 never ran):\n  Deployment default/web: 30 pods, 30 never ran, 00:00:01 to "
        ),
        "{out}"
    );
    assert!(out.contains("NodePool `general`"), "{out}");
    assert!(out.contains(cause), "{out}");

    let t = &report["totals"];
    assert_eq!(t["pods_never_ran"], 30, "{t}");
    assert_eq!(t["pending_at_end"], 30, "{t}");
    assert_eq!(t["pending_max_seconds"], 600.0, "{t}");
    assert_eq!(t["nodes_launched"], 0, "{t}");
    let u = &report["unschedulable"];
    assert_eq!(u.as_array().map(Vec::len), Some(1), "{u}");
    assert_eq!(u[0]["kind"], "Deployment");
    assert_eq!(u[0]["namespace"], "default");
    assert_eq!(u[0]["name"], "web");
    assert_eq!(u[0]["pods"], 30);
    assert_eq!(u[0]["never_ran"], 30);
    let reason = u[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("NodePool `general`") && reason.contains(cause),
        "{reason}"
    );
    report
}

#[test]
fn contradictory_requirements_say_which_requirement_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    expect_never_ran(
        dir.path(),
        &scenario(
            "{ key: kubernetes.io/arch, operator: In, values: [amd64] }",
            30,
            "cpu: 500m, memory: 1Gi, nodeSelector: { kubernetes.io/arch: arm64 }",
        ),
        "incompatible requirements: `kubernetes.io/arch In [arm64]` conflicts with `kubernetes.io/arch In [amd64]`",
    );
}

#[test]
fn an_instance_type_that_does_not_exist_is_named() {
    let dir = tempfile::tempdir().unwrap();
    expect_never_ran(
        dir.path(),
        &scenario(
            "{ key: node.kubernetes.io/instance-type, operator: In, values: [m5.huge] }",
            30,
            "cpu: 500m, memory: 1Gi",
        ),
        "node.kubernetes.io/instance-type In [m5.huge]) leave no instance type with an available offering",
    );
}

#[test]
fn unmeetable_min_values_say_how_many_were_needed() {
    let dir = tempfile::tempdir().unwrap();
    expect_never_ran(
        dir.path(),
        &scenario(
            "{ key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, m9x, m9y], minValues: 3 }",
            30,
            "cpu: 500m, memory: 1Gi",
        ),
        "minValues: `karpenter.k8s.aws/instance-family` needs at least 3 distinct values but the fitting instance types have 1",
    );
}

#[test]
fn a_pod_larger_than_any_instance_says_what_the_largest_has() {
    let dir = tempfile::tempdir().unwrap();
    let first = expect_never_ran(
        dir.path(),
        &scenario(
            "{ key: karpenter.k8s.aws/instance-category, operator: In, values: [m] }",
            30,
            r#"cpu: "5000", memory: 1Gi"#,
        ),
        "no instance type has room for cpu 5000",
    );
    // The same run again gives the same report, apart from wall time.
    let again = expect_never_ran(
        dir.path(),
        &scenario(
            "{ key: karpenter.k8s.aws/instance-category, operator: In, values: [m] }",
            30,
            r#"cpu: "5000", memory: 1Gi"#,
        ),
        "no instance type has room for cpu 5000",
    );
    let without_wall = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(without_wall(first), without_wall(again));
}

#[test]
fn ten_thousand_identical_pods_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Two minutes: a dozen provisioning rounds, each finding no place for
    // any of them.
    let (run, report) = sim(
        dir.path(),
        &scenario_for(
            "2m",
            "{ key: kubernetes.io/arch, operator: In, values: [amd64] }",
            10_000,
            "cpu: 100m, memory: 128Mi, nodeSelector: { kubernetes.io/arch: arm64 }",
        ),
    );
    let out = &run.stdout;
    assert_eq!(
        out.lines().nth(1),
        Some("10000 pods never ran: see unschedulable pods below"),
        "{out}"
    );
    assert_eq!(
        out.matches("Deployment default/web").count(),
        1,
        "one line for the workload: {out}"
    );
    assert!(out.len() < 4_000, "{} bytes: {out}", out.len());
    let u = report["unschedulable"].as_array().unwrap();
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(
        (u[0]["pods"].as_u64(), u[0]["never_ran"].as_u64()),
        (Some(10_000), Some(10_000))
    );
}
