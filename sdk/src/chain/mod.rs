//! Chain access: the [`ChainApi`] trait and its toncenter (v2 + v3) implementation.
//!
//! The same client talks to localnet, testnet and mainnet; only the base URL and the API key
//! change ([`Network`]). Every call says which endpoint failed and why ([`ChainError`]);
//! transient failures (429, 5xx, dropped connections, timeouts) are retried with backoff
//! ([`RetryPolicy`], or the server's `Retry-After` when longer) except where a retry could change
//! what happens on chain, and every call first takes a slot of the client's request budget
//! ([`RateLimit`]: toncenter's free-plan limits on toncenter, none on localnet).

mod error;
pub mod network;
pub mod rate_limit;
pub mod retry;
mod stack;
pub mod toncenter;
mod types;

use std::future::Future;

pub use error::{ChainError, ChainResult};
pub use network::Network;
pub use rate_limit::{RateLimit, RateLimiter};
pub use retry::RetryPolicy;
pub use stack::StackEntry;
pub use toncenter::{TonCenterClient, TonCenterConfig};
pub use types::{
    AccountState, AccountStatus, GetMethodResult, Message, SentMessage, Transaction, TxId,
};

use crate::tlb::TonAddress;

/// What the sdk needs from a TON node. Implemented by [`TonCenterClient`]; tests talk to the real
/// localnet through the same client.
pub trait ChainApi: Send + Sync {
    /// Balance, status, code/data and last transaction of an account.
    fn account(
        &self,
        address: &TonAddress,
    ) -> impl Future<Output = ChainResult<AccountState>> + Send;

    /// Runs a get-method; a non-zero exit code is [`ChainError::GetMethodFailed`].
    fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        stack: &[StackEntry],
    ) -> impl Future<Output = ChainResult<GetMethodResult>> + Send;

    /// Broadcasts an external message (a BOC). Returns its hashes. Not retried once the request
    /// may have reached the node: see [`crate::wallet`] for confirmation without double sends.
    fn send_boc(&self, boc: &[u8]) -> impl Future<Output = ChainResult<SentMessage>> + Send;

    /// Transactions of `address` with logical time strictly above `after_lt`, oldest first, at
    /// most `limit` (forward paging for watchers).
    fn transactions(
        &self,
        address: &TonAddress,
        after_lt: u64,
        limit: u32,
    ) -> impl Future<Output = ChainResult<Vec<Transaction>>> + Send;

    /// Transactions whose incoming message has this hash (plain or TEP-467 normalised).
    fn transactions_by_message(
        &self,
        msg_hash: &[u8; 32],
    ) -> impl Future<Output = ChainResult<Vec<Transaction>>> + Send;
}
