//! The NodeClaim lifecycle against a scripted cloud and an in-memory
//! cluster.

use std::sync::Arc;

use dovetail_control::testing::{FakeCloud, MemoryCluster};
use dovetail_control::{Autoscaler, ClusterState, Config, Controller, Decision};
use dovetail_core::builders::{node_pool, pod};
use dovetail_core::catalog::Catalog;
use dovetail_core::labels;
use dovetail_core::nodeclaim::{ConditionStatus, ConditionType};
use dovetail_core::policy::Builtin;
use dovetail_core::requirements::Operator;

const START: u64 = 1_800_000_000_000;

#[test]
fn a_pending_pod_gets_a_node_claim_that_launches_registers_and_initialises() {
    let catalog = Arc::new(Catalog::aws_us_east_1());
    let mut cloud = FakeCloud::new(catalog);
    let mut state = ClusterState::new();
    state.apply_node_pool(
        node_pool("default")
            .require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"])
            .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
            .build(),
    );
    state.apply_pod(pod("web").cpu("1").memory("1Gi").build(), None, START);
    let mut cluster = MemoryCluster::new(state);
    let mut ctl = Controller::new(Config::default(), &Builtin, &Builtin);
    let mut decisions = Vec::new();
    for s in 0..=1 {
        decisions.extend(ctl.reconcile(&mut cluster, &mut cloud, START + s * 1000));
    }
    assert!(
        matches!(
            decisions.first(),
            Some(Decision::Provisioned { pods: 1, .. })
        ),
        "{decisions:?}"
    );
    let (_, claim) = cluster.state.claims().next().expect("a NodeClaim");
    assert!(claim.launched(), "launched in the same reconcile");
    let name = claim.name;
    let node = cluster.register(&cloud, name, START + 5_000);
    ctl.reconcile(&mut cluster, &mut cloud, START + 5_000);
    let claim = cluster.state.claim_by_name(name).unwrap();
    assert!(claim.registered());
    let n = cluster.state.node(node).unwrap();
    assert!(!n.has_taint(dovetail_core::nodeclaim::UNREGISTERED_TAINT));
    assert!(n.finalizer);
    ctl.reconcile(&mut cluster, &mut cloud, START + 6_000);
    let c = cluster.state.claim_by_name(name).unwrap();
    assert_eq!(
        c.condition(ConditionType::Initialized).map(|c| c.status),
        Some(ConditionStatus::Unknown),
        "not Ready yet"
    );
    cluster.state.set_node_ready(node, true);
    ctl.reconcile(&mut cluster, &mut cloud, START + 7_000);
    assert!(cluster.state.claim_by_name(name).unwrap().initialized());
}
