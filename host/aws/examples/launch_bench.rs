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

use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_aws::clients::Clients;
use dovetail_aws::cloud::AwsCloud;
use dovetail_aws::launch::options::Cluster;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_aws::nodeclass::{self, ClusterInfo};
use dovetail_aws::testing;
use dovetail_control::cloud::CloudProvider;
use dovetail_core::catalog::CapacityType;
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::scheduler::OfferingRef;
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
        let resolved = nodeclass::resolve(&clients, &class, &cluster, None, &now()).await;
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
            service_cidr: Some("10.100.0.0/16".into()),
            dns_ip: Some("10.100.0.10".into()),
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

fn now() -> Time {
    let seconds = (unix_ms() / 1000) as i64;
    Time(Timestamp::from_second(seconds).expect("a valid time"))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn claim(name: &str, launch: Vec<OfferingRef>) -> NodeClaim {
    testing::node_claim(name, launch, unix_ms())
}

/// A VPC with a subnet in two zones and a security group tagged for the
/// cluster, the node role, and the AL2023 alias published in SSM.
async fn world(moto: &Moto, clients: &Clients) {
    let world = testing::world(clients, CLUSTER, Some("bench-node-role")).await;
    let parameters = testing::al2023_alias_parameters("1.33", &world.ami);
    let parameters: Vec<(&str, &str)> = parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    moto.add_public_parameters(REGION, &parameters);
}
