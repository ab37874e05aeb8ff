//! `cocoon channel …`: payment channels on the wallet's v2 Escrow (protocol v2): open one with a
//! worker, show it, top it up, close it.
//!
//! The voucher key (the ed25519 key the client signs vouchers with; not the wallet key) is a
//! 32-byte seed in a file beside the wallet file, created on the first `channel open`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use cocoon_sdk::chain::{AccountStatus, ChainApi};
use cocoon_sdk::clock::unix_now;
use cocoon_sdk::contracts::v2::{EscrowClient, OpenChannelArgs, WorkerClient, settlement_logs};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use ed25519_dalek::SigningKey;
use serde_json::json;

use super::{Ctx, RootArg, addr, hex32, outcome_json};

/// Default channel lifetime, seconds (within the Root's maximum channel lifetime).
pub const DEFAULT_EXPIRES_IN: u32 = 24 * 3600;

/// What `channel open` deposits when it creates the Escrow: twice the balance an Escrow keeps
/// for storage (`ESCROW_STORAGE_RESERVE` of contracts/v2/constants.tolk), so that its free
/// balance stays positive while the channel is open.
pub const NEW_ESCROW_DEPOSIT: u128 = 2 * cocoon_sdk::contracts::ESCROW_STORAGE_RESERVE;

/// `cocoon channel …`
#[derive(Debug, Subcommand)]
pub enum ChannelCmd {
    /// Open a channel with a worker: locks AMOUNT on the wallet's Escrow (sent with the open) at
    /// the worker's published prices, fixed for the channel's life.
    Open {
        /// Which Root (v2).
        #[command(flatten)]
        root: RootArg,
        /// The worker's owner wallet (the only one the channel can pay).
        #[arg(long)]
        worker_owner: TonAddress,
        /// The relayer that routes the channel's requests.
        #[arg(long)]
        relayer: TonAddress,
        /// Relayer fee, bps (at most the Root's cap).
        #[arg(long, default_value_t = 0)]
        relayer_fee_bps: u16,
        /// Lifetime, seconds from now.
        #[arg(long, default_value_t = DEFAULT_EXPIRES_IN)]
        expires_in: u32,
        /// Voucher key file (default: beside the wallet file, created if missing).
        #[arg(long)]
        voucher_key: Option<PathBuf>,
        /// Deposit this much into the Escrow's free balance first (TON). Default: nothing when the
        /// Escrow exists, else what it keeps for storage, so that the open can create it.
        #[arg(long)]
        deposit: Option<Ton>,
        /// Amount (TON).
        amount: Ton,
    },
    /// Show a channel as its Escrow holds it, with the settlements it logged.
    Show {
        /// Which Root (v2).
        #[command(flatten)]
        root: RootArg,
        /// Escrow owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
        /// Channel id.
        id: u64,
    },
    /// Add AMOUNT to a channel.
    TopUp {
        /// Which Root (v2).
        #[command(flatten)]
        root: RootArg,
        /// Channel id.
        id: u64,
        /// Amount (TON).
        amount: Ton,
    },
    /// Close a channel: once its settlement window has ended, anyone closes it and the rest
    /// returns to the free balance; before that, the owner asks to close (the worker keeps the
    /// grace period to settle what it holds).
    Close {
        /// Which Root (v2).
        #[command(flatten)]
        root: RootArg,
        /// Escrow owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
        /// Channel id.
        id: u64,
    },
}

/// The voucher key file beside `wallet_file`.
pub fn default_voucher_key_path(wallet_file: &Path) -> PathBuf {
    wallet_file.with_extension("voucher-key")
}

/// Reads the voucher key seed (hex) from `path`, creating a fresh one (mode 0600) if missing.
pub fn load_or_create_voucher_key(path: &Path) -> anyhow::Result<SigningKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading voucher key {}", path.display()))?;
        return Ok(SigningKey::from_bytes(&hex32(&text, "voucher key")?));
    }
    let seed: [u8; 32] = rand::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write as _;
    opts.open(path)
        .and_then(|mut f| f.write_all(hex::encode(seed).as_bytes()))
        .with_context(|| format!("writing voucher key {}", path.display()))?;
    tracing::info!(target: "cli::channel", path = %path.display(), "voucher key created");
    Ok(SigningKey::from_bytes(&seed))
}

pub(super) async fn run(ctx: &Ctx, c: ChannelCmd) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let opts = ctx.wallet.send_options();
    match c {
        ChannelCmd::Open {
            root,
            worker_owner,
            relayer,
            relayer_fee_bps,
            expires_in,
            voucher_key,
            deposit,
            amount,
        } => {
            let w = ctx.open_wallet()?;
            let key_path =
                voucher_key.unwrap_or_else(|| default_voucher_key_path(&ctx.wallet.path()));
            let key = load_or_create_voucher_key(&key_path)?;
            let worker = WorkerClient::for_owner(&chain, &root.root, &worker_owner).await?;
            let record = worker
                .record()
                .await
                .context("reading the worker's record (is it registered on this Root?)")?;
            let e = EscrowClient::for_owner(&chain, &root.root, w.address()).await?;
            let account = chain.account(e.address()).await?;
            let deposit = match deposit {
                Some(d) => d.nano(),
                None if account.status != AccountStatus::Active => NEW_ESCROW_DEPOSIT,
                None => 0,
            };
            if deposit > 0 {
                ctx.out
                    .progress("depositing", e.deposit(&w, deposit, &opts))
                    .await?;
            }
            let now = account.sync_utime.max(unix_now());
            let args = OpenChannelArgs {
                amount: amount.nano(),
                worker_owner,
                expires_at: u32::try_from(now + u64::from(expires_in))
                    .context("expiry overflows uint32")?,
                price_in: record.price_in,
                price_out: record.price_out,
                voucher_key: key.verifying_key().to_bytes(),
                relayer,
                relayer_fee_bps,
                notify_relayer: true,
            };
            let expires_at = args.expires_at;
            let opened = ctx
                .out
                .progress("opening channel", e.open_channel(&w, args, &opts))
                .await?;
            let id = opened.channel.channel_id;
            ctx.out.emit(
                format!(
                    "channel {id} opened on escrow {}\n  worker: {}\n  amount: {amount}\n  prices: {} / {} nanoTON per token in / out\n  expires at: {expires_at}\n  voucher key: {}\n  fees: {} TON",
                    addr(e.address(), ctx.net()),
                    addr(&opened.worker, ctx.net()),
                    record.price_in,
                    record.price_out,
                    key_path.display(),
                    format_ton(opened.outcome.total_fees()),
                ),
                json!({
                    "channel_id": id.to_string(),
                    "escrow": addr(e.address(), ctx.net()),
                    "worker": addr(&opened.worker, ctx.net()),
                    "global_id": opened.channel.global_id,
                    "amount_nano": amount.nano().to_string(),
                    "expires_at": expires_at,
                    "outcome": outcome_json(&opened.outcome),
                }),
            );
        }
        ChannelCmd::Show { root, owner, id } => {
            let owner = match owner {
                Some(o) => o,
                None => ctx.open_wallet()?.address().clone(),
            };
            let e = EscrowClient::for_owner(&chain, &root.root, &owner).await?;
            let Some(st) = e.channel(id).await? else {
                anyhow::bail!(
                    "escrow {} has no channel {id} (never opened, or closed)",
                    addr(e.address(), ctx.net())
                );
            };
            let logs = settlement_logs(&chain, e.address(), id).await?;
            let mut human = format!(
                "channel {id} on escrow {}\n  worker: {} (owner {})\n  relayer: {} ({} bps)\n  amount: {} TON\n  settled: {} TON (seq {})\n  left: {} TON\n  prices: {} / {} nanoTON per token in / out\n  expires at: {}\n  close requested at: {}\n  settlements until: {}",
                addr(e.address(), ctx.net()),
                addr(&st.worker, ctx.net()),
                addr(&st.worker_owner, ctx.net()),
                addr(&st.relayer, ctx.net()),
                st.relayer_fee_bps,
                format_ton(st.amount),
                format_ton(st.settled),
                st.last_seq,
                format_ton(st.unsettled_capacity()),
                st.price_in,
                st.price_out,
                st.expires_at,
                if st.close_requested_at == 0 {
                    "-".to_owned()
                } else {
                    st.close_requested_at.to_string()
                },
                st.settle_until,
            );
            for l in &logs {
                human.push_str(&format!(
                    "\n  settled seq {} cumulative {} TON acc {}",
                    l.seq(),
                    format_ton(l.cumulative()),
                    hex::encode(l.acc())
                ));
            }
            let settlements: Vec<_> = logs
                .iter()
                .map(|l| {
                    json!({
                        "seq": l.seq(),
                        "cumulative_nano": l.cumulative().to_string(),
                        "acc": hex::encode(l.acc()),
                    })
                })
                .collect();
            ctx.out.emit(
                human,
                json!({
                    "channel_id": id.to_string(),
                    "escrow": addr(e.address(), ctx.net()),
                    "worker": addr(&st.worker, ctx.net()),
                    "worker_owner": addr(&st.worker_owner, ctx.net()),
                    "relayer": addr(&st.relayer, ctx.net()),
                    "relayer_fee_bps": st.relayer_fee_bps,
                    "protocol_fee_bps": st.protocol_fee_bps,
                    "amount_nano": st.amount.to_string(),
                    "settled_nano": st.settled.to_string(),
                    "relayer_due_nano": st.relayer_due.to_string(),
                    "last_seq": st.last_seq,
                    "price_in": st.price_in.to_string(),
                    "price_out": st.price_out.to_string(),
                    "expires_at": st.expires_at,
                    "close_requested_at": st.close_requested_at,
                    "settle_until": st.settle_until,
                    "voucher_key": hex::encode(st.voucher_key),
                    "settlements": settlements,
                }),
            );
        }
        ChannelCmd::TopUp { root, id, amount } => {
            let w = ctx.open_wallet()?;
            let e = EscrowClient::for_owner(&chain, &root.root, w.address()).await?;
            let o = ctx
                .out
                .progress("topping up", e.top_up(&w, id, amount.nano(), &opts))
                .await?;
            ctx.done(&o, format!("channel {id} topped up by {amount}"));
        }
        ChannelCmd::Close { root, owner, id } => {
            let w = ctx.open_wallet()?;
            let owner = owner.unwrap_or_else(|| w.address().clone());
            let e = EscrowClient::for_owner(&chain, &root.root, &owner).await?;
            let Some(st) = e.channel(id).await? else {
                anyhow::bail!(
                    "escrow {} has no channel {id} (never opened, or closed)",
                    addr(e.address(), ctx.net())
                );
            };
            let now = chain.account(e.address()).await?.sync_utime;
            if now > u64::from(st.settle_until) {
                let o = ctx
                    .out
                    .progress("closing channel", e.close_channel(&w, id, &opts))
                    .await?;
                ctx.done(
                    &o,
                    format!(
                        "channel {id} closed: {} TON back to the free balance",
                        format_ton(st.unsettled_capacity())
                    ),
                );
            } else if st.close_requested_at == 0 {
                let o = ctx
                    .out
                    .progress("requesting close", e.request_close(&w, id, &opts))
                    .await?;
                let until = e
                    .channel(id)
                    .await?
                    .map(|s| s.settle_until)
                    .unwrap_or(st.settle_until);
                ctx.done(
                    &o,
                    format!(
                        "close of channel {id} requested: the worker may settle until {until}; run `cocoon channel close {id}` after that"
                    ),
                );
            } else {
                anyhow::bail!(
                    "channel {id}: close already requested; it can be closed after {}",
                    st.settle_until
                );
            }
        }
    }
    Ok(())
}
