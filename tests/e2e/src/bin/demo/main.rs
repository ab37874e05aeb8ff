//! `cocoon-demo`: a whole Cocoon network on this machine, then real chat and embeddings requests
//! through the SDK, with the receipts, the settlements and what the chain took.
//! `scripts/demo` builds and runs it; everything it starts stops on exit or Ctrl-C.
//!
//! By default the app pays through a payment channel (protocol v2, [`channels`]): one channel
//! opened, several requests with no transaction between them, one settlement, a receipt proven
//! on-chain, the channel closed, and the session's on-chain cost against the inference's.
//! `--protocol jobs` runs protocol v1 instead ([`jobs`]): an on-chain job and a settlement per
//! request.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use cocoon_e2e::{Devnet, DevnetOptions, Protocol, WorkerSetup, init_logs};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_testkit::chain::LocalnetTiming;
use cocoon_worker::BackendKind;
use cocoon_worker::node::ChannelOptions;

mod channels;
mod jobs;

/// How the demo's app pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pay {
    /// Protocol v2: a payment channel, settled once for the whole session.
    Channels,
    /// Protocol v1: an on-chain job and a settlement per request.
    Jobs,
}

/// Runs the demo.
#[derive(Debug, Parser)]
#[command(
    name = "cocoon-demo",
    about = "Cocoon on a local network: chat and embeddings requests, end to end"
)]
struct Args {
    /// How the app pays: through a payment channel (protocol v2) or a job per request (v1).
    #[arg(long, value_enum, default_value_t = Pay::Channels)]
    protocol: Pay,
    /// Inference backend of the worker: flex (CPU) or wgpu (the GPU code path; on a machine without a GPU Mesa lavapipe runs it, minutes per answer).
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// The first chat question (the channel demo asks two more after it).
    #[arg(
        long,
        default_value = "What is the capital of France? Answer in one sentence."
    )]
    prompt: String,
    /// Most tokens of each answer.
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
    /// Localnet makes a block every this many milliseconds (mainnet: ~400); 0 applies every
    /// send at once.
    #[arg(long, env = "COCOON_LOCALNET_BLOCK_MS", default_value_t = 0)]
    block_interval: u32,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, default_value = "error")]
    log: String,
}

/// How often the demo's worker looks for channels to settle: the app's final voucher is
/// settled within this (a production node waits until settling is worth its fee).
const DEMO_SETTLE_EVERY: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args.log);
    let protocol = match args.protocol {
        Pay::Channels => Protocol::Channels,
        Pay::Jobs => Protocol::Jobs,
    };
    say(&format!(
        "starting a local network: localnet (the real contracts in the TVM emulator{}), Root {}, relayer, one worker",
        if args.block_interval > 0 {
            format!(", a block every {} ms", args.block_interval)
        } else {
            String::new()
        },
        if protocol == Protocol::Channels {
            "v2 (payment channels)"
        } else {
            "v1 (a job per request)"
        }
    ));
    let started = Instant::now();
    let options = DevnetOptions {
        protocol,
        timing: Some(LocalnetTiming {
            block_interval_ms: args.block_interval,
            index_lag_ms: args.block_interval,
            ..LocalnetTiming::default()
        }),
        workers: vec![WorkerSetup {
            backend: args.backend,
            channels: ChannelOptions {
                settle_every: DEMO_SETTLE_EVERY,
                ..ChannelOptions::default()
            },
            ..WorkerSetup::default()
        }],
        ..DevnetOptions::default()
    };
    let net = Devnet::start(options)
        .await
        .context("starting the local network")?;
    println!("   localnet      {}", net.api_url());
    println!("   Root          {}", net.root());
    println!(
        "   relayer       {}  (wallet {})",
        net.relayer_url,
        net.relayer_wallet.address()
    );
    for w in &net.workers {
        println!(
            "   worker        {}  models {}, {}  backend {:?}",
            w.address, SMOLLM2_135M.name, ALL_MINILM_L6_V2.name, args.backend
        );
    }
    println!(
        "   attestation   UNATTESTED (SIMULATED TEE): no TEE on this machine; sealing, receipts and payments work as in production"
    );
    println!("   ready in {:.1} s", started.elapsed().as_secs_f64());

    let outcome = tokio::select! {
        r = async {
            match args.protocol {
                Pay::Channels => channels::run(&net, &args).await,
                Pay::Jobs => jobs::run(&net, &args).await,
            }
        } => r,
        _ = tokio::signal::ctrl_c() => { say("interrupted"); Ok(()) }
    };
    say("stopping everything the demo started");
    net.stop().await;
    outcome
}

/// The embeddings request's texts: two alike, one not.
fn embedding_texts() -> Vec<String> {
    vec![
        "The cat sits on the mat.".to_string(),
        "A cat is sitting on a rug.".to_string(),
        "Stock markets fell sharply today.".to_string(),
    ]
}

/// Prints the vectors' shape and the first text's similarity to the others.
fn print_similarities(texts: &[String], vectors: &[Vec<f32>]) {
    println!(
        "   {} vectors of dimension {}",
        vectors.len(),
        vectors.first().map_or(0, Vec::len)
    );
    for (i, t) in texts.iter().enumerate().skip(1) {
        println!(
            "   cosine({:?}, {:?}) = {:.3}",
            texts[0],
            t,
            cosine(&vectors[0], &vectors[i])
        );
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn say(what: &str) {
    println!("\n\x1b[1m==> {what}\x1b[0m");
}
