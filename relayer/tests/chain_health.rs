//! `/health` follows the chain: a relayer whose toncenter stops answering turns `degraded` (503,
//! `chain: false` with the reason) within a few probes, and `ok` again once it answers. The chain
//! is localnet behind a fault-injecting proxy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::TonCenterConfig;
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_testkit::DevChainV2;
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::faults::{Fault, FaultProxy};
use serde_json::Value;

async fn health(url: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{url}/health")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn health_until(url: &str, what: &str, ready: impl Fn(u16, &Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = health(url).await;
        if ready(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < until,
            "{what}: last /health {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn health_is_degraded_while_the_chain_does_not_answer() {
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let proxy = FaultProxy::start(chain.localnet.url()).await;
    let wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
    );
    let mut chain_cfg = ChainConfig::new(
        TonCenterConfig::new(proxy.url.clone()),
        chain.root.clone(),
        wallet,
    );
    chain_cfg.poll = Duration::from_millis(200);
    cfg.chain = Some(chain_cfg);
    let relayer = service::spawn(cfg).await.unwrap();
    let url = relayer.url();

    let (status, body) = health(&url).await;
    assert_eq!(
        (status, &body["status"], &body["chain"]),
        (200, &"ok".into(), &true.into()),
        "{body}"
    );

    // Every request to the chain is dropped: degraded, with the reason.
    proxy.inject("/", Fault::Drop, usize::MAX);
    let body = health_until(&url, "degraded", |s, b| s == 503 && b["chain"] == false).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["store"], true, "{body}");
    assert!(
        body["chain_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    // The chain answers again: ok.
    proxy.clear();
    let body = health_until(&url, "recovered", |s, b| s == 200 && b["chain"] == true).await;
    assert!(body.get("chain_error").is_none(), "{body}");
}
