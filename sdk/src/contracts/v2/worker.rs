//! Worker v2: registration through Root (with a stake), settlement of a channel (the latest
//! receipt and the client's voucher), getters, stake operations.

use std::collections::BTreeSet;

use serde::Serialize;

use super::root::RootClient;
use super::{AMOUNT_LIMIT, call, get_method, invalid, query_id};
use crate::chain::{ChainApi, StackEntry};
use crate::channel::{SignedChannelReceipt, SignedVoucher};
use crate::contracts::root::dict_from_root;
use crate::contracts::worker::hex32;
use crate::contracts::{ContractResult, Outcome, StackReader};
use crate::messages::v2::records::{WorkerConfig, WorkerRecord};
use crate::messages::v2::root::RegisterWorker;
use crate::messages::v2::worker::{
    ReportEquivocation, SubmitSettlement, TopUpStake, Unbond, UpdateRecord, WithdrawStake,
};
use crate::tlb::codec::SetU32;
use crate::tlb::{Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, SendOptions};

use super::logs::SettlementLog;

/// `get_worker_state` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerState {
    /// Root.
    pub root: TonAddress,
    /// Owner wallet (who settlements pay).
    pub owner: TonAddress,
    /// Status (`messages::v2::records::worker_status`).
    pub status: u8,
    /// Stake (nanoTON).
    pub stake: u128,
    /// Earliest stake withdrawal (unix).
    pub unlock_at: u32,
    /// Receipt keys ever registered.
    pub key_count: u8,
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
    /// Published price per input token (nanoTON).
    pub price_in: u128,
    /// Published price per output token (nanoTON).
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

/// `get_fees`: the least value each message to a Worker must carry, from the current network
/// config (nanoTON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkerFees {
    /// SubmitSettlement (the Worker's and the Escrow's work together).
    pub settle: u128,
    /// ReportEquivocation.
    pub slash: u128,
    /// UpdateRecord (Worker → Root → Worker).
    pub update: u128,
    /// Unbond, WithdrawStake, and TopUpStake on top of its amount.
    pub stake_op: u128,
}

/// What a settlement submits: the worker-signed receipt of the channel's latest request and the
/// client's voucher over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The latest receipt the voucher covers.
    pub receipt: SignedChannelReceipt,
    /// The client's voucher (its `last_seq` is the receipt's seq, its `acc` the accumulator after
    /// the receipt).
    pub voucher: SignedVoucher,
}

impl Settlement {
    /// Checks that the voucher covers exactly this receipt (same channel, seq and accumulator):
    /// the Worker forwards only the voucher's signature, cumulative and final flag, and the
    /// Escrow rebuilds the rest of the body from the receipt, so any other voucher fails there.
    pub fn check(&self) -> ContractResult<()> {
        check_pair(&self.receipt, &self.voucher)
    }

    /// The SubmitSettlement message (taken apart as the Worker expects it).
    pub fn message(&self, query_id: u64) -> ContractResult<SubmitSettlement> {
        self.check()?;
        Ok(SubmitSettlement::new(
            query_id,
            &self.receipt,
            &self.voucher,
        )?)
    }
}

fn check_pair(receipt: &SignedChannelReceipt, voucher: &SignedVoucher) -> ContractResult<()> {
    const OP: &str = "submit settlement";
    let (r, v) = (&receipt.body, &voucher.body);
    if r.channel != v.channel {
        return Err(invalid(OP, "voucher and receipt name different channels"));
    }
    if r.seq != v.last_seq {
        return Err(invalid(
            OP,
            format!(
                "voucher covers seq {}, receipt is seq {}",
                v.last_seq, r.seq
            ),
        ));
    }
    let acc = crate::channel::chain_step(
        &r.prev_acc,
        &r.hash().map_err(|e| invalid(OP, e.to_string()))?,
    );
    if acc != v.acc {
        return Err(invalid(
            OP,
            "voucher accumulator does not follow the receipt",
        ));
    }
    if v.cumulative >= AMOUNT_LIMIT || r.cost >= AMOUNT_LIMIT {
        return Err(invalid(OP, "cumulative and cost must be below 2^64"));
    }
    Ok(())
}

/// Client of one Worker v2 contract.
#[derive(Debug, Clone)]
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
        Ok(Self::at(chain, root.clone(), address))
    }

    /// Client of the Worker at `address` under `root`.
    pub fn at(chain: &'a C, root: TonAddress, address: TonAddress) -> Self {
        Self {
            chain,
            root,
            address,
        }
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
        call(self.chain, wallet, op, dest, value, body, opts).await
    }

    /// Registers the wallet's Worker through Root with `stake` (value = stake + Root's
    /// `get_fees().register`).
    pub async fn register(
        &self,
        wallet: &impl MessageSender,
        stake: u128,
        record: WorkerRecord,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = RootClient::at(self.chain, self.root.clone())
            .fees()
            .await?
            .register;
        let body = RegisterWorker {
            query_id: query_id(),
            stake,
            record,
        }
        .to_cell()?;
        self.send(
            wallet,
            "register worker",
            &self.root.clone(),
            stake + fee,
            body,
            opts,
        )
        .await
    }

    /// Submits a settlement of `receipt` and the client's `voucher` over it (anyone may send it;
    /// the worker owner is paid). Checked first: the voucher covers this receipt, and the receipt
    /// names this Worker (the Worker rebuilds the receipt with its own address, so another one's
    /// fails there as BadSignature). The value is the Worker's `get_fees().settle`; what the
    /// Escrow does not spend goes to the worker owner with its share. Returns the outcome and
    /// the settlement's record (from the payout).
    pub async fn submit_settlement(
        &self,
        wallet: &impl MessageSender,
        receipt: &SignedChannelReceipt,
        voucher: &SignedVoucher,
        opts: &SendOptions,
    ) -> ContractResult<(Outcome, SettlementLog)> {
        check_pair(receipt, voucher)?;
        if receipt.body.worker != self.address {
            return Err(invalid(
                "submit settlement",
                format!(
                    "the receipt names Worker {}, not this one ({})",
                    receipt.body.worker, self.address
                ),
            ));
        }
        let msg = SubmitSettlement::new(query_id(), receipt, voucher)?;
        self.submit(wallet, &msg, opts).await
    }

    /// Sends a SubmitSettlement as built (a relayer forwarding a worker node's submission):
    /// nothing is checked here but what the chain checks. Returns the outcome and the
    /// settlement's record.
    pub async fn submit(
        &self,
        wallet: &impl MessageSender,
        msg: &SubmitSettlement,
        opts: &SendOptions,
    ) -> ContractResult<(Outcome, SettlementLog)> {
        const OP: &str = "submit settlement";
        let fee = self.fees().await?.settle;
        let (escrow, channel_id) = (msg.channel.escrow.clone(), msg.channel.channel_id);
        let outcome = self
            .send(wallet, OP, &self.address, fee, msg.to_cell()?, opts)
            .await?;
        let log = SettlementLog::in_outcome(&outcome, &escrow, channel_id).ok_or_else(|| {
            invalid(
                OP,
                "the Escrow accepted the settlement but its payout recorded none",
            )
        })?;
        tracing::info!(target: "sdk::contracts::v2", channel_id, seq = log.seq(), cumulative = %log.cumulative(), is_final = log.is_final(), "settled");
        Ok((outcome, log))
    }

    /// Reports two different receipts signed for the same (channel, seq) with keys this Worker
    /// registered: the stake is slashed and part of it paid to the reporter.
    pub async fn report_equivocation(
        &self,
        wallet: &impl MessageSender,
        a: (&[u8; 32], SignedChannelReceipt),
        b: (&[u8; 32], SignedChannelReceipt),
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.slash;
        let body = ReportEquivocation {
            query_id: query_id(),
            key_a: *a.0,
            receipt_a: a.1,
            key_b: *b.0,
            receipt_b: b.1,
        }
        .to_cell()?;
        self.send(
            wallet,
            "report equivocation",
            &self.address,
            fee,
            body,
            opts,
        )
        .await
    }

    /// Owner: a new record (renewed attestation, keys, prices, models), checked by Root.
    pub async fn update_record(
        &self,
        wallet: &impl MessageSender,
        record: WorkerRecord,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.update;
        let body = UpdateRecord {
            query_id: query_id(),
            record,
        }
        .to_cell()?;
        self.send(wallet, "update record", &self.address, fee, body, opts)
            .await
    }

    /// Owner: adds `amount` to the stake.
    pub async fn top_up_stake(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.stake_op;
        let body = TopUpStake {
            query_id: query_id(),
            amount,
        }
        .to_cell()?;
        self.send(
            wallet,
            "top up stake",
            &self.address,
            amount + fee,
            body,
            opts,
        )
        .await
    }

    /// Owner: starts unbonding.
    pub async fn unbond(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.stake_op;
        let body = Unbond {
            query_id: query_id(),
        }
        .to_cell()?;
        self.send(wallet, "unbond", &self.address, fee, body, opts)
            .await
    }

    /// Owner: withdraws the stake after the unbonding delay.
    pub async fn withdraw_stake(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.stake_op;
        let body = WithdrawStake {
            query_id: query_id(),
        }
        .to_cell()?;
        self.send(wallet, "withdraw stake", &self.address, fee, body, opts)
            .await
    }

    async fn get(&self, method: &'static str, args: &[StackEntry]) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, args).await
    }

    /// `get_worker_state`.
    pub async fn state(&self) -> ContractResult<WorkerState> {
        let mut r = self.get("get_worker_state", &[]).await?;
        let v = WorkerState {
            root: r.address("root")?,
            owner: r.address("owner")?,
            status: r.uint("status")?,
            stake: r.uint("stake")?,
            unlock_at: r.uint("unlock_at")?,
            key_count: r.uint("key_count")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_worker_record` (fails with `NotInitialized` before registration).
    pub async fn record(&self) -> ContractResult<WorkerRecordView> {
        let mut r = self.get("get_worker_record", &[]).await?;
        let v = WorkerRecordView {
            receipt_key: r.bits256("receipt_key")?,
            encryption_key: r.bits256("encryption_key")?,
            price_in: r.uint("price_in")?,
            price_out: r.uint("price_out")?,
            models: dict_from_root::<SetU32>(r.maybe_cell("models")?)?,
            kind: r.uint("kind")?,
            measurement: r.bits256("measurement")?,
            evidence_hash: r.bits256("evidence_hash")?,
            expires_at: r.uint("expires_at")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_worker_config`.
    pub async fn config(&self) -> ContractResult<WorkerConfig> {
        let mut r = self.get("get_worker_config", &[]).await?;
        let v = WorkerConfig {
            unbonding_delay: r.uint("unbonding_delay")?,
            reporter_reward_bps: r.uint("reporter_reward_bps")?,
            treasury: r.address("treasury")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `is_receipt_key_known`: whether `key` is one this Worker ever registered (and so slashable).
    pub async fn is_receipt_key_known(&self, key: &[u8; 32]) -> ContractResult<bool> {
        let mut r = self
            .get(
                "is_receipt_key_known",
                &[StackEntry::BigInt {
                    negative: false,
                    magnitude: *key,
                }],
            )
            .await?;
        Ok(r.bool("known")?)
    }

    /// `get_fees`.
    pub async fn fees(&self) -> ContractResult<WorkerFees> {
        let mut r = self.get("get_fees", &[]).await?;
        let v = WorkerFees {
            settle: r.uint("settle")?,
            slash: r.uint("slash")?,
            update: r.uint("update")?,
            stake_op: r.uint("stake_op")?,
        };
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelReceipt, ChannelRef, Voucher};
    use crate::contracts::ContractError;
    use crate::receipt::{ReceiptCommitments, ReceiptHashes};

    fn settlement() -> Settlement {
        let a = TonAddress::new(0, [1u8; 32].into());
        let channel = ChannelRef {
            global_id: -239,
            root: a.clone(),
            escrow: a.clone(),
            channel_id: 5,
        };
        let body = ChannelReceipt {
            channel: channel.clone(),
            seq: 1,
            worker: a,
            model_id: 1,
            tokens_in: 1,
            tokens_out: 1,
            cost: 4,
            time: 0,
            prev_acc: [0; 32],
            hashes: ReceiptHashes {
                weights_hash: [0; 32],
                evidence_hash: [0; 32],
            },
            commitments: ReceiptCommitments {
                input_commitment: [0; 32],
                output_commitment: [0; 32],
            },
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let acc = crate::channel::chain_step(&[0; 32], &body.hash().unwrap());
        let voucher = Voucher {
            channel,
            cumulative: 4,
            last_seq: 1,
            acc,
            is_final: false,
        }
        .sign(&key)
        .unwrap();
        Settlement {
            receipt: body.sign(&key).unwrap(),
            voucher,
        }
    }

    /// A voucher that does not cover exactly the receipt sent is refused before anything is
    /// sent (the Escrow would refuse it with BadVoucherSignature after the fee was spent).
    #[test]
    fn a_voucher_for_another_receipt_is_refused_before_sending() {
        settlement().check().unwrap();
        let mut s = settlement();
        s.voucher.body.last_seq = 2;
        assert!(matches!(s.check(), Err(ContractError::Invalid { .. })));
        let mut s = settlement();
        s.voucher.body.acc = [9; 32];
        assert!(matches!(s.check(), Err(ContractError::Invalid { .. })));
        let mut s = settlement();
        s.voucher.body.channel.channel_id = 6;
        assert!(matches!(s.check(), Err(ContractError::Invalid { .. })));
        let mut s = settlement();
        s.voucher.body.cumulative = 1 << 64;
        assert!(matches!(s.check(), Err(ContractError::Invalid { .. })));
    }
}
