//! `cocoon worker …`: the GPU owner side (register, show, unbond, withdraw).

use anyhow::Context;
use clap::Subcommand;
use cocoon_sdk::clock::unix_now;
use cocoon_sdk::contracts::WorkerClient;
use cocoon_sdk::messages::records::{Attestation, WorkerRecord};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use serde_json::json;

use super::{Ctx, RootArg, addr, hex32};

/// `cocoon worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCmd {
    /// Register the wallet's worker with a stake.
    Register(RegisterArgs),
    /// Show the worker (of the wallet or of --owner).
    Show {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
    },
    /// Start unbonding.
    Unbond {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
    },
    /// Withdraw the stake (after unbonding), or --earnings AMOUNT.
    Withdraw {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Withdraw this much of the earnings instead of the stake.
        #[arg(long)]
        earnings: Option<Ton>,
    },
}

/// What `worker register` sends.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// Which Root.
    #[command(flatten)]
    pub root: RootArg,
    /// Stake (TON).
    #[arg(long)]
    pub stake: Ton,
    /// ed25519 receipt public key (hex).
    #[arg(long)]
    pub receipt_key: String,
    /// X25519 encryption public key (hex).
    #[arg(long)]
    pub encryption_key: String,
    /// nanoTON per input token.
    #[arg(long)]
    pub price_in: u128,
    /// nanoTON per output token.
    #[arg(long)]
    pub price_out: u128,
    /// Model ids served.
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<u32>,
    /// TEE kind (0 simulated, 1 SEV-SNP, 2 TDX).
    #[arg(long)]
    pub kind: u8,
    /// Measurement (hex).
    #[arg(long)]
    pub measurement: String,
    /// Evidence hash (hex).
    #[arg(long)]
    pub evidence_hash: String,
    /// Attestation expiry, seconds from now.
    #[arg(long, default_value_t = 30 * 24 * 3600)]
    pub expires_in: u32,
}

pub(super) async fn run(ctx: &Ctx, c: WorkerCmd) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let opts = ctx.wallet.send_options();
    match c {
        WorkerCmd::Register(a) => {
            let w = ctx.open_wallet()?;
            let wc = WorkerClient::for_owner(&chain, &a.root.root, w.address()).await?;
            let expires_at = u32::try_from(unix_now() + u64::from(a.expires_in))
                .context("expiry overflows uint32")?;
            let record = WorkerRecord {
                receipt_key: hex32(&a.receipt_key, "receipt key")?,
                encryption_key: hex32(&a.encryption_key, "encryption key")?,
                price_in: a.price_in,
                price_out: a.price_out,
                models: a.models.iter().copied().collect(),
                attestation: Attestation {
                    kind: a.kind,
                    measurement: hex32(&a.measurement, "measurement")?,
                    evidence_hash: hex32(&a.evidence_hash, "evidence hash")?,
                    expires_at,
                },
            };
            let o = ctx
                .out
                .progress(
                    "registering worker",
                    wc.register(&w, a.stake.nano(), record, &opts),
                )
                .await?;
            ctx.done(
                &o,
                format!(
                    "worker {} registered with stake {}",
                    addr(wc.address(), ctx.net()),
                    a.stake
                ),
            );
        }
        WorkerCmd::Show { root, owner } => {
            let owner = match owner {
                Some(o) => o,
                None => ctx.open_wallet()?.address().clone(),
            };
            let wc = WorkerClient::for_owner(&chain, &root.root, &owner).await?;
            let st = wc.state().await?;
            let rec = wc.record().await.ok();
            let status = ["uninitialized", "active", "unbonding", "slashed", "exited"]
                .get(usize::from(st.status))
                .copied()
                .unwrap_or("unknown");
            let mut human = format!(
                "worker {}\n  status: {status}\n  stake: {} TON\n  earned: {} TON\n  unlock at: {}",
                addr(wc.address(), ctx.net()),
                format_ton(st.stake),
                format_ton(st.earned),
                st.unlock_at
            );
            if let Some(r) = &rec {
                let kind = match r.kind {
                    0 => "SIMULATED (UNATTESTED)",
                    1 => "AMD SEV-SNP",
                    2 => "Intel TDX",
                    _ => "unknown",
                };
                human.push_str(&format!(
                    "\n  models: {:?}\n  price in/out: {} / {} nanoTON per token\n  TEE: {kind}\n  measurement: {}\n  attestation expires: {}",
                    r.models, r.price_in, r.price_out, hex::encode(r.measurement), r.expires_at
                ));
            }
            ctx.out.emit(
                human,
                json!({ "address": addr(wc.address(), ctx.net()), "state": st, "record": rec }),
            );
        }
        WorkerCmd::Unbond { root } => {
            let w = ctx.open_wallet()?;
            let wc = WorkerClient::for_owner(&chain, &root.root, w.address()).await?;
            let o = ctx.out.progress("unbonding", wc.unbond(&w, &opts)).await?;
            let st = wc.state().await?;
            ctx.done(
                &o,
                format!("unbonding; stake withdrawable after {}", st.unlock_at),
            );
        }
        WorkerCmd::Withdraw { root, earnings } => {
            let w = ctx.open_wallet()?;
            let wc = WorkerClient::for_owner(&chain, &root.root, w.address()).await?;
            let o = match earnings {
                Some(a) => {
                    ctx.out
                        .progress(
                            "withdrawing earnings",
                            wc.withdraw_earnings(&w, a.nano(), &opts),
                        )
                        .await?
                }
                None => {
                    ctx.out
                        .progress("withdrawing stake", wc.withdraw_stake(&w, &opts))
                        .await?
                }
            };
            ctx.done(&o, "withdrawn".to_owned());
        }
    }
    Ok(())
}
