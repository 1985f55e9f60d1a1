//! Disruption budgets: how many of a NodePool's nodes voluntary disruption
//! may take at once, per reason, computed as Karpenter does
//! (`NodePool.GetAllowedDisruptionsByReason`, `Budget.IsActive` and the
//! disruption controller's `BuildDisruptionBudgetMapping`).
//!
//! Time is an argument (`now_unix_seconds`, UTC) so decisions replay exactly.
//! Any invalid budget fails closed: the whole NodePool gets 0 for every
//! reason, as Karpenter's `MustGetAllowedDisruptions` does.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use croner::Cron;

use crate::model::{Budget, NodePool};
use crate::policy::types::reason;

/// Allowed disruptions when no active budget applies: Karpenter's
/// `math.MaxInt32`, kept so reports and metrics show the same number.
pub const UNBOUNDED: u32 = i32::MAX as u32;

/// The CRD's `maxItems` for `spec.disruption.budgets`.
pub const MAX_BUDGETS: usize = 50;

const CRON_HINT: &str = "write a 5-field cron expression in UTC such as `0 9 * * mon-fri`, \
     or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly";

/// Why a node is voluntarily disrupted, as budgets name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisruptionReason {
    Empty,
    Underutilized,
    Drifted,
}

impl DisruptionReason {
    /// Every reason, in code order; [`BudgetReport::reasons`] uses this order.
    pub const ALL: [Self; 3] = [Self::Empty, Self::Underutilized, Self::Drifted];

    /// The wire code shared with policies ([`reason`]).
    pub fn code(self) -> u8 {
        match self {
            Self::Empty => reason::EMPTY,
            Self::Underutilized => reason::UNDERUTILIZED,
            Self::Drifted => reason::DRIFTED,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The name used in `budgets[].reasons`.
    pub fn name(self) -> &'static str {
        reason::name(self.code())
    }

    /// Parses a `budgets[].reasons` entry; names are case-sensitive, as in the CRD enum.
    pub fn from_name(name: &str) -> Option<Self> {
        reason::from_name(name).and_then(Self::from_code)
    }
}

impl fmt::Display for DisruptionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A NodePool's nodes as budgets see them.
///
/// Count only managed, initialized nodes whose instance is not already
/// terminated: uninitialized replacements must not inflate a percentage
/// (Karpenter skips them for the same reason). A node that is both NotReady
/// and marked for deletion consumes budget once; [`PoolCounts::add_node`]
/// keeps that straight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounts {
    /// Nodes that percentages are taken of.
    pub total: u32,
    /// Nodes marked for deletion or deleting.
    pub disrupting: u32,
    /// Nodes not Ready and not already counted in `disrupting`.
    pub not_ready: u32,
}

impl PoolCounts {
    /// Counts one node.
    pub fn add_node(&mut self, ready: bool, marked_for_deletion: bool) {
        self.total += 1;
        if marked_for_deletion {
            self.disrupting += 1;
        } else if !ready {
            self.not_ready += 1;
        }
    }

    /// Nodes already consuming budget.
    pub fn consuming(self) -> u32 {
        self.disrupting.saturating_add(self.not_ready)
    }
}

/// Budgets that cannot be used: more than [`MAX_BUDGETS`]. Everything else
/// about a budget is checked when it is built ([`BudgetNodes`],
/// [`Schedule`], [`BudgetWindow`]). `budget` is the 0-based index in
/// `spec.disruption.budgets` of the first one too many.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NodePool `{node_pool}`: budget {budget} {message}")]
pub struct BudgetError {
    pub node_pool: String,
    pub budget: usize,
    pub message: String,
}

/// A budget field that does not parse; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBudget(pub String);

/// How many nodes a budget allows at once: `nodes: "5"` or `nodes: "10%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetNodes {
    /// At most this many nodes; counts above [`UNBOUNDED`] are capped to it.
    Count(u32),
    /// At most this percentage (0–100) of the pool's nodes, rounded up.
    Percent(u8),
}

impl BudgetNodes {
    /// The allowance for a pool of `total` nodes.
    pub fn limit(self, total: u32) -> u32 {
        match self {
            Self::Count(n) => n,
            // Rounded up, as Kubernetes does for PDB maxUnavailable, so a
            // small percentage of a small pool still allows one node.
            Self::Percent(p) => {
                let v = (u64::from(p) * u64::from(total)).div_ceil(100);
                u32::try_from(v.min(u64::from(UNBOUNDED))).unwrap_or(UNBOUNDED)
            }
        }
    }
}

/// Accepts what the CRD pattern `^((100|[0-9]{1,2})%|[0-9]+)$` accepts.
impl std::str::FromStr for BudgetNodes {
    type Err = InvalidBudget;

    fn from_str(text: &str) -> Result<Self, InvalidBudget> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let parsed = match text.strip_suffix('%') {
            Some(p) if digits(p) && (p.len() <= 2 || p == "100") => {
                p.parse::<u8>().ok().map(Self::Percent)
            }
            Some(_) => None,
            None if digits(text) => text.parse::<u64>().ok().map(|n| {
                Self::Count(u32::try_from(n.min(u64::from(UNBOUNDED))).unwrap_or(UNBOUNDED))
            }),
            None => None,
        };
        parsed.ok_or_else(|| {
            InvalidBudget(format!(
                "nodes `{text}` is neither a node count such as `5` nor a percentage from `0%` to `100%` such as `10%`"
            ))
        })
    }
}

impl fmt::Display for BudgetNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// When a scheduled budget is active: from each hit of `schedule` (UTC)
/// for `duration`. Schedule and duration come together, as the CRD's
/// `has(x.schedule) == has(x.duration)` rule demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetWindow {
    schedule: Schedule,
    duration: Duration,
}

impl BudgetWindow {
    /// Fails unless `duration` is whole minutes: the CRD accepts only hours
    /// and minutes, since cron has minute resolution.
    pub fn new(schedule: Schedule, duration: Duration) -> Result<Self, InvalidBudget> {
        if duration.subsec_nanos() != 0 || !duration.as_secs().is_multiple_of(60) {
            return Err(InvalidBudget(format!(
                "duration {duration:?} is not whole minutes; use hours and minutes such as `8h` or `1h30m`"
            )));
        }
        Ok(Self { schedule, duration })
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Karpenter's `Budget.IsActive`.
    pub fn is_active(&self, now_unix_seconds: u64) -> bool {
        self.schedule.is_active(self.duration, now_unix_seconds)
    }
}

/// One reason's budget for a NodePool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonAllowance {
    pub reason: DisruptionReason,
    /// The most restrictive active applicable budget before subtracting
    /// consuming nodes (Karpenter's `nodepools_allowed_disruptions` metric);
    /// [`UNBOUNDED`] when none applies, 0 when the budgets are invalid.
    pub limit: u32,
    /// Index of the budget that set `limit` (the first on ties); `None` when
    /// none applies or the budgets are invalid.
    pub limited_by: Option<usize>,
    /// `limit` minus consuming nodes, floored at 0.
    pub allowed: u32,
}

/// Every reason's budget for one NodePool at one instant, for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetReport {
    pub node_pool: String,
    pub counts: PoolCounts,
    /// In [`DisruptionReason::ALL`] order.
    pub reasons: [ReasonAllowance; 3],
    /// Set when the budgets are invalid and every reason was failed closed.
    pub error: Option<BudgetError>,
}

impl BudgetReport {
    pub fn get(&self, reason: DisruptionReason) -> &ReasonAllowance {
        &self.reasons[usize::from(reason.code())]
    }

    pub fn allowed(&self, reason: DisruptionReason) -> u32 {
        self.get(reason).allowed
    }
}

/// Allowed disruptions for one NodePool and reason at `now_unix_seconds`:
/// the minimum over active budgets that apply to `reason`, minus nodes
/// already disrupting or NotReady, floored at 0. No applicable budget gives
/// [`UNBOUNDED`] minus those nodes.
///
/// `Err` means fail closed: treat the NodePool as allowing 0 for every reason.
pub fn allowed_disruptions(
    pool: &NodePool,
    reason: DisruptionReason,
    counts: PoolCounts,
    now_unix_seconds: u64,
) -> Result<u32, BudgetError> {
    let budgets = checked_budgets(pool)?;
    let (limit, _) = limit_for(budgets, reason, counts.total, now_unix_seconds);
    Ok(limit.saturating_sub(counts.consuming()))
}

/// Checks the budgets as a whole (their number); each budget was checked
/// when it was built.
pub fn validate_budgets(pool: &NodePool) -> Result<(), BudgetError> {
    checked_budgets(pool).map(drop)
}

/// Every reason's allowance and which budget set it; invalid budgets give 0
/// everywhere and carry the error.
pub fn budget_report(pool: &NodePool, counts: PoolCounts, now_unix_seconds: u64) -> BudgetReport {
    let checked = checked_budgets(pool);
    let reasons = DisruptionReason::ALL.map(|reason| match &checked {
        Ok(budgets) => {
            let (limit, limited_by) = limit_for(budgets, reason, counts.total, now_unix_seconds);
            ReasonAllowance {
                reason,
                limit,
                limited_by,
                allowed: limit.saturating_sub(counts.consuming()),
            }
        }
        Err(_) => ReasonAllowance {
            reason,
            limit: 0,
            limited_by: None,
            allowed: 0,
        },
    });
    BudgetReport {
        node_pool: pool.name.as_str().to_owned(),
        counts,
        reasons,
        error: checked.err(),
    }
}

fn checked_budgets(pool: &NodePool) -> Result<&[Budget], BudgetError> {
    let budgets = &pool.disruption.budgets;
    if budgets.len() > MAX_BUDGETS {
        return Err(BudgetError {
            node_pool: pool.name.as_str().to_owned(),
            budget: MAX_BUDGETS,
            message: format!(
                "is one too many: a NodePool may have at most {MAX_BUDGETS} budgets; merge or remove some"
            ),
        });
    }
    Ok(budgets)
}

/// The most restrictive active budget for `reason` and its index.
fn limit_for(
    budgets: &[Budget],
    reason: DisruptionReason,
    total: u32,
    now_unix_seconds: u64,
) -> (u32, Option<usize>) {
    let mut best = (UNBOUNDED, None);
    for (i, b) in budgets.iter().enumerate() {
        if !b.reasons.is_empty() && !b.reasons.contains(&reason) {
            continue;
        }
        if let Some(window) = &b.window
            && !window.is_active(now_unix_seconds)
        {
            continue;
        }
        let value = b.nodes.limit(total);
        if value < best.0 {
            best = (value, Some(i));
        }
    }
    best
}

/// A budget schedule, read with the grammar of Karpenter's parser
/// (robfig/cron `ParseStandard`) and searched with croner. Fields are
/// re-rendered as plain numbers so croner's extensions (`L`, `W`, `#`,
/// seconds, weekday 7) cannot change the meaning. Equal when the text is.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written.
    text: String,
    cron: Cron,
    /// Never matches (such as `0 0 30 2 *`).
    never_fires: bool,
}

/// One parsed cron field: a bit per value, and whether it was written as
/// `*`/`?`, which decides how day-of-month and day-of-week combine.
#[derive(Clone, Copy)]
struct Field {
    bits: u64,
    star: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `first_name`, `first_name + 1`, ...; matched case-insensitively.
    names: &'static [&'static str],
    first_name: u32,
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        first_name: 0,
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        first_name: 0,
    },
    FieldSpec {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        first_name: 0,
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
        first_name: 1,
    },
    FieldSpec {
        name: "day of week",
        min: 0,
        max: 6,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
        first_name: 0,
    },
];

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Schedule {}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Schedule {
    type Err = InvalidBudget;

    fn from_str(text: &str) -> Result<Self, InvalidBudget> {
        Self::parse(text).map_err(|e| InvalidBudget(format!("schedule `{text}`: {e}; {CRON_HINT}")))
    }
}

impl Schedule {
    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn parse(text: &str) -> Result<Self, String> {
        let spec = text.trim();
        if spec.is_empty() {
            return Err("is empty".into());
        }
        if spec.contains("TZ=") {
            return Err("time zones are not supported, schedules are always UTC".into());
        }
        let expanded = if spec.starts_with('@') {
            match spec {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                _ => return Err(format!("unknown descriptor `{spec}`")),
            }
        } else {
            spec
        };
        let texts: Vec<&str> = expanded.split_whitespace().collect();
        if texts.len() != FIELDS.len() {
            return Err(format!(
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}",
                texts.len()
            ));
        }
        let mut fields = [Field {
            bits: 0,
            star: false,
        }; 5];
        for ((field, text), spec) in fields.iter_mut().zip(&texts).zip(&FIELDS) {
            *field = parse_field(text, spec)?;
        }
        let rendered: Vec<String> = fields
            .iter()
            .zip(&FIELDS)
            .map(|(field, spec)| render_field(*field, spec))
            .collect();
        let cron = Cron::new(&rendered.join(" "))
            .parse()
            .map_err(|e| e.to_string())?;
        let [_, _, dom, month, dow] = fields;
        Ok(Self {
            text: text.to_owned(),
            cron,
            never_fires: never_fires(dom, month, dow),
        })
    }

    /// Karpenter's `IsActive`: the first hit strictly after `now − duration`
    /// is not after `now`, i.e. some hit lies in `(now − duration, now]`.
    fn is_active(&self, duration: Duration, now_unix_seconds: u64) -> bool {
        // Its cron search gives up after five years and returns the zero
        // time, which is "not after now": a schedule that never fires makes
        // the budget always active. Reproduced, and it errs restrictive.
        if self.never_fires {
            return true;
        }
        let Ok(now) = i64::try_from(now_unix_seconds) else {
            return true;
        };
        let checkpoint = now.saturating_sub(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX));
        let (Some(from), Some(first_candidate)) = (
            DateTime::<Utc>::from_timestamp(checkpoint, 0),
            DateTime::<Utc>::from_timestamp(checkpoint.saturating_add(1), 0),
        ) else {
            return true;
        };
        match self.cron.find_next_occurrence(&from, false) {
            Ok(hit) if hit.year() <= first_candidate.year() + 5 => hit.timestamp() <= now,
            _ => true,
        }
    }
}

/// robfig/cron's `getRange`, one comma-separated item at a time.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, String> {
    let mut field = Field {
        bits: 0,
        star: false,
    };
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((_, s)) if s.contains('/') => {
                return Err(format!("{} `{item}` has more than one `/`", spec.name));
            }
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let (start, mut end, mut star, single) = if range == "*" || range == "?" {
            (spec.min, spec.max, true, true)
        } else {
            match range.split_once('-') {
                Some((_, hi)) if hi.contains('-') => {
                    return Err(format!("{} `{item}` has more than one `-`", spec.name));
                }
                Some((lo, hi)) => (value(lo, spec)?, value(hi, spec)?, false, false),
                None => {
                    let v = value(range, spec)?;
                    (v, v, false, true)
                }
            }
        };
        let step = match step {
            None => 1,
            Some(s) => {
                let n =
                    number(s).ok_or_else(|| format!("{} step `{s}` is not a number", spec.name))?;
                // `N/step` means `N-max/step`.
                if single {
                    end = spec.max;
                }
                if n > 1 {
                    star = false;
                }
                n
            }
        };
        if start < spec.min {
            return Err(format!(
                "{} {start} is below the minimum {}",
                spec.name, spec.min
            ));
        }
        if end > spec.max {
            let note = if spec.max == 6 { " (Sunday is 0)" } else { "" };
            return Err(format!(
                "{} {end} is above the maximum {}{note}",
                spec.name, spec.max
            ));
        }
        if start > end {
            return Err(format!("{} range `{item}` starts after it ends", spec.name));
        }
        if step == 0 {
            return Err(format!("{} step in `{item}` must be positive", spec.name));
        }
        for v in (start..=end).step_by(step as usize) {
            field.bits |= 1 << v;
        }
        field.star |= star;
    }
    Ok(field)
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(spec.first_name + i as u32);
    }
    number(text).ok_or_else(|| {
        let names = match spec.names {
            [] => String::new(),
            names => format!(" or name ({}-{})", names[0], names[names.len() - 1]),
        };
        format!("{} `{text}` is not a number{names}", spec.name)
    })
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Croner treats exactly `*` as a wildcard for the day-of-month/day-of-week
/// combination and every other form as a list, so stars stay `*` and all
/// else becomes an explicit list.
fn render_field(field: Field, spec: &FieldSpec) -> String {
    if field.star {
        return "*".into();
    }
    (spec.min..=spec.max)
        .filter(|v| field.bits & (1 << v) != 0)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether no date ever matches. Only a restricted day of month combined
/// with a wildcard day of week (the days must then match both) can miss every
/// month; checked here so croner is never asked to search millennia.
fn never_fires(dom: Field, month: Field, dow: Field) -> bool {
    const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if dom.star || !dow.star {
        return false;
    }
    !(1..=12u32).any(|m| {
        month.bits & (1 << m) != 0
            && (1..=LONGEST[m as usize - 1]).any(|d| dom.bits & (1 << d) != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// 2024-01-15 is a Monday.
    fn at(day: u32, hour: u32, minute: u32) -> u64 {
        Utc.with_ymd_and_hms(2024, 1, day, hour, minute, 0)
            .unwrap()
            .timestamp() as u64
    }

    fn budget(nodes: &str) -> Budget {
        Budget::new(nodes.parse().unwrap())
    }

    fn scheduled(nodes: &str, schedule: &str, duration: Duration) -> Budget {
        Budget {
            window: Some(BudgetWindow::new(schedule.parse().unwrap(), duration).unwrap()),
            ..budget(nodes)
        }
    }

    fn for_reasons(nodes: &str, reasons: &[DisruptionReason]) -> Budget {
        Budget {
            reasons: reasons.to_vec(),
            ..budget(nodes)
        }
    }

    fn pool(budgets: Vec<Budget>) -> NodePool {
        let mut p = NodePool::new("default");
        p.disruption.budgets = budgets;
        p
    }

    fn nodes(total: u32) -> PoolCounts {
        PoolCounts {
            total,
            ..PoolCounts::default()
        }
    }

    fn allowed(p: &NodePool, reason: DisruptionReason, total: u32, now: u64) -> u32 {
        allowed_disruptions(p, reason, nodes(total), now).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn reasons_match_policy_codes() {
        for r in DisruptionReason::ALL {
            assert_eq!(DisruptionReason::from_name(r.name()), Some(r));
            assert_eq!(DisruptionReason::from_code(r.code()), Some(r));
            let report = budget_report(&NodePool::new("p"), nodes(1), 0);
            assert_eq!(report.get(r).reason, r);
        }
        assert_eq!(DisruptionReason::Drifted.code(), reason::DRIFTED);
        assert_eq!(DisruptionReason::from_name("drifted"), None);
    }

    #[test]
    fn default_is_ten_percent_rounded_up() {
        let p = NodePool::new("default");
        assert_eq!(allowed(&p, DisruptionReason::Empty, 25, at(15, 12, 0)), 3);
        assert_eq!(allowed(&p, DisruptionReason::Drifted, 10, at(15, 12, 0)), 1);
        assert_eq!(allowed(&p, DisruptionReason::Drifted, 1, at(15, 12, 0)), 1);
        assert_eq!(allowed(&p, DisruptionReason::Drifted, 0, at(15, 12, 0)), 0);
    }

    #[test]
    fn zero_blocks_and_counts_are_absolute() {
        let now = at(15, 12, 0);
        assert_eq!(
            allowed(&pool(vec![budget("0")]), DisruptionReason::Empty, 25, now),
            0
        );
        assert_eq!(
            allowed(&pool(vec![budget("0%")]), DisruptionReason::Empty, 25, now),
            0
        );
        assert_eq!(
            allowed(&pool(vec![budget("5")]), DisruptionReason::Empty, 100, now),
            5
        );
        assert_eq!(
            allowed(&pool(vec![budget("5")]), DisruptionReason::Empty, 2, now),
            5
        );
        assert_eq!(
            allowed(&pool(vec![budget("100%")]), DisruptionReason::Empty, 7, now),
            7
        );
    }

    #[test]
    fn most_restrictive_budget_wins() {
        let p = pool(vec![budget("50%"), budget("3"), budget("10%")]);
        let report = budget_report(&p, nodes(100), at(15, 12, 0));
        for r in report.reasons {
            assert_eq!((r.limit, r.limited_by, r.allowed), (3, Some(1), 3));
        }
        let report = budget_report(&p, nodes(20), at(15, 12, 0));
        assert_eq!(report.allowed(DisruptionReason::Empty), 2);
        assert_eq!(report.get(DisruptionReason::Empty).limited_by, Some(2));
    }

    #[test]
    fn reasons_filter_which_budgets_apply() {
        let drifted = for_reasons("0", &[DisruptionReason::Drifted]);
        let p = pool(vec![budget("10%"), drifted]);
        let now = at(15, 12, 0);
        assert_eq!(allowed(&p, DisruptionReason::Empty, 25, now), 3);
        assert_eq!(allowed(&p, DisruptionReason::Underutilized, 25, now), 3);
        assert_eq!(allowed(&p, DisruptionReason::Drifted, 25, now), 0);
    }

    #[test]
    fn no_applicable_budget_is_unbounded() {
        let now = at(15, 12, 0);
        let empty = pool(Vec::new());
        assert_eq!(allowed(&empty, DisruptionReason::Empty, 25, now), UNBOUNDED);
        let only_drift = for_reasons("1", &[DisruptionReason::Drifted]);
        let report = budget_report(&pool(vec![only_drift]), nodes(25), now);
        let empty_reason = report.get(DisruptionReason::Empty);
        assert_eq!(
            (empty_reason.limit, empty_reason.limited_by),
            (UNBOUNDED, None)
        );
        let counts = PoolCounts {
            total: 25,
            disrupting: 2,
            not_ready: 1,
        };
        assert_eq!(
            allowed_disruptions(&empty, DisruptionReason::Empty, counts, now),
            Ok(UNBOUNDED - 3)
        );
    }

    #[test]
    fn disrupting_and_not_ready_nodes_consume_budget() {
        let p = NodePool::new("default");
        let now = at(15, 12, 0);
        let counts = |disrupting, not_ready| PoolCounts {
            total: 25,
            disrupting,
            not_ready,
        };
        let got = |c| allowed_disruptions(&p, DisruptionReason::Empty, c, now).unwrap();
        assert_eq!(got(counts(1, 0)), 2);
        assert_eq!(got(counts(0, 1)), 2);
        assert_eq!(got(counts(1, 1)), 1);
        assert_eq!(got(counts(2, 2)), 0);
        assert_eq!(got(counts(10, 10)), 0);

        let report = budget_report(&p, counts(2, 0), now);
        let empty = report.get(DisruptionReason::Empty);
        assert_eq!((empty.limit, empty.allowed), (3, 1));
    }

    #[test]
    fn a_node_counts_once() {
        let mut c = PoolCounts::default();
        c.add_node(true, false);
        c.add_node(false, false);
        c.add_node(false, true);
        c.add_node(true, true);
        assert_eq!(
            c,
            PoolCounts {
                total: 4,
                disrupting: 2,
                not_ready: 1
            }
        );
        assert_eq!(c.consuming(), 3);
    }

    #[test]
    fn cron_window_opens_and_closes() {
        let p = pool(vec![budget("10%"), scheduled("0", "0 9 * * *", 8 * HOUR)]);
        let r = DisruptionReason::Underutilized;
        assert_eq!(at(15, 9, 0), 1_705_309_200);
        assert_eq!(allowed(&p, r, 25, at(15, 8, 59)), 3);
        assert_eq!(allowed(&p, r, 25, at(15, 9, 0)), 0);
        assert_eq!(allowed(&p, r, 25, at(15, 16, 59)), 0);
        assert_eq!(allowed(&p, r, 25, at(15, 16, 59) + 59), 0);
        assert_eq!(allowed(&p, r, 25, at(15, 17, 0)), 3);
        assert_eq!(allowed(&p, r, 25, at(16, 3, 0)), 3);
        let report = budget_report(&p, nodes(25), at(15, 12, 0));
        assert_eq!(report.get(r).limited_by, Some(1));
    }

    #[test]
    fn window_spanning_midnight_and_weekdays() {
        let p = pool(vec![scheduled("0", "0 22 * * mon-fri", 4 * HOUR)]);
        let r = DisruptionReason::Drifted;
        // Monday 22:00 to Tuesday 02:00.
        assert_eq!(allowed(&p, r, 10, at(15, 21, 59)), UNBOUNDED);
        assert_eq!(allowed(&p, r, 10, at(15, 23, 0)), 0);
        assert_eq!(allowed(&p, r, 10, at(16, 1, 59)), 0);
        assert_eq!(allowed(&p, r, 10, at(16, 2, 0)), UNBOUNDED);
        // Saturday the 20th has no window; Friday night's runs into it.
        assert_eq!(allowed(&p, r, 10, at(20, 1, 0)), 0);
        assert_eq!(allowed(&p, r, 10, at(20, 23, 0)), UNBOUNDED);
    }

    #[test]
    fn descriptors() {
        let r = DisruptionReason::Empty;
        for daily in ["@daily", "@midnight"] {
            let p = pool(vec![scheduled("0", daily, HOUR)]);
            assert_eq!(allowed(&p, r, 10, at(15, 0, 0)), 0);
            assert_eq!(allowed(&p, r, 10, at(15, 0, 59)), 0);
            assert_eq!(allowed(&p, r, 10, at(15, 1, 0)), UNBOUNDED);
            assert_eq!(allowed(&p, r, 10, at(15, 23, 59)), UNBOUNDED);
        }
        let hourly = pool(vec![scheduled("0", "@hourly", Duration::from_secs(600))]);
        assert_eq!(allowed(&hourly, r, 10, at(15, 13, 9)), 0);
        assert_eq!(allowed(&hourly, r, 10, at(15, 13, 10)), UNBOUNDED);
        // 2024-01-14 is a Sunday.
        let weekly = pool(vec![scheduled("0", "@weekly", 24 * HOUR)]);
        assert_eq!(allowed(&weekly, r, 10, at(14, 12, 0)), 0);
        assert_eq!(allowed(&weekly, r, 10, at(15, 12, 0)), UNBOUNDED);
        for spec in ["@monthly", "@yearly", "@annually"] {
            let p = pool(vec![scheduled("0", spec, 24 * HOUR)]);
            assert_eq!(allowed(&p, r, 10, at(1, 12, 0)), 0, "{spec}");
            assert_eq!(allowed(&p, r, 10, at(2, 12, 0)), UNBOUNDED, "{spec}");
        }
    }

    #[test]
    fn day_of_month_and_week_combine_like_karpenter() {
        let r = DisruptionReason::Empty;
        // Both restricted: either matches (Monday the 15th, or the 10th).
        let either = pool(vec![scheduled("0", "0 0 10 * mon", 24 * HOUR)]);
        assert_eq!(allowed(&either, r, 10, at(15, 12, 0)), 0);
        assert_eq!(allowed(&either, r, 10, at(10, 12, 0)), 0);
        assert_eq!(allowed(&either, r, 10, at(11, 12, 0)), UNBOUNDED);
        // `*/1` is a wildcard to Karpenter, so only Mondays match.
        let mondays = pool(vec![scheduled("0", "0 0 */1 * mon", 24 * HOUR)]);
        assert_eq!(allowed(&mondays, r, 10, at(15, 12, 0)), 0);
        assert_eq!(allowed(&mondays, r, 10, at(16, 12, 0)), UNBOUNDED);
        // `1-31` is a list, so every day matches.
        let every_day = pool(vec![scheduled("0", "0 0 1-31 * mon", 24 * HOUR)]);
        assert_eq!(allowed(&every_day, r, 10, at(16, 12, 0)), 0);
    }

    #[test]
    fn accepted_schedules() {
        for spec in [
            "*/15 * * * *",
            "0 9 * * MON-FRI",
            "0 9 ? jan,jul sun",
            "30 2 1-7 * *",
            "5/20 1-10/3 * * *",
            " 0  9 * * * ",
        ] {
            let schedule: Schedule = spec.parse().unwrap();
            assert_eq!(schedule.as_str(), spec);
        }
    }

    #[test]
    fn schedules_karpenter_rejects() {
        for spec in [
            "61 * * * *",
            "0 9 * * 7",
            "0 9 * * mon-sun",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 1#2",
            "0 0 0 * *",
            "0 0 1 13 *",
            "0 9 * *",
            "0 0 9 * * *",
            "@every 1h",
            "@DAILY",
            "CRON_TZ=Europe/Paris 0 9 * * *",
            "5-1 * * * *",
            "*/0 * * * *",
            "1,,2 * * * *",
            "",
        ] {
            assert!(
                spec.parse::<Schedule>().is_err(),
                "{spec:?} should be rejected"
            );
        }
    }

    #[test]
    fn an_invalid_cron_gets_a_useful_message() {
        let err = "61 * * * *".parse::<Schedule>().unwrap_err().to_string();
        assert!(err.starts_with("schedule `61 * * * *`: minute 61"), "{err}");
        assert!(err.contains("`0 9 * * mon-fri`"), "{err}");
    }

    #[test]
    fn windows_are_whole_minutes() {
        let daily: Schedule = "0 9 * * *".parse().unwrap();
        assert!(BudgetWindow::new(daily.clone(), Duration::from_secs(90)).is_err());
        let window = BudgetWindow::new(daily, Duration::from_secs(5400)).unwrap();
        assert_eq!(window.duration(), Duration::from_secs(5400));
        assert_eq!(window.schedule().to_string(), "0 9 * * *");
    }

    #[test]
    fn zero_duration_is_never_active() {
        let p = pool(vec![scheduled("0", "* * * * *", Duration::ZERO)]);
        assert_eq!(
            allowed(&p, DisruptionReason::Empty, 10, at(15, 9, 0)),
            UNBOUNDED
        );
    }

    #[test]
    fn a_schedule_that_never_fires_is_always_active() {
        let p = pool(vec![budget("10%"), scheduled("0", "0 0 30 2 *", HOUR)]);
        assert_eq!(allowed(&p, DisruptionReason::Empty, 25, at(15, 12, 0)), 0);
        // Leap days are found; a day of week makes the day of month optional.
        let leap = pool(vec![scheduled("0", "0 0 29 2 *", 24 * HOUR)]);
        let feb = |day| {
            Utc.with_ymd_and_hms(2024, 2, day, 12, 0, 0)
                .unwrap()
                .timestamp() as u64
        };
        assert_eq!(allowed(&leap, DisruptionReason::Empty, 25, feb(29)), 0);
        assert_eq!(
            allowed(&leap, DisruptionReason::Empty, 25, feb(28)),
            UNBOUNDED
        );
        // 2024-02-05 is a Monday.
        let or_monday = pool(vec![scheduled("0", "0 0 30 2 mon", 24 * HOUR)]);
        assert_eq!(allowed(&or_monday, DisruptionReason::Empty, 25, feb(5)), 0);
        assert_eq!(
            allowed(&or_monday, DisruptionReason::Empty, 25, feb(6)),
            UNBOUNDED
        );
    }

    #[test]
    fn invalid_nodes_are_errors() {
        for nodes in [
            "099%",
            "ten",
            "150%",
            "101%",
            "-1",
            "+1",
            "10.5%",
            "1.5",
            "%",
            "",
            " 5",
            "5 %",
            "1000%",
            "99999999999999999999",
        ] {
            let err = nodes.parse::<BudgetNodes>().unwrap_err();
            assert!(err.to_string().contains("nodes"), "{err}");
        }
        for (nodes, parsed) in [
            ("0", BudgetNodes::Count(0)),
            ("007", BudgetNodes::Count(7)),
            ("100%", BudgetNodes::Percent(100)),
            ("05%", BudgetNodes::Percent(5)),
            ("0%", BudgetNodes::Percent(0)),
            ("99%", BudgetNodes::Percent(99)),
            ("1000", BudgetNodes::Count(1000)),
        ] {
            assert_eq!(nodes.parse::<BudgetNodes>(), Ok(parsed), "{nodes:?}");
        }
        assert_eq!(BudgetNodes::Percent(10).to_string(), "10%");
        assert_eq!(BudgetNodes::Count(3).to_string(), "3");
    }

    #[test]
    fn too_many_budgets_fail_closed() {
        let p = pool(vec![budget("10%"); MAX_BUDGETS + 1]);
        assert_eq!(validate_budgets(&p).unwrap_err().budget, MAX_BUDGETS);
        let report = budget_report(&p, nodes(25), at(15, 12, 0));
        assert!(report.error.is_some());
        for r in report.reasons {
            assert_eq!((r.limit, r.limited_by, r.allowed), (0, None, 0));
        }
        assert_eq!(
            validate_budgets(&pool(vec![budget("10%"); MAX_BUDGETS])),
            Ok(())
        );
    }

    #[test]
    fn huge_counts_are_capped() {
        let p = pool(vec![budget("99999999999")]);
        assert_eq!(allowed(&p, DisruptionReason::Empty, 25, 0), UNBOUNDED);
    }
}
