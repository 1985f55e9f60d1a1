//! Properties of a disruption pass over small random clusters on the embedded
//! AWS catalog: every evicted pod keeps a place, no NodePool's budget is
//! exceeded, a pass is deterministic, excluded nodes are never touched and
//! consolidation only ever saves money.

use std::collections::BTreeMap;
use std::time::Duration;

use dovetail_core::builders::{Given, node, node_pool, pod};
use dovetail_core::catalog::CapacityType;
use dovetail_core::disruption::budgets::{DisruptionReason, PoolCounts, budget_report};
use dovetail_core::disruption::{CommandReason, Method, Pass, Settings, disrupt};
use dovetail_core::labels;
use dovetail_core::model::{Budget, ConsolidationPolicy, Pod};
use dovetail_core::policy::Builtin;
use dovetail_core::requirements::Operator;
use dovetail_core::scheduler::{Prepared, Snapshot, solve_without};
use proptest::prelude::*;

/// Monday 2024-01-15 20:00 UTC.
const NOW: u64 = 1_705_348_800;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

const NODE_TYPES: [&str; 5] = [
    "m5.large",
    "m5.xlarge",
    "m5.2xlarge",
    "c5.xlarge",
    "r5.large",
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const CPU: [&str; 4] = ["100m", "250m", "500m", "1"];
const APPS: [&str; 3] = ["web", "api", "worker"];
const BUDGET_NODES: [&str; 9] = ["0", "1", "2", "3", "10%", "25%", "34%", "50%", "100%"];
const REASONS: [&str; 3] = ["Empty", "Underutilized", "Drifted"];

#[derive(Debug, Clone)]
struct PoolSpec {
    budgets: Vec<(usize, Vec<&'static str>)>,
    when_empty: bool,
    /// 0 = 0s, 1 = 30m, 2 = Never.
    consolidate_after: u8,
    /// expireAfter 48h (else Never).
    expires: bool,
}

#[derive(Debug, Clone)]
struct PodSpec {
    cpu: usize,
    app: usize,
    do_not_disrupt: bool,
    daemon: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    NotReady,
    Deleting,
    Nominated,
    DoNotDisrupt,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    pool: usize,
    instance_type: usize,
    zone: usize,
    pods: Vec<PodSpec>,
    state: State,
    /// Pods last changed 2h ago (else a minute ago).
    quiet: bool,
    drifted: bool,
    old: bool,
}

#[derive(Debug, Clone)]
struct ClusterSpec {
    pools: Vec<PoolSpec>,
    nodes: Vec<NodeSpec>,
    /// Per app: a PDB allowing this many disruptions.
    pdbs: Vec<Option<i32>>,
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    let budget = (
        0..BUDGET_NODES.len(),
        proptest::sample::subsequence(REASONS.to_vec(), 0..=2),
    );
    (
        prop::collection::vec(budget, 0..=2),
        prop::bool::weighted(0.2),
        prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(budgets, when_empty, consolidate_after, expires)| PoolSpec {
                budgets,
                when_empty,
                consolidate_after,
                expires,
            },
        )
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        0..CPU.len(),
        0..APPS.len(),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(cpu, app, do_not_disrupt, daemon)| PodSpec {
            cpu,
            app,
            do_not_disrupt,
            daemon,
        })
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let state = prop_oneof![
        12 => Just(State::Normal),
        1 => Just(State::NotReady),
        1 => Just(State::Deleting),
        1 => Just(State::Nominated),
        1 => Just(State::DoNotDisrupt),
    ];
    let pods = prop_oneof![
        1 => Just(Vec::new()),
        10 => prop::collection::vec(pod_spec(), 1..7),
    ];
    (
        0..2usize,
        0..NODE_TYPES.len(),
        0..ZONES.len(),
        pods,
        state,
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(pool, instance_type, zone, pods, state, quiet, drifted, old)| NodeSpec {
                pool,
                instance_type,
                zone,
                pods,
                state,
                quiet,
                drifted,
                old,
            },
        )
}

fn cluster_spec() -> impl Strategy<Value = ClusterSpec> {
    (
        prop::collection::vec(pool_spec(), 1..=2),
        prop::collection::vec(node_spec(), 2..=12),
        prop::collection::vec(
            prop_oneof![2 => Just(None), 1 => (0..3i32).prop_map(Some)],
            APPS.len(),
        ),
    )
        .prop_map(|(pools, mut nodes, pdbs)| {
            for n in &mut nodes {
                n.pool %= pools.len();
            }
            ClusterSpec { pools, nodes, pdbs }
        })
}

fn build(spec: &ClusterSpec) -> Given {
    let pools: Vec<_> = spec
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let budgets = p
                .budgets
                .iter()
                .map(|(n, reasons)| Budget {
                    nodes: BUDGET_NODES[*n].parse().unwrap(),
                    reasons: reasons
                        .iter()
                        .map(|r| DisruptionReason::from_name(r).unwrap())
                        .collect(),
                    window: None,
                })
                .collect();
            let families: &[&str] = if i == 0 {
                &["m5", "c5", "r5"]
            } else {
                &["m5", "c5"]
            };
            node_pool(&format!("pool-{i}"))
                .require(labels::INSTANCE_FAMILY, Operator::In, families)
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
                .budgets(budgets)
                .consolidation_policy(if p.when_empty {
                    ConsolidationPolicy::WhenEmpty
                } else {
                    ConsolidationPolicy::WhenEmptyOrUnderutilized
                })
                .consolidate_after(match p.consolidate_after {
                    0 => Some(Duration::ZERO),
                    1 => Some(Duration::from_secs(1_800)),
                    _ => None,
                })
                .expire_after(p.expires.then(|| Duration::from_secs(2 * DAY)))
        })
        .collect();
    let mut given = Given::aws();
    for p in &pools {
        given = given.node_pool(p.clone());
    }
    for (a, allowed) in spec.pdbs.iter().enumerate() {
        if let Some(allowed) = allowed {
            let name = format!("{}-pdb", APPS[a]);
            given = given.pdb("default", &name, &[("app", APPS[a])], *allowed);
        }
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        let pool = pools[n.pool].build();
        // A template the NodePool has since changed (a label was dropped).
        let before = pools[n.pool].clone().label("generation", "old").build();
        let name = format!("node-{i:02}");
        let instance_type = NODE_TYPES[n.instance_type];
        given = given.node(|c| {
            let allocatable = c.get(instance_type).expect("known type").allocatable();
            let mut b = node(
                c,
                &name,
                instance_type,
                ZONES[n.zone],
                CapacityType::OnDemand,
            );
            b = b.launched_from(if n.drifted { &before } else { &pool });
            b = b
                .created_at(NOW - if n.old { 3 * DAY } else { DAY })
                .last_pod_event(NOW - if n.quiet { 2 * HOUR } else { 60 });
            b = match n.state {
                State::Normal => b,
                State::NotReady => b.not_ready(),
                State::Deleting => b.marked_for_deletion(),
                State::Nominated => b.nominated(),
                State::DoNotDisrupt => b.annotation(labels::DO_NOT_DISRUPT, "true"),
            };
            let (mut cpu, mut memory) = (0, 0);
            let mut pods = Vec::new();
            for (j, p) in n.pods.iter().enumerate() {
                let mut pb = pod(&format!("{name}-{j}"))
                    .cpu(CPU[p.cpu])
                    .memory("256Mi")
                    .label("app", APPS[p.app])
                    .started_at(NOW - 2 * HOUR);
                if p.daemon {
                    pb = pb.daemon("logs");
                }
                if p.do_not_disrupt {
                    pb = pb.do_not_disrupt("true");
                }
                let built = pb.build();
                if cpu + built.requests.cpu > allocatable.cpu
                    || memory + built.requests.memory > allocatable.memory
                {
                    continue;
                }
                cpu += built.requests.cpu;
                memory += built.requests.memory;
                pods.push(built);
            }
            b.with_pods(pods)
        });
    }
    given
}

fn pass_over(snapshot: &Snapshot) -> Pass {
    disrupt(snapshot, NOW, &Builtin, &Settings::default())
}

fn describe(pass: &Pass) -> String {
    serde_json::to_string_pretty(pass).expect("a pass serializes")
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every pod a command evicts schedules on what is left, with no more
    /// new NodeClaims than the command launches.
    #[test]
    fn every_evicted_pod_keeps_a_feasible_place(spec in cluster_spec()) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let pass = pass_over(snapshot);
        let prepared = Prepared::reusable(snapshot);
        for c in pass.commands.iter().filter(|c| c.method != Method::Expiration) {
            let pods: Vec<Pod> = c
                .node_indices
                .iter()
                .flat_map(|&i| snapshot.nodes[i].pods.iter())
                .filter(|p| c.pods_evicted.contains(&p.key()))
                .map(|p| Pod::clone(p))
                .collect();
            prop_assert_eq!(pods.len(), c.pods_evicted.len(), "{}", describe(&pass));
            let plan = solve_without(snapshot, &prepared, &pods, &c.node_indices, None);
            prop_assert!(
                plan.unschedulable.is_empty(),
                "unschedulable {:?} after {}",
                plan.unschedulable,
                describe(&pass)
            );
            prop_assert!(
                plan.node_claims.len() <= c.replacements.len(),
                "{} NodeClaims needed: {}",
                plan.node_claims.len(),
                describe(&pass)
            );
            prop_assert!(plan.bindings.iter().all(|b| !c.nodes.contains(&b.node)));
        }
    }

    /// Per NodePool and reason, a pass removes no more nodes than the
    /// budgets allow (expiration is forceful and not budgeted).
    #[test]
    fn no_pass_exceeds_a_budget(spec in cluster_spec()) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let pass = pass_over(snapshot);
        let mut removed: BTreeMap<(String, DisruptionReason), u32> = BTreeMap::new();
        for c in pass.commands.iter().filter(|c| c.method != Method::Expiration) {
            let reason = c.reason.budget().expect("a budget reason");
            for &i in &c.node_indices {
                let pool = snapshot.nodes[i].node_pool.expect("a managed node");
                *removed.entry((pool.to_string(), reason)).or_default() += 1;
            }
        }
        for ((pool, reason), n) in removed {
            let p = snapshot
                .node_pools
                .iter()
                .find(|p| p.name.as_str() == pool)
                .expect("a known pool");
            let mut counts = PoolCounts::default();
            for node in snapshot.nodes.iter().filter(|n| n.node_pool == Some(p.name)) {
                counts.add_node(node.ready, node.marked_for_deletion);
            }
            let allowed = budget_report(p, counts, NOW).allowed(reason);
            prop_assert!(
                n <= allowed,
                "{pool} allows {allowed} {reason}, the pass removes {n}: {}",
                describe(&pass)
            );
        }
    }

    /// The same input gives the same pass, to the byte.
    #[test]
    fn a_pass_is_deterministic(spec in cluster_spec()) {
        let given = build(&spec);
        let first = describe(&pass_over(&given.snapshot));
        let second = describe(&pass_over(&given.snapshot.clone()));
        prop_assert_eq!(first, second);
    }

    /// Excluded, nominated, protected and deleting nodes are never removed by
    /// a voluntary disruption; consolidation always saves money with
    /// strictly cheaper replacements.
    #[test]
    fn excluded_nodes_are_never_disrupted_and_consolidation_saves(spec in cluster_spec()) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let pass = pass_over(snapshot);
        for c in pass.commands.iter().filter(|c| c.method != Method::Expiration) {
            for (name, &i) in c.nodes.iter().zip(&c.node_indices) {
                prop_assert!(
                    pass.exclusions.iter().all(|e| e.node != *name),
                    "{} is excluded but disrupted: {}",
                    name,
                    describe(&pass)
                );
                let n = &snapshot.nodes[i];
                prop_assert!(!n.nominated && !n.marked_for_deletion, "{}", describe(&pass));
                prop_assert!(
                    !n.annotations.iter().any(|(k, _)| k.as_str() == labels::DO_NOT_DISRUPT),
                    "{}",
                    describe(&pass)
                );
                prop_assert!(
                    !n.pods.iter().any(|p| !p.is_daemon()
                        && p.annotations.iter().any(|(k, _)| k.as_str() == labels::DO_NOT_DISRUPT)),
                    "{} runs a do-not-disrupt pod: {}",
                    name,
                    describe(&pass)
                );
            }
            if c.reason == CommandReason::Underutilized {
                let removed: f64 = c
                    .node_indices
                    .iter()
                    .map(|&i| snapshot.nodes[i].price_per_hour)
                    .sum();
                let replacement: f64 = c.replacements.iter().map(|r| r.offerings[0].price).sum();
                prop_assert!(c.replacements.len() <= 1, "{}", describe(&pass));
                prop_assert!(c.savings_per_hour > 0.0, "{}", describe(&pass));
                prop_assert!(
                    (c.savings_per_hour - (removed - replacement)).abs() < 1e-9,
                    "{}",
                    describe(&pass)
                );
                for r in &c.replacements {
                    prop_assert!(
                        r.offerings.iter().all(|o| o.price < removed),
                        "{}",
                        describe(&pass)
                    );
                }
            }
        }
    }

    /// Each command's nodes qualify for its method: emptiness removes only
    /// empty nodes, drift only drifted ones, consolidation only nodes past
    /// consolidateAfter in NodePools that consolidate underutilized nodes,
    /// expiration only nodes past expireAfter.
    #[test]
    fn each_command_removes_only_nodes_its_method_applies_to(spec in cluster_spec()) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let pass = pass_over(snapshot);
        for c in &pass.commands {
            for &i in &c.node_indices {
                let n = &snapshot.nodes[i];
                let pool = snapshot
                    .node_pools
                    .iter()
                    .find(|p| Some(p.name) == n.node_pool)
                    .expect("a managed node");
                let quiet_for = |after: Option<Duration>| {
                    after.is_some_and(|a| NOW - n.last_pod_event >= a.as_secs())
                };
                let ok = match c.method {
                    Method::Expiration => pool
                        .expire_after
                        .is_some_and(|e| n.created_at + e.as_secs() <= NOW),
                    Method::Emptiness => {
                        n.pods.iter().all(|p| p.is_daemon())
                            && quiet_for(pool.disruption.consolidate_after)
                    }
                    Method::Drift => {
                        // The template changed, or the node's labels no
                        // longer meet the NodePool's `In` requirements.
                        n.node_pool_hash != Some(pool.template_hash())
                            || pool.requirements.iter().any(|r| {
                                r.operator == Operator::In
                                    && !n.labels.iter().any(|(k, v)| {
                                        k.as_str() == r.key
                                            && r.values.iter().any(|x| x == v.as_str())
                                    })
                            })
                    }
                    Method::MultiNodeConsolidation | Method::SingleNodeConsolidation => {
                        pool.disruption.consolidation_policy
                            == ConsolidationPolicy::WhenEmptyOrUnderutilized
                            && quiet_for(pool.disruption.consolidate_after)
                    }
                };
                prop_assert!(ok, "{} does not qualify for {:?}: {}", n.name, c.method, describe(&pass));
            }
        }
    }
}
