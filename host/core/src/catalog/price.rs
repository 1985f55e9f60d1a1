//! What counts as a price: finite, not negative, and below a bound.
//!
//! Every price that enters Dovetail (a catalog offering, a policy request
//! row, an observed spot price) is checked here, so costs summed over a long
//! simulation stay finite and meaningful instead of printing `inf`.

use std::fmt;

/// Highest price per instance-hour Dovetail accepts, in USD. The dearest EC2
/// instance lists at a few hundred dollars an hour; this is far above that
/// and far below where sums over many nodes and hours overflow to infinity
/// (documented in `docs/limits.md`).
pub const MAX_PRICE_PER_HOUR: f64 = 10_000.0;

/// Why a number is not a price.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PriceError {
    #[error("{} is not a price in USD per hour; give a finite number", Number(*.0))]
    NotFinite(f64),
    #[error("{} is negative; a price in USD per hour is 0 or more", Number(*.0))]
    Negative(f64),
    #[error(
        "{} USD per hour is above the limit of {} USD per hour; prices are per instance-hour (see docs/limits.md)",
        Number(*.0),
        Number(MAX_PRICE_PER_HOUR)
    )]
    TooHigh(f64),
}

/// `price` when it is a price in USD per hour, 0 to [`MAX_PRICE_PER_HOUR`].
pub fn check_price(price: f64) -> Result<f64, PriceError> {
    if !price.is_finite() {
        Err(PriceError::NotFinite(price))
    } else if price < 0.0 {
        Err(PriceError::Negative(price))
    } else if price > MAX_PRICE_PER_HOUR {
        Err(PriceError::TooHigh(price))
    } else {
        Ok(price)
    }
}

/// A number as people write it: `1e308` rather than 309 digits.
#[derive(Debug, Clone, Copy)]
pub struct Number(pub f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let a = v.abs();
        if v.is_finite() && a != 0.0 && !(1e-6..1e15).contains(&a) {
            write!(f, "{v:e}")
        } else {
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_bounded_finite_and_not_negative() {
        assert_eq!(check_price(0.0), Ok(0.0));
        assert_eq!(check_price(0.0734), Ok(0.0734));
        assert_eq!(check_price(MAX_PRICE_PER_HOUR), Ok(MAX_PRICE_PER_HOUR));
        assert_eq!(check_price(1e308), Err(PriceError::TooHigh(1e308)));
        assert_eq!(check_price(-0.5), Err(PriceError::Negative(-0.5)));
        assert!(matches!(
            check_price(f64::NAN),
            Err(PriceError::NotFinite(_))
        ));
        assert_eq!(
            check_price(f64::INFINITY),
            Err(PriceError::NotFinite(f64::INFINITY))
        );
        let message = check_price(1e308).unwrap_err().to_string();
        assert_eq!(
            message,
            "1e308 USD per hour is above the limit of 10000 USD per hour; \
             prices are per instance-hour (see docs/limits.md)"
        );
    }
}
