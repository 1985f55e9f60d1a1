//! Interruption messages from the SQS queue EventBridge feeds: reading them
//! ([`message`], pure) and the polling loop ([`queue`]).

pub mod message;
pub mod queue;

pub use message::{Message, MessageError, MessageKind, parse};
pub use queue::{
    Ended, InterruptionMetrics, InterruptionQueue, NoMetrics, QueueConfig, QueueError, QueueUrl,
};
