//! [`Backend`] over the SDK [`Client`]: the confidential work happens here, on the caller's
//! side — worker choice and attestation checks, sealing, the escrow job, the receipt check.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_sdk::client::{
    Client, ClientError, JobEvent as ClientEvent, JobOptions, JobResult, JobStream, ReclaimOptions,
    ReclaimReport, ReclaimerTask,
};
use cocoon_sdk::job::{JobRequest, ModelSpec};
use cocoon_sdk::relay::worker::JobFailure;
use cocoon_sdk::tlb::TlbType as _;
use futures_util::StreamExt;

use super::backend::{Backend, BackendEvent, BackendEvents, JobSummary, ModelInfo, SettlementInfo};
use super::config::JobPolicy;
use super::error::GatewayError;

/// Finished jobs remembered for settlement lookups (their text and vectors are not kept).
pub const RECENT_JOBS: usize = 4096;

/// The gateway's backend: one connected [`Client`] (one wallet, one Escrow).
#[derive(Debug)]
pub struct ClientBackend {
    client: Client,
    recent: Recent,
    /// Expires the Escrow's jobs that can no longer be served (callers that hung up, jobs that
    /// expired unanswered); stops with the backend.
    _reclaimer: Option<ReclaimerTask>,
}

/// The last [`RECENT_JOBS`] results, shared with the job streams that add to it.
type Recent = Arc<Mutex<VecDeque<JobResult>>>;

impl ClientBackend {
    /// A backend over a connected client.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            recent: Arc::default(),
            _reclaimer: None,
        }
    }

    /// A backend whose Escrow's unservable jobs are expired on-chain by themselves (see
    /// [`cocoon_sdk::client::Reclaimer`]); each pass that frees funds is logged. Call it inside
    /// a Tokio runtime.
    pub fn with_reclaimer(client: Client, options: ReclaimOptions) -> Self {
        let task = client.spawn_reclaimer(options, log_reclaim);
        Self {
            _reclaimer: Some(task),
            ..Self::new(client)
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn log_reclaim(r: &ReclaimReport) {
    for j in &r.reclaimed {
        tracing::info!(target: "gateway::reclaim", job = %j.job, freed = %j.locked, "an unserved job expired; its funds are free again");
    }
    for j in &r.uneconomic {
        tracing::warn!(target: "gateway::reclaim", job = %j.job, locked = %j.locked, "an unserved job stays locked: expiring it would cost more than it frees");
    }
}

/// How a client failure reads to an OpenAI caller.
impl From<ClientError> for GatewayError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::UnknownModel(m) => GatewayError::UnknownModel(m),
            ClientError::NoWorker { model, reason } => GatewayError::NoWorker { model, reason },
            ClientError::AttestationRejected { worker, reason } => {
                GatewayError::AttestationRejected(format!("worker {worker}: {reason}"))
            }
            ClientError::InsufficientBalance { needed, free } => {
                GatewayError::InsufficientBalance { needed, free }
            }
            ClientError::RelayerUnreachable(m) => GatewayError::Upstream {
                code: "relayer_unreachable",
                message: m,
            },
            e @ ClientError::Relayer { .. } => GatewayError::Upstream {
                code: "relayer_error",
                message: e.to_string(),
            },
            e @ ClientError::JobFailed { .. } => GatewayError::Upstream {
                code: "worker_failed",
                message: e.to_string(),
            },
            ClientError::JobRefused { code, reason, .. } => match code {
                JobFailure::ContextLengthExceeded => GatewayError::ContextLengthExceeded(reason),
                JobFailure::BadInput => GatewayError::InvalidRequest {
                    message: format!("the worker refused the request: {reason}"),
                    param: None,
                },
                // Undecryptable or replayed input, a commitment that does not match: what the
                // gateway sealed is at fault, not the caller's request.
                code => GatewayError::Upstream {
                    code: "worker_refused",
                    message: format!("the worker refused the job ({code}): {reason}"),
                },
            },
            e @ ClientError::JobExpired { .. } => GatewayError::Timeout(e.to_string()),
            ClientError::Timeout(m) => GatewayError::Timeout(m),
            ClientError::BadResponse(m) => GatewayError::Upstream {
                code: "bad_response",
                message: m,
            },
            e @ ClientError::ReceiptInvalid(_) => GatewayError::Upstream {
                code: "receipt_invalid",
                message: e.to_string(),
            },
            ClientError::InvalidRequest(e) => GatewayError::InvalidRequest {
                message: e.to_string(),
                param: None,
            },
            // A worker's key or sealed answer that does not work is the worker's failure.
            e @ ClientError::Seal(_) => GatewayError::Upstream {
                code: "bad_response",
                message: e.to_string(),
            },
            e @ (ClientError::Chain(_) | ClientError::Contract(_) | ClientError::Wallet(_)) => {
                tracing::error!(target: "gateway::client", error = %e, "client failure");
                GatewayError::Internal(e.to_string())
            }
        }
    }
}

fn options(policy: &JobPolicy) -> JobOptions {
    JobOptions {
        max_cost: policy.max_cost,
        min_attestation: policy.min_attestation,
        max_price_in: policy.max_price_in,
        max_price_out: policy.max_price_out,
        preferred_workers: policy.preferred_workers.clone(),
        ..JobOptions::default()
    }
}

fn summary(r: &JobResult, open_time: Duration) -> JobSummary {
    JobSummary {
        job: r.job.to_string(),
        finish_reason: r.finish_reason,
        prompt_tokens: r.usage.prompt_tokens,
        completion_tokens: r.usage.completion_tokens,
        cost: r.cost,
        max_cost: r.max_cost,
        worker: r.worker.to_hex(),
        attestation_kind: r.attestation_kind,
        receipt_hash: hex::encode(r.receipt_hash),
        // A receipt that checked was parsed from a BOC, so it serialises again.
        receipt_boc: r.receipt.to_boc().unwrap_or_default(),
        open_tx: Some(hex::encode(r.open_tx)),
        open_time,
        settlement: None,
        channel: None,
    }
}

fn remember(recent: &Recent, r: &JobResult) {
    let mut kept = r.clone();
    kept.text = String::new();
    kept.embeddings = None;
    let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
    if recent.len() == RECENT_JOBS {
        recent.pop_front();
    }
    recent.push_back(kept);
}

/// Turns the client's job stream into gateway events (the worker's attestation kind is known
/// from the verified candidates the input was sealed to).
fn gateway_events(stream: JobStream, recent: Recent) -> BackendEvents {
    let open_time = stream.open_timing();
    futures_util::stream::unfold((stream, recent), move |(mut stream, recent)| async move {
        let ev = stream.next().await?;
        let ev = match ev {
            Ok(ClientEvent::Dispatched { worker, attempt }) => {
                let kind = stream.candidates().iter().find(|w| w.address == worker).map(|w| w.kind());
                tracing::debug!(target: "gateway::client", job = %stream.job(), %worker, attempt, "dispatched");
                match kind {
                    Some(attestation_kind) => Ok(BackendEvent::Dispatched { worker: worker.to_hex(), attestation_kind }),
                    None => Err(GatewayError::Upstream {
                        code: "bad_response",
                        message: format!("dispatched to {worker}, which is not a candidate"),
                    }),
                }
            }
            Ok(ClientEvent::Delta(t)) => Ok(BackendEvent::Delta(t)),
            Ok(ClientEvent::Embeddings(v)) => Ok(BackendEvent::Embeddings(v)),
            Ok(ClientEvent::Done(r)) => {
                remember(&recent, &r);
                Ok(BackendEvent::Done(Box::new(summary(&r, open_time))))
            }
            Err(e) => Err(GatewayError::from(e)),
        };
        Some((ev, (stream, recent)))
    })
    .boxed()
}

impl Backend for ClientBackend {
    async fn models(&self) -> Result<Vec<ModelInfo>, GatewayError> {
        let offers = self.client.models().await?;
        Ok(offers
            .into_iter()
            .filter_map(|o| {
                // Models this sdk does not know (or knows under another registry hash) cannot be
                // asked for by name, so they are not listed.
                let spec = o.spec?;
                Some(ModelInfo {
                    spec,
                    attested_workers: u32::try_from(o.workers).unwrap_or(u32::MAX),
                    available: u32::try_from(o.available).unwrap_or(u32::MAX),
                    attestation_kinds: o.kinds,
                    min_price_in: o.min_price_in,
                    min_price_out: o.min_price_out,
                })
            })
            .collect())
    }

    async fn open_job(
        &self,
        model: &'static ModelSpec,
        request: JobRequest,
        policy: &JobPolicy,
    ) -> Result<BackendEvents, GatewayError> {
        let stream = self
            .client
            .open_job(model.name, request, options(policy))
            .await?;
        Ok(gateway_events(stream, self.recent.clone()))
    }

    async fn settlement(&self, job: &str) -> Result<Option<SettlementInfo>, GatewayError> {
        let result = {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent
                .iter()
                .rev()
                .find(|r| r.job.to_string() == job)
                .cloned()
        };
        let Some(result) = result else {
            return Err(GatewayError::NotFound(format!(
                "job {job} was not run by this gateway (or is no longer remembered)"
            )));
        };
        // One look at the Escrow's transactions; the caller polls.
        match self
            .client
            .verify_settlement_within(&result, Duration::ZERO)
            .await
        {
            Ok(s) => Ok(Some(SettlementInfo {
                tx_hash: hex::encode(s.tx_hash),
                lt: s.lt,
                cost: s.cost,
                worker: s.worker.to_hex(),
            })),
            Err(ClientError::Timeout(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn readiness(&self) -> super::health::Readiness {
        super::health::client_readiness(&self.client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_sdk::job::JobError;
    use cocoon_sdk::relay::JobRef;

    #[test]
    fn client_errors_map_to_openai_statuses() {
        let job = || JobRef::new("0:00", 1);
        let cases: Vec<(ClientError, u16, &str)> = vec![
            (
                ClientError::UnknownModel("x".into()),
                404,
                "model_not_found",
            ),
            (
                ClientError::NoWorker {
                    model: "m".into(),
                    reason: "busy".into(),
                },
                429,
                "no_worker_available",
            ),
            (
                ClientError::AttestationRejected {
                    worker: "0:1".into(),
                    reason: "tcb".into(),
                },
                502,
                "attestation_rejected",
            ),
            (
                ClientError::InsufficientBalance { needed: 5, free: 1 },
                402,
                "insufficient_balance",
            ),
            (
                ClientError::RelayerUnreachable("refused".into()),
                502,
                "relayer_unreachable",
            ),
            (
                ClientError::Relayer {
                    status: 409,
                    code: "not_open".into(),
                    message: "x".into(),
                },
                502,
                "relayer_error",
            ),
            (ClientError::JobExpired { job: job() }, 504, "timeout"),
            (
                ClientError::JobFailed {
                    job: job(),
                    reason: "no worker answered".into(),
                },
                502,
                "worker_failed",
            ),
            (
                ClientError::JobRefused {
                    job: job(),
                    code: JobFailure::ContextLengthExceeded,
                    reason: "prompt of 9000 tokens does not fit the context of 8192 tokens".into(),
                },
                400,
                "context_length_exceeded",
            ),
            (
                ClientError::JobRefused {
                    job: job(),
                    code: JobFailure::BadInput,
                    reason: "x".into(),
                },
                400,
                "invalid_request",
            ),
            (
                ClientError::JobRefused {
                    job: job(),
                    code: JobFailure::CannotDecrypt,
                    reason: "x".into(),
                },
                502,
                "worker_refused",
            ),
            (ClientError::Timeout("x".into()), 504, "timeout"),
            (ClientError::BadResponse("x".into()), 502, "bad_response"),
            (
                ClientError::InvalidRequest(JobError::Invalid("x".into())),
                400,
                "invalid_request",
            ),
            (
                ClientError::Chain(cocoon_sdk::chain::ChainError::Timeout {
                    call: "x",
                    after: Duration::from_secs(1),
                }),
                500,
                "internal_error",
            ),
        ];
        for (e, status, code) in cases {
            let what = format!("{e:?}");
            let g = GatewayError::from(e);
            assert_eq!((g.status().as_u16(), g.code()), (status, code), "{what}");
        }
        let g = GatewayError::from(ClientError::InsufficientBalance { needed: 5, free: 1 });
        assert_eq!(g, GatewayError::InsufficientBalance { needed: 5, free: 1 });
    }

    #[test]
    fn policy_becomes_job_options() {
        let p = JobPolicy {
            min_attestation: Some(cocoon_sdk::attest::EvidenceKind::Tdx),
            max_price_in: Some(3),
            max_price_out: Some(4),
            preferred_workers: vec![cocoon_sdk::tlb::TonAddress::NULL],
            max_cost: Some(99),
        };
        let o = options(&p);
        assert_eq!(o.min_attestation, p.min_attestation);
        assert_eq!(
            (o.max_price_in, o.max_price_out, o.max_cost),
            (Some(3), Some(4), Some(99))
        );
        assert_eq!(o.preferred_workers, p.preferred_workers);
        assert_eq!(o.worker, None);
    }
}
