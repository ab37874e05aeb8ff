//! The gateway's HTTP layer over a scripted in-test backend: the real router and server on a
//! loopback port, real HTTP requests. Checks the OpenAI response shapes, the SSE framing byte for
//! byte, the error mapping to status codes, the API key, CORS, size and time limits. (The same
//! routes over the real SDK client on localnet: gateway_client.rs.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use cocoon_cli::gateway::{
    self, Backend, BackendEvent, BackendEvents, GatewayConfig, GatewayError, JobPolicy, JobSummary,
    ModelInfo, SettlementInfo,
};
use cocoon_sdk::attest::EvidenceKind;
use cocoon_sdk::job::{FinishReason, JobRequest, ModelSpec, Task, models};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// What the scripted backend does for the next job.
#[derive(Clone)]
enum Script {
    /// Answer: text jobs echo the last message word by word, embeddings give one vector per input.
    Answer(EvidenceKind),
    /// `open_job` fails.
    OpenFails(GatewayError),
    /// Some text, then this error.
    FailsMidStream(GatewayError),
    /// Dispatched, then nothing ever again.
    Hangs,
    /// Dispatched, then this error at once (a worker's final refusal).
    RefusedAfterDispatch(GatewayError),
}

struct Scripted {
    script: Mutex<Script>,
    opened: Mutex<Vec<(u32, JobRequest, JobPolicy)>>,
}

impl Scripted {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script),
            opened: Mutex::new(Vec::new()),
        })
    }
    fn set(&self, s: Script) {
        *self.script.lock().unwrap() = s;
    }
    fn last_opened(&self) -> (u32, JobRequest, JobPolicy) {
        self.opened
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a job was opened")
    }
}

fn summary(
    kind: EvidenceKind,
    prompt_tokens: u32,
    completion_tokens: u32,
    finish: FinishReason,
) -> Box<JobSummary> {
    Box::new(JobSummary {
        job: "0:1111111111111111111111111111111111111111111111111111111111111111/5".into(),
        finish_reason: finish,
        prompt_tokens,
        completion_tokens,
        cost: 1_000 * u128::from(prompt_tokens) + 3_000 * u128::from(completion_tokens),
        max_cost: 10_000_000,
        worker: "0:2222222222222222222222222222222222222222222222222222222222222222".into(),
        attestation_kind: kind,
        receipt_hash: "ab".repeat(32),
        receipt_boc: vec![0xb5, 0xee],
        open_tx: Some("cd".repeat(32)),
        open_time: Duration::from_millis(20),
        settlement: None,
        channel: None,
    })
}

impl Backend for Scripted {
    async fn models(&self) -> Result<Vec<ModelInfo>, GatewayError> {
        Ok(models::KNOWN_MODELS
            .iter()
            .map(|m| ModelInfo {
                spec: *m,
                attested_workers: m.id,
                available: 1,
                attestation_kinds: vec![EvidenceKind::Simulated],
                min_price_in: Some(1_000),
                min_price_out: Some(3_000),
            })
            .collect())
    }

    async fn open_job(
        &self,
        model: &'static ModelSpec,
        request: JobRequest,
        policy: &JobPolicy,
    ) -> Result<BackendEvents, GatewayError> {
        self.opened
            .lock()
            .unwrap()
            .push((model.id, request.clone(), policy.clone()));
        let script = self.script.lock().unwrap().clone();
        let worker =
            "0:2222222222222222222222222222222222222222222222222222222222222222".to_owned();
        let events: Vec<Result<BackendEvent, GatewayError>> = match script {
            Script::OpenFails(e) => return Err(e),
            Script::Hangs => {
                let first = futures_util::stream::iter([Ok(BackendEvent::Dispatched {
                    worker,
                    attestation_kind: EvidenceKind::Simulated,
                })]);
                return Ok(first.chain(futures_util::stream::pending()).boxed());
            }
            Script::FailsMidStream(e) => vec![Ok(BackendEvent::Delta("partial".into())), Err(e)],
            Script::RefusedAfterDispatch(e) => vec![
                Ok(BackendEvent::Dispatched {
                    worker,
                    attestation_kind: EvidenceKind::Simulated,
                }),
                Err(e),
            ],
            Script::Answer(kind) => {
                let mut ev = vec![Ok(BackendEvent::Dispatched {
                    worker,
                    attestation_kind: kind,
                })];
                match request.task {
                    Task::Chat { messages, params } => {
                        let words: Vec<String> = messages
                            .last()
                            .unwrap()
                            .content
                            .split(' ')
                            .map(|w| format!("{w} "))
                            .collect();
                        let n = words.len().min(params.max_tokens as usize);
                        let finish = if n < words.len() {
                            FinishReason::Length
                        } else {
                            FinishReason::Stop
                        };
                        ev.extend(
                            words[..n]
                                .iter()
                                .cloned()
                                .map(|w| Ok(BackendEvent::Delta(w))),
                        );
                        ev.push(Ok(BackendEvent::Done(summary(kind, 7, n as u32, finish))));
                    }
                    Task::Completion { prompt, .. } => {
                        ev.push(Ok(BackendEvent::Delta(prompt.to_uppercase())));
                        ev.push(Ok(BackendEvent::Done(summary(
                            kind,
                            3,
                            1,
                            FinishReason::Stop,
                        ))));
                    }
                    Task::Embeddings { input } => {
                        ev.push(Ok(BackendEvent::Embeddings(
                            input
                                .iter()
                                .map(|s| vec![s.len() as f32, -0.5, 0.25])
                                .collect(),
                        )));
                        ev.push(Ok(BackendEvent::Done(summary(
                            kind,
                            input.len() as u32 * 2,
                            0,
                            FinishReason::Stop,
                        ))));
                    }
                }
                ev
            }
        };
        Ok(futures_util::stream::iter(events).boxed())
    }

    async fn settlement(&self, job: &str) -> Result<Option<SettlementInfo>, GatewayError> {
        Ok(job.ends_with("/5").then(|| SettlementInfo {
            tx_hash: "ef".repeat(32),
            lt: 77,
            cost: 13_000,
            worker: "0:22".into(),
        }))
    }
}

struct Server {
    url: String,
    backend: Arc<Scripted>,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(config: GatewayConfig) -> Server {
    let backend = Scripted::new(Script::Answer(EvidenceKind::Simulated));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        backend.clone(),
        config,
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        url,
        backend,
        http: reqwest::Client::new(),
        _stop: tx,
    }
}

impl Server {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn chat_body(content: &str) -> Value {
    json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": content}], "temperature": 0})
}

/// Splits an SSE body into its `data:` payloads, checking the framing of every event.
fn sse_payloads(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "an SSE body ends with a blank line: {body:?}"
    );
    body.trim_end_matches("\n\n")
        .split("\n\n")
        .filter(|block| !block.starts_with(':'))
        .map(|block| {
            assert_eq!(
                block.lines().count(),
                1,
                "one data line per event: {block:?}"
            );
            block
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {block:?}"))
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn chat_completion_has_openai_shape_usage_and_cocoon_fields() {
    let s = start(GatewayConfig {
        policy: JobPolicy {
            min_attestation: Some(EvidenceKind::SevSnp),
            max_price_out: Some(9),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let res = s
        .post("/v1/chat/completions", chat_body("the capital of France"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-cocoon-attestation"],
        "UNATTESTED (SIMULATED TEE)"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "smollm2-135m-instruct");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "the capital of France ", "refusal": null})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11})
    );
    assert_eq!(v["cocoon"]["cost_nano"], "19000");
    assert_eq!(v["cocoon"]["attestation_kind"], "simulated");
    assert_eq!(v["cocoon"]["receipt_hash"], "ab".repeat(32));
    assert_eq!(v["cocoon"]["receipt"], "te4=");
    // The backend got the mapped job and the configured policy.
    let (model, job, policy) = s.backend.last_opened();
    assert_eq!(model, 1);
    let Task::Chat { messages, params } = job.task else {
        panic!("{job:?}")
    };
    assert_eq!(messages[0].content, "the capital of France");
    assert_eq!(params.temperature, 0.0);
    assert_eq!(policy.min_attestation, Some(EvidenceKind::SevSnp));
    assert_eq!(policy.max_price_out, Some(9));
}

#[tokio::test]
async fn streamed_chat_is_framed_as_openai_sse_with_usage() {
    let s = start(GatewayConfig::default()).await;
    s.backend.set(Script::Answer(EvidenceKind::Tdx));
    let mut body = chat_body("one two three");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let res = s.post("/v1/chat/completions", body).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-cocoon-attestation"], "Intel TDX");
    let payloads = sse_payloads(&res.text().await.unwrap());
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let ids: std::collections::BTreeSet<_> = chunks.iter().map(|c| c["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one id per response");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three ");
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(fin["cocoon"]["attestation"], "Intel TDX");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
}

#[tokio::test]
async fn completions_json_and_stream() {
    let s = start(GatewayConfig::default()).await;
    let res = s
        .post(
            "/v1/completions",
            json!({"model": "smollm2-135m-instruct", "prompt": "abc", "max_tokens": 5}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "ABC");
    let Task::Completion { params, .. } = s.backend.last_opened().1.task else {
        panic!()
    };
    assert_eq!(params.max_tokens, 5);

    let res = s
        .post(
            "/v1/completions",
            json!({"model": "smollm2-135m-instruct", "prompt": "xy", "stream": true}),
        )
        .await;
    let payloads = sse_payloads(&res.text().await.unwrap());
    assert_eq!(payloads.len(), 3, "{payloads:?}"); // text, finish, [DONE]: no usage chunk unless asked
    let first: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(first["choices"][0]["text"], "XY");
    assert!(first.get("usage").is_none());
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let s = start(GatewayConfig::default()).await;
    let v: Value = s
        .post(
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": "hello"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"][0],
        json!({"object": "embedding", "index": 0, "embedding": [5.0, -0.5, 0.25]})
    );
    assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(v["cocoon"]["cost_nano"], "2000");

    let v: Value = s
        .post(
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": ["a", "bb"], "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let b = base64::engine::general_purpose::STANDARD
        .decode(v["data"][1]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = b
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, vec![2.0, -0.5, 0.25]);
}

#[tokio::test]
async fn models_list_and_lookup() {
    let s = start(GatewayConfig::default()).await;
    let v: Value = s
        .http
        .get(format!("{}/v1/models", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["smollm2-135m-instruct", "all-minilm-l6-v2"]);
    assert_eq!(v["data"][1]["cocoon"]["attested_workers"], 2);
    assert_eq!(
        v["data"][1]["cocoon"]["attestation_kinds"],
        json!(["simulated"])
    );
    assert_eq!(v["data"][0]["cocoon"]["min_price_out_nano"], "3000");
    let res = s
        .http
        .get(format!("{}/v1/models/all-minilm-l6-v2", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = s
        .http
        .get(format!("{}/v1/models/gpt-4", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn settlement_lookup() {
    let s = start(GatewayConfig::default()).await;
    let v: Value = s
        .http
        .get(format!("{}/v1/cocoon/jobs/0:11/5", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["settled"], true);
    assert_eq!(v["settlement"]["cost_nano"], "13000");
    assert_eq!(v["settlement"]["lt"], "77");
    let v: Value = s
        .http
        .get(format!("{}/v1/cocoon/jobs/0:11/6", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["settled"], false);
    assert!(v["settlement"].is_null());
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let v: Value = res.json().await.unwrap();
    let e = &v["error"];
    assert!(
        e["message"].is_string() && e["type"].is_string() && e["code"].is_string(),
        "OpenAI error envelope: {v}"
    );
    assert!(e.as_object().unwrap().contains_key("param"), "{v}");
    (status, v)
}

#[tokio::test]
async fn backend_failures_map_to_status_codes_streaming_or_not() {
    let s = start(GatewayConfig::default()).await;
    let cases = [
        (
            GatewayError::InsufficientBalance {
                needed: 10,
                free: 1,
            },
            402,
        ),
        (
            GatewayError::NoWorker {
                model: "m".into(),
                reason: "all busy".into(),
            },
            429,
        ),
        (
            GatewayError::AttestationRejected("measurement not allowed".into()),
            502,
        ),
        (
            GatewayError::Upstream {
                code: "relayer_unreachable",
                message: "connection refused".into(),
            },
            502,
        ),
        (GatewayError::Timeout("job expired".into()), 504),
        (GatewayError::UnknownModel("x".into()), 404),
        (GatewayError::Internal("wallet".into()), 500),
    ];
    for (err, status) in cases {
        for stream in [false, true] {
            s.backend.set(Script::OpenFails(err.clone()));
            let mut body = chat_body("hi");
            body["stream"] = json!(stream);
            let (got, v) = error_of(s.post("/v1/chat/completions", body).await).await;
            assert_eq!(got, status, "{err:?} stream={stream}: {v}");
            assert_eq!(v["error"]["code"], err.code());
        }
        s.backend.set(Script::OpenFails(err.clone()));
        let (got, _) = error_of(
            s.post(
                "/v1/embeddings",
                json!({"model": "all-minilm-l6-v2", "input": "x"}),
            )
            .await,
        )
        .await;
        assert_eq!(got, status);
    }
}

#[tokio::test]
async fn failure_mid_stream_is_an_error_event_without_done() {
    let s = start(GatewayConfig::default()).await;
    s.backend
        .set(Script::FailsMidStream(GatewayError::Upstream {
            code: "worker_failed",
            message: "worker disconnected".into(),
        }));
    let mut body = chat_body("hi");
    body["stream"] = json!(true);
    let res = s.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(res.status(), 200);
    let payloads = sse_payloads(&res.text().await.unwrap());
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    let err: Value = serde_json::from_str(&payloads[1]).unwrap();
    assert_eq!(err["error"]["code"], "worker_failed");

    // Without streaming the same failure is a 502.
    body["stream"] = json!(false);
    let (status, _) = error_of(s.post("/v1/chat/completions", body).await).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn a_job_that_never_finishes_is_a_504() {
    let s = start(GatewayConfig {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    s.backend.set(Script::Hangs);
    let (status, v) = error_of(s.post("/v1/chat/completions", chat_body("hi")).await).await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (504, "timeout")
    );
    let mut body = chat_body("hi");
    body["stream"] = json!(true);
    let res = s.post("/v1/chat/completions", body).await;
    let payloads = sse_payloads(&res.text().await.unwrap());
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "timeout");
}

#[tokio::test]
async fn bad_requests_are_400_with_the_parameter() {
    let s = start(GatewayConfig::default()).await;
    let cases = [
        (json!({"model": "smollm2-135m-instruct"}), None),
        (
            json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}], "temperature": 5}),
            Some("temperature"),
        ),
        (
            json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}], "n": 3}),
            Some("n"),
        ),
        (
            json!({"model": "all-minilm-l6-v2", "messages": [{"role": "user", "content": "x"}]}),
            Some("model"),
        ),
    ];
    for (body, param) in cases {
        let (status, v) = error_of(s.post("/v1/chat/completions", body.clone()).await).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"].as_str(), param, "{body}: {v}");
    }
    let res = s
        .http
        .post(format!("{}/v1/chat/completions", s.url))
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 400);
    let (status, _) = error_of(
        s.post(
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": []}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        s.backend.opened.lock().unwrap().is_empty(),
        "no job is opened for a bad request"
    );
    let (status, v) = error_of(
        s.http
            .get(format!("{}/v1/nope", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (404, "not_found")
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = start(GatewayConfig {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let (status, v) = error_of(
        s.post("/v1/chat/completions", chat_body(&"x".repeat(2000)))
            .await,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (413, "request_too_large")
    );
    assert!(s.backend.opened.lock().unwrap().is_empty());
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let s = start(GatewayConfig {
        api_key: Some("sk-cocoon".into()),
        ..Default::default()
    })
    .await;
    let (status, v) = error_of(s.post("/v1/chat/completions", chat_body("hi")).await).await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (401, "missing_api_key")
    );
    let res = s
        .http
        .get(format!("{}/v1/models", s.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    let (status, v) = error_of(res).await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (401, "invalid_api_key")
    );
    // Unknown routes do not reveal themselves without the key either.
    assert_eq!(
        s.http
            .get(format!("{}/v1/nope", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = s
        .http
        .get(format!("{}/v1/models", s.url))
        .bearer_auth("sk-cocoon")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.http
            .get(format!("{}/health", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_on_for_listed_origins() {
    let preflight = |s: &Server, origin: &str| {
        s.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/chat/completions", s.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let off = start(GatewayConfig::default()).await;
    let res = preflight(&off, "https://app.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = off
        .http
        .get(format!("{}/v1/models", off.url))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let on = start(GatewayConfig {
        cors_origins: vec!["https://app.example".into()],
        api_key: Some("k".into()),
        ..Default::default()
    })
    .await;
    let res = preflight(&on, "https://app.example").await.unwrap();
    assert_eq!(res.status(), 204, "preflights need no key");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(
        res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let res = preflight(&on, "https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // Error responses carry the header too, so the browser app can read the OpenAI error.
    let res = on
        .http
        .get(format!("{}/v1/models", on.url))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

/// Sends `head` raw (no body follows) and reads what comes back within `bound`.
async fn raw_answer(url: &str, head: &str, bound: Duration) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(bound, s.read(&mut buf))
        .await
        .expect("an answer within the bound")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_ten_gigabyte_body_is_refused_at_once_and_the_key_comes_first() {
    let s = start(GatewayConfig {
        api_key: Some("sk-cocoon".into()),
        ..Default::default()
    })
    .await;
    let head = |auth: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{auth}content-length: 10000000000\r\n\r\n"
        )
    };
    let bound = Duration::from_millis(500);
    // No key: refused for the key, before any of the body is read.
    let no_key = raw_answer(&s.url, &head(""), bound).await;
    assert!(no_key.starts_with("HTTP/1.1 401"), "{no_key}");
    assert!(no_key.contains("missing_api_key"), "{no_key}");
    // The right key: refused for the size, from the Content-Length alone.
    let too_large = raw_answer(&s.url, &head("authorization: Bearer sk-cocoon\r\n"), bound).await;
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    assert!(too_large.contains("request_too_large"), "{too_large}");
    assert!(s.backend.opened.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_slow_header_client_is_cut_off_while_others_are_served() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut config = GatewayConfig::default();
    config.listener.header_timeout = Duration::from_millis(500);
    let s = start(config).await;
    let mut slow = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut cut_after = None;
    for _ in 0..30 {
        let t = std::time::Instant::now();
        let res = s
            .http
            .get(format!("{}/health", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(t.elapsed() < Duration::from_millis(500));
        if slow.write_all(b"x").await.is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        let mut b = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut b)).await
        {
            cut_after = Some(started.elapsed());
            break;
        }
    }
    let cut_after = cut_after.expect("the slow client is cut off");
    assert!(cut_after < Duration::from_millis(1500), "{cut_after:?}");
}

#[tokio::test]
async fn a_flooding_client_gets_429() {
    let mut config = GatewayConfig::default();
    config.listener.rate_per_second = 5;
    config.listener.rate_burst = 5;
    let s = start(config).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let res = s
            .http
            .get(format!("{}/v1/models", s.url))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            let (_, v) = error_of(res).await;
            assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
}

#[tokio::test]
async fn an_over_long_prompt_is_400_context_length_exceeded_streamed_or_not() {
    let s = start(GatewayConfig::default()).await;
    s.backend.set(Script::RefusedAfterDispatch(
        GatewayError::ContextLengthExceeded(
            "prompt of 12031 tokens does not fit the context of 8192 tokens".into(),
        ),
    ));
    for stream in [false, true] {
        let mut body = chat_body("a very long prompt");
        body["stream"] = json!(stream);
        let (status, v) = error_of(s.post("/v1/chat/completions", body).await).await;
        assert_eq!(status, 400, "stream {stream}: {v}");
        assert_eq!(
            v["error"],
            json!({
                "message": "this model's maximum context length was exceeded: prompt of 12031 tokens does not fit the context of 8192 tokens",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }),
            "stream {stream}"
        );
    }
}
