//! `--cloud aws`: the AWS adapter wired to the controller. The cloud
//! provider launches and terminates EC2 instances; beside it run the
//! EC2NodeClass loop, the instance-type and price refresh, and, when
//! `INTERRUPTION_QUEUE` is set, the interruption queue.

use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine as _;
use dovetail_aws::clients::Clients;
use dovetail_aws::cloud::AwsCloud;
use dovetail_aws::instance_types::operator_settings;
use dovetail_aws::interruption::{InterruptionQueue, QueueConfig, QueueUrl};
use dovetail_aws::launch::options::Cluster;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_aws::nodeclass::ClusterInfo;
use dovetail_aws::templates::LaunchTemplates;
use dovetail_control::cloud::CloudProvider;
use dovetail_control::interruption::Interruption;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::aws_node_classes::NodeClassLoop;
use crate::metrics::Metrics;
use crate::settings::ControllerArgs;

/// Interruptions waiting for the reconcile loop; the queue stops reading
/// when this many are unhandled.
const INTERRUPTION_BACKLOG: usize = 10_000;

/// How often the catalog refresh looks whether a refresh is due.
const CATALOG_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The running AWS side.
pub struct Aws {
    pub cloud: Box<dyn CloudProvider + Send>,
    pub interruptions: Option<mpsc::Receiver<Interruption>>,
    pub tasks: Vec<JoinHandle<()>>,
}

pub async fn start(
    args: &ControllerArgs,
    client: &kube::Client,
    kube_config: &kube::Config,
    leader: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    field_manager: &'static str,
) -> Result<Aws> {
    let cluster_name = args
        .cluster_name
        .clone()
        .context("--cloud aws needs CLUSTER_NAME")?;
    let endpoint = args
        .aws
        .cluster_endpoint
        .clone()
        .context("--cloud aws needs CLUSTER_ENDPOINT")?;
    let settings = operator_settings(args.aws.vm_memory_overhead_percent, args.aws.reserved_enis)?;
    let clients = Clients::from_env(args.aws.isolated_vpc)
        .await
        .context("setting up the AWS clients")?;
    let version = client
        .apiserver_version()
        .await
        .context("reading the Kubernetes version (the AMI aliases need it)")?;
    let kubernetes_version = format!(
        "{}.{}",
        version.major.trim(),
        version.minor.trim_end_matches('+')
    );
    tracing::info!(
        region = clients.region,
        cluster = cluster_name,
        kubernetes_version,
        pricing_api = clients.pricing_reachable,
        "AWS cloud provider starting"
    );
    let service_cidr = match &args.aws.service_cidr {
        Some(cidr) => Some(cidr.clone()),
        None => service_cidr_from_api(client).await,
    };
    let dns_ip = service_cidr.as_deref().and_then(dns_ip);
    let cluster = Cluster {
        name: cluster_name.clone(),
        endpoint,
        ca_bundle: ca_bundle(kube_config),
        service_cidr,
        dns_ip,
    };
    let node_classes = NodeClasses::new();
    // Only for collecting templates of deleted classes: the cloud keeps
    // its own record of the templates it made.
    let templates = Arc::new(LaunchTemplates::new());
    let handle = tokio::runtime::Handle::current();
    let cloud = AwsCloud::new(
        clients.clone(),
        cluster,
        node_classes.clone(),
        settings,
        handle,
    );
    let mut tasks = Vec::new();
    // Instance types and prices: the first refresh before any launch, then
    // every 12 hours (a minute after a failure).
    let refreshed = cloud
        .refresh_catalog(unix_ms())
        .await
        .context("describing the region's instance types")?;
    if let Some(r) = refreshed {
        tracing::info!(
            instance_types = r.instance_types,
            "described the region's EC2 instance types and prices"
        );
    }
    tasks.push(cloud.start(CATALOG_CHECK));
    tasks.push(tokio::spawn(
        NodeClassLoop {
            client: client.clone(),
            clients: clients.clone(),
            cluster: ClusterInfo {
                name: cluster_name,
                kubernetes_version,
                region: clients.region.clone(),
            },
            classes: node_classes,
            templates,
            leader: leader.clone(),
            field_manager,
        }
        .run(),
    ));
    let interruptions = match &args.aws.interruption_queue {
        Some(name) => {
            let url = QueueUrl::lookup(&clients.sqs, name)
                .await
                .with_context(|| {
                    format!("finding the interruption queue {name} (INTERRUPTION_QUEUE)")
                })?;
            let (tx, rx) = mpsc::channel(INTERRUPTION_BACKLOG);
            let queue =
                InterruptionQueue::new(clients.sqs.clone(), url, QueueConfig::default(), metrics);
            tasks.push(tokio::spawn(read_while_leading(queue, tx, leader, stop)));
            Some(rx)
        }
        None => None,
    };
    Ok(Aws {
        cloud: Box::new(cloud),
        interruptions,
        tasks,
    })
}

/// Reads the queue while this process leads (a follower's reconcile loop
/// would drop what it read), until `stop`.
async fn read_while_leading(
    queue: InterruptionQueue,
    out: mpsc::Sender<Interruption>,
    mut leader: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        while !*leader.borrow_and_update() {
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return },
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
        let (halt, halted) = watch::channel(false);
        let run = queue.run(out.clone(), halted);
        tokio::pin!(run);
        loop {
            tokio::select! {
                ended = &mut run => {
                    tracing::info!("interruption queue: {ended:?}");
                    return;
                }
                changed = leader.changed() => {
                    if changed.is_err() || !*leader.borrow() {
                        let _ = halt.send(true);
                        (&mut run).await;
                        break;
                    }
                }
                _ = stop.changed() => {
                    let _ = halt.send(true);
                    (&mut run).await;
                    return;
                }
            }
        }
    }
}

/// The /16 holding the `kubernetes` Service's address: EKS allocates the
/// service range as a /16 (10.100.0.0/16 or 172.20.0.0/16 by default).
async fn service_cidr_from_api(client: &kube::Client) -> Option<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client.clone(), "default");
    let ip = match api.get_opt("kubernetes").await {
        Ok(Some(s)) => s.spec.and_then(|s| s.cluster_ip),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("reading the kubernetes Service for the service CIDR: {e}");
            None
        }
    };
    let Some(ip) = ip.and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok()) else {
        tracing::warn!(
            "the service CIDR is not known (no IPv4 `kubernetes` Service): AL2023 nodes cannot launch until SERVICE_CIDR is set"
        );
        return None;
    };
    let [a, b, _, _] = ip.octets();
    let cidr = format!("{a}.{b}.0.0/16");
    tracing::info!(
        service_cidr = cidr,
        "service CIDR taken from the kubernetes Service"
    );
    Some(cidr)
}

/// The cluster DNS Service's address: the service range's `.10`, as EKS
/// and kubeadm place it.
fn dns_ip(cidr: &str) -> Option<String> {
    let (addr, _) = crate::settings::parse_ipv4_cidr(cidr)?;
    let [a, b, c, _] = addr.octets();
    Some(format!("{a}.{b}.{c}.10"))
}

/// The API server's CA as new nodes take it (base64 of the PEM), from the
/// controller's own connection to it.
fn ca_bundle(config: &kube::Config) -> Option<String> {
    let certs = config.root_cert.as_ref()?;
    let engine = base64::engine::general_purpose::STANDARD;
    let pem: String = certs
        .iter()
        .map(|der| {
            let body = engine.encode(der);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect();
    (!pem.is_empty()).then(|| engine.encode(pem))
}
