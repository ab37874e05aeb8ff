//! What an observer of a link can read: the bytes a [`crate::proxy::TcpProxy`] recorded, decoded
//! the way the protocol encodes them. The links carry binary fields as base64 (or hex) inside
//! JSON, and a WebSocket client masks every frame it sends, so a plaintext prompt would not
//! appear byte for byte even with sealing switched off; [`carries`] searches every view.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::proxy::Flow;

/// Shortest run of base64 or hex characters worth decoding (shorter ones are words and numbers).
const MIN_RUN: usize = 16;
/// How many times decoded bytes are decoded again (base64 inside JSON inside base64).
const MAX_DEPTH: usize = 3;

/// Whether any connection carries `needle` in any form an observer can decode.
pub fn carries(flows: &[Flow], needle: &[u8]) -> bool {
    flows
        .iter()
        .flat_map(|f| [&f.up, &f.down])
        .any(|bytes| readable(bytes).iter().any(|v| contains(v, needle)))
}

/// Whether `haystack` holds `needle` byte for byte.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every view of one direction of a connection: the raw bytes, the payloads of its WebSocket
/// frames (unmasked, after the upgrade), and every base64 or hex run in those, decoded
/// (recursively, a few levels deep).
pub fn readable(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut views = vec![bytes.to_vec()];
    if let Some(frames) = websocket_payloads(bytes) {
        views.push(frames);
    }
    let mut frontier = views.clone();
    for _ in 0..MAX_DEPTH {
        let decoded: Vec<Vec<u8>> = frontier.iter().flat_map(|v| decode_runs(v)).collect();
        if decoded.is_empty() {
            break;
        }
        views.extend(decoded.iter().cloned());
        frontier = decoded;
    }
    views
}

/// The payloads of the WebSocket frames after an HTTP upgrade (a request or a `101` answer),
/// concatenated and unmasked; `None` when the bytes hold no upgrade.
pub fn websocket_payloads(bytes: &[u8]) -> Option<Vec<u8>> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    if !head.contains("upgrade: websocket") && !head.starts_with("http/1.1 101") {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = &bytes[head_end..];
    while rest.len() >= 2 {
        let masked = rest[1] & 0x80 != 0;
        let (len, mut at) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => {
                let n = u64::from_be_bytes(rest[2..10].try_into().ok()?);
                (usize::try_from(n).ok()?, 10)
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        let mask = if masked {
            let m: [u8; 4] = rest.get(at..at + 4)?.try_into().ok()?;
            at += 4;
            Some(m)
        } else {
            None
        };
        // A frame cut off by the end of the recording still shows what it carried so far.
        let end = (at + len).min(rest.len());
        let payload = rest[at..end].iter().enumerate().map(|(i, b)| match mask {
            Some(m) => b ^ m[i % 4],
            None => *b,
        });
        out.extend(payload);
        rest = &rest[end..];
    }
    Some(out)
}

/// A base64 decoder that takes what an observer finds: no padding needed, any trailing bits.
fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Decodes every maximal run of base64 (either alphabet, padded or not) or hex characters.
fn decode_runs(bytes: &[u8]) -> Vec<Vec<u8>> {
    let engines = [lenient(&alphabet::STANDARD), lenient(&alphabet::URL_SAFE)];
    let mut out = Vec::new();
    let b64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
    for run in runs(bytes, b64) {
        // A run may start mid-quantum (glued to a word before it, say): try every alignment.
        for skip in 0..4 {
            let r = &run[skip..];
            // One character past a quantum boundary carries no whole byte.
            let r = &r[..r.len() - usize::from(r.len() % 4 == 1)];
            for engine in &engines {
                if let Ok(d) = engine.decode(r) {
                    out.push(d);
                }
            }
        }
    }
    for run in runs(bytes, |c| c.is_ascii_hexdigit()) {
        if let Ok(d) = hex::decode(&run[..run.len() & !1]) {
            out.push(d);
        }
    }
    out
}

fn runs(bytes: &[u8], member: impl Fn(u8) -> bool) -> Vec<&[u8]> {
    bytes
        .split(|c| !member(*c))
        .filter(|r| r.len() >= MIN_RUN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"CANARY-in-a-test-run";

    #[test]
    fn finds_base64_in_json_and_hex() {
        let sealed = [b"xy".as_slice(), SECRET].concat();
        let json = format!(
            r#"{{"input":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(sealed)
        );
        assert!(!contains(json.as_bytes(), SECRET));
        assert!(carries(
            &[Flow {
                up: json.into_bytes(),
                down: Vec::new()
            }],
            SECRET
        ));
        let h = format!("key={}", hex::encode(SECRET));
        assert!(carries(
            &[Flow {
                up: Vec::new(),
                down: h.into_bytes()
            }],
            SECRET
        ));
        assert!(!carries(
            &[Flow {
                up: b"nothing here at all, not even base64".to_vec(),
                down: Vec::new()
            }],
            SECRET
        ));
    }

    #[test]
    fn unmasks_websocket_frames() {
        let mut up = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_vec();
        let mask = [0x11, 0x22, 0x33, 0x44];
        up.push(0x81);
        up.push(0x80 | u8::try_from(SECRET.len()).unwrap());
        up.extend(mask);
        up.extend(SECRET.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        assert!(!contains(&up, SECRET));
        assert_eq!(websocket_payloads(&up).unwrap(), SECRET);
        assert!(carries(
            &[Flow {
                up,
                down: Vec::new()
            }],
            SECRET
        ));
    }
}
