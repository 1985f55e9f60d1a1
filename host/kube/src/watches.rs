//! One watch per kind, each object sent to the index as a [`Change`].
//!
//! Each watch is a `kube::runtime::watcher`, with no reflector store
//! behind it: the index is the only copy of the cluster, converted, which
//! is what keeps the controller small (objects as the API serves them are
//! many times the size of what decisions read).
//!
//! - A watch's list is framed by [`Change::Relisting`] and
//!   [`Change::Listed`]; after a 410 the watcher lists again and the index
//!   drops what vanished meanwhile.
//! - Errors are logged and counted, and the watch retries after kube's
//!   default backoff; no error ends it.
//! - A watch asks for bookmarks and a server-side timeout, and one that
//!   receives nothing, not even a bookmark, for
//!   [`WatchConfig::stall_timeout`] is dropped and resumed (a connection
//!   that died silently); so is a list whose next page does not come
//!   within it. The client's own read timeout, if it has one, must be
//!   longer than the stall timeout, or it cuts healthy quiet watches.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dovetail_api::{EC2NodeClass, NodeClaim, NodePool};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::observed::{Change, Observed, WatchedKind, trim_metadata};

/// kube's watcher gives up on a silent watch this long after the
/// server-side timeout it asked for.
const IDLE_MARGIN: Duration = Duration::from_secs(5);

/// How the watches run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// A watch silent this long (no event, no bookmark) is restarted. The
    /// server is asked to end each watch a few seconds sooner, and the
    /// watcher resumes from its last resource version; at least 6 s.
    pub stall_timeout: Duration,
    /// Objects per page of a list. A page is decoded whole, with every
    /// object's managedFields, before its objects are trimmed and converted:
    /// 500 pods make a transient of about 15 MB (which the allocator then
    /// keeps), 100 about 3 MB, for a few more requests.
    pub page_size: u32,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(300),
            page_size: 100,
        }
    }
}

impl WatchConfig {
    /// The server-side timeout to ask for, so that kube's idle detection
    /// (that timeout plus 5 s) fires at the stall timeout.
    fn server_timeout_secs(&self) -> u32 {
        let secs = self.stall_timeout.saturating_sub(IDLE_MARGIN).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX).max(1)
    }

    fn watcher_config(&self) -> watcher::Config {
        watcher::Config::default()
            .timeout(self.server_timeout_secs())
            .page_size(self.page_size)
    }
}

/// The running watches. Dropping it stops them.
#[derive(Debug)]
pub struct Watches {
    tasks: Vec<JoinHandle<()>>,
    health: Arc<Health>,
}

#[derive(Debug, Default)]
struct Health {
    kinds: [KindHealth; WatchedKind::ALL.len()],
}

#[derive(Debug, Default)]
struct KindHealth {
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn stalled(&self, kind: WatchedKind, after: Duration) {
        self.error(
            kind,
            format!(
                "the list made no progress for {}s; starting it again",
                after.as_secs()
            ),
        );
    }

    fn error(&self, kind: WatchedKind, message: String) {
        let h = &self.kinds[kind.position()];
        h.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = kind.name(), "watching {}: {message}", kind.plural());
        *h.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
}

/// Starts one watch per kind, across all namespaces, sending every change
/// to `tx`. A watch stops when `tx`'s receiver is dropped.
pub fn spawn(client: kube::Client, tx: UnboundedSender<Change>, config: WatchConfig) -> Watches {
    let health = Arc::new(Health::default());
    let watch = Watch {
        client,
        tx,
        config: config.watcher_config(),
        stall_timeout: config.stall_timeout,
        health: health.clone(),
    };
    let tasks = vec![
        watch.spawn(WatchedKind::NodePool, |o: NodePool| {
            Observed::NodePool(Box::new(o))
        }),
        watch.spawn(WatchedKind::NodeClaim, |o: NodeClaim| {
            Observed::NodeClaim(Box::new(o))
        }),
        watch.spawn(WatchedKind::Ec2NodeClass, |o: EC2NodeClass| {
            Observed::Ec2NodeClass(Box::new(o))
        }),
        watch.spawn(WatchedKind::Node, |o: Node| Observed::Node(Box::new(o))),
        watch.spawn(WatchedKind::Pod, |o: Pod| Observed::Pod(Box::new(o))),
        watch.spawn(WatchedKind::DaemonSet, |o: DaemonSet| {
            Observed::DaemonSet(Box::new(o))
        }),
        watch.spawn(WatchedKind::Pdb, |o: PodDisruptionBudget| {
            Observed::Pdb(Box::new(o))
        }),
        watch.spawn(WatchedKind::Namespace, |o: Namespace| {
            Observed::Namespace(Box::new(o))
        }),
    ];
    Watches { tasks, health }
}

impl Watches {
    /// Errors the watch of `kind` has met since it started.
    pub fn errors(&self, kind: WatchedKind) -> u64 {
        self.health.kinds[kind.position()]
            .errors
            .load(Ordering::Relaxed)
    }

    /// The last error the watch of `kind` met, if any.
    pub fn last_error(&self, kind: WatchedKind) -> Option<String> {
        self.health.kinds[kind.position()]
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every watch.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.abort();
    }
}

/// What every watch shares.
struct Watch {
    client: kube::Client,
    tx: UnboundedSender<Change>,
    config: watcher::Config,
    stall_timeout: Duration,
    health: Arc<Health>,
}

impl Watch {
    fn spawn<K>(&self, kind: WatchedKind, wrap: fn(K) -> Observed) -> JoinHandle<()>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let config = self.config.clone();
        let start = move || {
            watcher(api.clone(), config.clone())
                .default_backoff()
                .boxed()
        };
        let (tx, health, stall) = (self.tx.clone(), self.health.clone(), self.stall_timeout);
        tokio::spawn(async move {
            let mut events = start();
            // Between the start of a list and its end, pages keep coming;
            // a list that hangs (kube's watcher guards only the watch
            // itself) is started again.
            let mut listing = false;
            loop {
                let event = if listing {
                    match tokio::time::timeout(stall, events.next()).await {
                        Ok(event) => event,
                        Err(_) => {
                            health.stalled(kind, stall);
                            events = start();
                            listing = false;
                            continue;
                        }
                    }
                } else {
                    events.next().await
                };
                let Some(event) = event else {
                    // The watcher never ends; should it, start it again.
                    events = start();
                    continue;
                };
                let change = match event {
                    Ok(Event::Init) => {
                        listing = true;
                        Change::Relisting(kind)
                    }
                    Ok(Event::InitApply(o) | Event::Apply(o)) => Change::Applied(trimmed(o, wrap)),
                    Ok(Event::InitDone) => {
                        listing = false;
                        Change::Listed(kind)
                    }
                    Ok(Event::Delete(o)) => Change::Deleted(trimmed(o, wrap)),
                    Err(e) => {
                        // The backoff paces what follows, not the stall timer.
                        listing = false;
                        health.error(kind, e.to_string());
                        continue;
                    }
                };
                if tx.send(change).is_err() {
                    // Nobody reads the changes any more.
                    return;
                }
            }
        })
    }
}

fn trimmed<K: Resource>(mut object: K, wrap: fn(K) -> Observed) -> Observed {
    trim_metadata(object.meta_mut());
    wrap(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_ends_a_watch_early_enough_for_the_idle_check_to_fire_at_the_stall_timeout() {
        let c = WatchConfig::default();
        assert_eq!(c.server_timeout_secs(), 295);
        let short = WatchConfig {
            stall_timeout: Duration::from_secs(2),
            ..WatchConfig::default()
        };
        assert_eq!(short.server_timeout_secs(), 1, "never 0: that disables it");
    }
}
