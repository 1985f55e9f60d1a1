//! Reading a request document from JSON text.
//!
//! Every error names the field path and says what is wrong in plain words
//! (`offerings[3].vcpu: -4 is not a vCPU count; …`), as
//! `docs/policy-requests.md` promises, rather than serde's
//! "invalid value: integer `-4`, expected u32".

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_path_to_error::Segment;

use super::document::{
    CandidateRow, ConsolidationDocument, DocumentError, LaunchRow, MoveRow, NodePoolRow,
    OfferingRow, RequestDocument, SelectionDocument,
};

const DECISIONS: &str = "use instance-selection or consolidation-scoring";

/// Reads a request document: the JSON of `docs/policy-requests.md`.
///
/// The `decision` field is read first, then the text is parsed straight into
/// that decision's document, so field paths survive (an internally tagged
/// enum would buffer the document and lose them). Row limits are checked by
/// the documents' `to_request`.
pub fn parse_request(text: &str) -> Result<RequestDocument, DocumentError> {
    // JSON's first character decides the top-level type; serde would read
    // an array as a struct's fields in order.
    let first = text.trim_start().chars().next();
    if first.is_some_and(|c| c != '{') {
        return Err(error(
            "",
            format!("a request is a JSON object with a `decision` field; {DECISIONS}"),
        ));
    }
    let tag: Tag = read(text)?;
    match tag.decision.as_deref() {
        Some("instance-selection") => {
            let f: SelectionFile = read(text)?;
            Ok(RequestDocument::InstanceSelection(SelectionDocument {
                now_ms: f.now_ms,
                seed: f.seed,
                offerings: f.offerings,
                requests: f.requests,
            }))
        }
        Some("consolidation-scoring") => {
            let f: ConsolidationFile = read(text)?;
            Ok(RequestDocument::ConsolidationScoring(
                ConsolidationDocument {
                    now_ms: f.now_ms,
                    seed: f.seed,
                    candidates: f.candidates,
                    node_pools: f.node_pools,
                    moves: f.moves,
                },
            ))
        }
        Some(other) => Err(error(
            "decision",
            format!("unknown decision `{other}`; {DECISIONS}"),
        )),
        None => Err(error(
            "",
            format!("`decision` is required: say which decision the request is for; {DECISIONS}"),
        )),
    }
}

/// Just the decision; every other field is skipped.
#[derive(Deserialize)]
struct Tag {
    #[serde(default)]
    decision: Option<String>,
}

// The documents' fields plus `decision`. Kept in step with
// `SelectionDocument` and `ConsolidationDocument` by the round-trip test below.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectionFile {
    #[serde(rename = "decision")]
    _decision: IgnoredAny,
    #[serde(default)]
    now_ms: u64,
    #[serde(default)]
    seed: u64,
    offerings: Vec<OfferingRow>,
    requests: Vec<LaunchRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsolidationFile {
    #[serde(rename = "decision")]
    _decision: IgnoredAny,
    #[serde(default)]
    now_ms: u64,
    #[serde(default)]
    seed: u64,
    candidates: Vec<CandidateRow>,
    #[serde(default)]
    node_pools: Vec<NodePoolRow>,
    #[serde(default)]
    moves: Vec<MoveRow>,
}

fn error(path: impl Into<String>, message: String) -> DocumentError {
    DocumentError {
        path: path.into(),
        message,
    }
}

fn read<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(explain)?;
    de.end().map_err(|e| describe(String::new(), None, &e))?;
    Ok(value)
}

fn explain(e: serde_path_to_error::Error<serde_json::Error>) -> DocumentError {
    let segments: Vec<Segment> = e.path().iter().cloned().collect();
    let path = render(&segments);
    describe(path, Some(&segments), e.inner())
}

/// `offerings[3].vcpu`, or empty at the top level.
fn render(segments: &[Segment]) -> String {
    let mut path = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Unknown => path.push_str(if path.is_empty() { "?" } else { ".?" }),
        }
    }
    path
}

fn describe(path: String, segments: Option<&[Segment]>, e: &serde_json::Error) -> DocumentError {
    let (line, column) = (e.line(), e.column());
    let raw = e.to_string();
    let raw = raw
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&raw);
    let at = if line == 0 {
        String::new()
    } else {
        format!(" (line {line}, column {column})")
    };
    let message = match e.classify() {
        serde_json::error::Category::Data => plain(raw, segments.unwrap_or_default()),
        serde_json::error::Category::Eof => {
            format!("the JSON ends early: {raw}; check for a missing `]` or `}}`")
        }
        _ => format!("not valid JSON: {raw}"),
    };
    error(path, format!("{message}{at}"))
}

/// serde's message in plain words, using the field's meaning where known.
fn plain(raw: &str, segments: &[Segment]) -> String {
    if let Some(rest) = raw
        .strip_prefix("invalid value: ")
        .or_else(|| raw.strip_prefix("invalid type: "))
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        return mismatch(found, expected, segments);
    }
    if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((name, known)) = rest.split_once('`')
    {
        let known = known
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ");
        return if known.starts_with(", there are no fields") {
            format!("`{name}` is not a field here, and this object takes none")
        } else {
            format!("`{name}` is not a field here; the fields are {known}")
        };
    }
    if let Some(name) = raw
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("`{name}` is required");
    }
    if let Some(name) = raw
        .strip_prefix("duplicate field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("`{name}` is given twice");
    }
    raw.to_string()
}

/// A value of the wrong type or range.
fn mismatch(found: &str, expected: &str, segments: &[Segment]) -> String {
    let what = match meaning(segments) {
        Some(noun) => format!("a {noun}"),
        None => match field(segments) {
            Some(f) => format!("a valid `{f}`"),
            None => "valid here".to_string(),
        },
    };
    let number = found
        .strip_prefix("integer `")
        .or_else(|| found.strip_prefix("floating point `"))
        .and_then(|v| v.strip_suffix('`'));
    if let (Some(v), Some(max)) = (number, integer_max(expected)) {
        let fix = if v.starts_with('-') {
            "use a whole number, 0 or more".to_string()
        } else if found.starts_with("floating point") {
            "use a whole number".to_string()
        } else {
            format!("use a whole number up to {max}")
        };
        return format!("{v} is not {what}; {fix}");
    }
    let expected = if integer_max(expected).is_some() {
        "a whole number"
    } else {
        match expected {
            "f32" | "f64" => "a number",
            "a sequence" => "a list",
            e if e.starts_with("struct ") || e == "a map" => "an object",
            e => e,
        }
    };
    let found = if let Some(v) = number {
        v.to_string()
    } else if let Some(v) = found.strip_prefix("boolean `") {
        v.trim_end_matches('`').to_string()
    } else if found.starts_with("string ") {
        format!("the {found}")
    } else {
        match found {
            "sequence" => "a list".to_string(),
            "map" => "an object".to_string(),
            f => f.to_string(),
        }
    };
    match meaning(segments) {
        Some(noun) => format!("expected {expected} ({noun}), found {found}"),
        None => format!("expected {expected}, found {found}"),
    }
}

/// The largest value of an unsigned integer type serde names.
fn integer_max(expected: &str) -> Option<u64> {
    Some(match expected {
        "u8" => u8::MAX.into(),
        "u16" => u16::MAX.into(),
        "u32" => u32::MAX.into(),
        "u64" | "usize" => u64::MAX,
        _ => return None,
    })
}

/// The innermost field name on the path.
fn field(segments: &[Segment]) -> Option<&str> {
    segments.iter().rev().find_map(|s| match s {
        Segment::Map { key } => Some(key.as_str()),
        _ => None,
    })
}

/// What a numeric field holds, in words.
fn meaning(segments: &[Segment]) -> Option<&'static str> {
    if let (Some(Segment::Seq { .. }), Some("compatible")) = (segments.last(), field(segments)) {
        return Some("row number of `offerings`");
    }
    if !matches!(segments.last(), Some(Segment::Map { .. })) {
        return None;
    }
    Some(match field(segments)? {
        "vcpu" => "vCPU count",
        "gpus" => "GPU count",
        "memory_mib" | "alloc_memory_mib" => "memory size in MiB",
        "cpu_milli" | "alloc_cpu_milli" => "CPU amount in millicores",
        "pods" | "alloc_pods" | "pods_evicted" => "pod count",
        "nodes" => "node count",
        "picks" => "number of picks",
        "min" => "minimum count",
        "now_ms" => "time in milliseconds since the Unix epoch",
        "seed" => "seed",
        "age_seconds" | "expire_after_seconds" => "duration in seconds",
        "price_per_hour" | "replacement_price_per_hour" => "price in USD per hour",
        "cost_per_hour" | "savings_per_hour" => "USD per hour",
        "cpu_utilisation" | "memory_utilisation" => "utilisation from 0 to 1",
        "disruption_cost" => "disruption cost",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(offering: &str) -> String {
        format!(
            r#"{{"decision": "instance-selection", "offerings": [
                {{"instance_type": "m5.large", "vcpu": 2, "memory_mib": 8192,
                  "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.1}},
                {offering}],
              "requests": [{{"node_pool": "default"}}]}}"#
        )
    }

    fn err(text: &str) -> DocumentError {
        match parse_request(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn negative_count_names_the_path_in_plain_words() {
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpu": -4, "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert_eq!(e.path, "offerings[1].vcpu");
        assert!(
            e.message
                .starts_with("-4 is not a vCPU count; use a whole number, 0 or more (line 4"),
            "{e}"
        );
        assert!(!e.to_string().contains("expected u32"), "{e}");
    }

    #[test]
    fn wrong_types_say_what_was_expected_and_found() {
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpu": "4", "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert_eq!(e.path, "offerings[1].vcpu");
        assert!(
            e.message
                .starts_with(r#"expected a whole number (vCPU count), found the string "4""#),
            "{e}"
        );
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpu": 2.5, "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert!(
            e.message
                .starts_with("2.5 is not a vCPU count; use a whole number"),
            "{e}"
        );
        let e = err(&selection(
            r#"{"instance_type": 7, "vcpu": 2, "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert_eq!(e.path, "offerings[1].instance_type");
        assert!(e.message.starts_with("expected a string, found 7"), "{e}");
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpu": 5000000000, "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert!(
            e.message
                .starts_with("5000000000 is not a vCPU count; use a whole number up to 4294967295"),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpus": 4, "memory_mib": 16384,
                "zone": "us-east-1a", "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert_eq!(e.path, "offerings[1].vcpus");
        assert!(
            e.message
                .starts_with("`vcpus` is not a field here; the fields are `instance_type`"),
            "{e}"
        );
        let e = err(&selection(
            r#"{"instance_type": "m5.xlarge", "vcpu": 4, "memory_mib": 16384,
                "capacity_type": "spot", "price_per_hour": 0.2}"#,
        ));
        assert_eq!(e.path, "offerings[1]");
        assert!(e.message.starts_with("`zone` is required"), "{e}");
        let e = err(
            r#"{"decision": "instance-selection", "offerings": [], "requests": [], "extra": 1}"#,
        );
        assert_eq!(e.path, "extra");
    }

    #[test]
    fn decision_and_syntax_errors_say_what_to_do() {
        let e = err(r#"{"offerings": []}"#);
        assert!(e.message.contains("`decision` is required"), "{e}");
        let e = err(r#"{"decision": "scaling"}"#);
        assert_eq!(e.path, "decision");
        assert!(
            e.message
                .contains("instance-selection or consolidation-scoring")
        );
        let e = err("[1, 2]");
        assert!(e.message.starts_with("a request is a JSON object"), "{e}");
        let e = err("{\"decision\": \"instance-selection\",\n  \"offerings\": [}");
        assert!(e.message.contains("not valid JSON"), "{e}");
        assert!(e.message.contains("(line 2, column"), "{e}");
        let e = err(r#"{"decision": "instance-selection", "offerings": ["#);
        assert!(e.message.starts_with("the JSON ends early"), "{e}");
        let e = err(r#"{"decision": "consolidation-scoring", "candidates": []} x"#);
        assert!(e.message.contains("trailing characters"), "{e}");
    }

    #[test]
    fn consolidation_fields_are_read_with_paths() {
        let e = err(r#"{"decision": "consolidation-scoring", "candidates": [
            {"node": "a", "node_pool": "p", "instance_type": "m5.large",
             "capacity_type": "spot", "zone": "z", "price_per_hour": 0.1,
             "pods": -3, "reason": "Empty"}]}"#);
        assert_eq!(e.path, "candidates[0].pods");
        assert!(e.message.starts_with("-3 is not a pod count"), "{e}");
        let e = err(r#"{"decision": "instance-selection", "offerings": [],
            "requests": [{"node_pool": "p", "compatible": [0, -1]}]}"#);
        assert_eq!(e.path, "requests[0].compatible[1]");
        assert!(
            e.message
                .starts_with("-1 is not a row number of `offerings`"),
            "{e}"
        );
    }

    /// The parse-side mirrors take every field the documents have.
    #[test]
    fn documents_round_trip_through_the_parser() {
        for file in ["selection.json", "consolidation.json"] {
            let path = format!(
                "{}/../../examples/requests/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = parse_request(&text).unwrap();
            let again = serde_json::to_string(&doc).unwrap();
            let twice = parse_request(&again).unwrap();
            assert_eq!(
                serde_json::to_value(&doc).unwrap(),
                serde_json::to_value(&twice).unwrap()
            );
        }
        let full = RequestDocument::ConsolidationScoring(ConsolidationDocument {
            now_ms: 1,
            seed: 2,
            candidates: vec![CandidateRow {
                node: "a".into(),
                family: Some("m5".into()),
                category: Some("m".into()),
                architecture: Some("amd64".into()),
                disruption_cost: Some(1.0),
                ..CandidateRow::default()
            }],
            node_pools: vec![NodePoolRow::default()],
            moves: vec![MoveRow {
                removed: vec!["a".into()],
                replacement_price_per_hour: Some(0.1),
                reason: Some("Empty".into()),
                savings_per_hour: Some(0.1),
                pods_evicted: Some(1),
                disruption_cost: Some(1.0),
            }],
        });
        let text = serde_json::to_string(&full).unwrap();
        let back = parse_request(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
        let full = RequestDocument::InstanceSelection(SelectionDocument {
            now_ms: 1,
            seed: 2,
            offerings: vec![OfferingRow {
                family: Some("m5".into()),
                category: Some("m".into()),
                architecture: Some("amd64".into()),
                alloc_cpu_milli: Some(1),
                alloc_memory_mib: Some(1),
                ..OfferingRow::default()
            }],
            requests: vec![LaunchRow {
                compatible: Some(vec![0]),
                min_values: vec![super::super::document::MinValuesRow {
                    key: "k".into(),
                    min: 1,
                }],
                ..LaunchRow::default()
            }],
        });
        let text = serde_json::to_string(&full).unwrap();
        let back = parse_request(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
    }
}
