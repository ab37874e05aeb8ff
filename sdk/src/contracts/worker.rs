//! Worker: registration through Root, getters, owner operations.

use std::collections::BTreeSet;

use serde::Serialize;

use super::root::{RootClient, dict_from_root};
use super::{
    ContractError, ContractResult, MAX_BATCH, OP_GAS, Outcome, REGISTER_GAS, SUBMIT_BASE_GAS,
    SUBMIT_PER_RECEIPT, StackReader, call, get_method, query_id,
};
use crate::chain::ChainApi;
use crate::messages::records::{WorkerConfig, WorkerRecord};
use crate::messages::root::{RegisterWorker, UpdateWorker};
use crate::messages::worker::{
    ReportEquivocation, SubmitReceipts, TopUpStake, Unbond, WithdrawEarnings, WithdrawStake,
};
use crate::receipt::SignedReceipt;
use crate::tlb::codec::SetU32;
use crate::tlb::{Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions};

/// `get_worker_state` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerState {
    /// Root.
    pub root: TonAddress,
    /// Owner wallet.
    pub owner: TonAddress,
    /// Status (see `messages::records::worker_status`).
    pub status: u8,
    /// Stake (nanoTON).
    pub stake: u128,
    /// Earned (nanoTON).
    pub earned: u128,
    /// Earliest stake withdrawal (unix).
    pub unlock_at: u32,
}

/// `get_worker_record` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRecordView {
    /// Receipt key.
    #[serde(with = "hex32")]
    pub receipt_key: [u8; 32],
    /// Encryption key.
    #[serde(with = "hex32")]
    pub encryption_key: [u8; 32],
    /// Price per input token (nanoTON).
    pub price_in: u128,
    /// Price per output token (nanoTON).
    pub price_out: u128,
    /// Models served.
    pub models: BTreeSet<u32>,
    /// TEE kind.
    pub kind: u8,
    /// Measurement.
    #[serde(with = "hex32")]
    pub measurement: [u8; 32],
    /// Evidence hash.
    #[serde(with = "hex32")]
    pub evidence_hash: [u8; 32],
    /// Attestation expiry.
    pub expires_at: u32,
}

pub(crate) mod hex32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// Client of one Worker contract.
#[derive(Debug)]
pub struct WorkerClient<'a, C> {
    chain: &'a C,
    root: TonAddress,
    address: TonAddress,
}

impl<'a, C: ChainApi> WorkerClient<'a, C> {
    /// Client of the Worker of `owner` under `root` (address from Root's getter).
    pub async fn for_owner(
        chain: &'a C,
        root: &TonAddress,
        owner: &TonAddress,
    ) -> ContractResult<Self> {
        let address = RootClient::at(chain, root.clone())
            .worker_address(owner)
            .await?;
        Ok(Self {
            chain,
            root: root.clone(),
            address,
        })
    }

    /// The Worker's address.
    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    async fn send(
        &self,
        wallet: &impl MessageSender,
        op: &'static str,
        dest: &TonAddress,
        value: u128,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        call(
            self.chain,
            wallet,
            op,
            OutMessage::call(dest.clone(), value, body),
            opts,
        )
        .await
    }

    /// Registers the wallet's Worker through Root with `stake` (value = stake + register gas).
    pub async fn register(
        &self,
        wallet: &impl MessageSender,
        stake: u128,
        record: WorkerRecord,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = RegisterWorker {
            query_id: query_id(),
            stake,
            record,
        }
        .to_cell()?;
        self.send(
            wallet,
            "register worker",
            &self.root,
            stake + REGISTER_GAS,
            body,
            opts,
        )
        .await
    }

    /// Re-registers keys, prices, models or attestation through Root.
    pub async fn update(
        &self,
        wallet: &impl MessageSender,
        record: WorkerRecord,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = UpdateWorker {
            query_id: query_id(),
            record,
        }
        .to_cell()?;
        self.send(wallet, "update worker", &self.root, OP_GAS, body, opts)
            .await
    }

    /// Adds stake.
    pub async fn top_up(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = TopUpStake {
            query_id: query_id(),
            amount,
        }
        .to_cell()?;
        self.send(
            wallet,
            "top up stake",
            &self.address,
            amount + OP_GAS,
            body,
            opts,
        )
        .await
    }

    /// Starts unbonding.
    pub async fn unbond(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.send(
            wallet,
            "unbond",
            &self.address,
            OP_GAS,
            Unbond {
                query_id: query_id(),
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Withdraws the stake (after the unbonding delay).
    pub async fn withdraw_stake(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.send(
            wallet,
            "withdraw stake",
            &self.address,
            OP_GAS,
            WithdrawStake {
                query_id: query_id(),
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Withdraws `amount` of earnings.
    pub async fn withdraw_earnings(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = WithdrawEarnings {
            query_id: query_id(),
            amount,
        }
        .to_cell()?;
        self.send(
            wallet,
            "withdraw earnings",
            &self.address,
            OP_GAS,
            body,
            opts,
        )
        .await
    }

    /// Submits a batch of signed receipts (anyone may; the sender pays the gas, the excess
    /// returns). Invalid receipts are skipped by the contract and logged, not fatal.
    pub async fn submit_receipts(
        &self,
        wallet: &impl MessageSender,
        receipts: Vec<SignedReceipt>,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        if receipts.is_empty() || receipts.len() > MAX_BATCH {
            return Err(ContractError::Invalid {
                op: "submit receipts",
                reason: format!("batch of {} receipts (1..={MAX_BATCH})", receipts.len()),
            });
        }
        let n = receipts.len();
        let value = SUBMIT_BASE_GAS + n as u128 * SUBMIT_PER_RECEIPT;
        let body = SubmitReceipts {
            query_id: query_id(),
            count: n as u8,
            receipts,
        }
        .to_cell()?;
        self.send(wallet, "submit receipts", &self.address, value, body, opts)
            .await
    }

    /// Reports two different receipts signed for the same job: the stake is slashed and part of
    /// it paid to the reporter.
    pub async fn report_equivocation(
        &self,
        wallet: &impl MessageSender,
        receipt_a: SignedReceipt,
        receipt_b: SignedReceipt,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = ReportEquivocation {
            query_id: query_id(),
            receipt_a,
            receipt_b,
        }
        .to_cell()?;
        self.send(
            wallet,
            "report equivocation",
            &self.address,
            OP_GAS,
            body,
            opts,
        )
        .await
    }

    async fn get(&self, method: &'static str) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, &[]).await
    }

    /// `get_worker_state`.
    pub async fn state(&self) -> ContractResult<WorkerState> {
        let mut r = self.get("get_worker_state").await?;
        Ok(WorkerState {
            root: r.address("root")?,
            owner: r.address("owner")?,
            status: r.uint("status")?,
            stake: r.uint("stake")?,
            earned: r.uint("earned")?,
            unlock_at: r.uint("unlock_at")?,
        })
    }

    /// `get_worker_record` (fails with exit code 205 before initialisation).
    pub async fn record(&self) -> ContractResult<WorkerRecordView> {
        let mut r = self.get("get_worker_record").await?;
        Ok(WorkerRecordView {
            receipt_key: r.bits256("receipt_key")?,
            encryption_key: r.bits256("encryption_key")?,
            price_in: r.uint("price_in")?,
            price_out: r.uint("price_out")?,
            models: dict_from_root::<SetU32>(r.maybe_cell("models")?)?,
            kind: r.uint("kind")?,
            measurement: r.bits256("measurement")?,
            evidence_hash: r.bits256("evidence_hash")?,
            expires_at: r.uint("expires_at")?,
        })
    }

    /// `get_worker_config`.
    pub async fn config(&self) -> ContractResult<WorkerConfig> {
        let mut r = self.get("get_worker_config").await?;
        Ok(WorkerConfig {
            unbonding_delay: r.uint("unbonding_delay")?,
            reporter_reward_bps: r.uint("reporter_reward_bps")?,
            treasury: r.address("treasury")?,
        })
    }
}
