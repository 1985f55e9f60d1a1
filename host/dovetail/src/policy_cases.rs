//! `dovetail policy test POLICY --cases FILE`: golden cases for policy
//! authors. Each named case is a request (the row format of
//! `docs/policy-requests.md`, from a file or inline) and what the policy
//! must decide for it; every case runs through the real runtime, as
//! `policy test --input` does, and prints `PASS name` or `FAIL name: why`.
//! The format is in `docs/policy-cases.md`.
//!
//! The whole file is read and checked before any case runs, so a malformed
//! file (exit 2) never mixes with results (exit 1 on any failure).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::Result;
use dovetail_core::policy::document::RequestDocument;
use dovetail_core::policy::parse::parse_request;
use dovetail_core::policy::types::{
    ConsolidationContext, Decision, ErrorKind, PolicyError, ProposedMove, SelectionRequest,
    capacity,
};
use dovetail_policy::{LoadedPolicy, PolicyFailure};
use regex::Regex;
use serde::Deserialize;
use serde::de::Error as _;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::limits;
use crate::output::{self, outln};
use crate::policy_cmd::RunOpts;

/// A cases file that cannot be used: it names the file, the case and the
/// field. `dovetail` exits 2 for it, so CI can tell a broken file from a
/// failing policy (exit 1).
#[derive(Debug)]
pub struct MalformedCases {
    pub file: PathBuf,
    pub message: String,
}

impl fmt::Display for MalformedCases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cases file {}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for MalformedCases {}

/// The exit code for a failed command: 2 for a malformed cases file, else 1.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.is::<MalformedCases>()) {
        2
    } else {
        1
    }
}

/// The offering fields `first-pick` may name: the request rows' own.
const OFFERING_FIELDS: [&str; 14] = [
    "instance_type",
    "family",
    "category",
    "architecture",
    "vcpu",
    "memory_mib",
    "gpus",
    "alloc_cpu_milli",
    "alloc_memory_mib",
    "alloc_pods",
    "zone",
    "capacity_type",
    "price_per_hour",
    "available",
];

const EXPECTATIONS: &str = "picks, first-pick, approves, rejects, score-below, fails";

// ---- The file as written --------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    /// A path (relative to the cases file) or an inline request mapping.
    request: Value,
    #[serde(default)]
    config: Option<Value>,
    expect: Vec<RawExpect>,
}

/// One expectation: a mapping with exactly one of these keys. (The YAML
/// reader takes enums only as `!tags`, so this is a struct of options.)
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExpect {
    /// `~` for a launch request leaves it unchecked.
    picks: Option<Vec<Option<Vec<u32>>>>,
    first_pick: Option<Map<String, Value>>,
    approves: Option<Value>,
    rejects: Option<Value>,
    score_below: Option<ScoreBelowRaw>,
    fails: Option<Pattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreBelowRaw {
    node: String,
    than: String,
}

/// A regular expression, compiled as the file is read so a bad one is named
/// with its field.
#[derive(Clone)]
struct Pattern(Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        compile(&text).map(Pattern).map_err(D::Error::custom)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.0.as_str())
    }
}

fn compile(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| {
        // The regex crate's message spans lines (the pattern, a caret, the
        // cause); one line reads better in an error.
        let cause = e.to_string();
        let cause = cause
            .lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .map_or(cause.as_str(), |l| l.trim_start_matches("error: "));
        format!("`{text}` is not a valid regular expression: {cause}")
    })
}

// ---- Checked cases --------------------------------------------------------

/// A request ready to decide.
enum Built {
    Selection(SelectionRequest),
    Consolidation(ConsolidationContext, Vec<ProposedMove>),
}

impl Built {
    fn decision(&self) -> Decision {
        match self {
            Built::Selection(_) => Decision::InstanceSelection,
            Built::Consolidation(..) => Decision::ConsolidationScoring,
        }
    }
}

struct Case {
    name: String,
    /// `case 3 `name``, for errors.
    label: String,
    request: Rc<Built>,
    /// The policy's config for this case: the case's own, else `--config`.
    config: Option<String>,
    expect: Vec<Expect>,
}

/// One checked expectation; `at` is its place in the case, e.g. `expect[2]`.
struct Expect {
    at: String,
    kind: Kind,
}

enum Kind {
    Picks(Vec<Option<Vec<u32>>>),
    FirstPick {
        launch: usize,
        fields: Vec<(String, Value)>,
    },
    Verdict {
        approve: bool,
        index: usize,
        reason: Option<Pattern>,
    },
    ScoreBelow {
        node: usize,
        than: usize,
    },
    Fails(Pattern),
}

/// Reads and checks `file` and every request it names.
fn load(file: &Path, default_config: Option<&str>) -> Result<Vec<Case>> {
    let malformed = |message: String| MalformedCases {
        file: file.to_path_buf(),
        message,
    };
    let text = dovetail_input::read_text(file, "cases file", dovetail_input::caps::CASES)?;
    dovetail_input::check_yaml_depth(&text, dovetail_input::MAX_YAML_DEPTH)
        .map_err(|e| malformed(e.to_string()))?;
    let raw: RawFile =
        serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(&text))
            .map_err(|e| malformed(explain_yaml(&text, e)))?;
    if raw.cases.is_empty() {
        return Err(malformed(
            "`cases` is empty; give at least one case (see docs/policy-cases.md)".into(),
        )
        .into());
    }
    if raw.cases.len() > limits::POLICY_CASES {
        return Err(malformed(format!(
            "{} cases, more than the limit of {} (docs/limits.md); split them over several files",
            limits::count(raw.cases.len() as u64),
            limits::count(limits::POLICY_CASES as u64)
        ))
        .into());
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut files = RequestFiles::default();
    let mut names = HashMap::new();
    let mut cases = Vec::with_capacity(raw.cases.len());
    for (i, c) in raw.cases.into_iter().enumerate() {
        let label = format!("case {i} `{}`", c.name);
        let err = |message: String| malformed(format!("{label}: {message}"));
        if c.name.trim().is_empty() {
            return Err(
                malformed(format!("case {i}: `name` is empty; give each case a name")).into(),
            );
        }
        if let Some(first) = names.insert(c.name.clone(), i) {
            return Err(err(format!(
                "the name is also case {first}'s; give each case its own name"
            ))
            .into());
        }
        let request = files.get(dir, &c.request).map_err(err)?;
        let config = match &c.config {
            None => default_config.map(str::to_string),
            Some(v) => Some(v.to_string()),
        };
        if c.expect.is_empty() {
            return Err(err(
                "`expect` is empty; give at least one expectation, or the case could never fail"
                    .into(),
            )
            .into());
        }
        let expect = c
            .expect
            .into_iter()
            .enumerate()
            .map(|(j, e)| check_expect(&format!("expect[{j}]"), e, &request))
            .collect::<Result<Vec<_>, String>>()
            .map_err(err)?;
        cases.push(Case {
            label,
            name: c.name,
            request,
            config,
            expect,
        });
    }
    Ok(cases)
}

/// Requests read from files, each file once, within a total size.
#[derive(Default)]
struct RequestFiles {
    read: HashMap<PathBuf, Rc<Built>>,
    bytes: u64,
}

impl RequestFiles {
    fn get(&mut self, dir: &Path, spec: &Value) -> Result<Rc<Built>, String> {
        match spec {
            Value::String(rel) => {
                let path = dir.join(rel);
                if let Some(b) = self.read.get(&path) {
                    return Ok(b.clone());
                }
                let text =
                    dovetail_input::read_text(&path, "request", dovetail_input::caps::REQUEST)
                        .map_err(|e| format!("request {rel:?} (paths are relative to the cases file): {e}"))?;
                self.bytes += text.len() as u64;
                if self.bytes > limits::POLICY_CASES_REQUEST_BYTES {
                    return Err(format!(
                        "request {}: the request files of one cases file hold more than {} MiB in all (docs/limits.md); split the cases over several files",
                        path.display(),
                        limits::POLICY_CASES_REQUEST_BYTES >> 20
                    ));
                }
                let built = build(&text)
                    .map_err(|e| format!("request {}: not a valid request: {e}", path.display()))?;
                let built = Rc::new(built);
                self.read.insert(path, built.clone());
                Ok(built)
            }
            Value::Object(_) => {
                let built = build(&spec.to_string()).map_err(|e| {
                    // Line and column would point into the JSON made from
                    // the mapping, not into the cases file.
                    let e = e.to_string();
                    let e = match e.rfind(" (line ") {
                        Some(at) if e.ends_with(')') => e[..at].to_string(),
                        _ => e,
                    };
                    format!("request: not a valid request: {e}")
                })?;
                Ok(Rc::new(built))
            }
            _ => Err(
                "request: give a path to a request file (relative to the cases file) or the request as a mapping"
                    .into(),
            ),
        }
    }
}

/// Parses and builds a request as `policy test --input` and the controller's
/// documents do.
fn build(text: &str) -> Result<Built, dovetail_core::policy::document::DocumentError> {
    Ok(match parse_request(text)? {
        RequestDocument::InstanceSelection(doc) => Built::Selection(doc.to_request()?),
        RequestDocument::ConsolidationScoring(doc) => {
            let (ctx, moves) = doc.to_request()?;
            Built::Consolidation(ctx, moves)
        }
    })
}

fn check_expect(at: &str, raw: RawExpect, request: &Built) -> Result<Expect, String> {
    let given: Vec<&str> = [
        raw.picks.as_ref().map(|_| "picks"),
        raw.first_pick.as_ref().map(|_| "first-pick"),
        raw.approves.as_ref().map(|_| "approves"),
        raw.rejects.as_ref().map(|_| "rejects"),
        raw.score_below.as_ref().map(|_| "score-below"),
        raw.fails.as_ref().map(|_| "fails"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let name = match given.as_slice() {
        [one] => *one,
        [] => return Err(format!("{at}: empty; give one of {EXPECTATIONS}")),
        many => {
            return Err(format!(
                "{at}: gives {}; give one expectation per list item",
                many.join(" and ")
            ));
        }
    };
    let at = format!("{at}.{name}");
    let wrong = |wants: Decision| {
        format!(
            "{at}: the request is for {}, and `{name}` checks {wants}; use {} here",
            request.decision(),
            match request.decision() {
                Decision::InstanceSelection => "picks, first-pick or fails",
                Decision::ConsolidationScoring => "approves, rejects, score-below or fails",
            }
        )
    };
    let kind = if let Some(p) = raw.fails {
        Kind::Fails(p)
    } else if let Some(picks) = raw.picks {
        let Built::Selection(req) = request else {
            return Err(wrong(Decision::InstanceSelection));
        };
        if picks.len() != req.requests.len() {
            return Err(format!(
                "{at}: lists picks for {} launch requests; the request has {} (one list of offering rows each)",
                picks.len(),
                req.requests.len()
            ));
        }
        if picks.iter().all(Option::is_none) {
            return Err(format!(
                "{at}: every launch request is `~`, so nothing is checked; give the rows of at least one"
            ));
        }
        for (l, rows) in picks.iter().enumerate() {
            let Some(rows) = rows else { continue };
            if let Some(bad) = rows.iter().find(|&&r| r as usize >= req.offerings.len()) {
                return Err(format!(
                    "{at}[{l}]: row {bad} is past the request's {} offerings (rows count from 0)",
                    req.offerings.len()
                ));
            }
        }
        Kind::Picks(picks)
    } else if let Some(map) = raw.first_pick {
        let Built::Selection(req) = request else {
            return Err(wrong(Decision::InstanceSelection));
        };
        first_pick(&at, map, req)?
    } else if let Some(spec) = raw.score_below {
        let Built::Consolidation(ctx, _) = request else {
            return Err(wrong(Decision::ConsolidationScoring));
        };
        let row = |field: &str, node: &str| {
            candidate(ctx, node)
                .ok_or_else(|| format!("{at}.{field}: `{node}` is not a candidate in the request"))
        };
        Kind::ScoreBelow {
            node: row("node", &spec.node)?,
            than: row("than", &spec.than)?,
        }
    } else {
        let (approve, spec) = match (raw.approves, raw.rejects) {
            (Some(v), _) => (true, v),
            (_, Some(v)) => (false, v),
            _ => unreachable!("one expectation is given"),
        };
        let Built::Consolidation(ctx, moves) = request else {
            return Err(wrong(Decision::ConsolidationScoring));
        };
        let (index, reason) = move_ref(&at, &spec, ctx, moves)?;
        Kind::Verdict {
            approve,
            index,
            reason,
        }
    };
    Ok(Expect { at, kind })
}

fn first_pick(at: &str, map: Map<String, Value>, req: &SelectionRequest) -> Result<Kind, String> {
    let mut launch = 0usize;
    let mut fields = Vec::new();
    for (key, value) in map {
        if key == "launch" {
            launch = value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "{at}.launch: {value} is not a launch request's index; give 0 for the first"
                    )
                })?;
            if launch >= req.requests.len() {
                return Err(format!(
                    "{at}.launch: {launch} is past the request's {} launch requests (they count from 0)",
                    req.requests.len()
                ));
            }
            continue;
        }
        let Some(field) = OFFERING_FIELDS.iter().find(|f| **f == key) else {
            return Err(format!(
                "{at}.{key}: `{key}` is not an offering field; the fields are launch (which launch request, 0 by default), {}",
                OFFERING_FIELDS.join(", ")
            ));
        };
        let fits = match *field {
            "instance_type" | "family" | "category" | "architecture" | "zone" | "capacity_type" => {
                value.is_string()
            }
            "available" => value.is_boolean(),
            _ => value.is_number(),
        };
        if !fits {
            let wants = match *field {
                "available" => "true or false",
                "instance_type" | "family" | "category" | "architecture" | "zone"
                | "capacity_type" => "a string",
                _ => "a number",
            };
            return Err(format!("{at}.{key}: {value} is not {wants}"));
        }
        fields.push((key, value));
    }
    if fields.is_empty() {
        return Err(format!(
            "{at}: names no field to check; give one or more of {}",
            OFFERING_FIELDS.join(", ")
        ));
    }
    Ok(Kind::FirstPick { launch, fields })
}

fn candidate(ctx: &ConsolidationContext, node: &str) -> Option<usize> {
    let id = ctx.node_names.position(node)?;
    ctx.candidates.node.iter().position(|&n| n == id)
}

/// The move an `approves`/`rejects` names: a node (the move removing just
/// it), a list of nodes (the move removing just those), or a mapping with
/// `node`, `nodes` or `move` (its index) and an optional `reason` regex.
fn move_ref(
    at: &str,
    spec: &Value,
    ctx: &ConsolidationContext,
    moves: &[ProposedMove],
) -> Result<(usize, Option<Pattern>), String> {
    const FORMS: &str = "give a node, a list of nodes, or a mapping with `node`, `nodes` or `move` and an optional `reason`";
    let nodes_of = |v: &Value, at: &str| -> Result<Vec<String>, String> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{at}: {i} is not a node name"))
                })
                .collect(),
            _ => Err(format!("{at}: {v} does not name a move; {FORMS}")),
        }
    };
    let (by, reason) = match spec {
        Value::Object(m) => {
            let mut by = None;
            let mut reason = None;
            for (k, v) in m {
                let here = format!("{at}.{k}");
                match k.as_str() {
                    "node" | "nodes" | "move" if by.is_some() => {
                        return Err(format!(
                            "{at}: name the move once, by `node`, `nodes` or `move`"
                        ));
                    }
                    "node" | "nodes" => by = Some(Err(nodes_of(v, &here)?)),
                    "move" => {
                        let i = v
                            .as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| format!("{here}: {v} is not a move's index"))?;
                        if i >= moves.len() {
                            return Err(format!(
                                "{here}: {i} is past the request's {} moves (they count from 0)",
                                moves.len()
                            ));
                        }
                        by = Some(Ok(i));
                    }
                    "reason" => {
                        let text = v
                            .as_str()
                            .ok_or_else(|| format!("{here}: {v} is not a regular expression"))?;
                        reason = Some(Pattern(compile(text).map_err(|e| format!("{here}: {e}"))?));
                    }
                    _ => {
                        return Err(format!(
                            "{here}: `{k}` is not a field here; the fields are node, nodes, move, reason"
                        ));
                    }
                }
            }
            let by =
                by.ok_or_else(|| format!("{at}: says no move; add `node`, `nodes` or `move`"))?;
            (by, reason)
        }
        v => (Err(nodes_of(v, at)?), None),
    };
    let index = match by {
        Ok(i) => i,
        Err(nodes) => find_move(at, &nodes, ctx, moves)?,
    };
    Ok((index, reason))
}

fn node_name(ctx: &ConsolidationContext, row: u32) -> &str {
    ctx.node_names
        .get(ctx.candidates.node[row as usize] as usize)
}

fn removed_names(ctx: &ConsolidationContext, m: &ProposedMove) -> String {
    m.removed
        .iter()
        .map(|&r| node_name(ctx, r))
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_move(
    at: &str,
    nodes: &[String],
    ctx: &ConsolidationContext,
    moves: &[ProposedMove],
) -> Result<usize, String> {
    let mut want = Vec::with_capacity(nodes.len());
    for n in nodes {
        want.push(
            candidate(ctx, n)
                .ok_or_else(|| format!("{at}: `{n}` is not a candidate in the request"))?
                as u32,
        );
    }
    want.sort_unstable();
    let matching: Vec<usize> = moves
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            let mut r = m.removed.clone();
            r.sort_unstable();
            r == want
        })
        .map(|(i, _)| i)
        .collect();
    let what = nodes.join(", ");
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => {
            const SHOWN: usize = 10;
            let listed: Vec<String> = moves
                .iter()
                .take(SHOWN)
                .enumerate()
                .map(|(i, m)| format!("{i}: [{}]", removed_names(ctx, m)))
                .collect();
            let more = if moves.len() > SHOWN {
                format!(" and {} more", moves.len() - SHOWN)
            } else {
                String::new()
            };
            Err(format!(
                "{at}: no move removes exactly [{what}]; the request's moves remove {}{more}",
                if listed.is_empty() {
                    "nothing (it has none)".to_string()
                } else {
                    listed.join("; ")
                }
            ))
        }
        many => Err(format!(
            "{at}: moves {} all remove exactly [{what}]; name one with `move: {}`",
            many.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            many[0]
        )),
    }
}

/// A YAML error in plain words, naming the case by its name where it can.
fn explain_yaml(text: &str, e: serde_path_to_error::Error<serde_norway::Error>) -> String {
    let segments: Vec<Segment> = e.path().iter().cloned().collect();
    let inner = e.inner();
    let mut raw = inner.to_string();
    let mut path = String::new();
    for s in &segments {
        match s {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    // The reader's message starts with its own path (a prefix of ours) and
    // ends with the place.
    if let Some((head, rest)) = raw.split_once(": ")
        && !head.contains(' ')
        && path.starts_with(head)
    {
        raw = rest.to_string();
    }
    let place = inner.location().map(|l| {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(rest) = raw.strip_suffix(&suffix) {
            raw = rest.to_string();
        }
        format!(" (line {}, column {})", l.line(), l.column())
    });
    let message = plain_yaml(&raw);
    // `cases[2].expect[0]` → `case 2 `name`: expect[0]`.
    let (case, field) = match segments.as_slice() {
        [Segment::Map { key }, Segment::Seq { index }, ..] if key == "cases" => {
            let name = serde_norway::from_str::<serde_norway::Value>(text)
                .ok()
                .and_then(|v| {
                    v.get("cases")?
                        .get(*index)?
                        .get("name")?
                        .as_str()
                        .map(str::to_string)
                });
            let field = path
                .strip_prefix(&format!("cases[{index}]"))
                .unwrap_or("")
                .trim_start_matches('.');
            let case = match name {
                Some(n) => format!("case {index} `{n}`"),
                None => format!("case {index}"),
            };
            (Some(case), field.to_string())
        }
        _ => (None, path.clone()),
    };
    let mut out = String::new();
    if let Some(c) = case {
        out.push_str(&c);
        out.push_str(": ");
    }
    if !field.is_empty() {
        out.push_str(&field);
        out.push_str(": ");
    }
    out.push_str(&message);
    out.push_str(&place.unwrap_or_default());
    out
}

/// serde's wording for the common mistakes, in plain words.
fn plain_yaml(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((name, known)) = rest.split_once('`')
    {
        let known = known
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace('`', "");
        return format!("`{name}` is not a field here; the fields are {known}");
    }
    if let Some(name) = raw
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("`{name}` is required");
    }
    raw.to_string()
}

// ---- Running --------------------------------------------------------------

/// What one case found: the expectations that did not hold.
#[derive(serde::Serialize)]
struct Outcome {
    name: String,
    passed: bool,
    failures: Vec<String>,
}

/// The policy's results for one request.
enum Decided {
    Selection(Result<dovetail_core::policy::types::Selection, PolicyFailure>),
    Consolidation {
        ranking: Result<dovetail_core::policy::types::Ranking, PolicyFailure>,
        verdicts: Result<Vec<dovetail_core::policy::types::Verdict>, PolicyFailure>,
    },
}

pub fn run(policy: &Path, cases_file: &Path, opts: &RunOpts, json: bool) -> Result<()> {
    let out = output::stdout("the case results");
    let default_config = opts.config()?;
    let cases = load(cases_file, default_config.as_deref())?;
    let rt = opts.runtime()?;
    let bytes = LoadedPolicy::read_file(&rt, policy)?;
    let source = policy.display().to_string();
    let malformed = |message: String| MalformedCases {
        file: cases_file.to_path_buf(),
        message,
    };
    // Every config loaded and every case's decision checked before any
    // case runs: a file that does not fit the policy runs nothing.
    let mut loaded: HashMap<Option<String>, LoadedPolicy> = HashMap::new();
    for case in &cases {
        if !loaded.contains_key(&case.config) {
            let p = LoadedPolicy::load(&rt, &source, &bytes, case.config.as_deref()).map_err(
                |e| match (&case.config, &default_config) {
                    (Some(c), Some(d)) if c == d => opts.name_config(e),
                    (Some(_), _) if e.class == dovetail_policy::FailureClass::Config => {
                        malformed(format!(
                            "{}: config: the policy refuses it: {}",
                            case.label, e.detail
                        ))
                        .into()
                    }
                    _ => e.into(),
                },
            )?;
            loaded.insert(case.config.clone(), p);
        }
        let p = &loaded[&case.config];
        let decision = case.request.decision();
        if !p.implements(decision) {
            return Err(malformed(format!(
                "{}: the request is for {decision}, which policy {} does not implement (it is a {}); give the case a request for what the policy implements",
                case.label,
                p.label(),
                p.world()
            ))
            .into());
        }
    }
    let mut outcomes = Vec::with_capacity(cases.len());
    let mut label = String::new();
    for case in &cases {
        let p = &loaded[&case.config];
        label = p.label();
        let result = match &*case.request {
            Built::Selection(req) => Decided::Selection(p.select(req)),
            Built::Consolidation(ctx, moves) => Decided::Consolidation {
                ranking: p.rank(ctx),
                verdicts: p.approve(ctx, moves),
            },
        };
        let failures: Vec<String> = case
            .expect
            .iter()
            .filter_map(|e| check(e, &case.request, &result).map(|why| format!("{}: {why}", e.at)))
            .collect();
        let outcome = Outcome {
            name: case.name.clone(),
            passed: failures.is_empty(),
            failures,
        };
        if !json {
            if outcome.passed {
                outln!(out, "PASS {}", outcome.name)?;
            } else {
                outln!(
                    out,
                    "FAIL {}: {}",
                    outcome.name,
                    outcome.failures.join("; ")
                )?;
            }
        }
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let passed = outcomes.len() - failed;
    if json {
        let report = serde_json::json!({
            "policy": label,
            "cases_file": cases_file.display().to_string(),
            "passed": passed,
            "failed": failed,
            "cases": outcomes,
        });
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(out, "{passed} passed, {failed} failed")?;
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} cases failed for {label} ({})",
            outcomes.len(),
            cases_file.display()
        );
    }
    Ok(())
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::NoAcceptableOffering => "no-acceptable-offering",
        ErrorKind::Unsatisfiable => "unsatisfiable",
        ErrorKind::Internal => "internal",
    }
}

/// A launch request's error as `fails` matches it: `kind: message`.
fn error_text(e: &PolicyError) -> String {
    format!("{}: {}", kind_name(e.kind), e.message)
}

fn rows(r: &[u32]) -> String {
    format!(
        "[{}]",
        r.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// Why `e` does not hold for `result`, or `None` when it does.
fn check(e: &Expect, request: &Built, result: &Decided) -> Option<String> {
    match (&e.kind, request, result) {
        (Kind::Fails(re), _, Decided::Selection(r)) => {
            let texts: Vec<String> = match r {
                Err(f) => vec![f.to_string()],
                Ok(sel) => sel
                    .iter()
                    .filter_map(|l| l.as_ref().err().map(error_text))
                    .collect(),
            };
            fails(re, &texts, "it picked offerings for every launch request")
        }
        (Kind::Fails(re), _, Decided::Consolidation { ranking, verdicts }) => {
            let texts: Vec<String> = [ranking.as_ref().err(), verdicts.as_ref().err()]
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            fails(re, &texts, "rank and approve both succeeded")
        }
        (Kind::Picks(want), Built::Selection(_), Decided::Selection(r)) => {
            let sel = match r {
                Ok(sel) => sel,
                Err(f) => return Some(format!("the policy failed: {f}")),
            };
            let wrong: Vec<String> = want
                .iter()
                .zip(sel)
                .enumerate()
                .filter_map(|(l, (want, got))| match (want, got) {
                    (None, _) => None,
                    (Some(want), Ok(got)) if got == want => None,
                    (Some(want), Ok(got)) => Some(format!(
                        "launch {l}: expected rows {}, got {}",
                        rows(want),
                        rows(got)
                    )),
                    (Some(want), Err(err)) => Some(format!(
                        "launch {l}: expected rows {}, the policy returned an error: {}",
                        rows(want),
                        error_text(err)
                    )),
                })
                .collect();
            (!wrong.is_empty()).then(|| wrong.join(", "))
        }
        (Kind::FirstPick { launch, fields }, Built::Selection(req), Decided::Selection(r)) => {
            let sel = match r {
                Ok(sel) => sel,
                Err(f) => return Some(format!("the policy failed: {f}")),
            };
            let picks = match &sel[*launch] {
                Ok(p) => p,
                Err(err) => {
                    return Some(format!(
                        "launch {launch}: the policy returned an error: {}",
                        error_text(err)
                    ));
                }
            };
            let Some(&row) = picks.first() else {
                return Some(format!("launch {launch}: the policy picked nothing"));
            };
            let actual = offering(req, row as usize);
            let wrong: Vec<String> = fields
                .iter()
                .filter_map(|(k, want)| {
                    let got = &actual[k.as_str()];
                    let same = match (want.as_f64(), got.as_f64()) {
                        (Some(a), Some(b)) => a == b,
                        _ => want == got,
                    };
                    (!same).then(|| format!("{k} is {got}, expected {want}"))
                })
                .collect();
            (!wrong.is_empty()).then(|| {
                format!(
                    "launch {launch}'s first pick is row {row} ({} {} {}): {}",
                    actual["instance_type"].as_str().unwrap_or(""),
                    actual["zone"].as_str().unwrap_or(""),
                    actual["capacity_type"].as_str().unwrap_or(""),
                    wrong.join(", ")
                )
            })
        }
        (
            Kind::Verdict {
                approve,
                index,
                reason,
            },
            Built::Consolidation(ctx, moves),
            Decided::Consolidation { verdicts, .. },
        ) => {
            let verdicts = match verdicts {
                Ok(v) => v,
                Err(f) => return Some(format!("approve failed: {f}")),
            };
            let v = &verdicts[*index];
            let what = format!(
                "move {index} (removes {})",
                removed_names(ctx, &moves[*index])
            );
            let said = |a: bool| if a { "approved" } else { "rejected" };
            if v.approve != *approve {
                return Some(format!(
                    "expected {what} {}; it was {}: {:?}",
                    said(*approve),
                    said(v.approve),
                    v.reason
                ));
            }
            match reason {
                Some(re) if !re.0.is_match(&v.reason) => Some(format!(
                    "{what} was {} as expected, but its reason {:?} does not match {re}",
                    said(v.approve),
                    v.reason
                )),
                _ => None,
            }
        }
        (
            Kind::ScoreBelow { node, than },
            Built::Consolidation(ctx, _),
            Decided::Consolidation { ranking, .. },
        ) => {
            let ranking = match ranking {
                Ok(r) => r,
                Err(f) => return Some(format!("rank failed: {f}")),
            };
            let name = |r: usize| node_name(ctx, r as u32);
            let show = |s: Option<f64>| s.map_or("excluded".to_string(), |v| v.to_string());
            let (a, b) = (ranking[*node], ranking[*than]);
            // Lower goes first; an excluded node goes after every scored one.
            let below = match (a, b) {
                (Some(a), Some(b)) => a < b,
                (Some(_), None) => true,
                (None, _) => false,
            };
            (!below).then(|| {
                format!(
                    "expected {}'s score below {}'s; got {} and {}",
                    name(*node),
                    name(*than),
                    show(a),
                    show(b)
                )
            })
        }
        // Checked against the request as the file was read.
        _ => unreachable!("an expectation is checked only against its own decision"),
    }
}

fn fails(re: &Pattern, texts: &[String], none: &str) -> Option<String> {
    if texts.iter().any(|t| re.0.is_match(t)) {
        return None;
    }
    Some(if texts.is_empty() {
        format!("expected the policy to fail matching {re}; {none}")
    } else {
        format!(
            "expected the policy to fail matching {re}; it failed with {}",
            texts
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Offering `i` of `req` as a row, with every field resolved (family,
/// category and architecture as the dictionaries hold them).
fn offering(req: &SelectionRequest, i: usize) -> Value {
    let o = &req.offerings;
    let d = &req.dictionaries;
    let t = o.instance_type[i];
    serde_json::json!({
        "instance_type": d.instance_type(t),
        "family": d.family_of(t),
        "category": d.category_of(t),
        "architecture": d.architecture_of(t),
        "vcpu": o.vcpu[i],
        "memory_mib": o.memory_mib[i],
        "gpus": o.gpus[i],
        "alloc_cpu_milli": o.alloc_cpu_milli[i],
        "alloc_memory_mib": o.alloc_memory_mib[i],
        "alloc_pods": o.alloc_pods[i],
        "zone": d.zones.get(o.zone[i] as usize),
        "capacity_type": capacity::name(o.capacity_type[i]),
        "price_per_hour": o.price_per_hour[i],
        "available": o.available[i],
    })
}
