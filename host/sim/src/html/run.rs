//! One run's dashboard: headline figures, charts, the cost split, launches,
//! disruption passes, decisions and where pods ran.

use std::collections::BTreeMap;
use std::fmt::Write;

use dovetail_core::catalog::CapacityType;

use super::chart::{
    Line, Unit, disruption_chart, evictions_chart, line_chart, pending_chart, points,
};
use super::launches::launches_section;
use super::passes::passes_section;
use super::unschedulable::unschedulable_section;
use super::{
    ON_DEMAND, SPOT, card, clock, cost_table, escape, nodes_cell, nodes_total, nowrap, page_end,
    page_start,
};
use crate::format::{self, count, money};
use crate::report::{CostShare, DecisionRecord, Report};

/// A day can hold thousands of decisions and launches; the JSON report has
/// them all.
const MAX_DECISIONS: usize = 1_000;

const MAX_PODS: usize = 200;

/// Where pods ran: those placed more than once first (by when they first
/// moved), then the rest, each with every binding.
fn pods_section(out: &mut String, r: &Report) {
    let mut pods: Vec<(&String, &Vec<(u64, String)>)> = r.pods.iter().collect();
    let moved = pods.iter().filter(|(_, b)| b.len() > 1).count();
    pods.sort_by_key(|(name, b)| (b.get(1).map_or(u64::MAX, |m| m.0), b.len() == 1, *name));
    let shown = pods.len().min(MAX_PODS);
    let _ = write!(
        out,
        "<h2>Pod placements <span class=\"muted\">({} pods, {} placed more than once{})</span></h2><div class=\"panel scroll\">",
        count(pods.len() as u64),
        count(moved as u64),
        if shown < pods.len() {
            format!(
                "; the first {} shown, those that moved first",
                count(shown as u64)
            )
        } else {
            String::new()
        }
    );
    if pods.is_empty() {
        out.push_str("<p class=\"muted\">No pod was bound.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th>pod</th><th class=\"num\">bindings</th><th>bound (simulated time → node)</th></tr>",
    );
    for (name, bindings) in &pods[..shown] {
        let binding = |(at, node): &(u64, String)| {
            format!(
                "<span class=\"nw\">{} → {}</span>",
                clock(*at),
                escape(node)
            )
        };
        let cells: Vec<String> = if bindings.len() <= 6 {
            bindings.iter().map(binding).collect()
        } else {
            let n = bindings.len();
            bindings[..3]
                .iter()
                .map(binding)
                .chain(std::iter::once(format!(
                    "<span class=\"muted\">… {} more …</span>",
                    count((n - 5) as u64)
                )))
                .chain(bindings[n - 2..].iter().map(binding))
                .collect()
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            nowrap(name),
            count(bindings.len() as u64),
            cells.join(", ")
        );
    }
    out.push_str("</table></div>");
}

fn decisions_section(out: &mut String, decisions: &[DecisionRecord]) {
    let shown = decisions.len().min(MAX_DECISIONS);
    let _ = write!(
        out,
        "<h2>Decisions <span class=\"muted\">({}{})</span></h2><div class=\"panel scroll\">",
        count(decisions.len() as u64),
        if shown < decisions.len() {
            format!("; the first {} shown", count(shown as u64))
        } else {
            String::new()
        }
    );
    if decisions.is_empty() {
        out.push_str("<p class=\"muted\">No decisions.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th class=\"num\">time</th><th>kind</th><th>nodes</th><th>launched</th>\
         <th class=\"num\">saves</th><th class=\"num\">pods</th><th>decided by</th><th style=\"min-width:260px\">reason</th></tr>",
    );
    for d in &decisions[..shown] {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            clock(d.at_seconds),
            escape(&d.kind),
            nodes_cell(&d.nodes),
            escape(&format::offering_groups(&d.launched)),
            if d.savings_per_hour > 0.0 {
                format!("{}/h", money(d.savings_per_hour))
            } else {
                String::new()
            },
            if d.pods > 0 {
                count(d.pods as u64)
            } else {
                String::new()
            },
            nowrap(&d.decided_by),
            escape(&d.reason)
        );
    }
    out.push_str("</table></div>");
}

fn hours_section(out: &mut String, hours: &BTreeMap<String, f64>) {
    let mut top: Vec<(&String, &f64)> = hours.iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let max = top.first().map_or(1.0, |t| t.1.max(1e-9));
    let _ = write!(
        out,
        "<div class=\"panel\"><h3>Node-hours by instance type <span class=\"muted\">(top {} of {})</span></h3>\
         <table><tr><th>instance type</th><th class=\"num\">node-hours</th><th></th></tr>",
        top.len().min(10),
        top.len()
    );
    for (t, h) in top.iter().take(10) {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td style=\"width:40%\">\
             <span class=\"bar\" style=\"width:{:.1}%;background:#64748b\"></span></td></tr>",
            escape(t),
            format::hours(**h),
            *h / max * 100.0
        );
    }
    out.push_str("</table></div>");
}

impl Report {
    /// The report as one HTML page that opens without a network.
    pub fn to_html(&self, title: &str) -> String {
        let t = &self.totals;
        let subtitle = format!(
            "{} · {} simulated · seed {}",
            self.autoscaler,
            format::seconds(self.duration_seconds as f64),
            self.seed
        );
        let mut page = page_start(title, &subtitle);
        page.push_str("<div class=\"cards\">");
        let spot_share = t
            .cost_by_node_pool
            .iter()
            .filter(|c| c.capacity_type == CapacityType::Spot)
            .map(|c| c.cost_usd)
            .sum::<f64>();
        card(
            &mut page,
            "cost",
            &money(t.cost_usd),
            &if t.cost_usd > 0.0 {
                format!("{:.0} % on spot", spot_share / t.cost_usd * 100.0)
            } else {
                String::new()
            },
        );
        card(&mut page, "peak nodes", &count(t.peak_nodes as u64), "");
        card(
            &mut page,
            "nodes launched",
            &count(t.nodes_launched as u64),
            &format!("{} terminated", count(t.nodes_terminated as u64)),
        );
        card(
            &mut page,
            "disruptions",
            &count(t.disruptions as u64),
            &format!("{} interruptions", count(t.interruptions as u64)),
        );
        card(&mut page, "pods evicted", &count(t.pods_evicted as u64), "");
        card(
            &mut page,
            "pending p99",
            &format::seconds(t.pending_p99_seconds),
            &format!(
                "p50 {} · p95 {} · max {}",
                format::seconds(t.pending_p50_seconds),
                format::seconds(t.pending_p95_seconds),
                format::seconds(t.pending_max_seconds)
            ),
        );
        card(
            &mut page,
            "all running after",
            &t.all_running_after_seconds
                .map_or("never".into(), format::seconds),
            &format!("{} pending at the end", count(t.pending_at_end as u64)),
        );
        if t.pods_never_ran > 0 {
            card(
                &mut page,
                "pods never ran",
                &count(t.pods_never_ran as u64),
                "pending the whole time, never on a node",
            );
        }
        if t.insufficient_capacity_errors > 0 {
            card(
                &mut page,
                "insufficient capacity",
                &count(t.insufficient_capacity_errors as u64),
                "offerings that failed",
            );
        }
        if t.jobs_completed > 0 {
            card(
                &mut page,
                "jobs completed",
                &count(t.jobs_completed as u64),
                "",
            );
        }
        if t.policy_failures > 0 {
            card(
                &mut page,
                "policy failures",
                &count(t.policy_failures),
                "the built-in decided instead",
            );
        }
        page.push_str("</div>");
        let rows: Vec<(&str, _)> = self.unschedulable.iter().map(|u| ("", u)).collect();
        unschedulable_section(&mut page, &rows, false);
        page.push_str("<h2>Over time</h2><div class=\"grid\">");
        let end = self.duration_seconds;
        let s = &self.timeline;
        page.push_str(&line_chart(
            "Nodes by capacity type",
            Unit::Count,
            end,
            &[
                Line {
                    label: "spot".into(),
                    colour: SPOT,
                    points: points(s, nodes_total),
                    fill: true,
                },
                Line {
                    label: "on-demand".into(),
                    colour: ON_DEMAND,
                    points: points(s, |s| s.nodes_on_demand as f64),
                    fill: true,
                },
            ],
        ));
        page.push_str(&pending_chart(s, end));
        page.push_str(&line_chart(
            "Cumulative cost",
            Unit::Money,
            end,
            &[Line {
                label: "cost".into(),
                colour: "#16a34a",
                points: points(s, |s| s.cost_usd),
                fill: false,
            }],
        ));
        page.push_str(&evictions_chart(s, end));
        page.push_str(&disruption_chart(&self.decisions, end));
        page.push_str(&line_chart(
            "Running pods",
            Unit::Count,
            end,
            &[Line {
                label: "running".into(),
                colour: "#0891b2",
                points: points(s, |s| s.running_pods as f64),
                fill: false,
            }],
        ));
        page.push_str("</div><h2>Cost</h2><div class=\"grid\"><div class=\"panel\"><h3>By NodePool and capacity type</h3>");
        let rows: Vec<(String, &CostShare)> = t
            .cost_by_node_pool
            .iter()
            .map(|c| (String::new(), c))
            .collect();
        cost_table(&mut page, &rows, t.cost_usd);
        page.push_str("</div>");
        hours_section(&mut page, &t.node_hours_by_instance_type);
        page.push_str("</div>");
        launches_section(&mut page, self);
        passes_section(&mut page, self);
        decisions_section(&mut page, &self.decisions);
        pods_section(&mut page, self);
        page_end(
            &mut page,
            "Every pod's bindings, launch, launch list and disruption pass are in the JSON \
             report (--json).",
        );
        page
    }
}
