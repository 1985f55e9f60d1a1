//! The controller's logs: JSON, one object per line on stdout, at
//! `LOG_LEVEL`; and one line per decision the orchestration made, with its
//! fields and the policy's reason where there is one.

use std::fmt::Write as _;

use dovetail_control::decision::{ClaimFailure, Decision};
use dovetail_core::disruption::Command;
use dovetail_core::sym::Sym;
#[cfg(test)]
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogLevel;

/// Where decision lines go: filter on it to see only decisions.
pub const DECISION_TARGET: &str = "dovetail::decision";

/// The level's filter. The HTTP stack's own debug output is not the
/// controller's; it stays at `warn`.
pub fn filter(level: LogLevel) -> EnvFilter {
    EnvFilter::new(format!(
        "{},hyper=warn,hyper_util=warn,h2=warn,tower=warn,kube_client=info,kube_runtime=info",
        level.as_str()
    ))
}

/// A JSON subscriber writing to `writer`.
pub fn subscriber<W>(level: LogLevel, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        // The event's fields at the top level, next to level and target.
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter(level))
        .with_writer(writer)
        .finish()
}

/// Makes the JSON subscriber on stdout the process's. Fails when one is
/// already installed.
pub fn init(level: LogLevel) -> anyhow::Result<()> {
    tracing::subscriber::set_global_default(subscriber(level, std::io::stdout))
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

fn names(syms: &[Sym]) -> String {
    let mut out = String::new();
    for (i, s) in syms.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s.as_str());
    }
    out
}

fn opt(s: Option<Sym>) -> &'static str {
    s.map_or("", Sym::as_str)
}

fn method(c: &Command) -> String {
    format!("{:?}", c.method)
}

/// Logs `decision` as one line.
pub fn log_decision(decision: &Decision) {
    const T: &str = DECISION_TARGET;
    match decision {
        Decision::Provisioned {
            pods,
            claims,
            decided_by,
            fallback,
        } => {
            let claim_names: Vec<Sym> = claims.iter().map(|c| c.name).collect();
            let pools: Vec<Sym> = claims.iter().filter_map(|c| c.node_pool).collect();
            match fallback {
                None => tracing::info!(
                    target: T,
                    decision = "provisioned",
                    pods,
                    nodeclaims = %names(&claim_names),
                    nodepools = %names(&pools),
                    decided_by = %decided_by,
                    "created {} NodeClaims for {pods} pending pods",
                    claims.len()
                ),
                Some(why) => tracing::warn!(
                    target: T,
                    decision = "provisioned",
                    pods,
                    nodeclaims = %names(&claim_names),
                    nodepools = %names(&pools),
                    decided_by = %decided_by,
                    fallback = %why,
                    "created {} NodeClaims for {pods} pending pods with the built-in selection: the policy failed",
                    claims.len()
                ),
            }
        }
        Decision::Unschedulable { pods } => {
            let mut reasons = String::new();
            for (i, (pod, why)) in pods.iter().enumerate() {
                if i > 0 {
                    reasons.push_str("; ");
                }
                let _ = write!(reasons, "{pod}: {why}");
            }
            tracing::warn!(
                target: T,
                decision = "unschedulable",
                pods = pods.len(),
                reasons = %reasons,
                "{} pods fit no NodePool",
                pods.len()
            );
        }
        Decision::Launched { claim, offering } => tracing::info!(
            target: T,
            decision = "launched",
            nodeclaim = %claim,
            instance_type = %offering.instance_type,
            zone = %offering.zone,
            capacity_type = offering.capacity_type.label(),
            price_per_hour = offering.price,
            "launched NodeClaim {claim}"
        ),
        Decision::ClaimFailed { claim, failure } => {
            let (reason, detail) = match failure {
                ClaimFailure::InsufficientCapacity(tried) => (
                    "insufficient_capacity",
                    tried
                        .iter()
                        .map(|o| {
                            format!("{}/{}/{}", o.instance_type, o.zone, o.capacity_type.label())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ClaimFailure::NodeClassNotReady(why) => ("nodeclass_not_ready", why.clone()),
                ClaimFailure::LaunchTimeout(why) => ("launch_timeout", why.clone()),
                ClaimFailure::RegistrationTimeout => ("registration_timeout", String::new()),
            };
            tracing::warn!(
                target: T,
                decision = "nodeclaim_failed",
                nodeclaim = %claim,
                reason,
                detail = %detail,
                "gave up NodeClaim {claim}: {reason}"
            );
        }
        Decision::Pass(report) => {
            let (method, nodes) = report
                .proposed
                .as_ref()
                .map(|(m, n)| (format!("{m:?}"), names(n)))
                .unwrap_or_default();
            if report.proposed.is_some() {
                tracing::info!(
                    target: T,
                    decision = "disruption_pass",
                    proposed_method = %method,
                    proposed_nodes = %nodes,
                    candidates_evaluated = report.candidates_evaluated,
                    excluded = report.exclusions.len(),
                    unconsolidated = report.unconsolidated.len(),
                    "disruption pass proposed {method} of {nodes}"
                );
            } else {
                // Most passes find nothing: not worth a line at info.
                let mut why = String::new();
                for u in &report.unconsolidated {
                    if !why.is_empty() {
                        why.push_str("; ");
                    }
                    let _ = write!(why, "{}: {}", u.node, u.reason);
                }
                tracing::debug!(
                    target: T,
                    decision = "disruption_pass",
                    candidates_evaluated = report.candidates_evaluated,
                    excluded = report.exclusions.len(),
                    unconsolidated = report.unconsolidated.len(),
                    reasons = %why,
                    "disruption pass found nothing to do"
                );
            }
        }
        Decision::CommandStarted {
            command,
            replacements,
        } => tracing::info!(
            target: T,
            decision = "disruption_started",
            method = %method(command),
            reason = command.reason.name(),
            nodes = %names(&command.nodes),
            replacements = %names(replacements),
            pods_evicted = command.pods_evicted.len(),
            savings_per_hour = command.savings_per_hour,
            decided_by = %command.decided_by,
            policy_reason = %command.policy_reason,
            "disrupting {} ({}): {}",
            names(&command.nodes),
            command.reason,
            command.policy_reason
        ),
        Decision::CommandInvalidated { command, why } => tracing::info!(
            target: T,
            decision = "disruption_invalidated",
            method = %method(command),
            reason = command.reason.name(),
            nodes = %names(&command.nodes),
            why = %why,
            "dropped the disruption of {}: {why}",
            names(&command.nodes)
        ),
        Decision::CommandAbandoned { command, why } => tracing::warn!(
            target: T,
            decision = "disruption_abandoned",
            method = %method(command),
            reason = command.reason.name(),
            nodes = %names(&command.nodes),
            why = %why,
            "gave up the disruption of {}: {why}",
            names(&command.nodes)
        ),
        Decision::Disrupting {
            command,
            replacements,
        } => tracing::info!(
            target: T,
            decision = "disrupting",
            method = %method(command),
            reason = command.reason.name(),
            nodes = %names(&command.nodes),
            replacements = %names(replacements),
            decided_by = %command.decided_by,
            policy_reason = %command.policy_reason,
            "terminating {} ({})",
            names(&command.nodes),
            command.reason
        ),
        Decision::Expired { claim, after } => tracing::info!(
            target: T,
            decision = "expired",
            nodeclaim = %claim,
            expire_after_seconds = after.as_secs(),
            "NodeClaim {claim} reached its expireAfter"
        ),
        Decision::Interrupted { claim, kind } => tracing::info!(
            target: T,
            decision = "interrupted",
            nodeclaim = %claim,
            kind = ?kind,
            "NodeClaim {claim}: {kind:?}"
        ),
        Decision::Terminated { claim, node } => tracing::info!(
            target: T,
            decision = "terminated",
            nodeclaim = opt(*claim),
            node = opt(*node),
            "terminated {}",
            claim.or(*node).map_or("", Sym::as_str)
        ),
        Decision::InstanceCollected { provider_id } => tracing::info!(
            target: T,
            decision = "instance_collected",
            provider_id = %provider_id,
            "terminated instance {provider_id}, which no NodeClaim owns"
        ),
        Decision::ClaimCollected { claim } => tracing::info!(
            target: T,
            decision = "nodeclaim_collected",
            nodeclaim = %claim,
            "deleted NodeClaim {claim}: its instance is gone"
        ),
        Decision::ActionFailed(why) => tracing::warn!(
            target: T,
            decision = "action_failed",
            error = %why,
            "an action failed and is retried on the next pass: {why}"
        ),
        Decision::ScaledUp {
            claims,
            pods,
            decided_by,
            reason,
        } => {
            let claim_names: Vec<Sym> = claims.iter().map(|c| c.name).collect();
            tracing::info!(
                target: T,
                decision = "scaled_up",
                pods,
                nodeclaims = %names(&claim_names),
                decided_by = %decided_by,
                policy_reason = %reason,
                "scaled up: {reason}"
            );
        }
        Decision::ScaledDown {
            nodes,
            pods,
            savings_per_hour,
            decided_by,
            reason,
        } => tracing::info!(
            target: T,
            decision = "scaled_down",
            nodes = %names(nodes),
            pods,
            savings_per_hour,
            decided_by = %decided_by,
            policy_reason = %reason,
            "scaled down: {reason}"
        ),
    }
}

/// The level a decision's line is written at.
#[cfg(test)]
fn decision_level(decision: &Decision) -> Level {
    match decision {
        Decision::Provisioned {
            fallback: Some(_), ..
        }
        | Decision::Unschedulable { .. }
        | Decision::ClaimFailed { .. }
        | Decision::CommandAbandoned { .. }
        | Decision::ActionFailed(_) => Level::WARN,
        Decision::Pass(report) if report.proposed.is_none() => Level::DEBUG,
        _ => Level::INFO,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use dovetail_control::decision::CreatedClaim;
    use dovetail_core::catalog::CapacityType;
    use dovetail_core::disruption::{CommandReason, Method};
    use dovetail_core::nodeclaim::LaunchedOffering;
    use serde_json::Value;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// The JSON lines logged while `f` runs at `level`.
    fn lines(level: LogLevel, f: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(subscriber(level, buffer.clone()), f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    fn command() -> Command {
        Command {
            method: Method::SingleNodeConsolidation,
            reason: CommandReason::Underutilized,
            nodes: vec![Sym::new("ip-10-0-0-1")],
            node_indices: Vec::new(),
            replacements: Vec::new(),
            savings_per_hour: 0.048,
            pods_evicted: Vec::new(),
            decided_by: "savings-threshold@0.1.0".into(),
            policy_reason: "saves $0.048/h, above the $0.01/h threshold".into(),
        }
    }

    #[test]
    fn each_decision_is_one_json_line_with_its_fields() {
        let decisions = [
            Decision::Provisioned {
                pods: 3,
                claims: vec![CreatedClaim {
                    name: Sym::new("default-abcde"),
                    node_pool: Some(Sym::new("default")),
                    requirements: Vec::new(),
                    launch: Vec::new(),
                    pods: 3,
                }],
                decided_by: "graviton-first@0.1.0".into(),
                fallback: None,
            },
            Decision::Launched {
                claim: Sym::new("default-abcde"),
                offering: LaunchedOffering {
                    instance_type: Sym::new("m6g.large"),
                    zone: Sym::new("us-east-1a"),
                    capacity_type: CapacityType::Spot,
                    price: 0.031,
                },
            },
            Decision::CommandStarted {
                command: command(),
                replacements: Vec::new(),
            },
            Decision::ClaimFailed {
                claim: Sym::new("default-fghij"),
                failure: ClaimFailure::RegistrationTimeout,
            },
        ];
        let out = lines(LogLevel::Info, || decisions.iter().for_each(log_decision));
        assert_eq!(out.len(), 4, "{out:?}");
        let p = &out[0];
        assert_eq!(p["level"], "INFO");
        assert_eq!(p["target"], DECISION_TARGET);
        assert_eq!(p["decision"], "provisioned");
        assert_eq!(p["pods"], 3);
        assert_eq!(p["nodeclaims"], "default-abcde");
        assert_eq!(p["decided_by"], "graviton-first@0.1.0");
        assert_eq!(p["message"], "created 1 NodeClaims for 3 pending pods");
        assert!(p["timestamp"].is_string());
        let l = &out[1];
        assert_eq!(
            (
                &l["instance_type"],
                &l["capacity_type"],
                &l["price_per_hour"]
            ),
            (
                &Value::from("m6g.large"),
                &Value::from("spot"),
                &Value::from(0.031)
            )
        );
        let c = &out[2];
        assert_eq!(c["decision"], "disruption_started");
        assert_eq!(c["method"], "SingleNodeConsolidation");
        assert_eq!(c["reason"], "Underutilized");
        assert_eq!(
            c["policy_reason"],
            "saves $0.048/h, above the $0.01/h threshold"
        );
        assert_eq!(c["decided_by"], "savings-threshold@0.1.0");
        let f = &out[3];
        assert_eq!(
            (&f["level"], &f["reason"]),
            (&Value::from("WARN"), &Value::from("registration_timeout"))
        );
        for (line, d) in out.iter().zip(&decisions) {
            assert_eq!(line["level"], decision_level(d).as_str());
        }
    }

    #[test]
    fn a_policy_fallback_is_a_warning_with_the_policys_failure() {
        let out = lines(LogLevel::Error, || {
            log_decision(&Decision::Provisioned {
                pods: 1,
                claims: Vec::new(),
                decided_by: "builtin-default@0.1.0".into(),
                fallback: Some("policy `hostile@0.0.1` trapped".into()),
            })
        });
        assert!(out.is_empty(), "error level hides warnings: {out:?}");
        let out = lines(LogLevel::Warn, || {
            log_decision(&Decision::Provisioned {
                pods: 1,
                claims: Vec::new(),
                decided_by: "builtin-default@0.1.0".into(),
                fallback: Some("policy `hostile@0.0.1` trapped".into()),
            })
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["fallback"], "policy `hostile@0.0.1` trapped");
    }

    #[test]
    fn empty_disruption_passes_show_only_at_debug() {
        let pass = Decision::Pass(Box::default());
        assert!(lines(LogLevel::Info, || log_decision(&pass)).is_empty());
        let out = lines(LogLevel::Debug, || log_decision(&pass));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["decision"], "disruption_pass");
    }
}
