//! `cocoon-devnet`: a whole local Cocoon network that stays up until Ctrl-C, for trying the CLI,
//! the SDK or the gateway against it. Prints the addresses as shell `export` lines (or JSON).

use clap::Parser;
use cocoon_e2e::{Devnet, DevnetOptions, WorkerSetup, init_logs};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::WalletKind;
use cocoon_worker::BackendKind;

/// Runs a local network.
#[derive(Debug, Parser)]
#[command(
    name = "cocoon-devnet",
    about = "A local Cocoon network: localnet, Root, relayer, workers; Ctrl-C stops it"
)]
struct Args {
    /// Worker nodes to start.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Inference backend: wgpu or flex.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Funds of the app wallet it creates and prints, TON.
    #[arg(long, default_value_t = 100)]
    app_funds: u32,
    /// Print JSON instead of `export` lines.
    #[arg(long)]
    json: bool,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args.log);
    let backend = args.backend;
    let setup = WorkerSetup {
        backend,
        ..WorkerSetup::default()
    };
    let net = Devnet::start(DevnetOptions {
        workers: vec![setup; args.workers],
        ..DevnetOptions::default()
    })
    .await?;
    let (app, mnemonic) = net
        .chain
        .funded(WalletKind::V5r1, u128::from(args.app_funds) * NANO_PER_TON)
        .await?;
    // The wallet file format of the `cocoon` CLI, so `cocoon` and `cocoon gateway` use this wallet.
    let wallet_file = net.dir.path().join("app-wallet.json");
    cocoon_sdk::wallet::file::save(
        &wallet_file,
        WalletKind::V5r1,
        cocoon_sdk::chain::Network::Localnet,
        &mnemonic,
        true,
    )?;
    let vars = [
        ("COCOON_API_URL", net.api_url().to_string()),
        ("COCOON_ROOT", net.root().to_string()),
        ("COCOON_RELAYER_URL", net.relayer_url.clone()),
        ("COCOON_WALLET", wallet_file.display().to_string()),
        ("COCOON_MNEMONIC", mnemonic.clone()),
        ("COCOON_APP_ADDRESS", app.address().to_string()),
    ];
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into()))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (k, v) in &vars {
            println!("export {k}='{v}'");
        }
        println!("# UNATTESTED (SIMULATED TEE) workers; Ctrl-C stops the network");
    }
    tokio::signal::ctrl_c().await?;
    net.stop().await;
    Ok(())
}
