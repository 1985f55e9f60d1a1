//! Interruption messages as EventBridge delivers them to SQS: each kind
//! Karpenter acts on, the events it ignores, and bodies that cannot be read.

use dovetail_aws::interruption::{MessageError, MessageKind, parse};
use dovetail_control::interruption::{Interruption, InterruptionKind};
use serde_json::json;

const TIME: &str = "2024-01-01T00:00:00Z";
const TIME_MS: i64 = 1_704_067_200_000;

fn event(source: &str, detail_type: &str, detail: serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": source,
        "account": "111122223333",
        "time": TIME,
        "region": "us-west-2",
        "resources": ["arn:aws:ec2:us-west-2:111122223333:instance/i-0abcdef1234567890"],
        "detail": detail,
    })
    .to_string()
}

fn one(kind: InterruptionKind, id: &str) -> Vec<Interruption> {
    vec![Interruption {
        kind,
        instance_id: id.into(),
    }]
}

#[test]
fn spot_interruption_warning() {
    let body = event(
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": "i-0abcdef1234567890", "instance-action": "terminate"}),
    );
    let m = parse(&body).unwrap();
    assert_eq!(m.kind, MessageKind::SpotInterrupted);
    assert_eq!(m.kind.label(), "spot_interrupted");
    assert_eq!(m.time_ms, Some(TIME_MS));
    assert_eq!(
        m.id.as_deref(),
        Some("7bf73129-1428-4cd3-a780-95db273d1602")
    );
    assert_eq!(
        m.interruptions,
        one(InterruptionKind::SpotInterruption, "i-0abcdef1234567890")
    );
}

#[test]
fn rebalance_recommendation() {
    let body = event(
        "aws.ec2",
        "EC2 Instance Rebalance Recommendation",
        json!({"instance-id": "i-0123456789abcdef0"}),
    );
    let m = parse(&body).unwrap();
    assert_eq!(m.kind.label(), "rebalance_recommendation");
    assert_eq!(
        m.interruptions,
        one(
            InterruptionKind::RebalanceRecommendation,
            "i-0123456789abcdef0"
        )
    );
}

#[test]
fn capacity_reservation_interruption() {
    let body = event(
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
        json!({"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}),
    );
    let m = parse(&body).unwrap();
    assert_eq!(m.kind.label(), "capacity_reservation_interrupted");
    assert_eq!(
        m.interruptions,
        one(
            InterruptionKind::CapacityReservationInterruption,
            "i-0123456789abcdef0"
        )
    );
}

#[test]
fn state_changes_map_as_karpenter_does() {
    for (state, kind, label) in [
        (
            "stopping",
            InterruptionKind::InstanceStopping,
            "instance_stopped",
        ),
        (
            "stopped",
            InterruptionKind::InstanceStopping,
            "instance_stopped",
        ),
        (
            "shutting-down",
            InterruptionKind::InstanceTerminating,
            "instance_terminated",
        ),
        (
            "terminated",
            InterruptionKind::InstanceTerminating,
            "instance_terminated",
        ),
    ] {
        let body = event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-0123456789abcdef0", "state": state}),
        );
        let m = parse(&body).unwrap();
        assert_eq!(m.kind.label(), label, "{state}");
        assert_eq!(m.interruptions, one(kind, "i-0123456789abcdef0"), "{state}");
    }
}

#[test]
fn other_states_are_ignored_not_malformed() {
    for state in ["pending", "running", "rebooting", "something-new"] {
        let body = event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-0123456789abcdef0", "state": state}),
        );
        let m = parse(&body).unwrap();
        assert_eq!(m.kind, MessageKind::NoOp, "{state}");
        assert_eq!(m.kind.label(), "no_op");
        assert!(m.interruptions.is_empty());
    }
}

fn health(service: &str, category: &str, entities: serde_json::Value) -> String {
    event(
        "aws.health",
        "AWS Health Event",
        json!({
            "eventArn": "arn:aws:health:us-west-2::event/EC2/EC2_INSTANCE_RETIREMENT_SCHEDULED/EC2_INSTANCE_RETIREMENT_SCHEDULED_1",
            "service": service,
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": category,
            "startTime": "Mon, 05 Feb 2024 08:00:00 GMT",
            "endTime": "Mon, 05 Feb 2024 10:00:00 GMT",
            "eventDescription": [{"language": "en_US", "latestDescription": "retirement"}],
            "affectedEntities": entities,
        }),
    )
}

#[test]
fn health_scheduled_change_names_every_instance_once() {
    let body = health(
        "EC2",
        "scheduledChange",
        json!([
            {"entityValue": "i-0aaaaaaaaaaaaaaaa"},
            {"entityValue": "i-0bbbbbbbbbbbbbbbb"},
            {"entityValue": "i-0aaaaaaaaaaaaaaaa"},
        ]),
    );
    let m = parse(&body).unwrap();
    assert_eq!(m.kind.label(), "scheduled_change");
    let ids: Vec<&str> = m
        .interruptions
        .iter()
        .map(|i| i.instance_id.as_str())
        .collect();
    assert_eq!(ids, ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"]);
    assert!(
        m.interruptions
            .iter()
            .all(|i| i.kind == InterruptionKind::ScheduledChange)
    );
}

#[test]
fn health_events_for_other_services_or_categories_are_ignored() {
    let entities = json!([{"entityValue": "i-0aaaaaaaaaaaaaaaa"}]);
    for (service, category) in [
        ("EBS", "scheduledChange"),
        ("EC2", "issue"),
        ("EC2", "accountNotification"),
    ] {
        let m = parse(&health(service, category, entities.clone())).unwrap();
        assert_eq!(m.kind, MessageKind::NoOp, "{service} {category}");
    }
}

#[test]
fn unknown_events_are_no_ops_as_in_karpenter() {
    let other_type = event(
        "aws.ec2",
        "EC2 Fleet Spot Instance Request Error",
        json!({}),
    );
    let other_source = event(
        "aws.autoscaling",
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": "i-0abc"}),
    );
    let other_version = json!({
        "version": "1", "source": "aws.ec2",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "detail": {"instance-id": "i-0abc"},
    })
    .to_string();
    for body in [other_type, other_source, other_version, String::new()] {
        let m = parse(&body).unwrap();
        assert_eq!(m.kind, MessageKind::NoOp, "{body}");
        assert!(m.interruptions.is_empty());
    }
}

#[test]
fn bodies_that_are_not_events_are_malformed() {
    let spot = event(
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": "i-0abcdef1234567890"}),
    );
    // Truncated in the middle.
    let truncated = &spot[..spot.len() / 2];
    assert!(matches!(
        parse(truncated),
        Err(MessageError::NotJson { .. })
    ));
    assert!(matches!(
        parse("not json"),
        Err(MessageError::NotJson { .. })
    ));
    assert_eq!(parse("[1, 2, 3]"), Err(MessageError::NotAnObject));
    assert_eq!(parse("\"a string\""), Err(MessageError::NotAnObject));
    // Nesting deep enough to exhaust a recursive reader is refused, not a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(parse(&deep), Err(MessageError::NotJson { .. })));
}

#[test]
fn huge_bodies_are_refused_before_reading() {
    let huge = format!(
        "{{\"version\":\"0\",\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let e = parse(&huge).unwrap_err();
    assert!(matches!(e, MessageError::TooLarge { bytes } if bytes > 2 * 1024 * 1024));
    assert!(e.to_string().contains("interruption queue"), "{e}");
}

#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (
            json!({"version": "0", "source": 5, "detail-type": "x"}),
            "source",
        ),
        (
            json!({"version": "0", "source": "aws.ec2",
                "detail-type": "EC2 Spot Instance Interruption Warning", "detail": "i-0abc"}),
            "detail",
        ),
        (
            json!({"version": "0", "source": "aws.ec2",
                "detail-type": "EC2 Spot Instance Interruption Warning",
                "detail": {"instance-id": 12345}}),
            "detail.instance-id",
        ),
        (
            json!({"version": "0", "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "detail": {"instance-id": "i-0abc", "state": ["stopped"]}}),
            "detail.state",
        ),
        (
            json!({"version": "0", "source": "aws.health", "detail-type": "AWS Health Event",
                "detail": {"service": "EC2", "eventTypeCategory": "scheduledChange",
                    "affectedEntities": {"entityValue": "i-0abc"}}}),
            "detail.affectedEntities",
        ),
        (json!({"version": "0", "time": 1_704_067_200}), "time"),
    ];
    for (body, field) in cases {
        let e = parse(&body.to_string()).unwrap_err();
        assert!(
            matches!(&e, MessageError::WrongType { field: f, .. } if *f == field),
            "{body}: {e:?}"
        );
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn a_bad_time_is_malformed() {
    let body = json!({"version": "0", "source": "aws.ec2", "time": "yesterday",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "detail": {"instance-id": "i-0abc"}});
    let e = parse(&body.to_string()).unwrap_err();
    assert_eq!(
        e,
        MessageError::BadTime {
            value: "yesterday".into()
        }
    );
}

#[test]
fn missing_or_bogus_instance_ids_are_malformed() {
    let spot = |detail: serde_json::Value| {
        parse(&event(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            detail,
        ))
    };
    assert!(matches!(
        spot(json!({"instance-action": "terminate"})),
        Err(MessageError::MissingInstanceId {
            field: "detail.instance-id",
            ..
        })
    ));
    assert!(matches!(
        spot(json!({"instance-id": ""})),
        Err(MessageError::MissingInstanceId { .. })
    ));
    let no_detail = json!({"version": "0", "source": "aws.ec2",
        "detail-type": "EC2 Instance Rebalance Recommendation"});
    assert!(matches!(
        parse(&no_detail.to_string()),
        Err(MessageError::MissingInstanceId { .. })
    ));
    for bogus in [
        "vol-0abc",
        "i-",
        "i-zz\nfake log line",
        &format!("i-{}", "a".repeat(100)),
    ] {
        let e = spot(json!({"instance-id": bogus})).unwrap_err();
        assert!(
            matches!(e, MessageError::BadInstanceId { .. }),
            "{bogus}: {e:?}"
        );
    }
    let e = parse(&health("EC2", "scheduledChange", json!([]))).unwrap_err();
    assert!(matches!(e, MessageError::MissingInstanceId { .. }), "{e:?}");
    let e = parse(&health("EC2", "scheduledChange", json!(["i-0abc"]))).unwrap_err();
    assert!(
        matches!(
            e,
            MessageError::WrongType {
                field: "detail.affectedEntities",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn too_many_affected_instances_are_refused() {
    let entities: Vec<_> = (0..10_001)
        .map(|i| json!({"entityValue": format!("i-{i:017x}")}))
        .collect();
    let e = parse(&health("EC2", "scheduledChange", json!(entities))).unwrap_err();
    assert_eq!(e, MessageError::TooManyInstances { count: 10_001 });
}
