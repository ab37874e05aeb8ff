//! `cocoon dashboard`: serves the network dashboard (see [`crate::dashboard`]).
//!
//! ```text
//! cocoon --network localnet dashboard --root EQ… --relayer http://127.0.0.1:8480 --listen 127.0.0.1:8088
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use cocoon_sdk::tlb::TonAddress;
use serde_json::json;

use super::Ctx;
use crate::dashboard::{Collector, DEFAULT_LISTEN};

/// Default relayer the dashboard asks for workers and health.
pub const DEFAULT_RELAYER: &str = "http://127.0.0.1:8480";

/// `cocoon dashboard …`
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Root contract address.
    #[arg(long, env = cocoon_sdk::args::ROOT_ENV)]
    pub root: TonAddress,
    /// Relayer base URL (its worker listing and health).
    #[arg(long, alias = "dashboard.relayer", env = "COCOON_RELAYER_URL", default_value = DEFAULT_RELAYER)]
    pub relayer: String,
    /// Address to serve the page on.
    #[arg(long, alias = "dashboard.listen", env = "COCOON_DASHBOARD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
}

pub(super) async fn run(ctx: &Ctx, a: DashboardArgs) -> anyhow::Result<()> {
    let collector = Arc::new(Collector::new(ctx.chain()?, ctx.net(), a.root, &a.relayer)?);
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    ctx.out.emit(
        format!("dashboard on http://{addr}/ (Ctrl-C to stop)"),
        json!({ "url": format!("http://{addr}/") }),
    );
    crate::dashboard::serve(listener, collector, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
