//! The scheduler screens existing nodes and planned NodeClaims by their
//! topology domains, and lists only those in the domains a pod's
//! constraints admit, instead of trying every one. These properties check
//! that it places every pod exactly where trying every candidate in order
//! does: on random clusters large enough to plan many NodeClaims, with
//! every kind of topology constraint, and in what-if solves without some
//! nodes over one shared `Prepared`, as disruption runs them.

use dovetail_core::builders::{Given, PodBuilder, node, node_pool, pod};
use dovetail_core::catalog::CapacityType;
use dovetail_core::labels;
use dovetail_core::model::Pod;
use dovetail_core::requirements::Operator;
use dovetail_core::scheduler::{NodeIndex, Plan, Prepared, solve_by_scan, solve_without};
use proptest::prelude::*;

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const NODE_TYPES: [&str; 3] = ["m5.large", "m5.xlarge", "c5.large"];
const TIERS: [&str; 2] = ["front", "back"];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Plain,
    ZoneSpread(i32),
    /// Counts every pod of its tier, whatever its kind.
    HostSpread(i32),
    ZoneSpreadMinDomains,
    ZoneSpreadAnyway,
    HostAnti,
    ZoneAnti,
    ZoneAffinity,
    HostAffinity,
    PreferHostAnti,
}

#[derive(Debug, Clone)]
struct PodSpec {
    cpu_m: u32,
    memory_mi: u32,
    kind: Kind,
    /// Which of a few sets of its kind the pod belongs to.
    set: usize,
    zone: Option<usize>,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    instance_type: usize,
    zone: usize,
    in_flight: bool,
    /// Bound pods, and whether each keeps its constraint.
    pods: Vec<(PodSpec, bool)>,
}

#[derive(Debug, Clone)]
struct ClusterSpec {
    zones: Vec<usize>,
    max_nodes: Option<u32>,
    nodes: Vec<NodeSpec>,
    pods: Vec<PodSpec>,
    removed: Vec<usize>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Plain),
        2 => (1..3i32).prop_map(Kind::ZoneSpread),
        2 => (1..3i32).prop_map(Kind::HostSpread),
        1 => Just(Kind::ZoneSpreadMinDomains),
        1 => Just(Kind::ZoneSpreadAnyway),
        3 => Just(Kind::HostAnti),
        1 => Just(Kind::ZoneAnti),
        1 => Just(Kind::ZoneAffinity),
        1 => Just(Kind::HostAffinity),
        1 => Just(Kind::PreferHostAnti),
    ]
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        prop_oneof![100u32..600, 600u32..1800],
        64u32..2048,
        kind(),
        0..3usize,
        prop::option::weighted(0.1, 0..ZONES.len()),
    )
        .prop_map(|(cpu_m, memory_mi, kind, set, zone)| PodSpec {
            cpu_m,
            memory_mi,
            kind,
            set,
            zone,
        })
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        0..NODE_TYPES.len(),
        0..ZONES.len(),
        prop::bool::weighted(0.2),
        prop::collection::vec((pod_spec(), any::<bool>()), 0..=3),
    )
        .prop_map(|(instance_type, zone, in_flight, pods)| NodeSpec {
            instance_type,
            zone,
            in_flight,
            pods,
        })
}

fn cluster_spec() -> impl Strategy<Value = ClusterSpec> {
    (
        prop::sample::subsequence(vec![0, 1, 2], 1..=3),
        prop::option::weighted(0.2, 3u32..30),
        prop::collection::vec(node_spec(), 0..=12),
        prop::collection::vec(pod_spec(), 1..=60),
        prop::collection::vec(0..12usize, 0..=2),
    )
        .prop_map(|(zones, max_nodes, nodes, pods, removed)| ClusterSpec {
            zones,
            max_nodes,
            nodes,
            pods,
            removed,
        })
}

fn kind_name(kind: Kind) -> String {
    format!("{kind:?}").to_lowercase().replace(['(', ')'], "-")
}

/// A pod of `spec` named `name`, with its kind's constraint unless
/// `unconstrained`.
fn build_pod(name: &str, spec: &PodSpec, unconstrained: bool) -> Pod {
    let app = format!("{}{}", kind_name(spec.kind), spec.set);
    let tier = TIERS[spec.set % TIERS.len()];
    let mut b: PodBuilder = pod(name)
        .cpu(&format!("{}m", spec.cpu_m))
        .memory(&format!("{}Mi", spec.memory_mi))
        .label("app", &app)
        .label("tier", tier);
    if let Some(z) = spec.zone {
        b = b.node_selector(labels::ZONE, ZONES[z]);
    }
    if unconstrained {
        return b.build();
    }
    let own = [("app", app.as_str())];
    b = match spec.kind {
        Kind::Plain => b,
        Kind::ZoneSpread(skew) => b.spread(labels::ZONE, skew, &own),
        Kind::HostSpread(skew) => b.spread(labels::HOSTNAME, skew, &[("tier", tier)]),
        Kind::ZoneSpreadMinDomains => {
            b.spread_with(labels::ZONE, 1, &own, |c| c.min_domains = Some(3))
        }
        Kind::ZoneSpreadAnyway => b.spread_anyway(labels::ZONE, 1, &own),
        Kind::HostAnti => b.anti_affinity(labels::HOSTNAME, &own),
        Kind::ZoneAnti => b.anti_affinity(labels::ZONE, &own),
        Kind::ZoneAffinity => b.affinity(labels::ZONE, &own),
        Kind::HostAffinity => b.affinity(labels::HOSTNAME, &own),
        Kind::PreferHostAnti => b.prefer_anti_affinity(10, labels::HOSTNAME, &own),
    };
    b.build()
}

fn build(spec: &ClusterSpec) -> Given {
    let zones: Vec<&str> = spec.zones.iter().map(|&z| ZONES[z]).collect();
    // Small types only, so NodeClaims fill up and many are planned.
    let mut pool = node_pool("default")
        .require(labels::ZONE, Operator::In, &zones)
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5", "c5"])
        .require(labels::INSTANCE_CPU, Operator::Lt, &["5"]);
    if let Some(n) = spec.max_nodes {
        pool = pool.limit("nodes", &n.to_string());
    }
    let mut given = Given::aws().node_pool(pool);
    for (i, n) in spec.nodes.iter().enumerate() {
        let bound: Vec<Pod> = n
            .pods
            .iter()
            .enumerate()
            .map(|(j, (p, constrained))| build_pod(&format!("bound-{i}-{j}"), p, !constrained))
            .collect();
        given = given.node(|c| {
            let b = node(
                c,
                &format!("node-{i:02}"),
                NODE_TYPES[n.instance_type],
                ZONES[n.zone],
                CapacityType::OnDemand,
            )
            .in_pool("default")
            .with_pods(bound);
            if n.in_flight { b.in_flight() } else { b }
        });
    }
    for (i, p) in spec.pods.iter().enumerate() {
        given.pods.push(build_pod(&format!("p-{i:02}"), p, false));
    }
    given
}

/// Everything a plan holds, the compiled requirements included.
fn full(plan: &Plan) -> String {
    format!("{plan:?}")
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn indexed_search_places_every_pod_where_trying_every_candidate_does(
        spec in cluster_spec(),
    ) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let plan = given.solve();
        let scanned = solve_by_scan(snapshot, &Prepared::new(snapshot), &given.pods, &[], None);
        prop_assert_eq!(full(&plan), full(&scanned));
    }

    #[test]
    fn what_ifs_over_one_prepared_snapshot_agree_with_trying_every_candidate(
        spec in cluster_spec(),
        cap in prop::option::of(0.05f64..2.0),
    ) {
        let given = build(&spec);
        let snapshot = &given.snapshot;
        let prepared = Prepared::reusable(snapshot);
        let n = snapshot.nodes.len();
        // Each node alone, then the random set, over the same `prepared`:
        // its shared caches must not carry one what-if into the next.
        let mut what_ifs: Vec<Vec<NodeIndex>> = (0..n).map(|i| vec![NodeIndex(i)]).collect();
        let mut removed: Vec<NodeIndex> =
            spec.removed.iter().filter(|&&r| r < n).map(|&r| NodeIndex(r)).collect();
        removed.sort();
        removed.dedup();
        what_ifs.push(removed);
        for removed in what_ifs {
            let mut pods: Vec<Pod> = removed
                .iter()
                .flat_map(|r| snapshot.nodes[r.0].pods.iter().map(|p| Pod::clone(p)))
                .collect();
            pods.extend(given.pods.iter().take(8).cloned());
            let indexed = solve_without(snapshot, &prepared, &pods, &removed, cap);
            let scanned = solve_by_scan(snapshot, &prepared, &pods, &removed, cap);
            prop_assert_eq!(full(&indexed), full(&scanned), "without {:?}", removed);
        }
    }
}

#[test]
fn the_benchmark_shape_is_placed_as_trying_every_candidate_places_it() {
    // Karpenter's benchmark: hostname anti-affinity and spreads over
    // hundreds of NodeClaims, where the listing path does most of the work.
    let snapshot = dovetail_core::scheduler::fixtures::benchmark_snapshot(40);
    let pods = dovetail_core::scheduler::fixtures::diverse_pods(1500, 7);
    let prepared = Prepared::new(&snapshot);
    let indexed = solve_without(&snapshot, &prepared, &pods, &[], None);
    let scanned = solve_by_scan(&snapshot, &prepared, &pods, &[], None);
    assert!(
        indexed.node_claims.len() >= 300,
        "{}",
        indexed.node_claims.len()
    );
    assert_eq!(full(&indexed), full(&scanned));
}
