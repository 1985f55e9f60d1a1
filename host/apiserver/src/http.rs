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

use crate::authn::UserInfo;
use crate::discovery;
use crate::filter::ObjectFilter;
use crate::list::{ListOptions, ObjectList, list};
use crate::patch::{self, ErrorClass, PatchError, PatchKind};
use crate::path::{ApiPath, ResourcePath};
use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{DeleteOptions, Store, Subresource, WriteOptions};
use crate::validation::Directive;
use crate::watch::{self, WatchEvent, WatchOptions};
use crate::writes::WriteContext;

/// What every request handler shares.
#[derive(Clone)]
pub struct App {
    pub store: Arc<Store>,
    /// `host:port` clients reach the server at, for `/api`.
    pub address: String,
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
    /// Authentication and RBAC, when on.
    pub access: Option<crate::access::AccessControl>,
}

/// The router serving the whole API.
pub fn router(app: App) -> Router {
    Router::new().fallback(handle).with_state(app)
}

fn json_response(code: StatusCode, body: &impl serde::Serialize) -> Response {
    json_bytes(
        code,
        serde_json::to_vec(body).expect("JSON values serialise"),
    )
}

fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    value_response(code, &e.to_status())
}

/// A JSON answer; a Status that suggests when to retry says so in the header clients honour.
fn value_response(code: StatusCode, body: &Value) -> Response {
    let mut r = json_response(code, body);
    if body["kind"] == "Status"
        && let Some(secs) = body
            .pointer("/details/retryAfterSeconds")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
    {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
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
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Upstream authenticates and authorises before it looks at what the request names.
    let user = match &app.access {
        None => None,
        Some(access) => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match access.admit(
                &app.store,
                method.as_str(),
                uri.path(),
                uri.query(),
                authorization,
            ) {
                Ok(user) => Some(user),
                Err(e) => return error_response(&e),
            }
        }
    };
    let mut warnings = Vec::new();
    let mut response = match dispatch(
        &app,
        &method,
        &uri,
        content_type,
        &body,
        user_agent,
        user.as_ref(),
        &mut warnings,
    ) {
        Ok(Reply::Json(code, v)) => match table.filter(|_| method == Method::GET) {
            Some(api_version) => json_response(code, &as_table(&app, &uri, v, api_version)),
            None => value_response(code, &v),
        },
        Ok(Reply::List(l)) => match table {
            Some(api_version) => json_response(
                StatusCode::OK,
                &as_table(&app, &uri, l.into_value(), api_version),
            ),
            None => json_bytes(StatusCode::OK, l.to_json()),
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
    List(ObjectList),
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

#[allow(clippy::too_many_arguments)]
fn dispatch(
    app: &App,
    method: &Method,
    uri: &Uri,
    content_type: &str,
    body: &Bytes,
    user_agent: &str,
    user: Option<&UserInfo>,
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
    // YAML and protobuf bodies are read once, here; handlers see JSON.
    let json_body;
    let (content_type, body) = match crate::body::to_json(method, content_type, body)? {
        Some(b) => {
            json_body = b;
            ("application/json", &json_body)
        }
        None => (content_type, body),
    };
    // Reviews about oneself exist only where there is a self to ask about.
    if let (Some(user), Some(review)) = (user, crate::self_review::Review::at(uri.path())) {
        if method != Method::POST {
            return Err(ApiError::MethodNotAllowed(format!(
                "{method} is not supported on {}: create a review with POST",
                uri.path()
            )));
        }
        let answer = crate::self_review::answer(&app.store, user, review, &parse_body(body)?)?;
        return Ok(Reply::Json(StatusCode::CREATED, answer));
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
            let r = resource_request(app, method, uri, content_type, body, p, user, &mut ctx);
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

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    crate::body::decode("application/json", body)
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
        dry_run: crate::dry_run::from_body(&Method::DELETE, v.get("dryRun"))?,
    })
}

/// A write's options from its query: `dryRun` (ignored on reads, as real servers do).
fn write_options(method: &Method, params: &Params) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: *method != Method::GET
            && crate::dry_run::from_query(method, params.str("dryRun"))?,
    })
}

#[allow(clippy::too_many_arguments)]
fn resource_request(
    app: &App,
    method: &Method,
    uri: &Uri,
    content_type: &str,
    body: &Bytes,
    p: ResourcePath,
    user: Option<&UserInfo>,
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
    let write = write_options(method, &params)?;
    ctx.write = write;
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
                crate::pod::bind(&app.store, &res, &namespace, name, &binding, write.dry_run)?,
            ));
        }
        Some("eviction") if crate::pod::is_pods(&res) && p.namespace.is_some() => {
            if *method != Method::POST {
                return Err(ApiError::MethodNotAllowed(format!(
                    "{method} is not supported on pods/eviction; POST an Eviction"
                )));
            }
            let name = p.name.as_deref().unwrap_or("");
            let answer =
                crate::eviction::evict(&app.store, &namespace, name, &parse_body(body)?, write)?;
            return Ok(Reply::Json(answer.code, answer.status));
        }
        Some("scale") if crate::scale::has_scale(&res) && p.namespace.is_some() => {
            let name = p.name.as_deref().unwrap_or("");
            return Ok(Reply::Json(
                StatusCode::OK,
                crate::scale::request(
                    &app.store,
                    &res,
                    &namespace,
                    name,
                    method,
                    content_type,
                    body,
                    ctx,
                )?,
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
            // An apply that creates its object needs `create` as well as `patch`.
            if let (Some(access), Some(user)) = (&app.access, user)
                && sub == Subresource::Main
                && matches!(
                    app.store.get(&res, &namespace, name),
                    Err(ApiError::NotFound(_))
                )
            {
                access.admit_create(&app.store, user, method.as_str(), uri.path())?;
            }
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
            pre.dry_run |= write.dry_run;
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
    let write = write_options(method, params)?;
    ctx.write = write;
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
            Ok(Reply::List(list(
                &app.store, res, namespace, &opts, &filter,
            )?))
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
            let mut pre = delete_options(body)?;
            pre.dry_run |= write.dry_run;
            let (_, objects) = app
                .store
                .snapshot(res, namespace, None, None)
                .map_err(|_| {
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
    fn convert(&mut self, event: WatchEvent) -> WatchEvent {
        if !matches!(event.event_type, "ADDED" | "MODIFIED" | "DELETED") {
            return event;
        }
        let mut t = crate::table::to_table(
            &self.res,
            &event.object,
            self.api_version,
            chrono::Utc::now(),
        );
        if self.headers_sent
            && let Some(m) = t.as_object_mut()
        {
            m.remove("columnDefinitions");
        }
        self.headers_sent = true;
        WatchEvent {
            event_type: event.event_type,
            object: std::sync::Arc::new(crate::stored::Stored::new(t)),
        }
    }
}

fn watch_response(app: &App, w: WatchRequest, table: Option<&'static str>) -> Response {
    let (tx, rx) = mpsc::channel::<WatchEvent>(256);
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
            access: None,
        }
    }

    /// A store with a running pod `x` under two budgets, so evictions reach every branch.
    fn populated() -> App {
        let app = app();
        let s = &app.store;
        let pods = s.resource("", "v1", "pods").unwrap();
        let pdbs = s.resource("policy", "v1", "poddisruptionbudgets").unwrap();
        s.create(
            &pods,
            "default",
            json!({ "metadata": { "name": "x", "labels": { "app": "x" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } }),
        )
        .unwrap();
        let mut pod = s.get(&pods, "default", "x").unwrap();
        pod["status"]["phase"] = json!("Running");
        s.update(&pods, "default", "x", pod, Subresource::Status)
            .unwrap();
        for (name, allowed) in [("x", 1), ("y", 0)] {
            s.create(
                &pdbs,
                "default",
                json!({ "metadata": { "name": name }, "spec": { "selector": { "matchLabels": { "app": "x" } } } }),
            )
            .unwrap();
            let mut b = s.get(&pdbs, "default", name).unwrap();
            b["status"] = json!({ "observedGeneration": 1, "disruptionsAllowed": allowed });
            s.update(&pdbs, "default", name, b, Subresource::Status)
                .unwrap();
        }
        app
    }

    /// The only 5xx answers a real server gives to client input: a create carrying a
    /// resourceVersion (500), a resourceVersion from the future (504), and an eviction of a
    /// pod under several budgets (500, as a Status reply).
    fn documented_5xx(e: &ApiError) -> bool {
        match e {
            ApiError::Internal(m) => {
                m == "resourceVersion should not be set on objects to be created"
            }
            ApiError::TooLargeResourceVersion { .. } => true,
            _ => false,
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
            Just("eviction".to_string()),
            Just("binding".to_string()),
            Just("poddisruptionbudgets".to_string()),
            Just("policy".to_string()),
            Just("services".to_string()),
            Just("secrets".to_string()),
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
            Just("labelSelector"),
            Just("fieldSelector"),
            Just("gracePeriodSeconds"),
            Just("fieldValidation"),
            Just("zz"),
        ];
        let value = prop_oneof![
            Just("1".to_string()),
            Just("0".to_string()),
            Just("true".to_string()),
            Just("Exact".to_string()),
            Just("NotOlderThan".to_string()),
            Just("All".to_string()),
            Just("app=x".to_string()),
            Just("metadata.name=x".to_string()),
            Just("99999999999".to_string()),
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
            Just(br#"{"metadata":{"name":"x"},"deleteOptions":{"dryRun":["All"],"gracePeriodSeconds":"a"}}"#.to_vec()),
            Just(br#"{"metadata":{"name":"x"},"deleteOptions":{"preconditions":{"uid":"u"}}}"#.to_vec()),
            Just(br#"{"metadata":{"name":"x"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.5","ports":[{"port":"a"}],"containers":[{"name":"c","resources":{"limits":{"cpu":[]}}}]}}"#.to_vec()),
            Just(b"metadata:\n  name: x\n".to_vec()),
            Just(b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x03\x0a\x01\x78".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..32),
            (Just(b"k8s\0".to_vec()), proptest::collection::vec(any::<u8>(), 0..48))
                .prop_map(|(mut m, rest)| { m.extend(rest); m }),
        ]
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::DELETE),
            Just(Method::PATCH),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(segment(), 0..7).prop_map(|s| format!("/{}", s.join("/"))),
            proptest::sample::select(vec![
                "/api/v1/namespaces/default/pods/x/eviction",
                "/api/v1/namespaces/default/pods/x/binding",
                "/api/v1/namespaces/default/pods/x",
                "/api/v1/namespaces/default/pods",
                "/api/v1/namespaces/default/services",
                "/api/v1/namespaces/default/secrets",
                "/api/v1/namespaces/default/configmaps",
                "/api/v1/namespaces/x",
                "/api/v1/namespaces",
                "/apis/apps/v1/namespaces/default/deployments",
                "/apis/policy/v1/namespaces/default/poddisruptionbudgets/x/status",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn content_type() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(""),
            Just("application/json"),
            Just("application/merge-patch+json"),
            Just("application/json-patch+json"),
            Just("application/strategic-merge-patch+json"),
            Just("application/apply-patch+yaml"),
            Just("application/yaml"),
            Just("application/vnd.kubernetes.protobuf"),
            Just("text/plain"),
        ]
    }

    proptest! {
        /// The whole handler, headers included: every answer that is not a success is a JSON
        /// `Status` carrying the HTTP code, for any query string at all.
        #[test]
        fn every_failure_over_http_is_a_json_status(
            method in method(),
            path in path(),
            q in prop_oneof![query(), "[!-~]{0,24}"],
            b in body(),
            content_type in content_type(),
            table in any::<bool>(),
            // Access control off; on without a token; on as a ServiceAccount; on as admin.
            access in 0..4u8,
        ) {
            let Ok(uri) = format!("{path}?{q}").parse::<Uri>() else { return Ok(()) };
            let mut app = populated();
            let mut headers = HeaderMap::new();
            if access > 0 {
                let control = crate::access::AccessControl::new();
                crate::bootstrap_policy::install(&app.store).expect("the default policy stores");
                let token = match access {
                    2 => Some(control.service_account_token("default", "default")),
                    3 => Some(control.admin_token().to_string()),
                    _ => None,
                };
                if let Some(t) = token {
                    headers.insert(
                        header::AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {t}")).expect("a token is ASCII"),
                    );
                }
                app.access = Some(control);
            }
            if let Ok(ct) = HeaderValue::from_str(content_type)
                && !content_type.is_empty()
            {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            if table {
                headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
                );
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let response = rt.block_on(handle(State(app), method, uri, headers, Bytes::from(b)));
            let code = response.status();
            // Successes may be endless watch streams; failures are always plain bodies.
            if !code.is_success() {
                let body = rt
                    .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                    .expect("a plain body");
                let status: Value = serde_json::from_slice(&body).expect("a JSON body");
                prop_assert_eq!(&status["kind"], "Status");
                prop_assert_eq!(&status["code"], code.as_u16());
                prop_assert_eq!(&status["status"], "Failure");
            }
        }

        #[test]
        fn no_request_panics_and_every_error_is_a_status(
            method in method(),
            path in path(),
            q in query(),
            b in body(),
            content_type in content_type(),
        ) {
            let app = populated();
            let Ok(uri) = format!("{path}?{q}").parse::<Uri>() else { return Ok(()) };
            match dispatch(&app, &method, &uri, content_type, &Bytes::from(b), "proptest/1", None, &mut Vec::new()) {
                Ok(Reply::Json(code, body)) if code.as_u16() >= 400 => {
                    prop_assert_eq!(&body["kind"], "Status");
                    prop_assert!(
                        code == StatusCode::TOO_MANY_REQUESTS
                            || body["message"] == crate::eviction::MULTIPLE_BUDGETS,
                        "{} {}", code, body
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    let s = e.to_status();
                    prop_assert_eq!(&s["kind"], "Status");
                    prop_assert_eq!(&s["code"], e.code());
                    prop_assert!((400..600).contains(&e.code()), "{:?}", e);
                    prop_assert!(e.code() < 500 || documented_5xx(&e), "undocumented 5xx: {:?}", e);
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
            None,
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
                None,
                &mut Vec::new()
            ),
            Ok(Reply::Json(StatusCode::OK, _))
        ));
    }
}
