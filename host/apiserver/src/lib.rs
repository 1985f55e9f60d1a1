//! An in-memory Kubernetes API server for tests and local use.
//!
//! It serves the Kubernetes API over HTTP on 127.0.0.1 only, from memory, with the semantics
//! clients depend on: one global resourceVersion, optimistic concurrency, finalizers, the status
//! subresource split, paged lists and watches with compaction. It has no authentication or
//! authorisation and refuses to bind anywhere but loopback.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use dovetail_apiserver::{ApiServer, ServerConfig};
//!
//! let server = ApiServer::start(ServerConfig::default()).await.unwrap();
//! // Point any Kubernetes client (kube-rs, kubectl) at this URL; no credentials are needed.
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! // Tests may reach the store directly, e.g. to compact the watch history.
//! server.store().compact();
//! server.shutdown().await;
//! # }
//! ```

pub mod apply;
pub mod body;
pub mod cluster;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod dry_run;
pub mod event_log;
pub mod eviction;
pub mod field_schema;
pub mod fieldpath;
pub mod filter;
pub mod http;
pub mod list;
pub mod managed_fields;
pub mod openapi;
pub mod patch;
pub mod path;
pub mod pod;
pub mod protobuf;
pub mod resource;
pub mod scale;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod stored;
pub mod table;
pub mod validation;
pub mod watch;
pub mod writes;

pub use server::{ApiServer, ServeError, ServerConfig};
pub use status::ApiError;
pub use store::Store;
