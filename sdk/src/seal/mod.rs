//! Sealing: HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305) of a request to one or K workers, the
//! response as a stream of sealed chunks, and the input and output commitments.
//!
//! ```text
//! client: seal_input(prompt, [worker keys], job) ─▶ sealed bytes ─▶ relayer ─▶ worker
//! worker: open_input(sealed, key, job) ─▶ prompt, ResponseSealer ─▶ chunks ─▶ relayer ─▶ client
//! client: ClientSeal::response_opener(worker key) ─▶ open_chunk … ─▶ finish() = output commitment
//! ```
//!
//! The client needs no long-term key pair: the response key and the output-commitment key are
//! exported from the HPKE context it set up with the worker.

mod error;
mod input;
mod job;
mod keys;
mod stream;

pub use error::{Result, SealError};
pub use input::{
    ClientSeal, MAX_INPUT_LEN, OpenedInput, RecipientEntry, ResponseSecrets, SEALED_INPUT_VERSION,
    SUITE_X25519_SHA256_CHACHA20, SealedInput, input_commitment, open_input, seal_input,
};
pub use job::{CHANNEL_JOB_ID, JobContext};
pub use keys::EncryptionKeyPair;
pub use stream::{
    CHUNK_VERSION, MAX_CHUNK_LEN, ResponseOpener, ResponseSealer, SealedChunk, output_commitment,
};

/// Most recipients one sealed input may carry.
pub const MAX_RECIPIENTS: usize = 16;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;
