//! `cocoon localnet`: run the local network until Ctrl-C.

use std::path::PathBuf;

use serde_json::json;

use super::Ctx;
use crate::localnet::{Localnet, LocalnetConfig, LocalnetTiming};

/// Default port of `cocoon localnet` (matches the localnet network's default URL).
pub const DEFAULT_LOCALNET_PORT: u16 = 8081;

/// `cocoon localnet` arguments.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LocalnetArgs {
    /// Port (0 = any free port).
    #[arg(long, default_value_t = DEFAULT_LOCALNET_PORT)]
    pub port: u16,
    /// State file: loaded if present, saved after every change.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Execute sends at block boundaries this many milliseconds apart (0: at once; mainnet ~400).
    #[arg(
        long = "block-interval",
        env = "COCOON_LOCALNET_BLOCK_MS",
        default_value_t = 0
    )]
    pub block_interval_ms: u32,
    /// Let the v3 indexer trail the blocks by this many milliseconds.
    #[arg(
        long = "index-lag",
        env = "COCOON_LOCALNET_INDEX_LAG_MS",
        default_value_t = 0
    )]
    pub index_lag_ms: u32,
    /// Answer 429 beyond this many requests per second without an API key (0: no limit).
    #[arg(
        long = "rate-limit",
        env = "COCOON_LOCALNET_RATE_LIMIT",
        default_value_t = 0
    )]
    pub rate_limit: u32,
    /// Answer 429 beyond this many requests per second per API key (0: no limit).
    #[arg(
        long = "rate-limit-keyed",
        env = "COCOON_LOCALNET_RATE_LIMIT_KEYED",
        default_value_t = 0
    )]
    pub rate_limit_keyed: u32,
}

pub(super) async fn run(ctx: &Ctx, a: LocalnetArgs) -> anyhow::Result<()> {
    let timing = LocalnetTiming {
        block_interval_ms: a.block_interval_ms,
        index_lag_ms: a.index_lag_ms,
        rate_limit: a.rate_limit,
        rate_limit_keyed: a.rate_limit_keyed,
    };
    let LocalnetArgs { port, state, .. } = a;
    let net = Localnet::start(LocalnetConfig {
        port,
        state: state.clone(),
        script: None,
        timing,
    })
    .await?;
    ctx.out.emit(
        format!(
            "localnet running at {}\n  use: cocoon --chain.network localnet --chain.api-url {} …\n  state: {}\n  Ctrl-C to stop",
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
