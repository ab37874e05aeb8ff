//! `cocoon wallet …`: create, show, balance, fund (localnet).

use anyhow::bail;
use clap::Subcommand;
use cocoon_sdk::chain::{ChainApi, Network};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use cocoon_sdk::wallet::Wallet;
use serde_json::json;

use super::{Ctx, addr};
use crate::localnet;

/// `cocoon wallet …`
#[derive(Debug, Subcommand)]
pub enum WalletCmd {
    /// Create a new wallet file with a fresh 24-word mnemonic.
    New {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Import this mnemonic instead of generating one.
        #[arg(long)]
        mnemonic: Option<String>,
    },
    /// Show the wallet's address and public key.
    Show,
    /// Balance of the wallet (or of ADDRESS).
    Balance {
        /// Any address.
        address: Option<TonAddress>,
    },
    /// Localnet only: get AMOUNT from the faucet.
    Fund {
        /// Amount (TON).
        amount: Ton,
    },
}

pub(super) async fn run(ctx: &Ctx, c: WalletCmd) -> anyhow::Result<()> {
    match c {
        WalletCmd::New { force, mnemonic } => {
            let path = ctx.wallet.path();
            let phrase = mnemonic.unwrap_or_else(cocoon_sdk::wallet::generate_mnemonic);
            let w = Wallet::from_mnemonic_on(&phrase, ctx.wallet.version, ctx.net())?;
            cocoon_sdk::wallet::file::save(&path, ctx.wallet.version, ctx.net(), &phrase, force)?;
            ctx.out.emit(
                format!("wallet {} ({:?}, {}) saved to {}\n  keep the file secret: it holds the mnemonic", addr(w.address(), ctx.net()), ctx.wallet.version, ctx.net(), path.display()),
                json!({ "address": addr(w.address(), ctx.net()), "version": ctx.wallet.version, "network": ctx.net(), "file": path }),
            );
        }
        WalletCmd::Show => {
            let w = ctx.open_wallet()?;
            ctx.out.emit(
                format!("address: {}\nraw: {}\nversion: {:?}\npublic key: {}", addr(w.address(), ctx.net()), w.address().to_hex(), w.kind(), hex::encode(w.public_key())),
                json!({ "address": addr(w.address(), ctx.net()), "network": ctx.net(), "raw": w.address().to_hex(), "version": w.kind(), "public_key": hex::encode(w.public_key()) }),
            );
        }
        WalletCmd::Balance { address } => {
            let a = match address {
                Some(a) => a,
                None => ctx.open_wallet()?.address().clone(),
            };
            let st = ctx.chain()?.account(&a).await?;
            ctx.out.emit(
                format!("{} TON ({:?})", format_ton(st.balance), st.status),
                json!({ "address": addr(&a, ctx.net()), "balance_nano": st.balance.to_string(), "balance": format_ton(st.balance), "status": st.status }),
            );
        }
        WalletCmd::Fund { amount } => {
            if ctx.net() != Network::Localnet {
                bail!("the faucet exists only on localnet");
            }
            let w = ctx.open_wallet()?;
            let url = ctx.cli_chain.config().base_url;
            localnet::dev_call(&reqwest::Client::new(), &url, "faucet", json!({ "address": w.address().to_base64_url(), "amount": amount.nano().to_string() })).await?;
            ctx.out.emit(
                format!("funded {} with {amount}", addr(w.address(), ctx.net())),
                json!({ "funded_nano": amount.nano().to_string() }),
            );
        }
    }
    Ok(())
}
