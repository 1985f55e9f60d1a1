//! `dovetail controller --cloud aws` end to end: the controller as its own
//! process against the in-memory API server and the AWS test server (moto:
//! real EC2, SSM, SQS and IAM wire protocols). The kubelet model registers
//! a Node for each instance moto runs for the cluster, so a Deployment's
//! pods run on instances the controller launched with CreateFleet.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use dovetail_api::EC2NodeClass;
use dovetail_apiserver::cluster::InstanceSource;
use dovetail_aws::clients::Clients;
use dovetail_aws::cloud::AwsCloud;
use dovetail_aws::launch::options::Cluster;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_aws::testing;
use dovetail_control::cloud::{CloudError, CloudProvider, Instance, InstanceState};
use dovetail_moto::Moto;
use harness::{Env, fast_config, wait_for};
use kube::api::Api;

const CLUSTER: &str = "my-cluster";
const REGION: &str = "us-east-1";
const MINUTE: Duration = Duration::from_secs(60);

/// The AWS world a cluster named `my-cluster` has: a VPC, a subnet in each
/// of two zones and a security group tagged for discovery, the node role,
/// and the AL2023 alias published in SSM.
async fn aws_world(moto: &Moto, clients: &Clients) {
    let world = testing::world(clients, CLUSTER, Some("KarpenterNodeRole-my-cluster")).await;
    let parameters = testing::al2023_alias_parameters("1.33", &world.ami);
    let parameters: Vec<(&str, &str)> = parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    moto.add_public_parameters(REGION, &parameters);
}

/// The kubelet model's view of moto: the cluster's instances, as the
/// adapter lists them.
struct Machines(AwsCloud);

impl InstanceSource for Machines {
    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self
            .0
            .list()?
            .into_iter()
            .filter(|i| matches!(i.state, InstanceState::Running | InstanceState::Pending))
            .collect())
    }
}

/// Instances of the cluster in moto that are not terminated, by id, with
/// their NodeClaim tag.
async fn cluster_instances(clients: &Clients) -> BTreeMap<String, Option<String>> {
    let out = clients
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:kubernetes.io/cluster/{CLUSTER}"))
                .values("owned")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            let claim = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("karpenter.sh/nodeclaim"))
                .and_then(|t| t.value().map(str::to_string));
            (i.instance_id().unwrap_or_default().to_string(), claim)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_runs_on_ec2_instances_and_scales_down() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let clients = Clients::local(moto.endpoint(), REGION);
    aws_world(&moto, &clients).await;

    // The kubelet model's own adapter: it only lists.
    let source = AwsCloud::new(
        clients.clone(),
        Cluster {
            name: CLUSTER.into(),
            endpoint: "https://api.my-cluster.example".into(),
            ca_bundle: None,
            service_cidr: None,
            dns_ip: None,
        },
        NodeClasses::new(),
        dovetail_aws::instance_types::operator_settings(0.075, 0).unwrap(),
        tokio::runtime::Handle::current(),
    );
    source
        .refresh_catalog(unix_ms())
        .await
        .expect("describe instance types");
    let env = Env::with(dovetail_apiserver::cluster::ClusterConfig {
        machines: Some(Arc::new(Machines(source))),
        node_class_status: false,
        ..fast_config()
    })
    .await;
    env.apply_pool(|p| {
        p.spec.disruption.consolidate_after = dovetail_api::NillableDuration::new("0s");
    })
    .await;
    moto.reset_calls();

    let ctl = env.controller_on(
        "aws",
        "a",
        &[
            ("DISABLE_LEADER_ELECTION", "true"),
            ("DISRUPTION_POLL_INTERVAL", "1s"),
            ("CONSOLIDATION_VALIDATION_DELAY", "1s"),
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "AKIDDOVETAILTEST"),
            ("AWS_SECRET_ACCESS_KEY", "dovetail-secret-never-logged"),
            ("CLUSTER_NAME", CLUSTER),
            ("CLUSTER_ENDPOINT", "https://api.my-cluster.example"),
            ("ISOLATED_VPC", "true"),
            ("SERVICE_CIDR", "10.100.0.0/16"),
        ],
    );

    // The class resolves against moto: subnets, security group, AMI, profile.
    let classes: Api<EC2NodeClass> = Api::all(env.client());
    wait_for("the EC2NodeClass Ready", MINUTE, || async {
        let c = classes.get("default").await.map_err(|e| e.to_string())?;
        let status = c.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && format!("{:?}", c.status) == "True");
        if ready && status.subnets.len() == 2 && !status.amis.is_empty() {
            Ok(())
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;

    env.deploy("inflate", 20, "1", "1536Mi").await;
    wait_for("20 inflate pods Running", 3 * MINUTE, || async {
        let phases = env.phases("inflate").await;
        match phases.get("Running") {
            Some(&20) => Ok(()),
            _ => {
                let claims: Vec<String> = env
                    .claim_list()
                    .await
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {:?}",
                            c.metadata.name.as_deref().unwrap_or(""),
                            c.status
                        )
                    })
                    .collect();
                Err(format!("{phases:?}; claims {claims:?}"))
            }
        }
    })
    .await;

    // Every NodeClaim is an instance in moto, tagged for it.
    let claims = env.claim_list().await;
    let instances = cluster_instances(&clients).await;
    assert!(!claims.is_empty());
    assert_eq!(claims.len(), instances.len(), "{instances:?}");
    for c in &claims {
        let pid = c
            .status
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .expect("a launched claim has a provider id");
        let id = pid.rsplit('/').next().unwrap();
        assert_eq!(
            instances.get(id),
            Some(&Some(c.metadata.name.clone().unwrap())),
            "{pid} is tagged with its NodeClaim"
        );
    }
    let nodes: BTreeSet<String> = env
        .node_list()
        .await
        .into_iter()
        .filter_map(|n| n.spec.and_then(|s| s.provider_id))
        .collect();
    assert_eq!(nodes.len(), claims.len());
    let launched = moto.calls();
    assert!(
        launched.of("ec2", "CreateFleet") <= claims.len() as u64,
        "{launched:?}"
    );

    // Scale down: instances are terminated, none is left without a claim.
    env.scale("inflate", 0).await;
    wait_for("every instance terminated", 3 * MINUTE, || async {
        let left = cluster_instances(&clients).await;
        let claims = env.claim_list().await;
        if left.is_empty() && claims.is_empty() {
            Ok(())
        } else {
            Err(format!("instances {left:?}, claims {}", claims.len()))
        }
    })
    .await;
    assert!(moto.calls().of("ec2", "TerminateInstances") >= 1);

    let logs = ctl.logs();
    assert!(
        !logs.contains("dovetail-secret-never-logged"),
        "the secret key reached the log"
    );
    let all = moto.calls();
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/aws-iam.md"),
    )
    .expect("docs/aws-iam.md");
    for (call, _) in all.calls.iter().filter(|(_, n)| **n > 0) {
        let action = iam_action(call);
        assert!(
            doc.contains(&format!("`{action}`")),
            "the controller called {call}, which docs/aws-iam.md does not list as `{action}`"
        );
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The IAM action that allows an API call (`service:Action`): the batch
/// forms are allowed by their single-message actions.
fn iam_action(call: &str) -> String {
    match call {
        "sqs:DeleteMessageBatch" => "sqs:DeleteMessage".into(),
        "sqs:ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility".into(),
        other => other.to_string(),
    }
}
