//! TON amounts: exact conversion between decimal TON strings and integer nanoTON.
//!
//! Money is never a float: `"1.5"` parses to `1_500_000_000` nanoTON by string arithmetic, and
//! printing inverts it exactly (trailing zeros trimmed).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// nanoTON per TON.
pub const NANO_PER_TON: u128 = 1_000_000_000;

/// Decimal places of a TON amount.
pub const TON_DECIMALS: usize = 9;

/// Errors of parsing a TON amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    /// Empty input.
    #[error("empty amount")]
    Empty,
    /// A character other than digits and one decimal point (signs are refused: amounts are never
    /// negative).
    #[error("invalid amount {0:?}: expected digits with at most one '.'")]
    Syntax(String),
    /// More than nine decimals: the value is not a whole number of nanoTON.
    #[error("amount {0:?} has more than 9 decimals (finer than 1 nanoTON)")]
    TooPrecise(String),
    /// Larger than `u128` nanoTON.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// Parses a decimal TON amount (`"12"`, `"0.5"`, `".000000001"`) into nanoTON.
pub fn parse_ton(s: &str) -> Result<u128, UnitsError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(UnitsError::Empty);
    }
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(UnitsError::Syntax(s.to_owned()));
    }
    if frac.len() > TON_DECIMALS {
        return Err(UnitsError::TooPrecise(s.to_owned()));
    }
    let overflow = || UnitsError::Overflow(s.to_owned());
    let whole: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| overflow())?
    };
    let frac_nano: u128 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<width$}", width = TON_DECIMALS);
        padded
            .parse()
            .map_err(|_| UnitsError::Syntax(s.to_owned()))?
    };
    whole
        .checked_mul(NANO_PER_TON)
        .and_then(|w| w.checked_add(frac_nano))
        .ok_or_else(overflow)
}

/// Parses a nanoTON integer string (`"1500000000"`).
pub fn parse_nano(s: &str) -> Result<u128, UnitsError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(UnitsError::Empty);
    }
    if !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(UnitsError::Syntax(s.to_owned()));
    }
    t.parse().map_err(|_| UnitsError::Overflow(s.to_owned()))
}

/// Prints nanoTON as a decimal TON amount without trailing zeros (`1500000000` → `"1.5"`).
pub fn format_ton(nano: u128) -> String {
    let whole = nano / NANO_PER_TON;
    let frac = nano % NANO_PER_TON;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:09}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// An amount of TON held as nanoTON; parses from and prints as decimal TON.
///
/// Accepts a `n` suffix for raw nanoTON (`"1500n"`), handy on the command line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ton(pub u128);

impl Ton {
    /// From nanoTON.
    pub const fn from_nano(nano: u128) -> Self {
        Self(nano)
    }
    /// The amount in nanoTON.
    pub const fn nano(self) -> u128 {
        self.0
    }
}

impl FromStr for Ton {
    type Err = UnitsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept what Display prints ("1.5 TON").
        let t = s.trim();
        let t = t
            .strip_suffix("TON")
            .or_else(|| t.strip_suffix("ton"))
            .unwrap_or(t)
            .trim_end();
        match t.strip_suffix('n') {
            Some(n) => parse_nano(n).map(Ton),
            None => parse_ton(t).map(Ton),
        }
    }
}

impl fmt::Display for Ton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} TON", format_ton(self.0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_ton("1").unwrap(), 1_000_000_000);
        assert_eq!(parse_ton("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_ton("0.000000001").unwrap(), 1);
        assert_eq!(parse_ton(".25").unwrap(), 250_000_000);
        assert_eq!(parse_ton("7.").unwrap(), 7_000_000_000);
        assert_eq!(parse_ton(" 0 ").unwrap(), 0);
        assert_eq!("1500n".parse::<Ton>().unwrap(), Ton(1500));
        assert_eq!("2.1".parse::<Ton>().unwrap().to_string(), "2.1 TON");
        assert_eq!("2.1 TON".parse::<Ton>().unwrap(), Ton(2_100_000_000));
    }

    #[test]
    fn rejects_bad_amounts() {
        assert_eq!(parse_ton(""), Err(UnitsError::Empty));
        assert!(matches!(parse_ton("-1"), Err(UnitsError::Syntax(_))));
        assert!(matches!(parse_ton("1e9"), Err(UnitsError::Syntax(_))));
        assert!(matches!(parse_ton("1.2.3"), Err(UnitsError::Syntax(_))));
        assert!(matches!(parse_ton("."), Err(UnitsError::Syntax(_))));
        assert!(matches!(
            parse_ton("0.0000000001"),
            Err(UnitsError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_ton(&"9".repeat(40)),
            Err(UnitsError::Overflow(_))
        ));
        assert!(matches!(parse_nano("12x"), Err(UnitsError::Syntax(_))));
    }

    #[test]
    fn prints_without_trailing_zeros() {
        assert_eq!(format_ton(0), "0");
        assert_eq!(format_ton(1), "0.000000001");
        assert_eq!(format_ton(1_500_000_000), "1.5");
        assert_eq!(
            format_ton(u128::MAX),
            "340282366920938463463374607431.768211455"
        );
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(n in any::<u128>()) {
            prop_assert_eq!(parse_ton(&format_ton(n)).unwrap(), n);
        }
    }
}
