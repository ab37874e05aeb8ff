//! The response: a stream of sealed chunks, and the output commitment.
//!
//! Chunk wire format (big-endian):
//!
//! ```text
//! version:u8 (=1) | flags:u8 (bit 0 = final, others zero) | seq:u64 | ct_len:u32 | ciphertext
//! ```
//!
//! Key: the response key exported from the recipient's HPKE context. Nonce: `0u32 ‖ seq:u64be`.
//! AAD: `"cocoon/response-chunk/v1\0" ‖ job binding ‖ version ‖ flags ‖ seq`. Sequence numbers
//! start at 0 and the opener accepts only the next one, so a modified chunk fails to
//! authenticate, a dropped or reordered one is out of order, a repeated one is a replay, and a
//! stream without its final chunk is truncated.
//!
//! Output commitment: `HMAC-SHA256(export("cocoon/output-commit/v1"), output bytes)` over the
//! concatenated plaintext. Only the client and the worker know the key, so the on-chain value
//! hides the answer from everyone else while binding the worker to it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::{Result, SealError};
use super::input::ResponseSecrets;
use super::job::JobContext;

/// Chunk format version.
pub const CHUNK_VERSION: u8 = 1;
/// Largest plaintext per chunk (1 MiB).
pub const MAX_CHUNK_LEN: usize = 1024 * 1024;
const FLAG_FINAL: u8 = 0x01;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 1 + 8 + 4;
const CHUNK_DOMAIN: &[u8] = b"cocoon/response-chunk/v1\0";

type HmacSha256 = Hmac<Sha256>;

/// A parsed response chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// Position in the stream, from 0.
    pub seq: u64,
    /// Whether this is the last chunk.
    pub is_final: bool,
    /// Ciphertext with tag.
    pub ciphertext: Vec<u8>,
}

impl SealedChunk {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.ciphertext.len());
        out.push(CHUNK_VERSION);
        out.push(if self.is_final { FLAG_FINAL } else { 0 });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the canonical bytes; unknown version or flags, bad length and trailing data fail.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(SealError::Truncated {
                field: "chunk header",
            });
        }
        if bytes[0] != CHUNK_VERSION {
            return Err(SealError::UnsupportedVersion(bytes[0]));
        }
        let flags = bytes[1];
        if flags & !FLAG_FINAL != 0 {
            return Err(SealError::BadLength {
                field: "chunk flags",
                len: flags as usize,
                min: 0,
                max: 1,
            });
        }
        let seq = u64::from_be_bytes(bytes[2..10].try_into().unwrap_or_default());
        let ct_len = u32::from_be_bytes(bytes[10..14].try_into().unwrap_or_default()) as usize;
        let max = MAX_CHUNK_LEN + TAG_LEN;
        if !(TAG_LEN..=max).contains(&ct_len) {
            return Err(SealError::BadLength {
                field: "chunk ciphertext",
                len: ct_len,
                min: TAG_LEN,
                max,
            });
        }
        let rest = &bytes[HEADER_LEN..];
        if rest.len() < ct_len {
            return Err(SealError::Truncated {
                field: "chunk ciphertext",
            });
        }
        if rest.len() > ct_len {
            return Err(SealError::TrailingBytes {
                count: rest.len() - ct_len,
            });
        }
        Ok(Self {
            seq,
            is_final: flags & FLAG_FINAL != 0,
            ciphertext: rest.to_vec(),
        })
    }
}

struct ChunkCipher {
    cipher: ChaCha20Poly1305,
    binding: Vec<u8>,
}

impl ChunkCipher {
    fn new(secrets: &ResponseSecrets, job: &JobContext) -> Result<Self> {
        Ok(Self {
            cipher: ChaCha20Poly1305::new(&Key::from(secrets.response_key)),
            binding: job.binding()?,
        })
    }

    fn nonce(seq: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        Nonce::from(n)
    }

    fn aad(&self, seq: u64, is_final: bool) -> Vec<u8> {
        let flags = if is_final { FLAG_FINAL } else { 0 };
        [
            CHUNK_DOMAIN,
            &self.binding,
            &[CHUNK_VERSION, flags],
            &seq.to_be_bytes(),
        ]
        .concat()
    }
}

/// Worker side: seals the response chunk by chunk and accumulates the output commitment.
pub struct ResponseSealer {
    cipher: ChunkCipher,
    mac: HmacSha256,
    next_seq: u64,
    finished: bool,
}

impl std::fmt::Debug for ResponseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResponseSealer(next_seq {}, finished {})",
            self.next_seq, self.finished
        )
    }
}

fn new_mac(key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

impl ResponseSealer {
    pub(crate) fn new(secrets: &ResponseSecrets, job: &JobContext) -> Result<Self> {
        Ok(Self {
            cipher: ChunkCipher::new(secrets, job)?,
            mac: new_mac(&secrets.commit_key),
            next_seq: 0,
            finished: false,
        })
    }

    /// Seals the next chunk; `is_final` closes the stream.
    pub fn seal_chunk(&mut self, plaintext: &[u8], is_final: bool) -> Result<Vec<u8>> {
        if self.finished {
            return Err(SealError::StreamFinished);
        }
        if plaintext.len() > MAX_CHUNK_LEN {
            return Err(SealError::BadLength {
                field: "chunk",
                len: plaintext.len(),
                min: 0,
                max: MAX_CHUNK_LEN,
            });
        }
        let seq = self.next_seq;
        let aad = self.cipher.aad(seq, is_final);
        let ciphertext = self
            .cipher
            .cipher
            .encrypt(
                &ChunkCipher::nonce(seq),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::SealFailed)?;
        self.mac.update(plaintext);
        self.next_seq += 1;
        self.finished = is_final;
        Ok(SealedChunk {
            seq,
            is_final,
            ciphertext,
        }
        .encode())
    }

    /// The output commitment, once the final chunk is sealed.
    pub fn output_commitment(&self) -> Result<[u8; 32]> {
        if !self.finished {
            return Err(SealError::StreamTruncated);
        }
        Ok(self.mac.clone().finalize().into_bytes().into())
    }
}

/// Client side: opens chunks strictly in order and checks the stream is complete.
pub struct ResponseOpener {
    cipher: ChunkCipher,
    mac: HmacSha256,
    next_seq: u64,
    finished: bool,
}

impl std::fmt::Debug for ResponseOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResponseOpener(next_seq {}, finished {})",
            self.next_seq, self.finished
        )
    }
}

impl ResponseOpener {
    pub(crate) fn new(secrets: &ResponseSecrets, job: &JobContext) -> Result<Self> {
        Ok(Self {
            cipher: ChunkCipher::new(secrets, job)?,
            mac: new_mac(&secrets.commit_key),
            next_seq: 0,
            finished: false,
        })
    }

    /// Opens the next chunk and returns its plaintext.
    pub fn open_chunk(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        if self.finished {
            return Err(SealError::ChunkAfterFinal);
        }
        let chunk = SealedChunk::decode(bytes)?;
        let expected = self.next_seq;
        if chunk.seq < expected {
            return Err(SealError::ChunkReplayed {
                expected,
                got: chunk.seq,
            });
        }
        if chunk.seq > expected {
            return Err(SealError::ChunkOutOfOrder {
                expected,
                got: chunk.seq,
            });
        }
        let aad = self.cipher.aad(chunk.seq, chunk.is_final);
        let plaintext = self
            .cipher
            .cipher
            .decrypt(
                &ChunkCipher::nonce(chunk.seq),
                Payload {
                    msg: &chunk.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::ChunkAuthFailed { seq: chunk.seq })?;
        self.mac.update(&plaintext);
        self.next_seq += 1;
        self.finished = chunk.is_final;
        Ok(plaintext)
    }

    /// Whether the final chunk has been opened.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Ends the stream: the output commitment of everything received, or
    /// [`SealError::StreamTruncated`] when the final chunk never came.
    pub fn finish(self) -> Result<[u8; 32]> {
        if !self.finished {
            return Err(SealError::StreamTruncated);
        }
        Ok(self.mac.finalize().into_bytes().into())
    }
}

/// Recomputes the output commitment of `output` under a commitment key (for a client proving
/// later which answer a receipt committed to).
pub fn output_commitment(commit_key: &[u8; 32], output: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(commit_key);
    mac.update(output);
    mac.finalize().into_bytes().into()
}
