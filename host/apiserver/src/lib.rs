//! An in-memory Kubernetes API server for tests and local use.

pub mod patch;
pub mod selector;
