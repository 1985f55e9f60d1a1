use super::*;
use proptest::prelude::*;
use serde_json::json;

const POD: ObjectType<'static> = ObjectType::BuiltIn {
    group: "",
    kind: "Pod",
};
const NODE: ObjectType<'static> = ObjectType::BuiltIn {
    group: "",
    kind: "Node",
};
const EVENT: ObjectType<'static> = ObjectType::BuiltIn {
    group: "",
    kind: "Event",
};

fn req(key: &str, operator: LabelOperator, values: &[&str]) -> LabelRequirement {
    LabelRequirement {
        key: key.into(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn label_selectors_parse_like_labels_parse() {
    use LabelOperator::*;
    let cases: Vec<(&str, Vec<LabelRequirement>)> = vec![
        ("", vec![]),
        ("   ", vec![]),
        ("x=a", vec![req("x", Equals, &["a"])]),
        ("x==a", vec![req("x", Equals, &["a"])]),
        ("x!=a", vec![req("x", NotEquals, &["a"])]),
        ("x=", vec![req("x", Equals, &[""])]),
        ("x", vec![req("x", Exists, &[])]),
        ("!x", vec![req("x", DoesNotExist, &[])]),
        (" ! x ", vec![req("x", DoesNotExist, &[])]),
        ("x in (a,b)", vec![req("x", In, &["a", "b"])]),
        ("x in(b, a ,b)", vec![req("x", In, &["a", "b"])]),
        ("x notin (a)", vec![req("x", NotIn, &["a"])]),
        ("x in ()", vec![req("x", In, &[""])]),
        ("x in (a,)", vec![req("x", In, &["", "a"])]),
        ("x in (,a)", vec![req("x", In, &["", "a"])]),
        ("x in (in,notin)", vec![req("x", In, &["in", "notin"])]),
        ("x=in", vec![req("x", Equals, &["in"])]),
        ("x>1", vec![req("x", GreaterThan, &["1"])]),
        ("x<10", vec![req("x", LessThan, &["10"])]),
        (
            "x=a,y!=b,z in (c),!w,v",
            vec![
                req("v", Exists, &[]),
                req("w", DoesNotExist, &[]),
                req("x", Equals, &["a"]),
                req("y", NotEquals, &["b"]),
                req("z", In, &["c"]),
            ],
        ),
        (
            "karpenter.sh/nodepool=default,kubernetes.io/arch in (amd64, arm64)",
            vec![
                req("karpenter.sh/nodepool", Equals, &["default"]),
                req("kubernetes.io/arch", In, &["amd64", "arm64"]),
            ],
        ),
        (
            " x = a , y ",
            vec![req("x", Equals, &["a"]), req("y", Exists, &[])],
        ),
        ("x=a_b.c-d", vec![req("x", Equals, &["a_b.c-d"])]),
    ];
    for (input, want) in cases {
        let parsed = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(parsed.requirements, want, "{input:?}");
    }
}

#[test]
fn bad_label_selectors_are_refused_with_upstreams_messages() {
    let cases = [
        ("x=a,", "found '', expected: identifier after ','"),
        (
            ",x",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ("x a", "found 'a', expected: in, notin, =, ==, !=, gt, lt"),
        ("x in a", "found 'a', expected: '('"),
        ("x in (a b)", "found 'b', expected: ',' or ')'"),
        ("x in (a", "found '', expected: ',' or ')'"),
        ("x in (=)", "found '=', expected: ',', ')' or identifier"),
        ("x=(a)", "found '(', expected: identifier"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("!", "found '', expected: identifier"),
        (
            "x>a",
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x<",
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("x=a,,y", "found ',', expected: identifier after ','"),
        ("-x=a", "invalid label key \"-x\""),
        ("a/b/c=d", "invalid label key \"a/b/c\""),
        ("Example.com/x=a", "invalid label key \"Example.com/x\""),
        (
            "/x",
            "invalid label key \"/x\": prefix part must be non-empty",
        ),
        (
            "x/=a",
            "invalid label key \"x/\": name part must be non-empty",
        ),
        ("x=-a", "invalid label value: \"-a\" for key \"x\""),
        ("x=a*", "invalid label value: \"a*\""),
    ];
    for (input, want) in cases {
        let err = LabelSelector::parse(input).expect_err(input);
        // Errors inside one term name the term, as upstream wraps them.
        let in_requirement = !matches!(input, "x=a," | ",x" | "x=a b" | "!x=a" | "x=a,,y");
        assert_eq!(
            err.to_string().starts_with("unable to parse requirement: "),
            in_requirement,
            "{input:?}: {err}"
        );
        assert!(
            err.to_string().contains(want),
            "{input:?}: {err} lacks {want:?}"
        );
    }
    let long = format!("x={}", "a".repeat(64));
    assert!(LabelSelector::parse(&long).is_err());
    let long_key = format!("{}=a", "k".repeat(64));
    assert!(LabelSelector::parse(&long_key).is_err());
    assert!(LabelSelector::parse(&format!("x={}", "a".repeat(63))).is_ok());
}

#[test]
fn label_selectors_match_objects() {
    let object = json!({"metadata": {"labels": {"app": "web", "tier": "front", "n": "5"}}});
    let bare = json!({"metadata": {"name": "x"}});
    let cases = [
        ("", true, true),
        ("app=web", true, false),
        ("app==web", true, false),
        ("app=db", false, false),
        ("app!=db", true, true),
        ("app!=web", false, true),
        ("app in (db, web)", true, false),
        ("app notin (db, web)", false, true),
        ("app notin (db)", true, true),
        ("app", true, false),
        ("!app", false, true),
        ("app=web,tier=front", true, false),
        ("app=web,tier=back", false, false),
        ("n>4", true, false),
        ("n>5", false, false),
        ("n<6", true, false),
        ("app>1", false, false),
        ("missing=", false, false),
        ("missing!=", true, true),
    ];
    for (input, on_object, on_bare) in cases {
        let selector = LabelSelector::parse(input).unwrap();
        assert_eq!(
            selector.matches(&object),
            on_object,
            "{input:?} on labelled object"
        );
        assert_eq!(
            selector.matches(&bare),
            on_bare,
            "{input:?} on object without labels"
        );
    }
    let empty_label = json!({"metadata": {"labels": {"x": ""}}});
    assert!(LabelSelector::parse("x=").unwrap().matches(&empty_label));
    assert!(
        LabelSelector::parse("x in ()")
            .unwrap()
            .matches(&empty_label)
    );
    assert!(LabelSelector::parse("x").unwrap().matches(&empty_label));
    assert!(LabelSelector::parse("").unwrap().is_empty());
}

#[test]
fn field_selectors_parse_like_fields_parse_selector() {
    use FieldOperator::*;
    let term = |field: &str, operator, value: &str| FieldRequirement {
        field: field.into(),
        operator,
        value: value.into(),
    };
    let cases = [
        ("", vec![]),
        ("metadata.name=a", vec![term("metadata.name", Equals, "a")]),
        ("metadata.name==a", vec![term("metadata.name", Equals, "a")]),
        (
            "metadata.name!=a",
            vec![term("metadata.name", NotEquals, "a")],
        ),
        ("metadata.name=", vec![term("metadata.name", Equals, "")]),
        (
            "spec.nodeName=n1,status.phase!=Failed",
            vec![
                term("spec.nodeName", Equals, "n1"),
                term("status.phase", NotEquals, "Failed"),
            ],
        ),
        ("a=b\\,c", vec![term("a", Equals, "b,c")]),
        ("a=b\\=c\\\\", vec![term("a", Equals, "b=c\\")]),
        ("a=b,,", vec![term("a", Equals, "b")]),
        ("a = b", vec![term("a ", Equals, " b")]),
    ];
    for (input, want) in cases {
        let parsed = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(parsed.requirements, want, "{input:?}");
    }
    let errors = [
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "unescaped character ="),
        ("a=b\\x", "invalid escape sequence"),
        ("a=b\\", "unterminated escape sequence"),
    ];
    for (input, want) in errors {
        let err = FieldSelector::parse(input).expect_err(input);
        assert!(err.to_string().contains(want), "{input:?}: {err}");
    }
}

#[test]
fn unsupported_fields_are_refused_per_kind() {
    let custom = ObjectType::CustomResource;
    let lease = ObjectType::BuiltIn {
        group: "coordination.k8s.io",
        kind: "Lease",
    };
    let supported = [
        (POD, "metadata.name=a,metadata.namespace=b"),
        (POD, "spec.nodeName=n,status.phase=Running"),
        (
            POD,
            "spec.schedulerName=s,spec.serviceAccountName=a,spec.restartPolicy=Always",
        ),
        (
            POD,
            "status.podIP=10.0.0.1,status.nominatedNodeName=n,spec.hostNetwork=false",
        ),
        (NODE, "metadata.name=n,spec.unschedulable=true"),
        (
            EVENT,
            "involvedObject.kind=Pod,involvedObject.name=p,involvedObject.namespace=d",
        ),
        (
            EVENT,
            "involvedObject.uid=u,involvedObject.apiVersion=v1,involvedObject.fieldPath=f",
        ),
        (
            EVENT,
            "involvedObject.resourceVersion=1,reason=r,source=s,type=Normal",
        ),
        (EVENT, "reportingComponent=c"),
        (custom, "metadata.name=a,metadata.namespace=b"),
        (lease, "metadata.name=a"),
    ];
    for (object, input) in supported {
        FieldSelector::parse_for(input, object).unwrap_or_else(|e| panic!("{input}: {e}"));
    }
    let unsupported = [
        (POD, "spec.nodename=n", "spec.nodename"),
        (POD, "metadata.labels=x", "metadata.labels"),
        (POD, "metadata.name=a,spec.containers=x", "spec.containers"),
        (NODE, "spec.nodeName=n", "spec.nodeName"),
        (custom, "spec.nodeName=n", "spec.nodeName"),
        (custom, "status.phase=Running", "status.phase"),
        (lease, "spec.holderIdentity=x", "spec.holderIdentity"),
        (POD, "metadata.name =a", "metadata.name "),
        (EVENT, "spec.nodeName=n", "spec.nodeName"),
    ];
    for (object, input, field) in unsupported {
        let err = FieldSelector::parse_for(input, object).expect_err(input);
        assert_eq!(err, SelectorError::UnsupportedField(field.into()));
        assert_eq!(
            err.to_string(),
            format!("field label not supported: {field}")
        );
    }
}

#[test]
fn field_selectors_match_objects() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "d"},
        "spec": {"nodeName": "n1", "schedulerName": "default-scheduler", "hostNetwork": true},
        "status": {"phase": "Running", "podIP": "10.0.0.1"}
    });
    let pending =
        json!({"metadata": {"name": "q", "namespace": "d"}, "status": {"phase": "Pending"}});
    let cases = [
        ("", true, true),
        ("metadata.name=p", true, false),
        ("metadata.name!=p", false, true),
        ("metadata.namespace=d", true, true),
        ("spec.nodeName=n1", true, false),
        ("spec.nodeName=", false, true),
        ("spec.nodeName!=", true, false),
        ("status.phase=Running", true, false),
        ("status.phase!=Running,status.phase!=Succeeded", false, true),
        ("spec.hostNetwork=true", true, false),
        ("spec.hostNetwork=false", false, true),
        ("status.podIP=10.0.0.1", true, false),
        ("spec.schedulerName=default-scheduler", true, false),
    ];
    for (input, on_pod, on_pending) in cases {
        let selector = FieldSelector::parse_for(input, POD).unwrap();
        assert_eq!(
            selector.matches(POD, &pod),
            on_pod,
            "{input:?} on running pod"
        );
        assert_eq!(
            selector.matches(POD, &pending),
            on_pending,
            "{input:?} on pending pod"
        );
    }

    let cordoned = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
    let node = json!({"metadata": {"name": "m"}});
    let selector = FieldSelector::parse("spec.unschedulable=false").unwrap();
    assert!(!selector.matches(NODE, &cordoned));
    assert!(selector.matches(NODE, &node));
    // Cluster-scoped objects have the empty namespace.
    assert!(
        FieldSelector::parse("metadata.namespace=")
            .unwrap()
            .matches(NODE, &node)
    );

    let event = json!({
        "metadata": {"name": "e", "namespace": "d"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u"},
        "reason": "Evicted", "type": "Warning", "source": {"component": "kubelet"},
        "reportingComponent": "kubelet"
    });
    let selector = FieldSelector::parse(
        "involvedObject.kind=Pod,involvedObject.name=p,reason=Evicted,type=Warning,source=kubelet,reportingComponent=kubelet",
    )
    .unwrap();
    assert!(selector.matches(EVENT, &event));
    assert!(
        !FieldSelector::parse("involvedObject.name=q")
            .unwrap()
            .matches(EVENT, &event)
    );

    let rs = ObjectType::BuiltIn {
        group: "apps",
        kind: "ReplicaSet",
    };
    let replicas = FieldSelector::parse_for("status.replicas=0", rs).unwrap();
    assert!(replicas.matches(rs, &json!({"status": {}})));
    assert!(!replicas.matches(rs, &json!({"status": {"replicas": 2}})));

    // kubectl wait / delete --wait select one object by name.
    let by_name = FieldSelector::parse_for("metadata.name=p", ObjectType::CustomResource).unwrap();
    assert!(by_name.matches(ObjectType::CustomResource, &pod));
    // An unvalidated unsupported field never matches.
    let bogus = FieldSelector::parse("spec.bogus=").unwrap();
    assert!(!bogus.matches(POD, &pod));
}

proptest! {
    #[test]
    fn label_parser_never_panics(input in "\\PC{0,64}") {
        let _ = LabelSelector::parse(&input);
    }

    #[test]
    fn label_parser_never_panics_on_selector_like_input(
        input in "[a-z0-9 !=,()<>/._-]{0,40}|(in|notin|[a-z]{1,3}|[ !=,()<>]){0,12}",
    ) {
        if let Ok(selector) = LabelSelector::parse(&input) {
            let object = json!({"metadata": {"labels": {"a": "b", "in": "1"}}});
            let _ = selector.matches(&object);
        }
    }

    #[test]
    fn field_parser_never_panics(input in "\\PC{0,64}") {
        if let Ok(selector) = FieldSelector::parse(&input) {
            let _ = selector.validate(POD);
            let _ = selector.matches(POD, &json!({"metadata": {"name": "x"}}));
        }
    }

    #[test]
    fn equality_selectors_round_trip(key in "[a-z][a-z0-9]{0,8}", value in "[a-z0-9]{0,8}") {
        let labels = json!({"metadata": {"labels": {key.clone(): value.clone()}}});
        let eq = LabelSelector::parse(&format!("{key}={value}")).unwrap();
        let ne = LabelSelector::parse(&format!("{key}!={value}")).unwrap();
        prop_assert!(eq.matches(&labels));
        prop_assert!(!ne.matches(&labels));
    }
}
