//! The fake cloud served over HTTP (see [`super::cloud_api`] for the wire
//! format). Launches and terminations go through the same [`FakeCloud`] the
//! kubelet model watches, so a Node registers for every instance created
//! here. The cloud's clock is the server's.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use dovetail_control::cloud::CloudProvider;
use dovetail_core::sym::Sym;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cloud_api::{
    CATALOG_PATH, CatalogInfo, DRIFT_PATH, DriftDto, ErrorDto, INSTANCE_PATH, INSTANCES_PATH,
    InstanceDto, LaunchDto, NodeClaimDto, PREFIX, ProviderIdQuery,
};
use super::fake_cloud::{FakeCloud, node_claim};
use super::now_ms;

/// The fake cloud's routes under [`PREFIX`].
pub(crate) fn routes(cloud: FakeCloud) -> Router {
    let at = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route(&at(CATALOG_PATH), get(catalog))
        .route(&at(INSTANCES_PATH), get(list).post(create))
        .route(&at(INSTANCE_PATH), get(get_one).delete(delete))
        .route(&at(DRIFT_PATH), post(drift))
        .with_state(cloud)
}

type Answer = Result<Response, ErrorDto>;

fn json(code: StatusCode, body: &impl Serialize) -> Response {
    let mut r = Response::new(Body::from(
        serde_json::to_vec(body).expect("DTOs serialise"),
    ));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn answer(a: Answer) -> Response {
    a.unwrap_or_else(|e| json(e.code(), &e))
}

fn body<T: DeserializeOwned>(bytes: &Bytes, what: &str) -> Result<T, ErrorDto> {
    serde_json::from_slice(bytes).map_err(|e| ErrorDto::BadRequest {
        message: format!("the body is not a {what}: {e}"),
    })
}

fn provider_id(uri: &Uri) -> Result<String, ErrorDto> {
    Query::<ProviderIdQuery>::try_from_uri(uri)
        .map(|q| q.0.provider_id)
        .map_err(|e| ErrorDto::BadRequest {
            message: format!("name the instance with ?providerID=…: {e}"),
        })
}

fn to_claim(dto: NodeClaimDto) -> dovetail_core::nodeclaim::NodeClaim {
    let mut claim = node_claim(
        Sym::new(&dto.name),
        dto.node_pool.as_deref().map(Sym::new),
        dto.labels
            .iter()
            .map(|(k, v)| (Sym::new(k), Sym::new(v)))
            .collect(),
        dto.requirements,
        dto.launch.into_iter().map(Into::into).collect(),
        now_ms(),
    );
    claim.status.provider_id = dto.provider_id;
    claim
}

async fn catalog(State(cloud): State<FakeCloud>) -> Response {
    json(StatusCode::OK, &CatalogInfo::of(&cloud.instance_types()))
}

async fn list(State(cloud): State<FakeCloud>) -> Response {
    answer(
        cloud
            .list()
            .map(|l| {
                json(
                    StatusCode::OK,
                    &l.iter().map(InstanceDto::from).collect::<Vec<_>>(),
                )
            })
            .map_err(Into::into),
    )
}

async fn create(State(mut cloud): State<FakeCloud>, bytes: Bytes) -> Response {
    answer((|| {
        let claim = to_claim(body(&bytes, "NodeClaim")?);
        let launch = cloud.create(&claim, now_ms())?;
        Ok(json(StatusCode::CREATED, &LaunchDto::from(&launch)))
    })())
}

async fn get_one(State(cloud): State<FakeCloud>, uri: Uri) -> Response {
    answer((|| {
        let instance = cloud.get(&provider_id(&uri)?)?;
        Ok(json(StatusCode::OK, &InstanceDto::from(&instance)))
    })())
}

async fn delete(State(mut cloud): State<FakeCloud>, uri: Uri) -> Response {
    answer((|| {
        cloud.delete(&provider_id(&uri)?, now_ms())?;
        Ok(json(StatusCode::OK, &serde_json::json!({})))
    })())
}

async fn drift(State(cloud): State<FakeCloud>, bytes: Bytes) -> Response {
    answer((|| {
        let claim = to_claim(body(&bytes, "NodeClaim")?);
        let drift = cloud.is_drifted(&claim)?;
        Ok(json(
            StatusCode::OK,
            &DriftDto {
                drift: drift.map(Into::into),
            },
        ))
    })())
}
