// Provisioning scenarios: given a cluster and pending pods, when the
// scheduler plans and the instance selector chooses launches, then the plan
// and launch lists are what Karpenter would produce.
//
// This file is `include!`d by more than one test crate. The includer defines
// `fn selector() -> Box<dyn InstanceSelector>`; everything else lives here.

use std::collections::BTreeMap;

use dovetail_core::builders::{
    Given, NodePoolBuilder, aws_catalog, daemon_set, daemon_set_of, node, node_pool, pod,
};
use dovetail_core::catalog::{CapacityType, Catalog, InstanceTypeSpec, LabelValue, OfferingSpec};
use dovetail_core::nodeclaim::{INITIALIZED_LABEL, REGISTERED_LABEL};
use dovetail_core::resources::ResourceList;
use dovetail_core::scheduler::MinValuesPolicy;
use dovetail_core::clock::ManualClock;
use dovetail_core::labels;
use dovetail_core::model::{InclusionPolicy, TaintEffect};
use dovetail_core::requirements::Operator;
use dovetail_core::scheduler::{NodeClaimPlan, OfferingRef, Plan, Provisioning, provision};
use dovetail_core::sym::Sym;

const NOW_MS: u64 = 1_700_000_000_000;
const SEED: u64 = 7;

const ZONE_A: &str = "us-east-1a";
const ZONE_B: &str = "us-east-1b";
const ZONE_C: &str = "us-east-1c";
const ZONE_D: &str = "us-east-1d";

/// Solves and chooses launches; every NodeClaim must get a launch list.
fn when_provisioned(given: &Given) -> Provisioning {
    let outcome = when_provisioned_allowing_launch_errors(given);
    for (claim, launch) in outcome
        .plan
        .node_claims
        .iter()
        .zip(&outcome.launch.launches)
    {
        assert!(
            launch.is_ok(),
            "NodeClaim {} (pods {:?}) has no launch list: {:?}",
            claim.hostname,
            claim.pods,
            launch
        );
    }
    outcome
}

/// Solves and chooses launches, leaving launch errors to the scenario.
fn when_provisioned_allowing_launch_errors(given: &Given) -> Provisioning {
    let outcome = provision(
        &given.snapshot,
        &given.pods,
        &*selector(),
        &ManualClock::new(NOW_MS),
        SEED,
    );
    assert_eq!(
        outcome.launch.launches.len(),
        outcome.plan.node_claims.len(),
        "one launch decision per NodeClaim"
    );
    outcome
}

fn then(outcome: &Provisioning) -> Then<'_> {
    Then { outcome }
}

struct Then<'a> {
    outcome: &'a Provisioning,
}

impl<'a> Then<'a> {
    fn plan(&self) -> &'a Plan {
        &self.outcome.plan
    }

    fn all_scheduled(&self) -> &Self {
        assert!(
            self.plan().unschedulable.is_empty(),
            "expected every pod to schedule, but: {:#?}",
            self.plan().unschedulable
        );
        self
    }

    fn scheduled(&self, n: usize) -> &Self {
        assert_eq!(
            self.plan().scheduled(),
            n,
            "pods scheduled; unschedulable: {:#?}",
            self.plan().unschedulable
        );
        self
    }

    fn unschedulable(&self, n: usize) -> &Self {
        assert_eq!(
            self.plan().unschedulable.len(),
            n,
            "unschedulable pods: {:#?}",
            self.plan().unschedulable
        );
        self
    }

    /// `pod` is unschedulable and its reason mentions `fragment`
    /// (case-insensitively).
    fn unschedulable_because(&self, pod: &str, fragment: &str) -> &Self {
        let u = self
            .plan()
            .unschedulable
            .iter()
            .find(|u| names(u.pod.name, u.pod.namespace, pod))
            .unwrap_or_else(|| {
                panic!(
                    "{pod} should be unschedulable; plan: {}",
                    describe(self.plan())
                )
            });
        assert!(
            u.reason.to_lowercase().contains(&fragment.to_lowercase()),
            "the reason for {pod} should mention `{fragment}`: {}",
            u.reason
        );
        self
    }

    fn node_claims(&self, n: usize) -> &Self {
        assert_eq!(
            self.plan().node_claims.len(),
            n,
            "NodeClaims: {}",
            describe(self.plan())
        );
        self
    }

    fn each_node_claim(&self, check: impl Fn(&NodeClaimPlan)) -> &Self {
        assert!(
            !self.plan().node_claims.is_empty(),
            "expected NodeClaims: {}",
            describe(self.plan())
        );
        self.plan().node_claims.iter().for_each(check);
        self
    }

    fn bound(&self, pod: &str, node: &str) -> &Self {
        let b = self
            .plan()
            .bindings
            .iter()
            .find(|b| names(b.pod.name, b.pod.namespace, pod))
            .unwrap_or_else(|| {
                panic!(
                    "{pod} should be bound to {node}; plan: {}",
                    describe(self.plan())
                )
            });
        assert_eq!(b.node.as_str(), node, "{pod} went to the wrong node");
        self
    }

    fn no_bindings(&self) -> &Self {
        assert!(
            self.plan().bindings.is_empty(),
            "expected no pod on an existing node: {:?}",
            self.plan().bindings
        );
        self
    }

    /// `pod` is on a NodeClaim, which `check` accepts.
    fn on_node_claim(&self, pod: &str, check: impl Fn(&NodeClaimPlan)) -> &Self {
        let claim = self
            .plan()
            .node_claims
            .iter()
            .find(|c| c.pods.iter().any(|k| names(k.name, k.namespace, pod)))
            .unwrap_or_else(|| {
                panic!(
                    "{pod} should be on a NodeClaim; plan: {}",
                    describe(self.plan())
                )
            });
        check(claim);
        self
    }

    /// Every launch list holds only offerings `allowed` accepts.
    fn launches_only(&self, allowed: impl Fn(&OfferingRef) -> bool) -> &Self {
        self.each_launch(|claim, launch| {
            for o in launch {
                assert!(
                    allowed(o),
                    "NodeClaim {} may launch an unexpected offering {} {} {}",
                    claim.hostname,
                    o.instance_type,
                    o.zone,
                    o.capacity_type
                );
            }
        })
    }

    fn each_launch(&self, check: impl Fn(&NodeClaimPlan, &[OfferingRef])) -> &Self {
        assert!(
            !self.plan().node_claims.is_empty(),
            "expected NodeClaims: {}",
            describe(self.plan())
        );
        for (claim, launch) in self
            .plan()
            .node_claims
            .iter()
            .zip(&self.outcome.launch.launches)
        {
            let launch = launch.as_ref().expect("a launch list");
            assert!(
                !launch.is_empty(),
                "NodeClaim {} has an empty launch list",
                claim.hostname
            );
            check(claim, launch);
        }
        self
    }

    /// `pod` was placed after a relaxation whose note mentions `fragment`.
    fn relaxed(&self, pod: &str, fragment: &str) -> &Self {
        let (_, notes) = self
            .plan()
            .relaxed
            .iter()
            .find(|(k, _)| names(k.name, k.namespace, pod))
            .unwrap_or_else(|| panic!("{pod} should have been relaxed: {:?}", self.plan().relaxed));
        assert!(
            notes.iter().any(|n| n.contains(fragment)),
            "{pod}'s relaxations should mention `{fragment}`: {notes:?}"
        );
        self
    }

    fn nothing_relaxed(&self) -> &Self {
        assert!(
            self.plan().relaxed.is_empty(),
            "nothing should be relaxed: {:?}",
            self.plan().relaxed
        );
        self
    }
}

/// Whether a pod key matches `pod`, given as `name` or `namespace/name`.
fn names(name: Sym, namespace: Sym, pod: &str) -> bool {
    name.as_str() == pod || format!("{namespace}/{name}") == pod
}

fn describe(plan: &Plan) -> String {
    let claims: Vec<String> = plan
        .node_claims
        .iter()
        .map(|c| {
            format!(
                "{} [{}] pods {:?} zone {:?} types {}",
                c.hostname,
                c.node_pool,
                c.pods.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                zone_of(c),
                c.instance_types.len()
            )
        })
        .collect();
    format!(
        "claims {claims:#?}, bindings {:?}, unschedulable {:#?}",
        plan.bindings, plan.unschedulable
    )
}

/// The one zone a NodeClaim is pinned to, if it is.
fn zone_of(claim: &NodeClaimPlan) -> Option<&'static str> {
    claim
        .compiled
        .get(Sym::new(labels::ZONE))
        .and_then(|r| r.single_value())
        .map(|z| z.as_str())
}

/// Pods whose name starts with `prefix`, counted by the zone they landed in
/// (a NodeClaim's pinned zone or an existing node's zone label).
fn pods_per_zone(given: &Given, outcome: &Provisioning, prefix: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in &outcome.plan.node_claims {
        let n = c
            .pods
            .iter()
            .filter(|p| p.name.as_str().starts_with(prefix))
            .count();
        if n > 0 {
            let zone =
                zone_of(c).unwrap_or_else(|| panic!("{} is not pinned to a zone", c.hostname));
            *counts.entry(zone.to_string()).or_default() += n;
        }
    }
    for b in &outcome.plan.bindings {
        if b.pod.name.as_str().starts_with(prefix) {
            let node = given
                .snapshot
                .nodes
                .iter()
                .find(|n| n.name == b.node)
                .expect("bound to a known node");
            let zone = node
                .labels
                .iter()
                .find(|(k, _)| k.as_str() == labels::ZONE)
                .map(|(_, v)| v.to_string())
                .expect("node has a zone");
            *counts.entry(zone).or_default() += 1;
        }
    }
    counts
}

fn label_of(instance_type: Sym, key: &str) -> Option<&'static str> {
    aws_catalog()
        .get(instance_type.as_str())
        .unwrap_or_else(|| panic!("{instance_type} is not in the catalog"))
        .label(key)
        .map(|v| v.as_str())
}

fn gpus_of(instance_type: Sym) -> i64 {
    aws_catalog()
        .get(instance_type.as_str())
        .expect("in the catalog")
        .gpus()
}

fn int_label(instance_type: Sym, key: &str) -> i64 {
    label_of(instance_type, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{instance_type} has no integer `{key}`"))
}

fn distinct<'s>(values: impl IntoIterator<Item = &'s str>) -> usize {
    let mut v: Vec<&str> = values.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// The first (preferred) instance type of the first NodeClaim's launch list.
fn first_launch_type(outcome: &Provisioning) -> &'static str {
    outcome.launch.launches[0].as_ref().expect("a launch list")[0]
        .instance_type
        .as_str()
}

fn three_zone_pool() -> NodePoolBuilder {
    node_pool("default").require(labels::ZONE, Operator::In, &[ZONE_A, ZONE_B, ZONE_C])
}

// ---------------------------------------------------------------------------
// Topology spread
// ---------------------------------------------------------------------------

#[test]
fn zonal_spread_with_max_skew_one_balances_pods_over_three_zones() {
    let given = Given::aws().node_pool(three_zone_pool()).pods(
        6,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .spread(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled();
    let zones = pods_per_zone(&given, &outcome, "web");
    assert_eq!(
        zones.keys().map(String::as_str).collect::<Vec<_>>(),
        [ZONE_A, ZONE_B, ZONE_C]
    );
    assert!(zones.values().all(|&n| n == 2), "{zones:?}");
}

#[test]
fn zonal_spread_keeps_skew_within_one_for_an_odd_count() {
    let given = Given::aws().node_pool(three_zone_pool()).pods(
        7,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .spread(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled();
    let zones = pods_per_zone(&given, &outcome, "web");
    let (min, max) = (zones.values().min(), zones.values().max());
    assert_eq!(zones.len(), 3, "{zones:?}");
    assert!(max.unwrap() - min.unwrap() <= 1, "{zones:?}");
}

#[test]
fn hostname_spread_puts_one_pod_on_each_node_claim() {
    let given = Given::aws().node_pool(node_pool("default")).pods(
        4,
        pod("web")
            .cpu("100m")
            .label("app", "web")
            .spread(labels::HOSTNAME, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(4)
        .each_node_claim(|c| assert_eq!(c.pods.len(), 1));
}

#[test]
fn min_domains_caps_each_zone_when_fewer_zones_exist() {
    // Two zones but minDomains 3: the global minimum counts as 0, so each
    // zone may hold at most maxSkew pods.
    let pool = node_pool("default").require(labels::ZONE, Operator::In, &[ZONE_A, ZONE_B]);
    let spread = |min_domains: Option<i32>| {
        pod("web").cpu("1").label("app", "web").spread_with(
            labels::ZONE,
            1,
            &[("app", "web")],
            |c| c.min_domains = min_domains,
        )
    };
    let without = Given::aws().node_pool(pool.clone()).pods(4, spread(None));
    let with = Given::aws().node_pool(pool).pods(4, spread(Some(3)));

    let outcome_without = when_provisioned(&without);
    let outcome_with = when_provisioned(&with);

    then(&outcome_without).all_scheduled();
    then(&outcome_with)
        .scheduled(2)
        .unschedulable(2)
        .unschedulable_because("web-3", "topology spread");
    let zones = pods_per_zone(&with, &outcome_with, "web");
    assert_eq!(zones.get(ZONE_A), Some(&1), "{zones:?}");
    assert_eq!(zones.get(ZONE_B), Some(&1), "{zones:?}");
}

/// An open NodePool in zones a and b, and a tainted one in zone c.
fn open_and_tainted_pools() -> Given {
    Given::aws()
        .node_pool(node_pool("open").require(labels::ZONE, Operator::In, &[ZONE_A, ZONE_B]))
        .node_pool(
            node_pool("tainted")
                .require(labels::ZONE, Operator::In, &[ZONE_C])
                .taint("dedicated", "batch", TaintEffect::NoSchedule),
        )
}

#[test]
fn node_taints_policy_honor_leaves_out_zones_the_pod_cannot_tolerate() {
    let given = open_and_tainted_pools().pods(
        4,
        pod("web").cpu("1").label("app", "web").spread_with(
            labels::ZONE,
            1,
            &[("app", "web")],
            |c| c.node_taints_policy = InclusionPolicy::Honor,
        ),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled();
    let zones = pods_per_zone(&given, &outcome, "web");
    assert_eq!(zones.get(ZONE_A), Some(&2), "{zones:?}");
    assert_eq!(zones.get(ZONE_B), Some(&2), "{zones:?}");
}

#[test]
fn node_taints_policy_ignore_counts_the_tainted_zone_as_empty() {
    // The default policy counts zone c (where the pods cannot go) at zero,
    // so zones a and b may each take only maxSkew pods.
    let given = open_and_tainted_pools().pods(
        4,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .spread(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).scheduled(2).unschedulable(2);
    let zones = pods_per_zone(&given, &outcome, "web");
    assert_eq!(zones.get(ZONE_A), Some(&1), "{zones:?}");
    assert_eq!(zones.get(ZONE_B), Some(&1), "{zones:?}");
}

/// Zone a already runs two `app=web` pods on a node the new pods' node
/// selector does not match.
fn web_pods_on_other_teams_node() -> Given {
    let running = pod("old-web").cpu("100m").label("app", "web").build_many(2);
    Given::aws()
        .node_pool(three_zone_pool().label("team", "web"))
        .node(|c| {
            node(c, "other-team", "m5.large", ZONE_A, CapacityType::OnDemand)
                .label("team", "other")
                .with_pods(running)
        })
}

#[test]
fn node_affinity_policy_honor_skips_pods_on_nodes_the_pod_cannot_select() {
    let given = web_pods_on_other_teams_node().pods(
        3,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .node_selector("team", "web")
            .spread(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings();
    let zones = pods_per_zone(&given, &outcome, "web");
    assert_eq!(zones.len(), 3, "one pod per zone: {zones:?}");
    assert!(zones.values().all(|&n| n == 1), "{zones:?}");
}

#[test]
fn node_affinity_policy_ignore_counts_pods_on_every_node() {
    let given = web_pods_on_other_teams_node().pods(
        3,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .node_selector("team", "web")
            .spread_with(labels::ZONE, 1, &[("app", "web")], |c| {
                c.node_affinity_policy = InclusionPolicy::Ignore
            }),
    );

    let outcome = when_provisioned(&given);

    // Zone a already has two: putting a third there would exceed the skew.
    then(&outcome).all_scheduled();
    let zones = pods_per_zone(&given, &outcome, "web");
    assert_eq!(zones.get(ZONE_A), None, "{zones:?}");
}

#[test]
fn match_label_keys_spreads_each_revision_on_its_own() {
    let running = pod("web-rev0")
        .cpu("100m")
        .label("app", "web")
        .label("rev", "0")
        .build_many(2);
    let cluster = Given::aws().node_pool(three_zone_pool()).node(|c| {
        node(c, "full", "m5.large", ZONE_A, CapacityType::OnDemand).with_pods(
            // Fill the node so new pods need NodeClaims.
            [running, pod("filler").cpu("1700m").build_many(1)].concat(),
        )
    });
    let rev1 = |match_keys: bool| {
        pod("web-rev1")
            .cpu("1")
            .label("app", "web")
            .label("rev", "1")
            .spread_with(labels::ZONE, 1, &[("app", "web")], |c| {
                if match_keys {
                    c.match_label_keys = vec![Sym::new("rev")];
                }
            })
    };
    let with_keys = cluster.clone().pods(3, rev1(true));
    let without_keys = cluster.pods(3, rev1(false));

    let outcome_with = when_provisioned(&with_keys);
    let outcome_without = when_provisioned(&without_keys);

    then(&outcome_with).all_scheduled();
    let zones = pods_per_zone(&with_keys, &outcome_with, "web-rev1");
    assert_eq!(zones.len(), 3, "revision 1 spreads alone: {zones:?}");
    then(&outcome_without).all_scheduled();
    let zones = pods_per_zone(&without_keys, &outcome_without, "web-rev1");
    assert_eq!(
        zones.get(ZONE_A),
        None,
        "revision 0's pods count in zone a: {zones:?}"
    );
}

#[test]
fn schedule_anyway_spread_is_relaxed_when_it_cannot_be_met() {
    let given = open_and_tainted_pools().pods(
        4,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .spread_anyway(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .relaxed("web-3", "ScheduleAnyway");
}

#[test]
fn do_not_schedule_spread_is_never_relaxed() {
    let given = open_and_tainted_pools().pods(
        4,
        pod("web")
            .cpu("1")
            .label("app", "web")
            .spread(labels::ZONE, 1, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).unschedulable(2).nothing_relaxed();
}

// ---------------------------------------------------------------------------
// Pod affinity and anti-affinity
// ---------------------------------------------------------------------------

#[test]
fn hostname_anti_affinity_gives_each_pod_its_own_node_claim() {
    let given = Given::aws().node_pool(node_pool("default")).pods(
        5,
        pod("web")
            .cpu("100m")
            .label("app", "web")
            .anti_affinity(labels::HOSTNAME, &[("app", "web")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(5)
        .each_node_claim(|c| assert_eq!(c.pods.len(), 1));
}

#[test]
fn anti_affinity_to_running_pods_keeps_new_pods_off_their_node() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(c, "db-node", "m5.4xlarge", ZONE_A, CapacityType::OnDemand)
                .with_pods(pod("db").cpu("1").label("app", "db").build_many(1))
        })
        .pods(
            2,
            pod("web")
                .cpu("1")
                .anti_affinity(labels::HOSTNAME, &[("app", "db")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings().node_claims(1);
}

#[test]
fn anti_affinity_of_running_pods_keeps_matching_new_pods_away() {
    // Anti-affinity is symmetric: the running pod's term repels new pods
    // that have no constraint of their own.
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(c, "db-node", "m5.4xlarge", ZONE_A, CapacityType::OnDemand).with_pods(
                pod("db")
                    .cpu("1")
                    .anti_affinity(labels::HOSTNAME, &[("app", "web")])
                    .build_many(1),
            )
        })
        .pods(2, pod("web").cpu("1").label("app", "web"))
        .pod(pod("other").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .bound("other", "db-node")
        .on_node_claim("web-0", |_| {})
        .on_node_claim("web-1", |_| {});
}

#[test]
fn zone_anti_affinity_to_running_pods_avoids_their_zone() {
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .node(|c| {
            node(c, "db-node", "m5.large", ZONE_A, CapacityType::OnDemand)
                .with_pods(pod("db").cpu("1800m").label("app", "db").build_many(1))
        })
        .pods(
            3,
            pod("web")
                .cpu("1")
                .anti_affinity(labels::ZONE, &[("app", "db")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().each_node_claim(|c| {
        let zones = c.compiled.get(Sym::new(labels::ZONE)).expect("zone");
        assert!(
            !zones.has(Sym::new(ZONE_A)),
            "{} may go to zone a",
            c.hostname
        );
    });
}

#[test]
fn pod_affinity_namespace_selector_picks_the_right_namespace() {
    let db = |ns: &str| {
        pod(&format!("db-{ns}"))
            .namespace(ns)
            .cpu("100m")
            .label("app", "db")
            .build_many(1)
    };
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .namespace("team-a", &[("team", "a")])
        .namespace("team-b", &[("team", "b")])
        .node(|c| {
            node(c, "node-a", "m5.xlarge", ZONE_A, CapacityType::OnDemand).with_pods(db("team-a"))
        })
        .node(|c| {
            node(c, "node-b", "m5.xlarge", ZONE_B, CapacityType::OnDemand).with_pods(db("team-b"))
        })
        .pods(
            2,
            pod("web")
                .cpu("1")
                .affinity_across(labels::ZONE, &[("app", "db")], &[("team", "b")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .bound("web-0", "node-b")
        .bound("web-1", "node-b");
}

#[test]
fn pod_affinity_without_namespace_selector_looks_only_in_its_own_namespace() {
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .node(|c| {
            node(c, "node-a", "m5.xlarge", ZONE_A, CapacityType::OnDemand).with_pods(
                pod("db")
                    .namespace("elsewhere")
                    .cpu("100m")
                    .label("app", "db")
                    .build_many(1),
            )
        })
        .pod(pod("web").cpu("1").affinity(labels::ZONE, &[("app", "db")]));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .unschedulable(1)
        .unschedulable_because("web", "pod affinity");
}

#[test]
fn zone_self_affinity_puts_every_pod_in_the_first_pods_zone() {
    // One m5.large holds one pod, so each pod needs its own NodeClaim.
    let pool = three_zone_pool().require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"]);
    let given = Given::aws().node_pool(pool).pods(
        4,
        pod("cache")
            .cpu("1500m")
            .label("app", "cache")
            .affinity(labels::ZONE, &[("app", "cache")]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled();
    let zones = pods_per_zone(&given, &outcome, "cache");
    assert_eq!(zones.len(), 1, "{zones:?}");
    then(&outcome).node_claims(4);
}

#[test]
fn zone_affinity_to_pods_on_an_existing_node_follows_them() {
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .node(|c| {
            node(c, "db-node", "m5.large", ZONE_C, CapacityType::OnDemand)
                .with_pods(pod("db").cpu("1800m").label("app", "db").build_many(1))
        })
        .pods(
            2,
            pod("web").cpu("1").affinity(labels::ZONE, &[("app", "db")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .no_bindings()
        .each_node_claim(|c| assert_eq!(zone_of(c), Some(ZONE_C)))
        .launches_only(|o| o.zone.as_str() == ZONE_C);
}

#[test]
fn hostname_affinity_to_pods_on_an_existing_node_binds_there() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| node(c, "spare", "m5.2xlarge", ZONE_B, CapacityType::OnDemand))
        .node(|c| {
            node(c, "db-node", "m5.2xlarge", ZONE_A, CapacityType::OnDemand)
                .with_pods(pod("db").cpu("1").label("app", "db").build_many(1))
        })
        .pods(
            2,
            pod("web")
                .cpu("1")
                .affinity(labels::HOSTNAME, &[("app", "db")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(0)
        .bound("web-0", "db-node")
        .bound("web-1", "db-node");
}

// ---------------------------------------------------------------------------
// Instance selection
// ---------------------------------------------------------------------------

#[test]
fn gpu_pod_gets_only_gpu_instance_types() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pod(pod("train").cpu("1").gpus(1));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(c.instance_types.iter().all(|&t| gpus_of(t) >= 1));
            assert!(c.requests.gpus() == 1);
        })
        .launches_only(|o| gpus_of(o.instance_type) >= 1);
}

#[test]
fn cpu_pod_never_launches_on_a_gpu_type() {
    // The NodeClaim may keep GPU types (they fit), but the launch choice
    // drops them while anything else fits.
    let given = Given::aws()
        .node_pool(node_pool("default").require(
            labels::INSTANCE_FAMILY,
            Operator::In,
            &["g4dn", "m5"],
        ))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(
                c.instance_types.iter().any(|&t| gpus_of(t) > 0),
                "the NodeClaim keeps GPU types"
            )
        })
        .launches_only(|o| gpus_of(o.instance_type) == 0);
}

#[test]
fn arm64_node_selector_gets_only_arm64_types() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pods(2, pod("web").cpu("1").node_selector(labels::ARCH, "arm64"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(
                c.instance_types
                    .iter()
                    .all(|&t| label_of(t, labels::ARCH) == Some("arm64"))
            )
        })
        .launches_only(|o| label_of(o.instance_type, labels::ARCH) == Some("arm64"));
}

#[test]
fn instance_category_requirement_limits_types_to_c_m_r() {
    let given = Given::aws()
        .node_pool(node_pool("default").require(
            labels::INSTANCE_CATEGORY,
            Operator::In,
            &["c", "m", "r"],
        ))
        .pods(3, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    let cmr = |t: Sym| {
        matches!(
            label_of(t, labels::INSTANCE_CATEGORY),
            Some("c" | "m" | "r")
        )
    };
    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert!(c.instance_types.iter().all(|&t| cmr(t))))
        .launches_only(|o| cmr(o.instance_type));
}

#[test]
fn instance_cpu_gt_4_keeps_only_larger_types() {
    let given = Given::aws()
        .node_pool(node_pool("default").require(labels::INSTANCE_CPU, Operator::Gt, &["4"]))
        .pod(pod("web").cpu("500m"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(
                c.instance_types
                    .iter()
                    .all(|&t| int_label(t, labels::INSTANCE_CPU) > 4)
            )
        })
        .launches_only(|o| int_label(o.instance_type, labels::INSTANCE_CPU) > 4);
}

#[test]
fn instance_generation_gt_5_keeps_only_newer_types() {
    let given = Given::aws()
        .node_pool(node_pool("default").require(labels::INSTANCE_GENERATION, Operator::Gt, &["5"]))
        .pod(pod("web").cpu("500m"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(
                c.instance_types
                    .iter()
                    .all(|&t| int_label(t, labels::INSTANCE_GENERATION) > 5)
            )
        })
        .launches_only(|o| int_label(o.instance_type, labels::INSTANCE_GENERATION) > 5);
}

#[test]
fn launch_list_is_cheapest_first_and_capped_at_sixty() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome).each_launch(|c, launch| {
        assert!(launch.len() <= 60, "{} offerings", launch.len());
        assert!(c.instance_types.len() <= 600);
        // Spot is preferred over on-demand; within spot, cheapest first.
        let spot: Vec<f64> = launch
            .iter()
            .filter(|o| o.capacity_type == CapacityType::Spot)
            .map(|o| o.price)
            .collect();
        assert!(spot.windows(2).all(|w| w[0] <= w[1]), "{spot:?}");
    });
}

// ---------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------

fn tainted_pool() -> NodePoolBuilder {
    node_pool("gpu-only").taint("dedicated", "gpu", TaintEffect::NoSchedule)
}

#[test]
fn a_taint_without_toleration_never_lands() {
    let given = Given::aws()
        .node_pool(tainted_pool())
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "taint")
        .unschedulable_because("web", "dedicated=gpu");
}

#[test]
fn a_toleration_lets_the_pod_land_on_the_tainted_pool() {
    let given = Given::aws()
        .node_pool(tainted_pool())
        .pod(
            pod("web")
                .cpu("1")
                .tolerate("dedicated", "gpu", Some(TaintEffect::NoSchedule)),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert_eq!(c.node_pool.as_str(), "gpu-only"));
}

#[test]
fn prefer_no_schedule_taint_is_respected_while_another_pool_fits() {
    let given = Given::aws()
        .node_pool(node_pool("preferred-not").weight(10).taint(
            "spot-only",
            "",
            TaintEffect::PreferNoSchedule,
        ))
        .node_pool(node_pool("plain"))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .nothing_relaxed()
        .each_node_claim(|c| assert_eq!(c.node_pool.as_str(), "plain"));
}

#[test]
fn prefer_no_schedule_taint_is_tolerated_when_nothing_else_fits() {
    let given = Given::aws()
        .node_pool(node_pool("preferred-not").taint("spot-only", "", TaintEffect::PreferNoSchedule))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .relaxed("web", "PreferNoSchedule")
        .each_node_claim(|c| assert_eq!(c.node_pool.as_str(), "preferred-not"));
}

#[test]
fn startup_taints_do_not_block_scheduling() {
    let given = Given::aws()
        .node_pool(node_pool("default").startup_taint(
            "example.com/agent-not-ready",
            "",
            TaintEffect::NoSchedule,
        ))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().node_claims(1);
}

#[test]
fn startup_taints_on_an_in_flight_node_do_not_block_binding() {
    let mut given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(c, "launching", "m5.xlarge", ZONE_A, CapacityType::OnDemand)
                .in_flight()
                .taint("example.com/agent-not-ready", "", TaintEffect::NoSchedule)
        })
        .pod(pod("web").cpu("1"));
    let launching = &mut given.snapshot.nodes[0];
    launching.startup_taints = launching.taints.clone();

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().bound("web", "launching");
}

#[test]
fn ordinary_taints_on_an_existing_node_still_block_binding() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(c, "reserved", "m5.xlarge", ZONE_A, CapacityType::OnDemand).taint(
                "dedicated",
                "db",
                TaintEffect::NoSchedule,
            )
        })
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings().node_claims(1);
}

// ---------------------------------------------------------------------------
// DaemonSets
// ---------------------------------------------------------------------------

#[test]
fn daemon_set_overhead_pushes_the_node_to_the_next_size() {
    let pool = node_pool("default")
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
        .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]);
    let without = Given::aws()
        .node_pool(pool.clone())
        .pod(pod("web").cpu("1500m"));
    let with = without
        .clone()
        .daemon_set(daemon_set("logging", "500m", "256Mi"));

    let outcome_without = when_provisioned(&without);
    let outcome_with = when_provisioned(&with);

    assert_eq!(first_launch_type(&outcome_without), "m5.large");
    assert_eq!(first_launch_type(&outcome_with), "m5.xlarge");
    then(&outcome_with).each_node_claim(|c| {
        assert_eq!(c.requests.cpu, 2000, "pod plus DaemonSet");
        assert_eq!(c.requests.pods, 2);
    });
}

#[test]
fn a_daemon_set_that_does_not_tolerate_the_pool_taint_is_not_counted() {
    let pool = node_pool("default")
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
        .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
        .taint("dedicated", "web", TaintEffect::NoSchedule);
    let given = Given::aws()
        .node_pool(pool)
        .daemon_set(daemon_set("logging", "500m", "256Mi"))
        .pod(pod("web").cpu("1500m").tolerate("dedicated", "web", None));

    let outcome = when_provisioned(&given);

    assert_eq!(first_launch_type(&outcome), "m5.large");
    then(&outcome).each_node_claim(|c| assert_eq!(c.requests.cpu, 1500));
}

/// m5 (amd64) and m6g (arm64), on-demand.
fn amd64_and_arm64_pool() -> NodePoolBuilder {
    node_pool("default")
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5", "m6g"])
        .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
}

#[test]
fn a_daemon_set_for_amd64_adds_no_overhead_to_arm64_types() {
    // 1500m fits a 2-vCPU node (1930m allocatable) only without the 1-CPU
    // amd64 agent: m6g.large takes it, m5.large does not.
    let given = Given::aws()
        .node_pool(amd64_and_arm64_pool())
        .daemon_set(daemon_set_of(
            "amd64-agent",
            pod("amd64-agent")
                .cpu("1")
                .node_selector(labels::ARCH, "amd64"),
        ))
        .pod(pod("web").cpu("1500m"));

    let outcome = when_provisioned(&given);

    assert_eq!(first_launch_type(&outcome), "m6g.large");
    then(&outcome).all_scheduled().each_node_claim(|c| {
        let names: Vec<&str> = c.instance_types.iter().map(|t| t.as_str()).collect();
        assert!(names.contains(&"m6g.large"), "{names:?}");
        assert!(names.contains(&"m5.xlarge"), "{names:?}");
        assert!(!names.contains(&"m5.large"), "no room beside the agent: {names:?}");
        assert_eq!(c.requests.cpu, 1500, "what every type needs at least");
    });
}

#[test]
fn a_daemon_set_excluding_an_instance_type_adds_no_overhead_to_it() {
    let given = Given::aws()
        .node_pool(amd64_and_arm64_pool())
        .daemon_set(daemon_set_of(
            "agent",
            pod("agent")
                .cpu("1")
                .require(labels::INSTANCE_TYPE, Operator::NotIn, &["m6g.large"]),
        ))
        .pod(pod("web").cpu("1500m"));

    let outcome = when_provisioned(&given);

    assert_eq!(first_launch_type(&outcome), "m6g.large");
    then(&outcome).all_scheduled();
}

#[test]
fn a_daemon_sets_host_port_blocks_only_the_types_it_runs_on() {
    let given = Given::aws()
        .node_pool(amd64_and_arm64_pool())
        .daemon_set(daemon_set_of(
            "exporter",
            pod("exporter")
                .cpu("100m")
                .host_port(9100)
                .node_selector(labels::ARCH, "amd64"),
        ))
        .pod(pod("web").cpu("100m").host_port(9100));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert!(
                c.instance_types
                    .iter()
                    .all(|&t| label_of(t, labels::ARCH) == Some("arm64")),
                "the port is free on arm64 types only"
            )
        })
        .launches_only(|o| label_of(o.instance_type, labels::ARCH) == Some("arm64"));
}

#[test]
fn a_daemon_set_that_selects_the_lifecycle_labels_counts_on_a_planned_node() {
    let pool = node_pool("default")
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
        .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]);
    let given = Given::aws()
        .node_pool(pool)
        .daemon_set(daemon_set_of(
            "on-initialized",
            pod("on-initialized")
                .cpu("250m")
                .node_selector(INITIALIZED_LABEL, "true"),
        ))
        .daemon_set(daemon_set_of(
            "on-registered",
            pod("on-registered")
                .cpu("250m")
                .require(REGISTERED_LABEL, Operator::In, &["true"]),
        ))
        .pod(pod("web").cpu("1500m"));

    let outcome = when_provisioned(&given);

    assert_eq!(first_launch_type(&outcome), "m5.xlarge");
    then(&outcome).each_node_claim(|c| {
        assert_eq!(c.requests.cpu, 2000, "pod plus both DaemonSets");
        assert_eq!(c.requests.pods, 3);
    });
}

#[test]
fn a_launching_node_keeps_room_for_a_daemon_set_that_selects_the_lifecycle_labels() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .daemon_set(daemon_set_of(
            "on-initialized",
            pod("on-initialized")
                .cpu("500m")
                .node_selector(INITIALIZED_LABEL, "true"),
        ))
        .node(|c| {
            node(c, "launching", "m5.large", ZONE_A, CapacityType::OnDemand)
                .in_pool("default")
                .in_flight()
        })
        .pod(pod("web").cpu("1500m"));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings().node_claims(1);
}

// ---------------------------------------------------------------------------
// NodePool limits
// ---------------------------------------------------------------------------

#[test]
fn a_cpu_limit_stops_launches() {
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
                .limit("cpu", "8"),
        )
        .pods(10, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    // The first NodeClaim is counted at its largest option (8 vCPU), which
    // uses the whole limit.
    then(&outcome)
        .node_claims(1)
        .each_node_claim(|c| {
            assert!(
                c.instance_types
                    .iter()
                    .all(|&t| int_label(t, labels::INSTANCE_CPU) <= 8)
            )
        })
        .unschedulable_because("web-9", "limits");
    assert!(outcome.plan.scheduled() >= 1);
}

#[test]
fn a_nodes_limit_stops_launches() {
    let given = Given::aws()
        .node_pool(node_pool("default").limit("nodes", "2"))
        .pods(
            3,
            pod("web")
                .cpu("100m")
                .label("app", "web")
                .anti_affinity(labels::HOSTNAME, &[("app", "web")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(2)
        .scheduled(2)
        .unschedulable_because("web-2", "limits");
}

#[test]
fn existing_nodes_count_against_the_limit() {
    let given = Given::aws()
        .node_pool(node_pool("default").limit("nodes", "1"))
        .node(|c| {
            node(c, "full", "m5.large", ZONE_A, CapacityType::OnDemand)
                .in_pool("default")
                .with_pods(pod("busy").cpu("1900m").build_many(1))
        })
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "limits");
}

// ---------------------------------------------------------------------------
// NodePool weights
// ---------------------------------------------------------------------------

#[test]
fn the_heavier_node_pool_is_used_first() {
    let given = Given::aws()
        .node_pool(node_pool("light").weight(1))
        .node_pool(node_pool("heavy").weight(50))
        .pods(3, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert_eq!(c.node_pool.as_str(), "heavy"));
}

#[test]
fn the_next_node_pool_is_used_when_the_heavier_one_cannot_host_the_pod() {
    let given = Given::aws()
        .node_pool(
            node_pool("arm")
                .weight(50)
                .require(labels::ARCH, Operator::In, &["arm64"]),
        )
        .node_pool(
            node_pool("amd")
                .weight(1)
                .require(labels::ARCH, Operator::In, &["amd64"]),
        )
        .pod(pod("generic").cpu("1"))
        .pod(pod("x86").cpu("1").node_selector(labels::ARCH, "amd64"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .on_node_claim("generic", |c| assert_eq!(c.node_pool.as_str(), "arm"))
        .on_node_claim("x86", |c| assert_eq!(c.node_pool.as_str(), "amd"));
}

#[test]
fn limits_on_the_heavy_pool_spill_to_the_light_one() {
    let given = Given::aws()
        .node_pool(node_pool("heavy").weight(50).limit("nodes", "1"))
        .node_pool(node_pool("light").weight(1))
        .pods(
            3,
            pod("web")
                .cpu("100m")
                .label("app", "web")
                .anti_affinity(labels::HOSTNAME, &[("app", "web")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().node_claims(3);
    let pools: Vec<&str> = outcome
        .plan
        .node_claims
        .iter()
        .map(|c| c.node_pool.as_str())
        .collect();
    assert_eq!(
        pools.iter().filter(|&&p| p == "heavy").count(),
        1,
        "{pools:?}"
    );
    assert_eq!(
        pools.iter().filter(|&&p| p == "light").count(),
        2,
        "{pools:?}"
    );
}

// ---------------------------------------------------------------------------
// Preferences and required OR-terms
// ---------------------------------------------------------------------------

#[test]
fn preferred_node_affinity_is_honoured_when_possible() {
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .pod(
            pod("web")
                .cpu("1")
                .prefer(10, labels::ZONE, Operator::In, &[ZONE_C]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .nothing_relaxed()
        .each_node_claim(|c| assert_eq!(zone_of(c), Some(ZONE_C)));
}

#[test]
fn preferred_node_affinity_is_relaxed_when_unsatisfiable() {
    let given = Given::aws()
        .node_pool(three_zone_pool())
        .pod(
            pod("web")
                .cpu("1")
                .prefer(10, labels::ZONE, Operator::In, &[ZONE_D]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .relaxed("web", "preferred node affinity");
}

#[test]
fn preferred_pod_affinity_is_relaxed_when_unsatisfiable() {
    let given =
        Given::aws()
            .node_pool(node_pool("default"))
            .pod(
                pod("web")
                    .cpu("1")
                    .prefer_affinity(50, labels::ZONE, &[("app", "nowhere")]),
            );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .relaxed("web", "preferred pod affinity");
}

#[test]
fn preferred_anti_affinity_is_relaxed_when_it_cannot_be_kept() {
    // Only one node can exist, so the second pod must share it.
    let given = Given::aws()
        .node_pool(node_pool("default").limit("nodes", "1"))
        .pods(
            2,
            pod("web")
                .cpu("100m")
                .label("app", "web")
                .prefer_anti_affinity(10, labels::HOSTNAME, &[("app", "web")]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(1)
        .relaxed("web-1", "preferred pod anti-affinity");
}

#[test]
fn the_second_required_node_affinity_term_is_used_when_the_first_cannot_be_met() {
    let given = Given::aws().node_pool(three_zone_pool()).pod(
        pod("web")
            .cpu("1")
            .require_term(&[(labels::ZONE, Operator::In, &[ZONE_D])])
            .require_term(&[(labels::ZONE, Operator::In, &[ZONE_B])]),
    );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert_eq!(zone_of(c), Some(ZONE_B)))
        .launches_only(|o| o.zone.as_str() == ZONE_B);
}

// ---------------------------------------------------------------------------
// minValues
// ---------------------------------------------------------------------------

#[test]
fn min_values_keeps_five_families_in_the_node_claim_and_launch_list() {
    let given = Given::aws()
        .node_pool(node_pool("default").min_values(labels::INSTANCE_FAMILY, 5))
        .pods(3, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            let families = distinct(
                c.instance_types
                    .iter()
                    .map(|&t| label_of(t, labels::INSTANCE_FAMILY).unwrap_or("")),
            );
            assert!(families >= 5, "{families} families");
        })
        .each_launch(|_, launch| {
            let families = distinct(
                launch
                    .iter()
                    .map(|o| label_of(o.instance_type, labels::INSTANCE_FAMILY).unwrap_or("")),
            );
            assert!(families >= 5, "{families} families in the launch list");
        });
}

#[test]
fn min_values_that_cannot_be_met_leave_the_pod_unschedulable() {
    let given = Given::aws()
        .node_pool(node_pool("default").min_values(labels::INSTANCE_FAMILY, 5))
        .pod(
            pod("web")
                .cpu("1")
                .node_selector(labels::INSTANCE_FAMILY, "m5"),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "minValues");
}

/// The `minValues` of `key` on a planned NodeClaim.
fn min_values_of(claim: &NodeClaimPlan, key: &str) -> Option<u32> {
    claim
        .requirements
        .iter()
        .find(|r| r.key == key)
        .and_then(|r| r.min_values)
}

#[test]
fn best_effort_min_values_relax_to_what_the_types_can_meet() {
    let given = Given::aws()
        .settings(|s| s.min_values_policy = MinValuesPolicy::BestEffort)
        .node_pool(node_pool("default").min_values(labels::INSTANCE_FAMILY, 5))
        .pod(
            pod("web")
                .cpu("1")
                .node_selector(labels::INSTANCE_FAMILY, "m5"),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(1)
        .each_node_claim(|c| {
            assert!(c.min_values_relaxed, "the NodeClaim says it was relaxed");
            assert_eq!(min_values_of(c, labels::INSTANCE_FAMILY), Some(1));
        })
        .launches_only(|o| label_of(o.instance_type, labels::INSTANCE_FAMILY) == Some("m5"));
}

#[test]
fn best_effort_keeps_min_values_that_can_be_met() {
    let given = Given::aws()
        .settings(|s| s.min_values_policy = MinValuesPolicy::BestEffort)
        .node_pool(node_pool("default").min_values(labels::INSTANCE_FAMILY, 5))
        .pods(3, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().each_node_claim(|c| {
        assert!(!c.min_values_relaxed);
        assert_eq!(min_values_of(c, labels::INSTANCE_FAMILY), Some(5));
    });
}

// ---------------------------------------------------------------------------
// Existing and in-flight nodes
// ---------------------------------------------------------------------------

#[test]
fn existing_nodes_are_used_before_new_ones() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| node(c, "roomy", "m5.2xlarge", ZONE_A, CapacityType::OnDemand))
        .pods(3, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(0)
        .bound("web-0", "roomy")
        .bound("web-1", "roomy")
        .bound("web-2", "roomy");
    assert!(outcome.plan.bindings.iter().all(|b| b.initialized));
}

#[test]
fn initialized_nodes_are_used_before_in_flight_ones() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(
                c,
                "a-launching",
                "m5.2xlarge",
                ZONE_A,
                CapacityType::OnDemand,
            )
            .in_flight()
        })
        .node(|c| node(c, "z-ready", "m5.large", ZONE_B, CapacityType::OnDemand))
        .pods(2, pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    // The ready node takes what it can; the rest waits for the launching one.
    then(&outcome)
        .all_scheduled()
        .node_claims(0)
        .bound("web-0", "z-ready")
        .bound("web-1", "a-launching");
    let launching = outcome
        .plan
        .bindings
        .iter()
        .find(|b| b.node.as_str() == "a-launching")
        .expect("a binding to the in-flight node");
    assert!(!launching.initialized);
}

#[test]
fn a_full_existing_node_causes_a_new_node_claim() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(c, "full", "m5.large", ZONE_A, CapacityType::OnDemand)
                .with_pods(pod("busy").cpu("1500m").build_many(1))
        })
        .pod(pod("small").cpu("100m"))
        .pod(pod("big").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(1)
        .bound("small", "full")
        .on_node_claim("big", |_| {});
}

#[test]
fn nodes_marked_for_deletion_take_no_pods() {
    let mut given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| node(c, "leaving", "m5.2xlarge", ZONE_A, CapacityType::OnDemand))
        .pod(pod("web").cpu("1"));
    given.snapshot.nodes[0].marked_for_deletion = true;

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings().node_claims(1);
}

// ---------------------------------------------------------------------------
// Host ports, volumes, offerings
// ---------------------------------------------------------------------------

#[test]
fn pods_with_the_same_host_port_never_share_a_node_claim() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pods(2, pod("proxy").cpu("100m").host_port(8080))
        .pod(pod("other").cpu("100m").host_port(9090));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .node_claims(2)
        .each_node_claim(|c| {
            let proxies = c
                .pods
                .iter()
                .filter(|p| p.name.as_str().starts_with("proxy"))
                .count();
            assert_eq!(proxies, 1, "{:?}", c.pods);
        });
}

#[test]
fn a_host_port_taken_on_an_existing_node_sends_the_pod_elsewhere() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .node(|c| {
            node(
                c,
                "proxy-node",
                "m5.2xlarge",
                ZONE_A,
                CapacityType::OnDemand,
            )
            .with_pods(pod("old-proxy").cpu("100m").host_port(8080).build_many(1))
        })
        .pod(pod("proxy").cpu("100m").host_port(8080));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().no_bindings().node_claims(1);
}

#[test]
fn a_volume_in_one_zone_pins_the_node_claim_there() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pod(pod("db").cpu("1").volume_in(&[ZONE_B]));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            assert_eq!(zone_of(c), Some(ZONE_B));
            assert!(c.offerings.iter().all(|o| o.zone.as_str() == ZONE_B));
        })
        .launches_only(|o| o.zone.as_str() == ZONE_B);
}

#[test]
fn an_unavailable_offering_is_removed_from_offerings_and_launch_list() {
    let pool = node_pool("default").require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"]);
    let before = Given::aws().node_pool(pool).pod(pod("web").cpu("1"));
    let after = before
        .clone()
        .unavailable("m5.large", ZONE_A, CapacityType::Spot);

    let outcome_before = when_provisioned(&before);
    let outcome_after = when_provisioned(&after);

    let key = |o: &OfferingRef| (o.instance_type, o.zone, o.capacity_type);
    let is_gone = |o: &OfferingRef| {
        o.instance_type.as_str() == "m5.large"
            && o.zone.as_str() == ZONE_A
            && o.capacity_type == CapacityType::Spot
    };
    let offerings =
        |p: &Provisioning| -> Vec<_> { p.plan.node_claims[0].offerings.iter().map(key).collect() };
    let launches = |p: &Provisioning| -> Vec<_> {
        p.launch.launches[0]
            .as_ref()
            .expect("a launch list")
            .iter()
            .map(key)
            .collect()
    };
    let without = |list: Vec<(Sym, Sym, CapacityType)>| -> Vec<_> {
        list.into_iter()
            .filter(|&(t, z, ct)| {
                !is_gone(&OfferingRef {
                    instance_type: t,
                    zone: z,
                    capacity_type: ct,
                    price: 0.0,
                })
            })
            .collect()
    };
    assert!(
        outcome_before.plan.node_claims[0]
            .offerings
            .iter()
            .any(is_gone)
    );
    assert_eq!(
        offerings(&outcome_after),
        without(offerings(&outcome_before))
    );
    assert_eq!(launches(&outcome_after), without(launches(&outcome_before)));
    then(&outcome_after).launches_only(|o| !is_gone(o));
}

#[test]
fn when_every_offering_of_the_only_type_is_unavailable_the_pod_waits() {
    let mut given = Given::aws().node_pool(node_pool("default").require(
        labels::INSTANCE_TYPE,
        Operator::In,
        &["m5.large"],
    ));
    let zones: Vec<Sym> = given
        .catalog()
        .get("m5.large")
        .expect("m5.large")
        .offerings
        .iter()
        .map(|o| o.zone)
        .collect();
    for z in zones {
        for ct in [CapacityType::OnDemand, CapacityType::Spot] {
            if given
                .catalog()
                .get("m5.large")
                .and_then(|it| it.offering(z.as_str(), ct))
                .is_some()
            {
                given = given.unavailable("m5.large", z.as_str(), ct);
            }
        }
    }
    let given = given.pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome).node_claims(0).unschedulable(1);
}

// ---------------------------------------------------------------------------
// Requests and capacity math
// ---------------------------------------------------------------------------

#[test]
fn sidecar_aware_requests_size_the_node() {
    // Containers 500m + sidecar 1000m = 1500m; the init peak is the sidecar
    // plus the 2500m init container = 3500m; plus 100m overhead = 3600m.
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
        )
        .pod(
            pod("job")
                .cpu("500m")
                .init_container("1000m", "128Mi", true)
                .init_container("2500m", "128Mi", false)
                .overhead("100m", "64Mi"),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert_eq!(c.requests.cpu, 3600));
    assert_eq!(first_launch_type(&outcome), "m5.xlarge");
}

#[test]
fn a_pod_requesting_exactly_the_allocatable_cpu_fits() {
    let allocatable = aws_catalog()
        .get("m5.large")
        .expect("m5.large")
        .allocatable()
        .cpu;
    let pool = node_pool("default").require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"]);
    let exact = Given::aws()
        .node_pool(pool.clone())
        .pod(pod("exact").cpu(&format!("{allocatable}m")));
    let too_big = Given::aws().node_pool(pool).pod(pod("two-cpus").cpu("2"));

    let outcome_exact = when_provisioned(&exact);
    let outcome_too_big = when_provisioned(&too_big);

    then(&outcome_exact).all_scheduled().node_claims(1);
    then(&outcome_too_big)
        .node_claims(0)
        .unschedulable_because("two-cpus", "room")
        .unschedulable_because("two-cpus", "cpu");
}

// ---------------------------------------------------------------------------
// Node labels: from requirements, a catalog's own well-known labels,
// multi-valued labels
// ---------------------------------------------------------------------------

fn label_on(claim: &NodeClaimPlan, key: &str) -> Option<&'static str> {
    claim
        .labels
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_node_claim_is_labelled_with_a_custom_requirement_of_its_node_pool() {
    // The pool requires `team In [a]` but sets no template label.
    let given = Given::aws()
        .node_pool(node_pool("default").require("team", Operator::In, &["a"]))
        .pod(pod("web").cpu("1").node_selector("team", "a"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| assert_eq!(label_on(c, "team"), Some("a")));
}

#[test]
fn a_custom_requirement_with_several_values_still_labels_the_node_claim() {
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require("team", Operator::In, &["a", "b"])
                .require(labels::ZONE, Operator::In, &[ZONE_A, ZONE_B]),
        )
        .pod(pod("web").cpu("1").require("team", Operator::In, &["a", "b"]));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().each_node_claim(|c| {
        assert_eq!(label_on(c, "team"), Some("a"), "one of the allowed values");
        assert_eq!(label_on(c, labels::ZONE), None, "the launch sets the zone");
    });
}

/// An instance type's name and its labels, each with one or more values.
type LabType<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])]);

/// A lab catalog: `(name, labels)` types of 4 vCPU and 16 GiB, on-demand
/// in one zone, each a cent dearer than the one before.
fn lab_catalog(types: &[LabType], well_known: &[&str]) -> Catalog {
    let specs: Vec<InstanceTypeSpec> = types
        .iter()
        .enumerate()
        .map(|(i, (name, labels))| InstanceTypeSpec {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        [one] => LabelValue::One(one.to_string()),
                        many => LabelValue::Many(many.iter().map(|v| v.to_string()).collect()),
                    };
                    (k.to_string(), value)
                })
                .collect(),
            capacity: ResourceList(
                [("cpu", "4"), ("memory", "16Gi")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            overhead: Default::default(),
            offerings: vec![OfferingSpec {
                zone: "lab-1a".into(),
                capacity_type: CapacityType::OnDemand,
                price: 0.10 + 0.01 * i as f64,
                available: true,
            }],
        })
        .collect();
    Catalog::from_specs("lab-1", &specs)
        .expect("a valid lab catalog")
        .with_well_known_labels(well_known.iter().map(|k| Sym::new(k)))
}

const GPU_MODEL: &str = "example.com/gpu-model";

fn gpu_catalog(well_known: &[&str]) -> Catalog {
    lab_catalog(
        &[
            ("plain", &[]),
            ("a100-box", &[(GPU_MODEL, &["a100"])]),
            ("h100-box", &[(GPU_MODEL, &["h100"])]),
        ],
        well_known,
    )
}

#[test]
fn a_catalogs_own_well_known_label_may_be_required_without_the_node_pool_defining_it() {
    let declared = Given::with_catalog(std::sync::Arc::new(gpu_catalog(&[GPU_MODEL])))
        .node_pool(node_pool("default"))
        .pod(pod("train").cpu("1").node_selector(GPU_MODEL, "a100"));
    let undeclared = Given::with_catalog(std::sync::Arc::new(gpu_catalog(&[])))
        .node_pool(node_pool("default"))
        .pod(pod("train").cpu("1").node_selector(GPU_MODEL, "a100"));

    let outcome = when_provisioned(&declared);
    let refused = when_provisioned(&undeclared);

    then(&outcome)
        .all_scheduled()
        .each_node_claim(|c| {
            let names: Vec<&str> = c.instance_types.iter().map(|t| t.as_str()).collect();
            assert_eq!(names, ["a100-box"], "a type without the label does not match");
        })
        .launches_only(|o| o.instance_type.as_str() == "a100-box");
    then(&refused).unschedulable_because("train", GPU_MODEL);
}

#[test]
fn a_multi_valued_label_matches_any_of_its_values_and_the_node_claim_pins_one() {
    let catalog = lab_catalog(
        &[
            ("linux-box", &[(labels::OS, &["linux"])]),
            ("dual-box", &[(labels::OS, &["linux", "windows"])]),
        ],
        &[],
    );
    let given = Given::with_catalog(std::sync::Arc::new(catalog))
        .node_pool(node_pool("default"))
        .pod(pod("win").cpu("3").node_selector(labels::OS, "windows"))
        .pod(pod("lin").cpu("3").node_selector(labels::OS, "linux"));

    let outcome = when_provisioned(&given);

    let types = |c: &NodeClaimPlan| -> Vec<&'static str> {
        c.instance_types.iter().map(|t| t.as_str()).collect()
    };
    then(&outcome)
        .all_scheduled()
        .node_claims(2)
        .on_node_claim("win", |c| {
            assert_eq!(types(c), ["dual-box"]);
            assert_eq!(label_on(c, labels::OS), Some("windows"));
        })
        .on_node_claim("lin", |c| {
            assert_eq!(types(c), ["linux-box", "dual-box"], "cheapest first");
            assert_eq!(label_on(c, labels::OS), Some("linux"));
        });
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn an_unknown_custom_label_in_a_node_selector_is_unschedulable() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pod(pod("web").cpu("1").node_selector("team", "payments"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "`team`");
}

#[test]
fn a_custom_label_the_pool_sets_is_schedulable() {
    let given = Given::aws()
        .node_pool(node_pool("default").label("team", "payments"))
        .pod(pod("web").cpu("1").node_selector("team", "payments"));

    let outcome = when_provisioned(&given);

    then(&outcome).all_scheduled().node_claims(1);
}

#[test]
fn a_malformed_pod_requirement_gives_a_clear_reason() {
    let given = Given::aws()
        .node_pool(node_pool("default"))
        .pod(
            pod("web")
                .cpu("1")
                .require(labels::INSTANCE_CPU, Operator::Gt, &["four"]),
        );

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "karpenter.k8s.aws/instance-cpu Gt")
        .unschedulable_because("web", "integer");
}

#[test]
fn a_malformed_node_pool_requirement_names_the_pool() {
    let given = Given::aws()
        .node_pool(node_pool("broken").require(labels::INSTANCE_CPU, Operator::Gt, &["four"]))
        .pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "broken")
        .unschedulable_because("web", "integer");
}

#[test]
fn without_a_node_pool_nothing_schedules() {
    let given = Given::aws().pod(pod("web").cpu("1"));

    let outcome = when_provisioned(&given);

    then(&outcome)
        .node_claims(0)
        .unschedulable_because("web", "NodePool");
}

/// The embedded catalog with EC2NodeClass `few-pods` sized by its kubelet
/// `maxPods: 4`, as the AWS adapter sizes a class with kubelet settings.
fn catalog_with_a_four_pod_class() -> std::sync::Arc<Catalog> {
    let four = Catalog::aws_us_east_1_with(&dovetail_core::catalog::CatalogSettings {
        max_pods: Some(4),
        ..Default::default()
    });
    std::sync::Arc::new(Catalog::aws_us_east_1().with_class_sized_as("few-pods", &four))
}

#[test]
fn each_node_pool_packs_by_its_node_classs_kubelet_settings() {
    let given = Given::with_catalog(catalog_with_a_four_pod_class())
        .node_pool(
            node_pool("few")
                .node_class("few-pods")
                .require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"]),
        )
        .node_pool(
            node_pool("many").require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"]),
        )
        .pods(10, pod("few").cpu("10m").node_selector(labels::NODE_POOL, "few"))
        .pods(10, pod("many").cpu("10m").node_selector(labels::NODE_POOL, "many"));

    let outcome = when_provisioned(&given);

    let per_pool = |pool: &str| -> Vec<usize> {
        outcome
            .plan
            .node_claims
            .iter()
            .filter(|c| c.node_pool.as_str() == pool)
            .map(|c| c.pods.len())
            .collect()
    };
    // maxPods 4 on the class: ten pods need three nodes of at most four.
    let mut few = per_pool("few");
    few.sort();
    assert_eq!(few, vec![2, 4, 4], "{:?}", outcome.plan.node_claims);
    // The default class keeps m5.large's ENI-limited 29 pods.
    assert_eq!(per_pool("many"), vec![10]);
}
