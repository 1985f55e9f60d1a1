//! `dovetail dev`: a local cluster in a box — the in-memory API server with
//! virtual nodes from a fake cloud, a scheduler and the workload
//! controllers — for trying Karpenter manifests with kubectl. No cloud
//! account and no cluster are needed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use dovetail_apiserver::ServerConfig;
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_core::catalog::{Catalog, aws_catalog};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

#[derive(Args)]
pub struct DevArgs {
    /// Port to serve the Kubernetes API on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Address to listen on. The server has no authentication, so only
    /// 127.0.0.1 is accepted.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Where to write the kubeconfig [default: ~/.kube/dovetail-dev.yaml].
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// How long a launched node takes to turn Ready, as a Go duration
    /// (`30s`, `1m`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    node_ready_after: Duration,
    /// Instance types the fake cloud sells, as a scenario's `catalog`
    /// section [default: the AWS us-east-1 catalog the simulator uses].
    #[arg(long)]
    catalog: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    dovetail_core::disruption::parse_go_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration; write e.g. `5s`, `500ms` or `1m30s`"))
}

fn default_kubeconfig() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".kube").join("dovetail-dev.yaml"),
        None => std::env::temp_dir().join("dovetail-dev.yaml"),
    }
}

fn catalog(path: Option<&Path>) -> Result<Arc<Catalog>> {
    let Some(path) = path else {
        return Ok(aws_catalog());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the catalog {}", path.display()))?;
    dovetail_sim::parse_catalog(&text).with_context(|| format!("catalog {}", path.display()))
}

pub fn run(args: DevArgs) -> Result<()> {
    if args.address != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        bail!(
            "refusing to listen on {}: the dev API server has no authentication and is for local use only; use 127.0.0.1",
            args.address
        );
    }
    let catalog = catalog(args.catalog.as_deref())?;
    let kubeconfig = args.kubeconfig.clone().unwrap_or_else(default_kubeconfig);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, catalog, kubeconfig))
}

async fn serve(args: DevArgs, catalog: Arc<Catalog>, kubeconfig: PathBuf) -> Result<()> {
    let types = catalog.instance_types.len();
    let config = ClusterConfig {
        server: ServerConfig {
            address: SocketAddr::new(args.address, args.port),
            ..ServerConfig::default()
        },
        catalog,
        node_ready_after: args.node_ready_after,
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(config)
        .await
        .context("starting the dev cluster")?;
    let installed = install_crds(&cluster).await;
    let written = installed.and_then(|()| write_kubeconfig(&kubeconfig, &cluster.kubeconfig()));
    if let Err(e) = written {
        cluster.shutdown().await;
        return Err(e);
    }
    println!(
        "Dovetail dev cluster: Kubernetes API at {} (in memory, loopback only, no authentication).",
        cluster.url()
    );
    println!(
        "Karpenter's CRDs are installed (NodePool, NodeClaim, EC2NodeClass); the fake cloud sells {types} instance type{} and its nodes turn Ready {} after launch.",
        if types == 1 { "" } else { "s" },
        humanize(args.node_ready_after)
    );
    println!(
        "No autoscaler is attached yet: nothing launches nodes, so pods stay Pending (PodScheduled=False, Unschedulable)."
    );
    println!("Kubeconfig written to {}. Try:", kubeconfig.display());
    println!();
    println!(
        "  export KUBECONFIG={} && kubectl get nodes",
        kubeconfig.display()
    );
    println!();
    println!("Press Ctrl-C to stop.");
    let stopped = tokio::signal::ctrl_c().await;
    cluster.shutdown().await;
    // It points at a server that no longer runs.
    let _ = std::fs::remove_file(&kubeconfig);
    stopped.context("waiting for Ctrl-C")?;
    println!("Stopped.");
    Ok(())
}

pub(crate) async fn install_crds(cluster: &Cluster) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client());
    for crd in dovetail_api::crd::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("installing the CRD {name}"))?;
    }
    Ok(())
}

fn write_kubeconfig(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for the kubeconfig", dir.display()))?;
    }
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the kubeconfig to {}", path.display()))
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
