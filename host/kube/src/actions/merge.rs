//! The JSON merge patch (RFC 7386) that turns one value into another, so a
//! write sends only what differs and removes what is gone.

use serde_json::{Map, Value};

/// The merge patch from `old` to `new`; `None` when they are equal.
/// Objects are compared key by key (a key `new` lacks becomes `null`);
/// anything else, lists included, is replaced whole.
pub(super) fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_what_differs_and_removals_as_null() {
        let old = json!({"a": 1, "m": {"x": "1", "y": "2"}, "l": [1, 2], "gone": true});
        let new = json!({"a": 1, "m": {"x": "1", "z": "3"}, "l": [1, 2, 3]});
        assert_eq!(
            diff(&old, &new),
            Some(json!({"m": {"y": null, "z": "3"}, "l": [1, 2, 3], "gone": null}))
        );
        assert_eq!(diff(&old, &old), None);
    }
}
