//! The relayer benchmark (`cargo run --release -p cocoon-relayer --example bench`): routing
//! throughput and added latency, measured side by side in one run. It lives beside the relayer,
//! not in its binary: the stub workers it drives come from the test kit.
//!
//! Stub workers answer instantly; the baseline ("direct") sends the same requests straight to a
//! stub over a WebSocket, so the difference is what the relayer adds.
//! - `--mode channel` (default, protocol v2): `POST /v2/requests` with a ticket (channel, seq,
//!   latest voucher), routed by channel to its worker, answered as an SSE stream ending with the
//!   worker's receipt; nothing durable per request. Receipts and vouchers are signed before the
//!   clock starts (see `channel.rs` for what and why); the relayer's work is not.
//! - `--mode job` (protocol v1): jobs opened "on-chain" up front, input posted, dispatched, and
//!   the job's stream read; store writes on the way.

mod channel;
mod job;

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, ValueEnum};

/// Which protocol's request path is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Protocol v2: requests routed by payment channel.
    Channel,
    /// Protocol v1: one on-chain job per request.
    Job,
}

/// Routing throughput and added latency against a direct call, with stub workers.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench")]
pub struct BenchArgs {
    /// Request path measured.
    #[arg(long, value_enum, default_value_t = Mode::Channel)]
    mode: Mode,
    /// Requests (jobs) per side, per round in channel mode [default: 10000 in channel mode, 2000
    /// in job mode].
    #[arg(
        long,
        alias = "jobs",
        default_value_t = 10_000,
        default_value_if("mode", "job", "2000"),
        hide_default_value = true
    )]
    requests: usize,
    /// Requests in flight at once (in channel mode, one channel each) [default: 10 in channel
    /// mode, where one run shows both the throughput and the added p50 at the same
    /// concurrency; 32 in job mode].
    #[arg(
        long,
        default_value_t = 10,
        default_value_if("mode", "job", "32"),
        hide_default_value = true
    )]
    concurrency: usize,
    /// Stub workers connected to the relayer.
    #[arg(long, default_value_t = 2)]
    workers: u8,
    /// Sealed input size, bytes.
    #[arg(long, default_value_t = 256)]
    input_bytes: usize,
    /// Output chunks per request.
    #[arg(long, default_value_t = 1)]
    chunks: u32,
    /// Channel mode: direct and relayed runs alternate this many times (each of `--requests`),
    /// so that both sides meet the same noise from the rest of the machine.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Channel mode: worker threads of the runtime the clients and the stub workers share (the
    /// relayer runs on its own runtime, one thread per core, as in its own process).
    #[arg(long, default_value_t = 1)]
    load_threads: usize,
    /// Store URL (default: a SQLite file in a temp dir).
    #[arg(long = "store.url")]
    store_url: Option<String>,
}

/// One side's measurements.
#[derive(Default)]
pub struct Side {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Side {
    /// Adds another round of the same side.
    fn merge(&mut self, other: Side) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(idx).copied().unwrap_or_default()
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What a mode measured: its heading, the unit counted and both sides, labelled.
pub struct Report {
    heading: String,
    unit: &'static str,
    direct: (&'static str, Side),
    relayed: (&'static str, Side),
    /// Further measured lines.
    notes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print(r: &Report) {
    println!("{}", r.heading);
    for (name, s) in [&r.direct, &r.relayed] {
        println!(
            "  {name}: {:>9.0} {}/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
            s.throughput(),
            r.unit,
            ms(s.percentile(0.50)),
            ms(s.percentile(0.99))
        );
    }
    let (d, x) = (&r.direct.1, &r.relayed.1);
    println!(
        "  added by the relayer: p50 {:+.3} ms, p99 {:+.3} ms; throughput ratio relayer/direct {:.3}",
        ms(x.percentile(0.50)) - ms(d.percentile(0.50)),
        ms(x.percentile(0.99)) - ms(d.percentile(0.99)),
        x.throughput() / d.throughput().max(1e-9)
    );
    for n in &r.notes {
        println!("  {n}");
    }
}

/// Splits `requests` across `concurrency` lanes; each lane runs `f` on its share in turn.
pub async fn lanes<F, Fut>(concurrency: usize, requests: usize, f: F) -> anyhow::Result<Side>
where
    F: Fn(usize, Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<Duration>>> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..concurrency.min(requests) {
        let mine: Vec<usize> = (lane..requests).step_by(concurrency).collect();
        tasks.push(tokio::spawn(f(lane, mine)));
    }
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Side {
        elapsed: start.elapsed(),
        latencies,
    })
}

/// Stand-in ciphertext: pseudo-random bytes, distinct per request.
pub fn sealed_input(i: usize, len: usize) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let mut out = Vec::with_capacity(len);
    let mut block = Sha256::digest(i.to_be_bytes());
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

fn main() -> anyhow::Result<()> {
    // Per-request info logs would be part of what is measured.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = BenchArgs::parse();
    if args.requests == 0
        || args.concurrency == 0
        || args.workers == 0
        || args.rounds == 0
        || args.load_threads == 0
    {
        bail!("--requests, --concurrency, --workers, --rounds and --load-threads must be positive");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if args.mode == Mode::Channel {
        runtime.worker_threads(args.load_threads);
    }
    let report = runtime.enable_all().build()?.block_on(async {
        match args.mode {
            Mode::Channel => channel::run(&args).await,
            Mode::Job => job::run(&args).await,
        }
    })?;
    print(&report);
    Ok(())
}
