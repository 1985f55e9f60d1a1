//! `dovetail bench interruption`: how fast the interruption queue loop
//! drains an SQS queue, measured against an SQS-compatible server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use clap::Args;
use dovetail_aws::clients::Clients;
use dovetail_aws::interruption::{InterruptionQueue, QueueConfig, QueueUrl};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::output::{self, outln};

/// Sends N interruption messages of every kind Karpenter handles (spot
/// interruption warnings, rebalance recommendations, Health scheduled
/// changes, stopping and terminated state changes, capacity reservation
/// interruptions) to a fresh queue with SendMessageBatch, then times the
/// interruption loop as it receives, parses, hands over and deletes them
/// all. It reports messages handled per second.
///
/// Start an SQS-compatible server first, for example moto
/// (`moto_server -p 5000`, then `--endpoint http://127.0.0.1:5000`). Dummy
/// credentials are used: never point it at real AWS.
#[derive(Args)]
pub struct InterruptionArgs {
    /// The SQS-compatible server's URL, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    endpoint: String,
    /// Messages sent and drained (at most 100,000).
    #[arg(long, default_value_t = 1000, value_parser = crate::limits::MESSAGES.count(), allow_negative_numbers = true)]
    messages: usize,
    /// The region the clients name.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    messages: usize,
    interruptions: usize,
    /// Sending them, in batches of ten.
    send_seconds: f64,
    /// From the loop's start to the last interruption handed over and
    /// every message deleted.
    drain_seconds: f64,
    messages_per_second: f64,
    /// The same bodies parsed in process, without the server: what the
    /// loop itself can take.
    parsed_per_second: f64,
}

pub fn run(args: &InterruptionArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(measure(args))?;
    let out = output::stdout("the benchmark figures");
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(
            out,
            "{} messages ({} interruptions): sent in {:.2} s, drained in {:.2} s: {:.0} messages/s through the server; parsed alone: {:.0} messages/s",
            report.messages,
            report.interruptions,
            report.send_seconds,
            report.drain_seconds,
            report.messages_per_second,
            report.parsed_per_second
        )?;
    }
    Ok(())
}

/// The `i`-th message body, cycling through the kinds; a Health event names
/// two instances.
fn body(i: usize) -> (String, usize) {
    let id = |n: usize| format!("i-{n:017x}");
    let (source, detail_type, detail, count) = match i % 6 {
        0 => (
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": id(i), "instance-action": "terminate"}),
            1,
        ),
        1 => (
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            json!({"instance-id": id(i)}),
            1,
        ),
        2 => (
            "aws.health",
            "AWS Health Event",
            json!({
                "service": "EC2",
                "eventTypeCategory": "scheduledChange",
                "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "affectedEntities": [{"entityValue": id(i)}, {"entityValue": id(i + crate::limits::MESSAGES.max as usize)}],
            }),
            2,
        ),
        3 => (
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": id(i), "state": "stopping"}),
            1,
        ),
        4 => (
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": id(i), "state": "terminated"}),
            1,
        ),
        _ => (
            "aws.ec2",
            "EC2 Capacity Reservation Instance Interruption Warning",
            json!({"instance-id": id(i), "instance-action": "terminate"}),
            1,
        ),
    };
    let body = json!({
        "version": "0",
        "id": format!("bench-{i}"),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2024-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    });
    (body.to_string(), count)
}

async fn measure(args: &InterruptionArgs) -> Result<Report> {
    let sqs = Clients::local(&args.endpoint, &args.region).sqs;
    let name = format!("dovetail-bench-{}", std::process::id());
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .with_context(|| format!("creating the queue {name} at {}", args.endpoint))?;
    let url = QueueUrl::lookup(&sqs, &name).await?;

    let started = Instant::now();
    let mut expected = 0;
    let indices: Vec<usize> = (0..args.messages).collect();
    for chunk in indices.chunks(10) {
        let mut entries = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let (body, count) = body(i);
            expected += count;
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .context("building a SendMessageBatch entry")?,
            );
        }
        let out = sqs
            .send_message_batch()
            .queue_url(url.as_str())
            .set_entries(Some(entries))
            .send()
            .await
            .context("sending messages")?;
        if !out.failed().is_empty() {
            bail!("{} messages were refused by the server", out.failed().len());
        }
    }
    let send_seconds = started.elapsed().as_secs_f64();

    let config = QueueConfig {
        wait: Duration::from_secs(1),
        ..QueueConfig::default()
    };
    let metrics = Arc::new(Counted::default());
    let queue = InterruptionQueue::new(sqs.clone(), url.clone(), config, metrics.clone());
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(async move { queue.run(tx, stop).await });
    let mut got = 0;
    while got < expected {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(_)) => got += 1,
            Ok(None) => bail!("the queue loop ended after {got} of {expected} interruptions"),
            Err(_) => bail!("no interruption for 60 s after {got} of {expected}"),
        }
    }
    // Handed over is not yet done: the last batch is deleted after.
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.deleted() < args.messages {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} messages were deleted",
                metrics.deleted(),
                args.messages
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = task.await;
    let _ = sqs.delete_queue().queue_url(url.as_str()).send().await;
    let bodies: Vec<String> = (0..args.messages).map(|i| body(i).0).collect();
    let started = Instant::now();
    let mut parsed = 0usize;
    for b in &bodies {
        parsed += dovetail_aws::interruption::parse(b)
            .map(|m| m.interruptions.len())
            .unwrap_or(0);
    }
    let parse_seconds = started.elapsed().as_secs_f64().max(1e-9);
    if parsed != expected {
        bail!("parsing alone found {parsed} interruptions, the loop {expected}");
    }
    Ok(Report {
        messages: args.messages,
        interruptions: expected,
        send_seconds,
        drain_seconds,
        messages_per_second: args.messages as f64 / drain_seconds,
        parsed_per_second: args.messages as f64 / parse_seconds,
    })
}

/// Counts deletions, to know when the queue is drained.
#[derive(Default)]
struct Counted {
    deleted: std::sync::atomic::AtomicUsize,
}

impl Counted {
    fn deleted(&self) -> usize {
        self.deleted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl dovetail_aws::interruption::InterruptionMetrics for Counted {
    fn received(&self, _kind: &str) {}
    fn deleted(&self) {
        self.deleted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn latency(&self, _seconds: f64) {}
    fn malformed(&self) {}
}
