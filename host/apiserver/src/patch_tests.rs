use super::*;
use proptest::prelude::*;
use serde_json::json;

const POD: ObjectType<'static> = ObjectType::BuiltIn {
    group: "",
    kind: "Pod",
};

fn strategic(group: &'static str, kind: &'static str, target: Value, patch: Value) -> Value {
    apply(
        PatchKind::Strategic,
        &target,
        patch.to_string().as_bytes(),
        ObjectType::BuiltIn { group, kind },
    )
    .unwrap_or_else(|e| panic!("strategic patch {patch} on {kind} failed: {e}"))
}

fn strategic_err(kind: &'static str, target: Value, patch: Value) -> PatchError {
    apply(
        PatchKind::Strategic,
        &target,
        patch.to_string().as_bytes(),
        ObjectType::BuiltIn { group: "", kind },
    )
    .expect_err("patch should fail")
}

#[test]
fn content_types_map_to_patch_kinds() {
    let cases = [
        ("application/merge-patch+json", PatchKind::Merge),
        ("application/json-patch+json", PatchKind::Json),
        (
            "application/strategic-merge-patch+json",
            PatchKind::Strategic,
        ),
        ("application/apply-patch+yaml", PatchKind::Apply),
        (
            "Application/Merge-Patch+JSON; charset=utf-8",
            PatchKind::Merge,
        ),
    ];
    for (content_type, kind) in cases {
        assert_eq!(
            PatchKind::from_content_type(content_type),
            Ok(kind),
            "{content_type}"
        );
        assert_eq!(PatchKind::from_content_type(kind.content_type()), Ok(kind));
    }
    let err = PatchKind::from_content_type("application/json").unwrap_err();
    assert_eq!(err.class(), ErrorClass::UnsupportedMediaType);
    assert_eq!(
        err.to_string(),
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, \
         application/strategic-merge-patch+json, application/apply-patch+yaml"
    );
}

#[test]
fn merge_patch_follows_rfc_7386_examples() {
    // The test cases of RFC 7386 appendix A, with object targets.
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
        // Lists are replaced, never merged, unlike strategic merge.
        (
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
            json!({"spec": {"containers": [{"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "b"}]}}),
        ),
    ];
    for (target, patch, want) in cases {
        let got = apply(PatchKind::Merge, &target, patch.to_string().as_bytes(), POD).unwrap();
        assert_eq!(got, want, "merge {patch} into {target}");
    }
}

#[test]
fn merge_patch_rejects_bodies_that_are_not_objects() {
    for body in [&b"[1]"[..], b"\"x\"", b"3", b"null"] {
        let err = apply(PatchKind::Merge, &json!({}), body, POD).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");
    }
    let err = apply(PatchKind::Merge, &json!({}), b"{not json", POD).unwrap_err();
    assert!(matches!(err, PatchError::MalformedJson(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::BadRequest);
}

#[test]
fn json_patch_applies_rfc_6902_operations() {
    let target = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2]});
    let cases = [
        (
            json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}]),
            json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "list": [1, 2]}),
        ),
        (
            json!([{"op": "remove", "path": "/metadata/labels"}]),
            json!({"metadata": {"name": "a"}, "list": [1, 2]}),
        ),
        (
            json!([{"op": "replace", "path": "/list/0", "value": 9}]),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [9, 2]}),
        ),
        (
            json!([{"op": "add", "path": "/list/-", "value": 3}]),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2, 3]}),
        ),
        (
            json!([{"op": "move", "from": "/metadata/labels/x", "path": "/metadata/labels/z"}]),
            json!({"metadata": {"name": "a", "labels": {"z": "1"}}, "list": [1, 2]}),
        ),
        (
            json!([{"op": "copy", "from": "/list", "path": "/copy"}]),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2], "copy": [1, 2]}),
        ),
        (
            json!([{"op": "test", "path": "/metadata/name", "value": "a"},
                   {"op": "add", "path": "/ok", "value": true}]),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "list": [1, 2], "ok": true}),
        ),
        (json!([]), target.clone()),
    ];
    for (patch, want) in cases {
        let got = apply(PatchKind::Json, &target, patch.to_string().as_bytes(), POD).unwrap();
        assert_eq!(got, want, "{patch}");
    }
}

#[test]
fn json_patch_finalizer_helper_sequence_works_as_on_a_real_server() {
    // kube-runtime's finalizer helper: add when absent ...
    let target = json!({"metadata": {"name": "a"}});
    let add = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["dovetail.dev/f"]}
    ]);
    let added = apply(PatchKind::Json, &target, add.to_string().as_bytes(), POD).unwrap();
    assert_eq!(added["metadata"]["finalizers"], json!(["dovetail.dev/f"]));
    // ... a second add attempt fails because the list now exists ...
    let err = apply(PatchKind::Json, &added, add.to_string().as_bytes(), POD).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    // ... and removal tests the element first.
    let remove = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "dovetail.dev/f"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let removed = apply(PatchKind::Json, &added, remove.to_string().as_bytes(), POD).unwrap();
    assert_eq!(removed["metadata"]["finalizers"], json!([]));
    let err = apply(
        PatchKind::Json,
        &removed,
        remove.to_string().as_bytes(),
        POD,
    )
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
}

#[test]
fn json_patch_errors_are_typed_and_leave_the_target_alone() {
    let target = json!({"a": 1});
    let cases: [(&[u8], ErrorClass); 8] = [
        (b"{\"op\": \"add\"}", ErrorClass::BadRequest),
        (
            b"[{\"op\": \"frobnicate\", \"path\": \"/a\"}]",
            ErrorClass::BadRequest,
        ),
        (b"[{\"op\": \"add\", \"value\": 1}]", ErrorClass::BadRequest),
        (
            b"[{\"op\": \"add\", \"path\": \"a\", \"value\": 1}]",
            ErrorClass::BadRequest,
        ),
        (
            b"[{\"op\": \"remove\", \"path\": \"/missing\"}]",
            ErrorClass::Invalid,
        ),
        (
            b"[{\"op\": \"test\", \"path\": \"/a\", \"value\": 2}]",
            ErrorClass::Invalid,
        ),
        (
            b"[{\"op\": \"test\", \"path\": \"/b\", \"value\": 2}]",
            ErrorClass::Invalid,
        ),
        (
            b"[{\"op\": \"replace\", \"path\": \"/b/c\", \"value\": 2}]",
            ErrorClass::Invalid,
        ),
    ];
    for (body, class) in cases {
        let err = apply(PatchKind::Json, &target, body, POD).unwrap_err();
        assert_eq!(
            err.class(),
            class,
            "{} -> {err}",
            String::from_utf8_lossy(body)
        );
    }
    // A failing later operation discards the earlier ones.
    let body =
        br#"[{"op": "add", "path": "/b", "value": 1}, {"op": "test", "path": "/a", "value": 0}]"#;
    assert!(apply(PatchKind::Json, &target, body, POD).is_err());
    assert_eq!(target, json!({"a": 1}));
}

#[test]
fn json_patch_with_too_many_operations_is_refused() {
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
        .collect();
    let body = Value::Array(ops).to_string();
    let err = apply(PatchKind::Json, &json!({"a": 1}), body.as_bytes(), POD).unwrap_err();
    assert_eq!(
        err,
        PatchError::TooManyOperations(MAX_JSON_PATCH_OPERATIONS + 1)
    );
    assert_eq!(err.class().code(), 413);
}

#[test]
fn json_patch_copies_cannot_grow_the_object_without_bound() {
    // Each copy doubles the object: 40 of them would need terabytes.
    let ops: Vec<Value> = (0..40)
        .map(|i| json!({"op": "copy", "from": "/a", "path": format!("/a/c{i}")}))
        .collect();
    let body = Value::Array(ops).to_string();
    let target = json!({"a": {"data": "x".repeat(1024)}});
    let err = apply(PatchKind::Json, &target, body.as_bytes(), POD).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(
        err.to_string()
            .contains("accumulated size increase of copy"),
        "{err}"
    );
    // A few small copies are fine.
    let body = br#"[{"op": "copy", "from": "/a", "path": "/b"}]"#;
    let got = apply(PatchKind::Json, &target, body, POD).unwrap();
    assert_eq!(got["b"], target["a"]);
}

#[test]
fn strategic_patch_on_a_custom_resource_is_415_with_upstreams_message() {
    let err = apply(
        PatchKind::Strategic,
        &json!({}),
        b"{}",
        ObjectType::CustomResource,
    )
    .unwrap_err();
    assert_eq!(err.class().code(), 415);
    assert_eq!(err.class().reason(), "UnsupportedMediaType");
    assert_eq!(
        err.to_string(),
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    // Merge and JSON patches work on custom resources.
    let got = apply(
        PatchKind::Merge,
        &json!({"spec": {"a": 1}}),
        br#"{"spec":{"b":2}}"#,
        ObjectType::CustomResource,
    )
    .unwrap();
    assert_eq!(got, json!({"spec": {"a": 1, "b": 2}}));
}

#[test]
fn apply_patches_are_left_to_server_side_apply() {
    let err = apply(PatchKind::Apply, &json!({}), b"{}", POD).unwrap_err();
    assert_eq!(err, PatchError::ApplyNotSupportedHere);
    assert_eq!(err.class(), ErrorClass::BadRequest);
}

#[test]
fn list_strategies_follow_the_k8s_api_struct_tags() {
    use ListStrategy::*;
    let cases = [
        ("", "Pod", "spec.containers", MergeByKey("name")),
        ("", "Pod", "spec.initContainers", MergeByKey("name")),
        ("", "Pod", "spec.ephemeralContainers", MergeByKey("name")),
        ("", "Pod", "spec.volumes", MergeByKey("name")),
        ("", "Pod", "spec.imagePullSecrets", MergeByKey("name")),
        ("", "Pod", "spec.hostAliases", MergeByKey("ip")),
        (
            "",
            "Pod",
            "spec.topologySpreadConstraints",
            MergeByKey("topologyKey"),
        ),
        ("", "Pod", "spec.schedulingGates", MergeByKey("name")),
        (
            "",
            "Pod",
            "spec.containers.ports",
            MergeByKey("containerPort"),
        ),
        ("", "Pod", "spec.containers.env", MergeByKey("name")),
        (
            "",
            "Pod",
            "spec.initContainers.volumeMounts",
            MergeByKey("mountPath"),
        ),
        (
            "",
            "Pod",
            "spec.containers.volumeDevices",
            MergeByKey("devicePath"),
        ),
        ("", "Pod", "spec.containers.envFrom", Replace),
        ("", "Pod", "spec.containers.args", Replace),
        ("", "Pod", "spec.tolerations", Replace),
        ("", "Pod", "spec.readinessGates", Replace),
        ("", "Pod", "status.conditions", MergeByKey("type")),
        ("", "Pod", "status.podIPs", MergeByKey("ip")),
        ("", "Pod", "status.containerStatuses", Replace),
        ("", "Pod", "metadata.finalizers", MergeScalars),
        ("", "Pod", "metadata.ownerReferences", MergeByKey("uid")),
        ("", "Node", "spec.taints", Replace),
        ("", "Node", "spec.podCIDRs", MergeScalars),
        ("", "Node", "status.conditions", MergeByKey("type")),
        ("", "Node", "status.addresses", MergeByKey("type")),
        ("", "Node", "status.images", Replace),
        (
            "apps",
            "Deployment",
            "spec.template.spec.containers",
            MergeByKey("name"),
        ),
        (
            "apps",
            "Deployment",
            "spec.template.spec.containers.env",
            MergeByKey("name"),
        ),
        (
            "apps",
            "Deployment",
            "spec.template.spec.tolerations",
            Replace,
        ),
        (
            "apps",
            "Deployment",
            "spec.template.metadata.finalizers",
            MergeScalars,
        ),
        (
            "apps",
            "Deployment",
            "status.conditions",
            MergeByKey("type"),
        ),
        (
            "apps",
            "ReplicaSet",
            "spec.template.spec.volumes",
            MergeByKey("name"),
        ),
        (
            "apps",
            "ReplicaSet",
            "status.conditions",
            MergeByKey("type"),
        ),
        (
            "apps",
            "DaemonSet",
            "spec.template.spec.initContainers",
            MergeByKey("name"),
        ),
        ("apps", "DaemonSet", "status.conditions", MergeByKey("type")),
        (
            "policy",
            "PodDisruptionBudget",
            "status.conditions",
            MergeByKey("type"),
        ),
        ("", "Service", "spec.ports", MergeByKey("port")),
        ("", "Service", "status.conditions", MergeByKey("type")),
        ("", "Service", "spec.externalIPs", Replace),
        ("", "Namespace", "status.conditions", MergeByKey("type")),
        ("", "Namespace", "spec.finalizers", Replace),
        ("", "ConfigMap", "metadata.finalizers", MergeScalars),
        (
            "coordination.k8s.io",
            "Lease",
            "metadata.ownerReferences",
            MergeByKey("uid"),
        ),
        ("rbac.authorization.k8s.io", "ClusterRole", "rules", Replace),
        // A core-looking kind in another group has none of Pod's tags.
        ("example.com", "Pod", "spec.containers", Replace),
    ];
    for (group, kind, path, want) in cases {
        assert_eq!(
            list_strategy(group, kind, path),
            want,
            "{group}/{kind} {path}"
        );
    }
}

#[test]
fn strategic_merge_merges_containers_by_name_and_their_lists_by_key() {
    let pod = json!({
        "metadata": {"name": "p", "labels": {"app": "a"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1",
                 "ports": [{"containerPort": 80, "name": "http"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "args": ["--x"]},
                {"name": "sidecar", "image": "side:1"}
            ],
            "tolerations": [{"key": "a", "operator": "Exists"}]
        }
    });
    let patch = json!({
        "metadata": {"labels": {"tier": "web"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:2",
                 "ports": [{"containerPort": 443, "name": "https"}],
                 "env": [{"name": "B", "value": "3"}],
                 "args": ["--y"]},
                {"name": "new", "image": "new:1"}
            ],
            "tolerations": [{"key": "b", "operator": "Exists"}]
        }
    });
    let got = strategic("", "Pod", pod, patch);
    assert_eq!(
        got,
        json!({
            "metadata": {"name": "p", "labels": {"app": "a", "tier": "web"}},
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:2",
                     "ports": [{"containerPort": 80, "name": "http"},
                               {"containerPort": 443, "name": "https"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
                     "args": ["--y"]},
                    {"name": "sidecar", "image": "side:1"},
                    {"name": "new", "image": "new:1"}
                ],
                "tolerations": [{"key": "b", "operator": "Exists"}]
            }
        })
    );
}

#[test]
fn strategic_merge_table() {
    // (kind group, kind, target, patch, want)
    let cases = [
        // Status conditions merge by type.
        (
            "",
            "Pod",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"},
                                             {"type": "PodScheduled", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"},
                                             {"type": "PodScheduled", "status": "True"}]}}),
        ),
        // Node taints have no merge key: replaced.
        (
            "",
            "Node",
            json!({"spec": {"taints": [{"key": "karpenter.sh/unregistered", "effect": "NoExecute"}]}}),
            json!({"spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}),
            json!({"spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}),
        ),
        // Finalizers merge as a set; duplicates are not added twice.
        (
            "",
            "ConfigMap",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        ),
        // $deleteFromPrimitiveList removes from a scalar set, before additions.
        (
            "",
            "ConfigMap",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
        ),
        // $patch: delete on a keyed element removes it.
        (
            "apps",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}}),
        ),
        // $patch: replace as a list element replaces the whole list.
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}),
            json!({"spec": {"containers": [{"name": "c"}]}}),
        ),
        // $patch: replace in a map replaces the map.
        (
            "",
            "ConfigMap",
            json!({"data": {"a": "1", "b": "2"}}),
            json!({"data": {"$patch": "replace", "c": "3"}}),
            json!({"data": {"c": "3"}}),
        ),
        // $patch: delete in a map removes the field.
        (
            "",
            "ConfigMap",
            json!({"data": {"a": "1"}, "metadata": {"name": "x"}}),
            json!({"data": {"$patch": "delete"}}),
            json!({"metadata": {"name": "x"}}),
        ),
        // $retainKeys drops keys outside the list (Deployment strategy switch).
        (
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        ),
        // $setElementOrder orders the merged list.
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                            "containers": [{"name": "b", "image": "x"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "a"}]}}),
        ),
        // New elements land where the order puts them, not at the end.
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "c"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                            "containers": [{"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
        ),
        // Elements only on the server go before the next ordered element
        // that followed them on the server (upstream's mergeSortedSlice).
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "s1"}, {"name": "a"}, {"name": "s2"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                            "containers": [{"name": "b", "image": "x"}]}}),
            json!({"spec": {"containers": [{"name": "s1"}, {"name": "s2"},
                                           {"name": "b", "image": "x"}, {"name": "a"}]}}),
        ),
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "s"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "s"}, {"name": "b"}]}}),
        ),
        // An order alone reorders the list it names.
        (
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}}),
        ),
        // Primitive lists order by value.
        (
            "",
            "ConfigMap",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["c", "b", "a"]}}),
        ),
        // null deletes a key; a new nested map is created without nulls.
        (
            "",
            "Pod",
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": null}, "annotations": {"x": "y", "z": null}}}),
            json!({"metadata": {"labels": {"b": "2"}, "annotations": {"x": "y"}}}),
        ),
        // Service ports merge by port; PDB conditions by type.
        (
            "",
            "Service",
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            json!({"status": {"conditions": [{"type": "DisruptionAllowed", "status": "True"}],
                              "disruptionsAllowed": 1}}),
            json!({"status": {"conditions": [{"type": "DisruptionAllowed", "status": "False"}],
                              "disruptionsAllowed": 0}}),
            json!({"status": {"conditions": [{"type": "DisruptionAllowed", "status": "False"}],
                              "disruptionsAllowed": 0}}),
        ),
        // Owner references merge by uid.
        (
            "apps",
            "ReplicaSet",
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "d"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "e"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "d"}, {"uid": "2", "name": "e"}]}}),
        ),
        // Custom-looking kinds in built-in groups still merge maps; lists replace.
        (
            "coordination.k8s.io",
            "Lease",
            json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
            json!({"spec": {"holderIdentity": "b"}}),
            json!({"spec": {"holderIdentity": "b", "leaseDurationSeconds": 15}}),
        ),
        // Volumes in a DaemonSet's template merge by name.
        (
            "apps",
            "DaemonSet",
            json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}}),
            json!({"spec": {"template": {"spec": {"volumes": [{"name": "w", "hostPath": {"path": "/x"}}]}}}}),
            json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}},
                                                              {"name": "w", "hostPath": {"path": "/x"}}]}}}}),
        ),
    ];
    for (group, kind, target, patch, want) in cases {
        let got = strategic(group, kind, target.clone(), patch.clone());
        assert_eq!(got, want, "{kind}: {patch} into {target}");
    }
}

#[test]
fn strategic_merge_errors_are_typed() {
    let pod = json!({"spec": {"containers": [{"name": "a"}]}});
    let err = strategic_err(
        "Pod",
        pod.clone(),
        json!({"spec": {"containers": [{"image": "x"}]}}),
    );
    assert_eq!(
        err,
        PatchError::MissingMergeKey {
            element: r#"{"image":"x"}"#.into(),
            key: "name"
        }
    );
    assert_eq!(err.class(), ErrorClass::BadRequest);

    let err = strategic_err("Pod", pod.clone(), json!({"spec": {"$patch": "explode"}}));
    assert!(err.to_string().contains("Unknown patch type"), "{err}");
    assert_eq!(err.class(), ErrorClass::BadRequest);

    let err = strategic_err(
        "Pod",
        pod.clone(),
        json!({"spec": {"$retainKeys": ["a"], "containers": []}}),
    );
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");

    let err = strategic_err("Pod", pod.clone(), json!({"spec": {"$retainKeys": "a"}}));
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");

    let err = strategic_err(
        "Pod",
        pod.clone(),
        json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
    );
    assert!(
        err.to_string()
            .contains("merging lists cannot yet be specified"),
        "{err}"
    );

    let err = strategic_err("Pod", pod.clone(), json!({"spec": {"$frobnicate": 1}}));
    assert!(err.to_string().contains("$frobnicate"), "{err}");

    let err = strategic_err("Pod", pod.clone(), json!({"spec": {"containers": ["a"]}}));
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");

    let err = strategic_err(
        "Pod",
        pod.clone(),
        json!({"metadata": {"finalizers": [{"a": 1}]}}),
    );
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");

    let err = strategic_err(
        "Pod",
        pod.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
    );
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");

    let err = strategic_err("Pod", pod.clone(), json!(["not", "an", "object"]));
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");

    let err = apply(PatchKind::Strategic, &pod, b"{", POD).unwrap_err();
    assert!(matches!(err, PatchError::MalformedJson(_)), "{err:?}");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z$/]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("$patch"),
            Just("replace"),
            Just("delete"),
            Just("merge"),
            Just("name"),
            Just("type")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            "[a-z]{1,6}",
            Just("$patch".to_owned()),
            Just("$retainKeys".to_owned()),
            Just("$setElementOrder/containers".to_owned()),
            Just("$deleteFromPrimitiveList/finalizers".to_owned()),
            Just("spec".to_owned()),
            Just("metadata".to_owned()),
            Just("containers".to_owned()),
            Just("finalizers".to_owned()),
            Just("name".to_owned()),
            Just("conditions".to_owned()),
            Just("status".to_owned()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn patching_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let target = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a"}]}});
        for kind in [PatchKind::Merge, PatchKind::Json, PatchKind::Strategic, PatchKind::Apply] {
            let _ = apply(kind, &target, &body, POD);
        }
    }

    #[test]
    fn patching_never_panics_on_arbitrary_json(target in arbitrary_json(), patch in arbitrary_json()) {
        let body = patch.to_string();
        for kind in [PatchKind::Merge, PatchKind::Json, PatchKind::Strategic] {
            for object in [
                POD,
                ObjectType::BuiltIn { group: "apps", kind: "Deployment" },
                ObjectType::BuiltIn { group: "", kind: "Node" },
                ObjectType::CustomResource,
            ] {
                if let Ok(result) = apply(kind, &target, body.as_bytes(), object) {
                    // Merge-style patches always yield an object.
                    if kind != PatchKind::Json {
                        prop_assert!(result.is_object());
                    }
                }
            }
        }
    }

    #[test]
    fn strategic_merge_of_a_plain_map_patch_equals_merge_patch(
        target in prop::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..6),
        patch in prop::collection::btree_map("[a-z]{1,4}", prop::option::of("[a-z]{0,4}"), 0..6),
    ) {
        // Without lists or directives both flavours agree.
        let target = json!({"data": target});
        let patch = json!({"data": patch}).to_string();
        let cm = ObjectType::BuiltIn { group: "", kind: "ConfigMap" };
        prop_assert_eq!(
            apply(PatchKind::Strategic, &target, patch.as_bytes(), cm).unwrap(),
            apply(PatchKind::Merge, &target, patch.as_bytes(), cm).unwrap()
        );
    }
}
