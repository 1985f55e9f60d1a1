//! User data for AL2023 (nodeadm NodeConfig in MIME) and Bottlerocket
//! (TOML), merged with the user's own, with hostile values.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use dovetail_api::ec2nodeclass::{AmiFamily, KubeletConfiguration};
use dovetail_aws::user_data::mime::{self, MimeError, Part};
use dovetail_aws::user_data::{
    self, Bootstrap, MAX_BYTES, NodeTaint, UserDataError, node_labels, resolved_kubelet,
};
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::{Taint, TaintEffect};
use dovetail_core::sym::Sym;

const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvakNDQWVhZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFERXdwcmRXSmwKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

fn taint(key: &str, value: &str, effect: &str) -> NodeTaint {
    NodeTaint {
        key: key.into(),
        value: (!value.is_empty()).then(|| value.into()),
        effect: effect.into(),
    }
}

fn bootstrap(family: &AmiFamily) -> Bootstrap {
    let catalog = dovetail_core::catalog::aws_catalog();
    let m5 = catalog.get("m5.large").unwrap();
    let claim_labels = vec![
        (Sym::new("karpenter.sh/nodepool"), Sym::new("general")),
        (Sym::new("team"), Sym::new("platform")),
        (
            Sym::new("node-restriction.kubernetes.io/pool"),
            Sym::new("a"),
        ),
        (
            Sym::new("node.kubernetes.io/instance-type"),
            Sym::new("m5.large"),
        ),
    ];
    Bootstrap {
        cluster_name: "demo".into(),
        cluster_endpoint: "https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com".into(),
        ca_bundle: Some(CA.into()),
        cluster_cidr: Some("10.100.0.0/16".into()),
        kubelet: resolved_kubelet(None, m5.own_sizing(), Some("10.100.0.10")),
        labels: node_labels(&claim_labels, CapacityType::Spot, family),
        taints: vec![NodeTaint::from(&Taint::new(
            "example.com/dedicated",
            "gpu",
            TaintEffect::NoSchedule,
        ))],
        startup_taints: vec![taint("example.com/agent-not-ready", "", "NoExecute")],
        instance_store_raid0: false,
        custom: None,
    }
}

fn decode(user_data: &str) -> String {
    String::from_utf8(BASE64.decode(user_data).unwrap()).unwrap()
}

fn al2023(b: &Bootstrap) -> Result<Vec<Part>, UserDataError> {
    let text = decode(&user_data::user_data(&AmiFamily::AL2023, b)?);
    // Dovetail writes no carriage return; a user's content keeps its own.
    if !b.custom.as_deref().unwrap_or_default().contains('\r') {
        assert!(!text.contains('\r'), "no carriage returns");
    }
    Ok(mime::parse(&text).expect("Dovetail's MIME parses"))
}

/// The NodeConfig part, parsed.
fn node_config(parts: &[Part]) -> serde_norway::Value {
    let last = parts.last().unwrap();
    assert_eq!(last.content_type(), Some("application/node.eks.aws"));
    let body = last
        .content
        .strip_prefix("# Dovetail Generated NodeConfig\n")
        .expect("the NodeConfig is marked as generated");
    serde_norway::from_str(body).unwrap()
}

fn get<'a>(v: &'a serde_norway::Value, path: &str) -> &'a serde_norway::Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn bottlerocket(b: &Bootstrap) -> Result<toml::Table, UserDataError> {
    let text = decode(&user_data::user_data(&AmiFamily::Bottlerocket, b)?);
    Ok(text.parse().expect("Dovetail's TOML parses"))
}

fn k8s(doc: &toml::Table) -> &toml::Table {
    doc["settings"]["kubernetes"].as_table().unwrap()
}

#[test]
fn al2023_nodes_get_a_node_config_with_cluster_kubelet_labels_and_taints() {
    let parts = al2023(&bootstrap(&AmiFamily::AL2023)).unwrap();
    assert_eq!(parts.len(), 1);
    let c = node_config(&parts);
    assert_eq!(
        get(&c, "apiVersion").as_str(),
        Some("node.eks.aws/v1alpha1")
    );
    assert_eq!(get(&c, "kind").as_str(), Some("NodeConfig"));
    assert_eq!(get(&c, "spec.cluster.name").as_str(), Some("demo"));
    assert_eq!(
        get(&c, "spec.cluster.apiServerEndpoint").as_str(),
        Some("https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com")
    );
    assert_eq!(
        get(&c, "spec.cluster.certificateAuthority").as_str(),
        Some(CA)
    );
    assert_eq!(get(&c, "spec.cluster.cidr").as_str(), Some("10.100.0.0/16"));
    let kubelet = get(&c, "spec.kubelet.config");
    assert_eq!(kubelet["maxPods"].as_i64(), Some(29));
    assert_eq!(kubelet["clusterDNS"][0].as_str(), Some("10.100.0.10"));
    assert_eq!(kubelet["kubeReserved"]["cpu"].as_str(), Some("70m"));
    assert_eq!(kubelet["kubeReserved"]["memory"].as_str(), Some("574Mi"));
    assert_eq!(
        kubelet["kubeReserved"]["ephemeral-storage"].as_str(),
        Some("1Gi")
    );
    let taints: Vec<(String, Option<String>, String)> = kubelet["registerWithTaints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                t.get("value").and_then(|v| v.as_str()).map(str::to_string),
                t["effect"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        taints,
        [
            (
                "example.com/dedicated".into(),
                Some("gpu".into()),
                "NoSchedule".into()
            ),
            (
                "example.com/agent-not-ready".into(),
                None,
                "NoExecute".into()
            ),
            ("karpenter.sh/unregistered".into(), None, "NoExecute".into()),
        ]
    );
    // Sorted labels in one flag; the node authorizer's domain left out.
    assert_eq!(
        get(&c, "spec.kubelet.flags")[0].as_str(),
        Some(
            "--node-labels=\"karpenter.sh/capacity-type=spot,karpenter.sh/do-not-sync-taints=true,\
             karpenter.sh/nodepool=general,node.kubernetes.io/instance-type=m5.large,team=platform\""
        )
    );
}

#[test]
fn the_users_script_yaml_or_mime_comes_first() {
    let mut b = bootstrap(&AmiFamily::AL2023);
    b.custom = Some("#!/bin/bash\necho hello > /etc/motd\n".into());
    let parts = al2023(&b).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].content_type(),
        Some("text/x-shellscript; charset=\"us-ascii\"")
    );
    assert_eq!(parts[0].content, "#!/bin/bash\necho hello > /etc/motd");
    node_config(&parts);

    b.custom = Some(
        "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      shutdownGracePeriod: 30s\n"
            .into(),
    );
    let parts = al2023(&b).unwrap();
    assert_eq!(parts[0].content_type(), Some("application/node.eks.aws"));
    assert!(parts[0].content.contains("shutdownGracePeriod: 30s"));

    b.custom = Some(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"==BOUNDARY==\"\r\n\r\n\
         --==BOUNDARY==\r\nContent-Type: text/x-shellscript\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         #!/bin/sh\r\necho one\r\n--==BOUNDARY==\r\nContent-Type: text/cloud-config\r\n\r\n\
         packages: [jq]\r\n--==BOUNDARY==--\r\n"
            .into(),
    );
    let parts = al2023(&b).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts[0].headers,
        [
            ("Content-Type".to_string(), "text/x-shellscript".to_string()),
            ("Content-Transfer-Encoding".to_string(), "7bit".to_string()),
        ]
    );
    assert_eq!(parts[0].content, "#!/bin/sh\r\necho one");
    assert_eq!(parts[1].content_type(), Some("text/cloud-config"));
    node_config(&parts);
}

#[test]
fn user_content_holding_the_boundary_cannot_split_or_add_parts() {
    let mut b = bootstrap(&AmiFamily::AL2023);
    let script = "#!/bin/bash\necho '\n--//\nContent-Type: application/node.eks.aws\n\nspec: {}\n--//--\n'\necho --//1 done";
    b.custom = Some(script.into());
    let text = decode(&user_data::user_data(&AmiFamily::AL2023, &b).unwrap());
    assert!(text.contains("boundary=\"//2\""), "{text}");
    let parts = mime::parse(&text).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].content, script.trim());
    node_config(&parts);
}

#[test]
fn hostile_labels_and_taints_are_refused_with_the_offender_named() {
    let values = [
        "a\"b",
        "a,b=c",
        "x\ny",
        "${HOME}",
        "a: b",
        "--//",
        "v'); rm -rf /",
        "[settings]",
        "a b",
        "é",
        &"x".repeat(64),
    ];
    for family in [AmiFamily::AL2023, AmiFamily::Bottlerocket] {
        for v in values {
            let mut b = bootstrap(&family);
            b.labels.insert("team".into(), v.into());
            let err = user_data::user_data(&family, &b).unwrap_err();
            assert_eq!(
                err,
                UserDataError::LabelValue {
                    key: "team".into(),
                    value: v.into()
                },
                "{v:?}"
            );
            assert!(err.to_string().starts_with("label team: value"), "{err}");

            let mut b = bootstrap(&family);
            b.taints.push(taint("example.com/x", v, "NoSchedule"));
            assert!(
                matches!(
                    user_data::user_data(&family, &b),
                    Err(UserDataError::TaintValue { .. })
                ),
                "{v:?}"
            );
        }
        for k in [
            "bad key",
            "a/b/c",
            "key\n",
            "\"quoted\"",
            "x=y",
            "Example.com/x",
            "/x",
            "",
        ] {
            let mut b = bootstrap(&family);
            b.labels.insert(k.into(), "v".into());
            assert!(
                matches!(
                    user_data::user_data(&family, &b),
                    Err(UserDataError::LabelKey { .. })
                ),
                "{k:?}"
            );
            let mut b = bootstrap(&family);
            b.startup_taints.push(taint(k, "", "NoExecute"));
            assert!(
                matches!(
                    user_data::user_data(&family, &b),
                    Err(UserDataError::TaintKey { .. })
                ),
                "{k:?}"
            );
        }
        let mut b = bootstrap(&family);
        b.taints
            .push(taint("example.com/x", "", "NoExecute\nkey: evil"));
        assert!(matches!(
            user_data::user_data(&family, &b),
            Err(UserDataError::TaintEffect { .. })
        ));
    }
}

#[test]
fn values_yaml_or_toml_would_retype_stay_strings() {
    let tricky = [
        "true", "null", "yes", "NO", "1.5", "1e3", "0x1F", "0o17", "08", "on",
    ];
    let mut b = bootstrap(&AmiFamily::AL2023);
    for (i, v) in tricky.iter().enumerate() {
        b.taints
            .push(taint(&format!("example.com/t{i}"), v, "NoSchedule"));
        b.labels.insert(format!("example.com/l{i}"), v.to_string());
    }
    let c = node_config(&al2023(&b).unwrap());
    let registered = get(&c, "spec.kubelet.config.registerWithTaints")
        .as_sequence()
        .unwrap();
    for (i, v) in tricky.iter().enumerate() {
        let t = registered
            .iter()
            .find(|t| t["key"].as_str() == Some(&format!("example.com/t{i}")))
            .unwrap();
        assert_eq!(
            t["value"].as_str(),
            Some(*v),
            "taint value {v} kept as a string"
        );
    }
    let flag = get(&c, "spec.kubelet.flags")[0].as_str().unwrap();
    assert!(flag.contains("example.com/l0=true,"));

    let mut b = bootstrap(&AmiFamily::Bottlerocket);
    for (i, v) in tricky.iter().enumerate() {
        b.taints
            .push(taint(&format!("example.com/t{i}"), v, "NoSchedule"));
        b.labels.insert(format!("example.com/l{i}"), v.to_string());
    }
    let doc = bottlerocket(&b).unwrap();
    let k = k8s(&doc);
    for (i, v) in tricky.iter().enumerate() {
        assert_eq!(
            k["node-labels"][&format!("example.com/l{i}")].as_str(),
            Some(*v)
        );
        assert_eq!(
            k["node-taints"][&format!("example.com/t{i}")][0].as_str(),
            Some(format!("{v}:NoSchedule").as_str())
        );
    }
}

#[test]
fn hostile_settings_are_escaped_or_refused() {
    for family in [AmiFamily::AL2023, AmiFamily::Bottlerocket] {
        let mut b = bootstrap(&family);
        let endpoint = "https://x.example.com/\"]\n";
        b.cluster_endpoint = endpoint.into();
        assert!(matches!(
            user_data::user_data(&family, &b),
            Err(UserDataError::Setting {
                field: "cluster endpoint",
                ..
            })
        ));
        let mut b = bootstrap(&family);
        let endpoint = "https://x.example.com/\"] # ' : {} [[settings]] \"\"\" --//";
        b.cluster_endpoint = endpoint.into();
        if family == AmiFamily::AL2023 {
            let c = node_config(&al2023(&b).unwrap());
            assert_eq!(
                get(&c, "spec.cluster.apiServerEndpoint").as_str(),
                Some(endpoint)
            );
        } else {
            let doc = bottlerocket(&b).unwrap();
            assert_eq!(k8s(&doc)["api-server"].as_str(), Some(endpoint));
        }
        let mut b = bootstrap(&family);
        b.ca_bundle = Some("not base64!".into());
        assert_eq!(
            user_data::user_data(&family, &b),
            Err(UserDataError::CaBundle)
        );
    }
    let mut b = bootstrap(&AmiFamily::AL2023);
    b.cluster_cidr = None;
    assert_eq!(
        user_data::user_data(&AmiFamily::AL2023, &b),
        Err(UserDataError::NoClusterCidr)
    );
}

#[test]
fn bottlerocket_keeps_the_users_settings_and_sets_dovetails() {
    let mut b = bootstrap(&AmiFamily::Bottlerocket);
    b.custom = Some(
        r#"
[settings.kubernetes]
cluster-name = "someone-else"
max-pods = 5
node-taints = { "user.example/t" = ["x:NoSchedule"] }

[settings.kubernetes.node-labels]
team = "user"
"user.example/keep" = "yes"

[settings.host-containers.admin]
enabled = true
note = "quotes \" and\nnewlines ]] \"\"\" stay"
"#
        .into(),
    );
    let doc = bottlerocket(&b).unwrap();
    let k = k8s(&doc);
    assert_eq!(k["cluster-name"].as_str(), Some("demo"));
    assert_eq!(
        k["api-server"].as_str(),
        Some("https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com")
    );
    assert_eq!(k["cluster-certificate"].as_str(), Some(CA));
    assert_eq!(k["cluster-dns-ip"].as_str(), Some("10.100.0.10"));
    assert_eq!(k["max-pods"].as_integer(), Some(29));
    assert_eq!(k["kube-reserved"]["memory"].as_str(), Some("574Mi"));
    // Labels merge, Dovetail's winning; taints are Dovetail's only.
    assert_eq!(k["node-labels"]["team"].as_str(), Some("platform"));
    assert_eq!(k["node-labels"]["user.example/keep"].as_str(), Some("yes"));
    assert_eq!(
        k["node-labels"]["karpenter.sh/capacity-type"].as_str(),
        Some("spot")
    );
    assert!(
        k["node-labels"]
            .get("node-restriction.kubernetes.io/pool")
            .is_none()
    );
    let taints = k["node-taints"].as_table().unwrap();
    assert!(taints.get("user.example/t").is_none());
    assert_eq!(
        taints["karpenter.sh/unregistered"][0].as_str(),
        Some(":NoExecute")
    );
    assert_eq!(
        taints["example.com/dedicated"][0].as_str(),
        Some("gpu:NoSchedule")
    );
    let admin = &doc["settings"]["host-containers"]["admin"];
    assert_eq!(admin["enabled"].as_bool(), Some(true));
    assert_eq!(
        admin["note"].as_str(),
        Some("quotes \" and\nnewlines ]] \"\"\" stay")
    );

    b.custom = Some("[settings\nbroken".into());
    assert!(matches!(
        user_data::user_data(&AmiFamily::Bottlerocket, &b),
        Err(UserDataError::BottlerocketToml(_))
    ));
    b.custom = Some("[settings]\nkubernetes = 3".into());
    let err = user_data::user_data(&AmiFamily::Bottlerocket, &b).unwrap_err();
    assert!(
        err.to_string().contains("`kubernetes` must be a table"),
        "{err}"
    );
}

#[test]
fn bottlerocket_carries_the_class_kubelet_settings_and_raid0() {
    let catalog = dovetail_core::catalog::aws_catalog();
    let class: KubeletConfiguration = serde_norway::from_str(
        r#"
clusterDNS: [169.254.20.10]
evictionHard: {memory.available: 5%}
evictionSoft: {memory.available: 10%}
evictionSoftGracePeriod: {memory.available: 1m30s}
evictionMaxPodGracePeriod: 60
imageGCHighThresholdPercent: 85
imageGCLowThresholdPercent: 80
cpuCFSQuota: false
"#,
    )
    .unwrap();
    let mut b = bootstrap(&AmiFamily::Bottlerocket);
    b.kubelet = resolved_kubelet(
        Some(&class),
        catalog.get("m5.large").unwrap().own_sizing(),
        Some("10.100.0.10"),
    );
    b.instance_store_raid0 = true;
    let doc = bottlerocket(&b).unwrap();
    let k = k8s(&doc);
    assert_eq!(k["cluster-dns-ip"].as_str(), Some("169.254.20.10"));
    assert_eq!(k["eviction-hard"]["memory.available"].as_str(), Some("5%"));
    assert_eq!(
        k["eviction-soft-grace-period"]["memory.available"].as_str(),
        Some("1m30s")
    );
    assert_eq!(k["eviction-max-pod-grace-period"].as_integer(), Some(60));
    assert_eq!(k["image-gc-high-threshold-percent"].as_str(), Some("85"));
    assert_eq!(k["image-gc-low-threshold-percent"].as_str(), Some("80"));
    assert_eq!(k["cpu-cfs-quota-enforced"].as_bool(), Some(false));
    let mount = &doc["settings"]["bootstrap-commands"]["000-mount-instance-storage"];
    assert_eq!(mount["commands"][0][2].as_str(), Some("init"));
    assert_eq!(mount["mode"].as_str(), Some("always"));
    assert_eq!(mount["essential"].as_bool(), Some(true));

    let mut b = bootstrap(&AmiFamily::AL2023);
    b.instance_store_raid0 = true;
    let c = node_config(&al2023(&b).unwrap());
    assert_eq!(
        get(&c, "spec.instance.localStorage.strategy").as_str(),
        Some("RAID0")
    );
}

#[test]
fn kubelet_settings_are_resolved_for_the_instance_type() {
    let catalog = dovetail_core::catalog::aws_catalog();
    let m5 = catalog.get("m5.large").unwrap();
    let k = resolved_kubelet(None, m5.own_sizing(), Some("10.100.0.10"));
    assert_eq!(k.max_pods, Some(29));
    assert_eq!(
        k.kube_reserved,
        BTreeMap::from([
            ("cpu".to_string(), "70m".to_string()),
            ("ephemeral-storage".to_string(), "1Gi".to_string()),
            ("memory".to_string(), "574Mi".to_string()),
        ])
    );
    assert!(k.system_reserved.is_empty());
    assert_eq!(k.cluster_dns, ["10.100.0.10"]);
    let class = KubeletConfiguration {
        cluster_dns: vec!["169.254.20.10".into()],
        ..Default::default()
    };
    assert_eq!(
        resolved_kubelet(Some(&class), m5.own_sizing(), Some("10.100.0.10")).cluster_dns,
        ["169.254.20.10"]
    );
    assert!(
        resolved_kubelet(None, m5.own_sizing(), None)
            .cluster_dns
            .is_empty()
    );
}

#[test]
fn labels_gain_capacity_type_and_do_not_sync_taints() {
    let claim = [(Sym::new("team"), Sym::new("a"))];
    let l = node_labels(&claim, CapacityType::OnDemand, &AmiFamily::AL2023);
    assert_eq!(l["karpenter.sh/capacity-type"], "on-demand");
    assert_eq!(l["karpenter.sh/do-not-sync-taints"], "true");
    let custom = node_labels(&claim, CapacityType::Spot, &AmiFamily::Custom);
    assert!(!custom.contains_key("karpenter.sh/do-not-sync-taints"));
}

#[test]
fn custom_user_data_is_passed_as_written_and_sizes_are_capped() {
    let mut b = bootstrap(&AmiFamily::Custom);
    b.custom = Some("#!/bin/bash\n/etc/eks/bootstrap.sh demo \"$@\"\n".into());
    let out = user_data::user_data(&AmiFamily::Custom, &b).unwrap();
    assert_eq!(
        decode(&out),
        "#!/bin/bash\n/etc/eks/bootstrap.sh demo \"$@\"\n"
    );
    b.custom = Some("#".repeat(MAX_BYTES + 1));
    assert_eq!(
        user_data::user_data(&AmiFamily::Custom, &b),
        Err(UserDataError::TooLarge(MAX_BYTES + 1))
    );
    let mut b = bootstrap(&AmiFamily::AL2023);
    b.custom = Some(format!("#!/bin/bash\n{}", "#".repeat(MAX_BYTES)));
    assert!(matches!(
        user_data::user_data(&AmiFamily::AL2023, &b),
        Err(UserDataError::TooLarge(_))
    ));
    let err = user_data::user_data(&AmiFamily::AL2, &bootstrap(&AmiFamily::AL2)).unwrap_err();
    assert_eq!(err, UserDataError::UnsupportedFamily("AL2".into()));
}

#[test]
fn broken_user_mime_is_refused_with_the_fix() {
    let mut b = bootstrap(&AmiFamily::AL2023);
    for (text, want) in [
        (
            "MIME-Version: 1.0\nContent-Type: text/plain\n\nhello",
            MimeError::NotMultipart("text/plain".into()),
        ),
        (
            "Content-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n",
            MimeError::NoBoundary,
        ),
        (
            "Content-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n",
            MimeError::Unterminated("x".into()),
        ),
        (
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x",
            MimeError::NoBody,
        ),
    ] {
        b.custom = Some(text.into());
        assert_eq!(
            user_data::user_data(&AmiFamily::AL2023, &b),
            Err(UserDataError::Mime(want)),
            "{text}"
        );
    }
}

#[test]
fn mime_round_trips_parts_and_keeps_header_values_on_one_line() {
    let parts = vec![
        Part::new("text/x-shellscript", "echo a\n"),
        Part {
            headers: vec![("Content-Type".into(), "text/plain\nX-Injected: yes".into())],
            content: "b".into(),
        },
    ];
    let text = mime::serialize(&parts);
    let back = mime::parse(&text).unwrap();
    assert_eq!(back[0], parts[0]);
    assert_eq!(
        back[1].headers,
        [(
            "Content-Type".to_string(),
            "text/plain X-Injected: yes".to_string()
        )]
    );
    assert_eq!(back.len(), 2);
}
