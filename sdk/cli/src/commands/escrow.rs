//! `cocoon escrow …`: the client side (deposit, withdraw, show, open and expire jobs).

use anyhow::Context;
use clap::Subcommand;
use cocoon_sdk::chain::ChainApi;
use cocoon_sdk::clock::unix_now;
use cocoon_sdk::contracts::{EscrowClient, OpenJobArgs};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use serde_json::json;

use super::{Ctx, RootArg, addr, hex32};

/// `cocoon escrow …`
#[derive(Debug, Subcommand)]
pub enum EscrowCmd {
    /// Deposit AMOUNT (creates the escrow on first use).
    Deposit {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Amount (TON).
        amount: Ton,
    },
    /// Withdraw AMOUNT of free balance.
    Withdraw {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Amount (TON).
        amount: Ton,
    },
    /// Show the escrow (of the wallet or of --owner) and optionally one job.
    Show {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
        /// Also show this job.
        #[arg(long)]
        job: Option<u64>,
    },
    /// Open a job.
    OpenJob {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Job id (default: last + 1).
        #[arg(long)]
        job_id: Option<u64>,
        /// Model id.
        #[arg(long)]
        model: u32,
        /// Most the job may cost (TON).
        #[arg(long)]
        max_cost: Ton,
        /// Deadline, seconds from now.
        #[arg(long, default_value_t = 600)]
        deadline_in: u32,
        /// Relayer wallet.
        #[arg(long)]
        relayer: TonAddress,
        /// Relayer fee, bps.
        #[arg(long, default_value_t = 0)]
        relayer_fee_bps: u16,
        /// Only this Worker may settle.
        #[arg(long)]
        worker: Option<TonAddress>,
        /// Input commitment, 64 hex chars (sha256 of the sealed input).
        #[arg(long)]
        input_commitment: String,
    },
    /// Expire an unsettled job after deadline + grace (anyone may).
    Expire {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Escrow owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
        /// Job id.
        job_id: u64,
    },
}

pub(super) async fn run(ctx: &Ctx, c: EscrowCmd) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let opts = ctx.wallet.send_options();
    match c {
        EscrowCmd::Deposit { root, amount } => {
            let w = ctx.open_wallet()?;
            let e = EscrowClient::for_owner(&chain, &root.root, w.address()).await?;
            let o = ctx
                .out
                .progress("depositing", e.deposit(&w, amount.nano(), &opts))
                .await?;
            ctx.done(
                &o,
                format!(
                    "deposited {amount} into escrow {}",
                    addr(e.address(), ctx.net())
                ),
            );
        }
        EscrowCmd::Withdraw { root, amount } => {
            let w = ctx.open_wallet()?;
            let e = EscrowClient::for_owner(&chain, &root.root, w.address()).await?;
            let o = ctx
                .out
                .progress("withdrawing", e.withdraw(&w, amount.nano(), &opts))
                .await?;
            ctx.done(
                &o,
                format!(
                    "withdrew {amount} from escrow {}",
                    addr(e.address(), ctx.net())
                ),
            );
        }
        EscrowCmd::Show { root, owner, job } => {
            let owner = match owner {
                Some(o) => o,
                None => ctx.open_wallet()?.address().clone(),
            };
            let e = EscrowClient::for_owner(&chain, &root.root, &owner).await?;
            let st = e.state().await?;
            let j = match job {
                Some(id) => Some((id, e.job(id).await?)),
                None => None,
            };
            let mut human = format!(
                "escrow {}\n  owner: {}\n  initialized: {}\n  free: {} TON\n  locked: {} TON\n  fees due: {} TON\n  last job id: {}",
                addr(e.address(), ctx.net()),
                addr(&st.owner, ctx.net()),
                st.initialized,
                format_ton(st.free),
                format_ton(st.locked),
                format_ton(st.fees_due),
                st.last_job_id
            );
            if let Some((id, jv)) = &j {
                match jv {
                    Some(jv) => human.push_str(&format!(
                        "\n  job {id}: model {} max cost {} TON deadline {}",
                        jv.model_id,
                        format_ton(jv.max_cost),
                        jv.deadline
                    )),
                    None => human.push_str(&format!("\n  job {id}: not open")),
                }
            }
            ctx.out.emit(human, json!({ "address": addr(e.address(), ctx.net()), "state": st, "job": j.map(|(_, v)| v) }));
        }
        EscrowCmd::OpenJob {
            root,
            job_id,
            model,
            max_cost,
            deadline_in,
            relayer,
            relayer_fee_bps,
            worker,
            input_commitment,
        } => {
            let w = ctx.open_wallet()?;
            let e = EscrowClient::for_owner(&chain, &root.root, w.address()).await?;
            let job_id = match job_id {
                Some(j) => j,
                None => e.state().await?.last_job_id + 1,
            };
            let chain_now = chain.account(e.address()).await?.sync_utime.max(unix_now());
            let args = OpenJobArgs {
                job_id,
                model_id: model,
                max_cost: max_cost.nano(),
                deadline: u32::try_from(chain_now + u64::from(deadline_in))
                    .context("deadline overflows uint32")?,
                relayer_fee_bps,
                input_commitment: hex32(&input_commitment, "input commitment")?,
                relayer,
                worker,
            };
            let deadline = args.deadline;
            let o = ctx
                .out
                .progress("opening job", e.open_job(&w, args, &opts))
                .await?;
            ctx.done(&o, format!("job {job_id} opened (deadline {deadline})"));
        }
        EscrowCmd::Expire {
            root,
            owner,
            job_id,
        } => {
            let w = ctx.open_wallet()?;
            let owner = owner.unwrap_or_else(|| w.address().clone());
            let e = EscrowClient::for_owner(&chain, &root.root, &owner).await?;
            let o = ctx
                .out
                .progress("expiring job", e.expire(&w, job_id, &opts))
                .await?;
            ctx.done(&o, format!("job {job_id} expired"));
        }
    }
    Ok(())
}
