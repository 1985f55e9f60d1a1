//! SDK clients that answer every request with one recorded response, so
//! fixtures in the APIs' wire format go through the SDK's deserialisers.

#![allow(dead_code)]

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

type Answer = dyn Fn(&HttpRequest) -> (u16, &'static str, String) + Send + Sync;

/// Answers every request with what `answer` returns for it.
#[derive(Clone)]
struct Canned(Arc<Answer>);

impl std::fmt::Debug for Canned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canned")
    }
}

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (status, content_type, body) = (self.0)(&request);
        let mut response = HttpResponse::new(
            status.try_into().expect("a valid status"),
            SdkBody::from(body),
        );
        response
            .headers_mut()
            .insert("content-type", content_type.to_string());
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn infallible_client_fn(
    answer: impl Fn(&HttpRequest) -> (u16, &'static str, String) + Send + Sync + 'static,
) -> SharedHttpClient {
    SharedHttpClient::new(Canned(Arc::new(answer)))
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn canned(body: String, content_type: &'static str) -> SharedHttpClient {
    infallible_client_fn(move |_req| (200, content_type, body.clone()))
}

/// An EC2 client whose every call returns `body` (an EC2 query-protocol XML
/// response).
pub fn ec2(body: String) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(canned(body, "text/xml;charset=UTF-8"))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// A Pricing API client whose every call returns `body` (JSON).
pub fn pricing(body: String) -> aws_sdk_pricing::Client {
    use aws_sdk_pricing::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_pricing::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(canned(body, "application/x-amz-json-1.1"))
        .build();
    aws_sdk_pricing::Client::from_conf(config)
}

/// The body of the last request an [`ec2_capturing`] client sent.
pub type Captured = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// An EC2 client that answers with `body` and keeps each request's body.
pub fn ec2_capturing(body: String) -> (aws_sdk_ec2::Client, Captured) {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
    let captured: Captured = Default::default();
    let sink = captured.clone();
    let http = infallible_client_fn(move |req| {
        let sent = req
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        *sink.lock().unwrap() = sent;
        (200, "text/xml;charset=UTF-8", body.clone())
    });
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(http)
        .build();
    (aws_sdk_ec2::Client::from_conf(config), captured)
}
