//! The errors and warnings gathered while one object is converted.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::error::{ErrorKind, FieldError, Path};

use super::{ConvertError, Converted, ObjectRef, Warning, WarningReason};

pub(crate) struct Report {
    object: ObjectRef,
    errors: Vec<FieldError>,
    warnings: Vec<Warning>,
}

impl Report {
    pub fn new(object: ObjectRef) -> Self {
        Self {
            object,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn warn(&mut self, path: &Path, reason: WarningReason) {
        self.warnings.push(Warning {
            object: self.object.clone(),
            path: path.to_string(),
            reason,
        });
    }

    pub fn error(
        &mut self,
        path: &Path,
        kind: ErrorKind,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            path: path.to_string(),
            kind,
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn required(&mut self, path: &Path, fix: impl Into<String>) {
        self.error(path, ErrorKind::Required, "is required", fix);
    }

    /// `value` is not one of `allowed`.
    pub fn not_supported(&mut self, path: &Path, value: &str, allowed: &[&str]) {
        self.error(
            path,
            ErrorKind::NotSupported,
            format!("`{value}` is not supported"),
            format!("use one of {}", allowed.join(", ")),
        );
    }

    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub fn finish<T>(self, value: T) -> Result<Converted<T>, ConvertError> {
        if self.errors.is_empty() {
            Ok(Converted {
                value,
                warnings: self.warnings,
            })
        } else {
            Err(ConvertError {
                object: self.object,
                errors: self.errors,
            })
        }
    }
}

/// A timestamp as Unix seconds (0 before the epoch).
pub(crate) fn seconds(t: &Time) -> u64 {
    u64::try_from(t.0.as_second()).unwrap_or(0)
}
