//! Behaviour only this server can be asked for (compaction on demand) and answers checked at
//! the HTTP level: discovery, Status bodies for bad requests, the in-stream 410.

use std::time::Duration;

use dovetail_apiserver::{ApiServer, ServerConfig};
use futures::StreamExt;
use http::Request;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{PostParams, WatchEvent};
use kube::discovery::Discovery;
use kube::runtime::watcher;
use kube::{Api, Client, Config};
use serde_json::json;

async fn start() -> (ApiServer, Client) {
    let server = ApiServer::start(ServerConfig::default())
        .await
        .expect("server starts");
    let client = Client::try_from(Config::new(server.url().parse().unwrap())).unwrap();
    (server, client)
}

async fn status_of(client: &Client, req: Request<Vec<u8>>) -> Box<kube::core::Status> {
    match client.request_text(req).await {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_serves_every_built_in_kind() {
    let (_server, client) = start().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    let discovery = Discovery::new(client).run().await.unwrap();
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| {
            g.recommended_resources()
                .into_iter()
                .map(|(r, _)| format!("{}/{}", r.api_version, r.kind))
        })
        .collect();
    kinds.sort();
    for want in [
        "v1/Pod",
        "v1/Node",
        "v1/Namespace",
        "v1/ConfigMap",
        "v1/Event",
        "v1/Service",
        "apps/v1/Deployment",
        "apps/v1/ReplicaSet",
        "apps/v1/DaemonSet",
        "policy/v1/PodDisruptionBudget",
        "coordination.k8s.io/v1/Lease",
        "events.k8s.io/v1/Event",
        "rbac.authorization.k8s.io/v1/Role",
        "rbac.authorization.k8s.io/v1/RoleBinding",
        "rbac.authorization.k8s.io/v1/ClusterRole",
        "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
        "apiextensions.k8s.io/v1/CustomResourceDefinition",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} not discovered in {kinds:?}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_status_bodies_with_exact_reasons() {
    let (_server, client) = start().await;
    let s = status_of(
        &client,
        Request::get("/api/v1/widgets").body(vec![]).unwrap(),
    )
    .await;
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));

    let s = status_of(
        &client,
        Request::post("/api/v1/namespaces/default/configmaps")
            .header("content-type", "application/json")
            .body(b"{not json".to_vec())
            .unwrap(),
    )
    .await;
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(s.message.contains("not valid JSON"), "{}", s.message);

    let s = status_of(
        &client,
        Request::post("/api/v1/configmaps")
            .body(serde_json::to_vec(&json!({ "metadata": { "name": "x" } })).unwrap())
            .unwrap(),
    )
    .await;
    assert_eq!(
        s.code, 405,
        "namespaced kinds are created under a namespace: {s:?}"
    );

    let s = status_of(
        &client,
        Request::get("/api/v1/namespaces/default/configmaps?limit=ten")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(s.code, 400);
    assert!(s.message.contains("limit"), "{}", s.message);

    let s = status_of(
        &client,
        Request::patch("/api/v1/namespaces/default/configmaps/x")
            .header("content-type", "text/plain")
            .body(b"{}".to_vec())
            .unwrap(),
    )
    .await;
    assert_eq!(s.code, 415);
    assert!(
        s.message.contains("accepted media types include"),
        "{}",
        s.message
    );

    let s = status_of(
        &client,
        Request::patch("/api/v1/namespaces/default/configmaps/missing")
            .header("content-type", "application/merge-patch+json")
            .body(b"{}".to_vec())
            .unwrap(),
    )
    .await;
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));

    let s = status_of(
        &client,
        Request::get("/api/v1/namespaces/default/configmaps?labelSelector=app%20in%20web")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(s.code, 400, "a bad selector is refused, not ignored");
    assert!(s.message.contains("labelSelector"), "{}", s.message);

    let s = status_of(
        &client,
        Request::get("/api/v1/namespaces/default/configmaps?fieldSelector=spec.nodeName%3Dn1")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(s.code, 400, "configmaps do not select on spec.nodeName");
    assert!(
        s.message
            .contains("field label not supported: spec.nodeName"),
        "{}",
        s.message
    );

    let s = status_of(
        &client,
        Request::post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict")
            .body(
                serde_json::to_vec(&json!({ "metadata": { "name": "x" }, "dat": { "a": "b" } }))
                    .unwrap(),
            )
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s.code, s.reason.as_str()),
        (400, "BadRequest"),
        "strict validation refuses unknown fields"
    );
    assert_eq!(
        s.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dat\""
    );

    let s = status_of(
        &client,
        Request::get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&resourceVersionMatch=Exact")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));

    let s = status_of(
        &client,
        Request::get("/api/v1/namespaces/default/configmaps/x/status")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(s.code, 404, "configmaps have no status subresource");
}

#[tokio::test]
async fn a_compacted_watch_gets_200_and_an_in_stream_410() {
    let (server, client) = start().await;
    let old = server.store().revision();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({ "metadata": { "name": "a" } })).unwrap(),
    )
    .await
    .unwrap();
    server.store().compact();
    let req = Request::get(format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}&timeoutSeconds=5"
    ))
    .body(vec![])
    .unwrap();
    let mut events = client
        .request_events::<ConfigMap>(req)
        .await
        .expect("the watch itself is accepted")
        .boxed();
    match events.next().await {
        Some(Ok(WatchEvent::Error(s))) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("expected an in-stream ERROR 410, got {other:?}"),
    }
}

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

async fn next(s: &mut Events) -> Result<watcher::Event<ConfigMap>, watcher::Error> {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("an event within 10s")
        .expect("stream open")
}

#[tokio::test]
async fn kube_watcher_relists_after_its_revision_is_compacted() {
    let (server, client) = start().await;
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let elsewhere: Api<ConfigMap> = Api::default_namespaced(client.clone());
    // The server ends each watch after 1s, so the watcher resumes from its last revision.
    let mut stream: Events = watcher(watched, watcher::Config::default().timeout(1)).boxed();
    assert!(matches!(next(&mut stream).await, Ok(watcher::Event::Init)));
    assert!(matches!(
        next(&mut stream).await,
        Ok(watcher::Event::InitDone)
    ));
    // Move the global revision past the watcher's, then drop the history it would resume from:
    // whether the watch is still open or resuming after its 1s timeout, its revision is gone.
    elsewhere
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "b" } })).unwrap(),
        )
        .await
        .unwrap();
    server.store().compact();
    loop {
        match next(&mut stream).await {
            Ok(watcher::Event::Init) => break,
            Ok(other) => panic!("expected a relist, got {other:?}"),
            // The 410 surfaces once as an error before the watcher relists.
            Err(_) => continue,
        }
    }
}

#[tokio::test]
async fn kubectl_style_requests_get_tables_with_real_columns() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({ "metadata": { "name": "t" }, "data": { "a": "1", "b": "2" } }),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let list: serde_json::Value = client
        .request(
            Request::get("/api/v1/namespaces/default/configmaps")
                .header("accept", accept)
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(list["kind"], "Table");
    let columns: Vec<&str> = list["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    assert_eq!(list["rows"][0]["cells"][0], "t");
    assert_eq!(list["rows"][0]["cells"][1], 2);
    let one: serde_json::Value = client
        .request(
            Request::get("/api/v1/namespaces/default/configmaps/t")
                .header("accept", accept)
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    let plain: serde_json::Value = client
        .request(
            Request::get("/api/v1/namespaces/default/configmaps/t")
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        plain["kind"], "ConfigMap",
        "without the Accept parameter, the object itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_loses_no_update_and_watchers_see_every_revision_in_order() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({ "metadata": { "name": "counter" }, "data": { "n": "0" } }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let start_rv = created.metadata.resource_version.clone().unwrap();
    let watch = Request::get(format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start_rv}&timeoutSeconds=30"
    ))
    .body(vec![])
    .unwrap();
    let mut events = client
        .request_events::<ConfigMap>(watch)
        .await
        .unwrap()
        .boxed();

    let (writers, increments) = (4, 10);
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..increments {
                loop {
                    let mut cm = api.get("counter").await.unwrap();
                    let n: u32 = cm.data.as_ref().unwrap()["n"].parse().unwrap();
                    cm.data
                        .as_mut()
                        .unwrap()
                        .insert("n".into(), (n + 1).to_string());
                    match api.replace("counter", &PostParams::default(), &cm).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.is_conflict() => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = writers * increments;
    assert_eq!(
        api.get("counter").await.unwrap().data.unwrap()["n"],
        total.to_string()
    );

    let mut last: u64 = start_rv.parse().unwrap();
    let mut values = Vec::new();
    while values.len() < total as usize {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(WatchEvent::Modified(cm)))) => {
                let rv: u64 = cm.metadata.resource_version.unwrap().parse().unwrap();
                assert!(rv > last, "revisions increase: {rv} after {last}");
                last = rv;
                values.push(cm.data.unwrap()["n"].parse::<u32>().unwrap());
            }
            other => panic!("expected MODIFIED, got {other:?}"),
        }
    }
    assert_eq!(
        values,
        (1..=total).collect::<Vec<_>>(),
        "every committed value, in commit order"
    );
    assert_eq!(server.store().revision(), last);
}
