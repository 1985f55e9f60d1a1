//! Launch templates, CreateFleet requests and tags.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetOnDemandAllocationStrategy, FleetType,
    LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataProtocolIpv6, LaunchTemplateInstanceMetadataTagsState,
    ResourceType, SpotAllocationStrategy,
};
use dovetail_api::ec2nodeclass::{AmiFamily, EC2NodeClass};
use dovetail_aws::launch::fleet::{
    self, FleetError, MAX_INSTANCE_TYPES, SubnetChoice, TemplateRef, subnet_per_zone,
};
use dovetail_aws::launch::tags::{self, TagError, TagInputs, claim_tags, launch_tags};
use dovetail_aws::launch::template::{LaunchInputs, LaunchTemplateOptions, TemplateError};
use dovetail_core::catalog::CapacityType;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;

fn class() -> EC2NodeClass {
    serde_norway::from_str(&support::fixture("ec2nodeclass.yaml")).unwrap()
}

fn class_tags() -> BTreeMap<String, String> {
    class().spec.tags
}

fn tags_of(class_tags: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, TagError> {
    launch_tags(TagInputs {
        cluster_name: "demo",
        node_pool: "general",
        node_class: "default",
        class_tags,
    })
}

fn options(class: &EC2NodeClass, capacity_type: CapacityType) -> LaunchTemplateOptions {
    let tags = tags_of(&class.spec.tags).unwrap();
    LaunchTemplateOptions::new(
        class,
        &LaunchInputs {
            region: "us-east-1",
            family: &AmiFamily::AL2023,
            image_id: "ami-0123456789abcdef0",
            user_data: "dXNlciBkYXRh",
            capacity_type,
            tags: &tags,
        },
    )
    .unwrap()
}

#[test]
fn launch_tags_overlay_the_class_tags_with_dovetails() {
    let tags = tags_of(&class_tags()).unwrap();
    let want: BTreeMap<String, String> = [
        ("cost-center", "1234"),
        ("eks:eks-cluster-name", "demo"),
        ("karpenter.k8s.aws/ec2nodeclass", "default"),
        ("karpenter.sh/nodepool", "general"),
        ("kubernetes.io/cluster/demo", "owned"),
        ("team", "platform"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(tags, want);
    let claim = claim_tags("demo", "general-x7k2p", "ip-10-0-1-17.ec2.internal").unwrap();
    assert_eq!(claim["Name"], "ip-10-0-1-17.ec2.internal");
    assert_eq!(claim["karpenter.sh/nodeclaim"], "general-x7k2p");
    assert_eq!(claim["eks:eks-cluster-name"], "demo");
}

#[test]
fn class_tags_cannot_take_over_dovetails_own() {
    for key in [
        "karpenter.sh/nodepool",
        "karpenter.sh/nodeclaim",
        "karpenter.k8s.aws/ec2nodeclass",
        "eks:eks-cluster-name",
        "kubernetes.io/cluster/other",
    ] {
        let t = BTreeMap::from([(key.to_string(), "x".to_string())]);
        let err = tags_of(&t).unwrap_err();
        assert_eq!(err, TagError::Restricted(key.to_string()));
        assert!(err.to_string().contains("remove it from spec.tags"));
    }
    // Not the cluster tag pattern, so allowed, as Karpenter allows it.
    assert!(!tags::is_restricted("kubernetes.io/cluster/"));
    assert!(!tags::is_restricted("kubernetes.io/cluster/-x"));
    let aws = BTreeMap::from([("AWS:thing".to_string(), "x".to_string())]);
    assert!(matches!(tags_of(&aws), Err(TagError::AwsPrefix(_))));
    let long = BTreeMap::from([("k".to_string(), "v".repeat(257))]);
    assert!(matches!(tags_of(&long), Err(TagError::ValueLength { .. })));
    let many: BTreeMap<String, String> = (0..45).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(tags_of(&many), Err(TagError::TooMany(51)));
    let bad_cluster = launch_tags(TagInputs {
        cluster_name: "demo\"; rm",
        node_pool: "general",
        node_class: "default",
        class_tags: &BTreeMap::new(),
    });
    assert!(matches!(bad_cluster, Err(TagError::ClusterName(_))));
}

#[test]
fn instances_are_found_by_both_tag_keys_and_the_cluster_name() {
    let filters = tags::instance_filters("demo");
    assert_eq!(
        filters[0],
        ("tag-key".into(), vec!["karpenter.sh/nodepool".into()])
    );
    assert_eq!(
        filters[1],
        (
            "tag-key".into(),
            vec!["karpenter.k8s.aws/ec2nodeclass".into()]
        )
    );
    assert_eq!(
        filters[2],
        ("tag:eks:eks-cluster-name".into(), vec!["demo".into()])
    );
    assert_eq!(filters[3].1.len(), 5);
    assert!(!filters[3].1.contains(&"terminated".to_string()));
}

#[test]
fn template_names_are_a_stable_hash_of_the_options() {
    let a = options(&class(), CapacityType::OnDemand);
    let name = a.name();
    assert!(name.starts_with("karpenter.k8s.aws/"));
    assert!(
        name["karpenter.k8s.aws/".len()..]
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    // The same in every process: pinned, so a change of encoding is seen
    // (and comes with a new hash version).
    assert_eq!(name, options(&class(), CapacityType::OnDemand).name());
    assert_eq!(name, PINNED_NAME, "launch template name encoding changed");
    // Security-group order does not matter; every option does.
    let mut reordered = class();
    reordered.status.as_mut().unwrap().security_groups.reverse();
    assert_eq!(options(&reordered, CapacityType::OnDemand).name(), name);
    let mut changed = Vec::new();
    let mut o = a.clone();
    o.image_id = "ami-0fedcba9876543210".into();
    changed.push(o);
    let mut o = a.clone();
    o.user_data = "b3RoZXI=".into();
    changed.push(o);
    let mut o = a.clone();
    o.tags.insert("team".into(), "data".into());
    changed.push(o);
    let mut o = a.clone();
    o.metadata.http_put_response_hop_limit = 2;
    changed.push(o);
    changed.push(options(&class(), CapacityType::Spot));
    let mut names: Vec<String> = changed.iter().map(LaunchTemplateOptions::name).collect();
    names.push(name);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6);
}

const PINNED_NAME: &str = "karpenter.k8s.aws/40733012796311194";

#[test]
fn template_data_carries_the_class_with_karpenters_defaults() {
    let o = options(&class(), CapacityType::Spot);
    assert_eq!(o.security_group_ids, ["sg-0a1", "sg-0b2"]);
    let data = o.request_data();
    assert_eq!(data.image_id(), Some("ami-0123456789abcdef0"));
    assert_eq!(data.user_data(), Some("dXNlciBkYXRh"));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("demo_1234567890")
    );
    assert_eq!(data.monitoring().and_then(|m| m.enabled()), Some(false));
    let m = data.metadata_options().unwrap();
    assert_eq!(
        m.http_endpoint(),
        Some(&LaunchTemplateInstanceMetadataEndpointState::Enabled)
    );
    assert_eq!(
        m.http_protocol_ipv6(),
        Some(&LaunchTemplateInstanceMetadataProtocolIpv6::Disabled)
    );
    assert_eq!(m.http_put_response_hop_limit(), Some(1));
    assert_eq!(
        m.http_tokens(),
        Some(&LaunchTemplateHttpTokensState::Required)
    );
    assert_eq!(
        m.instance_metadata_tags(),
        Some(&LaunchTemplateInstanceMetadataTagsState::Disabled)
    );
    let bdm = data.block_device_mappings();
    assert_eq!(bdm.len(), 1);
    assert_eq!(bdm[0].device_name(), Some("/dev/xvda"));
    let ebs = bdm[0].ebs().unwrap();
    assert_eq!((ebs.volume_size(), ebs.encrypted()), (Some(20), Some(true)));
    assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"));
    let nic = &data.network_interfaces()[0];
    assert_eq!(nic.device_index(), Some(0));
    assert_eq!(nic.groups(), ["sg-0a1", "sg-0b2"]);
    assert!(data.security_group_ids().is_empty());
    // Spot also tags its spot request.
    let resources: Vec<&ResourceType> = data
        .tag_specifications()
        .iter()
        .filter_map(|t| t.resource_type())
        .collect();
    assert_eq!(
        resources,
        [
            &ResourceType::NetworkInterface,
            &ResourceType::SpotInstancesRequest
        ]
    );
    assert_eq!(data.tag_specifications()[0].tags().len(), 6);
    let on_demand = options(&class(), CapacityType::OnDemand).request_data();
    assert_eq!(on_demand.tag_specifications().len(), 1);
    let spec = o.template_tag_specification(&o.name());
    assert_eq!(spec.resource_type(), Some(&ResourceType::LaunchTemplate));
    assert!(
        spec.tags()
            .iter()
            .any(|t| t.key() == Some("karpenter.k8s.aws/ec2nodeclass"))
    );
}

#[test]
fn prefix_count_and_connection_tracking_reach_the_primary_interface() {
    // Unset: EC2's defaults, nothing sent.
    let plain = options(&class(), CapacityType::OnDemand);
    assert_eq!(plain.ipv4_prefix_count, None);
    assert_eq!(plain.connection_tracking, None);
    let data = plain.request_data();
    let nic = &data.network_interfaces()[0];
    assert_eq!(nic.ipv4_prefix_count(), None);
    assert!(nic.connection_tracking_specification().is_none());

    let mut c = class();
    c.spec.ip_prefix_count = Some(2);
    c.spec.connection_tracking =
        Some(serde_norway::from_str("tcpEstablishedTimeout: 3600\nudpTimeout: 30\n").unwrap());
    let o = options(&c, CapacityType::OnDemand);
    let data = o.request_data();
    let nic = &data.network_interfaces()[0];
    assert_eq!(nic.ipv4_prefix_count(), Some(2));
    assert_eq!(nic.groups(), ["sg-0a1", "sg-0b2"]);
    let conntrack = nic.connection_tracking_specification().unwrap();
    assert_eq!(conntrack.tcp_established_timeout(), Some(3600));
    assert_eq!(conntrack.udp_stream_timeout(), None);
    assert_eq!(conntrack.udp_timeout(), Some(30));

    // Each is part of the template's identity.
    let mut prefixes_only = class();
    prefixes_only.spec.ip_prefix_count = Some(2);
    let mut other_timeout = c.clone();
    other_timeout
        .spec
        .connection_tracking
        .as_mut()
        .unwrap()
        .udp_timeout = Some(60);
    let mut names: Vec<String> = [&class(), &prefixes_only, &c, &other_timeout]
        .into_iter()
        .map(|c| options(c, CapacityType::OnDemand).name())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4);
}

#[test]
fn class_volumes_metadata_and_regions_shape_the_template() {
    let mut c = class();
    c.spec.block_device_mappings = serde_norway::from_str(
        r#"
- deviceName: /dev/xvda
  rootVolume: true
  ebs: {volumeSize: 1500Mi, volumeType: io2, iops: 4000, encrypted: false, deleteOnTermination: true}
- deviceName: /dev/xvdb
  ebs: {snapshotID: snap-0123, kmsKeyID: arn:aws:kms:us-east-1:111122223333:key/k}
"#,
    )
    .unwrap();
    c.spec.metadata_options = Some(
        serde_norway::from_str(
            "{httpEndpoint: disabled, httpPutResponseHopLimit: 2, httpTokens: optional}",
        )
        .unwrap(),
    );
    c.spec.detailed_monitoring = Some(true);
    c.spec.associate_public_ip_address = Some(false);
    let data = options(&c, CapacityType::OnDemand).request_data();
    let bdm = data.block_device_mappings();
    let root = bdm[0].ebs().unwrap();
    // 1500 MiB rounds up to 2 GiB.
    assert_eq!(root.volume_size(), Some(2));
    assert_eq!(
        (root.iops(), root.encrypted(), root.delete_on_termination()),
        (Some(4000), Some(false), Some(true))
    );
    assert_eq!(root.volume_type().map(|t| t.as_str()), Some("io2"));
    let second = bdm[1].ebs().unwrap();
    assert_eq!(
        (second.volume_size(), second.snapshot_id()),
        (None, Some("snap-0123"))
    );
    let m = data.metadata_options().unwrap();
    assert_eq!(
        m.http_endpoint(),
        Some(&LaunchTemplateInstanceMetadataEndpointState::Disabled)
    );
    assert_eq!(
        m.http_tokens(),
        Some(&LaunchTemplateHttpTokensState::Optional)
    );
    // IPv6 keeps the CRD default when not given.
    assert_eq!(
        m.http_protocol_ipv6(),
        Some(&LaunchTemplateInstanceMetadataProtocolIpv6::Disabled)
    );
    assert_eq!(m.http_put_response_hop_limit(), Some(2));
    assert_eq!(data.monitoring().and_then(|m| m.enabled()), Some(true));
    assert_eq!(
        data.network_interfaces()[0].associate_public_ip_address(),
        Some(false)
    );

    // No IPv6 metadata setting in the isolated regions.
    let tags = tags_of(&class_tags()).unwrap();
    let iso = LaunchTemplateOptions::new(
        &class(),
        &LaunchInputs {
            region: "us-iso-east-1",
            family: &AmiFamily::Bottlerocket,
            image_id: "ami-1",
            user_data: "",
            capacity_type: CapacityType::OnDemand,
            tags: &tags,
        },
    )
    .unwrap();
    let data = iso.request_data();
    assert_eq!(data.metadata_options().unwrap().http_protocol_ipv6(), None);
    // Bottlerocket's two default volumes.
    let devices: Vec<(Option<&str>, Option<i32>)> = data
        .block_device_mappings()
        .iter()
        .map(|b| (b.device_name(), b.ebs().and_then(|e| e.volume_size())))
        .collect();
    assert_eq!(
        devices,
        [(Some("/dev/xvda"), Some(4)), (Some("/dev/xvdb"), Some(20))]
    );
}

#[test]
fn unresolved_classes_and_bad_volumes_are_refused_by_name() {
    let tags = BTreeMap::new();
    let inputs = LaunchInputs {
        region: "us-east-1",
        family: &AmiFamily::AL2023,
        image_id: "ami-1",
        user_data: "",
        capacity_type: CapacityType::OnDemand,
        tags: &tags,
    };
    let mut c = class();
    c.status.as_mut().unwrap().instance_profile = None;
    assert_eq!(
        LaunchTemplateOptions::new(&c, &inputs).unwrap_err(),
        TemplateError::NoInstanceProfile("default".into())
    );
    let mut c = class();
    c.status.as_mut().unwrap().security_groups.clear();
    assert_eq!(
        LaunchTemplateOptions::new(&c, &inputs)
            .unwrap_err()
            .to_string(),
        "EC2NodeClass default has no resolved security group in its status yet"
    );
    let mut c = class();
    c.spec.block_device_mappings =
        serde_norway::from_str("[{deviceName: /dev/xvda, ebs: {volumeSize: lots}}]").unwrap();
    let err = LaunchTemplateOptions::new(&c, &inputs).unwrap_err();
    assert!(
        matches!(err, TemplateError::BlockDevice { index: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("volumeSize `lots`"), "{err}");
}

fn offering(t: &str, zone: &str, capacity_type: CapacityType, price: f64) -> OfferingRef {
    OfferingRef {
        instance_type: Sym::new(t),
        zone: Sym::new(zone),
        capacity_type,
        price,
    }
}

fn subnets() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("us-east-1a".to_string(), "subnet-0aa".to_string()),
        ("us-east-1b".to_string(), "subnet-0bb".to_string()),
    ])
}

fn one_template(_: Sym) -> Option<TemplateRef> {
    Some(TemplateRef {
        name: "karpenter.k8s.aws/1".into(),
        image_id: "ami-1".into(),
    })
}

#[test]
fn one_subnet_per_zone_with_the_most_free_addresses() {
    let s = |id: &str, zone: &str, ips| SubnetChoice {
        id: id.into(),
        zone: zone.into(),
        available_ips: ips,
    };
    let chosen = subnet_per_zone(&[
        s("subnet-3", "us-east-1a", 100),
        s("subnet-1", "us-east-1a", 250),
        s("subnet-2", "us-east-1a", 250),
        s("subnet-9", "us-east-1b", 4),
    ]);
    assert_eq!(
        chosen,
        BTreeMap::from([
            ("us-east-1a".to_string(), "subnet-1".to_string()),
            ("us-east-1b".to_string(), "subnet-9".to_string()),
        ])
    );
}

#[test]
fn fleets_buy_the_policys_first_capacity_type_in_its_order() {
    use CapacityType::{OnDemand, Spot};
    let launch = [
        offering("m5.large", "us-east-1a", Spot, 0.04),
        offering("m5.large", "us-east-1c", Spot, 0.035),
        offering("c5.large", "us-east-1b", Spot, 0.05),
        offering("m5.large", "us-east-1a", OnDemand, 0.096),
        offering("m5.large", "us-east-1a", Spot, 0.04),
    ];
    let plan = fleet::plan(&launch, &subnets(), one_template).unwrap();
    assert_eq!(plan.capacity_type, Spot);
    let overrides: Vec<(&str, &str, &str)> = plan
        .overrides()
        .map(|o| {
            (
                o.instance_type.as_str(),
                o.zone.as_str(),
                o.subnet_id.as_str(),
            )
        })
        .collect();
    // No subnet in us-east-1c; on-demand and the repeat left out.
    assert_eq!(
        overrides,
        [
            ("m5.large", "us-east-1a", "subnet-0aa"),
            ("c5.large", "us-east-1b", "subnet-0bb")
        ]
    );
    let input = plan.request(&tags_of(&class_tags()).unwrap(), Some("ctx-1"));
    assert_eq!(input.r#type(), Some(&FleetType::Instant));
    let target = input.target_capacity_specification().unwrap();
    assert_eq!(target.total_target_capacity(), Some(1));
    assert_eq!(
        target.default_target_capacity_type(),
        Some(&DefaultTargetCapacityType::Spot)
    );
    assert_eq!(
        input.spot_options().and_then(|s| s.allocation_strategy()),
        Some(&SpotAllocationStrategy::PriceCapacityOptimized)
    );
    assert!(input.on_demand_options().is_none());
    assert_eq!(input.context(), Some("ctx-1"));
    let config = &input.launch_template_configs()[0];
    let spec = config.launch_template_specification().unwrap();
    assert_eq!(spec.launch_template_name(), Some("karpenter.k8s.aws/1"));
    assert_eq!(spec.version(), Some("$Latest"));
    assert_eq!(config.overrides()[0].image_id(), Some("ami-1"));
    assert_eq!(
        config.overrides()[1].availability_zone(),
        Some("us-east-1b")
    );
    let tagged: Vec<&ResourceType> = input
        .tag_specifications()
        .iter()
        .filter_map(|t| t.resource_type())
        .collect();
    assert_eq!(
        tagged,
        [
            &ResourceType::Instance,
            &ResourceType::Volume,
            &ResourceType::Fleet
        ]
    );

    let od = fleet::plan(&launch[3..], &subnets(), one_template).unwrap();
    let input = od.request(&BTreeMap::new(), None);
    assert_eq!(
        input
            .on_demand_options()
            .and_then(|o| o.allocation_strategy()),
        Some(&FleetOnDemandAllocationStrategy::LowestPrice)
    );
    assert!(input.spot_options().is_none());
    assert_eq!(
        input
            .target_capacity_specification()
            .unwrap()
            .default_target_capacity_type(),
        Some(&DefaultTargetCapacityType::OnDemand)
    );
}

#[test]
fn fleets_hold_at_most_sixty_types_grouped_by_template() {
    let launch: Vec<OfferingRef> = (0..80)
        .flat_map(|i| {
            let t = format!("m5.type{i:02}");
            [
                offering(&t, "us-east-1a", CapacityType::OnDemand, 1.0 + i as f64),
                offering(&t, "us-east-1b", CapacityType::OnDemand, 1.0 + i as f64),
            ]
        })
        .collect();
    // Even types launch from one template, odd from another.
    let plan = fleet::plan(&launch, &subnets(), |t| {
        let n: u32 = t.as_str()["m5.type".len()..].parse().unwrap();
        Some(TemplateRef {
            name: format!("karpenter.k8s.aws/{}", n % 2),
            image_id: "ami-1".into(),
        })
    })
    .unwrap();
    let types = plan.instance_types();
    assert_eq!(types.len(), MAX_INSTANCE_TYPES);
    assert!(types.contains(&Sym::new("m5.type59")));
    assert!(!types.contains(&Sym::new("m5.type60")));
    assert_eq!(plan.configs.len(), 2);
    assert_eq!(plan.configs["karpenter.k8s.aws/0"].len(), 60);
    let first: Vec<&str> = plan.configs["karpenter.k8s.aws/1"][..2]
        .iter()
        .map(|o| o.instance_type.as_str())
        .collect();
    assert_eq!(first, ["m5.type01", "m5.type01"]);
}

#[test]
fn fleets_that_cannot_be_asked_for_say_why() {
    assert_eq!(
        fleet::plan(&[], &subnets(), one_template),
        Err(FleetError::NoOfferings)
    );
    let far = [offering("m5.large", "us-east-1f", CapacityType::Spot, 0.04)];
    let err = fleet::plan(&far, &subnets(), one_template).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no offering of spot capacity is in a zone with a subnet (zones with subnets: us-east-1a, us-east-1b)"
    );
    let reserved = [offering(
        "m5.large",
        "us-east-1a",
        CapacityType::Reserved,
        0.0,
    )];
    assert_eq!(
        fleet::plan(&reserved, &subnets(), one_template),
        Err(FleetError::Reserved)
    );
    let no_template = [offering("m5.large", "us-east-1a", CapacityType::Spot, 0.04)];
    assert!(fleet::plan(&no_template, &subnets(), |_| None).is_err());
}

/// Tag values go onto the wire form-encoded: whatever they hold, EC2
/// receives exactly the value.
#[tokio::test]
async fn hostile_tag_values_reach_ec2_intact() {
    let hostile = "a&b=c\"d'\n--//\u{0}%20<x>&Action=TerminateInstances";
    let class_tags = BTreeMap::from([("team".to_string(), hostile.to_string())]);
    let tags = tags_of(&class_tags).unwrap();
    let plan = fleet::plan(
        &[offering("m5.large", "us-east-1a", CapacityType::Spot, 0.04)],
        &subnets(),
        one_template,
    )
    .unwrap();
    let input = plan.request(&tags, None);
    let (client, captured) = support::ec2_capturing(support::fixture("create-fleet.xml"));
    let out = client
        .create_fleet()
        .set_type(input.r#type().cloned())
        .set_launch_template_configs(Some(input.launch_template_configs().to_vec()))
        .set_target_capacity_specification(input.target_capacity_specification().cloned())
        .set_spot_options(input.spot_options().cloned())
        .set_tag_specifications(Some(input.tag_specifications().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.instances()[0].instance_ids(), ["i-0a1b2c3d4e5f60718"]);
    let body = captured
        .lock()
        .unwrap()
        .clone()
        .expect("a request was sent");
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("Action"), Some("CreateFleet"));
    let team_value = form
        .iter()
        .find(|(k, v)| {
            k.starts_with("TagSpecification.1.Tag.") && k.ends_with(".Key") && v == "team"
        })
        .map(|(k, _)| k.replace(".Key", ".Value"))
        .unwrap();
    assert_eq!(get(&team_value), Some(hostile));
    assert_eq!(form.iter().filter(|(k, _)| k == "Action").count(), 1);
}
