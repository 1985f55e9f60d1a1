//! What the report shows to check a decision: every launch with its whole
//! launch list and requirements, each pass's budgets and why nodes stayed,
//! where each pod ran, the cost split; and the HTML page built from it.

use dovetail_core::catalog::CapacityType;
use dovetail_core::policy::Builtin;
use dovetail_sim::text::Run;
use dovetail_sim::{
    Autoscaler, Outcome, Report, Simulation, clock, compare_html, demo_scenario, parse_scenario,
};

fn demo() -> Report {
    Simulation::new(demo_scenario(1), &Builtin, &Builtin).run(&mut |_| {})
}

fn example(with: &str) -> Report {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/demo.yaml"
    );
    let text = std::fs::read_to_string(path).expect("example scenario");
    let text = text.replace(
        "        consolidateAfter: 30s\n",
        &format!("        consolidateAfter: 30s\n{with}"),
    );
    let scenario = parse_scenario(&text).expect("valid scenario");
    Simulation::new(scenario, &Builtin, &Builtin).run(&mut |_| {})
}

#[test]
fn a_launch_lists_every_offering_sent_with_the_node_claims_requirements() {
    let r = demo();
    let first = &r.launches[0];
    assert_eq!(first.purpose, "provisioning");
    assert_eq!(first.node_pool.as_deref(), Some("default"));
    assert_eq!(first.pods, 50);
    assert_eq!(first.node.as_deref(), Some(first.node_claim.as_str()));
    // The whole list, not its first entry: Karpenter's 60 offerings, each
    // of the NodePool's categories, distinct, cheapest first.
    let list = r.launch_list(first);
    assert_eq!(list.len(), 60, "{list:?}");
    for o in list {
        assert!(
            ["c", "m", "r"]
                .iter()
                .any(|c| o.instance_type.starts_with(c)),
            "{o:?}"
        );
    }
    for (i, o) in list.iter().enumerate() {
        assert!(
            !list[..i]
                .iter()
                .any(|p| (&p.instance_type, &p.zone, p.capacity_type)
                    == (&o.instance_type, &o.zone, o.capacity_type)),
            "{o:?} twice"
        );
    }
    assert!(list.windows(2).all(|w| w[0].price <= w[1].price));
    assert_eq!(first.launched.as_ref(), Some(&list[0]), "no shortage here");
    let requirement = |key: &str| {
        first
            .requirements
            .iter()
            .find(|q| q.key == key)
            .map(|q| q.values.clone())
    };
    assert_eq!(
        requirement("karpenter.k8s.aws/instance-category"),
        Some(vec!["c".into(), "m".into(), "r".into()])
    );
    assert_eq!(
        requirement("karpenter.sh/capacity-type"),
        Some(vec!["on-demand".into(), "spot".into()])
    );

    // The consolidation's replacement is a launch too, for its method.
    let replacement = r
        .launches
        .iter()
        .find(|l| l.purpose == "SingleNodeConsolidation")
        .expect("the replacement's launch");
    assert!(r.launch_list(replacement).len() > 1);
    let decision = r
        .decisions
        .iter()
        .find(|d| d.kind == "SingleNodeConsolidation")
        .expect("the move");
    assert_eq!(
        decision.launched,
        vec![replacement.launched.clone().expect("launched")],
        "the move names what its replacement launched as"
    );
}

#[test]
fn each_pass_has_every_node_pools_budgets_per_reason_and_why_nodes_stayed() {
    let r = demo();
    assert!(!r.passes.is_empty());
    for p in &r.passes {
        let [b] = &p.budgets[..] else {
            panic!("one NodePool: {p:?}")
        };
        assert_eq!(b.node_pool, "default");
        let reasons: Vec<&str> = b.allowed.keys().map(String::as_str).collect();
        assert_eq!(reasons, ["Drifted", "Empty", "Underutilized"]);
        // Karpenter's default budget: 10 % of the nodes, rounded up, less
        // those already going.
        let limit = b.nodes.div_ceil(10);
        assert_eq!(
            b.allowed["Underutilized"],
            limit.saturating_sub(b.consuming)
        );
    }
    let decision = r
        .decisions
        .iter()
        .find(|d| d.kind == "SingleNodeConsolidation")
        .expect("the move");
    let big = decision.nodes[0].as_str();
    let proposed = r
        .passes
        .iter()
        .find(|p| p.proposed.is_some())
        .expect("a pass proposed it");
    let c = proposed.proposed.as_ref().unwrap();
    assert_eq!(
        (c.method.as_str(), &c.nodes[..]),
        ("SingleNodeConsolidation", &[big.to_string()][..])
    );
    assert!(proposed.at_seconds < decision.at_seconds, "validated after");
    // Before the scale-down, the big node is no move's candidate: the
    // report says why.
    let before: Vec<&str> = r
        .passes
        .iter()
        .filter(|p| p.at_seconds < 600)
        .flat_map(|p| &p.not_consolidated)
        .filter(|n| n.node == big)
        .map(|n| n.reason.as_str())
        .collect();
    assert!(
        before.contains(&"its pods changed less than consolidateAfter (30s) ago"),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|w| w.contains("no replacement is cheaper")),
        "{before:?}"
    );
}

#[test]
fn a_budget_of_zero_shows_in_the_passes_and_the_reason() {
    let r = example(
        "        budgets:\n          - nodes: \"0\"\n            reasons: [Underutilized]\n",
    );
    assert!(
        !r.decisions
            .iter()
            .any(|d| d.kind.ends_with("Consolidation")),
        "{:?}",
        r.decisions
    );
    assert!(!r.passes.is_empty());
    for p in &r.passes {
        assert_eq!(p.budgets[0].allowed["Underutilized"], 0);
        assert_eq!(p.budgets[0].allowed["Empty"], 2_147_483_647);
    }
    let reasons: Vec<&str> = r
        .passes
        .iter()
        .flat_map(|p| &p.not_consolidated)
        .map(|n| n.reason.as_str())
        .collect();
    assert!(
        reasons.contains(&"NodePool default's budgets allow no Underutilized disruption now"),
        "{reasons:?}"
    );
}

#[test]
fn each_pod_has_its_bindings_and_the_cost_splits_by_node_pool_and_capacity_type() {
    let r = demo();
    assert_eq!(r.pods.len(), 50);
    let moved: Vec<_> = r.pods.values().filter(|b| b.len() == 2).collect();
    assert_eq!(moved.len(), 5, "the five that stay move to the replacement");
    let replacement = r
        .launches
        .iter()
        .find(|l| l.purpose == "SingleNodeConsolidation")
        .unwrap();
    for b in moved {
        assert_eq!(b[0].1, r.launches[0].node_claim);
        assert_eq!(b[1].1, replacement.node_claim);
        assert!(b[0].0 < b[1].0);
    }
    for b in r.pods.values() {
        assert!(b[0].0 >= r.launches[0].at_seconds);
    }

    let [share] = &r.totals.cost_by_node_pool[..] else {
        panic!("{:?}", r.totals.cost_by_node_pool)
    };
    assert_eq!(share.node_pool.as_deref(), Some("default"));
    assert_eq!(share.capacity_type, CapacityType::Spot);
    assert!((share.cost_usd - r.totals.cost_usd).abs() < 1e-9);
    let hours: f64 = r.totals.node_hours_by_instance_type.values().sum();
    assert!((share.node_hours - hours).abs() < 1e-5);

    let last = r.timeline.last().unwrap();
    assert_eq!(last.pods_evicted, r.totals.pods_evicted);
    assert_eq!(last.disruptions, r.totals.disruptions);
    assert_eq!(r.timeline[0].pods_evicted, 0);
}

#[test]
fn the_page_reads_like_a_dashboard() {
    let r = demo();
    let html = r.to_html("demo");
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    // Launches grouped by type and count.
    let launched = &r.decisions[0].launched[0];
    let grouped = format!("1 × {} ({}, spot)", launched.instance_type, launched.zone);
    assert!(html.contains(&grouped), "{grouped}");
    assert!(
        html.contains("60 offerings of "),
        "the launch list summed up"
    );
    assert!(html.contains("<details>"), "the launch list expands");
    // Simulated clock ticks on the time axes.
    for tick in ["00:00", "00:05", "00:15", "00:30"] {
        assert!(
            html.contains(&format!(
                "text-anchor=\"middle\" fill=\"#6b7280\">{tick}</text>"
            )),
            "{tick}"
        );
    }
    // Numbers in their unit.
    assert!(html.contains(&format!("${:.4}", r.totals.cost_usd)));
    assert!(html.contains(&format!("{:.0} s", r.totals.pending_p99_seconds)));
    assert!(!long_decimals(&html), "no bare 57.0000-style numbers");
    // The breakdowns.
    for part in [
        "Nodes by capacity type",
        "Pending pods (most at once per 60 s)",
        "Cumulative cost",
        "Pods evicted per 60 s",
        "Disruptions and interruptions per 60 s",
        "By NodePool and capacity type",
        "Allowed disruptions by NodePool and reason",
        "Why nodes were not consolidated",
        "SingleNodeConsolidation",
    ] {
        assert!(html.contains(part), "{part}");
    }
    assert!(html.matches("<svg").count() >= 5);
}

/// Whether the page's text (outside tags) holds a number with four or more
/// decimals not written as money.
fn long_decimals(html: &str) -> bool {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.starts_with('$') && !w.starts_with("-$") && !w.contains("–$"))
        .any(|w| {
            w.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.len() >= 4
                    && b.chars().take(4).all(|c| c.is_ascii_digit())
            })
        })
}

fn spot_storm() -> Report {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/spot-storm.yaml"
    );
    let text = std::fs::read_to_string(path).expect("example scenario");
    let scenario = parse_scenario(&text).expect("valid scenario");
    Simulation::new(scenario, &Builtin, &Builtin).run(&mut |_| {})
}

#[test]
fn a_proposed_command_says_what_came_of_it() {
    let r = demo();
    let proposed: Vec<_> = r
        .passes
        .iter()
        .filter_map(|p| p.proposed.as_ref())
        .collect();
    let [one] = &proposed[..] else {
        panic!("one proposal: {proposed:?}")
    };
    assert_eq!(one.outcome, Outcome::Disrupted);
    assert!(
        r.to_html("demo")
            .contains("1 proposed a command, 1 carried out")
    );

    // With no spot capacity in one zone, replacements there are lost and
    // their commands given up; the page says so.
    let r = spot_storm();
    let outcomes: Vec<&Outcome> = r
        .passes
        .iter()
        .filter_map(|p| p.proposed.as_ref().map(|c| &c.outcome))
        .collect();
    let carried_out = outcomes
        .iter()
        .filter(|o| ***o == Outcome::Disrupted)
        .count();
    let consolidations = r
        .decisions
        .iter()
        .filter(|d| d.kind.ends_with("Consolidation"))
        .count();
    assert_eq!(carried_out, consolidations, "{outcomes:?}");
    let abandoned: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Abandoned(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    assert!(!abandoned.is_empty(), "{outcomes:?}");
    for why in &abandoned {
        assert!(
            why.starts_with("its replacement NodeClaim ") && why.ends_with(" was deleted"),
            "{why}"
        );
    }
    let page = r.to_html("storm");
    assert!(page.contains("what came of it"));
    assert!(page.contains(&format!("abandoned: {}", abandoned[0])));
}

#[test]
fn the_page_shows_where_each_pod_ran_those_that_moved_first() {
    let r = demo();
    let page = r.to_html("demo");
    assert!(
        page.contains("Pod placements <span class=\"muted\">(50 pods, 5 placed more than once)")
    );
    let moved: Vec<(&String, &Vec<(u64, String)>)> =
        r.pods.iter().filter(|(_, b)| b.len() == 2).collect();
    let section = &page[page.find("Pod placements").unwrap()..];
    let mut at = 0;
    for (pod, bindings) in &moved {
        let row = section.find(pod.as_str()).expect("each moved pod listed");
        assert!(row >= at, "in order of their first move");
        at = row;
        for (t, node) in bindings.iter() {
            let binding = format!("{} → {node}", clock(*t));
            assert!(section[row..].contains(&binding), "{binding}");
        }
    }
    let still = r.pods.iter().find(|(_, b)| b.len() == 1).unwrap().0;
    assert!(
        section.find(still.as_str()).unwrap() > at,
        "pods that never moved come after"
    );
}

#[test]
fn a_comparison_page_overlays_every_run_and_writes_money_alike() {
    let dovetail = Run {
        label: "builtin".into(),
        report: demo(),
        deciders: Some(["built-in".into(), "built-in".into()]),
        notes: Vec::new(),
    };
    let mut s = demo_scenario(1);
    s.autoscaler = Autoscaler::StaticNodeGroups(s.baseline_groups());
    let baseline = Run {
        label: "static-node-groups".into(),
        report: Simulation::new(s, &Builtin, &Builtin).run(&mut |_| {}),
        deciders: None,
        notes: Vec::new(),
    };
    let (x, y) = (
        dovetail.report.totals.cost_usd,
        baseline.report.totals.cost_usd,
    );
    assert!(x < 10.0 && y < 10.0 && x < y, "{x} {y}");
    let page = compare_html("demo", &[dovetail, baseline]);
    assert!(!page.contains("<script") && !page.contains("https://"));
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
    assert_eq!(page.matches("<polyline").count(), 2 * charts.len());
    // The first run is drawn widest, so runs that agree stay visible.
    assert_eq!(
        page.matches("stroke-width=\"2.5\"").count(),
        charts.len(),
        "{page}"
    );
    for tick in ["00:00", "00:10", "00:20", "00:30"] {
        assert!(page.contains(&format!(">{tick}</text>")), "{tick}");
    }
    let sentence = format!(
        "<b>builtin</b> costs {:.1} % less than <b>static-node-groups</b> (${x:.4} vs ${y:.4})",
        (y - x) / y * 100.0
    );
    assert!(page.contains(&sentence), "{sentence}");
    assert!(page.contains("runs Cluster-Autoscaler-like node groups of m5.large on-demand"));
    assert!(page.contains("Cost by NodePool and capacity type"));
    assert!(page.contains("<td>static-node-groups</td><td>(node groups)</td><td>on-demand</td>"));
    assert!(!long_decimals(&page), "no bare long decimals");
}
