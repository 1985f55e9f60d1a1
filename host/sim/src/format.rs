//! How the reports write numbers and lists: dollars and counts with
//! thousands separators, durations in their unit, simulated clock times, and
//! offerings grouped by instance type.

use std::fmt::Write as _;

use dovetail_core::catalog::CapacityType;

use crate::report::OfferingRecord;

/// `1,047`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$2,334.60`; below $10 with four decimals (`$0.1366`), as hourly prices
/// and short runs need.
pub fn money(v: f64) -> String {
    let a = v.abs();
    money_to(v, if a >= 10.0 || a == 0.0 { 2 } else { 4 })
}

/// Decimals that write every amount of a column alike: cents once any
/// reaches $10, four decimals while all are small.
pub fn money_decimals(values: impl IntoIterator<Item = f64>) -> usize {
    if values.into_iter().any(|v| v.abs() >= 10.0) {
        2
    } else {
        4
    }
}

/// `$5.72` or `$5.7226`: an amount with `decimals` decimals.
pub fn money_to(v: f64, decimals: usize) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    let decimals = decimals.min(9) as i32;
    let scale = 10f64.powi(decimals);
    let cents = (a * scale).round();
    let whole = (cents / scale).trunc();
    let frac = cents - whole * scale;
    if decimals == 0 {
        return format!("{sign}${}", count(whole as u64));
    }
    format!(
        "{sign}${}.{:0width$}",
        count(whole as u64),
        frac as u64,
        width = decimals as usize
    )
}

/// `36 s`, `4 min 10 s`, `2 h 5 min`.
pub fn seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..120 => format!("{s} s"),
        120..7200 if s.is_multiple_of(60) => format!("{} min", s / 60),
        120..7200 => format!("{} min {} s", s / 60, s % 60),
        _ if (s / 60).is_multiple_of(60) => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// `1,234.5 h`.
pub fn hours(h: f64) -> String {
    let tenths = (h * 10.0).round() as u64;
    format!("{}.{} h", count(tenths / 10), tenths % 10)
}

/// `16:05` of simulated time (hours may pass 24).
pub fn hhmm(seconds: u64) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds / 60 % 60)
}

/// `24 × m7g.2xlarge (3 zones, spot), 2 × c7g.large (us-east-1a, on-demand)`:
/// offerings by instance type, most first.
pub fn offering_groups(offerings: &[OfferingRecord]) -> String {
    let mut groups: Vec<(&str, Vec<&OfferingRecord>)> = Vec::new();
    for o in offerings {
        match groups.iter_mut().find(|(t, _)| *t == o.instance_type) {
            Some((_, g)) => g.push(o),
            None => groups.push((&o.instance_type, vec![o])),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    groups
        .iter()
        .map(|(t, g)| format!("{} × {t} ({})", g.len(), where_and_how(g, true)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `3 zones, spot`, `us-east-1a, 3 spot + 1 on-demand`; `counts` says how
/// many of each capacity type when they mix.
fn where_and_how(g: &[&OfferingRecord], counts: bool) -> String {
    let mut zones: Vec<&str> = g.iter().map(|o| o.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    let mut out = match zones[..] {
        [one] => one.to_string(),
        _ => format!("{} zones", zones.len()),
    };
    let by_type: Vec<(CapacityType, usize)> = CapacityType::ALL
        .iter()
        .map(|&c| (c, g.iter().filter(|o| o.capacity_type == c).count()))
        .filter(|&(_, n)| n > 0)
        .collect();
    let parts: Vec<String> = match by_type[..] {
        [(c, _)] => vec![c.to_string()],
        _ if counts => by_type.iter().map(|(c, n)| format!("{n} {c}")).collect(),
        _ => by_type.iter().map(|(c, _)| c.to_string()).collect(),
    };
    let _ = write!(out, ", {}", parts.join(" + "));
    out
}

/// A launch list in a line: `60 offerings of 20 types in 3 zones, spot +
/// on-demand, $0.0289–$0.6120/h`.
pub fn launch_list_summary(list: &[OfferingRecord]) -> String {
    if list.is_empty() {
        return "empty".into();
    }
    let mut types: Vec<&str> = list.iter().map(|o| o.instance_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let all: Vec<&OfferingRecord> = list.iter().collect();
    let (lo, hi) = list.iter().fold((f64::MAX, 0.0f64), |(lo, hi), o| {
        (lo.min(o.price), hi.max(o.price))
    });
    let prices = if lo == hi {
        format!("{}/h", money(lo))
    } else {
        format!("{}–{}/h", money(lo), money(hi))
    };
    format!(
        "{} offering{} of {} type{} in {}, {prices}",
        count(list.len() as u64),
        if list.len() == 1 { "" } else { "s" },
        count(types.len() as u64),
        if types.len() == 1 { "" } else { "s" },
        where_and_how(&all, false)
    )
}

/// A launch list by instance type, in the order the cloud tries them: each
/// type with its zones, capacity types and prices.
pub fn launch_list_by_type(list: &[OfferingRecord]) -> Vec<(String, String)> {
    let mut groups: Vec<(&str, Vec<&OfferingRecord>)> = Vec::new();
    for o in list {
        match groups.iter_mut().find(|(t, _)| *t == o.instance_type) {
            Some((_, g)) => g.push(o),
            None => groups.push((&o.instance_type, vec![o])),
        }
    }
    groups
        .into_iter()
        .map(|(t, g)| {
            let (lo, hi) = g.iter().fold((f64::MAX, 0.0f64), |(lo, hi), o| {
                (lo.min(o.price), hi.max(o.price))
            });
            let price = if lo == hi {
                format!("{}/h", money(lo))
            } else {
                format!("{}–{}/h", money(lo), money(hi))
            };
            (
                t.to_string(),
                format!("{}, {price}", where_and_how(&g, true)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(t: &str, zone: &str, c: CapacityType, price: f64) -> OfferingRecord {
        OfferingRecord {
            instance_type: t.into(),
            zone: zone.into(),
            capacity_type: c,
            price,
        }
    }

    #[test]
    fn numbers_read_in_their_unit() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_047), "1,047");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(money(2334.6), "$2,334.60");
        assert_eq!(money(11217.0), "$11,217.00");
        assert_eq!(money(0.1366), "$0.1366");
        assert_eq!(money(0.0), "$0.00");
        assert_eq!(money(-12.5), "-$12.50");
        assert_eq!(money(9.99996), "$10.0000");
        let column = [5.7226, 20.7418];
        assert_eq!(money_decimals(column), 2);
        assert_eq!(money_to(column[0], 2), "$5.72");
        assert_eq!(money_decimals([0.1366, 5.7226]), 4);
        assert_eq!(money_to(1234.5, 0), "$1,235");
        assert_eq!(seconds(36.4), "36 s");
        assert_eq!(seconds(250.0), "4 min 10 s");
        assert_eq!(seconds(600.0), "10 min");
        assert_eq!(seconds(7500.0), "2 h 5 min");
        assert_eq!(hours(1234.56), "1,234.6 h");
        assert_eq!(hhmm(16 * 3600 + 5 * 60 + 59), "16:05");
        assert_eq!(hhmm(25 * 3600), "25:00");
    }

    #[test]
    fn launches_group_by_type_and_count() {
        let mut launched = Vec::new();
        for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            for _ in 0..8 {
                launched.push(o("m7g.2xlarge", zone, CapacityType::Spot, 0.1));
            }
        }
        launched.push(o("c7g.large", "us-east-1a", CapacityType::OnDemand, 0.07));
        launched.push(o("c7g.large", "us-east-1a", CapacityType::Spot, 0.03));
        assert_eq!(
            offering_groups(&launched),
            "24 × m7g.2xlarge (3 zones, spot), 2 × c7g.large (us-east-1a, 1 on-demand + 1 spot)"
        );
        let list = [
            o("c7g.large", "us-east-1a", CapacityType::Spot, 0.03),
            o("c7g.large", "us-east-1b", CapacityType::Spot, 0.0312),
            o("m7g.large", "us-east-1a", CapacityType::OnDemand, 0.0816),
        ];
        assert_eq!(
            launch_list_summary(&list),
            "3 offerings of 2 types in 2 zones, on-demand + spot, $0.0300–$0.0816/h"
        );
        assert_eq!(
            launch_list_by_type(&list),
            [
                (
                    "c7g.large".to_string(),
                    "2 zones, spot, $0.0300–$0.0312/h".to_string()
                ),
                (
                    "m7g.large".to_string(),
                    "us-east-1a, on-demand, $0.0816/h".to_string()
                )
            ]
        );
    }
}
