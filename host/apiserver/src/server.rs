//! Starting and stopping the server on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::access::AccessControl;
use crate::http::{App, router};
use crate::store::{DEFAULT_EVENT_LOG_CAPACITY, Store};

/// How to run the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Must be on 127.0.0.1; port 0 picks a free port.
    pub address: SocketAddr,
    /// Events retained for watches; older revisions get 410.
    pub event_log_capacity: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Watch duration when the client sends no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// `Some`: every API request must carry a bearer token the access control knows and be
    /// allowed by RBAC. `None` (the default): no authentication, everything allowed.
    pub access: Option<AccessControl>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            event_log_capacity: DEFAULT_EVENT_LOG_CAPACITY,
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            access: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0}: this API server has no authentication and is for tests and local use only; use 127.0.0.1"
    )]
    NotLoopback(SocketAddr),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot store the default RBAC policy: {0}")]
    Policy(#[source] crate::status::ApiError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running server; stops when dropped or shut down.
#[derive(Debug)]
pub struct ApiServer {
    address: SocketAddr,
    store: Arc<Store>,
    access: Option<AccessControl>,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<Self, ServeError> {
        Self::start_with(config, axum::Router::new()).await
    }

    /// [`ApiServer::start`], also serving `extra`'s routes on the same
    /// listener (paths outside the Kubernetes API; everything else goes to
    /// the API).
    pub(crate) async fn start_with(
        config: ServerConfig,
        extra: axum::Router,
    ) -> Result<Self, ServeError> {
        if config.address.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            return Err(ServeError::NotLoopback(config.address));
        }
        let listener = tokio::net::TcpListener::bind(config.address)
            .await
            .map_err(|source| ServeError::Bind {
                address: config.address,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| ServeError::Bind {
            address: config.address,
            source,
        })?;
        let store = Arc::new(Store::new(config.event_log_capacity));
        if config.access.is_some() {
            crate::bootstrap_policy::install(&store).map_err(ServeError::Policy)?;
        }
        let app = App {
            store: store.clone(),
            address: address.to_string(),
            bookmark_interval: config.bookmark_interval,
            default_watch_timeout: config.default_watch_timeout,
            access: config.access.clone(),
        };
        let routes = router(app).merge(extra);
        // Errors on accepted connections are per connection; serve only returns on a
        // listener failure, after which there is nothing left to serve.
        let task = match config.access {
            // Go clients send credentials only over https: serve both on the one port.
            Some(_) => {
                let listener = crate::tls::DualListener::new(listener)?;
                tokio::spawn(async move {
                    let _ = axum::serve(listener, routes).await;
                })
            }
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, routes).await;
            }),
        };
        Ok(Self {
            address,
            store,
            access: config.access,
            task,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `https://127.0.0.1:<port>`: the same server over TLS, when access control is on (Go
    /// clients such as kubectl and helm send credentials only over https). Clients trust it
    /// with [`crate::tls::CA_PEM`]; [`crate::cluster::kubeconfig_with_token`] does that.
    pub fn https_url(&self) -> Option<String> {
        self.access
            .as_ref()
            .map(|_| format!("https://{}", self.address))
    }

    /// The store behind the server, for direct inspection and test setup (e.g. compaction).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The access control, when the server runs with it.
    pub fn access(&self) -> Option<&AccessControl> {
        self.access.as_ref()
    }

    /// Stops serving and closes every open connection, watches included.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_non_loopback_addresses() {
        for addr in ["0.0.0.0:0", "[::1]:0", "192.168.1.2:0"] {
            let config = ServerConfig {
                address: addr.parse().unwrap(),
                ..ServerConfig::default()
            };
            let e = ApiServer::start(config).await.unwrap_err();
            assert!(matches!(e, ServeError::NotLoopback(_)), "{addr}");
            assert!(e.to_string().contains("no authentication"), "{e}");
        }
    }

    #[tokio::test]
    async fn binds_a_free_loopback_port() {
        let s = ApiServer::start(ServerConfig::default()).await.unwrap();
        assert_eq!(s.address().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(s.address().port(), 0);
        assert!(s.url().starts_with("http://127.0.0.1:"));
        s.shutdown().await;
    }
}
