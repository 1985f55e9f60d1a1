//! The SDK clients, from the standard AWS chain: credentials from IRSA, EKS
//! Pod Identity, the environment or a profile; the region from the same
//! places; endpoints overridable with `AWS_ENDPOINT_URL` (and the SDK's
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`).
//!
//! Every client retries throttling and 5xx answers with the SDK's adaptive
//! retry, which also slows its own sending rate when throttled.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Attempts per call, the first included. Adaptive retry backs off
/// exponentially between them and rate-limits the client while EC2 throttles.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long one call, with its retries, may take.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The region the instance types and prices are for, and every client.
#[derive(Debug, Clone)]
pub struct Clients {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub iam: aws_sdk_iam::Client,
    pub pricing: aws_sdk_pricing::Client,
    /// Whether the Pricing API may be called. An isolated VPC
    /// (`ISOLATED_VPC`) and test servers have no route to it.
    pub pricing_reachable: bool,
}

/// Why the clients could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientsError {
    #[error(
        "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region); on EKS it comes from the pod's environment"
    )]
    NoRegion,
}

impl Clients {
    /// Clients from the standard chain. `isolated_vpc` keeps the Pricing
    /// API out of use (the embedded prices stand in).
    pub async fn from_env(isolated_vpc: bool) -> Result<Self, ClientsError> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        Self::from_config(&config, !isolated_vpc)
    }

    /// Clients from a loaded configuration.
    pub fn from_config(config: &SdkConfig, pricing_reachable: bool) -> Result<Self, ClientsError> {
        let region = config.region().ok_or(ClientsError::NoRegion)?.to_string();
        // The Pricing API lives in a few regions only, whatever the cluster's.
        let pricing_region = crate::pricing::on_demand::pricing_api_region(&region);
        let pricing = aws_sdk_pricing::config::Builder::from(config)
            .region(Region::new(pricing_region))
            .build();
        Ok(Self {
            ec2: aws_sdk_ec2::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            pricing: aws_sdk_pricing::Client::from_conf(pricing),
            pricing_reachable,
            region,
        })
    }

    /// Clients for a local AWS test server at `endpoint` with dummy
    /// credentials, and no Pricing API (the test servers have none).
    #[cfg(feature = "testing")]
    pub fn local(endpoint: &str, region: &str) -> Self {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("testing", "testing", None, None, "dovetail-tests"),
            ))
            .retry_config(retry())
            .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
            .time_source(aws_smithy_async::time::SystemTimeSource::new())
            .build();
        Self::from_config(&config, false).expect("a region was given")
    }
}

fn retry() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}
