//! Validation errors: each names the field (`spec.template.spec.requirements[2].operator`),
//! what is wrong with it, and what to write instead.

use std::fmt;

/// What kind of rule a field breaks, after Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required field is missing or empty.
    Required,
    /// A value does not have the required form (pattern, format, range).
    Invalid,
    /// A value is not one of the allowed ones.
    NotSupported,
    /// A string is longer than allowed.
    TooLong,
    /// A list or map has more entries than allowed.
    TooMany,
    /// A value is well formed but not allowed here (a CEL rule).
    Forbidden,
    /// An entry repeats another.
    Duplicate,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Invalid => "invalid",
            Self::NotSupported => "not supported",
            Self::TooLong => "too long",
            Self::TooMany => "too many",
            Self::Forbidden => "forbidden",
            Self::Duplicate => "duplicate",
        }
    }
}

/// One field that breaks one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}; {fix}")]
pub struct FieldError {
    /// Dotted path from the object's root, e.g.
    /// `spec.disruption.budgets[0].nodes` or `spec.tags[karpenter.sh/nodepool]`.
    pub path: String,
    pub kind: ErrorKind,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// Everything wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// `NodePool`, `NodeClaim` or `EC2NodeClass`.
    pub kind: &'static str,
    pub name: String,
    /// In field order, never empty.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{} `{}` is invalid ({n} error{}):",
            self.kind,
            self.name,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// The error at exactly `path`, if any.
    pub fn at(&self, path: &str) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.path == path)
    }
}

/// A field path under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root(name: &str) -> Self {
        Self(name.to_owned())
    }

    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects errors while a validator walks an object.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn push(
        &mut self,
        path: &Path,
        kind: ErrorKind,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.0.clone(),
            kind,
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn required(&mut self, path: &Path, fix: impl Into<String>) {
        self.push(path, ErrorKind::Required, "is required", fix);
    }

    pub fn invalid(&mut self, path: &Path, message: impl Into<String>, fix: impl Into<String>) {
        self.push(path, ErrorKind::Invalid, message, fix);
    }

    pub fn forbidden(&mut self, path: &Path, message: impl Into<String>, fix: impl Into<String>) {
        self.push(path, ErrorKind::Forbidden, message, fix);
    }

    /// `value` is not among `allowed`.
    pub fn not_supported(&mut self, path: &Path, value: &str, allowed: &[&str]) {
        self.push(
            path,
            ErrorKind::NotSupported,
            format!("`{value}` is not supported"),
            format!("use one of {}", allowed.join(", ")),
        );
    }

    /// A string longer than `max` characters.
    pub fn max_len(&mut self, path: &Path, value: &str, max: usize) {
        let n = value.chars().count();
        if n > max {
            self.push(
                path,
                ErrorKind::TooLong,
                format!("is {n} characters long, more than {max}"),
                format!("shorten it to at most {max}"),
            );
        }
    }

    /// A list or map with more than `max` entries.
    pub fn max_items(&mut self, path: &Path, n: usize, max: usize, what: &str) {
        if n > max {
            self.push(
                path,
                ErrorKind::TooMany,
                format!("has {n} {what}, more than {max}"),
                format!("keep at most {max}"),
            );
        }
    }

    /// An integer outside `min..=max` (either bound optional).
    pub fn range(&mut self, path: &Path, value: i64, min: Option<i64>, max: Option<i64>) {
        let below = min.is_some_and(|m| value < m);
        let above = max.is_some_and(|m| value > m);
        if below || above {
            let bounds = match (min, max) {
                (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => unreachable!("a range has a bound"),
            };
            self.push(
                path,
                ErrorKind::Invalid,
                format!("{value} is out of range"),
                format!("use a value {bounds}"),
            );
        }
    }

    /// `value` must match `pattern` (an anchored or unanchored CRD pattern).
    pub fn pattern(&mut self, path: &Path, value: &str, pattern: &crate::rules::Pattern) {
        if !pattern.is_match(value) {
            self.push(
                path,
                ErrorKind::Invalid,
                format!("`{value}` does not match {}", pattern.source()),
                pattern.hint(),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self, kind: &'static str, name: &str) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors {
                kind,
                name: name.to_owned(),
                errors: self.0,
            })
        }
    }
}
