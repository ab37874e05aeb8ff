//! The response: a stream of sealed chunks, and the output commitment.
//!
//! Chunk wire format (big-endian):
//!
//! ```text
//! version:u8 (=1) | flags:u8 (bit 0 = final, others zero) | stream_id[16] | seq:u64 | ct_len:u32
//! | ciphertext[ct_len]
//! ```
//!
//! - `stream_id` is drawn at random by the worker for each response. The chunk key is
//!   `HMAC-SHA256(export("cocoon/response/v1"), "cocoon/response-key/v1\0" ‖ stream_id)`, so
//!   if a relayer makes a worker open the same sealed input twice, the two answers never share a
//!   key and nonce.
//! - Nonce: `0u32 ‖ seq:u64be`. AAD: `"cocoon/response-chunk/v1\0" ‖ job binding ‖ version ‖
//!   flags ‖ seq`.
//! - Sequence numbers start at 0 and the opener accepts only the next one, from the stream it
//!   started with: a modified chunk fails to authenticate, a dropped or reordered one is out of
//!   order, a repeated one is a replay, a chunk of another response is refused, and a stream
//!   without its final chunk is truncated.
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
const STREAM_ID_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 1 + STREAM_ID_LEN + 8 + 4;
const CHUNK_DOMAIN: &[u8] = b"cocoon/response-chunk/v1\0";
const KEY_DOMAIN: &[u8] = b"cocoon/response-key/v1\0";

type HmacSha256 = Hmac<Sha256>;

/// A parsed response chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// Random per response; selects the chunk key.
    pub stream_id: [u8; STREAM_ID_LEN],
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
        out.extend_from_slice(&self.stream_id);
        out.extend_from_slice(&self.seq.to_be_bytes());
        // Bounded by MAX_CHUNK_LEN + TAG_LEN for every chunk this module produces.
        out.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the canonical bytes; unknown version or flags, bad length and trailing data fail.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(SealError::Truncated {
                field: "chunk header",
            });
        };
        if header[0] != CHUNK_VERSION {
            return Err(SealError::UnsupportedVersion(header[0]));
        }
        let flags = header[1];
        if flags & !FLAG_FINAL != 0 {
            return Err(SealError::BadLength {
                field: "chunk flags",
                len: flags as usize,
                min: 0,
                max: 1,
            });
        }
        let mut stream_id = [0u8; STREAM_ID_LEN];
        stream_id.copy_from_slice(&header[2..2 + STREAM_ID_LEN]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&header[2 + STREAM_ID_LEN..10 + STREAM_ID_LEN]);
        let mut ct_len = [0u8; 4];
        ct_len.copy_from_slice(&header[10 + STREAM_ID_LEN..]);
        let ct_len = u32::from_be_bytes(ct_len) as usize;
        let max = MAX_CHUNK_LEN + TAG_LEN;
        if !(TAG_LEN..=max).contains(&ct_len) {
            return Err(SealError::BadLength {
                field: "chunk ciphertext",
                len: ct_len,
                min: TAG_LEN,
                max,
            });
        }
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
            stream_id,
            seq: u64::from_be_bytes(seq),
            is_final: flags & FLAG_FINAL != 0,
            ciphertext: rest.to_vec(),
        })
    }
}

struct ChunkCipher {
    cipher: ChaCha20Poly1305,
    stream_id: [u8; STREAM_ID_LEN],
    binding: Vec<u8>,
}

impl ChunkCipher {
    fn new(secrets: &ResponseSecrets, stream_id: [u8; STREAM_ID_LEN], binding: Vec<u8>) -> Self {
        let mut mac = new_mac(&secrets.response_key);
        mac.update(KEY_DOMAIN);
        mac.update(&stream_id);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
            stream_id,
            binding,
        }
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

fn new_mac(key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
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
            "ResponseSealer(stream {}, next_seq {}, finished {})",
            hex::encode(self.cipher.stream_id),
            self.next_seq,
            self.finished
        )
    }
}

impl ResponseSealer {
    pub(crate) fn new(secrets: &ResponseSecrets, job: &JobContext) -> Result<Self> {
        Ok(Self {
            cipher: ChunkCipher::new(secrets, rand::random(), job.binding()?),
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
            stream_id: self.cipher.stream_id,
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
    secrets: ResponseSecrets,
    binding: Vec<u8>,
    /// Set by the first chunk: every later chunk must belong to the same stream.
    cipher: Option<ChunkCipher>,
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
            secrets: secrets.clone(),
            binding: job.binding()?,
            cipher: None,
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
        let established = self.cipher.is_some();
        let cipher = match self.cipher.take() {
            Some(c) if c.stream_id != chunk.stream_id => {
                self.cipher = Some(c);
                return Err(SealError::ChunkFromOtherStream);
            }
            Some(c) => c,
            None => ChunkCipher::new(&self.secrets, chunk.stream_id, self.binding.clone()),
        };
        let aad = cipher.aad(chunk.seq, chunk.is_final);
        let opened = cipher.cipher.decrypt(
            &ChunkCipher::nonce(chunk.seq),
            Payload {
                msg: &chunk.ciphertext,
                aad: &aad,
            },
        );
        // Only an authenticated first chunk fixes the stream.
        if established || opened.is_ok() {
            self.cipher = Some(cipher);
        }
        let plaintext = opened.map_err(|_| SealError::ChunkAuthFailed { seq: chunk.seq })?;
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
