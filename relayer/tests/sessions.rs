//! Worker session admission: the challenge signature and the on-chain checks.

mod common;

use cocoon_sdk::relay::PROTOCOL_VERSION;
use cocoon_sdk::relay::auth::auth_payload;
use cocoon_sdk::relay::worker::{Hello, RelayMessage, SessionErrorCode, WorkerMessage};
use cocoon_testkit::stub::StubWorker;
use ed25519_dalek::Signer as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

use common::{fast_config, start};

/// Connects by hand, lets `tamper` change the signed hello, returns the relayer's answer.
async fn handshake(
    ws_base: &str,
    stub: &StubWorker,
    tamper: impl FnOnce(&mut Hello),
) -> RelayMessage {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_base}/v1/worker"))
        .await
        .unwrap();
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("no challenge")
    };
    let RelayMessage::Challenge(c) = serde_json::from_str(&t).unwrap() else {
        panic!("not a challenge")
    };
    let key = stub.signing_key.verifying_key().to_bytes();
    let payload = auth_payload(
        PROTOCOL_VERSION,
        &c.nonce,
        &c.relayer_id,
        &stub.address,
        &key,
    );
    let mut hello = Hello {
        version: PROTOCOL_VERSION,
        worker: stub.address.clone(),
        receipt_key: key,
        encryption_key: stub.encryption_key,
        models: stub.models.clone(),
        capacity: 4,
        evidence: stub.evidence.clone(),
        signature: stub.signing_key.sign(&payload).to_bytes(),
    };
    tamper(&mut hello);
    ws.send(Message::Text(
        serde_json::to_string(&WorkerMessage::Hello(hello))
            .unwrap()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no answer: {other:?}"),
        }
    }
}

fn refused(msg: RelayMessage) -> SessionErrorCode {
    match msg {
        RelayMessage::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_registered_worker_with_a_valid_signature_is_welcomed() {
    let r = start(fast_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    r.registry.insert(stub.address.clone(), stub.on_chain());
    assert!(matches!(
        handshake(&r.ws, &stub, |_| {}).await,
        RelayMessage::Welcome(_)
    ));
    let row = r.store.worker(&stub.address).await.unwrap().unwrap();
    assert_eq!(row.receipt_key, stub.signing_key.verifying_key().to_bytes());
}

#[tokio::test]
async fn bad_signatures_and_mismatches_are_refused() {
    let r = start(fast_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    r.registry.insert(stub.address.clone(), stub.on_chain());
    let other = StubWorker::new(2, vec![1]);

    assert_eq!(
        refused(handshake(&r.ws, &stub, |h| h.signature[0] ^= 1).await),
        SessionErrorCode::BadSignature
    );
    // Signed for another address than the one claimed.
    assert_eq!(
        refused(handshake(&r.ws, &stub, |h| h.worker = other.address.clone()).await),
        SessionErrorCode::BadSignature
    );
    assert_eq!(
        refused(handshake(&r.ws, &stub, |h| h.version = 9).await),
        SessionErrorCode::UnsupportedVersion
    );
    assert_eq!(
        refused(handshake(&r.ws, &stub, |h| h.worker = "garbage".into()).await),
        SessionErrorCode::Malformed
    );
    // A validly signed hello from a worker with no contract.
    assert_eq!(
        refused(handshake(&r.ws, &other, |_| {}).await),
        SessionErrorCode::NotRegistered
    );
    // Evidence that does not hash to the registered hash (signature still valid).
    assert_eq!(
        refused(handshake(&r.ws, &stub, |h| h.evidence = b"forged".to_vec()).await),
        SessionErrorCode::NotRegistered
    );
    // An unbonding worker.
    let mut unbonding = stub.on_chain();
    unbonding.status = cocoon_relayer::registry::WorkerStatus::Unbonding;
    r.registry.insert(stub.address.clone(), unbonding);
    assert_eq!(
        refused(handshake(&r.ws, &stub, |_| {}).await),
        SessionErrorCode::NotRegistered
    );
    assert!(r.relayer.shared().sessions.is_empty());
    assert!(other.connect(&r.ws).await.is_err());
}

#[tokio::test]
async fn a_second_session_replaces_the_first() {
    let r = start(fast_config()).await;
    let stub = StubWorker::new(1, vec![1]);
    let _a = r.worker(&stub).await;
    let first = r.relayer.shared().sessions.get(&stub.address).unwrap().id;
    let _b = r.worker(&stub).await;
    let second = r.relayer.shared().sessions.get(&stub.address).unwrap().id;
    assert_ne!(first, second);
    assert_eq!(r.relayer.shared().sessions.len(), 1);
}
