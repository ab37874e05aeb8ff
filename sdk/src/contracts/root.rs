//! Root: deployment, getters, owner operations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::{
    Contract, ContractResult, OP_GAS, Outcome, StackReader, call, code, get_method, query_id,
};
use crate::chain::{ChainApi, StackEntry};
use crate::messages::records::{RootCodes, RootData, RootParams, RootPolicy};
use crate::messages::root::*;
use crate::tlb::codec::{Codec, MapU32Bits256, Set256};
use crate::tlb::{ArcCell, Cell, CellBuilder, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions, contract_address};

/// `get_owner` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootOwner {
    /// Owner.
    pub owner: TonAddress,
    /// Owner-to-be during a transfer.
    pub pending_owner: Option<TonAddress>,
}

/// `get_policy` result.
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

/// Reads a dictionary given as its root cell (or null) with the codec of a `HashmapE` field.
pub(crate) fn dict_from_root<D: Codec>(root: Option<ArcCell>) -> ContractResult<D::Value> {
    let mut b = CellBuilder::new();
    crate::tlb::store_maybe_ref(&mut b, root.as_ref())?;
    let c = b.build().map_err(crate::tlb::TlbError::from)?;
    Ok(D::load(&mut c.parser(), "dict")?)
}

/// Client of one Root contract.
#[derive(Debug)]
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

    /// Initial data of a new Root with the embedded Worker and Escrow codes.
    pub fn initial_data(
        owner: TonAddress,
        params: RootParams,
        policy: RootPolicy,
        models: BTreeMap<u32, [u8; 32]>,
    ) -> ContractResult<RootData> {
        Ok(RootData {
            owner,
            pending_owner: None,
            params,
            policy,
            models,
            codes: RootCodes {
                worker_code: code(Contract::Worker)?,
                escrow_code: code(Contract::Escrow)?,
            },
        })
    }

    /// Address a Root with `data` deploys to.
    pub fn address_of(data: &RootData) -> ContractResult<TonAddress> {
        Ok(contract_address(
            &code(Contract::Root)?,
            &Arc::new(data.to_cell()?),
        )?)
    }

    /// Deploys a Root with `data` from `wallet`, attaching `value` nanoTON.
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
        let outcome = call(chain, wallet, "deploy root", msg, opts).await?;
        Ok((Self::at(chain, address), outcome))
    }

    async fn get(&self, method: &'static str, args: &[StackEntry]) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, args).await
    }

    /// `get_owner`.
    pub async fn owner(&self) -> ContractResult<RootOwner> {
        let mut r = self.get("get_owner", &[]).await?;
        Ok(RootOwner {
            owner: r.address("owner")?,
            pending_owner: r.maybe_address("pending_owner")?,
        })
    }

    /// `get_params`.
    pub async fn params(&self) -> ContractResult<RootParams> {
        let mut r = self.get("get_params", &[]).await?;
        Ok(RootParams {
            min_stake: r.uint("min_stake")?,
            unbonding_delay: r.uint("unbonding_delay")?,
            grace_period: r.uint("grace_period")?,
            relayer_fee_cap_bps: r.uint("relayer_fee_cap_bps")?,
            protocol_fee_bps: r.uint("protocol_fee_bps")?,
            reporter_reward_bps: r.uint("reporter_reward_bps")?,
            treasury: r.address("treasury")?,
        })
    }

    /// `get_policy`.
    pub async fn policy(&self) -> ContractResult<RootPolicyView> {
        let mut r = self.get("get_policy", &[]).await?;
        let allowed_kinds = r.uint("allowed_kinds")?;
        let measurements = dict_from_root::<Set256>(r.maybe_cell("measurements")?)?;
        Ok(RootPolicyView {
            allowed_kinds,
            measurements,
        })
    }

    /// `is_measurement_allowed`.
    pub async fn is_measurement_allowed(&self, m: &[u8; 32]) -> ContractResult<bool> {
        let mut r = self
            .get(
                "is_measurement_allowed",
                &[StackEntry::BigInt {
                    negative: false,
                    magnitude: *m,
                }],
            )
            .await?;
        Ok(r.bool("allowed")?)
    }

    /// `get_model`: the model hash, if registered.
    pub async fn model(&self, model_id: u32) -> ContractResult<Option<[u8; 32]>> {
        let mut r = self
            .get("get_model", &[StackEntry::Int(i128::from(model_id))])
            .await?;
        let found = r.bool("found")?;
        let hash = r.bits256("model_hash")?;
        Ok(found.then_some(hash))
    }

    /// `get_models`.
    pub async fn models(&self) -> ContractResult<BTreeMap<u32, [u8; 32]>> {
        let mut r = self.get("get_models", &[]).await?;
        dict_from_root::<MapU32Bits256>(r.maybe_cell("models")?)
    }

    /// `get_codes`: (worker code, escrow code).
    pub async fn codes(&self) -> ContractResult<(ArcCell, ArcCell)> {
        let mut r = self.get("get_codes", &[]).await?;
        Ok((r.cell("worker_code")?, r.cell("escrow_code")?))
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

    async fn owner_op(
        &self,
        wallet: &impl MessageSender,
        op: &'static str,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        call(
            self.chain,
            wallet,
            op,
            OutMessage::call(self.address.clone(), OP_GAS, body),
            opts,
        )
        .await
    }

    /// Owner: `SetParams`.
    pub async fn set_params(
        &self,
        wallet: &impl MessageSender,
        params: RootParams,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "set params",
            SetParams {
                query_id: query_id(),
                params,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `SetAllowedKinds`.
    pub async fn set_allowed_kinds(
        &self,
        wallet: &impl MessageSender,
        allowed_kinds: u8,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "set allowed kinds",
            SetAllowedKinds {
                query_id: query_id(),
                allowed_kinds,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `AddMeasurement`.
    pub async fn add_measurement(
        &self,
        wallet: &impl MessageSender,
        measurement: [u8; 32],
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "add measurement",
            AddMeasurement {
                query_id: query_id(),
                measurement,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `RemoveMeasurement`.
    pub async fn remove_measurement(
        &self,
        wallet: &impl MessageSender,
        measurement: [u8; 32],
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "remove measurement",
            RemoveMeasurement {
                query_id: query_id(),
                measurement,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `SetModel`.
    pub async fn set_model(
        &self,
        wallet: &impl MessageSender,
        model_id: u32,
        model_hash: [u8; 32],
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "set model",
            SetModel {
                query_id: query_id(),
                model_id,
                model_hash,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `RemoveModel`.
    pub async fn remove_model(
        &self,
        wallet: &impl MessageSender,
        model_id: u32,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "remove model",
            RemoveModel {
                query_id: query_id(),
                model_id,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Owner: `TransferOwnership`.
    pub async fn transfer_ownership(
        &self,
        wallet: &impl MessageSender,
        new_owner: TonAddress,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "transfer ownership",
            TransferOwnership {
                query_id: query_id(),
                new_owner,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Pending owner: `AcceptOwnership`.
    pub async fn accept_ownership(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.owner_op(
            wallet,
            "accept ownership",
            AcceptOwnership {
                query_id: query_id(),
            }
            .to_cell()?,
            opts,
        )
        .await
    }
}
