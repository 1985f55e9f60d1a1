//! Leader election against the in-memory API server, with short timings so
//! takeovers happen in seconds.

use std::time::Duration;

use dovetail_apiserver::server::{ApiServer, ServerConfig};
use dovetail_kube::lease::{Elector, LeaseConfig, Role, Unhealthy};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::time::{Instant, sleep, timeout};

const NAMESPACE: &str = "kube-system";
const LEASE: &str = "dovetail-leader-election";

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(400),
        ..LeaseConfig::new(LEASE, NAMESPACE, identity)
    }
}

fn client(server: &ApiServer) -> kube::Client {
    let config = kube::Config::new(server.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    leases
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity)
}

/// Waits until `check` holds, failing after `limit`.
async fn until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn of_two_candidates_exactly_one_leads_and_a_release_hands_over_quickly() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let c = client(&server);
    let a = Elector::spawn(c.clone(), config("a")).unwrap();
    let b = Elector::spawn(c.clone(), config("b")).unwrap();

    until(Duration::from_secs(5), "someone leads", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    // For several renewals, never both, never neither.
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        assert!(a.is_leader() != b.is_leader(), "exactly one must lead");
        sleep(Duration::from_millis(25)).await;
    }
    let (leader, follower, leader_id, follower_id) = if a.is_leader() {
        (a, b, "a", "b")
    } else {
        (b, a, "b", "a")
    };
    assert_eq!(holder(&c).await.as_deref(), Some(leader_id));
    assert_eq!(leader.probe().check(), Ok(Role::Leader));
    assert_eq!(
        follower.probe().check(),
        Ok(Role::Follower {
            holder: Some(leader_id.into())
        })
    );

    let mut leading = leader.subscribe();
    leader.release().await;
    assert!(!*leading.borrow_and_update(), "released means not leading");
    let took = until(Duration::from_secs(4), "the follower takes over", || {
        follower.is_leader()
    })
    .await;
    // Well within the lease duration: the released Lease has no holder.
    assert!(took < Duration::from_secs(2), "takeover took {took:?}");
    assert_eq!(holder(&c).await.as_deref(), Some(follower_id));
    let transitions = Api::<Lease>::namespaced(c.clone(), NAMESPACE)
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions;
    assert_eq!(transitions, Some(1), "one handover since creation");
    follower.release().await;
    assert_eq!(holder(&c).await, None, "the last one out leaves it free");
    server.shutdown().await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_steps_down() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let c = client(&server);
    let a = Elector::spawn(c.clone(), config("a")).unwrap();
    until(Duration::from_secs(3), "a leads", || a.is_leader()).await;

    // Someone writes the Lease behind its back (say, an operator with kubectl).
    let leases: Api<Lease> = Api::namespaced(c.clone(), NAMESPACE);
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
    spec.lease_duration_seconds = Some(60);
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();

    let mut leading = a.subscribe();
    let stepped = timeout(Duration::from_secs(2), async {
        while *leading.borrow_and_update() {
            leading.changed().await.unwrap();
        }
    })
    .await;
    assert!(stepped.is_ok(), "a still leads after its Lease was taken");
    assert_eq!(
        a.probe().check(),
        Ok(Role::Follower {
            holder: Some("intruder".into())
        })
    );
    // And it does not take the Lease back while the intruder's is valid.
    sleep(Duration::from_secs(2)).await;
    assert!(!a.is_leader());
    assert_eq!(holder(&c).await.as_deref(), Some("intruder"));
    a.release().await;
    assert_eq!(
        holder(&c).await.as_deref(),
        Some("intruder"),
        "releasing never clears someone else's Lease"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_within_the_renew_deadline() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let c = client(&server);
    let a = Elector::spawn(c.clone(), config("a")).unwrap();
    until(Duration::from_secs(3), "a leads", || a.is_leader()).await;
    let b = Elector::spawn(c.clone(), config("b")).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert!(
        b.probe().check().is_ok(),
        "a follower that reaches the server is healthy"
    );

    server.shutdown().await;
    let cut = Instant::now();
    let mut leading = a.subscribe();
    timeout(Duration::from_secs(5), async {
        while *leading.borrow_and_update() {
            leading.changed().await.unwrap();
        }
    })
    .await
    .expect("a leader that cannot renew must step down");
    let after = cut.elapsed();
    // It renewed at most one retry period before the cut.
    assert!(
        after <= Duration::from_millis(3000 + 200),
        "stepped down after {after:?}, past the renew deadline"
    );
    assert!(
        after >= Duration::from_millis(3000 - 400 - 100),
        "stepped down after {after:?}, before the renew deadline"
    );
    // The follower cannot reach the server either: not healthy once a lease
    // duration has passed.
    until(
        Duration::from_secs(6),
        "the follower reports the outage",
        || matches!(b.probe().check(), Err(Unhealthy::Unreachable { .. })),
    )
    .await;
    let err = b.probe().check().unwrap_err().to_string();
    assert!(err.contains("has not reached the API server"), "{err}");
}

#[tokio::test]
async fn a_crashed_holders_lease_is_taken_only_after_it_expires() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let c = client(&server);
    // A holder that stopped renewing without releasing (killed, say).
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            namespace: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("crashed".into()),
            lease_duration_seconds: Some(3),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    };
    Api::<Lease>::namespaced(c.clone(), NAMESPACE)
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();

    let start = Instant::now();
    let a = Elector::spawn(c.clone(), config("a")).unwrap();
    until(Duration::from_secs(6), "a takes the expired Lease", || {
        a.is_leader()
    })
    .await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "took a live Lease after {took:?}"
    );
    let spec = Api::<Lease>::namespaced(c.clone(), NAMESPACE)
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(5));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    a.release().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_timings_are_refused_with_the_rule() {
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
    let mut cfg = config("a");
    cfg.renew_deadline = cfg.lease_duration;
    let err = Elector::spawn(client, cfg).unwrap_err().to_string();
    assert!(
        err.contains("lease duration") && err.contains("renew deadline"),
        "{err}"
    );
}
