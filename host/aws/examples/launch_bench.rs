//! Launch figures against the AWS test server (moto): EC2 API calls per 100
//! NodeClaims launched together, and the time from a NodeClaim to its
//! instance running, through the real adapter (class resolution, launch
//! templates, batched CreateFleet, tags).
//!
//! ```text
//! cargo run --release -p dovetail-aws --example launch_bench [-- <claims> <single launches>]
//! ```
//!
//! It starts its own moto (installed by `tests/moto/install.sh`).

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_aws::clients::Clients;
use dovetail_aws::cloud::AwsCloud;
use dovetail_aws::launch::options::Cluster;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_aws::nodeclass::{self, ClusterInfo};
use dovetail_control::cloud::CloudProvider;
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::NodeClassRef;
use dovetail_core::nodeclaim::{NodeClaim, NodeClaimStatus};
use dovetail_core::resources::Resources;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;
use dovetail_moto::Moto;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const REGION: &str = "us-east-1";
const CLUSTER: &str = "bench";
const MAX_CLAIMS: usize = 2_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let claims: usize = args
        .next()
        .map_or(100, |a| a.parse().expect("<claims> is a count"));
    let singles: usize = args
        .next()
        .map_or(20, |a| a.parse().expect("<single launches> is a count"));
    assert!(
        (1..=MAX_CLAIMS).contains(&claims) && (1..=MAX_CLAIMS).contains(&singles),
        "give 1 to {MAX_CLAIMS} claims and single launches"
    );
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let clients = Clients::local(moto.endpoint(), REGION);
    let classes = NodeClasses::new();
    rt.block_on(async {
        world(&moto, &clients).await;
        let class: EC2NodeClass = serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
            "metadata": {"name": "default", "uid": "bench", "generation": 1},
            "spec": {
                "role": "bench-node-role",
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": CLUSTER}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
            }
        }))
        .expect("a valid EC2NodeClass");
        let cluster = ClusterInfo {
            name: CLUSTER.into(),
            kubernetes_version: "1.33".into(),
            region: REGION.into(),
        };
        let resolved =
            nodeclass::resolve(&clients, &class, &cluster, None, &Time(Timestamp::now())).await;
        assert!(resolved.errors.is_empty(), "{:?}", resolved.errors);
        let mut class = class;
        class.status = Some(resolved.status);
        classes.set(class);
    });
    let mut cloud = AwsCloud::new(
        clients,
        Cluster {
            name: CLUSTER.into(),
            endpoint: "https://api.bench.example".into(),
            ca_bundle: None,
            service_cidr: None,
            dns_ip: None,
        },
        classes,
        dovetail_aws::instance_types::operator_settings(0.075, 0).expect("valid settings"),
        rt.handle().clone(),
    );
    rt.block_on(cloud.refresh_catalog(unix_ms()))
        .expect("describe the instance types");
    let catalog = cloud.instance_types();
    // The policy's order as the default selector gives it: cheapest first.
    let mut launch: Vec<OfferingRef> = catalog
        .instance_types
        .iter()
        .filter(|it| it.name.as_str().starts_with("m5.") || it.name.as_str().starts_with("c5."))
        .flat_map(|it| {
            it.offerings
                .iter()
                .filter(|o| o.capacity_type == CapacityType::OnDemand)
                .map(|o| OfferingRef {
                    instance_type: it.name,
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                    price: o.price,
                })
        })
        .collect();
    launch.sort_by(|a, b| a.price.total_cmp(&b.price));
    launch.truncate(60);

    // Warm the launch template, so both figures count launches only.
    let warm = claim("warm", launch.clone());
    cloud.create(&warm, unix_ms()).expect("a first launch");

    moto.reset_calls();
    let batch: Vec<NodeClaim> = (0..claims)
        .map(|i| claim(&format!("together-{i}"), launch.clone()))
        .collect();
    let refs: Vec<&NodeClaim> = batch.iter().collect();
    let started = Instant::now();
    let results = cloud.create_all(&refs, unix_ms());
    let together = started.elapsed();
    let launched = results.iter().filter(|r| r.is_ok()).count();
    let calls = moto.calls();
    let ec2_calls: u64 = calls
        .calls
        .iter()
        .filter(|(k, _)| k.starts_with("ec2:"))
        .map(|(_, n)| n)
        .sum();

    let mut times: Vec<Duration> = Vec::new();
    for i in 0..singles {
        let c = claim(&format!("single-{i}"), launch.clone());
        let t = Instant::now();
        cloud.create(&c, unix_ms()).expect("a single launch");
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let worst = times[times.len() - 1];

    println!("claims_launched_together {launched}/{claims}");
    println!("create_fleet_calls {}", calls.of("ec2", "CreateFleet"));
    println!("create_tags_calls {}", calls.of("ec2", "CreateTags"));
    println!("ec2_calls_total {ec2_calls}");
    println!(
        "ec2_calls_per_100_claims {:.1}",
        ec2_calls as f64 * 100.0 / claims as f64
    );
    println!("batch_launch_ms {}", together.as_millis());
    println!(
        "claim_to_running_ms median {} max {} (of {singles} single launches)",
        median.as_millis(),
        worst.as_millis()
    );
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn claim(name: &str, launch: Vec<OfferingRef>) -> NodeClaim {
    NodeClaim {
        name: Sym::new(name),
        node_pool: Some(Sym::new("default")),
        labels: Vec::new(),
        annotations: Vec::new(),
        requirements: Vec::new(),
        requests: Resources::default(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: NodeClassRef {
            group: "karpenter.k8s.aws".into(),
            kind: "EC2NodeClass".into(),
            name: "default".into(),
        },
        expire_after: None,
        termination_grace_period: None,
        launch,
        node_pool_hash: None,
        created_ms: unix_ms(),
        deletion_ms: None,
        finalizer: true,
        status: NodeClaimStatus::default(),
    }
}

/// A VPC with a subnet in two zones and a security group tagged for the
/// cluster, the node role, and the AL2023 alias published in SSM.
async fn world(moto: &Moto, clients: &Clients) {
    let ec2 = &clients.ec2;
    let tagged = |r: ResourceType| {
        TagSpecification::builder()
            .resource_type(r)
            .tags(
                Tag::builder()
                    .key("karpenter.sh/discovery")
                    .value(CLUSTER)
                    .build(),
            )
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
    for (zone, cidr) in [
        ("us-east-1a", "10.0.0.0/18"),
        ("us-east-1b", "10.0.64.0/18"),
    ] {
        ec2.create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(zone)
            .tag_specifications(tagged(ResourceType::Subnet))
            .send()
            .await
            .expect("CreateSubnet");
    }
    ec2.create_security_group()
        .group_name("nodes")
        .description("nodes")
        .vpc_id(&vpc)
        .tag_specifications(tagged(ResourceType::SecurityGroup))
        .send()
        .await
        .expect("CreateSecurityGroup");
    clients
        .iam
        .create_role()
        .role_name("bench-node-role")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");
    let images = ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages");
    let ami = images
        .images()
        .iter()
        .find_map(|i| i.image_id.clone())
        .expect("moto ships x86_64 images");
    let base = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023";
    moto.add_public_parameters(
        REGION,
        &[
            (
                &format!("{base}/x86_64/standard/recommended/image_id"),
                &ami,
            ),
            (&format!("{base}/arm64/standard/recommended/image_id"), &ami),
            (&format!("{base}/x86_64/nvidia/recommended/image_id"), &ami),
            (&format!("{base}/arm64/nvidia/recommended/image_id"), &ami),
            (&format!("{base}/x86_64/neuron/recommended/image_id"), &ami),
        ],
    );
}
