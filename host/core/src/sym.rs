//! Interned strings for label keys and values.
//!
//! The scheduler compares label keys and values millions of times per solve;
//! interning makes equality a pointer comparison while ordering stays
//! lexicographic, so every result is the same from one process to the next.
//! Interned text lives for the rest of the process: the set is bounded by the
//! distinct keys, values and node names the controller ever sees.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

static TABLE: LazyLock<Mutex<HashMap<&'static str, Sym>>> = LazyLock::new(Default::default);

/// An interned string: `Copy`, compared by pointer for equality and by text
/// for order. One pointer wide (to the interned text's own thin handle), so
/// the many label values and offerings a solve holds stay small.
#[derive(Clone, Copy)]
pub struct Sym(&'static &'static str);

impl Sym {
    pub fn new(s: &str) -> Sym {
        let mut table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&existing) = table.get(s) {
            return existing;
        }
        let text: &'static str = Box::leak(s.to_owned().into_boxed_str());
        let sym = Sym(Box::leak(Box::new(text)));
        table.insert(text, sym);
        sym
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The value as an integer, for `Gt`/`Lt`/`Gte`/`Lte` requirements.
    pub fn as_int(self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl Default for Sym {
    fn default() -> Self {
        Sym::new("")
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Sym {}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sym {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other {
            std::cmp::Ordering::Equal
        } else {
            self.as_str().cmp(other.as_str())
        }
    }
}

impl std::hash::Hash for Sym {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (std::ptr::from_ref(self.0) as usize).hash(state);
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, for tables.
        f.pad(self.as_str())
    }
}

impl From<&str> for Sym {
    fn from(s: &str) -> Self {
        Sym::new(s)
    }
}

impl From<&String> for Sym {
    fn from(s: &String) -> Self {
        Sym::new(s)
    }
}

impl From<String> for Sym {
    fn from(s: String) -> Self {
        Sym::new(&s)
    }
}

impl Serialize for Sym {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sym {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Sym::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_symbol_and_text_order() {
        let a = Sym::new("us-east-1b");
        let b = Sym::new(&String::from("us-east-1b"));
        assert_eq!(a, b);
        assert!(Sym::new("us-east-1a") < a);
        assert_eq!(Sym::new("42").as_int(), Some(42));
        assert_eq!(Sym::new("m5").as_int(), None);
    }
}
