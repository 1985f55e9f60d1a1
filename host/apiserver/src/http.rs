//! The HTTP surface: routes every Kubernetes API path to discovery, the store, lists and
//! watches, and turns every failure into a `Status` body.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::discovery;
use crate::filter::ObjectFilter;
use crate::list::{ListOptions, list};
use crate::patch::{self, ErrorClass, PatchError, PatchKind};
use crate::path::{ApiPath, ResourcePath};
use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{DeleteOptions, Store, Subresource};
use crate::validation::Directive;
use crate::watch::{self, WatchOptions};
use crate::writes::WriteContext;

/// What every request handler shares.
#[derive(Clone)]
pub struct App {
    pub store: Arc<Store>,
    /// `host:port` clients reach the server at, for `/api`.
    pub address: String,
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
}

/// The router serving the whole API.
pub fn router(app: App) -> Router {
    Router::new().fallback(handle).with_state(app)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(
        serde_json::to_vec(body).expect("JSON values serialise"),
    ));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::table::requested);
    if matches!(method, Method::POST | Method::PUT)
        && let Err(e) = check_content_type(&headers)
    {
        return error_response(&e);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut warnings = Vec::new();
    let mut response = match dispatch(
        &app,
        &method,
        &uri,
        content_type,
        &body,
        user_agent,
        &mut warnings,
    ) {
        Ok(Reply::Json(code, v)) => match table.filter(|_| method == Method::GET) {
            Some(api_version) => json_response(code, &as_table(&app, &uri, v, api_version)),
            None => json_response(code, &v),
        },
        Ok(Reply::Watch(w)) => watch_response(&app, *w, table),
        Err(e) => error_response(&e),
    };
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&crate::validation::warning_header(&w)) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// A resource read turned into a Table; anything else is returned as it is.
fn as_table(app: &App, uri: &Uri, body: Value, api_version: &str) -> Value {
    let Some(ApiPath::Resource(p)) = crate::path::parse(uri.path()) else {
        return body;
    };
    match app.store.resource(&p.group, &p.version, &p.plural) {
        Some(res) if p.subresource.is_none() => {
            crate::table::to_table(&res, &body, api_version, chrono::Utc::now())
        }
        _ => body,
    }
}

enum Reply {
    Json(StatusCode, Value),
    Watch(Box<WatchRequest>),
}

struct WatchRequest {
    res: ResourceInfo,
    namespace: String,
    opts: WatchOptions,
    start: watch::Start,
    filter: ObjectFilter,
}

fn not_found_path() -> ApiError {
    ApiError::UnknownPath("the server could not find the requested resource".into())
}

struct Params(HashMap<String, String>);

impl Params {
    fn parse(uri: &Uri) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::try_from_uri(uri)
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some("true" | "1" | "") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(ApiError::BadRequest(format!(
                "query parameter {key}={other:?} is not a boolean (use true or false)"
            ))),
        }
    }

    fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter {key}={s:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }
}

fn dispatch(
    app: &App,
    method: &Method,
    uri: &Uri,
    content_type: &str,
    body: &Bytes,
    user_agent: &str,
    warnings: &mut Vec<String>,
) -> Result<Reply, ApiError> {
    if let Some(doc) = openapi_request(app, method, uri.path())? {
        return Ok(Reply::Json(StatusCode::OK, doc));
    }
    let path = crate::path::parse(uri.path()).ok_or_else(not_found_path)?;
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    if !matches!(path, ApiPath::Resource(_)) && method != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "{method} is not supported on {}",
            uri.path()
        )));
    }
    match path {
        ApiPath::Version => ok(discovery::version()),
        ApiPath::CoreVersions => ok(discovery::core_versions(&app.address)),
        ApiPath::Groups => ok(discovery::group_list(&app.store.registry())),
        ApiPath::Group(g) => {
            discovery::group(&app.store.registry(), &g).map_or_else(|| Err(not_found_path()), ok)
        }
        ApiPath::ResourceList { group, version } => {
            discovery::resource_list(&app.store.registry(), &group, &version)
                .map_or_else(|| Err(not_found_path()), ok)
        }
        ApiPath::Resource(p) => {
            let mut ctx = WriteContext {
                user_agent: user_agent.to_string(),
                ..WriteContext::default()
            };
            let r = resource_request(app, method, uri, content_type, body, p, &mut ctx);
            warnings.append(&mut ctx.warnings);
            r
        }
    }
}

/// `/openapi/v3` and its group-version documents.
fn openapi_request(app: &App, method: &Method, path: &str) -> Result<Option<Value>, ApiError> {
    let path = path.trim_end_matches('/');
    if path != "/openapi/v3" && !path.starts_with("/openapi/v3/") {
        return Ok(None);
    }
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "{method} is not supported on {path}"
        )));
    }
    let registry = app.store.registry();
    let schema_of = |r: &ResourceInfo| crate::field_schema::custom_schema(&app.store, r);
    if path == "/openapi/v3" {
        return Ok(Some(crate::openapi::root(&registry, &schema_of)));
    }
    crate::openapi::parse_path(path)
        .and_then(|(g, v)| crate::openapi::group_version(&registry, &g, &v, &schema_of))
        .map(Some)
        .ok_or_else(not_found_path)
}

/// Bodies are JSON; protobuf or CBOR clients get the 415 that makes them fall back to JSON.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media.is_empty() || media == "application/json" || media == "*/*" {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format ({media}) - accepted media types include: application/json"
    )))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(v)
}

fn delete_options(body: &Bytes) -> Result<DeleteOptions, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeleteOptions::default());
    }
    let v = parse_body(body)?;
    let p = &v["preconditions"];
    let field = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let grace_period_seconds = match v.get("gracePeriodSeconds") {
        None | Some(Value::Null) => None,
        Some(g) => Some(g.as_i64().ok_or_else(|| {
            ApiError::BadRequest(format!("gracePeriodSeconds must be an integer, got {g}"))
        })?),
    };
    Ok(DeleteOptions {
        uid: field("uid"),
        resource_version: field("resourceVersion"),
        grace_period_seconds,
    })
}

fn resource_request(
    app: &App,
    method: &Method,
    uri: &Uri,
    content_type: &str,
    body: &Bytes,
    p: ResourcePath,
    ctx: &mut WriteContext,
) -> Result<Reply, ApiError> {
    let res = app
        .store
        .resource(&p.group, &p.version, &p.plural)
        .ok_or_else(not_found_path)?;
    if p.namespace.is_some() && !res.namespaced {
        return Err(not_found_path());
    }
    let namespace = p.namespace.clone().unwrap_or_default();
    let params = Params::parse(uri)?;
    if params.str("dryRun").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::BadRequest(
            "dryRun is not supported by this server; send the request without it".into(),
        ));
    }
    ctx.directive = Directive::parse(params.str("fieldValidation"))?;
    ctx.field_manager = params.str("fieldManager").map(str::to_string);
    ctx.force = params.bool("force")?;
    let sub = match p.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if res.status_subresource => Subresource::Status,
        Some("binding") if crate::pod::is_pods(&res) && p.namespace.is_some() => {
            let name = p.name.as_deref().unwrap_or("");
            if *method != Method::POST {
                return Err(ApiError::MethodNotAllowed(format!(
                    "{method} is not supported on pods/binding; POST a Binding"
                )));
            }
            let binding = parse_body(body)?;
            return Ok(Reply::Json(
                StatusCode::CREATED,
                crate::pod::bind(&app.store, &res, &namespace, name, &binding)?,
            ));
        }
        Some(_) => return Err(not_found_path()),
    };
    let Some(name) = p.name.as_deref() else {
        return collection_request(
            app,
            method,
            body,
            &res,
            &namespace,
            p.namespace.is_some(),
            &params,
            ctx,
        );
    };
    if res.namespaced && p.namespace.is_none() {
        return Err(not_found_path());
    }
    match *method {
        Method::GET => Ok(Reply::Json(
            StatusCode::OK,
            app.store.get(&res, &namespace, name)?,
        )),
        Method::PATCH if PatchKind::from_content_type(content_type) == Ok(PatchKind::Apply) => {
            let (obj, created) =
                crate::writes::apply(&app.store, &res, &namespace, name, sub, body, ctx)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(Reply::Json(code, obj))
        }
        Method::PATCH => {
            if ctx.force.is_some() {
                return Err(ApiError::Invalid {
                    target: Target::new("meta.k8s.io", "PatchOptions", ""),
                    message: "force: Forbidden: may not be specified for non-apply patch".into(),
                });
            }
            Ok(Reply::Json(
                StatusCode::OK,
                patch_object(app, &res, &namespace, name, sub, content_type, body, ctx)?,
            ))
        }
        Method::PUT => {
            let obj = parse_body(body)?;
            Ok(Reply::Json(
                StatusCode::OK,
                crate::writes::update(
                    &app.store,
                    &res,
                    &namespace,
                    name,
                    obj,
                    sub,
                    Some(body),
                    ctx,
                )?,
            ))
        }
        Method::DELETE if sub == Subresource::Main => {
            let mut pre = delete_options(body)?;
            if let Some(g) = params.str("gracePeriodSeconds").filter(|g| !g.is_empty()) {
                pre.grace_period_seconds = Some(g.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter gracePeriodSeconds={g:?} is not an integer"
                    ))
                })?);
            }
            Ok(Reply::Json(
                StatusCode::OK,
                app.store.delete(&res, &namespace, name, &pre)?,
            ))
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not supported on {}",
            uri.path()
        ))),
    }
}

/// Applies a patch to the stored object and writes it back through the same update rules as a
/// PUT (status split, generation, finalizers). A patch that names no resourceVersion is retried on
/// a conflicting write, as real servers do; one that names a stale one is a 409.
#[allow(clippy::too_many_arguments)]
fn patch_object(
    app: &App,
    res: &ResourceInfo,
    namespace: &str,
    name: &str,
    sub: Subresource,
    content_type: &str,
    body: &Bytes,
    ctx: &mut WriteContext,
) -> Result<Value, ApiError> {
    let kind = PatchKind::from_content_type(content_type).map_err(patch_error)?;
    const ATTEMPTS: usize = 5;
    let mut attempt = 1;
    loop {
        let current = app.store.get(res, namespace, name)?;
        let patched =
            patch::apply(kind, &current, body, res.object_type()).map_err(|e| match e.class() {
                ErrorClass::Invalid => ApiError::Invalid {
                    target: Target::new(&res.group, &res.plural, name),
                    message: e.to_string(),
                },
                _ => patch_error(e),
            })?;
        let pinned = patched.pointer("/metadata/resourceVersion")
            != current.pointer("/metadata/resourceVersion");
        match crate::writes::update(&app.store, res, namespace, name, patched, sub, None, ctx) {
            Err(ApiError::Conflict { .. }) if !pinned && attempt < ATTEMPTS => attempt += 1,
            r => return r,
        }
    }
}

fn patch_error(e: PatchError) -> ApiError {
    let message = e.to_string();
    match e.class() {
        ErrorClass::UnsupportedMediaType => ApiError::UnsupportedMediaType(message),
        ErrorClass::RequestEntityTooLarge => ApiError::RequestEntityTooLarge(message),
        ErrorClass::BadRequest | ErrorClass::Invalid => ApiError::BadRequest(message),
    }
}

#[allow(clippy::too_many_arguments)]
fn collection_request(
    app: &App,
    method: &Method,
    body: &Bytes,
    res: &ResourceInfo,
    namespace: &str,
    namespace_in_path: bool,
    params: &Params,
    ctx: &mut WriteContext,
) -> Result<Reply, ApiError> {
    let filter = ObjectFilter::from_selectors(
        res,
        params.str("labelSelector"),
        params.str("fieldSelector"),
    )?;
    match *method {
        Method::GET if params.bool("watch")? == Some(true) => {
            let opts = WatchOptions {
                resource_version: params.str("resourceVersion").map(str::to_string),
                resource_version_match: params.str("resourceVersionMatch").map(str::to_string),
                send_initial_events: params.bool("sendInitialEvents")?,
                allow_bookmarks: params.bool("allowWatchBookmarks")?.unwrap_or(false),
                timeout: params
                    .number("timeoutSeconds")?
                    .map(Duration::from_secs)
                    .unwrap_or(app.default_watch_timeout),
                bookmark_interval: app.bookmark_interval,
            };
            let start = watch::plan(&opts)?;
            Ok(Reply::Watch(Box::new(WatchRequest {
                res: res.clone(),
                namespace: namespace.to_string(),
                opts,
                start,
                filter,
            })))
        }
        Method::GET => {
            let opts = ListOptions {
                limit: params
                    .number("limit")?
                    .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
                continue_token: params.str("continue").map(str::to_string),
                resource_version: params.str("resourceVersion").map(str::to_string),
                resource_version_match: params.str("resourceVersionMatch").map(str::to_string),
            };
            Ok(Reply::Json(
                StatusCode::OK,
                list(&app.store, res, namespace, &opts, &filter)?,
            ))
        }
        Method::POST if res.namespaced && !namespace_in_path => {
            Err(ApiError::MethodNotAllowed(format!(
                "{} are namespaced: create them under /namespaces/<namespace>/{}",
                res.plural, res.plural
            )))
        }
        Method::POST => {
            let obj = parse_body(body)?;
            Ok(Reply::Json(
                StatusCode::CREATED,
                crate::writes::create(&app.store, res, namespace, obj, body, ctx)?,
            ))
        }
        Method::DELETE => {
            let pre = delete_options(body)?;
            let (_, objects) = app.store.snapshot(res, namespace, None).map_err(|_| {
                ApiError::Internal("the current revision is always retained".into())
            })?;
            let mut deleted = Vec::new();
            for (key, _) in objects.iter().filter(|(_, o)| filter.matches(o)) {
                match app.store.delete(res, &key.namespace, &key.name, &pre) {
                    Ok(v) => deleted.push(v),
                    // Deleted concurrently: nothing left to do for it.
                    Err(ApiError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Reply::Json(
                StatusCode::OK,
                json!({
                    "kind": format!("{}List", res.kind),
                    "apiVersion": res.api_version(),
                    "metadata": { "resourceVersion": app.store.revision().to_string() },
                    "items": deleted,
                }),
            ))
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not supported on a collection of {}",
            res.plural
        ))),
    }
}

/// Watch events as Tables: the first carries the column definitions, later ones rows only,
/// as a real server sends them to `kubectl get -w`.
struct TableEvents {
    res: ResourceInfo,
    api_version: &'static str,
    headers_sent: bool,
}

impl TableEvents {
    fn convert(&mut self, mut event: Value) -> Value {
        if !matches!(
            event["type"].as_str(),
            Some("ADDED" | "MODIFIED" | "DELETED")
        ) {
            return event;
        }
        let mut t = crate::table::to_table(
            &self.res,
            &event["object"],
            self.api_version,
            chrono::Utc::now(),
        );
        if self.headers_sent
            && let Some(m) = t.as_object_mut()
        {
            m.remove("columnDefinitions");
        }
        self.headers_sent = true;
        event["object"] = t;
        event
    }
}

fn watch_response(app: &App, w: WatchRequest, table: Option<&'static str>) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(256);
    let mut tables = table.map(|api_version| TableEvents {
        res: w.res.clone(),
        api_version,
        headers_sent: false,
    });
    tokio::spawn(watch::run(
        app.store.clone(),
        w.res,
        w.namespace,
        w.opts,
        w.start,
        w.filter,
        tx,
    ));
    let events =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    let lines = futures::stream::StreamExt::map(events, move |event| {
        let event = match tables.as_mut() {
            Some(t) => t.convert(event),
            None => event,
        };
        let mut line = serde_json::to_vec(&event).expect("JSON values serialise");
        line.push(b'\n');
        Ok::<Bytes, Infallible>(Bytes::from(line))
    });
    let mut r = Response::new(Body::from_stream(lines));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app() -> App {
        App {
            store: Arc::new(Store::default()),
            address: "127.0.0.1:1".into(),
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(60),
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("api".to_string()),
            Just("apis".to_string()),
            Just("v1".to_string()),
            Just("apps".to_string()),
            Just("namespaces".to_string()),
            Just("default".to_string()),
            Just("pods".to_string()),
            Just("configmaps".to_string()),
            Just("nodes".to_string()),
            Just("deployments".to_string()),
            Just("status".to_string()),
            Just("x".to_string()),
            "[a-z0-9%.-]{0,6}",
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("watch"),
            Just("limit"),
            Just("continue"),
            Just("resourceVersion"),
            Just("resourceVersionMatch"),
            Just("sendInitialEvents"),
            Just("allowWatchBookmarks"),
            Just("timeoutSeconds"),
            Just("dryRun"),
            Just("zz"),
        ];
        let value = prop_oneof![
            Just("1".to_string()),
            Just("0".to_string()),
            Just("true".to_string()),
            Just("Exact".to_string()),
            Just("NotOlderThan".to_string()),
            "[ -~]{0,8}",
        ];
        proptest::collection::vec((key, value), 0..4).prop_map(|kv| {
            kv.into_iter()
                .map(|(k, v)| format!("{k}={}", v.replace(['&', '#', ' '], "")))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(Vec::new()),
            Just(br#"{"metadata":{"name":"x"}}"#.to_vec()),
            Just(br#"{"metadata":{"name":"x","resourceVersion":"1"},"spec":{}}"#.to_vec()),
            Just(br#"{"metadata":[],"kind":"Pod"}"#.to_vec()),
            Just(br#"{"apiVersion":7,"metadata":{"name":"x","finalizers":[1,"a"]}}"#.to_vec()),
            Just(br#"[1,2]"#.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..32),
        ]
    }

    proptest! {
        #[test]
        fn no_request_panics_and_every_error_is_a_status(
            method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PUT), Just(Method::DELETE), Just(Method::PATCH)],
            segments in proptest::collection::vec(segment(), 0..7),
            q in query(),
            b in body(),
            content_type in prop_oneof![
                Just(""),
                Just("application/json"),
                Just("application/merge-patch+json"),
                Just("application/json-patch+json"),
                Just("application/strategic-merge-patch+json"),
                Just("application/apply-patch+yaml"),
                Just("text/plain"),
            ],
        ) {
            let app = app();
            let path = format!("/{}", segments.join("/"));
            let Ok(uri) = format!("{path}?{q}").parse::<Uri>() else { return Ok(()) };
            match dispatch(&app, &method, &uri, content_type, &Bytes::from(b), "proptest/1", &mut Vec::new()) {
                Ok(_) => {}
                Err(e) => {
                    let s = e.to_status();
                    prop_assert_eq!(&s["kind"], "Status");
                    prop_assert!((400..600).contains(&e.code()), "{:?}", e);
                }
            }
        }
    }

    #[test]
    fn create_then_get_over_the_dispatcher() {
        let app = app();
        let post: Uri = "/api/v1/namespaces/default/configmaps".parse().unwrap();
        let body = Bytes::from_static(br#"{"metadata":{"name":"a"},"data":{"k":"v"}}"#);
        match dispatch(
            &app,
            &Method::POST,
            &post,
            "application/json",
            &body,
            "test/1",
            &mut Vec::new(),
        ) {
            Ok(Reply::Json(code, v)) => {
                assert_eq!(code, StatusCode::CREATED);
                assert_eq!(v["kind"], "ConfigMap");
            }
            _ => panic!("create failed"),
        }
        let get: Uri = "/api/v1/namespaces/default/configmaps/a".parse().unwrap();
        assert!(matches!(
            dispatch(
                &app,
                &Method::GET,
                &get,
                "",
                &Bytes::new(),
                "test/1",
                &mut Vec::new()
            ),
            Ok(Reply::Json(StatusCode::OK, _))
        ));
    }
}
