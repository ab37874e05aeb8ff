//! The plaintext of each sealed response chunk a worker sends back.

use serde::{Deserialize, Serialize};

use super::error::{JobError, Result};

/// Largest encoded output message, bytes (a chunk of text or one batch of embeddings).
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// One response message. A text job is zero or more `Delta`s then `Done`; an embeddings job is
/// one `Embeddings` then `Done`. `Done` is always the final sealed chunk, and its token counts
/// are the ones the receipt bills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobOutput {
    /// Newly generated text.
    Delta {
        /// The text (may be several tokens).
        text: String,
    },
    /// The embedding vectors, in input order.
    Embeddings {
        /// One vector per input.
        vectors: Vec<Vec<f32>>,
    },
    /// The end of the answer.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Input tokens billed.
        prompt_tokens: u32,
        /// Output tokens billed.
        completion_tokens: u32,
    },
}

/// Why a text job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` reached, or the job's max cost allowed no more tokens.
    Length,
}

impl JobOutput {
    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("output messages always serialise")
    }

    /// Parses JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_OUTPUT_BYTES {
            return Err(JobError::TooLarge {
                size: bytes.len(),
                limit: MAX_OUTPUT_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| JobError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_wire_shape() {
        let d = JobOutput::Delta {
            text: "Paris".into(),
        };
        assert_eq!(
            String::from_utf8(d.encode()).unwrap(),
            r#"{"type":"delta","text":"Paris"}"#
        );
        let done = JobOutput::Done {
            finish_reason: FinishReason::Length,
            prompt_tokens: 3,
            completion_tokens: 4,
        };
        assert_eq!(JobOutput::decode(&done.encode()).unwrap(), done);
        let e = JobOutput::Embeddings {
            vectors: vec![vec![0.5, -1.0]],
        };
        assert_eq!(JobOutput::decode(&e.encode()).unwrap(), e);
        assert!(JobOutput::decode(br#"{"type":"delta"}"#).is_err());
        assert!(
            JobOutput::decode(
                br#"{"type":"done","finish_reason":"eos","prompt_tokens":1,"completion_tokens":1}"#
            )
            .is_err()
        );
    }
}
