//! Watch-backed caches the components read from, as client-go's informers:
//! a reflector per kind that wakes its component on every change.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::reflector;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Tasks aborted when dropped, so a component's informers stop with it.
#[derive(Debug, Default)]
pub(crate) struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// What a component waits on: any of its informers changed, or the resync
/// period passed.
#[derive(Debug)]
pub(crate) struct Informers {
    wake: Arc<Notify>,
    tasks: Tasks,
    resync: Duration,
}

impl Informers {
    pub fn new(resync: Duration) -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            tasks: Tasks::default(),
            resync,
        }
    }

    /// A cache of every `K` in the cluster, kept current by a watch.
    pub fn watch<K>(&mut self, client: &kube::Client) -> Store<K>
    where
        K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let api: Api<K> = Api::all(client.clone());
        let (reader, writer) = reflector::store();
        let wake = self.wake.clone();
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        self.tasks.0.push(tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if event.is_ok() {
                    wake.notify_one();
                }
            }
        }));
        reader
    }

    /// Waits for the next change or the resync period, then a moment more
    /// so a burst of changes is handled in one pass.
    pub async fn changed(&self) {
        let _ = tokio::time::timeout(self.resync, self.wake.notified()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
