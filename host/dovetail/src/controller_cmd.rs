//! `dovetail controller`: the autoscaler as `helm install` runs it. It
//! watches the cluster, provisions NodeClaims for pending pods, registers
//! their nodes, disrupts and terminates, with the instance-selection and
//! consolidation-scoring policies hot-swapped from ConfigMaps.
//!
//! Wiring only: the decisions are `dovetail-core`'s, their sequencing
//! `dovetail-control`'s (the same the simulator runs), the API calls
//! `dovetail-kube`'s.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dovetail_control::cloud::CloudProvider;
use dovetail_control::{ClusterState, Decision};
use dovetail_core::policy::types::Decision as PolicyDecision;
use dovetail_kube::actions::{Executor, NodePoolStatusWriter};
use dovetail_kube::lease::Elector;
use dovetail_kube::runner::{self, Inputs, Observer, Outside, Policies, RunnerConfig};
use dovetail_kube::watches::{self, WatchConfig};
use dovetail_policy::{PolicyHost, Runtime, RuntimeConfig, ShadowHost};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::{Metrics, Timed};
use crate::policy_source::{self, ReloadCounts};
use crate::serve::{Readiness, Servers};
use crate::settings::{Cloud, ControllerArgs, leader_identity};

/// Who writes NodeClaims, Nodes and Events, in managedFields and Events.
pub const FIELD_MANAGER: &str = "dovetail";

pub fn run(args: ControllerArgs) -> Result<()> {
    args.validate()?;
    crate::logs::init(args.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = shutdown_signal();
        serve(args, None, stop).await
    })
}

/// mimalloc's option numbers (`mi_option_e` in the bundled v3
/// `mimalloc.h`); the test below checks them against the defaults.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the controller's memory small; called first thing, before the
/// allocator has touched much.
///
/// - Transparent huge pages off: the allocator asks for them on its arenas,
///   and a heap of many small objects then holds a whole 2 MiB page
///   wherever it touches one.
/// - Freed memory goes back to the OS at once, not a second later, and
///   arenas are committed as they are used, not up front: a provisioning
///   round's snapshot and a policy compile are transients, and held for a
///   second each they set the controller's peak.
///
/// Neither costs speed the controller needs.
pub fn lean_memory() {
    // A kernel that refuses costs memory, nothing else.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    // SAFETY: setting an option only stores its value; it runs before any
    // other thread exists, as mimalloc asks of `mi_option_set`.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

/// Resolves on SIGTERM (the kubelet stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs the controller until `stop` resolves. `cloud`, when given,
/// replaces the one `args` names.
pub async fn serve(
    args: ControllerArgs,
    cloud: Option<Box<dyn CloudProvider + Send>>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    run_until(args, cloud, any, None, stop).await
}

/// A controller run inside another command's process (`dovetail dev`).
pub struct Hosted {
    /// Where instances come from, instead of the cloud `args` names.
    pub cloud: Box<dyn CloudProvider + Send>,
    /// The address the metrics and health probe servers listen on.
    pub listen: IpAddr,
    /// Told where they listen once both are bound (port 0 picks one).
    pub started: oneshot::Sender<Endpoints>,
}

/// Where a running controller serves its metrics and health probes.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub metrics: SocketAddr,
    pub health: SocketAddr,
}

/// Runs the controller as [`serve`] does, for a process that hosts it.
pub async fn serve_hosted(
    args: ControllerArgs,
    hosted: Hosted,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    run_until(
        args,
        Some(hosted.cloud),
        hosted.listen,
        Some(hosted.started),
        stop,
    )
    .await
}

async fn run_until(
    args: ControllerArgs,
    cloud: Option<Box<dyn CloudProvider + Send>>,
    listen: IpAddr,
    started: Option<oneshot::Sender<Endpoints>>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let mut config = args.kube_config().await?;
    // A 429 from the Eviction API is an answer (a PodDisruptionBudget
    // says wait), not a transient failure to retry for minutes.
    config.default_retry = false;
    // A connection that stops answering is dropped and reopened: longer
    // than a watch's own server-side timeout, so only a dead one trips it.
    config.read_timeout = Some(WatchConfig::default().stall_timeout + Duration::from_secs(30));
    let client = args.client(config.clone())?;
    let metrics = Arc::new(Metrics::new());
    // Policies are compiled rarely and off the decision path: on the
    // caller's thread, so no compile pool outlives the compile. A decision
    // comes once a batch window at most, so its instance's page faults (a
    // millisecond) cost less than pages kept in every warm slot.
    let defaults = RuntimeConfig::default();
    let runtime = Runtime::new(RuntimeConfig {
        parallel_compilation: false,
        keep_resident: 0,
        max_memory_limit: crate::heap::policy_memory_cap(
            args.heap_target(),
            defaults.max_memory_limit,
        ),
        ..defaults
    })
    .context("starting the policy runtime")?;
    let heap_watch = args.heap_target().map(crate::heap::spawn_watch);
    let live = Arc::new(PolicyHost::new(runtime.clone()));
    let shadow = Arc::new(PolicyHost::new(runtime));
    let hosts = Arc::new(ShadowHost::with_shadow(live.clone(), shadow));
    let fetcher = crate::policy_fetch::Fetcher::new(args.fetch_config())
        .context("setting up the fetcher of policies named by URL")?;
    let (policy_task, reloads) = policy_source::spawn(
        client.clone(),
        args.policy_namespace(),
        hosts.clone(),
        fetcher,
    );
    let ports = Arc::new(Timed::new(hosts.clone(), metrics.clone()));
    let policies = Policies {
        selector: ports.clone(),
        scorer: ports,
    };

    let identity = leader_identity();
    let (leader, elector) = match args.lease_config(&identity) {
        Some(lease) => {
            let elector =
                Elector::spawn(client.clone(), lease).context("starting leader election")?;
            (elector.subscribe(), Some(elector))
        }
        None => (watch::channel(true).1, None),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut interruptions = None;
    let mut cloud_tasks = Vec::new();
    let cloud = match cloud {
        Some(cloud) => cloud,
        None => match args.cloud {
            Cloud::Fake => Box::new(
                dovetail_apiserver::cluster::RemoteCloud::connect(client.clone())
                    .await
                    .context("--cloud fake")?,
            ) as Box<dyn CloudProvider + Send>,
            Cloud::Aws => {
                let aws = crate::aws_cloud::start(
                    &args,
                    &client,
                    &config,
                    leader.clone(),
                    stop_rx.clone(),
                    metrics.clone(),
                    FIELD_MANAGER,
                )
                .await
                .context("--cloud aws")?;
                interruptions = aws.interruptions;
                cloud_tasks = aws.tasks;
                aws.cloud
            }
        },
    };
    let readiness = Arc::new(Readiness::new(elector.as_ref().map(Elector::probe)));
    let servers = Servers::start(
        metrics.clone(),
        readiness.clone(),
        args.metrics_address(listen),
        args.health_probe_address(listen),
    )
    .await?;
    if let Some(started) = started {
        let _ = started.send(Endpoints {
            metrics: servers.metrics_address(),
            health: servers.health_address(),
        });
    }
    tracing::info!(
        identity,
        metrics = %servers.metrics_address(),
        health = %servers.health_address(),
        "dovetail controller started"
    );

    let (tx, changes) = mpsc::unbounded_channel();
    let watches = watches::spawn(client.clone(), tx, WatchConfig::default());
    let executor = Executor::new(client.clone(), FIELD_MANAGER);
    let pools = NodePoolStatusWriter::new(client.clone(), FIELD_MANAGER);
    let inputs = Inputs {
        changes,
        // No interruption queue yet: a closed channel.
        // Without a queue the channel stays empty.
        interruptions: interruptions.unwrap_or_else(|| mpsc::channel(1).1),
        leader,
        stop: stop_rx,
    };
    let runner_config = RunnerConfig {
        controller: args.control_config(),
        ..RunnerConfig::default()
    };
    let mut observer = Report {
        metrics: metrics.clone(),
        readiness,
        live,
        hosts,
        reloads,
        seen_reloads: [(0, 0); 2],
        seen_disagreements: [0; 2],
        seen_unattributed: 0,
        last_swap: None,
        last_state: None,
    };
    let handle = tokio::runtime::Handle::current();
    let loop_thread = std::thread::Builder::new()
        .name("reconcile".into())
        .spawn(move || {
            runner::run(
                handle,
                Outside {
                    executor,
                    pools,
                    cloud,
                },
                policies,
                runner_config,
                inputs,
                &mut observer,
            )
        })
        .context("starting the reconcile loop")?;

    stop.await;
    tracing::info!("stopping: finishing the pass in progress");
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || loop_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the reconcile loop ended with a panic");
    }
    // Handing the Lease over at once lets a follower lead without waiting
    // out the lease duration.
    if let Some(elector) = elector {
        elector.release().await;
    }
    watches.abort();
    policy_task.abort();
    if let Some(task) = heap_watch {
        task.abort();
    }
    for task in cloud_tasks {
        task.abort();
    }
    servers.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Feeds metrics, logs and readiness from the loop.
struct Report {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    live: Arc<PolicyHost>,
    hosts: Arc<ShadowHost>,
    reloads: Arc<ReloadCounts>,
    /// (accepted, refused) already counted, by decision.
    seen_reloads: [(u64, u64); 2],
    seen_disagreements: [u64; 2],
    seen_unattributed: u64,
    last_swap: Option<Duration>,
    last_state: Option<Instant>,
}

const DECISIONS: [PolicyDecision; 2] = [
    PolicyDecision::InstanceSelection,
    PolicyDecision::ConsolidationScoring,
];

/// The cluster-state gauges walk every pod: once a second is enough.
const STATE_EVERY: Duration = Duration::from_secs(1);

impl Report {
    fn policy_counters(&mut self) {
        for (i, d) in DECISIONS.into_iter().enumerate() {
            let (accepted, refused) = (self.reloads.accepted(d), self.reloads.refused(d));
            let (seen_a, seen_r) = self.seen_reloads[i];
            for _ in seen_a..accepted {
                self.metrics.policy_reload(d, true);
            }
            for _ in seen_r..refused {
                self.metrics.policy_reload(d, false);
            }
            self.seen_reloads[i] = (accepted, refused);
            let disagreements = self.hosts.disagreements(d);
            for _ in self.seen_disagreements[i]..disagreements {
                self.metrics.shadow_disagreement(d);
            }
            self.seen_disagreements[i] = disagreements;
        }
        let unattributed = self.reloads.refused_unattributed();
        if unattributed > self.seen_unattributed {
            tracing::warn!(
                refused = unattributed - self.seen_unattributed,
                "policy ConfigMaps refused before their decision could be read; their Events say why"
            );
            self.seen_unattributed = unattributed;
        }
        let swap = self.reloads.last_swap();
        if swap.is_some() && swap != self.last_swap {
            self.last_swap = swap;
            tracing::info!(
                swap_ms = swap.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                "a policy ConfigMap's new version is serving"
            );
        }
        self.metrics.observe_policy_host(&self.live);
    }
}

impl Observer for Report {
    fn reconciled(&mut self, decisions: &[Decision], _state: &ClusterState, took: Duration) {
        for d in decisions {
            crate::logs::log_decision(d);
        }
        self.metrics.observe_decisions(decisions);
        if decisions
            .iter()
            .any(|d| matches!(d, Decision::Provisioned { .. }))
        {
            self.metrics.scheduling_duration(took.as_secs_f64());
        }
    }

    fn sync_changed(&mut self, synced: bool, why: Option<&str>) {
        self.readiness.set_synced(synced);
        match why {
            None => tracing::info!("cluster state synced with the API server"),
            Some(why) => tracing::info!(waiting_for = why, "cluster state not synced"),
        }
    }

    fn observed(&mut self, state: &ClusterState, synced: bool) {
        if self.last_state.is_some_and(|t| t.elapsed() < STATE_EVERY) {
            return;
        }
        self.last_state = Some(Instant::now());
        self.metrics.observe_state(state, synced);
        self.policy_counters();
    }
}

#[cfg(test)]
mod tests {
    use super::{MI_OPTION_ARENA_EAGER_COMMIT, MI_OPTION_PURGE_DELAY};

    #[test]
    fn mimalloc_option_numbers_name_the_options_meant() {
        // Read, not set: their defaults identify them (a purge delay of a
        // second; arenas committed eagerly where the OS overcommits).
        #[allow(unsafe_code)]
        // SAFETY: reading an option has no preconditions.
        let (purge, eager) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
            )
        };
        assert_eq!(
            (purge, eager),
            (1000, 2),
            "mimalloc's option numbering changed: update MI_OPTION_* from its mimalloc.h"
        );
    }
}
