//! Bad input over real HTTP gets the answer a real API server gives: the right code, a `Status`
//! body with the exact reason, and a message naming what was wrong.

use dovetail_apiserver::{ApiServer, ServerConfig};
use serde_json::{Value, json};
use std::io::{Read, Write};

struct Answer {
    code: u16,
    /// Header lines, lower-cased.
    headers: String,
    body: Value,
}

impl Answer {
    /// Asserts a failure `Status` with this code and reason; returns its message.
    fn failure(&self, code: u16, reason: &str) -> String {
        assert_eq!(self.code, code, "{}", self.body);
        assert_eq!(self.body["kind"], "Status", "{}", self.body);
        assert_eq!(self.body["status"], "Failure", "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["reason"], reason, "{}", self.body);
        self.body["message"].as_str().unwrap_or("").to_string()
    }
}

/// One HTTP/1.1 request on its own connection.
async fn request(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let address = server.url().trim_start_matches("http://").to_string();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let raw = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.write_all(&bytes).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let (headers, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "plain answers have a length: {headers}"
    );
    let body = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    Answer {
        code,
        headers: headers.to_ascii_lowercase(),
        body,
    }
}

async fn server() -> ApiServer {
    ApiServer::start(ServerConfig::default()).await.unwrap()
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_yaml_are_400_naming_the_problem() {
    let s = server().await;
    let m = request(
        &s,
        "POST",
        CONFIGMAPS,
        "application/json",
        b"{\"metadata\": {",
    )
    .await
    .failure(400, "BadRequest");
    assert!(m.contains("not valid JSON") && m.contains("line 1"), "{m}");
    let m = request(
        &s,
        "POST",
        CONFIGMAPS,
        "application/yaml",
        b"metadata:\n  name: [a\n",
    )
    .await
    .failure(400, "BadRequest");
    assert!(m.contains("not valid YAML"), "{m}");
    let m = request(&s, "POST", CONFIGMAPS, "application/json", b"[1, 2]")
        .await
        .failure(400, "BadRequest");
    assert!(m.contains("must be an object, not an array"), "{m}");
    let m = request(
        &s,
        "POST",
        CONFIGMAPS,
        "application/json",
        br#"{"kind":"Secret","metadata":{"name":"a"}}"#,
    )
    .await
    .failure(400, "BadRequest");
    assert!(m.contains("kind"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_bodies_are_accepted_like_json() {
    let s = server().await;
    let a = request(
        &s,
        "POST",
        CONFIGMAPS,
        "application/yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n",
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.body["data"], json!({ "k": "v" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_media_types_and_undecodable_protobuf_are_refused() {
    let s = server().await;
    let m = request(&s, "POST", CONFIGMAPS, "text/plain", b"{}")
        .await
        .failure(415, "UnsupportedMediaType");
    assert!(
        m.contains("text/plain") && m.contains("application/json"),
        "{m}"
    );
    let m = request(
        &s,
        "POST",
        CONFIGMAPS,
        "application/vnd.kubernetes.protobuf",
        b"not protobuf",
    )
    .await
    .failure(400, "BadRequest");
    assert!(m.contains("magic"), "{m}");
    // A well-formed envelope around a kind this server cannot decode.
    let mut body = b"k8s\0".to_vec();
    let type_meta = [b"\x0a\x02v1".as_slice(), b"\x12\x04Node"].concat();
    body.extend([0x0a, type_meta.len() as u8]);
    body.extend(type_meta);
    let m = request(
        &s,
        "POST",
        "/api/v1/nodes",
        "application/vnd.kubernetes.protobuf",
        &body,
    )
    .await
    .failure(415, "UnsupportedMediaType");
    assert!(m.contains("v1 Node") && m.contains("JSON"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_malformed_resource_version_is_409_or_400() {
    let s = server().await;
    let created = request(
        &s,
        "POST",
        CONFIGMAPS,
        "",
        br#"{"metadata":{"name":"a"},"data":{"k":"1"}}"#,
    )
    .await;
    assert_eq!(created.code, 201);
    let mut stale = created.body.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let m = request(
        &s,
        "PUT",
        &format!("{CONFIGMAPS}/a"),
        "application/json",
        stale.to_string().as_bytes(),
    )
    .await
    .failure(409, "Conflict");
    assert!(m.contains("the object has been modified"), "{m}");
    stale["metadata"]["resourceVersion"] = json!("abc");
    request(
        &s,
        "PUT",
        &format!("{CONFIGMAPS}/a"),
        "application/json",
        stale.to_string().as_bytes(),
    )
    .await
    .failure(400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_and_objects_are_404() {
    let s = server().await;
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/apis/example.com/v1/widgets",
        "/api/v9/pods",
        "/nothing/here",
    ] {
        request(&s, "GET", path, "", b"")
            .await
            .failure(404, "NotFound");
    }
    let m = request(&s, "GET", &format!("{CONFIGMAPS}/missing"), "", b"")
        .await
        .failure(404, "NotFound");
    assert_eq!(m, "configmaps \"missing\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_are_refused_as_upstream() {
    let s = server().await;
    for (query, code, reason, fragment) in [
        ("limit=abc", 400, "BadRequest", "limit"),
        (
            "watch=true&timeoutSeconds=-x",
            400,
            "BadRequest",
            "timeoutSeconds",
        ),
        ("watch=maybe", 400, "BadRequest", "watch"),
        ("continue=%%%", 400, "BadRequest", "continue"),
        ("continue=bm90LWEtdG9rZW4", 400, "BadRequest", "continue"),
        ("labelSelector=a%20in%20(", 400, "BadRequest", ""),
        ("labelSelector=!!a", 400, "BadRequest", ""),
        (
            "fieldSelector=spec.colour%3Dred",
            400,
            "BadRequest",
            "spec.colour",
        ),
        ("resourceVersion=abc", 400, "BadRequest", "abc"),
        // Upstream's ValidateListOptions answers these with 422 Invalid on ListOptions.
        (
            "resourceVersionMatch=NotOlderThan",
            422,
            "Invalid",
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Sometimes",
            422,
            "Invalid",
            "Sometimes",
        ),
    ] {
        let m = request(&s, "GET", &format!("{CONFIGMAPS}?{query}"), "", b"")
            .await
            .failure(code, reason);
        assert!(m.contains(fragment), "{query}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_values_other_than_all_are_refused_and_all_stores_nothing() {
    let s = server().await;
    let body = br#"{"metadata":{"name":"dry"},"data":{"k":"v"}}"#;
    let m = request(&s, "POST", &format!("{CONFIGMAPS}?dryRun=Yes"), "", body)
        .await
        .failure(422, "Invalid");
    assert!(m.contains("supported values: \"All\""), "{m}");
    let before = s.store().revision();
    let a = request(&s, "POST", &format!("{CONFIGMAPS}?dryRun=All"), "", body).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.body["data"], json!({ "k": "v" }));
    assert!(a.body["metadata"].get("resourceVersion").is_none());
    assert_eq!(s.store().revision(), before);
    request(&s, "GET", &format!("{CONFIGMAPS}/dry"), "", b"")
        .await
        .failure(404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_of_missing_pods_and_mismatched_bodies() {
    let s = server().await;
    let path = "/api/v1/namespaces/default/pods/ghost/eviction";
    let m = request(
        &s,
        "POST",
        path,
        "",
        br#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"ghost"}}"#,
    )
    .await
    .failure(404, "NotFound");
    assert_eq!(m, "pods \"ghost\" not found");
    let m = request(&s, "POST", path, "", br#"{"metadata":{"name":"other"}}"#)
        .await
        .failure(400, "BadRequest");
    assert_eq!(m, "name in URL does not match name in Eviction object");
    request(&s, "GET", path, "", b"")
        .await
        .failure(405, "MethodNotAllowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_its_controller_has_not_seen_yet_is_429_with_retry_after() {
    let s = server().await;
    let pod = request(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods",
        "",
        br#"{"metadata":{"name":"p","labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
    )
    .await;
    assert_eq!(pod.code, 201, "{}", pod.body);
    let mut running = pod.body.clone();
    running["status"]["phase"] = json!("Running");
    let a = request(
        &s,
        "PUT",
        "/api/v1/namespaces/default/pods/p/status",
        "",
        running.to_string().as_bytes(),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.body);
    let pdb = request(
        &s,
        "POST",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        "",
        br#"{"metadata":{"name":"b"},"spec":{"maxUnavailable":1,"selector":{"matchLabels":{"app":"a"}}}}"#,
    )
    .await;
    assert_eq!(pdb.code, 201, "{}", pdb.body);
    assert_eq!(pdb.body["status"]["disruptionsAllowed"], 0, "{}", pdb.body);

    let a = request(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods/p/eviction",
        "",
        br#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"}}"#,
    )
    .await;
    let m = a.failure(429, "TooManyRequests");
    assert_eq!(
        m,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        a.body["details"]["causes"][0],
        json!({ "reason": "DisruptionBudget", "message": "The disruption budget b is still being processed by the server." })
    );
    assert!(a.headers.contains("retry-after: 10"), "{}", a.headers);
}
