//! OpenAI response bodies, each with a `cocoon` object: what the job cost (nanoTON, as a string:
//! u128 does not fit a JSON number), which worker ran it under which attestation, the receipt
//! hash and, once known, the on-chain settlement.

use base64::Engine as _;
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::job::FinishReason;
use serde::Serialize;
use serde_json::{Value, json};

use super::super::backend::{JobSummary, ModelInfo, SettlementInfo};
use super::request::EncodingFormat;

/// The `cocoon` object of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CocoonFields {
    /// The job, `escrow/id`.
    pub job: String,
    /// Cost billed by the receipt, nanoTON (decimal string).
    pub cost_nano: String,
    /// Most the job could have cost, nanoTON (decimal string).
    pub max_cost_nano: String,
    /// Worker contract address.
    pub worker: String,
    /// Machine-readable evidence kind: `sev_snp`, `tdx`, `simulated`.
    pub attestation_kind: &'static str,
    /// For a human; `UNATTESTED (SIMULATED TEE)` for simulated workers.
    pub attestation: String,
    /// Hash of the signed receipt, hex.
    pub receipt_hash: String,
    /// The signed receipt, BOC in base64: with the answer it proves what was asked, answered
    /// and billed (the output commitment opens only with the job's secret).
    pub receipt: String,
    /// Transaction that opened the job, hex.
    pub open_tx: Option<String>,
    /// Time spent opening the job on-chain, milliseconds.
    pub open_ms: u64,
    /// The settlement, when already known (see `GET /v1/cocoon/jobs/{job}`).
    pub settlement: Option<SettlementJson>,
    /// Channel mode: the channel that paid the request and the receipt's seq on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelJson>,
}

/// The channel of a channel-mode request as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelJson {
    /// The client's Escrow (raw address).
    pub escrow: String,
    /// Channel id (decimal string: ids use all 64 bits).
    pub id: String,
    /// The receipt's seq on the channel.
    pub seq: u32,
    /// Paid by the channel's vouchers so far, nanoTON (decimal string).
    pub cumulative_nano: String,
}

/// A settlement as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementJson {
    /// Settling transaction, hex.
    pub tx_hash: String,
    /// Its logical time (decimal string).
    pub lt: String,
    /// Cost settled, nanoTON (decimal string).
    pub cost_nano: String,
    /// Worker paid.
    pub worker: String,
}

impl From<&SettlementInfo> for SettlementJson {
    fn from(s: &SettlementInfo) -> Self {
        Self {
            tx_hash: s.tx_hash.clone(),
            lt: s.lt.to_string(),
            cost_nano: s.cost.to_string(),
            worker: s.worker.clone(),
        }
    }
}

/// Machine-readable name of an evidence kind.
pub fn kind_name(k: EvidenceKind) -> &'static str {
    match k {
        EvidenceKind::SevSnp => "sev_snp",
        EvidenceKind::Tdx => "tdx",
        EvidenceKind::Simulated => "simulated",
    }
}

impl From<&JobSummary> for CocoonFields {
    fn from(s: &JobSummary) -> Self {
        Self {
            job: s.job.clone(),
            cost_nano: s.cost.to_string(),
            max_cost_nano: s.max_cost.to_string(),
            worker: s.worker.clone(),
            attestation_kind: kind_name(s.attestation_kind),
            attestation: s.attestation_kind.to_string(),
            receipt_hash: s.receipt_hash.clone(),
            receipt: base64::engine::general_purpose::STANDARD.encode(&s.receipt_boc),
            open_tx: s.open_tx.clone(),
            open_ms: u64::try_from(s.open_time.as_millis()).unwrap_or(u64::MAX),
            settlement: s.settlement.as_ref().map(SettlementJson::from),
            channel: s.channel.as_ref().map(|c| ChannelJson {
                escrow: c.escrow.clone(),
                id: c.channel_id.to_string(),
                seq: c.seq,
                cumulative_nano: c.cumulative.to_string(),
            }),
        }
    }
}

/// OpenAI `finish_reason`.
pub fn finish_reason(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// OpenAI `usage`.
pub fn usage(s: &JobSummary) -> Value {
    json!({
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "total_tokens": u64::from(s.prompt_tokens) + u64::from(s.completion_tokens),
    })
}

/// Which text endpoint a response belongs to; it decides the object names and the choice shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextApi {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// Identity shared by every chunk of one response.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `chatcmpl-…` / `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: &'static str,
    /// Which endpoint.
    pub api: TextApi,
}

impl ResponseMeta {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.api, chunk) {
            (TextApi::Chat, false) => "chat.completion",
            (TextApi::Chat, true) => "chat.completion.chunk",
            (TextApi::Completion, _) => "text_completion",
        }
    }

    /// The complete (non-streamed) response.
    pub fn full(&self, text: &str, s: &JobSummary) -> Value {
        let choice = match self.api {
            TextApi::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": finish_reason(s.finish_reason),
            }),
            TextApi::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason(s.finish_reason),
            }),
        };
        json!({
            "id": self.id, "object": self.object(false), "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [choice],
            "usage": usage(s),
            "cocoon": CocoonFields::from(s),
        })
    }

    /// A streamed chunk carrying `text` (and, for chat, the role in the first chunk).
    pub fn delta(&self, text: &str, first: bool, include_usage: bool) -> Value {
        let choice = match self.api {
            TextApi::Chat if first => {
                json!({"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": null})
            }
            TextApi::Chat => {
                json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null})
            }
            TextApi::Completion => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": null})
            }
        };
        self.chunk(vec![choice], include_usage.then_some(Value::Null))
    }

    /// The chunk that ends the choice, with `finish_reason` and the Cocoon fields.
    pub fn finish(&self, s: &JobSummary, include_usage: bool) -> Value {
        let choice = match self.api {
            TextApi::Chat => {
                json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(s.finish_reason)})
            }
            TextApi::Completion => {
                json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish_reason(s.finish_reason)})
            }
        };
        let mut v = self.chunk(vec![choice], include_usage.then_some(Value::Null));
        v["cocoon"] = json!(CocoonFields::from(s));
        v
    }

    /// The final usage chunk (`stream_options.include_usage`): no choices, the usage, the Cocoon fields.
    pub fn usage_chunk(&self, s: &JobSummary) -> Value {
        let mut v = self.chunk(Vec::new(), Some(usage(s)));
        v["cocoon"] = json!(CocoonFields::from(s));
        v
    }

    fn chunk(&self, choices: Vec<Value>, usage: Option<Value>) -> Value {
        let mut v = json!({
            "id": self.id, "object": self.object(true), "created": self.created, "model": self.model,
            "system_fingerprint": null, "choices": choices,
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        v
    }
}

/// The `/v1/embeddings` response.
pub fn embeddings(
    model: &'static str,
    vectors: &[Vec<f32>],
    format: EncodingFormat,
    s: &JobSummary,
) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match format {
                EncodingFormat::Float => json!(v),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": s.prompt_tokens, "total_tokens": s.prompt_tokens},
        "cocoon": CocoonFields::from(s),
    })
}

/// One entry of `/v1/models`.
pub fn model(m: &ModelInfo) -> Value {
    json!({
        "id": m.spec.name,
        "object": "model",
        "created": 0,
        "owned_by": "cocoon",
        "cocoon": {
            "model_id": m.spec.id,
            "kind": m.spec.kind,
            "revision": m.spec.revision,
            "weights_sha256": m.spec.weights_sha256,
            "registry_hash": hex::encode(m.spec.registry_hash()),
            "attested_workers": m.attested_workers,
            "available_workers": m.available,
            "attestation_kinds": m.attestation_kinds.iter().map(|k| kind_name(*k)).collect::<Vec<_>>(),
            "min_price_in_nano": m.min_price_in.map(|p| p.to_string()),
            "min_price_out_nano": m.min_price_out.map(|p| p.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    pub(crate) fn summary() -> JobSummary {
        JobSummary {
            job: "0:ab:7".into(),
            finish_reason: FinishReason::Length,
            prompt_tokens: 5,
            completion_tokens: 3,
            cost: u128::from(u64::MAX) + 1,
            max_cost: u128::MAX,
            worker: "0:cd".into(),
            attestation_kind: EvidenceKind::Simulated,
            receipt_hash: "ee".repeat(32),
            receipt_boc: vec![1, 2, 3],
            open_tx: None,
            open_time: Duration::from_millis(1500),
            settlement: None,
            channel: None,
        }
    }

    #[test]
    fn full_chat_response_has_usage_and_exact_cost() {
        let m = ResponseMeta {
            id: "chatcmpl-1".into(),
            created: 9,
            model: "smollm2-135m-instruct",
            api: TextApi::Chat,
        };
        let v = m.full("hello", &summary());
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "hello");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
        );
        assert_eq!(v["cocoon"]["cost_nano"], "18446744073709551616");
        assert_eq!(v["cocoon"]["max_cost_nano"], u128::MAX.to_string());
        assert_eq!(v["cocoon"]["attestation"], "UNATTESTED (SIMULATED TEE)");
        assert_eq!(v["cocoon"]["attestation_kind"], "simulated");
        assert_eq!(v["cocoon"]["open_ms"], 1500);
        assert_eq!(v["cocoon"]["settlement"], Value::Null);
    }

    #[test]
    fn chunks_follow_the_openai_shapes() {
        let m = ResponseMeta {
            id: "cmpl-1".into(),
            created: 9,
            model: "smollm2-135m-instruct",
            api: TextApi::Chat,
        };
        let first = m.delta("He", true, true);
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role": "assistant", "content": "He"})
        );
        assert_eq!(first["usage"], Value::Null);
        assert!(m.delta("llo", false, false).get("usage").is_none());
        let fin = m.finish(&summary(), true);
        assert_eq!(fin["choices"][0]["finish_reason"], "length");
        let u = m.usage_chunk(&summary());
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"]["total_tokens"], 8);
        let c = ResponseMeta {
            api: TextApi::Completion,
            ..m
        };
        assert_eq!(c.delta("x", true, false)["choices"][0]["text"], "x");
        assert_eq!(c.full("x", &summary())["object"], "text_completion");
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32() {
        let v = embeddings(
            "all-minilm-l6-v2",
            &[vec![1.0, -0.5]],
            EncodingFormat::Base64,
            &summary(),
        );
        let b = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(b, [1.0f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat());
        let v = embeddings(
            "all-minilm-l6-v2",
            &[vec![0.25]],
            EncodingFormat::Float,
            &summary(),
        );
        assert_eq!(v["data"][0]["embedding"], json!([0.25]));
        assert_eq!(v["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}));
    }
}
