//! Records returned by [`super::ChainApi`].

use serde::Serialize;

use super::stack::StackEntry;
use crate::tlb::{ArcCell, TonAddress};

/// Life-cycle state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Never deployed (it may still hold a balance).
    Uninitialized,
    /// Deployed: has code and data.
    Active,
    /// Frozen for unpaid storage.
    Frozen,
}

/// Identifies a transaction of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxId {
    /// Logical time.
    pub lt: u64,
    /// Transaction hash.
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

/// State of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    /// Balance in nanoTON.
    pub balance: u128,
    /// Status.
    pub status: AccountStatus,
    /// Code, when active.
    pub code: Option<ArcCell>,
    /// Data, when active.
    pub data: Option<ArcCell>,
    /// Last transaction, if any (lt 0 when none).
    pub last_tx: Option<TxId>,
    /// Node's time of this state (unix seconds); use it rather than the local clock for
    /// `valid_until` so that a localnet whose clock was moved forward is respected.
    pub sync_utime: u64,
}

/// Result of a get-method.
#[derive(Debug, Clone, PartialEq)]
pub struct GetMethodResult {
    /// TVM exit code (0 or 1 on success).
    pub exit_code: i32,
    /// Gas used.
    pub gas_used: u64,
    /// Returned stack, bottom first.
    pub stack: Vec<StackEntry>,
}

/// Hashes of a message just broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SentMessage {
    /// Representation hash of the message cell as sent.
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
    /// TEP-467 normalised hash: what to look the transaction up by.
    #[serde(with = "hex_bytes")]
    pub hash_norm: [u8; 32],
}

/// A message inside a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Message hash.
    pub hash: [u8; 32],
    /// TEP-467 normalised hash (external-in only).
    pub hash_norm: Option<[u8; 32]>,
    /// Sender (internal messages).
    pub source: Option<TonAddress>,
    /// Receiver (none for external-out).
    pub destination: Option<TonAddress>,
    /// Value in nanoTON (internal messages).
    pub value: Option<u128>,
    /// Whether this is a bounced message.
    pub bounced: bool,
    /// First 32 bits of the body, when it has them.
    pub opcode: Option<u32>,
    /// Body.
    pub body: Option<ArcCell>,
}

/// A transaction of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The account.
    pub account: TonAddress,
    /// Id (lt + hash).
    pub id: TxId,
    /// Unix time.
    pub now: u64,
    /// Incoming message.
    pub in_msg: Option<Message>,
    /// Outgoing messages.
    pub out_msgs: Vec<Message>,
    /// Compute-phase exit code (`None` when the phase was skipped).
    pub exit_code: Option<i32>,
    /// Action-phase result code (`None` when there was no action phase).
    pub action_result_code: Option<i32>,
    /// Whether the transaction was aborted.
    pub aborted: bool,
    /// Total fees in nanoTON.
    pub total_fees: u128,
}

impl Transaction {
    /// Whether code ran and refused the message (compute exit code other than 0/1, or a failed
    /// action phase). A skipped compute phase (no code, or a zero-value notification to a
    /// wallet) is not a failure.
    pub fn failed(&self) -> bool {
        matches!(self.exit_code, Some(c) if c != 0 && c != 1)
            || matches!(self.action_result_code, Some(c) if c != 0)
    }

    /// Whether compute and action phases succeeded.
    pub fn succeeded(&self) -> bool {
        !self.aborted
            && matches!(self.exit_code, Some(0) | Some(1))
            && matches!(self.action_result_code, None | Some(0))
    }
}

pub(crate) mod hex_bytes {
    pub fn serialize<S: serde::Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}
