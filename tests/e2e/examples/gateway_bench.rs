//! Time to first token and tokens/s: the worker engine called directly vs the same request
//! through the SDK client and through the OpenAI-compatible gateway (gateway → SDK client →
//! relayer → worker node → back), in the same run, on the same machine, with the same model,
//! prompt and greedy decoding.
//!
//! By default the requests are paid through payment channels (protocol v2) on a localnet that
//! makes a block every 400 ms, as mainnet does: the channel is opened by the warm-up request,
//! and no measured request waits for the chain. `--protocol jobs` measures protocol v1, where
//! every request opens a job on-chain: that opening is reported apart (the gateway's
//! `cocoon.open_ms`) and taken out of "added".
//!
//! ```text
//! cargo run --release -p cocoon-e2e --example gateway_bench -- [--runs 5] [--max-tokens 32] \
//!     [--protocol channels|jobs] [--block-interval 400]
//! ```

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use cocoon_cli::gateway::{self, ChannelBackend, ClientBackend, GatewayConfig};
use cocoon_e2e::{Devnet, DevnetOptions, Protocol, init_logs};
use cocoon_sdk::client::channels::{ChannelClient, ChannelEvent};
use cocoon_sdk::client::{Client, JobEvent, JobOptions};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::chain::LocalnetTiming;
use cocoon_worker::{ChatMessage, GenerateRequest, Prompt, models};
use serde_json::{Value, json};

const PROMPT: &str = "Write a short paragraph about the sea.";

/// How the measured requests are paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pay {
    /// Protocol v2: payment channels, opened once.
    Channels,
    /// Protocol v1: an on-chain job per request.
    Jobs,
}

/// The gateway benchmark.
#[derive(Debug, Parser)]
#[command(name = "gateway_bench")]
struct Args {
    /// Measured runs per path (after one warm-up each).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Tokens per answer.
    #[arg(long, default_value_t = 32)]
    max_tokens: usize,
    /// How requests are paid.
    #[arg(long, value_enum, default_value_t = Pay::Channels)]
    protocol: Pay,
    /// Localnet's block interval, ms (mainnet: ~400).
    #[arg(long, default_value_t = 400)]
    block_interval: u32,
}

/// One measured generation.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Request start to the first generated text.
    ttft: Duration,
    /// Generated tokens per second after the first one.
    tokens_per_s: f64,
    /// On-chain opening (gateway runs only).
    open: Duration,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn direct(model: &cocoon_worker::TextModel, max_tokens: usize) -> anyhow::Result<Run> {
    let mut req = GenerateRequest::greedy(
        Prompt::Chat(vec![ChatMessage::new("user", PROMPT)]),
        max_tokens,
    );
    req.ignore_eos = true;
    let start = Instant::now();
    let mut first = None;
    let out = model.generate(&req, |t| {
        if first.is_none() && !t.text.is_empty() {
            first = Some(start.elapsed());
        }
    })?;
    let total = start.elapsed();
    let ttft = first.context("the engine generated no text")?;
    let rest = out.completion_tokens.saturating_sub(1) as f64;
    Ok(Run {
        ttft,
        tokens_per_s: rest / (total - ttft).as_secs_f64(),
        open: Duration::ZERO,
    })
}

async fn through_client(client: &Client, max_tokens: usize) -> anyhow::Result<Run> {
    let req = JobRequest::chat(
        vec![cocoon_sdk::job::ChatMessage::new("user", PROMPT)],
        GenerationParams {
            max_tokens: max_tokens as u32,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let start = Instant::now();
    let mut stream = client
        .open_job("smollm2-135m-instruct", req, JobOptions::default())
        .await?;
    let (mut first, mut last) = (None, None);
    while let Some(ev) = stream.next().await {
        match ev? {
            JobEvent::Delta(t) if !t.is_empty() => {
                let now = start.elapsed();
                first.get_or_insert(now);
                last = Some(now);
            }
            JobEvent::Done(r) => {
                let (ttft, last) = (
                    first.context("no text streamed")?,
                    last.context("no text streamed")?,
                );
                let rest = r.usage.completion_tokens.saturating_sub(1) as f64;
                return Ok(Run {
                    ttft,
                    tokens_per_s: rest / (last - ttft).as_secs_f64(),
                    open: stream.open_timing(),
                });
            }
            _ => {}
        }
    }
    anyhow::bail!("the job ended without a result")
}

async fn through_channel_client(client: &ChannelClient, max_tokens: usize) -> anyhow::Result<Run> {
    let req = JobRequest::chat(
        vec![cocoon_sdk::job::ChatMessage::new("user", PROMPT)],
        GenerationParams {
            max_tokens: max_tokens as u32,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let start = Instant::now();
    let mut stream = client.request(&SMOLLM2_135M, req).await?;
    let (mut first, mut last) = (None, None);
    while let Some(ev) = stream.next().await {
        match ev? {
            ChannelEvent::Delta(t) if !t.is_empty() => {
                let now = start.elapsed();
                first.get_or_insert(now);
                last = Some(now);
            }
            ChannelEvent::Done(r) => {
                let (ttft, last) = (
                    first.context("no text streamed")?,
                    last.context("no text streamed")?,
                );
                let rest = r.usage.completion_tokens.saturating_sub(1) as f64;
                return Ok(Run {
                    ttft,
                    tokens_per_s: rest / (last - ttft).as_secs_f64(),
                    open: Duration::ZERO,
                });
            }
            _ => {}
        }
    }
    anyhow::bail!("the request ended without a result")
}

/// The SDK client of either protocol.
enum Sdk {
    Jobs(Client),
    Channels(ChannelClient),
}

impl Sdk {
    async fn run(&self, max_tokens: usize) -> anyhow::Result<Run> {
        match self {
            Self::Jobs(c) => through_client(c, max_tokens).await,
            Self::Channels(c) => through_channel_client(c, max_tokens).await,
        }
    }
}

async fn through_gateway(
    http: &reqwest::Client,
    url: &str,
    max_tokens: usize,
) -> anyhow::Result<Run> {
    let body = json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens, "temperature": 0, "stream": true, "stream_options": {"include_usage": true},
    });
    let start = Instant::now();
    let mut res = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    let (mut buf, mut first, mut last, mut usage, mut open) =
        (String::new(), None, None, None, None);
    while let Some(bytes) = res.chunk().await? {
        buf.push_str(std::str::from_utf8(&bytes)?);
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
            anyhow::ensure!(v.get("error").is_none(), "gateway error: {v}");
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                let now = start.elapsed();
                first.get_or_insert(now);
                last = Some(now);
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                usage = Some(n);
            }
            if let Some(o) = v["cocoon"]["open_ms"].as_u64() {
                open = Some(Duration::from_millis(o));
            }
        }
    }
    let (ttft, last) = (
        first.context("no text streamed")?,
        last.context("no text streamed")?,
    );
    let rest = usage.context("no usage chunk")?.saturating_sub(1) as f64;
    Ok(Run {
        ttft,
        tokens_per_s: rest / (last - ttft).as_secs_f64(),
        // A channel request opens nothing on-chain.
        open: open.unwrap_or(Duration::ZERO),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    init_logs("warn");
    let args = Args::parse();
    let (runs, max_tokens) = (args.runs, args.max_tokens);
    let protocol = match args.protocol {
        Pay::Channels => Protocol::Channels,
        Pay::Jobs => Protocol::Jobs,
    };
    let net = Devnet::start(DevnetOptions {
        protocol,
        timing: Some(LocalnetTiming {
            block_interval_ms: args.block_interval,
            index_lag_ms: args.block_interval,
            ..LocalnetTiming::default()
        }),
        ..DevnetOptions::default()
    })
    .await?;
    net.wait_for_workers(1).await?;
    let wallet = net.funded_wallet(20 * NANO_PER_TON).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let sdk = match protocol {
        Protocol::Jobs => {
            let client = Client::connect(net.client_config(), wallet).await?;
            client.deposit(5 * NANO_PER_TON).await?;
            tokio::spawn(gateway::serve(
                listener,
                ClientBackend::new(client.clone()),
                GatewayConfig::default(),
                std::future::pending(),
            ));
            Sdk::Jobs(client)
        }
        Protocol::Channels => {
            let key = ed25519_dalek::SigningKey::from_bytes(&[0x6b; 32]);
            let client = ChannelClient::connect(net.channel_config(), wallet, key).await?;
            tokio::spawn(gateway::serve(
                listener,
                ChannelBackend::new(client.clone()),
                GatewayConfig::default(),
                std::future::pending(),
            ));
            Sdk::Channels(client)
        }
    };
    let http = reqwest::Client::new();

    // The same engine code the worker node runs, on the same backend, loaded here.
    let backend = cocoon_e2e::devnet::default_backend();
    let model =
        tokio::task::spawn_blocking(move || backend.load_text(&models::smollm2(), 8)).await??;
    let model = std::sync::Arc::new(model);

    // Warm both paths once (kernels, connections, caches), then alternate so drift hits both.
    // The gateway run asks for max_tokens and the worker stops at end-of-turn, so its tokens/s
    // uses the tokens it reported; the direct run ignores end-of-turn to give equal lengths.
    let m = model.clone();
    tokio::task::spawn_blocking(move || direct(&m, max_tokens)).await??;
    sdk.run(max_tokens).await?;
    through_gateway(&http, &url, max_tokens).await?;
    let (mut d, mut c, mut g) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let m = model.clone();
        d.push(tokio::task::spawn_blocking(move || direct(&m, max_tokens)).await??);
        c.push(sdk.run(max_tokens).await?);
        g.push(through_gateway(&http, &url, max_tokens).await?);
    }
    let c_ttft_ex = median(c.iter().map(|r| ms(r.ttft) - ms(r.open)).collect());
    let c_tps = median(c.iter().map(|r| r.tokens_per_s).collect());

    let d_ttft = median(d.iter().map(|r| ms(r.ttft)).collect());
    let d_tps = median(d.iter().map(|r| r.tokens_per_s).collect());
    let g_ttft = median(g.iter().map(|r| ms(r.ttft)).collect());
    let g_open = median(g.iter().map(|r| ms(r.open)).collect());
    let g_ttft_ex = median(g.iter().map(|r| ms(r.ttft) - ms(r.open)).collect());
    let g_tps = median(g.iter().map(|r| r.tokens_per_s).collect());
    println!(
        "gateway bench: {:?}, blocks every {} ms, {runs} runs, max_tokens {max_tokens}, backend {backend:?}, medians",
        args.protocol, args.block_interval
    );
    println!("  {:<44} {:>10} {:>10}", "", "TTFT ms", "tokens/s");
    println!(
        "  {:<44} {:>10.1} {:>10.1}",
        "worker engine, direct", d_ttft, d_tps
    );
    println!(
        "  {:<44} {:>10.1} {:>10.1}",
        "SDK client → relayer → worker (opening excl.)", c_ttft_ex, c_tps
    );
    println!(
        "  {:<44} {:>10.1} {:>10.1}",
        "gateway → client → relayer → worker", g_ttft, g_tps
    );
    if protocol == Protocol::Jobs {
        println!(
            "  {:<44} {:>10.1}",
            "  of which on-chain job opening", g_open
        );
        println!("  {:<44} {:>10.1}", "  TTFT without the opening", g_ttft_ex);
    } else {
        println!("  (no chain step per request: the warm-up request opened the channels)");
    }
    println!(
        "  added to TTFT (gateway + client + relayer, opening excluded): {:.1} ms",
        g_ttft_ex - d_ttft
    );
    println!(
        "  of which the gateway itself (gateway vs SDK client): {:.1} ms",
        g_ttft_ex - c_ttft_ex
    );
    println!(
        "  ratios: TTFT (opening excluded) gateway/direct = {:.2}, tokens/s gateway/direct = {:.2}",
        g_ttft_ex / d_ttft,
        g_tps / d_tps
    );
    net.stop().await;
    Ok(())
}
