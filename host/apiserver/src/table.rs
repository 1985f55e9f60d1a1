//! Server-side Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), so
//! `kubectl get` shows the columns it shows against a real cluster, including a CRD's printer
//! columns.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resource::ResourceInfo;

/// The Table API version a request's `Accept` header asks for, if any.
pub fn requested(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if !has("as=Table") || !has("g=meta.k8s.io") {
            return None;
        }
        if has("v=v1") {
            Some("meta.k8s.io/v1")
        } else if has("v=v1beta1") {
            Some("meta.k8s.io/v1beta1")
        } else {
            None
        }
    })
}

/// Kubernetes' `HumanDuration`, as in the AGE column.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    let ts = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str);
    match ts.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => json!(human_duration((now - t.with_timezone(&Utc)).num_seconds())),
        None => json!("<unknown>"),
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn n(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: &str) -> Value {
    json!(if v.is_empty() { "<none>" } else { v })
}

fn col(name: &str, kind: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({ "name": name, "type": kind, "format": format, "description": "", "priority": priority })
}

fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let reason = s(pod, "/status/reason");
    if !reason.is_empty() {
        return reason.into();
    }
    let waiting = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
    waiting
        .map(str::to_string)
        .unwrap_or_else(|| s(pod, "/status/phase").to_string())
}

fn list_len(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| match c["status"].as_str() {
            Some("True") => "Ready",
            Some("False") => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_string()
    }
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    roles.sort();
    roles.join(",")
}

fn containers_and_images(template_spec: &Value) -> (String, String) {
    let cs = template_spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn selector_text(sel: &Value) -> String {
    sel.get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// One step of a printer column's JSONPath.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[?(@.key=="value")]`: the first element whose `key` is `value`.
    Filter {
        key: Vec<String>,
        value: String,
    },
}

/// The steps of a CRD printer column's JSONPath, as Karpenter's CRDs write
/// them: `.status.replicas`, `.spec.x[0].y`, an escaped dot inside a label
/// key (`.metadata.labels.karpenter\.sh/nodepool`) and a filter on a
/// condition list (`.status.conditions[?(@.type=="Ready")].status`).
/// `None` for anything else.
fn json_path_steps(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut field = String::new();
    let mut chars = path.chars();
    let end_field = |field: &mut String, steps: &mut Vec<Step>| {
        if !field.is_empty() {
            steps.push(Step::Field(std::mem::take(field)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.push(chars.next()?),
            '.' => end_field(&mut field, &mut steps),
            '[' => {
                end_field(&mut field, &mut steps);
                let mut inner = String::new();
                let mut quote = None;
                loop {
                    let c = chars.next()?;
                    match (quote, c) {
                        (None, ']') => break,
                        (None, '"' | '\'') => quote = Some(c),
                        (Some(q), c) if c == q => quote = None,
                        _ => {}
                    }
                    inner.push(c);
                }
                steps.push(bracket(&inner)?);
            }
            c => field.push(c),
        }
    }
    end_field(&mut field, &mut steps);
    Some(steps)
}

fn bracket(inner: &str) -> Option<Step> {
    if let Ok(i) = inner.trim().parse() {
        return Some(Step::Index(i));
    }
    let filter = inner.trim().strip_prefix("?(")?.strip_suffix(')')?;
    let (key, value) = filter.split_once("==")?;
    let key = key.trim().strip_prefix("@.")?;
    let value = value.trim();
    let value = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(value);
    Some(Step::Filter {
        key: key.split('.').map(str::to_owned).collect(),
        value: value.to_owned(),
    })
}

/// Evaluates a CRD printer column's JSONPath; the first match, as the API
/// server prints it.
fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for step in json_path_steps(path)? {
        cur = match step {
            Step::Field(f) => cur.get(f)?,
            Step::Index(i) => cur.get(i)?,
            Step::Filter { key, value } => cur.as_array()?.iter().find(|item| {
                let found = key.iter().try_fold(*item, |v, k| v.get(k));
                match found {
                    Some(Value::String(s)) => *s == value,
                    Some(Value::Number(n)) => value.parse::<f64>().ok() == n.as_f64(),
                    Some(Value::Bool(b)) => value.parse::<bool>() == Ok(*b),
                    _ => false,
                }
            })?,
        };
    }
    Some(cur)
}

/// Computes one row's cells from an object and the current time.
type Cells = Box<dyn Fn(&Value, DateTime<Utc>) -> Vec<Value>>;
type Columns = (Vec<Value>, Cells);

fn columns(res: &ResourceInfo) -> Columns {
    let name = |o: &Value| json!(s(o, "/metadata/name"));
    if !res.builtin {
        let defs: Vec<Value> = if res.printer_columns.is_empty() {
            vec![
                json!({ "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" }),
            ]
        } else {
            res.printer_columns.clone()
        };
        let mut cols = vec![col("Name", "string", 0)];
        cols.extend(defs.iter().map(|d| {
            json!({
                "name": d["name"], "type": d["type"], "format": d.get("format").cloned().unwrap_or(json!("")),
                "description": d.get("description").cloned().unwrap_or(json!("")),
                "priority": d.get("priority").cloned().unwrap_or(json!(0)),
            })
        }));
        return (
            cols,
            Box::new(move |o, now| {
                let mut cells = vec![name(o)];
                for d in &defs {
                    let path = d["jsonPath"].as_str().unwrap_or("");
                    let v = json_path(o, path).cloned().unwrap_or(Value::Null);
                    cells.push(match (d["type"].as_str(), &v) {
                        (Some("date"), Value::String(t)) => match DateTime::parse_from_rfc3339(t) {
                            Ok(t) => {
                                json!(human_duration((now - t.with_timezone(&Utc)).num_seconds()))
                            }
                            Err(_) => v.clone(),
                        },
                        _ => v,
                    });
                }
                cells
            }),
        );
    }
    let (defs, f): (Vec<(&str, &str, u8)>, Cells) = match (res.group.as_str(), res.plural.as_str())
    {
        ("", "pods") => (
            vec![
                ("Name", "string", 0),
                ("Ready", "string", 0),
                ("Status", "string", 0),
                ("Restarts", "string", 0),
                ("Age", "string", 0),
                ("IP", "string", 1),
                ("Node", "string", 1),
                ("Nominated Node", "string", 1),
                ("Readiness Gates", "string", 1),
            ],
            Box::new(move |o, now| {
                let statuses = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array);
                let ready = statuses
                    .into_iter()
                    .flatten()
                    .filter(|c| c["ready"] == true)
                    .count();
                let restarts: i64 = statuses
                    .into_iter()
                    .flatten()
                    .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                    .sum();
                vec![
                    name(o),
                    json!(format!("{ready}/{}", list_len(o, "/spec/containers"))),
                    json!(pod_status(o)),
                    json!(restarts.to_string()),
                    age(o, now),
                    or_none(s(o, "/status/podIP")),
                    or_none(s(o, "/spec/nodeName")),
                    or_none(s(o, "/status/nominatedNodeName")),
                    json!("<none>"),
                ]
            }),
        ),
        ("", "nodes") => (
            vec![
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Roles", "string", 0),
                ("Age", "string", 0),
                ("Version", "string", 0),
                ("Internal-IP", "string", 1),
                ("External-IP", "string", 1),
                ("OS-Image", "string", 1),
                ("Kernel-Version", "string", 1),
                ("Container-Runtime", "string", 1),
            ],
            Box::new(move |o, now| {
                let addr = |t: &str| {
                    o.pointer("/status/addresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .find(|a| a["type"] == t)
                        .and_then(|a| a["address"].as_str())
                        .unwrap_or("")
                        .to_string()
                };
                vec![
                    name(o),
                    json!(node_status(o)),
                    or_none(&node_roles(o)),
                    age(o, now),
                    json!(s(o, "/status/nodeInfo/kubeletVersion")),
                    or_none(&addr("InternalIP")),
                    or_none(&addr("ExternalIP")),
                    json!(s(o, "/status/nodeInfo/osImage")),
                    json!(s(o, "/status/nodeInfo/kernelVersion")),
                    json!(s(o, "/status/nodeInfo/containerRuntimeVersion")),
                ]
            }),
        ),
        ("", "namespaces") => (
            vec![
                ("Name", "string", 0),
                ("Status", "string", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| vec![name(o), json!(s(o, "/status/phase")), age(o, now)]),
        ),
        ("", "configmaps") => (
            vec![
                ("Name", "string", 0),
                ("Data", "integer", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                let count = |p: &str| {
                    o.pointer(p)
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                };
                vec![
                    name(o),
                    json!(count("/data") + count("/binaryData")),
                    age(o, now),
                ]
            }),
        ),
        ("", "secrets") => (
            vec![
                ("Name", "string", 0),
                ("Type", "string", 0),
                ("Data", "integer", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                let data = o
                    .pointer("/data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
                vec![name(o), json!(s(o, "/type")), json!(data), age(o, now)]
            }),
        ),
        ("apps", "deployments") => (
            vec![
                ("Name", "string", 0),
                ("Ready", "string", 0),
                ("Up-to-date", "integer", 0),
                ("Available", "integer", 0),
                ("Age", "string", 0),
                ("Containers", "string", 1),
                ("Images", "string", 1),
                ("Selector", "string", 1),
            ],
            Box::new(move |o, now| {
                let (containers, images) = containers_and_images(&o["spec"]["template"]["spec"]);
                vec![
                    name(o),
                    json!(format!(
                        "{}/{}",
                        n(o, "/status/readyReplicas"),
                        n(o, "/spec/replicas")
                    )),
                    json!(n(o, "/status/updatedReplicas")),
                    json!(n(o, "/status/availableReplicas")),
                    age(o, now),
                    json!(containers),
                    json!(images),
                    json!(selector_text(&o["spec"]["selector"])),
                ]
            }),
        ),
        ("apps", "replicasets") => (
            vec![
                ("Name", "string", 0),
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                vec![
                    name(o),
                    json!(n(o, "/spec/replicas")),
                    json!(n(o, "/status/replicas")),
                    json!(n(o, "/status/readyReplicas")),
                    age(o, now),
                ]
            }),
        ),
        ("apps", "daemonsets") => (
            vec![
                ("Name", "string", 0),
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                ("Up-to-date", "integer", 0),
                ("Available", "integer", 0),
                ("Node Selector", "string", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                let selector = o
                    .pointer("/spec/template/spec/nodeSelector")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                vec![
                    name(o),
                    json!(n(o, "/status/desiredNumberScheduled")),
                    json!(n(o, "/status/currentNumberScheduled")),
                    json!(n(o, "/status/numberReady")),
                    json!(n(o, "/status/updatedNumberScheduled")),
                    json!(n(o, "/status/numberAvailable")),
                    or_none(&selector),
                    age(o, now),
                ]
            }),
        ),
        ("policy", "poddisruptionbudgets") => (
            vec![
                ("Name", "string", 0),
                ("Min Available", "string", 0),
                ("Max Unavailable", "string", 0),
                ("Allowed Disruptions", "integer", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                let text = |p: &str| match o.pointer(p) {
                    Some(Value::String(v)) => json!(v),
                    Some(Value::Number(v)) => json!(v.to_string()),
                    _ => json!("N/A"),
                };
                vec![
                    name(o),
                    text("/spec/minAvailable"),
                    text("/spec/maxUnavailable"),
                    json!(n(o, "/status/disruptionsAllowed")),
                    age(o, now),
                ]
            }),
        ),
        ("", "events") => (
            vec![
                ("Last Seen", "string", 0),
                ("Type", "string", 0),
                ("Reason", "string", 0),
                ("Object", "string", 0),
                ("Subobject", "string", 1),
                ("Source", "string", 1),
                ("Message", "string", 0),
                ("First Seen", "string", 1),
                ("Count", "integer", 1),
                ("Name", "string", 1),
            ],
            Box::new(move |o, now| {
                let since = |pointer: &str| {
                    let t = s(o, pointer);
                    DateTime::parse_from_rfc3339(t)
                        .ok()
                        .map(|t| human_duration((now - t.with_timezone(&Utc)).num_seconds()))
                };
                let first = since("/firstTimestamp").or_else(|| since("/eventTime"));
                let mut last = since("/lastTimestamp").or_else(|| first.clone());
                let mut count = n(o, "/count").max(1);
                if o.pointer("/series").is_some_and(|v| !v.is_null()) {
                    last = since("/series/lastObservedTime");
                    count = n(o, "/series/count");
                }
                let kind = s(o, "/involvedObject/kind").to_lowercase();
                let target = match s(o, "/involvedObject/name") {
                    "" => kind,
                    object => format!("{kind}/{object}"),
                };
                let source = match (
                    s(o, "/source/component"),
                    s(o, "/reportingComponent"),
                    s(o, "/source/host"),
                    s(o, "/reportingInstance"),
                ) {
                    ("", "", ..) => String::new(),
                    (c, r, h, i) => {
                        let component = if c.is_empty() { r } else { c };
                        let host = if h.is_empty() { i } else { h };
                        if host.is_empty() {
                            component.to_string()
                        } else {
                            format!("{component}, {host}")
                        }
                    }
                };
                let unknown = || "<unknown>".to_string();
                vec![
                    json!(last.unwrap_or_else(unknown)),
                    json!(s(o, "/type")),
                    json!(s(o, "/reason")),
                    json!(target),
                    json!(s(o, "/involvedObject/fieldPath")),
                    json!(source),
                    json!(s(o, "/message").trim()),
                    json!(first.unwrap_or_else(unknown)),
                    json!(count),
                    name(o),
                ]
            }),
        ),
        ("coordination.k8s.io", "leases") => (
            vec![
                ("Name", "string", 0),
                ("Holder", "string", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| vec![name(o), json!(s(o, "/spec/holderIdentity")), age(o, now)]),
        ),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => (
            vec![
                ("Name", "string", 0),
                ("Role", "string", 0),
                ("Age", "string", 0),
            ],
            Box::new(move |o, now| {
                vec![
                    name(o),
                    json!(format!(
                        "{}/{}",
                        s(o, "/roleRef/kind"),
                        s(o, "/roleRef/name")
                    )),
                    age(o, now),
                ]
            }),
        ),
        _ => (
            vec![("Name", "string", 0), ("Created At", "date", 0)],
            Box::new(move |o, _| vec![name(o), json!(s(o, "/metadata/creationTimestamp"))]),
        ),
    };
    (defs.into_iter().map(|(n, t, p)| col(n, t, p)).collect(), f)
}

fn partial_metadata(obj: &Value, api_version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A Table of one object or of a list's items (the list's metadata carries over).
pub fn to_table(res: &ResourceInfo, body: &Value, api_version: &str, now: DateTime<Utc>) -> Value {
    let (cols, cells) = columns(res);
    let (items, metadata): (Vec<&Value>, Value) = match body.get("items").and_then(Value::as_array)
    {
        Some(items) => (items.iter().collect(), body["metadata"].clone()),
        None => (
            vec![body],
            json!({ "resourceVersion": body.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")) }),
        ),
    };
    let rows: Vec<Value> = items
        .into_iter()
        .map(|o| json!({ "cells": cells(o, now), "object": partial_metadata(o, api_version) }))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": cols,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;

    #[test]
    fn accept_headers_from_kubectl_ask_for_v1_tables() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(requested(kubectl), Some("meta.k8s.io/v1"));
        assert_eq!(requested("application/json"), None);
        assert_eq!(
            requested("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Some("meta.k8s.io/v1beta1")
        );
    }

    #[test]
    fn human_durations_match_kubernetes() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (20 * 3600, "20h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn pod_rows_show_ready_status_and_age() {
        let res = Registry::default().find("", "v1", "pods").unwrap().clone();
        let now = Utc::now();
        let created = (now - chrono::Duration::seconds(90))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let pod = json!({
            "metadata": { "name": "web", "creationTimestamp": created },
            "spec": { "nodeName": "n1", "containers": [{ "name": "a" }, { "name": "b" }] },
            "status": { "phase": "Running", "containerStatuses": [{ "ready": true, "restartCount": 2 }, { "ready": false, "restartCount": 1 }] },
        });
        let t = to_table(
            &res,
            &json!({ "metadata": { "resourceVersion": "7" }, "items": [pod] }),
            "meta.k8s.io/v1",
            now,
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web", "1/2", "Running", "3", "90s", "<none>", "n1", "<none>", "<none>"
            ])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn custom_resources_use_their_printer_columns() {
        let mut res = Registry::default()
            .find("", "v1", "configmaps")
            .unwrap()
            .clone();
        res.builtin = false;
        res.printer_columns =
            vec![json!({ "name": "Size", "type": "integer", "jsonPath": ".spec.sizes[1]" })];
        let obj = json!({ "metadata": { "name": "w" }, "spec": { "sizes": [1, 4] } });
        let t = to_table(&res, &obj, "meta.k8s.io/v1", Utc::now());
        assert_eq!(t["rows"][0]["cells"], json!(["w", 4]));
        res.printer_columns.clear();
        let t = to_table(&res, &obj, "meta.k8s.io/v1", Utc::now());
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
    }

    #[test]
    fn printer_columns_read_escaped_label_keys_and_filtered_conditions() {
        let obj = json!({
            "metadata": { "labels": { "karpenter.sh/nodepool": "default" } },
            "status": { "conditions": [
                { "type": "Launched", "status": "True" },
                { "type": "Ready", "status": "False" },
            ] },
        });
        assert_eq!(
            json_path(&obj, ".metadata.labels.karpenter\\.sh/nodepool"),
            Some(&json!("default"))
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("False"))
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type=='Launched')].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Drifted\")].status"),
            None
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[1].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(json_path(&obj, ".status.conditions[?(@.type<\"x\")]"), None);
    }

    #[test]
    fn event_rows_name_the_object_kind_and_name() {
        let res = Registry::default()
            .find("", "v1", "events")
            .unwrap()
            .clone();
        let now = Utc::now();
        let ago = |s: i64| (now - chrono::Duration::seconds(s)).to_rfc3339();
        let obj = json!({
            "metadata": { "name": "graviton.1", "namespace": "kube-system" },
            "involvedObject": { "kind": "ConfigMap", "name": "graviton" },
            "reason": "PolicyAccepted", "type": "Normal", "message": "serving ",
            "firstTimestamp": ago(90), "lastTimestamp": ago(30), "count": 2,
            "source": { "component": "dovetail" },
        });
        let t = to_table(&res, &obj, "meta.k8s.io/v1", now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "30s",
                "Normal",
                "PolicyAccepted",
                "configmap/graviton",
                "",
                "dovetail",
                "serving",
                "90s",
                2,
                "graviton.1"
            ])
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    }
}
