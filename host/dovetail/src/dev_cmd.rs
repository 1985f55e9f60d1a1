//! `dovetail dev`: a local cluster in a box — the in-memory API server with
//! virtual nodes from a fake cloud, a scheduler and the workload
//! controllers — with the Dovetail controller attached, for trying
//! Karpenter manifests with kubectl. No cloud account and no cluster are
//! needed.
//!
//! The controller is the one `dovetail controller` runs, in this process,
//! talking to the server over HTTP through the kubeconfig written here as
//! any client does; only the cloud is handed in directly, so a `--catalog`
//! is what it buys from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser};
use dovetail_apiserver::ServerConfig;
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_core::catalog::{Catalog, aws_catalog};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::controller_cmd::{self, Endpoints, Hosted};
use crate::output::{self, OutputError, outln};
use crate::settings::ControllerArgs;

#[derive(Args)]
pub struct DevArgs {
    /// Port to serve the Kubernetes API on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443, allow_negative_numbers = true)]
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
    #[arg(long, default_value = "5s", value_parser = parse_duration, allow_hyphen_values = true)]
    node_ready_after: Duration,
    /// Instance types the fake cloud sells, as a scenario's `catalog`
    /// section [default: the AWS us-east-1 catalog the simulator uses].
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Attach no controller: run `dovetail controller --cloud fake
    /// --kubeconfig <this kubeconfig>` separately instead.
    #[arg(long)]
    no_controller: bool,
    /// Port of the controller's `/metrics`, on 127.0.0.1 (0 picks a free one).
    #[arg(
        long,
        env = "METRICS_PORT",
        default_value_t = 8080,
        allow_negative_numbers = true
    )]
    metrics_port: u16,
    /// Port of the controller's `/healthz` and `/readyz`, on 127.0.0.1 (0
    /// picks a free one).
    #[arg(
        long,
        env = "HEALTH_PROBE_PORT",
        default_value_t = 8081,
        allow_negative_numbers = true
    )]
    health_probe_port: u16,
}

/// The controller's settings, parsed as `dovetail controller` parses them
/// so the environment (`DISRUPTION_POLL_INTERVAL`,
/// `CONSOLIDATION_VALIDATION_DELAY`, ...) applies to the one attached here.
#[derive(Parser)]
#[command(name = "dovetail dev")]
struct EmbeddedController {
    #[command(flatten)]
    args: ControllerArgs,
}

/// A Go duration up to [`limits::NODE_READY_AFTER_MAX`].
fn parse_duration(text: &str) -> Result<Duration, String> {
    let max = crate::limits::NODE_READY_AFTER_MAX;
    if text.trim().starts_with('-') {
        return Err(format!(
            "must be ≥ 0s: give 0s to {}m (docs/limits.md)",
            max.as_secs() / 60
        ));
    }
    let d = dovetail_core::disruption::parse_go_duration(text).ok_or_else(|| {
        format!("`{text}` is not a duration; write e.g. `5s`, `500ms` or `1m30s`")
    })?;
    if d > max {
        return Err(format!(
            "{text} is above the limit of {}m (docs/limits.md): real nodes turn Ready within \
             a minute or two; give 0s to {}m",
            max.as_secs() / 60,
            max.as_secs() / 60
        ));
    }
    Ok(d)
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
    let text = dovetail_input::read_text(path, "catalog", dovetail_input::caps::CATALOG)?;
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
    let controller = match written {
        Ok(()) if args.no_controller => Ok(None),
        Ok(()) => attach_controller(&args, &cluster, &kubeconfig)
            .await
            .map(Some),
        Err(e) => Err(e),
    };
    let mut controller = match controller {
        Ok(c) => c,
        Err(e) => {
            cluster.shutdown().await;
            let _ = std::fs::remove_file(&kubeconfig);
            return Err(e);
        }
    };
    let out = output::stdout("the dev cluster's banner");
    // A banner that cannot be written stops the cluster the way Ctrl-C does.
    let shown = (|| -> Result<(), OutputError> {
        outln!(
            out,
            "Dovetail dev cluster: Kubernetes API at {} (in memory, loopback only, no authentication).",
            cluster.url()
        )?;
        outln!(
            out,
            "Karpenter's CRDs are installed (NodePool, NodeClaim, EC2NodeClass); the fake cloud sells {types} instance type{} and its nodes turn Ready {} after launch.",
            if types == 1 { "" } else { "s" },
            humanize(args.node_ready_after)
        )?;
        match &controller {
            Some(c) => outln!(
                out,
                "Dovetail controller attached (leader election off, policies from ConfigMaps labelled dovetail.dev/policy in {}): metrics at http://{}/metrics, health at http://{}/healthz.",
                c.policy_namespace,
                c.endpoints.metrics,
                c.endpoints.health
            )?,
            None => outln!(
                out,
                "No controller attached (--no-controller): pods stay Pending (PodScheduled=False, Unschedulable) until you run `dovetail controller --cloud fake --kubeconfig {}`.",
                kubeconfig.display()
            )?,
        }
        outln!(out, "Kubeconfig written to {}. Try:", kubeconfig.display())?;
        outln!(out)?;
        outln!(
            out,
            "  export KUBECONFIG={} && kubectl get nodes",
            kubeconfig.display()
        )?;
        outln!(out)?;
        outln!(out, "Press Ctrl-C to stop.")?;
        Ok(())
    })();
    let ended = match (shown, controller.as_mut()) {
        (Err(e), _) => Err(e.into()),
        (Ok(()), Some(c)) => tokio::select! {
            stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C"),
            ended = &mut c.task => Err(match ended {
                Ok(Err(e)) => e.context("the controller stopped"),
                Ok(Ok(())) => anyhow!("the controller stopped"),
                Err(e) => anyhow!("the controller stopped: {e}"),
            }),
        },
        (Ok(()), None) => tokio::signal::ctrl_c().await.context("waiting for Ctrl-C"),
    };
    // The controller first, while the server it talks to still answers.
    if let Some(c) = controller {
        let _ = c.stop.send(());
        if !c.task.is_finished() {
            match c.task.await {
                Ok(Err(e)) => tracing::warn!("the controller stopped with an error: {e:#}"),
                Err(e) => tracing::warn!("the controller stopped: {e}"),
                Ok(Ok(())) => {}
            }
        }
    }
    cluster.shutdown().await;
    // It points at a server that no longer runs.
    let _ = std::fs::remove_file(&kubeconfig);
    ended?;
    outln!(out, "Stopped.")?;
    Ok(())
}

/// The controller attached to the dev cluster, running until told to stop.
struct Attached {
    task: JoinHandle<Result<()>>,
    stop: oneshot::Sender<()>,
    endpoints: Endpoints,
    policy_namespace: String,
}

/// Starts the controller against the cluster through `kubeconfig`, with
/// leader election off, its endpoints on the dev address, and returns once
/// they listen.
async fn attach_controller(
    dev: &DevArgs,
    cluster: &Cluster,
    kubeconfig: &Path,
) -> Result<Attached> {
    let metrics_port = dev.metrics_port.to_string();
    let health_port = dev.health_probe_port.to_string();
    let argv = [
        "dovetail dev".as_ref(),
        "--cloud".as_ref(),
        "fake".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        // The dev kubeconfig's only context, whatever KUBE_CONTEXT says.
        "--context".as_ref(),
        "dovetail-dev".as_ref(),
        "--disable-leader-election".as_ref(),
        "--metrics-port".as_ref(),
        metrics_port.as_ref(),
        "--health-probe-port".as_ref(),
        health_port.as_ref(),
    ];
    let args = EmbeddedController::try_parse_from(argv)
        .map_err(|e| {
            // clap's message names the flag; its environment variable is what was set.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            anyhow!(
                "the controller's settings, read from the environment as `dovetail controller` reads them: {}",
                first.trim_start_matches("error: ")
            )
        })?
        .args;
    args.validate()
        .context("the controller's settings (pass --no-controller to run without one)")?;
    let policy_namespace = args.policy_namespace().to_owned();
    let (started_tx, started) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let hosted = Hosted {
        cloud: Box::new(cluster.cloud().clone()),
        listen: dev.address,
        started: started_tx,
    };
    let mut task = tokio::spawn(controller_cmd::serve_hosted(args, hosted, async {
        let _ = stopped.await;
    }));
    let hint = "for a port in use, pass --metrics-port and --health-probe-port (0 picks free ones); --no-controller runs the cluster without it";
    tokio::select! {
        endpoints = started => match endpoints {
            Ok(endpoints) => Ok(Attached { task, stop, endpoints, policy_namespace }),
            Err(_) => Err(controller_failure((&mut task).await, hint)),
        },
        ended = &mut task => Err(controller_failure(ended, hint)),
    }
}

fn controller_failure(
    ended: Result<Result<()>, tokio::task::JoinError>,
    hint: &str,
) -> anyhow::Error {
    match ended {
        Ok(Err(e)) => e.context(format!("starting the controller ({hint})")),
        Ok(Ok(())) => anyhow!("the controller stopped as it started"),
        Err(e) => anyhow!("starting the controller: {e}"),
    }
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
