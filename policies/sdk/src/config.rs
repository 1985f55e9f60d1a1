//! Operator configuration: a JSON object, read with typed getters whose
//! errors name the field.

use dovetail_core::policy::types::ConfigError;
use serde_json::{Map, Value};

/// A policy's JSON configuration (`{}` when the operator gave none).
#[derive(Debug, Clone, Default)]
pub struct Config {
    fields: Map<String, Value>,
}

impl Config {
    /// Parses `json`; anything but an object is refused.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(fields)) => Ok(Self { fields }),
            Ok(other) => Err(ConfigError::new(
                "",
                format!("config must be a JSON object, got {}", kind(&other)),
            )),
            Err(e) => Err(ConfigError::new(
                "",
                format!("config is not valid JSON: {e}"),
            )),
        }
    }

    /// The raw value of `field`, if set.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// A number field within `min..=max`, or `default` when absent.
    pub fn number(
        &self,
        field: &str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        match self.fields.get(field) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if v.is_finite() && (min..=max).contains(&v) {
                    Ok(v)
                } else {
                    Err(ConfigError::new(
                        field,
                        format!("must be between {min} and {max}, got {v}"),
                    ))
                }
            }
            Some(other) => Err(ConfigError::new(
                field,
                format!("must be a number, got {}", kind(other)),
            )),
        }
    }

    /// A boolean field, or `default` when absent.
    pub fn boolean(&self, field: &str, default: bool) -> Result<bool, ConfigError> {
        match self.fields.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ConfigError::new(
                field,
                format!("must be true or false, got {}", kind(other)),
            )),
        }
    }

    /// A string field, or `default` when absent.
    pub fn string(&self, field: &str, default: &str) -> Result<String, ConfigError> {
        match self.fields.get(field) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ConfigError::new(
                field,
                format!("must be a string, got {}", kind(other)),
            )),
        }
    }

    /// Refuses any field not in `known`, so typos do not pass silently.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.fields.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) if known.is_empty() => Err(ConfigError::new(
                k.as_str(),
                "unknown field: this policy takes no settings",
            )),
            Some(k) => Err(ConfigError::new(
                k.as_str(),
                format!("unknown field; known fields: {}", known.join(", ")),
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_range_checked_and_named() {
        let c = Config::parse(r#"{"min-savings-percent": 120}"#).unwrap();
        let e = c
            .number("min-savings-percent", 20.0, 0.0, 100.0)
            .unwrap_err();
        assert_eq!(e.field, "min-savings-percent");
        assert!(e.message.contains("between 0 and 100"));
        let c = Config::parse(r#"{"min-savings-percent": "ten"}"#).unwrap();
        assert!(c.number("min-savings-percent", 20.0, 0.0, 100.0).is_err());
        assert_eq!(
            Config::parse("")
                .unwrap()
                .number("x", 2.0, 0.0, 9.0)
                .unwrap(),
            2.0
        );
    }

    #[test]
    fn unknown_fields_and_bad_documents_are_refused() {
        let c = Config::parse(r#"{"min-saving-percent": 10}"#).unwrap();
        let e = c.deny_unknown(&["min-savings-percent"]).unwrap_err();
        assert_eq!(e.field, "min-saving-percent");
        assert!(
            Config::parse("[1]")
                .unwrap_err()
                .message
                .contains("JSON object")
        );
        assert!(
            Config::parse("{")
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
    }
}
