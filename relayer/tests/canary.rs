//! The canary rule: a prompt sealed by the client never appears in plaintext in the relayer's
//! database, its logs, or its traffic (the API answers and the frames it sends workers).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use cocoon_sdk::relay::client::StreamEvent;
use cocoon_sdk::seal::{EncryptionKeyPair, JobContext, seal_input};
use cocoon_sdk::tlb::TonAddress;
use cocoon_testkit::stub::StubWorker;
use common::{fast_config, opened, start};

const CANARY: &[u8] = b"CANARY-7f3a1c: the secret prompt that must stay sealed";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `haystack` holds the canary in plaintext (raw, hex or base64).
fn leaks(haystack: &[u8]) -> bool {
    let forms = [
        CANARY.to_vec(),
        hex::encode(CANARY).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(CANARY)
            .into_bytes(),
    ];
    forms
        .iter()
        .any(|f| haystack.windows(f.len()).any(|w| w == f.as_slice()))
}

#[tokio::test]
async fn a_sealed_canary_prompt_never_appears_in_plaintext() {
    assert!(
        leaks(&[b"xx".as_slice(), CANARY, b"yy"].concat()),
        "the detector finds a plaintext canary"
    );
    let logs = Capture::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let r = start(fast_config()).await;
    let keys = EncryptionKeyPair::from_seed(&[42; 32]);
    let mut stub = StubWorker::new(1, vec![1]);
    stub.encryption_key = keys.public_key();
    let _h = r.worker(&stub).await;

    let mut job = opened(1, 1, b"");
    let ctx = JobContext {
        escrow: TonAddress::from_hex_str(&job.job.escrow).unwrap(),
        job_id: 1,
        model_id: job.model_id,
    };
    let sealed = seal_input(CANARY, &[keys.public_key()], &ctx).unwrap();
    assert!(!leaks(&sealed.sealed));
    job.input_commitment = sealed.input_commitment;
    r.store.insert_opened(&job).await.unwrap();

    let resp = r.submit(&job.job, &sealed.sealed, &[&stub.address]).await;
    assert_eq!(resp.status(), 202);
    assert!(!leaks(&resp.bytes().await.unwrap()));
    let events = r.stream(&job.job).await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Receipt { .. })),
        "{events:?}"
    );
    assert!(
        !leaks(serde_json::to_string(&events).unwrap().as_bytes()),
        "SSE traffic"
    );
    let status = r
        .client
        .get(format!("{}/v1/jobs/{}/1", r.http, job.job.escrow))
        .bearer_auth(common::OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(!leaks(&status));
    // What the relayer sent the worker is exactly the sealed bytes.
    assert_eq!(
        r.store
            .sealed_input(&job.job)
            .await
            .unwrap()
            .unwrap()
            .ciphertext,
        sealed.sealed
    );

    let path = r.db.path.clone().unwrap();
    r.store.close().await;
    for file in [path.clone(), path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(!leaks(&bytes), "{} holds the canary", file.display());
        }
    }
    let logged = logs.0.lock().unwrap().clone();
    assert!(!logged.is_empty(), "logs were captured");
    assert!(!leaks(&logged), "logs hold the canary");
}
