//! `dovetail demo`: the classic example on a simulated cluster, printed as
//! `kubectl get nodes -w` would show it.

use anyhow::Result;
use dovetail_core::policy::Builtin;
use dovetail_sim::{SimEvent, Simulation, demo_scenario};

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
    println!("Deployment my-app (1 CPU, 1.5Gi per pod) on NodePool default:");
    println!("  instance-category In [c, m, r], capacity-type In [on-demand, spot],");
    println!(
        "  consolidationPolicy WhenEmptyOrUnderutilized. Simulated time; built-in policies.\n"
    );
    println!(
        "{:<6} {:<16} {:<10} {:<14} {:<11} {:<10} {:>6}",
        "TIME", "NAME", "STATUS", "INSTANCE-TYPE", "ZONE", "CAPACITY", "AGE"
    );
    let mut launched: Vec<(dovetail_core::sym::Sym, u64, String)> = Vec::new();
    let started = std::time::Instant::now();
    let report = Simulation::new(demo_scenario(42), &Builtin, &Builtin).run(&mut |e| match e {
        SimEvent::Scaled {
            at_ms,
            deployment,
            replicas,
        } => println!(
            "{:<6} deployment/{deployment} scaled to {replicas} replicas",
            clock(*at_ms)
        ),
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
            println!(
                "{:<6} {:<16} {:<10} {line} {:>6}",
                clock(*at_ms),
                name.as_str(),
                "Launched",
                "0s"
            );
            launched.push((*name, *at_ms, line));
        }
        SimEvent::NodeReady { at_ms, name } => {
            if let Some((_, since, line)) = launched.iter().find(|l| l.0 == *name) {
                println!(
                    "{:<6} {:<16} {:<10} {line} {:>6}",
                    clock(*at_ms),
                    name.as_str(),
                    "Ready",
                    age(at_ms - since)
                );
            }
        }
        SimEvent::NodeDeleted { at_ms, name, .. } => {
            if let Some((_, since, line)) = launched.iter().find(|l| l.0 == *name) {
                println!(
                    "{:<6} {:<16} {:<10} {line} {:>6}",
                    clock(*at_ms),
                    name.as_str(),
                    "Deleted",
                    age(at_ms - since)
                );
            }
        }
        SimEvent::Disruption { at_ms, summary } => {
            println!("{:<6} disruption: {summary}", clock(*at_ms))
        }
        SimEvent::Interrupted { at_ms, name, .. } => {
            println!("{:<6} spot interruption notice for {name}", clock(*at_ms))
        }
        SimEvent::InsufficientCapacity {
            at_ms,
            instance_type,
            zone,
            capacity_type,
        } => println!(
            "{:<6} insufficient capacity: {instance_type} {zone} {capacity_type}",
            clock(*at_ms)
        ),
        SimEvent::Changed { at_ms, summary } => println!("{:<6} {summary}", clock(*at_ms)),
    });
    let t = &report.totals;
    println!();
    println!("nodes launched:        {}", t.nodes_launched);
    println!("nodes terminated:      {}", t.nodes_terminated);
    match t.all_running_after_seconds {
        Some(s) => println!("all 50 pods running:   after {s:.0} s"),
        None => println!("all 50 pods running:   never"),
    }
    println!("disruptions:           {}", t.disruptions);
    println!("pods evicted:          {}", t.pods_evicted);
    println!(
        "cost:                  ${:.4} over {} simulated minutes",
        t.cost_usd,
        report.duration_seconds / 60
    );
    println!(
        "simulated in:          {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
