//! Durations as the API writes them: Go duration strings, kept as written so
//! a manifest serialises back unchanged.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Go duration as written (`30s`, `1h30m`). `validate()` checks it
/// against the field's pattern; [`GoDuration::duration`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GoDuration(String);

impl GoDuration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Whole seconds, written as Go writes them without the zero parts
    /// (`90s` → `1m30s`).
    pub fn from_duration(d: Duration) -> Self {
        Self(format_go_duration(d))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `None` when the text is not a Go duration.
    pub fn duration(&self) -> Option<Duration> {
        dovetail_core::disruption::parse_go_duration(&self.0)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `expireAfter` and `consolidateAfter`: a Go duration or `Never`. An unset
/// value means `Never` and serialises as `"Never"`, as Karpenter's
/// `NillableDuration` does; a set one re-emits the text it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NillableDuration(Option<String>);

pub const NEVER: &str = "Never";

/// Text that is neither a Go duration nor `Never`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration; write e.g. `30s`, `10m` or `1h30m`, or `Never`")]
pub struct NotADuration(pub String);

impl NillableDuration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(Some(text.into()))
    }

    pub fn never() -> Self {
        Self::new(NEVER)
    }

    /// `None` is `Never`.
    pub fn from_duration(d: Option<Duration>) -> Self {
        match d {
            Some(d) => Self::new(format_go_duration(d)),
            None => Self::never(),
        }
    }

    /// Whether the field was given at all.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The text, `Never` when unset.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(NEVER)
    }

    /// `Ok(None)` for `Never` (or unset).
    pub fn duration(&self) -> Result<Option<Duration>, NotADuration> {
        match self.as_str() {
            NEVER => Ok(None),
            text => dovetail_core::disruption::parse_go_duration(text)
                .map(Some)
                .ok_or_else(|| NotADuration(text.to_owned())),
        }
    }
}

impl fmt::Display for NillableDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NillableDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NillableDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(Option::<String>::deserialize(d)?))
    }
}

#[cfg(feature = "kube")]
impl schemars::JsonSchema for NillableDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NillableDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": crate::rules::NILLABLE_DURATION.source(),
        })
    }
}

#[cfg(feature = "kube")]
impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

/// Go's `Duration.String` for whole seconds, without zero components.
fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_unset() {
        assert_eq!(NillableDuration::default().as_str(), "Never");
        assert!(!NillableDuration::default().is_set());
        assert_eq!(NillableDuration::never().duration(), Ok(None));
        assert_eq!(
            NillableDuration::new("1h30m").duration(),
            Ok(Some(Duration::from_secs(5400)))
        );
        assert!(NillableDuration::new("soon").duration().is_err());
        assert_eq!(
            serde_json::to_string(&NillableDuration::default()).unwrap(),
            "\"Never\""
        );
    }

    #[test]
    fn written_like_go() {
        assert_eq!(
            NillableDuration::from_duration(Some(Duration::from_secs(90))).as_str(),
            "1m30s"
        );
        assert_eq!(
            GoDuration::from_duration(Duration::from_secs(7200)).as_str(),
            "2h"
        );
        assert_eq!(GoDuration::from_duration(Duration::ZERO).as_str(), "0s");
    }
}
