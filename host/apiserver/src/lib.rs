//! An in-memory Kubernetes API server for tests and local use.
//!
//! It serves the Kubernetes API over HTTP on 127.0.0.1 only, from memory, with the semantics
//! clients depend on: one global resourceVersion, optimistic concurrency, finalizers, the status
//! subresource split, paged lists and watches with compaction. It refuses to bind anywhere but
//! loopback.
//!
//! By default it has no authentication or authorisation. With
//! [`ServerConfig::access`] set to an [`AccessControl`], every request needs a bearer token
//! ([`AccessControl::service_account_token`], [`Authentication::add_token`], or the
//! administrator's [`AccessControl::admin_token`], in `system:masters`) and is judged by RBAC
//! over the stored Roles and bindings as upstream judges it: 401 `Unauthorized`, 403
//! `Forbidden` with upstream's message, and every RBAC decision logged
//! ([`AccessControl::denials`], [`AccessControl::decisions`]). kubectl and helm send tokens only
//! over https, which the server then also speaks on the same port ([`ApiServer::https_url`]);
//! [`cluster::kubeconfig_with_token`] writes a kubeconfig for either URL. See [`access`].
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

pub mod access;
pub mod apply;
pub mod authn;
pub mod body;
pub mod bootstrap_policy;
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
pub mod rbac;
pub mod request_info;
pub mod resource;
pub mod scale;
pub mod selector;
pub mod self_review;
pub mod server;
pub mod status;
pub mod store;
pub mod stored;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;
pub mod writes;

pub use access::AccessControl;
pub use authn::{Authentication, UserInfo};
pub use server::{ApiServer, ServeError, ServerConfig};
pub use status::ApiError;
pub use store::Store;
