//! Server-Sent-Events framing of a streamed text job, as OpenAI clients expect it: one
//! `data: <chunk JSON>` event per piece of text (the first carries the assistant role), a chunk
//! with `finish_reason` and the Cocoon fields, optionally a usage chunk with no choices, then
//! `data: [DONE]`. A failure mid-stream becomes one `data: {"error": …}` event and the stream
//! ends without `[DONE]`, which the OpenAI clients raise as an error.
//!
//! [`TextFramer`] is the pure state machine (events in, `data:` payloads out); the HTTP layer
//! only wraps each payload in an SSE event.

use super::backend::BackendEvent;
use super::error::GatewayError;
use super::openai::response::ResponseMeta;

/// The payload that ends a successful stream.
pub const DONE: &str = "[DONE]";

/// Turns job events into the `data:` payloads of the response stream.
#[derive(Debug)]
pub struct TextFramer {
    meta: ResponseMeta,
    include_usage: bool,
    dispatched: bool,
    sent_first: bool,
    finished: bool,
}

impl TextFramer {
    /// A framer for one response.
    pub fn new(meta: ResponseMeta, include_usage: bool) -> Self {
        Self {
            meta,
            include_usage,
            dispatched: false,
            sent_first: false,
            finished: false,
        }
    }

    /// Whether the stream has ended (successfully or with an error); later events are ignored.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The payloads one event produces.
    pub fn push(&mut self, event: Result<BackendEvent, GatewayError>) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        match event {
            // A second dispatch is a failover: the new worker starts the answer over, and text
            // already sent cannot be taken back, so the stream ends with an error instead.
            Ok(BackendEvent::Dispatched { .. }) if self.dispatched && self.sent_first => {
                self.fail(GatewayError::Upstream {
                    code: "worker_failed",
                    message: "the worker failed mid-answer and the job moved to another worker; retry the request".into(),
                })
            }
            Ok(BackendEvent::Dispatched { .. }) => {
                self.dispatched = true;
                Vec::new()
            }
            Ok(BackendEvent::Delta(text)) if text.is_empty() => Vec::new(),
            Ok(BackendEvent::Delta(text)) => {
                let first = !std::mem::replace(&mut self.sent_first, true);
                vec![
                    self.meta
                        .delta(&text, first, self.include_usage)
                        .to_string(),
                ]
            }
            Ok(BackendEvent::Done(summary)) => {
                self.finished = true;
                let mut out = Vec::with_capacity(4);
                if !std::mem::replace(&mut self.sent_first, true) {
                    out.push(self.meta.delta("", true, self.include_usage).to_string());
                }
                out.push(self.meta.finish(&summary, self.include_usage).to_string());
                if self.include_usage {
                    out.push(self.meta.usage_chunk(&summary).to_string());
                }
                out.push(DONE.to_owned());
                out
            }
            Ok(BackendEvent::Embeddings(_)) => self.fail(GatewayError::Upstream {
                code: "bad_response",
                message: "the worker answered a text job with embeddings".into(),
            }),
            Err(e) => self.fail(e),
        }
    }

    /// The payloads when the event stream ends (an error if it ended before the result).
    pub fn end(&mut self) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.fail(GatewayError::Upstream {
            code: "bad_response",
            message: "the job ended without a result".into(),
        })
    }

    fn fail(&mut self, e: GatewayError) -> Vec<String> {
        self.finished = true;
        tracing::warn!(target: "gateway::sse", code = e.code(), error = %e, "stream failed");
        vec![serde_json::to_string(&e.body()).expect("error bodies serialise")]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::gateway::backend::JobSummary;
    use crate::gateway::openai::response::TextApi;
    use cocoon_sdk::attest::EvidenceKind;
    use cocoon_sdk::job::FinishReason;

    fn framer(include_usage: bool) -> TextFramer {
        TextFramer::new(
            ResponseMeta {
                id: "chatcmpl-x".into(),
                created: 1,
                model: "smollm2-135m-instruct",
                api: TextApi::Chat,
            },
            include_usage,
        )
    }

    fn done() -> BackendEvent {
        BackendEvent::Done(Box::new(JobSummary {
            job: "0:aa:1".into(),
            finish_reason: FinishReason::Stop,
            prompt_tokens: 4,
            completion_tokens: 2,
            cost: 60,
            max_cost: 100,
            worker: "0:bb".into(),
            attestation_kind: EvidenceKind::Simulated,
            receipt_hash: "00".repeat(32),
            receipt_boc: Vec::new(),
            open_tx: Some("11".repeat(32)),
            open_time: Duration::ZERO,
            settlement: None,
            channel: None,
        }))
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn text_then_finish_then_usage_then_done() {
        let mut f = framer(true);
        let mut out = f.push(Ok(BackendEvent::Dispatched {
            worker: "0:bb".into(),
            attestation_kind: EvidenceKind::Simulated,
        }));
        out.extend(f.push(Ok(BackendEvent::Delta("Hel".into()))));
        out.extend(f.push(Ok(BackendEvent::Delta(String::new()))));
        out.extend(f.push(Ok(BackendEvent::Delta("lo".into()))));
        out.extend(f.push(Ok(done())));
        out.extend(f.push(Ok(BackendEvent::Delta("late".into()))));
        out.extend(f.end());
        assert_eq!(out.len(), 5, "{out:#?}");
        assert_eq!(json(&out[0])["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(json(&out[0])["choices"][0]["delta"]["content"], "Hel");
        assert!(json(&out[1])["choices"][0]["delta"].get("role").is_none());
        assert_eq!(json(&out[2])["choices"][0]["finish_reason"], "stop");
        assert_eq!(json(&out[2])["cocoon"]["cost_nano"], "60");
        assert_eq!(json(&out[3])["usage"]["total_tokens"], 6);
        assert_eq!(json(&out[3])["choices"], serde_json::json!([]));
        assert_eq!(out[4], DONE);
        assert!(f.finished());
    }

    #[test]
    fn empty_answer_still_sends_the_role() {
        let mut f = framer(false);
        let out = f.push(Ok(done()));
        assert_eq!(out.len(), 3);
        assert_eq!(json(&out[0])["choices"][0]["delta"]["content"], "");
        assert!(json(&out[1]).get("usage").is_none());
        assert_eq!(out[2], DONE);
    }

    #[test]
    fn failures_end_the_stream_with_an_error_and_no_done() {
        let mut f = framer(false);
        let mut out = f.push(Ok(BackendEvent::Delta("a".into())));
        out.extend(f.push(Err(GatewayError::Timeout("job expired".into()))));
        out.extend(f.push(Ok(done())));
        assert_eq!(out.len(), 2);
        assert_eq!(json(&out[1])["error"]["code"], "timeout");

        let mut f = framer(false);
        assert_eq!(json(&f.end()[0])["error"]["code"], "bad_response");
        let mut f = framer(false);
        assert_eq!(
            json(&f.push(Ok(BackendEvent::Embeddings(vec![])))[0])["error"]["code"],
            "bad_response"
        );
    }

    #[test]
    fn failover_before_any_text_is_invisible_after_text_is_an_error() {
        let dispatched = || {
            Ok(BackendEvent::Dispatched {
                worker: "0:bb".into(),
                attestation_kind: EvidenceKind::Simulated,
            })
        };
        let mut f = framer(false);
        assert!(f.push(dispatched()).is_empty());
        assert!(f.push(dispatched()).is_empty());
        assert_eq!(f.push(Ok(BackendEvent::Delta("a".into()))).len(), 1);
        let out = f.push(dispatched());
        assert_eq!(json(&out[0])["error"]["code"], "worker_failed");
        assert!(f.finished());
    }
}
