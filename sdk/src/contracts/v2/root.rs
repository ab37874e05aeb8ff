//! Root v2: deployment, getters (parameters, policy, models, codes, the governance queue, fees),
//! and governance (queued changes, applied after the delay).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::{Contract, call, code, get_method, invalid, query_id, send};
use crate::chain::{ChainApi, StackEntry};
use crate::contracts::root::dict_from_root;
use crate::contracts::{ContractResult, Outcome, RootOwner, StackReader};
use crate::messages::v2::records::{
    GovernanceQueue, RootCodes, RootData, RootParams, RootPolicy, SnpMinTcb, TdxPolicy, TeePolicy,
};
use crate::messages::v2::root::{AcceptOwnership, ApplyChange, CancelChange, SetTeePolicy};
use crate::tlb::codec::{Set256, Set384};
use crate::tlb::{ArcCell, Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions, contract_address};

/// `get_policy` result (the model registry is read per model with [`RootClient::model`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootPolicyView {
    /// Allowed TEE kinds mask.
    pub allowed_kinds: u8,
    /// Allow-listed measurements.
    #[serde(serialize_with = "hex_set")]
    pub measurements: BTreeSet<[u8; 32]>,
}

fn hex_set<S: serde::Serializer>(v: &BTreeSet<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

/// A queued governance change (`get_pending_change`).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChangeView {
    /// Change id.
    pub id: u32,
    /// Earliest unix time it applies.
    pub ready_at: u32,
    /// The owner's message as queued (decode with `messages::v2::root`).
    pub body: ArcCell,
}

/// `get_fees`: the least value each message to Root must carry beyond what it moves, from the
/// current network config (nanoTON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RootFees {
    /// RegisterWorker, on top of the stake.
    pub register: u128,
    /// CreateEscrow, on top of the deposit.
    pub create_escrow: u128,
    /// A governance message (queue, apply, cancel, accept).
    pub governance: u128,
}

/// Client of one Root v2 contract.
#[derive(Debug, Clone)]
pub struct RootClient<'a, C> {
    chain: &'a C,
    address: TonAddress,
}

impl<'a, C: ChainApi> RootClient<'a, C> {
    /// Client of the Root at `address`.
    pub fn at(chain: &'a C, address: TonAddress) -> Self {
        Self { chain, address }
    }

    /// Root's address.
    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    /// The chain this client reads.
    pub fn chain(&self) -> &'a C {
        self.chain
    }

    /// Initial data of a new Root v2 with the embedded v2 Worker and Escrow codes and an empty
    /// governance queue.
    pub fn initial_data(
        owner: TonAddress,
        params: RootParams,
        policy: RootPolicy,
    ) -> ContractResult<RootData> {
        Ok(RootData {
            owner,
            pending_owner: None,
            params,
            policy,
            codes: RootCodes {
                worker_code: code(Contract::Worker)?,
                escrow_code: code(Contract::Escrow)?,
                retired_worker_codes: BTreeMap::new(),
            },
            queue: GovernanceQueue {
                next_id: 0,
                changes: BTreeMap::new(),
            },
        })
    }

    /// Address a Root v2 with `data` deploys to.
    pub fn address_of(data: &RootData) -> ContractResult<TonAddress> {
        Ok(contract_address(
            &code(Contract::Root)?,
            &Arc::new(data.to_cell()?),
        )?)
    }

    /// Deploys a Root v2 with `data` from `wallet`, attaching `value` nanoTON.
    pub async fn deploy(
        chain: &'a C,
        wallet: &impl MessageSender,
        data: &RootData,
        value: u128,
        opts: &SendOptions,
    ) -> ContractResult<(Self, Outcome)> {
        let root_code = code(Contract::Root)?;
        let data_cell = Arc::new(data.to_cell()?);
        let address = contract_address(&root_code, &data_cell)?;
        let msg = OutMessage {
            dest: address.clone(),
            value,
            bounce: false,
            body: None,
            state_init: Some((root_code, data_cell)),
        };
        let outcome = send(chain, wallet, "deploy root v2", msg, opts).await?;
        Ok((Self::at(chain, address), outcome))
    }

    async fn get(&self, method: &'static str, args: &[StackEntry]) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, args).await
    }

    /// `get_owner`.
    pub async fn owner(&self) -> ContractResult<RootOwner> {
        let mut r = self.get("get_owner", &[]).await?;
        let v = RootOwner {
            owner: r.address("owner")?,
            pending_owner: r.maybe_address("pending_owner")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_params`.
    pub async fn params(&self) -> ContractResult<RootParams> {
        let mut r = self.get("get_params", &[]).await?;
        let v = RootParams {
            min_stake: r.uint("min_stake")?,
            unbonding_delay: r.uint("unbonding_delay")?,
            grace_period: r.uint("grace_period")?,
            max_channel_lifetime: r.uint("max_channel_lifetime")?,
            governance_delay: r.uint("governance_delay")?,
            relayer_fee_cap_bps: r.uint("relayer_fee_cap_bps")?,
            protocol_fee_bps: r.uint("protocol_fee_bps")?,
            reporter_reward_bps: r.uint("reporter_reward_bps")?,
            treasury: r.address("treasury")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_policy`.
    pub async fn policy(&self) -> ContractResult<RootPolicyView> {
        let mut r = self.get("get_policy", &[]).await?;
        let allowed_kinds = r.uint("allowed_kinds")?;
        let measurements = dict_from_root::<Set256>(r.maybe_cell("measurements")?)?;
        r.finish()?;
        Ok(RootPolicyView {
            allowed_kinds,
            measurements,
        })
    }

    /// `get_tee_policy`: the TEE policy in force — the SEV-SNP minimum TCB per component and the
    /// TDX attributes rule and allow-lists (an empty list allows any value).
    pub async fn tee_policy(&self) -> ContractResult<TeePolicy> {
        let mut r = self.get("get_tee_policy", &[]).await?;
        let snp_min_tcb = SnpMinTcb {
            boot_loader: r.uint("snp_boot_loader")?,
            tee: r.uint("snp_tee")?,
            snp: r.uint("snp_snp")?,
            microcode: r.uint("snp_microcode")?,
            fmc: r.uint("snp_fmc")?,
        };
        let td_attributes_mask = r.uint("td_attributes_mask")?;
        let td_attributes_value = r.uint("td_attributes_value")?;
        let mr_config_ids = dict_from_root::<Set384>(r.maybe_cell("mr_config_ids")?)?;
        let mr_owners = dict_from_root::<Set384>(r.maybe_cell("mr_owners")?)?;
        let rtmr3s = dict_from_root::<Set384>(r.maybe_cell("rtmr3s")?)?;
        r.finish()?;
        Ok(TeePolicy {
            snp_min_tcb,
            tdx: TdxPolicy {
                td_attributes_mask,
                td_attributes_value,
                mr_config_ids,
                mr_owners,
                rtmr3s,
            },
        })
    }

    /// `get_model`: the registry hash of `model_id`, if registered.
    pub async fn model(&self, model_id: u32) -> ContractResult<Option<[u8; 32]>> {
        let mut r = self
            .get("get_model", &[StackEntry::Int(i128::from(model_id))])
            .await?;
        let found = r.bool("found")?;
        let hash = r.bits256("model_hash")?;
        Ok(found.then_some(hash))
    }

    /// `get_codes`: (worker code, escrow code).
    pub async fn codes(&self) -> ContractResult<(ArcCell, ArcCell)> {
        let mut r = self.get("get_codes", &[]).await?;
        Ok((r.cell("worker_code")?, r.cell("escrow_code")?))
    }

    /// `is_worker_code_known`: the current worker code or one Root retired.
    pub async fn is_worker_code_known(&self, code_hash: &[u8; 32]) -> ContractResult<bool> {
        let mut r = self
            .get(
                "is_worker_code_known",
                &[StackEntry::BigInt {
                    negative: false,
                    magnitude: *code_hash,
                }],
            )
            .await?;
        Ok(r.bool("known")?)
    }

    /// `get_next_change_id`: the id the next queued change gets.
    pub async fn next_change_id(&self) -> ContractResult<u32> {
        Ok(self.get("get_next_change_id", &[]).await?.uint("next_id")?)
    }

    /// `get_pending_change`: change `id`, if still queued.
    pub async fn pending_change(&self, id: u32) -> ContractResult<Option<PendingChangeView>> {
        let mut r = self
            .get("get_pending_change", &[StackEntry::Int(i128::from(id))])
            .await?;
        let found = r.bool("found")?;
        let ready_at = r.uint("ready_at")?;
        let body = r.maybe_cell("body")?;
        Ok(match (found, body) {
            (true, Some(body)) => Some(PendingChangeView { id, ready_at, body }),
            _ => None,
        })
    }

    /// Every change with an id from `from_id` on that is still queued (one get-method per id: pass
    /// the first id not yet known to be applied or cancelled).
    pub async fn pending_changes(&self, from_id: u32) -> ContractResult<Vec<PendingChangeView>> {
        let next = self.next_change_id().await?;
        let mut out = Vec::new();
        for id in from_id..next {
            if let Some(c) = self.pending_change(id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// `get_worker_address`.
    pub async fn worker_address(&self, owner: &TonAddress) -> ContractResult<TonAddress> {
        let mut r = self
            .get("get_worker_address", &[StackEntry::address(owner)?])
            .await?;
        Ok(r.address("worker")?)
    }

    /// `get_escrow_address`.
    pub async fn escrow_address(&self, owner: &TonAddress) -> ContractResult<TonAddress> {
        let mut r = self
            .get("get_escrow_address", &[StackEntry::address(owner)?])
            .await?;
        Ok(r.address("escrow")?)
    }

    /// `get_fees`.
    pub async fn fees(&self) -> ContractResult<RootFees> {
        let mut r = self.get("get_fees", &[]).await?;
        let v = RootFees {
            register: r.uint("register")?,
            create_escrow: r.uint("create_escrow")?,
            governance: r.uint("governance")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// Owner: queues a governance message (`messages::v2::root::{SetParams, SetModel, …}` as a
    /// cell); it applies after the governance delay with [`Self::apply_change`].
    pub async fn queue_change(
        &self,
        wallet: &impl MessageSender,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.governance(wallet, "queue change", body, opts).await
    }

    /// Owner: queues a new TEE policy (`set_tee_policy`), replacing the whole policy once applied.
    /// A TDX attribute value with a bit outside the mask (a rule no TD can meet) is refused here,
    /// as Root would refuse it (BadParams).
    pub async fn queue_tee_policy(
        &self,
        wallet: &impl MessageSender,
        tee: TeePolicy,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let t = &tee.tdx;
        if t.td_attributes_value & !t.td_attributes_mask != 0 {
            return Err(invalid(
                "queue tee policy",
                format!(
                    "td_attributes_value {:#x} has bits outside td_attributes_mask {:#x}",
                    t.td_attributes_value, t.td_attributes_mask
                ),
            ));
        }
        let body = SetTeePolicy {
            query_id: query_id(),
            tee,
        }
        .to_cell()?;
        self.queue_change(wallet, body, opts).await
    }

    /// Anyone, after the change's ready time: applies it.
    pub async fn apply_change(
        &self,
        wallet: &impl MessageSender,
        change_id: u32,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = ApplyChange {
            query_id: query_id(),
            change_id,
        }
        .to_cell()?;
        self.governance(wallet, "apply change", body, opts).await
    }

    /// Owner: drops a queued change.
    pub async fn cancel_change(
        &self,
        wallet: &impl MessageSender,
        change_id: u32,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = CancelChange {
            query_id: query_id(),
            change_id,
        }
        .to_cell()?;
        self.governance(wallet, "cancel change", body, opts).await
    }

    /// Pending owner: completes an ownership transfer.
    pub async fn accept_ownership(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let body = AcceptOwnership {
            query_id: query_id(),
        }
        .to_cell()?;
        self.governance(wallet, "accept ownership", body, opts)
            .await
    }

    async fn governance(
        &self,
        wallet: &impl MessageSender,
        op: &'static str,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.governance;
        call(self.chain, wallet, op, &self.address, fee, body, opts).await
    }
}
