//! What a scenario file has that has no effect, or is read approximately:
//! its warnings.
//!
//! Fields of a scenario's NodePool manifests that Karpenter's `karpenter.sh/v1`
//! schema does not have: the manifests are read leniently, as the API server
//! reads them, so such a field would otherwise vanish without a word (the
//! v1beta1-era `spec.disruption.expireAfter` is accepted and then never
//! expires anything). Each one becomes a warning naming the field and its
//! line. Kubernetes manifests add kinds the simulator does not model and
//! fields `dovetail-api` does not carry over exactly.

use std::fmt;

use dovetail_api::k8s::ObjectRef;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Something in a scenario file that is read but has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioWarning {
    /// From the file's root, e.g. `nodePools[0].spec.disruption.expireAfter`.
    pub path: String,
    /// 1-based, when the field could be found in the text.
    pub line: Option<usize>,
    pub reason: WarningReason,
}

/// Why something has no effect, or not exactly the effect written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningReason {
    /// `schema` has no such field; `moved` says where an older API version's
    /// field went, when it is a known one.
    UnknownField {
        schema: &'static str,
        moved: Option<&'static str>,
    },
    /// `count` objects of a kind the simulator does not model (the path is
    /// the first one's).
    UnmodelledKind {
        kind: String,
        api_version: String,
        count: usize,
    },
    /// A field of a Kubernetes object that `dovetail-api`'s conversion does
    /// not carry over exactly.
    Conversion {
        object: ObjectRef,
        reason: dovetail_api::k8s::WarningReason,
    },
    /// A Job without the run-time annotation: its pods never complete.
    JobRunsToTheEnd { annotation: &'static str },
    /// A NodeClaim that names no launched instance and has no node.
    ClaimNotLaunched,
    /// A node Dovetail does not manage whose offering is not in the catalog.
    Unpriced {
        instance_type: String,
        zone: String,
        capacity_type: String,
    },
}

impl fmt::Display for ScenarioWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl fmt::Display for WarningReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmodelledKind {
                kind,
                api_version,
                count,
            } => write!(
                f,
                "{count} {kind} object{} ({api_version}): not a kind the simulator models, so {} ignored",
                if *count == 1 { "" } else { "s" },
                if *count == 1 { "it is" } else { "they are" }
            ),
            Self::Conversion { object, reason } => write!(f, "{object}: {reason}"),
            Self::JobRunsToTheEnd { annotation } => write!(
                f,
                "a Job says nothing of how long its pods run, so in the simulation they never complete; annotate the Job (or its pod template) with `{annotation}: 10m` or the like"
            ),
            Self::ClaimNotLaunched => f.write_str(
                "the NodeClaim has no node and its labels name no launched instance (instance type, zone and capacity type), so it is left out; Dovetail plans its pods again",
            ),
            Self::Unpriced {
                instance_type,
                zone,
                capacity_type,
            } => write!(
                f,
                "the catalog has no {capacity_type} `{instance_type}` offering in `{zone}`, so the node costs nothing in the report; it still runs pods (Dovetail does not manage it)"
            ),
            Self::UnknownField {
                schema,
                moved: Some(moved),
            } => write!(f, "not a field of {schema}; it is ignored: {moved}"),
            Self::UnknownField {
                schema,
                moved: None,
            } => write!(
                f,
                "not a field of {schema}; it is ignored: remove it, or check its spelling and indentation"
            ),
        }
    }
}

const NODE_POOL_SCHEMA: &str = "karpenter.sh/v1 NodePool";

/// Fields of older NodePool versions (under `nodePools[i].`), and where
/// `karpenter.sh/v1` has them.
const MOVED: &[(&str, &str)] = &[
    (
        "spec.disruption.expireAfter",
        "karpenter.sh/v1 moved it to spec.template.spec.expireAfter, so as written nodes expire after the default 720h",
    ),
    (
        "spec.template.spec.kubelet",
        "karpenter.sh/v1 moved kubelet settings to the EC2NodeClass's spec.kubelet",
    ),
    (
        "spec.template.spec.nodeClassRef.apiVersion",
        "karpenter.sh/v1 names the class by `group: karpenter.k8s.aws` and `kind: EC2NodeClass`",
    ),
    (
        "spec.template.spec.resources",
        "a NodeClaim's resources come from its pods, not from the NodePool",
    ),
];

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// The steps of a path `serde_ignored` reports.
pub(crate) fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(Step::Index(*index)),
        Path::Map { key, .. } => out.push(Step::Key(key.clone())),
        _ => {}
    }
    out
}

pub(crate) fn render(steps: &[Step]) -> String {
    let mut s = String::new();
    for step in steps {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Warnings for the ignored fields under `nodePools`, found in `text`.
pub(crate) fn node_pool_warnings(text: &str, ignored: &[Vec<Step>]) -> Vec<ScenarioWarning> {
    ignored
        .iter()
        .filter_map(|steps| {
            let [Step::Key(section), Step::Index(_), rest @ ..] = steps.as_slice() else {
                return None;
            };
            if section != "nodePools" || rest.is_empty() {
                return None;
            }
            let within = render(rest);
            Some(ScenarioWarning {
                path: render(steps),
                line: line_of(text, steps),
                reason: WarningReason::UnknownField {
                    schema: NODE_POOL_SCHEMA,
                    moved: MOVED
                        .iter()
                        .find(|(field, _)| *field == within)
                        .map(|&(_, moved)| moved),
                },
            })
        })
        .collect()
}

/// Warnings for the fields a Kubernetes object of `schema` (e.g. `v1 Pod`)
/// does not have, written at `doc` (found in `text` when written in the
/// scenario file). Fields under `status` are left out: the API server
/// writes them, and a newer cluster's may be unknown here.
pub(crate) fn manifest_warnings(
    text: &str,
    doc: &crate::manifests::Doc,
    schema: &'static str,
    ignored: &[Vec<Step>],
) -> Vec<ScenarioWarning> {
    ignored
        .iter()
        .filter(|rest| !rest.is_empty() && rest[0] != Step::Key("status".into()))
        .map(|rest| {
            let within = render(rest);
            ScenarioWarning {
                path: doc.field(&within),
                line: doc.steps.as_deref().and_then(|s| {
                    let mut all = s.to_vec();
                    all.extend(rest.iter().cloned());
                    line_of(text, &all)
                }),
                reason: WarningReason::UnknownField {
                    schema,
                    moved: MOVED
                        .iter()
                        .find(|(field, _)| schema == NODE_POOL_SCHEMA && *field == within)
                        .map(|&(_, moved)| moved),
                },
            }
        })
        .collect()
}

/// Where the key at the end of `steps` is written. The YAML reader knows
/// positions only when it reports an error, so a second read walks to the
/// key and stops there with an error whose location is the key's.
fn line_of(text: &str, steps: &[Step]) -> Option<usize> {
    let de = serde_norway::Deserializer::from_str(text);
    match (Locate { steps }).deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
        _ => None,
    }
}

const FOUND: &str = "dovetail: the field is here";

struct Locate<'a> {
    steps: &'a [Step],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.steps.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let seed = || Key {
            want,
            last: rest.is_empty(),
        };
        while let Some(found) = map.next_key_seed(seed())? {
            if found {
                map.next_value_seed(Locate { steps: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let want = match self.steps.split_first() {
            Some((Step::Index(i), rest)) => Some((*i, rest)),
            _ => None,
        };
        let mut i = 0;
        loop {
            let more = match want {
                Some((w, rest)) if w == i => seq.next_element_seed(Locate { steps: rest })?,
                _ => seq.next_element::<IgnoredAny>()?.map(|_| ()),
            };
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A mapping key: whether it is the one wanted; the last step's key stops
/// the walk with an error at its position.
struct Key<'a> {
    want: &'a str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match (key == self.want, self.last) {
            (true, true) => Err(E::custom(FOUND)),
            (found, _) => Ok(found),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}
