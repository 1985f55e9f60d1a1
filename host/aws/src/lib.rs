//! Dovetail's AWS adapter: EC2 instance types and prices, launch templates,
//! user data and CreateFleet requests, built as pure functions of API
//! responses and the EC2NodeClass so they are tested without a network.

pub mod api_error;
pub mod batch;
pub mod clients;
pub mod cloud;
pub mod discovery;
pub mod instance_types;
pub mod instances;
pub mod launch;
pub mod node_classes;
pub mod nodeclass;
pub mod pricing;
pub mod templates;
pub mod user_data;
