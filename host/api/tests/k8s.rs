//! Kubernetes objects, as `kubectl get -o yaml` prints them, converted to
//! core values field by field; unsupported fields warn, bad values fail with
//! their path.

use dovetail_api::k8s::{
    self, ConvertError, Converted, Objects, PdbAmount, PdbRule, Warning, WarningReason,
};
use dovetail_core::model::{
    self, InclusionPolicy, Labels, OwnerKind, PodPhase, SelectorOperator, TaintEffect,
    TolerationOperator, WhenUnsatisfiable, label,
};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::resources::{GIB, MIB, Resources};
use dovetail_core::sym::Sym;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Deserialize;
use serde::de::DeserializeOwned;

// Reading fixtures as a multi-document reader would: each document (and
// each item of a `List`) by its kind.

fn documents(file: &str) -> Vec<serde_norway::Value> {
    let path = format!("{}/tests/k8s/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = serde_norway::Value::deserialize(doc).unwrap();
        if value["kind"] == "List" {
            out.extend(value["items"].as_sequence().unwrap().iter().cloned());
        } else {
            out.push(value);
        }
    }
    out
}

fn all<T: DeserializeOwned>(file: &str) -> Vec<T> {
    documents(file)
        .into_iter()
        .map(|v| serde_norway::from_value(v).unwrap())
        .collect()
}

fn one<T: DeserializeOwned>(file: &str) -> T {
    all(file).remove(0)
}

/// The claims, volumes and classes the pods refer to.
fn lookup() -> Objects {
    let mut objects = Objects::new();
    for doc in documents("volumes.yaml") {
        let kind = doc["kind"].as_str().unwrap().to_owned();
        let v = doc;
        match kind.as_str() {
            "PersistentVolumeClaim" => objects.add_claim(serde_norway::from_value(v).unwrap()),
            "PersistentVolume" => objects.add_volume(serde_norway::from_value(v).unwrap()),
            "StorageClass" => objects.add_storage_class(serde_norway::from_value(v).unwrap()),
            "PriorityClass" => objects.add_priority_class(serde_norway::from_value(v).unwrap()),
            "RuntimeClass" => objects.add_runtime_class(serde_norway::from_value(v).unwrap()),
            other => panic!("unexpected {other}"),
        }
    }
    objects
}

fn s(text: &str) -> Sym {
    Sym::new(text)
}

fn get(labels: &Labels, key: &str) -> Option<&'static str> {
    label(labels, s(key)).map(Sym::as_str)
}

fn req(key: &str, op: Operator, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement::new(key, op, values)
}

fn no_warnings<T>(c: Converted<T>) -> T {
    assert!(
        c.warnings.is_empty(),
        "unexpected warnings: {:#?}",
        c.warnings
            .iter()
            .map(Warning::to_string)
            .collect::<Vec<_>>()
    );
    c.value
}

fn warning<'a>(warnings: &'a [Warning], path: &str) -> &'a Warning {
    warnings.iter().find(|w| w.path == path).unwrap_or_else(|| {
        panic!(
            "no warning at {path}; got {:#?}",
            warnings.iter().map(|w| &w.path).collect::<Vec<_>>()
        )
    })
}

fn error_at<'a>(e: &'a ConvertError, path: &str) -> &'a dovetail_api::FieldError {
    e.at(path)
        .unwrap_or_else(|| panic!("no error at {path}; got:\n{e}"))
}

// Pods.

fn full_pod() -> model::Pod {
    no_warnings(k8s::pod(&one::<Pod>("pod-full.yaml"), &lookup()).unwrap())
}

#[test]
fn pod_metadata_owner_phase_and_times() {
    let p = full_pod();
    assert_eq!(p.name.as_str(), "checkout-7d9c8b6f4-x2kqp");
    assert_eq!(p.namespace.as_str(), "shop");
    assert_eq!(get(&p.labels, "tier"), Some("web"));
    assert_eq!(p.labels.len(), 3);
    let owner = p.owner.unwrap();
    assert_eq!(
        (owner.kind, owner.name.as_str()),
        (OwnerKind::ReplicaSet, "checkout-7d9c8b6f4")
    );
    assert_eq!(p.phase, PodPhase::Running);
    assert_eq!(p.created, 1_796_032_800, "2026-11-30T10:00:00Z");
    assert_eq!(p.started_at, 1_796_032_805, "status.startTime");
    assert_eq!(p.deleting_since, None);
    assert_eq!(p.priority, 1000, "spec.priority wins over the class");
}

#[test]
fn pod_annotations_stay_annotations() {
    let p = full_pod();
    assert_eq!(
        get(&p.annotations, "karpenter.sh/do-not-disrupt"),
        Some("30m")
    );
    assert_eq!(p.deletion_cost(), -5);
    assert_eq!(p.annotations.len(), 3);
}

#[test]
fn pod_requests_count_sidecars_init_containers_overhead_and_limits() {
    let p = full_pod();
    // Containers: 500m + 100m (its limit stands in for the missing
    // request); with the 200m sidecar 800m. The ordinary init container
    // runs beside the sidecar: 3000m + 200m = 3200m, the larger. Memory:
    // 1Gi + 128Mi + 256Mi beats 512Mi + 256Mi. Plus the overhead.
    let mut want = Resources::new(3200 + 250, GIB + 128 * MIB + 256 * MIB + 120 * MIB);
    want.set("nvidia.com/gpu", 1);
    assert_eq!(p.requests, want);
}

#[test]
fn pod_node_selector_is_read_through_karpenter_aliases() {
    let p = full_pod();
    assert_eq!(
        p.node_selector,
        model::sorted_labels([
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/os", "linux")
        ])
    );
}

#[test]
fn pod_required_node_affinity_has_every_operator_and_or_terms() {
    let p = full_pod();
    assert_eq!(
        p.required_node_affinity,
        vec![
            vec![
                req(
                    "karpenter.k8s.aws/instance-category",
                    Operator::In,
                    &["c", "m"]
                ),
                req(
                    "karpenter.k8s.aws/instance-family",
                    Operator::NotIn,
                    &["m5a"]
                ),
                req("karpenter.k8s.aws/instance-cpu", Operator::Gt, &["3"]),
                req(
                    "karpenter.k8s.aws/instance-memory",
                    Operator::Lt,
                    &["65537"]
                ),
                req("example.com/gpu", Operator::DoesNotExist, &[]),
            ],
            vec![req("karpenter.sh/nodepool", Operator::Exists, &[])],
        ]
    );
}

#[test]
fn pod_preferred_node_affinity_keeps_weights_and_normalises_keys() {
    let p = full_pod();
    let prefs: Vec<_> = p
        .preferred_node_affinity
        .iter()
        .map(|t| (t.weight, t.requirements.clone()))
        .collect();
    assert_eq!(
        prefs,
        vec![
            (
                80,
                vec![req("karpenter.sh/capacity-type", Operator::In, &["spot"])]
            ),
            (
                20,
                vec![req(
                    "topology.kubernetes.io/zone",
                    Operator::In,
                    &["us-east-1a"]
                )]
            ),
        ]
    );
}

#[test]
fn pod_affinity_keeps_namespaces_and_namespace_selectors() {
    let p = full_pod();
    let [t] = p.pod_affinity.as_slice() else {
        panic!("{:?}", p.pod_affinity)
    };
    assert_eq!(t.topology_key.as_str(), "topology.kubernetes.io/zone");
    assert_eq!(t.namespaces, vec![s("cache")]);
    assert_eq!(
        t.namespace_selector,
        Some(model::LabelSelector::labels([("team", "platform")]))
    );
    let e = &t.selector.match_expressions[0];
    assert_eq!(
        (e.key.as_str(), e.operator, e.values.clone()),
        (
            "app.kubernetes.io/name",
            SelectorOperator::In,
            vec![s("redis")]
        )
    );
    let [w] = p.preferred_pod_affinity.as_slice() else {
        panic!()
    };
    assert_eq!(w.weight, 50);
    assert_eq!(w.term.namespaces, Vec::<Sym>::new(), "own namespace");
    assert_eq!(w.term.namespace_selector, None);
    assert_eq!(
        w.term.selector,
        model::LabelSelector::labels([("app.kubernetes.io/name", "cart")])
    );
}

#[test]
fn pod_anti_affinity_merges_match_label_keys_with_the_pods_own_values() {
    let p = full_pod();
    let [t] = p.pod_anti_affinity.as_slice() else {
        panic!()
    };
    assert_eq!(t.topology_key.as_str(), "kubernetes.io/hostname");
    let pod_labels = model::sorted_labels([
        ("app.kubernetes.io/name", "checkout"),
        ("pod-template-hash", "7d9c8b6f4"),
    ]);
    assert!(t.selector.matches(&pod_labels));
    let other_revision = model::sorted_labels([
        ("app.kubernetes.io/name", "checkout"),
        ("pod-template-hash", "0000000"),
    ]);
    assert!(
        !t.selector.matches(&other_revision),
        "matchLabelKeys restrict it to the pod's own revision"
    );
    let [w] = p.preferred_pod_anti_affinity.as_slice() else {
        panic!()
    };
    assert_eq!(w.weight, 10);
    assert_eq!(
        w.term.namespace_selector,
        Some(model::LabelSelector::default()),
        "an empty namespace selector selects every namespace"
    );
    assert_eq!(
        w.term.selector.match_expressions[0].operator,
        SelectorOperator::Exists
    );
}

#[test]
fn pod_topology_spread_keeps_min_domains_policies_and_match_label_keys() {
    let p = full_pod();
    let [zone, host] = p.topology_spread.as_slice() else {
        panic!("{:?}", p.topology_spread)
    };
    assert_eq!(zone.max_skew, 1);
    assert_eq!(zone.topology_key.as_str(), "topology.kubernetes.io/zone");
    assert_eq!(zone.when_unsatisfiable, WhenUnsatisfiable::DoNotSchedule);
    assert_eq!(zone.min_domains, Some(3));
    assert_eq!(zone.node_affinity_policy, InclusionPolicy::Ignore);
    assert_eq!(zone.node_taints_policy, InclusionPolicy::Honor);
    assert_eq!(zone.match_label_keys, vec![s("pod-template-hash")]);
    assert_eq!(
        zone.selector,
        model::LabelSelector::labels([("app.kubernetes.io/name", "checkout")])
    );
    assert_eq!(host.max_skew, 2);
    assert_eq!(host.when_unsatisfiable, WhenUnsatisfiable::ScheduleAnyway);
    assert_eq!(host.min_domains, None);
    assert_eq!(
        (host.node_affinity_policy, host.node_taints_policy),
        (InclusionPolicy::Honor, InclusionPolicy::Ignore),
        "Kubernetes' defaults"
    );
}

#[test]
fn pod_tolerations_ignore_toleration_seconds() {
    let p = full_pod();
    let got: Vec<_> = p
        .tolerations
        .iter()
        .map(|t| {
            (
                t.key.map(Sym::as_str),
                t.operator,
                t.value.map(Sym::as_str),
                t.effect,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some("dedicated"),
                TolerationOperator::Equal,
                Some("shop"),
                Some(TaintEffect::NoSchedule)
            ),
            (
                Some("node.kubernetes.io/not-ready"),
                TolerationOperator::Exists,
                None,
                Some(TaintEffect::NoExecute)
            ),
            (
                Some("example.com/maintenance"),
                TolerationOperator::Exists,
                None,
                None
            ),
        ]
    );
}

#[test]
fn pod_host_ports_of_containers_and_sidecars() {
    let p = full_pod();
    let got: Vec<_> = p
        .host_ports
        .iter()
        .map(|h| (h.port, h.protocol.as_str(), h.host_ip.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(9000, "UDP", "10.0.0.1"), (15090, "TCP", "0.0.0.0")],
        "8080 has no host port"
    );
}

#[test]
fn pod_volume_zones_from_a_bound_volume_and_an_ephemeral_claims_class() {
    let p = full_pod();
    // The bound volume is in 1a or 1b (EBS CSI's zone key), the ephemeral
    // volume's class allows 1a or 1c: only 1a is left.
    assert_eq!(p.volume_zones, vec![s("us-east-1a")]);
}

#[test]
fn daemon_static_and_custom_owned_pods() {
    let pods = all::<Pod>("pod-daemon.yaml");
    let daemon = no_warnings(k8s::pod(&pods[0], &Objects::new()).unwrap());
    assert_eq!(daemon.daemon_set().map(Sym::as_str), Some("node-exporter"));
    assert!(daemon.is_terminating());
    assert_eq!(daemon.deleting_since, Some(1_796_038_200));
    assert_eq!(daemon.host_ports[0].port, 9100);
    assert_eq!(
        daemon.required_node_affinity,
        vec![Vec::<NodeSelectorRequirement>::new()],
        "the controller's matchFields pin is the DaemonSet model's business"
    );

    let mirror = no_warnings(k8s::pod(&pods[1], &Objects::new()).unwrap());
    assert!(mirror.is_static());
    assert_eq!(
        mirror.owner.unwrap().name.as_str(),
        "ip-10-0-1-17.ec2.internal"
    );
    assert_eq!(mirror.phase, PodPhase::Succeeded);
    assert!(mirror.is_terminal());
    assert!(
        mirror.host_ports.is_empty(),
        "no ports, host network or not"
    );

    let runner = no_warnings(k8s::pod(&pods[2], &Objects::new()).unwrap());
    let owner = runner.owner.unwrap();
    assert_eq!(
        (owner.kind, owner.name.as_str()),
        (OwnerKind::Other, "runner"),
        "a Job of another API group is not a batch Job"
    );
    assert_eq!(runner.phase, PodPhase::Pending);
    assert_eq!(runner.started_at, 0);
    assert_eq!(runner.requests, Resources::default());
}

#[test]
fn unsupported_and_unresolved_fields_warn_with_their_path() {
    let c = k8s::pod(&one::<Pod>("pod-warnings.yaml"), &lookup()).unwrap();
    let w = &c.warnings;
    let affinity = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
    assert_eq!(
        warning(w, &format!("{affinity}[0].matchFields")).reason,
        WarningReason::MatchFields
    );
    assert_eq!(
        warning(w, &format!("{affinity}[1]")).reason,
        WarningReason::EmptyNodeSelectorTerm
    );
    assert_eq!(
        warning(w, "spec.schedulingGates").reason,
        WarningReason::SchedulingGates {
            gates: vec!["example.com/quota".into()]
        }
    );
    assert_eq!(
        warning(w, "spec.resourceClaims").reason,
        WarningReason::ResourceClaims
    );
    assert_eq!(
        warning(w, "spec.volumes[0].persistentVolumeClaim.claimName").reason,
        WarningReason::UnresolvedClaim {
            namespace: "shop".into(),
            name: "datasets".into()
        }
    );
    assert_eq!(
        warning(w, "spec.volumes[1]").reason,
        WarningReason::UnresolvedVolume {
            name: "pvc-gone".into()
        }
    );
    assert_eq!(
        warning(w, "spec.volumes[2]").reason,
        WarningReason::VolumeRequirement {
            key: "node.kubernetes.io/instance-type".into()
        }
    );
    assert_eq!(
        warning(w, "spec.volumes[3]").reason,
        WarningReason::UnresolvedStorageClass {
            name: "premium-io2".into()
        }
    );
    assert_eq!(
        warning(w, "metadata.annotations[karpenter.sh/do-not-disrupt]").reason,
        WarningReason::InvalidDoNotDisrupt {
            value: "forever".into()
        }
    );
    assert_eq!(
        warning(
            w,
            "metadata.annotations[controller.kubernetes.io/pod-deletion-cost]"
        )
        .reason,
        WarningReason::InvalidDeletionCost {
            value: "lots".into()
        }
    );
    assert_eq!(w.len(), 10, "{w:#?}");

    // What the warnings describe is what the value holds.
    let p = &c.value;
    assert_eq!(
        p.volume_zones,
        vec![s("us-east-1c")],
        "the local volume's zone"
    );
    let instance = req(
        "node.kubernetes.io/instance-type",
        Operator::In,
        &["i4i.xlarge"],
    );
    assert_eq!(
        p.required_node_affinity,
        vec![
            vec![
                req("karpenter.k8s.aws/instance-gpu-count", Operator::Gt, &["0"]),
                instance.clone()
            ],
            vec![instance],
        ],
        "the local volume's hostname is dropped; its other keys join every term"
    );
    assert_eq!(p.deletion_cost(), 0);

    // Each warning names the object, the field and why it matters.
    let text = warning(w, "spec.resourceClaims").to_string();
    assert!(
        text.starts_with("Pod shop/trainer-0: spec.resourceClaims: dynamic resource allocation"),
        "{text}"
    );
}

#[test]
fn volumes_in_disjoint_zones_make_the_pod_unschedulable_and_say_so() {
    let mut pod: Pod = one("pod-full.yaml");
    // The bound volume is in 1a or 1b; a claim from a class limited to 1c.
    let volumes = pod.spec.as_mut().unwrap().volumes.as_mut().unwrap();
    volumes[1]
        .ephemeral
        .as_mut()
        .unwrap()
        .volume_claim_template
        .as_mut()
        .unwrap()
        .spec
        .storage_class_name = Some("local-nvme".into());
    let mut objects = lookup();
    objects.add_storage_class(
        serde_norway::from_str(
            "metadata: {name: local-nvme}\nprovisioner: x\nallowedTopologies: [{matchLabelExpressions: [{key: topology.kubernetes.io/zone, values: [us-east-1c]}]}]",
        )
        .unwrap(),
    );
    let c = k8s::pod(&pod, &objects).unwrap();
    assert_eq!(
        warning(&c.warnings, "spec.volumes[1]").reason,
        WarningReason::DisjointVolumeZones
    );
    for term in &c.value.required_node_affinity {
        assert!(term.contains(&req(
            "topology.kubernetes.io/zone",
            Operator::DoesNotExist,
            &[]
        )));
    }
}

#[test]
fn bad_values_fail_with_every_path_and_fix() {
    let e = k8s::pod(&one::<Pod>("pod-invalid.yaml"), &Objects::new()).unwrap_err();
    let terms = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
    let cpu = error_at(&e, "spec.containers[0].resources.requests[cpu]");
    assert_eq!(cpu.message, "`one` is not a Kubernetes quantity");
    assert_eq!(
        cpu.fix,
        "write a quantity such as `500m`, `2`, `512Mi` or `1Gi`"
    );
    let gt = error_at(&e, &format!("{terms}.matchExpressions[0].values"));
    assert!(
        gt.message.contains("non-negative integer"),
        "{}",
        gt.message
    );
    let op = error_at(&e, &format!("{terms}.matchExpressions[1].operator"));
    assert_eq!(op.message, "`Near` is not supported");
    assert_eq!(op.fix, "use one of In, NotIn, Exists, DoesNotExist, Gt, Lt");
    error_at(&e, &format!("{terms}.matchExpressions[2].values"));
    let anti = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
    error_at(&e, &format!("{anti}.topologyKey"));
    error_at(
        &e,
        &format!("{anti}.labelSelector.matchExpressions[0].values"),
    );
    error_at(&e, "spec.containers[0].ports[0].hostPort");
    assert_eq!(
        error_at(&e, "spec.initContainers[0].restartPolicy").fix,
        "write `restartPolicy: Always` for a sidecar, or leave it out"
    );
    error_at(&e, "spec.tolerations[0].effect");
    error_at(&e, "spec.tolerations[1].operator");
    error_at(&e, "spec.topologySpreadConstraints[0].maxSkew");
    error_at(&e, "spec.topologySpreadConstraints[0].minDomains");
    error_at(&e, "status.phase");
    assert_eq!(e.errors.len(), 13, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("Pod shop/broken cannot be converted (13 errors):\n  spec.containers[0].resources.requests[cpu]: `one`"),
        "{text}"
    );
}

// Workloads' pod templates.

#[test]
fn deployment_template_gets_what_admission_adds() {
    let c = k8s::pod_template(&one::<Deployment>("deployment.yaml"), &lookup()).unwrap();
    let p = no_warnings(c);
    assert_eq!((p.namespace.as_str(), p.name.as_str()), ("shop", "web"));
    let owner = p.owner.unwrap();
    assert_eq!(
        (owner.kind, owner.name.as_str()),
        (OwnerKind::ReplicaSet, "web")
    );
    assert_eq!(p.phase, PodPhase::Pending);
    assert_eq!(get(&p.labels, "version"), Some("v12"));
    assert_eq!(
        get(&p.annotations, "karpenter.sh/do-not-disrupt"),
        Some("true")
    );
    assert_eq!(p.priority, 100, "the global default PriorityClass");
    // The RuntimeClass `kata` adds its overhead, node selector and toleration.
    assert_eq!(
        p.requests,
        Resources::new(1000 + 250, 1536 * MIB + 120 * MIB)
    );
    assert_eq!(get(&p.node_selector, "example.com/sandbox"), Some("kata"));
    assert_eq!(
        p.tolerations[0].key.map(Sym::as_str),
        Some("example.com/sandbox")
    );
    let anti = &p.pod_anti_affinity[0];
    let e = &anti.selector.match_expressions;
    assert_eq!(
        e.len(),
        1,
        "no `tenant` label: mismatchLabelKeys adds nothing"
    );
    assert_eq!(
        (e[0].key.as_str(), e[0].values.clone()),
        ("version", vec![s("v12")])
    );
    assert_eq!(
        p.topology_spread[0].when_unsatisfiable,
        WhenUnsatisfiable::ScheduleAnyway
    );
}

#[test]
fn stateful_set_template_takes_zones_from_its_claim_templates() {
    let p =
        no_warnings(k8s::pod_template(&one::<StatefulSet>("statefulset.yaml"), &lookup()).unwrap());
    assert_eq!(p.owner.unwrap().kind, OwnerKind::StatefulSet);
    assert_eq!(p.requests, Resources::new(2000, 8 * GIB));
    assert_eq!(p.volume_zones, vec![s("us-east-1a"), s("us-east-1c")]);
    assert_eq!(p.priority, 100);
}

#[test]
fn replica_set_template_warns_of_an_unknown_priority_class() {
    let c = k8s::pod_template(&one::<ReplicaSet>("replicaset.yaml"), &lookup()).unwrap();
    let w = warning(&c.warnings, "spec.template.spec.priorityClassName");
    assert_eq!(
        w.reason,
        WarningReason::UnresolvedPriorityClass {
            name: "shop-batch".into()
        }
    );
    assert_eq!(
        w.object.to_string(),
        "ReplicaSet shop/web-5f7d8c9b6",
        "the warning names the object"
    );
    assert_eq!(c.value.priority, 0);
    assert_eq!(c.value.owner.unwrap().name.as_str(), "web-5f7d8c9b6");
    assert_eq!(get(&c.value.labels, "pod-template-hash"), Some("5f7d8c9b6"));
}

#[test]
fn job_template() {
    let p = no_warnings(k8s::pod_template(&one::<Job>("job.yaml"), &Objects::new()).unwrap());
    assert_eq!(
        (p.namespace.as_str(), p.name.as_str()),
        ("analytics", "nightly-report")
    );
    assert_eq!(p.owner.unwrap().kind, OwnerKind::Job);
    assert_eq!(get(&p.labels, "job-name"), Some("nightly-report"));
    let mut want = Resources::new(500, GIB);
    want.ephemeral = 2 * GIB;
    assert_eq!(p.requests, want);
    assert_eq!(
        get(&p.node_selector, "karpenter.sh/capacity-type"),
        Some("spot")
    );
    assert_eq!(p.tolerations.len(), 1);
    assert_eq!(p.priority, 0, "no classes given");
}

#[test]
fn a_workload_without_a_template_fails() {
    let mut d: Deployment = one("deployment.yaml");
    d.spec.as_mut().unwrap().template.spec = None;
    let e = k8s::pod_template(&d, &lookup()).unwrap_err();
    assert_eq!(e.object.to_string(), "Deployment shop/web");
    error_at(&e, "spec.template.spec");
}

#[test]
fn daemon_set_runs_its_template_with_the_controllers_tolerations() {
    let ds = no_warnings(k8s::daemon_set(&one::<DaemonSet>("daemonset.yaml"), &lookup()).unwrap());
    assert_eq!(ds.name.as_str(), "node-exporter");
    let p = &ds.pod;
    assert_eq!(p.namespace.as_str(), "monitoring");
    assert_eq!(p.daemon_set().map(Sym::as_str), Some("node-exporter"));
    assert_eq!(p.requests, Resources::new(100, 180 * MIB));
    assert_eq!(p.priority, 2_000_001_000, "system-node-critical");
    assert_eq!(
        p.host_ports.iter().map(|h| h.port).collect::<Vec<_>>(),
        vec![9100],
        "with hostNetwork the container port is a host port"
    );
    assert_eq!(
        p.required_node_affinity,
        vec![vec![req(
            "eks.amazonaws.com/compute-type",
            Operator::NotIn,
            &["fargate"]
        )]]
    );
    assert_eq!(get(&p.node_selector, "kubernetes.io/os"), Some("linux"));
    let keys: Vec<_> = p
        .tolerations
        .iter()
        .map(|t| t.key.map(Sym::as_str))
        .collect();
    assert_eq!(keys[0], None, "its own Exists-everything toleration first");
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/network-unavailable",
    ] {
        assert!(keys.contains(&Some(key)), "{key} in {keys:?}");
    }
}

// Nodes.

#[test]
fn managed_node_converts_field_by_field() {
    let n = no_warnings(k8s::node(&one::<Node>("node-managed.yaml")).unwrap());
    assert_eq!(n.name.as_str(), "ip-10-0-1-17.ec2.internal");
    assert_eq!(n.node_pool.map(Sym::as_str), Some("general"));
    assert_eq!(n.node_pool_hash, Some(6_821_555_240_504_241_345));
    assert!(n.initialized && n.ready);
    assert!(!n.marked_for_deletion);
    assert_eq!(n.created_at, 1_793_520_000, "2026-11-01T08:00:00Z");
    assert_eq!(n.last_pod_event, n.created_at);
    assert_eq!(get(&n.labels, "karpenter.sh/capacity-type"), Some("spot"));
    assert_eq!(
        get(&n.labels, "topology.kubernetes.io/zone"),
        Some("us-east-1a")
    );
    assert_eq!(get(&n.labels, "karpenter.sh/registered"), Some("true"));
    assert_eq!(n.labels.len(), 25);
    assert_eq!(
        get(&n.annotations, "karpenter.sh/nodepool-hash-version"),
        Some("v3")
    );
    assert_eq!(
        n.taints.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "dedicated=shop:NoSchedule",
            "example.com/spot-reclaim:PreferNoSchedule"
        ]
    );
    let mut cap = Resources::new(4000, 16_044_240 * 1024);
    cap.pods = 58;
    cap.ephemeral = 20_959_212 * 1024;
    cap.set("vpc.amazonaws.com/pod-eni", 18);
    assert_eq!(n.capacity, cap);
    let mut alloc = Resources::new(3920, 15_136_976 * 1024);
    alloc.pods = 58;
    alloc.ephemeral = 18_242_267_924;
    alloc.set("vpc.amazonaws.com/pod-eni", 18);
    assert_eq!(n.allocatable, alloc, "hugepages of 0 are no resource");
    assert!(n.pods.is_empty() && n.startup_taints.is_empty());
}

#[test]
fn unmanaged_cordoned_node() {
    let n = no_warnings(k8s::node(&one::<Node>("node-unmanaged.yaml")).unwrap());
    assert_eq!(n.node_pool, None, "no karpenter.sh/nodepool label");
    assert_eq!(n.node_pool_hash, None);
    assert!(
        n.ready && n.initialized,
        "an unmanaged node is initialised once Ready"
    );
    assert_eq!(
        n.taints.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["node.kubernetes.io/unschedulable:NoSchedule"],
        "cordoned"
    );
    assert_eq!(n.allocatable.cpu, 1930);
    assert_eq!(n.allocatable.pods, 29);
}

#[test]
fn launching_node_is_not_ready_nor_initialised_and_a_foreign_hash_warns() {
    let c = k8s::node(&one::<Node>("node-launching.yaml")).unwrap();
    let w = warning(
        &c.warnings,
        "metadata.annotations[karpenter.sh/nodepool-hash]",
    );
    assert_eq!(
        w.reason,
        WarningReason::InvalidNodePoolHash {
            value: "sha256-abcdef".into()
        }
    );
    assert_eq!(c.warnings.len(), 1);
    let n = c.value;
    assert_eq!(n.node_pool.map(Sym::as_str), Some("batch"));
    assert!(!n.ready && !n.initialized);
    assert_eq!(n.node_pool_hash, None);
    assert_eq!(n.taints.len(), 3);
    assert_eq!(n.allocatable, n.capacity, "no allocatable reported yet");
    assert_eq!(n.allocatable.cpu, 8000);
}

#[test]
fn node_with_bad_taint_and_quantity_fails() {
    let mut node: Node = one("node-managed.yaml");
    node.spec.as_mut().unwrap().taints.as_mut().unwrap()[0].effect = "Sometimes".into();
    node.status
        .as_mut()
        .unwrap()
        .allocatable
        .as_mut()
        .unwrap()
        .insert(
            "memory".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()),
        );
    let e = k8s::node(&node).unwrap_err();
    assert_eq!(
        error_at(&e, "spec.taints[0].effect").message,
        "`Sometimes` is not supported"
    );
    error_at(&e, "status.allocatable[memory]");
    assert!(
        e.to_string()
            .starts_with("Node ip-10-0-1-17.ec2.internal cannot be converted (2 errors)")
    );
}

// Budgets and namespaces.

#[test]
fn pdbs_take_selector_and_allowed_disruptions() {
    let pdbs: Vec<PodDisruptionBudget> = all("pdbs.yaml");
    let web = no_warnings(k8s::pdb(&pdbs[0]).unwrap());
    assert_eq!((web.namespace.as_str(), web.name.as_str()), ("shop", "web"));
    assert_eq!(web.disruptions_allowed, 3);
    assert!(web.selector.matches(&model::sorted_labels([(
        "app.kubernetes.io/name",
        "web-canary"
    )])));
    assert_eq!(
        k8s::pdb_rule(&pdbs[0]).unwrap(),
        Some(PdbRule::MaxUnavailable(PdbAmount::Percent(25)))
    );

    let cache = k8s::pdb(&pdbs[1]).unwrap();
    assert_eq!(
        warning(&cache.warnings, "spec.unhealthyPodEvictionPolicy").reason,
        WarningReason::AlwaysAllowUnhealthy
    );
    assert_eq!(cache.value.disruptions_allowed, 1);
    assert_eq!(
        k8s::pdb_rule(&pdbs[1]).unwrap(),
        Some(PdbRule::MinAvailable(PdbAmount::Count(2)))
    );

    let everything = k8s::pdb(&pdbs[2]).unwrap();
    assert_eq!(
        warning(&everything.warnings, "status.disruptionsAllowed").reason,
        WarningReason::MissingDisruptionStatus
    );
    assert_eq!(everything.value.disruptions_allowed, 0);
    assert!(
        everything.value.selector.matches(&Labels::new()),
        "an empty selector covers every pod of the namespace"
    );
}

#[test]
fn pdb_rules_compute_disruptions_as_the_disruption_controller_does() {
    let pct = |p| PdbAmount::Percent(p);
    // 25% of 12 unavailable: 9 must stay healthy.
    assert_eq!(
        PdbRule::MaxUnavailable(pct(25)).disruptions_allowed(12, 12),
        3
    );
    assert_eq!(
        PdbRule::MaxUnavailable(pct(25)).disruptions_allowed(12, 10),
        1
    );
    // Percentages round up: 50% of 5 is 3 pods.
    assert_eq!(PdbRule::MinAvailable(pct(50)).disruptions_allowed(5, 5), 2);
    assert_eq!(
        PdbRule::MaxUnavailable(pct(10)).disruptions_allowed(5, 5),
        1
    );
    assert_eq!(
        PdbRule::MinAvailable(PdbAmount::Count(3)).disruptions_allowed(3, 2),
        0
    );
}

#[test]
fn pdb_without_selector_covers_nothing_and_bad_rules_fail() {
    let mut p: PodDisruptionBudget = all("pdbs.yaml").remove(0);
    p.spec.as_mut().unwrap().selector = None;
    let c = no_warnings(k8s::pdb(&p).unwrap());
    assert!(
        !c.selector
            .matches(&model::sorted_labels([("app.kubernetes.io/name", "web")]))
    );
    assert!(!c.selector.matches(&Labels::new()));

    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    p.spec.as_mut().unwrap().max_unavailable = Some(IntOrString::String("half".into()));
    let e = k8s::pdb_rule(&p).unwrap_err();
    let f = error_at(&e, "spec.maxUnavailable");
    assert_eq!(f.message, "`half` is not a number of pods or a percentage");
    p.spec.as_mut().unwrap().min_available = Some(IntOrString::Int(1));
    let e = k8s::pdb(&p).unwrap_err();
    error_at(&e, "spec.maxUnavailable");
}

#[test]
fn namespaces_carry_their_name_label() {
    let ns: Vec<Namespace> = all("namespaces.yaml");
    let shop = no_warnings(k8s::namespace(&ns[0]).unwrap());
    assert_eq!(shop.name.as_str(), "shop");
    assert_eq!(shop.labels.len(), 2);
    let cache = no_warnings(k8s::namespace(&ns[1]).unwrap());
    assert_eq!(
        get(&cache.labels, "kubernetes.io/metadata.name"),
        Some("cache"),
        "the API server always sets it"
    );
    assert_eq!(get(&cache.labels, "team"), Some("platform"));
}

#[test]
fn label_aliases_are_karpenters() {
    assert_eq!(
        k8s::normalized_label("failure-domain.beta.kubernetes.io/zone"),
        "topology.kubernetes.io/zone"
    );
    assert_eq!(
        k8s::normalized_label("topology.ebs.csi.aws.com/zone"),
        "topology.kubernetes.io/zone"
    );
    assert_eq!(
        k8s::normalized_label("beta.kubernetes.io/arch"),
        "kubernetes.io/arch"
    );
    assert_eq!(
        k8s::normalized_label("example.com/team"),
        "example.com/team"
    );
}

#[test]
fn owner_kinds_by_group_and_kind_of_the_controller_reference() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    let mut pod: Pod = one("pod-full.yaml");
    for (api_version, kind, controller, want) in [
        ("apps/v1", "StatefulSet", true, Some(OwnerKind::StatefulSet)),
        ("apps/v1", "DaemonSet", true, Some(OwnerKind::DaemonSet)),
        ("batch/v1", "Job", true, Some(OwnerKind::Job)),
        ("v1", "Node", true, Some(OwnerKind::Node)),
        (
            "argoproj.io/v1alpha1",
            "Rollout",
            true,
            Some(OwnerKind::Other),
        ),
        ("apps/v1", "ReplicaSet", false, None),
    ] {
        pod.metadata.owner_references = Some(vec![OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "owner".into(),
            controller: Some(controller),
            ..OwnerReference::default()
        }]);
        let p = k8s::pod(&pod, &lookup()).unwrap().value;
        assert_eq!(p.owner.map(|o| o.kind), want, "{api_version} {kind}");
    }
}

#[test]
fn pod_level_resources_replace_the_containers_sum() {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let mut pod: Pod = one("pod-full.yaml");
    pod.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
        requests: Some(
            [("cpu".to_string(), Quantity("4".into()))]
                .into_iter()
                .collect(),
        ),
        limits: Some(
            [("memory".to_string(), Quantity("8Gi".into()))]
                .into_iter()
                .collect(),
        ),
        ..ResourceRequirements::default()
    });
    let p = k8s::pod(&pod, &lookup()).unwrap().value;
    assert_eq!(
        p.requests.cpu,
        4000 + 250,
        "pod-level CPU plus the overhead"
    );
    assert_eq!(
        p.requests.memory,
        8 * GIB + 120 * MIB,
        "a pod-level limit stands in for its request"
    );
    assert_eq!(
        p.requests.extended(s("nvidia.com/gpu")),
        1,
        "containers' GPUs stay"
    );
}

#[test]
fn template_with_an_unknown_runtime_class_warns() {
    let c = k8s::pod_template(&one::<Deployment>("deployment.yaml"), &Objects::new()).unwrap();
    assert_eq!(
        warning(&c.warnings, "spec.template.spec.runtimeClassName").reason,
        WarningReason::UnresolvedRuntimeClass {
            name: "kata".into()
        }
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        c.value.requests,
        Resources::new(1000, 1536 * MIB),
        "no overhead known"
    );
    assert_eq!(c.value.priority, 0, "no default PriorityClass given");
}

#[test]
fn node_being_deleted_is_marked_for_deletion() {
    let mut node: Node = one("node-managed.yaml");
    node.metadata.deletion_timestamp = node.metadata.creation_timestamp.clone();
    let n = k8s::node(&node).unwrap().value;
    assert!(n.marked_for_deletion);
}
