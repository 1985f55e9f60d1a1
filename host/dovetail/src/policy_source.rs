//! Policies from ConfigMaps, in the cluster: the policy ConfigMap events
//! drive the live and shadow policy hosts.
//!
//! A new version is validated on a blocking thread, never on a decision
//! path, then swapped in atomically; decisions in flight finish on the
//! version they started with. A refused version (a component that does not
//! load, a config it rejects, a ConfigMap of the wrong shape, a second
//! ConfigMap for a decision that already has one) leaves the previous policy
//! serving. Deleting (or unlabelling) a ConfigMap returns its decisions to
//! the built-in behaviour, or ends their shadow. Every outcome is reported
//! on the ConfigMap (Event and status annotation) and counted.
//!
//! A ConfigMap is one unit: when it holds components for both decisions,
//! both are installed or neither is.
//!
//! A component the ConfigMap names by URL is fetched (or read from the
//! cache) and its digest verified before validation, by
//! [`policy_fetch`](super::policy_fetch); a fetch that fails is refused like
//! a component that does not load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dovetail_core::policy::ports::BUILTIN;
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{
    AcceptedPolicy, ComponentSource, ConfigMapRef, MODE_LABEL, PolicyConfigMap, PolicyEvent,
    PolicyMode, PolicyOutcome, Refusal, report,
};
use dovetail_policy::{LoadedPolicy, PolicyFailure, PolicyHost, ShadowHost};
use futures::{Stream, StreamExt};
use kube::Client;
use tokio::task::JoinHandle;

use super::policy_fetch::{Fetcher, Origin};

fn index(d: Decision) -> usize {
    match d {
        Decision::InstanceSelection => 0,
        Decision::ConsolidationScoring => 1,
    }
}

/// No swap measured yet.
const NONE: u64 = u64::MAX;

/// Reloads accepted and refused per decision (live and shadow together),
/// and how long the last swap took; shared with whoever exports metrics.
#[derive(Debug)]
pub struct ReloadCounts {
    accepted: [AtomicU64; 2],
    refused: [AtomicU64; 2],
    refused_unattributed: AtomicU64,
    last_swap_micros: AtomicU64,
}

impl Default for ReloadCounts {
    fn default() -> Self {
        Self {
            accepted: Default::default(),
            refused: Default::default(),
            refused_unattributed: AtomicU64::new(0),
            last_swap_micros: AtomicU64::new(NONE),
        }
    }
}

impl ReloadCounts {
    pub fn accepted(&self, d: Decision) -> u64 {
        self.accepted[index(d)].load(Ordering::Relaxed)
    }

    pub fn refused(&self, d: Decision) -> u64 {
        self.refused[index(d)].load(Ordering::Relaxed)
    }

    /// Refused ConfigMaps that name no decision (no key or label says which).
    pub fn refused_unattributed(&self) -> u64 {
        self.refused_unattributed.load(Ordering::Relaxed)
    }

    /// From the watch delivering the last accepted version to it serving.
    pub fn last_swap(&self) -> Option<Duration> {
        match self.last_swap_micros.load(Ordering::Relaxed) {
            NONE => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn accept(&self, d: Decision) {
        self.accepted[index(d)].fetch_add(1, Ordering::Relaxed);
    }

    fn refuse(&self, decisions: &[Decision]) {
        if decisions.is_empty() {
            self.refused_unattributed.fetch_add(1, Ordering::Relaxed);
        }
        for &d in decisions {
            self.refused[index(d)].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A decision in a mode: what one ConfigMap at a time may provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Slot {
    decision: Decision,
    mode: PolicyMode,
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.mode, self.decision)
    }
}

/// What is known of one ConfigMap.
#[derive(Debug)]
struct Known {
    uid: String,
    content: String,
    /// Slots its accepted version serves.
    serving: Vec<Slot>,
    /// Its latest version, kept while it waits for a slot another
    /// ConfigMap holds, to be tried again when that one goes.
    waiting: Option<PolicyConfigMap>,
    /// Its latest version, when fetching its component failed in a way
    /// that may pass (unreachable, timed out, a server error): fetched
    /// again at `at`, without the user touching the ConfigMap.
    retry: Option<Retry>,
}

#[derive(Debug)]
struct Retry {
    cm: PolicyConfigMap,
    attempt: u32,
    at: tokio::time::Instant,
}

/// The wait before fetch `attempt` (from 1) of a component whose source
/// failed: `first`, doubling, at most [`MAX_RETRY_DELAY`].
fn retry_delay(first: Duration, attempt: u32) -> Duration {
    first
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_RETRY_DELAY)
}

/// Retries of a failing source back off to this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Keeps the policy hosts in step with the policy ConfigMaps.
pub struct PolicySource {
    client: Client,
    hosts: Arc<ShadowHost>,
    fetcher: Fetcher,
    counts: Arc<ReloadCounts>,
    known: HashMap<String, Known>,
    owners: HashMap<Slot, String>,
}

impl std::fmt::Debug for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySource")
            .field("owners", &self.owners)
            .finish_non_exhaustive()
    }
}

impl PolicySource {
    /// Drives `hosts` (live and shadow); reports through `client`;
    /// components named by URL come through `fetcher`.
    pub fn new(client: Client, hosts: Arc<ShadowHost>, fetcher: Fetcher) -> Self {
        Self {
            client,
            hosts,
            fetcher,
            counts: Arc::default(),
            known: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    pub fn counts(&self) -> Arc<ReloadCounts> {
        self.counts.clone()
    }

    /// Handles `events` until the stream ends, fetching again the
    /// components whose sources failed, when their retries fall due.
    pub async fn run(mut self, events: impl Stream<Item = PolicyEvent>) {
        let mut events = std::pin::pin!(events);
        loop {
            let due = self
                .known
                .values()
                .filter_map(|k| k.retry.as_ref())
                .map(|r| r.at)
                .min();
            tokio::select! {
                event = events.next() => match event {
                    Some(event) => self.handle(event).await,
                    None => return,
                },
                () = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => self.retry_due().await,
            }
        }
    }

    /// Applies again every version whose retry is due.
    async fn retry_due(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<Retry> = self
            .known
            .values_mut()
            .filter(|k| k.retry.as_ref().is_some_and(|r| r.at <= now))
            .filter_map(|k| k.retry.take())
            .collect();
        for r in due {
            tracing::info!(configmap = %r.cm.configmap.name, attempt = r.attempt, "fetching a policy component again");
            self.apply_attempt(r.cm, r.attempt).await;
        }
    }

    fn host(&self, mode: PolicyMode) -> &Arc<PolicyHost> {
        match mode {
            PolicyMode::Live => self.hosts.live(),
            PolicyMode::Shadow => self.hosts.shadow(),
        }
    }

    /// `instance-selection: graviton-first@0.1.0 (sha256:…)`, per decision.
    fn serving(&self, mode: PolicyMode, decisions: &[Decision]) -> String {
        let decisions = if decisions.is_empty() {
            &[Decision::InstanceSelection, Decision::ConsolidationScoring][..]
        } else {
            decisions
        };
        let host = self.host(mode);
        let idle = match mode {
            PolicyMode::Live => BUILTIN,
            PolicyMode::Shadow => "no shadow policy",
        };
        decisions
            .iter()
            .map(|&d| {
                let what = host.active(d).map_or_else(
                    || idle.to_string(),
                    |p| format!("{} ({})", p.label(), p.digest),
                );
                format!("{d}: {what}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Acts on one event: validates, swaps, refuses or clears, then reports.
    pub async fn handle(&mut self, event: PolicyEvent) {
        match event {
            PolicyEvent::Applied(cm) => {
                if self.unchanged(&cm.configmap) {
                    return;
                }
                self.apply(cm).await;
            }
            PolicyEvent::Malformed {
                configmap,
                decisions,
                mode,
                error,
            } => {
                if self.unchanged(&configmap) {
                    return;
                }
                let known = self.remember(&configmap);
                known.waiting = None;
                let fix = error.fix(&configmap.name);
                self.refuse(&configmap, mode, &decisions, error.to_string(), fix)
                    .await;
            }
            PolicyEvent::Deleted(configmap) => {
                let Some(known) = self.known.remove(&configmap.name) else {
                    return;
                };
                tracing::info!(configmap = %configmap.name, "policy configmap gone");
                self.release(&configmap.name, &known.serving).await;
            }
        }
    }

    /// Whether this is a version already acted on: the status annotation
    /// (or any other metadata-only write) changes no content.
    fn unchanged(&self, cm: &ConfigMapRef) -> bool {
        self.known
            .get(&cm.name)
            .is_some_and(|k| k.uid == cm.uid && k.content == cm.content)
    }

    fn remember(&mut self, cm: &ConfigMapRef) -> &mut Known {
        let known = self.known.entry(cm.name.clone()).or_insert_with(|| Known {
            uid: cm.uid.clone(),
            content: String::new(),
            serving: Vec::new(),
            waiting: None,
            retry: None,
        });
        known.retry = None;
        known.uid = cm.uid.clone();
        known.content = cm.content.clone();
        known
    }

    async fn apply(&mut self, cm: PolicyConfigMap) {
        self.apply_attempt(cm, 0).await
    }

    /// `attempt`: how many times fetching this version's components failed
    /// in a way that may pass.
    async fn apply_attempt(&mut self, cm: PolicyConfigMap, attempt: u32) {
        let name = cm.configmap.name.clone();
        self.remember(&cm.configmap).waiting = None;
        let decisions: Vec<Decision> = cm.components.iter().map(|(d, _)| *d).collect();
        let slots: Vec<Slot> = decisions
            .iter()
            .map(|&decision| Slot {
                decision,
                mode: cm.mode,
            })
            .collect();
        if let Some((slot, holder)) = slots.iter().find_map(|s| {
            self.owners
                .get(s)
                .filter(|owner| **owner != name)
                .map(|o| (*s, o.clone()))
        }) {
            let refusal = Refusal {
                reason: format!("configmap {holder} already provides the {slot} policy"),
                fix: format!(
                    "delete one of configmaps {holder} and {name}, or label one `{MODE_LABEL}=shadow` to compare them; this one is tried again when {holder} goes"
                ),
                still_serving: self.serving(cm.mode, &decisions),
            };
            tracing::warn!(configmap = %name, "policy configmap refused: {}", refusal.reason);
            self.counts.refuse(&decisions);
            let configmap = cm.configmap.clone();
            if let Some(k) = self.known.get_mut(&name) {
                k.waiting = Some(cm);
            }
            self.report(&configmap, PolicyOutcome::Refused(refusal))
                .await;
            return;
        }

        // Components named by URL are fetched (or read from the cache) and
        // their digests verified first; decisions meanwhile run on whatever
        // serves now.
        let mut components = Vec::with_capacity(cm.components.len());
        for (d, source) in &cm.components {
            match source {
                ComponentSource::Inline(bytes) => components.push((*d, bytes.clone())),
                ComponentSource::Remote(remote) => match self.fetcher.fetch(remote).await {
                    Ok((bytes, origin)) => {
                        tracing::info!(
                            configmap = %name,
                            url = %remote.url,
                            bytes = bytes.len(),
                            cached = origin == Origin::Cache,
                            "policy component fetched and its digest verified"
                        );
                        components.push((*d, bytes));
                    }
                    Err(e) => {
                        let mut fix = e.fix(*d);
                        if e.may_pass() {
                            let delay = retry_delay(self.fetcher.retry_after(), attempt + 1);
                            fix.push_str(&format!(
                                "; Dovetail fetches it again in {}s (then less often, up to every {}s)",
                                delay.as_secs(),
                                MAX_RETRY_DELAY.as_secs()
                            ));
                            if let Some(k) = self.known.get_mut(&name) {
                                k.retry = Some(Retry {
                                    cm: cm.clone(),
                                    attempt: attempt + 1,
                                    at: tokio::time::Instant::now() + delay,
                                });
                            }
                        }
                        self.refuse(&cm.configmap, cm.mode, &decisions, format!("{d}: {e}"), fix)
                            .await;
                        return;
                    }
                },
            }
        }

        // Validation compiles and runs the component: seconds for a large
        // one, so on a blocking thread, never where decisions are made.
        let host = self.host(cm.mode).clone();
        let source = cm.configmap.to_string();
        let configs = cm.configs.clone();
        let runtime = host.runtime().clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = components
                .iter()
                .map(|(d, bytes)| {
                    LoadedPolicy::load_for(
                        *d,
                        &runtime,
                        &source,
                        bytes,
                        configs.get(d).map(String::as_str),
                    )
                    .map(|p| (*d, Arc::new(p)))
                    .map_err(|f| (*d, f))
                })
                .collect::<Result<Vec<_>, (Decision, PolicyFailure)>>();
            // The compile's scratch is freed on this thread: return it now.
            give_back_freed_memory();
            loaded
        })
        .await;
        let loaded = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err((d, failure))) => {
                // The host logs it and keeps the reason in its status.
                host.reject_reload(d, &failure);
                let reason = format!("[{}] {}", failure.class, failure.detail);
                self.refuse(
                    &cm.configmap,
                    cm.mode,
                    &decisions,
                    reason,
                    failure.hint().to_string(),
                )
                .await;
                return;
            }
            Err(join) => {
                // A panic while loading is a refusal like any other.
                tracing::error!(configmap = %name, "policy validation stopped: {join}");
                let reason = format!("validation stopped: {join}");
                let fix = "check the component with `dovetail policy validate`".to_string();
                self.refuse(&cm.configmap, cm.mode, &decisions, reason, fix)
                    .await;
                return;
            }
        };

        let mut accepted = Vec::new();
        for (d, policy) in loaded {
            // `load_for` checked the decision, so the swap cannot fail.
            if let Err(f) = host.install(d, policy.clone()) {
                host.reject_reload(d, &f);
                continue;
            }
            self.counts.accept(d);
            self.owners.insert(
                Slot {
                    decision: d,
                    mode: cm.mode,
                },
                name.clone(),
            );
            accepted.push(AcceptedPolicy {
                decision: d,
                name: policy.info.name.clone(),
                version: policy.info.version.clone(),
                digest: policy.digest.clone(),
            });
        }
        let swap = cm.configmap.observed_at.elapsed();
        self.counts
            .last_swap_micros
            .store(swap.as_micros() as u64, Ordering::Relaxed);
        tracing::info!(configmap = %name, mode = %cm.mode, swap_ms = swap.as_secs_f64() * 1e3, "policy configmap accepted");
        // Slots this ConfigMap served before and no longer does (a key
        // removed, or the mode changed) go back to the built-in.
        let before = self
            .known
            .get_mut(&name)
            .map(|k| std::mem::replace(&mut k.serving, slots.clone()))
            .unwrap_or_default();
        let dropped: Vec<Slot> = before.into_iter().filter(|s| !slots.contains(s)).collect();
        self.report(
            &cm.configmap,
            PolicyOutcome::Accepted {
                mode: cm.mode,
                policies: accepted,
            },
        )
        .await;
        if !dropped.is_empty() {
            Box::pin(self.release(&name, &dropped)).await;
        }
    }

    /// Returns `slots`, held by `name`, to the built-in (live) or no shadow,
    /// then gives each to a ConfigMap that was waiting for it.
    async fn release(&mut self, name: &str, slots: &[Slot]) {
        for slot in slots {
            if self.owners.get(slot).is_some_and(|o| o == name) {
                self.owners.remove(slot);
                self.host(slot.mode).clear(slot.decision);
            }
        }
        let waiting: Vec<PolicyConfigMap> = self
            .known
            .values_mut()
            .filter(|k| {
                k.waiting.as_ref().is_some_and(|w| {
                    w.components.iter().any(|(d, _)| {
                        slots.contains(&Slot {
                            decision: *d,
                            mode: w.mode,
                        })
                    })
                })
            })
            .filter_map(|k| k.waiting.take())
            .collect();
        for cm in waiting {
            Box::pin(self.apply(cm)).await;
        }
    }

    /// Refuses a version of `configmap`: counted, logged and reported, with
    /// what keeps serving in its place.
    async fn refuse(
        &self,
        configmap: &ConfigMapRef,
        mode: PolicyMode,
        decisions: &[Decision],
        reason: String,
        fix: String,
    ) {
        let refusal = Refusal {
            reason,
            fix,
            still_serving: self.serving(mode, decisions),
        };
        tracing::warn!(configmap = %configmap.name, "policy configmap refused: {}; fix: {}", refusal.reason, refusal.fix);
        self.counts.refuse(decisions);
        self.report(configmap, PolicyOutcome::Refused(refusal))
            .await;
    }

    async fn report(&self, cm: &ConfigMapRef, outcome: PolicyOutcome) {
        if outcome.already_reported(cm) {
            return;
        }
        if let Err(e) = report(&self.client, cm, &outcome).await {
            tracing::warn!("{e}");
        }
    }
}

/// Watches the policy ConfigMaps in `namespace` and keeps `hosts` in step,
/// until the task is aborted. Returns the task and its counters.
pub fn spawn(
    client: Client,
    namespace: &str,
    hosts: Arc<ShadowHost>,
    fetcher: Fetcher,
) -> (JoinHandle<()>, Arc<ReloadCounts>) {
    let events = dovetail_kube::policy_configmaps::watch(client.clone(), namespace);
    let source = PolicySource::new(client, hosts, fetcher);
    let counts = source.counts();
    (tokio::spawn(source.run(events)), counts)
}

/// Returns the memory this thread's heap freed but still holds to the OS;
/// for the end of a rare, allocation-heavy job such as a policy compile.
fn give_back_freed_memory() {
    // SAFETY: collecting takes no pointers and only touches this thread's
    // heap and the shared arenas, which mimalloc synchronises.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true)
    };
}
