//! Lists: `limit`/`continue` paging over a consistent revision, and the `resourceVersion` /
//! `resourceVersionMatch` rules of a real server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event_log::{Compacted, ObjectKey};
use crate::filter::ObjectFilter;
use crate::resource::ResourceInfo;
use crate::status::{ApiError, Target};
use crate::store::{Store, parse_resource_version};
use crate::stored::Stored;

/// The query parameters of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// Where the next page starts, at which revision; opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    /// Namespace and name of the last object returned.
    ns: String,
    name: String,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

fn encode(token: &ContinueToken) -> String {
    STANDARD.encode(serde_json::to_vec(token).expect("token serialises"))
}

fn decode(s: &str) -> Result<ContinueToken, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("continue key is not valid: {why}"));
    let bytes = STANDARD.decode(s).map_err(|_| bad("not base64"))?;
    let token: ContinueToken =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a continue token"))?;
    if token.v != TOKEN_VERSION {
        return Err(bad("unknown version"));
    }
    Ok(token)
}

pub(crate) fn invalid_options(kind: &str, message: &str) -> ApiError {
    ApiError::Invalid {
        target: Target::new("meta.k8s.io", kind, ""),
        message: message.to_string(),
    }
}

fn expired_continue() -> ApiError {
    ApiError::Expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
    )
}

fn expired_rv(c: Compacted) -> ApiError {
    ApiError::Expired(format!(
        "too old resource version: {} ({})",
        c.requested, c.oldest
    ))
}

/// Which revision a list reads (`None`: the current one), and the namespace and name of the
/// last object already returned.
type Plan = (Option<u64>, Option<(String, String)>);

fn plan(store: &Store, opts: &ListOptions) -> Result<Plan, ApiError> {
    let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
    let rv_match = opts
        .resource_version_match
        .as_deref()
        .filter(|s| !s.is_empty());
    if let Some(token) = opts.continue_token.as_deref().filter(|s| !s.is_empty()) {
        if rv.is_some_and(|r| r != "0") {
            return Err(invalid_options(
                "ListOptions",
                "resourceVersion: Forbidden: specifying resource version is not allowed when using continue",
            ));
        }
        let t = decode(token)?;
        return Ok((Some(t.rv), Some((t.ns, t.name))));
    }
    match (rv, rv_match) {
        (None, Some(_)) => Err(invalid_options(
            "ListOptions",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (None, None) => Ok((None, None)),
        (Some(rv), m) => {
            let n = parse_resource_version(rv)?;
            let current = store.revision();
            match m {
                Some("Exact") => {
                    if n == 0 {
                        return Err(invalid_options(
                            "ListOptions",
                            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                        ));
                    }
                    if n > current {
                        return Err(ApiError::TooLargeResourceVersion {
                            requested: n,
                            current,
                        });
                    }
                    Ok((Some(n), None))
                }
                None | Some("NotOlderThan") => {
                    if n > current {
                        return Err(ApiError::TooLargeResourceVersion {
                            requested: n,
                            current,
                        });
                    }
                    Ok((None, None))
                }
                Some(other) => Err(invalid_options(
                    "ListOptions",
                    &format!(
                        "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                    ),
                )),
            }
        }
    }
}

/// A `<Kind>List` ready to serialise. Items are shared with the store: a list of 20,000 pods
/// copies none of them.
#[derive(Debug, Clone)]
pub struct ObjectList {
    kind: String,
    api_version: String,
    metadata: Value,
    items: Vec<Arc<Stored>>,
    /// Built-in list items carry no kind or apiVersion, as on a real server.
    strip_type: bool,
}

impl ObjectList {
    /// The list serialised, in one allocation of the right size.
    pub fn to_json(&self) -> Vec<u8> {
        let items: usize = self
            .items
            .iter()
            .map(|i| {
                if self.strip_type {
                    i.json_without_type().get().len()
                } else {
                    i.json().get().len()
                }
            })
            .sum();
        let mut out = Vec::with_capacity(items + self.items.len() + 512);
        serde_json::to_writer(&mut out, self).expect("JSON values serialise");
        out
    }

    /// The list as one JSON value (for Table output, which reshapes it).
    pub fn into_value(self) -> Value {
        serde_json::to_value(&self).expect("JSON values serialise")
    }
}

impl Serialize for ObjectList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(4))?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("apiVersion", &self.api_version)?;
        m.serialize_entry("metadata", &self.metadata)?;
        m.serialize_entry(
            "items",
            &Items {
                items: &self.items,
                strip_type: self.strip_type,
            },
        )?;
        m.end()
    }
}

struct Items<'a> {
    items: &'a [Arc<Stored>],
    strip_type: bool,
}

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.items.len()))?;
        for item in self.items {
            if self.strip_type {
                seq.serialize_element(item.json_without_type())?;
            } else {
                seq.serialize_element(item.json())?;
            }
        }
        seq.end()
    }
}

/// The `<Kind>List` for a list request.
pub fn list(
    store: &Store,
    res: &ResourceInfo,
    namespace: &str,
    opts: &ListOptions,
    filter: &ObjectFilter,
) -> Result<ObjectList, ApiError> {
    let (at, after) = plan(store, opts)?;
    let continuing = after.is_some();
    let (revision, objects) = store
        .snapshot(res, namespace, at, after.as_ref())
        .map_err(|c| {
            if continuing {
                expired_continue()
            } else {
                expired_rv(c)
            }
        })?;
    let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut matching = objects.into_iter().filter(|(_, v)| filter.matches(v));
    let page: Vec<(ObjectKey, Arc<Stored>)> = matching.by_ref().take(limit).collect();
    let remaining = matching.count();
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if remaining > 0
        && let Some((last, _)) = page.last()
    {
        metadata["continue"] = json!(encode(&ContinueToken {
            v: TOKEN_VERSION.into(),
            rv: revision,
            ns: last.namespace.clone(),
            name: last.name.clone(),
        }));
        if filter.is_everything() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(ObjectList {
        kind: format!("{}List", res.kind),
        api_version: res.api_version(),
        metadata,
        items: page.into_iter().map(|(_, v)| v).collect(),
        strip_type: res.builtin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;
    use crate::store::DeleteOptions;

    fn list(
        store: &Store,
        res: &ResourceInfo,
        namespace: &str,
        opts: &ListOptions,
        filter: &ObjectFilter,
    ) -> Result<Value, ApiError> {
        super::list(store, res, namespace, opts, filter).map(ObjectList::into_value)
    }

    fn setup(n: usize) -> (Store, ResourceInfo) {
        let s = Store::default();
        let r = Registry::default()
            .find("", "v1", "configmaps")
            .unwrap()
            .clone();
        for i in 0..n {
            s.create(
                &r,
                "default",
                json!({ "metadata": { "name": format!("c{i:02}") } }),
            )
            .unwrap();
        }
        (s, r)
    }

    fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages_are_consistent_at_the_first_page_revision() {
        let (s, r) = setup(5);
        let all = ObjectFilter::everything();
        let first = list(
            &s,
            &r,
            "default",
            &ListOptions {
                limit: Some(2),
                ..Default::default()
            },
            &all,
        )
        .unwrap();
        assert_eq!(names(&first), vec!["c00", "c01"]);
        assert_eq!(first["metadata"]["remainingItemCount"], 3);
        assert!(
            first["items"][0].get("kind").is_none(),
            "built-in list items carry no kind"
        );
        assert_eq!(first["kind"], "ConfigMapList");
        // Changes after the first page do not show in later pages.
        s.delete(&r, "default", "c03", &DeleteOptions::default())
            .unwrap();
        s.create(&r, "default", json!({ "metadata": { "name": "c99" } }))
            .unwrap();
        let token = first["metadata"]["continue"].as_str().unwrap().to_string();
        let opts = ListOptions {
            limit: Some(10),
            continue_token: Some(token),
            ..Default::default()
        };
        let rest = list(&s, &r, "default", &opts, &all).unwrap();
        assert_eq!(names(&rest), vec!["c02", "c03", "c04"]);
        assert_eq!(
            rest["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
        assert!(rest["metadata"].get("continue").is_none());
    }

    #[test]
    fn a_compacted_continue_token_is_410_expired() {
        let (s, r) = setup(3);
        let all = ObjectFilter::everything();
        let first = list(
            &s,
            &r,
            "default",
            &ListOptions {
                limit: Some(1),
                ..Default::default()
            },
            &all,
        )
        .unwrap();
        s.create(&r, "default", json!({ "metadata": { "name": "later" } }))
            .unwrap();
        s.compact();
        let token = first["metadata"]["continue"].as_str().unwrap().to_string();
        let e = list(
            &s,
            &r,
            "default",
            &ListOptions {
                continue_token: Some(token),
                ..Default::default()
            },
            &all,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.reason()), (410, "Expired"));
        let e = list(
            &s,
            &r,
            "default",
            &ListOptions {
                continue_token: Some("garbage".into()),
                ..Default::default()
            },
            &all,
        )
        .unwrap_err();
        assert_eq!(e.code(), 400);
    }

    #[test]
    fn resource_version_rules() {
        let (s, r) = setup(2);
        let all = ObjectFilter::everything();
        let at = s.revision();
        s.create(&r, "default", json!({ "metadata": { "name": "c99" } }))
            .unwrap();
        let opts = |rv: &str, m: Option<&str>| ListOptions {
            resource_version: Some(rv.into()),
            resource_version_match: m.map(str::to_string),
            ..Default::default()
        };
        let exact = list(
            &s,
            &r,
            "default",
            &opts(&at.to_string(), Some("Exact")),
            &all,
        )
        .unwrap();
        assert_eq!(names(&exact), vec!["c00", "c01"]);
        assert_eq!(exact["metadata"]["resourceVersion"], at.to_string());
        let any = list(&s, &r, "default", &opts("0", Some("NotOlderThan")), &all).unwrap();
        assert_eq!(names(&any).len(), 3);
        assert_eq!(any["metadata"]["resourceVersion"], s.revision().to_string());
        let e = list(&s, &r, "default", &opts("999999", None), &all).unwrap_err();
        assert_eq!((e.code(), e.reason()), (504, "Timeout"));
        let e = list(&s, &r, "default", &opts("abc", None), &all).unwrap_err();
        assert_eq!(e.code(), 400);
        let e = list(
            &s,
            &r,
            "default",
            &ListOptions {
                resource_version_match: Some("Exact".into()),
                ..Default::default()
            },
            &all,
        )
        .unwrap_err();
        assert_eq!(e.code(), 422);
    }
}
