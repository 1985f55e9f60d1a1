//! A token bucket in front of the Kubernetes client, as client-go's
//! `flowcontrol` limiter is: `burst` requests at once, then `qps` a second
//! (`KUBE_CLIENT_QPS`, `KUBE_CLIENT_BURST`).
//!
//! It is a tower layer for `kube::client::ClientBuilder::with_layer`. The
//! client puts its stack behind a buffer whose one worker asks
//! `poll_ready` before each request, so waiting there holds requests back
//! in order without dropping any.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// Shared by every service it makes, so clones of one client share a budget.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimitLayer {
    /// `qps` and `burst` must be at least 1 (the settings check them).
    pub fn new(qps: u32, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            bucket: Arc::new(Mutex::new(Bucket {
                capacity,
                per_second: f64::from(qps.max(1)),
                tokens: capacity,
                at: Instant::now(),
            })),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            permit: false,
            sleep: None,
        }
    }
}

#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    /// A token taken for the next call.
    permit: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.permit {
            if let Some(sleep) = &mut self.sleep {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            let taken = self
                .bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now());
            match taken {
                Ok(()) => self.permit = true,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permit = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_requests_are_spaced_at_the_rate() {
        let start = Instant::now();
        let layer = RateLimitLayer::new(5, 3);
        let mut svc = layer.layer(tower::service_fn(|()| async {
            Ok::<_, std::convert::Infallible>(Instant::now())
        }));
        let mut at = Vec::new();
        for _ in 0..6 {
            let t = svc.ready().await.unwrap().call(()).await.unwrap();
            at.push((t - start).as_millis());
        }
        assert_eq!(at, [0, 0, 0, 200, 400, 600]);
        // Idle time refills the bucket up to the burst, no further.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let base = Instant::now();
        let mut at = Vec::new();
        for _ in 0..4 {
            let t = svc.ready().await.unwrap().call(()).await.unwrap();
            at.push((t - base).as_millis());
        }
        assert_eq!(at, [0, 0, 0, 200]);
    }

    #[tokio::test(start_paused = true)]
    async fn services_from_one_layer_share_the_budget() {
        let layer = RateLimitLayer::new(10, 2);
        let make = || {
            layer.layer(tower::service_fn(|()| async {
                Ok::<_, std::convert::Infallible>(Instant::now())
            }))
        };
        let (mut a, mut b) = (make(), make());
        let start = Instant::now();
        a.ready().await.unwrap().call(()).await.unwrap();
        b.ready().await.unwrap().call(()).await.unwrap();
        let third = a.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!((third - start).as_millis(), 100);
    }

    #[tokio::test]
    async fn a_kube_client_with_the_layer_is_held_to_the_rate() {
        use dovetail_apiserver::server::{ApiServer, ServerConfig};
        use k8s_openapi::api::core::v1::Namespace;

        let server = ApiServer::start(ServerConfig::default()).await.unwrap();
        let config = kube::Config::new(server.url().parse().unwrap());
        let client = kube::client::ClientBuilder::try_from(config)
            .unwrap()
            .with_layer(&RateLimitLayer::new(5, 2))
            .build();
        let api: kube::Api<Namespace> = kube::Api::all(client);
        let start = std::time::Instant::now();
        for _ in 0..6 {
            api.get("default").await.unwrap();
        }
        // Two at once, then four at 5 a second.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(780) && took < Duration::from_secs(3),
            "{took:?}"
        );
        server.shutdown().await;
    }
}
