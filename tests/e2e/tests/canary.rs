//! Confidentiality, end to end: a canary string in a prompt never appears in plaintext in the
//! relayer's database, in any log line of any component (relayer, worker, sdk) at debug level,
//! or in the bytes on the client↔relayer and worker↔relayer links — while the job itself works.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cocoon_e2e::proxy::TcpProxy;
use cocoon_e2e::{Devnet, DevnetOptions};
use cocoon_sdk::client::{Client, JobOptions};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;

const CANARY: &str = "CANARY-7f3a9c-purple-giraffe";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_prompt_never_leaves_client_and_worker_in_plaintext() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(
            "debug,wgpu_core=warn,wgpu_hal=warn,naga=warn,cubecl=warn,burn=warn,hyper=info,h2=info",
        )
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let mut net = Devnet::start(DevnetOptions::default()).await.unwrap();
    // The client reaches the relayer through a recording proxy.
    let client_link = TcpProxy::start(net.relayer_addr()).await.unwrap();
    let mut config = net.client_config();
    config.relayer_url = format!("http://{}", client_link.addr());
    let app = Client::connect(config, net.funded_wallet(20 * NANO_PER_TON).await.unwrap())
        .await
        .unwrap();
    app.deposit(2 * NANO_PER_TON).await.unwrap();

    let chat = JobRequest::chat(
        vec![ChatMessage::new(
            "user",
            format!("Repeat exactly: {CANARY}"),
        )],
        GenerationParams {
            max_tokens: 24,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    );
    let plaintext = chat.encode().unwrap();
    assert!(
        contains(&plaintext, CANARY),
        "the scanner finds the canary where it is"
    );
    let r = app
        .open_job(SMOLLM2_135M.name, chat, JobOptions::default())
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(r.usage.completion_tokens > 0);
    let e = JobRequest::embeddings(vec![format!("{CANARY} in an embedding")]);
    let r2 = app
        .open_job(ALL_MINILM_L6_V2.name, e, JobOptions::default())
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    app.verify_settlement(&r).await.unwrap();
    app.verify_settlement(&r2).await.unwrap();

    let worker_link = net.workers[0].proxy.recorded();
    let client_bytes = client_link.recorded();
    assert!(
        client_bytes.len() > plaintext.len() && worker_link.len() > plaintext.len(),
        "the links carried the jobs"
    );
    assert!(
        !contains(&client_bytes, CANARY),
        "canary on the client↔relayer link"
    );
    assert!(
        !contains(&worker_link, CANARY),
        "canary on the worker↔relayer link"
    );
    let job_id = r.job.job_id.to_string();
    let logs = logs.0.lock().unwrap().clone();
    assert!(
        contains(&logs, &job_id) || contains(&logs, &r.job.escrow),
        "logs were captured"
    );
    assert!(!contains(&logs, CANARY), "canary in a log line");
    net.stop_relayer().await.unwrap();
    let mut db = Vec::new();
    for entry in std::fs::read_dir(net.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("relayer.sqlite")
        {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(db.len() > 4096, "the relayer's database was found");
    assert!(!contains(&db, CANARY), "canary in the relayer's database");
}
