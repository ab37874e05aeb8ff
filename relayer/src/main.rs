//! `cocoon-relayer`: `run` serves the relayer; `jobs` lists the store for reconciliation. (The
//! benchmark is an example: `cargo run --release -p cocoon-relayer --example bench`.)

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cocoon_relayer::cli::{Cli, Command, JobsArgs, RunArgs};
use cocoon_relayer::{ChainConfig, ServiceConfig, StaticRegistry};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::highload::HighloadWallet;
use cocoon_sdk::wallet::{Wallet, WalletKind};
use tracing_subscriber::EnvFilter;

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
    let cli: Cli = cocoon_sdk::args::config_file::parse(cocoon_relayer::cli::CONFIG_ENV);
    match cli.command {
        Command::Run(args) => {
            init_logs(args.log_json, "info");
            run(*args).await
        }
        Command::Jobs(args) => {
            init_logs(false, "warn");
            jobs(args).await
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = ServiceConfig::new(args.api.listen, args.store.url.clone());
    config.store_max_connections = args.store.max_connections;
    config.relayer = args.relayer.to_config();
    config.relayer.listener = args.api.limits();
    config.relayer.operator_token = args.api.operator_token.clone().filter(|t| !t.is_empty());
    if let Some(path) = &args.registry.workers {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        config.registry = Some(Arc::new(StaticRegistry::from_toml(&text)?));
    }
    if let Some(root) = args.chain.root.as_deref() {
        let root = TonAddress::from_str(root).map_err(|e| anyhow::anyhow!("--chain.root: {e}"))?;
        let mnemonic = args
            .chain
            .mnemonic
            .as_deref()
            .context("--chain.root needs --wallet.mnemonic (or COCOON_RELAYER_MNEMONIC)")?;
        // The wallet id of V5R1 depends on the network: the same mnemonic has another address on
        // testnet than on mainnet.
        let wallet = Wallet::from_mnemonic_on(mnemonic, WalletKind::V5r1, args.chain.chain.network)
            .context("relayer wallet")?;
        let highload = if args.chain.highload {
            let h = HighloadWallet::from_mnemonic_on(mnemonic, args.chain.chain.network)
                .context("relayer highload wallet")?;
            tracing::info!(target: "relayer::main", highload = %h.address().to_base64_url_flags(false, args.chain.chain.network.is_test()), "SubmitReceipts go out from the highload wallet (it pays for them)");
            Some(h)
        } else {
            None
        };
        config.chain = Some(ChainConfig {
            poll: Duration::from_secs(args.chain.poll_s.max(1)),
            highload,
            ..ChainConfig::new(args.chain.chain.config(), root, wallet)
        });
    }
    let handle = cocoon_relayer::service::spawn(config)
        .await
        .context("starting the relayer")?;
    tracing::info!(target: "relayer::main", url = %handle.url(), wallet = ?handle.address().map(|a| a.to_hex()), "relayer up");
    shutdown_signal().await;
    handle.shutdown().await?;
    Ok(())
}

async fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let state = match args.state.as_deref() {
        None => None,
        Some(s) => Some(
            cocoon_relayer::JobState::parse(s)
                .with_context(|| format!("--state: unknown state {s:?}"))?,
        ),
    };
    let store = cocoon_relayer::Store::connect(&args.store.url, 1)
        .await
        .context("opening the store")?;
    let jobs = store.list_jobs(state, args.limit).await?;
    let mut counts = std::collections::BTreeMap::new();
    for r in &jobs {
        *counts.entry(r.state.as_str()).or_insert(0u64) += 1;
        if args.json {
            let line = serde_json::json!({
                "escrow": r.opened.job.escrow,
                "job_id": r.opened.job.job_id,
                "state": r.state.as_str(),
                "reason": r.reason,
                "worker": r.worker,
                "attempts": r.attempts,
                "deadline": r.opened.deadline,
            });
            println!("{line}");
        } else {
            println!(
                "{}\t{}\t{}",
                r.opened.job,
                r.state,
                r.reason.as_deref().unwrap_or("-")
            );
        }
    }
    if !args.json {
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        eprintln!("{} jobs: {}", jobs.len(), summary.join(", "));
    }
    store.close().await;
    Ok(())
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
