//! Test scaffolding (feature `testing`): the AWS resources a cluster's
//! EC2NodeClass selects, made on a local AWS test server.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::clients::Clients;

/// The tag the subnets and security group carry: `karpenter.sh/discovery`
/// set to the cluster's name, as Karpenter's getting-started guide tags them.
pub const DISCOVERY_TAG: &str = "karpenter.sh/discovery";

/// What [`world`] made.
#[derive(Debug, Clone)]
pub struct World {
    pub vpc: String,
    /// (zone, subnet ID), one per zone.
    pub subnets: Vec<(String, String)>,
    pub security_group: String,
    /// An x86_64 image the server ships, standing in for the EKS AMI.
    pub ami: String,
}

/// A VPC with a subnet in us-east-1a and us-east-1b and a security group,
/// all tagged for `cluster`, and the node role `node_role` when given.
/// Panics on any API failure: it is test set-up.
pub async fn world(clients: &Clients, cluster: &str, node_role: Option<&str>) -> World {
    let ec2 = &clients.ec2;
    let tagged = |r: ResourceType| {
        TagSpecification::builder()
            .resource_type(r)
            .tags(Tag::builder().key(DISCOVERY_TAG).value(cluster).build())
            .build()
    };
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("a VPC id");
    let mut subnets = Vec::new();
    for (zone, cidr) in [
        ("us-east-1a", "10.0.0.0/18"),
        ("us-east-1b", "10.0.64.0/18"),
    ] {
        let id = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(zone)
            .tag_specifications(tagged(ResourceType::Subnet))
            .send()
            .await
            .expect("CreateSubnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("a subnet id");
        subnets.push((zone.to_string(), id));
    }
    let security_group = ec2
        .create_security_group()
        .group_name(format!("{cluster}-nodes"))
        .description("nodes")
        .vpc_id(&vpc)
        .tag_specifications(tagged(ResourceType::SecurityGroup))
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("a group id");
    if let Some(role) = node_role {
        clients
            .iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .expect("CreateRole");
    }
    let ami = ec2
        .describe_images()
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .iter()
        .find_map(|i| i.image_id.clone())
        .expect("the server ships x86_64 images");
    World {
        vpc,
        subnets,
        security_group,
        ami,
    }
}

/// The SSM public parameters behind `al2023@latest` for Kubernetes
/// `kubernetes_version` (`1.33`), every variant pointing at `ami`.
pub fn al2023_alias_parameters(kubernetes_version: &str, ami: &str) -> Vec<(String, String)> {
    let base = format!("/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023");
    [
        "x86_64/standard",
        "arm64/standard",
        "x86_64/nvidia",
        "arm64/nvidia",
        "x86_64/neuron",
    ]
    .iter()
    .map(|v| (format!("{base}/{v}/recommended/image_id"), ami.to_string()))
    .collect()
}

/// A NodeClaim of the NodePool `default` and the EC2NodeClass `default`,
/// launching from `launch` (the policy's order).
pub fn node_claim(
    name: &str,
    launch: Vec<dovetail_core::scheduler::OfferingRef>,
    created_ms: u64,
) -> dovetail_core::nodeclaim::NodeClaim {
    use dovetail_core::sym::Sym;
    dovetail_core::nodeclaim::NodeClaim {
        name: Sym::new(name),
        node_pool: Some(Sym::new("default")),
        labels: Vec::new(),
        annotations: Vec::new(),
        requirements: Vec::new(),
        requests: dovetail_core::resources::Resources::default(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: dovetail_core::model::NodeClassRef::default(),
        expire_after: None,
        termination_grace_period: None,
        launch,
        node_pool_hash: None,
        created_ms,
        deletion_ms: None,
        finalizer: true,
        status: dovetail_core::nodeclaim::NodeClaimStatus::default(),
    }
}
