//! The sealed input: one random content key, wrapped with HPKE for each of K recipients.
//!
//! Wire format (big-endian):
//!
//! ```text
//! version:u8 (=1) | suite:u16 (=0x0001) | count:u8 (1..=16)
//! count × ( recipient_pk[32] | enc[32] | wrapped_content_key[48] )
//! ct_len:u32 | ciphertext[ct_len] (content, ChaCha20-Poly1305 with a 16-byte tag)
//! ```
//!
//! - HPKE info = `"cocoon/seal/v1\0" ‖ job binding`: a wrapped key opens only for this job.
//! - Content AAD = `"cocoon/input/v1\0" ‖ job binding ‖ header` (everything before `ct_len`), so
//!   neither the recipient list nor the job can be changed without detection.
//! - The content key is random and used once, so the content nonce is fixed at zero.
//!
//! Each recipient's HPKE context also exports the response key and the output-commitment key
//! ([`ResponseSecrets`]); the client keeps those instead of a long-term key pair.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use tracing::debug;

use super::error::{Result, SealError};
use super::job::JobContext;
use super::keys::{EncryptionKeyPair, parse_public};
use super::stream::{ResponseOpener, ResponseSealer};
use super::{Aead as HpkeAead, EncappedKey, Kdf, Kem, MAX_RECIPIENTS};

/// Format version.
pub const SEALED_INPUT_VERSION: u8 = 1;
/// Ciphersuite id: X25519-HKDF-SHA256 / HKDF-SHA256 / ChaCha20-Poly1305.
pub const SUITE_X25519_SHA256_CHACHA20: u16 = 0x0001;
/// Largest plaintext input accepted (16 MiB).
pub const MAX_INPUT_LEN: usize = 16 * 1024 * 1024;
const TAG_LEN: usize = 16;
const ENTRY_LEN: usize = 32 + 32 + 32 + TAG_LEN;
const INFO_DOMAIN: &[u8] = b"cocoon/seal/v1\0";
const CONTENT_DOMAIN: &[u8] = b"cocoon/input/v1\0";
const WRAP_AAD: &[u8] = b"cocoon/content-key/v1";
const EXPORT_RESPONSE: &[u8] = b"cocoon/response/v1";
const EXPORT_OUTPUT_COMMIT: &[u8] = b"cocoon/output-commit/v1";

/// One recipient's entry in a sealed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientEntry {
    /// The recipient's X25519 public key.
    pub public_key: [u8; 32],
    /// HPKE encapsulated key.
    pub enc: [u8; 32],
    /// The content key sealed to this recipient (32 bytes + tag).
    pub wrapped_key: [u8; ENTRY_LEN - 64],
}

/// A parsed sealed input (see the module doc for the wire format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInput {
    /// One entry per candidate worker.
    pub recipients: Vec<RecipientEntry>,
    /// The content ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

impl SealedInput {
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.recipients.len() * ENTRY_LEN);
        out.push(SEALED_INPUT_VERSION);
        out.extend_from_slice(&SUITE_X25519_SHA256_CHACHA20.to_be_bytes());
        out.push(self.recipients.len() as u8);
        for r in &self.recipients {
            out.extend_from_slice(&r.public_key);
            out.extend_from_slice(&r.enc);
            out.extend_from_slice(&r.wrapped_key);
        }
        out
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the canonical bytes: version, suite, count, lengths, duplicates, trailing data.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.take("version", 1)?[0];
        if version != SEALED_INPUT_VERSION {
            return Err(SealError::UnsupportedVersion(version));
        }
        let suite = u16::from_be_bytes(r.array("suite")?);
        if suite != SUITE_X25519_SHA256_CHACHA20 {
            return Err(SealError::UnsupportedSuite(suite));
        }
        let count = r.take("count", 1)?[0] as usize;
        if count == 0 || count > MAX_RECIPIENTS {
            return Err(SealError::BadRecipientCount(count));
        }
        let mut recipients: Vec<RecipientEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = RecipientEntry {
                public_key: r.array("recipient key")?,
                enc: r.array("encapsulated key")?,
                wrapped_key: r.array("wrapped key")?,
            };
            if recipients.iter().any(|e| e.public_key == entry.public_key) {
                return Err(SealError::DuplicateRecipient);
            }
            recipients.push(entry);
        }
        let ct_len = u32::from_be_bytes(r.array("ciphertext length")?) as usize;
        let max = MAX_INPUT_LEN + TAG_LEN;
        if !(TAG_LEN..=max).contains(&ct_len) {
            return Err(SealError::BadLength {
                field: "ciphertext",
                len: ct_len,
                min: TAG_LEN,
                max,
            });
        }
        let ciphertext = r.take("ciphertext", ct_len)?.to_vec();
        if r.pos != bytes.len() {
            return Err(SealError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        Ok(Self {
            recipients,
            ciphertext,
        })
    }
}

/// The secrets one recipient's HPKE context exports: what the client keeps to read that
/// worker's response and check its output commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseSecrets {
    /// The recipient these secrets belong to.
    pub recipient: [u8; 32],
    pub(crate) response_key: [u8; 32],
    pub(crate) commit_key: [u8; 32],
}

impl std::fmt::Debug for ResponseSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResponseSecrets(recipient {})",
            hex::encode(self.recipient)
        )
    }
}

impl ResponseSecrets {
    fn export<C: Exporter>(recipient: [u8; 32], ctx: &C) -> Self {
        let mut response_key = [0u8; 32];
        let mut commit_key = [0u8; 32];
        // Exporting 32 bytes from HKDF-SHA256 cannot exceed the KDF's output limit.
        ctx.export_into(EXPORT_RESPONSE, &mut response_key);
        ctx.export_into(EXPORT_OUTPUT_COMMIT, &mut commit_key);
        Self {
            recipient,
            response_key,
            commit_key,
        }
    }

    /// The key of the hiding output commitment (HMAC-SHA256 key).
    pub fn output_commit_key(&self) -> [u8; 32] {
        self.commit_key
    }
}

trait Exporter {
    fn export_into(&self, label: &[u8], out: &mut [u8]);
}

impl Exporter for hpke::aead::AeadCtxS<HpkeAead, Kdf, Kem> {
    fn export_into(&self, label: &[u8], out: &mut [u8]) {
        self.export(label, out)
            .expect("32-byte export is within HKDF-SHA256 limits");
    }
}

impl Exporter for hpke::aead::AeadCtxR<HpkeAead, Kdf, Kem> {
    fn export_into(&self, label: &[u8], out: &mut [u8]) {
        self.export(label, out)
            .expect("32-byte export is within HKDF-SHA256 limits");
    }
}

/// What the client keeps after sealing: the bytes to send, their commitment, and per-recipient
/// response secrets.
#[derive(Debug, Clone)]
pub struct ClientSeal {
    /// The sealed input bytes to hand to the relayer.
    pub sealed: Vec<u8>,
    /// sha256 of `sealed`: the input commitment put in `OpenJob`.
    pub input_commitment: [u8; 32],
    /// One entry per recipient, in the order given.
    pub secrets: Vec<ResponseSecrets>,
    job: JobContext,
}

impl ClientSeal {
    /// An opener for the response of the worker with this encryption key.
    pub fn response_opener(&self, worker_key: &[u8; 32]) -> Result<ResponseOpener> {
        let secrets = self
            .secrets
            .iter()
            .find(|s| s.recipient == *worker_key)
            .ok_or(SealError::NotARecipient)?;
        ResponseOpener::new(secrets, &self.job)
    }
}

/// sha256 of the sealed input bytes: the input commitment in `OpenJob` and in every receipt.
pub fn input_commitment(sealed: &[u8]) -> [u8; 32] {
    Sha256::digest(sealed).into()
}

/// Seals `plaintext` for this job to each of `recipients` (1..=16 X25519 keys).
pub fn seal_input(
    plaintext: &[u8],
    recipients: &[[u8; 32]],
    job: &JobContext,
) -> Result<ClientSeal> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(SealError::BadRecipientCount(recipients.len()));
    }
    if plaintext.len() > MAX_INPUT_LEN {
        return Err(SealError::BadLength {
            field: "plaintext",
            len: plaintext.len(),
            min: 0,
            max: MAX_INPUT_LEN,
        });
    }
    let binding = job.binding()?;
    let info = [INFO_DOMAIN, &binding].concat();
    let content_key: [u8; 32] = rand::random();
    let mut entries = Vec::with_capacity(recipients.len());
    let mut secrets = Vec::with_capacity(recipients.len());
    for (i, pk_bytes) in recipients.iter().enumerate() {
        if recipients[..i].contains(pk_bytes) {
            return Err(SealError::DuplicateRecipient);
        }
        let pk = parse_public(pk_bytes)?;
        let (enc, mut ctx) = hpke::setup_sender::<HpkeAead, Kdf, Kem>(&OpModeS::Base, &pk, &info)
            .map_err(|_| SealError::InvalidPublicKey)?;
        let wrapped = ctx
            .seal(&content_key, WRAP_AAD)
            .map_err(|_| SealError::SealFailed)?;
        let mut entry = RecipientEntry {
            public_key: *pk_bytes,
            enc: [0; 32],
            wrapped_key: [0; 48],
        };
        entry.enc.copy_from_slice(&enc.to_bytes());
        entry.wrapped_key.copy_from_slice(&wrapped);
        entries.push(entry);
        secrets.push(ResponseSecrets::export(*pk_bytes, &ctx));
    }
    let mut sealed = SealedInput {
        recipients: entries,
        ciphertext: Vec::new(),
    };
    let aad = [CONTENT_DOMAIN, &binding, &sealed.header()].concat();
    sealed.ciphertext = content_cipher(&content_key)
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::SealFailed)?;
    let sealed = sealed.encode();
    let input_commitment = input_commitment(&sealed);
    debug!(target: "sdk::seal", recipients = recipients.len(), bytes = sealed.len(), commitment = %hex::encode(input_commitment), "sealed input");
    Ok(ClientSeal {
        sealed,
        input_commitment,
        secrets,
        job: job.clone(),
    })
}

/// An input opened by one of its recipients, with the sealer for its response.
#[derive(Debug)]
pub struct OpenedInput {
    /// The client's plaintext.
    pub plaintext: Vec<u8>,
    /// sha256 of the sealed bytes (must equal the job's on-chain input commitment).
    pub input_commitment: [u8; 32],
    /// Seals the response stream and computes the output commitment.
    pub response: ResponseSealer,
}

/// Opens a sealed input with the worker's key for this job.
pub fn open_input(sealed: &[u8], key: &EncryptionKeyPair, job: &JobContext) -> Result<OpenedInput> {
    let parsed = SealedInput::decode(sealed)?;
    let me = key.public_key();
    let entry = parsed
        .recipients
        .iter()
        .find(|e| e.public_key == me)
        .ok_or(SealError::NotARecipient)?;
    let binding = job.binding()?;
    let info = [INFO_DOMAIN, &binding].concat();
    let enc = EncappedKey::from_bytes(&entry.enc).map_err(|_| SealError::KeyUnwrapFailed)?;
    let mut ctx =
        hpke::setup_receiver::<HpkeAead, Kdf, Kem>(&OpModeR::Base, &key.secret, &enc, &info)
            .map_err(|_| SealError::KeyUnwrapFailed)?;
    let content_key = ctx
        .open(&entry.wrapped_key, WRAP_AAD)
        .map_err(|_| SealError::KeyUnwrapFailed)?;
    let content_key: [u8; 32] = content_key
        .as_slice()
        .try_into()
        .map_err(|_| SealError::KeyUnwrapFailed)?;
    let aad = [CONTENT_DOMAIN, &binding, &parsed.header()].concat();
    let plaintext = content_cipher(&content_key)
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: &parsed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::ContentAuthFailed)?;
    let secrets = ResponseSecrets::export(me, &ctx);
    Ok(OpenedInput {
        plaintext,
        input_commitment: input_commitment(sealed),
        response: ResponseSealer::new(&secrets, job)?,
    })
}

fn content_cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(SealError::Truncated { field })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }
}
