//! A stored object version: the value, and its JSON serialised once on first read, so lists
//! and watch fan-out copy bytes instead of walking the value again for every reader.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One committed version of an object. Never changes once stored: a write stores a new one.
#[derive(Debug)]
pub struct Stored {
    value: Value,
    json: OnceLock<Box<RawValue>>,
    /// Without `kind` and `apiVersion`: how built-in kinds appear as list items.
    json_without_type: OnceLock<Box<RawValue>>,
}

impl Stored {
    pub fn new(value: Value) -> Self {
        Self {
            value,
            json: OnceLock::new(),
            json_without_type: OnceLock::new(),
        }
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The object as JSON.
    pub fn json(&self) -> &RawValue {
        self.json.get_or_init(|| raw(&self.value))
    }

    /// The object as JSON without `kind` and `apiVersion`.
    pub fn json_without_type(&self) -> &RawValue {
        self.json_without_type
            .get_or_init(|| match self.value.as_object() {
                Some(fields) => raw(&WithoutType(fields)),
                None => raw(&self.value),
            })
    }
}

impl Deref for Stored {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Serialize for Stored {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

fn raw(v: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).expect("JSON values serialise")
}

/// An object's fields without `kind` and `apiVersion`.
struct WithoutType<'a>(&'a serde_json::Map<String, Value>);

impl Serialize for WithoutType<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self
            .0
            .iter()
            .filter(|(k, _)| k.as_str() != "kind" && k.as_str() != "apiVersion");
        let mut m = serializer.serialize_map(None)?;
        for (k, v) in fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cached_json_matches_the_value_with_and_without_type() {
        let v = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" }, "spec": { "x": [1, "é\n"] } });
        let s = Stored::new(v.clone());
        let full: Value = serde_json::from_str(s.json().get()).unwrap();
        assert_eq!(full, v);
        for only_type in [
            json!({ "kind": "Pod" }),
            json!({ "kind": "Pod", "apiVersion": "v1" }),
            json!({}),
        ] {
            let back: Value =
                serde_json::from_str(Stored::new(only_type.clone()).json().get()).unwrap();
            assert_eq!(back, only_type);
        }
        let item: Value = serde_json::from_str(s.json_without_type().get()).unwrap();
        assert_eq!(
            item,
            json!({ "metadata": { "name": "p" }, "spec": { "x": [1, "é\n"] } })
        );
        assert_eq!(serde_json::to_value(&s).unwrap(), v);
    }
}
