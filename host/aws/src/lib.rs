//! Dovetail's AWS adapter: the cloud port on EC2 (`cloud::AwsCloud`), with
//! instance-type and price discovery, EC2NodeClass resolution, launch
//! templates and user data, batched CreateFleet launches, and the
//! interruption queue. What can be is a pure function of API responses and
//! the EC2NodeClass, tested without a network; the SDK calls are tested
//! against the AWS test server.

pub mod api_error;
pub mod batch;
pub mod clients;
pub mod cloud;
pub mod discovery;
pub mod instance_types;
pub mod instances;
pub mod interruption;
pub mod launch;
pub mod node_classes;
pub mod nodeclass;
pub mod pricing;
pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;
pub mod user_data;
