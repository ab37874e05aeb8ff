//! The plaintext a client seals to a worker.

use serde::{Deserialize, Serialize};

use super::JOB_FORMAT_VERSION;
use super::error::{JobError, Result};
use super::models::ModelKind;

/// Largest encoded request a worker accepts, bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Most chat messages in one request.
pub const MAX_MESSAGES: usize = 256;
/// Most texts in one embeddings request.
pub const MAX_EMBEDDING_INPUTS: usize = 64;
/// Most stop sequences.
pub const MAX_STOP: usize = 4;
/// Longest stop sequence, bytes.
pub const MAX_STOP_BYTES: usize = 64;
/// Most tokens a request may ask to generate.
pub const MAX_TOKENS_LIMIT: u32 = 4096;
/// Default `max_tokens` when the client gives none.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// One job, as sealed by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Payload format version ([`JOB_FORMAT_VERSION`]).
    pub version: u16,
    /// What to compute.
    pub task: Task,
}

/// The three job kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// Chat: the worker renders the messages with the model's chat template.
    Chat {
        /// The conversation so far.
        messages: Vec<ChatMessage>,
        /// Sampling and length.
        params: GenerationParams,
    },
    /// Raw completion of a prompt.
    Completion {
        /// The prompt text.
        prompt: String,
        /// Sampling and length.
        params: GenerationParams,
    },
    /// Sentence embeddings, one vector per input.
    Embeddings {
        /// Texts to embed.
        input: Vec<String>,
    },
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// How to generate. Sampling values are not money, so floats are fine here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationParams {
    /// Most tokens to generate (the worker may stop earlier to stay within the job's max cost).
    pub max_tokens: u32,
    /// 0 = greedy; otherwise softmax temperature, at most 2.
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1].
    pub top_p: f32,
    /// Generation stops before any of these strings; they are not part of the answer.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Seed for sampling; the same seed, input and worker give the same answer.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: 1.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: None,
        }
    }
}

impl ChatMessage {
    /// A message from its parts.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

impl JobRequest {
    /// A chat job.
    pub fn chat(messages: Vec<ChatMessage>, params: GenerationParams) -> Self {
        Self {
            version: JOB_FORMAT_VERSION,
            task: Task::Chat { messages, params },
        }
    }

    /// A completion job.
    pub fn completion(prompt: impl Into<String>, params: GenerationParams) -> Self {
        Self {
            version: JOB_FORMAT_VERSION,
            task: Task::Completion {
                prompt: prompt.into(),
                params,
            },
        }
    }

    /// An embeddings job.
    pub fn embeddings(input: Vec<String>) -> Self {
        Self {
            version: JOB_FORMAT_VERSION,
            task: Task::Embeddings { input },
        }
    }

    /// The kind of model this job needs.
    pub fn model_kind(&self) -> ModelKind {
        match self.task {
            Task::Chat { .. } | Task::Completion { .. } => ModelKind::Text,
            Task::Embeddings { .. } => ModelKind::Embedding,
        }
    }

    /// Checks every limit; both the client (before sealing) and the worker (after opening) call it.
    pub fn validate(&self) -> Result<()> {
        if self.version != JOB_FORMAT_VERSION {
            return Err(JobError::UnsupportedVersion(self.version));
        }
        match &self.task {
            Task::Chat { messages, params } => {
                if messages.is_empty() || messages.len() > MAX_MESSAGES {
                    return Err(JobError::Invalid(format!(
                        "a chat needs 1 to {MAX_MESSAGES} messages, got {}",
                        messages.len()
                    )));
                }
                if let Some(m) = messages
                    .iter()
                    .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
                {
                    return Err(JobError::Invalid(format!(
                        "unknown message role {:?}",
                        m.role
                    )));
                }
                params.validate()
            }
            Task::Completion { params, .. } => params.validate(),
            Task::Embeddings { input } => {
                if input.is_empty() || input.len() > MAX_EMBEDDING_INPUTS {
                    return Err(JobError::Invalid(format!(
                        "embeddings need 1 to {MAX_EMBEDDING_INPUTS} inputs, got {}",
                        input.len()
                    )));
                }
                Ok(())
            }
        }
    }

    /// JSON bytes, after [`Self::validate`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let bytes = serde_json::to_vec(self).map_err(|e| JobError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(JobError::TooLarge {
                size: bytes.len(),
                limit: MAX_REQUEST_BYTES,
            });
        }
        Ok(bytes)
    }

    /// Parses and validates JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(JobError::TooLarge {
                size: bytes.len(),
                limit: MAX_REQUEST_BYTES,
            });
        }
        let req: Self =
            serde_json::from_slice(bytes).map_err(|e| JobError::Malformed(e.to_string()))?;
        req.validate()?;
        Ok(req)
    }
}

impl GenerationParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 || self.max_tokens > MAX_TOKENS_LIMIT {
            return Err(JobError::Invalid(format!(
                "max_tokens must be 1..={MAX_TOKENS_LIMIT}, got {}",
                self.max_tokens
            )));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(JobError::Invalid(format!(
                "temperature must be in [0, 2], got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(JobError::Invalid(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if self.stop.len() > MAX_STOP
            || self
                .stop
                .iter()
                .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
        {
            return Err(JobError::Invalid(format!(
                "at most {MAX_STOP} stop strings of 1 to {MAX_STOP_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> JobRequest {
        JobRequest::chat(
            vec![ChatMessage::new("user", "hi")],
            GenerationParams::default(),
        )
    }

    #[test]
    fn roundtrip_and_wire_shape() {
        let req = chat();
        let bytes = req.encode().unwrap();
        let s = std::str::from_utf8(&bytes).unwrap();
        assert!(
            s.starts_with(
                r#"{"version":1,"task":{"kind":"chat","messages":[{"role":"user","content":"hi"}]"#
            ),
            "{s}"
        );
        assert_eq!(JobRequest::decode(&bytes).unwrap(), req);
        let e = JobRequest::embeddings(vec!["a".into(), "b".into()]);
        assert_eq!(JobRequest::decode(&e.encode().unwrap()).unwrap(), e);
        assert_eq!(e.model_kind(), ModelKind::Embedding);
    }

    #[test]
    fn bad_payloads_are_refused_with_the_reason() {
        assert!(matches!(
            JobRequest::decode(b"not json"),
            Err(JobError::Malformed(_))
        ));
        assert!(matches!(JobRequest::decode(br#"{"version":1,"task":{"kind":"chat","messages":[],"params":{"max_tokens":1,"temperature":0,"top_p":1}},"x":1}"#), Err(JobError::Malformed(_))));
        assert!(matches!(
            JobRequest::decode(&vec![b' '; MAX_REQUEST_BYTES + 1]),
            Err(JobError::TooLarge { .. })
        ));
        let mut r = chat();
        r.version = 2;
        assert!(matches!(r.encode(), Err(JobError::UnsupportedVersion(2))));
        for bad in [
            GenerationParams {
                max_tokens: 0,
                ..Default::default()
            },
            GenerationParams {
                max_tokens: MAX_TOKENS_LIMIT + 1,
                ..Default::default()
            },
            GenerationParams {
                temperature: -0.1,
                ..Default::default()
            },
            GenerationParams {
                temperature: f32::NAN,
                ..Default::default()
            },
            GenerationParams {
                top_p: 0.0,
                ..Default::default()
            },
            GenerationParams {
                stop: vec![String::new()],
                ..Default::default()
            },
            GenerationParams {
                stop: vec!["x".into(); MAX_STOP + 1],
                ..Default::default()
            },
        ] {
            let r = JobRequest::chat(vec![ChatMessage::new("user", "hi")], bad.clone());
            assert!(matches!(r.encode(), Err(JobError::Invalid(_))), "{bad:?}");
        }
        assert!(
            JobRequest::chat(vec![], GenerationParams::default())
                .validate()
                .is_err()
        );
        assert!(
            JobRequest::chat(
                vec![ChatMessage::new("tool", "x")],
                GenerationParams::default()
            )
            .validate()
            .is_err()
        );
        assert!(JobRequest::embeddings(vec![]).validate().is_err());
    }
}
