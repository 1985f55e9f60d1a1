//! The API contract as kube-rs sees it.
//!
//! By default each test starts an in-memory server on 127.0.0.1:0. With
//! `DOVETAIL_CONTRACT_KUBECONFIG=<path>` the same tests run against the cluster that kubeconfig
//! points at (objects go to the `default` namespace under unique names and are cleaned up). An
//! `https` cluster also needs a TLS feature on the `kube` dev-dependency (`rustls-tls`); without
//! one the client refuses to connect and the tests fail saying so.

use std::time::Duration;

use dovetail_apiserver::{ApiServer, ServerConfig};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client, Config};
use serde_json::json;

struct Cluster {
    client: Client,
    _server: Option<ApiServer>,
}

async fn cluster() -> Cluster {
    if let Ok(path) = std::env::var("DOVETAIL_CONTRACT_KUBECONFIG") {
        let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|e| {
            panic!("DOVETAIL_CONTRACT_KUBECONFIG={path}: cannot read kubeconfig: {e}")
        });
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("DOVETAIL_CONTRACT_KUBECONFIG={path}: {e}"));
        config.default_retry = false;
        let client = Client::try_from(config).expect("client from kubeconfig");
        return Cluster {
            client,
            _server: None,
        };
    }
    let server = ApiServer::start(ServerConfig::default())
        .await
        .expect("server starts");
    let mut config = Config::new(server.url().parse().expect("server URL"));
    // kube's default layer retries 429s for minutes; the tests assert the server's own answer.
    config.default_retry = false;
    let client = Client::try_from(config).expect("client");
    Cluster {
        client,
        _server: Some(server),
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "data": data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
    }))
    .unwrap()
}

fn api_status(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_create_get_list_replace_delete() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("crud");
    let created = api
        .create(&PostParams::default(), &configmap(&name, &[("a", "1")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));

    let got = api.get(&name).await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["a"], "1");

    let listed = api.list(&ListParams::default()).await.unwrap();
    assert!(listed.metadata.resource_version.is_some());
    assert!(
        listed
            .items
            .iter()
            .any(|cm| cm.metadata.name.as_deref() == Some(name.as_str()))
    );

    let mut changed = got.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("a".into(), "2".into());
    let replaced = api
        .replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["a"], "2");
    assert_ne!(
        replaced.metadata.resource_version,
        got.metadata.resource_version
    );

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let e = api_status(api.get(&name).await.unwrap_err());
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn duplicate_create_is_already_exists_and_stale_replace_is_conflict() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("conflict");
    let first = api
        .create(&PostParams::default(), &configmap(&name, &[]))
        .await
        .unwrap();
    let e = api_status(
        api.create(&PostParams::default(), &configmap(&name, &[]))
            .await
            .unwrap_err(),
    );
    assert!(e.is_already_exists(), "{e:?}");
    assert_eq!(e.code, 409);

    let mut newer = first.clone();
    newer.data = Some([("k".to_string(), "v1".to_string())].into());
    api.replace(&name, &PostParams::default(), &newer)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.data = Some([("k".to_string(), "v2".to_string())].into());
    let e = api_status(
        api.replace(&name, &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert!(e.is_conflict(), "{e:?}");
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(api.get(&name).await.unwrap().data.unwrap()["k"], "v1");
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn finalizers_hold_deletion_until_the_last_is_removed() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("fin");
    let mut cm = configmap(&name, &[]);
    cm.metadata.finalizers = Some(vec!["dovetail.dev/test".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let marked = api
        .get(&name)
        .await
        .expect("still present while a finalizer remains");
    assert!(marked.metadata.deletion_timestamp.is_some());

    let mut more = marked.clone();
    more.metadata
        .finalizers
        .as_mut()
        .unwrap()
        .push("dovetail.dev/other".into());
    let e = api_status(
        api.replace(&name, &PostParams::default(), &more)
            .await
            .unwrap_err(),
    );
    assert!(e.is_invalid(), "no new finalizers once deleting: {e:?}");

    let mut done = marked.clone();
    done.metadata.finalizers = None;
    api.replace(&name, &PostParams::default(), &done)
        .await
        .unwrap();
    assert!(api_status(api.get(&name).await.unwrap_err()).is_not_found());
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let prefix = unique("page");
    let names: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    for n in &names {
        api.create(&PostParams::default(), &configmap(n, &[]))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = api.list(&params).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().filter_map(|cm| cm.metadata.name));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = ListParams::default().limit(2).continue_token(&token),
            None => break,
        }
    }
    for n in &names {
        assert_eq!(
            seen.iter().filter(|s| *s == n).count(),
            1,
            "{n} exactly once in {seen:?}"
        );
        api.delete(n, &DeleteParams::default()).await.unwrap();
    }
}

async fn next_event(
    stream: &mut (
             impl futures::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin
         ),
    name: &str,
) -> watcher::Event<ConfigMap> {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a watch event within 10s")
            .expect("stream open")
            .expect("no watch error");
        let is_ours = match &ev {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                o.metadata.name.as_deref() == Some(name)
            }
            watcher::Event::Init | watcher::Event::InitDone => false,
        };
        if is_ours {
            return ev;
        }
    }
}

async fn watcher_sees_changes(config: watcher::Config) {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("watch");
    let before = unique("watch-before");
    api.create(&PostParams::default(), &configmap(&before, &[]))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), config).boxed();
    assert!(
        matches!(
            next_event(&mut stream, &before).await,
            watcher::Event::InitApply(_)
        ),
        "objects present before the watch come in the initial list"
    );
    let created = api
        .create(&PostParams::default(), &configmap(&name, &[]))
        .await
        .unwrap();
    match next_event(&mut stream, &name).await {
        watcher::Event::Apply(o) => assert_eq!(o.metadata.uid, created.metadata.uid),
        other => panic!("expected Apply, got {other:?}"),
    }
    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "v".to_string())].into());
    api.replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap();
    match next_event(&mut stream, &name).await {
        watcher::Event::Apply(o) => assert_eq!(o.data.unwrap()["k"], "v"),
        other => panic!("expected Apply, got {other:?}"),
    }
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    assert!(matches!(
        next_event(&mut stream, &name).await,
        watcher::Event::Delete(_)
    ));
    api.delete(&before, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() {
    watcher_sees_changes(watcher::Config::default()).await;
}

#[tokio::test]
async fn streaming_list_watcher_sees_initial_objects_then_changes() {
    watcher_sees_changes(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn replace_status_changes_only_status_and_replace_ignores_status() {
    let c = cluster().await;
    let api: Api<Pod> = Api::default_namespaced(c.client.clone());
    let name = unique("status");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }] },
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );

    let mut via_status = created.clone();
    via_status.status.as_mut().unwrap().phase = Some("Running".into());
    via_status.metadata.labels = Some([("ignored".to_string(), "yes".to_string())].into());
    let after_status = api
        .replace_status(&name, &PostParams::default(), &via_status)
        .await
        .unwrap();
    assert_eq!(
        after_status.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert!(
        after_status
            .metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("ignored")),
        "/status ignores metadata changes"
    );

    let e = api_status(
        api.replace_status(&name, &PostParams::default(), &via_status)
            .await
            .unwrap_err(),
    );
    assert!(e.is_conflict(), "stale resourceVersion on /status: {e:?}");

    let mut via_main = after_status.clone();
    via_main.status.as_mut().unwrap().phase = Some("Failed".into());
    via_main.metadata.labels = Some([("kept".to_string(), "yes".to_string())].into());
    let after_main = api
        .replace(&name, &PostParams::default(), &via_main)
        .await
        .unwrap();
    assert_eq!(
        after_main.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(after_main.metadata.labels.unwrap()["kept"], "yes");

    api.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
}

#[tokio::test]
async fn watcher_stream_can_be_collected_until_init_done() {
    // A list-then-watch from scratch must end its initial phase even on an empty namespace.
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "kube-public");
    let events: Vec<_> = watcher(api, watcher::Config::default())
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_collect()
        .await
        .unwrap();
    assert!(matches!(events.first(), Some(watcher::Event::Init)));
}

#[tokio::test]
async fn an_applied_crd_becomes_a_served_resource() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    use kube::runtime::wait::{Condition, conditions};

    let c = cluster().await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.client.clone());
    let plural = unique("widgets").replace('-', "");
    let kind = format!("Widget{}", &plural["widgets".len()..]);
    let group = "contract.dovetail.dev";
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "group": group,
            "names": { "plural": plural, "kind": kind, "singular": plural.trim_end_matches('s') },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                "subresources": { "status": {} },
            }],
        },
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let crd = crds.get(&name).await.unwrap();
            if conditions::is_crd_established().matches_object(Some(&crd)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("established within 30s");

    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", &kind), &plural);
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(c.client.clone(), &ar);
    let mut w = DynamicObject::new("w1", &ar);
    w.data = json!({ "spec": { "size": 3 }, "status": { "ignored": true } });
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is written through /status only"
    );

    let mut with_status = created.clone();
    with_status.data["status"] = json!({ "ready": true });
    let after = widgets
        .replace_status("w1", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(after.data["status"]["ready"], true);
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status changes leave generation alone"
    );

    let mut bigger = after.clone();
    bigger.data["spec"]["size"] = json!(4);
    let bigger = widgets
        .replace("w1", &PostParams::default(), &bigger)
        .await
        .unwrap();
    assert_eq!(bigger.metadata.generation, Some(2));

    let listed = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    crds.delete(&name, &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match widgets.list(&ListParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .expect("the resource stops being served once its CRD is gone");
}

#[tokio::test]
async fn binding_assigns_a_node_once_and_bound_pods_delete_gracefully() {
    let c = cluster().await;
    let api: Api<Pod> = Api::default_namespaced(c.client.clone());
    let name = unique("bind");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }] },
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();

    let mut moved = created.clone();
    moved.spec.as_mut().unwrap().node_name = Some("elsewhere".into());
    let e = api_status(
        api.replace(&name, &PostParams::default(), &moved)
            .await
            .unwrap_err(),
    );
    assert!(
        e.is_invalid(),
        "spec.nodeName is set through binding only: {e:?}"
    );

    let binding = |node: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": { "name": name },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node },
        })
    };
    let _: kube::core::Status = api
        .create_subresource("binding", &name, &PostParams::default(), &binding("node-a"))
        .await
        .unwrap();
    let bound = api.get(&name).await.unwrap();
    assert_eq!(
        bound.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-a")
    );
    let scheduled = bound.status.unwrap().conditions.unwrap_or_default();
    assert!(
        scheduled
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let e = api_status(
        api.create_subresource::<_, kube::core::Status>(
            "binding",
            &name,
            &PostParams::default(),
            &binding("node-b"),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.is_conflict(), "a bound pod cannot be bound again: {e:?}");

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let terminating = api
        .get(&name)
        .await
        .expect("a bound pod waits for its kubelet");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));

    // What the kubelet does once the containers are gone.
    api.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(api_status(api.get(&name).await.unwrap_err()).is_not_found());
}

#[tokio::test]
async fn an_unbound_pod_is_deleted_at_once() {
    let c = cluster().await;
    let api: Api<Pod> = Api::default_namespaced(c.client.clone());
    let name = unique("unbound");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }] },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    assert!(api_status(api.get(&name).await.unwrap_err()).is_not_found());
}

#[tokio::test]
async fn deleting_a_namespace_removes_it_and_its_objects() {
    use k8s_openapi::api::core::v1::Namespace;
    let c = cluster().await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let ns = unique("ns");
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap(),
        )
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), &ns);
    api.create(&PostParams::default(), &configmap("inside", &[]))
        .await
        .unwrap();

    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match namespaces.get(&ns).await {
                Err(kube::Error::Api(s)) if s.is_not_found() => break,
                Ok(n) => assert!(n.metadata.deletion_timestamp.is_some()),
                Err(e) => panic!("{e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the namespace goes once empty");
    let e = api_status(api.get("inside").await.unwrap_err());
    assert!(e.is_not_found());

    let e = api_status(
        namespaces
            .delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str()),
        (403, "Forbidden"),
        "default may not be deleted"
    );
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let batch = unique("sel");
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "cache")] {
        let mut cm = configmap(&format!("{batch}-{name}"), &[]);
        cm.metadata.labels = Some(
            [("batch", batch.as_str()), ("tier", tier)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |items: Vec<ConfigMap>| -> Vec<String> {
        let mut n: Vec<String> = items.into_iter().filter_map(|c| c.metadata.name).collect();
        n.sort();
        n
    };
    let by = |selector: String| ListParams::default().labels(&selector);
    let got = api
        .list(&by(format!("batch={batch},tier in (web,db)")))
        .await
        .unwrap();
    assert_eq!(
        names(got.items),
        [format!("{batch}-a"), format!("{batch}-b")]
    );
    let got = api
        .list(&by(format!("batch={batch},tier!=web,!missing")))
        .await
        .unwrap();
    assert_eq!(
        names(got.items),
        [format!("{batch}-b"), format!("{batch}-c")]
    );
    let got = api
        .list(&ListParams::default().fields(&format!("metadata.name={batch}-c")))
        .await
        .unwrap();
    assert_eq!(names(got.items), [format!("{batch}-c")]);

    // Pods select on the node they are bound to, as the kubelet watches them.
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let node = unique("node");
    for (name, on) in [("bound", Some(node.as_str())), ("pending", None)] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": format!("{batch}-{name}") },
            "spec": { "nodeName": on, "containers": [{ "name": "c", "image": "busybox" }] },
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let got = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .unwrap();
    let got: Vec<String> = got
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(got, [format!("{batch}-bound")]);

    let e = pods
        .list(&ListParams::default().fields("spec.containers=x"))
        .await
        .map(|_| ())
        .unwrap_err();
    let s = api_status(e);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    for name in ["bound", "pending"] {
        pods.delete(
            &format!("{batch}-{name}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    }
    for name in ["a", "b", "c"] {
        api.delete(&format!("{batch}-{name}"), &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn merge_json_and_strategic_patches_and_status_patches() {
    use kube::api::{Patch, PatchParams};
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("patch");
    api.create(
        &PostParams::default(),
        &configmap(&name, &[("a", "1"), ("b", "2")]),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();
    // A merge patch sets and removes keys.
    let cm = api
        .patch(
            &name,
            &pp,
            &Patch::Merge(json!({ "data": { "a": "10", "b": null, "c": "3" } })),
        )
        .await
        .unwrap();
    let data = cm.data.unwrap();
    assert_eq!(
        (data.get("a"), data.get("b"), data.get("c")),
        (Some(&"10".to_string()), None, Some(&"3".to_string()))
    );
    // A JSON patch whose test fails changes nothing.
    // Typed as kube's own JSON patch, whatever its version.
    let ops = serde_json::from_value(json!([
        { "op": "test", "path": "/data/a", "value": "nope" },
        { "op": "remove", "path": "/data/a" },
    ]))
    .unwrap();
    let e = api
        .patch(&name, &pp, &Patch::Json::<()>(ops))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(api_status(e).code, 422);
    assert!(
        api.get(&name)
            .await
            .unwrap()
            .data
            .unwrap()
            .contains_key("a")
    );
    // A patch that names a stale resourceVersion conflicts.
    let e = api
        .patch(
            &name,
            &pp,
            &Patch::Merge(json!({ "metadata": { "resourceVersion": "1" }, "data": { "a": "x" } })),
        )
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(api_status(e).reason, "Conflict");
    api.delete(&name, &DeleteParams::default()).await.unwrap();

    // A strategic merge patch merges a pod's containers by name.
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [
            { "name": "app", "image": "app:1" },
            { "name": "sidecar", "image": "proxy:1" },
        ] },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let p = pods
        .patch(
            &name,
            &pp,
            &Patch::Strategic(
                json!({ "spec": { "containers": [{ "name": "app", "image": "app:2" }] } }),
            ),
        )
        .await
        .unwrap();
    let images: Vec<(String, Option<String>)> = p
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| (c.name, c.image))
        .collect();
    assert_eq!(
        images,
        [
            ("app".to_string(), Some("app:2".to_string())),
            ("sidecar".to_string(), Some("proxy:1".to_string())),
        ]
    );
    // The status subresource takes a patch of status only.
    let p = pods
        .patch_status(
            &name,
            &pp,
            &Patch::Merge(
                json!({ "status": { "phase": "Running" }, "metadata": { "labels": { "x": "y" } } }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(
        p.metadata.labels.unwrap_or_default().is_empty(),
        "status patches change only status"
    );
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
}

/// A pod the scheduler leaves alone (no node matches), marked Running and Ready through
/// `/status` as a kubelet would, so a disruption budget guards it.
async fn running_pod(api: &Api<Pod>, name: &str, app: &str) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": app } },
        "spec": {
            "nodeSelector": { "dovetail.test/no-such-node": "true" },
            "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }],
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    replace_status_retrying(api, name, |pod: &mut Pod| {
        let status = pod.status.get_or_insert_with(Default::default);
        status.phase = Some("Running".into());
        status.conditions = Some(vec![
            serde_json::from_value(json!({ "type": "Ready", "status": "True" })).unwrap(),
        ]);
    })
    .await
}

/// Sets an object's status from its latest version, again when a controller of a real
/// cluster (scheduler, disruption controller) wrote it in between.
async fn replace_status_retrying<K>(api: &Api<K>, name: &str, change: impl Fn(&mut K)) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    for _ in 0..5 {
        let mut latest = api.get(name).await.unwrap();
        change(&mut latest);
        match api
            .replace_status(name, &PostParams::default(), &latest)
            .await
        {
            Ok(done) => return done,
            Err(kube::Error::Api(s)) if s.is_conflict() => continue,
            Err(e) => panic!("replace_status {name}: {e:?}"),
        }
    }
    panic!("replace_status {name}: conflicted five times")
}

/// Creates a budget over `app`, then sets its status as a disruption controller would.
async fn budget(
    api: &Api<PodDisruptionBudget>,
    name: &str,
    app: &str,
    min_available: i32,
    disruptions_allowed: i32,
) -> PodDisruptionBudget {
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "minAvailable": min_available, "selector": { "matchLabels": { "app": app } } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pdb).await.unwrap();
    replace_status_retrying(api, name, |pdb: &mut PodDisruptionBudget| {
        pdb.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": pdb.metadata.generation,
                "disruptionsAllowed": disruptions_allowed,
                "currentHealthy": 1,
                "desiredHealthy": min_available,
                "expectedPods": 1,
            }))
            .unwrap(),
        );
    })
    .await
}

#[tokio::test]
async fn evict_is_refused_with_429_while_the_budget_allows_no_disruption() {
    let c = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.client.clone());
    let (name, app) = (unique("guarded"), unique("app"));
    running_pod(&pods, &name, &app).await;
    budget(&pdbs, &name, &app, 1, 0).await;

    let e = api_status(
        pods.evict(&name, &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str()),
        (429, "TooManyRequests"),
        "{e:?}"
    );
    assert_eq!(
        e.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let causes = e.details.as_ref().unwrap().causes.clone();
    assert!(
        causes.iter().any(|c| c.reason == "DisruptionBudget"),
        "{causes:?}"
    );
    assert!(pods.get(&name).await.is_ok(), "the pod stays");

    pdbs.delete(&name, &DeleteParams::default()).await.unwrap();
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
}

#[tokio::test]
async fn evict_is_a_500_when_two_budgets_cover_the_pod() {
    let c = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.client.clone());
    let (name, app) = (unique("doubly"), unique("app"));
    running_pod(&pods, &name, &app).await;
    let (first, second) = (unique("pdb-a"), unique("pdb-b"));
    budget(&pdbs, &first, &app, 0, 1).await;
    budget(&pdbs, &second, &app, 0, 1).await;

    let e = api_status(
        pods.evict(&name, &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 500, "{e:?}");
    assert_eq!(
        e.message,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    assert!(pods.get(&name).await.is_ok(), "the pod stays");

    for b in [first, second] {
        pdbs.delete(&b, &DeleteParams::default()).await.unwrap();
    }
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
}

#[tokio::test]
async fn evict_decrements_the_budget_records_the_pod_and_deletes_it() {
    let c = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.client.clone());
    let (name, app) = (unique("evicted"), unique("app"));
    running_pod(&pods, &name, &app).await;
    budget(&pdbs, &name, &app, 0, 1).await;

    let dry = EvictParams {
        post_options: PostParams {
            dry_run: true,
            ..PostParams::default()
        },
        ..EvictParams::default()
    };
    pods.evict(&name, &dry).await.unwrap();
    assert!(pods.get(&name).await.is_ok(), "a dry run evicts nothing");
    let untouched = pdbs.get(&name).await.unwrap().status.unwrap();
    assert_eq!(untouched.disruptions_allowed, 1);

    let done = pods.evict(&name, &EvictParams::default()).await.unwrap();
    assert_eq!(
        done.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let status = pdbs.get(&name).await.unwrap().status.unwrap();
    assert_eq!(status.disruptions_allowed, 0);
    assert!(
        status
            .disrupted_pods
            .as_ref()
            .is_some_and(|d| d.contains_key(&name)),
        "{status:?}"
    );
    // Unbound, so deleted at once.
    assert!(api_status(pods.get(&name).await.unwrap_err()).is_not_found());

    let e = api_status(
        pods.evict(&name, &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert!(e.is_not_found(), "{e:?}");
    pdbs.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn dry_run_create_replace_and_delete_store_nothing() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("dry");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let would = api
        .create(&dry, &configmap(&name, &[("a", "1")]))
        .await
        .unwrap();
    assert_eq!(would.data.unwrap()["a"], "1");
    assert!(would.metadata.uid.is_some());
    assert!(api_status(api.get(&name).await.unwrap_err()).is_not_found());

    let created = api
        .create(&PostParams::default(), &configmap(&name, &[("a", "1")]))
        .await
        .unwrap();
    let mut changed = created.clone();
    changed.data = Some([("a".to_string(), "2".to_string())].into());
    let would = api.replace(&name, &dry, &changed).await.unwrap();
    assert_eq!(would.data.unwrap()["a"], "2");
    assert_eq!(
        would.metadata.resource_version, created.metadata.resource_version,
        "a dry run uses no resourceVersion"
    );
    api.delete(&name, &DeleteParams::default().dry_run())
        .await
        .unwrap();
    let kept = api.get(&name).await.unwrap();
    assert_eq!(kept.data.unwrap()["a"], "1");
    assert_eq!(
        kept.metadata.resource_version,
        created.metadata.resource_version
    );
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn created_objects_read_back_with_server_defaults() {
    let c = cluster().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(c.client.clone());
    let name = unique("defaults");
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }] },
            },
        },
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let pod_spec = spec.template.spec.unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod_spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(
        pod_spec.scheduler_name.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(pod_spec.termination_grace_period_seconds, Some(30));
    let container = &pod_spec.containers[0];
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        container.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    deployments
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

fn managers(meta: &kube::core::ObjectMeta) -> Vec<(String, String, serde_json::Value)> {
    meta.managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.fields_v1
                    .as_ref()
                    .map(|f| f.0.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_removes_what_a_manager_stops_applying() {
    use kube::api::{Patch, PatchParams};
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("ssa");
    let config = |data: serde_json::Value| {
        Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "labels": { "app": "ssa" } },
            "data": data,
        }))
    };
    let created = api
        .patch(
            &name,
            &PatchParams::apply("first"),
            &config(json!({ "a": "1", "b": "2" })),
        )
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["b"], "2");
    assert_eq!(
        managers(&created.metadata),
        vec![(
            "first".to_string(),
            "Apply".to_string(),
            json!({ "f:data": { "f:a": {}, "f:b": {} }, "f:metadata": { "f:labels": { "f:app": {} } } })
        )]
    );

    // An ordinary write by someone else adds a key that apply leaves alone.
    let mut updated = created.clone();
    updated
        .data
        .as_mut()
        .unwrap()
        .insert("c".into(), "3".into());
    let updated = api
        .replace(
            &name,
            &PostParams {
                field_manager: Some("editor".into()),
                ..PostParams::default()
            },
            &updated,
        )
        .await
        .unwrap();
    let by_editor = managers(&updated.metadata)
        .into_iter()
        .find(|(m, _, _)| m == "editor")
        .expect("the update is recorded");
    assert_eq!(
        (by_editor.1.as_str(), &by_editor.2),
        ("Update", &json!({ "f:data": { "f:c": {} } }))
    );

    // "first" stops applying b: it goes; c, which "editor" owns, stays.
    let again = api
        .patch(
            &name,
            &PatchParams::apply("first"),
            &config(json!({ "a": "10" })),
        )
        .await
        .unwrap();
    let data = again.data.unwrap();
    assert_eq!(
        (data.get("a"), data.get("b"), data.get("c")),
        (Some(&"10".to_string()), None, Some(&"3".to_string()))
    );
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn a_second_manager_conflicts_until_it_forces() {
    use kube::api::{Patch, PatchParams};
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let name = unique("ssa-conflict");
    let config = |a: &str| {
        Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name },
            "data": { "a": a },
        }))
    };
    api.patch(&name, &PatchParams::apply("first"), &config("1"))
        .await
        .unwrap();
    // The same value is shared ownership, not a conflict.
    api.patch(&name, &PatchParams::apply("second"), &config("1"))
        .await
        .unwrap();
    let e = api_status(
        api.patch(&name, &PatchParams::apply("second"), &config("2"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"first\": .data.a"
    );
    let causes = e.details.expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(
        (
            causes[0].reason.as_str(),
            causes[0].field.as_str(),
            causes[0].message.as_str()
        ),
        ("FieldManagerConflict", ".data.a", "conflict with \"first\"")
    );
    assert_eq!(api.get(&name).await.unwrap().data.unwrap()["a"], "1");

    let forced = api
        .patch(&name, &PatchParams::apply("second").force(), &config("2"))
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "2");
    let owners: Vec<String> = managers(&forced.metadata)
        .into_iter()
        .filter(|(_, _, f)| f.pointer("/f:data/f:a").is_some())
        .map(|(m, _, _)| m)
        .collect();
    assert_eq!(owners, vec!["second"], "forcing takes the field");
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn apply_merges_keyed_lists_and_applies_status_through_the_subresource() {
    use kube::api::{Patch, PatchParams};
    let c = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client.clone());
    let name = unique("ssa-pod");
    let container = |n: &str, image: &str| json!({ "name": n, "image": image });
    let pod = |containers: serde_json::Value| {
        Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name },
            "spec": { "containers": containers },
        }))
    };
    pods.patch(
        &name,
        &PatchParams::apply("app"),
        &pod(json!([container("app", "registry.k8s.io/pause:3.10")])),
    )
    .await
    .unwrap();
    // A pod's containers cannot be added after creation, but an image may change; a second
    // manager changing another container's image merges by name.
    let e = api_status(
        pods.patch(
            &name,
            &PatchParams::apply("other"),
            &pod(json!([container("app", "registry.k8s.io/pause:3.9")])),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.details.unwrap().causes[0].field,
        ".spec.containers[name=\"app\"].image"
    );

    let status = Patch::Apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name },
        "status": { "conditions": [{ "type": "example.com/Ready", "status": "True" }] },
    }));
    let p = pods
        .patch_status(&name, &PatchParams::apply("probe"), &status)
        .await
        .unwrap();
    let conditions = p.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "example.com/Ready" && c.status == "True"),
        "{conditions:?}"
    );
    let probe = p
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("probe"))
        .expect("the status apply is recorded");
    assert_eq!(probe.subresource.as_deref(), Some("status"));
    assert_eq!(probe.operation.as_deref(), Some("Apply"));
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
}

#[tokio::test]
async fn strict_field_validation_refuses_unknown_fields_and_warn_drops_them() {
    use kube::api::{Patch, PatchParams};
    let c = cluster().await;
    let name = unique("strict");
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name },
        "data": { "a": "1" },
        "dataa": { "typo": "1" },
    });
    let post = |validation: &str| {
        http::Request::post(format!(
            "/api/v1/namespaces/default/configmaps?fieldValidation={validation}"
        ))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap()
    };
    let e = api_status(
        c.client
            .request::<ConfigMap>(post("Strict"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert!(
        e.message
            .contains("strict decoding error: unknown field \"dataa\""),
        "{}",
        e.message
    );

    let created = c.client.request::<ConfigMap>(post("Warn")).await.unwrap();
    assert_eq!(created.data.unwrap()["a"], "1");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let raw: Api<kube::core::DynamicObject> = Api::default_namespaced_with(
        c.client.clone(),
        &kube::core::ApiResource::erase::<ConfigMap>(&()),
    );
    assert!(
        raw.get(&name).await.unwrap().data.get("dataa").is_none(),
        "unknown fields are dropped"
    );

    let e = api_status(
        api.patch(
            &name,
            &PatchParams::default().validation_strict(),
            &Patch::Merge(json!({ "dataa": { "x": "y" } })),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message.contains("unknown field \"dataa\""),
        "{}",
        e.message
    );
    // Apply cannot type a configuration with an undeclared field, whatever the directive;
    // upstream answers a bare 500 naming it.
    let e = api_status(
        api.patch(
            &name,
            &PatchParams::apply("m").validation_ignore(),
            &Patch::Apply(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "dataa": {} })),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 500);
    assert!(
        e.message.ends_with(".dataa: field not declared in schema"),
        "{}",
        e.message
    );
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn a_reflector_mirrors_creates_and_deletes() {
    use kube::runtime::{WatchStreamExt, reflector};
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let run = unique("mirror");
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(
            api.clone(),
            watcher::Config::default().labels(&format!("run={run}")),
        ),
    )
    .applied_objects();
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            item.expect("the reflector's watch keeps working");
        }
    });
    let names: Vec<String> = (0..3).map(|i| format!("{run}-{i}")).collect();
    for name in &names {
        let mut cm = configmap(name, &[("a", "1")]);
        cm.metadata.labels = Some([("run".to_string(), run.clone())].into());
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mirrored = |want: usize| {
        let reader = reader.clone();
        async move {
            for _ in 0..100 {
                if reader.state().len() == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(mirrored(3).await, "the store holds the three objects");
    api.delete(&names[1], &DeleteParams::default())
        .await
        .unwrap();
    assert!(mirrored(2).await, "the deletion reaches the store");
    let mut held: Vec<String> = reader
        .state()
        .iter()
        .map(|cm| cm.metadata.name.clone().unwrap())
        .collect();
    held.sort();
    assert_eq!(held, vec![names[0].clone(), names[2].clone()]);
    driver.abort();
    for name in [&names[0], &names[2]] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
}

#[tokio::test]
async fn a_controller_with_the_finalizer_helper_reconciles_and_cleans_up() {
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::finalizer::{Event, finalizer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Failed(#[from] kube::runtime::finalizer::Error<kube::Error>);

    struct Ctx {
        api: Api<ConfigMap>,
        cleanups: AtomicUsize,
    }
    const FINALIZER: &str = "dovetail.dev/contract-cleanup";

    let c = cluster().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client.clone());
    let run = unique("ctrl");
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        cleanups: AtomicUsize::new(0),
    });
    let controller = Controller::new(
        api.clone(),
        watcher::Config::default().labels(&format!("run={run}")),
    )
    .run(
        |cm: Arc<ConfigMap>, ctx: Arc<Ctx>| async move {
            finalizer(&ctx.api, FINALIZER, cm, |event| async {
                match event {
                    Event::Apply(cm) => {
                        let patch = json!({ "metadata": { "labels": { "reconciled": "yes" } } });
                        ctx.api
                            .patch(
                                cm.metadata.name.as_deref().unwrap(),
                                &kube::api::PatchParams::default(),
                                &kube::api::Patch::Merge(&patch),
                            )
                            .await?;
                        Ok(Action::await_change())
                    }
                    Event::Cleanup(_) => {
                        ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                        Ok(Action::await_change())
                    }
                }
            })
            .await
            .map_err(Failed::from)
        },
        |_, _: &Failed, _| Action::requeue(Duration::from_millis(200)),
        ctx.clone(),
    );
    let driver = tokio::spawn(controller.for_each(|_| async {}));

    let name = format!("{run}-a");
    let mut cm = configmap(&name, &[("a", "1")]);
    cm.metadata.labels = Some([("run".to_string(), run.clone())].into());
    api.create(&PostParams::default(), &cm).await.unwrap();
    let mut reconciled = None;
    for _ in 0..100 {
        let got = api.get(&name).await.unwrap();
        let labelled = got
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get("reconciled").is_some_and(|v| v == "yes"));
        let finalized = got
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
        if labelled && finalized {
            reconciled = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reconciled.is_some(),
        "the controller adds its finalizer and reconciles"
    );

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if api.get_opt(&name).await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone,
        "the finalizer helper removes its finalizer after cleanup"
    );
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1, "cleanup ran once");
    driver.abort();
}
