//! `docs/aws-iam.md` lists exactly the AWS actions the adapter calls: every
//! SDK operation called in `host/aws/src` is in its table, and every action
//! in the table (but those marked implied) is called somewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(action, implied)` for each row of the doc's table.
fn documented() -> Vec<(String, bool)> {
    let doc = std::fs::read_to_string(root().join("docs/aws-iam.md")).expect("docs/aws-iam.md");
    doc.lines()
        .filter_map(|l| {
            let cell = l.strip_prefix("| `")?;
            let (action, rest) = cell.split_once('`')?;
            let implied = rest.split('|').next()?.contains("(implied)");
            Some((action.to_string(), implied))
        })
        .collect()
}

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read host/aws/src") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // Test scaffolding (feature `testing`), not in the controller.
            && path.file_name().is_none_or(|n| n != "testing.rs")
        {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
            out.push('\n');
        }
    }
}

/// `service:Action` of every SDK operation the adapter's code calls: the
/// fluent builders are called as `<client>.<operation>()` on a client
/// field named after its service.
fn called() -> BTreeSet<String> {
    let mut code = String::new();
    sources(&root().join("host/aws/src"), &mut code);
    // One space between words, none around a `.`, so chains split over
    // lines read `client.operation()`.
    let code = code
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" .", ".")
        .replace(". ", ".");
    let mut out = BTreeSet::new();
    for service in ["ec2", "ssm", "sqs", "iam", "pricing"] {
        let needle = format!("{service}.");
        let mut rest = code.as_str();
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + needle.len()..];
            // `clients.ec2.x()`, `self.ec2.x()`, `ec2.x()`; not `fooec2.x()`.
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name.is_empty() || !rest[name.len()..].starts_with("()") {
                continue;
            }
            if matches!(name.as_str(), "clone" | "config") {
                continue;
            }
            let pascal: String = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            out.insert(format!("{service}:{pascal}"));
        }
    }
    out
}

/// The IAM action that allows an API call: batch forms are allowed by their
/// single-message actions.
fn iam_action(call: &str) -> &str {
    match call {
        "sqs:DeleteMessageBatch" => "sqs:DeleteMessage",
        other => other,
    }
}

#[test]
fn every_call_the_adapter_makes_is_documented() {
    let doc: BTreeSet<String> = documented().into_iter().map(|(a, _)| a).collect();
    let calls = called();
    assert!(
        calls.contains("ec2:CreateFleet") && calls.contains("ec2:TerminateInstances"),
        "the scan found the adapter's calls: {calls:?}"
    );
    let missing: Vec<&String> = calls
        .iter()
        .filter(|c| !doc.contains(iam_action(c)))
        .collect();
    assert!(
        missing.is_empty(),
        "host/aws calls {missing:?}, which docs/aws-iam.md does not list: add each with its resources and conditions"
    );
}

#[test]
fn every_documented_action_is_called() {
    let calls: BTreeSet<String> = called().iter().map(|c| iam_action(c).to_string()).collect();
    let unused: Vec<String> = documented()
        .into_iter()
        .filter(|(a, implied)| !implied && !calls.contains(a))
        .map(|(a, _)| a)
        .collect();
    assert!(
        unused.is_empty(),
        "docs/aws-iam.md grants {unused:?}, which host/aws never calls: remove them (least privilege)"
    );
}

#[test]
fn the_policy_document_grants_what_the_table_lists() {
    let doc = std::fs::read_to_string(root().join("docs/aws-iam.md")).unwrap();
    let json = doc
        .split("```json")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a JSON policy in docs/aws-iam.md");
    let policy: serde_json::Value = serde_json::from_str(json).expect("the policy is JSON");
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        match &statement["Action"] {
            serde_json::Value::String(a) => {
                granted.insert(a.clone());
            }
            serde_json::Value::Array(list) => {
                granted.extend(list.iter().map(|a| a.as_str().unwrap().to_string()));
            }
            other => panic!("unexpected Action {other}"),
        }
        // No wildcard actions.
        assert!(!statement["Action"].to_string().contains('*'));
    }
    let table: BTreeSet<String> = documented().into_iter().map(|(a, _)| a).collect();
    assert_eq!(granted, table);
}
