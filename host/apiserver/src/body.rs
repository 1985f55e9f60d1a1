//! Request bodies of writes (create, update, delete options, subresources): JSON, YAML or
//! Kubernetes protobuf, all turned into the JSON the store keeps. Answers stay JSON, which every
//! client accepts.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::Value;

use crate::protobuf::{self, ProtobufError};
use crate::status::ApiError;

/// Media type of Kubernetes protobuf bodies.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// How a body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The encoding of a write body; anything else is the 415 a real server gives.
pub fn encoding(content_type: &str) -> Result<Encoding, ApiError> {
    match media_type(content_type) {
        "" | "*/*" | "application/json" => Ok(Encoding::Json),
        "application/yaml" => Ok(Encoding::Yaml),
        PROTOBUF => Ok(Encoding::Protobuf),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format ({other}) - accepted media types include: application/json, application/yaml, {PROTOBUF}"
        ))),
    }
}

/// Decodes a body into a JSON object.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = match encoding(content_type)? {
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        })?,
        Encoding::Yaml => serde_norway::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid YAML: {e}"))
        })?,
        Encoding::Protobuf => protobuf::decode(body).map_err(|e| match e {
            ProtobufError::Malformed(_) => ApiError::BadRequest(e.to_string()),
            ProtobufError::UnsupportedKind { .. } | ProtobufError::UnknownField { .. } => {
                ApiError::UnsupportedMediaType(e.to_string())
            }
        })?,
    };
    if !v.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the request body must be an object, not {}",
            kind_of(&v)
        )));
    }
    Ok(v)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes whose body is an object (POST, PUT, DELETE options) in YAML or protobuf, re-encoded
/// as JSON so every handler reads one format; `None` when the body is already JSON (or the
/// method's body is not an object, as for PATCH) and is passed through as it is.
pub fn to_json(
    method: &Method,
    content_type: &str,
    body: &Bytes,
) -> Result<Option<Bytes>, ApiError> {
    if !matches!(*method, Method::POST | Method::PUT | Method::DELETE) {
        return Ok(None);
    }
    if *method == Method::DELETE && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match encoding(content_type)? {
        Encoding::Json => Ok(None),
        Encoding::Yaml | Encoding::Protobuf => {
            let v = decode(content_type, body)?;
            Ok(Some(Bytes::from(
                serde_json::to_vec(&v).expect("JSON values serialise"),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_yaml_and_protobuf_decode_to_the_same_object() {
        let want = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "k": "v" } });
        assert_eq!(
            decode("application/json", want.to_string().as_bytes()).unwrap(),
            want
        );
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
        assert_eq!(
            decode("application/yaml; charset=utf-8", yaml.as_bytes()).unwrap(),
            want
        );
        use crate::protobuf::encode::*;
        let mut meta = Vec::new();
        bytes(1, b"a", &mut meta);
        let mut raw = Vec::new();
        bytes(1, &meta, &mut raw);
        entry(2, "k", b"v", &mut raw);
        assert_eq!(
            decode(PROTOBUF, &envelope("v1", "ConfigMap", &raw)).unwrap(),
            want
        );
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        let e = decode("application/json", b"{\"a\":").unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let e = decode("application/yaml", b"a: [1\n").unwrap_err();
        assert!(e.to_string().contains("not valid YAML"), "{e}");
        let e = decode("application/json", b"[1]").unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");
        let e = decode("text/plain", b"{}").unwrap_err();
        assert_eq!((e.code(), e.reason()), (415, "UnsupportedMediaType"));
        let e = decode(
            PROTOBUF,
            &crate::protobuf::encode::envelope("v1", "Node", b""),
        )
        .unwrap_err();
        assert_eq!(e.code(), 415);
        assert!(e.to_string().contains("v1 Node"), "{e}");
    }
}
