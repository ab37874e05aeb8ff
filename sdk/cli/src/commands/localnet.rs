//! `cocoon localnet`: run the local network until Ctrl-C.

use std::path::PathBuf;

use serde_json::json;

use super::Ctx;
use crate::localnet::{Localnet, LocalnetConfig};

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
}

pub(super) async fn run(ctx: &Ctx, a: LocalnetArgs) -> anyhow::Result<()> {
    let LocalnetArgs { port, state } = a;
    let net = Localnet::start(LocalnetConfig {
        port,
        state: state.clone(),
        script: None,
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
