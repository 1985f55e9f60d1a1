//! The HTML report: one self-contained page that reads like a dashboard —
//! headline figures, inline SVG charts on a simulated-clock axis, the cost
//! split, launches with their launch lists, disruption budgets and why nodes
//! stayed, where pods ran, and the decisions; or several runs on one page.
//! No scripts, no network: expanding a launch list is a `<details>` element.

use std::fmt::Write;

use dovetail_core::catalog::CapacityType;

use crate::format::{self, count};
use crate::report::{CostShare, Sample};

mod chart;
mod compare;
mod launches;
mod passes;
mod run;
mod unschedulable;

pub use compare::compare_html;

/// Colours of the runs on a comparison page, and of series.
const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d",
];

const ON_DEMAND: &str = "#2563eb";

const SPOT: &str = "#f59e0b";

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827;font-size:14px}\
header{background:#111827;color:#f9fafb;padding:20px 32px}\
header h1{margin:0 0 4px;font-size:22px;font-weight:600}\
header p{margin:0;color:#d1d5db}\
main{padding:20px 32px;max-width:1500px}\
h2{font-size:16px;margin:28px 0 10px;font-weight:600}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}\
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.card .v{font-size:22px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}\
.card .k{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.card .s{color:#6b7280;font-size:12px;margin-top:2px}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}\
.panel{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-x:auto}\
.panel h3{margin:0 0 6px;font-size:14px;font-weight:600}\
svg{width:100%;height:auto;display:block}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th{text-align:left;color:#6b7280;font-weight:600;border-bottom:1px solid #e5e7eb;padding:6px 8px;white-space:nowrap}\
td{padding:5px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}\
tr:nth-child(even) td{background:#fafafa}\
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.muted{color:#6b7280}\
.nw{white-space:nowrap}\
.scroll{max-height:600px;overflow-y:auto}\
.scroll th{position:sticky;top:0;background:#fff;z-index:1}\
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle}\
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}\
details summary{cursor:pointer;color:#1d4ed8}\
details ul{margin:4px 0 0;padding-left:18px}\
ul.types{columns:2 220px;column-gap:20px}\
code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px}\
footer{padding:8px 32px 32px;color:#6b7280;font-size:12px}";

/// `HH:MM:SS` of simulated time (hours may pass 24).
pub fn clock(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page_start(title: &str, subtitle: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <header><h1>{t}</h1><p>{s}</p></header><main>",
        t = escape(title),
        s = escape(subtitle)
    )
}

fn page_end(out: &mut String, note: &str) {
    let _ = writeln!(
        out,
        "</main><footer>{}</footer></body></html>",
        escape(note)
    );
}

fn card(out: &mut String, key: &str, value: &str, sub: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"s\">{}</div></div>",
        escape(key),
        escape(value),
        escape(sub)
    );
}

fn nodes_cell(nodes: &[String]) -> String {
    nodes_cell_up_to(nodes, 3)
}

/// The first `up_to` names, and how many more.
fn nodes_cell_up_to(nodes: &[String], up_to: usize) -> String {
    let names = |nodes: &[String]| {
        nodes
            .iter()
            .map(|n| nowrap(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if nodes.len() <= up_to {
        return names(nodes);
    }
    format!(
        "{} <span class=\"muted\">+{} more</span>",
        names(&nodes[..up_to]),
        count((nodes.len() - up_to) as u64)
    )
}

/// A name that must not break at its hyphens.
fn nowrap(name: &str) -> String {
    format!("<span class=\"nw\">{}</span>", escape(name))
}

/// Cost rows, each with the run it belongs to when `runs` is set.
fn cost_table(out: &mut String, rows: &[(String, &CostShare)], total: f64) {
    out.push_str(
        "<table><tr><th>NodePool</th><th>capacity type</th><th class=\"num\">cost</th>\
         <th class=\"num\">share</th><th class=\"num\">node-hours</th><th></th></tr>",
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">No nodes ran.</td></tr>");
    }
    let decimals = format::money_decimals(rows.iter().map(|(_, c)| c.cost_usd));
    cost_rows(out, rows, total, false, decimals);
    out.push_str("</table>");
}

/// Rows of cost shares of `total`, with their run when `runs` is set.
fn cost_rows(
    out: &mut String,
    rows: &[(String, &CostShare)],
    total: f64,
    runs: bool,
    decimals: usize,
) {
    for (run, c) in rows {
        let share = if total > 0.0 {
            c.cost_usd / total * 100.0
        } else {
            0.0
        };
        let colour = match c.capacity_type {
            CapacityType::Spot => SPOT,
            _ => ON_DEMAND,
        };
        let _ = write!(
            out,
            "<tr>{}<td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{share:.1} %</td>\
             <td class=\"num\">{}</td><td style=\"width:30%\"><span class=\"bar\" style=\"width:{:.1}%;background:{colour}\"></span></td></tr>",
            if runs {
                format!("<td>{}</td>", escape(run))
            } else {
                String::new()
            },
            escape(c.node_pool.as_deref().unwrap_or("(node groups)")),
            c.capacity_type,
            format::money_to(c.cost_usd, decimals),
            format::hours(c.node_hours),
            share.clamp(0.0, 100.0)
        );
    }
}

fn nodes_total(s: &Sample) -> f64 {
    (s.nodes_on_demand + s.nodes_spot) as f64
}
