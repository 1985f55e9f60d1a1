//! The `dovetail policy` commands as an operator runs them.

use std::process::{Command, Output};

use dovetail_tests::{example, guest};

fn dovetail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(args)
        .output()
        .expect("run dovetail")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_prints_identity_of_a_good_policy() {
    let wasm = guest("dovetail-policy-default");
    let o = dovetail(&["policy", "validate", wasm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("valid: default 0.1.0"), "{text}");
    assert!(
        text.contains("world:       policy (instance-selection, consolidation-scoring)"),
        "{text}"
    );
    assert!(text.contains("digest:      sha256:"), "{text}");

    let o = dovetail(&["policy", "validate", "--json", wasm.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["world"], "policy");
    assert_eq!(v["contract"], "dovetail:policy@0.1.0");
}

#[test]
fn validate_refuses_a_bad_policy_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let o = dovetail(&["policy", "validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: policy `"), "{err}");
    assert!(err.contains("[load]") && err.contains("fix:"), "{err}");

    let wrong = guest("dovetail-guest-wrong-version");
    let o = dovetail(&["policy", "validate", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("0.2.0"), "{}", stderr(&o));
}

#[test]
fn validate_checks_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"min-savings-percent": 150}"#).unwrap();
    let wasm = guest("dovetail-policy-savings-threshold");
    let o = dovetail(&[
        "policy",
        "validate",
        wasm.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("[config]") && err.contains("`min-savings-percent`"),
        "{err}"
    );
}

#[test]
fn test_prints_the_decision_as_json() {
    let wasm = guest("dovetail-policy-default");
    let input = example("requests/selection.json");
    let o = dovetail(&[
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"], "default@0.1.0");
    assert_eq!(v["launches"].as_array().unwrap().len(), 3);
    assert_eq!(v["launches"][0]["picks"][0]["capacity_type"], "spot");

    let scorer = guest("dovetail-policy-savings-threshold");
    let input = example("requests/consolidation.json");
    let o = dovetail(&[
        "policy",
        "test",
        scorer.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"]["verdicts"][1]["approve"], false);
    assert!(
        v["result"]["verdicts"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("below the 20% threshold")
    );
}

#[test]
fn test_names_the_bad_field_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("r.json");
    std::fs::write(
        &req,
        r#"{"decision": "instance-selection", "offerings": [{"instance_type": "m7i.large", "vcpu": 2,
            "memory_mib": 8192, "zone": "us-east-1a", "capacity_type": "spot-ish", "price_per_hour": 0.1}],
            "requests": [{"node_pool": "default"}]}"#,
    )
    .unwrap();
    let wasm = guest("dovetail-policy-default");
    let o = dovetail(&[
        "policy",
        "test",
        wasm.to_str().unwrap(),
        "--input",
        req.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("offerings[0].capacity_type"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bench_prints_latency_figures_as_json() {
    let wasm = guest("dovetail-policy-default");
    let o = dovetail(&[
        "policy",
        "bench",
        wasm.to_str().unwrap(),
        "--offerings",
        "400",
        "--iterations",
        "50",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["offerings"], 400);
    for field in ["calls_per_sec", "p50_us", "p99_us"] {
        assert!(v[field].as_f64().unwrap() > 0.0, "{field} in {v}");
    }
    assert!(v["p50_us"].as_f64() <= v["p99_us"].as_f64());
}

#[test]
fn watch_serves_a_policy_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest("dovetail-policy-graviton-first"),
        dir.path().join("instance-selection.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("consolidation-scoring.wasm"),
        b"not a component",
    )
    .unwrap();
    let o = dovetail(&[
        "policy",
        "watch",
        dir.path().to_str().unwrap(),
        "--seconds",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("instance-selection: graviton-first@0.1.0 (sha256:"),
        "{text}"
    );
    assert!(
        text.contains("consolidation-scoring: built-in default (last change rejected:"),
        "{text}"
    );
}

#[test]
fn bench_scheduling_reports_karpenters_benchmark_shape() {
    let o = dovetail(&[
        "bench",
        "scheduling",
        "--pods",
        "500",
        "--iterations",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pods"], 500);
    assert_eq!(v["unschedulable"], 0);
    // A fifth of the pods have hostname anti-affinity to each other: one node each.
    assert!(v["nodes"].as_u64().unwrap() >= 100, "{v}");
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert!(v["pods_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(v["policy"], "builtin-default@0.1.0");
}

#[test]
fn bench_scheduling_runs_a_wasm_policy_in_the_loop() {
    let wasm = guest("dovetail-policy-default");
    let args = [
        "bench",
        "scheduling",
        "--pods",
        "200",
        "--iterations",
        "1",
        "--json",
    ];
    let native: serde_json::Value = serde_json::from_slice(&dovetail(&args).stdout).unwrap();
    let mut with_policy = args.to_vec();
    with_policy.extend(["--policy", wasm.to_str().unwrap()]);
    let o = dovetail(&with_policy);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"], "default@0.1.0");
    assert!(v.get("policy_fallback").is_none(), "{v}");
    assert_eq!(
        v["nodes"], native["nodes"],
        "the policy chooses launches, not packing"
    );

    let missing = dovetail(&["bench", "scheduling", "--policy", "/nonexistent.wasm"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent.wasm"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn bench_consolidation_evaluates_every_candidate() {
    let o = dovetail(&[
        "bench",
        "consolidation",
        "--nodes",
        "60",
        "--pods",
        "600",
        "--iterations",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nodes"], 60);
    assert_eq!(v["candidates_evaluated"], 60, "{v}");
    assert!(v["pods"].as_u64().unwrap() > 500, "{v}");
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(v["policy"], "builtin-default@0.1.0");

    let wasm = guest("dovetail-policy-savings-threshold");
    let o = dovetail(&[
        "bench",
        "consolidation",
        "--nodes",
        "60",
        "--pods",
        "600",
        "--iterations",
        "1",
        "--json",
        "--policy",
        wasm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"], "savings-threshold@0.1.0");
}

#[test]
fn bench_controller_provisions_for_the_pending_pods_and_leaves_unmanaged_nodes_alone() {
    let wasm = guest("dovetail-policy-default");
    let o = dovetail(&[
        "bench",
        "controller",
        "--nodes",
        "20",
        "--pods",
        "300",
        "--pending",
        "12",
        "--swaps",
        "2",
        "--policy",
        wasm.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nodes"], 20);
    assert_eq!(v["pending"], 12);
    assert_eq!(v["unmanaged_nodes_untouched"], 20, "{v}");
    assert!(v["nodeclaims"].as_u64().unwrap() >= 1, "{v}");
    // The batch waits its 1 s idle window before the round.
    let provision = v["pending_to_nodeclaims_seconds"].as_f64().unwrap();
    assert!(provision >= 0.9, "{v}");
    assert!(
        v["pending_to_running_seconds"].as_f64().unwrap() > provision,
        "{v}"
    );
    assert!(v["sync_seconds"].as_f64().unwrap() > 0.0, "{v}");
    for field in ["configmap_create_ms", "configmap_swap_ms"] {
        assert!(v[field].as_f64().unwrap() > 0.0, "{field} in {v}");
    }
    let rss = &v["controller_rss_mb"];
    assert!(
        rss["peak_after_pending"].as_f64() >= rss["after_pending"].as_f64(),
        "{v}"
    );
    // The peak only grows, and the goal is judged by the run's peak.
    assert!(
        rss["peak_at_end"].as_f64() >= rss["peak_after_pending"].as_f64(),
        "{v}"
    );
    assert_eq!(
        v["goals"]["rss_met"].as_bool(),
        Some(rss["peak_at_end"].as_f64().unwrap() <= 100.0),
        "{v}"
    );
    assert!(
        v.get("log").is_none(),
        "the log is removed unless kept: {v}"
    );

    let missing = dovetail(&["bench", "controller", "--policy", "/nonexistent.wasm"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("policy /nonexistent.wasm: does not exist; fix: check the path"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn demo_scales_up_then_consolidates() {
    let o = dovetail(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("deployment/my-app scaled to 50 replicas"),
        "{text}"
    );
    assert!(text.contains("Launched"), "{text}");
    assert!(text.contains("Ready"), "{text}");
    assert!(
        text.contains("deployment/my-app scaled to 5 replicas"),
        "{text}"
    );
    assert!(
        text.contains("Deleted"),
        "a node is consolidated away: {text}"
    );
    assert!(text.contains("all 50 pods running:   after"), "{text}");
}

#[test]
fn sim_runs_a_scenario_file_with_a_wasm_policy_and_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let scenario = example("scenarios/demo.yaml");
    let balanced = guest("dovetail-policy-balanced");
    let policy = format!("consolidation-scoring={}", balanced.display());
    let o = dovetail(&[
        "sim",
        scenario.to_str().unwrap(),
        "--policy",
        &policy,
        "--json",
        report.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("nodes launched"), "{text}");
    assert!(
        text.contains("consolidation scoring  balanced@0.1.0"),
        "{text}"
    );
    assert!(text.contains("node-hours by instance type (top "), "{text}");
    assert!(text.contains("decisions (last "), "{text}");
    assert!(
        stderr(&o).is_empty(),
        "no progress bar when piped: {}",
        stderr(&o)
    );
    assert!(
        text.contains(&format!("HTML report: {}", html.display())),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    for chart in [
        "Nodes by capacity type",
        "Pending pods",
        "Cumulative cost",
        "Pods evicted per",
        "Disruptions and interruptions per",
        "Launches",
        "Allowed disruptions by NodePool and reason",
        "Why nodes were not consolidated",
        "Pod placements <span class=\"muted\">(50 pods, 5 placed more than once)",
    ] {
        assert!(page.contains(chart), "{chart}");
    }
    assert!(!page.contains("<script") && !page.contains("https://"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["seed"], 42);
    assert!(v["totals"]["nodes_launched"].as_u64().unwrap() >= 1);
    assert_eq!(v["totals"]["policy_failures"], 0);
    assert!(v["wall_seconds"].as_f64().unwrap() > 0.0);
    for field in ["launches", "launch_lists", "passes", "timeline"] {
        assert!(!v[field].as_array().unwrap().is_empty(), "{field}");
    }
    assert!(!v["pods"].as_object().unwrap().is_empty());
    assert!(
        v["autoscaler"].as_str().unwrap().contains("balanced@0.1.0"),
        "{v}"
    );
    let decisions = v["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(|d| d["decided_by"] == "balanced@0.1.0"
            && d["reason"].as_str().unwrap().contains("score")),
        "balanced decided: {decisions:?}"
    );
}

/// The JSON report without the one field that differs between runs.
fn report_without_wall_time(path: &std::path::Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let wall = v.as_object_mut().unwrap().remove("wall_seconds");
    assert!(wall.unwrap().as_f64().unwrap() > 0.0);
    v
}

#[test]
fn sim_is_deterministic_apart_from_wall_time() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = example("scenarios/demo.yaml");
    let savings = guest("dovetail-policy-savings-threshold");
    let policy = format!("consolidation-scoring={}", savings.display());
    let mut reports = Vec::new();
    for i in 0..2 {
        let json = dir.path().join(format!("{i}.json"));
        let o = dovetail(&[
            "sim",
            scenario.to_str().unwrap(),
            "--policy",
            &policy,
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        reports.push(report_without_wall_time(&json));
    }
    assert!(!reports[0]["timeline"].as_array().unwrap().is_empty());
    assert_eq!(reports[0], reports[1]);
}

#[test]
fn sim_compares_dovetail_with_static_node_groups() {
    let scenario = example("scenarios/demo.yaml");
    let o = dovetail(&[
        "sim",
        scenario.to_str().unwrap(),
        "--baseline",
        "static-node-groups",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let header = text
        .lines()
        .find(|l| l.contains("static-node-groups"))
        .unwrap_or_else(|| panic!("a header row: {text}"));
    assert!(header.contains("scenario"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("Dovetail costs "))
        .unwrap_or_else(|| panic!("a verdict line: {text}"));
    assert!(line.contains("than static node groups ($"), "{line}");
    assert!(text.contains("savings vs scenario (%)"), "{text}");

    let o = dovetail(&["sim", scenario.to_str().unwrap(), "--baseline", "nodes"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("static-node-groups"), "{}", stderr(&o));
}

#[test]
fn sim_compares_with_static_node_groups_on_demand_and_spot() {
    let scenario = example("scenarios/demo.yaml");
    let o = dovetail(&[
        "sim",
        scenario.to_str().unwrap(),
        "--compare",
        "builtin",
        "--compare",
        "static-node-groups",
        "--compare",
        "static-node-groups:spot",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let header = text
        .lines()
        .find(|l| l.contains("static-node-groups-spot"))
        .unwrap_or_else(|| panic!("a column for the spot groups: {text}"));
    assert!(header.contains("builtin"), "{text}");
    assert!(
        text.contains("static node groups `static-node-groups-spot`: m5.large spot"),
        "the spot run buys the same groups as spot: {text}"
    );
    assert!(
        text.contains("static node groups `static-node-groups`: m5.large on-demand"),
        "{text}"
    );
    let costs = text
        .lines()
        .find(|l| l.starts_with("cost (USD)"))
        .unwrap_or_else(|| panic!("a cost row: {text}"));
    let costs: Vec<f64> = costs
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(costs.len(), 3, "{text}");
    assert!(
        costs[2] < costs[1],
        "spot groups cost less than on-demand ones: {text}"
    );
}

#[test]
fn sim_compares_policy_sets_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = example("scenarios/demo.yaml");
    let savings = guest("dovetail-policy-savings-threshold");
    let spec = format!("savings:consolidation-scoring={}", savings.display());
    let json = dir.path().join("runs.json");
    let html = dir.path().join("out.html");
    let o = dovetail(&[
        "sim",
        scenario.to_str().unwrap(),
        "--compare",
        "builtin",
        "--compare",
        &spec,
        "--json",
        json.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let header = text.lines().find(|l| l.contains("builtin")).unwrap();
    let labels: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        labels,
        ["builtin", "savings"],
        "no extra `scenario` column: {text}"
    );
    assert!(
        text.contains("savings-threshold@0.1.0") && text.contains("savings vs builtin (%)"),
        "{text}"
    );
    for metric in [
        "cost (USD)",
        "peak nodes",
        "pending p99 (s)",
        "policy failures",
        "wall (s)",
    ] {
        assert!(text.contains(metric), "{metric}: {text}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["label"], "builtin");
    assert_eq!(runs[1]["label"], "savings");
    assert!(runs[1]["report"]["totals"]["cost_usd"].as_f64().unwrap() > 0.0);
    // One page for both runs: the table and the curves overlaid.
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".html"))
        .collect();
    assert_eq!(written, ["out.html"]);
    assert!(
        text.contains(&format!("HTML report: {}", html.display())),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    for label in ["builtin", "savings"] {
        assert!(page.contains(&format!("</span>{label}</th>")), "{label}");
    }
    for row in [
        "savings vs builtin",
        "pods evicted",
        "pending p99",
        "consolidation scoring",
        "savings-threshold@0.1.0",
    ] {
        assert!(page.contains(&format!("{row}</td>")), "{row}");
    }
    let charts = [
        "Cumulative cost",
        "Nodes",
        "Pending pods (most at once per 60 s)",
        "Pods evicted (cumulative)",
        "Disruptions (cumulative)",
        "Running pods",
    ];
    for chart in charts {
        assert!(page.contains(&format!("<h3>{chart}</h3>")), "{chart}");
    }
    // Each chart draws one line per run, named in its legend.
    assert_eq!(page.matches("<polyline").count(), charts.len() * 2);
    assert_eq!(
        page.matches(">savings</text>").count(),
        charts.len(),
        "a legend entry per chart"
    );
    // Each run's cost, on its card, in the table and split by NodePool.
    for run in runs {
        let cost = format!(
            "${:.4}",
            run["report"]["totals"]["cost_usd"].as_f64().unwrap()
        );
        assert!(page.matches(&cost).count() >= 3, "{cost}");
    }
    assert!(page.contains("Cost by NodePool and capacity type"));
    assert!(!page.contains("<script") && !page.contains("https://"));

    let o = dovetail(&["sim", scenario.to_str().unwrap(), "--compare", "foo=bar"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("--compare foo=bar") && err.contains("LABEL:DECISION=FILE[,DECISION=FILE]"),
        "{err}"
    );

    let o = dovetail(&["sim", scenario.to_str().unwrap(), "--policy", "score.wasm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("DECISION=FILE"), "{}", stderr(&o));
}

#[test]
fn sim_names_the_bad_field_and_line_of_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "seed: 1\nduration: 5m\nnodePools: []\nworkloads: [{deployment: x, replicas: \"many\", cpu: \"1\", memory: 1Gi}]\n",
    )
    .unwrap();
    let o = dovetail(&["sim", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(
        err.contains("workloads[0].replicas") && err.contains("line 4"),
        "{err}"
    );

    std::fs::write(
        &bad,
        "seed: 1\nduration: 5m\nnodePools: []\nworkloads:\n  - deployment: a\n    replicas: x\n    cpu: \"1\"\n    memory: 1Gi\n",
    )
    .unwrap();
    let err = stderr(&dovetail(&["sim", bad.to_str().unwrap()]));
    assert!(
        err.contains("workloads[0].replicas") && err.contains("line 6"),
        "{err}"
    );

    let missing = dir.path().join("policy.yaml");
    std::fs::write(
        &missing,
        std::fs::read_to_string(example("scenarios/demo.yaml")).unwrap()
            + "policies: { consolidationScoring: score.wasm }\n",
    )
    .unwrap();
    let o = dovetail(&["sim", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("policies.consolidationScoring")
            && err.contains(dir.path().join("score.wasm").to_str().unwrap())
            && err.contains("--policy consolidation-scoring=FILE"),
        "{err}"
    );
}

#[test]
fn sim_warns_of_unknown_node_pool_fields_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1beta1.yaml");
    let text = std::fs::read_to_string(example("scenarios/demo.yaml"))
        .unwrap()
        .replace("duration: 30m", "duration: 1m")
        .replace(
            "        consolidateAfter: 30s",
            "        consolidateAfter: 30s\n        expireAfter: 24h",
        );
    let line = text
        .lines()
        .position(|l| l.contains("expireAfter: 24h"))
        .unwrap()
        + 1;
    std::fs::write(&path, &text).unwrap();
    let warning = format!(
        "warning: nodePools[0].spec.disruption.expireAfter at line {line}: not a field of karpenter.sh/v1 NodePool; it is ignored: karpenter.sh/v1 moved it to spec.template.spec.expireAfter"
    );

    let o = dovetail(&["sim", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&warning), "{}", stderr(&o));
    assert!(!stdout(&o).contains("expireAfter"), "warnings go to stderr");

    let o = dovetail(&["sim", path.to_str().unwrap(), "--strict"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: scenario ")
            && err.contains("is not valid (--strict makes its warnings errors): nodePools[0].spec.disruption.expireAfter at line"),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "nothing ran: {}", stdout(&o));

    // A clean scenario passes --strict without a word on stderr.
    let o = dovetail(&[
        "sim",
        example("scenarios/demo.yaml").to_str().unwrap(),
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn sim_runs_a_cluster_from_kubectl_output_and_names_a_bad_object() {
    // The example's manifests are in a file the scenario names, relative to
    // the scenario.
    let o = dovetail(&[
        "sim",
        example("scenarios/kubectl-dump.yaml").to_str().unwrap(),
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("pending at end") && l.split_whitespace().last() == Some("0")),
        "{out}"
    );

    // A bad object in a file is named by its file, document, item, kind,
    // name and field.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/cluster.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: { name: web }\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: { name: web-0, namespace: shop }\n  spec: { containers: [{ name: c, image: i, resources: { requests: { memory: lots } } }] }\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.yaml");
    let text = std::fs::read_to_string(example("scenarios/demo.yaml"))
        .unwrap()
        .replace("duration: 30m", "duration: 1m")
        + "cluster: { files: [state/cluster.yaml] }\n";
    std::fs::write(&scenario, &text).unwrap();
    let o = dovetail(&["sim", scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("state/cluster.yaml document 2.items[0] (Pod shop/web-0) spec.containers[0].resources.requests[memory]: `lots` is not a Kubernetes quantity"),
        "{err}"
    );

    // Fixed, it runs, and the Service is a warning (an error with --strict).
    std::fs::write(
        dir.path().join("state/cluster.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: { name: web }\n",
    )
    .unwrap();
    let o = dovetail(&["sim", scenario.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: state/cluster.yaml document 1 (Service default/web): 1 Service object (v1): not a kind the simulator models, so it is ignored"),
        "{}",
        stderr(&o)
    );
    let o = dovetail(&["sim", scenario.to_str().unwrap(), "--strict"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn crds_prints_karpenters_three_crds_as_yaml() {
    use serde::Deserialize;

    let out = dovetail(&["crds"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde_json::to_value(serde_norway::Value::deserialize(d).unwrap()).unwrap())
        .collect();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["kind"], "CustomResourceDefinition");
            assert_eq!(d["apiVersion"], "apiextensions.k8s.io/v1");
            d["metadata"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "nodepools.karpenter.sh",
            "nodeclaims.karpenter.sh",
            "ec2nodeclasses.karpenter.k8s.aws"
        ]
    );
    assert_eq!(
        docs[2]["spec"]["names"]["shortNames"],
        serde_json::json!(["ec2nc", "ec2ncs"])
    );
    let spec = &docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["properties"]["disruption"]["default"],
        serde_json::json!({"consolidateAfter": "0s"})
    );
    let requirements =
        &spec["properties"]["template"]["properties"]["spec"]["properties"]["requirements"];
    assert_eq!(requirements["maxItems"], 100);
    assert!(
        requirements["items"]["properties"]["key"]["x-kubernetes-validations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["message"] == "label domain \"karpenter.sh\" is restricted"),
        "{requirements}"
    );
}
