//! Channel mode through the relayer on localnet with a Root v2: v2 workers admitted against
//! their Worker v2 records, channels read from their Escrows, requests streamed through, the
//! refusals (unknown channel, another relayer's channel, malformed body), failover to the next
//! ticket, and a voucher handed to the worker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::channels::{ChannelBook, ChannelReadError};
use cocoon_relayer::{Relayer, RelayerConfig, StaticRegistry, Store};
use cocoon_sdk::channel::ChannelState;
use futures_util::future::BoxFuture;

use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::TonCenterConfig;
use cocoon_sdk::channel::{ChannelRef, Voucher};
use cocoon_sdk::contracts::v2::{EscrowClient, OpenChannelArgs};
use cocoon_sdk::relay::channel::{
    ChannelEvent, ChannelRefusal, ChannelSubmit, ChannelTicket, ChannelVoucherPush,
};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, CHANNEL_VOUCHERS_PATH, PROTOCOL_VERSION};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, Wallet};
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::{DevChainV2, RegisteredWorker, StubWorker};
use ed25519_dalek::SigningKey;

const MODEL: u32 = 1;
const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;

/// A stub speaking channel mode with the identity of a registered v2 worker.
fn stub_of(w: &RegisteredWorker) -> StubWorker {
    let mut s = StubWorker::new(0, vec![MODEL]);
    s.signing_key = w.signing.clone();
    s.address = w.address.to_hex();
    s.encryption_key = w.enc.public_key();
    s.evidence = w.evidence.encode();
    s.prices = (PRICE_IN as u64, PRICE_OUT as u64);
    s
}

async fn open(
    chain: &DevChainV2,
    escrow: &EscrowClient<'_, cocoon_sdk::chain::TonCenterClient>,
    client: &Wallet,
    w: &RegisteredWorker,
    relayer: &TonAddress,
    key: &SigningKey,
) -> ChannelRef {
    let now = chain.now().await.unwrap();
    escrow
        .open_channel(
            client,
            OpenChannelArgs {
                amount: NANO_PER_TON,
                worker_owner: w.owner.address().clone(),
                expires_at: now + 3600,
                price_in: PRICE_IN,
                price_out: PRICE_OUT,
                voucher_key: key.verifying_key().to_bytes(),
                relayer: relayer.clone(),
                relayer_fee_bps: 100,
                notify_relayer: true,
            },
            &SendOptions::default(),
        )
        .await
        .unwrap()
        .channel
}

fn request(tickets: Vec<(ChannelRef, u32)>) -> ChannelSubmit {
    ChannelSubmit {
        version: PROTOCOL_VERSION,
        tickets: tickets
            .into_iter()
            .map(|(channel, seq)| ChannelTicket {
                channel,
                seq,
                voucher: None,
            })
            .collect(),
        model_id: MODEL,
        max_tokens: 64,
        sealed_input: b"sealed input".to_vec(),
    }
}

/// Posts a request: its status and, for a stream, its events.
async fn post(
    http: &reqwest::Client,
    base: &str,
    body: &ChannelSubmit,
) -> (u16, Vec<ChannelEvent>, String) {
    let resp = http
        .post(format!("{base}{CHANNEL_REQUESTS_PATH}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let events = if status == 200 {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| serde_json::from_str(d.trim()).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    (status, events, text)
}

#[tokio::test]
async fn channel_requests_route_through_a_v2_relayer() {
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(MODEL, [0xa1; 32])]),
    )
    .await
    .unwrap();
    let w1 = chain
        .register_worker(7, &[MODEL], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let w2 = chain
        .register_worker(9, &[MODEL], PRICE_IN, PRICE_OUT)
        .await
        .unwrap();
    let relayer_wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let other_relayer = chain.funded_wallet(NANO_PER_TON).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
    );
    cfg.chain = Some(ChainConfig::new(
        TonCenterConfig::new(chain.localnet.url().to_owned()),
        chain.root.clone(),
        relayer_wallet.clone(),
    ));
    let relayer = service::spawn(cfg).await.unwrap();
    let base = relayer.url();
    let ws = base.replacen("http", "ws", 1);

    // v2 workers are admitted against their Worker v2 records; w1 refuses with a code that
    // fails over, w2 serves.
    let mut s1 = stub_of(&w1);
    s1.channel_refusal = Some(ChannelRefusal::Busy);
    let h1 = s1.connect(&ws).await.unwrap();
    let h2 = stub_of(&w2).connect(&ws).await.unwrap();
    // A stub with keys the chain does not hold is refused.
    let mut impostor = stub_of(&w2);
    impostor.signing_key = SigningKey::from_bytes(&[0x55; 32]);
    assert!(impostor.connect(&ws).await.is_err());

    let client = chain.funded_wallet(100 * NANO_PER_TON).await.unwrap();
    let escrow = EscrowClient::for_owner(&chain.chain, &chain.root, client.address())
        .await
        .unwrap();
    escrow
        .deposit(&client, 5 * NANO_PER_TON, &SendOptions::default())
        .await
        .unwrap();
    let key = SigningKey::from_bytes(&[0x2a; 32]);
    let me = relayer_wallet.address().clone();
    let ch1 = open(&chain, &escrow, &client, &w1, &me, &key).await;
    let ch2 = open(&chain, &escrow, &client, &w2, &me, &key).await;
    let foreign = open(&chain, &escrow, &client, &w2, other_relayer.address(), &key).await;
    let http = reqwest::Client::new();

    // --- a request streams through: dispatched, chunks, a receipt signed for (channel, seq)
    let (status, events, text) = post(&http, &base, &request(vec![(ch2.clone(), 1)])).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        matches!(&events[0], ChannelEvent::Dispatched { channel, attempt: 1 } if channel == &ch2)
    );
    let chunks = events
        .iter()
        .filter(|e| matches!(e, ChannelEvent::Chunk { .. }))
        .count();
    assert_eq!(chunks, 2);
    match events.last().unwrap() {
        ChannelEvent::Receipt {
            attempt,
            chunks,
            receipt,
        } => {
            assert_eq!((*attempt, *chunks), (1, 2));
            assert_eq!((&receipt.body.channel, receipt.body.seq), (&ch2, 1));
            receipt
                .verify_signature(&w2.signing.verifying_key().to_bytes())
                .unwrap();
        }
        other => panic!("expected a receipt, got {other:?}"),
    }
    assert_eq!(h2.jobs(), 1);

    // --- failover: w1 refuses as busy, the second ticket's worker serves
    let (status, events, text) = post(
        &http,
        &base,
        &request(vec![(ch1.clone(), 1), (ch2.clone(), 2)]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            ChannelEvent::Refused {
                attempt: 1,
                code: ChannelRefusal::Busy,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, ChannelEvent::Dispatched { channel, attempt: 2 } if channel == &ch2)
        )
    );
    assert!(
        matches!(events.last().unwrap(), ChannelEvent::Receipt { attempt: 2, receipt, .. } if receipt.body.seq == 2)
    );
    assert_eq!((h1.jobs(), h2.jobs()), (1, 2));

    // --- a refusal that fails over with no ticket left ends the stream failed
    let (status, events, _) = post(&http, &base, &request(vec![(ch1.clone(), 1)])).await;
    assert_eq!(status, 200);
    assert!(
        matches!(events.last().unwrap(), ChannelEvent::Failed { .. }),
        "{events:?}"
    );

    // --- an unknown channel: 404, and no worker hears of it
    let mut unknown = ch2.clone();
    unknown.channel_id = 999;
    let (status, _, text) = post(&http, &base, &request(vec![(unknown.clone(), 1)])).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("unknown"), "{text}");
    // Another relayer's channel: refused (409).
    let (status, _, text) = post(&http, &base, &request(vec![(foreign.clone(), 1)])).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("not this one"), "{text}");
    // An unknown ticket before a known one is skipped.
    let (status, events, _) = post(
        &http,
        &base,
        &request(vec![(unknown.clone(), 1), (ch2.clone(), 3)]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        events.last().unwrap(),
        ChannelEvent::Receipt { attempt: 1, .. }
    ));
    assert_eq!(h2.jobs(), 3);

    // --- malformed bodies: 400 with the reason
    for (body, needle) in [
        ("{not json".to_string(), "malformed"),
        (
            serde_json::to_string(&request(vec![])).unwrap(),
            "0 tickets",
        ),
        (
            serde_json::to_string(&request(vec![(ch2.clone(), 4), (ch2.clone(), 4)])).unwrap(),
            "named twice",
        ),
    ] {
        let resp = http
            .post(format!("{base}{CHANNEL_REQUESTS_PATH}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let text = resp.text().await.unwrap();
        assert!(text.contains(needle), "{text}");
    }

    // --- a voucher push reaches the channel's worker (202); unknown channel 404
    let voucher = Voucher {
        channel: ch2.clone(),
        cumulative: 5_000,
        last_seq: 3,
        acc: [0x33; 32],
        is_final: false,
    }
    .sign(&key)
    .unwrap();
    let push = ChannelVoucherPush {
        version: PROTOCOL_VERSION,
        channel: ch2.clone(),
        voucher: voucher.clone(),
    };
    let resp = http
        .post(format!("{base}{CHANNEL_VOUCHERS_PATH}"))
        .json(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = h2.vouchers();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, vec![push.clone()]);
    let mut lost = push.clone();
    lost.channel = unknown.clone();
    lost.voucher = Voucher {
        channel: unknown.clone(),
        ..voucher.body.clone()
    }
    .sign(&key)
    .unwrap();
    let resp = http
        .post(format!("{base}{CHANNEL_VOUCHERS_PATH}"))
        .json(&lost)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // --- the worker goes away: its channel's vouchers get 503, its requests 503
    h2.disconnect();
    let mut status = 0;
    for _ in 0..100 {
        status = http
            .post(format!("{base}{CHANNEL_VOUCHERS_PATH}"))
            .json(&push)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503);
    let (status, _, text) = post(&http, &base, &request(vec![(ch2.clone(), 4)])).await;
    assert_eq!(status, 503, "{text}");

    h1.disconnect();
    relayer.shutdown().await.unwrap();
}

/// Channels held in memory (the chain's answer without the chain), for the routing rules.
struct Book(Vec<ChannelState>);

impl ChannelBook for Book {
    fn read<'a>(
        &'a self,
        escrow: &'a TonAddress,
        id: u64,
    ) -> BoxFuture<'a, Result<Option<ChannelState>, ChannelReadError>> {
        let found = self
            .0
            .iter()
            .find(|s| &s.channel.escrow == escrow && s.channel.channel_id == id)
            .cloned();
        Box::pin(async move { Ok(found) })
    }
}

fn addr(n: u8) -> TonAddress {
    TonAddress::new(0, [n; 32].into())
}

fn state(id: u64, worker: &StubWorker, relayer: &TonAddress, expires_at: u32) -> ChannelState {
    ChannelState {
        channel: ChannelRef {
            global_id: -239,
            root: addr(1),
            escrow: addr(2),
            channel_id: id,
        },
        amount: NANO_PER_TON,
        settled: 0,
        last_seq: 0,
        expires_at,
        close_requested_at: 0,
        settle_until: expires_at + 600,
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        worker: TonAddress::from_hex_str(&worker.address).unwrap(),
        worker_owner: addr(3),
        relayer: relayer.clone(),
        relayer_fee_bps: 100,
        protocol_fee_bps: 100,
        voucher_key: [9; 32],
        relayer_due: 0,
    }
}

/// The routing rules over channels held in memory and stub workers admitted from a static
/// registry: streaming, failover, unknown/foreign/expired channels, malformed bodies, vouchers,
/// an offline worker.
#[tokio::test]
async fn channel_requests_route_by_the_rules() {
    let mut s1 = StubWorker::new(1, vec![MODEL]);
    s1.channel_refusal = Some(ChannelRefusal::Busy);
    let s2 = StubWorker::new(2, vec![MODEL]);
    let registry = Arc::new(StaticRegistry::new());
    registry.insert(s1.address.clone(), s1.on_chain());
    registry.insert(s2.address.clone(), s2.on_chain());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display()),
        4,
    )
    .await
    .unwrap();
    let relayer = Relayer::new(store, registry, RelayerConfig::default());
    let me = addr(0x77);
    let far = u32::MAX - 1_000;
    let book = Book(vec![
        state(1, &s1, &me, far),
        state(2, &s2, &me, far),
        state(3, &s2, &addr(0x78), far),
        state(4, &s2, &me, 1_000),
    ]);
    let refs: Vec<ChannelRef> = book.0.iter().map(|s| s.channel.clone()).collect();
    relayer
        .shared()
        .channels
        .configure(Arc::new(book), Some(me.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    let ws = base.replacen("http", "ws", 1);
    let h1 = s1.connect(&ws).await.unwrap();
    let h2 = s2.connect(&ws).await.unwrap();
    let http = reqwest::Client::new();
    let (ch1, ch2, foreign, expired) = (&refs[0], &refs[1], &refs[2], &refs[3]);

    // --- a request streams through
    let (status, events, text) = post(&http, &base, &request(vec![(ch2.clone(), 1)])).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        matches!(&events[0], ChannelEvent::Dispatched { channel, attempt: 1 } if channel == ch2)
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::Chunk { attempt: 1, .. }))
            .count(),
        2
    );
    match events.last().unwrap() {
        ChannelEvent::Receipt {
            attempt: 1,
            chunks: 2,
            receipt,
        } => {
            assert_eq!((&receipt.body.channel, receipt.body.seq), (ch2, 1));
            receipt
                .verify_signature(&s2.signing_key.verifying_key().to_bytes())
                .unwrap();
        }
        other => panic!("expected a receipt, got {other:?}"),
    }

    // --- failover: the first ticket's worker refuses as busy, the second serves
    let (status, events, text) = post(
        &http,
        &base,
        &request(vec![(ch1.clone(), 1), (ch2.clone(), 2)]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            ChannelEvent::Refused {
                attempt: 1,
                code: ChannelRefusal::Busy,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        matches!(events.last().unwrap(), ChannelEvent::Receipt { attempt: 2, receipt, .. } if receipt.body.seq == 2)
    );
    assert_eq!((h1.jobs(), h2.jobs()), (1, 2));
    // No ticket left after the refusal: the stream ends failed.
    let (_, events, _) = post(&http, &base, &request(vec![(ch1.clone(), 1)])).await;
    assert!(
        matches!(events.last().unwrap(), ChannelEvent::Failed { .. }),
        "{events:?}"
    );

    // --- unknown, another relayer's, expired
    let mut unknown = ch2.clone();
    unknown.channel_id = 999;
    let (status, _, text) = post(&http, &base, &request(vec![(unknown.clone(), 1)])).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("unknown"), "{text}");
    let (status, _, text) = post(&http, &base, &request(vec![(foreign.clone(), 1)])).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("not this one"), "{text}");
    let (status, _, text) = post(&http, &base, &request(vec![(expired.clone(), 1)])).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("expired"), "{text}");
    // Unknown tickets are skipped when another can be served.
    let (status, events, _) = post(
        &http,
        &base,
        &request(vec![(unknown.clone(), 1), (ch2.clone(), 3)]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        events.last().unwrap(),
        ChannelEvent::Receipt { attempt: 1, .. }
    ));

    // --- malformed bodies: 400 with the reason
    for (body, needle) in [
        ("{not json".to_string(), "malformed"),
        (
            serde_json::to_string(&request(vec![])).unwrap(),
            "0 tickets",
        ),
        (
            serde_json::to_string(&request(vec![(ch2.clone(), 4), (ch2.clone(), 4)])).unwrap(),
            "named twice",
        ),
        (
            serde_json::to_string(&ChannelSubmit {
                version: 99,
                ..request(vec![(ch2.clone(), 4)])
            })
            .unwrap(),
            "version",
        ),
    ] {
        let resp = http
            .post(format!("{base}{CHANNEL_REQUESTS_PATH}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let text = resp.text().await.unwrap();
        assert!(text.contains(needle), "{text}");
    }

    // --- a voucher reaches the channel's worker (202); unknown channel 404; offline 503
    let key = SigningKey::from_bytes(&[0x2a; 32]);
    let voucher = |channel: &ChannelRef| {
        Voucher {
            channel: channel.clone(),
            cumulative: 5_000,
            last_seq: 3,
            acc: [0x33; 32],
            is_final: false,
        }
        .sign(&key)
        .unwrap()
    };
    let push = |channel: &ChannelRef| ChannelVoucherPush {
        version: PROTOCOL_VERSION,
        channel: channel.clone(),
        voucher: voucher(channel),
    };
    let post_voucher = |p: ChannelVoucherPush| {
        let http = http.clone();
        let url = format!("{base}{CHANNEL_VOUCHERS_PATH}");
        async move {
            http.post(url)
                .json(&p)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post_voucher(push(ch2)).await, 202);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = h2.vouchers();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, vec![push(ch2)]);
    assert_eq!(post_voucher(push(&unknown)).await, 404);
    let mut mismatched = push(ch2);
    mismatched.voucher = voucher(ch1);
    assert_eq!(post_voucher(mismatched).await, 400);

    h2.disconnect();
    let mut status = 0;
    for _ in 0..100 {
        status = post_voucher(push(ch2)).await;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503);
    let (status, _, text) = post(&http, &base, &request(vec![(ch2.clone(), 4)])).await;
    assert_eq!(status, 503, "{text}");

    h1.disconnect();
    let _ = stop.send(());
    let _ = server.await;
}
