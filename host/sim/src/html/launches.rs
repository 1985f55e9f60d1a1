//! The launches: a provisioning round per row, what launched grouped by
//! type and count, each launch list and the NodeClaims' requirements.

use std::fmt::Write;

use super::{clock, escape, nodes_cell_up_to, nowrap};
use crate::format::{self, count};
use crate::report::{LaunchRecord, OfferingRecord, Report};

const MAX_LAUNCHES: usize = 250;

fn requirement(r: &dovetail_core::requirements::NodeSelectorRequirement) -> String {
    let mut s = format!("{} {}", r.key, r.operator.as_str());
    if !r.values.is_empty() {
        let _ = write!(s, " {}", r.values.join(", "));
    }
    if let Some(m) = r.min_values {
        let _ = write!(s, " (minValues {m})");
    }
    s
}

/// One round's launches for one NodePool and purpose.
struct LaunchGroup<'a> {
    launches: Vec<&'a LaunchRecord>,
}

impl LaunchGroup<'_> {
    fn first(&self) -> &LaunchRecord {
        self.launches[0]
    }

    /// Its launches by launch list and requirements, in first-seen order.
    fn lists(&self) -> Vec<Vec<&LaunchRecord>> {
        let mut lists: Vec<Vec<&LaunchRecord>> = Vec::new();
        for &l in &self.launches {
            match lists.iter_mut().find(|v| {
                (v[0].launch_list_index, &v[0].requirements)
                    == (l.launch_list_index, &l.requirements)
            }) {
                Some(v) => v.push(l),
                None => lists.push(vec![l]),
            }
        }
        lists
    }
}

fn launch_groups(launches: &[LaunchRecord]) -> Vec<LaunchGroup<'_>> {
    let mut groups: Vec<LaunchGroup<'_>> = Vec::new();
    for l in launches {
        match groups.last_mut() {
            Some(g)
                if (
                    g.first().at_seconds,
                    &g.first().purpose,
                    &g.first().node_pool,
                ) == (l.at_seconds, &l.purpose, &l.node_pool) =>
            {
                g.launches.push(l)
            }
            _ => groups.push(LaunchGroup { launches: vec![l] }),
        }
    }
    groups
}

/// A launch list by instance type, and the requirements of the NodeClaims
/// that sent it.
fn launch_list_details(out: &mut String, list: &[OfferingRecord], l: &LaunchRecord) {
    out.push_str("<ul class=\"types\">");
    for (t, how) in format::launch_list_by_type(list) {
        let _ = write!(out, "<li><code>{}</code> {}</li>", escape(&t), escape(&how));
    }
    out.push_str("</ul><div class=\"muted\">requirements</div><ul>");
    for r in &l.requirements {
        let _ = write!(out, "<li><code>{}</code></li>", escape(&requirement(r)));
    }
    out.push_str("</ul>");
}

fn node_names(launches: &[&LaunchRecord]) -> Vec<String> {
    launches
        .iter()
        .map(|l| l.node.clone().unwrap_or_else(|| l.node_claim.clone()))
        .collect()
}

fn launch_row(out: &mut String, r: &Report, g: &LaunchGroup<'_>) {
    let l = g.first();
    let launched: Vec<OfferingRecord> = g
        .launches
        .iter()
        .filter_map(|l| l.launched.clone())
        .collect();
    let failed: Vec<&str> = g
        .launches
        .iter()
        .filter(|l| l.launched.is_none())
        .filter_map(|l| l.failed.as_deref())
        .collect();
    let mut what = escape(&format::offering_groups(&launched));
    if !failed.is_empty() {
        if !what.is_empty() {
            what.push_str("<br>");
        }
        let _ = write!(
            what,
            "<span class=\"muted\">{} given up: {}</span>",
            count(failed.len() as u64),
            escape(failed[0])
        );
    }
    let claims = match &g.launches[..] {
        [one] => nowrap(one.node.as_deref().unwrap_or(&one.node_claim)),
        many => count(many.len() as u64),
    };
    let _ = write!(
        out,
        "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{claims}</td><td class=\"num\">{}</td><td>{what}</td><td>",
        clock(l.at_seconds),
        escape(l.node_pool.as_deref().unwrap_or("-")),
        escape(&l.purpose),
        count(g.launches.iter().map(|l| l.pods as u64).sum()),
    );
    match &g.lists()[..] {
        [one] => {
            let list = r.launch_list(one[0]);
            let _ = write!(
                out,
                "<details><summary>{}</summary>",
                escape(&format::launch_list_summary(list))
            );
            launch_list_details(out, list, one[0]);
            if one.len() > 1 {
                let _ = write!(
                    out,
                    "<div class=\"muted\">nodes</div><div>{}</div>",
                    nodes_cell_up_to(&node_names(one), 24)
                );
            }
        }
        lists => {
            let sizes: Vec<usize> = lists.iter().map(|v| r.launch_list(v[0]).len()).collect();
            let (lo, hi) = (
                sizes.iter().min().copied().unwrap_or(0),
                sizes.iter().max().copied().unwrap_or(0),
            );
            let _ = write!(
                out,
                "<details><summary>{} launch lists of {} offerings</summary>",
                lists.len(),
                if lo == hi {
                    count(lo as u64)
                } else {
                    format!("{}–{}", count(lo as u64), count(hi as u64))
                }
            );
            for v in lists {
                let list = r.launch_list(v[0]);
                let _ = write!(
                    out,
                    "<div style=\"margin-top:6px\"><b>{}</b>: {}</div>",
                    nodes_cell_up_to(&node_names(v), 3),
                    escape(&format::launch_list_summary(list))
                );
                launch_list_details(out, list, v[0]);
            }
        }
    }
    out.push_str("</details></td></tr>");
}

pub(super) fn launches_section(out: &mut String, r: &Report) {
    let launches = &r.launches;
    let groups = launch_groups(launches);
    let shown = groups.len().min(MAX_LAUNCHES);
    let failed = launches.iter().filter(|l| l.failed.is_some()).count();
    let _ = write!(
        out,
        "<h2>Launches <span class=\"muted\">({} NodeClaims{}{})</span></h2><div class=\"panel scroll\">",
        count(launches.len() as u64),
        if failed > 0 {
            format!(", {} given up", count(failed as u64))
        } else {
            String::new()
        },
        if shown < groups.len() {
            format!(
                "; the first {} of {} rounds shown",
                count(shown as u64),
                count(groups.len() as u64)
            )
        } else {
            String::new()
        }
    );
    if launches.is_empty() {
        out.push_str("<p class=\"muted\">No NodeClaims were created.</p></div>");
        return;
    }
    out.push_str(
        "<table><tr><th class=\"num\">time</th><th>NodePool</th><th>for</th><th>NodeClaims</th>\
         <th class=\"num\">pods</th><th>launched</th><th>launch list and requirements</th></tr>",
    );
    for g in &groups[..shown] {
        launch_row(out, r, g);
    }
    out.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_core::catalog::CapacityType;

    #[test]
    fn a_rounds_launches_share_one_row_grouped_by_type_and_count() {
        let offering = |zone: &str| OfferingRecord {
            instance_type: "m7g.2xlarge".into(),
            zone: zone.into(),
            capacity_type: CapacityType::Spot,
            price: 0.1234,
        };
        let mut report = Report {
            duration_seconds: 3600,
            launch_lists: vec![vec![offering("us-east-1a"), offering("us-east-1b")]],
            ..Report::default()
        };
        for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .enumerate()
        {
            report.launches.push(LaunchRecord {
                at_seconds: 61,
                node_claim: format!("default-{i}"),
                node: None,
                node_pool: Some("default".into()),
                purpose: "provisioning".into(),
                pods: 4,
                requirements: Vec::new(),
                launch_list_index: 0,
                launched: Some(offering(zone)),
                failed: None,
            });
        }
        let page = report.to_html("t");
        assert!(page.contains("3 × m7g.2xlarge (3 zones, spot)"), "{page}");
        assert!(page.contains("2 offerings of 1 type in 2 zones, spot, $0.1234/h"));
        assert_eq!(page.matches("<details>").count(), 1, "one row");
        assert!(
            page.contains("<td class=\"num\">12</td>"),
            "their pods summed"
        );
    }
}
