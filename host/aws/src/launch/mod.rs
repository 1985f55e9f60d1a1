//! Launching: launch templates, `CreateFleet` requests and tags.

pub mod fleet;
pub mod options;
pub mod tags;
pub mod template;
