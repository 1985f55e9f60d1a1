//! EC2NodeClass resolution against the AWS test server: subnets, security
//! groups, AMIs (by ID, tag and alias) and instance profiles, with the
//! conditions a user reads on the class.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use dovetail_api::condition::ConditionStatus;
use dovetail_api::ec2nodeclass::{EC2NodeClass, EC2NodeClassStatus};
use dovetail_aws::clients::Clients;
use dovetail_aws::nodeclass::{self, ClusterInfo, ConditionType, EventKind, Resolution};
use dovetail_moto::Moto;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const REGION: &str = "us-east-1";

/// One server for the file: every test makes its own uniquely named
/// resources, so they do not see each other's.
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

fn clients() -> Clients {
    Clients::local(moto().endpoint(), REGION)
}

fn cluster() -> ClusterInfo {
    ClusterInfo {
        name: "demo".into(),
        kubernetes_version: "1.33".into(),
        region: REGION.into(),
    }
}

fn now() -> Time {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    Time(Timestamp::from_second(seconds as i64).expect("a valid time"))
}

fn class(name: &str, spec: serde_json::Value) -> EC2NodeClass {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": spec,
    }))
    .expect("a valid EC2NodeClass")
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in pairs {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

async fn vpc(clients: &Clients, cidr: &str) -> String {
    clients
        .ec2
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .expect("CreateVpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("a VPC ID")
}

async fn subnet(
    clients: &Clients,
    vpc: &str,
    cidr: &str,
    zone: &str,
    pairs: &[(&str, &str)],
) -> String {
    let mut call = clients
        .ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(zone);
    if !pairs.is_empty() {
        call = call.tag_specifications(tags(ResourceType::Subnet, pairs));
    }
    call.send()
        .await
        .expect("CreateSubnet")
        .subnet
        .and_then(|s| s.subnet_id)
        .expect("a subnet ID")
}

async fn security_group(
    clients: &Clients,
    vpc: &str,
    name: &str,
    pairs: &[(&str, &str)],
) -> String {
    let mut call = clients
        .ec2
        .create_security_group()
        .vpc_id(vpc)
        .group_name(name)
        .description(name);
    if !pairs.is_empty() {
        call = call.tag_specifications(tags(ResourceType::SecurityGroup, pairs));
    }
    call.send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("a group ID")
}

/// An AMI the server ships, of `architecture`.
async fn shipped_ami(clients: &Clients, architecture: &str, skip: usize) -> String {
    let images = clients
        .ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("architecture")
                .values(architecture)
                .build(),
        )
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .expect("DescribeImages");
    let mut ids: Vec<String> = images
        .images()
        .iter()
        .filter(|i| i.deprecation_time().is_none())
        .filter_map(|i| i.image_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids.into_iter()
        .nth(skip)
        .unwrap_or_else(|| panic!("the test server ships no {architecture} AMI #{skip}"))
}

fn condition(r: &Resolution, t: ConditionType) -> &dovetail_api::Condition {
    r.status
        .conditions
        .iter()
        .find(|c| c.type_ == t.name())
        .unwrap_or_else(|| panic!("no {t} condition in {:?}", r.status.conditions))
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> BTreeSet<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}

async fn resolve(c: &EC2NodeClass, previous: Option<&EC2NodeClassStatus>) -> Resolution {
    nodeclass::resolve(&clients(), c, &cluster(), previous, &now()).await
}

#[tokio::test]
async fn tag_wildcard_and_id_selectors_resolve_to_exactly_those_and_the_class_is_ready() {
    let clients = clients();
    let vpc = vpc(&clients, "10.1.0.0/16").await;
    let a = subnet(
        &clients,
        &vpc,
        "10.1.1.0/24",
        "us-east-1a",
        &[("Name", "sel-private-a")],
    )
    .await;
    let b = subnet(
        &clients,
        &vpc,
        "10.1.2.0/24",
        "us-east-1b",
        &[("Name", "sel-private-b")],
    )
    .await;
    let _public = subnet(
        &clients,
        &vpc,
        "10.1.3.0/24",
        "us-east-1a",
        &[("Name", "sel-public-c")],
    )
    .await;
    let by_id = subnet(&clients, &vpc, "10.1.4.0/24", "us-east-1b", &[]).await;
    let sg_tagged = security_group(&clients, &vpc, "sel-nodes", &[("sel-discovery", "demo")]).await;
    let sg_named = security_group(&clients, &vpc, "sel-extra", &[]).await;
    let _sg_other = security_group(&clients, &vpc, "sel-other", &[("sel-team", "x")]).await;
    let ami = shipped_ami(&clients, "x86_64", 0).await;

    let c = class(
        "selectors",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"Name": "sel-private-*"}}, {"id": by_id}],
            "securityGroupSelectorTerms": [{"tags": {"sel-discovery": "*"}}, {"name": "sel-extra"}],
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"id": ami}],
            "instanceProfile": "given-profile",
        }),
    );
    let r = resolve(&c, None).await;

    assert_eq!(
        ids(&r.status.subnets, |s| &s.id),
        BTreeSet::from([a.clone(), b.clone(), by_id.clone()])
    );
    let zone_of = |id: &str| {
        r.status
            .subnets
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.zone.clone())
    };
    assert_eq!(zone_of(&a).as_deref(), Some("us-east-1a"));
    assert_eq!(zone_of(&b).as_deref(), Some("us-east-1b"));
    assert_eq!(
        ids(&r.status.security_groups, |g| &g.id),
        BTreeSet::from([sg_tagged, sg_named])
    );
    assert_eq!(ids(&r.status.amis, |a| &a.id), BTreeSet::from([ami]));
    assert_eq!(r.status.amis[0].requirements[0].key, "kubernetes.io/arch");
    assert_eq!(r.status.amis[0].requirements[0].values, ["amd64"]);
    assert_eq!(r.status.instance_profile.as_deref(), Some("given-profile"));
    for t in [
        ConditionType::Ready,
        ConditionType::SubnetsReady,
        ConditionType::SecurityGroupsReady,
        ConditionType::AmisReady,
        ConditionType::InstanceProfileReady,
        ConditionType::ValidationSucceeded,
    ] {
        assert_eq!(
            condition(&r, t).status,
            ConditionStatus::True,
            "{t}: {:?}",
            condition(&r, t)
        );
    }
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.events.contains(&(
        EventKind::ConditionTransitioned(ConditionType::Ready),
        "Status condition transitioned, Type: Ready, Status: Unknown -> True, Reason: Ready".into()
    )));
    let mut written = c.clone();
    written.status = Some(r.status.clone());
    assert_eq!(
        written.validate(),
        Ok(()),
        "the written status passes the CRD's rules"
    );
}

#[tokio::test]
async fn a_subnet_selector_matching_nothing_makes_the_class_not_ready_naming_the_selector() {
    let clients = clients();
    let vpc = vpc(&clients, "10.2.0.0/16").await;
    subnet(
        &clients,
        &vpc,
        "10.2.1.0/24",
        "us-east-1a",
        &[("Name", "none-private-a")],
    )
    .await;
    security_group(&clients, &vpc, "none-nodes", &[("none-discovery", "demo")]).await;
    let ami = shipped_ami(&clients, "x86_64", 0).await;
    let c = class(
        "nothing",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"Name": "none-missing-*"}}],
            "securityGroupSelectorTerms": [{"tags": {"none-discovery": "demo"}}],
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"id": ami}],
            "instanceProfile": "given-profile",
        }),
    );
    let r = resolve(&c, None).await;
    let subnets = condition(&r, ConditionType::SubnetsReady);
    assert_eq!(subnets.status, ConditionStatus::False);
    assert_eq!(subnets.reason, "SubnetsNotFound");
    assert!(
        subnets.message.contains("none-missing-*"),
        "{}",
        subnets.message
    );
    assert!(r.status.subnets.is_empty());
    let ready = condition(&r, ConditionType::Ready);
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(
        ready.message.contains("SubnetsReady=False"),
        "{}",
        ready.message
    );
    assert_eq!(
        condition(&r, ConditionType::SecurityGroupsReady).status,
        ConditionStatus::True,
        "the other parts still resolve"
    );
    assert_eq!(r.status.security_groups.len(), 1);
    assert_eq!(
        condition(&r, ConditionType::ValidationSucceeded).reason,
        "DependenciesNotReady"
    );

    // Once a subnet is tagged to match, the class becomes ready.
    subnet(
        &clients,
        &vpc,
        "10.2.2.0/24",
        "us-east-1b",
        &[("Name", "none-missing-b")],
    )
    .await;
    let again = resolve(&c, Some(&r.status)).await;
    assert_eq!(
        condition(&again, ConditionType::Ready).status,
        ConditionStatus::True
    );
    assert!(again.events.iter().any(|(k, m)| *k
        == EventKind::ConditionTransitioned(ConditionType::SubnetsReady)
        && m.contains("False -> True")));
}

#[tokio::test]
async fn amis_resolve_by_id_and_by_tag() {
    let clients = clients();
    let vpc = vpc(&clients, "10.3.0.0/16").await;
    subnet(
        &clients,
        &vpc,
        "10.3.1.0/24",
        "us-east-1a",
        &[("ami-test", "yes")],
    )
    .await;
    security_group(&clients, &vpc, "ami-nodes", &[("ami-test", "yes")]).await;
    let by_id = shipped_ami(&clients, "x86_64", 1).await;
    let by_tag = shipped_ami(&clients, "arm64", 0).await;
    clients
        .ec2
        .create_tags()
        .resources(&by_tag)
        .tags(
            Tag::builder()
                .key("ami-test-image")
                .value("nodes-v1")
                .build(),
        )
        .send()
        .await
        .expect("CreateTags");
    let spec = |terms: serde_json::Value| {
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"ami-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"ami-test": "yes"}}],
            "amiFamily": "Custom",
            "amiSelectorTerms": terms,
            "instanceProfile": "given-profile",
        })
    };

    let r = resolve(
        &class("ami-id", spec(serde_json::json!([{"id": by_id}]))),
        None,
    )
    .await;
    assert_eq!(
        ids(&r.status.amis, |a| &a.id),
        BTreeSet::from([by_id.clone()])
    );
    assert_eq!(
        condition(&r, ConditionType::AmisReady).status,
        ConditionStatus::True
    );

    let r = resolve(
        &class(
            "ami-tag",
            spec(serde_json::json!([{"tags": {"ami-test-image": "nodes-*"}}])),
        ),
        None,
    )
    .await;
    assert_eq!(
        ids(&r.status.amis, |a| &a.id),
        BTreeSet::from([by_tag.clone()])
    );
    assert_eq!(r.status.amis[0].requirements[0].values, ["arm64"]);

    // Both terms: one AMI per architecture.
    let r = resolve(
        &class(
            "ami-both",
            spec(serde_json::json!([{"id": by_id}, {"tags": {"ami-test-image": "nodes-v1"}}])),
        ),
        None,
    )
    .await;
    assert_eq!(
        ids(&r.status.amis, |a| &a.id),
        BTreeSet::from([by_id, by_tag])
    );

    let r = resolve(
        &class(
            "ami-none",
            spec(serde_json::json!([{"tags": {"ami-test-image": "absent"}}])),
        ),
        None,
    )
    .await;
    let amis = condition(&r, ConditionType::AmisReady);
    assert_eq!(
        (amis.status.clone(), amis.reason.as_str()),
        (ConditionStatus::False, "AMINotFound")
    );
    assert!(amis.message.contains("ami-test-image"), "{}", amis.message);
}

#[tokio::test]
async fn an_al2023_alias_resolves_through_the_ssm_public_parameters() {
    let clients = clients();
    let vpc = vpc(&clients, "10.4.0.0/16").await;
    subnet(
        &clients,
        &vpc,
        "10.4.1.0/24",
        "us-east-1a",
        &[("alias-test", "yes")],
    )
    .await;
    security_group(&clients, &vpc, "alias-nodes", &[("alias-test", "yes")]).await;
    let amd64 = shipped_ami(&clients, "x86_64", 2).await;
    let arm64 = shipped_ami(&clients, "arm64", 1).await;
    let base = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023";
    moto().add_public_parameters(
        REGION,
        &[
            (
                &format!("{base}/x86_64/standard/recommended/image_id"),
                &amd64,
            ),
            (
                &format!("{base}/arm64/standard/recommended/image_id"),
                &arm64,
            ),
        ],
    );
    let c = class(
        "alias",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"alias-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"alias-test": "yes"}}],
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "instanceProfile": "given-profile",
        }),
    );
    let r = resolve(&c, None).await;
    assert_eq!(
        condition(&r, ConditionType::AmisReady).status,
        ConditionStatus::True
    );
    assert_eq!(r.status.amis.len(), 2, "{:?}", r.status.amis);
    let arch_of = |id: &str| {
        let ami = r.status.amis.iter().find(|a| a.id == id).expect("resolved");
        let mut reqs: Vec<(String, String, Vec<String>)> = ami
            .requirements
            .iter()
            .map(|q| (q.key.clone(), q.operator.clone(), q.values.clone()))
            .collect();
        reqs.sort();
        reqs
    };
    let standard = |arch: &str| {
        vec![
            (
                "karpenter.k8s.aws/instance-accelerator-count".to_string(),
                "DoesNotExist".to_string(),
                vec![],
            ),
            (
                "karpenter.k8s.aws/instance-gpu-count".to_string(),
                "DoesNotExist".to_string(),
                vec![],
            ),
            (
                "kubernetes.io/arch".to_string(),
                "In".to_string(),
                vec![arch.to_string()],
            ),
        ]
    };
    assert_eq!(arch_of(&amd64), standard("amd64"));
    assert_eq!(arch_of(&arm64), standard("arm64"));

    // A version the parameters do not have.
    let pinned = class(
        "alias-pinned",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"alias-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"alias-test": "yes"}}],
            "amiSelectorTerms": [{"alias": "al2023@v19990101"}],
            "instanceProfile": "given-profile",
        }),
    );
    let r = resolve(&pinned, None).await;
    let amis = condition(&r, ConditionType::AmisReady);
    assert_eq!(amis.status, ConditionStatus::False);
    assert_eq!(amis.reason, "AMINotFound");
    assert!(
        amis.message.contains("al2023@v19990101"),
        "{}",
        amis.message
    );
}

#[tokio::test]
async fn an_instance_profile_is_created_for_the_role_and_reused() {
    let clients = clients();
    let vpc = vpc(&clients, "10.5.0.0/16").await;
    subnet(
        &clients,
        &vpc,
        "10.5.1.0/24",
        "us-east-1a",
        &[("profile-test", "yes")],
    )
    .await;
    security_group(&clients, &vpc, "profile-nodes", &[("profile-test", "yes")]).await;
    let ami = shipped_ami(&clients, "x86_64", 0).await;
    clients
        .iam
        .create_role()
        .role_name("ProfileTestNodeRole")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");
    let c = class(
        "profile",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"profile-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"profile-test": "yes"}}],
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"id": ami}],
            "role": "ProfileTestNodeRole",
            "tags": {"team": "nodes"},
        }),
    );
    let creates = |m: &Moto| m.calls().of("iam", "CreateInstanceProfile");
    let before = creates(moto());
    let first = resolve(&c, None).await;
    assert_eq!(
        condition(&first, ConditionType::InstanceProfileReady).status,
        ConditionStatus::True,
        "{:?}",
        first.status.conditions
    );
    let name = first.status.instance_profile.clone().expect("a profile");
    assert!(name.starts_with("demo_"), "{name}");
    let profile = clients
        .iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
        .expect("the profile exists")
        .instance_profile
        .expect("a profile");
    let roles: Vec<&str> = profile.roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(roles, ["ProfileTestNodeRole"]);
    assert_eq!(profile.path(), "/karpenter/us-east-1/demo/uid-profile/");
    let tags: Vec<(&str, &str)> = profile
        .tags()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    for want in [
        ("team", "nodes"),
        ("kubernetes.io/cluster/demo", "owned"),
        ("karpenter.k8s.aws/ec2nodeclass", "profile"),
    ] {
        assert!(tags.contains(&want), "{want:?} missing from {tags:?}");
    }
    assert_eq!(
        condition(&first, ConditionType::Ready).status,
        ConditionStatus::True
    );

    let second = resolve(&c, Some(&first.status)).await;
    assert_eq!(
        second.status.instance_profile.as_deref(),
        Some(name.as_str())
    );
    // Without the status (lost, or a new controller) the same profile is found.
    let third = resolve(&c, None).await;
    assert_eq!(
        third.status.instance_profile.as_deref(),
        Some(name.as_str())
    );
    assert_eq!(creates(moto()) - before, 1, "the profile is created once");
    assert!(
        second.events.is_empty(),
        "nothing changed: {:?}",
        second.events
    );
}

#[tokio::test]
async fn a_missing_role_leaves_the_instance_profile_not_ready() {
    let clients = clients();
    let vpc = vpc(&clients, "10.6.0.0/16").await;
    subnet(
        &clients,
        &vpc,
        "10.6.1.0/24",
        "us-east-1a",
        &[("norole-test", "yes")],
    )
    .await;
    security_group(&clients, &vpc, "norole-nodes", &[("norole-test", "yes")]).await;
    let ami = shipped_ami(&clients, "x86_64", 0).await;
    let c = class(
        "norole",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"norole-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"norole-test": "yes"}}],
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"id": ami}],
            "role": "NoSuchRole",
        }),
    );
    let r = resolve(&c, None).await;
    let profile = condition(&r, ConditionType::InstanceProfileReady);
    assert_eq!(profile.status, ConditionStatus::False, "{profile:?}");
    assert!(
        profile.message.contains("NoSuchRole"),
        "{}",
        profile.message
    );
    assert_eq!(
        condition(&r, ConditionType::Ready).status,
        ConditionStatus::False
    );
    assert_eq!(
        condition(&r, ConditionType::SubnetsReady).status,
        ConditionStatus::True
    );
}

#[tokio::test]
async fn a_failing_call_keeps_the_last_resolved_subnets_and_readiness() {
    // Its own server: the throttling applies to every caller.
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), REGION);
    let vpc = vpc(&clients, "10.7.0.0/16").await;
    let a = subnet(
        &clients,
        &vpc,
        "10.7.1.0/24",
        "us-east-1a",
        &[("keep-test", "yes")],
    )
    .await;
    security_group(&clients, &vpc, "keep-nodes", &[("keep-test", "yes")]).await;
    let ami = shipped_ami(&clients, "x86_64", 0).await;
    let c = class(
        "keep",
        serde_json::json!({
            "subnetSelectorTerms": [{"tags": {"keep-test": "yes"}}],
            "securityGroupSelectorTerms": [{"tags": {"keep-test": "yes"}}],
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"id": ami}],
            "instanceProfile": "given-profile",
        }),
    );
    let first = nodeclass::resolve(&clients, &c, &cluster(), None, &now()).await;
    assert_eq!(
        condition(&first, ConditionType::Ready).status,
        ConditionStatus::True
    );

    moto.set_faults(
        &dovetail_moto::Faults::none()
            .throttle(dovetail_moto::Throttle::share(1.0, 7).only(&["DescribeSubnets"])),
    );
    let throttled = nodeclass::resolve(&clients, &c, &cluster(), Some(&first.status), &now()).await;
    assert_eq!(
        ids(&throttled.status.subnets, |s| &s.id),
        BTreeSet::from([a])
    );
    assert_eq!(
        condition(&throttled, ConditionType::Ready).status,
        ConditionStatus::True
    );
    assert_eq!(throttled.errors.len(), 1, "{:?}", throttled.errors);
    assert_eq!(throttled.errors[0].action, "ec2:DescribeSubnets");

    // With nothing resolved before, the part is Unknown and says why.
    let fresh = nodeclass::resolve(&clients, &c, &cluster(), None, &now()).await;
    assert!(fresh.status.subnets.is_empty());
    let subnets = condition(&fresh, ConditionType::SubnetsReady);
    assert_eq!(subnets.status, ConditionStatus::Unknown);
    assert!(
        subnets.message.contains("DescribeSubnets failed"),
        "{}",
        subnets.message
    );
    assert_eq!(
        condition(&fresh, ConditionType::Ready).status,
        ConditionStatus::Unknown
    );
}
