//! The dashboard on a Root v2 (payment channels): Root's parameters and its governance queue,
//! Worker v2 contracts, and channel settlements.
//!
//! Nothing lists a Root's Escrows, so they are learnt where settlements start: each
//! `SubmitSettlement` a known Worker receives names its channel's Escrow (the receipt's channel
//! reference). The settlements themselves are read from the Escrows' own history (the payout
//! record, [`SettlementLog`]), so only what an Escrow really paid is shown. A settlement covers
//! every request since the channel's previous one: its requests are the seq advance, its cost
//! the cumulative advance. A Worker v2's earnings are the sum of those advances over the
//! settlements that paid its owner ([`Earnings`]): the payout's value cannot tell them, as it also
//! carries the settlement's unspent gas.

use std::collections::BTreeMap;

use anyhow::Context as _;
use cocoon_sdk::chain::{ChainApi, Transaction};
use cocoon_sdk::contracts::v2::{RootClient, SettlementLog, WorkerClient};
use cocoon_sdk::job::models::KNOWN_MODELS;
use cocoon_sdk::messages::v2::records::worker_status;
use cocoon_sdk::messages::v2::root::RootMsg;
use cocoon_sdk::messages::v2::worker::SubmitSettlement;
use cocoon_sdk::tlb::{TlbType as _, TonAddress};
use tracing::debug;

use super::collect::{
    Collector, Known, ModelRow, OnChainRow, PAGE, QueuedChange, RootView, SettlementPoint,
    WorkerRow, kind_name, model_name,
};
use super::earnings::{ChannelKey, Earnings};

/// What the dashboard learnt of channels so far (kept between polls).
#[derive(Debug, Default)]
pub(super) struct ChannelsSeen {
    /// Escrows by raw address: the address and the lt their history was read up to.
    escrows: BTreeMap<String, (TonAddress, u64)>,
    /// Each channel's last settlement, its worker, and what each worker earned.
    earnings: Earnings,
    /// Settlements submitted by a known Worker, by (Escrow, channel, seq).
    submitted: BTreeMap<(String, u64, u32), Submitted>,
}

impl ChannelsSeen {
    /// What the Worker v2 owned by `owner` (user-friendly) earned in the settlements read so
    /// far, nanoTON.
    pub(super) fn earned(&self, owner: &str) -> u128 {
        self.earnings.earned(owner)
    }
}

#[derive(Debug, Clone)]
struct Submitted {
    worker: String,
    fees: u128,
    tokens_in: u32,
    tokens_out: u32,
}

fn status_name(s: u8) -> &'static str {
    match s {
        worker_status::UNINIT => "uninitialized",
        worker_status::ACTIVE => "active",
        worker_status::UNBONDING => "unbonding",
        worker_status::SLASHED => "slashed",
        worker_status::EXITED => "exited",
        _ => "unknown",
    }
}

/// A queued governance message in words.
fn describe(body: &cocoon_sdk::tlb::ArcCell, friendly: impl Fn(&TonAddress) -> String) -> String {
    let Ok(msg) = RootMsg::from_cell(body) else {
        return "a message this dashboard cannot read".to_owned();
    };
    match msg {
        RootMsg::SetParams(m) => {
            let p = &m.params;
            format!(
                "parameters: min stake {} nanoTON, unbonding {} s, grace {} s, channel lifetime ≤ {} s, governance delay {} s, relayer fee cap {} bps, protocol fee {} bps, reporter reward {} bps, treasury {}",
                p.min_stake,
                p.unbonding_delay,
                p.grace_period,
                p.max_channel_lifetime,
                p.governance_delay,
                p.relayer_fee_cap_bps,
                p.protocol_fee_bps,
                p.reporter_reward_bps,
                friendly(&p.treasury)
            )
        }
        RootMsg::SetAllowedKinds(m) => {
            format!("allowed TEE kinds: {}", kinds(m.allowed_kinds).join(", "))
        }
        RootMsg::AddMeasurement(m) => format!("allow measurement {}", hex::encode(m.measurement)),
        RootMsg::RemoveMeasurement(m) => {
            format!("disallow measurement {}", hex::encode(m.measurement))
        }
        RootMsg::SetModel(m) => format!(
            "register model {} (#{}) with hash {}",
            model_name(m.model_id),
            m.model_id,
            hex::encode(m.model_hash)
        ),
        RootMsg::RemoveModel(m) => format!(
            "unregister model {} (#{})",
            model_name(m.model_id),
            m.model_id
        ),
        RootMsg::SetCodes(_) => "new Worker and Escrow code".to_owned(),
        RootMsg::TransferOwnership(m) => {
            format!("transfer ownership to {}", friendly(&m.new_owner))
        }
        RootMsg::SetTeePolicy(_) => "new TEE policy (SEV-SNP minimum TCB, TDX rules)".to_owned(),
        other => format!("{other:?}"),
    }
}

fn kinds(mask: u8) -> Vec<&'static str> {
    (0..3u8)
        .filter(|k| mask & (1 << k) != 0)
        .map(kind_name)
        .collect()
}

impl Collector {
    pub(super) async fn root_view_v2(&self) -> anyhow::Result<RootView> {
        let root = RootClient::at(self.chain(), self.root().clone());
        let p = root.params().await.context("reading Root's parameters")?;
        let policy = root.policy().await.context("reading Root's policy")?;
        let mut models = Vec::new();
        // A Root v2 answers per model id: the known ids are asked.
        for m in KNOWN_MODELS {
            if let Some(hash) = root.model(m.id).await.context("reading Root's models")? {
                models.push(ModelRow {
                    id: m.id,
                    name: m.name.to_string(),
                    hash: hex::encode(hash),
                });
            }
        }
        let queued = root
            .pending_changes(0)
            .await
            .context("reading Root's queued changes")?;
        let params = BTreeMap::from([
            ("min_stake_nanoton", p.min_stake.to_string()),
            ("unbonding_delay_s", p.unbonding_delay.to_string()),
            ("grace_period_s", p.grace_period.to_string()),
            ("max_channel_lifetime_s", p.max_channel_lifetime.to_string()),
            ("governance_delay_s", p.governance_delay.to_string()),
            ("relayer_fee_cap_bps", p.relayer_fee_cap_bps.to_string()),
            ("protocol_fee_bps", p.protocol_fee_bps.to_string()),
            ("reporter_reward_bps", p.reporter_reward_bps.to_string()),
            ("treasury", self.friendly(&p.treasury)),
        ]);
        Ok(RootView {
            address: self.friendly(self.root()),
            version: 2,
            params,
            allowed_kinds: kinds(policy.allowed_kinds),
            measurements: policy.measurements.iter().map(hex::encode).collect(),
            models,
            queued_changes: queued
                .iter()
                .map(|c| QueuedChange {
                    id: Some(c.id),
                    what: describe(&c.body, |a| self.friendly(a)),
                    effective_at: c.ready_at.into(),
                })
                .collect(),
        })
    }

    pub(super) async fn worker_row_v2(&self, k: &Known, connected: bool) -> WorkerRow {
        let w = WorkerClient::at(self.chain(), self.root().clone(), k.address.clone());
        let state = w.state().await;
        // Fails before Root initialised the Worker: shown with what the state says.
        let record = w.record().await;
        if let Err(e) = &state {
            debug!(target: "cli::dashboard", worker = %k.address, error = %e, "reading a Worker v2 failed");
        }
        let onchain = state.ok().map(|s| {
            // `earned` is filled in from the settlements once the Escrows were read.
            let mut row = OnChainRow {
                owner: Some(self.friendly(&s.owner)),
                stake: s.stake.to_string(),
                status: status_name(s.status),
                ..OnChainRow::default()
            };
            if let Ok(r) = record {
                row.kind = r.kind;
                row.measurement = hex::encode(r.measurement);
                row.expires_at = r.expires_at;
                row.models = r.models.iter().map(|m| model_name(*m)).collect();
                row.price_in = r.price_in.to_string();
                row.price_out = r.price_out.to_string();
            }
            row
        });
        self.row(k, connected, onchain)
    }

    /// Reads a Worker v2's transactions after `after_lt` for the settlements it submitted
    /// (learning their Escrows); returns the lt read up to.
    pub(super) async fn scan_worker_v2(
        &self,
        worker: &TonAddress,
        mut after_lt: u64,
        seen: &mut ChannelsSeen,
    ) -> u64 {
        loop {
            let txs = match self.chain().transactions(worker, after_lt, PAGE).await {
                Ok(t) => t,
                Err(e) => {
                    debug!(target: "cli::dashboard", %worker, error = %e, "reading transactions failed");
                    return after_lt;
                }
            };
            for tx in &txs {
                after_lt = after_lt.max(tx.id.lt);
                self.submitted_in(worker, tx, seen);
            }
            if txs.len() < PAGE as usize {
                return after_lt;
            }
        }
    }

    fn submitted_in(&self, worker: &TonAddress, tx: &Transaction, seen: &mut ChannelsSeen) {
        if tx.failed() {
            return;
        }
        let Some(s) = tx
            .in_msg
            .as_ref()
            .filter(|m| m.opcode == Some(SubmitSettlement::OP))
            .and_then(|m| m.body.as_ref())
            .and_then(|b| SubmitSettlement::from_cell(b).ok())
        else {
            return;
        };
        let escrow = s.channel.escrow.to_hex();
        seen.escrows
            .entry(escrow.clone())
            .or_insert_with(|| (s.channel.escrow.clone(), 0));
        seen.submitted.insert(
            (escrow, s.channel.channel_id, s.proof.seq),
            Submitted {
                worker: self.friendly(worker),
                fees: tx.total_fees,
                tokens_in: s.proof.tokens_in,
                tokens_out: s.proof.tokens_out,
            },
        );
    }

    /// The settlements recorded by every known Escrow since it was last read.
    pub(super) async fn scan_escrows_v2(&self, seen: &mut ChannelsSeen) -> Vec<SettlementPoint> {
        let mut points = Vec::new();
        let escrows: Vec<(String, TonAddress, u64)> = seen
            .escrows
            .iter()
            .map(|(k, (a, lt))| (k.clone(), a.clone(), *lt))
            .collect();
        for (key, escrow, mut after_lt) in escrows {
            loop {
                let txs = match self.chain().transactions(&escrow, after_lt, PAGE).await {
                    Ok(t) => t,
                    Err(e) => {
                        debug!(target: "cli::dashboard", %escrow, error = %e, "reading transactions failed");
                        break;
                    }
                };
                for tx in &txs {
                    after_lt = after_lt.max(tx.id.lt);
                    for log in SettlementLog::all_in_transaction(tx, &escrow) {
                        points.push(self.point(&key, &escrow, tx, &log, seen));
                    }
                }
                if txs.len() < PAGE as usize {
                    break;
                }
            }
            if let Some(e) = seen.escrows.get_mut(&key) {
                e.1 = after_lt;
            }
        }
        points
    }

    fn point(
        &self,
        key: &str,
        escrow: &TonAddress,
        tx: &Transaction,
        log: &SettlementLog,
        seen: &mut ChannelsSeen,
    ) -> SettlementPoint {
        let channel: ChannelKey = (key.to_owned(), log.channel_id());
        let owner = self.friendly(&log.worker_owner);
        let advance = seen
            .earnings
            .settled(&channel, &owner, log.seq(), log.cumulative());
        let submitted = seen
            .submitted
            .get(&(key.to_owned(), log.channel_id(), log.seq()))
            .cloned();
        let worker_fees = submitted.as_ref().map_or(0, |s| s.fees);
        SettlementPoint {
            time: tx.now,
            worker: submitted
                .as_ref()
                .map(|s| s.worker.clone())
                .unwrap_or_default(),
            job_id: None,
            channel_id: Some(log.channel_id().to_string()),
            escrow: Some(self.friendly(escrow)),
            seq: Some(log.seq()),
            is_final: log.is_final(),
            requests: advance.requests,
            cost: advance.cost.to_string(),
            tokens_in: submitted.as_ref().map_or(0, |s| s.tokens_in),
            tokens_out: submitted.as_ref().map_or(0, |s| s.tokens_out),
            fees: (tx.total_fees + worker_fees).to_string(),
            tx: hex::encode(tx.id.hash),
        }
    }
}
