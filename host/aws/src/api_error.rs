//! A failed AWS API call, named by its IAM action and sorted by what the
//! operator should check: credentials, permissions, the endpoint, or the
//! request itself.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What kind of failure an API call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// No credentials, or credentials the service does not accept.
    Credentials,
    /// The credentials lack the IAM permission for the call.
    Permissions,
    /// The service throttled the call past the client's retries.
    Throttled,
    /// No answer: the endpoint, network route or proxy, or a timeout.
    Unreachable,
    /// The service refused the request for another reason.
    Rejected,
}

/// A failed call: `action` is the IAM action (`ec2:DescribeInstanceTypes`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} failed: {message}{}; {}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), self.hint())]
pub struct ApiError {
    pub action: &'static str,
    pub kind: ApiErrorKind,
    /// The service's error code, when it answered.
    pub code: Option<String>,
    pub message: String,
}

const CREDENTIAL_CODES: [&str; 9] = [
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "UnrecognizedClientException",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

const PERMISSION_CODES: [&str; 4] = [
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "Blocked",
];

const THROTTLE_CODES: [&str; 4] = [
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

impl ApiError {
    /// Sorts an SDK error of the call `action`.
    pub fn from_sdk<E, R>(action: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        let (kind, message) = match err {
            SdkError::ServiceError(_) => {
                let code = code.as_deref().unwrap_or_default();
                let kind = if CREDENTIAL_CODES.contains(&code) {
                    ApiErrorKind::Credentials
                } else if PERMISSION_CODES.contains(&code) {
                    ApiErrorKind::Permissions
                } else if THROTTLE_CODES.contains(&code) {
                    ApiErrorKind::Throttled
                } else {
                    ApiErrorKind::Rejected
                };
                let message = err
                    .message()
                    .map_or_else(|| DisplayErrorContext(err).to_string(), str::to_string);
                (kind, message)
            }
            _ => {
                let message = DisplayErrorContext(err).to_string();
                // Missing credentials fail before anything is sent.
                let kind = if message.to_ascii_lowercase().contains("credential") {
                    ApiErrorKind::Credentials
                } else {
                    ApiErrorKind::Unreachable
                };
                (kind, message)
            }
        };
        Self {
            action,
            kind,
            code,
            message,
        }
    }

    /// Whether the service answered with `code`.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// What to check.
    pub fn hint(&self) -> String {
        match self.kind {
            ApiErrorKind::Credentials => "check the AWS credentials: the IRSA or Pod Identity role, the AWS_* environment or the profile, and that they have not expired".to_string(),
            ApiErrorKind::Permissions => format!(
                "grant {} to the controller's IAM role",
                self.action
            ),
            ApiErrorKind::Throttled => {
                "the account's API rate limit was reached; the call is tried again later".to_string()
            }
            ApiErrorKind::Unreachable => "check the endpoint (AWS_ENDPOINT_URL, VPC endpoints, proxy) and the network route to it".to_string(),
            ApiErrorKind::Rejected => "check the request's parameters and the region".to_string(),
        }
    }
}
