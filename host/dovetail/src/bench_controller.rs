//! `dovetail bench controller`: the controller as production runs it — its own process, over
//! HTTP — against a cluster in a box holding a populated cluster. How long it takes to sync,
//! to create NodeClaims for a burst of pending pods, to serve a policy pushed as a ConfigMap,
//! and how much memory it holds meanwhile.
//!
//! The populated nodes carry neither a NodeClaim nor the `karpenter.sh/nodepool` label: they
//! are unmanaged, as nodes of another autoscaler or of a managed node group are, so the
//! controller counts their pods but never disrupts or collects them; and the kubelet model
//! only runs the nodes of fake-cloud instances, so nothing else touches them either. The
//! benchmark checks that none of them changed.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;
use dovetail_api::{EC2NodeClass, NodeClaim, NodePool};
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_kube::policy_configmaps::{
    OutcomeKind, POLICY_LABEL, PolicyStatus, STATUS_ANNOTATION,
};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bench_apiserver::run_all;
use crate::output::{self, OutputError, Stdout, outln};

/// The goals: what a controller for 1,000 nodes and 20,000 pods must stay within.
const GOAL_RSS_MB: f64 = 100.0;
const GOAL_PENDING_TO_NODECLAIMS_SECONDS: f64 = 2.0;
const GOAL_SWAP_MS: f64 = 1000.0;

/// Where the controller looks for policy ConfigMaps (its `SYSTEM_NAMESPACE` by default).
const POLICY_NAMESPACE: &str = "kube-system";
const POLICY_CONFIGMAP: &str = "dovetail-instance-selection";
const POLICY_FILE: &str = "dovetail_policy_default.wasm";
const FIELD_MANAGER: &str = "dovetail-bench";
/// The message of the controller's log line when a policy ConfigMap's version serves.
const SWAP_LOG_MESSAGE: &str = "policy configmap accepted";

/// The populated nodes: m6i.xlarge as the kubelet reports it.
const NODE_CPU_M: u64 = 3920;
const NODE_MEMORY_KI: u64 = 15_038_596;
const NODE_PODS: u64 = 58;
/// What a pending pod asks for at least (the example Deployment's pods).
const PENDING_CPU_M: u64 = 1000;
const PENDING_MEMORY: &str = "1536Mi";

/// How long each phase may take before the benchmark gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
const PROVISION_TIMEOUT: Duration = Duration::from_secs(120);
const SWAP_TIMEOUT: Duration = Duration::from_secs(60);
/// The controller logs a swap as it reports it on the ConfigMap.
const SWAP_LOG_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct ControllerBenchArgs {
    /// Ready nodes stored, full of pods, managed by no NodePool.
    #[arg(long, default_value_t = 1_000, value_parser = crate::limits::API_NODES.count(), allow_negative_numbers = true)]
    nodes: usize,
    /// Running pods stored, bound to those nodes and filling them.
    #[arg(long, default_value_t = 20_000, value_parser = crate::limits::API_PODS.count(), allow_negative_numbers = true)]
    pods: usize,
    /// Pending pods created at once once the controller is ready; none fits an existing node.
    #[arg(long, default_value_t = 500, value_parser = crate::limits::PENDING.count(), allow_negative_numbers = true)]
    pending: usize,
    /// Policy ConfigMap updates measured after the first push.
    #[arg(long, default_value_t = 5, value_parser = crate::limits::SWAPS.count(), allow_negative_numbers = true)]
    swaps: usize,
    /// The instance-selection policy to push as a ConfigMap [default:
    /// wasm32-wasip2/release/dovetail_policy_default.wasm in the target directory this
    /// executable was built in, or in ./target].
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Requests in flight at once while populating.
    #[arg(long, default_value_t = 32, value_parser = crate::limits::CONCURRENCY.count(), allow_negative_numbers = true)]
    concurrency: usize,
    /// Keep the controller's log and print where it is.
    #[arg(long)]
    keep_log: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    nodes: usize,
    pods: usize,
    pending: usize,
    /// Creating every node and pod and reporting their status, through the API.
    populate_seconds: f64,
    /// From spawning the controller to `/readyz` answering 200 (its cluster state synced).
    sync_seconds: f64,
    /// Creating the pending pods, requests in flight at once.
    pending_create_seconds: f64,
    /// From the last pending pod's create answer to the controller's log line of the round
    /// that covered the last of them, written once its NodeClaims were created. Includes the
    /// batch's idle window.
    pending_to_nodeclaims_seconds: f64,
    /// From the last pending pod's create answer to every pending pod Running: the NodeClaims,
    /// their launches, the nodes registering and turning Ready (5 s after launch in the
    /// cluster's kubelet model) and the pods bound.
    pending_to_running_seconds: f64,
    /// The batch idle window that applied (`BATCH_IDLE_DURATION`).
    batch_idle: String,
    provisioning_rounds: usize,
    nodeclaims: usize,
    /// From sending a policy ConfigMap write to its status annotation saying the new version
    /// serves, once the cluster has settled: the first push (a component never seen:
    /// compiled) …
    configmap_create_ms: f64,
    /// … and the updates after it (the same component with a new config: compiled code
    /// reused), median and slowest.
    configmap_swap_ms: f64,
    configmap_swap_max_ms: f64,
    /// The controller's own measure of the same: from its watch delivering a version to it
    /// serving (without the status write), for the first push and the updates' median.
    controller_create_swap_ms: Option<f64>,
    controller_swap_ms: Option<f64>,
    swaps: usize,
    /// `VmRSS` and `VmHWM` (peak) of the controller process, in MB
    /// (10^6 bytes).
    controller_rss_mb: Memory,
    /// Every populated node still there, unchanged.
    unmanaged_nodes_untouched: usize,
    policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<PathBuf>,
    goals: Goals,
}

#[derive(Serialize)]
struct Memory {
    /// Once ready (the cluster state synced).
    synced: f64,
    peak_synced: f64,
    /// Once the pending pods' NodeClaims were created.
    after_pending: f64,
    peak_after_pending: f64,
    /// At the end, after the policy swaps.
    at_end: f64,
    peak_at_end: f64,
}

#[derive(Serialize)]
struct Goals {
    /// Met by the peak over the whole run (`VmHWM` at the end).
    rss_mb: f64,
    rss_met: bool,
    pending_to_nodeclaims_seconds: f64,
    pending_to_nodeclaims_met: bool,
    swap_ms: f64,
    swap_met: bool,
}

pub fn run(args: &ControllerBenchArgs) -> Result<()> {
    let shape = Shape::new(args.nodes, args.pods)?;
    let policy = policy_file(args.policy.as_deref())?;
    let policy_bytes = dovetail_input::read_bytes(&policy, "policy", dovetail_input::caps::POLICY)?;
    let exe = std::env::current_exe().context("finding this executable to run the controller")?;
    let dir =
        std::env::temp_dir().join(format!("dovetail-bench-controller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let work = Work {
        args,
        shape,
        exe,
        dir: dir.clone(),
        policy: policy.clone(),
        policy_bytes,
    };
    let result = runtime.block_on(measure(&work));
    let log = dir.join("controller.log");
    let report = match result {
        Ok(mut report) => {
            if args.keep_log {
                let _ = std::fs::remove_file(dir.join("kubeconfig"));
                report.log = Some(log);
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            report
        }
        Err(e) => {
            let _ = std::fs::remove_file(dir.join("kubeconfig"));
            return Err(e.context(format!("the controller's log is {}", log.display())));
        }
    };
    let out = output::stdout("the benchmark figures");
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_human(&out, &report)?;
    }
    Ok(())
}

struct Work<'a> {
    args: &'a ControllerBenchArgs,
    shape: Shape,
    exe: PathBuf,
    dir: PathBuf,
    policy: PathBuf,
    policy_bytes: Vec<u8>,
}

/// The policy to push: `--policy`, else the default policy built next to this executable.
fn policy_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut looked = Vec::new();
    let wasm = |target: &Path| {
        target
            .join("wasm32-wasip2")
            .join("release")
            .join(POLICY_FILE)
    };
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        looked.push(wasm(Path::new(&dir)));
    }
    // <target>/release/dovetail
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(Path::to_path_buf))
    {
        looked.push(wasm(&target));
    }
    looked.push(wasm(Path::new("target")));
    if let Some(found) = looked.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "no instance-selection policy to push: build it with `cargo build --release --target wasm32-wasip2 -p dovetail-policy-default` or pass --policy FILE (looked for {})",
        looked
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What the populated pods and the pending pods request so that the nodes are full and no
/// pending pod fits any of them.
#[derive(Debug, Clone, Copy)]
struct Shape {
    nodes: usize,
    pods: usize,
    pod_cpu_m: u64,
    pod_memory_ki: u64,
    pending_cpu_m: u64,
}

impl Shape {
    fn new(nodes: usize, pods: usize) -> Result<Self> {
        if nodes == 0 && pods > 0 {
            bail!("--pods {pods} needs nodes to run on: pass --nodes 1 or more");
        }
        let most = pods.div_ceil(nodes.max(1)) as u64;
        if most > NODE_PODS {
            bail!(
                "--pods {pods} on --nodes {nodes} is {most} pods a node, more than the {NODE_PODS} an m6i.xlarge takes: pass more --nodes"
            );
        }
        let (pod_cpu_m, pod_memory_ki) = match most {
            0 => (0, 0),
            n => (NODE_CPU_M / n, NODE_MEMORY_KI / n),
        };
        // A node with one pod fewer than the fullest has that much room: a pending pod must
        // not fit there either.
        let fewest = (pods / nodes.max(1)) as u64;
        let room = NODE_CPU_M - fewest * pod_cpu_m;
        Ok(Self {
            nodes,
            pods,
            pod_cpu_m,
            pod_memory_ki,
            pending_cpu_m: PENDING_CPU_M.max(room + 1),
        })
    }
}

async fn measure(work: &Work<'_>) -> Result<Report> {
    let cluster = Cluster::start(ClusterConfig::default())
        .await
        .context("starting the cluster")?;
    let result = measure_on(&cluster, work).await;
    cluster.shutdown().await;
    result
}

async fn measure_on(cluster: &Cluster, work: &Work<'_>) -> Result<Report> {
    let args = work.args;
    let client = cluster.client();
    crate::dev_cmd::install_crds(cluster).await?;
    let kubeconfig = work.dir.join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig())
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    apply_pool(&client).await?;

    let started = Instant::now();
    populate(&client, &work.shape, args.concurrency).await?;
    let populate_seconds = started.elapsed().as_secs_f64();
    let populated = node_versions(&client).await?;

    let log_path = work.dir.join("controller.log");
    let mut controller = Controller::spawn(&work.exe, &kubeconfig, &log_path)?;
    let mut log = LogTail::open(&log_path)?;
    let spawned = Instant::now();
    loop {
        controller.check_running(&log_path)?;
        if controller.ready().await {
            break;
        }
        if spawned.elapsed() > SYNC_TIMEOUT {
            bail!("the controller was not ready {SYNC_TIMEOUT:?} after it started");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sync_seconds = spawned.elapsed().as_secs_f64();
    let synced = controller.memory()?;

    // The burst of pending pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = Instant::now();
    run_all(
        args.concurrency,
        (0..args.pending).map(|i| {
            let pods = pods.clone();
            let pod = pending_pod(i, &work.shape);
            async move { pods.create(&PostParams::default(), &pod).await }
        }),
    )
    .await
    .context("creating the pending pods")?;
    let pending_create_seconds = created.elapsed().as_secs_f64();
    let last_created = unix_seconds(SystemTime::now());

    let provisioned = wait_provisioned(&mut log, &mut controller, &log_path, args.pending).await?;
    let pending_to_nodeclaims_seconds = provisioned.last_at - last_created;
    let after_pending = controller.memory()?;
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let listed: BTreeSet<String> = claims
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    if let Some(missing) = provisioned.claims.iter().find(|c| !listed.contains(*c)) {
        bail!(
            "the controller logged NodeClaim {missing} as created, but the API has no such NodeClaim"
        );
    }

    // The cluster settles before the policy is swapped: the pending pods run on the new nodes.
    wait_running(&pods, args.pending, &mut controller, &log_path).await?;
    let pending_to_running_seconds = unix_seconds(SystemTime::now()) - last_created;

    // A policy ConfigMap: first pushed, then updated.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), POLICY_NAMESPACE);
    let first = push_policy(&configmaps, &work.policy_bytes, None).await?;
    let configmap_create_ms =
        wait_accepted(&configmaps, &first, &mut controller, &log_path).await?;
    let controller_create_swap_ms = wait_swap_logged(&mut log).await?;
    let mut swaps = Vec::with_capacity(args.swaps);
    let mut controller_swaps = Vec::with_capacity(args.swaps);
    for i in 0..args.swaps {
        // A config the policy accepts, different each time, so each version is new content.
        let config = format!("{{{}}}", " ".repeat(i + 1));
        let written = push_policy(&configmaps, &work.policy_bytes, Some(&config)).await?;
        swaps.push(wait_accepted(&configmaps, &written, &mut controller, &log_path).await?);
        if let Some(ms) = wait_swap_logged(&mut log).await? {
            controller_swaps.push(ms);
        }
    }
    let at_end = controller.memory()?;
    controller.stop();

    let untouched = untouched(&client, &populated).await?;
    let configmap_swap_max_ms = swaps.iter().copied().fold(0.0, f64::max);
    let configmap_swap_ms = dovetail_core::stats::median(swaps);
    let rss = Memory {
        synced: synced.rss,
        peak_synced: synced.peak,
        after_pending: after_pending.rss,
        peak_after_pending: after_pending.peak,
        at_end: at_end.rss,
        peak_at_end: at_end.peak,
    };
    let worst_swap = configmap_create_ms.max(configmap_swap_max_ms);
    Ok(Report {
        nodes: args.nodes,
        pods: args.pods,
        pending: args.pending,
        populate_seconds,
        sync_seconds,
        pending_create_seconds,
        pending_to_nodeclaims_seconds,
        batch_idle: std::env::var("BATCH_IDLE_DURATION").unwrap_or_else(|_| "1s".into()),
        pending_to_running_seconds,
        provisioning_rounds: provisioned.rounds,
        nodeclaims: provisioned.claims.len(),
        configmap_create_ms,
        configmap_swap_ms,
        configmap_swap_max_ms,
        controller_create_swap_ms,
        controller_swap_ms: (!controller_swaps.is_empty())
            .then(|| dovetail_core::stats::median(controller_swaps)),
        swaps: args.swaps,
        goals: Goals {
            rss_mb: GOAL_RSS_MB,
            rss_met: rss.peak_at_end <= GOAL_RSS_MB,
            pending_to_nodeclaims_seconds: GOAL_PENDING_TO_NODECLAIMS_SECONDS,
            pending_to_nodeclaims_met: pending_to_nodeclaims_seconds
                <= GOAL_PENDING_TO_NODECLAIMS_SECONDS,
            swap_ms: GOAL_SWAP_MS,
            swap_met: worst_swap <= GOAL_SWAP_MS,
        },
        controller_rss_mb: rss,
        unmanaged_nodes_untouched: untouched,
        policy: work.policy.display().to_string(),
        log: None,
    })
}

/// The example EC2NodeClass and NodePool, as the getting-started guide applies them.
async fn apply_pool(client: &Client) -> Result<()> {
    let class: EC2NodeClass = serde_norway::from_str(include_str!(
        "../../../examples/karpenter/ec2nodeclass.yaml"
    ))
    .context("the example EC2NodeClass")?;
    let pool: NodePool =
        serde_norway::from_str(include_str!("../../../examples/karpenter/nodepool.yaml"))
            .context("the example NodePool")?;
    Api::<EC2NodeClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .context("creating the EC2NodeClass")?;
    Api::<NodePool>::all(client.clone())
        .create(&PostParams::default(), &pool)
        .await
        .context("creating the NodePool")?;
    Ok(())
}

/// Every node and pod, created and then given the status their kubelet would report (a
/// create does not take status).
async fn populate(client: &Client, shape: &Shape, concurrency: usize) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    run_all(
        concurrency,
        (0..shape.nodes).map(|i| {
            let nodes = nodes.clone();
            async move {
                let (node, status) = node(i);
                nodes.create(&PostParams::default(), &node).await?;
                nodes
                    .patch_status(
                        &node_name(i),
                        &PatchParams::default(),
                        &Patch::Merge(status),
                    )
                    .await
            }
        }),
    )
    .await
    .context("creating the nodes")?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    run_all(
        concurrency,
        (0..shape.pods).map(|i| {
            let pods = pods.clone();
            async move {
                let node = i % shape.nodes;
                pods.create(&PostParams::default(), &bound_pod(i, node, shape))
                    .await?;
                pods.patch_status(
                    &format!("app-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(running(i, node, i / shape.nodes)),
                )
                .await
            }
        }),
    )
    .await
    .context("creating the pods")?;
    Ok(())
}

fn node_name(i: usize) -> String {
    format!("ip-172-31-{}-{}.ec2.internal", i / 256, i % 256)
}

fn node_ip(i: usize) -> String {
    format!("172.31.{}.{}", i / 256 % 256, i % 256)
}

fn zone(i: usize) -> &'static str {
    ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3]
}

/// An m6i.xlarge no NodePool manages: no NodeClaim, no `karpenter.sh/nodepool` label. Its
/// instance ID has 17 hex digits, the fake cloud's 16, so the two never meet.
fn node(i: usize) -> (Node, Value) {
    let name = node_name(i);
    let node = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {
                "node.kubernetes.io/instance-type": "m6i.xlarge",
                "topology.kubernetes.io/zone": zone(i),
                "topology.kubernetes.io/region": "us-east-1",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
            },
        },
        "spec": { "providerID": format!("aws:///{}/i-0be{i:014x}", zone(i)) },
    }))
    .expect("bench node is a valid Node");
    let now = now();
    let status = json!({ "status": {
        "capacity": { "cpu": "4", "memory": "16057476Ki", "pods": NODE_PODS.to_string() },
        "allocatable": {
            "cpu": format!("{NODE_CPU_M}m"),
            "memory": format!("{NODE_MEMORY_KI}Ki"),
            "pods": NODE_PODS.to_string(),
        },
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
        "addresses": [
            { "type": "InternalIP", "address": node_ip(i) },
            { "type": "Hostname", "address": name },
        ],
        "nodeInfo": {
            "architecture": "amd64", "operatingSystem": "linux",
            "kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
            "containerRuntimeVersion": "containerd://1.7.27", "kernelVersion": "6.1.0",
            "osImage": "Amazon Linux 2023", "machineID": "", "systemUUID": "", "bootID": "",
        },
        "phase": "Running",
    }});
    (node, status)
}

/// A Deployment's pod as kubectl users write them: two containers with requests, labels and
/// a zone spread; bound to `node`. Without an owner: the cluster's garbage collector would
/// delete pods whose ReplicaSet does not exist.
fn bound_pod(i: usize, node: usize, shape: &Shape) -> Pod {
    let app = format!("app-{}", i % 50);
    let proxy_cpu = shape.pod_cpu_m / 5;
    let proxy_memory = shape.pod_memory_ki / 5;
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("app-{i}"),
            "labels": { "app": app, "pod-template-hash": "7d9f8c6b5" },
        },
        "spec": {
            "nodeName": node_name(node),
            "containers": [
                { "name": "app", "image": "registry.example/app:1.4.2",
                  "resources": { "requests": {
                      "cpu": format!("{}m", shape.pod_cpu_m - proxy_cpu),
                      "memory": format!("{}Ki", shape.pod_memory_ki - proxy_memory),
                  } },
                  "ports": [{ "containerPort": 8080, "protocol": "TCP" }] },
                { "name": "proxy", "image": "registry.example/proxy:2.0",
                  "resources": { "requests": {
                      "cpu": format!("{proxy_cpu}m"),
                      "memory": format!("{proxy_memory}Ki"),
                  } } },
            ],
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": { "matchLabels": { "app": app } },
            }],
        },
    }))
    .expect("bench pod is a valid Pod")
}

/// What a kubelet reports for a pod it runs, the `slot`th on its node.
fn running(i: usize, node: usize, slot: usize) -> Value {
    let now = now();
    let condition =
        |kind: &str| json!({ "type": kind, "status": "True", "lastTransitionTime": now });
    let container = |name: &str, image: &str| {
        json!({
            "name": name, "image": image, "imageID": image, "ready": true, "started": true,
            "restartCount": 0, "state": { "running": { "startedAt": now } },
            "containerID": format!("containerd://{i:064x}"),
        })
    };
    let pod_ip = format!("100.{}.{}.{}", node / 256 % 256, node % 256, slot % 254 + 1);
    json!({ "status": {
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"), condition("Initialized"),
            condition("Ready"), condition("ContainersReady"), condition("PodScheduled"),
        ],
        "hostIP": node_ip(node),
        "podIP": pod_ip,
        "startTime": now,
        "containerStatuses": [
            container("app", "registry.example/app:1.4.2"),
            container("proxy", "registry.example/proxy:2.0"),
        ],
    }})
}

/// The example Deployment's pod, asking for more than any populated node has left.
fn pending_pod(i: usize, shape: &Shape) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": format!("pending-{i}"), "labels": { "app": "pending" } },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "inflate", "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                "resources": { "requests": {
                    "cpu": format!("{}m", shape.pending_cpu_m),
                    "memory": PENDING_MEMORY,
                } },
            }],
        },
    }))
    .expect("bench pending pod is a valid Pod")
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .expect("rounding to seconds")
        .to_string()
}

/// Every node's resource version, by name.
async fn node_versions(client: &Client) -> Result<HashMap<String, String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes
        .list(&ListParams::default())
        .await
        .context("listing the nodes")?
        .items
        .into_iter()
        .map(|n| (n.name_any(), n.resource_version().unwrap_or_default()))
        .collect())
}

/// How many of the `populated` nodes are still there at the same version; an error names the
/// first one changed or gone.
async fn untouched(client: &Client, populated: &HashMap<String, String>) -> Result<usize> {
    let now = node_versions(client).await?;
    for (name, version) in populated {
        match now.get(name) {
            None => bail!("the unmanaged node {name} was deleted"),
            Some(v) if v != version => bail!(
                "the unmanaged node {name} was changed (resource version {version} → {v}); the controller must leave nodes no NodePool manages alone"
            ),
            Some(_) => {}
        }
    }
    Ok(populated.len())
}

/// The controller process; killed when dropped.
struct Controller {
    child: Option<Child>,
    health_port: u16,
}

impl Controller {
    fn spawn(exe: &Path, kubeconfig: &Path, log: &Path) -> Result<Self> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create the log {}", log.display()))?;
        let err = out.try_clone()?;
        let health_port = free_port()?;
        let metrics_port = free_port()?;
        let child = Command::new(exe)
            .args(["controller", "--cloud", "fake", "--kubeconfig"])
            .arg(kubeconfig)
            .env("DISABLE_LEADER_ELECTION", "true")
            .env("METRICS_PORT", metrics_port.to_string())
            .env("HEALTH_PROBE_PORT", health_port.to_string())
            .env("LOG_LEVEL", "info")
            .env("POLICY_NAMESPACE", POLICY_NAMESPACE)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("running {} controller", exe.display()))?;
        Ok(Self {
            child: Some(child),
            health_port,
        })
    }

    fn pid(&self) -> Result<u32> {
        Ok(self
            .child
            .as_ref()
            .context("the controller was stopped")?
            .id())
    }

    /// An error with the end of its log if the process has exited.
    fn check_running(&mut self, log: &Path) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("the controller was stopped");
        };
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "the controller exited ({status}); the end of its log:\n{}",
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Whether `/readyz` answers 200.
    async fn ready(&self) -> bool {
        let port = self.health_port;
        tokio::task::spawn_blocking(move || http_status(port, "/readyz") == Some(200))
            .await
            .unwrap_or(false)
    }

    fn memory(&self) -> Result<Rss> {
        let pid = self.pid()?;
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {path} for the controller's memory (Linux only)"))?;
        let field = |name: &str| -> Result<f64> {
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} line in {path}"))?;
            Ok(kib * 1024.0 / 1e6)
        };
        Ok(Rss {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resident and peak resident memory, MB.
struct Rss {
    rss: f64,
    peak: f64,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("finding a free port")?
        .local_addr()?
        .port())
}

/// The status code of a GET on 127.0.0.1:`port`, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The controller's JSON log lines as they are written.
struct LogTail {
    file: std::fs::File,
    offset: u64,
    partial: String,
}

impl LogTail {
    fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            file: std::fs::File::open(path)
                .with_context(|| format!("cannot read the log {}", path.display()))?,
            offset: 0,
            partial: String::new(),
        })
    }

    /// The JSON lines completed since the last call.
    fn lines(&mut self) -> Result<Vec<Value>> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut out = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            // Anything not JSON (a panic message) is not a log line to read.
            if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// What the controller logged for the pending pods.
struct Provisioned {
    rounds: usize,
    claims: BTreeSet<String>,
    /// When the round covering the last of them was logged (Unix seconds).
    last_at: f64,
}

/// Follows the log until the `provisioned` lines account for `pending` pods. Each line is
/// written after its round's NodeClaims were created.
async fn wait_provisioned(
    log: &mut LogTail,
    controller: &mut Controller,
    log_path: &Path,
    pending: usize,
) -> Result<Provisioned> {
    let deadline = Instant::now() + PROVISION_TIMEOUT;
    let mut seen = Provisioned {
        rounds: 0,
        claims: BTreeSet::new(),
        last_at: 0.0,
    };
    let mut pods = 0;
    loop {
        for line in log.lines()? {
            match line.get("decision").and_then(Value::as_str) {
                Some("provisioned") => {
                    pods += line.get("pods").and_then(Value::as_u64).unwrap_or(0) as usize;
                    seen.rounds += 1;
                    seen.claims.extend(
                        line.get("nodeclaims")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .split(',')
                            .filter(|c| !c.is_empty())
                            .map(String::from),
                    );
                    seen.last_at = log_time(&line)?;
                    if line.get("fallback").is_some() {
                        bail!(
                            "the instance-selection policy failed during the round and the built-in chose: {}",
                            line["fallback"]
                        );
                    }
                }
                Some("unschedulable") => bail!(
                    "the controller found pending pods it cannot schedule: {}",
                    line.get("reasons").and_then(Value::as_str).unwrap_or("")
                ),
                _ => {}
            }
        }
        if pods >= pending {
            return Ok(seen);
        }
        controller.check_running(log_path)?;
        if Instant::now() > deadline {
            bail!(
                "after {PROVISION_TIMEOUT:?} the controller had provisioned for {pods} of the {pending} pending pods"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every pending pod runs.
async fn wait_running(
    pods: &Api<Pod>,
    pending: usize,
    controller: &mut Controller,
    log_path: &Path,
) -> Result<()> {
    let deadline = Instant::now() + PROVISION_TIMEOUT;
    let selector = ListParams::default().labels("app=pending");
    loop {
        let running = pods
            .list(&selector)
            .await?
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= pending {
            return Ok(());
        }
        controller.check_running(log_path)?;
        if Instant::now() > deadline {
            bail!(
                "after {PROVISION_TIMEOUT:?} {running} of the {pending} pending pods were Running"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A log line's `timestamp`, as Unix seconds.
fn log_time(line: &Value) -> Result<f64> {
    let text = line
        .get("timestamp")
        .and_then(Value::as_str)
        .context("a controller log line without a timestamp")?;
    let t: k8s_openapi::jiff::Timestamp = text
        .parse()
        .with_context(|| format!("the log timestamp {text}"))?;
    Ok(t.as_nanosecond() as f64 / 1e9)
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The next swap of the policy ConfigMap the controller logs, in ms; `None` when none comes
/// within [`SWAP_LOG_TIMEOUT`].
async fn wait_swap_logged(log: &mut LogTail) -> Result<Option<f64>> {
    let deadline = Instant::now() + SWAP_LOG_TIMEOUT;
    loop {
        for line in log.lines()? {
            if line.get("message").and_then(Value::as_str) == Some(SWAP_LOG_MESSAGE)
                && line.get("configmap").and_then(Value::as_str) == Some(POLICY_CONFIGMAP)
            {
                return Ok(line.get("swap_ms").and_then(Value::as_f64));
            }
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A ConfigMap version written: its resource version, and when the write was sent.
struct Written {
    resource_version: String,
    sent: Instant,
}

/// Writes the policy ConfigMap as `dovetail policy push` does (server-side apply).
async fn push_policy(
    configmaps: &Api<ConfigMap>,
    wasm: &[u8],
    config: Option<&str>,
) -> Result<Written> {
    let key = "instance-selection";
    let mut cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": POLICY_CONFIGMAP,
            "namespace": POLICY_NAMESPACE,
            "labels": { POLICY_LABEL: key },
        },
        "binaryData": {
            format!("{key}.wasm"): base64::engine::general_purpose::STANDARD.encode(wasm),
        },
    });
    if let Some(config) = config {
        cm["data"] = json!({ format!("{key}.json"): config });
    }
    let sent = Instant::now();
    let written = configmaps
        .patch(
            POLICY_CONFIGMAP,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .context("writing the policy ConfigMap")?;
    Ok(Written {
        resource_version: written.resource_version().unwrap_or_default(),
        sent,
    })
}

/// Polls the ConfigMap until its status annotation says the `written` version serves; ms
/// from sending the write. A refusal is an error with the controller's reason.
async fn wait_accepted(
    configmaps: &Api<ConfigMap>,
    written: &Written,
    controller: &mut Controller,
    log_path: &Path,
) -> Result<f64> {
    loop {
        let cm = configmaps.get(POLICY_CONFIGMAP).await?;
        let status = cm
            .annotations()
            .get(STATUS_ANNOTATION)
            .and_then(|s| serde_json::from_str::<PolicyStatus>(s).ok())
            .filter(|s| s.resource_version == written.resource_version);
        if let Some(status) = status {
            let ms = written.sent.elapsed().as_secs_f64() * 1000.0;
            return match status.outcome {
                OutcomeKind::Accepted => Ok(ms),
                OutcomeKind::Refused => bail!(
                    "the controller refused the policy ConfigMap: {}",
                    status.message
                ),
            };
        }
        controller.check_running(log_path)?;
        if written.sent.elapsed() > SWAP_TIMEOUT {
            bail!("the policy ConfigMap was not accepted within {SWAP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn print_human(out: &Stdout, r: &Report) -> Result<(), OutputError> {
    let mark = |ok: bool| if ok { "meets" } else { "MISSES" };
    let ms = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.1} ms"));
    outln!(
        out,
        "dovetail controller (its own process) against the in-memory API server: {} unmanaged nodes, {} running pods, {} pending",
        r.nodes,
        r.pods,
        r.pending
    )?;
    outln!(
        out,
        "  populate:    {:>8.2} s   nodes and pods created with their status",
        r.populate_seconds
    )?;
    outln!(
        out,
        "  sync:        {:>8.2} s   from start to /readyz 200",
        r.sync_seconds
    )?;
    outln!(
        out,
        "  provision:   {:>8.2} s   from the last of {} pending pods (created in {:.2} s) to {} NodeClaims created, in {} round(s), batch idle window {} ({} the goal of {:.0} s)",
        r.pending_to_nodeclaims_seconds,
        r.pending,
        r.pending_create_seconds,
        r.nodeclaims,
        r.provisioning_rounds,
        r.batch_idle,
        mark(r.goals.pending_to_nodeclaims_met),
        GOAL_PENDING_TO_NODECLAIMS_SECONDS
    )?;
    outln!(
        out,
        "  running:     {:>8.2} s   from the last pending pod to all of them Running (nodes Ready 5 s after launch)",
        r.pending_to_running_seconds
    )?;
    outln!(
        out,
        "  policy:      {:>8.1} ms  from pushing the ConfigMap to its status saying it serves (compiled; the controller's own swap {})",
        r.configmap_create_ms,
        ms(r.controller_create_swap_ms)
    )?;
    outln!(
        out,
        "               {:>8.1} ms  median of {} updates, slowest {:.1} ms (the controller's own swap {}) ({} the goal of {:.0} ms)",
        r.configmap_swap_ms,
        r.swaps,
        r.configmap_swap_max_ms,
        ms(r.controller_swap_ms),
        mark(r.goals.swap_met),
        GOAL_SWAP_MS
    )?;
    outln!(
        out,
        "  memory:      {:>8.1} MB resident once synced (peak {:.1} MB); after provisioning {:.1} MB, peak {:.1} MB; after the policy swaps {:.1} MB, peak of the run {:.1} MB ({} the goal of {:.0} MB)",
        r.controller_rss_mb.synced,
        r.controller_rss_mb.peak_synced,
        r.controller_rss_mb.after_pending,
        r.controller_rss_mb.peak_after_pending,
        r.controller_rss_mb.at_end,
        r.controller_rss_mb.peak_at_end,
        mark(r.goals.rss_met),
        GOAL_RSS_MB
    )?;
    outln!(
        out,
        "  unmanaged:   {} nodes left untouched",
        r.unmanaged_nodes_untouched
    )?;
    if let Some(log) = &r.log {
        outln!(out, "  log:         {}", log.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a node has left once its pods are bound, in millicores.
    fn room(shape: &Shape, pods_on_node: u64) -> u64 {
        NODE_CPU_M - pods_on_node * shape.pod_cpu_m
    }

    #[test]
    fn the_nodes_are_full_and_no_pending_pod_fits_any() {
        for (nodes, pods) in [(1000, 20_000), (1000, 20_500), (20, 300), (7, 7), (3, 1)] {
            let shape = Shape::new(nodes, pods).unwrap();
            let fewest = (pods / nodes) as u64;
            let most = pods.div_ceil(nodes) as u64;
            assert!(most * shape.pod_cpu_m <= NODE_CPU_M, "{nodes}/{pods}");
            assert!(
                shape.pending_cpu_m > room(&shape, fewest),
                "{nodes}/{pods}: a pending pod fits a node of {fewest} pods"
            );
            assert!(shape.pending_cpu_m >= PENDING_CPU_M);
        }
    }

    #[test]
    fn more_pods_than_nodes_take_is_refused_with_the_fix() {
        let e = Shape::new(10, 1000).unwrap_err().to_string();
        assert!(
            e.contains("100 pods a node") && e.contains("pass more --nodes"),
            "{e}"
        );
        let e = Shape::new(0, 5).unwrap_err().to_string();
        assert!(e.contains("--nodes 1 or more"), "{e}");
    }
}
