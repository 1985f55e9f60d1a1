//! SDK clients that answer every request with one recorded response, so
//! fixtures in the APIs' wire format go through the SDK's deserialisers.

#![allow(dead_code)]

use aws_smithy_http_client::test_util::infallible_client_fn;

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn canned(body: String, content_type: &'static str) -> aws_sdk_ec2::config::SharedHttpClient {
    infallible_client_fn(move |_req| {
        http::Response::builder()
            .status(200)
            .header("content-type", content_type)
            .body(body.clone())
            .unwrap()
    })
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
        http::Response::builder()
            .status(200)
            .header("content-type", "text/xml;charset=UTF-8")
            .body(body.clone())
            .unwrap()
    });
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(http)
        .build();
    (aws_sdk_ec2::Client::from_conf(config), captured)
}
