//! Highload Wallet v3 (the official contract, code hash [`HIGHLOAD_V3_CODE_HASH`]): a wallet for
//! services that send many messages at once.
//!
//! # Why services use it
//!
//! A seqno wallet runs one message per seqno: two senders race for it and one loses (see
//! [`super::WalletError::Superseded`]), and one sender waits a block per message. Highload v3
//! instead marks a *query id* (13-bit shift, 10-bit bit number) in a bitmap; any number of
//! externals with distinct query ids can be in flight, each executes at most once, and each
//! carries `created_at`: it can only execute while `created_at > now - timeout`. So:
//!
//! - a signed external is confirmed by its normalised hash, like a V5R1 one;
//! - if it has not executed when the chain's time passes `created_at + timeout`, it never will,
//!   and its messages can be signed again under a new query id ([`HighloadError::Expired`]);
//! - if its query id is marked processed but no transaction of it shows up within the index
//!   grace, another sender used that id ([`HighloadError::Superseded`]); the messages are signed
//!   again too. Nothing is ever sent twice, and every wait is bounded.
//!
//! The contract checks the message it sends only *after* marking the query id (a refused message
//! still uses the id), and it sends with `IGNORE_ERRORS`: a confirmation therefore looks at the
//! outgoing messages themselves, not only at the transaction.
//!
//! One external carries one message; a batch is one message to the wallet itself carrying an
//! action list (`internal_transfer`, up to [`MAX_BATCH`] messages), which the wallet then sends.
//! A message with a state-init always goes through a batch (the direct path refuses state-inits).

mod sender;

use std::sync::Arc;

use ed25519_dalek::{Signer as _, SigningKey};
use tonlib_core::tlb_types::block::state_init::StateInit;
use tonlib_core::tlb_types::tlb::TLB;
use tonlib_core::wallet::mnemonic::KeyPair;

pub use sender::{HighloadConfig, HighloadSender, SentMessage};

use super::message::{OutMessage, contract_address, normalized_hash};
use super::{WalletError, mnemonic};
use crate::chain::{AccountStatus, ChainApi, ChainError, Network, StackEntry, Transaction};
use crate::tlb::{self, ArcCell, Cell, CellBuilder, TlbResult, TonAddress};

/// Representation hash of the official Highload Wallet v3 code (the table of wallet sources on
/// docs.ton.org); the embedded code is pinned to it by a test.
pub const HIGHLOAD_V3_CODE_HASH: &str =
    "11acad7955844090f283bf238bc1449871f783e7cc0979408d3f4859483e8525";
const CODE_BOC: &[u8] = include_bytes!("highload_v3.boc");

/// `internal_transfer` (the wallet's message to itself that carries a batch).
const OP_INTERNAL_TRANSFER: u32 = 0xae42_e5a4;
/// `action_send_msg#0ec3c86d`.
const ACTION_SEND_MSG: u32 = 0x0ec3_c86d;
/// Send mode of every message: pay forwarding fees separately from the value (+1). The contract
/// adds IGNORE_ERRORS (+2) itself.
const SEND_MODE: u8 = 1;
/// Most messages one batch carries (a TVM action list holds 255 actions).
pub const MAX_BATCH: usize = 250;
/// Default `timeout` of the wallet (part of its address): how long a signed external stays
/// valid, and so the longest wait before an unconfirmed one is known dead.
pub const DEFAULT_TIMEOUT: u32 = 300;
/// Value attached to the batch message to itself: it only pays the gas of that one transaction
/// and comes straight back to the wallet's balance.
pub const BATCH_CARRY: u128 = 50_000_000;
/// How far behind the chain's last known time `created_at` is set, so a node whose clock or
/// block lags ours still finds it not in the future.
const CREATED_AT_MARGIN: u64 = 5;

/// Exit codes of the official contract.
pub mod exit {
    /// Signature does not verify.
    pub const INVALID_SIGNATURE: i32 = 33;
    /// Subwallet id of another wallet.
    pub const INVALID_SUBWALLET: i32 = 34;
    /// `created_at` in the future or older than the timeout.
    pub const INVALID_CREATED_AT: i32 = 35;
    /// The query id is already marked processed.
    pub const ALREADY_EXECUTED: i32 = 36;
    /// The message to send is not an internal message without state-init.
    pub const INVALID_MESSAGE: i32 = 37;
    /// Timeout other than the wallet's.
    pub const INVALID_TIMEOUT: i32 = 38;
}

/// Errors of highload sends.
#[derive(Debug, thiserror::Error)]
pub enum HighloadError {
    /// Building, signing or a chain call before anything was sent.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// A batch larger than [`MAX_BATCH`], or empty.
    #[error("a batch holds 1..={MAX_BATCH} messages, got {0}")]
    BatchSize(usize),
    /// The chain's time passed `created_at + timeout` and the query id is not processed: the
    /// external can no longer execute. Safe to sign the messages again.
    #[error("query {query_id} expired unexecuted (created at {created_at})")]
    Expired {
        /// Query id.
        query_id: u32,
        /// Its `created_at`.
        created_at: u64,
    },
    /// The query id is processed but no transaction of this external appeared within the index
    /// grace: another sender used the id. This external can never execute; safe to sign again.
    #[error(
        "query {query_id} was used by another message (is another process sending from this wallet?)"
    )]
    Superseded {
        /// Query id.
        query_id: u32,
    },
    /// The wallet refused the external at broadcast (not executed).
    #[error("wallet refused query {query_id} (exit code {exit_code:?}): {message}")]
    Rejected {
        /// Query id.
        query_id: u32,
        /// Exit code, when reported.
        exit_code: Option<i32>,
        /// Node's message.
        message: String,
    },
    /// The external executed but its message(s) did not go out (the action phase failed and the
    /// contract ignores errors): typically the wallet lacked the value. The query id is spent;
    /// the messages were not sent.
    #[error("query {query_id} executed but sent {sent} of {expected} messages (balance too low?)")]
    NotSent {
        /// Query id.
        query_id: u32,
        /// Messages that went out.
        sent: usize,
        /// Messages of the external.
        expected: usize,
    },
}

impl HighloadError {
    /// Whether the messages can be signed again under a new query id: the old external can never
    /// execute.
    pub fn is_resendable(&self) -> bool {
        matches!(
            self,
            HighloadError::Expired { .. }
                | HighloadError::Superseded { .. }
                | HighloadError::Rejected {
                    exit_code: Some(exit::ALREADY_EXECUTED | exit::INVALID_CREATED_AT),
                    ..
                }
        )
    }
}

/// Result of highload operations.
pub type HighloadResult<T> = Result<T, HighloadError>;

/// A query id: 13-bit shift and 10-bit bit number (0..=1022), 8,380,416 ids per wallet timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId {
    shift: u16,
    bit: u16,
}

impl QueryId {
    /// Largest shift.
    pub const MAX_SHIFT: u16 = 8191;
    /// Largest bit number (the contract's bitmap cell holds 1023 bits).
    pub const MAX_BIT: u16 = 1022;

    /// A query id from its parts; `None` when out of range.
    pub fn new(shift: u16, bit: u16) -> Option<Self> {
        (shift <= Self::MAX_SHIFT && bit <= Self::MAX_BIT).then_some(Self { shift, bit })
    }

    /// The 23-bit value (`shift << 10 | bit`), as `processed?` takes it.
    pub fn value(self) -> u32 {
        (u32::from(self.shift) << 10) | u32::from(self.bit)
    }

    /// The next id, wrapping after the last.
    pub fn next(self) -> Self {
        if self.bit < Self::MAX_BIT {
            Self {
                shift: self.shift,
                bit: self.bit + 1,
            }
        } else {
            Self {
                shift: if self.shift < Self::MAX_SHIFT {
                    self.shift + 1
                } else {
                    0
                },
                bit: 0,
            }
        }
    }
}

/// A signed highload external, ready to broadcast.
#[derive(Debug, Clone)]
pub struct SignedQuery {
    /// Its BOC (with the state-init when the wallet is not deployed yet).
    pub boc: Vec<u8>,
    /// TEP-467 normalised hash, to find its transaction.
    pub hash_norm: [u8; 32],
    /// Query id it uses.
    pub query_id: QueryId,
    /// Its `created_at`.
    pub created_at: u64,
    /// Messages it sends, in order.
    pub messages: usize,
    /// Whether they go through a batch (a message to the wallet itself).
    pub batched: bool,
}

/// A confirmed external: the wallet's transaction, and the transaction that sent the messages
/// (the same one unless batched).
#[derive(Debug, Clone)]
pub struct QueryConfirmation {
    /// Query id.
    pub query_id: QueryId,
    /// The transaction of the external.
    pub external_tx: Transaction,
    /// The transaction whose out messages are the ones signed, in order.
    pub sending_tx: Transaction,
}

/// A Highload Wallet v3: key, subwallet id, timeout, and the address they give.
#[derive(Debug, Clone)]
pub struct HighloadWallet {
    key: SigningKey,
    subwallet_id: u32,
    timeout: u32,
    network: Network,
    code: ArcCell,
    address: TonAddress,
}

/// The subwallet id Cocoon uses on `network`: its global id as an unsigned number, so one key has
/// another highload address on testnet than on mainnet and a message signed for one never
/// executes on the other.
pub fn network_subwallet_id(network: Network) -> u32 {
    network.global_id() as u32
}

impl HighloadWallet {
    /// The highload wallet of a 24-word mnemonic on `network`, with the default timeout.
    pub fn from_mnemonic_on(phrase: &str, network: Network) -> Result<Self, WalletError> {
        Self::from_key_pair_on(&mnemonic::key_pair(phrase)?, network, DEFAULT_TIMEOUT)
    }

    /// The highload wallet of `wallet`'s key on its network, with the default timeout: a service
    /// that loads a person's wallet file sends from this one instead (another address, to fund).
    pub fn of_wallet(wallet: &super::Wallet) -> Result<Self, WalletError> {
        Self::from_key_pair_on(&wallet.inner.key_pair, wallet.network(), DEFAULT_TIMEOUT)
    }

    /// The highload wallet of a key pair on `network` with `timeout` seconds.
    pub fn from_key_pair_on(
        key_pair: &KeyPair,
        network: Network,
        timeout: u32,
    ) -> Result<Self, WalletError> {
        let secret: [u8; 32] = key_pair
            .secret_key
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| WalletError::Build("secret key shorter than 32 bytes".into()))?;
        Self::new(
            SigningKey::from_bytes(&secret),
            network_subwallet_id(network),
            timeout,
            network,
        )
    }

    /// A highload wallet with explicit parameters (all three are part of its address).
    pub fn new(
        key: SigningKey,
        subwallet_id: u32,
        timeout: u32,
        network: Network,
    ) -> Result<Self, WalletError> {
        if timeout == 0 || timeout >= 1 << 22 {
            return Err(WalletError::Build(format!(
                "highload timeout {timeout} s is outside 1..2^22"
            )));
        }
        let code = tlb::boc_root(CODE_BOC)?;
        let data = Arc::new(initial_data(&key, subwallet_id, timeout)?);
        let address = contract_address(&code, &data)?;
        Ok(Self {
            key,
            subwallet_id,
            timeout,
            network,
            code,
            address,
        })
    }

    /// Contract address.
    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    /// The network it signs for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Its timeout in seconds.
    pub fn timeout(&self) -> u32 {
        self.timeout
    }

    /// ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// `(code, data)` the wallet is deployed with.
    pub fn state_init(&self) -> TlbResult<(ArcCell, ArcCell)> {
        let data = initial_data(&self.key, self.subwallet_id, self.timeout)?;
        Ok((self.code.clone(), Arc::new(data)))
    }

    /// Signs one external sending `msgs` under `query_id`; `deploy` attaches the state-init.
    pub fn sign(
        &self,
        query_id: QueryId,
        created_at: u64,
        msgs: &[OutMessage],
        deploy: bool,
    ) -> HighloadResult<SignedQuery> {
        if msgs.is_empty() || msgs.len() > MAX_BATCH {
            return Err(HighloadError::BatchSize(msgs.len()));
        }
        let batched = msgs.len() > 1 || msgs[0].state_init.is_some();
        let to_send = if batched {
            let body = batch_body(query_id, msgs).map_err(WalletError::from)?;
            OutMessage::call(self.address.clone(), BATCH_CARRY, body)
        } else {
            msgs[0].clone()
        };
        let build = || -> TlbResult<(Cell, Vec<u8>, [u8; 32])> {
            let mut inner = CellBuilder::new();
            inner.store_u32(32, self.subwallet_id)?;
            inner.store_reference(&Arc::new(to_send.to_cell()?))?;
            inner.store_u8(8, SEND_MODE)?;
            inner.store_u32(13, u32::from(query_id.shift))?;
            inner.store_u32(10, u32::from(query_id.bit))?;
            inner.store_u64(64, created_at)?;
            inner.store_u32(22, self.timeout)?;
            let inner = inner.build()?;
            let hash: [u8; 32] = inner.cell_hash().into();
            let signature = self.key.sign(&hash).to_bytes();
            let mut body = CellBuilder::new();
            body.store_reference(&Arc::new(inner))?;
            body.store_slice(&signature)?;
            let body = body.build()?;
            let ext = self.external(body, deploy)?;
            let boc = tlb::cell_to_boc(&ext)?;
            let hash = normalized_hash(&ext)?;
            Ok((ext, boc, hash))
        };
        let (_, boc, hash_norm) = build().map_err(WalletError::from)?;
        Ok(SignedQuery {
            boc,
            hash_norm,
            query_id,
            created_at,
            messages: msgs.len(),
            batched,
        })
    }

    fn external(&self, body: Cell, deploy: bool) -> TlbResult<Cell> {
        let mut b = CellBuilder::new();
        b.store_u8(2, 0b10)?; // ext_in_msg_info$10
        tlb::store_maybe_address(&mut b, None, "external.src")?;
        tlb::store_address(&mut b, &self.address, "external.dest")?;
        tlb::store_coins(&mut b, 0, "external.import_fee")?;
        if deploy {
            let (code, data) = self.state_init()?;
            let si = StateInit::new(code, data).to_cell()?;
            b.store_bit(true)?.store_bit(true)?;
            b.store_reference(&Arc::new(si))?;
        } else {
            b.store_bit(false)?;
        }
        b.store_bit(true)?.store_reference(&Arc::new(body))?;
        Ok(b.build()?)
    }

    /// `created_at` for a new external: the chain's time as its node last reported it (our own
    /// clock only when it reported none), less a margin. The contract judges `created_at`
    /// against the block's time, which a local clock can be ahead of or behind.
    pub fn created_at(chain_time: u64) -> u64 {
        let base = if chain_time > 0 {
            chain_time
        } else {
            crate::clock::unix_now()
        };
        base.saturating_sub(CREATED_AT_MARGIN)
    }

    /// Whether the wallet is deployed, and the chain's time as its node sees it.
    pub async fn status<C: ChainApi>(&self, chain: &C) -> Result<(bool, u64), WalletError> {
        let st = chain.account(&self.address).await?;
        Ok((st.status == AccountStatus::Active, st.sync_utime))
    }

    /// The contract's `processed?` for `query_id` (false while the wallet is not deployed).
    pub async fn processed<C: ChainApi>(
        &self,
        chain: &C,
        query_id: QueryId,
    ) -> Result<bool, WalletError> {
        if !self.status(chain).await?.0 {
            return Ok(false);
        }
        let r = chain
            .run_get_method(
                &self.address,
                "processed?",
                &[
                    StackEntry::Int(i128::from(query_id.value())),
                    StackEntry::Int(-1),
                ],
            )
            .await?;
        match r.stack.first().and_then(StackEntry::as_int) {
            Some(v) => Ok(v != 0),
            None => Err(ChainError::Stack {
                method: "processed?".into(),
                reason: format!("expected one int, got {:?}", r.stack),
            }
            .into()),
        }
    }

    /// Looks for the transactions of `signed`: the external's, and (batched) the wallet's
    /// transaction of the message to itself. `Ok(None)` while the index does not show them.
    pub async fn find<C: ChainApi>(
        &self,
        chain: &C,
        signed: &SignedQuery,
    ) -> HighloadResult<Option<QueryConfirmation>> {
        let txs = chain
            .transactions_by_message(&signed.hash_norm)
            .await
            .map_err(WalletError::from)?;
        let Some(external_tx) = txs.into_iter().find(|t| t.account == self.address) else {
            return Ok(None);
        };
        let sending_tx = if signed.batched {
            let Some(to_self) = external_tx
                .out_msgs
                .iter()
                .find(|m| m.destination.as_ref() == Some(&self.address))
            else {
                return Err(HighloadError::NotSent {
                    query_id: signed.query_id.value(),
                    sent: 0,
                    expected: signed.messages,
                });
            };
            let txs = chain
                .transactions_by_message(&to_self.hash)
                .await
                .map_err(WalletError::from)?;
            match txs.into_iter().find(|t| t.account == self.address) {
                Some(t) => t,
                None => return Ok(None),
            }
        } else {
            external_tx.clone()
        };
        let sent = sending_tx
            .out_msgs
            .iter()
            .filter(|m| m.destination.is_some())
            .count();
        if sent != signed.messages {
            return Err(HighloadError::NotSent {
                query_id: signed.query_id.value(),
                sent,
                expected: signed.messages,
            });
        }
        Ok(Some(QueryConfirmation {
            query_id: signed.query_id,
            external_tx,
            sending_tx,
        }))
    }
}

/// `storage$_ public_key:bits256 subwallet_id:uint32 old_queries:(HashmapE 13 ^Cell)
/// queries:(HashmapE 13 ^Cell) last_clean_time:uint64 timeout:uint22`, both maps empty.
fn initial_data(key: &SigningKey, subwallet_id: u32, timeout: u32) -> TlbResult<Cell> {
    let mut b = CellBuilder::new();
    b.store_slice(key.verifying_key().as_bytes())?;
    b.store_u32(32, subwallet_id)?;
    b.store_bit(false)?;
    b.store_bit(false)?;
    b.store_u64(64, 0)?;
    b.store_u32(22, timeout)?;
    Ok(b.build()?)
}

/// `internal_transfer#ae42e5a4 query_id:uint64 actions:^(OutList n)`: the batch the wallet sends
/// to itself. The out list is a chain of cells, the first action deepest.
fn batch_body(query_id: QueryId, msgs: &[OutMessage]) -> TlbResult<Cell> {
    let mut list = Cell::default();
    for m in msgs {
        let mut b = CellBuilder::new();
        b.store_reference(&Arc::new(list))?;
        b.store_u32(32, ACTION_SEND_MSG)?;
        b.store_u8(8, SEND_MODE)?;
        b.store_reference(&Arc::new(m.to_cell()?))?;
        list = b.build()?;
    }
    let mut b = CellBuilder::new();
    b.store_u32(32, OP_INTERNAL_TRANSFER)?;
    b.store_u64(64, u64::from(query_id.value()))?;
    b.store_reference(&Arc::new(list))?;
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "section garden tomato dinner season dice renew length useful spin trade intact use universe what post spike keen mandate behind concert egg doll rug";

    #[test]
    fn embedded_code_is_the_official_highload_v3() {
        let code = tlb::boc_root(CODE_BOC).unwrap();
        let hash: [u8; 32] = Cell::cell_hash(&code).into();
        assert_eq!(hex::encode(hash), HIGHLOAD_V3_CODE_HASH);
    }

    #[test]
    fn query_ids_walk_every_bit_then_the_next_shift_and_wrap() {
        let q = QueryId::new(0, 0).unwrap();
        assert_eq!(q.next().value(), 1);
        let last_bit = QueryId::new(3, QueryId::MAX_BIT).unwrap();
        assert_eq!(last_bit.next(), QueryId::new(4, 0).unwrap());
        assert_eq!(last_bit.value(), (3 << 10) | 1022);
        let last = QueryId::new(QueryId::MAX_SHIFT, QueryId::MAX_BIT).unwrap();
        assert_eq!(last.next(), QueryId::new(0, 0).unwrap());
        assert!(QueryId::new(0, 1023).is_none());
        assert!(QueryId::new(8192, 0).is_none());
    }

    #[test]
    fn one_key_has_another_address_per_network_and_timeout() {
        let main = HighloadWallet::from_mnemonic_on(PHRASE, Network::Mainnet).unwrap();
        let test = HighloadWallet::from_mnemonic_on(PHRASE, Network::Testnet).unwrap();
        assert_ne!(main.address(), test.address());
        let kp = mnemonic::key_pair(PHRASE).unwrap();
        let other = HighloadWallet::from_key_pair_on(&kp, Network::Mainnet, 60).unwrap();
        assert_ne!(main.address(), other.address());
        assert!(HighloadWallet::from_key_pair_on(&kp, Network::Mainnet, 0).is_err());
    }

    #[test]
    fn signing_is_deterministic_and_bound_to_query_and_batching() {
        let w = HighloadWallet::from_mnemonic_on(PHRASE, Network::Mainnet).unwrap();
        let m = OutMessage::transfer(w.address().clone(), 1, false);
        let q = QueryId::new(1, 2).unwrap();
        let a = w.sign(q, 1000, std::slice::from_ref(&m), false).unwrap();
        let b = w.sign(q, 1000, std::slice::from_ref(&m), true).unwrap();
        assert_eq!(
            a.hash_norm, b.hash_norm,
            "the state-init does not change the hash"
        );
        assert!(!a.batched);
        let c = w
            .sign(q.next(), 1000, std::slice::from_ref(&m), false)
            .unwrap();
        assert_ne!(a.hash_norm, c.hash_norm);
        let two = w.sign(q, 1000, &[m.clone(), m.clone()], false).unwrap();
        assert!(two.batched);
        assert_eq!(two.messages, 2);
        let deploy = m
            .clone()
            .with_state_init(Arc::new(Cell::default()), Arc::new(Cell::default()));
        assert!(w.sign(q, 1000, &[deploy], false).unwrap().batched);
        assert!(matches!(
            w.sign(q, 1000, &[], false),
            Err(HighloadError::BatchSize(0))
        ));
        let many = vec![m; MAX_BATCH + 1];
        assert!(matches!(
            w.sign(q, 1000, &many, false),
            Err(HighloadError::BatchSize(n)) if n == MAX_BATCH + 1
        ));
    }
}
