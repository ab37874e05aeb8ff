//! OpenAI request bodies and their mapping to [`JobRequest`].
//!
//! Parameters the network cannot honour (tools, `n > 1`, logprobs, penalties, token-array
//! prompts) are refused with a 400 naming the parameter, never silently ignored: an app must not
//! believe it got something it did not.

use cocoon_sdk::job::{ChatMessage, GenerationParams, JobError, JobRequest, ModelKind, ModelSpec};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::config::{DEFAULT_CHAT_MAX_TOKENS, DEFAULT_COMPLETION_MAX_TOKENS};
use super::super::error::{GatewayError, Result};

/// Parameters accepted and ignored because they do not change the answer.
const IGNORED: &[&str] = &[
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
];

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InMessage>,
    /// Sampling temperature, 0..=2.
    pub temperature: Option<f32>,
    /// Nucleus mass.
    pub top_p: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Newer name of `max_tokens`.
    pub max_completion_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Number of choices; only 1.
    pub n: Option<u32>,
    /// Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Everything else (checked: refused unless harmless).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// Model name.
    pub model: String,
    /// One prompt (a string, or a list holding one string).
    pub prompt: Prompt,
    /// Sampling temperature, 0..=2.
    pub temperature: Option<f32>,
    /// Nucleus mass.
    pub top_p: Option<f32>,
    /// Most tokens to generate (default 16, as OpenAI).
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Number of choices; only 1.
    pub n: Option<u32>,
    /// Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    /// Model name.
    pub model: String,
    /// Text or texts.
    pub input: Prompt,
    /// `float` (default) or `base64` (little-endian f32, what the Python client asks for).
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Only the model's own dimension.
    pub dimensions: Option<u32>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How embedding vectors are encoded in the response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON numbers.
    #[default]
    Float,
    /// base64 of the little-endian f32 bytes.
    Base64,
}

/// A chat message as OpenAI sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    /// `system`, `developer`, `user`, `assistant` (`tool` is refused).
    pub role: String,
    /// Text, or a list of content parts.
    pub content: Option<Content>,
    /// Everything else (`name` is ignored; `tool_calls` refused).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `text` parts are supported.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// Part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// A prompt or embeddings input: a string, or a list of strings (token arrays are refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
    /// Token ids (refused: the worker tokenizes).
    Tokens(Value),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Parses a JSON body into `T`, with a 400 that says what is wrong.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
        message: format!("invalid request body: {e}"),
        param: None,
    })
}

/// The model named by the request, checked to be of `kind`.
pub fn resolve_model(name: &str, kind: ModelKind) -> Result<&'static ModelSpec> {
    let spec = ModelSpec::by_name(name).map_err(|_| GatewayError::UnknownModel(name.to_owned()))?;
    if spec.kind != kind {
        let what = match spec.kind {
            ModelKind::Text => "a text model: use /v1/chat/completions or /v1/completions",
            ModelKind::Embedding => "an embedding model: use /v1/embeddings",
        };
        return Err(GatewayError::invalid(
            "model",
            format!("`{}` is {what}", spec.name),
        ));
    }
    Ok(spec)
}

fn check_extra(extra: &Map<String, Value>) -> Result<()> {
    for (k, v) in extra {
        if v.is_null() || IGNORED.contains(&k.as_str()) {
            continue;
        }
        let harmless = match k.as_str() {
            "frequency_penalty" | "presence_penalty" => v.as_f64() == Some(0.0),
            "logprobs" | "echo" => v.as_bool() == Some(false),
            "best_of" => v.as_u64() == Some(1),
            "logit_bias" => v.as_object().is_some_and(Map::is_empty),
            _ => false,
        };
        if !harmless {
            return Err(GatewayError::invalid(
                k,
                format!("parameter `{k}` is not supported by the Cocoon gateway"),
            ));
        }
    }
    Ok(())
}

fn check_n(n: Option<u32>) -> Result<()> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(GatewayError::invalid(
            "n",
            format!("only n=1 is supported, got {n}"),
        )),
    }
}

fn stops(stop: Option<Stop>) -> Vec<String> {
    match stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    }
}

/// Maps a [`JobError`] from validation to a 400 naming the parameter it is about.
fn job_invalid(e: JobError) -> GatewayError {
    let message = e.to_string();
    let param = [
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "messages",
        "role",
        "input",
        "prompt",
    ]
    .into_iter()
    .find(|p| message.contains(p))
    .map(|p| {
        if p == "role" {
            "messages".to_owned()
        } else {
            p.to_owned()
        }
    });
    match e {
        JobError::TooLarge { limit, .. } => GatewayError::InvalidRequest {
            message: format!(
                "the request is too large for one job (at most {limit} bytes once encoded)"
            ),
            param,
        },
        _ => GatewayError::InvalidRequest { message, param },
    }
}

fn finish(req: JobRequest) -> Result<JobRequest> {
    // encode() checks every limit the worker will check, including the encoded size.
    req.encode().map_err(job_invalid)?;
    Ok(req)
}

impl ChatCompletionRequest {
    /// The model and the sealed job this request becomes.
    pub fn to_job(&self) -> Result<(&'static ModelSpec, JobRequest)> {
        let model = resolve_model(&self.model, ModelKind::Text)?;
        check_extra(&self.extra)?;
        check_n(self.n)?;
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            messages.push(m.to_chat(i)?);
        }
        let params = GenerationParams {
            max_tokens: self
                .max_completion_tokens
                .or(self.max_tokens)
                .unwrap_or(DEFAULT_CHAT_MAX_TOKENS),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            stop: stops(self.stop.clone()),
            seed: self.seed,
        };
        Ok((model, finish(JobRequest::chat(messages, params))?))
    }

    /// Whether the streamed answer ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

impl InMessage {
    fn to_chat(&self, i: usize) -> Result<ChatMessage> {
        let param = format!("messages[{i}]");
        let role = match self.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(GatewayError::invalid(
                    format!("{param}.role"),
                    format!(
                        "message role `{other}` is not supported (system, developer, user, assistant)"
                    ),
                ));
            }
        };
        for (k, v) in &self.extra {
            if k != "name" && !v.is_null() {
                return Err(GatewayError::invalid(
                    format!("{param}.{k}"),
                    format!("message field `{k}` is not supported"),
                ));
            }
        }
        let content = match &self.content {
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(GatewayError::invalid(
                                format!("{param}.content"),
                                format!("content part `{kind}` is not supported (text only)"),
                            ));
                        }
                    }
                }
                text
            }
            None => {
                return Err(GatewayError::invalid(
                    format!("{param}.content"),
                    "message content is required",
                ));
            }
        };
        Ok(ChatMessage::new(role, content))
    }
}

impl CompletionRequest {
    /// The model and the sealed job this request becomes.
    pub fn to_job(&self) -> Result<(&'static ModelSpec, JobRequest)> {
        let model = resolve_model(&self.model, ModelKind::Text)?;
        check_extra(&self.extra)?;
        check_n(self.n)?;
        let prompt = match &self.prompt {
            Prompt::One(p) => p.clone(),
            Prompt::Many(v) if v.len() == 1 => v[0].clone(),
            Prompt::Many(v) => {
                return Err(GatewayError::invalid(
                    "prompt",
                    format!("one prompt per request, got {}", v.len()),
                ));
            }
            Prompt::Tokens(_) => {
                return Err(GatewayError::invalid(
                    "prompt",
                    "the prompt must be text (token arrays are not supported)",
                ));
            }
        };
        let params = GenerationParams {
            max_tokens: self.max_tokens.unwrap_or(DEFAULT_COMPLETION_MAX_TOKENS),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            stop: stops(self.stop.clone()),
            seed: self.seed,
        };
        Ok((model, finish(JobRequest::completion(prompt, params))?))
    }

    /// Whether the streamed answer ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

impl EmbeddingRequest {
    /// The model and the sealed job this request becomes.
    pub fn to_job(&self) -> Result<(&'static ModelSpec, JobRequest)> {
        let model = resolve_model(&self.model, ModelKind::Embedding)?;
        check_extra(&self.extra)?;
        if let Some(d) = self.dimensions {
            return Err(GatewayError::invalid(
                "dimensions",
                format!(
                    "`{}` has a fixed dimension; `dimensions` ({d}) is not supported",
                    model.name
                ),
            ));
        }
        let input = match &self.input {
            Prompt::One(s) => vec![s.clone()],
            Prompt::Many(v) => v.clone(),
            Prompt::Tokens(_) => {
                return Err(GatewayError::invalid(
                    "input",
                    "input must be a string or a list of strings (token arrays are not supported)",
                ));
            }
        };
        if let Some(i) = input.iter().position(String::is_empty) {
            return Err(GatewayError::invalid(
                "input",
                format!("input[{i}] is empty"),
            ));
        }
        Ok((model, finish(JobRequest::embeddings(input))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_sdk::job::Task;
    use serde_json::json;

    fn chat(v: Value) -> Result<(&'static ModelSpec, JobRequest)> {
        parse::<ChatCompletionRequest>(v.to_string().as_bytes())?.to_job()
    }

    fn param_of(r: Result<(&'static ModelSpec, JobRequest)>) -> String {
        match r {
            Err(GatewayError::InvalidRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn chat_maps_messages_and_sampling() {
        let (m, job) = chat(json!({
            "model": "SmolLM2-135M-Instruct",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}], "name": "bob"},
            ],
            "temperature": 0, "top_p": 0.5, "max_completion_tokens": 7, "stop": "\n", "seed": 42, "n": 1,
            "user": "u1", "frequency_penalty": 0, "stream": false,
        }))
        .unwrap();
        assert_eq!(m.id, 1);
        let Task::Chat { messages, params } = job.task else {
            panic!()
        };
        assert_eq!(
            messages,
            vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "hi there")
            ]
        );
        assert_eq!(
            params,
            GenerationParams {
                max_tokens: 7,
                temperature: 0.0,
                top_p: 0.5,
                stop: vec!["\n".into()],
                seed: Some(42)
            }
        );
    }

    #[test]
    fn chat_defaults() {
        let (_, job) = chat(json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}]})).unwrap();
        let Task::Chat { params, .. } = job.task else {
            panic!()
        };
        assert_eq!(params.max_tokens, DEFAULT_CHAT_MAX_TOKENS);
        assert_eq!((params.temperature, params.top_p), (1.0, 1.0));
    }

    #[test]
    fn chat_refusals_name_the_parameter() {
        let base = || json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}]});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert!(matches!(
            chat(json!({"model": "gpt-4", "messages": []})),
            Err(GatewayError::UnknownModel(_))
        ));
        assert_eq!(
            param_of(chat(with("model", json!("all-minilm-l6-v2")))),
            "model"
        );
        assert_eq!(param_of(chat(with("n", json!(2)))), "n");
        assert_eq!(
            param_of(chat(with("tools", json!([{"type": "function"}])))),
            "tools"
        );
        assert_eq!(
            param_of(chat(with("presence_penalty", json!(0.5)))),
            "presence_penalty"
        );
        assert_eq!(param_of(chat(with("logprobs", json!(true)))), "logprobs");
        assert_eq!(
            param_of(chat(with("temperature", json!(3.0)))),
            "temperature"
        );
        assert_eq!(param_of(chat(with("top_p", json!(0)))), "top_p");
        assert_eq!(param_of(chat(with("max_tokens", json!(0)))), "max_tokens");
        assert_eq!(
            param_of(chat(with("max_tokens", json!(1_000_000)))),
            "max_tokens"
        );
        assert_eq!(
            param_of(chat(with("stop", json!(["a", "b", "c", "d", "e"])))),
            "stop"
        );
        assert_eq!(param_of(chat(with("messages", json!([])))), "messages");
        assert_eq!(
            param_of(chat(with(
                "messages",
                json!([{"role": "tool", "content": "x"}])
            ))),
            "messages[0].role"
        );
        assert_eq!(
            param_of(chat(with("messages", json!([{"role": "user"}])))),
            "messages[0].content"
        );
        assert_eq!(
            param_of(chat(with(
                "messages",
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])
            ))),
            "messages[0].content"
        );
        assert_eq!(
            param_of(chat(with(
                "messages",
                json!([{"role": "assistant", "content": "x", "tool_calls": []}])
            ))),
            "messages[0].tool_calls"
        );
        // Wrong JSON types and non-JSON bodies are 400s too.
        assert!(matches!(
            chat(with("temperature", json!("hot"))),
            Err(GatewayError::InvalidRequest { .. })
        ));
        assert!(matches!(
            parse::<ChatCompletionRequest>(b"{not json"),
            Err(GatewayError::InvalidRequest { .. })
        ));
        assert!(matches!(
            parse::<ChatCompletionRequest>(b"{}"),
            Err(GatewayError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn oversized_prompt_is_a_400_not_a_worker_failure() {
        let big = "x".repeat(cocoon_sdk::job::request::MAX_REQUEST_BYTES);
        let r = chat(
            json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": big}]}),
        );
        assert!(
            matches!(r, Err(GatewayError::InvalidRequest { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn completions_map_and_refuse() {
        let c = |v: Value| {
            parse::<CompletionRequest>(v.to_string().as_bytes()).and_then(|r| r.to_job())
        };
        let (_, job) =
            c(json!({"model": "smollm2-135m-instruct", "prompt": ["Once upon"], "temperature": 0}))
                .unwrap();
        let Task::Completion { prompt, params } = job.task else {
            panic!()
        };
        assert_eq!(prompt, "Once upon");
        assert_eq!(params.max_tokens, DEFAULT_COMPLETION_MAX_TOKENS);
        assert_eq!(
            param_of(c(
                json!({"model": "smollm2-135m-instruct", "prompt": [1, 2, 3]})
            )),
            "prompt"
        );
        assert_eq!(
            param_of(c(
                json!({"model": "smollm2-135m-instruct", "prompt": ["a", "b"]})
            )),
            "prompt"
        );
        assert_eq!(
            param_of(c(
                json!({"model": "smollm2-135m-instruct", "prompt": "a", "echo": true})
            )),
            "echo"
        );
        assert_eq!(
            param_of(c(
                json!({"model": "smollm2-135m-instruct", "prompt": "a", "suffix": "b"})
            )),
            "suffix"
        );
        c(json!({"model": "smollm2-135m-instruct", "prompt": "a", "echo": false, "best_of": 1, "logprobs": null})).unwrap();
    }

    #[test]
    fn embeddings_map_and_refuse() {
        let e =
            |v: Value| parse::<EmbeddingRequest>(v.to_string().as_bytes()).and_then(|r| r.to_job());
        let (m, job) = e(json!({"model": "all-minilm-l6-v2", "input": "hello"})).unwrap();
        assert_eq!(m.id, 2);
        assert_eq!(job, JobRequest::embeddings(vec!["hello".into()]));
        let (_, job) = e(
            json!({"model": "all-minilm-l6-v2", "input": ["a", "b"], "encoding_format": "base64"}),
        )
        .unwrap();
        assert_eq!(job, JobRequest::embeddings(vec!["a".into(), "b".into()]));
        assert_eq!(
            param_of(e(json!({"model": "all-minilm-l6-v2", "input": []}))),
            "input"
        );
        assert_eq!(
            param_of(e(json!({"model": "all-minilm-l6-v2", "input": [""]}))),
            "input"
        );
        assert_eq!(
            param_of(e(json!({"model": "all-minilm-l6-v2", "input": [[1, 2]]}))),
            "input"
        );
        assert_eq!(
            param_of(e(
                json!({"model": "all-minilm-l6-v2", "input": "a", "dimensions": 8})
            )),
            "dimensions"
        );
        assert_eq!(
            param_of(e(json!({"model": "smollm2-135m-instruct", "input": "a"}))),
            "model"
        );
        assert!(
            e(json!({"model": "all-minilm-l6-v2", "input": "a", "encoding_format": "hex"}))
                .is_err()
        );
        let many: Vec<String> = (0..=cocoon_sdk::job::request::MAX_EMBEDDING_INPUTS)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            param_of(e(json!({"model": "all-minilm-l6-v2", "input": many}))),
            "input"
        );
    }
}
