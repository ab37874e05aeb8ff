//! The `cocoon-worker` command line: `run` and `register` (the node), `generate` and `embed` (the
//! engine alone), `bench` (throughput against llama.cpp on the same GGUF). `src/main.rs` parses [`Cli`] and calls [`run`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use cocoon_sdk::units::Ton;

use crate::bench::{self, BenchConfig};
use crate::node::cli::NodeArgs;
use crate::node::{self, Node, RegisterOutcome};
use crate::text::DEFAULT_MAX_BATCH;
use crate::{
    BackendKind, ChatMessage, GenerateRequest, ModelSource, Prompt, SamplingOptions, WeightsHash,
    models,
};

/// Environment variable with the configuration file (`--config`).
pub const CONFIG_ENV: &str = "COCOON_WORKER_CONFIG";

/// `cocoon-worker`: the worker node and its inference engine. `src/main.rs` parses it with
/// `--config <FILE>` ([`CONFIG_ENV`]): a TOML file whose keys are the long flag names.
#[derive(Parser, Debug)]
#[command(
    name = "cocoon-worker",
    version,
    about = "Cocoon worker: the worker node and its inference engine"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve jobs from a relayer: check the on-chain record, load the models, connect.
    Run(RunArgs),
    /// Register the worker on-chain (stake + record), or update the record; idempotent.
    Register(RegisterArgs),
    /// Generate text with SmolLM2 (streams tokens to stdout, counts to stderr).
    Generate(GenerateArgs),
    /// Embed texts with MiniLM (prints JSON).
    Embed(EmbedArgs),
    /// Measure prefill / decode throughput and memory per backend, and llama.cpp's on the same GGUF.
    Bench(BenchArgs),
}

/// `cocoon-worker run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Serve `/metrics` (Prometheus text) and `/health` (models loaded, relayer session up,
    /// chain reachable) on this address, e.g. `127.0.0.1:9480`. Off when not given.
    #[arg(
        id = "metrics.listen",
        long = "metrics.listen",
        env = "COCOON_WORKER_METRICS_LISTEN"
    )]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Register first when the wallet has no Worker yet (or update a record that differs). Always
    /// done in a TEE, whose keys are generated at start.
    #[arg(long)]
    register: bool,
}

/// `cocoon-worker register` arguments.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    #[command(flatten)]
    node: NodeArgs,
}

/// Which weights to load; defaults to the pinned model in `$COCOON_MODELS_DIR`.
#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// Weights file (default: the pinned model in the model cache).
    #[arg(long = "model.path", env = "COCOON_MODEL_PATH")]
    path: Option<PathBuf>,
    /// Expected sha256 of the weights file (required with --model.path).
    #[arg(long = "model.sha256", requires = "path")]
    sha256: Option<String>,
    /// burn backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex, env = "COCOON_BACKEND")]
    backend: BackendKind,
}

impl ModelArgs {
    fn source(&self, pinned: fn() -> ModelSource) -> Result<ModelSource> {
        match (&self.path, &self.sha256) {
            (Some(path), Some(sha)) => Ok(ModelSource {
                path: path.clone(),
                sha256: WeightsHash::from_hex(sha)?,
            }),
            (Some(_), None) => anyhow::bail!(
                "--model.path needs --model.sha256: the engine only loads verified weights"
            ),
            _ => Ok(pinned()),
        }
    }
}

/// `cocoon-worker generate` arguments.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The prompt (a user message; raw text with --raw).
    #[arg(long)]
    prompt: String,
    /// Continue the text as is instead of wrapping it in the chat template.
    #[arg(long)]
    raw: bool,
    /// Optional system message (chat mode).
    #[arg(long)]
    system: Option<String>,
    /// Maximum new tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
}

/// `cocoon-worker embed` arguments.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Text to embed (repeat for a batch).
    #[arg(long, required = true)]
    text: Vec<String>,
    #[command(flatten)]
    model: ModelArgs,
}

/// `cocoon-worker bench` arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "flex")]
    backends: Vec<BackendKind>,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = BenchConfig::default().prompt_tokens)]
    prompt_tokens: usize,
    /// New tokens per sequence.
    #[arg(long, default_value_t = BenchConfig::default().decode_tokens)]
    decode_tokens: usize,
    /// Batch sizes for decode.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    batches: Vec<usize>,
    /// Timed prefills per implementation (the median is reported).
    #[arg(long, default_value_t = BenchConfig::default().repeats)]
    repeats: usize,
    /// CPU threads for both engines (default: one per core).
    #[arg(long, env = "RAYON_NUM_THREADS")]
    threads: Option<usize>,
    /// Skip llama.cpp.
    #[arg(long)]
    no_reference: bool,
    /// Where scripts/bench-reference installed node-llama-cpp.
    #[arg(long = "reference.dir", env = bench::REFERENCE_DIR_ENV)]
    reference_dir: Option<PathBuf>,
    /// The node executable that runs it.
    #[arg(long = "reference.node", default_value = "node")]
    reference_node: PathBuf,
    /// Offload llama.cpp to the GPU (needs `scripts/bench-reference --gpu`).
    #[arg(long = "reference.gpu")]
    reference_gpu: bool,
    /// Memory bandwidth of the device in GB/s: adds the fraction of the bandwidth roofline each
    /// engine reaches at batch 1 (weight bytes read per token × tokens/s ÷ bandwidth).
    #[arg(long)]
    bandwidth_gbs: Option<f64>,
    /// SmolLM2 GGUF (default: the pinned one).
    #[arg(long = "model.path")]
    path: Option<PathBuf>,
    /// Its sha256 (required with --model.path).
    #[arg(long = "model.sha256", requires = "path")]
    sha256: Option<String>,
}

fn init_logs(json: bool, default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Lifts a model-load bar drawn on the terminal around each line.
        .with_writer(crate::progress::log_writer);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs a parsed command line (sets up logging first).
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Run(a) => init_logs(a.node.log_json, "info"),
        Command::Register(a) => init_logs(a.node.log_json, "info"),
        _ => init_logs(false, "warn"),
    }
    match cli.command {
        Command::Run(a) => tokio_main(run_node(a)),
        Command::Register(a) => tokio_main(register(a)),
        Command::Generate(a) => generate(a),
        Command::Embed(a) => embed(a),
        Command::Bench(a) => run_bench(a),
    }
}

fn tokio_main(fut: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

async fn register(a: RegisterArgs) -> Result<()> {
    let cfg = a.node.config()?;
    if cfg.highload {
        let test = a.node.chain.network.is_test();
        println!(
            "sending from the highload wallet {} (the Worker's owner: fund it)",
            cfg.owner()?.to_base64_url_flags(false, test)
        );
    }
    print_outcome(&node::register(&cfg).await?);
    Ok(())
}

fn print_outcome(o: &RegisterOutcome) {
    match o {
        RegisterOutcome::Registered { worker, stake } => {
            println!(
                "registered worker {} with a stake of {}",
                worker.to_hex(),
                Ton(*stake)
            )
        }
        RegisterOutcome::Updated { worker, changes } => {
            println!("updated worker {}:", worker.to_hex());
            for c in changes {
                println!("  {c}");
            }
        }
        RegisterOutcome::Unchanged { worker } => println!(
            "worker {} is already registered as configured",
            worker.to_hex()
        ),
    }
}

async fn run_node(a: RunArgs) -> Result<()> {
    let cfg = a.node.config()?;
    // Keys made inside the TEE exist only in this process: the record must be updated to them
    // (with fresh evidence) before serving.
    if a.register || cfg.keys.is_in_tee() {
        print_outcome(&node::register(&cfg).await?);
    }
    // Bound before the models load, so a taken port fails at once.
    let status_listener = match a.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics.listen {addr}"))?,
        ),
        None => None,
    };
    let handle = Node::start(cfg).await.context("starting the worker node")?;
    let (stop_status, status_stopped) = tokio::sync::oneshot::channel::<()>();
    let status_task = status_listener.map(|l| {
        tokio::spawn(node::status::serve(handle.status(), l, async move {
            let _ = status_stopped.await;
        }))
    });
    eprintln!(
        "worker {} serving; Ctrl-C stops it gracefully",
        handle.address().to_hex()
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping: finishing jobs in flight …");
    handle.shutdown().await;
    let _ = stop_status.send(());
    if let Some(t) = status_task {
        t.await?.context("status listener")?;
    }
    Ok(())
}

fn generate(a: GenerateArgs) -> Result<()> {
    let source = a.model.source(models::smollm2)?;
    let t = Instant::now();
    let model = a
        .model
        .backend
        .load_text(&source, DEFAULT_MAX_BATCH)
        .with_context(|| format!("loading {}", source.path.display()))?;
    eprintln!(
        "loaded {} on {} in {:.2}s (sha256 {})",
        source.path.display(),
        a.model.backend,
        t.elapsed().as_secs_f64(),
        model.weights_hash()
    );
    let prompt = if a.raw {
        Prompt::Text(a.prompt)
    } else {
        let mut m = Vec::new();
        if let Some(s) = a.system {
            m.push(ChatMessage::new("system", &s));
        }
        m.push(ChatMessage::new("user", &a.prompt));
        Prompt::Chat(m)
    };
    let req = GenerateRequest {
        prompt,
        max_tokens: a.max_tokens,
        sampling: SamplingOptions {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            seed: a.seed,
        },
        stop_tokens: Vec::new(),
        ignore_eos: false,
    };
    let t = Instant::now();
    let mut out = std::io::stdout().lock();
    let g = model.generate(&req, |tok| {
        let _ = out.write_all(tok.text.as_bytes());
        let _ = out.flush();
    })?;
    let secs = t.elapsed().as_secs_f64();
    writeln!(out)?;
    eprintln!(
        "prompt_tokens={} completion_tokens={} finish={:?} {:.1} tok/s",
        g.prompt_tokens,
        g.completion_tokens,
        g.finish,
        g.completion_tokens as f64 / secs
    );
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<()> {
    let source = a.model.source(models::minilm)?;
    let model = a
        .model
        .backend
        .load_embedding(&source)
        .with_context(|| format!("loading {}", source.path.display()))?;
    let e = model.embed(&a.text)?;
    let json = serde_json::json!({
        "model_sha256": model.weights_hash().to_hex(),
        "dimension": model.dimension(),
        "prompt_tokens": e.prompt_tokens,
        "embeddings": e.vectors,
    });
    println!("{json}");
    Ok(())
}

fn run_bench(a: BenchArgs) -> Result<()> {
    let source = match (a.path, a.sha256) {
        (Some(path), Some(sha)) => ModelSource {
            path,
            sha256: WeightsHash::from_hex(&sha)?,
        },
        (Some(_), None) => anyhow::bail!("--model.path needs --model.sha256"),
        _ => models::smollm2(),
    };
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // Our CPU kernels run on rayon's global pool: give it exactly the threads llama.cpp gets.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("sizing the rayon thread pool")?;
    let cfg = BenchConfig {
        prompt_tokens: a.prompt_tokens,
        decode_tokens: a.decode_tokens.max(2),
        batches: a.batches,
        repeats: a.repeats.max(1),
    };
    let reference = (!a.no_reference).then(|| bench::LlamaCpp {
        dir: a.reference_dir.unwrap_or_else(bench::LlamaCpp::default_dir),
        node: a.reference_node,
        gpu: a.reference_gpu,
    });
    if let Some(r) = &reference {
        anyhow::ensure!(
            bench::node_available(&r.node),
            "{} --version failed: llama.cpp runs under node (install node >= 20, or pass --no-reference)",
            r.node.display()
        );
    }
    let max_batch = cfg.batches.iter().copied().max().unwrap_or(1);
    // Prompt ids and the model's facts from a short-lived load, so every side gets the same tokens.
    let (ids, info) = {
        let m = BackendKind::Flex.load_text(&source, 1)?;
        (bench::prompt_ids(&m, cfg.prompt_tokens)?, m.info().clone())
    };
    let mut figures = Vec::new();
    for backend in a.backends {
        eprintln!("measuring cocoon/{backend} …");
        let label = match backend {
            BackendKind::Flex => "cocoon/flex (quantised CPU kernels)",
            BackendKind::Wgpu => "cocoon/wgpu (burn, f32 weights)",
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => "cocoon/cuda (burn, f32 weights)",
        };
        figures.push(bench::bench_engine(
            || backend.load_text(&source, max_batch),
            label,
            &ids,
            &cfg,
        )?);
    }
    if let Some(r) = &reference {
        eprintln!("measuring llama.cpp …");
        figures.push(r.bench(&source, &ids, &cfg, threads)?);
    }
    println!(
        "{}, prompt {} tokens, {} new tokens per sequence, {threads} threads (both engines), {} cores available",
        info.name.as_deref().unwrap_or("model"),
        cfg.prompt_tokens,
        cfg.decode_tokens,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    print!(
        "{}",
        bench::report(&figures, info.tensor_bytes, a.bandwidth_gbs)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use cocoon_sdk::args::config_file;

    use super::*;

    #[test]
    fn the_config_file_reaches_the_node_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            r#"
relayer = "wss://relayer.example:8480"
models = ["smollm2-135m-instruct", "all-minilm-l6-v2"]
self-submit = true
[channel]
credit = "2.5"
[chain]
api-url = "http://127.0.0.1:8081"
"#,
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let cli: Cli = config_file::try_parse_from(
            CONFIG_ENV,
            [
                "cocoon-worker",
                "run",
                "--config",
                path,
                "--relayer",
                "ws://flag:1",
            ],
        )
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        assert_eq!(a.node.channel_credit, Some(Ton(2_500_000_000)));
        assert_eq!(a.node.models, ["smollm2-135m-instruct", "all-minilm-l6-v2"]);
        assert!(a.node.self_submit);
        assert_eq!(a.node.chain.config().base_url, "http://127.0.0.1:8081");
        assert_eq!(a.node.relayer, "ws://flag:1", "the flag wins over the file");
        // `generate` has none of these flags: the same file leaves it alone.
        let cli: Cli = config_file::try_parse_from(
            CONFIG_ENV,
            [
                "cocoon-worker",
                "generate",
                "--prompt",
                "hi",
                "--config",
                path,
            ],
        )
        .unwrap();
        assert!(matches!(cli.command, Command::Generate(_)));
    }
}
