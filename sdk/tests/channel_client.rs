//! The channel-mode client on localnet with a Root v2, a real relayer and stub workers that seal
//! real answers: channels opened once and then several requests with no chain transaction
//! between them, failover to the second channel's worker when the first is offline, a bad
//! receipt refused with no voucher signed, the sessions resumed from their saved form and topped
//! up automatically, a receipt proved against the settlement that anchors it, and the channels
//! closed and reclaimed with the amounts exact.

use std::collections::BTreeMap;

use cocoon_relayer::service::{self, ChainConfig, ServiceConfig};
use cocoon_sdk::chain::ChainApi as _;
use cocoon_sdk::channel::ChannelError;
use cocoon_sdk::client::PolicyMode;
use cocoon_sdk::client::channels::{
    ChannelClient, ChannelClientError, ChannelConfig, ChannelEvent, ChannelResult,
};
use cocoon_sdk::contracts::v2::{EscrowClient, WorkerClient};
use cocoon_sdk::job::models::SMOLLM2_135M;
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::highload::HighloadWallet;
use cocoon_sdk::wallet::{SendOptions, Wallet};
use cocoon_testkit::chain::start_localnet;
use cocoon_testkit::dev::GRACE_PERIOD;
use cocoon_testkit::{DevChainV2, RegisteredWorker, StubHandle, StubMode, StubWorker};
use ed25519_dalek::SigningKey;

const PRICE_IN: u128 = 1_000;
const PRICE_OUT: u128 = 3_000;
const AMOUNT: u128 = 2_000_000;

fn stub_of(w: &RegisteredWorker, mode: StubMode) -> StubWorker {
    let mut s = StubWorker::new(0, vec![SMOLLM2_135M.id]);
    s.signing_key = w.signing.clone();
    s.address = w.address.to_hex();
    s.encryption_key = w.enc.public_key();
    s.evidence = w.evidence.encode();
    s.prices = (PRICE_IN as u64, PRICE_OUT as u64);
    s.sealing = Some(w.enc.clone());
    s.mode = mode;
    s
}

fn chat(text: &str) -> JobRequest {
    JobRequest::chat(
        vec![ChatMessage::new("user", text)],
        GenerationParams {
            max_tokens: 16,
            ..GenerationParams::default()
        },
    )
}

async fn ask(client: &ChannelClient, text: &str) -> Result<ChannelResult, ChannelClientError> {
    let mut stream = client.request(&SMOLLM2_135M, chat(text)).await?;
    let mut deltas = String::new();
    while let Some(ev) = stream.next().await {
        match ev? {
            ChannelEvent::Dispatched { .. } => deltas.clear(),
            ChannelEvent::Delta(t) => deltas.push_str(&t),
            ChannelEvent::Done(r) => {
                assert_eq!(r.text, deltas);
                return Ok(*r);
            }
            _ => {}
        }
    }
    panic!("the stream ended without a result")
}

async fn connect(
    chain: &DevChainV2,
    relayer: &str,
    wallet: &Wallet,
    key: &SigningKey,
    store: &std::path::Path,
    top_up_below: u128,
) -> ChannelClient {
    let mut cfg = ChannelConfig::new(chain.localnet.api_config(), chain.root.clone(), relayer);
    cfg.policy = PolicyMode::Development;
    cfg.channels = 2;
    cfg.channel_amount = AMOUNT;
    cfg.top_up_below = top_up_below;
    cfg.lifetime = 3600;
    cfg.store = Some(store.to_owned());
    ChannelClient::connect(cfg, wallet.clone(), key.clone())
        .await
        .unwrap()
}

/// A Root v2 on a fresh localnet with one Worker v2 per seed (serving SmolLM2), and a relayer
/// service watching it with its store in `dir`.
async fn network(
    seeds: &[u8],
    dir: &std::path::Path,
) -> (
    DevChainV2,
    Vec<RegisteredWorker>,
    cocoon_relayer::RelayerHandle,
) {
    let chain = DevChainV2::on(
        start_localnet().await.unwrap(),
        BTreeMap::from([(SMOLLM2_135M.id, SMOLLM2_135M.registry_hash())]),
    )
    .await
    .unwrap();
    let mut workers = Vec::new();
    for &seed in seeds {
        workers.push(
            chain
                .register_worker(seed, &[SMOLLM2_135M.id], PRICE_IN, PRICE_OUT)
                .await
                .unwrap(),
        );
    }
    let relayer_wallet = chain.funded_wallet(NANO_PER_TON).await.unwrap();
    let mut cfg = ServiceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}?mode=rwc", dir.join("r.db").display()),
    );
    cfg.chain = Some(ChainConfig::new(
        chain.localnet.api_config(),
        chain.root.clone(),
        relayer_wallet,
    ));
    let relayer = service::spawn(cfg).await.unwrap();
    (chain, workers, relayer)
}

#[tokio::test]
async fn requests_over_channels_failover_top_up_prove_and_reclaim() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, mut workers, relayer) = network(&[3, 9], dir.path()).await;
    let (w1, w2) = (workers.remove(0), workers.remove(0));
    let base = relayer.url();
    let ws = base.replacen("http", "ws", 1);
    let h1: StubHandle = stub_of(&w1, StubMode::Answer).connect(&ws).await.unwrap();
    let h2 = stub_of(&w2, StubMode::Answer).connect(&ws).await.unwrap();

    let wallet = chain.funded_wallet(20 * NANO_PER_TON).await.unwrap();
    let key = SigningKey::from_bytes(&[0x3c; 32]);
    let store = dir.path().join("wallet.channels.json");
    let client = connect(&chain, &base, &wallet, &key, &store, 1).await;
    let escrow = EscrowClient::for_owner(&chain.chain, &chain.root, wallet.address())
        .await
        .unwrap();

    // --- a client that requires GPU attestation pays none of these workers (no GPU evidence)
    let mut gpu_cfg = client.config().clone();
    gpu_cfg.require_gpu = true;
    gpu_cfg.store = None;
    let gpu = ChannelClient::connect(gpu_cfg, wallet.clone(), key.clone())
        .await
        .unwrap();
    assert!(gpu.workers(SMOLLM2_135M.id).await.unwrap().is_empty());
    let refused = ask(&gpu, "hello there").await.unwrap_err().to_string();
    assert!(refused.contains("GPU attestation is required"), "{refused}");
    assert_eq!(gpu.transactions(), 0, "nothing was opened for it");

    // --- the first request opens the Escrow and two channels (to two workers); then nothing
    let first = ask(&client, "hello there").await.unwrap();
    assert_eq!(first.text, "echo: hello there ");
    assert_eq!(first.seq, 1);
    let opened_txs = client.transactions();
    assert_eq!(opened_txs, 3, "escrow creation + one open per channel");
    let chs = client.channels();
    assert_eq!(chs.len(), 2);
    assert_ne!(chs[0].worker, chs[1].worker);
    let (a, b) = (chs[0].channel_id, chs[1].channel_id);
    let (ha, hb, wa, wb) = if chs[0].worker == w1.address {
        (&h1, &h2, &w1, &w2)
    } else {
        (&h2, &h1, &w2, &w1)
    };
    assert_eq!(first.channel.channel_id, a);
    let verifications = client.worker_verifications();
    let mut results = vec![first];
    for i in 2..=4 {
        let r = ask(&client, &format!("question {i}")).await.unwrap();
        assert_eq!((r.channel.channel_id, r.seq), (a, i));
        results.push(r);
    }
    assert_eq!(
        client.transactions(),
        opened_txs,
        "no transaction per request"
    );
    assert_eq!(
        client.worker_verifications(),
        verifications,
        "no worker read again while nothing changed"
    );
    // Each receipt paid by the next voucher: cumulative = the sum of the costs, exactly.
    let paid: u128 = results.iter().map(|r| r.cost).sum();
    assert_eq!(results.last().unwrap().cumulative, paid);
    assert_eq!(client.channels()[0].paid, paid);
    for r in &results {
        assert_eq!(
            r.cost,
            u128::from(r.usage.prompt_tokens) * PRICE_IN
                + u128::from(r.usage.completion_tokens) * PRICE_OUT
        );
    }
    // Every voucher was handed to the worker.
    let pushed = ha.vouchers();
    assert_eq!(pushed.len(), 4);
    assert_eq!(pushed.last().unwrap().voucher.body.cumulative, paid);
    assert_eq!(hb.jobs(), 0);

    // --- the first channel's worker goes offline: the relayer serves on the second channel
    let (ha_owned, hb_owned) = if wa.address == w1.address {
        (h1, h2)
    } else {
        (h2, h1)
    };
    ha_owned.disconnect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = ask(&client, "are you there?").await.unwrap();
    assert_eq!((r.channel.channel_id, r.seq), (b, 1));
    assert_eq!(r.worker, wb.address);
    assert_eq!(hb_owned.vouchers().len(), 1);
    assert_eq!(client.transactions(), opened_txs);

    // --- the first worker comes back signing receipts for another output than it sent (the
    // relayer cannot tell: the output is sealed): refused, nothing signed
    let bad = stub_of(wa, StubMode::WrongOutput)
        .connect(&ws)
        .await
        .unwrap();
    let before = client.latest_voucher(a).unwrap();
    match ask(&client, "sign this").await {
        Err(ChannelClientError::Channel(ChannelError::RequestMismatch {
            field: "output_commitment",
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(bad.jobs(), 1);
    assert!(bad.vouchers().is_empty(), "no voucher for a bad receipt");
    assert_eq!(client.latest_voucher(a).unwrap(), before);
    assert_eq!(client.channels()[0].seq, 4);
    bad.disconnect();
    drop(client);

    // --- a restarted client resumes both channels from the store and tops them up (the
    // threshold is now above what remains), then serves again on the first channel
    let good = stub_of(wa, StubMode::Answer).connect(&ws).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let client = connect(&chain, &base, &wallet, &key, &store, AMOUNT).await;
    assert_eq!(client.channels().len(), 2);
    let r5 = ask(&client, "after a restart").await.unwrap();
    assert_eq!((r5.channel.channel_id, r5.seq), (a, 5));
    assert_eq!(
        client.transactions(),
        2,
        "one top-up per channel, nothing else"
    );
    for (id, ch) in [(a, &client.channels()[0]), (b, &client.channels()[1])] {
        let st = escrow.channel(id).await.unwrap().unwrap();
        assert_eq!(st.amount, ch.amount, "channel {id}");
    }
    // Topped up to exactly AMOUNT left before the request.
    let a_st = escrow.channel(a).await.unwrap().unwrap();
    assert_eq!(a_st.amount - (paid), AMOUNT);
    assert_eq!(good.vouchers().len(), 1);
    results.push(r5);

    // --- close: the first channel cooperatively — its final voucher, settled once by the worker,
    // closes it at once; the client then proves an earlier receipt is anchored by that settlement
    let wa_client = WorkerClient::at(&chain.chain, chain.root.clone(), wa.address.clone());
    let last = results.last().unwrap();
    let b_paid = client.channels()[1].paid;
    client.close(a).await.unwrap();
    let final_a = good.vouchers().last().unwrap().voucher.clone();
    assert!(final_a.body.is_final);
    assert_eq!(
        (final_a.body.last_seq, final_a.body.cumulative),
        (5, last.cumulative)
    );
    let (_, log) = wa_client
        .submit_settlement(&wa.owner, &last.receipt, &final_a, &SendOptions::default())
        .await
        .unwrap();
    assert_eq!((log.seq(), log.cumulative()), (5, last.cumulative));
    assert_eq!(
        log.cumulative(),
        results
            .iter()
            .filter(|r| r.channel.channel_id == a)
            .map(|r| r.cost)
            .sum::<u128>()
    );
    assert_eq!(
        escrow.channel(a).await.unwrap(),
        None,
        "a final settlement closes"
    );
    let proved = client.verify(&results[1].receipt).await.unwrap();
    assert_eq!(proved.seq(), 5);
    // A receipt the chain never saw is not proved.
    let mut forged = results[1].receipt.clone();
    forged.body.tokens_out += 1;
    assert!(client.verify(&forged).await.is_err());

    // --- the second channel after its grace period: every nanoTON not paid comes back
    client.close(b).await.unwrap();
    let b_st = escrow.channel(b).await.unwrap().unwrap();
    assert!(b_st.close_requested_at > 0);
    let locked = escrow.state().await.unwrap().locked;
    assert_eq!(
        locked, b_st.amount,
        "b was never settled: all of it is locked"
    );
    let free_before = escrow.state().await.unwrap().free;
    assert!(
        client.reclaim().await.unwrap().is_empty(),
        "not before the window ends"
    );
    chain
        .localnet
        .advance_time(u64::from(GRACE_PERIOD) + 2)
        .await
        .unwrap();
    assert_eq!(client.reclaim().await.unwrap(), vec![b]);
    let end = escrow.state().await.unwrap();
    assert_eq!((end.open_channels, end.locked), (0, 0));
    // The worker never settled b's voucher: the whole amount comes back (less the storage fee
    // of the seconds that passed).
    assert!(b_paid > 0);
    assert!(
        end.free <= free_before + b_st.amount
            && end.free + NANO_PER_TON / 1000 > free_before + b_st.amount,
        "free {} before {free_before} amount {}",
        end.free,
        b_st.amount
    );
    assert!(client.channels().iter().all(|c| c.closed));
    // Closed channels keep their receipts: still provable.
    client.verify(&results[0].receipt).await.unwrap();
}

/// `ChannelConfig::highload` (the gateway's `--wallet.highload`): the Escrow's deposit, the
/// channel's opening, its top-up, its close and its reclaim all go out from the Highload Wallet
/// v3 of the wallet's key, which owns the Escrow; the V5R1 wallet of the key sends nothing.
#[tokio::test]
async fn with_a_highload_wallet_a_channel_opens_tops_up_and_closes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, mut workers, relayer) = network(&[5], dir.path()).await;
    let w = workers.remove(0);
    let base = relayer.url();
    let h = stub_of(&w, StubMode::Answer)
        .connect(&base.replacen("http", "ws", 1))
        .await
        .unwrap();

    // Only the highload wallet holds funds.
    let wallet = Wallet::from_mnemonic(
        &cocoon_sdk::wallet::generate_mnemonic(),
        cocoon_sdk::wallet::WalletKind::V5r1,
    )
    .unwrap();
    let highload = HighloadWallet::of_wallet(&wallet).unwrap();
    chain
        .localnet
        .fund(highload.address(), 20 * NANO_PER_TON)
        .await
        .unwrap();
    let key = SigningKey::from_bytes(&[0x5e; 32]);
    let store = dir.path().join("wallet.channels.json");
    let connect = |top_up_below: u128| {
        let mut c = ChannelConfig::new(chain.localnet.api_config(), chain.root.clone(), &base);
        c.policy = PolicyMode::Development;
        c.channels = 1;
        c.channel_amount = AMOUNT;
        c.top_up_below = top_up_below;
        c.lifetime = 3600;
        c.store = Some(store.clone());
        c.highload = true;
        ChannelClient::connect(c, wallet.clone(), key.clone())
    };

    // Opened: the Escrow (created by the deposit) and the channel, both from the highload wallet.
    let client = connect(1).await.unwrap();
    assert_eq!(client.wallet_address(), highload.address());
    let escrow = EscrowClient::for_owner(&chain.chain, &chain.root, highload.address())
        .await
        .unwrap();
    assert_eq!(client.escrow_address(), escrow.address());
    let first = ask(&client, "hello").await.unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(client.transactions(), 2, "escrow creation + the channel");
    let id = first.channel.channel_id;
    assert_eq!(
        escrow.channel(id).await.unwrap().unwrap().amount,
        AMOUNT,
        "opened with its amount"
    );
    drop(client);

    // Topped up: a restarted client finds less than its threshold left.
    let client = connect(AMOUNT).await.unwrap();
    let second = ask(&client, "again").await.unwrap();
    assert_eq!((second.channel.channel_id, second.seq), (id, 2));
    assert_eq!(client.transactions(), 1, "one top-up");
    let st = escrow.channel(id).await.unwrap().unwrap();
    assert_eq!(st.amount - first.cost, AMOUNT);

    // Closed: the close request, then the reclaim after the grace period.
    client.close(id).await.unwrap();
    assert!(
        escrow
            .channel(id)
            .await
            .unwrap()
            .unwrap()
            .close_requested_at
            > 0
    );
    chain
        .localnet
        .advance_time(u64::from(GRACE_PERIOD) + 2)
        .await
        .unwrap();
    assert_eq!(client.reclaim().await.unwrap(), vec![id]);
    assert_eq!(escrow.state().await.unwrap().open_channels, 0);
    assert_eq!(client.transactions(), 3, "top-up, close request, close");
    assert_eq!(h.vouchers().len(), 3, "two vouchers and the final one");

    // Nothing ever went out from the V5R1 wallet of the key: it was never deployed.
    let v5 = chain.chain.account(wallet.address()).await.unwrap();
    assert_ne!(v5.status, cocoon_sdk::chain::AccountStatus::Active);
}
