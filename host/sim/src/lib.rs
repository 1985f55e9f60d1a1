//! A discrete-event simulation of a cluster under Dovetail, on a virtual
//! clock: the real provisioning and disruption engines decide, through the
//! same policy ports the controller uses, while simple documented models
//! stand in for the cloud, kube-scheduler and the kubelet.
//!
//! Models (all times in simulated milliseconds, settable in [`Models`]):
//! - cloud: a launched instance is running after `launch_ms` and its node
//!   Ready after `ready_ms` more; the first offering of the launch list is
//!   launched (EC2 CreateFleet's lowest-price behaviour for a list the policy
//!   already ordered); prices come from the catalog.
//! - kube-scheduler: every second, pending pods are bound to Ready nodes
//!   with room, honouring the scheduler's constraints.
//! - provisioner: pending pods are batched (`batch_idle_ms` idle,
//!   `batch_max_ms` at most) and planned; pods planned onto a launching node
//!   wait for it.
//! - disruption: a pass every `disruption_interval_ms`; a command is
//!   re-validated after `validation_delay_ms`, replacements are launched and
//!   must be Ready before the old nodes are drained; drained pods are pending
//!   again.
//! - workloads: Deployments whose replica counts change at given times.

mod baseline;
mod changes;
pub mod cloud;
mod demo;
mod engine;
mod format;
mod html;
pub mod limits;
mod manifests;
mod objects;
mod report;
mod scenario;
pub mod text;
mod types;
mod unknown_fields;
mod unschedulable;
mod world;

pub use demo::demo_scenario;
pub use engine::{SimEvent, Simulation};
pub use html::{clock, compare_html};
pub use objects::JOB_RUN_TIME_ANNOTATION;
pub use report::{
    CostShare, DecisionRecord, LaunchRecord, NodeReason, OfferingRecord, Outcome, PassRecord,
    PoolBudget, ProposedRecord, Report, Sample, Totals, UnschedulableRecord,
};
pub use scenario::{ScenarioError, parse_catalog, parse_scenario, parse_scenario_in};
pub use types::{
    Amount, Autoscaler, BaselineModel, Deployment, Diurnal, Event, EventKind, InitialNode,
    InitialPod, Job, Manifest, Models, NodeError, NodeGroup, PdbSpec, PolicyFiles, Rollout,
    Scenario, WorkloadKind, node_for,
};
pub use unknown_fields::{ScenarioWarning, WarningReason};
