//! Scenario files: the example parses and runs like the built-in demo, every
//! section of the format is read, and a malformed file gets an error naming
//! the field (and the line, when the YAML itself is wrong).

use std::collections::BTreeSet;

use dovetail_api::k8s::{PdbAmount, PdbRule};
use dovetail_core::catalog::CapacityType;
use dovetail_core::labels;
use dovetail_core::policy::Builtin;
use dovetail_core::resources::{GIB, MIB};
use dovetail_core::sym::Sym;
use dovetail_sim::{EventKind, Models, NodeGroup, PolicyFiles, Simulation, parse_scenario};

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

/// Every section of the format, on a custom catalog.
const FULL: &str = r#"
seed: 3
duration: 2h
startUnixSeconds: 1700000000
region: test-1
catalog:
  - name: c-small
    capacity: { cpu: "2", memory: 4Gi }
    offerings:
      - { zone: test-1a, capacityType: on-demand, price: 0.1 }
      - { zone: test-1a, capacityType: spot, price: 0.04 }
      - { zone: test-1b, capacityType: on-demand, price: 0.11 }
  - name: c-large
    capacity: { cpu: "8", memory: 32Gi, pods: "50" }
    overhead: { kubeReserved: { cpu: 200m, memory: 1Gi } }
    offerings:
      - { zone: test-1a, capacityType: on-demand, price: 0.4 }
      - { zone: test-1b, capacityType: spot, price: 0.15, available: false }
settings: { spotToSpotConsolidation: true }
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: general }
    spec:
      template:
        metadata: { labels: { team: core } }
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: batch }
cluster:
  nodes:
    - instanceType: c-large
      zone: test-1a
      nodePool: general
      age: 2h
      pods:
        - { workload: web, count: 4 }
        - { workload: api, count: 2 }
    - name: spot-1
      instanceType: c-small
      zone: test-1a
      capacityType: spot
      nodePool: batch
      initialized: false
  daemonSets:
    - { name: logs, cpu: 100m, memory: 200Mi }
  podDisruptionBudgets:
    - name: web-pdb
      selector: { matchLabels: { app: web } }
      minAvailable: 4
    - name: api-pdb
      namespace: prod
      selector:
        matchExpressions:
          - { key: app, operator: In, values: [api] }
      maxUnavailable: 1
workloads:
  - deployment: web
    cpu: 500m
    memory: 1Gi
    labels: { app: web }
    diurnal: { min: 4, max: 20, peakAt: 14h }
  - deployment: api
    namespace: prod
    replicas: 3
    cpu: 1
    memory: 2Gi
    labels: { app: api }
    nodeSelector: { team: core }
  - job: nightly
    at: 1h
    completions: 10
    parallelism: 4
    duration: 10m
    cpu: "2"
    memory: 4Gi
    labels: { kind: batch }
  - job: once
    completions: 3
    duration: 90s
    cpu: 250m
    memory: 256Mi
events:
  - at: 10m
    scale: { deployment: api, replicas: 5 }
  - at: 20m
    interruption: { instanceTypes: [c-small], zones: [test-1a] }
  - at: 30m
    interruption: { count: 3 }
  - at: 40m
    capacityShortage: { for: 30m, instanceTypes: [c-large], zones: [test-1b], capacityType: spot }
  - at: 50m
    capacityShortage: { for: 1h }
baseline:
  nodeGroups:
    - { instanceType: c-small }
    - { instanceType: c-large, capacityType: on-demand, zones: [test-1a], max: 5 }
models:
  launchTime: 10s
  readyTime: 45s
  batchIdle: 2s
  batchMax: 20s
  disruptionInterval: 15s
  validationDelay: 20s
  consolidationRecheck: 10m
  unavailableOfferingTtl: 5m
  interruptionWarning: 90s
  sampleEvery: 30s
  baseline: { utilizationThreshold: 0.6, unneededTime: 5m, scanInterval: 20s }
policies:
  instanceSelection: policies/select.wasm
  consolidationScoring: policies/score.wasm
"#;

fn label(labels: &[(Sym, Sym)], key: &str) -> Option<&'static str> {
    labels
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v.as_str())
}

fn names(syms: &[Sym]) -> Vec<&'static str> {
    syms.iter().map(|s| s.as_str()).collect()
}

#[test]
fn every_section_is_read() {
    let s = parse_scenario(FULL).unwrap();
    assert_eq!(s.seed, 3);
    assert_eq!(s.duration_ms, 7_200_000);
    assert_eq!(s.start_unix_seconds, 1_700_000_000);

    // The custom catalog replaces AWS's.
    let catalog = &s.cluster.catalog;
    assert!(catalog.get("m5.large").is_none());
    assert_eq!(catalog.instance_types.len(), 2);
    assert_eq!(catalog.region.as_str(), "test-1");
    assert_eq!(names(&catalog.zones()), ["test-1a", "test-1b"]);
    let large = catalog.get("c-large").unwrap();
    assert_eq!(large.capacity.pods, 50);
    assert_eq!(large.allocatable().cpu, 7_800);
    let unavailable = large.offering("test-1b", CapacityType::Spot).unwrap();
    assert!(!unavailable.available);
    assert_eq!(catalog.get("c-small").unwrap().capacity.pods, 110);

    // The start state.
    assert_eq!(s.initial_nodes.len(), 2);
    let first = &s.initial_nodes[0];
    assert_eq!(first.node.name.as_str(), "general-init-0");
    assert_eq!(first.node.node_pool.map(|p| p.as_str()), Some("general"));
    assert_eq!(
        label(&first.node.labels, labels::INSTANCE_TYPE),
        Some("c-large")
    );
    assert_eq!(label(&first.node.labels, labels::ZONE), Some("test-1a"));
    assert_eq!(
        label(&first.node.labels, labels::CAPACITY_TYPE),
        Some("on-demand")
    );
    assert_eq!(label(&first.node.labels, "team"), Some("core"));
    assert_eq!(first.capacity_type, CapacityType::OnDemand);
    assert_eq!(first.node.price_per_hour, 0.4);
    assert_eq!(first.node.created_at, 1_700_000_000 - 7_200);
    assert!(first.ready && first.node.ready && first.node.initialized);
    assert_eq!(first.pods, [(0, 4), (1, 2)]);
    let spot = &s.initial_nodes[1];
    assert_eq!(spot.node.name.as_str(), "spot-1");
    assert_eq!(spot.capacity_type, CapacityType::Spot);
    assert_eq!(spot.node.price_per_hour, 0.04);
    assert_eq!(spot.node.created_at, 1_700_000_000);
    assert!(!spot.ready && !spot.node.ready && !spot.node.initialized);
    assert!(spot.pods.is_empty());

    assert_eq!(s.cluster.daemon_sets.len(), 1);
    let ds = &s.cluster.daemon_sets[0];
    assert_eq!(ds.name.as_str(), "logs");
    assert_eq!(ds.pod.daemon_set().map(|d| d.as_str()), Some("logs"));
    assert_eq!(ds.pod.requests.cpu, 100);
    assert_eq!(ds.pod.requests.memory, 200 * MIB);

    assert_eq!(s.pdbs.len(), 2);
    let web_pdb = &s.pdbs[0];
    assert_eq!(
        (web_pdb.namespace.as_str(), web_pdb.name.as_str()),
        ("default", "web-pdb")
    );
    assert_eq!(
        web_pdb.rule,
        Some(PdbRule::MinAvailable(PdbAmount::Count(4)))
    );
    assert!(web_pdb.selector.matches(&s.deployments[0].template.labels));
    assert!(!web_pdb.selector.matches(&s.deployments[1].template.labels));
    let api_pdb = &s.pdbs[1];
    assert_eq!(api_pdb.namespace.as_str(), "prod");
    assert_eq!(
        api_pdb.rule,
        Some(PdbRule::MaxUnavailable(PdbAmount::Count(1)))
    );
    assert!(api_pdb.selector.matches(&s.deployments[1].template.labels));

    // Workloads.
    assert_eq!(s.deployments.len(), 2);
    let web = &s.deployments[0];
    let curve = web.diurnal.as_ref().unwrap();
    assert_eq!(
        (curve.min, curve.max, curve.peak_at_ms),
        (4, 20, 14 * 3_600_000)
    );
    assert_eq!((curve.period_ms, curve.step_ms), (24 * 3_600_000, 300_000));
    assert_eq!(curve.replicas_at(14 * 3_600_000), 20, "peak");
    assert_eq!(curve.replicas_at(2 * 3_600_000), 4, "trough");
    assert_eq!(web.replicas, curve.replicas_at(0));
    assert_eq!(web.replicas, 5);
    let api = &s.deployments[1];
    assert_eq!(api.replicas, 3);
    assert!(api.diurnal.is_none());
    assert_eq!(api.template.namespace.as_str(), "prod");
    assert_eq!(api.template.requests.cpu, 1_000);
    assert_eq!(label(&api.template.node_selector, "team"), Some("core"));

    assert_eq!(s.jobs.len(), 2);
    let nightly = &s.jobs[0];
    assert_eq!(nightly.name, "nightly");
    assert_eq!(
        (
            nightly.at_ms,
            nightly.completions,
            nightly.parallelism,
            nightly.duration_ms
        ),
        (3_600_000, 10, 4, 600_000)
    );
    assert_eq!(label(&nightly.template.labels, "job-name"), Some("nightly"));
    assert_eq!(label(&nightly.template.labels, "kind"), Some("batch"));
    assert_eq!(nightly.template.requests.cpu, 2_000);
    assert_eq!(nightly.template.requests.memory, 4 * GIB);
    let once = &s.jobs[1];
    assert_eq!(
        (
            once.at_ms,
            once.completions,
            once.parallelism,
            once.duration_ms
        ),
        (0, 3, 3, 90_000)
    );
    assert_eq!(label(&once.template.labels, "job-name"), Some("once"));

    // Events.
    let kinds: Vec<_> = s.events.iter().map(|e| (e.at_ms, e.kind.clone())).collect();
    assert_eq!(
        kinds,
        [
            (
                600_000,
                EventKind::Scale {
                    deployment: "api".into(),
                    replicas: 5
                }
            ),
            (
                1_200_000,
                EventKind::Interruption {
                    count: 1,
                    instance_types: vec![Sym::new("c-small")],
                    zones: vec![Sym::new("test-1a")],
                }
            ),
            (
                1_800_000,
                EventKind::Interruption {
                    count: 3,
                    instance_types: vec![],
                    zones: vec![],
                }
            ),
            (
                2_400_000,
                EventKind::CapacityShortage {
                    for_ms: 1_800_000,
                    instance_types: vec![Sym::new("c-large")],
                    zones: vec![Sym::new("test-1b")],
                    capacity_type: Some(CapacityType::Spot),
                }
            ),
            (
                3_000_000,
                EventKind::CapacityShortage {
                    for_ms: 3_600_000,
                    instance_types: vec![],
                    zones: vec![],
                    capacity_type: None,
                }
            ),
        ]
    );

    // The baseline, models and policies.
    assert_eq!(
        s.node_groups,
        [
            NodeGroup {
                instance_type: Sym::new("c-small"),
                capacity_type: CapacityType::OnDemand,
                zones: vec![],
                max: 1000,
            },
            NodeGroup {
                instance_type: Sym::new("c-large"),
                capacity_type: CapacityType::OnDemand,
                zones: vec![Sym::new("test-1a")],
                max: 5,
            },
        ]
    );
    assert_eq!(s.baseline_groups(), s.node_groups);
    let m = &s.models;
    assert_eq!(
        [
            m.launch_ms,
            m.ready_ms,
            m.batch_idle_ms,
            m.batch_max_ms,
            m.disruption_interval_ms,
            m.validation_delay_ms,
            m.consolidation_recheck_ms,
            m.unavailable_offering_ms,
            m.interruption_warning_ms,
            m.sample_every_ms,
        ],
        [
            10_000, 45_000, 2_000, 20_000, 15_000, 20_000, 600_000, 300_000, 90_000, 30_000
        ]
    );
    assert!(m.disruption.spot_to_spot);
    assert_eq!(m.baseline.utilization_threshold, 0.6);
    assert_eq!(m.baseline.unneeded_ms, 300_000);
    assert_eq!(m.baseline.scan_ms, 20_000);
    assert_eq!(
        s.policies,
        PolicyFiles {
            instance_selection: Some("policies/select.wasm".into()),
            consolidation_scoring: Some("policies/score.wasm".into()),
        }
    );
}

#[test]
fn left_out_sections_take_the_defaults() {
    let s = parse_scenario(&example()).unwrap();
    assert!(s.cluster.catalog.get("m5.large").is_some(), "AWS catalog");
    assert!(s.initial_nodes.is_empty() && s.jobs.is_empty() && s.pdbs.is_empty());
    assert!(s.cluster.daemon_sets.is_empty() && s.node_groups.is_empty());
    assert_eq!(s.policies, PolicyFiles::default());
    let (m, d) = (&s.models, Models::default());
    assert_eq!(
        (m.launch_ms, m.ready_ms, m.sample_every_ms),
        (d.launch_ms, d.ready_ms, d.sample_every_ms)
    );
    assert_eq!(m.baseline.unneeded_ms, d.baseline.unneeded_ms);
    assert!(m.disruption.spot_to_spot);
}

/// `FULL` with `from` replaced by `to`, which must occur in it.
fn full_with(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "{from}");
    FULL.replacen(from, to, 1)
}

fn error(text: &str) -> String {
    parse_scenario(text).unwrap_err().to_string()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn malformed_start_states_name_the_field() {
    let typo = full_with(
        "      nodePool: batch\n",
        "      nodePool: batch\n      zones: [test-1a]\n",
    );
    let err = error(&typo);
    assert!(
        err.contains("cluster.nodes[1]")
            && err.contains("unknown field `zones`")
            && err.contains(&format!("line {}", line_of(&typo, "zones: [test-1a]"))),
        "{err}"
    );

    let err = error(&full_with("nodePool: batch", "nodePool: gpu"));
    assert!(
        err.contains("cluster.nodes[1].nodePool")
            && err.contains("`gpu`")
            && err.contains("general, batch"),
        "{err}"
    );

    let err = error(&full_with(
        "{ workload: api, count: 2 }",
        "{ workload: apl, count: 2 }",
    ));
    assert!(
        err.contains("cluster.nodes[0].pods[1].workload") && err.contains("`apl`"),
        "{err}"
    );
    let err = error(&full_with(
        "{ workload: api, count: 2 }",
        "{ workload: once, count: 2 }",
    ));
    assert!(
        err.contains("cluster.nodes[0].pods[1].workload") && err.contains("is a job"),
        "{err}"
    );
    let err = error(&full_with(
        "{ workload: web, count: 4 }",
        "{ workload: web, count: 6 }",
    ));
    assert!(
        err.contains("cluster.nodes[0].pods[0].count") && err.contains("5 replicas"),
        "{err}"
    );

    let err = error(&full_with(
        "instanceType: c-small\n      zone: test-1a",
        "instanceType: c-small\n      zone: test-1c",
    ));
    assert!(err.contains("cluster.nodes[1].zone"), "{err}");
    let err = error(&full_with(
        "instanceType: c-large\n      zone: test-1a",
        "instanceType: m5.large\n      zone: test-1a",
    ));
    assert!(
        err.contains("cluster.nodes[0].instanceType") && err.contains("`m5.large`"),
        "{err}"
    );
    let err = error(&full_with(
        "capacityType: spot\n      nodePool: batch",
        "capacityType: spot\n      nodePool: batch\n      pods: [{ workload: web, count: 1 }, { workload: api, count: 1 }]",
    ));
    assert!(
        err.contains("cluster.nodes[1].pods[1].workload") && err.contains("team=core"),
        "{err}"
    );
    let err = error(&full_with("pods: \"50\"", "pods: \"6\""));
    assert!(
        err.contains("cluster.nodes[0].pods") && err.contains("pods does not fit"),
        "{err}"
    );
}

#[test]
fn malformed_budgets_workloads_and_events_name_the_field() {
    let err = error(&full_with(
        "      minAvailable: 4",
        "      minAvailable: 4\n      maxUnavailable: 1",
    ));
    assert!(
        err.contains("cluster.podDisruptionBudgets[0]") && err.contains("not both"),
        "{err}"
    );
    let err = error(&full_with("      minAvailable: 4\n", ""));
    assert!(
        err.contains("cluster.podDisruptionBudgets[0]")
            && err.contains("`minAvailable` or `maxUnavailable`"),
        "{err}"
    );
    let percent = full_with("minAvailable: 4", "minAvailable: \"50%\"");
    let err = error(&percent);
    assert!(
        err.contains("cluster.podDisruptionBudgets[0].minAvailable")
            && err.contains("percentages are not supported")
            && err.contains(&format!("line {}", line_of(&percent, "50%"))),
        "{err}"
    );
    let err = error(&full_with("{ app: web } }", "{ app: webb } }"));
    assert!(
        err.contains("cluster.podDisruptionBudgets[0].selector"),
        "{err}"
    );

    let err = error(&full_with(
        "  - job: once",
        "  - job: once\n    deployment: once",
    ));
    assert!(
        err.contains("workloads[3]") && err.contains("both `deployment` and `job`"),
        "{err}"
    );
    let err = error(&full_with("  - job: once\n", "  - \n"));
    assert!(
        err.contains("workloads[3]") && err.contains("`deployment: NAME`"),
        "{err}"
    );
    let err = error(&full_with("    completions: 3\n", "    replicas: 3\n"));
    assert!(
        err.contains("workloads[3].replicas") && err.contains("only a deployment"),
        "{err}"
    );
    let err = error(&full_with("    replicas: 3\n", ""));
    assert!(err.contains("workloads[1].replicas"), "{err}");
    let err = error(&full_with("peakAt: 14h", "peakAt: 14 hours"));
    assert!(
        err.contains("workloads[0].diurnal.peakAt") && err.contains("line"),
        "{err}"
    );
    let err = error(&full_with(
        "memory: 4Gi\n    labels",
        "memory: 4GB\n    labels",
    ));
    assert!(
        err.contains("workloads[2].memory") && err.contains("line"),
        "{err}"
    );

    let err = error(&full_with(
        "instanceTypes: [c-large]",
        "instanceTypes: [c-huge]",
    ));
    assert!(
        err.contains("events[3].capacityShortage.instanceTypes[0]")
            && err.contains("`c-huge`")
            && err.contains("c-large, c-small"),
        "{err}"
    );
    let err = error(&full_with("zones: [test-1b]", "zones: [test-1z]"));
    assert!(
        err.contains("events[3].capacityShortage.zones[0]") && err.contains("test-1a, test-1b"),
        "{err}"
    );
    let err = error(&full_with(
        "    interruption: { count: 3 }",
        "    interruption: { count: 3 }\n    scale: { deployment: api, replicas: 1 }",
    ));
    assert!(
        err.contains("events[2]") && err.contains("exactly one of"),
        "{err}"
    );
    let err = error(&full_with(
        "{ instanceType: c-small }",
        "{ instanceType: c-small, zones: [test-1a], capacityType: spot, max: 2 }\n    - { instanceType: c-large, capacityType: spot, zones: [test-1a] }",
    ));
    assert!(err.contains("baseline.nodeGroups[1].zones[0]"), "{err}");
    let err = error(&full_with(
        "utilizationThreshold: 0.6",
        "utilizationThreshold: 60",
    ));
    assert!(
        err.contains("models.baseline.utilizationThreshold"),
        "{err}"
    );
}

#[test]
fn malformed_catalogs_name_the_type_and_field() {
    let err = error(&full_with("memory: 32Gi", "memory: 32 gigs"));
    assert!(
        err.contains("catalog[1].capacity.memory") && err.contains("`c-large`"),
        "{err}"
    );
    let err = error(&full_with("  - name: c-large", "  - name: c-small"));
    assert!(
        err.contains("catalog[1].name") && err.contains("twice"),
        "{err}"
    );
    let err = error(&full_with(
        "      - { zone: test-1a, capacityType: on-demand, price: 0.4 }",
        "      - { zone: test-1a, capacityType: on-demand, price: 0.4, cost: 1 }",
    ));
    assert!(
        err.contains("unknown field `cost`") && err.contains("line"),
        "{err}"
    );
    let err = error(&example().replace("seed: 42", "seed: 42\nregion: eu-west-1"));
    assert!(err.contains("region") && err.contains("catalog"), "{err}");
}

fn example_file(name: &str) -> String {
    let path = format!(
        "{}/../../examples/scenarios/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_start_state_and_custom_catalog_examples_parse() {
    let s = parse_scenario(&example_file("start-state.yaml")).unwrap();
    assert_eq!(s.duration_ms, 30 * 60_000);
    assert_eq!(s.initial_nodes.len(), 6);
    let types: BTreeSet<_> = s
        .initial_nodes
        .iter()
        .filter_map(|n| label(&n.node.labels, labels::INSTANCE_TYPE))
        .collect();
    assert!(types.len() >= 4, "{types:?}");
    assert!(
        s.initial_nodes
            .iter()
            .any(|n| n.capacity_type == CapacityType::Spot)
    );
    let mut bound = vec![0; s.deployments.len()];
    for n in &s.initial_nodes {
        for &(d, count) in &n.pods {
            bound[d] += count;
        }
    }
    let replicas: Vec<_> = s.deployments.iter().map(|d| d.replicas).collect();
    assert_eq!(bound, replicas, "every replica is bound at the start");
    assert_eq!(s.deployments.len(), 2);
    assert_eq!(s.cluster.daemon_sets.len(), 1);
    assert_eq!(s.pdbs.len(), 1);
    assert!(
        s.events
            .iter()
            .all(|e| e.at_ms == 5 * 60_000 && matches!(e.kind, EventKind::Scale { .. }))
    );

    let s = parse_scenario(&example_file("custom-catalog.yaml")).unwrap();
    assert_eq!(s.duration_ms, 20 * 60_000);
    let catalog = &s.cluster.catalog;
    assert!(catalog.get("m5.large").is_none());
    assert_eq!(catalog.instance_types.len(), 4);
    assert_eq!(catalog.zones().len(), 2);
    let offerings: Vec<_> = catalog
        .instance_types
        .iter()
        .flat_map(|it| &it.offerings)
        .collect();
    assert!(
        offerings
            .iter()
            .any(|o| o.capacity_type == CapacityType::Spot)
    );
    assert!(
        offerings
            .iter()
            .any(|o| o.capacity_type == CapacityType::OnDemand)
    );
    assert_eq!(offerings.iter().filter(|o| !o.available).count(), 1);
    assert_eq!(s.deployments.len(), 1);
    assert_eq!(s.deployments[0].replicas, 40);
    assert!(s.initial_nodes.is_empty());
}

#[test]
fn every_example_scenario_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let s = dovetail_sim::parse_scenario_in(&text, path.parent().unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(s.warnings, [], "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 7, "{seen} scenarios");
}

#[test]
fn node_pools_are_read_and_checked_as_karpenter_does() {
    let pools = |spec: &str| {
        format!(
            "seed: 1\nduration: 5m\nnodePools:\n  - apiVersion: karpenter.sh/v1\n    kind: NodePool\n    metadata: {{ name: p }}\n    spec:\n{spec}\n"
        )
    };
    let balanced = pools(
        "      disruption: { consolidationPolicy: Balanced, consolidateAfter: 1m, budgets: [{ nodes: \"2\", reasons: [Drifted] }] }",
    );
    let s = parse_scenario(&balanced).unwrap();
    let pool = &s.cluster.node_pools[0];
    assert_eq!(
        pool.disruption.consolidation_policy,
        dovetail_core::model::ConsolidationPolicy::Balanced
    );
    assert_eq!(
        pool.node_class_ref.name, "default",
        "nodeClassRef may be left out"
    );
    assert_eq!(
        pool.disruption.budgets[0].reasons,
        [dovetail_core::disruption::budgets::DisruptionReason::Drifted]
    );

    // Every problem, each with its path and fix.
    let bad = pools(
        "      weight: 101\n      template:\n        metadata: { labels: { karpenter.sh/team: a } }\n      disruption: { consolidationPolicy: WhenEmpty }",
    );
    let err = parse_scenario(&bad).unwrap_err().to_string();
    for needle in [
        "nodePools[0].spec.template.metadata.labels[karpenter.sh/team]: label domain `karpenter.sh` is restricted",
        "nodePools[0].spec.disruption.consolidateAfter: is required",
        "nodePools[0].spec.weight: 101 is out of range; use a value from 1 to 100",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }

    let v1beta1 = balanced.replace("karpenter.sh/v1", "karpenter.sh/v1beta1");
    let err = parse_scenario(&v1beta1).unwrap_err().to_string();
    assert!(
        err.contains(
            "nodePools[0].apiVersion: `karpenter.sh/v1beta1` is not supported; use karpenter.sh/v1"
        ),
        "{err}"
    );
}

/// A scenario of 200 tiny pods on one NodePool of m5.large, with `classes`
/// (YAML list entries, or empty for no `nodeClasses:`).
fn tiny_pods(classes: &str) -> String {
    let node_classes = if classes.is_empty() {
        String::new()
    } else {
        format!("nodeClasses:\n{classes}")
    };
    format!(
        r#"seed: 1
duration: 10m
{node_classes}nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: {{ name: default }}
    spec:
      template:
        spec:
          requirements:
            - {{ key: node.kubernetes.io/instance-type, operator: In, values: [m5.large] }}
            - {{ key: karpenter.sh/capacity-type, operator: In, values: [on-demand] }}
          nodeClassRef: {{ group: karpenter.k8s.aws, kind: EC2NodeClass, name: default }}
workloads:
  - deployment: tiny
    replicas: 200
    cpu: 10m
    memory: 16Mi
"#
    )
}

/// An EC2NodeClass manifest as a `nodeClasses` entry, named `name`, with
/// `extra` lines under `spec` (indented six spaces).
fn node_class(name: &str, extra: &str) -> String {
    format!(
        r#"  - apiVersion: karpenter.k8s.aws/v1
    kind: EC2NodeClass
    metadata: {{ name: {name} }}
    spec:
      role: KarpenterNodeRole-my-cluster
      amiSelectorTerms: [{{ alias: al2023@latest }}]
      subnetSelectorTerms: [{{ tags: {{ karpenter.sh/discovery: my-cluster }} }}]
      securityGroupSelectorTerms: [{{ tags: {{ karpenter.sh/discovery: my-cluster }} }}]
{extra}"#
    )
}

fn run(text: &str) -> dovetail_sim::Report {
    let scenario = parse_scenario(text).unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(scenario, &Builtin, &Builtin).run(&mut |_| {})
}

#[test]
fn a_node_class_max_pods_caps_the_pods_per_node() {
    let without = tiny_pods("");
    let capped = tiny_pods(&node_class("default", "      kubelet: { maxPods: 20 }\n"));
    let s = parse_scenario(&capped).unwrap();
    assert_eq!(s.cluster.catalog.get("m5.large").unwrap().capacity.pods, 20);
    let eni_limited = parse_scenario(&without).unwrap();
    assert_eq!(
        eni_limited
            .cluster
            .catalog
            .get("m5.large")
            .unwrap()
            .capacity
            .pods,
        29,
        "(3 ENIs - 0 reserved) x (10 IPv4 - 1) + 2"
    );

    let without = run(&without).totals;
    let capped = run(&capped).totals;
    for t in [&without, &capped] {
        assert_eq!(t.pending_at_end, 0, "{t:?}");
    }
    // 200 pods: ceil(200 / 29) = 7 nodes by the ENI limit, ceil(200 / 20) = 10 with maxPods 20.
    assert_eq!(without.nodes_launched, 7, "{without:?}");
    assert_eq!(without.peak_nodes, 7, "{without:?}");
    assert_eq!(capped.nodes_launched, 10, "{capped:?}");
    assert_eq!(capped.peak_nodes, 10, "{capped:?}");
}

#[test]
fn node_class_reservations_and_eviction_thresholds_reduce_allocatable() {
    let m5_large = |text: &str| {
        let s = parse_scenario(text).unwrap_or_else(|e| panic!("{e}"));
        let it = s.cluster.catalog.get("m5.large").unwrap().clone();
        let allocatable = it.allocatable();
        (it.capacity, allocatable)
    };
    let (capacity, default) = m5_large(&tiny_pods(""));
    let (same_capacity, reserved) = m5_large(&tiny_pods(&node_class(
        "default",
        "      kubelet:\n        kubeReserved: { cpu: 200m, memory: 1Gi }\n        systemReserved: { cpu: 100m }\n        evictionHard: { memory.available: 500Mi }\n",
    )));
    assert_eq!(capacity, same_capacity, "capacity is the instance's");
    // Karpenter's defaults for 2 vCPU and 29 ENI-limited pods: kube-reserved
    // CPU 60m + 10m, memory 11Mi x 29 + 255Mi = 574Mi; eviction 100Mi.
    assert_eq!(default.cpu - reserved.cpu, (200 + 100) - (60 + 10));
    assert_eq!(
        default.memory - reserved.memory,
        (1024 + 500) * MIB - (574 + 100) * MIB
    );

    // A class that changes nothing sizes nodes as Karpenter's defaults do.
    let (_, plain) = m5_large(&tiny_pods(&node_class("default", "")));
    assert_eq!(plain, default);
}

#[test]
fn node_classes_are_checked_as_karpenter_does() {
    let with = |classes: &str| error(&tiny_pods(classes));

    let err = with(&node_class(
        "default",
        "      kubelet: { maxPods: -1, evictionHard: { memory.available: lots } }\n",
    ));
    for needle in [
        "nodeClasses[0].spec.kubelet.maxPods: -1 is out of range; use a value at least 0",
        "nodeClasses[0].spec.kubelet.evictionHard[memory.available]",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }

    let err =
        with(&node_class("default", "").replace("      role: KarpenterNodeRole-my-cluster\n", ""));
    assert!(err.starts_with("nodeClasses[0].spec"), "{err}");
    assert!(err.contains("role"), "{err}");

    let twice = format!("{}{}", node_class("default", ""), node_class("default", ""));
    assert_eq!(
        with(&twice),
        "nodeClasses[1].metadata.name: `default` is listed twice (also nodeClasses[0])"
    );

    let err = error(&tiny_pods("").replace("nodePools:", "nodeClasses: []\nnodePools:"));
    assert!(
        err.starts_with("nodeClasses: list at least one EC2NodeClass"),
        "{err}"
    );
}

#[test]
fn a_node_pool_must_name_one_of_the_node_classes() {
    let classes = format!("{}{}", node_class("small", ""), node_class("large", ""));
    assert_eq!(
        error(&tiny_pods(&classes)),
        "nodePools[0].spec.template.spec.nodeClassRef.name: NodePool `default` uses EC2NodeClass `default`, which is not in nodeClasses; they are `small`, `large`. Name one of them in nodeClassRef, or add `default` to nodeClasses"
    );

    let left_out = tiny_pods(&classes).replace(
        "          nodeClassRef: { group: karpenter.k8s.aws, kind: EC2NodeClass, name: default }\n",
        "",
    );
    let err = error(&left_out);
    assert!(
        err.starts_with("nodePools[0].spec.template.spec.nodeClassRef: NodePool `default` uses EC2NodeClass `default` (nodeClassRef is left out, which means `default`)"),
        "{err}"
    );

    let other_kind = tiny_pods(&node_class("default", ""))
        .replace("kind: EC2NodeClass, name", "kind: AKSNodeClass, name");
    let err = error(&other_kind);
    assert!(
        err.starts_with("nodePools[0].spec.template.spec.nodeClassRef.kind: NodePool `default` uses a `AKSNodeClass` of group `karpenter.k8s.aws`"),
        "{err}"
    );

    // Without `nodeClasses`, any name is accepted and nodes get the defaults.
    let unchecked = tiny_pods("").replace(
        "kind: EC2NodeClass, name: default }",
        "kind: EC2NodeClass, name: anything }",
    );
    assert!(unchecked.contains("name: anything"));
    parse_scenario(&unchecked).unwrap();
}

/// A NodePool `name` of on-demand m5.large on EC2NodeClass `class`, as a
/// `nodePools` entry (or, indented two more, an event's `apply`).
fn m5_pool(name: &str, class: &str) -> String {
    format!(
        r#"  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: {{ name: {name} }}
    spec:
      template:
        spec:
          requirements:
            - {{ key: node.kubernetes.io/instance-type, operator: In, values: [m5.large] }}
            - {{ key: karpenter.sh/capacity-type, operator: In, values: [on-demand] }}
          nodeClassRef: {{ group: karpenter.k8s.aws, kind: EC2NodeClass, name: {class} }}
"#
    )
}

/// A deployment of `replicas` tiny pods that run only on NodePool `pool`.
fn tiny_on(pool: &str, replicas: usize) -> String {
    format!(
        "  - {{ deployment: {pool}-pods, replicas: {replicas}, cpu: 10m, memory: 16Mi, nodeSelector: {{ karpenter.sh/nodepool: {pool} }} }}\n"
    )
}

/// The NodeClasses `default` (Karpenter's sizing) and `four` (kubelet
/// maxPods 4).
fn default_and_four() -> String {
    format!(
        "nodeClasses:\n{}{}",
        node_class("default", ""),
        node_class("four", "      kubelet: { maxPods: 4 }\n")
    )
}

/// The nodes each NodePool launched, with the pods planned onto each.
fn pods_per_node(r: &dovetail_sim::Report) -> std::collections::BTreeMap<String, Vec<usize>> {
    let mut out = std::collections::BTreeMap::<String, Vec<usize>>::new();
    for l in r.launches.iter().filter(|l| l.launched.is_some()) {
        let pool = l.node_pool.clone().unwrap_or_default();
        out.entry(pool).or_default().push(l.pods);
    }
    out
}

#[test]
fn each_node_pool_sizes_its_nodes_by_its_own_node_class() {
    // Two more pods later find the nodes full, as their kubelets say.
    let text = format!(
        "seed: 1\nduration: 10m\n{}nodePools:\n{}{}workloads:\n{}{}events:\n  - at: 5m\n    scale: {{ deployment: four-pods, replicas: 42 }}\n",
        default_and_four(),
        m5_pool("roomy", "default"),
        m5_pool("four", "four"),
        tiny_on("roomy", 40),
        tiny_on("four", 40),
    );
    let r = run(&text);
    assert_eq!(r.totals.pending_at_end, 0, "{:?}", r.totals);
    let nodes = pods_per_node(&r);
    // maxPods 4: ceil(40 / 4) = 10 nodes, none over 4 pods, and one more
    // for the two; the ENI limit of 29 pods: ceil(40 / 29) = 2.
    assert_eq!(nodes["four"].len(), 11, "{nodes:?}");
    assert!(nodes["four"].iter().all(|&p| p <= 4), "{nodes:?}");
    assert_eq!(nodes["roomy"].len(), 2, "{nodes:?}");
    assert!(nodes["roomy"].iter().any(|&p| p > 4), "{nodes:?}");
    assert_eq!(r.totals.peak_nodes, 13, "{:?}", r.totals);

    // Classes that size nodes alike give the catalog their sizing, as one
    // class would; a class used by no NodePool does not change it.
    let alike = format!(
        "seed: 1\nduration: 10m\nnodeClasses:\n{}{}{}nodePools:\n{}{}workloads:\n{}",
        node_class("default", "      kubelet: { maxPods: 20 }\n"),
        node_class(
            "also-20",
            "      kubelet: { maxPods: 20 }\n      tags: { team: web }\n"
        ),
        node_class("four", "      kubelet: { maxPods: 4 }\n"),
        m5_pool("roomy", "default"),
        m5_pool("web", "also-20"),
        tiny_on("web", 40),
    );
    let s = parse_scenario(&alike).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.cluster.catalog.get("m5.large").unwrap().capacity.pods, 20);
    let nodes = pods_per_node(&run(&alike));
    assert_eq!(nodes["web"].len(), 2, "ceil(40 / 20): {nodes:?}");

    // The class that sizes apart is so whichever NodePool comes first.
    let swapped = format!(
        "seed: 1\nduration: 10m\n{}nodePools:\n{}{}workloads:\n{}{}",
        default_and_four(),
        m5_pool("four", "four"),
        m5_pool("roomy", "default"),
        tiny_on("roomy", 40),
        tiny_on("four", 40),
    );
    let nodes = pods_per_node(&run(&swapped));
    assert_eq!(nodes["four"].len(), 10, "{nodes:?}");
    assert_eq!(nodes["roomy"].len(), 2, "{nodes:?}");
}

#[test]
fn a_node_class_root_volume_sizes_its_nodes_ephemeral_storage() {
    let classes = format!(
        "nodeClasses:\n{}{}",
        node_class("default", ""),
        node_class(
            "big-disk",
            "      blockDeviceMappings:\n        - { deviceName: /dev/xvda, rootVolume: true, ebs: { volumeSize: 100Gi } }\n"
        ),
    );
    // 50Gi of scratch space: more than the default 20Gi root volume holds.
    let scratch = r#"cluster:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: scratch, namespace: default }
    spec:
      replicas: 3
      selector: { matchLabels: { app: scratch } }
      template:
        metadata: { labels: { app: scratch } }
        spec:
          containers:
            - name: app
              image: registry.example.com/scratch:1
              resources: { requests: { cpu: 100m, memory: 128Mi, ephemeral-storage: 50Gi } }
"#;
    let text = format!(
        "seed: 1\nduration: 10m\n{classes}nodePools:\n{}{}{scratch}",
        m5_pool("small-disk", "default"),
        m5_pool("big-disk", "big-disk"),
    );
    let r = run(&text);
    assert_eq!(r.totals.pending_at_end, 0, "{:?}", r.totals);
    let nodes = pods_per_node(&r);
    assert!(!nodes.contains_key("small-disk"), "{nodes:?}");
    // One pod a node: two need 100Gi, more than the root volume's allocatable.
    assert_eq!(nodes["big-disk"], [1, 1, 1], "{nodes:?}");

    // Without the big-disk NodePool the pods cannot run.
    let small = format!(
        "seed: 1\nduration: 10m\n{classes}nodePools:\n{}{scratch}",
        m5_pool("small-disk", "default"),
    );
    let r = run(&small);
    assert_eq!(r.totals.pending_at_end, 3, "{:?}", r.totals);
    assert_eq!(r.totals.nodes_launched, 0, "{:?}", r.totals);
}

#[test]
fn a_node_pool_applied_by_an_event_is_sized_by_its_node_class() {
    // `four` is used by no NodePool until the event applies one.
    let apply = m5_pool("four", "four")
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>()
        .replacen("    - apiVersion", "    apply:\n      apiVersion", 1);
    let text = format!(
        "seed: 1\nduration: 10m\n{}nodePools:\n{}workloads:\n{}{}events:\n  - at: 1m\n{apply}",
        default_and_four(),
        m5_pool("roomy", "default"),
        tiny_on("roomy", 12),
        tiny_on("four", 12),
    );
    let r = run(&text);
    assert_eq!(r.totals.pending_at_end, 0, "{:?}", r.totals);
    let nodes = pods_per_node(&r);
    assert_eq!(nodes["four"].len(), 3, "{nodes:?}");
    assert!(nodes["four"].iter().all(|&p| p <= 4), "{nodes:?}");
    assert_eq!(nodes["roomy"], [12], "{nodes:?}");
}

#[test]
fn a_start_state_node_is_sized_by_its_node_class() {
    // A node of NodePool `four` at the start, its capacity left to the
    // catalog, holds four of its pods; the other eight need two more.
    let node = r#"cluster:
  - apiVersion: v1
    kind: Node
    metadata:
      name: ip-10-0-1-11.ec2.internal
      labels:
        karpenter.sh/nodepool: four
        node.kubernetes.io/instance-type: m5.large
        topology.kubernetes.io/zone: us-east-1a
        karpenter.sh/capacity-type: on-demand
    status:
      conditions: [{ type: Ready, status: "True" }]
"#;
    let text = format!(
        "seed: 1\nduration: 10m\n{}nodePools:\n{}{}{node}workloads:\n{}",
        default_and_four(),
        m5_pool("roomy", "default"),
        m5_pool("four", "four"),
        tiny_on("four", 12),
    );
    let s = parse_scenario(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.initial_nodes[0].node.allocatable.pods, 4);
    let r = Simulation::new(s, &Builtin, &Builtin).run(&mut |_| {});
    assert_eq!(r.totals.pending_at_end, 0, "{:?}", r.totals);
    let nodes = pods_per_node(&r);
    assert_eq!(nodes["four"], [4, 4], "{nodes:?}");
}

#[test]
fn a_custom_catalog_takes_node_classes_that_do_not_change_sizing() {
    let classes = |extra: &str| {
        format!(
            "nodeClasses:\n{}{}",
            node_class("default", extra),
            node_class("unused", "      kubelet: { maxPods: 8 }\n")
        )
    };
    let plain = FULL.replace(
        "nodePools:",
        &format!("{}nodePools:", classes("      tags: { team: core }\n")),
    );
    let s = parse_scenario(&plain).unwrap();
    assert_eq!(s.cluster.catalog.get("c-large").unwrap().capacity.pods, 50);

    let tuned = FULL.replace(
        "nodePools:",
        &format!(
            "{}nodePools:",
            classes("      kubelet: { maxPods: 20, kubeReserved: { cpu: 1 } }\n")
        ),
    );
    assert_eq!(
        error(&tuned),
        "nodeClasses[0].spec: EC2NodeClass `default` (used by NodePool `general`) changes how nodes are sized (kubelet.maxPods, kubelet.kubeReserved), but `catalog` states each instance type's capacity and overhead itself. Put them in `catalog` (`capacity.pods`, `capacity.ephemeral-storage`, `overhead.kubeReserved`, `overhead.systemReserved`, `overhead.evictionThreshold`) and take them out of the class"
    );

    // A NodePool an event applies is held to the same rule.
    assert_eq!(plain.matches("\nevents:\n").count(), 1);
    let late = plain.replace(
        "\nevents:\n",
        "\nevents:\n  - at: 5m\n    apply:\n      apiVersion: karpenter.sh/v1\n      kind: NodePool\n      metadata: { name: late }\n      spec: { template: { spec: { nodeClassRef: { group: karpenter.k8s.aws, kind: EC2NodeClass, name: unused } } } }\n",
    );
    assert_eq!(
        error(&late),
        "nodeClasses[1].spec: EC2NodeClass `unused` (used by NodePool `late`) changes how nodes are sized (kubelet.maxPods), but `catalog` states each instance type's capacity and overhead itself. Put them in `catalog` (`capacity.pods`, `capacity.ephemeral-storage`, `overhead.kubeReserved`, `overhead.systemReserved`, `overhead.evictionThreshold`) and take them out of the class"
    );
}

#[test]
fn unknown_node_pool_fields_warn_with_the_field_and_the_line() {
    // A v1beta1-era NodePool: `expireAfter` under `disruption`, `kubelet`
    // in the template, and a misspelt field.
    let text = example()
        .replace(
            "        consolidateAfter: 30s",
            "        consolidateAfter: 30s\n        expireAfter: 24h",
        )
        .replace(
            "          expireAfter: 720h",
            "          expireAfter: 720h\n          kubelet: { maxPods: 20 }",
        )
        .replace("      limits:", "      weigth: 10\n      limits:");
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let s = parse_scenario(&text).unwrap();
    let got: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            format!(
                "nodePools[0].spec.template.spec.kubelet at line {}: not a field of karpenter.sh/v1 NodePool; it is ignored: karpenter.sh/v1 moved kubelet settings to the EC2NodeClass's spec.kubelet",
                line("kubelet:")
            ),
            format!(
                "nodePools[0].spec.weigth at line {}: not a field of karpenter.sh/v1 NodePool; it is ignored: remove it, or check its spelling and indentation",
                line("weigth:")
            ),
            format!(
                "nodePools[0].spec.disruption.expireAfter at line {}: not a field of karpenter.sh/v1 NodePool; it is ignored: karpenter.sh/v1 moved it to spec.template.spec.expireAfter, so as written nodes expire after the default 720h",
                line("expireAfter: 24h")
            ),
        ]
    );
    let w = &s.warnings[2];
    assert_eq!(w.path, "nodePools[0].spec.disruption.expireAfter");
    assert!(matches!(
        w.reason,
        dovetail_sim::WarningReason::UnknownField {
            schema: "karpenter.sh/v1 NodePool",
            moved: Some(_)
        }
    ));
    // Ignored, as the API server ignores it: the pool still expires nodes
    // after the template's 720h.
    assert_eq!(
        s.cluster.node_pools[0].expire_after,
        Some(std::time::Duration::from_secs(720 * 3600))
    );
}

#[test]
fn unknown_fields_are_found_in_flow_style_and_in_later_node_pools() {
    let text = "seed: 1\nduration: 5m\nnodePools:\n  - { apiVersion: karpenter.sh/v1, kind: NodePool, metadata: { name: a }, spec: {} }\n  - apiVersion: karpenter.sh/v1\n    kind: NodePool\n    metadata: { name: b, labelz: { x: y } }\n    spec: { template: { spec: { nodeClassRef: { apiVersion: karpenter.k8s.aws/v1beta1, kind: EC2NodeClass, name: default, group: karpenter.k8s.aws } } } }\n";
    let s = parse_scenario(text).unwrap();
    let got: Vec<(String, Option<usize>)> = s
        .warnings
        .iter()
        .map(|w| (w.path.clone(), w.line))
        .collect();
    assert_eq!(
        got,
        [
            ("nodePools[1].metadata.labelz".to_string(), Some(7)),
            (
                "nodePools[1].spec.template.spec.nodeClassRef.apiVersion".to_string(),
                Some(8)
            ),
        ]
    );
    assert!(
        s.warnings[1]
            .to_string()
            .contains("by `group: karpenter.k8s.aws`")
    );
}
