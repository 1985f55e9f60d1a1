//! `dovetail demo`: the classic example on a simulated cluster, printed as
//! `kubectl get nodes -w` would show it.

use anyhow::Result;
use dovetail_core::policy::Builtin;
use dovetail_sim::{SimEvent, Simulation, demo_scenario};

use crate::output::{self, OutputError, outln};

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

fn age(ms: u64) -> String {
    let s = ms / 1000;
    if s < 120 {
        format!("{s}s")
    } else {
        format!("{}m", s / 60)
    }
}

pub fn run() -> Result<()> {
    let out = output::stdout("the demo's timeline");
    outln!(
        out,
        "Deployment my-app (1 CPU, 1.5Gi per pod) on NodePool default:"
    )?;
    outln!(
        out,
        "  instance-category In [c, m, r], capacity-type In [on-demand, spot],"
    )?;
    outln!(
        out,
        "  consolidationPolicy WhenEmptyOrUnderutilized. Simulated time; built-in policies.\n"
    )?;
    outln!(
        out,
        "{:<6} {:<16} {:<10} {:<14} {:<11} {:<10} {:>6}",
        "TIME",
        "NAME",
        "STATUS",
        "INSTANCE-TYPE",
        "ZONE",
        "CAPACITY",
        "AGE"
    )?;
    let mut failed: Option<OutputError> = None;
    let mut launched: Vec<(dovetail_core::sym::Sym, u64, String)> = Vec::new();
    let started = std::time::Instant::now();
    let report = Simulation::new(demo_scenario(42), &Builtin, &Builtin).run(&mut |e| {
        // After a failed write the run ends without output; the error is reported then.
        if failed.is_some() {
            return;
        }
        let shown = (|| -> Result<(), OutputError> {
            match e {
                SimEvent::Scaled {
                    at_ms,
                    deployment,
                    replicas,
                } => outln!(
                    out,
                    "{:<6} deployment/{deployment} scaled to {replicas} replicas",
                    clock(*at_ms)
                )?,
                SimEvent::NodeLaunched {
                    at_ms,
                    name,
                    instance_type,
                    zone,
                    capacity_type,
                    ..
                } => {
                    let line = format!(
                        "{instance_type:<14} {zone:<11} {:<10}",
                        capacity_type.label()
                    );
                    outln!(
                        out,
                        "{:<6} {:<16} {:<10} {line} {:>6}",
                        clock(*at_ms),
                        name.as_str(),
                        "Launched",
                        "0s"
                    )?;
                    launched.push((*name, *at_ms, line));
                }
                SimEvent::NodeReady { at_ms, name } => {
                    if let Some((_, since, line)) = launched.iter().find(|l| l.0 == *name) {
                        outln!(
                            out,
                            "{:<6} {:<16} {:<10} {line} {:>6}",
                            clock(*at_ms),
                            name.as_str(),
                            "Ready",
                            age(at_ms - since)
                        )?;
                    }
                }
                SimEvent::NodeDeleted { at_ms, name, .. } => {
                    if let Some((_, since, line)) = launched.iter().find(|l| l.0 == *name) {
                        outln!(
                            out,
                            "{:<6} {:<16} {:<10} {line} {:>6}",
                            clock(*at_ms),
                            name.as_str(),
                            "Deleted",
                            age(at_ms - since)
                        )?;
                    }
                }
                SimEvent::Disruption { at_ms, summary } => {
                    outln!(out, "{:<6} disruption: {summary}", clock(*at_ms))?
                }
                SimEvent::Interrupted { at_ms, name, .. } => outln!(
                    out,
                    "{:<6} spot interruption notice for {name}",
                    clock(*at_ms)
                )?,
                SimEvent::InsufficientCapacity {
                    at_ms,
                    instance_type,
                    zone,
                    capacity_type,
                } => outln!(
                    out,
                    "{:<6} insufficient capacity: {instance_type} {zone} {capacity_type}",
                    clock(*at_ms)
                )?,
                SimEvent::Changed { at_ms, summary } => {
                    outln!(out, "{:<6} {summary}", clock(*at_ms))?
                }
            }
            Ok(())
        })();
        failed = shown.err();
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let t = &report.totals;
    outln!(out)?;
    outln!(out, "nodes launched:        {}", t.nodes_launched)?;
    outln!(out, "nodes terminated:      {}", t.nodes_terminated)?;
    match t.all_running_after_seconds {
        Some(s) => outln!(out, "all 50 pods running:   after {s:.0} s")?,
        None => outln!(out, "all 50 pods running:   never")?,
    }
    outln!(out, "disruptions:           {}", t.disruptions)?;
    outln!(out, "pods evicted:          {}", t.pods_evicted)?;
    outln!(
        out,
        "cost:                  ${:.4} over {} simulated minutes",
        t.cost_usd,
        report.duration_seconds / 60
    )?;
    outln!(
        out,
        "simulated in:          {:.2} s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
