//! The development chain for protocol v2 (payment channels), beside the v1 one of [`crate::chain`]
//! until the request path moves to channels: localnet with a Root v2 deployed with the same
//! development parameters ([`dev`]), funded wallets, and v2 Workers registered with Simulated
//! evidence.
//!
//! [`deploy_dev_root_v2`] is the only place in the repository that deploys a development Root v2.

use std::collections::{BTreeMap, BTreeSet};

use cocoon_sdk::attest::{Evidence, WorkerBinding, attestation_nonce};
use cocoon_sdk::chain::{ChainApi, TonCenterClient};
use cocoon_sdk::contracts::v2::{RootClient, WorkerClient};
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::messages::v2::records::{
    Attestation, RootParams, RootPolicy, TeePolicy, WorkerRecord, tee_kind,
};
use cocoon_sdk::seal::EncryptionKeyPair;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{SendOptions, Wallet, WalletKind};
use ed25519_dalek::SigningKey;

use crate::Result;
use crate::chain::{
    Localnet, RegisteredWorker, dev, fund_new, registry, simulated_measurement, start_localnet,
};

/// Deploys a development Root v2 owned by `governor` with `models` in its registry: the [`dev`]
/// parameters (grace 30 s, unbonding 100 s, governance delay 60 s), every TEE kind (Simulated
/// included) allowed, the Simulated measurement on the allow-list, and a TEE policy that adds no
/// rule ([`TeePolicy::any`]).
pub async fn deploy_dev_root_v2(
    chain: &TonCenterClient,
    governor: &Wallet,
    models: BTreeMap<u32, [u8; 32]>,
) -> Result<TonAddress> {
    let params = RootParams {
        min_stake: dev::MIN_STAKE,
        unbonding_delay: dev::UNBONDING_DELAY,
        grace_period: dev::GRACE_PERIOD,
        max_channel_lifetime: dev::MAX_CHANNEL_LIFETIME,
        governance_delay: dev::GOVERNANCE_DELAY,
        relayer_fee_cap_bps: dev::RELAYER_FEE_CAP_BPS,
        protocol_fee_bps: dev::PROTOCOL_FEE_BPS,
        reporter_reward_bps: dev::REPORTER_REWARD_BPS,
        treasury: governor.address().clone(),
    };
    let policy = RootPolicy {
        allowed_kinds: (1 << tee_kind::SIMULATED) | (1 << tee_kind::SEV_SNP) | (1 << tee_kind::TDX),
        measurements: BTreeSet::from([simulated_measurement()]),
        models,
        tee: TeePolicy::any(),
    };
    let data =
        RootClient::<TonCenterClient>::initial_data(governor.address().clone(), params, policy)?;
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

/// Localnet with a deployed development Root v2.
#[derive(Debug)]
pub struct DevChainV2 {
    /// The emulator process (stopped on drop).
    pub localnet: Localnet,
    /// A client of its toncenter-compatible API.
    pub chain: TonCenterClient,
    /// The Root v2 contract.
    pub root: TonAddress,
    /// Root's owner (governance) and the treasury.
    pub governor: Wallet,
}

impl DevChainV2 {
    /// Starts localnet and deploys a development Root v2 with `models` registered.
    pub async fn start(models: &[ModelSpec]) -> Result<Self> {
        Self::on(start_localnet().await?, registry(models)).await
    }

    /// Deploys a development Root v2 on a running localnet.
    pub async fn on(localnet: Localnet, models: BTreeMap<u32, [u8; 32]>) -> Result<Self> {
        let chain = localnet.client()?;
        let governor = fund_new(&localnet, WalletKind::V5r1, dev::GOVERNOR_FUNDS)
            .await?
            .0;
        let root = deploy_dev_root_v2(&chain, &governor, models).await?;
        tracing::info!(target: "testkit::chain", url = %localnet.url(), root = %root, "localnet up, Root v2 deployed");
        Ok(Self {
            localnet,
            chain,
            root,
            governor,
        })
    }

    /// A new V5R1 wallet holding `nano` nanoTON (not deployed yet).
    pub async fn funded_wallet(&self, nano: u128) -> Result<Wallet> {
        Ok(fund_new(&self.localnet, WalletKind::V5r1, nano).await?.0)
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

    /// Registers a v2 worker whose keys derive from `seed`, serving `models` at these published
    /// prices, with the minimum stake and Simulated evidence bound to its keys, its Worker v2
    /// address and the attestation nonce.
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
