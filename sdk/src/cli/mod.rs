//! The `cocoon` command line: local network, deployment, wallet, escrow, worker and root
//! operations. `src/bin/cocoon.rs` only parses [`Cli`] and calls [`run`].

pub mod args;
pub mod client;
pub mod gateway;
mod output;
mod wallet_file;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use args::{ChainArgs, OutputArgs, WalletArgs};
pub use output::Printer;

use crate::chain::{ChainApi, Network, TonCenterClient};
use crate::contracts::{EscrowClient, OpenJobArgs, Outcome, RootClient, WorkerClient};
use crate::localnet::{self, Localnet, LocalnetConfig};
use crate::messages::records::{Attestation, RootParams, RootPolicy, WorkerRecord};
use crate::tlb::TonAddress;
use crate::units::{Ton, format_ton};
use crate::wallet::Wallet;

/// Default port of `cocoon localnet` (matches the localnet network's default URL).
pub const DEFAULT_LOCALNET_PORT: u16 = 8081;
/// Default value attached to the Root deployment.
pub const DEFAULT_DEPLOY_VALUE: Ton = Ton(100_000_000);
/// Default parameters of a new Root.
pub mod root_defaults {
    /// Minimum stake (nanoTON): 10 TON.
    pub const MIN_STAKE: u128 = 10_000_000_000;
    /// Unbonding delay: 7 days.
    pub const UNBONDING_DELAY: u32 = 7 * 24 * 3600;
    /// Grace period: 1 hour.
    pub const GRACE_PERIOD: u32 = 3600;
    /// Relayer fee cap: 10 %.
    pub const RELAYER_FEE_CAP_BPS: u16 = 1000;
    /// Protocol fee: 1 %.
    pub const PROTOCOL_FEE_BPS: u16 = 100;
    /// Reporter reward: 20 % of a slashed stake.
    pub const REPORTER_REWARD_BPS: u16 = 2000;
    /// Allowed kinds: SEV-SNP and TDX (bits 1 and 2); simulated (bit 0) is never on by default.
    pub const ALLOWED_KINDS: u8 = 0b110;
}

/// `cocoon`: operate the Cocoon network from the command line.
#[derive(Debug, Parser)]
#[command(name = "cocoon", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub wallet: WalletArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local network (sandbox emulator behind a toncenter-compatible API) until Ctrl-C.
    Localnet {
        /// Port (0 = any free port).
        #[arg(long, default_value_t = DEFAULT_LOCALNET_PORT)]
        port: u16,
        /// State file: loaded if present, saved after every change.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Deploy a Root owned by the wallet.
    Deploy(DeployArgs),
    /// Wallet: create, show, balance, fund (localnet).
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Escrow of the wallet (the client side).
    #[command(subcommand)]
    Escrow(EscrowCmd),
    /// Worker of the wallet (the GPU owner side).
    #[command(subcommand)]
    Worker(WorkerCmd),
    /// Root: inspect and govern.
    #[command(subcommand)]
    Root(RootCmd),
    /// OpenAI-compatible gateway (chat, completions, embeddings) over the wallet's Escrow.
    Gateway(gateway::GatewayArgs),
    /// Chat with (or complete a prompt on) a model: attested workers, sealed input, verified
    /// receipt.
    Chat(client::ChatArgs),
    /// Embed texts with an embedding model.
    Embed(client::EmbedArgs),
    /// Models on the network with their verified workers and lowest prices.
    Models(client::ModelsArgs),
    /// Jobs: verify a receipt and its settlement.
    #[command(subcommand)]
    Job(client::JobCmd),
}

/// Parameters of a new Root.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Minimum worker stake (TON; `123n` for nanoTON).
    #[arg(long, default_value_t = Ton(root_defaults::MIN_STAKE))]
    pub min_stake: Ton,
    /// Unbonding delay, seconds.
    #[arg(long, default_value_t = root_defaults::UNBONDING_DELAY)]
    pub unbonding_delay: u32,
    /// Grace period after a job deadline, seconds.
    #[arg(long, default_value_t = root_defaults::GRACE_PERIOD)]
    pub grace_period: u32,
    /// Relayer fee cap, bps.
    #[arg(long, default_value_t = root_defaults::RELAYER_FEE_CAP_BPS)]
    pub relayer_fee_cap_bps: u16,
    /// Protocol fee, bps.
    #[arg(long, default_value_t = root_defaults::PROTOCOL_FEE_BPS)]
    pub protocol_fee_bps: u16,
    /// Reporter reward, bps of a slashed stake.
    #[arg(long, default_value_t = root_defaults::REPORTER_REWARD_BPS)]
    pub reporter_reward_bps: u16,
    /// Treasury address (default: the wallet).
    #[arg(long)]
    pub treasury: Option<TonAddress>,
    /// Allowed TEE kinds mask (bit 0 simulated, 1 SEV-SNP, 2 TDX).
    #[arg(long, default_value_t = root_defaults::ALLOWED_KINDS)]
    pub allowed_kinds: u8,
    /// Value attached to the deployment.
    #[arg(long, default_value_t = DEFAULT_DEPLOY_VALUE)]
    pub value: Ton,
}

/// `cocoon wallet …`
#[derive(Debug, Subcommand)]
pub enum WalletCmd {
    /// Create a new wallet file with a fresh 24-word mnemonic.
    New {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Import this mnemonic instead of generating one.
        #[arg(long)]
        mnemonic: Option<String>,
    },
    /// Show the wallet's address and public key.
    Show,
    /// Balance of the wallet (or of ADDRESS).
    Balance {
        /// Any address.
        address: Option<TonAddress>,
    },
    /// Localnet only: get AMOUNT from the faucet.
    Fund {
        /// Amount (TON).
        amount: Ton,
    },
}

/// Which Root (all contract commands need it).
#[derive(Debug, Clone, clap::Args)]
pub struct RootArg {
    /// Root contract address.
    #[arg(long, env = "COCOON_ROOT")]
    pub root: TonAddress,
}

/// `cocoon escrow …`
#[derive(Debug, Subcommand)]
pub enum EscrowCmd {
    /// Deposit AMOUNT (creates the escrow on first use).
    Deposit {
        #[command(flatten)]
        root: RootArg,
        /// Amount (TON).
        amount: Ton,
    },
    /// Withdraw AMOUNT of free balance.
    Withdraw {
        #[command(flatten)]
        root: RootArg,
        /// Amount (TON).
        amount: Ton,
    },
    /// Show the escrow (of the wallet or of --owner) and optionally one job.
    Show {
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
        #[command(flatten)]
        root: RootArg,
        /// Escrow owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
        /// Job id.
        job_id: u64,
    },
}

/// `cocoon worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCmd {
    /// Register the wallet's worker with a stake.
    Register(RegisterArgs),
    /// Show the worker (of the wallet or of --owner).
    Show {
        #[command(flatten)]
        root: RootArg,
        /// Owner (default: the wallet).
        #[arg(long)]
        owner: Option<TonAddress>,
    },
    /// Start unbonding.
    Unbond {
        #[command(flatten)]
        root: RootArg,
    },
    /// Withdraw the stake (after unbonding), or --earnings AMOUNT.
    Withdraw {
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

/// `cocoon root …`
#[derive(Debug, Subcommand)]
pub enum RootCmd {
    /// Show owner, parameters, policy and models.
    Show {
        #[command(flatten)]
        root: RootArg,
    },
    /// Owner: set one parameter (min-stake, unbonding-delay, grace-period, relayer-fee-cap-bps,
    /// protocol-fee-bps, reporter-reward-bps, treasury, allowed-kinds).
    SetParam {
        #[command(flatten)]
        root: RootArg,
        /// Parameter name.
        name: String,
        /// New value (TON for min-stake).
        value: String,
    },
    /// Owner: allow (or --remove) a measurement.
    AllowMeasurement {
        #[command(flatten)]
        root: RootArg,
        /// Measurement (64 hex chars).
        measurement: String,
        /// Remove instead.
        #[arg(long)]
        remove: bool,
    },
    /// Owner: register a model: its hash is sha256("name@revision:weights-sha256").
    AddModel {
        #[command(flatten)]
        root: RootArg,
        /// Model id.
        #[arg(long)]
        id: u32,
        /// `name@revision:weights-sha256`.
        #[arg(long, conflicts_with = "hash")]
        name: Option<String>,
        /// The model hash directly (hex).
        #[arg(long)]
        hash: Option<String>,
    },
}

fn hex32(s: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let v = hex::decode(s.trim().trim_start_matches("0x"))
        .with_context(|| format!("{what}: not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("{what}: expected 32 bytes, got {}", v.len()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn addr(a: &TonAddress, net: Network) -> String {
    a.to_base64_url_flags(false, net.is_test())
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    json!({
        "op": o.op,
        "wallet_tx": { "lt": o.wallet_tx.id.lt.to_string(), "hash": hex::encode(o.wallet_tx.id.hash) },
        "transactions": o.txs.len(),
        "fees_nano": o.total_fees().to_string(),
    })
}

struct Ctx {
    cli_chain: ChainArgs,
    wallet: WalletArgs,
    out: Printer,
}

impl Ctx {
    fn chain(&self) -> anyhow::Result<TonCenterClient> {
        Ok(TonCenterClient::new(self.cli_chain.config())?)
    }
    fn open_wallet(&self) -> anyhow::Result<Wallet> {
        wallet_file::load(&self.wallet.path())
    }
    fn net(&self) -> Network {
        self.cli_chain.network
    }
    fn done(&self, o: &Outcome, human: String) {
        self.out.emit(
            format!("{human}\n  fees: {} TON", format_ton(o.total_fees())),
            outcome_json(o),
        );
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        cli_chain: cli.chain,
        wallet: cli.wallet,
        out: Printer {
            json: cli.output.json,
        },
    };
    match cli.command {
        Command::Localnet { port, state } => run_localnet(&ctx, port, state).await,
        Command::Deploy(a) => deploy(&ctx, a).await,
        Command::Wallet(c) => wallet_cmd(&ctx, c).await,
        Command::Escrow(c) => escrow_cmd(&ctx, c).await,
        Command::Worker(c) => worker_cmd(&ctx, c).await,
        Command::Root(c) => root_cmd(&ctx, c).await,
        Command::Gateway(a) => gateway::run(&ctx, a).await,
        Command::Chat(a) => client::chat(&ctx, a).await,
        Command::Embed(a) => client::embed(&ctx, a).await,
        Command::Models(a) => client::models(&ctx, a).await,
        Command::Job(c) => client::job_cmd(&ctx, c).await,
    }
}

async fn run_localnet(ctx: &Ctx, port: u16, state: Option<PathBuf>) -> anyhow::Result<()> {
    let net = Localnet::start(LocalnetConfig {
        port,
        state: state.clone(),
        script: None,
    })
    .await?;
    ctx.out.emit(
        format!(
            "localnet running at {}\n  use: cocoon --network localnet --api-url {} …\n  state: {}\n  Ctrl-C to stop",
            net.url(),
            net.url(),
            state.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "not saved".into())
        ),
        json!({ "url": net.url(), "state": state }),
    );
    tokio::signal::ctrl_c().await?;
    net.stop().await;
    Ok(())
}

async fn deploy(ctx: &Ctx, a: DeployArgs) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let w = ctx.open_wallet()?;
    let params = RootParams {
        min_stake: a.min_stake.nano(),
        unbonding_delay: a.unbonding_delay,
        grace_period: a.grace_period,
        relayer_fee_cap_bps: a.relayer_fee_cap_bps,
        protocol_fee_bps: a.protocol_fee_bps,
        reporter_reward_bps: a.reporter_reward_bps,
        treasury: a.treasury.unwrap_or_else(|| w.address().clone()),
    };
    let policy = RootPolicy {
        allowed_kinds: a.allowed_kinds,
        measurements: BTreeSet::new(),
    };
    let data = RootClient::<TonCenterClient>::initial_data(
        w.address().clone(),
        params,
        policy,
        BTreeMap::new(),
    )?;
    let (root, o) = ctx
        .out
        .progress(
            "deploying Root",
            RootClient::deploy(
                &chain,
                &w,
                &data,
                a.value.nano(),
                &ctx.wallet.send_options(),
            ),
        )
        .await?;
    ctx.out.emit(
        format!(
            "Root deployed at {}\n  export COCOON_ROOT={}\n  fees: {} TON",
            addr(root.address(), ctx.net()),
            addr(root.address(), ctx.net()),
            format_ton(o.total_fees())
        ),
        json!({ "root": root.address().to_base64_url(), "outcome": outcome_json(&o) }),
    );
    Ok(())
}

async fn wallet_cmd(ctx: &Ctx, c: WalletCmd) -> anyhow::Result<()> {
    match c {
        WalletCmd::New { force, mnemonic } => {
            let path = ctx.wallet.path();
            let phrase = mnemonic.unwrap_or_else(crate::wallet::generate_mnemonic);
            let w = Wallet::from_mnemonic(&phrase, ctx.wallet.version)?;
            wallet_file::save(&path, ctx.wallet.version, &phrase, force)?;
            ctx.out.emit(
                format!("wallet {} ({:?}) saved to {}\n  keep the file secret: it holds the mnemonic", addr(w.address(), ctx.net()), ctx.wallet.version, path.display()),
                json!({ "address": w.address().to_base64_url(), "version": ctx.wallet.version, "file": path }),
            );
        }
        WalletCmd::Show => {
            let w = ctx.open_wallet()?;
            ctx.out.emit(
                format!("address: {}\nraw: {}\nversion: {:?}\npublic key: {}", addr(w.address(), ctx.net()), w.address().to_hex(), w.kind(), hex::encode(w.public_key())),
                json!({ "address": w.address().to_base64_url(), "raw": w.address().to_hex(), "version": w.kind(), "public_key": hex::encode(w.public_key()) }),
            );
        }
        WalletCmd::Balance { address } => {
            let a = match address {
                Some(a) => a,
                None => ctx.open_wallet()?.address().clone(),
            };
            let st = ctx.chain()?.account(&a).await?;
            ctx.out.emit(
                format!("{} TON ({:?})", format_ton(st.balance), st.status),
                json!({ "address": a.to_base64_url(), "balance_nano": st.balance.to_string(), "balance": format_ton(st.balance), "status": st.status }),
            );
        }
        WalletCmd::Fund { amount } => {
            if ctx.net() != Network::Localnet {
                bail!("the faucet exists only on localnet");
            }
            let w = ctx.open_wallet()?;
            let url = ctx.cli_chain.config().base_url;
            localnet::dev_call(&reqwest::Client::new(), &url, "faucet", json!({ "address": w.address().to_base64_url(), "amount": amount.nano().to_string() })).await?;
            ctx.out.emit(
                format!("funded {} with {amount}", addr(w.address(), ctx.net())),
                json!({ "funded_nano": amount.nano().to_string() }),
            );
        }
    }
    Ok(())
}

async fn escrow_cmd(ctx: &Ctx, c: EscrowCmd) -> anyhow::Result<()> {
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
            ctx.out.emit(human, json!({ "address": e.address().to_base64_url(), "state": st, "job": j.map(|(_, v)| v) }));
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

async fn worker_cmd(ctx: &Ctx, c: WorkerCmd) -> anyhow::Result<()> {
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
                json!({ "address": wc.address().to_base64_url(), "state": st, "record": rec }),
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

fn set_param(p: &mut RootParams, name: &str, value: &str) -> anyhow::Result<()> {
    let int = |v: &str| {
        v.parse::<u64>()
            .with_context(|| format!("{name}: not an integer: {v}"))
    };
    match name {
        "min-stake" => p.min_stake = Ton::from_str(value)?.nano(),
        "unbonding-delay" => p.unbonding_delay = u32::try_from(int(value)?)?,
        "grace-period" => p.grace_period = u32::try_from(int(value)?)?,
        "relayer-fee-cap-bps" => p.relayer_fee_cap_bps = u16::try_from(int(value)?)?,
        "protocol-fee-bps" => p.protocol_fee_bps = u16::try_from(int(value)?)?,
        "reporter-reward-bps" => p.reporter_reward_bps = u16::try_from(int(value)?)?,
        "treasury" => {
            p.treasury =
                TonAddress::from_str(value).map_err(|e| anyhow::anyhow!("treasury: {e}"))?
        }
        other => bail!("unknown parameter {other:?}"),
    }
    Ok(())
}

async fn root_cmd(ctx: &Ctx, c: RootCmd) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let opts = ctx.wallet.send_options();
    match c {
        RootCmd::Show { root } => {
            let r = RootClient::at(&chain, root.root);
            let owner = r.owner().await?;
            let params = r.params().await?;
            let policy = r.policy().await?;
            let models = r.models().await?;
            let human = format!(
                "root {}\n  owner: {}\n  min stake: {} TON\n  unbonding delay: {} s\n  grace period: {} s\n  relayer fee cap: {} bps\n  protocol fee: {} bps\n  reporter reward: {} bps\n  treasury: {}\n  allowed kinds: {:#05b}\n  measurements: {}\n  models: {}",
                addr(r.address(), ctx.net()),
                addr(&owner.owner, ctx.net()),
                format_ton(params.min_stake),
                params.unbonding_delay,
                params.grace_period,
                params.relayer_fee_cap_bps,
                params.protocol_fee_bps,
                params.reporter_reward_bps,
                addr(&params.treasury, ctx.net()),
                policy.allowed_kinds,
                policy.measurements.len(),
                models.len()
            );
            ctx.out.emit(
                human,
                json!({
                    "address": r.address().to_base64_url(), "owner": owner,
                    "params": {
                        "min_stake_nano": params.min_stake.to_string(), "unbonding_delay": params.unbonding_delay,
                        "grace_period": params.grace_period, "relayer_fee_cap_bps": params.relayer_fee_cap_bps,
                        "protocol_fee_bps": params.protocol_fee_bps, "reporter_reward_bps": params.reporter_reward_bps,
                        "treasury": params.treasury.to_base64_url(),
                    },
                    "policy": policy,
                    "models": models.iter().map(|(k, v)| (k.to_string(), hex::encode(v))).collect::<BTreeMap<_, _>>(),
                }),
            );
        }
        RootCmd::SetParam { root, name, value } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let o = if name == "allowed-kinds" {
                let mask: u8 = value.parse().context("allowed-kinds: expected 0..255")?;
                ctx.out
                    .progress(
                        "setting allowed kinds",
                        r.set_allowed_kinds(&w, mask, &opts),
                    )
                    .await?
            } else {
                let mut p = r.params().await?;
                set_param(&mut p, &name, &value)?;
                ctx.out
                    .progress("setting parameters", r.set_params(&w, p, &opts))
                    .await?
            };
            ctx.done(&o, format!("{name} = {value}"));
        }
        RootCmd::AllowMeasurement {
            root,
            measurement,
            remove,
        } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let m = hex32(&measurement, "measurement")?;
            let o = if remove {
                ctx.out
                    .progress("removing measurement", r.remove_measurement(&w, m, &opts))
                    .await?
            } else {
                ctx.out
                    .progress("allowing measurement", r.add_measurement(&w, m, &opts))
                    .await?
            };
            ctx.done(
                &o,
                format!(
                    "measurement {} {}",
                    hex::encode(m),
                    if remove { "removed" } else { "allowed" }
                ),
            );
        }
        RootCmd::AddModel {
            root,
            id,
            name,
            hash,
        } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let h = match (name, hash) {
                (Some(n), None) => Sha256::digest(n.as_bytes()).into(),
                (None, Some(h)) => hex32(&h, "model hash")?,
                _ => bail!("give --name or --hash"),
            };
            let o = ctx
                .out
                .progress("registering model", r.set_model(&w, id, h, &opts))
                .await?;
            ctx.done(&o, format!("model {id} = {}", hex::encode(h)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let c = Cli::try_parse_from([
            "cocoon",
            "--network",
            "localnet",
            "--json",
            "wallet",
            "balance",
        ])
        .unwrap();
        assert!(c.output.json);
        assert!(matches!(
            c.command,
            Command::Wallet(WalletCmd::Balance { address: None })
        ));
        let root = "0:".to_owned() + &"ab".repeat(32);
        let c =
            Cli::try_parse_from(["cocoon", "escrow", "deposit", "--root", &root, "1.5"]).unwrap();
        match c.command {
            Command::Escrow(EscrowCmd::Deposit { amount, .. }) => {
                assert_eq!(amount.nano(), 1_500_000_000)
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "cocoon",
                "escrow",
                "deposit",
                "--root",
                &root,
                "1.0000000001"
            ])
            .is_err()
        );
        let c = Cli::try_parse_from(["cocoon", "deploy"]).unwrap();
        match c.command {
            Command::Deploy(d) => {
                assert_eq!(d.min_stake.nano(), root_defaults::MIN_STAKE);
                assert_eq!(d.allowed_kinds, root_defaults::ALLOWED_KINDS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_param_validates() {
        let mut p = RootParams {
            min_stake: 1,
            unbonding_delay: 1,
            grace_period: 1,
            relayer_fee_cap_bps: 1,
            protocol_fee_bps: 1,
            reporter_reward_bps: 1,
            treasury: TonAddress::NULL,
        };
        set_param(&mut p, "min-stake", "2.5").unwrap();
        assert_eq!(p.min_stake, 2_500_000_000);
        set_param(&mut p, "grace-period", "60").unwrap();
        assert_eq!(p.grace_period, 60);
        assert!(set_param(&mut p, "protocol-fee-bps", "70000").is_err());
        assert!(set_param(&mut p, "nope", "1").is_err());
        assert!(hex32("zz", "x").is_err());
        assert!(hex32(&"00".repeat(31), "x").is_err());
    }
}
