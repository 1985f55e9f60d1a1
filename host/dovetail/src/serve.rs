//! The controller's HTTP endpoints, as Karpenter's chart expects them:
//! `/metrics` on the metrics port, `/healthz` and `/readyz` on the health
//! probe port.
//!
//! - `/healthz`: the process answers (the liveness probe).
//! - `/readyz`: 200 once the caches have synced and leader election is
//!   working (leading, or following with the API server in reach); 503 with
//!   the reason otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use dovetail_kube::lease::{ElectorProbe, Role};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// What `/readyz` answers from: set by the controller as it runs.
#[derive(Debug)]
pub struct Readiness {
    synced: AtomicBool,
    /// `None` when leader election is off.
    elector: Option<ElectorProbe>,
}

impl Readiness {
    pub fn new(elector: Option<ElectorProbe>) -> Self {
        Self {
            synced: AtomicBool::new(false),
            elector,
        }
    }

    /// The caches have synced (or, `false`, fell out of sync).
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    /// `Ok` with this replica's role, or why it is not ready.
    pub fn check(&self) -> Result<&'static str, String> {
        if !self.synced.load(Ordering::Acquire) {
            return Err("the cluster state has not synced with the API server yet".into());
        }
        match &self.elector {
            None => Ok("leader election disabled"),
            Some(probe) => match probe.check() {
                Ok(Role::Leader) => Ok("leader"),
                Ok(Role::Follower { .. }) => Ok("follower"),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// The two servers, running until shut down.
#[derive(Debug)]
pub struct Servers {
    metrics_address: SocketAddr,
    health_address: SocketAddr,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Binds both addresses (port 0 picks a free one) and serves.
    pub async fn start(
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        metrics_address: SocketAddr,
        health_address: SocketAddr,
    ) -> Result<Self> {
        let metrics_app = Router::new()
            .route("/metrics", get(metrics_text))
            .with_state(metrics);
        let health_app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .with_state(readiness);
        let mut servers = Self {
            metrics_address,
            health_address,
            stop: Vec::new(),
            tasks: Vec::new(),
        };
        servers.metrics_address = servers
            .bind("metrics (METRICS_PORT)", metrics_address, metrics_app)
            .await?;
        servers.health_address = servers
            .bind(
                "health probes (HEALTH_PROBE_PORT)",
                health_address,
                health_app,
            )
            .await?;
        Ok(servers)
    }

    async fn bind(&mut self, what: &str, address: SocketAddr, app: Router) -> Result<SocketAddr> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for {what} on {address}"))?;
        let bound = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop.push(stop);
        self.tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("the {bound} server stopped: {e}");
            }
        }));
        Ok(bound)
    }

    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    pub fn health_address(&self) -> SocketAddr {
        self.health_address
    }

    pub async fn shutdown(self) {
        for stop in self.stop {
            let _ = stop.send(());
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    match readiness.check() {
        Ok(role) => (StatusCode::OK, format!("ok: {role}\n")),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dovetail_apiserver::server::{ApiServer, ServerConfig};
    use dovetail_kube::lease::{Elector, LeaseConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `GET path` over a fresh connection: status and body.
    async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_lowercase(), body.to_owned())
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[tokio::test]
    async fn metrics_and_health_answer_over_http() {
        let metrics = Arc::new(Metrics::new());
        metrics.policy_reload(
            dovetail_core::policy::types::Decision::InstanceSelection,
            true,
        );
        let readiness = Arc::new(Readiness::new(None));
        let servers = Servers::start(metrics, readiness.clone(), loopback(), loopback())
            .await
            .unwrap();
        assert_ne!(servers.metrics_address().port(), 0);

        let (status, head, body) = get(servers.metrics_address(), "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            body.contains(
                r#"dovetail_policy_reloads_total{decision="instance-selection",outcome="accepted"} 1"#
            ),
            "{body}"
        );
        let (status, _, body) = get(servers.health_address(), "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));

        let (status, _, body) = get(servers.health_address(), "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("has not synced"), "{body}");
        readiness.set_synced(true);
        let (status, _, body) = get(servers.health_address(), "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "ok: leader election disabled\n")
        );

        // Each on its own port only.
        let (status, _, _) = get(servers.health_address(), "/metrics").await;
        assert_eq!(status, 404);
        let health = servers.health_address();
        servers.shutdown().await;
        assert!(tokio::net::TcpStream::connect(health).await.is_err());
    }

    #[tokio::test]
    async fn ready_means_synced_and_leader_election_working() {
        let api = ApiServer::start(ServerConfig::default()).await.unwrap();
        let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
        let cfg = |id: &str| LeaseConfig {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(300),
            ..LeaseConfig::new("dovetail-leader-election", "kube-system", id)
        };
        let leader = Elector::spawn(client.clone(), cfg("a")).unwrap();
        let start = tokio::time::Instant::now();
        while !leader.is_leader() {
            assert!(start.elapsed() < Duration::from_secs(3), "a never led");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let follower = Elector::spawn(client, cfg("b")).unwrap();
        let lead = Arc::new(Readiness::new(Some(leader.probe())));
        let follow = Arc::new(Readiness::new(Some(follower.probe())));
        lead.set_synced(true);
        follow.set_synced(true);
        let metrics = Arc::new(Metrics::new());
        let a = Servers::start(metrics.clone(), lead, loopback(), loopback())
            .await
            .unwrap();
        let b = Servers::start(metrics, follow, loopback(), loopback())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, _, body) = get(a.health_address(), "/readyz").await;
        assert_eq!((status, body.as_str()), (200, "ok: leader\n"));
        let (status, _, body) = get(b.health_address(), "/readyz").await;
        assert_eq!((status, body.as_str()), (200, "ok: follower\n"));

        // A stopped elector is not ready, and says so.
        leader.release().await;
        let (status, _, body) = get(a.health_address(), "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("leader election has stopped"), "{body}");
        // The liveness probe does not care.
        assert_eq!(get(a.health_address(), "/healthz").await.0, 200);
        a.shutdown().await;
        b.shutdown().await;
        api.shutdown().await;
    }

    #[tokio::test]
    async fn a_port_in_use_is_named() {
        let taken = TcpListener::bind(loopback()).await.unwrap();
        let address = taken.local_addr().unwrap();
        let err = Servers::start(
            Arc::new(Metrics::new()),
            Arc::new(Readiness::new(None)),
            address,
            loopback(),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("METRICS_PORT") && text.contains(&address.to_string()),
            "{text}"
        );
    }
}
