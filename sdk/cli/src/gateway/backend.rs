//! The boundary between the HTTP layer and the network: [`Backend`]. The real implementation is
//! the SDK client (`cocoon_sdk::client::Client`) (confidential work on the caller's side: worker choice,
//! attestation, sealing, escrow jobs, receipt checks); tests plug in their own.

use std::future::Future;
use std::time::Duration;

use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::job::{FinishReason, JobRequest, ModelSpec};
use futures_util::stream::BoxStream;

use super::config::JobPolicy;
use super::error::GatewayError;
use super::health::Readiness;

/// One model of the network as the gateway lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The model.
    pub spec: ModelSpec,
    /// Workers serving it whose attestation verified.
    pub attested_workers: u32,
    /// Of those, the ones with free capacity now.
    pub available: u32,
    /// Their attestation kinds.
    pub attestation_kinds: Vec<EvidenceKind>,
    /// Lowest price per input token among them, nanoTON.
    pub min_price_in: Option<u128>,
    /// Lowest price per output token among them, nanoTON.
    pub min_price_out: Option<u128>,
}

/// What a running job reports, in order: `Dispatched` (possibly again on failover), then
/// `Delta`s (text) or one `Embeddings`, then `Done`.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// The relayer handed the sealed input to a worker.
    Dispatched {
        /// Worker contract address.
        worker: String,
        /// Its evidence kind, as verified by the client.
        attestation_kind: EvidenceKind,
    },
    /// Newly generated text.
    Delta(String),
    /// Embedding vectors in input order.
    Embeddings(Vec<Vec<f32>>),
    /// The verified end of the job.
    Done(Box<JobSummary>),
}

/// The verified outcome of a job: what the receipt bills and where to find it on-chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// The job, `escrow/id` (as [`cocoon_sdk::relay::JobRef`] prints it).
    pub job: String,
    /// Why generation stopped (text jobs).
    pub finish_reason: FinishReason,
    /// Input tokens billed.
    pub prompt_tokens: u32,
    /// Output tokens billed.
    pub completion_tokens: u32,
    /// Cost in the receipt, nanoTON.
    pub cost: u128,
    /// Most the job could have cost (locked in escrow), nanoTON.
    pub max_cost: u128,
    /// Worker contract address.
    pub worker: String,
    /// Evidence kind of the worker.
    pub attestation_kind: EvidenceKind,
    /// Hash of the signed receipt cell, hex.
    pub receipt_hash: String,
    /// The signed receipt (BOC), for the caller to keep as proof of the answer.
    pub receipt_boc: Vec<u8>,
    /// Hash of the transaction that opened the job, hex, when known.
    pub open_tx: Option<String>,
    /// Time spent opening the job on-chain (reported apart from inference time).
    pub open_time: Duration,
    /// Settlement on-chain, when already known.
    pub settlement: Option<SettlementInfo>,
    /// The channel that paid it (channel mode, protocol v2); `None` for a per-job request.
    pub channel: Option<ChannelSummary>,
}

/// Where a channel-mode request was paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    /// The client's Escrow (raw address).
    pub escrow: String,
    /// The channel id on it.
    pub channel_id: u64,
    /// The receipt's seq on the channel.
    pub seq: u32,
    /// What the channel's vouchers have paid so far, this request included, nanoTON.
    pub cumulative: u128,
}

/// The on-chain settlement of a job's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementInfo {
    /// Hash of the settling transaction, hex.
    pub tx_hash: String,
    /// Its logical time.
    pub lt: u64,
    /// Cost settled, nanoTON.
    pub cost: u128,
    /// Worker paid.
    pub worker: String,
}

/// The events of one job.
pub type BackendEvents = BoxStream<'static, Result<BackendEvent, GatewayError>>;

/// What the gateway needs from the network.
pub trait Backend: Send + Sync + 'static {
    /// The models of the network with their attested workers and prices.
    fn models(&self) -> impl Future<Output = Result<Vec<ModelInfo>, GatewayError>> + Send;

    /// Opens a job (on-chain and at the relayer) and streams its events. Failures before any
    /// event (balance, no worker, unknown model) come back as the `Err`, so the gateway can still
    /// answer with the right status code.
    fn open_job(
        &self,
        model: &'static ModelSpec,
        request: JobRequest,
        policy: &JobPolicy,
    ) -> impl Future<Output = Result<BackendEvents, GatewayError>> + Send;

    /// The on-chain settlement of a job this backend ran (`None` while not yet settled).
    fn settlement(
        &self,
        job: &str,
    ) -> impl Future<Output = Result<Option<SettlementInfo>, GatewayError>> + Send;

    /// Probes what a request needs (relayer, chain) for `/health`. A backend without upstreams
    /// keeps the default: no checks, always ready.
    fn readiness(&self) -> impl Future<Output = Readiness> + Send {
        async { Readiness::default() }
    }
}

/// A shared backend is a backend (the caller keeps a handle, e.g. to read its state).
impl<B: Backend> Backend for std::sync::Arc<B> {
    fn models(&self) -> impl Future<Output = Result<Vec<ModelInfo>, GatewayError>> + Send {
        (**self).models()
    }

    fn open_job(
        &self,
        model: &'static ModelSpec,
        request: JobRequest,
        policy: &JobPolicy,
    ) -> impl Future<Output = Result<BackendEvents, GatewayError>> + Send {
        (**self).open_job(model, request, policy)
    }

    fn settlement(
        &self,
        job: &str,
    ) -> impl Future<Output = Result<Option<SettlementInfo>, GatewayError>> + Send {
        (**self).settlement(job)
    }

    fn readiness(&self) -> impl Future<Output = Readiness> + Send {
        (**self).readiness()
    }
}
