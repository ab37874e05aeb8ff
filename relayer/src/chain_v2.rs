//! Worker records of a Root v2 (protocol v2, payment channels) behind [`WorkerRegistry`]: the
//! same admission rule as v1 ([`crate::registry::check_worker`]) over Worker v2's getters.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cocoon_sdk::chain::{ChainApi, ChainError};
use cocoon_sdk::contracts::ContractError;
use cocoon_sdk::contracts::v2::{RootClient, WorkerClient};
use cocoon_sdk::tlb::TonAddress;
use futures_util::future::BoxFuture;

use crate::registry::{OnChainWorker, RegistryError, WorkerRegistry, WorkerStatus};

/// How long Root's minimum stake is cached.
const PARAMS_TTL: Duration = Duration::from_secs(60);

fn reg_err(e: impl std::fmt::Display) -> RegistryError {
    RegistryError(e.to_string())
}

/// Reads Worker v2 records under one Root v2.
#[derive(Debug)]
pub struct ChainRegistryV2<C> {
    chain: Arc<C>,
    root: TonAddress,
    min_stake: Mutex<Option<(u128, Instant)>>,
}

impl<C: ChainApi + 'static> ChainRegistryV2<C> {
    /// A registry of the Workers of the v2 Root `root`.
    pub fn new(chain: Arc<C>, root: TonAddress) -> Self {
        Self {
            chain,
            root,
            min_stake: Mutex::new(None),
        }
    }

    async fn min_stake(&self) -> Result<u128, RegistryError> {
        if let Some((v, at)) = *self.min_stake.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < PARAMS_TTL
        {
            return Ok(v);
        }
        let params = RootClient::at(&*self.chain, self.root.clone())
            .params()
            .await
            .map_err(reg_err)?;
        *self.min_stake.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((params.min_stake, Instant::now()));
        Ok(params.min_stake)
    }

    async fn read(&self, worker: &str) -> Result<Option<OnChainWorker>, RegistryError> {
        let address = TonAddress::from_hex_str(worker).map_err(reg_err)?;
        let client = WorkerClient::at(&*self.chain, self.root.clone(), address.clone());
        let state = match client.state().await {
            Ok(s) => s,
            // No contract, or not one that answers the Worker getters.
            Err(ContractError::Chain(ChainError::GetMethodFailed { .. })) => return Ok(None),
            Err(e) => return Err(reg_err(e)),
        };
        // Genuine only if it sits at the address Root derives for its owner: anyone can deploy a
        // contract that answers these getters.
        if state.root != self.root {
            return Ok(None);
        }
        let expected = RootClient::at(&*self.chain, self.root.clone())
            .worker_address(&state.owner)
            .await
            .map_err(reg_err)?;
        if expected != address {
            return Ok(None);
        }
        let status = WorkerStatus::from_code(state.status)
            .ok_or_else(|| reg_err(format!("unknown worker status {}", state.status)))?;
        if status == WorkerStatus::Uninitialised {
            return Ok(None);
        }
        let record = client.record().await.map_err(reg_err)?;
        let price =
            |p: u128| u64::try_from(p).map_err(|_| reg_err(format!("price {p} above 2^64")));
        Ok(Some(OnChainWorker {
            status,
            stake: state.stake,
            min_stake: self.min_stake().await?,
            receipt_key: record.receipt_key,
            encryption_key: record.encryption_key,
            price_in: price(record.price_in)?,
            price_out: price(record.price_out)?,
            models: record.models.into_iter().collect(),
            attestation_kind: record.kind,
            evidence_hash: record.evidence_hash,
            expires_at: record.expires_at,
        }))
    }
}

impl<C: ChainApi + 'static> WorkerRegistry for ChainRegistryV2<C> {
    fn lookup<'a>(
        &'a self,
        worker: &'a str,
    ) -> BoxFuture<'a, Result<Option<OnChainWorker>, RegistryError>> {
        Box::pin(self.read(worker))
    }
}
