//! The chain half of a local network: localnet, a governor wallet, and a Root configured for
//! development (Simulated TEE allowed, the network's models registered).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use cocoon_sdk::attest::measurement_id;
use cocoon_sdk::chain::{ChainApi, TonCenterClient, TonCenterConfig};
use cocoon_sdk::contracts::RootClient;
use cocoon_sdk::job::models::KNOWN_MODELS;
use cocoon_sdk::localnet::{Localnet, LocalnetConfig};
use cocoon_sdk::messages::records::{RootParams, RootPolicy, tee_kind};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, Wallet, WalletKind, generate_mnemonic};

/// Root parameters of a development network.
#[derive(Debug, Clone)]
pub struct RootSetup {
    /// Minimum worker stake, nanoTON.
    pub min_stake: u128,
    /// Seconds between unbonding and withdrawing a stake.
    pub unbonding_delay: u32,
    /// Seconds after a job's deadline during which a settlement is still accepted.
    pub grace_period: u32,
    /// Most a relayer may take of a job's cost, basis points.
    pub relayer_fee_cap_bps: u16,
    /// The protocol's share of a job's cost, basis points.
    pub protocol_fee_bps: u16,
}

impl Default for RootSetup {
    fn default() -> Self {
        Self {
            min_stake: 10 * NANO_PER_TON,
            unbonding_delay: 600,
            grace_period: 60,
            relayer_fee_cap_bps: 1000,
            protocol_fee_bps: 100,
        }
    }
}

/// Localnet with a deployed development Root.
#[derive(Debug)]
pub struct LocalChain {
    /// The emulator process (stopped on drop).
    pub localnet: Localnet,
    /// A client of its toncenter-compatible API.
    pub chain: TonCenterClient,
    /// The Root contract.
    pub root: TonAddress,
    /// Root's owner (governance) and the treasury.
    pub governor: Wallet,
}

impl LocalChain {
    /// Starts localnet and deploys a Root that allows Simulated evidence (zero measurement)
    /// besides SEV-SNP and TDX, with every model of [`KNOWN_MODELS`] registered.
    pub async fn start(setup: &RootSetup) -> anyhow::Result<Self> {
        let localnet = Localnet::start(LocalnetConfig::default())
            .await
            .context("starting localnet (did `npm ci` run in the repository root?)")?;
        let chain = localnet.client()?;
        let governor = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1)?;
        localnet
            .fund(governor.address(), 1_000 * NANO_PER_TON)
            .await?;
        let params = RootParams {
            min_stake: setup.min_stake,
            unbonding_delay: setup.unbonding_delay,
            grace_period: setup.grace_period,
            relayer_fee_cap_bps: setup.relayer_fee_cap_bps,
            protocol_fee_bps: setup.protocol_fee_bps,
            reporter_reward_bps: 2000,
            treasury: governor.address().clone(),
        };
        let policy = RootPolicy {
            allowed_kinds: (1 << tee_kind::SIMULATED)
                | (1 << tee_kind::SEV_SNP)
                | (1 << tee_kind::TDX),
            measurements: BTreeSet::from([measurement_id(&[0u8; 48])]),
        };
        let models: BTreeMap<u32, [u8; 32]> = KNOWN_MODELS
            .iter()
            .map(|m| (m.id, m.registry_hash()))
            .collect();
        let data = RootClient::<TonCenterClient>::initial_data(
            governor.address().clone(),
            params,
            policy,
            models,
        )?;
        let opts = SendOptions::default();
        let (root, _) = RootClient::deploy(&chain, &governor, &data, NANO_PER_TON, &opts)
            .await
            .context("deploying Root")?;
        let root = root.address().clone();
        tracing::info!(target: "e2e::chain", url = %localnet.url(), root = %root, "localnet up, Root deployed");
        Ok(Self {
            localnet,
            chain,
            root,
            governor,
        })
    }

    /// The API configuration of this localnet (for services that build their own client).
    pub fn api(&self) -> TonCenterConfig {
        TonCenterConfig::new(self.localnet.url().to_owned())
    }

    /// A new V5R1 wallet holding `nano` nanoTON.
    pub async fn funded_wallet(&self, nano: u128) -> anyhow::Result<Wallet> {
        Ok(self.funded_mnemonic(nano).await?.1)
    }

    /// A new V5R1 wallet holding `nano` nanoTON, with its mnemonic (to write a wallet file).
    pub async fn funded_mnemonic(&self, nano: u128) -> anyhow::Result<(String, Wallet)> {
        let mnemonic = generate_mnemonic();
        let w = Wallet::from_mnemonic(&mnemonic, WalletKind::V5r1)?;
        self.localnet.fund(w.address(), nano).await?;
        Ok((mnemonic, w))
    }

    /// Balance of any account, nanoTON.
    pub async fn balance(&self, address: &TonAddress) -> anyhow::Result<u128> {
        Ok(self.chain.account(address).await?.balance)
    }
}
