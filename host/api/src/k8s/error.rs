//! Why a Kubernetes object cannot be converted: every problem, each with its
//! field path and the fix.

use std::fmt;

use crate::error::FieldError;

use super::ObjectRef;

/// Everything wrong with one object. The conversion reads the whole object
/// before it fails, so one run names every problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConvertError {
    pub object: ObjectRef,
    /// In field order, never empty; each path is from the object's root, e.g.
    /// `spec.containers[0].resources.requests[cpu]`.
    pub errors: Vec<FieldError>,
}

impl ConvertError {
    /// The error at exactly `path`, if any.
    pub fn at(&self, path: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.path == path)
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{} cannot be converted ({n} error{}):",
            self.object,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
