//! A generic asynchronous batcher: requests with equal keys that arrive
//! while a window is open are sent as one call, and each caller gets its
//! own answer.
//!
//! A window opens with the first request of a key and closes `idle` after
//! the latest request, `max` after the first, or as soon as it holds
//! `max_items`. EC2 rate-limits per call, not per instance, so merging alike
//! launches, lookups and terminations keeps a scale-up of hundreds of nodes
//! to a handful of calls (Karpenter batches the same three calls with the
//! same windows).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Closes this long after the latest request.
    pub idle: Duration,
    /// Closes this long after the first request, however busy.
    pub max: Duration,
    /// Closes as soon as it holds this many requests.
    pub max_items: usize,
}

/// Karpenter's `CreateFleet` window.
pub const CREATE_FLEET: Window = Window {
    idle: Duration::from_millis(35),
    max: Duration::from_secs(1),
    max_items: 1_000,
};

/// Karpenter's `DescribeInstances` window.
pub const DESCRIBE_INSTANCES: Window = Window {
    idle: Duration::from_millis(100),
    max: Duration::from_secs(1),
    max_items: 500,
};

/// Karpenter's `TerminateInstances` window.
pub const TERMINATE_INSTANCES: Window = Window {
    idle: Duration::from_millis(100),
    max: Duration::from_secs(1),
    max_items: 500,
};

/// The call a batch makes: the key and every request, in arrival order; it
/// answers each request, in the same order.
pub type Execute<K, Req, Resp> =
    Arc<dyn Fn(K, Vec<Req>) -> Pin<Box<dyn Future<Output = Vec<Resp>> + Send>> + Send + Sync>;

/// The batch's call answered fewer requests than it was given, or panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the batched call gave no answer for this request")]
pub struct NoAnswer;

struct Open<Req, Resp> {
    state: Mutex<OpenState<Req, Resp>>,
    arrived: Notify,
}

struct OpenState<Req, Resp> {
    waiting: Vec<(Req, oneshot::Sender<Resp>)>,
    latest: Instant,
}

type OpenBatches<K, Req, Resp> = Arc<Mutex<HashMap<K, Arc<Open<Req, Resp>>>>>;

/// Merges requests with equal keys into one call of `execute`.
pub struct Batcher<K, Req, Resp> {
    window: Window,
    execute: Execute<K, Req, Resp>,
    open: OpenBatches<K, Req, Resp>,
}

impl<K, Req, Resp> std::fmt::Debug for Batcher<K, Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl<K, Req, Resp> Batcher<K, Req, Resp>
where
    K: Hash + Eq + Clone + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    pub fn new<F, Fut>(window: Window, execute: F) -> Self
    where
        F: Fn(K, Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        Self {
            window,
            execute: Arc::new(move |k, reqs| Box::pin(execute(k, reqs))),
            open: Arc::default(),
        }
    }

    /// Adds `request` to the open batch of `key` (opening one if there is
    /// none) and waits for its answer. Must be called inside a Tokio
    /// runtime: the window runs as a task of its own, so a caller that
    /// gives up does not strand the others.
    pub async fn submit(&self, key: K, request: Req) -> Result<Resp, NoAnswer> {
        let (tx, rx) = oneshot::channel();
        {
            let mut open = lock(&self.open);
            match open.get(&key) {
                Some(batch) => {
                    let full = {
                        let mut s = lock(&batch.state);
                        s.waiting.push((request, tx));
                        s.latest = Instant::now();
                        s.waiting.len() >= self.window.max_items
                    };
                    batch.arrived.notify_one();
                    if full {
                        // Later requests start a new batch at once.
                        open.remove(&key);
                    }
                }
                None => {
                    let batch = Arc::new(Open {
                        state: Mutex::new(OpenState {
                            waiting: vec![(request, tx)],
                            latest: Instant::now(),
                        }),
                        arrived: Notify::new(),
                    });
                    if self.window.max_items > 1 {
                        open.insert(key.clone(), batch.clone());
                    }
                    tokio::spawn(run(
                        self.window,
                        key,
                        batch,
                        self.open.clone(),
                        self.execute.clone(),
                    ));
                }
            }
        }
        rx.await.map_err(|_| NoAnswer)
    }
}

async fn run<K, Req, Resp>(
    window: Window,
    key: K,
    batch: Arc<Open<Req, Resp>>,
    open: OpenBatches<K, Req, Resp>,
    execute: Execute<K, Req, Resp>,
) where
    K: Hash + Eq + Clone,
{
    let first = Instant::now();
    loop {
        let (latest, full) = {
            let s = lock(&batch.state);
            (s.latest, s.waiting.len() >= window.max_items)
        };
        let deadline = (latest + window.idle).min(first + window.max);
        if full || Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = batch.arrived.notified() => {}
        }
    }
    // Closed under the map's lock, so a request either joined this batch
    // before it closed or finds no open batch and starts the next.
    let waiting = {
        let mut open = lock(&open);
        if open.get(&key).is_some_and(|b| Arc::ptr_eq(b, &batch)) {
            open.remove(&key);
        }
        std::mem::take(&mut lock(&batch.state).waiting)
    };
    let (requests, senders): (Vec<Req>, Vec<oneshot::Sender<Resp>>) = waiting.into_iter().unzip();
    let answers = execute(key, requests).await;
    for (tx, answer) in senders.into_iter().zip(answers) {
        // A caller that stopped waiting does not need its answer.
        let _ = tx.send(answer);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Calls = Arc<Mutex<Vec<(&'static str, Vec<u32>, Instant)>>>;

    /// A batcher that records each call and answers each request with
    /// itself times ten.
    fn recording(window: Window) -> (Arc<Batcher<&'static str, u32, u32>>, Calls) {
        let calls: Calls = Arc::default();
        let seen = calls.clone();
        let b = Batcher::new(window, move |key, reqs: Vec<u32>| {
            lock(&seen).push((key, reqs.clone(), Instant::now()));
            async move { reqs.into_iter().map(|r| r * 10).collect() }
        });
        (Arc::new(b), calls)
    }

    fn spawn_at(
        b: &Arc<Batcher<&'static str, u32, u32>>,
        after_ms: u64,
        key: &'static str,
        req: u32,
    ) -> tokio::task::JoinHandle<Result<u32, NoAnswer>> {
        let b = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            b.submit(key, req).await
        })
    }

    #[tokio::test(start_paused = true)]
    async fn alike_requests_in_one_window_make_one_call_and_each_gets_its_answer() {
        let (b, calls) = recording(CREATE_FLEET);
        let start = Instant::now();
        let hs: Vec<_> = (0..5)
            .map(|i| spawn_at(&b, i * 10, "k", i as u32))
            .collect();
        let mut answers = Vec::new();
        for h in hs {
            answers.push(h.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![0, 10, 20, 30, 40]);
        let calls = lock(&calls);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].1, vec![0, 1, 2, 3, 4]);
        // The last request came at 40 ms; the window closed 35 ms later.
        assert_eq!(calls[0].2 - start, Duration::from_millis(75));
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_are_separate_calls() {
        let (b, calls) = recording(CREATE_FLEET);
        let x = spawn_at(&b, 0, "a", 1);
        let y = spawn_at(&b, 0, "b", 2);
        assert_eq!(x.await.unwrap(), Ok(10));
        assert_eq!(y.await.unwrap(), Ok(20));
        let mut keys: Vec<_> = lock(&calls).iter().map(|c| c.0).collect();
        keys.sort();
        assert_eq!(keys, vec!["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_closes_after_idle_without_a_new_request() {
        let (b, calls) = recording(DESCRIBE_INSTANCES);
        let first = spawn_at(&b, 0, "k", 1);
        // 100 ms idle closes the first window before this one arrives.
        let second = spawn_at(&b, 150, "k", 2);
        assert_eq!(first.await.unwrap(), Ok(10));
        assert_eq!(second.await.unwrap(), Ok(20));
        let calls = lock(&calls);
        assert_eq!(
            calls.iter().map(|c| c.1.clone()).collect::<Vec<_>>(),
            vec![vec![1], vec![2]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_window_closes_at_max_after_the_first_request() {
        let (b, calls) = recording(TERMINATE_INSTANCES);
        let start = Instant::now();
        // One request every 50 ms for 1.5 s: never 100 ms idle.
        let hs: Vec<_> = (0..30)
            .map(|i| spawn_at(&b, i * 50, "k", i as u32))
            .collect();
        for h in hs {
            h.await.unwrap().unwrap();
        }
        let calls = lock(&calls);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].2 - start, Duration::from_secs(1));
        // Requests at 0..=1000 ms joined the first window (the one at
        // 1000 ms arrives as it closes and may land either side).
        assert!((20..=21).contains(&calls[0].1.len()), "{:?}", calls[0].1);
        assert_eq!(calls[0].1.len() + calls[1].1.len(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_closes_at_once() {
        let window = Window {
            max_items: 3,
            ..CREATE_FLEET
        };
        let (b, calls) = recording(window);
        let start = Instant::now();
        let hs: Vec<_> = (0..4).map(|i| spawn_at(&b, 0, "k", i)).collect();
        for h in hs {
            h.await.unwrap().unwrap();
        }
        let calls = lock(&calls);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].1.len(), 3);
        assert_eq!(calls[0].2, start, "no waiting for the idle window");
        assert_eq!(calls[1].1.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_answers_too_few_leaves_the_rest_without_an_answer() {
        let b: Arc<Batcher<(), u32, u32>> =
            Arc::new(Batcher::new(CREATE_FLEET, |_, reqs: Vec<u32>| async move {
                reqs.into_iter().take(1).collect()
            }));
        let (x, y) = tokio::join!(b.submit((), 1), b.submit((), 2));
        assert_eq!(x, Ok(1));
        assert_eq!(y, Err(NoAnswer));
    }
}
