//! The worker node's error type.

use std::path::PathBuf;

use cocoon_sdk::attest::{AttestError, MissingInput};
use cocoon_sdk::chain::ChainError;
use cocoon_sdk::contracts::ContractError;
use cocoon_sdk::receipt::ReceiptError;

/// Result alias of the worker node.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// Everything that stops the node from starting, registering or signing.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node configuration is unusable (no models, capacity 0, a bad URL, ...).
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// A key, ledger or evidence file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Loading a model failed (missing file, wrong sha256, bad format).
    #[error("model {model}: {source}")]
    Model {
        /// Model name.
        model: String,
        /// The engine's error.
        source: crate::Error,
    },
    /// A served model is missing from Root's model registry or registered with another hash: the
    /// node refuses to serve weights the network did not approve.
    #[error("model {model} (id {id}): {reason}")]
    ModelRegistry {
        /// Model name.
        model: String,
        /// Registry id.
        id: u32,
        /// What differs.
        reason: String,
    },
    /// The wallet has no Worker contract (or it is not initialised yet): run `register` first.
    #[error("no registered Worker at {address}: register first (cocoon-worker register)")]
    NotRegistered {
        /// The Worker address derived from Root and the wallet.
        address: String,
    },
    /// The on-chain Worker record does not describe this node; every difference is listed.
    #[error("the Worker record at {address} does not match this node: {}", differences.join("; "))]
    RecordMismatch {
        /// The Worker address.
        address: String,
        /// One line per differing field: what the chain has and what the node has.
        differences: Vec<String>,
    },
    /// The TEE provider could not produce evidence, or the evidence fails Root's policy.
    #[error("attestation: {0}")]
    Attestation(#[from] AttestError),
    /// The TEE provider lacks an input the operator must supply; `flags` names where.
    #[error("attestation: {missing}; set {flags}")]
    TeeInput {
        /// What is missing.
        missing: MissingInput,
        /// The flags (and environment variables) that supply it.
        flags: &'static str,
    },
    /// A chain read failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A contract call or getter failed.
    #[error("contract: {0}")]
    Contract(#[from] ContractError),
    /// The channel ledger (protocol v2) failed.
    #[error("channel ledger: {0}")]
    ChannelLedger(#[from] super::channel_ledger::ChannelLedgerError),
    /// Building or signing a receipt failed.
    #[error("receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// A receipt was already signed for this job: signing a second one would be equivocation.
    #[error("a receipt for {job} was already signed: refusing to sign another")]
    AlreadySigned {
        /// `escrow/job id`.
        job: String,
    },
}

impl NodeError {
    /// An attestation error, with a missing input turned into [`NodeError::TeeInput`] naming the
    /// flags that supply it.
    pub fn from_attest(e: AttestError) -> Self {
        match e {
            AttestError::Missing(missing) => Self::TeeInput {
                flags: super::cli::flags_for(&missing),
                missing,
            },
            e => Self::Attestation(e),
        }
    }
}
