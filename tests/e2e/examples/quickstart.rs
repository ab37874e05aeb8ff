//! The SDK in ten lines: deposit, ask, verify. Run it against a local network:
//!
//! ```sh
//! cargo run -p cocoon-e2e --bin cocoon-devnet        # terminal 1: prints `export …` lines
//! # terminal 2: paste those lines, then
//! cargo run -p cocoon-e2e --example quickstart
//! ```

use cocoon_sdk::client::{Client, ClientConfig, JobOptions, PolicyMode};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::wallet::{Wallet, WalletKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |k: &str| {
        std::env::var(k).map_err(|_| anyhow::anyhow!("set {k} (cocoon-devnet prints it)"))
    };
    let mut config = ClientConfig::new(
        cocoon_sdk::chain::TonCenterConfig::new(env("COCOON_API_URL")?),
        env("COCOON_ROOT")?.parse()?,
        env("COCOON_RELAYER_URL")?,
    );
    config.policy = PolicyMode::Development; // localnet workers run a simulated TEE; drop this line on mainnet
    // --- the ten lines
    let client = Client::connect(
        config,
        Wallet::from_mnemonic(&env("COCOON_MNEMONIC")?, WalletKind::V5r1)?,
    )
    .await?;
    client.deposit(1_000_000_000).await?; // 1 TON into the escrow
    let ask = JobRequest::chat(
        vec![ChatMessage::new("user", "What is the capital of France?")],
        GenerationParams::default(),
    );
    let answer = client
        .open_job("smollm2-135m-instruct", ask, JobOptions::default())
        .await?
        .finish()
        .await?;
    println!("{}", answer.text);
    println!(
        "{} tokens, {} nanoTON, worker {} ({})",
        answer.usage.completion_tokens, answer.cost, answer.worker, answer.attestation_kind
    );
    let settlement = client.verify_settlement(&answer).await?;
    println!(
        "settled on-chain in transaction {}",
        hex::encode(settlement.tx_hash)
    );
    Ok(())
}
