//! The interruption queue: long-polls the SQS queue EventBridge feeds,
//! hands each message's [`Interruption`]s to the controller and deletes the
//! message, as Karpenter's interruption controller does.
//!
//! Only the leader should run it: a message is deleted once handed over, so
//! a follower reading the queue would take messages the leader never sees.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use dovetail_control::interruption::Interruption;
use tokio::sync::{mpsc, watch};

use super::message::{self, MessageKind};

/// Where the loop reports, with Karpenter's metric semantics; the binary
/// implements it over its registry.
pub trait InterruptionMetrics: Send + Sync {
    /// A message was read (`karpenter_interruption_received_messages_total`,
    /// `message_type` = `kind`, e.g. `spot_interrupted` or `no_op`).
    fn received(&self, kind: &str);
    /// A message was deleted from the queue
    /// (`karpenter_interruption_deleted_messages_total`).
    fn deleted(&self);
    /// An actionable message was handed over this long after its event
    /// happened (`karpenter_interruption_message_queue_duration_seconds`).
    fn latency(&self, seconds: f64);
    /// A message could not be read (it is deleted too).
    fn malformed(&self);
}

/// Metrics that go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl InterruptionMetrics for NoMetrics {
    fn received(&self, _kind: &str) {}
    fn deleted(&self) {}
    fn latency(&self, _seconds: f64) {}
    fn malformed(&self) {}
}

/// How the queue is polled; the defaults are Karpenter's.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Long-poll wait of one ReceiveMessage (whole seconds, at most 20).
    pub wait: Duration,
    /// Messages per ReceiveMessage (1 to 10).
    pub max_messages: i32,
    /// How long a received message stays hidden from other receives: one
    /// that was not deleted (the loop stopped mid-batch, the delete failed)
    /// comes back after it.
    pub visibility_timeout: Duration,
    /// First wait after a failed call; it doubles up to `retry_max` and
    /// starts over after a success.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(20),
            max_messages: 10,
            visibility_timeout: Duration::from_secs(20),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// The URL of the interruption queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl(String);

/// Why the queue's URL could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error(
        "the interruption queue {name:?} does not exist in this account and region: create it (Karpenter's CloudFormation stack does, named like the cluster) or correct the queue name"
    )]
    NoSuchQueue { name: String },
    #[error(
        "looking up the URL of the interruption queue {name:?} failed: {message}; check the controller's IAM permissions (sqs:GetQueueUrl) and the region"
    )]
    Lookup { name: String, message: String },
}

impl QueueUrl {
    /// The URL of the queue named `name` (GetQueueUrl).
    pub async fn lookup(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<Self, QueueError> {
        match sqs.get_queue_url().queue_name(name).send().await {
            Ok(out) => out
                .queue_url()
                .map(|u| Self(u.to_owned()))
                .ok_or_else(|| QueueError::NoSuchQueue { name: name.into() }),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist())
                {
                    Err(QueueError::NoSuchQueue { name: name.into() })
                } else {
                    Err(QueueError::Lookup {
                        name: name.into(),
                        message: DisplayErrorContext(&e).to_string(),
                    })
                }
            }
        }
    }

    /// A URL known already.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why [`InterruptionQueue::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The stop signal was set (or its sender dropped).
    Stopped,
    /// The receiver of the interruptions is gone: nothing would act on them.
    ConsumerGone,
}

/// The loop over one queue.
pub struct InterruptionQueue {
    sqs: aws_sdk_sqs::Client,
    url: QueueUrl,
    config: QueueConfig,
    metrics: Arc<dyn InterruptionMetrics>,
}

impl std::fmt::Debug for InterruptionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client is left out: its configuration holds credentials.
        f.debug_struct("InterruptionQueue")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One received message: what deleting it needs, and what it said.
struct Received {
    receipt_handle: String,
}

impl InterruptionQueue {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        url: QueueUrl,
        config: QueueConfig,
        metrics: Arc<dyn InterruptionMetrics>,
    ) -> Self {
        Self {
            sqs,
            url,
            config,
            metrics,
        }
    }

    pub fn url(&self) -> &QueueUrl {
        &self.url
    }

    /// Polls until `stop` is set: every message read is handed over on
    /// `out` (waiting while the controller is behind) and then deleted.
    /// SQS errors are logged and retried with backoff; they never end the
    /// loop.
    pub async fn run(
        &self,
        out: mpsc::Sender<Interruption>,
        mut stop: watch::Receiver<bool>,
    ) -> Ended {
        let mut backoff = self.config.retry_initial;
        loop {
            if *stop.borrow() {
                return Ended::Stopped;
            }
            let received = tokio::select! {
                r = self.receive() => r,
                () = stopped(&mut stop) => return Ended::Stopped,
            };
            let messages = match received {
                Ok(m) => {
                    backoff = self.config.retry_initial;
                    m
                }
                Err(e) => {
                    tracing::warn!(
                        queue = self.url.as_str(),
                        retry_in = ?backoff,
                        "receiving from the interruption queue failed: {e}"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stopped(&mut stop) => return Ended::Stopped,
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                    continue;
                }
            };
            let mut done = Vec::with_capacity(messages.len());
            for m in messages {
                // Without a receipt handle a message cannot be deleted; it
                // will come back with one.
                let Some(receipt_handle) = m.receipt_handle else {
                    continue;
                };
                let id = m.message_id.as_deref().unwrap_or("");
                match message::parse(m.body.as_deref().unwrap_or("")) {
                    Err(e) => {
                        self.metrics.malformed();
                        tracing::warn!(
                            queue = self.url.as_str(),
                            message_id = id,
                            "deleting an interruption message that cannot be read: {e}"
                        );
                    }
                    Ok(read) => {
                        self.metrics.received(read.kind.label());
                        for interruption in read.interruptions {
                            tokio::select! {
                                sent = out.send(interruption) => {
                                    if sent.is_err() {
                                        return Ended::ConsumerGone;
                                    }
                                }
                                () = stopped(&mut stop) => return Ended::Stopped,
                            }
                        }
                        if read.kind != MessageKind::NoOp
                            && let Some(t) = read.time_ms
                        {
                            let waited_ms = now_ms().saturating_sub(t).max(0);
                            self.metrics.latency(waited_ms as f64 / 1000.0);
                        }
                    }
                }
                done.push(Received { receipt_handle });
            }
            self.delete(done).await;
        }
    }

    async fn receive(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
        let wait = self.config.wait.as_secs().min(20) as i32;
        let visibility = self.config.visibility_timeout.as_secs().min(43_200) as i32;
        self.sqs
            .receive_message()
            .queue_url(self.url.as_str())
            .max_number_of_messages(self.config.max_messages.clamp(1, 10))
            .wait_time_seconds(wait)
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }

    /// Deletes handled messages, ten per call. A message whose delete fails
    /// comes back after the visibility timeout and is handled again, which
    /// is harmless: a NodeClaim already deleting is left alone.
    async fn delete(&self, done: Vec<Received>) {
        for chunk in done.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.receipt_handle)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let result = self
                .sqs
                .delete_message_batch()
                .queue_url(self.url.as_str())
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(out) => {
                    for _ in out.successful() {
                        self.metrics.deleted();
                    }
                    for failed in out.failed() {
                        tracing::warn!(
                            queue = self.url.as_str(),
                            code = failed.code(),
                            "deleting an interruption message failed; it will be handled again: {}",
                            failed.message().unwrap_or("")
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    queue = self.url.as_str(),
                    "deleting interruption messages failed; they will be handled again: {}",
                    DisplayErrorContext(&e)
                ),
            }
        }
    }
}

/// Resolves once `stop` is set or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: nobody can ask to go on.
    let _ = stop.wait_for(|s| *s).await;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
