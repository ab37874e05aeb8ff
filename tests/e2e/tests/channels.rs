//! Protocol v2 end to end (payment channels): a whole local network on a Root v2 with the real
//! relayer, real worker nodes (SmolLM2 on flex) and the real contracts on localnet.
//!
//! - several apps at once: requests with no chain transaction between them, one final settlement
//!   per used channel, and every Escrow's books exact to the nanoTON;
//! - a client that stops signing vouchers: served within its credit only, refused beyond it with
//!   `over_credit`, and the worker settles exactly the last voucher it holds;
//! - a worker that vanishes with a channel open: after the close request and the grace period,
//!   `reclaim` closes it and every unpaid nanoTON returns to the Escrow's free balance.
//!
//! Exact free balances: localnet's clock is real time, so each Escrow transaction pays a storage
//! fee out of the balance; the checks read it from the transactions (toncenter v3's
//! `description.storage_ph`) rather than allowing a tolerance.

use std::collections::BTreeMap;
use std::time::Duration;

use cocoon_e2e::{Devnet, DevnetOptions, Protocol, WorkerSetup, init_logs};
use cocoon_sdk::chain::ChainApi as _;
use cocoon_sdk::channel::{
    BPS, ChannelRef, ChannelSession, RequestExpectation, SignedVoucher, request_seal_context,
};
use cocoon_sdk::client::channels::{ChannelClient, ChannelResult};
use cocoon_sdk::contracts::v2::{EscrowClient, EscrowState, OpenChannelArgs, settlement_logs};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobOutput, JobRequest};
use cocoon_sdk::relay::channel::{ChannelEvent, ChannelRefusal, ChannelSubmit, ChannelTicket};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, PROTOCOL_VERSION};
use cocoon_sdk::seal::seal_input;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use cocoon_testkit::{dev, escrow_books};
use cocoon_worker::node::ChannelOptions;
use ed25519_dalek::SigningKey;

const MAX_TOKENS: u32 = 6;

fn chat(question: &str) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", question)],
        GenerationParams {
            max_tokens: MAX_TOKENS,
            temperature: 0.0,
            ..GenerationParams::default()
        },
    )
}

fn escrow_of<'a>(
    net: &'a Devnet,
    address: &TonAddress,
) -> EscrowClient<'a, cocoon_sdk::chain::TonCenterClient> {
    EscrowClient::at(&net.chain.chain, net.root().clone(), address.clone())
}

async fn last_lt(net: &Devnet, address: &TonAddress) -> u64 {
    net.chain
        .chain
        .account(address)
        .await
        .unwrap()
        .last_tx
        .map_or(0, |t| t.lt)
}

/// What the Escrow's transactions after `after_lt` did to its free balance besides the channels'
/// releases ([`escrow_books::free_balance_effects`]).
async fn free_balance_effects(net: &Devnet, escrow: &TonAddress, after_lt: u64) -> (u128, u128) {
    escrow_books::free_balance_effects(
        &escrow_books::transactions_after(net.api_url(), escrow, after_lt).await,
    )
}

fn protocol_fee(delta: u128) -> u128 {
    delta * u128::from(dev::PROTOCOL_FEE_BPS) / BPS
}

async fn wait_until_gone(escrow: &EscrowClient<'_, cocoon_sdk::chain::TonCenterClient>, id: u64) {
    for _ in 0..240 {
        if escrow.channel(id).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("channel {id} was not settled with its final voucher within 60 s");
}

fn settling_fast() -> ChannelOptions {
    ChannelOptions {
        settle_every: Duration::from_millis(500),
        ..ChannelOptions::default()
    }
}

async fn app(net: &Devnet, key: u8) -> ChannelClient {
    let mut config = net.channel_config();
    config.channel_amount = NANO_PER_TON / 20;
    config.top_up_below = NANO_PER_TON / 200;
    ChannelClient::connect(
        config,
        net.funded_wallet(5 * NANO_PER_TON).await.unwrap(),
        SigningKey::from_bytes(&[key; 32]),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_apps_pay_through_their_channels_and_every_escrow_balances_exactly() {
    init_logs("warn");
    // Worker 0 is the cheaper one, so the relayer lists it first and every app's requests name
    // its channel first; it takes one request at a time, and the apps' simultaneous requests it
    // refuses fail over to worker 1: both serve.
    let net = Devnet::start(DevnetOptions {
        protocol: Protocol::Channels,
        workers: vec![
            WorkerSetup {
                capacity: 1,
                price_out: 3_000,
                channels: settling_fast(),
                ..WorkerSetup::default()
            },
            WorkerSetup {
                channels: settling_fast(),
                ..WorkerSetup::default()
            },
        ],
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let apps = futures_util::future::join_all((1..=3u8).map(|k| app(&net, k))).await;

    let questions = [
        "What is the capital of France?",
        "Name three colours of the rainbow.",
        "What is two plus two?",
    ];
    // Round 1 opens each app's channels (one to each worker); rounds 2 and 3 touch no chain.
    let mut results: Vec<Vec<ChannelResult>> = vec![Vec::new(); apps.len()];
    let mut opened: Vec<(u64, u64)> = Vec::new();
    for (round, q) in questions.iter().enumerate() {
        let answers = futures_util::future::join_all(
            apps.iter()
                .map(|a| async move { a.request(&SMOLLM2_135M, chat(q)).await?.finish().await }),
        )
        .await;
        for (i, r) in answers.into_iter().enumerate() {
            let r = r.unwrap_or_else(|e| panic!("app {i}, round {round}: {e}"));
            assert!(r.usage.completion_tokens > 0 && r.cost <= r.max_cost);
            results[i].push(r);
        }
        if round == 0 {
            for a in &apps {
                assert_eq!(a.channels().len(), 2, "one channel to each worker");
                opened.push((a.transactions(), last_lt(&net, a.escrow_address()).await));
            }
        }
    }
    for (a, (txs, lt)) in apps.iter().zip(&opened) {
        assert_eq!(
            a.transactions(),
            *txs,
            "an app sent a transaction between requests"
        );
        assert_eq!(
            last_lt(&net, a.escrow_address()).await,
            *lt,
            "an Escrow changed between requests"
        );
    }
    assert!(
        net.workers.iter().all(|w| w.jobs_served() > 0),
        "both workers served: {:?}",
        net.workers
            .iter()
            .map(|w| w.jobs_served())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        net.workers.iter().map(|w| w.jobs_served()).sum::<u64>(),
        (apps.len() * questions.len()) as u64
    );

    // Every app closes its channels; the workers settle the final vouchers of the used ones.
    let mut before = Vec::new();
    for a in &apps {
        let escrow = escrow_of(&net, a.escrow_address());
        let st = escrow.state().await.unwrap();
        let lt = last_lt(&net, a.escrow_address()).await;
        let channels = a.channels();
        assert_eq!(st.locked, channels.iter().map(|c| c.amount).sum::<u128>());
        for c in &channels {
            a.close(c.channel_id).await.unwrap();
        }
        before.push((st, lt, channels));
    }
    for (a, (_, _, channels)) in apps.iter().zip(&before) {
        let escrow = escrow_of(&net, a.escrow_address());
        for c in channels.iter().filter(|c| c.seq > 0) {
            wait_until_gone(&escrow, c.channel_id).await;
        }
    }
    // Channels never used have no voucher to settle: they close after the grace period.
    if before
        .iter()
        .any(|(_, _, cs)| cs.iter().any(|c| c.seq == 0))
    {
        net.chain
            .localnet
            .advance_time(u64::from(dev::GRACE_PERIOD) + 5)
            .await
            .unwrap();
    }
    for (i, (a, (st0, lt0, channels))) in apps.iter().zip(&before).enumerate() {
        let closed = a.reclaim().await.unwrap();
        let escrow = escrow_of(&net, a.escrow_address());
        let mut paid_by_channel: BTreeMap<u64, (u128, u32)> = BTreeMap::new();
        for r in &results[i] {
            let e = paid_by_channel.entry(r.channel.channel_id).or_default();
            e.0 += r.cost;
            e.1 += 1;
        }
        let (mut released, mut fees) = (0u128, 0u128);
        for c in channels {
            let logs = settlement_logs(&net.chain.chain, a.escrow_address(), c.channel_id)
                .await
                .unwrap();
            match paid_by_channel.get(&c.channel_id) {
                Some(&(paid, n)) => {
                    assert_eq!(logs.len(), 1, "app {i} channel {}: {logs:?}", c.channel_id);
                    let log = &logs[0];
                    assert!(log.is_final());
                    assert_eq!((log.cumulative(), log.seq()), (paid, n), "app {i}");
                    assert_eq!(log.released(), Some(c.amount - paid));
                    assert!(!closed.contains(&c.channel_id));
                    released += c.amount - paid;
                    fees += protocol_fee(paid);
                }
                None => {
                    assert!(logs.is_empty());
                    assert!(
                        closed.contains(&c.channel_id),
                        "app {i} reclaimed {closed:?}"
                    );
                    released += c.amount;
                }
            }
        }
        let paid: u128 = results[i].iter().map(|r| r.cost).sum();
        assert_eq!(
            paid,
            paid_by_channel.values().map(|p| p.0).sum::<u128>(),
            "app {i}"
        );
        let st = escrow.state().await.unwrap();
        let (left, storage) = free_balance_effects(&net, a.escrow_address(), *lt0).await;
        assert_eq!((st.open_channels, st.locked), (0, 0), "app {i}");
        assert_eq!(
            st.fees_due,
            st0.fees_due + fees,
            "app {i}: protocol fees held"
        );
        // What the app had (free + locked) less exactly what it paid, less the chain's storage
        // fees, plus what its close requests' value did not spend.
        assert_eq!(
            st.free,
            st0.free + st0.locked - paid + left - storage,
            "app {i}: released {released}, paid {paid}, storage {storage}, close requests left {left}"
        );
        assert_eq!(released, st0.locked - paid);
    }
    net.stop().await;
}

/// A client that pays by hand through the relayer's channel API, so that it can stop paying.
struct Payer {
    http: reqwest::Client,
    url: String,
    escrow: TonAddress,
    worker_key: [u8; 32],
}

/// The events of one request, and whether its receipt checked (then the session signed the next
/// voucher).
async fn send(
    p: &Payer,
    session: &mut ChannelSession,
    seq: u32,
    voucher: Option<SignedVoucher>,
    question: &str,
) -> Vec<ChannelEvent> {
    let seal = seal_input(
        &chat(question).encode().unwrap(),
        &[p.worker_key],
        &request_seal_context(&p.escrow, SMOLLM2_135M.id),
    )
    .unwrap();
    let body = ChannelSubmit {
        version: PROTOCOL_VERSION,
        tickets: vec![ChannelTicket {
            channel: session.channel().clone(),
            seq,
            voucher,
        }],
        model_id: SMOLLM2_135M.id,
        max_tokens: MAX_TOKENS,
        sealed_input: seal.sealed.clone(),
    };
    let resp = p
        .http
        .post(format!("{}{CHANNEL_REQUESTS_PATH}", p.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = tokio::time::timeout(Duration::from_secs(120), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let events: Vec<ChannelEvent> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    let mut opener = seal.response_opener(&p.worker_key).unwrap();
    for e in &events {
        match e {
            ChannelEvent::Chunk { data, .. } => {
                JobOutput::decode(&opener.open_chunk(data).unwrap()).unwrap();
            }
            ChannelEvent::Receipt { receipt, .. } => {
                assert_eq!(receipt.body.channel, *session.channel());
                let expect = RequestExpectation {
                    model_id: SMOLLM2_135M.id,
                    max_tokens: MAX_TOKENS,
                    input_commitment: seal.input_commitment,
                    output_commitment: opener.finish().unwrap(),
                };
                session.on_receipt(receipt, &expect).unwrap();
                break;
            }
            _ => {}
        }
    }
    events
}

fn refused(events: &[ChannelEvent]) -> Option<ChannelRefusal> {
    events.iter().find_map(|e| match e {
        ChannelEvent::Refused { code, .. } => Some(*code),
        _ => None,
    })
}

fn receipt_cost(events: &[ChannelEvent]) -> u128 {
    events
        .iter()
        .find_map(|e| match e {
            ChannelEvent::Receipt { receipt, .. } => Some(receipt.body.cost),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no receipt in {events:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_paying_is_served_within_its_credit_and_the_worker_settles_its_last_voucher()
 {
    init_logs("warn");
    // One request's maximum cost (a short prompt at 1 nanoTON a token, 6 output tokens at 1,000)
    // fits the credit; with any output of an unpaid request beside it, it does not.
    const PRICE_IN: u128 = 1;
    const PRICE_OUT: u128 = 1_000;
    const CREDIT: u128 = 7_000;
    const RELAYER_BPS: u16 = 100;
    let mut net = Devnet::start(DevnetOptions {
        protocol: Protocol::Channels,
        workers: vec![WorkerSetup {
            price_in: PRICE_IN,
            price_out: PRICE_OUT,
            channels: ChannelOptions {
                credit: Some(CREDIT),
                // Settled on shutdown only.
                settle_every: Duration::from_secs(3_600),
                ..ChannelOptions::default()
            },
            ..WorkerSetup::default()
        }],
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let wallet = net.funded_wallet(5 * NANO_PER_TON).await.unwrap();
    // Its own chain client: the devnet is stopped piecemeal below.
    let chain = net.chain.chain.clone();
    let root = net.root().clone();
    let escrow = EscrowClient::for_owner(&chain, &root, wallet.address())
        .await
        .unwrap();
    escrow
        .deposit(&wallet, NANO_PER_TON, &SendOptions::default())
        .await
        .unwrap();
    let voucher_key = SigningKey::from_bytes(&[0x2a; 32]);
    let worker = cocoon_sdk::client::channels::read_worker_v2(
        &net.chain.chain,
        net.root(),
        &net.workers[0].address,
    )
    .await
    .unwrap()
    .expect("a Worker v2")
    .1;
    let opened = escrow
        .open_channel(
            &wallet,
            OpenChannelArgs {
                amount: NANO_PER_TON / 100,
                worker_owner: net.workers[0].owner.address().clone(),
                expires_at: net.chain.now().await.unwrap() + 6 * 3600,
                price_in: PRICE_IN,
                price_out: PRICE_OUT,
                voucher_key: voucher_key.verifying_key().to_bytes(),
                relayer: net.relayer_wallet.address().clone(),
                relayer_fee_bps: RELAYER_BPS,
                notify_relayer: true,
            },
            &SendOptions::default(),
        )
        .await
        .unwrap();
    let ch: ChannelRef = opened.channel.clone();
    let mut session = ChannelSession::open(opened.state, worker.receipt_key, voucher_key).unwrap();
    let p = Payer {
        http: reqwest::Client::new(),
        url: net.relayer_url.clone(),
        escrow: escrow.address().clone(),
        worker_key: worker.encryption_key,
    };

    // Seq 1 on credit; seq 2 paying seq 1 with voucher 1: both served.
    let s1 = send(
        &p,
        &mut session,
        1,
        None,
        "Write a long story about the sea.",
    )
    .await;
    let c1 = receipt_cost(&s1);
    let v1 = session.latest_voucher().unwrap().clone();
    assert_eq!(v1.body.cumulative, c1);
    let s2 = send(
        &p,
        &mut session,
        2,
        Some(v1.clone()),
        "Write a poem about the moon.",
    )
    .await;
    let c2 = receipt_cost(&s2);
    assert_eq!(session.latest_voucher().unwrap().body.cumulative, c1 + c2);

    // The client stops signing: voucher 1 again, or none, leaves seq 2 unpaid: refused.
    for stale in [Some(v1.clone()), None] {
        let s3 = send(&p, &mut session, 3, stale, "Name a colour.").await;
        assert_eq!(refused(&s3), Some(ChannelRefusal::OverCredit), "{s3:?}");
        assert!(matches!(s3.last(), Some(ChannelEvent::Failed { .. })));
    }
    assert_eq!(net.workers[0].jobs_served(), 2);

    // The node shuts down and settles the last voucher it holds: voucher 1, not the unpaid seq 2.
    let st0: EscrowState = escrow.state().await.unwrap();
    net.stop_worker(0).await;
    let logs = settlement_logs(&chain, escrow.address(), ch.channel_id)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!((logs[0].seq(), logs[0].cumulative()), (1, c1));
    assert!(!logs[0].is_final());
    assert_eq!(logs[0].acc(), v1.body.acc);
    let state = escrow.channel(ch.channel_id).await.unwrap().unwrap();
    let relayer_fee = c1 * u128::from(RELAYER_BPS) / BPS;
    let share = cocoon_sdk::channel::worker_share(c1, RELAYER_BPS, dev::PROTOCOL_FEE_BPS);
    assert_eq!(
        (state.settled, state.last_seq, state.relayer_due),
        (c1, 1, relayer_fee)
    );
    let st = escrow.state().await.unwrap();
    assert_eq!(st.locked, st0.locked - share - protocol_fee(c1));
    assert_eq!(st.fees_due, st0.fees_due + protocol_fee(c1));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_channel_of_a_vanished_worker_is_reclaimed_after_its_grace_period() {
    init_logs("warn");
    let mut net = Devnet::start(DevnetOptions {
        protocol: Protocol::Channels,
        ..DevnetOptions::default()
    })
    .await
    .unwrap();
    let a = app(&net, 7).await;
    let r = a
        .request(&SMOLLM2_135M, chat("What is the capital of France?"))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    let channel = a.channels().pop().unwrap();
    assert_eq!(
        (channel.channel_id, channel.paid),
        (r.channel.channel_id, r.cost)
    );

    // The worker goes away with the channel open (what it settles on its way out, if it holds
    // the voucher already, is paid; nothing else can be).
    net.stop_worker(0).await;
    let escrow = escrow_of(&net, a.escrow_address());
    let settled = escrow
        .channel(channel.channel_id)
        .await
        .unwrap()
        .expect("still open")
        .settled;
    assert!(settled == 0 || settled == r.cost, "settled {settled}");
    let request = a
        .request(&SMOLLM2_135M, chat("Anyone there?"))
        .await
        .map(|_| ());
    assert!(request.is_err(), "no worker serves: {request:?}");

    // The app asks to close; no one settles; after the grace period reclaim closes the channel.
    a.close(channel.channel_id).await.unwrap();
    let st0 = escrow.state().await.unwrap();
    let lt0 = last_lt(&net, a.escrow_address()).await;
    assert_eq!(
        a.reclaim().await.unwrap(),
        Vec::<u64>::new(),
        "not before the grace period"
    );
    net.chain
        .localnet
        .advance_time(u64::from(dev::GRACE_PERIOD) + 5)
        .await
        .unwrap();
    assert_eq!(a.reclaim().await.unwrap(), vec![channel.channel_id]);
    assert!(escrow.channel(channel.channel_id).await.unwrap().is_none());
    let st = escrow.state().await.unwrap();
    let (left, storage) = free_balance_effects(&net, a.escrow_address(), lt0).await;
    assert_eq!(left, 0, "no close request after the mark");
    assert_eq!((st.open_channels, st.locked), (0, 0));
    assert_eq!(st.fees_due, st0.fees_due);
    // Every unpaid nanoTON is free again: the amount less what was settled, to the nanoTON (the
    // relayer fees the settlement accrued left with the close).
    assert_eq!(st.free, st0.free + channel.amount - settled - storage);
    net.stop().await;
}
