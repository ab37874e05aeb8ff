//! The app developer's commands over the SDK client: `cocoon chat`, `cocoon embed`,
//! `cocoon models`, `cocoon job verify`.
//!
//! ```text
//! cocoon --network localnet chat --root EQ… --relayer http://127.0.0.1:8480 "What is TON?"
//! cocoon --json embed --root EQ… --relayer … "first text" "second text"
//! cocoon job verify --root EQ… --relayer … --receipt <base64 BOC from `chat --json`>
//! ```

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use cocoon_sdk::args::RELAYER_URL_ENV;
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::chain::Network;
use cocoon_sdk::client::channels::{
    ChannelClient, ChannelEvent, ChannelResult, RequestOptions, default_store_path,
};
use cocoon_sdk::client::{
    Client, ClientConfig, ClientError, DEFAULT_CANDIDATES, DEFAULT_DEADLINE, JobEvent, JobOptions,
    JobResult, PolicyMode, SETTLEMENT_TIMEOUT, Settlement,
};
use cocoon_sdk::contracts::{EscrowClient, RootClient};
use cocoon_sdk::job::{
    ChatMessage, FinishReason, GenerationParams, JobRequest, ModelSpec, request,
};
use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::tlb::{TlbType, TonAddress};
use cocoon_sdk::units::{Ton, format_ton};

use super::{Ctx, RootArg, addr};

/// Default chat model.
pub const DEFAULT_CHAT_MODEL: &str = cocoon_sdk::job::models::SMOLLM2_135M.name;
/// Default embedding model.
pub const DEFAULT_EMBED_MODEL: &str = cocoon_sdk::job::models::ALL_MINILM_L6_V2.name;

/// Which evidence a client (and the gateway) accepts at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// SEV-SNP and TDX only.
    Production,
    /// Also simulated TEEs (UNATTESTED), when Root allows them: development networks only.
    Development,
}

/// Parses `simulated`, `sev-snp` (or `snp`), `tdx`.
pub fn parse_kind(s: &str) -> Result<EvidenceKind, String> {
    match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "simulated" => Ok(EvidenceKind::Simulated),
        "sev-snp" | "snp" => Ok(EvidenceKind::SevSnp),
        "tdx" => Ok(EvidenceKind::Tdx),
        other => Err(format!(
            "unknown attestation kind {other:?} (simulated, sev-snp, tdx)"
        )),
    }
}

/// Where the client connects and what evidence it accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Which Root.
    #[command(flatten)]
    pub root: RootArg,
    /// Relayer client API, e.g. http://127.0.0.1:8480.
    #[arg(long, env = RELAYER_URL_ENV)]
    pub relayer: String,
    /// Evidence accepted: production (hardware TEEs) or development (also simulated).
    /// Default: development on localnet, production elsewhere.
    #[arg(long, value_enum)]
    pub policy: Option<PolicyArg>,
    /// Accept only workers that also prove their GPU runs in confidential-computing mode (NVIDIA
    /// evidence verified against NVIDIA's root and signed RIMs, bound to the CPU TEE report).
    #[arg(
        long = "require-gpu-attestation",
        env = "COCOON_REQUIRE_GPU_ATTESTATION"
    )]
    pub require_gpu: bool,
    /// Workers each input is sealed to (the relayer fails over among them).
    #[arg(long, default_value_t = DEFAULT_CANDIDATES)]
    pub candidates: usize,
    /// Job deadline on-chain, seconds.
    #[arg(long = "job-deadline", default_value_t = DEFAULT_DEADLINE.as_secs())]
    pub job_deadline_secs: u64,
}

impl ClientArgs {
    /// The client configuration for `network`.
    pub(super) fn config(&self, ctx: &Ctx) -> ClientConfig {
        let mut c = ClientConfig::new(
            ctx.cli_chain.config(),
            self.root.root.clone(),
            self.relayer.clone(),
        );
        c.policy = policy_mode(self.policy, ctx.net());
        c.require_gpu = self.require_gpu;
        c.candidates = self.candidates;
        c.deadline = Duration::from_secs(self.job_deadline_secs);
        c.send = ctx.wallet.send_options();
        c
    }

    pub(super) async fn connect(&self, ctx: &Ctx) -> anyhow::Result<Client> {
        let wallet = ctx.open_wallet()?;
        let config = self.config(ctx);
        if config.policy == PolicyMode::Development {
            tracing::warn!(target: "cli", "development policy: UNATTESTED (SIMULATED TEE) workers are accepted");
        }
        ctx.out
            .progress(
                "connecting to Root and the relayer",
                Client::connect(config, wallet),
            )
            .await
            .context("connecting to the network")
    }
}

/// Whether `root` is a v2 Root (payment channels).
async fn root_is_v2(ctx: &Ctx, root: &TonAddress) -> anyhow::Result<bool> {
    let chain = ctx.chain()?;
    let v = cocoon_sdk::contracts::detect_root_version(&chain, root)
        .await
        .context("reading the Root's version")?;
    Ok(v == cocoon_sdk::contracts::RootVersion::V2)
}

impl ClientArgs {
    /// Whether the Root is a v2 Root (payment channels).
    pub(super) async fn is_v2(&self, ctx: &Ctx) -> anyhow::Result<bool> {
        root_is_v2(ctx, &self.root.root).await
    }

    /// A channel-mode client (v2 Root): the voucher key beside the wallet file, the sessions
    /// saved beside it too; with `highload`, sending from the wallet's Highload Wallet v3.
    pub(super) async fn connect_channels(
        &self,
        ctx: &Ctx,
        highload: bool,
    ) -> anyhow::Result<ChannelClient> {
        let wallet_file = ctx.wallet.path();
        let key = super::channel::load_or_create_voucher_key(
            &super::channel::default_voucher_key_path(&wallet_file),
        )?;
        let store = default_store_path(&wallet_file, &self.root.root);
        self.connect_channels_with(ctx, key, Some(store), highload)
            .await
    }

    /// A channel-mode client that only reads (Root v2, the relayer's verified workers): a
    /// throwaway voucher key and nothing saved, so listing models leaves no file behind.
    async fn connect_channels_read_only(&self, ctx: &Ctx) -> anyhow::Result<ChannelClient> {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        self.connect_channels_with(ctx, key, None, false).await
    }

    async fn connect_channels_with(
        &self,
        ctx: &Ctx,
        key: ed25519_dalek::SigningKey,
        store: Option<std::path::PathBuf>,
        highload: bool,
    ) -> anyhow::Result<ChannelClient> {
        use cocoon_sdk::client::channels::ChannelConfig;
        let wallet = ctx.open_wallet()?;
        let mut c = ChannelConfig::new(
            ctx.cli_chain.config(),
            self.root.root.clone(),
            self.relayer.clone(),
        );
        c.policy = policy_mode(self.policy, ctx.net());
        c.require_gpu = self.require_gpu;
        c.channels = self
            .candidates
            .clamp(1, cocoon_sdk::relay::channel::MAX_TICKETS);
        c.store = store;
        c.send = ctx.wallet.send_options();
        c.highload = highload;
        if c.policy == PolicyMode::Development {
            tracing::warn!(target: "cli", "development policy: UNATTESTED (SIMULATED TEE) workers are accepted");
        }
        ctx.out
            .progress(
                "connecting to Root v2 and the relayer",
                ChannelClient::connect(c, wallet, key),
            )
            .await
            .context("connecting to the network")
    }
}

/// The evidence policy `arg` asks for on `network` (development on localnet when not said).
pub(super) fn policy_mode(arg: Option<PolicyArg>, network: Network) -> PolicyMode {
    match arg {
        Some(PolicyArg::Production) => PolicyMode::Production,
        Some(PolicyArg::Development) => PolicyMode::Development,
        None if network == Network::Localnet => PolicyMode::Development,
        None => PolicyMode::Production,
    }
}

/// Which worker may serve a job and what it may cost.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobArgs {
    /// Only this worker may serve (and settle) the job.
    #[arg(long)]
    pub worker: Option<TonAddress>,
    /// Weakest attestation accepted: simulated, sev-snp or tdx (both mean a hardware TEE).
    #[arg(long = "min-attestation", value_parser = parse_kind)]
    pub min_attestation: Option<EvidenceKind>,
    /// Highest price per input token accepted, nanoTON.
    #[arg(long = "max-price-in")]
    pub max_price_in: Option<u128>,
    /// Highest price per output token accepted, nanoTON.
    #[arg(long = "max-price-out")]
    pub max_price_out: Option<u128>,
    /// Worker to put first when it qualifies (repeat for an order of preference).
    #[arg(long = "prefer-worker")]
    pub prefer_workers: Vec<TonAddress>,
    /// Most the job may lock (TON; `123n` for nanoTON). Default: what the request can cost.
    /// On a v2 Root: most the request may cost, `max_tokens` lowered to fit.
    #[arg(long = "max-cost")]
    pub max_cost: Option<Ton>,
    /// After the answer, wait for the receipt's settlement on-chain and check it.
    #[arg(long)]
    pub settle: bool,
}

impl JobArgs {
    /// The job options these flags describe.
    pub fn options(&self) -> JobOptions {
        JobOptions {
            max_cost: self.max_cost.map(Ton::nano),
            worker: self.worker.clone(),
            candidates: None,
            min_attestation: self.min_attestation,
            max_price_in: self.max_price_in,
            max_price_out: self.max_price_out,
            preferred_workers: self.prefer_workers.clone(),
            deadline: None,
        }
    }

    /// The channel-mode limits these flags describe (v2 Root): the same worker choice and
    /// prices, checked against each channel's prices; `--max-cost` lowers `max_tokens` to fit.
    pub fn channel_options(&self) -> RequestOptions {
        RequestOptions {
            worker: self.worker.clone(),
            min_attestation: self.min_attestation,
            max_price_in: self.max_price_in,
            max_price_out: self.max_price_out,
            preferred_workers: self.prefer_workers.clone(),
            max_cost: self.max_cost.map(Ton::nano),
        }
    }

    /// Refuses what channel mode cannot do: `--settle` waits for a per-job settlement, while a
    /// channel's worker settles many requests at once when its policy says so.
    fn check_channel_mode(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.settle,
            "--settle is for v1 jobs: on a v2 Root the worker settles a channel's requests together; \
             prove a receipt with `cocoon job verify --receipt <receipt_boc>` once a settlement anchors it"
        );
        Ok(())
    }
}

/// A model of the network's table by name or registry id.
fn model_spec(model: &str) -> anyhow::Result<&'static ModelSpec> {
    ModelSpec::by_name(model)
        .ok()
        .or_else(|| model.parse().ok().and_then(|id| ModelSpec::by_id(id).ok()))
        .with_context(|| format!("unknown model {model:?}"))
}

/// `cocoon chat …`
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Where the client connects and what evidence it accepts.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Which worker may serve the job and what it may cost.
    #[command(flatten)]
    pub job: JobArgs,
    /// Model name or registry id.
    #[arg(long, default_value = DEFAULT_CHAT_MODEL)]
    pub model: String,
    /// System message.
    #[arg(long)]
    pub system: Option<String>,
    /// Complete PROMPT as raw text instead of chatting.
    #[arg(long)]
    pub raw: bool,
    /// Most tokens to generate (default: the model's recommended length).
    #[arg(long = "max-tokens")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 = greedy (default: the model's recommended one).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default: the model's recommended one).
    #[arg(long = "top-p")]
    pub top_p: Option<f32>,
    /// Sampling seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop sequence (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// The prompt.
    pub prompt: String,
}

impl ChatArgs {
    /// The job request these flags describe.
    pub fn request(&self) -> JobRequest {
        // What the network's model table recommends, where the caller said nothing; a model it
        // does not know gets the protocol's defaults.
        let rec = ModelSpec::by_name(&self.model)
            .ok()
            .or_else(|| {
                self.model
                    .parse()
                    .ok()
                    .and_then(|id| ModelSpec::by_id(id).ok())
            })
            .and_then(|m| m.sampling);
        let params = GenerationParams {
            max_tokens: self
                .max_tokens
                .or(rec.map(|r| r.max_tokens))
                .unwrap_or(request::DEFAULT_MAX_TOKENS),
            temperature: self
                .temperature
                .or(rec.map(|r| r.temperature()))
                .unwrap_or(1.0),
            top_p: self.top_p.or(rec.map(|r| r.top_p())).unwrap_or(1.0),
            stop: self.stop.clone(),
            seed: self.seed,
        };
        if self.raw {
            return JobRequest::completion(self.prompt.clone(), params);
        }
        let mut messages = Vec::new();
        if let Some(s) = &self.system {
            messages.push(ChatMessage::new("system", s.clone()));
        }
        messages.push(ChatMessage::new("user", self.prompt.clone()));
        JobRequest::chat(messages, params)
    }
}

/// `cocoon embed …`
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Where the client connects and what evidence it accepts.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Which worker may serve the job and what it may cost.
    #[command(flatten)]
    pub job: JobArgs,
    /// Model name or registry id.
    #[arg(long, default_value = DEFAULT_EMBED_MODEL)]
    pub model: String,
    /// Texts to embed.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

/// `cocoon models …`
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Which Root.
    #[command(flatten)]
    pub root: RootArg,
    /// Relayer client API. Without it, the models come from Root alone (the chain); with it, each
    /// model also shows its connected, verified workers and their lowest prices.
    #[arg(long, env = RELAYER_URL_ENV)]
    pub relayer: Option<String>,
    /// Evidence accepted: production (hardware TEEs) or development (also simulated).
    /// Default: development on localnet, production elsewhere.
    #[arg(long, value_enum)]
    pub policy: Option<PolicyArg>,
    /// Count only workers that also prove their GPU runs in confidential-computing mode.
    #[arg(
        long = "require-gpu-attestation",
        env = "COCOON_REQUIRE_GPU_ATTESTATION"
    )]
    pub require_gpu: bool,
    /// Also list the verified workers of each model (who is connected is known to a relayer only).
    #[arg(long, requires = "relayer")]
    pub workers: bool,
}

impl ModelsArgs {
    /// The client flags, when a relayer is given.
    fn client(&self) -> Option<ClientArgs> {
        Some(ClientArgs {
            root: self.root.clone(),
            relayer: self.relayer.clone()?,
            policy: self.policy,
            require_gpu: self.require_gpu,
            candidates: DEFAULT_CANDIDATES,
            job_deadline_secs: DEFAULT_DEADLINE.as_secs(),
        })
    }
}

/// `cocoon job …`
#[derive(Debug, clap::Subcommand)]
pub enum JobCmd {
    /// Where a job of this wallet's Escrow stands: the relayer's state and reason, and whether
    /// it is still open on-chain (funds locked until settled or expired).
    Status {
        /// Where the client connects and what evidence it accepts.
        #[command(flatten)]
        client: ClientArgs,
        /// Job id on the wallet's Escrow.
        #[arg(long = "job")]
        job_id: u64,
    },
    /// Check a receipt kept from an earlier job (`receipt_boc` of `chat --json`): signed by its
    /// worker's on-chain key, priced at its on-chain prices, settled on-chain for this wallet's
    /// Escrow with the same cost and receipt hash. A channel receipt (protocol v2, the `receipt_boc`
    /// of `chat --json` on a v2 Root) is proved against the settlement that anchors it, with the
    /// later receipts of its channel saved beside the wallet.
    Verify {
        /// Where the client connects and what evidence it accepts.
        #[command(flatten)]
        client: ClientArgs,
        /// The receipt BOC, base64 or hex.
        #[arg(long)]
        receipt: String,
        /// How long to wait for the settlement, seconds.
        #[arg(long, default_value_t = SETTLEMENT_TIMEOUT.as_secs())]
        timeout: u64,
    },
}

/// Decodes a receipt BOC given as base64 or hex.
pub fn parse_receipt(s: &str) -> anyhow::Result<SignedReceipt> {
    let s = s.trim();
    let bytes = hex::decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(s))
        .context("the receipt is neither hex nor base64")?;
    SignedReceipt::from_boc(&bytes).context("the receipt is not a SignedReceipt BOC")
}

fn result_json(r: &JobResult, net: Network, open_ms: u128) -> Value {
    json!({
        "job": { "escrow": r.job.escrow, "job_id": r.job.job_id },
        "model": r.model.name,
        "text": r.text,
        "embeddings": r.embeddings,
        "finish_reason": match r.finish_reason { FinishReason::Stop => "stop", FinishReason::Length => "length" },
        "usage": r.usage,
        "cost_nano": r.cost.to_string(),
        "cost": format_ton(r.cost),
        "max_cost_nano": r.max_cost.to_string(),
        "worker": addr(&r.worker, net),
        "attestation": r.attestation_kind.to_string(),
        "gpu": gpu_json(r.gpu.as_ref()),
        "unattested": r.unattested(),
        "receipt_hash": hex::encode(r.receipt_hash),
        "receipt_boc": r.receipt.to_boc().map(|b| base64::engine::general_purpose::STANDARD.encode(b)).unwrap_or_default(),
        "open_tx": hex::encode(r.open_tx),
        "open_ms": open_ms as u64,
    })
}

fn settlement_json(s: &Settlement) -> Value {
    json!({
        "tx_hash": hex::encode(s.tx_hash),
        "lt": s.lt.to_string(),
        "cost_nano": s.cost.to_string(),
        "receipt_hash": hex::encode(s.receipt_hash),
    })
}

fn summary(r: &JobResult, net: Network) -> String {
    let mut s = format!(
        "job {} · {} · worker {} · {} in / {} out tokens · cost {} TON (max {}) · receipt {}",
        r.job.job_id,
        r.model.name,
        addr(&r.worker, net),
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
        format_ton(r.cost),
        format_ton(r.max_cost),
        hex::encode(r.receipt_hash),
    );
    s.push_str(&format!(
        "\nattestation: {}",
        attestation_line(r.attestation_kind, r.gpu.as_ref())
    ));
    s
}

/// The attestation a person reads: the CPU TEE, and the GPU when the worker proved one.
fn attestation_line(kind: EvidenceKind, gpu: Option<&cocoon_sdk::attest::VerifiedGpu>) -> String {
    match gpu {
        Some(gpu) => format!("{kind} + {}", cocoon_sdk::attest::gpu_label(gpu)),
        None => kind.to_string(),
    }
}

/// The GPU evidence a worker proved, for `--json` (null: none).
fn gpu_json(gpu: Option<&cocoon_sdk::attest::VerifiedGpu>) -> Value {
    gpu.map_or(Value::Null, |g| {
        json!({
            "vendor": "nvidia",
            "confidential_computing": true,
            "driver_version": g.driver_version,
            "vbios_version": g.vbios_version,
            "measurements_checked": g.measurements_checked,
            "evidence_hash": hex::encode(g.evidence_hash),
        })
    })
}

/// Runs a job, streaming text to stdout in text mode; returns the checked result.
async fn run_job(
    ctx: &Ctx,
    client: &Client,
    model: &str,
    request: JobRequest,
    options: JobOptions,
    stream_text: bool,
) -> anyhow::Result<(JobResult, u128)> {
    let mut stream = ctx
        .out
        .progress(
            "opening the job on-chain",
            client.open_job(model, request, options),
        )
        .await?;
    let open_ms = stream.open_timing().as_millis();
    let stdout = std::io::stdout();
    while let Some(ev) = stream.next().await {
        match ev? {
            JobEvent::Dispatched { worker, attempt } => {
                tracing::info!(target: "cli", %worker, attempt, "dispatched");
                if attempt > 1 && stream_text && !ctx.out.json {
                    // Failover: the text so far is void; start a fresh line.
                    println!("\n[failover to {}]", addr(&worker, ctx.net()));
                }
            }
            JobEvent::Delta(t) => {
                if stream_text && !ctx.out.json {
                    let mut out = stdout.lock();
                    let _ = out.write_all(t.as_bytes());
                    let _ = out.flush();
                }
            }
            JobEvent::Embeddings(_) => {}
            JobEvent::Done(r) => {
                if stream_text && !ctx.out.json {
                    println!();
                }
                return Ok((*r, open_ms));
            }
        }
    }
    anyhow::bail!("the job's stream ended without a result")
}

async fn finish(
    ctx: &Ctx,
    client: &Client,
    r: JobResult,
    open_ms: u128,
    settle: bool,
    human: String,
) -> anyhow::Result<()> {
    let mut json = result_json(&r, ctx.net(), open_ms);
    let mut human = human;
    if settle {
        let s = ctx
            .out
            .progress(
                "waiting for the settlement on-chain",
                client.verify_settlement(&r),
            )
            .await?;
        human.push_str(&format!(
            "\nsettled on-chain: tx {} (lt {}), {} TON",
            hex::encode(s.tx_hash),
            s.lt,
            format_ton(s.cost)
        ));
        json["settlement"] = settlement_json(&s);
    }
    if r.unattested() && !ctx.out.json {
        eprintln!(
            "WARNING: answered by an UNATTESTED (SIMULATED TEE) worker: nothing was attested"
        );
    }
    if ctx.out.json {
        ctx.out.emit("", json);
    } else {
        eprintln!("{human}");
    }
    Ok(())
}

pub(super) async fn chat(ctx: &Ctx, a: ChatArgs) -> anyhow::Result<()> {
    if a.client.is_v2(ctx).await? {
        return chat_channels(ctx, a).await;
    }
    let client = a.client.connect(ctx).await?;
    let (r, open_ms) = run_job(ctx, &client, &a.model, a.request(), a.job.options(), true).await?;
    let human = summary(&r, ctx.net());
    finish(ctx, &client, r, open_ms, a.job.settle, human).await
}

/// `cocoon chat` on a v2 Root: paid through the wallet's payment channels, nothing on-chain per
/// request once they are open.
async fn chat_channels(ctx: &Ctx, a: ChatArgs) -> anyhow::Result<()> {
    a.job.check_channel_mode()?;
    let client = a.client.connect_channels(ctx, false).await?;
    let (r, txs) = run_channel_request(
        ctx,
        &client,
        &a.model,
        a.request(),
        &a.job.channel_options(),
        true,
    )
    .await?;
    finish_channels(ctx, &r, txs);
    Ok(())
}

/// Sends `request` over the client's channels, streaming text to stdout in text mode; returns
/// the checked result and the chain transactions it took (opening or topping up channels).
async fn run_channel_request(
    ctx: &Ctx,
    client: &ChannelClient,
    model: &str,
    request: JobRequest,
    options: &RequestOptions,
    stream_text: bool,
) -> anyhow::Result<(ChannelResult, u64)> {
    let model = model_spec(model)?;
    let txs_before = client.transactions();
    let mut stream = ctx
        .out
        .progress(
            "sending over the channels",
            client.request_with(model, request, options),
        )
        .await?;
    let text = stream_text && !ctx.out.json;
    let stdout = std::io::stdout();
    let r = loop {
        match stream.next().await {
            Some(Ok(ChannelEvent::Dispatched {
                worker, attempt, ..
            })) => {
                tracing::info!(target: "cli", %worker, attempt, "dispatched");
                if attempt > 1 && text {
                    println!("\n[failover to {}]", addr(&worker, ctx.net()));
                }
            }
            Some(Ok(ChannelEvent::Delta(t))) => {
                if text {
                    let mut out = stdout.lock();
                    let _ = out.write_all(t.as_bytes());
                    let _ = out.flush();
                }
            }
            Some(Ok(ChannelEvent::Embeddings(_))) => {}
            Some(Ok(ChannelEvent::Done(r))) => {
                if text {
                    println!();
                }
                break *r;
            }
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the request's stream ended without a result"),
        }
    };
    Ok((r, client.transactions() - txs_before))
}

/// Prints a channel request's outcome: the summary on stderr, or the JSON object.
fn finish_channels(ctx: &Ctx, r: &ChannelResult, txs: u64) {
    let receipt_boc = r
        .receipt
        .to_boc()
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default();
    if r.attestation_kind == EvidenceKind::Simulated && !ctx.out.json {
        eprintln!(
            "WARNING: answered by an UNATTESTED (SIMULATED TEE) worker: nothing was attested"
        );
    }
    if ctx.out.json {
        ctx.out
            .emit("", channel_result_json(r, ctx.net(), txs, &receipt_boc));
        return;
    }
    eprintln!(
        "channel {} seq {} · {} · worker {} · {} in / {} out tokens · cost {} TON (paid on the channel so far {}) · {} chain transaction(s)\nattestation: {}\nreceipt: {}",
        r.channel.channel_id,
        r.seq,
        r.model.name,
        addr(&r.worker, ctx.net()),
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
        format_ton(r.cost),
        format_ton(r.cumulative),
        txs,
        attestation_line(r.attestation_kind, r.gpu.as_ref()),
        receipt_boc,
    );
}

fn channel_result_json(r: &ChannelResult, net: Network, txs: u64, receipt_boc: &str) -> Value {
    json!({
        "channel": { "escrow": r.channel.escrow.to_hex(), "id": r.channel.channel_id.to_string() },
        "seq": r.seq,
        "model": r.model.name,
        "text": r.text,
        "embeddings": r.embeddings,
        "finish_reason": match r.finish_reason { FinishReason::Stop => "stop", FinishReason::Length => "length" },
        "usage": r.usage,
        "cost_nano": r.cost.to_string(),
        "max_cost_nano": r.max_cost.to_string(),
        "cumulative_nano": r.cumulative.to_string(),
        "worker": addr(&r.worker, net),
        "attestation": r.attestation_kind.to_string(),
        "gpu": gpu_json(r.gpu.as_ref()),
        "unattested": r.attestation_kind == EvidenceKind::Simulated,
        "receipt_hash": r.receipt.body.hash().map(hex::encode).unwrap_or_default(),
        "receipt_boc": receipt_boc,
        "transactions": txs,
    })
}

/// Prints the head of each vector in text mode.
fn print_embeddings(ctx: &Ctx, texts: &[String], vectors: Option<&Vec<Vec<f32>>>) {
    if ctx.out.json {
        return;
    }
    for (text, v) in texts.iter().zip(vectors.into_iter().flatten()) {
        let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
        println!(
            "{text:?}: [{}, …] ({} dimensions)",
            head.join(", "),
            v.len()
        );
    }
}

pub(super) async fn embed(ctx: &Ctx, a: EmbedArgs) -> anyhow::Result<()> {
    if a.client.is_v2(ctx).await? {
        return embed_channels(ctx, a).await;
    }
    let client = a.client.connect(ctx).await?;
    let request = JobRequest::embeddings(a.texts.clone());
    let (r, open_ms) = run_job(ctx, &client, &a.model, request, a.job.options(), false).await?;
    print_embeddings(ctx, &a.texts, r.embeddings.as_ref());
    let human = summary(&r, ctx.net());
    finish(ctx, &client, r, open_ms, a.job.settle, human).await
}

/// `cocoon embed` on a v2 Root: paid through the wallet's payment channels like chat.
async fn embed_channels(ctx: &Ctx, a: EmbedArgs) -> anyhow::Result<()> {
    a.job.check_channel_mode()?;
    let client = a.client.connect_channels(ctx, false).await?;
    let request = JobRequest::embeddings(a.texts.clone());
    let (r, txs) = run_channel_request(
        ctx,
        &client,
        &a.model,
        request,
        &a.job.channel_options(),
        false,
    )
    .await?;
    print_embeddings(ctx, &a.texts, r.embeddings.as_ref());
    finish_channels(ctx, &r, txs);
    Ok(())
}

/// Root's model registry alone: what `cocoon models` shows without a relayer.
async fn registered_models(ctx: &Ctx, root: &RootArg) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let models = RootClient::at(&chain, root.root.clone()).models().await?;
    let mut human = String::new();
    let mut list = Vec::new();
    for (id, hash) in &models {
        let spec = cocoon_sdk::job::models::KNOWN_MODELS
            .iter()
            .find(|m| m.id == *id && m.registry_hash() == *hash);
        let name = spec.map_or_else(|| format!("model-{id}"), |s| s.name.to_owned());
        human.push_str(&format!("{id:>3}  {name}\n"));
        list.push(json!({
            "id": id,
            "name": name,
            "known": spec.is_some(),
            "registry_hash": hex::encode(hash),
        }));
    }
    if models.is_empty() {
        human.push_str("Root registers no models\n");
    } else {
        human.push_str("(workers and prices: pass --relayer)\n");
    }
    ctx.out.emit(human.trim_end(), json!({ "models": list }));
    Ok(())
}

/// The models of the network's table that Root v2 registers under their registry hash (a v2
/// Root has no getter listing its whole registry).
async fn registered_models_v2(
    ctx: &Ctx,
    root: &TonAddress,
) -> anyhow::Result<Vec<&'static ModelSpec>> {
    let chain = ctx.chain()?;
    let root = cocoon_sdk::contracts::v2::RootClient::at(&chain, root.clone());
    let mut out = Vec::new();
    for spec in cocoon_sdk::job::models::KNOWN_MODELS {
        if root.model(spec.id).await? == Some(spec.registry_hash()) {
            out.push(spec);
        }
    }
    Ok(out)
}

/// `cocoon models` on a v2 Root: Root v2's models; with a relayer, each one's verified Worker v2
/// records (attestation, stake, code, keys checked as channel mode checks them) and lowest
/// prices, which a channel opened now would fix for its life.
async fn models_channels(ctx: &Ctx, a: ModelsArgs) -> anyhow::Result<()> {
    let specs = ctx
        .out
        .progress(
            "reading Root v2's models",
            registered_models_v2(ctx, &a.root.root),
        )
        .await?;
    let client = match a.client() {
        Some(c) => Some(c.connect_channels_read_only(ctx).await?),
        None => None,
    };
    let mut human = String::new();
    let mut list = Vec::new();
    for spec in &specs {
        let mut entry = json!({
            "id": spec.id,
            "name": spec.name,
            "known": true,
            "registry_hash": hex::encode(spec.registry_hash()),
        });
        let Some(client) = &client else {
            human.push_str(&format!("{:>3}  {}\n", spec.id, spec.name));
            list.push(entry);
            continue;
        };
        let workers = ctx
            .out
            .progress("verifying workers", client.workers(spec.id))
            .await?;
        let mut kinds: Vec<String> = workers.iter().map(|w| w.kind().to_string()).collect();
        kinds.sort();
        kinds.dedup();
        let min_in = workers.iter().map(|w| w.price_in).min();
        let min_out = workers.iter().map(|w| w.price_out).min();
        let price = |p: Option<u128>| p.map_or("-".to_owned(), |p| format!("{p}n"));
        human.push_str(&format!(
            "{:>3}  {:<24} workers {}  from {} in / {} out per token  {}\n",
            spec.id,
            spec.name,
            workers.len(),
            price(min_in),
            price(min_out),
            kinds.join(", "),
        ));
        entry["workers"] = json!(workers.len());
        entry["min_price_in_nano"] = json!(min_in.map(|p| p.to_string()));
        entry["min_price_out_nano"] = json!(min_out.map(|p| p.to_string()));
        entry["attestation"] = json!(kinds);
        if a.workers {
            let mut arr = Vec::new();
            for w in &workers {
                human.push_str(&format!(
                    "       {}  {}  {}n in / {}n out  attested until {}\n",
                    addr(&w.address, ctx.net()),
                    attestation_line(w.kind(), w.attestation.gpu.as_ref()),
                    w.price_in,
                    w.price_out,
                    w.expires_at,
                ));
                arr.push(json!({
                    "worker": addr(&w.address, ctx.net()),
                    "owner": addr(&w.owner, ctx.net()),
                    "attestation": w.kind().to_string(),
                    "gpu": gpu_json(w.attestation.gpu.as_ref()),
                    "price_in_nano": w.price_in.to_string(),
                    "price_out_nano": w.price_out.to_string(),
                    "expires_at": w.expires_at,
                }));
            }
            entry["verified_workers"] = Value::Array(arr);
        }
        list.push(entry);
    }
    if specs.is_empty() {
        human.push_str("Root registers none of the models this cocoon knows\n");
    } else if client.is_none() {
        human.push_str("(workers and prices: pass --relayer)\n");
    }
    ctx.out.emit(human.trim_end(), json!({ "models": list }));
    Ok(())
}

pub(super) async fn models(ctx: &Ctx, a: ModelsArgs) -> anyhow::Result<()> {
    if root_is_v2(ctx, &a.root.root).await? {
        return models_channels(ctx, a).await;
    }
    let Some(client_args) = a.client() else {
        return registered_models(ctx, &a.root).await;
    };
    let client = client_args.connect(ctx).await?;
    let offers = ctx
        .out
        .progress("verifying workers", client.models())
        .await?;
    let mut human = String::new();
    let mut list = Vec::new();
    for o in &offers {
        let price = |p: Option<u128>| p.map_or("-".to_owned(), |p| format!("{p}n"));
        let kinds: Vec<String> = o.kinds.iter().map(ToString::to_string).collect();
        human.push_str(&format!(
            "{:>3}  {:<24} workers {} ({} free)  from {} in / {} out per token  {}\n",
            o.id,
            o.name(),
            o.workers,
            o.available,
            price(o.min_price_in),
            price(o.min_price_out),
            kinds.join(", "),
        ));
        let mut entry = json!({
            "id": o.id,
            "name": o.name(),
            "known": o.spec.is_some(),
            "registry_hash": hex::encode(o.registry_hash),
            "workers": o.workers,
            "available": o.available,
            "min_price_in_nano": o.min_price_in.map(|p| p.to_string()),
            "min_price_out_nano": o.min_price_out.map(|p| p.to_string()),
            "attestation": kinds,
        });
        if a.workers
            && let Some(spec) = o.spec
        {
            let ws = client.workers(&spec).await.unwrap_or_default();
            let mut arr = Vec::new();
            for w in &ws {
                human.push_str(&format!(
                    "       {}  {}  {}n in / {}n out  load {}/{}\n",
                    addr(&w.address, ctx.net()),
                    attestation_line(w.kind(), w.attestation.gpu.as_ref()),
                    w.price_in,
                    w.price_out,
                    w.load,
                    w.capacity
                ));
                arr.push(json!({
                    "worker": addr(&w.address, ctx.net()),
                    "attestation": w.kind().to_string(),
                    "gpu": gpu_json(w.attestation.gpu.as_ref()),
                    "price_in_nano": w.price_in.to_string(),
                    "price_out_nano": w.price_out.to_string(),
                    "load": w.load,
                    "capacity": w.capacity,
                    "expires_at": w.expires_at,
                }));
            }
            entry["verified_workers"] = Value::Array(arr);
        }
        list.push(entry);
    }
    if offers.is_empty() {
        human.push_str("Root registers no models\n");
    }
    ctx.out.emit(human.trim_end(), json!({ "models": list }));
    Ok(())
}

/// `cocoon job verify` of a channel receipt (protocol v2): proves it is anchored by a settlement
/// the Escrow recorded, with the later receipts saved beside the wallet.
async fn verify_channel_receipt(
    ctx: &Ctx,
    client: &ClientArgs,
    receipt: &cocoon_sdk::channel::SignedChannelReceipt,
) -> anyhow::Result<()> {
    use cocoon_sdk::client::channels::{default_store_path, load, prove_receipt};
    let chain = ctx.chain()?;
    let root = &client.root.root;
    let ch = &receipt.body.channel;
    let store = default_store_path(&ctx.wallet.path(), root);
    let saved = load(&store, root, &ch.escrow)
        .with_context(|| format!("reading the saved channels {}", store.display()))?;
    let receipts: Vec<_> = saved
        .into_iter()
        .flat_map(|s| s.channels)
        .flat_map(|c| c.receipts)
        .collect();
    let log = ctx
        .out
        .progress(
            "proving the receipt against the Escrow's settlements",
            prove_receipt(&chain, receipt, &receipts),
        )
        .await?;
    ctx.out.emit(
        format!(
            "receipt seq {} of channel {} is anchored on-chain: settlement at seq {} (cumulative {} TON, accumulator {})",
            receipt.body.seq,
            ch.channel_id,
            log.seq(),
            format_ton(log.cumulative()),
            hex::encode(log.acc()),
        ),
        json!({
            "verified": true,
            "channel": { "escrow": ch.escrow.to_hex(), "id": ch.channel_id.to_string() },
            "seq": receipt.body.seq,
            "settlement": {
                "seq": log.seq(),
                "cumulative_nano": log.cumulative().to_string(),
                "acc": hex::encode(log.acc()),
            },
        }),
    );
    Ok(())
}

/// A channel receipt's BOC given as base64 or hex, if `s` is one.
fn parse_channel_receipt(s: &str) -> Option<cocoon_sdk::channel::SignedChannelReceipt> {
    let s = s.trim();
    let bytes = hex::decode(s)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())?;
    cocoon_sdk::channel::SignedChannelReceipt::from_boc(&bytes).ok()
}

pub(super) async fn job_cmd(ctx: &Ctx, c: JobCmd) -> anyhow::Result<()> {
    if let JobCmd::Verify {
        client, receipt, ..
    } = &c
        && let Some(r) = parse_channel_receipt(receipt)
    {
        return verify_channel_receipt(ctx, client, &r).await;
    }
    match c {
        JobCmd::Status { client, job_id } => {
            let client = client.connect(ctx).await?;
            let job = JobRef::new(client.escrow_address().to_hex(), job_id);
            let relayer = match client.job_status(&job).await {
                Ok(s) => Some(s),
                Err(ClientError::Relayer { status: 404, .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let escrow = EscrowClient::for_owner(
                client.chain(),
                &client.config().root,
                client.wallet_address(),
            )
            .await?;
            let onchain = escrow.job(job_id).await?;
            let relayer_line = match &relayer {
                Some(s) => format!(
                    "relayer: {}{} (attempts {}{})",
                    s.state,
                    s.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default(),
                    s.attempts,
                    s.worker
                        .as_ref()
                        .map(|w| format!(", worker {w}"))
                        .unwrap_or_default()
                ),
                None => "relayer: does not know this job".to_owned(),
            };
            let chain_line = match &onchain {
                Some(j) => format!(
                    "on-chain: open, {} TON locked until the deadline {} (+ grace)",
                    format_ton(j.max_cost),
                    j.deadline
                ),
                None => "on-chain: not open (settled, expired, or never opened)".to_owned(),
            };
            ctx.out.emit(
                format!("job {job_id}\n  {relayer_line}\n  {chain_line}"),
                json!({
                    "job": { "escrow": job.escrow, "job_id": job_id },
                    "relayer": relayer,
                    "open_on_chain": onchain.is_some(),
                    "max_cost_nano": onchain.as_ref().map(|j| j.max_cost.to_string()),
                    "deadline": onchain.as_ref().map(|j| j.deadline),
                }),
            );
            Ok(())
        }
        JobCmd::Verify {
            client,
            receipt,
            timeout,
        } => {
            let receipt = parse_receipt(&receipt)?;
            let client = client.connect(ctx).await?;
            let s = ctx
                .out
                .progress(
                    "checking the receipt and its settlement",
                    client.verify_receipt_settlement(&receipt, Duration::from_secs(timeout)),
                )
                .await?;
            ctx.out.emit(
                format!(
                    "receipt of job {} verified: signed by worker {}, settled on-chain in tx {} (lt {}), {} TON",
                    s.job.job_id,
                    addr(&s.worker, ctx.net()),
                    hex::encode(s.tx_hash),
                    s.lt,
                    format_ton(s.cost)
                ),
                json!({
                    "job": { "escrow": s.job.escrow, "job_id": s.job.job_id },
                    "worker": addr(&s.worker, ctx.net()),
                    "settlement": settlement_json(&s),
                }),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use cocoon_sdk::job::Task;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        c: C,
    }

    #[derive(Debug, clap::Subcommand)]
    enum C {
        Chat(ChatArgs),
        Embed(EmbedArgs),
        Models(ModelsArgs),
    }

    const ROOT: &str = "0:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn models_reads_the_chain_alone_without_a_relayer() {
        if std::env::var_os(RELAYER_URL_ENV).is_some() {
            return;
        }
        let t = T::try_parse_from(["x", "models", "--root", ROOT]).unwrap();
        let C::Models(m) = t.c else { panic!() };
        assert!(m.client().is_none());
        // Who serves a model is known to a relayer only.
        assert!(T::try_parse_from(["x", "models", "--root", ROOT, "--workers"]).is_err());
        let t = T::try_parse_from([
            "x",
            "models",
            "--root",
            ROOT,
            "--relayer",
            "http://r",
            "--workers",
        ])
        .unwrap();
        let C::Models(m) = t.c else { panic!() };
        assert_eq!(m.client().unwrap().relayer, "http://r");
    }

    #[test]
    fn chat_flags_become_the_request_and_options() {
        let t = T::try_parse_from([
            "x",
            "chat",
            "--root",
            ROOT,
            "--relayer",
            "http://r",
            "--system",
            "be brief",
            "--max-tokens",
            "9",
            "--temperature",
            "0",
            "--stop",
            "\n",
            "--seed",
            "7",
            "--min-attestation",
            "tdx",
            "--max-cost",
            "0.5",
            "hello",
        ])
        .unwrap();
        let C::Chat(a) = t.c else { panic!() };
        let req = a.request();
        req.validate().unwrap();
        match &req.task {
            Task::Chat { messages, params } => {
                assert_eq!(messages.len(), 2);
                assert_eq!(messages[0].role, "system");
                assert_eq!(messages[1].content, "hello");
                assert_eq!(
                    (params.max_tokens, params.temperature, params.seed),
                    (9, 0.0, Some(7))
                );
                assert_eq!(params.stop, vec!["\n"]);
            }
            other => panic!("{other:?}"),
        }
        let o = a.job.options();
        assert_eq!(o.min_attestation, Some(EvidenceKind::Tdx));
        assert_eq!(o.max_cost, Some(500_000_000));
        assert_eq!(a.model, DEFAULT_CHAT_MODEL);
        assert_eq!(a.client.candidates, DEFAULT_CANDIDATES);
        assert_eq!(
            policy_mode(a.client.policy, Network::Mainnet),
            PolicyMode::Production
        );
        assert_eq!(
            policy_mode(a.client.policy, Network::Localnet),
            PolicyMode::Development
        );
    }

    #[test]
    fn chat_defaults_come_from_the_model_table() {
        let params = |args: &[&str]| {
            let mut argv = vec!["x", "chat", "--root", ROOT, "--relayer", "http://r"];
            argv.extend_from_slice(args);
            argv.push("hello");
            let t = T::try_parse_from(argv).unwrap();
            let C::Chat(a) = t.c else { panic!() };
            match a.request().task {
                Task::Chat { params, .. } | Task::Completion { params, .. } => params,
                other => panic!("{other:?}"),
            }
        };
        // SmolLM2 (the default model), by name or by registry id: its model card's sampling and
        // an answer-sized length, not temperature 1 up to the maximum.
        let rec = ModelSpec::by_name("smollm2-135m-instruct")
            .unwrap()
            .sampling
            .unwrap();
        for model in [&[][..], &["--model", "1"][..]] {
            let p = params(model);
            assert_eq!(
                (p.temperature, p.top_p, p.max_tokens),
                (rec.temperature(), rec.top_p(), rec.max_tokens)
            );
            assert!(p.max_tokens < request::DEFAULT_MAX_TOKENS);
        }
        // What the caller sets wins, zero included.
        let p = params(&["--temperature", "0", "--top-p", "0.5", "--max-tokens", "9"]);
        assert_eq!((p.temperature, p.top_p, p.max_tokens), (0.0, 0.5, 9));
        // A model the table does not know gets the protocol's defaults.
        let p = params(&["--model", "some-other-model"]);
        assert_eq!(
            (p.temperature, p.top_p, p.max_tokens),
            (1.0, 1.0, request::DEFAULT_MAX_TOKENS)
        );
    }

    #[test]
    fn no_job_flags_is_default_options_and_embed_needs_text() {
        assert_eq!(JobArgs::default().options(), JobOptions::default());
        assert!(T::try_parse_from(["x", "embed", "--root", ROOT, "--relayer", "r"]).is_err());
        let t =
            T::try_parse_from(["x", "embed", "--root", ROOT, "--relayer", "r", "a", "b"]).unwrap();
        let C::Embed(e) = t.c else { panic!() };
        assert_eq!(e.texts, vec!["a", "b"]);
        assert_eq!(e.model, DEFAULT_EMBED_MODEL);
    }

    #[test]
    fn job_flags_become_channel_limits_and_settle_is_refused_on_channels() {
        let w = "0:0101010101010101010101010101010101010101010101010101010101010101";
        let t = T::try_parse_from([
            "x",
            "embed",
            "--root",
            ROOT,
            "--relayer",
            "http://r",
            "--worker",
            w,
            "--min-attestation",
            "sev-snp",
            "--max-price-in",
            "5",
            "--max-price-out",
            "6",
            "--prefer-worker",
            w,
            "--max-cost",
            "7n",
            "text",
        ])
        .unwrap();
        let C::Embed(e) = t.c else { panic!() };
        let o = e.job.channel_options();
        let addr: TonAddress = w.parse().unwrap();
        assert_eq!(
            o,
            RequestOptions {
                worker: Some(addr.clone()),
                min_attestation: Some(EvidenceKind::SevSnp),
                max_price_in: Some(5),
                max_price_out: Some(6),
                preferred_workers: vec![addr],
                max_cost: Some(7),
            }
        );
        assert_eq!(
            JobArgs::default().channel_options(),
            RequestOptions::default()
        );
        assert!(e.job.check_channel_mode().is_ok());
        let settle = JobArgs {
            settle: true,
            ..JobArgs::default()
        };
        let err = settle.check_channel_mode().unwrap_err().to_string();
        assert!(err.contains("cocoon job verify"), "{err}");
    }

    #[test]
    fn models_resolve_by_name_or_registry_id() {
        assert_eq!(model_spec("all-minilm-l6-v2").unwrap().id, 2);
        assert_eq!(model_spec("1").unwrap().name, DEFAULT_CHAT_MODEL);
        let err = model_spec("gpt-4").unwrap_err().to_string();
        assert!(err.contains("gpt-4"), "{err}");
    }

    #[test]
    fn the_gpu_a_worker_proved_is_shown_in_text_and_json() {
        let gpu = cocoon_sdk::attest::VerifiedGpu {
            evidence_hash: [7; 32],
            nonce: [1; 32],
            driver_version: "550.54.14".into(),
            vbios_version: "96.00.5e.00.01".into(),
            measurements_checked: 64,
        };
        assert_eq!(
            attestation_line(EvidenceKind::Tdx, Some(&gpu)),
            format!(
                "{} + NVIDIA GPU in confidential-computing mode (driver 550.54.14, VBIOS 96.00.5e.00.01, 64 measurements)",
                EvidenceKind::Tdx
            )
        );
        assert_eq!(
            attestation_line(EvidenceKind::SevSnp, None),
            EvidenceKind::SevSnp.to_string()
        );
        let j = gpu_json(Some(&gpu));
        assert_eq!(j["driver_version"], "550.54.14");
        assert_eq!(j["measurements_checked"], 64);
        assert_eq!(j["evidence_hash"], hex::encode([7u8; 32]));
        assert_eq!(gpu_json(None), Value::Null);
    }

    #[test]
    fn receipts_parse_from_hex_or_base64_and_garbage_is_refused() {
        use cocoon_sdk::receipt::{ReceiptBody, ReceiptCommitments, ReceiptHashes};
        let body = ReceiptBody {
            escrow: TonAddress::new(0, [1u8; 32].into()),
            job_id: 3,
            worker: TonAddress::new(0, [2u8; 32].into()),
            model_id: 1,
            tokens_in: 1,
            tokens_out: 2,
            cost: 5,
            time: 0,
            hashes: ReceiptHashes {
                weights_hash: [0; 32],
                evidence_hash: [0; 32],
            },
            commitments: ReceiptCommitments {
                input_commitment: [0; 32],
                output_commitment: [0; 32],
            },
        };
        let signed = body
            .sign(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]))
            .unwrap();
        let boc = signed.to_boc().unwrap();
        assert_eq!(parse_receipt(&hex::encode(&boc)).unwrap(), signed);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&boc);
        assert_eq!(parse_receipt(&b64).unwrap(), signed);
        assert!(parse_receipt("not a receipt!").is_err());
        assert!(parse_receipt(&hex::encode([1, 2, 3])).is_err());
    }
}
