//! The bytes a worker signs with its ed25519 receipt key to open a session with a relayer.
//!
//! ```text
//! payload = AUTH_DOMAIN
//!        || version:u16be
//!        || nonce:[32]                       (the relayer's fresh challenge)
//!        || len:u16be || relayer id (utf-8)  (so a signature for one relayer is useless at another)
//!        || len:u16be || worker address (utf-8, raw `workchain:hex`)
//!        || receipt_key:[32]
//! ```
//!
//! The domain tag keeps this signature from ever being valid as a receipt (receipts sign the
//! representation hash of a TL-B cell, never raw bytes starting with this tag), and the nonce makes
//! every signature single-use.

/// Domain tag at the start of every session-auth payload.
pub const AUTH_DOMAIN: &[u8] = b"cocoon/relay-auth/v1\0";

/// Builds the exact byte string the worker signs. Strings longer than `u16::MAX` bytes are
/// truncated in the length prefix only in theory: callers reject such inputs before signing
/// (addresses and relayer ids are short).
pub fn auth_payload(
    version: u16,
    nonce: &[u8; 32],
    relayer_id: &str,
    worker_address: &str,
    receipt_key: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        AUTH_DOMAIN.len() + 2 + 32 + 4 + relayer_id.len() + worker_address.len() + 32,
    );
    out.extend_from_slice(AUTH_DOMAIN);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(nonce);
    push_str(&mut out, relayer_id);
    push_str(&mut out, worker_address);
    out.extend_from_slice(receipt_key);
    out
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout_is_pinned() {
        let p = auth_payload(1, &[7u8; 32], "r", "0:ab", &[9u8; 32]);
        let mut want = AUTH_DOMAIN.to_vec();
        want.extend_from_slice(&[0, 1]);
        want.extend_from_slice(&[7u8; 32]);
        want.extend_from_slice(&[0, 1, b'r']);
        want.extend_from_slice(&[0, 4, b'0', b':', b'a', b'b']);
        want.extend_from_slice(&[9u8; 32]);
        assert_eq!(p, want);
    }

    #[test]
    fn every_field_changes_the_payload() {
        let base = auth_payload(1, &[7u8; 32], "r", "0:ab", &[9u8; 32]);
        assert_ne!(base, auth_payload(2, &[7u8; 32], "r", "0:ab", &[9u8; 32]));
        assert_ne!(base, auth_payload(1, &[8u8; 32], "r", "0:ab", &[9u8; 32]));
        assert_ne!(base, auth_payload(1, &[7u8; 32], "s", "0:ab", &[9u8; 32]));
        assert_ne!(base, auth_payload(1, &[7u8; 32], "r", "0:ac", &[9u8; 32]));
        assert_ne!(base, auth_payload(1, &[7u8; 32], "r", "0:ab", &[1u8; 32]));
        // Length prefixes keep the boundary between the two strings unambiguous.
        assert_ne!(auth_payload(1, &[7u8; 32], "r0", ":ab", &[9u8; 32]), base);
    }
}
