//! Helpers of the chain integration tests: a fault-injecting HTTP proxy and wallet set-up.
#![allow(dead_code)]

pub mod proxy;

use cocoon_sdk::chain::{ChainApi, TonCenterClient};
use cocoon_sdk::localnet::{Localnet, LocalnetConfig};
use cocoon_sdk::wallet::{Wallet, WalletKind, generate_mnemonic};

/// Starts a fresh localnet on a free port.
pub async fn localnet() -> Localnet {
    Localnet::start(LocalnetConfig::default())
        .await
        .expect("localnet starts (did `npm ci` run?)")
}

/// A new wallet holding `nano` nanoTON (not deployed yet).
pub async fn funded_wallet(net: &Localnet, kind: WalletKind, nano: u128) -> Wallet {
    let w = Wallet::from_mnemonic(&generate_mnemonic(), kind).unwrap();
    net.fund(w.address(), nano).await.unwrap();
    w
}

/// Balance of an account, nanoTON.
pub async fn balance(chain: &TonCenterClient, a: &cocoon_sdk::tlb::TonAddress) -> u128 {
    chain.account(a).await.unwrap().balance
}
