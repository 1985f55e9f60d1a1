//! Properties of the provisioning simulation over small random clusters on
//! the embedded AWS catalog: nothing is over-committed, every placement keeps
//! its pod's hard constraints, the plan does not depend on input order, and
//! every pod left over says why.

use std::collections::{BTreeMap, BTreeSet};

use dovetail_core::builders::{Given, PodBuilder, daemon_set, node, node_pool, pod};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::labels;
use dovetail_core::model::{Pod, PodKey, TaintEffect, untolerated};
use dovetail_core::requirements::Operator;
use dovetail_core::resources::Resources;
use dovetail_core::rng::SplitMix;
use dovetail_core::scheduler::{NodeClaimPlan, Plan};
use dovetail_core::sym::Sym;
use proptest::prelude::*;

const ZONES: [&str; 4] = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"];
const FAMILIES: [&str; 6] = ["m5", "c5", "r5", "t3", "m6g", "c6g"];
const NODE_TYPES: [&str; 5] = ["m5.large", "m5.xlarge", "c5.large", "m6g.large", "r5.large"];
const ARCHES: [&str; 2] = ["amd64", "arm64"];
const TEAMS: [&str; 2] = ["red", "blue"];
const PLAIN_APPS: [&str; 3] = ["web", "db", "cache"];

#[derive(Debug, Clone)]
enum Limit {
    Cpu(u32),
    Nodes(u32),
}

#[derive(Debug, Clone)]
struct PoolSpec {
    weight: i32,
    zones: Vec<usize>,
    families: Vec<usize>,
    spot_only: bool,
    tainted: bool,
    team: Option<usize>,
    limit: Option<Limit>,
}

/// What a pending or bound pod is, which fixes its label and constraint:
/// every pod labelled `zone-spread-1` has the same zone spread, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain(usize),
    ZoneSpread(usize),
    HostSpread(usize),
    HostAnti(usize),
    ZoneAnti(usize),
}

impl Kind {
    fn app(self) -> String {
        match self {
            Kind::Plain(i) => PLAIN_APPS[i].to_string(),
            Kind::ZoneSpread(i) => format!("zone-spread-{i}"),
            Kind::HostSpread(i) => format!("host-spread-{i}"),
            Kind::HostAnti(i) => format!("host-anti-{i}"),
            Kind::ZoneAnti(i) => format!("zone-anti-{i}"),
        }
    }

    fn has_spread(self) -> bool {
        matches!(self, Kind::ZoneSpread(_) | Kind::HostSpread(_))
    }
}

#[derive(Debug, Clone, Copy)]
enum Tolerate {
    Nothing,
    Pool(usize),
    Everything,
}

#[derive(Debug, Clone)]
struct PodSpec {
    cpu_m: u32,
    memory_mi: u32,
    kind: Kind,
    team: Option<usize>,
    arch: Option<usize>,
    zone: Option<usize>,
    tolerate: Tolerate,
}

#[derive(Debug, Clone)]
struct BoundSpec {
    cpu_m: u32,
    kind: Kind,
    /// Carries its kind's constraint (only matters for anti-affinity, which
    /// running pods keep enforcing).
    constrained: bool,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    instance_type: usize,
    zone: usize,
    pool: Option<usize>,
    team: Option<usize>,
    tainted: bool,
    in_flight: bool,
    pods: Vec<BoundSpec>,
}

#[derive(Debug, Clone)]
struct DaemonSpec {
    cpu_m: u32,
    tolerate_all: bool,
}

#[derive(Debug, Clone)]
struct ClusterSpec {
    pools: Vec<PoolSpec>,
    nodes: Vec<NodeSpec>,
    daemon_sets: Vec<DaemonSpec>,
    pods: Vec<PodSpec>,
}

fn subset(n: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n)
}

fn limit() -> impl Strategy<Value = Option<Limit>> {
    prop_oneof![
        3 => Just(None),
        1 => (4u32..48).prop_map(|c| Some(Limit::Cpu(c))),
        1 => (1u32..4).prop_map(|n| Some(Limit::Nodes(n))),
    ]
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (
        0i32..3,
        subset(ZONES.len()),
        subset(FAMILIES.len()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.3, 0..TEAMS.len()),
        limit(),
    )
        .prop_map(
            |(weight, zones, families, spot_only, tainted, team, limit)| PoolSpec {
                weight,
                zones,
                families,
                spot_only,
                tainted,
                team,
                limit,
            },
        )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (0..PLAIN_APPS.len()).prop_map(Kind::Plain),
        2 => (0..2usize).prop_map(Kind::ZoneSpread),
        1 => (0..2usize).prop_map(Kind::HostSpread),
        2 => (0..2usize).prop_map(Kind::HostAnti),
        1 => (0..2usize).prop_map(Kind::ZoneAnti),
    ]
}

fn tolerate(pools: usize) -> impl Strategy<Value = Tolerate> {
    prop_oneof![
        3 => Just(Tolerate::Nothing),
        2 => (0..pools).prop_map(Tolerate::Pool),
        1 => Just(Tolerate::Everything),
    ]
}

fn pod_spec(pools: usize) -> impl Strategy<Value = PodSpec> {
    (
        prop_oneof![100u32..1000, 1000u32..4000],
        prop_oneof![64u32..1024, 1024u32..8192],
        kind(),
        prop::option::weighted(0.2, 0..TEAMS.len()),
        prop::option::weighted(0.2, 0..ARCHES.len()),
        prop::option::weighted(0.15, 0..ZONES.len()),
        tolerate(pools),
    )
        .prop_map(|(cpu_m, memory_mi, kind, team, arch, zone, tolerate)| {
            // Spread pods carry no node selector, so every node counts
            // towards their skew (nodeAffinityPolicy only filters by it).
            let selectors = !kind.has_spread();
            PodSpec {
                cpu_m,
                memory_mi,
                kind,
                team: team.filter(|_| selectors),
                arch: arch.filter(|_| selectors),
                zone: zone.filter(|_| selectors),
                tolerate,
            }
        })
}

fn node_spec(pools: usize) -> impl Strategy<Value = NodeSpec> {
    (
        0..NODE_TYPES.len(),
        0..ZONES.len(),
        prop::option::of(0..pools),
        prop::option::weighted(0.3, 0..TEAMS.len()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
        prop::collection::vec(
            (50u32..500, kind(), any::<bool>()).prop_map(|(cpu_m, kind, constrained)| BoundSpec {
                cpu_m,
                kind,
                constrained,
            }),
            0..=3,
        ),
    )
        .prop_map(
            |(instance_type, zone, pool, team, tainted, in_flight, pods)| NodeSpec {
                instance_type,
                zone,
                pool,
                team,
                tainted,
                in_flight,
                pods,
            },
        )
}

fn cluster_spec() -> impl Strategy<Value = ClusterSpec> {
    prop::collection::vec(pool_spec(), 1..=3).prop_flat_map(|pools| {
        let n = pools.len();
        (
            Just(pools),
            prop::collection::vec(node_spec(n), 0..=3),
            prop::collection::vec(
                (50u32..400, any::<bool>()).prop_map(|(cpu_m, tolerate_all)| DaemonSpec {
                    cpu_m,
                    tolerate_all,
                }),
                0..=2,
            ),
            prop::collection::vec(pod_spec(n), 1..=12),
        )
            .prop_map(|(pools, nodes, daemon_sets, pods)| ClusterSpec {
                pools,
                nodes,
                daemon_sets,
                pods,
            })
    })
}

fn pool_name(i: usize) -> String {
    format!("pool-{i}")
}

/// A pod of `kind` with its constraint.
fn with_kind(b: PodBuilder, kind: Kind) -> PodBuilder {
    let app = kind.app();
    let b = b.label("app", &app);
    let own = [("app", app.as_str())];
    match kind {
        Kind::Plain(_) => b,
        Kind::ZoneSpread(_) => b.spread(labels::ZONE, 1, &own),
        Kind::HostSpread(_) => b.spread(labels::HOSTNAME, 1, &own),
        Kind::HostAnti(_) => b.anti_affinity(labels::HOSTNAME, &own),
        Kind::ZoneAnti(_) => b.anti_affinity(labels::ZONE, &own),
    }
}

fn build(spec: &ClusterSpec) -> Given {
    let mut given = Given::aws();
    for (i, p) in spec.pools.iter().enumerate() {
        let zones: Vec<&str> = p.zones.iter().map(|&z| ZONES[z]).collect();
        let families: Vec<&str> = p.families.iter().map(|&f| FAMILIES[f]).collect();
        let mut b = node_pool(&pool_name(i))
            .weight(p.weight)
            .require(labels::ZONE, Operator::In, &zones)
            .require(labels::INSTANCE_FAMILY, Operator::In, &families);
        if p.spot_only {
            b = b.require(labels::CAPACITY_TYPE, Operator::In, &["spot"]);
        }
        if p.tainted {
            b = b.taint("dedicated", &pool_name(i), TaintEffect::NoSchedule);
        }
        if let Some(t) = p.team {
            b = b.label("team", TEAMS[t]);
        }
        b = match p.limit {
            Some(Limit::Cpu(c)) => b.limit("cpu", &c.to_string()),
            Some(Limit::Nodes(n)) => b.limit("nodes", &n.to_string()),
            None => b,
        };
        given = given.node_pool(b);
    }
    for d in spec.daemon_sets.iter().enumerate() {
        let (i, d) = d;
        let mut ds = daemon_set(&format!("ds-{i}"), &format!("{}m", d.cpu_m), "64Mi");
        if d.tolerate_all {
            ds.pod = pod(&format!("ds-{i}"))
                .cpu(&format!("{}m", d.cpu_m))
                .memory("64Mi")
                .tolerate_all()
                .build();
        }
        given = given.daemon_set(ds);
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        let bound: Vec<Pod> = n
            .pods
            .iter()
            .enumerate()
            .map(|(j, bp)| {
                let b = pod(&format!("bound-{i}-{j}"))
                    .cpu(&format!("{}m", bp.cpu_m))
                    .memory("128Mi");
                let b = if bp.constrained {
                    with_kind(b, bp.kind)
                } else {
                    b.label("app", &bp.kind.app())
                };
                b.build()
            })
            .collect();
        given = given.node(|c| {
            let mut b = node(
                c,
                &format!("node-{i}"),
                NODE_TYPES[n.instance_type],
                ZONES[n.zone],
                CapacityType::OnDemand,
            )
            .with_pods(bound);
            if let Some(p) = n.pool {
                b = b.in_pool(&pool_name(p));
            }
            if let Some(t) = n.team {
                b = b.label("team", TEAMS[t]);
            }
            if n.tainted {
                b = b.taint("dedicated", "node", TaintEffect::NoSchedule);
            }
            if n.in_flight {
                b = b.in_flight();
            }
            b
        });
    }
    for (i, p) in spec.pods.iter().enumerate() {
        let mut b = pod(&format!("p-{i:02}"))
            .cpu(&format!("{}m", p.cpu_m))
            .memory(&format!("{}Mi", p.memory_mi));
        b = with_kind(b, p.kind);
        if let Some(t) = p.team {
            b = b.node_selector("team", TEAMS[t]);
        }
        if let Some(a) = p.arch {
            b = b.node_selector(labels::ARCH, ARCHES[a]);
        }
        if let Some(z) = p.zone {
            b = b.node_selector(labels::ZONE, ZONES[z]);
        }
        b = match p.tolerate {
            Tolerate::Nothing => b,
            Tolerate::Pool(i) => b.tolerate("dedicated", &pool_name(i), None),
            Tolerate::Everything => b.tolerate_all(),
        };
        given = given.pod(b);
    }
    given
}

fn catalog() -> std::sync::Arc<Catalog> {
    dovetail_core::builders::aws_catalog()
}

fn type_label(t: Sym, key: &str) -> Option<Sym> {
    catalog().get(t.as_str()).and_then(|it| it.label(key))
}

/// A pending pod's requests as the scheduler counts them: plus one pod slot.
fn slot(p: &Pod) -> Resources {
    let mut r = p.requests.clone();
    r.pods += 1;
    r
}

fn label_value(labels: &[(Sym, Sym)], key: &str) -> Option<Sym> {
    labels
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|&(_, v)| v)
}

/// Where a pod is, for checking constraints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Host {
    Node(Sym),
    Claim(Sym),
}

struct Placed<'a> {
    pod: &'a Pod,
    host: Host,
    /// Zones it may run in: the node's, or the NodeClaim's offerings'.
    zones: BTreeSet<Sym>,
    pending: bool,
}

fn claim_zones(c: &NodeClaimPlan) -> BTreeSet<Sym> {
    c.offerings.iter().map(|o| o.zone).collect()
}

fn placements<'a>(given: &'a Given, plan: &Plan) -> Vec<Placed<'a>> {
    let pending: BTreeMap<PodKey, &Pod> = given.pods.iter().map(|p| (p.key(), p)).collect();
    let mut out = Vec::new();
    for n in &given.snapshot.nodes {
        let zone = label_value(&n.labels, labels::ZONE).expect("nodes have a zone");
        for p in &n.pods {
            out.push(Placed {
                pod: p,
                host: Host::Node(n.name),
                zones: BTreeSet::from([zone]),
                pending: false,
            });
        }
    }
    for b in &plan.bindings {
        let n = given
            .snapshot
            .nodes
            .iter()
            .find(|n| n.name == b.node)
            .expect("bound to a known node");
        let zone = label_value(&n.labels, labels::ZONE).expect("nodes have a zone");
        out.push(Placed {
            pod: pending[&b.pod],
            host: Host::Node(n.name),
            zones: BTreeSet::from([zone]),
            pending: true,
        });
    }
    for c in &plan.node_claims {
        for k in &c.pods {
            out.push(Placed {
                pod: pending[k],
                host: Host::Claim(c.hostname),
                zones: claim_zones(c),
                pending: true,
            });
        }
    }
    out
}

fn app_of(p: &Pod) -> Option<Sym> {
    label_value(&p.labels, "app")
}

fn check_not_over_committed(given: &Given, plan: &Plan) -> Result<(), TestCaseError> {
    let cat = catalog();
    let pending: BTreeMap<PodKey, &Pod> = given.pods.iter().map(|p| (p.key(), p)).collect();
    for c in &plan.node_claims {
        let mut pods = Resources::default();
        for k in &c.pods {
            pods.add(&slot(pending[k]));
        }
        prop_assert!(
            pods.fits_in(&c.requests),
            "{}: requests {} are less than its pods' {}",
            c.hostname,
            c.requests,
            pods
        );
        prop_assert!(
            !c.instance_types.is_empty(),
            "{} has no instance type",
            c.hostname
        );
        for t in &c.instance_types {
            let alloc = cat.get(t.as_str()).expect("a catalog type").allocatable();
            prop_assert!(
                c.requests.fits_in(&alloc),
                "{}: {} (allocatable {}) cannot hold {}",
                c.hostname,
                t,
                alloc,
                c.requests
            );
        }
        for o in &c.offerings {
            prop_assert!(c.instance_types.contains(&o.instance_type));
        }
    }
    for n in &given.snapshot.nodes {
        let planned: Vec<&Pod> = plan
            .bindings
            .iter()
            .filter(|b| b.node == n.name)
            .map(|b| pending[&b.pod])
            .collect();
        if planned.is_empty() {
            continue;
        }
        let mut used = Resources::default();
        for p in n.pods.iter().map(|p| &**p).chain(planned.iter().copied()) {
            used.add(&slot(p));
        }
        prop_assert!(
            used.fits_in(&n.allocatable),
            "node {} is over-committed: {} of {}",
            n.name,
            used,
            n.allocatable
        );
    }
    Ok(())
}

fn check_hard_constraints(
    spec: &ClusterSpec,
    given: &Given,
    plan: &Plan,
) -> Result<(), TestCaseError> {
    let pending: BTreeMap<PodKey, (usize, &Pod)> = given
        .pods
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key(), (i, p)))
        .collect();
    // Node selectors, pool requirements and taints on NodeClaims.
    for c in &plan.node_claims {
        let pool_index: usize = c.node_pool.as_str()["pool-".len()..]
            .parse()
            .expect("pool-<i>");
        let pool = &spec.pools[pool_index];
        let pool_model = &given.snapshot.node_pools[pool_index];
        for t in &c.instance_types {
            let family = type_label(*t, labels::INSTANCE_FAMILY).expect("a family");
            prop_assert!(
                pool.families
                    .iter()
                    .any(|&f| FAMILIES[f] == family.as_str()),
                "{}: {} is outside the pool's families",
                c.hostname,
                t
            );
        }
        for o in &c.offerings {
            prop_assert!(pool.zones.iter().any(|&z| ZONES[z] == o.zone.as_str()));
            if pool.spot_only {
                prop_assert_eq!(o.capacity_type, CapacityType::Spot);
            }
        }
        for k in &c.pods {
            let (i, p) = pending[k];
            let ps = &spec.pods[i];
            if let Some(t) = ps.team {
                prop_assert_eq!(pool.team, Some(t), "{} needs team {}", k, TEAMS[t]);
            }
            if let Some(a) = ps.arch {
                for t in &c.instance_types {
                    prop_assert_eq!(
                        type_label(*t, labels::ARCH).map(|v| v.as_str()),
                        Some(ARCHES[a]),
                        "{} on {} needs {}",
                        k,
                        t,
                        ARCHES[a]
                    );
                }
            }
            if let Some(z) = ps.zone {
                for o in &c.offerings {
                    prop_assert_eq!(o.zone.as_str(), ZONES[z], "{} needs zone {}", k, ZONES[z]);
                }
            }
            prop_assert!(
                untolerated(&pool_model.taints, &p.tolerations).is_none(),
                "{} does not tolerate {}'s taints",
                k,
                c.node_pool
            );
        }
    }
    // The same on existing nodes.
    for b in &plan.bindings {
        let (_, p) = pending[&b.pod];
        let n = given
            .snapshot
            .nodes
            .iter()
            .find(|n| n.name == b.node)
            .expect("a known node");
        for (k, v) in &p.node_selector {
            prop_assert_eq!(
                label_value(&n.labels, k.as_str()),
                Some(*v),
                "{} needs {}={} but {} has {:?}",
                b.pod,
                k,
                v,
                n.name,
                label_value(&n.labels, k.as_str())
            );
        }
        prop_assert!(
            untolerated(&n.taints, &p.tolerations).is_none(),
            "{} does not tolerate {}'s taints",
            b.pod,
            n.name
        );
    }

    let placed = placements(given, plan);
    // Hostname and zone anti-affinity, both ways: no pod shares a host (or a
    // possible zone) with a pod its anti-affinity term selects.
    for a in &placed {
        for term in &a.pod.pod_anti_affinity {
            for b in &placed {
                if std::ptr::eq(a.pod, b.pod) || !(a.pending || b.pending) {
                    continue;
                }
                if b.pod.namespace != a.pod.namespace || !term.selector.matches(&b.pod.labels) {
                    continue;
                }
                match term.topology_key.as_str() {
                    labels::HOSTNAME => prop_assert!(
                        a.host != b.host,
                        "{} and {} share {:?} despite anti-affinity",
                        a.pod.key(),
                        b.pod.key(),
                        a.host
                    ),
                    labels::ZONE => prop_assert!(
                        a.zones.is_disjoint(&b.zones),
                        "{} ({:?}) and {} ({:?}) may share a zone despite anti-affinity",
                        a.pod.key(),
                        a.zones,
                        b.pod.key(),
                        b.zones
                    ),
                    other => panic!("unexpected topology key {other}"),
                }
            }
        }
    }
    // Topology spread with maxSkew 1 and DoNotSchedule.
    let spread_apps: BTreeSet<Sym> = placed
        .iter()
        .filter(|p| p.pending && !p.pod.topology_spread.is_empty())
        .filter_map(|p| app_of(p.pod))
        .collect();
    for app in spread_apps {
        let members: Vec<&Placed> = placed
            .iter()
            .filter(|p| app_of(p.pod) == Some(app))
            .collect();
        let key = members
            .iter()
            .find(|p| p.pending)
            .map(|p| p.pod.topology_spread[0].topology_key)
            .expect("a pending member");
        if key.as_str() == labels::HOSTNAME {
            // A new node is always an empty domain, so no host that took a
            // new pod may hold more than maxSkew of them.
            let mut per_host: BTreeMap<&Host, usize> = BTreeMap::new();
            for m in &members {
                *per_host.entry(&m.host).or_default() += 1;
            }
            for m in members.iter().filter(|m| m.pending) {
                prop_assert!(
                    per_host[&m.host] <= 1,
                    "{:?} holds {} pods of {}",
                    m.host,
                    per_host[&m.host],
                    app
                );
            }
        } else {
            for m in members.iter().filter(|m| m.pending) {
                prop_assert_eq!(
                    m.zones.len(),
                    1,
                    "{}'s NodeClaim is not pinned to one zone",
                    m.pod.key()
                );
            }
            // Every zone of an existing node or a pinned NodeClaim is a
            // domain the spread counts; a zone that took a new pod may hold
            // at most maxSkew more than the emptiest of them.
            let mut counts: BTreeMap<Sym, usize> = BTreeMap::new();
            for n in &given.snapshot.nodes {
                counts.insert(label_value(&n.labels, labels::ZONE).expect("zone"), 0);
            }
            for c in &plan.node_claims {
                if let Some(&z) = claim_zones(c)
                    .iter()
                    .next()
                    .filter(|_| claim_zones(c).len() == 1)
                {
                    counts.entry(z).or_insert(0);
                }
            }
            for m in &members {
                let z = *m.zones.iter().next().expect("a zone");
                *counts.entry(z).or_insert(0) += 1;
            }
            let min = counts.values().copied().min().unwrap_or(0);
            for m in members.iter().filter(|m| m.pending) {
                let z = *m.zones.iter().next().expect("a zone");
                prop_assert!(
                    counts[&z] <= min + 1,
                    "zone {} holds {} pods of {} while another holds {}: {:?}",
                    z,
                    counts[&z],
                    app,
                    min,
                    counts
                );
            }
        }
    }
    Ok(())
}

fn check_every_pod_accounted_for(given: &Given, plan: &Plan) -> Result<(), TestCaseError> {
    let mut seen: BTreeMap<PodKey, usize> = BTreeMap::new();
    for k in plan
        .bindings
        .iter()
        .map(|b| b.pod)
        .chain(plan.node_claims.iter().flat_map(|c| c.pods.iter().copied()))
        .chain(plan.unschedulable.iter().map(|u| u.pod))
    {
        *seen.entry(k).or_default() += 1;
    }
    for p in &given.pods {
        prop_assert_eq!(
            seen.get(&p.key()).copied(),
            Some(1),
            "{} should appear exactly once",
            p.key()
        );
    }
    prop_assert_eq!(seen.len(), given.pods.len());
    for u in &plan.unschedulable {
        prop_assert!(!u.reason.trim().is_empty(), "{} has no reason", u.pod);
    }
    Ok(())
}

/// A deterministic shuffle (SplitMix64-driven Fisher–Yates).
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut rng = SplitMix::new(seed);
    for i in (1..out.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

fn json(plan: &Plan) -> String {
    serde_json::to_string(plan).expect("plans serialize")
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn nothing_is_over_committed(spec in cluster_spec()) {
        let given = build(&spec);
        let plan = given.solve();
        check_not_over_committed(&given, &plan)?;
    }

    #[test]
    fn every_placement_keeps_its_pods_hard_constraints(spec in cluster_spec()) {
        let given = build(&spec);
        let plan = given.solve();
        check_hard_constraints(&spec, &given, &plan)?;
    }

    #[test]
    fn every_pod_is_placed_once_or_says_why_not(spec in cluster_spec()) {
        let given = build(&spec);
        let plan = given.solve();
        check_every_pod_accounted_for(&given, &plan)?;
    }
}

// Three solves a case: fewer cases keep the file quick.
proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..config() })]

    #[test]
    fn the_same_input_gives_the_same_plan_in_any_pod_order(
        spec in cluster_spec(),
        seed in any::<u64>(),
    ) {
        let given = build(&spec);
        let first = json(&given.solve());
        prop_assert_eq!(&first, &json(&given.solve()), "solving twice differs");
        // The queue sorts pending pods, so their input order does not matter.
        let mut reordered = given.clone();
        reordered.pods = shuffled(&given.pods, seed);
        prop_assert_eq!(&first, &json(&reordered.solve()), "pod order changed the plan");
    }
}

#[test]
fn the_synthetic_catalog_keeps_the_same_properties() {
    // Karpenter's benchmark shape: one unconstrained pool over synthetic
    // types, with spreads and anti-affinity.
    let snapshot = dovetail_core::scheduler::fixtures::benchmark_snapshot(40);
    let pods = dovetail_core::scheduler::fixtures::diverse_pods(60, 3);
    let given = Given {
        snapshot,
        pods: pods.clone(),
    };
    let plan = given.solve();
    check_every_pod_accounted_for(&given, &plan).expect("accounted for");
    let cat = given.snapshot.catalog.clone();
    for c in &plan.node_claims {
        for t in &c.instance_types {
            let alloc = cat.get(t.as_str()).expect("a type").allocatable();
            assert!(
                c.requests.fits_in(&alloc),
                "{} cannot hold {}",
                t,
                c.requests
            );
        }
    }
    let reordered = Given {
        snapshot: given.snapshot.clone(),
        pods: shuffled(&pods, 11),
    };
    assert_eq!(json(&plan), json(&reordered.solve()));
}
