//! What the simulated kube-scheduler and node model do with the nodes
//! Dovetail launches: pods must bind where Kubernetes would bind them.

use dovetail_core::policy::Builtin;
use dovetail_sim::{Simulation, parse_scenario};

fn run(text: &str) -> dovetail_sim::Totals {
    let scenario = parse_scenario(text).expect("scenario parses");
    Simulation::new(scenario, &Builtin, &Builtin)
        .run(&mut |_| {})
        .totals
}

/// A NodePool requirement with one value becomes a node label, so a pod
/// selecting that custom label binds to the node launched for it.
#[test]
fn pod_selecting_a_custom_nodepool_label_binds() {
    let totals = run(r#"
duration: 5m
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: default }
    spec:
      template:
        spec:
          requirements:
            - { key: team, operator: In, values: [a] }
            - { key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m] }
      disruption: { consolidationPolicy: WhenEmpty, consolidateAfter: 30s }
workloads:
  - { deployment: web, replicas: 3, cpu: 500m, memory: 1Gi, nodeSelector: { team: a } }
"#);
    assert_eq!(totals.nodes_launched, 1);
    assert_eq!(
        totals.pending_at_end, 0,
        "pods selecting team=a stay pending"
    );
    assert!(totals.all_running_after_seconds.is_some());
}
