//! [`Backend`] over the SDK's channel-mode client ([`ChannelClient`], protocol v2): requests are
//! paid through the wallet's payment channels, nothing on-chain per request; each response's
//! `cocoon` object names the channel, the seq and the receipt. The gateway's [`JobPolicy`] picks
//! the channels (attestation minimum, price caps against each channel's fixed prices, preferred
//! workers) and its max cost lowers `max_tokens` to what fits; a request nothing fits gets 429
//! `no_worker_available` naming the limit.

use cocoon_sdk::client::channels::{
    ChannelClient, ChannelClientError, ChannelEvent, ChannelResult, RequestOptions,
};
use cocoon_sdk::job::models::KNOWN_MODELS;
use cocoon_sdk::job::{JobRequest, ModelSpec};
use cocoon_sdk::tlb::TlbType as _;
use futures_util::StreamExt;

use super::backend::{
    Backend, BackendEvent, BackendEvents, ChannelSummary, JobSummary, ModelInfo, SettlementInfo,
};
use super::config::JobPolicy;
use super::error::GatewayError;

/// The gateway's backend on a v2 Root: one [`ChannelClient`] (one wallet, its channels).
#[derive(Debug, Clone)]
pub struct ChannelBackend {
    client: ChannelClient,
    /// Closes channels whose settlement window ended; stops when the last clone is dropped.
    _reclaimer: Option<std::sync::Arc<ReclaimTask>>,
}

/// The periodic [`ChannelClient::reclaim`] of a gateway, aborted on drop.
#[derive(Debug)]
struct ReclaimTask(tokio::task::JoinHandle<()>);

impl Drop for ReclaimTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ChannelBackend {
    /// A backend over a connected channel client.
    pub fn new(client: ChannelClient) -> Self {
        Self {
            client,
            _reclaimer: None,
        }
    }

    /// A backend that also runs [`ChannelClient::reclaim`] every `interval`, so what a channel
    /// did not spend comes back to the Escrow's free balance once its window ends, with no
    /// manual step.
    pub fn with_reclaimer(client: ChannelClient, interval: std::time::Duration) -> Self {
        let c = client.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match c.reclaim().await {
                    Ok(closed) if !closed.is_empty() => {
                        tracing::info!(target: "gateway::reclaim", channels = ?closed, "channels past their settlement window closed; their rest is free again");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(target: "gateway::reclaim", error = %e, "reclaiming channels failed; retried at the next pass");
                    }
                }
            }
        });
        Self {
            client,
            _reclaimer: Some(std::sync::Arc::new(ReclaimTask(task))),
        }
    }

    /// The client.
    pub fn client(&self) -> &ChannelClient {
        &self.client
    }
}

/// How a channel-mode failure reads to an OpenAI caller.
impl From<ChannelClientError> for GatewayError {
    fn from(e: ChannelClientError) -> Self {
        match e {
            ChannelClientError::Client(e) => GatewayError::from(e),
            ChannelClientError::NoChannel { model, reason } => GatewayError::NoWorker {
                model: model.to_string(),
                reason,
            },
            ChannelClientError::Refused { code, message } if code == "context_length_exceeded" => {
                GatewayError::ContextLengthExceeded(message)
            }
            ChannelClientError::Refused { code, message } if code == "bad_request" => {
                GatewayError::InvalidRequest {
                    message: format!("the worker refused the request: {message}"),
                    param: None,
                }
            }
            e @ ChannelClientError::Refused { .. } => GatewayError::Upstream {
                code: "worker_refused",
                message: e.to_string(),
            },
            e @ ChannelClientError::Failed(_) => GatewayError::Upstream {
                code: "worker_failed",
                message: e.to_string(),
            },
            e @ ChannelClientError::Channel(_) => GatewayError::Upstream {
                code: "receipt_invalid",
                message: e.to_string(),
            },
            e @ ChannelClientError::Seal(_) => GatewayError::Upstream {
                code: "bad_response",
                message: e.to_string(),
            },
            e => {
                tracing::error!(target: "gateway::channels", error = %e, "channel client failure");
                GatewayError::Internal(e.to_string())
            }
        }
    }
}

/// What the gateway's policy asks of every channel request.
fn options(policy: &JobPolicy) -> RequestOptions {
    RequestOptions {
        worker: None,
        min_attestation: policy.min_attestation,
        max_price_in: policy.max_price_in,
        max_price_out: policy.max_price_out,
        preferred_workers: policy.preferred_workers.clone(),
        max_cost: policy.max_cost,
    }
}

/// The summary of a paid channel request.
pub fn summary(r: &ChannelResult) -> JobSummary {
    let ch = &r.channel;
    JobSummary {
        job: format!("{}/channel/{}/{}", ch.escrow.to_hex(), ch.channel_id, r.seq),
        finish_reason: r.finish_reason,
        prompt_tokens: r.usage.prompt_tokens,
        completion_tokens: r.usage.completion_tokens,
        cost: r.cost,
        max_cost: r.max_cost,
        worker: r.worker.to_hex(),
        attestation_kind: r.attestation_kind,
        receipt_hash: r.receipt.body.hash().map(hex::encode).unwrap_or_default(),
        // A receipt that checked was parsed from a BOC, so it serialises again.
        receipt_boc: r.receipt.to_boc().unwrap_or_default(),
        open_tx: None,
        open_time: std::time::Duration::ZERO,
        settlement: None,
        channel: Some(ChannelSummary {
            escrow: ch.escrow.to_hex(),
            channel_id: ch.channel_id,
            seq: r.seq,
            cumulative: r.cumulative,
        }),
    }
}

impl Backend for ChannelBackend {
    async fn models(&self) -> Result<Vec<ModelInfo>, GatewayError> {
        let mut out = Vec::new();
        for spec in KNOWN_MODELS {
            if !self.client.has_model(spec).await? {
                continue;
            }
            let workers = self.client.workers(spec.id).await?;
            let mut kinds: Vec<_> = workers.iter().map(|w| w.kind()).collect();
            kinds.sort_by_key(|k| k.to_string());
            kinds.dedup();
            out.push(ModelInfo {
                spec: *spec,
                attested_workers: u32::try_from(workers.len()).unwrap_or(u32::MAX),
                available: u32::try_from(workers.len()).unwrap_or(u32::MAX),
                attestation_kinds: kinds,
                min_price_in: workers.iter().map(|w| w.price_in).min(),
                min_price_out: workers.iter().map(|w| w.price_out).min(),
            });
        }
        Ok(out)
    }

    async fn open_job(
        &self,
        model: &'static ModelSpec,
        request: JobRequest,
        policy: &JobPolicy,
    ) -> Result<BackendEvents, GatewayError> {
        let stream = self
            .client
            .request_with(model, request, &options(policy))
            .await?;
        Ok(
            futures_util::stream::unfold(stream, |mut stream| async move {
                let ev = match stream.next().await? {
                    Ok(ChannelEvent::Dispatched {
                        worker,
                        attestation_kind,
                        ..
                    }) => Ok(BackendEvent::Dispatched {
                        worker: worker.to_hex(),
                        attestation_kind,
                    }),
                    Ok(ChannelEvent::Delta(t)) => Ok(BackendEvent::Delta(t)),
                    Ok(ChannelEvent::Embeddings(v)) => Ok(BackendEvent::Embeddings(v)),
                    Ok(ChannelEvent::Done(r)) => Ok(BackendEvent::Done(Box::new(summary(&r)))),
                    Err(e) => Err(GatewayError::from(e)),
                };
                Some((ev, stream))
            })
            .boxed(),
        )
    }

    async fn settlement(&self, job: &str) -> Result<Option<SettlementInfo>, GatewayError> {
        // A channel request is settled with the ones after it, by the worker, when its policy
        // says so; `cocoon job verify` proves a receipt once a settlement anchors it.
        Err(GatewayError::NotFound(format!(
            "{job} is a channel request: settlements anchor many; prove its receipt with `cocoon job verify`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_sdk::attest::EvidenceKind;
    use cocoon_sdk::client::ClientError;
    use cocoon_sdk::client::TokenBound;
    use cocoon_sdk::client::channels::Offer;
    use cocoon_sdk::tlb::TonAddress;

    fn worker(b: u8) -> TonAddress {
        TonAddress::new(0, [b; 32].into())
    }

    const BOUND: TokenBound = TokenBound {
        input: 100,
        output: 50,
    };

    /// Whether a channel of `w` (kind, prices) may serve a request under `policy`.
    fn admitted(
        policy: &JobPolicy,
        w: &TonAddress,
        kind: EvidenceKind,
        prices: (u128, u128),
    ) -> bool {
        options(policy).admits(
            Offer {
                worker: w,
                kind,
                price_in: prices.0,
                price_out: prices.1,
            },
            BOUND,
        )
    }

    #[test]
    fn an_empty_policy_admits_any_channel() {
        let p = JobPolicy::default();
        assert_eq!(options(&p), RequestOptions::default());
        assert!(admitted(
            &p,
            &worker(1),
            EvidenceKind::Simulated,
            (u128::MAX, u128::MAX)
        ));
    }

    #[test]
    fn the_minimum_attestation_refuses_simulated_channels() {
        let p = JobPolicy {
            min_attestation: Some(EvidenceKind::SevSnp),
            ..JobPolicy::default()
        };
        assert!(!admitted(&p, &worker(1), EvidenceKind::Simulated, (1, 1)));
        assert!(admitted(&p, &worker(1), EvidenceKind::Tdx, (1, 1)));
    }

    #[test]
    fn the_input_price_cap_refuses_dearer_channels() {
        let p = JobPolicy {
            max_price_in: Some(1_000),
            ..JobPolicy::default()
        };
        assert!(admitted(
            &p,
            &worker(1),
            EvidenceKind::Tdx,
            (1_000, u128::MAX / 4)
        ));
        assert!(!admitted(&p, &worker(1), EvidenceKind::Tdx, (1_001, 1)));
    }

    #[test]
    fn the_output_price_cap_refuses_dearer_channels() {
        let p = JobPolicy {
            max_price_out: Some(3_000),
            ..JobPolicy::default()
        };
        assert!(admitted(
            &p,
            &worker(1),
            EvidenceKind::Tdx,
            (u128::MAX / 4, 3_000)
        ));
        assert!(!admitted(&p, &worker(1), EvidenceKind::Tdx, (1, 3_001)));
    }

    #[test]
    fn preferred_workers_keep_their_order() {
        let p = JobPolicy {
            preferred_workers: vec![worker(2), worker(1)],
            ..JobPolicy::default()
        };
        let o = options(&p);
        assert_eq!(
            (o.rank(&worker(2)), o.rank(&worker(1)), o.rank(&worker(3))),
            (0, 1, usize::MAX)
        );
        // Preference orders, it does not exclude.
        assert!(admitted(&p, &worker(3), EvidenceKind::Tdx, (1, 1)));
    }

    #[test]
    fn the_max_cost_caps_max_tokens_and_refuses_what_cannot_fit() {
        use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest, Task};
        let p = JobPolicy {
            max_cost: Some(100 * 1_000 + 10 * 3_000),
            ..JobPolicy::default()
        };
        assert_eq!(options(&p).max_cost, p.max_cost);
        // A channel that cannot pay for the input and one token within it is not used.
        assert!(admitted(&p, &worker(1), EvidenceKind::Tdx, (1_000, 3_000)));
        assert!(!admitted(&p, &worker(1), EvidenceKind::Tdx, (1_300, 3_000)));
        // What a request may generate is lowered to what the cap pays for.
        let request = JobRequest::chat(
            vec![ChatMessage::new("user", "hi")],
            GenerationParams {
                max_tokens: 4_096,
                ..GenerationParams::default()
            },
        );
        let bound = cocoon_sdk::client::token_bound(&request);
        let cap = u128::from(bound.input) * 1_000 + 10 * 3_000;
        let capped =
            cocoon_sdk::client::channels::cap_to_cost(request, bound, [(1_000, 3_000)], cap)
                .unwrap();
        let Task::Chat { params, .. } = capped.task else {
            panic!()
        };
        assert_eq!(params.max_tokens, 10);
    }

    #[test]
    fn nothing_fitting_the_policy_is_a_clear_429() {
        let o = options(&JobPolicy {
            max_price_in: Some(5),
            ..JobPolicy::default()
        });
        let e = ChannelClientError::NoChannel {
            model: 1,
            reason: o.explain(2, &[cocoon_sdk::client::channels::Refusal::Price; 2]),
        };
        let g = GatewayError::from(e);
        assert_eq!(
            (g.status().as_u16(), g.code()),
            (429, "no_worker_available")
        );
        assert!(
            g.to_string().contains("price limits (in ≤ 5, out ≤ any)"),
            "{g}"
        );
    }

    #[test]
    fn channel_errors_map_to_openai_statuses() {
        let cases: Vec<(ChannelClientError, u16, &str)> = vec![
            (
                ChannelClientError::NoChannel {
                    model: 1,
                    reason: "none".into(),
                },
                429,
                "no_worker_available",
            ),
            (
                ChannelClientError::Refused {
                    code: "bad_request".into(),
                    message: "too long".into(),
                },
                400,
                "invalid_request",
            ),
            (
                ChannelClientError::Refused {
                    code: "context_length_exceeded".into(),
                    message: "12031 prompt tokens, the context holds 8192".into(),
                },
                400,
                "context_length_exceeded",
            ),
            (
                ChannelClientError::Channel(cocoon_sdk::channel::ChannelError::Closing),
                502,
                "receipt_invalid",
            ),
            (
                ChannelClientError::Failed("no worker".into()),
                502,
                "worker_failed",
            ),
            (
                ChannelClientError::Client(ClientError::Timeout("x".into())),
                504,
                "timeout",
            ),
        ];
        for (e, status, code) in cases {
            let what = format!("{e:?}");
            let g = GatewayError::from(e);
            assert_eq!((g.status().as_u16(), g.code()), (status, code), "{what}");
        }
    }
}
