//! Address normalisation: every address the relayer stores or compares is in raw form
//! (`workchain:64 hex digits`), whatever form (raw, user-friendly) a peer sent.

use std::str::FromStr as _;

use tonlib_core::TonAddress;

use crate::error::{Error, Result};

/// Parses a TON address in any standard form and returns its raw form.
pub fn normalize(address: &str) -> Result<String> {
    let parsed = TonAddress::from_str(address).map_err(|e| Error::InvalidAddress {
        address: address.chars().take(100).collect(),
        detail: e.to_string(),
    })?;
    Ok(parsed.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_friendly_forms_normalise_to_raw() {
        let raw = format!("0:{}", "ab".repeat(32));
        assert_eq!(normalize(&raw).unwrap(), raw);
        let friendly = TonAddress::from_hex_str(&raw).unwrap().to_base64_url();
        assert_eq!(normalize(&friendly).unwrap(), raw);
        assert_eq!(normalize(&format!("0:{}", "AB".repeat(32))).unwrap(), raw);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in ["", "0:zz", "hello", "0:abcd", "x:00"] {
            assert!(
                matches!(normalize(bad), Err(Error::InvalidAddress { .. })),
                "{bad}"
            );
        }
    }
}
