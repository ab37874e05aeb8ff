//! What can go wrong in channel mode.

use crate::chain::ChainError;
use crate::channel::ChannelError;
use crate::client::ClientError;
use crate::contracts::ContractError;
use crate::seal::SealError;

/// A channel-mode failure.
#[derive(Debug, thiserror::Error)]
pub enum ChannelClientError {
    /// The Root is not a v2 Root (channels need protocol v2).
    #[error("Root {0} is not a v2 Root: channels need protocol v2")]
    NotV2(String),
    /// No verified worker serves the model (or none the client could open a channel with).
    #[error("no channel for model {model}: {reason}")]
    NoChannel {
        /// The model id.
        model: u32,
        /// Why.
        reason: String,
    },
    /// A receipt, voucher or channel check failed: nothing was signed for it.
    #[error("channel check failed: {0}")]
    Channel(#[from] ChannelError),
    /// No ticket's worker served the request.
    #[error("request failed: {0}")]
    Failed(String),
    /// The last worker tried refused the request and no other channel may answer.
    #[error("request refused ({code}): {message}")]
    Refused {
        /// The refusal's code (`snake_case`).
        code: String,
        /// The worker's detail.
        message: String,
    },
    /// The saved channels could not be read or written.
    #[error("channel store {path}: {reason}")]
    Store {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A relayer, worker-list, attestation or request failure shared with the per-job client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A chain read failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A contract operation failed or was refused.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl ChannelClientError {
    /// The `snake_case` code of a relayer answer, when this is one (`no_candidates`, …).
    pub fn relayer_code(&self) -> Option<&str> {
        match self {
            Self::Client(ClientError::Relayer { code, .. }) => Some(code),
            _ => None,
        }
    }
}

/// Result of channel-mode operations.
pub type Result<T> = std::result::Result<T, ChannelClientError>;
