//! The `cocoon` command line: one module per command family. `src/main.rs` only parses [`Cli`]
//! and calls [`run`].

pub mod channel;
pub mod client;
pub mod dashboard;
pub mod deploy;
pub mod escrow;
pub mod gateway;
pub mod localnet;
pub mod root;
pub mod wallet;
pub mod watch;
pub mod worker;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cocoon_sdk::args::{ChainArgs, WalletArgs};
use cocoon_sdk::chain::{Network, TonCenterClient};
use cocoon_sdk::contracts::Outcome;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::format_ton;
use cocoon_sdk::wallet::Wallet;
use serde_json::json;

use crate::output::{OutputArgs, Printer};

/// Environment variable with the configuration file (`--config`): a TOML file whose keys are the
/// long flag names, read by `src/main.rs` through `cocoon_sdk::args::config_file`.
pub const CONFIG_ENV: &str = "COCOON_CONFIG";

/// `cocoon`: operate the Cocoon network from the command line.
#[derive(Debug, Parser)]
#[command(name = "cocoon", version, about)]
pub struct Cli {
    /// Network and toncenter access.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Which wallet signs.
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// Text or JSON.
    #[command(flatten)]
    pub output: OutputArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local network (sandbox emulator behind a toncenter-compatible API) until Ctrl-C.
    Localnet(localnet::LocalnetArgs),
    /// Deploy a Root owned by the wallet.
    Deploy(deploy::DeployArgs),
    /// Wallet: create, show, balance, fund (localnet).
    #[command(subcommand)]
    Wallet(wallet::WalletCmd),
    /// Escrow of the wallet (the client side).
    #[command(subcommand)]
    Escrow(escrow::EscrowCmd),
    /// Payment channels on the wallet's v2 Escrow: open, show, top up, close.
    #[command(subcommand)]
    Channel(channel::ChannelCmd),
    /// Worker of the wallet (the GPU owner side).
    #[command(subcommand)]
    Worker(worker::WorkerCmd),
    /// Root: inspect and govern.
    #[command(subcommand)]
    Root(root::RootCmd),
    /// OpenAI-compatible gateway (chat, completions, embeddings) over the wallet's Escrow.
    Gateway(gateway::GatewayArgs),
    /// Chat with (or complete a prompt on) a model: attested workers, sealed input, verified
    /// receipt.
    Chat(client::ChatArgs),
    /// Embed texts with an embedding model.
    Embed(client::EmbedArgs),
    /// Models on the network with their verified workers and lowest prices.
    Models(client::ModelsArgs),
    /// Jobs: verify a receipt and its settlement.
    #[command(subcommand)]
    Job(client::JobCmd),
    /// Web dashboard of the network: Root, workers, settlements, relayer health.
    Dashboard(dashboard::DashboardArgs),
    /// Report equivocating workers: two different receipts for one (channel, seq) slash the
    /// Worker's stake (protocol v2).
    Watch(watch::WatchArgs),
}

/// Which Root (all contract commands need it).
#[derive(Debug, Clone, clap::Args)]
pub struct RootArg {
    /// Root contract address.
    #[arg(long, env = cocoon_sdk::args::ROOT_ENV)]
    pub root: TonAddress,
}

pub(crate) fn hex32(s: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let v = hex::decode(s.trim().trim_start_matches("0x"))
        .with_context(|| format!("{what}: not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("{what}: expected 32 bytes, got {}", v.len()))
}

pub(crate) fn addr(a: &TonAddress, net: Network) -> String {
    a.to_base64_url_flags(false, net.is_test())
}

pub(crate) fn outcome_json(o: &Outcome) -> serde_json::Value {
    json!({
        "op": o.op,
        "wallet_tx": { "lt": o.wallet_tx.id.lt.to_string(), "hash": hex::encode(o.wallet_tx.id.hash) },
        "transactions": o.txs.len(),
        "fees_nano": o.total_fees().to_string(),
    })
}

/// What every command gets: chain flags, wallet flags, the printer.
pub(crate) struct Ctx {
    pub(crate) cli_chain: ChainArgs,
    pub(crate) wallet: WalletArgs,
    pub(crate) out: Printer,
}

impl Ctx {
    pub(crate) fn chain(&self) -> anyhow::Result<TonCenterClient> {
        Ok(TonCenterClient::new(self.cli_chain.config())?)
    }
    pub(crate) fn open_wallet(&self) -> anyhow::Result<Wallet> {
        Ok(cocoon_sdk::wallet::file::load(
            &self.wallet.path(),
            self.net(),
        )?)
    }
    pub(crate) fn net(&self) -> Network {
        self.cli_chain.network
    }
    pub(crate) fn done(&self, o: &Outcome, human: String) {
        self.out.emit(
            format!("{human}\n  fees: {} TON", format_ton(o.total_fees())),
            outcome_json(o),
        );
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        cli_chain: cli.chain,
        wallet: cli.wallet,
        out: Printer {
            json: cli.output.json,
        },
    };
    match cli.command {
        Command::Localnet(a) => localnet::run(&ctx, a).await,
        Command::Deploy(a) => deploy::run(&ctx, a).await,
        Command::Wallet(c) => wallet::run(&ctx, c).await,
        Command::Escrow(c) => escrow::run(&ctx, c).await,
        Command::Channel(c) => channel::run(&ctx, c).await,
        Command::Worker(c) => worker::run(&ctx, c).await,
        Command::Root(c) => root::run(&ctx, c).await,
        Command::Gateway(a) => gateway::run(&ctx, a).await,
        Command::Chat(a) => client::chat(&ctx, a).await,
        Command::Embed(a) => client::embed(&ctx, a).await,
        Command::Models(a) => client::models(&ctx, a).await,
        Command::Job(c) => client::job_cmd(&ctx, c).await,
        Command::Dashboard(a) => dashboard::run(&ctx, a).await,
        Command::Watch(a) => watch::run(&ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_reaches_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cocoon.toml");
        let root = "0:".to_owned() + &"ab".repeat(32);
        std::fs::write(
            &path,
            format!(
                r#"
root = "{root}"
relayer = "http://127.0.0.1:8480"
min-attestation = "sev-snp"
[chain]
api-url = "http://127.0.0.1:8081"
[wallet]
file = "/etc/cocoon/wallet.json"
[gateway]
listen = "127.0.0.1:9999"
rate-limit = 50
"#
            ),
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let c: Cli = cocoon_sdk::args::config_file::try_parse_from(
            CONFIG_ENV,
            ["cocoon", "gateway", "--config", path],
        )
        .unwrap();
        assert_eq!(c.chain.config().base_url, "http://127.0.0.1:8081");
        assert_eq!(
            c.wallet.path(),
            std::path::Path::new("/etc/cocoon/wallet.json")
        );
        let Command::Gateway(g) = c.command else {
            panic!("gateway")
        };
        assert_eq!(g.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(g.rate_per_second, 50, "a `gateway.` alias is a key");
        assert!(g.min_attestation.is_some());
        assert_eq!(g.client.relayer, "http://127.0.0.1:8480");
        // The same file serves a command without the gateway's flags.
        let c: Cli = cocoon_sdk::args::config_file::try_parse_from(
            CONFIG_ENV,
            ["cocoon", "--config", path, "wallet", "show"],
        )
        .unwrap();
        assert_eq!(
            c.wallet.path(),
            std::path::Path::new("/etc/cocoon/wallet.json")
        );
    }

    #[test]
    fn commands_parse() {
        let c = Cli::try_parse_from([
            "cocoon",
            "--network",
            "localnet",
            "--json",
            "wallet",
            "balance",
        ])
        .unwrap();
        assert!(c.output.json);
        assert!(matches!(
            c.command,
            Command::Wallet(wallet::WalletCmd::Balance { address: None })
        ));
        let root = "0:".to_owned() + &"ab".repeat(32);
        let c =
            Cli::try_parse_from(["cocoon", "escrow", "deposit", "--root", &root, "1.5"]).unwrap();
        match c.command {
            Command::Escrow(escrow::EscrowCmd::Deposit { amount, .. }) => {
                assert_eq!(amount.nano(), 1_500_000_000)
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "cocoon",
                "escrow",
                "deposit",
                "--root",
                &root,
                "1.0000000001"
            ])
            .is_err()
        );
        let c = Cli::try_parse_from([
            "cocoon",
            "channel",
            "open",
            "--root",
            &root,
            "--worker-owner",
            &root,
            "--relayer",
            &root,
            "2.5",
        ])
        .unwrap();
        match c.command {
            Command::Channel(channel::ChannelCmd::Open {
                amount, expires_in, ..
            }) => {
                assert_eq!(amount.nano(), 2_500_000_000);
                assert_eq!(expires_in, channel::DEFAULT_EXPIRES_IN);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["cocoon", "channel", "top-up", "--root", &root, "7", "1"])
            .unwrap();
        assert!(matches!(
            c.command,
            Command::Channel(channel::ChannelCmd::TopUp { id: 7, .. })
        ));
        let c = Cli::try_parse_from(["cocoon", "deploy"]).unwrap();
        match c.command {
            Command::Deploy(d) => {
                assert_eq!(d.min_stake.nano(), deploy::root_defaults::MIN_STAKE);
                assert_eq!(d.allowed_kinds, deploy::root_defaults::ALLOWED_KINDS);
            }
            other => panic!("{other:?}"),
        }
    }
}
