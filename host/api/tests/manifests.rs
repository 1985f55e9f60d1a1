//! Karpenter manifests (`tests/manifests/`): every valid one parses,
//! validates and round-trips; every invalid one is refused with the exact
//! field path. With the `kube` feature the generated CRDs agree: valid
//! manifests pass their OpenAPI schema and CEL rules, and invalid ones the
//! schema refuses in Karpenter are refused by ours.

use std::path::PathBuf;

use dovetail_api::{EC2NodeClass, ErrorKind, NodeClaim, NodePool, ValidationErrors};
use serde::Deserialize;
use serde_json::Value;

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(sub)
}

/// Every document of every file in `sub`, with its file name.
fn documents(sub: &str) -> Vec<(String, String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(sub))
        .expect("manifest directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let yaml = serde_norway::Value::deserialize(doc).unwrap();
            out.push((
                name.clone(),
                text.clone(),
                serde_json::to_value(yaml).unwrap(),
            ));
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Manifest {
    NodePool(Box<NodePool>),
    NodeClaim(Box<NodeClaim>),
    EC2NodeClass(Box<EC2NodeClass>),
}

impl Manifest {
    fn parse(v: &Value) -> Self {
        let kind = v["kind"].as_str().unwrap_or_default();
        let v = v.clone();
        match kind {
            "NodePool" => Self::NodePool(Box::new(serde_json::from_value(v).unwrap())),
            "NodeClaim" => Self::NodeClaim(Box::new(serde_json::from_value(v).unwrap())),
            "EC2NodeClass" => Self::EC2NodeClass(Box::new(serde_json::from_value(v).unwrap())),
            other => panic!("no fixture should have kind {other}"),
        }
    }

    fn validate(&self) -> Result<(), ValidationErrors> {
        match self {
            Self::NodePool(m) => m.validate(),
            Self::NodeClaim(m) => m.validate(),
            Self::EC2NodeClass(m) => m.validate(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::NodePool(m) => serde_json::to_value(m),
            Self::NodeClaim(m) => serde_json::to_value(m),
            Self::EC2NodeClass(m) => serde_json::to_value(m),
        }
        .unwrap()
    }
}

/// Every value of `input` is in `output` (quantities written as numbers come
/// back as strings, as Kubernetes writes them).
fn contained(input: &Value, output: &Value, at: &str) -> Result<(), String> {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let child = format!("{at}.{k}");
                let Some(w) = b.get(k) else {
                    return Err(format!("{child} was dropped"));
                };
                contained(v, w, &child)?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (v, w))| contained(v, w, &format!("{at}[{i}]"))),
        (Value::Number(n), Value::String(s)) if n.to_string() == *s => Ok(()),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{at}: wrote {b}, read {a}")),
    }
}

#[test]
fn every_valid_manifest_parses_validates_and_round_trips() {
    let docs = documents("valid");
    assert!(docs.len() >= 10, "{} documents", docs.len());
    for (file, _, input) in &docs {
        let parsed = Manifest::parse(input);
        if let Err(e) = parsed.validate() {
            panic!("{file}: {e}");
        }
        let written = parsed.to_json();
        assert_eq!(
            Manifest::parse(&written),
            parsed,
            "{file}: parse → write → parse"
        );
        if let Err(e) = contained(input, &written, "") {
            panic!("{file}: {e}");
        }
    }
}

#[test]
fn reading_applies_karpenters_defaults() {
    let docs = documents("valid");
    let find = |file: &str| docs.iter().find(|d| d.0 == file).unwrap().2.clone();
    let Manifest::NodePool(pool) = Manifest::parse(&find("nodepool-defaults.yaml")) else {
        panic!("a NodePool")
    };
    let written = serde_json::to_value(&pool).unwrap();
    assert_eq!(written["spec"]["template"]["spec"]["expireAfter"], "720h");
    assert_eq!(
        written["spec"]["disruption"],
        serde_json::json!({
            "consolidateAfter": "0s",
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "budgets": [{ "nodes": "10%" }],
        })
    );
    let Manifest::EC2NodeClass(class) = Manifest::parse(&find("ec2nodeclass-alias.yaml")) else {
        panic!("an EC2NodeClass")
    };
    assert_eq!(
        serde_json::to_value(&class).unwrap()["spec"]["metadataOptions"],
        serde_json::json!({
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        })
    );
    // A partial block keeps what it says and gets the rest.
    let partial: EC2NodeClass = serde_json::from_value(serde_json::json!({
        "spec": { "metadataOptions": { "httpTokens": "optional" } }
    }))
    .unwrap();
    let m = partial.spec.metadata_options.unwrap();
    assert_eq!(m.http_tokens.unwrap().as_str(), "optional");
    assert_eq!(m.http_put_response_hop_limit, Some(1));
    // Durations come back as written; an unset one means Never.
    let mut p = pool.clone();
    p.spec.disruption.consolidate_after = "Never"
        .parse::<String>()
        .map(dovetail_api::NillableDuration::new)
        .unwrap();
    assert_eq!(
        serde_json::to_value(&p).unwrap()["spec"]["disruption"]["consolidateAfter"],
        "Never"
    );
    p.spec.template.spec.expire_after = dovetail_api::NillableDuration::default();
    assert_eq!(
        serde_json::to_value(&p).unwrap()["spec"]["template"]["spec"]["expireAfter"],
        "Never"
    );
}

/// `# expect: PATH` and `# schema: refused|accepted` from a fixture's header.
fn header<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .unwrap_or_else(|| panic!("fixture without `# {key}:`"))
        .trim()
}

#[test]
fn invalid_manifests_are_refused_with_the_path_and_a_fix() {
    let docs = documents("invalid");
    assert!(docs.len() >= 40, "{} documents", docs.len());
    for (file, text, input) in &docs {
        let expected = header(text, "expect");
        let err = Manifest::parse(input)
            .validate()
            .expect_err(&format!("{file} should be refused"));
        let Some(at) = err.at(expected) else {
            panic!("{file}: no error at {expected}: {err}");
        };
        assert!(!at.fix.is_empty() && !at.message.is_empty(), "{file}: {at}");
    }
}

fn pool_with(spec: Value) -> NodePool {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": { "name": "p" },
        "spec": spec,
    }))
    .unwrap()
}

fn node_class_ref() -> Value {
    serde_json::json!({ "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" })
}

#[test]
fn too_many_requirements_and_budgets() {
    let requirements: Vec<Value> = (0..101)
        .map(|i| serde_json::json!({ "key": format!("example.com/k{i}"), "operator": "Exists" }))
        .collect();
    let budgets: Vec<Value> = (0..51)
        .map(|_| serde_json::json!({ "nodes": "1" }))
        .collect();
    let pool = pool_with(serde_json::json!({
        "template": { "spec": { "requirements": requirements, "nodeClassRef": node_class_ref() } },
        "disruption": { "consolidateAfter": "0s", "budgets": budgets },
    }));
    let err = pool.validate().unwrap_err();
    let r = err.at("spec.template.spec.requirements").unwrap();
    assert_eq!(r.kind, ErrorKind::TooMany);
    assert!(r.message.contains("101"), "{r}");
    assert_eq!(
        err.at("spec.disruption.budgets").unwrap().kind,
        ErrorKind::TooMany
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let pool = pool_with(serde_json::json!({
        "weight": 0,
        "template": { "spec": { "requirements": [
            { "key": "karpenter.sh/x", "operator": "Maybe" },
            { "key": "example.com/a", "operator": "In" },
        ] } },
        "disruption": { "consolidateAfter": "soon", "budgets": [{ "nodes": "200%" }] },
    }));
    let err = pool.validate().unwrap_err();
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "spec.template.spec.requirements[0].key",
        "spec.template.spec.requirements[0].operator",
        "spec.template.spec.requirements[1].values",
        "spec.template.spec.nodeClassRef",
        "spec.disruption.consolidateAfter",
        "spec.disruption.budgets[0].nodes",
        "spec.weight",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    let text = err.to_string();
    assert!(
        text.starts_with("NodePool `p` is invalid (7 errors):"),
        "{text}"
    );
    assert!(
        text.contains("spec.template.spec.requirements[0].operator: `Maybe` is not supported; use one of Gte, Lte, In, NotIn, Exists, DoesNotExist, Gt, Lt"),
        "{text}"
    );
}

#[cfg(feature = "kube")]
mod schema {
    //! The generated CRDs judge the fixtures as Karpenter's would.

    use kube::CustomResourceExt;
    use kube::core::cel::Validator;

    use super::*;

    fn open_api(kind: &str) -> Value {
        let crd = match kind {
            "NodePool" => NodePool::crd(),
            "NodeClaim" => NodeClaim::crd(),
            "EC2NodeClass" => EC2NodeClass::crd(),
            other => panic!("{other}"),
        };
        serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    /// The API server's structural defaulting: missing properties with a
    /// default get it, then their own properties are defaulted.
    fn apply_defaults(schema: &Value, value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, prop) in props {
                        if !map.contains_key(k)
                            && let Some(d) = prop.get("default")
                        {
                            map.insert(k.clone(), d.clone());
                        }
                        if let Some(child) = map.get_mut(k) {
                            apply_defaults(prop, child);
                        }
                    }
                }
                if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                    map.values_mut()
                        .for_each(|child| apply_defaults(extra, child));
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    items
                        .iter_mut()
                        .for_each(|child| apply_defaults(item, child));
                }
            }
            _ => {}
        }
    }

    /// Why the schema refuses `value` (OpenAPI, then CEL), if it does.
    fn schema_refusal(schema: &Value, value: &Value) -> Option<String> {
        let validator = jsonschema::validator_for(schema).expect("the schema compiles");
        let problems: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        if !problems.is_empty() {
            return Some(problems.join("; "));
        }
        Validator::new()
            .validate(schema, value, None)
            .err()
            .map(|e| format!("{e:?}"))
    }

    #[test]
    fn valid_manifests_pass_the_schema_and_round_trip_to_the_defaulted_input() {
        for (file, _, input) in documents("valid") {
            let schema = open_api(input["kind"].as_str().unwrap());
            let mut defaulted = input.clone();
            apply_defaults(&schema, &mut defaulted);
            if let Some(why) = schema_refusal(&schema, &defaulted) {
                panic!("{file}: the CRD refuses it: {why}");
            }
            let written = Manifest::parse(&input).to_json();
            // Equal both ways: what was written is the input with its defaults.
            if let Err(e) =
                contained(&defaulted, &written, "").and(contained(&written, &defaulted, ""))
            {
                if !e.contains("read \"") || !e.contains("wrote") {
                    panic!("{file}: {e}");
                }
                // Only quantity numbers may differ, and `contained` allows
                // those one way.
                contained(&defaulted, &written, "").unwrap_or_else(|e| panic!("{file}: {e}"));
            }
        }
    }

    #[test]
    fn invalid_manifests_meet_the_schema_as_in_karpenter() {
        for (file, text, input) in documents("invalid") {
            let schema = open_api(input["kind"].as_str().unwrap());
            let mut defaulted = input.clone();
            apply_defaults(&schema, &mut defaulted);
            let refusal = schema_refusal(&schema, &defaulted);
            match header(&text, "schema") {
                "refused" => assert!(refusal.is_some(), "{file}: the CRD accepts it"),
                "accepted" => assert!(refusal.is_none(), "{file}: the CRD refuses it: {refusal:?}"),
                other => panic!("{file}: schema: {other}"),
            }
        }
    }

    #[test]
    fn crds_have_karpenters_names_columns_and_subresources() {
        let [pool, claim, class] = dovetail_api::crd::crds().try_into().unwrap();
        assert_eq!(
            pool.metadata.name.as_deref(),
            Some("nodepools.karpenter.sh")
        );
        assert_eq!(
            claim.metadata.name.as_deref(),
            Some("nodeclaims.karpenter.sh")
        );
        assert_eq!(
            class.metadata.name.as_deref(),
            Some("ec2nodeclasses.karpenter.k8s.aws")
        );
        for crd in [&pool, &claim, &class] {
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["karpenter".to_string()][..])
            );
            assert_eq!(crd.spec.scope, "Cluster");
            let v = &crd.spec.versions[0];
            assert!(v.served && v.storage);
            assert!(v.subresources.as_ref().unwrap().status.is_some());
        }
        assert_eq!(
            class.spec.names.short_names.as_deref(),
            Some(&["ec2nc".to_string(), "ec2ncs".to_string()][..])
        );
        let scale = pool.spec.versions[0]
            .subresources
            .as_ref()
            .unwrap()
            .scale
            .as_ref()
            .unwrap();
        assert_eq!(
            (
                scale.spec_replicas_path.as_str(),
                scale.status_replicas_path.as_str()
            ),
            (".spec.replicas", ".status.nodes")
        );
        let columns = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
            crd.spec.versions[0]
                .additional_printer_columns
                .as_ref()
                .unwrap()
                .iter()
                .map(|c| format!("{}{}", c.name, if c.priority == Some(1) { "*" } else { "" }))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            columns(&pool),
            "NodeClass Nodes Ready Age Weight* CPU* Memory*"
        );
        assert_eq!(
            columns(&claim),
            "Type Capacity Zone Node Ready Age ImageID* ID* NodePool* NodeClass* Drifted*"
        );
        assert_eq!(columns(&class), "Ready Age Role*");
    }

    #[test]
    fn resources_name_their_api() {
        use kube::Resource;
        assert_eq!(NodePool::api_version(&()), "karpenter.sh/v1");
        assert_eq!(NodePool::plural(&()), "nodepools");
        assert_eq!(EC2NodeClass::api_version(&()), "karpenter.k8s.aws/v1");
        assert_eq!(
            NodeClaim::url_path(&(), None),
            "/apis/karpenter.sh/v1/nodeclaims"
        );
    }
}
