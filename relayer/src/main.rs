//! `cocoon-relayer`: `run` serves the relayer; `bench` measures dispatch against a stub worker.

mod bench;

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use cocoon_relayer::chain::{ChainRegistry, ChainTransactions, ChainWallet};
use cocoon_relayer::cli::{FileConfig, RunArgs};
use cocoon_relayer::submitter::Submitter;
use cocoon_relayer::watcher::{EscrowAddressCheck, Watcher};
use cocoon_relayer::{Relayer, StaticRegistry, Store, WorkerRegistry};
use cocoon_sdk::chain::{TonCenterClient, TonCenterConfig};
use cocoon_sdk::contracts::RootClient;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{Wallet, WalletKind};
use tracing_subscriber::EnvFilter;

/// Cocoon relayer: watches the chain, dispatches sealed jobs to workers, relays sealed answers
/// and receipts.
#[derive(Debug, Parser)]
#[command(name = "cocoon-relayer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the client API and the worker endpoint.
    Run(Box<RunArgs>),
    /// Dispatch throughput and added latency against a direct call, with stub workers.
    Bench(bench::BenchArgs),
}

fn init_logs(json: bool, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Run(mut args) => {
            if let Some(path) = &args.config {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let file = FileConfig::parse(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                if let Some(sub) = matches.subcommand_matches("run") {
                    args.merge_file(file, sub);
                }
            }
            init_logs(args.log_json, "info");
            run(*args).await
        }
        Command::Bench(args) => {
            // Per-job info logs would be part of what is measured.
            init_logs(false, "warn");
            bench::run(args).await
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.store.url, args.store.max_connections)
        .await
        .context("opening the store")?;
    let mut config = args.relayer.to_config();
    let chain = match &args.chain.api_url {
        Some(url) => {
            let cfg = TonCenterConfig {
                api_key: args.chain.api_key.clone(),
                ..TonCenterConfig::new(url.clone())
            };
            Some(Arc::new(TonCenterClient::new(cfg).context("chain client")?))
        }
        None => None,
    };
    let wallet = match &args.chain.mnemonic {
        Some(m) => Some(Wallet::from_mnemonic(m, WalletKind::V5r1).context("relayer wallet")?),
        None => None,
    };
    if let Some(w) = &wallet
        && config.relayer_id == cocoon_relayer::config::DEFAULT_RELAYER_ID
    {
        config.relayer_id = w.address().to_hex();
    }
    let registry: Arc<dyn WorkerRegistry> = match (&chain, &args.chain.root, &args.registry.workers)
    {
        (_, _, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Arc::new(StaticRegistry::from_toml(&text)?)
        }
        (Some(chain), Some(root), None) => {
            let root =
                TonAddress::from_str(root).map_err(|e| anyhow::anyhow!("--chain.root: {e}"))?;
            Arc::new(ChainRegistry::new(chain.clone(), root))
        }
        _ => {
            tracing::warn!(target: "relayer::main", "neither --registry.workers nor --chain.api-url with --chain.root: no worker can be verified");
            Arc::new(StaticRegistry::new())
        }
    };
    let relayer = Relayer::new(store.clone(), registry, config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background = Vec::new();
    if let (Some(chain), Some(wallet)) = (&chain, wallet) {
        let period = Duration::from_secs(args.chain.poll_s.max(1));
        let address = wallet.address().to_hex();
        let root = args
            .chain
            .root
            .as_deref()
            .context("--chain.root is needed to authenticate Escrows")?;
        let root = TonAddress::from_str(root).map_err(|e| anyhow::anyhow!("--chain.root: {e}"))?;
        let (_, escrow_code) = RootClient::at(&**chain, root.clone())
            .codes()
            .await
            .context("reading Root's codes")?;
        let watcher = Watcher::new(
            store.clone(),
            Arc::new(ChainTransactions::new(chain.clone())),
            Arc::new(EscrowAddressCheck { root, escrow_code }),
            address.clone(),
        )
        .with_metrics(relayer.shared().metrics.clone());
        let watcher = Arc::new(watcher);
        background.push(tokio::spawn(every(period, stop_rx.clone(), move || {
            let w = watcher.clone();
            async move {
                if let Err(e) = w.poll_once().await {
                    tracing::warn!(target: "relayer::watcher", error = %e, "poll failed");
                }
            }
        })));
        let submitter = Arc::new(Submitter::new(
            store.clone(),
            Arc::new(ChainWallet::new(chain.clone(), wallet)),
            relayer.shared().metrics.clone(),
        ));
        background.push(tokio::spawn(every(period, stop_rx.clone(), move || {
            let s = submitter.clone();
            async move {
                if let Err(e) = s.tick().await {
                    tracing::warn!(target: "relayer::submitter", error = %e, "submit round failed");
                }
            }
        })));
        tracing::info!(target: "relayer::main", %address, "watching the chain and submitting receipts");
    }
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .with_context(|| format!("binding {}", args.api.listen))?;
    relayer.serve(listener, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    store.close().await;
    Ok(())
}

/// Runs `f` every `period` until `stop` fires; a round in progress finishes first.
async fn every<F, Fut>(period: Duration, mut stop: tokio::sync::watch::Receiver<bool>, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => f().await,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(target: "relayer::main", "shutdown signal received");
}
