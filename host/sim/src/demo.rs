//! The classic example: a Deployment `my-app` scaled to 50 replicas on a
//! default NodePool, then back down to 5, while the cluster consolidates.

use std::time::Duration;

use dovetail_core::catalog::aws_catalog;
use dovetail_core::disruption::Settings;
use dovetail_core::labels;
use dovetail_core::model::{ConsolidationPolicy, NodePool};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::scheduler::Snapshot;
use dovetail_core::template::pod;

use crate::types::{Deployment, Event, EventKind, Models, Scenario};

/// Scale-up at 0 s to 50 replicas; scale-down to 5 at 10 minutes; runs for
/// 30 simulated minutes. Karpenter's `SpotToSpotConsolidation` gate is on, so
/// the big spot node the scale-up gets can be right-sized afterwards
/// (without it a spot node can only be deleted, never replaced).
pub fn demo_scenario(seed: u64) -> Scenario {
    let mut cluster = Snapshot::new(aws_catalog());
    let mut pool = NodePool::new("default");
    pool.requirements = vec![
        NodeSelectorRequirement::new(labels::INSTANCE_CATEGORY, Operator::In, &["c", "m", "r"]),
        NodeSelectorRequirement::new(labels::CAPACITY_TYPE, Operator::In, &["on-demand", "spot"]),
    ];
    pool.disruption.consolidation_policy = ConsolidationPolicy::WhenEmptyOrUnderutilized;
    pool.disruption.consolidate_after = Some(Duration::from_secs(30));
    cluster.node_pools.push(pool);
    let mut scenario = Scenario::new(cluster, 30 * 60_000, seed);
    scenario.deployments.push(Deployment::new(
        "my-app",
        0,
        pod("my-app")
            .cpu("1")
            .memory("1536Mi")
            .label("app", "my-app")
            .build(),
    ));
    for (at_ms, replicas) in [(0, 50), (10 * 60_000, 5)] {
        scenario.events.push(Event {
            at_ms,
            kind: EventKind::Scale {
                deployment: "my-app".into(),
                replicas,
            },
        });
    }
    scenario.models = Models {
        disruption: Settings {
            spot_to_spot: true,
            ..Settings::default()
        },
        ..Models::default()
    };
    scenario
}
