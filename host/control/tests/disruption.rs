//! Disruption: when a pass runs, how a command is validated, carried out
//! with pre-spun replacements, or given up; expiration.

mod support;

use std::time::Duration;

use dovetail_control::decision::{AbandonReason, PassReport};
use dovetail_control::{Action, Decision};
use dovetail_core::builders::pod;
use dovetail_core::catalog::CapacityType;
use dovetail_core::disruption::Method;
use dovetail_core::disruption::budgets::{BudgetNodes, BudgetWindow, DisruptionReason, UNBOUNDED};
use dovetail_core::labels;
use dovetail_core::model::{Budget, Taint, TaintEffect};
use dovetail_core::nodeclaim::{ConditionType, DISRUPTED_TAINT};
use dovetail_core::sym::Sym;
use support::*;

fn disrupted() -> Taint {
    Taint {
        key: sym(DISRUPTED_TAINT),
        value: None,
        effect: TaintEffect::NoSchedule,
    }
}

fn started(w: &World) -> Vec<(u64, Vec<Sym>, Vec<Sym>, &'static str)> {
    w.decided(|d| matches!(d, Decision::CommandStarted { .. }))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::CommandStarted {
                command,
                replacements,
            } => (t, command.nodes, replacements, command.reason.name()),
            _ => unreachable!(),
        })
        .collect()
}

fn abandoned(w: &World) -> Vec<(u64, AbandonReason)> {
    w.decided(|d| matches!(d, Decision::CommandAbandoned { .. }))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::CommandAbandoned { why, .. } => (t, why),
            _ => unreachable!(),
        })
        .collect()
}

fn deletions(w: &World) -> Vec<(u64, Sym)> {
    w.actions(|a| matches!(a, Action::DeleteNodeClaim { .. }))
        .into_iter()
        .map(|(t, a)| match a {
            Action::DeleteNodeClaim { name } => (t, name),
            _ => unreachable!(),
        })
        .collect()
}

fn reason_condition(w: &World, claim: Sym) -> Option<String> {
    w.claim(claim)
        .condition(ConditionType::DisruptionReason)
        .map(|c| c.reason.to_string())
}

#[test]
fn an_empty_node_is_removed_after_the_poll_and_the_validation_delay() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.reconcile();
    // The first poll is at +10 s; the command is validated 15 s later.
    w.run_to(START + 24 * S);
    assert!(!w.deleting(claim));
    assert!(
        !w.tainted(node, DISRUPTED_TAINT),
        "not touched before validation"
    );
    w.run_to(START + 25 * S);
    assert!(w.deleting(claim), "deleted once validated");
    let s = started(&w);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0, s[0].2.len(), s[0].3), (START + 25 * S, 0, "Empty"));
    assert_eq!(deletions(&w), vec![(START + 25 * S, claim)]);
    // Drained (nothing to drain, at least 5 s), instance gone, objects gone.
    w.run_to(START + 31 * S);
    assert!(!w.has_claim(claim));
    assert!(!w.has_node(node));
    assert!(w.cloud.instances.is_empty());
}

/// An m5.2xlarge running one small pod: replacing it with an m5.large saves
/// money.
fn underutilized() -> (World, Sym, dovetail_control::NodeId) {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.2xlarge"])]);
    let (claim, node) = w.existing_node("default", "m5.2xlarge", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("web").cpu("1").memory("1Gi").build(), node);
    w.reconcile();
    (w, claim, node)
}

#[test]
fn a_replacement_is_launched_and_initialised_before_the_candidate_is_deleted() {
    let (mut w, claim, node) = underutilized();
    w.run_to(START + 25 * S);
    let s = started(&w);
    assert_eq!(s.len(), 1, "{:?}", w.decisions);
    let (at, nodes, replacements, reason) = s[0].clone();
    assert_eq!((at, reason), (START + 25 * S, "Underutilized"));
    assert_eq!(nodes, vec![w.node(node).node.name]);
    assert_eq!(replacements.len(), 1);
    // What it saves is reported with it (logs, metrics).
    let saving = w
        .decided(|d| matches!(d, Decision::CommandStarted { .. }))
        .into_iter()
        .find_map(|(_, d)| match d {
            Decision::CommandStarted { command, .. } => Some(command.savings_per_hour),
            _ => None,
        });
    assert!(saving.is_some_and(|s| s > 0.0), "savings {saving:?}");
    let r = replacements[0];
    assert_eq!(
        w.node(node).node.taints,
        vec![disrupted()],
        "candidate tainted"
    );
    assert_eq!(
        reason_condition(&w, claim).as_deref(),
        Some("Underutilized")
    );
    assert!(!w.deleting(claim));

    w.run_to(START + 26 * S);
    let launched = w.claim(r).status.launched.expect("replacement launched");
    assert_eq!(launched.instance_type, sym("m5.large"));
    // The replacement takes a minute to come up; the candidate waits.
    w.run_to(START + 90 * S);
    assert!(
        !w.deleting(claim),
        "not before the replacement is initialised"
    );
    assert!(w.tainted(node, DISRUPTED_TAINT));
    let rn = w.register(r);
    w.set_ready(rn, true);
    let up = w.until("replacement initialised", 5 * S, S, |w| {
        w.claim(r).initialized()
    });
    assert!(
        w.deleting(claim),
        "deleted as soon as its replacement is initialised"
    );
    assert_eq!(deletions(&w), vec![(up, claim)]);
    assert!(abandoned(&w).is_empty());
    w.run_for(10 * S, S);
    assert!(!w.has_claim(claim));
    assert!(
        w.claim(r).initialized() && !w.deleting(r),
        "the replacement stays"
    );
}

#[test]
fn a_replacement_lost_to_insufficient_capacity_abandons_the_command() {
    let (mut w, claim, node) = underutilized();
    w.cloud
        .insufficient
        .insert(offering("m5.large", CapacityType::OnDemand));
    w.run_to(START + 25 * S);
    let r = started(&w)[0].2[0];
    assert!(w.tainted(node, DISRUPTED_TAINT));
    w.run_to(START + 26 * S);
    assert!(!w.has_claim(r), "the replacement could not launch");
    assert_eq!(
        abandoned(&w),
        vec![(START + 26 * S, AbandonReason::ReplacementLost(r))]
    );
    assert!(!w.tainted(node, DISRUPTED_TAINT), "candidate un-tainted");
    assert_eq!(reason_condition(&w, claim), None);
    assert!(!w.deleting(claim));
    w.run_to(START + 2 * MIN);
    assert!(!w.deleting(claim), "nothing cheaper can launch now");
    assert!(deletions(&w).iter().all(|(_, n)| *n == r));
}

#[test]
fn replacements_not_initialised_within_ten_minutes_abandon_the_command() {
    let (mut w, claim, node) = underutilized();
    w.run_to(START + 25 * S);
    let r = started(&w)[0].2[0];
    w.run_to(START + 25 * S + 10 * MIN - S);
    assert!(w.tainted(node, DISRUPTED_TAINT), "still waiting at 9:59");
    assert!(w.claim(r).launched() && !w.claim(r).registered());
    w.run_to(START + 25 * S + 10 * MIN);
    assert_eq!(
        abandoned(&w),
        vec![(START + 25 * S + 10 * MIN, AbandonReason::ReplacementTimeout)]
    );
    assert!(!w.tainted(node, DISRUPTED_TAINT));
    assert_eq!(reason_condition(&w, claim), None);
    assert!(!w.deleting(claim));
}

#[test]
fn a_command_that_no_longer_holds_at_validation_does_nothing() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.reconcile();
    w.run_to(START + 12 * S);
    // The empty node was proposed at +10 s; a pod lands on it meanwhile.
    w.run_pod(pod("late").cpu("1").build(), node);
    w.run_to(START + 25 * S);
    let invalidated = w.decided(|d| matches!(d, Decision::CommandInvalidated { .. }));
    assert_eq!(invalidated.len(), 1, "{:?}", w.decisions);
    assert_eq!(invalidated[0].0, START + 25 * S);
    w.run_to(START + 2 * MIN);
    assert!(started(&w).is_empty());
    assert!(w.first(|a| matches!(a, Action::TaintNode { .. })).is_none());
    assert!(deletions(&w).is_empty());
    assert!(!w.deleting(claim));
}

#[test]
fn a_command_whose_node_got_a_nominated_pod_is_invalidated() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.reconcile();
    w.run_to(START + 12 * S);
    // A pending pod that fits the empty node: it is nominated there, and
    // kube-scheduler has not bound it yet at validation.
    let p = w.pending(pod("late").cpu("1").build());
    w.run_to(START + 25 * S);
    assert_eq!(w.nominated_claim(p), Some(claim));
    let invalidated = w.decided(|d| matches!(d, Decision::CommandInvalidated { .. }));
    assert_eq!(invalidated.len(), 1, "{:?}", w.decisions);
    assert!(!w.tainted(node, DISRUPTED_TAINT));
    assert!(!w.deleting(claim));
    assert!(w.claim_names() == vec![claim], "no NodeClaim for the pod");
}

#[test]
fn a_fresh_controller_takes_back_the_taints_and_reasons_of_a_command_it_does_not_know() {
    let (mut w, claim, node) = underutilized();
    // A second node being deleted keeps its taint.
    let (going, going_node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, MIN);
    w.run_pod(pod("busy").cpu("1").tolerate_all().build(), going_node);
    w.run_to(START + 25 * S);
    assert!(w.tainted(node, DISRUPTED_TAINT));
    assert_eq!(
        reason_condition(&w, claim).as_deref(),
        Some("Underutilized")
    );
    w.act(Action::DeleteNodeClaim { name: going });
    w.run_to(START + 26 * S);
    assert!(w.tainted(going_node, DISRUPTED_TAINT));

    // The controller restarts while the replacement is launching.
    w.restart();
    w.now += S;
    w.reconcile();
    assert!(!w.tainted(node, DISRUPTED_TAINT), "left-over taint removed");
    assert_eq!(reason_condition(&w, claim), None, "and its reason");
    assert!(!w.deleting(claim));
    let going_name = w.node(going_node).node.name;
    assert!(
        w.tainted(going_node, DISRUPTED_TAINT),
        "a deleting node keeps it"
    );
    assert!(
        w.first(|a| matches!(a, Action::UntaintNode { name, .. } if *name == going_name))
            .is_none()
    );
}

#[test]
fn no_pass_runs_while_pods_have_been_pending_less_than_the_batch_maximum() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let (claim, _) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.reconcile();
    w.run_to(START + 5 * S);
    // Fits nowhere: it stays pending, and no NodeClaim is made for it.
    w.pending(pod("huge").cpu("500").build());
    // The +10 s poll is skipped (pending 5 s), the +20 s one runs.
    w.run_to(START + 34 * S);
    assert!(!w.deleting(claim));
    assert!(
        w.claim_names() == vec![claim],
        "nothing launched for the pod"
    );
    w.run_to(START + 35 * S);
    assert!(w.deleting(claim));
    assert_eq!(started(&w)[0].0, START + 35 * S);
}

#[test]
fn no_pass_runs_while_a_node_claim_is_launching() {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.xlarge"])]);
    let (empty, _) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.reconcile();
    // Too big for the empty m5.large: it gets a NodeClaim of its own.
    let p = w.pending(pod("big").cpu("3").build());
    w.run_to(START + 2 * S);
    let new = w.nominated_claim(p).expect("a NodeClaim for it");
    assert_ne!(new, empty);
    w.run_to(START + 3 * MIN);
    assert!(started(&w).is_empty(), "no command while it launches");
    assert!(!w.deleting(empty));
    let node = w.bring_up(new);
    w.cluster.state.bind(p, node, w.now);
    let up = w.now;
    w.until("the empty node removed", MIN, S, |w| w.deleting(empty));
    // At the next poll (on the 10 s grid), then the validation delay.
    let next_poll = START + (up - START).div_ceil(10 * S) * 10 * S;
    assert_eq!(w.now, next_poll + 15 * S);
}

#[test]
fn an_expired_node_claim_is_deleted_when_it_expires_without_validation_or_replacement() {
    let mut p = pool("default", &["m5.large"]);
    p.expire_after = Some(Duration::from_secs(3600));
    let mut w = World::new(vec![p]);
    // Expires at +12 s; off the 10 s poll grid on purpose.
    let (claim, node) = w.existing_node(
        "default",
        "m5.large",
        CapacityType::OnDemand,
        3600 * S - 12 * S,
    );
    w.run_pod(pod("web").cpu("1").build(), node);
    // A pod that cannot be placed keeps provisioning busy: a disruption pass
    // would wait, expiration does not.
    w.pending(pod("huge").cpu("64").build());
    w.reconcile();
    w.run_to(START + 11 * S);
    assert!(!w.deleting(claim), "not yet expired");
    w.run_to(START + 12 * S);
    assert!(w.deleting(claim), "deleted the second it expires");
    let d = w.decided(|d| matches!(d, Decision::Expired { .. }));
    assert!(matches!(
        d.as_slice(),
        [(t, Decision::Expired { claim: c, after })]
            if *t == START + 12 * S && *c == claim && *after == Duration::from_secs(3600)
    ));
    assert!(
        w.first(|a| matches!(a, Action::CreateNodeClaim(_)))
            .is_none()
    );
    assert!(started(&w).is_empty(), "no validation step");
}

#[test]
fn expiry_follows_the_node_claim_not_a_later_change_to_its_node_pool() {
    let mut p = pool("default", &["m5.large"]);
    p.expire_after = Some(Duration::from_secs(3600));
    let mut w = World::new(vec![p.clone()]);
    let (claim, _) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 30 * MIN);
    // The pool now says 10 minutes; the claim was made with an hour.
    p.expire_after = Some(Duration::from_secs(600));
    w.cluster.state.apply_node_pool(p);
    w.run_for(20 * MIN, S);
    assert!(
        !w.deleting(claim),
        "its own expireAfter has 10 minutes to go"
    );
    w.run_for(10 * MIN + S, S);
    assert!(w.deleting(claim));
}

#[test]
fn a_do_not_disrupt_duration_running_out_is_a_change_that_starts_a_pass() {
    let mut w = World::new(vec![pool("default", &["m5.large", "m5.2xlarge"])]);
    let (_, node) = w.existing_node("default", "m5.2xlarge", CapacityType::OnDemand, 10 * MIN);
    let web = pod("web")
        .cpu("1")
        .memory("1Gi")
        .annotation(labels::DO_NOT_DISRUPT, "2m")
        .build();
    w.run_pod(web, node);
    w.reconcile();
    w.until("a command starts", 10 * MIN, S, |w| !started(w).is_empty());
    // The +10 s pass found the node protected and nothing else to do; the
    // cluster stays unchanged. The protection ends two minutes after the
    // pod started: the poll then looks at the node (not the recheck five
    // minutes after the +10 s pass), and validates 15 s later.
    let s = started(&w);
    assert_eq!(
        (s[0].0, s[0].3),
        (START + 2 * MIN + 15 * S, "Underutilized")
    );
}

#[test]
fn drift_held_by_a_budget_window_goes_when_the_window_closes_however_settled_the_cluster() {
    // No drift for the first 12 minutes of every hour; START is on the hour.
    assert_eq!(START / 1000 % 3600, 0);
    let mut p = pool("default", &["m5.large"]);
    p.disruption.budgets = vec![Budget {
        nodes: "0".parse().unwrap(),
        reasons: vec![DisruptionReason::Drifted],
        window: Some(
            BudgetWindow::new("0 * * * *".parse().unwrap(), Duration::from_secs(12 * 60)).unwrap(),
        ),
    }];
    let mut w = World::new(vec![p.clone()]);
    let (claim, node) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("web").cpu("1").build(), node);
    // The template changes under the node: it has drifted.
    p.annotations
        .push((sym("example.com/owner"), sym("payments")));
    w.cluster.state.apply_node_pool(p);
    w.reconcile();
    w.run_to(START + 12 * MIN - S);
    assert!(started(&w).is_empty(), "held by the budget");
    w.until("the drift command starts", 10 * MIN, S, |w| {
        !started(w).is_empty()
    });
    // The poll at 12:00 replaces it, validated 15 s later — not the
    // consolidated recheck every five minutes after the +10 s pass.
    let s = started(&w);
    assert_eq!(
        (s[0].0, s[0].1.clone(), s[0].3),
        (
            START + 12 * MIN + 15 * S,
            vec![w.node(node).node.name],
            "Drifted"
        )
    );
    assert_eq!(s[0].2.len(), 1, "a replacement first");
    assert!(!w.deleting(claim));
}

#[test]
fn passes_for_waiting_drift_do_not_put_off_the_consolidation_recheck() {
    // Drift is held for good; consolidation for the first 12 minutes of
    // every hour. The node drifted and is underutilized.
    let mut p = pool("default", &["m5.large", "m5.2xlarge"]);
    let window = BudgetWindow::new("0 * * * *".parse().unwrap(), Duration::from_secs(12 * 60));
    p.disruption.budgets = vec![
        Budget {
            nodes: "0".parse().unwrap(),
            reasons: vec![DisruptionReason::Drifted],
            window: None,
        },
        Budget {
            nodes: "0".parse().unwrap(),
            reasons: vec![DisruptionReason::Underutilized],
            window: Some(window.unwrap()),
        },
    ];
    let mut w = World::new(vec![p.clone()]);
    let (_, node) = w.existing_node("default", "m5.2xlarge", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("web").cpu("1").build(), node);
    p.annotations
        .push((sym("example.com/owner"), sym("payments")));
    w.cluster.state.apply_node_pool(p);
    w.reconcile();
    w.until("a command starts", 20 * MIN, S, |w| !started(w).is_empty());
    // Full passes at +10 s, 5:10 and 10:10 find nothing; the polls between
    // look at drift alone. The full pass at 15:10 replaces the node.
    let s = started(&w);
    assert_eq!(
        (s[0].0, s[0].3),
        (START + 15 * MIN + 25 * S, "Underutilized")
    );
}

fn passes(w: &World) -> Vec<(u64, PassReport)> {
    w.decided(|d| matches!(d, Decision::Pass(_)))
        .into_iter()
        .map(|(t, d)| match d {
            Decision::Pass(p) => (t, *p),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_pass_reports_each_node_pools_budgets_and_why_it_left_nodes_alone() {
    let mut p = pool("default", &["m5.large", "m5.2xlarge"]);
    p.disruption.budgets = vec![Budget {
        nodes: BudgetNodes::Count(0),
        reasons: vec![DisruptionReason::Underutilized],
        window: None,
    }];
    let mut w = World::new(vec![p]);
    let (_, big) = w.existing_node("default", "m5.2xlarge", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("web").cpu("1").memory("1Gi").build(), big);
    let (_, held) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    w.run_pod(pod("batch").cpu("1").do_not_disrupt("true").build(), held);
    w.reconcile();
    w.run_to(START + 10 * S);

    let all = passes(&w);
    assert_eq!(all.len(), 1, "{:?}", w.decisions);
    let (at, pass) = &all[0];
    assert_eq!(*at, START + 10 * S);
    assert_eq!(pass.proposed, None, "the budget holds the move");
    let [budget] = &pass.budgets[..] else {
        panic!("one NodePool: {:?}", pass.budgets)
    };
    assert_eq!(budget.node_pool, "default");
    assert_eq!(budget.counts.total, 2);
    assert_eq!(budget.allowed(DisruptionReason::Underutilized), 0);
    // No budget names the other reasons: they are not limited.
    assert_eq!(budget.allowed(DisruptionReason::Empty), UNBOUNDED);
    assert_eq!(budget.allowed(DisruptionReason::Drifted), UNBOUNDED);

    let big = w.node(big).node.name;
    let why: Vec<String> = pass
        .unconsolidated
        .iter()
        .filter(|u| u.node == big)
        .map(|u| u.reason.to_string())
        .collect();
    assert_eq!(
        why,
        ["NodePool default's budgets allow no Underutilized disruption now"]
    );
    let held = w.node(held).node.name;
    let excluded = pass
        .exclusions
        .iter()
        .find(|e| e.node == held)
        .expect("the held node is left out");
    assert!(
        excluded.reason.contains("karpenter.sh/do-not-disrupt"),
        "{}",
        excluded.reason
    );
}

#[test]
fn a_pass_names_the_command_it_proposes() {
    let (mut w, _, node) = underutilized();
    w.run_to(START + 10 * S);
    let all = passes(&w);
    let (_, pass) = all.last().expect("a pass ran");
    assert_eq!(
        pass.proposed,
        Some((
            Method::SingleNodeConsolidation,
            vec![w.node(node).node.name]
        ))
    );
    assert!(pass.candidates_evaluated >= 1);
    assert_eq!(pass.budgets.len(), 1);
}

#[test]
fn an_empty_node_read_back_after_a_restart_is_priced_by_its_labels_and_consolidated() {
    let mut w = World::new(vec![pool("default", &["m5.large"])]);
    let (claim, _) = w.existing_node("default", "m5.large", CapacityType::OnDemand, 10 * MIN);
    // A restarted controller reads the claim back from the API, which
    // holds neither the launch list nor the launch result.
    let mut c = w.claim(claim).clone();
    c.launch.clear();
    c.status.launched = None;
    w.cluster.state.apply_claim(c, w.now);
    w.restart();
    w.run_to(START + 60 * S);
    assert!(
        !w.has_claim(claim) || w.deleting(claim),
        "the empty node is consolidated: {:?}",
        w.decisions
    );
}
