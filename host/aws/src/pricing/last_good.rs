//! "Keep the last good data on failure": a value refreshed from an API,
//! which a failed refresh leaves as it was.

use std::fmt;

/// A value and the history of its refreshes.
#[derive(Debug, Clone, PartialEq)]
pub struct LastGood<T> {
    value: T,
    /// Unix ms of the last successful refresh; `None` while the value is
    /// still the initial one.
    refreshed_ms: Option<u64>,
    /// Unix ms of the last attempt, successful or not.
    attempted_ms: Option<u64>,
    failure: Option<Failure>,
}

/// The last failed refresh, while no refresh has succeeded since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at_ms: u64,
    pub message: String,
    /// Failed refreshes in a row.
    pub consecutive: u32,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Updated,
    /// The refresh failed and the last good value stays.
    KeptLastGood(Failure),
}

impl<T> LastGood<T> {
    /// Starts from `initial` (a fallback), not yet refreshed.
    pub fn new(initial: T) -> Self {
        Self {
            value: initial,
            refreshed_ms: None,
            attempted_ms: None,
            failure: None,
        }
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    /// Unix ms of the last successful refresh.
    pub fn refreshed_ms(&self) -> Option<u64> {
        self.refreshed_ms
    }

    /// The failure since the last success, if the latest refresh failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Applies a refresh's result: a success replaces the value, a failure
    /// keeps it and is remembered.
    pub fn record<E: fmt::Display>(&mut self, result: Result<T, E>, now_ms: u64) -> Refreshed {
        self.attempted_ms = Some(now_ms);
        match result {
            Ok(value) => {
                self.value = value;
                self.refreshed_ms = Some(now_ms);
                self.failure = None;
                Refreshed::Updated
            }
            Err(e) => {
                let failure = Failure {
                    at_ms: now_ms,
                    message: e.to_string(),
                    consecutive: self.failure.as_ref().map_or(1, |f| f.consecutive + 1),
                };
                self.failure = Some(failure.clone());
                Refreshed::KeptLastGood(failure)
            }
        }
    }

    /// Whether to refresh at `now_ms`: never tried, `interval_ms` after a
    /// success, or `retry_ms` after a failure.
    pub fn due(&self, now_ms: u64, interval_ms: u64, retry_ms: u64) -> bool {
        let Some(attempted) = self.attempted_ms else {
            return true;
        };
        let wait = if self.failure.is_some() {
            retry_ms
        } else {
            interval_ms
        };
        now_ms >= attempted.saturating_add(wait)
    }
}
