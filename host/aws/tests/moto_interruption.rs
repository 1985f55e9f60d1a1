//! The interruption queue against a real SQS API (moto): messages of every
//! kind are handed over and deleted, an unreadable one is counted and
//! deleted, and SQS errors do not end the loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use dovetail_aws::clients::Clients;
use dovetail_aws::interruption::{
    Ended, InterruptionMetrics, InterruptionQueue, QueueConfig, QueueError, QueueUrl,
};
use dovetail_control::interruption::{Interruption, InterruptionKind};
use dovetail_moto::Moto;
use serde_json::json;
use tokio::sync::{mpsc, watch};

/// Every metrics call, in order.
#[derive(Debug, Default)]
struct Recorded {
    received: Vec<String>,
    deleted: u32,
    latencies: Vec<f64>,
    malformed: u32,
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Recorded>);

impl InterruptionMetrics for Recorder {
    fn received(&self, kind: &str) {
        self.0.lock().unwrap().received.push(kind.to_owned());
    }
    fn deleted(&self) {
        self.0.lock().unwrap().deleted += 1;
    }
    fn latency(&self, seconds: f64) {
        self.0.lock().unwrap().latencies.push(seconds);
    }
    fn malformed(&self) {
        self.0.lock().unwrap().malformed += 1;
    }
}

fn quick() -> QueueConfig {
    QueueConfig {
        wait: Duration::from_secs(1),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        ..QueueConfig::default()
    }
}

fn event(source: &str, detail_type: &str, detail: serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": "5e0f2a4c-4a4b-4c5e-9f0e-1f2e3d4c5b6a",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2024-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

fn bodies() -> Vec<String> {
    vec![
        event(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": "i-00000000000000001", "instance-action": "terminate"}),
        ),
        event(
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            json!({"instance-id": "i-00000000000000002"}),
        ),
        event(
            "aws.health",
            "AWS Health Event",
            json!({
                "service": "EC2",
                "eventTypeCategory": "scheduledChange",
                "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "affectedEntities": [
                    {"entityValue": "i-00000000000000003"},
                    {"entityValue": "i-00000000000000004"},
                ],
            }),
        ),
        event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-00000000000000005", "state": "stopping"}),
        ),
        event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-00000000000000006", "state": "terminated"}),
        ),
        event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-00000000000000007", "state": "running"}),
        ),
        event(
            "aws.ec2",
            "EC2 Capacity Reservation Instance Interruption Warning",
            json!({"instance-id": "i-00000000000000008", "instance-action": "terminate"}),
        ),
        "{\"version\": \"0\", \"detail-type\": ".to_owned(),
    ]
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &QueueUrl, bodies: &[String]) {
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .build()
                    .unwrap()
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(url.as_str())
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed().is_empty(), "{:?}", out.failed());
    }
}

async fn visible_messages(sqs: &aws_sdk_sqs::Client, url: &QueueUrl) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url.as_str())
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().cloned().unwrap_or_default();
    format!(
        "{}+{}",
        attrs[&QueueAttributeName::ApproximateNumberOfMessages],
        attrs[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_is_handed_over_and_every_message_deleted() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let sqs = clients.sqs.clone();
    sqs.create_queue()
        .queue_name("dovetail-cluster")
        .send()
        .await
        .unwrap();
    let url = QueueUrl::lookup(&sqs, "dovetail-cluster").await.unwrap();
    send(&sqs, &url, &bodies()).await;

    let metrics = Arc::new(Recorder::default());
    let queue = InterruptionQueue::new(sqs.clone(), url.clone(), quick(), metrics.clone());
    let (tx, mut rx) = mpsc::channel(4);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(async move { queue.run(tx, stop).await });

    let mut got = Vec::new();
    while got.len() < 7 {
        let next = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an interruption within 20 s")
            .expect("the loop keeps running");
        got.push(next);
    }
    // Every message is read and deleted, and nothing more arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metrics.0.lock().unwrap().deleted < 8 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", metrics.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err(),
        "no more interruptions"
    );
    stop_tx.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Ended::Stopped);

    got.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let expected: Vec<Interruption> = [
        (InterruptionKind::SpotInterruption, 1),
        (InterruptionKind::RebalanceRecommendation, 2),
        (InterruptionKind::ScheduledChange, 3),
        (InterruptionKind::ScheduledChange, 4),
        (InterruptionKind::InstanceStopping, 5),
        (InterruptionKind::InstanceTerminating, 6),
        (InterruptionKind::CapacityReservationInterruption, 8),
    ]
    .into_iter()
    .map(|(kind, n)| Interruption {
        kind,
        instance_id: format!("i-{n:017}"),
    })
    .collect();
    assert_eq!(got, expected);

    {
        let m = metrics.0.lock().unwrap();
        let mut received = m.received.clone();
        received.sort();
        assert_eq!(
            received,
            [
                "capacity_reservation_interrupted",
                "instance_stopped",
                "instance_terminated",
                "no_op",
                "rebalance_recommendation",
                "scheduled_change",
                "spot_interrupted",
            ]
        );
        assert_eq!(m.malformed, 1);
        assert_eq!(m.deleted, 8, "the malformed and the no-op are deleted too");
        // Actionable messages only; the events are from 2024.
        assert_eq!(m.latencies.len(), 6);
        assert!(
            m.latencies.iter().all(|s| *s > 86_400.0),
            "{:?}",
            m.latencies
        );
    }

    assert_eq!(visible_messages(&sqs, &url).await, "0+0");
    let again = sqs
        .receive_message()
        .queue_url(url.as_str())
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(again.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_errors_are_retried_and_do_not_end_the_loop() {
    let moto = Moto::start();
    let sqs = Clients::local(moto.endpoint(), "us-east-1").sqs;
    assert_eq!(
        QueueUrl::lookup(&sqs, "not-yet").await,
        Err(QueueError::NoSuchQueue {
            name: "not-yet".into()
        })
    );
    // The queue's URL as SQS will give it, before the queue exists: every
    // receive fails until it is created.
    let probe = sqs.create_queue().queue_name("probe").send().await.unwrap();
    let url = QueueUrl::new(probe.queue_url().unwrap().replace("probe", "not-yet"));
    let metrics = Arc::new(Recorder::default());
    let queue = InterruptionQueue::new(sqs.clone(), url.clone(), quick(), metrics.clone());
    let (tx, mut rx) = mpsc::channel(4);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(async move { queue.run(tx, stop).await });

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!task.is_finished(), "an SQS error does not end the loop");
    let receives = moto.calls().of("sqs", "ReceiveMessage");
    assert!(receives >= 2, "failed receives are retried ({receives})");
    assert!(
        receives < 20,
        "with backoff, not in a tight loop ({receives})"
    );

    sqs.create_queue()
        .queue_name("not-yet")
        .send()
        .await
        .unwrap();
    send(&sqs, &url, &bodies()[..1]).await;
    let got = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the loop recovers once the queue exists")
        .unwrap();
    assert_eq!(got.instance_id, "i-00000000000000001");
    stop_tx.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Ended::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_ends_when_nothing_consumes_interruptions_and_keeps_the_message() {
    let moto = Moto::start();
    let sqs = Clients::local(moto.endpoint(), "us-east-1").sqs;
    sqs.create_queue().queue_name("q").send().await.unwrap();
    let url = QueueUrl::lookup(&sqs, "q").await.unwrap();
    send(&sqs, &url, &bodies()[..1]).await;
    let metrics = Arc::new(Recorder::default());
    let queue = InterruptionQueue::new(sqs.clone(), url.clone(), quick(), metrics.clone());
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    let (_stop_tx, stop) = watch::channel(false);
    let ended = tokio::time::timeout(Duration::from_secs(20), queue.run(tx, stop))
        .await
        .expect("the loop ends");
    assert_eq!(ended, Ended::ConsumerGone);
    assert_eq!(metrics.0.lock().unwrap().deleted, 0);
    // Not deleted: it comes back after the visibility timeout.
    assert_eq!(visible_messages(&sqs, &url).await, "0+1");
}
