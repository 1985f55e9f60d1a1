//! Interned strings for label keys and values.
//!
//! The scheduler compares label keys and values millions of times per solve;
//! interning makes equality a pointer comparison while ordering stays
//! lexicographic, so every result is the same from one process to the next.
//! Interned text lives for the rest of the process: the set is bounded by the
//! distinct keys, values and node names the controller ever sees.

use std::collections::HashSet;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

static TABLE: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

/// An interned string: `Copy`, compared by pointer for equality and by text
/// for order.
#[derive(Clone, Copy)]
pub struct Sym(&'static str);

impl Sym {
    pub fn new(s: &str) -> Sym {
        let mut table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&existing) = table.get(s) {
            return Sym(existing);
        }
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        table.insert(leaked);
        Sym(leaked)
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
        std::ptr::eq(self.0.as_ptr(), other.0.as_ptr())
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
            self.0.cmp(other.0)
        }
    }
}

impl std::hash::Hash for Sym {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0.as_ptr() as usize).hash(state);
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, for tables.
        f.pad(self.0)
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
        s.serialize_str(self.0)
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
