//! The development chain: localnet with a Root deployed with the one set of development
//! parameters ([`dev`]), funded wallets, and Workers registered with Simulated evidence.
//!
//! [`deploy_dev_root`] is the only place in the repository that deploys a development Root; the
//! demo, the devnet and every crate's tests go through it.

use std::collections::{BTreeMap, BTreeSet};

pub use cocoon_cli::localnet::{Localnet, LocalnetConfig, LocalnetTiming};
use cocoon_sdk::attest::{Evidence, WorkerBinding, attestation_nonce, measurement_id};
use cocoon_sdk::chain::{ChainApi, TonCenterClient, TonCenterConfig};
use cocoon_sdk::client::{ClientConfig, PolicyMode};
use cocoon_sdk::contracts::{RootClient, WorkerClient};
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::messages::records::{Attestation, RootParams, RootPolicy, WorkerRecord, tee_kind};
use cocoon_sdk::seal::EncryptionKeyPair;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{SendOptions, Wallet, WalletKind, generate_mnemonic};
use ed25519_dalek::SigningKey;

use crate::{Result, TestkitError};

/// The development parameters of a Root: short delays so tests can run past them, every TEE
/// kind allowed, and the measurement of Simulated evidence allow-listed.
pub mod dev {
    use cocoon_sdk::units::NANO_PER_TON;

    /// Minimum worker stake, nanoTON.
    pub const MIN_STAKE: u128 = 10 * NANO_PER_TON;
    /// Seconds between unbonding and withdrawing a stake.
    pub const UNBONDING_DELAY: u32 = 100;
    /// Seconds after a job's deadline during which a settlement is still accepted.
    pub const GRACE_PERIOD: u32 = 30;
    /// Most a relayer may take of a job's cost, basis points.
    pub const RELAYER_FEE_CAP_BPS: u16 = 1000;
    /// The protocol's share of a job's cost, basis points.
    pub const PROTOCOL_FEE_BPS: u16 = 100;
    /// The reporter's share of a slashed stake, basis points.
    pub const REPORTER_REWARD_BPS: u16 = 2000;
    /// What the governor wallet is funded with, nanoTON.
    pub const GOVERNOR_FUNDS: u128 = 1_000 * NANO_PER_TON;
    /// Value attached to the Root deployment, nanoTON.
    pub const DEPLOY_VALUE: u128 = NANO_PER_TON;
    /// How long a registered test worker's attestation lasts, seconds.
    pub const ATTESTATION_TTL: u32 = 24 * 3600;
    /// v2: the longest channel a client may open, seconds.
    pub const MAX_CHANNEL_LIFETIME: u32 = 7 * 24 * 3600;
    /// v2: seconds between queueing a governance change and applying it.
    pub const GOVERNANCE_DELAY: u32 = 60;
}

/// The measurement Simulated evidence reports (zero MEASUREMENT), which the development Root
/// allows.
pub fn simulated_measurement() -> [u8; 32] {
    measurement_id(&[0; 48])
}

/// The registry entries (`id → registry hash`) of `models`.
pub fn registry(models: &[ModelSpec]) -> BTreeMap<u32, [u8; 32]> {
    models.iter().map(|m| (m.id, m.registry_hash())).collect()
}

/// Deploys a development Root owned by `governor` with `models` in its registry: the [`dev`]
/// parameters, every TEE kind (Simulated included) allowed, the Simulated measurement on the
/// allow-list. The only function in the repository that deploys one.
pub async fn deploy_dev_root(
    chain: &TonCenterClient,
    governor: &Wallet,
    models: BTreeMap<u32, [u8; 32]>,
) -> Result<TonAddress> {
    let params = RootParams {
        min_stake: dev::MIN_STAKE,
        unbonding_delay: dev::UNBONDING_DELAY,
        grace_period: dev::GRACE_PERIOD,
        relayer_fee_cap_bps: dev::RELAYER_FEE_CAP_BPS,
        protocol_fee_bps: dev::PROTOCOL_FEE_BPS,
        reporter_reward_bps: dev::REPORTER_REWARD_BPS,
        treasury: governor.address().clone(),
    };
    let policy = RootPolicy {
        allowed_kinds: (1 << tee_kind::SIMULATED) | (1 << tee_kind::SEV_SNP) | (1 << tee_kind::TDX),
        measurements: BTreeSet::from([simulated_measurement()]),
    };
    let data = RootClient::<TonCenterClient>::initial_data(
        governor.address().clone(),
        params,
        policy,
        models,
    )?;
    let (root, _) = RootClient::deploy(
        chain,
        governor,
        &data,
        dev::DEPLOY_VALUE,
        &SendOptions::default(),
    )
    .await?;
    Ok(root.address().clone())
}

/// Localnet with a deployed development Root.
#[derive(Debug)]
pub struct DevChain {
    /// The emulator process (stopped on drop).
    pub localnet: Localnet,
    /// A client of its toncenter-compatible API.
    pub chain: TonCenterClient,
    /// The Root contract.
    pub root: TonAddress,
    /// Root's owner (governance) and the treasury.
    pub governor: Wallet,
}

impl DevChain {
    /// Starts localnet and deploys a development Root with `models` registered.
    pub async fn start(models: &[ModelSpec]) -> Result<Self> {
        Self::start_with_registry(registry(models)).await
    }

    /// Starts localnet and deploys a development Root with these registry entries (tests that
    /// register models the sdk does not know).
    pub async fn start_with_registry(models: BTreeMap<u32, [u8; 32]>) -> Result<Self> {
        Self::on(start_localnet().await?, models).await
    }

    /// Deploys a development Root on a running localnet.
    pub async fn on(localnet: Localnet, models: BTreeMap<u32, [u8; 32]>) -> Result<Self> {
        let chain = localnet.client()?;
        let governor = fund_new(&localnet, WalletKind::V5r1, dev::GOVERNOR_FUNDS)
            .await?
            .0;
        let root = deploy_dev_root(&chain, &governor, models).await?;
        tracing::info!(target: "testkit::chain", url = %localnet.url(), root = %root, "localnet up, Root deployed");
        Ok(Self {
            localnet,
            chain,
            root,
            governor,
        })
    }

    /// The API configuration of this localnet (for services that build their own client): with
    /// the key and request budget of its profile ([`Localnet::api_config`]).
    pub fn api(&self) -> TonCenterConfig {
        self.localnet.api_config()
    }

    /// An sdk client configuration for this network and `relayer_url`, accepting Simulated
    /// workers.
    pub fn client_config(&self, relayer_url: &str) -> ClientConfig {
        let mut c = ClientConfig::new(self.api(), self.root.clone(), relayer_url);
        c.policy = PolicyMode::Development;
        c
    }

    /// A new V5R1 wallet holding `nano` nanoTON (not deployed yet).
    pub async fn funded_wallet(&self, nano: u128) -> Result<Wallet> {
        Ok(self.funded(WalletKind::V5r1, nano).await?.0)
    }

    /// A new wallet of `kind` holding `nano` nanoTON, with its mnemonic (to write a wallet file
    /// or hand to a service).
    pub async fn funded(&self, kind: WalletKind, nano: u128) -> Result<(Wallet, String)> {
        fund_new(&self.localnet, kind, nano).await
    }

    /// Balance of any account, nanoTON.
    pub async fn balance(&self, address: &TonAddress) -> Result<u128> {
        Ok(self.chain.account(address).await?.balance)
    }

    /// The chain's time now (localnet's clock can be advanced).
    pub async fn now(&self) -> Result<u32> {
        let t = self.chain.account(&self.root).await?.sync_utime;
        Ok(u32::try_from(t).unwrap_or(u32::MAX))
    }

    /// Registers a worker whose keys derive from `seed`, serving `models` at these prices, with
    /// Simulated evidence bound to its keys, its Worker address and the attestation nonce.
    pub async fn register_worker(
        &self,
        seed: u8,
        models: &[u32],
        price_in: u128,
        price_out: u128,
    ) -> Result<RegisteredWorker> {
        let owner = self.funded_wallet(2 * dev::MIN_STAKE).await?;
        let worker = WorkerClient::for_owner(&self.chain, &self.root, owner.address()).await?;
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let enc = EncryptionKeyPair::from_seed(&[seed; 32]);
        let expires_at = self.now().await? + dev::ATTESTATION_TTL;
        let binding = WorkerBinding {
            receipt_key: signing.verifying_key().to_bytes(),
            encryption_key: enc.public_key(),
            worker: worker.address().clone(),
            chain_nonce: attestation_nonce(&self.root, expires_at)?,
            gpu_evidence_hash: None,
        };
        let evidence = Evidence::simulated(binding.report_data()?, "testkit");
        let record = WorkerRecord {
            receipt_key: binding.receipt_key,
            encryption_key: binding.encryption_key,
            price_in,
            price_out,
            models: models.iter().copied().collect(),
            attestation: Attestation {
                kind: tee_kind::SIMULATED,
                measurement: simulated_measurement(),
                evidence_hash: evidence.hash(),
                expires_at,
            },
        };
        worker
            .register(&owner, dev::MIN_STAKE, record, &SendOptions::default())
            .await?;
        Ok(RegisteredWorker {
            owner,
            address: worker.address().clone(),
            signing,
            enc,
            evidence,
            price_in,
            price_out,
            models: models.to_vec(),
        })
    }
}

/// A Worker registered by [`DevChain::register_worker`]: its owner, contract, keys and evidence.
#[derive(Clone)]
pub struct RegisteredWorker {
    /// Owner wallet.
    pub owner: Wallet,
    /// Worker contract.
    pub address: TonAddress,
    /// Receipt key.
    pub signing: SigningKey,
    /// Encryption key pair.
    pub enc: EncryptionKeyPair,
    /// The evidence it registered (its hash is on-chain).
    pub evidence: Evidence,
    /// nanoTON per input token.
    pub price_in: u128,
    /// nanoTON per output token.
    pub price_out: u128,
    /// Models registered.
    pub models: Vec<u32>,
}

/// Starts a fresh localnet on a free port, with the test profile `COCOON_TEST_NETWORK` names
/// (default instant; `realistic`: block timing, index lag, toncenter's rate limits).
pub async fn start_localnet() -> Result<Localnet> {
    let timing = LocalnetTiming::from_env().map_err(|e| TestkitError::Localnet(e.to_string()))?;
    start_localnet_with(timing).await
}

/// Starts a fresh localnet on a free port that behaves like the real network as `timing` says.
pub async fn start_localnet_with(timing: LocalnetTiming) -> Result<Localnet> {
    Localnet::start(LocalnetConfig {
        timing,
        ..Default::default()
    })
    .await
    .map_err(|e| TestkitError::Localnet(format!("{e} (did `npm ci` run in the repository root?)")))
}

/// A new wallet of `kind` holding `nano` nanoTON on `localnet`, with its mnemonic.
pub async fn fund_new(
    localnet: &Localnet,
    kind: WalletKind,
    nano: u128,
) -> Result<(Wallet, String)> {
    let mnemonic = generate_mnemonic();
    let w = Wallet::from_mnemonic(&mnemonic, kind)?;
    localnet
        .fund(w.address(), nano)
        .await
        .map_err(|e| TestkitError::Localnet(e.to_string()))?;
    Ok((w, mnemonic))
}

/// A new wallet of `kind` holding `nano` nanoTON on `localnet` (not deployed yet).
pub async fn funded_wallet(localnet: &Localnet, kind: WalletKind, nano: u128) -> Result<Wallet> {
    Ok(fund_new(localnet, kind, nano).await?.0)
}

/// Balance of an account, nanoTON.
pub async fn balance(chain: &TonCenterClient, address: &TonAddress) -> Result<u128> {
    Ok(chain.account(address).await?.balance)
}
