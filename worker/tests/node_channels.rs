//! The worker node in channel mode (protocol v2) on localnet with a Root v2: the node registers
//! its Worker v2, the real relayer admits it by that record, a client opens a channel on its
//! Escrow and sends several requests through `POST /v2/requests` (real SmolLM2), checking every
//! receipt with its `ChannelSession` before signing the next voucher. Also: a request beyond the
//! client's credit and one beyond the channel's amount are refused, a replayed seq gets the
//! receipt already signed (never a second one, across a restart too), a voucher pushed through
//! `/v2/vouchers` is the one the node settles, once, on shutdown — and the Escrow's books match
//! to the nanoTON. The settlement loop and the renewal run with the node sending from a
//! highload wallet (`--wallet.highload`), which then owns the Worker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cocoon_relayer::RelayerConfig;
use cocoon_relayer::service::{self, ChainConfig, RelayerHandle, ServiceConfig};
use cocoon_sdk::chain::ChainApi as _;
use cocoon_sdk::channel::{
    BPS, ChannelRef, ChannelSession, RequestExpectation, SignedChannelReceipt, SignedVoucher,
    request_seal_context, worker_share,
};
use cocoon_sdk::contracts::v2::{EscrowClient, OpenChannelArgs, settlement_logs};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobOutput, JobRequest};
use cocoon_sdk::relay::channel::{
    ChannelEvent, ChannelRefusal, ChannelSubmit, ChannelTicket, ChannelVoucherPush,
};
use cocoon_sdk::relay::{CHANNEL_REQUESTS_PATH, CHANNEL_VOUCHERS_PATH, PROTOCOL_VERSION};
use cocoon_sdk::seal::{ClientSeal, seal_input};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::SendOptions;
use cocoon_sdk::wallet::highload::HighloadWallet;
use cocoon_testkit::{DevChainV2, dev};
use cocoon_worker::BackendKind;
use cocoon_worker::node::{
    ChannelOptions, Node, NodeConfig, NodeHandle, RegisterOutcome, Renewal, ServedModel, register,
};
use ed25519_dalek::SigningKey;

use cocoon_sdk::attest::SimulatedProvider;
use cocoon_worker::node::NodeKeys;

const PRICE_IN: u128 = 1;
const PRICE_OUT: u128 = 1_000;

const MAX_TOKENS: u32 = 6;
/// What the node serves unpaid: one request's max cost (a ~30-token prompt, 6 output tokens
/// at 1,000 each) fits, two do not.
const CREDIT: u128 = 9_000;
const RELAYER_BPS: u16 = 100;

fn chat(question: &str) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", question)],
        GenerationParams {
            max_tokens: MAX_TOKENS,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: Some(1),
        },
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
    escrow: cocoon_sdk::tlb::TonAddress,
    worker_key: [u8; 32],
}

/// A request as sent: its seal (to open the answer) and what its receipt must match.
struct Sent {
    seal: ClientSeal,
    events: Vec<ChannelEvent>,
}

impl Client {
    async fn send(
        &self,
        channel: &ChannelRef,
        seq: u32,
        voucher: Option<SignedVoucher>,
        question: &str,
    ) -> Sent {
        let seal = seal_input(
            &chat(question).encode().unwrap(),
            &[self.worker_key],
            &request_seal_context(&self.escrow, SMOLLM2_135M.id),
        )
        .unwrap();
        let sealed = seal.sealed.clone();
        self.send_sealed(channel, seq, voucher, seal, sealed).await
    }

    /// Sends `sealed` as the request's input (what a broken or hostile client might).
    async fn send_sealed(
        &self,
        channel: &ChannelRef,
        seq: u32,
        voucher: Option<SignedVoucher>,
        seal: ClientSeal,
        sealed: Vec<u8>,
    ) -> Sent {
        let body = ChannelSubmit {
            version: PROTOCOL_VERSION,
            tickets: vec![ChannelTicket {
                channel: channel.clone(),
                seq,
                voucher,
            }],
            model_id: SMOLLM2_135M.id,
            max_tokens: MAX_TOKENS,
            sealed_input: sealed,
        };
        // The relayer sends its Welcome before it lists the session: a node that just connected
        // may be "offline" (503, nothing dispatched) for a moment.
        let mut tries = 0;
        let resp = loop {
            let resp = self
                .http
                .post(format!("{}{CHANNEL_REQUESTS_PATH}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            tries += 1;
            if resp.status().as_u16() != 503 || tries == 50 {
                break resp;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let status = resp.status().as_u16();
        let text = tokio::time::timeout(Duration::from_secs(300), resp.text())
            .await
            .expect("the stream ends")
            .unwrap();
        assert_eq!(status, 200, "{text}");
        let events = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| serde_json::from_str(d.trim()).unwrap())
            .collect();
        Sent { seal, events }
    }
}

/// Opens a served request's answer and checks its receipt with the session (which signs the
/// next voucher). Returns the receipt and the answer's text.
fn accept(
    session: &mut ChannelSession,
    worker_key: &[u8; 32],
    sent: &Sent,
) -> (SignedChannelReceipt, String) {
    let mut opener = sent.seal.response_opener(worker_key).unwrap();
    let mut outputs = Vec::new();
    let mut receipt = None;
    for e in &sent.events {
        match e {
            ChannelEvent::Chunk { data, .. } => {
                outputs.push(JobOutput::decode(&opener.open_chunk(data).unwrap()).unwrap())
            }
            ChannelEvent::Receipt {
                receipt: r, chunks, ..
            } => {
                assert_eq!(*chunks as usize, outputs.len());
                receipt = Some(r.clone());
            }
            _ => {}
        }
    }
    let receipt = receipt.unwrap_or_else(|| panic!("no receipt in {:?}", sent.events));
    // The first chunk is text on its own (sent as soon as the first token was generated).
    assert!(
        matches!(&outputs[0], JobOutput::Delta { text } if !text.is_empty()),
        "{outputs:?}"
    );
    assert!(matches!(outputs.last(), Some(JobOutput::Done { .. })));
    let text = outputs
        .iter()
        .filter_map(|o| match o {
            JobOutput::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let expect = RequestExpectation {
        model_id: SMOLLM2_135M.id,
        max_tokens: MAX_TOKENS,
        input_commitment: sent.seal.input_commitment,
        output_commitment: opener.finish().unwrap(),
    };
    session.on_receipt(&receipt, &expect).unwrap();
    (receipt, text)
}

/// The refusal of a request that was not served (then the stream failed: one ticket only).
fn refusal(sent: &Sent) -> (ChannelRefusal, Option<u32>, Option<SignedChannelReceipt>) {
    assert!(
        matches!(sent.events.last(), Some(ChannelEvent::Failed { .. })),
        "{:?}",
        sent.events
    );
    sent.events
        .iter()
        .find_map(|e| match e {
            ChannelEvent::Refused {
                code,
                expected_seq,
                receipt,
                ..
            } => Some((*code, *expected_seq, receipt.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no refusal in {:?}", sent.events))
}

async fn relayer(
    chain: &DevChainV2,
    dir: &std::path::Path,
) -> (RelayerHandle, cocoon_sdk::wallet::Wallet) {
    let wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.join("relayer.db").display()),
    );
    cfg.relayer = RelayerConfig {
        first_chunk_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(120),
        ..RelayerConfig::default()
    };
    cfg.chain = Some(ChainConfig::new(
        chain.localnet.api_config(),
        chain.root.clone(),
        wallet.clone(),
    ));
    (service::spawn(cfg).await.unwrap(), wallet)
}

async fn start(cfg: &NodeConfig) -> NodeHandle {
    let node = Node::start(cfg.clone()).await.unwrap();
    assert!(
        node.wait_connected(Duration::from_secs(30)).await,
        "node connects"
    );
    node
}

/// Localnet with a Root v2, the relayer, a registered node (not started) and a client with a
/// deposit on its Escrow.
struct World {
    chain: DevChainV2,
    _dir: tempfile::TempDir,
    relayer: RelayerHandle,
    relayer_wallet: cocoon_sdk::wallet::Wallet,
    cfg: NodeConfig,
    client: cocoon_sdk::wallet::Wallet,
    escrow: cocoon_sdk::tlb::TonAddress,
}

async fn world(channels: ChannelOptions) -> World {
    world_with(channels, false).await
}

/// The world with the node sending from the highload wallet of its key when `highload` (only
/// that wallet is funded: nothing can go out from the V5R1 one).
async fn world_with(channels: ChannelOptions, highload: bool) -> World {
    let chain = DevChainV2::on(
        cocoon_testkit::chain::start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (relayer, relayer_wallet) = relayer(&chain, dir.path()).await;

    // The node registers its Worker v2 (stake + record); start-up checks that record.
    let owner = if highload {
        let owner = cocoon_sdk::wallet::Wallet::from_mnemonic(
            &cocoon_sdk::wallet::generate_mnemonic(),
            cocoon_sdk::wallet::WalletKind::V5r1,
        )
        .unwrap();
        let h = HighloadWallet::of_wallet(&owner).unwrap();
        chain
            .localnet
            .fund(h.address(), 50 * NANO_PER_TON)
            .await
            .unwrap();
        owner
    } else {
        chain.funded_wallet(50 * NANO_PER_TON).await.unwrap()
    };
    let cfg = NodeConfig {
        chain: chain.localnet.api_config(),
        root: chain.root.clone(),
        relayer_url: relayer.url(),
        wallet: owner,
        keys: NodeKeys::load_or_create(&dir.path().join("worker-keys.json")).unwrap(),
        models: vec![ServedModel::load(SMOLLM2_135M, BackendKind::Flex)],
        attestation: Arc::new(SimulatedProvider {
            label: "node-channels-test".into(),
        }),
        price_in: PRICE_IN,
        price_out: PRICE_OUT,
        stake: dev::MIN_STAKE,
        capacity: 2,
        self_submit: false,
        highload,
        renewal: Default::default(),
        channels,
        gpu: None,
    };
    assert!(matches!(
        register(&cfg).await.unwrap(),
        RegisterOutcome::Registered { .. }
    ));
    assert!(matches!(
        register(&cfg).await.unwrap(),
        RegisterOutcome::Unchanged { .. }
    ));
    let client = chain.funded_wallet(20 * NANO_PER_TON).await.unwrap();
    let escrow = EscrowClient::for_owner(&chain.chain, &chain.root, client.address())
        .await
        .unwrap();
    escrow
        .deposit(&client, 5 * NANO_PER_TON, &SendOptions::default())
        .await
        .unwrap();
    let escrow = escrow.address().clone();
    World {
        chain,
        _dir: dir,
        relayer,
        relayer_wallet,
        cfg,
        client,
        escrow,
    }
}

impl World {
    fn escrow(&self) -> EscrowClient<'_, cocoon_sdk::chain::TonCenterClient> {
        EscrowClient::at(
            &self.chain.chain,
            self.chain.root.clone(),
            self.escrow.clone(),
        )
    }

    /// Opens a channel of `amount` to the node with one transaction; the client's session.
    async fn open(&self, amount: u128) -> (ChannelRef, ChannelSession) {
        let voucher_key = SigningKey::from_bytes(&[0x2a; 32]);
        let opened = self
            .escrow()
            .open_channel(
                &self.client,
                OpenChannelArgs {
                    amount,
                    worker_owner: self.cfg.owner().unwrap(),
                    expires_at: self.chain.now().await.unwrap() + 6 * 3600,
                    price_in: PRICE_IN,
                    price_out: PRICE_OUT,
                    voucher_key: voucher_key.verifying_key().to_bytes(),
                    relayer: self.relayer_wallet.address().clone(),
                    relayer_fee_bps: RELAYER_BPS,
                    notify_relayer: true,
                },
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let session =
            ChannelSession::open(opened.state, self.cfg.keys.receipt_key(), voucher_key).unwrap();
        (opened.channel, session)
    }

    fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.relayer.url(),
            escrow: self.escrow().address().clone(),
            worker_key: self.cfg.keys.encryption_key(),
        }
    }

    async fn push(&self, ch: &ChannelRef, voucher: &SignedVoucher) {
        let resp = reqwest::Client::new()
            .post(format!("{}{CHANNEL_VOUCHERS_PATH}", self.relayer.url()))
            .json(&ChannelVoucherPush {
                version: PROTOCOL_VERSION,
                channel: ch.clone(),
                voucher: voucher.clone(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_session_is_served_receipted_and_settled_once() {
    let w = world(ChannelOptions {
        credit: Some(CREDIT),
        // Settled on shutdown only in this test.
        settle_every: Duration::from_secs(3_600),
        ..ChannelOptions::default()
    })
    .await;
    let (chain, cfg) = (&w.chain, &w.cfg);
    let node = start(cfg).await;
    let worker_key = cfg.keys.encryption_key();
    // Room for three requests, not four.
    let amount: u128 = 20_000;
    let (ch, mut session) = w.open(amount).await;
    let escrow = w.escrow();
    let c = w.client();

    // --- seq 1: served, streamed, receipted; the session checks it and signs voucher 1
    let now = chain.now().await.unwrap();
    let t = session.next_request(now).unwrap();
    assert_eq!((t.seq, t.voucher.is_none()), (1, true));
    let s1 = c.send(&ch, 1, None, "What is the capital of France?").await;
    let (r1, text) = accept(&mut session, &worker_key, &s1);
    assert!(!text.is_empty());
    assert_eq!((r1.body.seq, &r1.body.channel), (1, &ch));
    assert_eq!(
        r1.body.cost,
        u128::from(r1.body.tokens_in) * PRICE_IN + u128::from(r1.body.tokens_out) * PRICE_OUT
    );
    let v1 = session.latest_voucher().unwrap().clone();

    // --- seq 2 without paying seq 1: beyond the credit, refused (another channel may serve)
    let unpaid = c.send(&ch, 2, None, "Name a colour.").await;
    let (code, _, _) = refusal(&unpaid);
    assert_eq!(code, ChannelRefusal::OverCredit);
    assert!(code.fails_over());

    // --- a voucher that is not the client's: refused
    let forged = cocoon_sdk::channel::Voucher { ..v1.body.clone() }
        .sign(&SigningKey::from_bytes(&[0x55; 32]))
        .unwrap();
    let bad = c.send(&ch, 2, Some(forged), "Name a colour.").await;
    assert_eq!(refusal(&bad).0, ChannelRefusal::BadVoucher);

    // --- a seq ahead of the next: refused with the seq expected
    let ahead = c.send(&ch, 5, Some(v1.clone()), "Name a colour.").await;
    let (code, expected, _) = refusal(&ahead);
    assert_eq!((code, expected), (ChannelRefusal::WrongSeq, Some(2)));

    // --- seq 2 with voucher 1: served
    let s2 = c.send(&ch, 2, Some(v1.clone()), "Name a colour.").await;
    let (r2, _) = accept(&mut session, &worker_key, &s2);
    assert_eq!(r2.body.seq, 2);
    let v2 = session.latest_voucher().unwrap().clone();

    // --- seq 2 again: the receipt already signed comes back, never a second one
    let replay = c.send(&ch, 2, Some(v2.clone()), "Something else.").await;
    let (code, expected, again) = refusal(&replay);
    assert_eq!((code, expected), (ChannelRefusal::SeqTaken, Some(3)));
    assert_eq!(again.as_ref(), Some(&r2));

    // --- requests no worker can serve end at once (bad_request does not fail over), and
    // leave seq 3 free: an input that does not open, a prompt beyond the model's context
    let seal = seal_input(
        b"{}",
        &[worker_key],
        &request_seal_context(&c.escrow, SMOLLM2_135M.id),
    )
    .unwrap();
    let mut garbage = seal.sealed.clone();
    let last = garbage.len() - 1;
    garbage[last] ^= 1;
    let broken = c.send_sealed(&ch, 3, Some(v2.clone()), seal, garbage).await;
    let (code, _, _) = refusal(&broken);
    assert_eq!(code, ChannelRefusal::BadRequest);
    assert!(!code.fails_over());
    let long = "lorem ipsum ".repeat(5_000);
    let too_long = c.send(&ch, 3, Some(v2.clone()), &long).await;
    let refused = too_long
        .events
        .iter()
        .find_map(|e| match e {
            ChannelEvent::Refused { code, message, .. } => Some((*code, message.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(refused.0, ChannelRefusal::ContextLengthExceeded);
    assert!(!refused.0.fails_over());
    assert!(refused.1.contains("context"), "{}", refused.1);

    // --- seq 3: served; seq 4 cannot fit the channel's amount
    let s3 = c.send(&ch, 3, Some(v2.clone()), "Say hello.").await;
    let (r3, _) = accept(&mut session, &worker_key, &s3);
    let v3 = session.latest_voucher().unwrap().clone();
    let cumulative = r1.body.cost + r2.body.cost + r3.body.cost;
    assert_eq!(v3.body.cumulative, cumulative);
    assert_eq!(v3.body.last_seq, 3);
    // Seq 4 could cost at least its output: 6 tokens at 1,000.
    assert!(amount - cumulative < u128::from(MAX_TOKENS) * PRICE_OUT);
    let full = c.send(&ch, 4, Some(v3.clone()), "One more?").await;
    assert_eq!(refusal(&full).0, ChannelRefusal::Exhausted);

    // --- voucher 3 pushed outside a request (what a client does before it stops)
    w.push(&ch, &v3).await;
    // The node takes it asynchronously; give it a moment before shutting down.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // --- shutdown settles once: exactly voucher 3, split as the Escrow computes it
    let before = escrow.state().await.unwrap();
    assert_eq!(node.jobs_served(), 3);
    node.shutdown().await;
    let logs = settlement_logs(&chain.chain, escrow.address(), ch.channel_id)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!((logs[0].seq(), logs[0].cumulative()), (3, cumulative));
    assert_eq!(logs[0].acc(), v3.body.acc);
    assert_eq!(logs[0].worker_owner, cfg.owner().unwrap());
    let state = escrow.channel(ch.channel_id).await.unwrap().unwrap();
    let relayer_fee = cumulative * u128::from(RELAYER_BPS) / BPS;
    let protocol_fee = cumulative * u128::from(dev::PROTOCOL_FEE_BPS) / BPS;
    let share = worker_share(cumulative, RELAYER_BPS, dev::PROTOCOL_FEE_BPS);
    assert_eq!(share, cumulative - relayer_fee - protocol_fee);
    assert_eq!(
        (state.settled, state.last_seq, state.relayer_due),
        (cumulative, 3, relayer_fee)
    );
    let after = escrow.state().await.unwrap();
    assert_eq!(after.locked, before.locked - share - protocol_fee);
    assert_eq!(after.fees_due, before.fees_due + protocol_fee);

    // --- a restarted node keeps its ledger: seq 3 again gets the same receipt, not a new one
    let node = start(cfg).await;
    let replay = c.send(&ch, 3, Some(v3.clone()), "Say hello again.").await;
    let (code, expected, again) = refusal(&replay);
    assert_eq!((code, expected), (ChannelRefusal::SeqTaken, Some(4)));
    assert_eq!(again.as_ref(), Some(&r3));
    // Nothing new to settle: the same cumulative is never submitted twice.
    node.shutdown().await;
    assert_eq!(
        settlement_logs(&chain.chain, escrow.address(), ch.channel_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_settlement_loop_settles_a_channel_nearing_its_window_end_once_per_amount() {
    // The channel's window (6 h + grace) ends within the margin: every voucher is due at once.
    // The node registered and settles from its highload wallet, which owns its Worker.
    let w = world_with(
        ChannelOptions {
            settle_every: Duration::from_millis(500),
            settle_margin_secs: 24 * 3600,
            ..ChannelOptions::default()
        },
        true,
    )
    .await;
    let node = start(&w.cfg).await;
    assert_sent_from_highload(&w, &node).await;
    let (ch, mut session) = w.open(NANO_PER_TON).await;
    let escrow = w.escrow();
    let c = w.client();
    let worker_key = w.cfg.keys.encryption_key();
    let logs = || async {
        settlement_logs(&w.chain.chain, escrow.address(), ch.channel_id)
            .await
            .unwrap()
    };
    let settled = |n: usize| async move {
        for _ in 0..120 {
            if logs().await.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        logs().await
    };

    // Nothing is settled before the client pays anything.
    let s1 = c.send(&ch, 1, None, "What is the capital of France?").await;
    accept(&mut session, &worker_key, &s1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(logs().await.is_empty());

    // Voucher 1 pushed: settled by the loop while the node serves on.
    let v1 = session.latest_voucher().unwrap().clone();
    w.push(&ch, &v1).await;
    let after_one = settled(1).await;
    assert_eq!(after_one.len(), 1);
    assert_eq!(after_one[0].cumulative(), v1.body.cumulative);

    // Voucher 2 arrives with the next request: the next settlement carries only the new amount.
    let s2 = c.send(&ch, 2, Some(v1.clone()), "Name a colour.").await;
    accept(&mut session, &worker_key, &s2);
    let v2 = session.latest_voucher().unwrap().clone();
    w.push(&ch, &v2).await;
    let after_two = settled(2).await;
    assert_eq!(after_two.len(), 2);
    assert_eq!(
        (after_two[1].seq(), after_two[1].cumulative()),
        (2, v2.body.cumulative)
    );
    let state = escrow.channel(ch.channel_id).await.unwrap().unwrap();
    assert_eq!((state.settled, state.last_seq), (v2.body.cumulative, 2));

    // Shutdown finds nothing more to settle; no amount is ever submitted twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.shutdown().await;
    assert_eq!(logs().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_v2_node_renews_its_attestation_before_expiry_and_serves_on() {
    // From the highload wallet: the Worker takes record updates from its owner only.
    let mut w = world_with(ChannelOptions::default(), true).await;
    w.cfg.renewal = Renewal {
        check_every: Duration::from_millis(200),
        ..Renewal::default()
    };
    let node = start(&w.cfg).await;
    let record_of = || async {
        cocoon_sdk::contracts::v2::WorkerClient::at(
            &w.chain.chain,
            w.chain.root.clone(),
            node.address().clone(),
        )
        .record()
        .await
        .unwrap()
    };
    let before = record_of().await;
    assert_eq!(before.evidence_hash, node.evidence().hash);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(node.renewals(), 0, "a fresh attestation is not renewed");

    // The chain clock moves into the renewal window: the node renews by itself, once.
    let now = w.chain.now().await.unwrap();
    let into_window = before.expires_at - now - w.cfg.renewal.renew_before / 2;
    w.chain
        .localnet
        .advance_time(u64::from(into_window))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while node.renewals() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not renew its attestation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = record_of().await;
    assert_eq!(
        after.evidence_hash,
        node.evidence().hash,
        "the chain holds the new evidence"
    );
    assert_ne!(after.evidence_hash, before.evidence_hash);
    assert!(after.expires_at > before.expires_at);
    // Nothing else in the record changed: keys, prices, models.
    assert_eq!(
        (
            after.receipt_key,
            after.encryption_key,
            after.price_in,
            after.price_out,
            &after.models
        ),
        (
            before.receipt_key,
            before.encryption_key,
            before.price_in,
            before.price_out,
            &before.models
        )
    );

    // The node serves channel requests with its renewed record (the relayer admits it again).
    assert!(node.wait_connected(Duration::from_secs(30)).await);
    let (ch, mut session) = w.open(NANO_PER_TON / 10).await;
    let sent = w.client().send(&ch, 1, None, "Say hello.").await;
    let (receipt, _) = accept(&mut session, &w.cfg.keys.encryption_key(), &sent);
    assert_eq!(receipt.body.seq, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(node.renewals(), 1, "renewed once, not at every check");
    assert_sent_from_highload(&w, &node).await;
    node.shutdown().await;
}

/// The node's Worker is the highload wallet's, and nothing ever went out from the V5R1 wallet of
/// the same key (it was never deployed).
async fn assert_sent_from_highload(w: &World, node: &NodeHandle) {
    let h = HighloadWallet::of_wallet(&w.cfg.wallet).unwrap();
    assert_eq!(w.cfg.owner().unwrap(), *h.address());
    let worker = cocoon_sdk::contracts::v2::RootClient::at(&w.chain.chain, w.chain.root.clone())
        .worker_address(h.address())
        .await
        .unwrap();
    assert_eq!(
        &worker,
        node.address(),
        "the highload wallet owns the Worker"
    );
    let v5 = w.chain.chain.account(w.cfg.wallet.address()).await.unwrap();
    assert_ne!(v5.status, cocoon_sdk::chain::AccountStatus::Active);
}
