//! Policy ConfigMaps through the in-memory API server: what the watch
//! delivers, and what the report leaves on the ConfigMap for `kubectl
//! describe` and `kubectl get -o yaml` to show.

use std::time::Duration;

use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{
    AcceptedPolicy, ComponentSource, MODE_LABEL, OutcomeKind, POLICY_LABEL, PolicyEvent,
    PolicyMode, PolicyOutcome, PolicyStatus, REASON_ACCEPTED, REASON_REFUSED, Refusal,
    STATUS_ANNOTATION, ShapeError, report, watch, watch_with,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

const NS: &str = "kube-system";
/// Not a real component: the watch and the report do not look inside.
const WASM: &[u8] = b"\0asm\x0d\0\x01\0component bytes";

async fn next(events: &mut (impl Stream<Item = PolicyEvent> + Unpin)) -> PolicyEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("a policy event within 10 s")
        .expect("the watch runs until dropped")
}

/// Server-side applies a ConfigMap in the controller's namespace.
async fn put(
    client: &Client,
    name: &str,
    labels: &[(&str, &str)],
    binary: &[(&str, &[u8])],
    data: &[(&str, &str)],
) {
    let cm = dovetail_kube::testing::configmap(NS, name, labels, binary, data);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&cm),
    )
    .await
    .unwrap();
}

async fn events_for(client: &Client, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    let mut events: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect();
    events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    events
}

async fn status_of(client: &Client, name: &str) -> PolicyStatus {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm = api.get(name).await.unwrap();
    let raw = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STATUS_ANNOTATION))
        .expect("the status annotation is set");
    serde_json::from_str(raw).expect("the annotation is the status JSON")
}

fn accepted() -> PolicyOutcome {
    PolicyOutcome::Accepted {
        mode: PolicyMode::Live,
        policies: vec![AcceptedPolicy {
            decision: Decision::InstanceSelection,
            name: "graviton-first".into(),
            version: "0.1.0".into(),
            digest: "sha256:0123456789ab".into(),
        }],
    }
}

#[tokio::test]
async fn a_policy_configmap_arrives_and_its_outcome_is_written_back_on_it() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client = cluster.client();
    let mut events = Box::pin(watch(client.clone(), NS));
    // Unlabelled ConfigMaps are not policies and never arrive.
    put(&client, "unrelated", &[], &[], &[("a", "b")]).await;
    put(
        &client,
        "dovetail-instance-selection",
        &[(POLICY_LABEL, "instance-selection")],
        &[("instance-selection.wasm", WASM)],
        &[("instance-selection.json", "{\"prefer\":\"arm64\"}")],
    )
    .await;
    let PolicyEvent::Applied(cm) = next(&mut events).await else {
        panic!("a well-formed policy configmap")
    };
    assert_eq!(cm.configmap.name, "dovetail-instance-selection");
    assert_eq!(cm.mode, PolicyMode::Live);
    assert_eq!(
        cm.components,
        vec![(
            Decision::InstanceSelection,
            ComponentSource::Inline(WASM.to_vec())
        )]
    );
    assert_eq!(
        cm.config(Decision::InstanceSelection),
        Some("{\"prefer\":\"arm64\"}")
    );
    assert!(!cm.configmap.uid.is_empty() && !cm.configmap.resource_version.is_empty());

    let status = report(&client, &cm.configmap, &accepted()).await.unwrap();
    let evs = events_for(&client, "dovetail-instance-selection").await;
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.reason.as_deref(), Some(REASON_ACCEPTED));
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    let msg = ev.message.as_deref().unwrap();
    for part in ["graviton-first", "0.1.0", "sha256:0123456789ab", "serving"] {
        assert!(msg.contains(part), "`{part}` in {msg}");
    }
    assert_eq!(ev.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(
        ev.involved_object.uid.as_deref(),
        Some(cm.configmap.uid.as_str())
    );
    let written = status_of(&client, "dovetail-instance-selection").await;
    assert_eq!(written, status);
    assert_eq!(written.outcome, OutcomeKind::Accepted);
    assert_eq!(written.content, cm.configmap.content);
    assert_eq!(written.policies[0].digest, "sha256:0123456789ab");

    // The annotation comes back through the watch as the same content,
    // already reported: the consumer skips it, so reporting cannot loop.
    let PolicyEvent::Applied(again) = next(&mut events).await else {
        panic!("the annotated configmap")
    };
    assert_ne!(
        again.configmap.resource_version,
        cm.configmap.resource_version
    );
    assert_eq!(again.configmap.content, cm.configmap.content);
    assert!(accepted().already_reported(&again.configmap));

    // A refusal: Warning with the reason and the fix, annotation updated.
    let refused = PolicyOutcome::Refused(Refusal {
        reason: "policy `x` failed [load]: not a component".into(),
        fix: "build it for wasm32-wasip2".into(),
        still_serving: "instance-selection: graviton-first@0.1.0".into(),
    });
    report(&client, &again.configmap, &refused).await.unwrap();
    let evs = events_for(&client, "dovetail-instance-selection").await;
    assert_eq!(evs.len(), 2, "one event per outcome");
    let ev = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some(REASON_REFUSED))
        .expect("the refusal event");
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let msg = ev.message.as_deref().unwrap();
    assert!(msg.contains("not a component"), "{msg}");
    assert!(msg.contains("fix: build it for wasm32-wasip2"), "{msg}");
    assert!(
        msg.contains("still serving: instance-selection: graviton-first"),
        "{msg}"
    );
    let written = status_of(&client, "dovetail-instance-selection").await;
    assert_eq!(written.outcome, OutcomeKind::Refused);
    // The user's data is untouched by the report.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let stored = api.get("dovetail-instance-selection").await.unwrap();
    assert_eq!(
        stored.binary_data.unwrap()["instance-selection.wasm"].0,
        WASM
    );
    assert_eq!(
        stored.metadata.labels.unwrap()[POLICY_LABEL],
        "instance-selection"
    );
    let _ = next(&mut events).await;

    // Unlabelling is deleting, as far as policies go; so is deleting.
    api.patch(
        "dovetail-instance-selection",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { POLICY_LABEL: null } } })),
    )
    .await
    .unwrap();
    match next(&mut events).await {
        PolicyEvent::Deleted(c) => assert_eq!(c.name, "dovetail-instance-selection"),
        other => panic!("expected a deletion, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_malformed_configmap_arrives_as_a_refusal_naming_the_fix() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client = cluster.client();
    let mut events = Box::pin(watch(client.clone(), NS));
    // A manifest that put the base64 component under data.
    put(
        &client,
        "handmade",
        &[(POLICY_LABEL, "instance-selection"), (MODE_LABEL, "shadow")],
        &[],
        &[("instance-selection.wasm", "AGFzbQ0AAQA=")],
    )
    .await;
    let PolicyEvent::Malformed {
        configmap,
        decisions,
        mode,
        error,
    } = next(&mut events).await
    else {
        panic!("a refusal")
    };
    assert_eq!(configmap.name, "handmade");
    assert_eq!(decisions, [Decision::InstanceSelection]);
    assert_eq!(mode, PolicyMode::Shadow);
    assert!(
        matches!(error, ShapeError::ComponentInData { .. }),
        "{error}"
    );
    let fix = error.fix(&configmap.name);
    assert!(fix.contains("binaryData"), "{fix}");

    // No `.wasm` at all.
    put(
        &client,
        "empty",
        &[(POLICY_LABEL, "")],
        &[],
        &[("instance-selection.json", "{}")],
    )
    .await;
    let PolicyEvent::Malformed { error, .. } = next(&mut events).await else {
        panic!("a refusal")
    };
    assert!(
        matches!(error, ShapeError::ConfigWithoutComponent { .. }),
        "{error}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_configmap_deleted_while_the_watch_was_away_is_reported_after_the_410() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client = cluster.client();
    // The server ends each watch after 1 s; the watcher resumes from its
    // revision, or relists when that revision is gone.
    let mut events = Box::pin(watch_with(
        client.clone(),
        NS,
        watcher::Config::default().timeout(1),
    ));
    for name in ["stays", "goes"] {
        put(
            &client,
            name,
            &[(POLICY_LABEL, "")],
            &[("instance-selection.wasm", WASM)],
            &[],
        )
        .await;
        assert!(matches!(next(&mut events).await, PolicyEvent::Applied(_)));
    }
    // Not polled, the stream holds no open watch once the server has ended
    // it, so the deletion is not streamed to it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    api.delete("goes", &DeleteParams::default()).await.unwrap();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({ "metadata": { "name": "unrelated" } })).unwrap(),
    )
    .await
    .unwrap();
    cluster.server().store().compact();
    // The relist lists `stays` again (same content) and finds `goes` gone.
    let mut relisted = false;
    let deleted = loop {
        match next(&mut events).await {
            PolicyEvent::Deleted(c) => break c.name,
            PolicyEvent::Applied(cm) => {
                assert_eq!(cm.configmap.name, "stays");
                relisted = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(relisted, "the deletion was found by a relist");
    assert_eq!(deleted, "goes");
    cluster.shutdown().await;
}
