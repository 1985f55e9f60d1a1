//! Pods the autoscaler found no place for: one row per workload and reason,
//! each NodePool's reason on a line of its own.

use std::fmt::Write;

use super::{clock, escape, nowrap};
use crate::format::count;
use crate::report::UnschedulableRecord;

/// The most rows shown per run; the JSON report has them all.
const MAX_ROWS: usize = 200;

/// `rows` as `(run, record)`; the run column is shown when `runs` is set.
/// Nothing when there are none.
pub(super) fn unschedulable_section(
    out: &mut String,
    rows: &[(&str, &UnschedulableRecord)],
    runs: bool,
) {
    if rows.is_empty() {
        return;
    }
    let never: usize = rows.iter().map(|(_, r)| r.never_ran).sum();
    let mut order: Vec<&(&str, &UnschedulableRecord)> = rows.iter().collect();
    order.sort_by_key(|(_, r)| (std::cmp::Reverse(r.never_ran), r.first_at_seconds));
    let shown = order.len().min(MAX_ROWS);
    let _ = write!(
        out,
        "<h2>Unschedulable pods <span class=\"muted\">({} never ran; pods no NodePool could take, \
         by workload and reason{})</span></h2><div class=\"panel scroll\"><table><tr>{}<th>workload</th>\
         <th class=\"num\">pods</th><th class=\"num\">never ran</th><th class=\"num\">first</th>\
         <th class=\"num\">last</th><th style=\"min-width:360px\">why, per NodePool</th></tr>",
        count(never as u64),
        if shown < order.len() {
            format!("; the first {} shown", count(shown as u64))
        } else {
            String::new()
        },
        if runs { "<th>run</th>" } else { "" }
    );
    for (run, r) in &order[..shown] {
        let reasons: Vec<String> = r.reason_lines().iter().map(|l| escape(l)).collect();
        let _ = write!(
            out,
            "<tr>{}<td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if runs {
                format!("<td>{}</td>", escape(run))
            } else {
                String::new()
            },
            nowrap(&r.workload()),
            count(r.pods as u64),
            count(r.never_ran as u64),
            clock(r.first_at_seconds),
            clock(r.last_at_seconds),
            reasons.join("<br>")
        );
    }
    out.push_str("</table></div>");
}
