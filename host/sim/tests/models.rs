//! The simulator's models, each on a small scenario: interruptions,
//! capacity shortages and the unavailable-offering cache, a given start
//! state, Jobs, diurnal curves and the static node-group baseline.

use dovetail_core::catalog::CapacityType;
use dovetail_core::policy::Builtin;
use dovetail_sim::{Autoscaler, Report, Scenario, SimEvent, Simulation, parse_scenario};

fn run(scenario: Scenario) -> (Report, Vec<SimEvent>) {
    let mut events = Vec::new();
    let report = Simulation::new(scenario, &Builtin, &Builtin).run(&mut |e| events.push(e.clone()));
    (report, events)
}

fn scenario(text: &str) -> Scenario {
    parse_scenario(text).unwrap_or_else(|e| panic!("{e}"))
}

const SPOT_POOL: &str = r#"
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: default }
    spec:
      template:
        spec:
          requirements:
            - { key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m] }
            - { key: karpenter.k8s.aws/instance-cpu, operator: Lt, values: ["5"] }
            - { key: karpenter.sh/capacity-type, operator: In, values: [spot] }
      disruption: { consolidationPolicy: WhenEmpty, consolidateAfter: 30s }
"#;

#[test]
fn an_interrupted_spot_node_is_drained_and_its_pods_run_elsewhere() {
    let s = scenario(&format!(
        "seed: 3\nduration: 15m\n{SPOT_POOL}\nworkloads:\n  - {{ deployment: web, replicas: 24, cpu: 500m, memory: 1Gi }}\nevents:\n  - at: 5m\n    interruption: {{ count: 1 }}\n"
    ));
    let (report, events) = run(s);
    let (victim, at) = events
        .iter()
        .find_map(|e| match e {
            SimEvent::Interrupted {
                name,
                at_ms,
                terminates_at_ms,
            } => {
                assert_eq!(*terminates_at_ms, at_ms + 120_000, "the 2-minute notice");
                Some((*name, *at_ms))
            }
            _ => None,
        })
        .expect("an interruption notice");
    assert_eq!(at, 300_000);
    let deleted = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeDeleted { name, at_ms, .. } if *name == victim => Some(*at_ms),
            _ => None,
        })
        .expect("the interrupted node goes");
    assert!(deleted <= at + 120_000, "gone by termination: {deleted}");
    let replacement = events.iter().any(|e| {
        matches!(e, SimEvent::NodeLaunched { at_ms, capacity_type, .. }
            if *at_ms >= at && *capacity_type == CapacityType::Spot)
    });
    assert!(replacement, "a new node is launched for the evicted pods");
    assert!(report.totals.pods_evicted > 0);
    assert_eq!(report.totals.interruptions, 1);
    assert_eq!(report.totals.pending_at_end, 0, "every pod runs again");
    let last = report.timeline.last().unwrap();
    assert_eq!(last.running_pods, 24);
}

/// Two types in two zones; `cheap` in zone a is the first choice.
const TWO_TYPES: &str = r#"
region: lab-1
catalog:
  - name: cheap
    capacity: { cpu: "4", memory: 16Gi, pods: "110" }
    offerings:
      - { zone: lab-1a, capacityType: on-demand, price: 0.10 }
      - { zone: lab-1b, capacityType: on-demand, price: 0.12 }
  - name: dear
    capacity: { cpu: "4", memory: 16Gi, pods: "110" }
    offerings:
      - { zone: lab-1a, capacityType: on-demand, price: 0.30 }
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: default }
    spec:
      disruption: { consolidationPolicy: WhenEmpty, consolidateAfter: Never }
workloads:
  - { deployment: app, replicas: 0, cpu: "3", memory: 4Gi }
"#;

/// `(second, "type/zone")` of each failed launch (`failed`) or launch.
fn offerings(events: &[SimEvent], failed: bool) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::InsufficientCapacity {
                at_ms,
                instance_type,
                zone,
                ..
            } if failed => Some((*at_ms, *instance_type, *zone)),
            SimEvent::NodeLaunched {
                at_ms,
                instance_type,
                zone,
                ..
            } if !failed => Some((*at_ms, *instance_type, *zone)),
            _ => None,
        })
        .map(|(at, t, z)| (at / 1000, format!("{t}/{z}")))
        .collect()
}

#[test]
fn a_capacity_shortage_falls_back_and_the_offering_stays_out_for_three_minutes() {
    let s = scenario(&format!(
        "seed: 1\nduration: 12m\n{TWO_TYPES}\nevents:\n  - at: 0s\n    capacityShortage: {{ for: 20m, instanceTypes: [cheap], zones: [lab-1a] }}\n  - at: 1m\n    scale: {{ deployment: app, replicas: 1 }}\n  - at: 2m\n    scale: {{ deployment: app, replicas: 2 }}\n  - at: 6m\n    scale: {{ deployment: app, replicas: 3 }}\n"
    ));
    let (report, events) = run(s);
    let ice = offerings(&events, true);
    let launched = offerings(&events, false);
    // At 1m the first choice fails and the same launch falls back.
    assert_eq!(ice[0].1, "cheap/lab-1a", "{ice:?}");
    assert!((60..62).contains(&ice[0].0), "{ice:?}");
    assert_eq!(launched[0].1, "cheap/lab-1b", "{launched:?}");
    // At 2m the offering is still in the unavailable-offering cache: the
    // plan leaves it out, so nothing fails.
    assert!((120..123).contains(&launched[1].0), "{launched:?}");
    assert_eq!(launched[1].1, "cheap/lab-1b");
    assert_eq!(
        ice.iter().filter(|(t, _)| *t < 240).count(),
        1,
        "no retry inside the window: {ice:?}"
    );
    // At 6m the cache has expired: the offering is tried (and fails) again.
    assert!(ice.iter().any(|(t, _)| (360..363).contains(t)), "{ice:?}");
    assert_eq!(launched[2].1, "cheap/lab-1b");
    assert_eq!(report.totals.insufficient_capacity_errors, 2);
    assert_eq!(report.totals.pending_at_end, 0);
}

#[test]
fn with_no_capacity_anywhere_pods_wait_and_run_when_it_returns() {
    let s = scenario(&format!(
        "seed: 1\nduration: 10m\n{TWO_TYPES}\nevents:\n  - at: 0s\n    capacityShortage: {{ for: 4m }}\n  - at: 1m\n    scale: {{ deployment: app, replicas: 2 }}\n"
    ));
    let (report, events) = run(s);
    let launched = offerings(&events, false);
    assert!(!launched.is_empty());
    assert!(launched.iter().all(|(t, _)| *t >= 240), "{launched:?}");
    assert_eq!(report.totals.pending_at_end, 0);
    assert!(report.totals.pending_max_seconds >= 180.0);
}

#[test]
fn a_given_start_state_is_used_before_anything_is_launched() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/start-state.yaml"
    ))
    .unwrap();
    let s = scenario(&text);
    let initial = s.initial_nodes.len();
    let (report, events) = run(s);
    let first = report.timeline.first().unwrap();
    assert_eq!(first.nodes_on_demand + first.nodes_spot, initial);
    assert_eq!(first.pending_pods, 0, "every replica starts bound");
    // The pods have somewhere to run: nothing is provisioned for them; the
    // only launches are consolidation replacements.
    assert!(
        !report.decisions.iter().any(|d| d.kind == "provisioning"),
        "{:#?}",
        report.decisions
    );
    let launched = events
        .iter()
        .filter(|e| matches!(e, SimEvent::NodeLaunched { .. }))
        .count();
    let replacements: usize = report
        .decisions
        .iter()
        .filter(|d| d.kind != "provisioning")
        .map(|d| d.launched.len())
        .sum();
    assert_eq!(launched, replacements);
    assert!(
        report.totals.nodes_terminated > 0,
        "the scale-down leaves nodes to consolidate: {:#?}",
        report.decisions
    );
}

#[test]
fn jobs_run_their_completions_and_their_nodes_go_afterwards() {
    let s = scenario(&format!(
        "seed: 2\nduration: 30m\n{SPOT_POOL}\nworkloads:\n  - {{ job: batch, at: 1m, completions: 40, parallelism: 20, duration: 3m, cpu: \"1\", memory: 1Gi }}\n"
    ));
    let (report, _) = run(s);
    assert_eq!(report.totals.jobs_completed, 1);
    let peak = report
        .timeline
        .iter()
        .map(|s| s.running_pods)
        .max()
        .unwrap();
    assert!(peak >= 20, "parallelism 20 reached: {peak}");
    let last = report.timeline.last().unwrap();
    assert_eq!(last.running_pods, 0);
    assert_eq!(last.nodes_on_demand + last.nodes_spot, 0, "empty nodes go");
}

#[test]
fn a_diurnal_curve_grows_and_shrinks_the_cluster() {
    let s = scenario(&format!(
        "seed: 4\nduration: 2h\n{SPOT_POOL}\nworkloads:\n  - deployment: web\n    cpu: 500m\n    memory: 1Gi\n    diurnal: {{ min: 4, max: 60, peakAt: 1h, period: 2h, step: 5m }}\n"
    ));
    let (report, _) = run(s);
    let nodes = |t: u64| {
        let s = report.timeline.iter().find(|s| s.at_seconds == t).unwrap();
        (s.nodes_spot, s.running_pods)
    };
    let (start, low) = nodes(60);
    let (peak, high) = nodes(3_600);
    let (end, _) = nodes(7_200);
    assert_eq!(low, 4);
    assert!(high >= 55, "{high}");
    assert!(peak > start && peak > end, "{start} {peak} {end}");
}

#[test]
fn the_static_baseline_removes_under_used_nodes_only_after_ten_minutes() {
    let mut s = dovetail_sim::demo_scenario(1);
    s.autoscaler = Autoscaler::StaticNodeGroups(s.baseline_groups());
    let (report, events) = run(s);
    let mut ready = std::collections::HashMap::new();
    let mut removals = Vec::new();
    for e in &events {
        match e {
            SimEvent::NodeReady { at_ms, name } => {
                ready.insert(*name, *at_ms);
            }
            SimEvent::NodeDeleted { at_ms, name, .. } => removals.push((*at_ms, ready[name])),
            _ => {}
        }
    }
    assert!(!removals.is_empty(), "{:#?}", report.decisions);
    // Unneeded for ten minutes first: never sooner after the node came up.
    assert!(
        removals.iter().all(|&(gone, up)| gone >= up + 10 * 60_000),
        "{removals:?}"
    );
    assert!(report.timeline.iter().all(|s| s.nodes_spot == 0));
    assert!(
        report
            .decisions
            .iter()
            .any(|d| d.kind == "scale-up" && d.decided_by == "least-waste")
    );
}

#[test]
fn the_same_seed_gives_the_same_storm() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/spot-storm.yaml"
    ))
    .unwrap();
    let a = run(scenario(&text)).0;
    let b = run(scenario(&text)).0;
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert!(a.totals.interruptions > 0 && a.totals.insufficient_capacity_errors > 0);
}

#[test]
fn a_drain_evicts_no_faster_than_the_pod_disruption_budget_allows() {
    let s = scenario(&format!(
        "seed: 5\nduration: 10m\n{SPOT_POOL}\ncluster:\n  podDisruptionBudgets:\n    - {{ name: web, selector: {{ matchLabels: {{ app: web }} }}, maxUnavailable: 1 }}\nworkloads:\n  - {{ deployment: web, replicas: 12, cpu: \"1\", memory: 1Gi, labels: {{ app: web }} }}\nevents:\n  - at: 3m\n    interruption: {{ count: 1 }}\n"
    ));
    let (report, events) = run(s);
    let notice = events
        .iter()
        .find_map(|e| match e {
            SimEvent::Interrupted { at_ms, .. } => Some(*at_ms / 1000),
            _ => None,
        })
        .expect("an interruption");
    // Before the instance is gone, at most one `web` pod is ever down.
    let during: Vec<usize> = report
        .timeline
        .iter()
        .filter(|s| s.at_seconds >= notice && s.at_seconds < notice + 120)
        .map(|s| s.pending_pods)
        .collect();
    assert!(!during.is_empty());
    assert!(during.iter().all(|&p| p <= 1), "{during:?}");
    assert!(report.totals.pods_evicted >= 1);
    assert_eq!(report.totals.pending_at_end, 0);
}

#[test]
fn scenario_workloads_can_spread_and_repel_their_own_pods() {
    let s = scenario(&format!(
        "seed: 6\nduration: 5m\n{SPOT_POOL}\nworkloads:\n  - deployment: web\n    replicas: 6\n    cpu: 250m\n    memory: 256Mi\n    labels: {{ app: web }}\n    topologySpreadConstraints:\n      - {{ topologyKey: topology.kubernetes.io/zone, maxSkew: 1 }}\n"
    ));
    let (report, events) = run(s);
    assert_eq!(report.totals.pending_at_end, 0);
    let zones: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match e {
            SimEvent::NodeLaunched { zone, .. } => Some(zone.to_string()),
            _ => None,
        })
        .collect();
    assert!(zones.len() >= 3, "web spreads over zones: {zones:?}");

    // Three small pods would share one node; anti-affinity gives each its own.
    let s = scenario(&format!(
        "seed: 6\nduration: 5m\n{SPOT_POOL}\nworkloads:\n  - deployment: db\n    replicas: 3\n    cpu: 250m\n    memory: 256Mi\n    labels: {{ app: db }}\n    podAntiAffinity: [kubernetes.io/hostname]\n"
    ));
    let (report, _) = run(s);
    assert_eq!(report.totals.pending_at_end, 0);
    assert_eq!(report.totals.nodes_launched, 3, "one db pod per node");

    let bad = parse_scenario(&format!(
        "duration: 5m\n{SPOT_POOL}\nworkloads:\n  - deployment: web\n    replicas: 2\n    cpu: 250m\n    memory: 256Mi\n    podAntiAffinity: [kubernetes.io/hostname]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("workloads[0].podAntiAffinity") && bad.contains("labels"),
        "{bad}"
    );
}

#[test]
fn an_expired_node_is_replaced_when_it_expires() {
    let pool = SPOT_POOL.replace(
        "      disruption:",
        "          expireAfter: 10m\n      disruption:",
    );
    assert!(pool.contains("expireAfter"), "{pool}");
    let s = scenario(&format!(
        "seed: 8\nduration: 15m\n{pool}\nworkloads:\n  - {{ deployment: web, replicas: 4, cpu: 500m, memory: 512Mi }}\n"
    ));
    let (report, events) = run(s);
    let first_launch = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeLaunched { at_ms, name, .. } => Some((*at_ms, *name)),
            _ => None,
        })
        .unwrap();
    let deleted = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeDeleted { at_ms, name, .. } if *name == first_launch.1 => Some(*at_ms),
            _ => None,
        })
        .expect("the node expires");
    let expires = first_launch.0 + 10 * 60_000;
    assert!(
        deleted >= expires && deleted <= expires + 20_000,
        "launched {} ms, deleted {deleted} ms",
        first_launch.0
    );
    assert!(report.decisions.iter().any(|d| d.kind == "Expiration"));
    assert_eq!(report.totals.pending_at_end, 0);
}

#[test]
fn a_do_not_disrupt_pod_holds_an_expired_node_until_its_termination_grace_period() {
    let pool = SPOT_POOL.replace(
        "      disruption:",
        "          expireAfter: 10m\n          terminationGracePeriod: 3m\n      disruption:",
    );
    let s = scenario(&format!(
        "seed: 9\nduration: 20m\n{pool}\nworkloads:\n  - {{ deployment: batch, replicas: 2, cpu: 500m, memory: 512Mi, annotations: {{ karpenter.sh/do-not-disrupt: \"true\" }} }}\n"
    ));
    let (report, events) = run(s);
    let (launched_at, name) = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeLaunched { at_ms, name, .. } => Some((*at_ms, *name)),
            _ => None,
        })
        .unwrap();
    let deleted = events
        .iter()
        .find_map(|e| match e {
            SimEvent::NodeDeleted { at_ms, name: n, .. } if *n == name => Some(*at_ms),
            _ => None,
        })
        .expect("the node goes in the end");
    let expires = launched_at + 10 * 60_000;
    // The protected pods hold the drain for the whole grace period, then
    // they are deleted and the node goes.
    assert!(
        deleted >= expires + 3 * 60_000 && deleted <= expires + 3 * 60_000 + 2_000,
        "expired at {expires} ms, deleted at {deleted} ms"
    );
    assert!(report.decisions.iter().any(|d| d.kind == "Expiration"));
    assert_eq!(
        report.totals.pending_at_end, 0,
        "the pods run again elsewhere"
    );
}

/// A NodePool requirement with one value becomes a node label, so a pod
/// selecting that custom label binds to the node launched for it.
#[test]
fn a_pod_selecting_a_custom_node_pool_label_binds() {
    let pool = SPOT_POOL.replace(
        "          requirements:\n",
        "          requirements:\n            - { key: team, operator: In, values: [a] }\n",
    );
    assert!(pool.contains("team"));
    let s = scenario(&format!(
        "seed: 1\nduration: 5m\n{pool}\nworkloads:\n  - {{ deployment: web, replicas: 3, cpu: 500m, memory: 1Gi, nodeSelector: {{ team: a }} }}\n"
    ));
    let (report, _) = run(s);
    assert_eq!(report.totals.nodes_launched, 1);
    assert_eq!(
        report.totals.pending_at_end, 0,
        "pods selecting team=a stay pending"
    );
    assert!(report.totals.all_running_after_seconds.is_some());
}
