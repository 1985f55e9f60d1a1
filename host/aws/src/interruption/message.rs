//! One interruption-queue message: an EventBridge event as SQS delivers it,
//! read into the [`Interruption`]s it announces.
//!
//! Routing is Karpenter's: by the envelope's exact (`version`, `source`,
//! `detail-type`). Events Dovetail does not act on (another detail-type, a
//! Health event for another service or category, an instance state other
//! than stopping, stopped, shutting-down or terminated) are no-ops, counted
//! and deleted like the rest; only bodies that cannot be read are errors.

use std::collections::HashSet;

use aws_sdk_sqs::primitives::{DateTime, DateTimeFormat};
use dovetail_control::interruption::{Interruption, InterruptionKind};
use serde_json::{Map, Value};

/// The largest body read: SQS's own message size limit (1 MiB). Anything
/// larger did not come from SQS.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most instances one message may name: a Health event lists its
/// affected entities, and an account's EC2 instance quota is far below this.
pub const MAX_INSTANCES: usize = 10_000;

/// The longest instance ID accepted (`i-` and 17 hex digits today).
const MAX_INSTANCE_ID_LEN: usize = 64;

/// What a message is, with Karpenter's `message_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    SpotInterrupted,
    RebalanceRecommendation,
    ScheduledChange,
    InstanceStopped,
    InstanceTerminated,
    CapacityReservationInterrupted,
    /// Nothing to act on.
    NoOp,
}

impl MessageKind {
    /// The `message_type` label of `karpenter_interruption_received_messages_total`.
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::SpotInterrupted => "spot_interrupted",
            MessageKind::RebalanceRecommendation => "rebalance_recommendation",
            MessageKind::ScheduledChange => "scheduled_change",
            MessageKind::InstanceStopped => "instance_stopped",
            MessageKind::InstanceTerminated => "instance_terminated",
            MessageKind::CapacityReservationInterrupted => "capacity_reservation_interrupted",
            MessageKind::NoOp => "no_op",
        }
    }

    /// The interruption each named instance gets; `None` for a no-op.
    pub fn interruption(self) -> Option<InterruptionKind> {
        Some(match self {
            MessageKind::SpotInterrupted => InterruptionKind::SpotInterruption,
            MessageKind::RebalanceRecommendation => InterruptionKind::RebalanceRecommendation,
            MessageKind::ScheduledChange => InterruptionKind::ScheduledChange,
            MessageKind::InstanceStopped => InterruptionKind::InstanceStopping,
            MessageKind::InstanceTerminated => InterruptionKind::InstanceTerminating,
            MessageKind::CapacityReservationInterrupted => {
                InterruptionKind::CapacityReservationInterruption
            }
            MessageKind::NoOp => return None,
        })
    }
}

/// One message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    /// The event's `id`, for logs.
    pub id: Option<String>,
    /// When the event happened (its `time`, Unix ms): how long it waited in
    /// the queue is measured from here.
    pub time_ms: Option<i64>,
    /// One per instance named (several for a Health event); empty for a
    /// no-op.
    pub interruptions: Vec<Interruption>,
}

impl Message {
    fn no_op(id: Option<String>, time_ms: Option<i64>) -> Self {
        Self {
            kind: MessageKind::NoOp,
            id,
            time_ms,
            interruptions: Vec::new(),
        }
    }
}

/// Why a body could not be read. The message is deleted all the same: it
/// would not read any better when delivered again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error(
        "the message body is {bytes} bytes, more than SQS's limit of {MAX_BODY_BYTES}; only EventBridge events belong on the interruption queue"
    )]
    TooLarge { bytes: usize },
    #[error(
        "the message body is not JSON ({reason}); only EventBridge events belong on the interruption queue"
    )]
    NotJson { reason: String },
    #[error(
        "the message body is JSON but not an EventBridge event object; only EventBridge events belong on the interruption queue"
    )]
    NotAnObject,
    #[error("`{field}` should be {expected}; the event does not have EventBridge's shape")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("`time` is {value:?}, not an RFC 3339 time such as 2024-01-01T00:00:00Z")]
    BadTime { value: String },
    #[error("the {detail_type:?} event names no instance (`{field}` is missing or empty)")]
    MissingInstanceId {
        detail_type: &'static str,
        field: &'static str,
    },
    #[error("the {detail_type:?} event names {value:?}, which is not an EC2 instance ID (i-…)")]
    BadInstanceId {
        detail_type: &'static str,
        value: String,
    },
    #[error(
        "the event names {count} instances, more than the {MAX_INSTANCES} one message may name"
    )]
    TooManyInstances { count: usize },
}

const SPOT: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
const HEALTH: &str = "AWS Health Event";
const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
const CAPACITY_RESERVATION: &str = "EC2 Capacity Reservation Instance Interruption Warning";

/// Reads one SQS message body.
pub fn parse(body: &str) -> Result<Message, MessageError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(MessageError::TooLarge { bytes: body.len() });
    }
    // Karpenter reads an empty body as nothing to do.
    if body.trim().is_empty() {
        return Ok(Message::no_op(None, None));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| MessageError::NotJson {
        reason: e.to_string(),
    })?;
    let Value::Object(event) = value else {
        return Err(MessageError::NotAnObject);
    };
    let id = string(&event, "id", "id")?.map(str::to_owned);
    let time_ms = match string(&event, "time", "time")? {
        None => None,
        Some(t) => Some(parse_time(t)?),
    };
    let version = string(&event, "version", "version")?;
    let source = string(&event, "source", "source")?;
    let detail_type = string(&event, "detail-type", "detail-type")?;
    let (Some("0"), Some(source), Some(detail_type)) = (version, source, detail_type) else {
        return Ok(Message::no_op(id, time_ms));
    };
    let detail = match event.get("detail") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => Some(d),
        Some(_) => {
            return Err(MessageError::WrongType {
                field: "detail",
                expected: "an object",
            });
        }
    };
    let empty = Map::new();
    let detail = detail.unwrap_or(&empty);
    let (kind, ids) = match (source, detail_type) {
        ("aws.ec2", SPOT) => (
            MessageKind::SpotInterrupted,
            vec![instance_id(detail, SPOT)?],
        ),
        ("aws.ec2", REBALANCE) => (
            MessageKind::RebalanceRecommendation,
            vec![instance_id(detail, REBALANCE)?],
        ),
        ("aws.ec2", CAPACITY_RESERVATION) => (
            MessageKind::CapacityReservationInterrupted,
            vec![instance_id(detail, CAPACITY_RESERVATION)?],
        ),
        ("aws.ec2", STATE_CHANGE) => {
            let kind = match string(detail, "state", "detail.state")? {
                Some("stopping" | "stopped") => MessageKind::InstanceStopped,
                Some("shutting-down" | "terminated") => MessageKind::InstanceTerminated,
                // pending, running and states yet to come need nothing.
                _ => return Ok(Message::no_op(id, time_ms)),
            };
            (kind, vec![instance_id(detail, STATE_CHANGE)?])
        }
        ("aws.health", HEALTH) => {
            let service = string(detail, "service", "detail.service")?;
            let category = string(detail, "eventTypeCategory", "detail.eventTypeCategory")?;
            if service != Some("EC2") || category != Some("scheduledChange") {
                return Ok(Message::no_op(id, time_ms));
            }
            (MessageKind::ScheduledChange, affected_instances(detail)?)
        }
        _ => return Ok(Message::no_op(id, time_ms)),
    };
    let interruption = kind
        .interruption()
        .expect("every kind routed above is actionable");
    Ok(Message {
        kind,
        id,
        time_ms,
        interruptions: ids
            .into_iter()
            .map(|instance_id| Interruption {
                kind: interruption,
                instance_id,
            })
            .collect(),
    })
}

/// `object[key]` as a string: `None` when absent or null.
fn string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, MessageError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(MessageError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn parse_time(value: &str) -> Result<i64, MessageError> {
    let bad = || MessageError::BadTime {
        value: value.chars().take(64).collect(),
    };
    DateTime::from_str(value, DateTimeFormat::DateTimeWithOffset)
        .map_err(|_| bad())?
        .to_millis()
        .map_err(|_| bad())
}

fn instance_id(
    detail: &Map<String, Value>,
    detail_type: &'static str,
) -> Result<String, MessageError> {
    match string(detail, "instance-id", "detail.instance-id")? {
        None | Some("") => Err(MessageError::MissingInstanceId {
            detail_type,
            field: "detail.instance-id",
        }),
        Some(id) => checked_instance_id(id, detail_type),
    }
}

/// The EC2 instances of a Health event, each once, in the event's order.
fn affected_instances(detail: &Map<String, Value>) -> Result<Vec<String>, MessageError> {
    const FIELD: &str = "detail.affectedEntities";
    let entities = match detail.get("affectedEntities") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(MessageError::WrongType {
                field: FIELD,
                expected: "an array of {\"entityValue\": \"i-…\"}",
            });
        }
    };
    if entities.len() > MAX_INSTANCES {
        return Err(MessageError::TooManyInstances {
            count: entities.len(),
        });
    }
    let mut seen = HashSet::with_capacity(entities.len());
    let mut ids: Vec<String> = Vec::with_capacity(entities.len());
    for entity in entities {
        let Value::Object(entity) = entity else {
            return Err(MessageError::WrongType {
                field: FIELD,
                expected: "an array of {\"entityValue\": \"i-…\"}",
            });
        };
        let Some(value) = string(
            entity,
            "entityValue",
            "detail.affectedEntities[].entityValue",
        )?
        else {
            continue;
        };
        let id = checked_instance_id(value, HEALTH)?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(MessageError::MissingInstanceId {
            detail_type: HEALTH,
            field: "detail.affectedEntities[].entityValue",
        });
    }
    Ok(ids)
}

/// An instance ID as EC2 writes them: `i-` and lowercase hex. Anything else
/// would never match a NodeClaim, and should not reach logs unchecked.
fn checked_instance_id(value: &str, detail_type: &'static str) -> Result<String, MessageError> {
    let hex = value.strip_prefix("i-").unwrap_or("");
    let ok = !hex.is_empty()
        && value.len() <= MAX_INSTANCE_ID_LEN
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(MessageError::BadInstanceId {
            detail_type,
            value: value.chars().take(MAX_INSTANCE_ID_LEN).collect(),
        })
    }
}
