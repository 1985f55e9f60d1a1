//! Go durations, as Karpenter's API and annotations write them.

use std::time::Duration;

/// Why a text is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    #[error("it is negative")]
    Negative,
    #[error("a number has no unit")]
    NoUnit,
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    #[error("too large")]
    TooLarge,
    #[error("it is not a number and a unit")]
    Malformed,
}

/// Parses a Go duration (`90s`, `5m`, `1h30m`, `1.5h`, `500ms`; `0` alone is
/// allowed), exactly to the nanosecond: a sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`). Digits past nanosecond precision are dropped, as Go does.
pub fn parse_go_duration_exact(text: &str) -> Result<Duration, GoDurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(GoDurationError::Negative);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(GoDurationError::Malformed);
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(GoDurationError::NoUnit),
            _ => return Err(GoDurationError::UnknownUnit(unit.to_string())),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(GoDurationError::Malformed);
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| GoDurationError::TooLarge)?
        };
        let mut part = whole.checked_mul(scale);
        let mut unit_value = scale;
        for digit in fraction.bytes() {
            unit_value /= 10;
            part = part.and_then(|p| p.checked_add(u128::from(digit - b'0') * unit_value));
        }
        nanos = match part.and_then(|p| nanos.checked_add(p)) {
            Some(n) if n <= u128::from(u64::MAX) => n,
            _ => return Err(GoDurationError::TooLarge),
        };
        rest = after;
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// [`parse_go_duration_exact`], for callers that only need to know whether
/// the text is a duration.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    parse_go_duration_exact(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("true"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_go_duration_exact("99999999999999999999h"),
            Err(GoDurationError::TooLarge)
        );
        assert_eq!(
            parse_go_duration_exact("-1s"),
            Err(GoDurationError::Negative)
        );
    }
}
