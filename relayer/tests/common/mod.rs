//! Shared test helpers: stores on every available engine, jobs, workers.
#![allow(dead_code)]

use cocoon_relayer::store::{OpenedJob, Store};
use cocoon_sdk::relay::JobRef;
use sha2::{Digest, Sha256};

/// A store and what keeps it alive (the SQLite temp dir).
pub struct TestStore {
    pub name: &'static str,
    pub store: Store,
    /// The SQLite file (SQLite stores only).
    pub path: Option<std::path::PathBuf>,
    /// The store URL (a second instance connects to the same database with it).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite store in a temp dir.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relayer.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    TestStore {
        name: "sqlite",
        store: Store::connect(&url, 4).await.unwrap(),
        path: Some(path),
        url,
        _dir: Some(dir),
    }
}

/// A fresh database on the PostgreSQL cluster named by `COCOON_TEST_PG_URL`, if set.
pub async fn postgres() -> Option<TestStore> {
    let Ok(base) = std::env::var("COCOON_TEST_PG_URL") else {
        eprintln!(
            "COCOON_TEST_PG_URL is not set: skipping the PostgreSQL run (scripts/lib/postgres.sh starts one)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("connect to COCOON_TEST_PG_URL");
    let db = format!("relayer_test_{}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database path");
    let url = format!("{prefix}/{db}");
    Some(TestStore {
        name: "postgres",
        store: Store::connect(&url, 4).await.unwrap(),
        path: None,
        url,
        _dir: None,
    })
}

/// SQLite always, PostgreSQL when available.
pub async fn stores() -> Vec<TestStore> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}

pub fn escrow(n: u8) -> String {
    format!("0:{}", hex::encode([n; 32]))
}

pub fn worker_addr(n: u8) -> String {
    format!("0:{}", hex::encode([0x80 | n; 32]))
}

/// An opened job whose input commitment is sha256(`input`), deadline an hour from now.
pub fn opened(escrow_n: u8, job_id: u64, input: &[u8]) -> OpenedJob {
    OpenedJob {
        job: JobRef::new(escrow(escrow_n), job_id),
        escrow_owner: format!("0:{}", hex::encode([0x11; 32])),
        model_id: 1,
        max_cost: 5_000_000_000,
        deadline: (cocoon_sdk::clock::unix_now_i64() + 3600) as u32,
        input_commitment: Sha256::digest(input).into(),
        route_worker: None,
        opened_lt: job_id.wrapping_add(1000),
    }
}

use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::{Relayer, RelayerConfig, StaticRegistry};
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_testkit::stub::StubWorker;

/// A relayer serving on a random port over a fresh SQLite store.
pub struct TestRelayer {
    pub http: String,
    pub ws: String,
    pub relayer: Relayer,
    pub registry: Arc<StaticRegistry>,
    pub store: Store,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<cocoon_relayer::Result<()>>>,
    pub db: TestStore,
}

/// The operator token of test relayers: tests read every job's stream as the operator (the
/// owner's own reads are tested in `privacy.rs`).
pub const OPERATOR_TOKEN: &str = "test-operator-token";

/// Fast timeouts so failover tests finish quickly.
pub fn fast_config() -> RelayerConfig {
    RelayerConfig {
        operator_token: Some(OPERATOR_TOKEN.into()),
        first_chunk_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        heartbeat_interval: Duration::from_secs(2),
        hello_timeout: Duration::from_secs(2),
        max_input_bytes: 64 * 1024,
        expiry_sweep: Duration::from_millis(200),
        grace_period: 0,
        ..RelayerConfig::default()
    }
}

pub async fn start(config: RelayerConfig) -> TestRelayer {
    let db = sqlite().await;
    let registry = Arc::new(StaticRegistry::new());
    let relayer = Relayer::new(db.store.clone(), registry.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relayer.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    TestRelayer {
        http: format!("http://{addr}"),
        ws: format!("ws://{addr}"),
        relayer,
        registry,
        store: db.store.clone(),
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
        db,
    }
}

impl TestRelayer {
    /// Registers a stub on "chain" and connects it.
    pub async fn worker(&self, stub: &StubWorker) -> cocoon_testkit::stub::StubHandle {
        self.registry.insert(stub.address.clone(), stub.on_chain());
        stub.connect(&self.ws).await.unwrap()
    }

    /// Opens a job "on chain" (as the watcher would record it) for `input`.
    pub async fn open(&self, job_id: u64, input: &[u8]) -> OpenedJob {
        let job = opened(1, job_id, input);
        self.store.insert_opened(&job).await.unwrap();
        job
    }

    pub async fn submit(
        &self,
        job: &JobRef,
        input: &[u8],
        candidates: &[&str],
    ) -> reqwest::Response {
        let body = serde_json::json!({
            "version": 1,
            "sealed_input": base64_encode(input),
            "candidates": candidates,
        });
        self.client
            .post(format!(
                "{}/v1/jobs/{}/{}/input",
                self.http, job.escrow, job.job_id
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Reads a job's SSE stream until its final event (or 10 s).
    pub async fn stream(&self, job: &JobRef) -> Vec<StreamEvent> {
        self.stream_within(job, Duration::from_secs(10)).await
    }

    /// Reads a job's SSE stream until its final event (or `within`).
    pub async fn stream_within(&self, job: &JobRef, within: Duration) -> Vec<StreamEvent> {
        let api = cocoon_sdk::client::RelayerApi::new(&self.http)
            .unwrap()
            .with_operator_token(OPERATOR_TOKEN);
        cocoon_testkit::collect_stream_with(&api, job, within)
            .await
            .unwrap()
    }

    /// The relayer's `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.http))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the relayer gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(40), t)
                .await
                .expect("relayer stops")
                .unwrap()
                .unwrap();
        }
    }
}

pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A worker session opened by hand (challenge, signed hello, welcome) for tests that need a
/// worker the stub cannot play.
pub type RawSession =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next relay message on a raw session.
pub async fn next_message(ws: &mut RawSession) -> Option<cocoon_sdk::relay::worker::RelayMessage> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).ok();
        }
    }
    None
}

/// Registers `stub` and opens a session for it by hand.
pub async fn raw_session(r: &TestRelayer, stub: &StubWorker) -> RawSession {
    use cocoon_sdk::relay::worker::{Hello, RelayMessage, WorkerMessage};
    use ed25519_dalek::Signer as _;
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    r.registry.insert(stub.address.clone(), stub.on_chain());
    let url = format!("{}{}", r.ws, cocoon_sdk::relay::WORKER_WS_PATH);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let Some(RelayMessage::Challenge(c)) = next_message(&mut ws).await else {
        panic!("no challenge")
    };
    let receipt_key = stub.signing_key.verifying_key().to_bytes();
    let payload = cocoon_sdk::relay::auth::auth_payload(
        cocoon_sdk::relay::PROTOCOL_VERSION,
        &c.nonce,
        &c.relayer_id,
        &stub.address,
        &receipt_key,
    );
    let hello = WorkerMessage::Hello(Hello {
        version: cocoon_sdk::relay::PROTOCOL_VERSION,
        worker: stub.address.clone(),
        receipt_key,
        encryption_key: stub.encryption_key,
        models: stub.models.clone(),
        capacity: stub.capacity,
        evidence: stub.evidence.clone(),
        signature: stub.signing_key.sign(&payload).to_bytes(),
    });
    ws.send(Message::Text(serde_json::to_string(&hello).unwrap().into()))
        .await
        .unwrap();
    let Some(RelayMessage::Welcome(_)) = next_message(&mut ws).await else {
        panic!("not welcomed")
    };
    ws
}

/// A worker that refuses every dispatch with `code`. Returns the count of dispatches it
/// received.
pub async fn refusing_worker(
    r: &TestRelayer,
    stub: &StubWorker,
    code: cocoon_sdk::relay::worker::JobFailure,
) -> Arc<std::sync::atomic::AtomicU32> {
    use cocoon_sdk::relay::worker::{JobFailed, RelayMessage, WorkerMessage};
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let mut ws = raw_session(r, stub).await;
    let seen = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Some(msg) = next_message(&mut ws).await {
            if let RelayMessage::Dispatch(d) = msg {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let refusal = WorkerMessage::JobFailed(JobFailed {
                    job: d.job,
                    attempt: d.attempt,
                    code,
                    message: format!("refused as {code}"),
                });
                let text = serde_json::to_string(&refusal).unwrap();
                if ws.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        }
    });
    seen
}
