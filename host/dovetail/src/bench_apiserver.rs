//! `dovetail bench apiserver`: what the in-memory API server sustains, measured through
//! kube-rs over loopback HTTP exactly as the controller talks to it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use dovetail_apiserver::{ApiServer, ServerConfig};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, Config};
use serde::Serialize;
use serde_json::json;

use crate::output::{self, OutputError, Stdout, outln};

/// The goals the server must meet so it never limits a 20,000-pod controller benchmark.
const GOAL_WRITES_PER_SECOND: f64 = 5_000.0;
const GOAL_LIST_MS: f64 = 200.0;

#[derive(Args)]
pub struct ApiserverArgs {
    /// Pods stored (created through the API).
    #[arg(long, default_value_t = 20_000, value_parser = crate::limits::API_PODS.count(), allow_negative_numbers = true)]
    pods: usize,
    /// Nodes stored (created through the API).
    #[arg(long, default_value_t = 1_000, value_parser = crate::limits::API_NODES.count(), allow_negative_numbers = true)]
    nodes: usize,
    /// Watchers of pods during the fan-out phase.
    #[arg(long, default_value_t = 10, value_parser = crate::limits::WATCHERS.count(), allow_negative_numbers = true)]
    watchers: usize,
    /// Writes to watched pods during the fan-out phase.
    #[arg(long, default_value_t = 5_000, value_parser = crate::limits::WATCHED_WRITES.count(), allow_negative_numbers = true)]
    watched_writes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = crate::limits::CONCURRENCY.count(), allow_negative_numbers = true)]
    concurrency: usize,
    /// Full lists measured; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = crate::limits::BENCH_ITERATIONS.count(), allow_negative_numbers = true)]
    iterations: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    nodes: usize,
    pods: usize,
    concurrency: usize,
    /// Creates of nodes and pods per second, no watchers attached.
    writes_per_second: f64,
    /// Median of unpaged lists of every pod: request, server and the body read.
    list_all_pods_ms: f64,
    /// The first of those lists, which also serialises every pod once (the server keeps each
    /// stored version's JSON for later lists and watch events).
    list_all_pods_first_ms: f64,
    /// The same, with kube-rs also decoding every pod into a typed `Pod`.
    list_all_pods_decoded_ms: f64,
    /// Every pod in pages of 500, as kube-rs' watcher lists.
    list_all_pods_paged_ms: f64,
    watch: WatchReport,
    memory: MemoryReport,
    goals: Goals,
}

#[derive(Serialize)]
struct WatchReport {
    watchers: usize,
    writes: usize,
    /// Label patches per second while every watcher streams.
    writes_per_second: f64,
    /// Events received by all watchers together, per second of the phase.
    delivered_events_per_second: f64,
    /// From the last write's answer to the last watcher receiving its event.
    tail_lag_ms: f64,
}

#[derive(Serialize)]
struct MemoryReport {
    /// Resident set of this process before the server started.
    rss_before_mib: f64,
    /// With every node and pod stored (server and client in one process, so an upper bound
    /// on the server's share).
    rss_loaded_mib: f64,
    stored_mib: f64,
}

#[derive(Serialize)]
struct Goals {
    writes_per_second: f64,
    list_all_pods_ms: f64,
    met: bool,
}

pub fn run(args: &ApiserverArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(measure(args))?;
    let out = output::stdout("the benchmark figures");
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_human(&out, &report)?;
    }
    Ok(())
}

async fn measure(args: &ApiserverArgs) -> Result<Report> {
    let rss_before = rss_mib()?;
    let server = ApiServer::start(ServerConfig::default())
        .await
        .context("starting the API server")?;
    let client = Client::try_from(Config::new(server.url().parse()?))?;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let started = Instant::now();
    run_all(
        args.concurrency,
        (0..args.nodes).map(|i| {
            let nodes = nodes.clone();
            async move { nodes.create(&PostParams::default(), &node(i)).await }
        }),
    )
    .await
    .context("creating nodes")?;
    run_all(
        args.concurrency,
        (0..args.pods).map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(i, args.nodes))
                    .await
            }
        }),
    )
    .await
    .context("creating pods")?;
    let writes_per_second = (args.nodes + args.pods) as f64 / started.elapsed().as_secs_f64();
    let rss_loaded = rss_mib()?;

    let mut lists = Vec::with_capacity(args.iterations);
    let mut decoded = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        let body = client
            .request_text(
                http::Request::get("/api/v1/namespaces/default/pods")
                    .body(Vec::new())
                    .expect("a valid request"),
            )
            .await?;
        lists.push(ms(t.elapsed()));
        if body.len() < args.pods * 100 {
            bail!(
                "a list of {} pods came back as only {} bytes",
                args.pods,
                body.len()
            );
        }
        let t = Instant::now();
        let list = pods.list(&ListParams::default()).await?;
        decoded.push(ms(t.elapsed()));
        if list.items.len() != args.pods {
            bail!("listed {} pods, stored {}", list.items.len(), args.pods);
        }
    }
    let t = Instant::now();
    let paged = list_paged(&pods).await?;
    let list_all_pods_paged_ms = ms(t.elapsed());
    if paged != args.pods {
        bail!("paged list returned {paged} pods, stored {}", args.pods);
    }

    let watch = fan_out(&pods, args).await?;
    server.shutdown().await;

    let list_all_pods_first_ms = lists[0];
    let list_all_pods_ms = dovetail_core::stats::median(lists);
    Ok(Report {
        list_all_pods_first_ms,
        list_all_pods_decoded_ms: dovetail_core::stats::median(decoded),
        nodes: args.nodes,
        pods: args.pods,
        concurrency: args.concurrency,
        writes_per_second,
        list_all_pods_ms,
        list_all_pods_paged_ms,
        watch,
        memory: MemoryReport {
            rss_before_mib: rss_before,
            rss_loaded_mib: rss_loaded,
            stored_mib: rss_loaded - rss_before,
        },
        goals: Goals {
            writes_per_second: GOAL_WRITES_PER_SECOND,
            list_all_pods_ms: GOAL_LIST_MS,
            met: writes_per_second >= GOAL_WRITES_PER_SECOND && list_all_pods_ms < GOAL_LIST_MS,
        },
    })
}

/// Runs the requests with at most `concurrency` in flight; the first error stops it.
pub(crate) async fn run_all<F, T>(
    concurrency: usize,
    requests: impl Iterator<Item = F>,
) -> Result<()>
where
    F: std::future::Future<Output = Result<T, kube::Error>>,
{
    stream::iter(requests)
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(())
}

async fn list_paged(pods: &Api<Pod>) -> Result<usize> {
    let mut seen = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = pods.list(&params).await?;
        seen += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(seen),
        }
    }
}

/// `watchers` streams watch every pod from the current revision while `watched_writes` pods
/// get a label patched; done when every watcher has seen every change.
async fn fan_out(pods: &Api<Pod>, args: &ApiserverArgs) -> Result<WatchReport> {
    let from = pods
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .context("list without a resourceVersion")?;
    let writes = args.watched_writes.min(args.pods);
    let mut handles = Vec::with_capacity(args.watchers);
    for _ in 0..args.watchers {
        let stream = pods
            .watch(&WatchParams::default().timeout(290), &from)
            .await?;
        handles.push(tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            let mut modified = 0;
            while modified < writes {
                match stream.try_next().await? {
                    Some(WatchEvent::Modified(_)) => modified += 1,
                    Some(WatchEvent::Error(e)) => {
                        return Err(anyhow::anyhow!("watch error: {}", e.message));
                    }
                    Some(_) => {}
                    None => bail!("watch ended after {modified} of {writes} changes"),
                }
            }
            Ok::<Instant, anyhow::Error>(Instant::now())
        }));
    }
    let started = Instant::now();
    run_all(
        args.concurrency,
        (0..writes).map(|i| {
            let pods = pods.clone();
            async move {
                let patch = json!({ "metadata": { "labels": { "bench/touched": "yes" } } });
                pods.patch(
                    &format!("bench-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            }
        }),
    )
    .await
    .context("patching watched pods")?;
    let written = Instant::now();
    let mut last = written;
    for handle in handles {
        last = last.max(handle.await??);
    }
    Ok(WatchReport {
        watchers: args.watchers,
        writes,
        writes_per_second: writes as f64 / (written - started).as_secs_f64(),
        delivered_events_per_second: (writes * args.watchers) as f64
            / (last - started).as_secs_f64(),
        tail_lag_ms: ms(last - written),
    })
}

fn node(i: usize) -> Node {
    let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("ip-10-0-{}-{}.ec2.internal", i / 250, i % 250),
            "labels": {
                "karpenter.sh/nodepool": "default",
                "karpenter.sh/capacity-type": "on-demand",
                "karpenter.sh/registered": "true",
                "karpenter.sh/initialized": "true",
                "node.kubernetes.io/instance-type": "m6i.xlarge",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "us-east-1",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": format!("ip-10-0-{}-{}", i / 250, i % 250),
            },
        },
        "spec": { "providerID": format!("aws:///{zone}/i-{i:017x}") },
        "status": {
            "capacity": { "cpu": "4", "memory": "16057476Ki", "pods": "58" },
            "allocatable": { "cpu": "3920m", "memory": "15038596Ki", "pods": "58" },
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
        },
    }))
    .expect("bench node is a valid Node")
}

/// A Deployment's pod as kubectl users write them: two containers with requests, labels,
/// an owner and a zone spread.
fn pod(i: usize, nodes: usize) -> Pod {
    let app = format!("app-{}", i % 50);
    let mut pod = json!({
        "metadata": {
            "name": format!("bench-{i}"),
            "labels": { "app": app, "pod-template-hash": "7d9f8c6b5" },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5"),
                "uid": "5c1f1d0e-0000-4000-8000-000000000000", "controller": true,
            }],
        },
        "spec": {
            "containers": [
                { "name": "app", "image": "registry.example/app:1.4.2",
                  "resources": { "requests": { "cpu": "250m", "memory": "512Mi" } },
                  "ports": [{ "containerPort": 8080, "protocol": "TCP" }] },
                { "name": "proxy", "image": "registry.example/proxy:2.0",
                  "resources": { "requests": { "cpu": "50m", "memory": "64Mi" } } },
            ],
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": { "matchLabels": { "app": app } },
            }],
        },
    });
    // Most pods are bound, as in a running cluster; the rest pending.
    if nodes > 0 && !i.is_multiple_of(10) {
        pod["spec"]["nodeName"] = json!(format!(
            "ip-10-0-{}-{}.ec2.internal",
            (i % nodes) / 250,
            (i % nodes) % 250
        ));
    }
    serde_json::from_value(pod).expect("bench pod is a valid Pod")
}

fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status for the resident set size (Linux only)")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS line in /proc/self/status")?;
    Ok(kib / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_human(out: &Stdout, r: &Report) -> Result<(), OutputError> {
    let mark = |ok: bool| if ok { "meets" } else { "MISSES" };
    outln!(
        out,
        "dovetail-apiserver, {} nodes and {} pods, {} requests in flight (kube-rs over loopback)",
        r.nodes,
        r.pods,
        r.concurrency
    )?;
    outln!(
        out,
        "  writes:      {:>9.0} creates/s   ({} the goal of {:.0}/s)",
        r.writes_per_second,
        mark(r.writes_per_second >= GOAL_WRITES_PER_SECOND),
        GOAL_WRITES_PER_SECOND
    )?;
    outln!(
        out,
        "  list:        {:>9.1} ms for every pod, median ({} the goal of < {:.0} ms; the first list, serialising every pod, {:.1} ms); {:.1} ms decoded by kube-rs; {:.1} ms in pages of 500",
        r.list_all_pods_ms,
        mark(r.list_all_pods_ms < GOAL_LIST_MS),
        GOAL_LIST_MS,
        r.list_all_pods_first_ms,
        r.list_all_pods_decoded_ms,
        r.list_all_pods_paged_ms
    )?;
    outln!(
        out,
        "  watch:       {} watchers, {} patches at {:.0}/s; {:.0} events/s delivered; last event {:.1} ms after the last write",
        r.watch.watchers,
        r.watch.writes,
        r.watch.writes_per_second,
        r.watch.delivered_events_per_second,
        r.watch.tail_lag_ms
    )?;
    outln!(
        out,
        "  memory:      {:.0} MiB resident with everything stored ({:.0} MiB before the server started; {:.0} MiB grown)",
        r.memory.rss_loaded_mib,
        r.memory.rss_before_mib,
        r.memory.stored_mib
    )
}
