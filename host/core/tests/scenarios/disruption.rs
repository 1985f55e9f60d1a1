// Disruption scenarios: given a cluster of existing nodes, when the
// disruption engine runs one pass, then the commands (and the nodes it left
// alone, and why) are what Karpenter would decide.
//
// This file is `include!`d by more than one test crate. The includer defines
// `fn scorer(name: &str) -> Box<dyn dovetail_core::policy::ConsolidationScorer>`
// for the names "default", "balanced" (k = 2) and "savings-threshold"
// (min-savings-percent 20); everything else lives here.

use std::time::Duration;

use dovetail_core::builders::{Given, NodeBuilder, NodePoolBuilder, node, node_pool, pod};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::disruption::{
    Command, CommandReason, Method, Pass, Settings, disrupt, validate,
};
use dovetail_core::labels;
use dovetail_core::disruption::budgets::{BudgetWindow, DisruptionReason};
use dovetail_core::model::{Budget, ConsolidationPolicy, Owner, OwnerKind, Pod, PodPhase};
use dovetail_core::requirements::Operator;
use dovetail_core::scheduler::{NodeClaimPlan, NodeIndex, Prepared, solve_without};

/// Monday 2024-01-15 20:00 UTC.
const NOW: u64 = 1_705_348_800;
/// The same day at 10:00 UTC.
const TEN_AM: u64 = 1_705_312_800;
const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

const ZONE_A: &str = "us-east-1a";

/// On-demand prices in us-east-1 (the same in every zone).
const M5_LARGE: f64 = 0.096;
const M5_XLARGE: f64 = 0.192;
const M5_2XLARGE: f64 = 0.384;
const M5_4XLARGE: f64 = 0.768;

// ---------------------------------------------------------------------------
// When
// ---------------------------------------------------------------------------

/// One pass with Karpenter's scoring and default settings.
fn when_disrupted(given: &Given, now: u64) -> Pass {
    when_disrupted_with(given, now, "default", &Settings::default())
}

fn when_disrupted_with(given: &Given, now: u64, scorer_name: &str, settings: &Settings) -> Pass {
    let scorer = scorer(scorer_name);
    let pass = disrupt(&given.snapshot, now, &*scorer, settings);
    // Whatever the scenario, a pass never removes a node twice and every
    // command names nodes of the snapshot.
    let mut seen = Vec::new();
    for c in &pass.commands {
        assert_eq!(c.nodes.len(), c.node_indices.len(), "{}", describe(&pass));
        for (name, &i) in c.nodes.iter().zip(&c.node_indices) {
            assert_eq!(given.snapshot.nodes[i].name, *name, "{}", describe(&pass));
            assert!(
                !seen.contains(name),
                "{name} removed twice: {}",
                describe(&pass)
            );
            seen.push(*name);
        }
    }
    pass
}

// ---------------------------------------------------------------------------
// Then
// ---------------------------------------------------------------------------

fn then(pass: &Pass) -> Then<'_> {
    Then { pass }
}

struct Then<'a> {
    pass: &'a Pass,
}

impl<'a> Then<'a> {
    fn no_command(&self) -> &Self {
        assert!(
            self.pass.commands.is_empty(),
            "expected no command: {}",
            describe(self.pass)
        );
        self
    }

    /// The pass decided exactly one command.
    fn command(&self) -> &'a Command {
        assert_eq!(
            self.pass.commands.len(),
            1,
            "expected one command: {}",
            describe(self.pass)
        );
        &self.pass.commands[0]
    }

    /// Exactly one command, by `method` for `reason`.
    fn one_command(&self, method: Method, reason: CommandReason) -> &Self {
        let c = self.command();
        assert_eq!(
            (c.method, c.reason),
            (method, reason),
            "{}",
            describe(self.pass)
        );
        self
    }

    /// The command removes exactly `nodes`, in any order.
    fn removes(&self, nodes: &[&str]) -> &Self {
        let mut got: Vec<&str> = self.command().nodes.iter().map(|n| n.as_str()).collect();
        let mut want = nodes.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{}", describe(self.pass));
        self
    }

    /// The command removes `n` nodes, all of them among `allowed`.
    fn removes_n_of(&self, n: usize, allowed: &[&str]) -> &Self {
        let c = self.command();
        assert_eq!(c.nodes.len(), n, "{}", describe(self.pass));
        for node in &c.nodes {
            assert!(
                allowed.contains(&node.as_str()),
                "{node} should not be removed: {}",
                describe(self.pass)
            );
        }
        self
    }

    /// No command touches `node`.
    fn untouched(&self, node: &str) -> &Self {
        assert!(
            self.pass
                .commands
                .iter()
                .all(|c| c.nodes.iter().all(|n| n.as_str() != node)),
            "{node} should be left alone: {}",
            describe(self.pass)
        );
        self
    }

    /// No command of `method`.
    fn no_command_by(&self, method: Method) -> &Self {
        assert!(
            self.pass.commands.iter().all(|c| c.method != method),
            "expected no {method:?} command: {}",
            describe(self.pass)
        );
        self
    }

    fn no_replacement(&self) -> &Self {
        assert!(
            self.command().replacements.is_empty(),
            "expected a plain delete: {}",
            describe(self.pass)
        );
        self
    }

    /// Exactly one replacement NodeClaim, which `check` accepts.
    fn replacement(&self, check: impl Fn(&NodeClaimPlan)) -> &Self {
        let c = self.command();
        assert_eq!(c.replacements.len(), 1, "{}", describe(self.pass));
        check(&c.replacements[0]);
        self
    }

    fn saves(&self, per_hour: f64) -> &Self {
        let c = self.command();
        assert!(
            (c.savings_per_hour - per_hour).abs() < 1e-6,
            "expected savings of ${per_hour:.4}/h, got ${:.4}/h: {}",
            c.savings_per_hour,
            describe(self.pass)
        );
        self
    }

    /// `node` was left out, for a reason mentioning `fragment`.
    fn excluded(&self, node: &str, fragment: &str) -> &Self {
        let e = self
            .pass
            .exclusions
            .iter()
            .find(|e| e.node.as_str() == node)
            .unwrap_or_else(|| panic!("{node} should be excluded: {}", describe(self.pass)));
        assert!(
            e.reason.contains(fragment),
            "the exclusion of {node} should mention `{fragment}`: {}",
            e.reason
        );
        self.untouched(node)
    }

    fn not_excluded(&self, node: &str) -> &Self {
        assert!(
            self.pass.exclusions.iter().all(|e| e.node.as_str() != node),
            "{node} should not be excluded: {}",
            describe(self.pass)
        );
        self
    }

    /// The policy rejected a move of `node`, for a reason mentioning `fragment`.
    fn rejected(&self, node: &str, fragment: &str) -> &Self {
        let (_, why) = self
            .pass
            .rejected
            .iter()
            .find(|(nodes, _)| nodes.iter().any(|n| n.as_str() == node))
            .unwrap_or_else(|| {
                panic!(
                    "a move of {node} should be rejected: {}",
                    describe(self.pass)
                )
            });
        assert!(
            why.contains(fragment),
            "the rejection of {node} should mention `{fragment}`: {why}"
        );
        self
    }

    fn nothing_rejected(&self) -> &Self {
        assert!(
            self.pass.rejected.is_empty(),
            "expected no rejection: {}",
            describe(self.pass)
        );
        self
    }
}

fn describe(pass: &Pass) -> String {
    let commands: Vec<String> = pass
        .commands
        .iter()
        .map(|c| {
            format!(
                "{:?}/{} remove {:?} replace {:?} save ${:.4}/h by {} ({})",
                c.method,
                c.reason,
                c.nodes.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
                c.replacements
                    .iter()
                    .map(|r| {
                        format!(
                            "{}x{} from ${:.4}/h",
                            r.node_pool,
                            r.instance_types.len(),
                            r.offerings.first().map_or(f64::NAN, |o| o.price)
                        )
                    })
                    .collect::<Vec<_>>(),
                c.savings_per_hour,
                c.decided_by,
                c.policy_reason
            )
        })
        .collect();
    let exclusions: Vec<String> = pass
        .exclusions
        .iter()
        .map(|e| format!("{}: {}", e.node, e.reason))
        .collect();
    format!(
        "commands {commands:#?}, exclusions {exclusions:#?}, rejected {:?}, budget errors {:?}",
        pass.rejected, pass.budget_errors
    )
}

// ---------------------------------------------------------------------------
// Given
// ---------------------------------------------------------------------------

/// NodePool `name` launching on-demand m5 instances.
fn m5_pool(name: &str) -> NodePoolBuilder {
    node_pool(name)
        .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
        .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
}

/// An on-demand node in zone A of NodePool `default`, a day old, whose pods
/// last changed an hour ago.
fn on_demand(c: &Catalog, name: &str, instance_type: &str) -> NodeBuilder {
    on_demand_in(c, name, instance_type, "default")
}

fn on_demand_in(c: &Catalog, name: &str, instance_type: &str, pool: &str) -> NodeBuilder {
    node(c, name, instance_type, ZONE_A, CapacityType::OnDemand)
        .in_pool(pool)
        .created_at(NOW - DAY)
        .last_pod_event(NOW - HOUR)
}

fn spot(c: &Catalog, name: &str, instance_type: &str) -> NodeBuilder {
    node(c, name, instance_type, ZONE_A, CapacityType::Spot)
        .in_pool("default")
        .created_at(NOW - DAY)
        .last_pod_event(NOW - HOUR)
}

/// `n` running pods `<name>-<i>` labelled `app=<name>`, of `cpu` each.
fn app(name: &str, n: usize, cpu: &str) -> Vec<Pod> {
    app_pod(name, cpu).build_many(n)
}

fn app_pod(name: &str, cpu: &str) -> dovetail_core::builders::PodBuilder {
    pod(name)
        .cpu(cpu)
        .memory("256Mi")
        .label("app", name)
        .started_at(NOW - 2 * HOUR)
}

/// The DaemonSet pod every node runs.
fn daemon(node: &str) -> Pod {
    pod(&format!("logs-{node}"))
        .cpu("100m")
        .memory("128Mi")
        .daemon("logs")
        .started_at(NOW - DAY)
        .build()
}

fn budget(nodes: &str) -> Budget {
    Budget::new(nodes.parse().unwrap())
}

fn budget_for(nodes: &str, reasons: &[&str]) -> Budget {
    Budget {
        reasons: reasons
            .iter()
            .map(|r| DisruptionReason::from_name(r).unwrap())
            .collect(),
        ..budget(nodes)
    }
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * HOUR)
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * MINUTE)
}

/// A node `name` with nothing but its DaemonSet pod.
fn empty_node(c: &Catalog, name: &str) -> NodeBuilder {
    on_demand(c, name, "m5.large").with_pods(vec![daemon(name)])
}

/// A node `name` whose pod fills it (1.5 of its 1.93 allocatable CPUs).
fn full_node(c: &Catalog, name: &str) -> NodeBuilder {
    on_demand(c, name, "m5.large").with_pods(app(&format!("{name}-app"), 1, "1500m"))
}

/// An underutilized m5.large (`small`, one 500m pod) next to an m5.2xlarge
/// with room for it (`roomy`): deleting `small` is the move.
fn small_next_to_roomy(pool: NodePoolBuilder) -> Given {
    Given::aws()
        .node_pool(pool)
        .node(|c| on_demand(c, "roomy", "m5.2xlarge").with_pods(app("api", 2, "1")))
        .node(|c| on_demand(c, "small", "m5.large").with_pods(app("web", 1, "500m")))
}

/// One small pod alone on an m5.4xlarge.
fn lonely_pod_on_a_big_node() -> Given {
    Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| on_demand(c, "big", "m5.4xlarge").with_pods(app("web", 1, "500m")))
}

/// Minimal price of each replacement's cheapest offering.
fn replacement_price(c: &Command) -> f64 {
    c.replacements
        .iter()
        .map(|r| {
            r.offerings
                .first()
                .expect("a replacement has offerings")
                .price
        })
        .sum()
}

// ---------------------------------------------------------------------------
// Emptiness
// ---------------------------------------------------------------------------

#[test]
fn an_empty_node_running_only_daemonset_pods_is_deleted() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| on_demand(c, "busy", "m5.xlarge").with_pods(app("web", 2, "1")))
        .node(|c| empty_node(c, "idle"));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["idle"])
        .no_replacement()
        .saves(M5_LARGE)
        .untouched("busy");
    assert!(
        pass.commands[0].pods_evicted.is_empty(),
        "DaemonSet pods are not evicted: {:?}",
        pass.commands[0].pods_evicted
    );
}

#[test]
fn empty_nodes_are_deleted_together_up_to_the_budget() {
    let empty = ["idle-0", "idle-1", "idle-2", "idle-3", "idle-4"];
    let mut given = Given::aws().node_pool(m5_pool("default"));
    for i in 0..15 {
        given = given.node(|c| full_node(c, &format!("busy-{i:02}")));
    }
    for name in empty {
        given = given.node(|c| empty_node(c, name));
    }

    let pass = when_disrupted(&given, NOW);

    // The default budget, 10% of 20 nodes, allows 2 at once.
    then(&pass)
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes_n_of(2, &empty)
        .no_replacement()
        .saves(2.0 * M5_LARGE);
}

#[test]
fn an_empty_node_waits_for_consolidate_after() {
    let given = Given::aws()
        .node_pool(m5_pool("default").consolidate_after(Some(minutes(30))))
        .node(|c| empty_node(c, "just-emptied").last_pod_event(NOW - 10 * MINUTE))
        .node(|c| empty_node(c, "long-empty").last_pod_event(NOW - HOUR))
        .node(|c| full_node(c, "busy"));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["long-empty"])
        .untouched("just-emptied");
}

#[test]
fn consolidate_after_never_disables_consolidation() {
    let given = Given::aws()
        .node_pool(m5_pool("default").consolidate_after(None))
        .node(|c| on_demand(c, "roomy", "m5.2xlarge").with_pods(app("api", 2, "1")))
        .node(|c| on_demand(c, "small", "m5.large").with_pods(app("web", 1, "500m")))
        .node(|c| empty_node(c, "idle").last_pod_event(NOW - 30 * DAY));

    let pass = when_disrupted(&given, NOW);

    then(&pass).no_command();
}

#[test]
fn when_empty_deletes_empty_nodes_but_never_consolidates_underutilized_ones() {
    let policy = |p: ConsolidationPolicy| {
        Given::aws()
            .node_pool(m5_pool("default").consolidation_policy(p))
            .node(|c| on_demand(c, "roomy", "m5.2xlarge").with_pods(app("api", 2, "1")))
            .node(|c| on_demand(c, "small", "m5.large").with_pods(app("web", 1, "500m")))
    };
    let with_empty = policy(ConsolidationPolicy::WhenEmpty).node(|c| empty_node(c, "idle"));

    then(&when_disrupted(&with_empty, NOW))
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["idle"]);
    then(&when_disrupted(
        &policy(ConsolidationPolicy::WhenEmpty),
        NOW,
    ))
    .no_command();
    // The same cluster under WhenEmptyOrUnderutilized does consolidate.
    then(&when_disrupted(
        &policy(ConsolidationPolicy::WhenEmptyOrUnderutilized),
        NOW,
    ))
    .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
    .removes(&["small"]);
}

// ---------------------------------------------------------------------------
// Expiration
// ---------------------------------------------------------------------------

#[test]
fn a_node_past_expire_after_expires_even_with_a_zero_budget() {
    let given = Given::aws()
        .node_pool(
            m5_pool("default")
                .expire_after(Some(hours(24)))
                .budgets(vec![budget("0")]),
        )
        .node(|c| {
            on_demand(c, "old", "m5.xlarge")
                .created_at(NOW - 2 * DAY)
                .with_pods(app("web", 2, "1"))
                .with_pods(vec![daemon("old")])
        })
        .node(|c| {
            on_demand(c, "young", "m5.xlarge")
                .created_at(NOW - HOUR)
                .with_pods(app("api", 1, "1"))
        });

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Expiration, CommandReason::Expired)
        .removes(&["old"])
        .no_replacement()
        .untouched("young");
    let c = &pass.commands[0];
    assert_eq!(c.decided_by, "engine");
    assert!(
        c.policy_reason.contains("expireAfter"),
        "{}",
        c.policy_reason
    );
    let mut evicted: Vec<String> = c.pods_evicted.iter().map(|p| p.to_string()).collect();
    evicted.sort();
    assert_eq!(evicted, ["default/web-0", "default/web-1"]);
}

#[test]
fn expire_after_never_never_expires() {
    let given = Given::aws()
        .node_pool(m5_pool("default").expire_after(None))
        .node(|c| {
            on_demand(c, "ancient", "m5.large")
                .created_at(NOW - 400 * DAY)
                .last_pod_event(NOW - HOUR)
                .with_pods(app("web", 1, "1500m"))
        });

    then(&when_disrupted(&given, NOW))
        .no_command_by(Method::Expiration)
        .untouched("ancient");
}

// ---------------------------------------------------------------------------
// Drift
// ---------------------------------------------------------------------------

/// `drifted` was launched from NodePool `default` before a label was added
/// to its template; `fresh` was launched after, and is full.
fn drifted_template(adjust: impl Fn(NodePoolBuilder) -> NodePoolBuilder) -> Given {
    let before = adjust(m5_pool("default")).build();
    let after = adjust(m5_pool("default")).label("team", "checkout");
    let now_pool = after.build();
    Given::aws()
        .node_pool(after)
        .node(|c| {
            node(c, "drifted", "m5.xlarge", ZONE_A, CapacityType::OnDemand)
                .launched_from(&before)
                .created_at(NOW - DAY)
                .last_pod_event(NOW - HOUR)
                .with_pods(app("web", 2, "1"))
        })
        .node(|c| {
            node(c, "fresh", "m5.large", ZONE_A, CapacityType::OnDemand)
                .launched_from(&now_pool)
                .created_at(NOW - HOUR)
                .last_pod_event(NOW - HOUR)
                .with_pods(app("api", 1, "1500m"))
        })
}

#[test]
fn a_node_from_a_changed_template_is_replaced_as_drifted() {
    let given = drifted_template(|p| p);

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Drift, CommandReason::Drifted)
        .removes(&["drifted"])
        .replacement(|r| {
            assert_eq!(r.node_pool.as_str(), "default");
            assert_eq!(r.pods.len(), 2, "both web pods move to the replacement");
        })
        .untouched("fresh");
    assert!(
        pass.commands[0].policy_reason.contains("template"),
        "{}",
        pass.commands[0].policy_reason
    );
}

#[test]
fn a_node_that_no_longer_meets_changed_requirements_is_drifted() {
    // The NodePool now launches only c5; the node is an m5.
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require(labels::INSTANCE_FAMILY, Operator::In, &["c5"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
        )
        .node(|c| on_demand(c, "m5-node", "m5.xlarge").with_pods(app("web", 2, "1")));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Drift, CommandReason::Drifted)
        .removes(&["m5-node"])
        .replacement(|r| {
            assert!(
                r.instance_types
                    .iter()
                    .all(|t| t.as_str().starts_with("c5")),
                "the replacement must meet the new requirements: {:?}",
                r.instance_types
            );
        });
    assert!(
        pass.commands[0].policy_reason.contains("requirements"),
        "{}",
        pass.commands[0].policy_reason
    );
}

#[test]
fn a_drifted_budget_of_zero_blocks_drift() {
    let given = drifted_template(|p| p.budgets(vec![budget_for("0", &["Drifted"])]));

    let pass = when_disrupted(&given, NOW);

    then(&pass).no_command_by(Method::Drift).untouched("drifted");
    // The caller learns drift is still waiting, so it looks again soon.
    let waiting: Vec<&str> = pass.drifted.iter().map(|n| n.as_str()).collect();
    assert_eq!(waiting, ["drifted"]);
    // Also when a pod protects the node rather than the budget.
    let mut protected = drifted_template(|p| p);
    protected.snapshot.nodes[0].pods[0] = app_pod("web", "1")
        .annotation(labels::DO_NOT_DISRUPT, "true")
        .build()
        .into();
    let pass = when_disrupted(&protected, NOW);
    then(&pass).no_command_by(Method::Drift).untouched("drifted");
    let waiting: Vec<&str> = pass.drifted.iter().map(|n| n.as_str()).collect();
    assert_eq!(waiting, ["drifted"]);
    // Replaced, it waits no more.
    assert!(when_disrupted(&drifted_template(|p| p), NOW).drifted.is_empty());
}

#[test]
fn drift_is_not_gated_by_consolidate_after() {
    let given = drifted_template(|p| p.consolidate_after(None));

    then(&when_disrupted(&given, NOW))
        .one_command(Method::Drift, CommandReason::Drifted)
        .removes(&["drifted"]);
}

// ---------------------------------------------------------------------------
// Single-node consolidation
// ---------------------------------------------------------------------------

#[test]
fn an_underutilized_node_whose_pods_fit_elsewhere_is_deleted() {
    let given = small_next_to_roomy(m5_pool("default"));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"])
        .no_replacement()
        .saves(M5_LARGE)
        .untouched("roomy")
        .nothing_rejected();
}

#[test]
fn a_node_is_replaced_by_a_strictly_cheaper_one_when_its_pods_fit_nowhere_else() {
    let given = lonely_pod_on_a_big_node();

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["big"])
        .replacement(|r| {
            assert_eq!(r.instance_types[0].as_str(), "m5.large", "cheapest first");
            assert!(
                !r.instance_types.iter().any(|t| t.as_str() == "m5.4xlarge"),
                "{:?}",
                r.instance_types
            );
            assert!(
                r.offerings.iter().all(|o| o.price < M5_4XLARGE),
                "only strictly cheaper offerings: {:?}",
                r.offerings
            );
            assert_eq!(r.pods.len(), 1);
        })
        .saves(M5_4XLARGE - M5_LARGE);
}

#[test]
fn no_replacement_when_the_node_is_already_the_cheapest_that_fits() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| on_demand(c, "snug", "m5.large").with_pods(app("web", 1, "1")));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .no_command()
        .nothing_rejected()
        .not_excluded("snug");
    assert!(pass.candidates_evaluated >= 1, "the node was considered");
}

#[test]
fn consolidation_never_replaces_one_node_by_several() {
    // `big` (m5.4xlarge, $0.768/h) runs two 6-CPU pods. The only cheaper
    // NodePool launches c5.2xlarge ($0.34/h, 8 CPUs): two of them would
    // cost less, but a node is never replaced by several.
    let given = Given::aws()
        .node_pool(
            node_pool("legacy")
                .require(labels::INSTANCE_TYPE, Operator::In, &["m5.4xlarge"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
        )
        .node_pool(
            node_pool("compute")
                .weight(10)
                .require(labels::INSTANCE_TYPE, Operator::In, &["c5.2xlarge"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
        )
        .node(|c| on_demand_in(c, "big", "m5.4xlarge", "legacy").with_pods(app("batch", 2, "6")));

    // The two-node alternative exists and is cheaper.
    let snapshot = &given.snapshot;
    let pods: Vec<Pod> = snapshot.nodes[0].pods.iter().map(|p| Pod::clone(p)).collect();
    let plan = solve_without(
        snapshot,
        &Prepared::reusable(snapshot),
        &pods,
        &[NodeIndex(0)],
        Some(M5_4XLARGE),
    );
    assert_eq!(plan.node_claims.len(), 2, "{:?}", plan.node_claims);
    let two: f64 = plan.node_claims.iter().map(|c| c.offerings[0].price).sum();
    assert!(two < M5_4XLARGE, "two c5.2xlarge cost ${two}/h");

    then(&when_disrupted(&given, NOW))
        .no_command()
        .untouched("big");
}

/// A pool of spot instances of the general categories.
fn wide_spot_pool() -> NodePoolBuilder {
    node_pool("default")
        .require(
            labels::INSTANCE_CATEGORY,
            Operator::In,
            &["c", "m", "r", "t"],
        )
        .require(labels::CAPACITY_TYPE, Operator::In, &["spot"])
}

#[test]
fn a_spot_node_is_replaced_by_spot_only_with_spot_to_spot_enabled() {
    let given = Given::aws()
        .node_pool(wide_spot_pool())
        .node(|c| spot(c, "spot-big", "m5.4xlarge").with_pods(app("web", 1, "500m")));
    let price = given.snapshot.nodes[0].price_per_hour;

    then(&when_disrupted(&given, NOW)).no_command();

    let on = Settings {
        spot_to_spot: true,
        ..Settings::default()
    };
    then(&when_disrupted_with(&given, NOW, "default", &on))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["spot-big"])
        .replacement(|r| {
            assert_eq!(
                r.instance_types.len(),
                dovetail_core::disruption::SPOT_TO_SPOT_TYPES,
                "the launch list is capped at 15 types: {:?}",
                r.instance_types
            );
            assert!(
                r.offerings
                    .iter()
                    .all(|o| o.capacity_type == CapacityType::Spot && o.price < price),
                "{:?}",
                r.offerings
            );
            assert!(
                r.offerings
                    .iter()
                    .all(|o| r.instance_types.contains(&o.instance_type)),
                "offerings only of the kept types"
            );
            assert!(!r.instance_types.iter().any(|t| t.as_str() == "m5.4xlarge"));
        });
}

#[test]
fn spot_to_spot_needs_fifteen_cheaper_instance_types() {
    // Only m5: three smaller sizes (and the same size elsewhere) are cheaper.
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require(labels::INSTANCE_FAMILY, Operator::In, &["m5"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["spot"]),
        )
        .node(|c| spot(c, "spot-big", "m5.4xlarge").with_pods(app("web", 1, "500m")));
    let on = Settings {
        spot_to_spot: true,
        ..Settings::default()
    };

    then(&when_disrupted_with(&given, NOW, "default", &on)).no_command();
}

#[test]
fn spot_to_spot_leaves_a_node_already_among_the_fifteen_cheapest_types() {
    // Both nodes pay $0.05/h after a spot price spike; dozens of types are
    // cheaper. t3.small itself is among the 15 cheapest that fit the pod,
    // m5.xlarge is not.
    let on = Settings {
        spot_to_spot: true,
        ..Settings::default()
    };
    let alone_on = |instance_type: &'static str| {
        Given::aws().node_pool(wide_spot_pool()).node(move |c| {
            spot(c, "spiked", instance_type)
                .price(0.05)
                .with_pods(vec![app_pod("web", "100m").memory("64Mi").build()])
        })
    };

    then(&when_disrupted_with(
        &alone_on("t3.small"),
        NOW,
        "default",
        &on,
    ))
    .no_command();
    then(&when_disrupted_with(
        &alone_on("m5.xlarge"),
        NOW,
        "default",
        &on,
    ))
    .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
    .removes(&["spiked"]);
}

/// An on-demand m5.xlarge running one small pod, in a NodePool that may
/// launch m5.large or m5.xlarge, on-demand or spot, in zones A and B. The
/// m5.large's spot price has spiked in zone B above what the node costs.
fn spot_spike_in_one_zone(web: dovetail_core::builders::PodBuilder) -> Given {
    spot_spike_with_min_types(web, None)
}

/// As [`spot_spike_in_one_zone`], the NodePool asking for at least
/// `min_types` instance types per NodeClaim.
fn spot_spike_with_min_types(
    web: dovetail_core::builders::PodBuilder,
    min_types: Option<u32>,
) -> Given {
    let mut catalog = (*Given::aws().snapshot.catalog).clone();
    assert!(catalog.set_spot_price("m5.large", "us-east-1b", 0.25));
    let types = ["m5.large", "m5.xlarge"];
    let pool = match min_types {
        Some(min) => node_pool("default").require_min_values(labels::INSTANCE_TYPE, &types, min),
        None => node_pool("default").require(labels::INSTANCE_TYPE, Operator::In, &types),
    };
    Given::with_catalog(std::sync::Arc::new(catalog))
        .node_pool(
            pool.require(labels::CAPACITY_TYPE, Operator::In, &["on-demand", "spot"])
                .require(labels::ZONE, Operator::In, &[ZONE_A, "us-east-1b"]),
        )
        .node(move |c| on_demand(c, "od", "m5.xlarge").with_pods(vec![web.build()]))
}

#[test]
fn a_replacement_type_is_kept_only_if_its_most_expensive_offering_is_cheaper() {
    // The fleet may launch the m5.large spot offering in either zone, and in
    // zone B it costs more than the node: only the m5.xlarge spot offerings
    // (cheaper in both zones) make a move that surely saves.
    let given = spot_spike_in_one_zone(app_pod("web", "500m"));

    then(&when_disrupted(&given, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["od"])
        .replacement(|r| {
            let types: Vec<&str> = r.instance_types.iter().map(|t| t.as_str()).collect();
            assert_eq!(types, ["m5.xlarge"], "{:?}", r.offerings);
            assert!(
                r.offerings
                    .iter()
                    .all(|o| o.capacity_type == CapacityType::Spot && o.price < M5_XLARGE),
                "{:?}",
                r.offerings
            );
        });

    // A pod pinned to zone A: the NodeClaim allows only zone A, where the
    // m5.large is cheap, so it is kept (and first).
    let pinned = spot_spike_in_one_zone(app_pod("web", "500m").node_selector(labels::ZONE, ZONE_A));
    then(&when_disrupted(&pinned, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .replacement(|r| {
            assert_eq!(r.instance_types[0].as_str(), "m5.large", "{:?}", r.offerings);
            assert!(r.offerings.iter().all(|o| o.zone.as_str() == ZONE_A));
        });
}

#[test]
fn a_replacement_still_meets_min_values_once_dearer_types_are_dropped() {
    // The NodePool wants a choice of two instance types. Only the m5.xlarge
    // surely costs less than the node: one type is not enough, so no move.
    let given = spot_spike_with_min_types(app_pod("web", "500m"), Some(2));
    then(&when_disrupted(&given, NOW)).no_command();

    // Pinned to zone A, both types surely cost less: the move keeps both.
    let pinned = spot_spike_with_min_types(
        app_pod("web", "500m").node_selector(labels::ZONE, ZONE_A),
        Some(2),
    );
    then(&when_disrupted(&pinned, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["od"])
        .replacement(|r| assert_eq!(r.instance_types.len(), 2, "{:?}", r.offerings));
}

// ---------------------------------------------------------------------------
// Multi-node consolidation
// ---------------------------------------------------------------------------

#[test]
fn several_underutilized_nodes_consolidate_into_one_cheaper_node() {
    let given = Given::aws()
        .node_pool(m5_pool("default").budgets(vec![budget("100%")]))
        .node(|c| on_demand(c, "a", "m5.2xlarge").with_pods(app("a", 1, "1")))
        .node(|c| on_demand(c, "b", "m5.2xlarge").with_pods(app("b", 1, "1")))
        .node(|c| on_demand(c, "c", "m5.2xlarge").with_pods(app("c", 1, "1")));

    let pass = when_disrupted(&given, NOW);

    // Three CPUs fit an m5.xlarge.
    then(&pass)
        .one_command(Method::MultiNodeConsolidation, CommandReason::Underutilized)
        .removes(&["a", "b", "c"])
        .replacement(|r| {
            assert_eq!(r.instance_types[0].as_str(), "m5.xlarge");
            assert_eq!(r.pods.len(), 3);
            assert!(
                !r.instance_types.iter().any(|t| t.as_str() == "m5.2xlarge"),
                "never the type of a removed node: {:?}",
                r.instance_types
            );
        })
        .saves(3.0 * M5_2XLARGE - M5_XLARGE);
    assert_eq!(pass.commands[0].pods_evicted.len(), 3);
}

// ---------------------------------------------------------------------------
// Where moved pods may go
// ---------------------------------------------------------------------------

/// `small` (an m5.xlarge running one 500m pod, consolidatable) next to
/// `roomy` (an m5.2xlarge of NodePool `pool` with room for the pod, whose
/// pods last changed `roomy_event` seconds before NOW). NodePool `default`
/// waits 30 minutes after a pod event; `steady` never consolidates.
fn small_next_to_roomy_in(pool: &'static str, roomy_event: u64) -> Given {
    Given::aws()
        .node_pool(m5_pool("default").consolidate_after(Some(minutes(30))))
        .node_pool(m5_pool("steady").consolidate_after(None))
        .node(move |c| {
            on_demand_in(c, "roomy", "m5.2xlarge", pool)
                .last_pod_event(NOW - roomy_event)
                .with_pods(app("api", 2, "1"))
        })
        .node(|c| on_demand(c, "small", "m5.xlarge").with_pods(app("web", 1, "500m")))
}

#[test]
fn a_node_inside_its_consolidate_after_window_takes_no_moved_pods() {
    // `roomy` had a pod event ten minutes ago; its NodePool waits 30.
    let settling = small_next_to_roomy_in("default", 10 * MINUTE);
    then(&when_disrupted(&settling, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"])
        .replacement(|r| assert_eq!(r.instance_types[0].as_str(), "m5.large"))
        .saves(M5_XLARGE - M5_LARGE);

    // Once its window has passed, `roomy` takes the pod: `small` just goes.
    let settled = small_next_to_roomy_in("default", 40 * MINUTE);
    then(&when_disrupted(&settled, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"])
        .no_replacement();

    // A NodePool that never consolidates sets no window: its node takes
    // moved pods whatever its last pod event.
    let never = small_next_to_roomy_in("steady", MINUTE);
    then(&when_disrupted(&never, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"])
        .no_replacement()
        .untouched("roomy");
}

#[test]
fn a_move_onto_a_node_still_launching_is_not_made() {
    // `roomy` is still launching: Karpenter's simulation fails when a moved
    // pod would land on it ("would schedule against an uninitialized node").
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| {
            on_demand(c, "roomy", "m5.2xlarge")
                .in_flight()
                .with_pods(app("api", 2, "1"))
        })
        .node(|c| on_demand(c, "small", "m5.large").with_pods(app("web", 1, "500m")));

    then(&when_disrupted(&given, NOW)).no_command();
    // Initialised, it takes the pod.
    let mut up = given.clone();
    up.snapshot.nodes[0].initialized = true;
    then(&when_disrupted(&up, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
}

#[test]
fn pods_of_a_node_already_leaving_may_count_on_a_node_still_launching() {
    // `leaving`'s pod fits only on `launching`; `small`'s pod fits on
    // `anchor`. Only moved pods are kept off a launching node, as in
    // Karpenter: a leaving node's pods are assumed to land wherever the
    // scheduler puts them.
    let given = |small_cpu: &'static str| {
        Given::aws()
            .node_pool(m5_pool("default").budgets(vec![budget("100%")]))
            .node(|c| on_demand(c, "launching", "m5.xlarge").in_flight())
            .node(|c| {
                on_demand(c, "leaving", "m5.large")
                    .with_pods(app("batch", 1, "1500m"))
                    .marked_for_deletion()
            })
            .node(|c| {
                on_demand(c, "anchor", "m5.large")
                    .annotation(labels::DO_NOT_DISRUPT, "true")
                    .with_pods(app("api", 1, "1"))
            })
            .node(move |c| on_demand(c, "small", "m5.large").with_pods(app("web", 1, small_cpu)))
    };

    then(&when_disrupted(&given("500m"), NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"])
        .no_replacement();

    // `small`'s pod too big for `anchor`: only `launching` has room, which
    // a moved pod may not count on.
    then(&when_disrupted(&given("1200m"), NOW)).no_command();
}

// ---------------------------------------------------------------------------
// Budgets
// ---------------------------------------------------------------------------

#[test]
fn a_budget_of_zero_blocks_consolidation() {
    let given = small_next_to_roomy(m5_pool("default").budgets(vec![budget("0")]))
        .node(|c| empty_node(c, "idle"));

    then(&when_disrupted(&given, NOW)).no_command();
}

#[test]
fn a_percentage_budget_rounds_up() {
    let empty = ["idle-0", "idle-1", "idle-2", "idle-3", "idle-4"];
    let mut given = Given::aws().node_pool(m5_pool("default").budgets(vec![budget("10%")]));
    for i in 0..6 {
        given = given.node(|c| full_node(c, &format!("busy-{i}")));
    }
    for name in empty {
        given = given.node(|c| empty_node(c, name));
    }

    // 10% of 11 nodes is 1.1: two may go.
    then(&when_disrupted(&given, NOW))
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes_n_of(2, &empty);
}

#[test]
fn a_drifted_only_budget_does_not_limit_emptiness() {
    let given = Given::aws()
        .node_pool(m5_pool("default").budgets(vec![budget_for("0", &["Drifted"])]))
        .node(|c| full_node(c, "busy"))
        .node(|c| empty_node(c, "idle-0"))
        .node(|c| empty_node(c, "idle-1"))
        .node(|c| empty_node(c, "idle-2"));

    then(&when_disrupted(&given, NOW))
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["idle-0", "idle-1", "idle-2"]);
}

#[test]
fn an_empty_budget_of_zero_holds_against_single_node_consolidation() {
    // Consolidation is unlimited; empty nodes may not go now. The empty
    // node is Emptiness's to delete, never single-node consolidation's.
    let given = Given::aws()
        .node_pool(m5_pool("default").budgets(vec![budget_for("0", &["Empty"])]))
        .node(|c| empty_node(c, "idle"));

    then(&when_disrupted(&given, NOW))
        .no_command()
        .untouched("idle");
}

#[test]
fn an_empty_budget_of_zero_holds_against_multi_node_consolidation() {
    let given = Given::aws()
        .node_pool(m5_pool("default").budgets(vec![budget_for("0", &["Empty"])]))
        .node(|c| on_demand(c, "a", "m5.2xlarge").with_pods(app("a", 1, "1")))
        .node(|c| on_demand(c, "b", "m5.2xlarge").with_pods(app("b", 1, "1")))
        .node(|c| on_demand(c, "c", "m5.2xlarge").with_pods(app("c", 1, "1")))
        .node(|c| empty_node(c, "idle"));

    then(&when_disrupted(&given, NOW))
        .one_command(Method::MultiNodeConsolidation, CommandReason::Underutilized)
        .removes(&["a", "b", "c"])
        .untouched("idle");
}

#[test]
fn a_cron_window_blocks_disruption_only_while_it_is_open() {
    // No disruption from 09:00 to 17:00 UTC.
    let office_hours = Budget {
        window: Some(BudgetWindow::new("0 9 * * *".parse().unwrap(), hours(8)).unwrap()),
        ..budget("0")
    };
    let given = Given::aws()
        .node_pool(m5_pool("default").budgets(vec![office_hours]))
        .node(|c| full_node(c, "busy"))
        .node(|c| empty_node(c, "idle"));

    then(&when_disrupted(&given, TEN_AM)).no_command();
    then(&when_disrupted(&given, NOW))
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["idle"]);
}

#[test]
fn invalid_budgets_fail_closed_for_their_node_pool_only() {
    // One budget more than the CRD allows.
    let broken = vec![budget("100%"); dovetail_core::disruption::budgets::MAX_BUDGETS + 1];
    let given = Given::aws()
        .node_pool(m5_pool("broken").budgets(broken))
        .node_pool(m5_pool("healthy"))
        .node(|c| {
            on_demand_in(c, "broken-busy", "m5.large", "broken").with_pods(app("a", 1, "1500m"))
        })
        .node(|c| on_demand_in(c, "broken-idle", "m5.large", "broken").with_pods(vec![daemon("x")]))
        .node(|c| {
            on_demand_in(c, "healthy-busy", "m5.large", "healthy").with_pods(app("b", 1, "1500m"))
        })
        .node(|c| {
            on_demand_in(c, "healthy-idle", "m5.large", "healthy").with_pods(vec![daemon("y")])
        });

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["healthy-idle"])
        .untouched("broken-idle");
    assert_eq!(pass.budget_errors.len(), 1, "{:?}", pass.budget_errors);
    assert!(
        pass.budget_errors[0].contains("broken"),
        "{:?}",
        pass.budget_errors
    );
}

#[test]
fn not_ready_and_deleting_nodes_consume_budget() {
    let cluster = |not_ready: bool, deleting: bool| {
        let mut given = Given::aws()
            .node_pool(m5_pool("default").budgets(vec![budget("2")]))
            .node(|c| full_node(c, "busy"))
            .node(|c| empty_node(c, "idle-0"))
            .node(|c| empty_node(c, "idle-1"))
            .node(|c| empty_node(c, "idle-2"));
        if not_ready {
            given = given.node(|c| full_node(c, "sick").not_ready());
        }
        if deleting {
            given = given.node(|c| full_node(c, "leaving").marked_for_deletion());
        }
        given
    };
    let idle = ["idle-0", "idle-1", "idle-2"];

    then(&when_disrupted(&cluster(false, false), NOW)).removes_n_of(2, &idle);
    then(&when_disrupted(&cluster(true, false), NOW)).removes_n_of(1, &idle);
    then(&when_disrupted(&cluster(false, true), NOW)).removes_n_of(1, &idle);
    then(&when_disrupted(&cluster(true, true), NOW)).no_command();
}

#[test]
fn room_a_leaving_node_needs_is_not_counted_twice() {
    // `roomy` has room for `small`'s pod — unless the pod of `leaving`,
    // already marked for deletion, takes it first, as it must. (The budget
    // is wide open so that `leaving` does not use it up.)
    let with_leaving = |leaving: bool| {
        let mut given = small_next_to_roomy(m5_pool("default").budgets(vec![budget("100%")]));
        if leaving {
            given = given.node(|c| {
                on_demand(c, "leaving", "m5.2xlarge")
                    .with_pods(app("batch", 1, "5600m"))
                    .marked_for_deletion()
            });
        }
        given
    };

    // Single-node only: multi-node would merge `small` and `roomy`.
    let single = Settings {
        max_multi_node: 0,
        ..Settings::default()
    };
    then(&when_disrupted_with(&with_leaving(false), NOW, "default", &single))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
    then(&when_disrupted_with(&with_leaving(true), NOW, "default", &single)).no_command();
}

// ---------------------------------------------------------------------------
// Do not disrupt
// ---------------------------------------------------------------------------

#[test]
fn a_do_not_disrupt_node_is_excluded() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| full_node(c, "busy"))
        .node(|c| empty_node(c, "kept").annotation(labels::DO_NOT_DISRUPT, "true"));

    // Other nodes' pods may still move onto it.
    then(&when_disrupted(&given, NOW)).excluded("kept", labels::DO_NOT_DISRUPT);
}

/// `small` runs one pod built by `web`; without protection it would be
/// deleted, its pod moving to `roomy`.
fn small_running(web: dovetail_core::builders::PodBuilder) -> Given {
    Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| on_demand(c, "roomy", "m5.2xlarge").with_pods(app("api", 2, "1")))
        .node(move |c| on_demand(c, "small", "m5.large").with_pods(vec![web.build()]))
}

#[test]
fn a_do_not_disrupt_pod_protects_its_node() {
    let given = small_running(app_pod("web", "500m").do_not_disrupt("true"));

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .excluded("small", labels::DO_NOT_DISRUPT)
        .excluded("small", "default/web");
}

#[test]
fn a_do_not_disrupt_duration_protects_a_pod_until_it_has_run_that_long() {
    let started = |ago: u64| {
        small_running(
            app_pod("web", "500m")
                .do_not_disrupt("10m")
                .started_at(NOW - ago),
        )
    };

    then(&when_disrupted(&started(5 * MINUTE), NOW)).excluded("small", labels::DO_NOT_DISRUPT);
    then(&when_disrupted(&started(15 * MINUTE), NOW))
        .not_excluded("small")
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
}

#[test]
fn an_invalid_do_not_disrupt_value_is_ignored() {
    let given = small_running(app_pod("web", "500m").do_not_disrupt("sometimes"));

    then(&when_disrupted(&given, NOW))
        .not_excluded("small")
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
}

// ---------------------------------------------------------------------------
// Terminating and finished pods
// ---------------------------------------------------------------------------

/// `pod`, deleted a minute ago and still terminating.
fn terminating(mut pod: Pod) -> Pod {
    pod.deleting_since = Some(NOW - MINUTE);
    pod
}

/// `pod`, finished with `phase`.
fn finished(mut pod: Pod, phase: PodPhase) -> Pod {
    pod.phase = phase;
    pod
}

fn owned_by_stateful_set(mut pod: Pod, name: &str) -> Pod {
    pod.owner = Some(Owner {
        kind: OwnerKind::StatefulSet,
        name: dovetail_core::sym::Sym::new(name),
    });
    pod
}

#[test]
fn a_node_running_only_terminating_or_finished_pods_is_empty() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| full_node(c, "busy"))
        .node(|c| {
            on_demand(c, "idle", "m5.large").with_pods(vec![
                daemon("idle"),
                terminating(app_pod("web", "500m").build()),
                finished(app_pod("job", "1").build(), PodPhase::Succeeded),
                finished(app_pod("crashed", "100m").build(), PodPhase::Failed),
            ])
        });

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["idle"]);
    assert!(
        pass.commands[0].pods_evicted.is_empty(),
        "{:?}",
        pass.commands[0].pods_evicted
    );
}

#[test]
fn terminating_and_finished_pods_are_neither_moved_nor_evicted() {
    // Only `web` must move: an m5.large holds it. Moving the terminating
    // and the finished pod too would need a node as big as this one.
    let given = Given::aws().node_pool(m5_pool("default")).node(|c| {
        on_demand(c, "big", "m5.4xlarge").with_pods(vec![
            app_pod("web", "500m").build(),
            terminating(app_pod("old", "6").build()),
            finished(app_pod("report", "6").build(), PodPhase::Succeeded),
        ])
    });

    let pass = when_disrupted(&given, NOW);

    then(&pass)
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["big"])
        .replacement(|r| {
            assert_eq!(r.instance_types[0].as_str(), "m5.large");
            assert_eq!(r.pods.len(), 1, "{:?}", r.pods);
        });
    let evicted: Vec<String> = pass.commands[0]
        .pods_evicted
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(evicted, ["default/web"]);
}

#[test]
fn terminating_pods_of_a_leaving_node_need_no_room() {
    // As `room_a_leaving_node_needs_is_not_counted_twice`, but the leaving
    // node's pod is already terminating: it will not be rescheduled, so
    // `roomy`'s room is `small`'s.
    let given = small_next_to_roomy(m5_pool("default").budgets(vec![budget("100%")])).node(|c| {
        on_demand(c, "leaving", "m5.2xlarge")
            .with_pods(vec![terminating(app_pod("batch", "5600m").build())])
            .marked_for_deletion()
    });
    let single = Settings {
        max_multi_node: 0,
        ..Settings::default()
    };

    then(&when_disrupted_with(&given, NOW, "default", &single))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
}

#[test]
fn a_terminating_stateful_set_pod_is_still_rescheduled() {
    // Karpenter's exception: a StatefulSet's replacement pod is created only
    // once the old one is gone, so a terminating StatefulSet pod still needs
    // a place and keeps its node from being empty.
    let on_small = |p: Pod| {
        Given::aws()
            .node_pool(m5_pool("default"))
            .node(|c| on_demand(c, "roomy", "m5.2xlarge").with_pods(app("api", 2, "1")))
            .node(move |c| on_demand(c, "small", "m5.large").with_pods(vec![p]))
    };

    let deployment = on_small(terminating(app_pod("web", "500m").build()));
    then(&when_disrupted(&deployment, NOW))
        .one_command(Method::Emptiness, CommandReason::Empty)
        .removes(&["small"]);

    let stateful = on_small(terminating(owned_by_stateful_set(
        app_pod("db", "500m").build(),
        "db",
    )));
    let pass = when_disrupted(&stateful, NOW);
    then(&pass)
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
    assert_eq!(pass.commands[0].pods_evicted.len(), 1);
}

// ---------------------------------------------------------------------------
// PodDisruptionBudgets
// ---------------------------------------------------------------------------

#[test]
fn a_pdb_allowing_no_disruption_excludes_its_pods_node() {
    let given =
        small_running(app_pod("web", "500m")).pdb("default", "web-pdb", &[("app", "web")], 0);

    then(&when_disrupted(&given, NOW))
        .excluded("small", "web-pdb")
        .untouched("small");
}

#[test]
fn a_pdb_allowing_a_disruption_does_not_block() {
    let given =
        small_running(app_pod("web", "500m")).pdb("default", "web-pdb", &[("app", "web")], 1);

    then(&when_disrupted(&given, NOW))
        .not_excluded("small")
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["small"]);
}

#[test]
fn a_pod_covered_by_two_pdbs_blocks_its_node() {
    let given = small_running(app_pod("web", "500m").label("tier", "front"))
        .pdb("default", "web-pdb", &[("app", "web")], 1)
        .pdb("default", "front-pdb", &[("tier", "front")], 1);

    then(&when_disrupted(&given, NOW)).excluded("small", "PodDisruptionBudgets");
}

// ---------------------------------------------------------------------------
// Nomination, strictly cheaper
// ---------------------------------------------------------------------------

#[test]
fn a_nominated_node_is_excluded() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| full_node(c, "busy"))
        .node(|c| empty_node(c, "waiting").nominated());

    then(&when_disrupted(&given, NOW)).excluded("waiting", "nominated");
}

#[test]
fn a_replacement_costing_the_same_is_never_proposed() {
    // m6i.large costs what m5.large costs.
    let given = Given::aws()
        .node_pool(
            node_pool("default")
                .require(labels::INSTANCE_FAMILY, Operator::In, &["m5", "m6i"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"]),
        )
        .node(|c| on_demand(c, "snug", "m5.large").with_pods(app("web", 1, "1")));

    then(&when_disrupted(&given, NOW)).no_command();
}

#[test]
fn a_replacement_costing_more_is_never_proposed() {
    // Bought at a discount: every type that fits costs more than it does.
    let given = Given::aws().node_pool(m5_pool("default")).node(|c| {
        on_demand(c, "bargain", "m5.xlarge")
            .price(0.15)
            .with_pods(app("web", 1, "2500m"))
    });

    then(&when_disrupted(&given, NOW)).no_command();
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// An m5.xlarge paid 5% over today's m5.xlarge price: replacing it by a new
/// one saves about 5%.
fn five_percent_saving() -> Given {
    Given::aws().node_pool(m5_pool("default")).node(|c| {
        on_demand(c, "pricey", "m5.xlarge")
            .price(0.202)
            .with_pods(app("web", 1, "2500m"))
    })
}

#[test]
fn savings_threshold_rejects_a_small_saving_that_the_default_approves() {
    let given = five_percent_saving();

    then(&when_disrupted(&given, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["pricey"])
        .saves(0.202 - M5_XLARGE);
    then(&when_disrupted_with(
        &given,
        NOW,
        "savings-threshold",
        &Settings::default(),
    ))
    .no_command()
    .rejected("pricey", "20");
}

#[test]
fn savings_threshold_approves_a_large_saving() {
    then(&when_disrupted_with(
        &lonely_pod_on_a_big_node(),
        NOW,
        "savings-threshold",
        &Settings::default(),
    ))
    .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
    .removes(&["big"])
    .nothing_rejected();
}

/// `target` (m5.2xlarge) runs ten 300m pods; `anchor` (m5.2xlarge, not to
/// be disrupted) ten 700m pods and room for three more. Consolidating
/// `target` moves three pods to `anchor` and seven to a new m5.xlarge,
/// saving a quarter of the NodePool's cost. `expensive` says whose pods are
/// costly to disrupt (priority and deletion cost at the maximum weight).
fn balanced_cluster(expensive_target: bool) -> Given {
    balanced_cluster_in(m5_pool("default"), expensive_target)
}

fn balanced_cluster_in(pool: NodePoolBuilder, expensive_target: bool) -> Given {
    let costly = |b: dovetail_core::builders::PodBuilder| {
        b.priority(1_000_000_000).deletion_cost(1_000_000_000)
    };
    let (mut target, mut anchor) = (app_pod("target", "300m"), app_pod("anchor", "700m"));
    if expensive_target {
        target = costly(target);
    } else {
        anchor = costly(anchor);
    }
    Given::aws()
        .node_pool(pool)
        .node(move |c| on_demand(c, "target", "m5.2xlarge").with_pods(target.build_many(10)))
        .node(move |c| {
            on_demand(c, "anchor", "m5.2xlarge")
                .annotation(labels::DO_NOT_DISRUPT, "true")
                .with_pods(anchor.build_many(10))
        })
}

#[test]
fn balanced_rejects_a_disruptive_move_with_a_small_saving() {
    let given = balanced_cluster(true);

    // Karpenter's default takes any saving.
    then(&when_disrupted(&given, NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["target"])
        .saves(M5_2XLARGE - M5_XLARGE);
    // Balanced: saves 25% of the cost for 90% of the disruption.
    then(&when_disrupted_with(
        &given,
        NOW,
        "balanced",
        &Settings::default(),
    ))
    .no_command()
    .rejected("target", "score");
}

#[test]
fn balanced_approves_a_cheap_disruption_with_a_large_saving() {
    let given = balanced_cluster(false);

    // The same move, but its pods are the cheap ones to disrupt.
    then(&when_disrupted_with(
        &given,
        NOW,
        "balanced",
        &Settings::default(),
    ))
    .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
    .removes(&["target"])
    .saves(M5_2XLARGE - M5_XLARGE)
    .nothing_rejected();
}

#[test]
fn a_balanced_node_pool_applies_the_balanced_score_whatever_the_scorer() {
    let balanced = || m5_pool("default").consolidation_policy(ConsolidationPolicy::Balanced);

    // Karpenter's default approves the strictly cheaper move; the pool's
    // policy then asks for a score of at least 1/2.
    then(&when_disrupted(&balanced_cluster_in(balanced(), true), NOW))
        .no_command()
        .rejected("target", "NodePool `default` is Balanced: score");
    then(&when_disrupted(&balanced_cluster_in(balanced(), false), NOW))
        .one_command(Method::SingleNodeConsolidation, CommandReason::Underutilized)
        .removes(&["target"])
        .saves(M5_2XLARGE - M5_XLARGE)
        .nothing_rejected();
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

fn validated(command: &Command, later: &Given) -> Result<(), String> {
    let scorer = scorer("default");
    validate(
        command,
        &later.snapshot,
        NOW + 15,
        &*scorer,
        &Settings::default(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn validation_accepts_an_unchanged_cluster() {
    let given = lonely_pod_on_a_big_node();
    let pass = when_disrupted(&given, NOW);
    let command = then(&pass).command();

    assert_eq!(validated(command, &given), Ok(()));
}

#[test]
fn validation_drops_a_command_whose_node_became_nominated() {
    let given = lonely_pod_on_a_big_node();
    let pass = when_disrupted(&given, NOW);
    let mut later = given.clone();
    later.snapshot.nodes[0].nominated = true;

    let err = validated(then(&pass).command(), &later).unwrap_err();
    assert!(err.contains("nominated"), "{err}");
}

#[test]
fn validation_drops_a_command_when_the_budget_fell_to_zero() {
    let given = lonely_pod_on_a_big_node();
    let pass = when_disrupted(&given, NOW);
    let mut later = given.clone();
    later.snapshot.node_pools[0].disruption.budgets = vec![budget("0")];

    let err = validated(then(&pass).command(), &later).unwrap_err();
    assert!(err.contains("allows 0"), "{err}");
}

#[test]
fn validation_drops_a_command_whose_node_is_gone() {
    let given = small_next_to_roomy(m5_pool("default"));
    let pass = when_disrupted(&given, NOW);
    let mut later = given.clone();
    later.snapshot.nodes.retain(|n| n.name.as_str() != "small");

    let err = validated(then(&pass).removes(&["small"]).command(), &later).unwrap_err();
    assert!(err.contains("small"), "{err}");
}

#[test]
fn validation_drops_a_command_that_now_needs_a_different_replacement() {
    let given = lonely_pod_on_a_big_node();
    let pass = when_disrupted(&given, NOW);
    then(&pass).replacement(|r| assert_eq!(r.instance_types[0].as_str(), "m5.large"));
    // A 3-CPU pod lands on the node: an m5.large no longer holds its pods.
    let mut later = given.clone();
    later.snapshot.nodes[0]
        .pods
        .push(app_pod("batch", "3").build().into());

    let err = validated(then(&pass).command(), &later).unwrap_err();
    assert!(err.contains("m5.large"), "{err}");
}

#[test]
fn validation_drops_an_emptiness_command_when_the_node_got_a_pod() {
    let given = Given::aws()
        .node_pool(m5_pool("default"))
        .node(|c| full_node(c, "busy"))
        .node(|c| empty_node(c, "idle"));
    let pass = when_disrupted(&given, NOW);
    let mut later = given.clone();
    let idle = later
        .snapshot
        .nodes
        .iter_mut()
        .find(|n| n.name.as_str() == "idle")
        .expect("idle");
    idle.pods.push(app_pod("late", "100m").build().into());

    assert_eq!(validated(then(&pass).command(), &given), Ok(()));
    assert!(validated(then(&pass).command(), &later).is_err());
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

#[test]
fn a_command_is_a_plain_value_with_everything_filled_in() {
    let given = lonely_pod_on_a_big_node();
    let pass = when_disrupted(&given, NOW);
    let c = then(&pass).command().clone();

    assert_eq!(c.method, Method::SingleNodeConsolidation);
    assert_eq!(c.reason, CommandReason::Underutilized);
    assert_eq!(c.nodes.len(), 1);
    assert_eq!(c.node_indices, [NodeIndex(0)]);
    assert_eq!(
        c.pods_evicted,
        [given.snapshot.nodes[0].pods[0].key()],
        "the evicted pods"
    );
    assert_eq!(c.replacements.len(), 1);
    let r = &c.replacements[0];
    assert!(!r.offerings.is_empty() && !r.instance_types.is_empty());
    assert_eq!(r.pods, c.pods_evicted);
    assert!(
        (c.savings_per_hour - (M5_4XLARGE - replacement_price(&c))).abs() < 1e-9,
        "savings = removed price − replacement price: {}",
        c.savings_per_hour
    );
    assert!(!c.decided_by.is_empty() && c.decided_by != "engine");
    assert!(!c.policy_reason.is_empty());
    // Deciding again gives the same value.
    let again = when_disrupted(&given, NOW);
    assert_eq!(format!("{c:?}"), format!("{:?}", again.commands[0]));
}
