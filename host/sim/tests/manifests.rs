//! Scenarios written as Kubernetes manifests, as `kubectl get -o yaml`
//! prints them: pods bind where Kubernetes would bind them, nodes Dovetail
//! does not manage are used but never disrupted, `List` kinds read, events
//! that apply, patch or delete objects take effect, and bad objects are
//! named by their document, kind, name and field.

use dovetail_core::policy::Builtin;
use dovetail_sim::{Report, Scenario, SimEvent, Simulation, parse_scenario, parse_scenario_in};

const POOL: &str = r#"
nodePools:
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: default }
    spec:
      template:
        spec:
          requirements:
            - { key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m] }
            - { key: karpenter.sh/capacity-type, operator: In, values: [on-demand] }
      disruption: { consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 30s }
"#;

/// An EKS managed node group's node (not Dovetail's): an m5.xlarge, Ready,
/// with `taints`.
fn unmanaged_node(name: &str, taints: &str) -> String {
    format!(
        r#"
  - apiVersion: v1
    kind: Node
    metadata:
      name: {name}
      creationTimestamp: "2026-11-01T00:00:00Z"
      labels:
        eks.amazonaws.com/nodegroup: system
        eks.amazonaws.com/capacityType: ON_DEMAND
        kubernetes.io/arch: amd64
        kubernetes.io/os: linux
        kubernetes.io/hostname: {name}
        node.kubernetes.io/instance-type: m5.xlarge
        topology.kubernetes.io/zone: us-east-1a
    spec:
      providerID: aws:///us-east-1a/i-0123456789abcdef0
      taints: {taints}
    status:
      allocatable: {{ cpu: 3920m, memory: 14972116Ki, pods: "58" }}
      capacity: {{ cpu: "4", memory: 15849172Ki, pods: "58" }}
      conditions:
        - {{ type: Ready, status: "True", lastTransitionTime: "2026-11-01T00:01:00Z" }}
"#
    )
}

/// A Deployment of `replicas` pods of 1 CPU, with extra pod spec `extra`
/// (indented for `spec.template.spec`).
fn deployment(name: &str, replicas: usize, extra: &str) -> String {
    format!(
        r#"
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{ name: {name}, namespace: shop }}
    spec:
      replicas: {replicas}
      selector: {{ matchLabels: {{ app: {name} }} }}
      template:
        metadata: {{ labels: {{ app: {name} }} }}
        spec:
          containers:
            - name: app
              image: registry.example.com/{name}:1
              resources: {{ requests: {{ cpu: "1", memory: 1Gi }} }}{extra}
"#
    )
}

fn scenario(duration: &str, cluster: &str, events: &str) -> Scenario {
    let text = format!(
        "seed: 3\nduration: {duration}\nstartUnixSeconds: 1800000000\n{POOL}cluster:{cluster}{events}"
    );
    parse_scenario(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn run(s: Scenario) -> (Report, Vec<SimEvent>) {
    let mut events = Vec::new();
    let report = Simulation::new(s, &Builtin, &Builtin).run(&mut |e| events.push(e.clone()));
    (report, events)
}

fn changes(events: &[SimEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Changed { summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .collect()
}

/// Running pods in the timeline sample at `seconds`.
fn running_at(r: &Report, seconds: u64) -> usize {
    r.timeline
        .iter()
        .find(|s| s.at_seconds == seconds)
        .map(|s| s.running_pods)
        .unwrap_or_else(|| panic!("no sample at {seconds}s"))
}

#[test]
fn pods_from_manifests_bind_to_the_nodes_there_and_pending_ones_get_nodes() {
    // Two pods of `web` bound to the unmanaged node, one pending; `api`'s
    // four pods do not fit beside them, so Dovetail launches for them.
    let cluster = format!(
        "{}{}{}{}",
        unmanaged_node("ip-10-0-1-11.ec2.internal", "[]"),
        deployment("web", 3, ""),
        deployment("api", 4, ""),
        r#"
  - apiVersion: v1
    kind: Pod
    metadata:
      name: web-5d8f7c9b6-abcde
      namespace: shop
      labels: { app: web, pod-template-hash: 5d8f7c9b6 }
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7c9b6, controller: true, uid: u1 }]
    spec:
      nodeName: ip-10-0-1-11.ec2.internal
      containers: [{ name: app, image: i, resources: { requests: { cpu: "1", memory: 1Gi } } }]
    status: { phase: Running, startTime: "2026-11-30T10:00:00Z" }
  - apiVersion: v1
    kind: Pod
    metadata:
      name: web-5d8f7c9b6-fghij
      namespace: shop
      labels: { app: web, pod-template-hash: 5d8f7c9b6 }
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7c9b6, controller: true, uid: u1 }]
    spec:
      nodeName: ip-10-0-1-11.ec2.internal
      containers: [{ name: app, image: i, resources: { requests: { cpu: "1", memory: 1Gi } } }]
    status: { phase: Running }
  - apiVersion: v1
    kind: Pod
    metadata:
      name: web-5d8f7c9b6-klmno
      namespace: shop
      labels: { app: web, pod-template-hash: 5d8f7c9b6 }
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7c9b6, controller: true, uid: u1 }]
    spec:
      containers: [{ name: app, image: i, resources: { requests: { cpu: "1", memory: 1Gi } } }]
    status: { phase: Pending }
"#
    );
    let s = scenario("5m", &cluster, "");
    assert_eq!(s.initial_nodes.len(), 1);
    assert!(
        s.initial_nodes[0].node.node_pool.is_none(),
        "not Dovetail's"
    );
    assert_eq!(s.initial_pods.len(), 3);
    assert_eq!(
        s.initial_pods.iter().filter(|p| p.node.is_some()).count(),
        2
    );
    let (r, _) = run(s);
    let t = &r.totals;
    // The web pods are the Deployment's (3 replicas, not 3 + 3): the
    // pending one binds to the node there (room for 3 of 1 CPU).
    assert_eq!(running_at(&r, 0), 3, "{:?}", r.timeline.first());
    assert!(t.nodes_launched >= 1, "api's pods need a node");
    assert_eq!(t.pending_at_end, 0);
    assert_eq!(r.timeline.last().unwrap().running_pods, 7);
    // The unmanaged node's m5.xlarge is billed with the rest.
    assert!(t.node_hours_by_instance_type["m5.xlarge"] > 0.08);
}

#[test]
fn unmanaged_tainted_nodes_take_only_the_pods_that_tolerate_them_and_are_never_disrupted() {
    let taint = "[{ key: dedicated, value: system, effect: NoSchedule }]";
    let node = unmanaged_node("ip-10-0-1-11.ec2.internal", taint);

    // Without a toleration the pods need a node of Dovetail's.
    let s = scenario("10m", &format!("{node}{}", deployment("web", 2, "")), "");
    let (r, _) = run(s);
    assert_eq!(r.totals.nodes_launched, 1, "{:?}", r.decisions);
    assert_eq!(r.totals.pending_at_end, 0);
    // The empty unmanaged node stays all along: Dovetail never disrupts it.
    assert_eq!(r.totals.nodes_terminated, 0, "{:?}", r.decisions);
    assert!(
        r.decisions
            .iter()
            .all(|d| !d.nodes.contains(&"ip-10-0-1-11.ec2.internal".to_string())),
        "{:?}",
        r.decisions
    );

    // Tolerating the taint, they bind there and nothing is launched.
    let tolerating = deployment(
        "web",
        2,
        "\n          tolerations: [{ key: dedicated, operator: Equal, value: system, effect: NoSchedule }]",
    );
    let (r, _) = run(scenario("10m", &format!("{node}{tolerating}"), ""));
    assert_eq!(r.totals.nodes_launched, 0, "{:?}", r.decisions);
    assert_eq!(running_at(&r, 0), 2);
}

/// kube-scheduler scores a PreferNoSchedule taint, it does not filter on
/// it: a pod without a toleration that fits on such a node binds there.
/// No NodePool carries the taint, so Dovetail's own planning does not relax
/// it: only the simulated kube-scheduler's soft handling binds the pod.
#[test]
fn a_prefer_no_schedule_taint_on_an_unmanaged_node_is_a_preference_at_binding() {
    let node = unmanaged_node(
        "ip-10-0-3-13.ec2.internal",
        "[{ key: legacy, value: \"true\", effect: PreferNoSchedule }]",
    );
    let s = scenario("2m", &format!("{node}{}", deployment("web", 2, "")), "");
    let (r, _) = run(s);
    assert_eq!(running_at(&r, 0), 2, "the pods bind at once");
    assert_eq!(
        r.totals.nodes_launched, 0,
        "a node was launched for pods that fit on the PreferNoSchedule node: {:?}",
        r.decisions
    );
    assert_eq!(r.totals.pending_at_end, 0);
}

#[test]
fn list_kinds_read_with_their_items_kinds() {
    // `kind: List` with kinds on its items, and `PodList` whose items leave
    // theirs out, as the API returns them.
    let cluster = format!(
        r#"
  - apiVersion: v1
    kind: List
    items:{}{}
  - apiVersion: v1
    kind: PodList
    items:
      - metadata: {{ name: bare, namespace: shop }}
        spec: {{ containers: [{{ name: c, image: i, resources: {{ requests: {{ cpu: 100m }} }} }}] }}
"#,
        unmanaged_node("n1", "[]").replace("\n  ", "\n      "),
        deployment("web", 1, "").replace("\n  ", "\n      "),
    );
    let s = scenario("1m", &cluster, "");
    assert_eq!(s.initial_nodes.len(), 1);
    assert_eq!(s.deployments.len(), 1);
    assert_eq!(s.initial_pods.len(), 1);
    assert_eq!(s.initial_pods[0].pod.name.as_str(), "bare");

    // The same as multi-document text, with `---` between documents.
    let text = format!(
        "seed: 1\nduration: 1m\n{POOL}cluster: |\n  apiVersion: v1\n  kind: Namespace\n  metadata: {{ name: shop, labels: {{ team: a }} }}\n  ---\n  apiVersion: v1\n  kind: PodList\n  items:\n    - metadata: {{ name: bare, namespace: shop }}\n      spec: {{ containers: [{{ name: c, image: i }}] }}\n"
    );
    let s = parse_scenario(&text).unwrap();
    assert_eq!(s.initial_pods.len(), 1);
    let shop = s
        .cluster
        .namespaces
        .iter()
        .find(|n| n.name.as_str() == "shop")
        .unwrap();
    assert!(
        shop.labels
            .iter()
            .any(|(k, v)| k.as_str() == "team" && v.as_str() == "a")
    );
}

#[test]
fn events_apply_patch_and_delete_objects() {
    let cluster = format!(
        "{}{}",
        unmanaged_node("ip-10-0-1-11.ec2.internal", "[]"),
        deployment("web", 2, "")
    );
    let events = r#"
events:
  - at: 1m
    patch: { kind: Deployment, namespace: shop, name: web, patch: { spec: { replicas: 3 } } }
  - at: 2m
    apply:
      apiVersion: apps/v1
      kind: Deployment
      metadata: { name: api, namespace: shop }
      spec:
        selector: { matchLabels: { app: api } }
        template:
          metadata: { labels: { app: api } }
          spec: { containers: [{ name: app, image: i, resources: { requests: { cpu: 500m } } }] }
  - at: 3m
    delete: { kind: Deployment, namespace: shop, name: web }
  - at: 4m
    patch: { kind: Deployment, namespace: shop, name: api, patch: { spec: { replicas: 0 } } }
"#;
    let s = scenario("5m", &cluster, events);
    let (r, events) = run(s);
    assert_eq!(running_at(&r, 50), 2);
    assert_eq!(running_at(&r, 70), 3, "scaled to 3 by the patch");
    assert_eq!(running_at(&r, 130), 4, "api applied");
    assert_eq!(running_at(&r, 190), 1, "web deleted with its pods");
    assert_eq!(running_at(&r, 250), 0, "api patched to 0");
    assert_eq!(r.totals.nodes_launched, 0, "{:?}", r.decisions);
    let c = changes(&events);
    assert_eq!(
        c,
        [
            "Deployment shop/web applied: 2 → 3 replicas",
            "Deployment shop/api created with 1 replicas",
            "Deployment shop/web deleted with its pods",
            "Deployment shop/api applied: 1 → 0 replicas",
        ]
    );
}

#[test]
fn deleted_pods_are_replaced_by_their_controllers_and_deleted_nodes_go() {
    let cluster = format!(
        "{}{}{}",
        unmanaged_node("ip-10-0-1-11.ec2.internal", "[]"),
        deployment("web", 1, ""),
        r#"
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata: { name: redis, namespace: shop }
    spec:
      replicas: 2
      selector: { matchLabels: { app: redis } }
      serviceName: redis
      template:
        metadata: { labels: { app: redis } }
        spec:
          containers: [{ name: redis, image: redis, resources: { requests: { cpu: 500m } } }]
  - apiVersion: v1
    kind: Pod
    metadata: { name: lonely, namespace: shop }
    spec:
      nodeName: ip-10-0-1-11.ec2.internal
      containers: [{ name: c, image: i, resources: { requests: { cpu: 100m } } }]
"#
    );
    let events = r#"
events:
  - at: 1m
    delete: { kind: Pod, namespace: shop, name: redis-1 }
  - at: 2m
    delete: { kind: Pod, namespace: shop, name: lonely }
  - at: 3m
    delete: { kind: Node, name: ip-10-0-1-11.ec2.internal }
"#;
    let (r, events) = run(scenario("6m", &cluster, events));
    assert_eq!(running_at(&r, 50), 4);
    assert_eq!(running_at(&r, 70), 4, "redis-1 made again at once");
    assert_eq!(running_at(&r, 130), 3, "a pod without a controller is gone");
    let c = changes(&events);
    assert_eq!(
        c,
        [
            "Pod shop/redis-1 deleted: its StatefulSet makes another",
            "Pod shop/lonely deleted: no controller replaces it",
            "Node ip-10-0-1-11.ec2.internal deleted: its pods are rescheduled",
        ]
    );
    // The node's pods are pending again and Dovetail launches for them; the
    // unmanaged node's instance is gone with it.
    assert!(events.iter().any(|e| matches!(
        e,
        SimEvent::NodeDeleted { name, .. } if name.as_str() == "ip-10-0-1-11.ec2.internal"
    )));
    assert!(r.totals.nodes_launched >= 1);
    assert_eq!(r.totals.pending_at_end, 0);
    assert_eq!(r.timeline.last().unwrap().running_pods, 3);
    assert!(r.totals.node_hours_by_instance_type["m5.xlarge"] < 0.06);
}

#[test]
fn a_changed_template_rolls_out() {
    // Four pods on the unmanaged node; the new template selects Dovetail's
    // nodes, so the rollout moves them there, within 25 % surge.
    let cluster = format!(
        "{}{}",
        unmanaged_node("ip-10-0-1-11.ec2.internal", "[]"),
        deployment("web", 3, "")
    );
    let events = r#"
events:
  - at: 1m
    patch:
      kind: Deployment
      namespace: shop
      name: web
      patch: { spec: { template: { spec: { nodeSelector: { karpenter.sh/nodepool: default } } } } }
"#;
    let (r, events) = run(scenario("6m", &cluster, events));
    assert_eq!(running_at(&r, 50), 3);
    assert_eq!(
        changes(&events),
        ["Deployment shop/web applied: 3 → 3 replicas, new template rolling out"]
    );
    assert!(r.totals.nodes_launched >= 1, "{:?}", r.decisions);
    assert_eq!(r.totals.pending_at_end, 0);
    assert_eq!(r.timeline.last().unwrap().running_pods, 3);
    // Never fewer than replicas − 25 % (rounded down: 0) running, never
    // more than replicas + 25 % (rounded up: 1) pods.
    assert!(
        r.timeline
            .iter()
            .all(|s| s.running_pods + s.pending_pods <= 4),
        "{:?}",
        r.timeline
    );
}

#[test]
fn node_pools_deleted_and_applied_by_events_take_their_nodes_with_them() {
    // A node Karpenter launched for NodePool `default`, with its NodeClaim.
    let cluster = format!(
        r#"
  - apiVersion: v1
    kind: Node
    metadata:
      name: ip-10-0-1-101.ec2.internal
      creationTimestamp: "2026-11-30T08:00:00Z"
      labels:
        karpenter.sh/nodepool: default
        karpenter.sh/capacity-type: on-demand
        karpenter.sh/initialized: "true"
        node.kubernetes.io/instance-type: m5.xlarge
        topology.kubernetes.io/zone: us-east-1a
        kubernetes.io/arch: amd64
        kubernetes.io/os: linux
    spec: {{ providerID: aws:///us-east-1a/i-0feedfacefeedface }}
    status:
      conditions: [{{ type: Ready, status: "True" }}]
  - apiVersion: karpenter.sh/v1
    kind: NodeClaim
    metadata:
      name: default-abcde
      creationTimestamp: "2026-11-30T08:00:00Z"
      labels: {{ karpenter.sh/nodepool: default }}
      finalizers: [karpenter.sh/termination]
    spec:
      nodeClassRef: {{ group: karpenter.k8s.aws, kind: EC2NodeClass, name: default }}
      requirements: [{{ key: karpenter.sh/nodepool, operator: In, values: [default] }}]
      expireAfter: Never
    status:
      nodeName: ip-10-0-1-101.ec2.internal
      providerID: aws:///us-east-1a/i-0feedfacefeedface
{}"#,
        deployment("web", 2, "")
    );
    let events = r#"
events:
  - at: 1m
    delete: { kind: NodePool, name: default }
  - at: 4m
    apply:
      apiVersion: karpenter.sh/v1
      kind: NodePool
      metadata: { name: second }
      spec:
        template:
          spec:
            requirements: [{ key: karpenter.k8s.aws/instance-category, operator: In, values: [m] }]
        disruption: { consolidationPolicy: WhenEmpty, consolidateAfter: 1m }
"#;
    let s = scenario("6m", &cluster, events);
    let node = &s.initial_nodes[0];
    assert_eq!(
        node.claim.as_ref().map(|c| c.name.as_str()),
        Some("default-abcde")
    );
    assert_eq!(node.claim.as_ref().unwrap().expire_after, None);
    let (r, events) = run(s);
    assert_eq!(running_at(&r, 50), 2, "bound to the node from the start");
    // The NodePool's NodeClaim goes with it: its node is drained, and
    // nothing can take the pods until another NodePool is applied.
    assert!(events.iter().any(|e| matches!(
        e,
        SimEvent::NodeDeleted { name, .. } if name.as_str() == "ip-10-0-1-101.ec2.internal"
    )));
    assert_eq!(running_at(&r, 230), 0);
    assert_eq!(r.totals.pods_evicted, 2);
    assert_eq!(r.totals.pending_at_end, 0, "{:?}", r.decisions);
    assert_eq!(r.timeline.last().unwrap().running_pods, 2);
    assert_eq!(
        changes(&events),
        [
            "NodePool default deleted: Dovetail drains and terminates its nodes",
            "NodePool second applied",
        ]
    );
}

#[test]
fn a_job_goes_on_from_where_its_status_says() {
    // Two of three completions done: one more pod, of a minute, completes it.
    let job = r#"
  - apiVersion: batch/v1
    kind: Job
    metadata:
      name: report
      namespace: batch
      annotations: { sim.dovetail.dev/run-time: 1m }
    spec:
      completions: 3
      parallelism: 1
      template:
        spec:
          restartPolicy: Never
          containers: [{ name: c, image: i, resources: { requests: { cpu: 500m } } }]
    status: { succeeded: 2 }
  - apiVersion: batch/v1
    kind: Job
    metadata: { name: done, namespace: batch }
    spec:
      completions: 1
      template: { spec: { restartPolicy: Never, containers: [{ name: c, image: i }] } }
    status:
      succeeded: 1
      conditions: [{ type: Complete, status: "True" }]
"#;
    let cluster = format!("{}{job}", unmanaged_node("n1", "[]"));
    let s = scenario("2m", &cluster, "");
    assert_eq!(s.jobs.len(), 1, "a completed Job is left out");
    assert_eq!(s.jobs[0].succeeded, 2);
    let (r, _) = run(s);
    assert_eq!(r.totals.jobs_completed, 1, "{:?}", r.timeline);
    assert_eq!(running_at(&r, 30), 1);
    assert_eq!(running_at(&r, 90), 0, "no fourth pod");
}

#[test]
fn bad_objects_are_named_by_document_kind_name_and_field() {
    let err = |cluster: &str, events: &str| {
        let text = format!("seed: 1\nduration: 1m\n{POOL}cluster:{cluster}{events}");
        parse_scenario(&text).unwrap_err().to_string()
    };
    let bad_cpu = r#"
  - apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Namespace
        metadata: { name: shop }
      - apiVersion: v1
        kind: Pod
        metadata: { name: web-0, namespace: shop }
        spec: { containers: [{ name: c, image: i, resources: { requests: { cpu: lots } } }] }
"#;
    let e = err(bad_cpu, "");
    assert!(
        e.starts_with(
            "cluster[0].items[1] (Pod shop/web-0) spec.containers[0].resources.requests[cpu]: `lots` is not a Kubernetes quantity"
        ),
        "{e}"
    );

    let unknown_node = r#"
  - apiVersion: v1
    kind: Pod
    metadata: { name: web-0 }
    spec: { nodeName: nowhere, containers: [{ name: c, image: i }] }
"#;
    let e = err(unknown_node, "");
    assert!(
        e.starts_with("cluster[0] (Pod default/web-0) spec.nodeName: no Node `nowhere`"),
        "{e}"
    );

    let wrong_type = r#"
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: web }
    spec: { replicas: many, selector: {}, template: {} }
"#;
    let e = err(wrong_type, "");
    assert!(
        e.starts_with("cluster[0] (Deployment default/web) spec.replicas: invalid type"),
        "{e}"
    );

    let old_pdb = r#"
  - apiVersion: policy/v1beta1
    kind: PodDisruptionBudget
    metadata: { name: web }
"#;
    let e = err(old_pdb, "");
    assert!(
        e.contains("cluster[0] (PodDisruptionBudget default/web) apiVersion: `policy/v1beta1` is not supported for PodDisruptionBudget; use policy/v1"),
        "{e}"
    );

    let e = err(
        " []",
        "\nevents:\n  - at: 1m\n    patch: { kind: Deployment, name: web, patch: { spec: { replicas: 2 } } }\n",
    );
    assert!(
        e.contains("events[0].patch.name: no Deployment default/web in the start state's manifests or an earlier `apply`"),
        "{e}"
    );
}

#[test]
fn unmodelled_kinds_and_approximate_fields_are_warned_about() {
    let cluster = r#"
  - apiVersion: v1
    kind: Service
    metadata: { name: web }
  - apiVersion: v1
    kind: Service
    metadata: { name: api }
  - apiVersion: v1
    kind: Pod
    metadata: { name: gated }
    spec:
      schedulingGates: [{ name: example.com/wait }]
      containers: [{ name: c, image: i }]
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: web }
    spec:
      selector: { matchLabels: { app: web } }
      template:
        metadata: { labels: { app: web } }
        spec:
          nodeSelecter: { kubernetes.io/arch: arm64 }
          containers: [{ name: c, image: i }]
    status: { someNewerField: 1 }
  - apiVersion: karpenter.sh/v1
    kind: NodePool
    metadata: { name: old }
    spec:
      disruption: { consolidateAfter: 1m, expireAfter: 24h }
      template: { spec: { requirements: [] } }
"#;
    let s = scenario("1m", cluster, "");
    let text_line = |needle: &str| {
        POOL.lines().count() + 4 + cluster.lines().position(|l| l.contains(needle)).unwrap()
    };
    let w: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(
        w.contains(&format!(
            "cluster[3] (Deployment default/web) spec.template.spec.nodeSelecter at line {}: not a field of apps/v1 Deployment; it is ignored: remove it, or check its spelling and indentation",
            text_line("nodeSelecter")
        )),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with(&format!(
            "cluster[4] (NodePool old) spec.disruption.expireAfter at line {}: not a field of karpenter.sh/v1 NodePool; it is ignored: karpenter.sh/v1 moved it to spec.template.spec.expireAfter",
            text_line("expireAfter")
        ))),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w
            == "cluster[0] (Service default/web): 2 Service objects (v1): not a kind the simulator models, so they are ignored"),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with(
            "cluster[2] (Pod default/gated) spec.schedulingGates: Pod default/gated: the pod is held back from scheduling"
        )),
        "{w:?}"
    );
}

#[test]
fn the_kubectl_dump_example_runs_as_the_cluster_it_describes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenarios");
    let path = format!("{dir}/kubectl-dump.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let s = parse_scenario_in(&text, std::path::Path::new(dir)).unwrap();
    assert_eq!(s.warnings, []);
    assert_eq!(s.cluster.node_pools.len(), 3);
    let managed = s
        .initial_nodes
        .iter()
        .filter(|n| n.node.node_pool.is_some())
        .count();
    assert_eq!((s.initial_nodes.len(), managed), (7, 4));
    assert!(
        s.initial_nodes
            .iter()
            .all(|n| n.node.node_pool.is_none() || n.claim.is_some())
    );
    assert_eq!(s.cluster.daemon_sets.len(), 3);
    assert_eq!(s.deployments.len(), 4, "coredns, web, api and redis");
    assert_eq!(s.jobs.len(), 1);
    assert_eq!(s.pdbs.len(), 3);
    assert_eq!(
        s.initial_pods.iter().filter(|p| p.node.is_none()).count(),
        3
    );
    // It starts when the dump was taken: the nodes' last heartbeat,
    // 2026-11-30T11:59:41Z.
    assert_eq!(s.start_unix_seconds, 1_796_039_981);

    let (r, events) = run(s);
    let t = &r.totals;
    assert_eq!(t.pending_at_end, 0, "{:?}", r.decisions);
    assert_eq!(t.jobs_completed, 1);
    assert_eq!(changes(&events).len(), 7);
    // The deleted node is drained and terminated by Dovetail.
    assert!(events.iter().any(|e| matches!(
        e,
        SimEvent::NodeDeleted { name, .. } if name.as_str() == "ip-10-0-1-101.ec2.internal"
    )));
    // The system node group's nodes are never Dovetail's to remove.
    assert!(
        r.decisions.iter().all(|d| d
            .nodes
            .iter()
            .all(|n| !n.starts_with("ip-10-0-1-11.") && !n.starts_with("ip-10-0-2-12."))),
        "{:?}",
        r.decisions
    );
}

/// A DaemonSet that selects `karpenter.sh/initialized` runs on Dovetail's
/// nodes once they are initialised, and never on a node Dovetail does not
/// manage (which never gets the label).
#[test]
fn a_daemon_set_selecting_the_initialized_label_runs_only_on_initialised_nodes() {
    let unmanaged = "ip-10-0-1-11.ec2.internal";
    let node = unmanaged_node(
        unmanaged,
        "[{ key: dedicated, value: system, effect: NoSchedule }]",
    );
    let daemon_set = r#"
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: { name: agent, namespace: kube-system }
    spec:
      selector: { matchLabels: { app: agent } }
      template:
        metadata: { labels: { app: agent } }
        spec:
          nodeSelector: { karpenter.sh/initialized: "true" }
          tolerations: [{ operator: Exists }]
          containers:
            - name: agent
              image: registry.example.com/agent:1
              resources: { requests: { cpu: 100m, memory: 128Mi } }
"#;
    let s = scenario(
        "5m",
        &format!("{node}{daemon_set}{}", deployment("web", 2, "")),
        "",
    );
    let (r, _) = run(s);
    assert_eq!(r.totals.nodes_launched, 1, "{:?}", r.decisions);
    let agents: Vec<(&String, &Vec<(u64, String)>)> = r
        .pods
        .iter()
        .filter(|(k, _)| k.starts_with("kube-system/agent-"))
        .collect();
    assert_eq!(agents.len(), 1, "one agent, on Dovetail's node: {agents:?}");
    let (_, bindings) = agents[0];
    assert!(bindings.iter().all(|(_, n)| n != unmanaged), "{bindings:?}");
}
