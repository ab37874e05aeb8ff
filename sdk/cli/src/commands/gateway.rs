//! `cocoon gateway`: the OpenAI-compatible gateway over the wallet's Escrow.
//!
//! ```text
//! cocoon --network localnet gateway --root EQ… --relayer http://127.0.0.1:8480 --listen 127.0.0.1:8090
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::Ton;
use serde_json::json;

use super::Ctx;
use super::client::{ClientArgs, parse_kind};
use crate::gateway::config::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT,
};
use crate::gateway::{ChannelBackend, ClientBackend, GatewayConfig, JobPolicy};

/// Environment variable with the gateway's own API key.
pub const GATEWAY_KEY_ENV: &str = "COCOON_GATEWAY_KEY";

/// `cocoon gateway …`
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// Root, relayer, evidence policy, candidates and deadline: the same as `cocoon chat`.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Address to listen on.
    #[arg(long, alias = "gateway.listen", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// API key callers must send as `Authorization: Bearer <key>` (none: no key needed). Prefer
    /// the environment variable: a value on the command line is visible to every user in `ps`.
    #[arg(long = "gateway-key", alias = "gateway.api-key", env = GATEWAY_KEY_ENV, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Browser origin allowed by CORS (repeat or comma-separate; `*` for any). CORS is off
    /// when none is given.
    #[arg(long = "cors-origin", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes.
    #[arg(long = "max-body-bytes", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Longest a request may take, seconds (on-chain job opening included).
    #[arg(long = "request-timeout", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout_secs: u64,
    /// Weakest attestation a worker may have: simulated, sev-snp or tdx (sev-snp and tdx both
    /// mean "a hardware TEE").
    #[arg(long = "min-attestation", value_parser = parse_kind)]
    pub min_attestation: Option<EvidenceKind>,
    /// Highest price per input token accepted, nanoTON.
    #[arg(long = "max-price-in")]
    pub max_price_in: Option<u128>,
    /// Highest price per output token accepted, nanoTON.
    #[arg(long = "max-price-out")]
    pub max_price_out: Option<u128>,
    /// Worker to try first when it qualifies (repeat for an order of preference).
    #[arg(long = "prefer-worker")]
    pub prefer_workers: Vec<TonAddress>,
    /// Cap on what one job may lock, or one channel request cost (TON; `123n` for nanoTON).
    /// Default: what max_tokens needs; on channels, max_tokens is lowered to fit the cap.
    #[arg(long = "max-cost")]
    pub max_cost: Option<Ton>,
    /// Seconds a connection has to send a complete request head (new or kept alive).
    #[arg(long = "header-timeout", alias = "gateway.header-timeout", env = "COCOON_GATEWAY_HEADER_TIMEOUT", default_value_t = cocoon_http::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout_s: u64,
    /// Seconds a request body has to arrive in full (408 after).
    #[arg(long = "body-timeout", alias = "gateway.body-timeout", env = "COCOON_GATEWAY_BODY_TIMEOUT", default_value_t = cocoon_http::DEFAULT_BODY_TIMEOUT.as_secs())]
    pub body_timeout_s: u64,
    /// Seconds a connection may go without a byte either way (a non-streamed answer is silent
    /// until complete: keep it above --request-timeout).
    #[arg(long = "idle-timeout", alias = "gateway.idle-timeout", env = "COCOON_GATEWAY_IDLE_TIMEOUT", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_s: u64,
    /// Connections served at once; beyond it new ones are closed.
    #[arg(long = "max-connections", alias = "gateway.max-connections", env = "COCOON_GATEWAY_MAX_CONNECTIONS", default_value_t = cocoon_http::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections one peer IP may hold at once.
    #[arg(long = "max-connections-per-ip", alias = "gateway.max-connections-per-ip", env = "COCOON_GATEWAY_MAX_CONNECTIONS_PER_IP", default_value_t = cocoon_http::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Requests per second one peer IP may make on average (429 beyond; 0: no limit).
    #[arg(long = "rate-limit", alias = "gateway.rate-limit", env = "COCOON_GATEWAY_RATE_LIMIT", default_value_t = cocoon_http::DEFAULT_RATE_PER_SECOND)]
    pub rate_per_second: u32,
    /// Seconds between passes of the reclaimer, which expires the Escrow's jobs that can no
    /// longer be served (callers that hung up, jobs that expired unanswered) once expiring them
    /// frees more than it costs, and on a v2 Root closes channels whose settlement window ended
    /// (0: off).
    #[arg(long = "reclaim-interval", alias = "gateway.reclaim-interval", env = "COCOON_GATEWAY_RECLAIM_INTERVAL", default_value_t = cocoon_sdk::client::DEFAULT_RECLAIM_INTERVAL.as_secs())]
    pub reclaim_interval_s: u64,
    /// v2 Root: open, top up and close the channels (and deposit) from the Highload Wallet v3
    /// of the wallet file's mnemonic instead of the V5R1 wallet: many transfers in flight, no
    /// seqno race with another process on the key. That wallet owns its own Escrow (printed at
    /// start; fund the highload wallet).
    #[arg(
        id = "wallet.highload",
        long = "wallet.highload",
        env = "COCOON_GATEWAY_WALLET_HIGHLOAD"
    )]
    pub highload: bool,
    /// Requests one peer IP may make in a burst.
    #[arg(long = "rate-burst", alias = "gateway.rate-burst", env = "COCOON_GATEWAY_RATE_BURST", default_value_t = cocoon_http::DEFAULT_RATE_BURST)]
    pub rate_burst: u32,
}

impl GatewayArgs {
    /// The gateway configuration these flags describe.
    pub fn gateway_config(&self) -> GatewayConfig {
        GatewayConfig {
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            cors_origins: self.cors_origins.clone(),
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            policy: JobPolicy {
                min_attestation: self.min_attestation,
                max_price_in: self.max_price_in,
                max_price_out: self.max_price_out,
                preferred_workers: self.prefer_workers.clone(),
                max_cost: self.max_cost.map(Ton::nano),
            },
            listener: cocoon_http::Limits {
                header_timeout: Duration::from_secs(self.header_timeout_s.max(1)),
                body_timeout: Duration::from_secs(self.body_timeout_s.max(1)),
                idle_timeout: Duration::from_secs(self.idle_timeout_s.max(1)),
                max_body_bytes: self.max_body_bytes,
                max_connections: self.max_connections,
                max_connections_per_ip: self.max_connections_per_ip,
                rate_per_second: self.rate_per_second,
                rate_burst: self.rate_burst,
            },
        }
    }
}

pub(super) async fn run(ctx: &Ctx, a: GatewayArgs) -> anyhow::Result<()> {
    if a.client.is_v2(ctx).await? {
        return run_channels(ctx, a).await;
    }
    if a.highload {
        anyhow::bail!(
            "--wallet.highload sends a v2 Root's channel operations; this Root is v1 (jobs are opened from the wallet)"
        );
    }
    let config = a.client.config(ctx);
    let client = a.client.connect(ctx).await?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let gw = a.gateway_config();
    ctx.out.emit(
        format!(
            "gateway listening on http://{addr}/v1\n  escrow: {}\n  policy: {:?}{}\n  OpenAI apps: base_url=\"http://{addr}/v1\"{}\n  Ctrl-C to stop",
            client.escrow_address(),
            config.policy,
            gw.policy.min_attestation.map(|k| format!(", min attestation {k}")).unwrap_or_default(),
            if gw.api_key.is_some() { ", api_key=<your gateway key>" } else { " (no API key required)" },
        ),
        json!({ "url": format!("http://{addr}/v1"), "escrow": client.escrow_address().to_hex(), "development": config.policy == PolicyMode::Development }),
    );
    let backend = match a.reclaim_interval_s {
        0 => ClientBackend::new(client),
        s => ClientBackend::with_reclaimer(
            client,
            cocoon_sdk::client::ReclaimOptions {
                interval: Duration::from_secs(s),
                ..Default::default()
            },
        ),
    };
    crate::gateway::serve(listener, backend, gw, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// The gateway on a v2 Root: every request paid through the wallet's payment channels.
async fn run_channels(ctx: &Ctx, a: GatewayArgs) -> anyhow::Result<()> {
    let client = a.client.connect_channels(ctx, a.highload).await?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let gw = a.gateway_config();
    let development = client.config().policy == PolicyMode::Development;
    ctx.out.emit(
        format!(
            "gateway listening on http://{addr}/v1 (payment channels, protocol v2)\n  escrow: {} (owned by {}{})\n  channels per request: {}\n  OpenAI apps: base_url=\"http://{addr}/v1\"{}\n  Ctrl-C to stop",
            client.escrow_address(),
            client.wallet_address(),
            if a.highload { ", the highload wallet" } else { "" },
            client.config().channels,
            if gw.api_key.is_some() { ", api_key=<your gateway key>" } else { " (no API key required)" },
        ),
        json!({ "url": format!("http://{addr}/v1"), "escrow": client.escrow_address().to_hex(), "owner": client.wallet_address().to_hex(), "highload": a.highload, "development": development, "channels": true }),
    );
    let backend = match a.reclaim_interval_s {
        0 => ChannelBackend::new(client),
        s => ChannelBackend::with_reclaimer(client, Duration::from_secs(s)),
    };
    crate::gateway::serve(listener, backend, gw, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use cocoon_sdk::chain::Network;

    use super::super::client::policy_mode;
    use super::*;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        g: GatewayArgs,
    }

    #[test]
    fn the_highload_wallet_is_off_unless_asked() {
        let root = "0:0000000000000000000000000000000000000000000000000000000000000000";
        let t = T::try_parse_from(["x", "--root", root, "--relayer", "r"]).unwrap();
        assert!(!t.g.highload);
        let t = T::try_parse_from(["x", "--root", root, "--relayer", "r", "--wallet.highload"])
            .unwrap();
        assert!(t.g.highload);
    }

    #[test]
    fn flags_parse_into_the_gateway_config() {
        let t = T::try_parse_from([
            "x",
            "--root",
            "0:0000000000000000000000000000000000000000000000000000000000000000",
            "--relayer",
            "http://r",
            "--min-attestation",
            "sev-snp",
            "--max-price-in",
            "5",
            "--max-price-out",
            "7",
            "--cors-origin",
            "https://a,https://b",
            "--max-cost",
            "1.5",
        ])
        .unwrap();
        let c = t.g.gateway_config();
        assert_eq!(c.policy.min_attestation, Some(EvidenceKind::SevSnp));
        assert_eq!(
            (c.policy.max_price_in, c.policy.max_price_out),
            (Some(5), Some(7))
        );
        assert_eq!(c.policy.max_cost, Some(1_500_000_000));
        assert_eq!(c.cors_origins, vec!["https://a", "https://b"]);
        assert_eq!(t.g.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            policy_mode(t.g.client.policy, Network::Localnet),
            PolicyMode::Development
        );
        assert_eq!(
            policy_mode(t.g.client.policy, Network::Mainnet),
            PolicyMode::Production
        );
        assert!(
            T::try_parse_from([
                "x",
                "--root",
                "0:00",
                "--relayer",
                "r",
                "--min-attestation",
                "sgx"
            ])
            .is_err()
        );
    }

    #[test]
    fn defaults_come_from_the_library() {
        if std::env::var_os(GATEWAY_KEY_ENV).is_some() {
            return;
        }
        let t = T::try_parse_from([
            "x",
            "--root",
            "0:0000000000000000000000000000000000000000000000000000000000000000",
            "--relayer",
            "http://r",
        ])
        .unwrap();
        let c = t.g.gateway_config();
        assert_eq!(c, GatewayConfig::default());
    }
}
