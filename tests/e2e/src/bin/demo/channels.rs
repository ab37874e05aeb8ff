//! Protocol v2 (the default): the app opens one payment channel to the worker, asks several chat
//! questions and one embeddings request with no chain transaction between them (each receipt
//! checked, each paid by the next voucher), closes the channel with its final voucher, which the
//! worker settles once; a receipt is proven on-chain, and the session's on-chain fees are set
//! against what the inference cost.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use cocoon_e2e::Devnet;
use cocoon_sdk::chain::ChainApi;
use cocoon_sdk::channel::worker_share;
use cocoon_sdk::client::channels::{ChannelClient, ChannelEvent, ChannelResult};
use cocoon_sdk::contracts::v2::{EscrowClient, WorkerClient, settlement_logs};
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{NANO_PER_TON, format_ton};

use crate::{Args, embedding_texts, print_similarities, say};

/// What the app locks in its channel: hundreds of the demo's requests.
const CHANNEL_AMOUNT: u128 = NANO_PER_TON / 20;
/// A channel's requests over a day of steady use, for the fees per request at scale.
const SCALE: u128 = 10_000;
/// How long the worker may take to settle the final voucher.
const SETTLE_WAIT: Duration = Duration::from_secs(120);

pub(crate) async fn run(net: &Devnet, args: &Args) -> anyhow::Result<()> {
    let wallet = net.funded_wallet(50 * NANO_PER_TON).await?;
    let voucher_key = cocoon_cli::commands::channel::load_or_create_voucher_key(
        &net.dir.path().join("app.voucher-key"),
    )?;
    let mut config = net.channel_config();
    config.channel_amount = CHANNEL_AMOUNT;
    config.top_up_below = CHANNEL_AMOUNT / 10;
    let client = ChannelClient::connect(config, wallet, voucher_key)
        .await
        .context("connecting the channel client")?;
    let accounts = Accounts::of(net, &client).await?;
    let before = accounts.marks(net).await?;

    say(&format!(
        "first question on {}: the SDK creates the app's Escrow and opens a channel of {} TON to the worker",
        SMOLLM2_135M.name,
        format_ton(CHANNEL_AMOUNT)
    ));
    let mut results = vec![chat(&client, &args.prompt, args.max_tokens).await?];
    let opening_txs = client.transactions();
    let channel = client
        .channels()
        .into_iter()
        .next()
        .context("the first request opened a channel")?;
    println!(
        "   channel {} on Escrow {}: {} transaction(s) sent by the app so far",
        channel.channel_id,
        client.escrow_address(),
        opening_txs
    );

    let quiet = accounts.last_transactions(net).await?;
    let started = Instant::now();
    for question in [
        "Name three colours of the rainbow.",
        "What is two plus two? Answer with a number.",
    ] {
        say(&format!("next question, same channel: {question:?}"));
        results.push(chat(&client, question, args.max_tokens).await?);
    }
    say(&format!(
        "embeddings request on {}, same Escrow",
        ALL_MINILM_L6_V2.name
    ));
    let texts = embedding_texts();
    let embed = client
        .request(&ALL_MINILM_L6_V2, JobRequest::embeddings(texts.clone()))
        .await?
        .finish()
        .await
        .context("embeddings request")?;
    let vectors = embed
        .embeddings
        .clone()
        .context("an embeddings request returns vectors")?;
    print_similarities(&texts, &vectors);
    print_result(&embed);
    results.push(embed);
    let elapsed = started.elapsed();
    let still = accounts.last_transactions(net).await?;
    anyhow::ensure!(
        still == quiet && client.transactions() == opening_txs,
        "a request touched the chain: last transactions {quiet:?} became {still:?}"
    );
    println!(
        "\n   {} requests after the first in {:.1} s: no chain transaction between them (the app's wallet, its Escrow, the Worker and its owner have the same last transaction as before)",
        results.len() - 1,
        elapsed.as_secs_f64()
    );

    say(
        "the app closes the channel: a close request and its final voucher; the worker settles once with it",
    );
    client.close(channel.channel_id).await?;
    let escrow = EscrowClient::at(
        client.chain(),
        net.root().clone(),
        client.escrow_address().clone(),
    );
    // The channel's state (a get-method) and its history (the indexer, which may trail the
    // chain by a block) are read separately: wait until both show the settlement.
    let deadline = Instant::now() + SETTLE_WAIT;
    let logs = loop {
        let logs =
            settlement_logs(client.chain(), client.escrow_address(), channel.channel_id).await?;
        if !logs.is_empty() && escrow.channel(channel.channel_id).await?.is_none() {
            break logs;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the worker did not settle the final voucher within {SETTLE_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    client.reclaim().await?;
    anyhow::ensure!(
        logs.len() == 1,
        "{} settlements of the channel on-chain, expected one",
        logs.len()
    );
    let log = &logs[0];
    let paid: u128 = results.iter().map(|r| r.cost).sum();
    anyhow::ensure!(
        log.cumulative() == paid && log.seq() == results.len() as u32 && log.is_final(),
        "the settlement names seq {} and {} nanoTON; the app paid {} receipts worth {paid}",
        log.seq(),
        log.cumulative(),
        results.len()
    );
    let relayer_bps = client.config().relayer_fee_bps;
    let protocol_bps = cocoon_testkit::dev::PROTOCOL_FEE_BPS;
    println!(
        "   settled in transaction {} (lt {}): seq {}, {} TON; to the worker's owner {} TON ({} bps to the relayer, {} bps to the protocol, held by the Escrow until collected); {} TON back to the Escrow's free balance",
        hex::encode(log.tx.hash),
        log.tx.lt,
        log.seq(),
        format_ton(log.cumulative()),
        format_ton(worker_share(log.cumulative(), relayer_bps, protocol_bps)),
        relayer_bps,
        protocol_bps,
        format_ton(log.released().unwrap_or(0))
    );

    say(
        "proving the first answer's receipt is on-chain (receipt accumulator against the settlement)",
    );
    let proven = client.verify(&results[0].receipt).await?;
    println!(
        "   receipt seq {} of channel {}: included in the settlement of transaction {}",
        results[0].seq,
        results[0].channel.channel_id,
        hex::encode(proven.tx.hash)
    );

    say("what the session cost, account by account");
    let fees = accounts.report(net, &before).await?;
    let requests = results.len() as u128;
    println!(
        "   inference     {} TON for {requests} requests (the receipts' sum, paid exactly)",
        format_ton(paid)
    );
    println!(
        "   on-chain fees {} TON for the whole session (Escrow creation, channel open, close request, one settlement), none per request",
        format_ton(fees)
    );
    println!(
        "                 {} TON per request at {requests} requests; requests add no transaction, so at {} requests on one channel the same fees come to {} TON per request",
        format_ton(fees / requests),
        SCALE,
        format_ton(fees / SCALE)
    );
    println!(
        "   (protocol v1 opens a job and settles it on-chain for every request: run with --protocol jobs)"
    );
    Ok(())
}

/// Asks one chat question and streams the answer.
async fn chat(
    client: &ChannelClient,
    question: &str,
    max_tokens: u32,
) -> anyhow::Result<ChannelResult> {
    let params = GenerationParams {
        max_tokens,
        temperature: 0.0,
        ..GenerationParams::default()
    };
    let request = JobRequest::chat(vec![ChatMessage::new("user", question)], params);
    let started = Instant::now();
    let mut stream = client.request(&SMOLLM2_135M, request).await?;
    print!("   > ");
    let mut first_token = None;
    let result = loop {
        match stream.next().await {
            Some(Ok(ChannelEvent::Delta(text))) => {
                first_token.get_or_insert_with(|| started.elapsed());
                print!("{text}");
                std::io::stdout().flush()?;
            }
            Some(Ok(ChannelEvent::Done(result))) => break *result,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("chat request"),
            None => anyhow::bail!("the stream ended without a result"),
        }
    };
    println!();
    if let Some(t) = first_token {
        println!("   first token   {} ms after the request", t.as_millis());
    }
    print_result(&result);
    Ok(result)
}

fn print_result(r: &ChannelResult) {
    println!(
        "   usage         {} prompt + {} completion tokens ({:?})",
        r.usage.prompt_tokens, r.usage.completion_tokens, r.finish_reason
    );
    println!(
        "   paid          {} TON (max {}); channel {} seq {}, {} TON paid on it so far",
        format_ton(r.cost),
        format_ton(r.max_cost),
        r.channel.channel_id,
        r.seq,
        format_ton(r.cumulative)
    );
    println!(
        "   receipt       signed by the worker's registered key: valid; output commitment {} matches the answer; attestation {}",
        hex::encode(r.output_commitment),
        r.attestation_kind
    );
}

/// Every account the session's value moves between: whatever they hold less at the end went to
/// the chain's fees.
struct Accounts {
    /// Role and address; the first four stay untouched between requests.
    all: Vec<(&'static str, TonAddress)>,
}

/// The app's wallet, its Escrow, the Worker and its owner: untouched between requests.
const QUIET: usize = 4;

/// An account at one moment.
#[derive(Debug, Clone, Copy)]
struct Mark {
    balance: u128,
    lt: u64,
}

impl Accounts {
    async fn of(net: &Devnet, client: &ChannelClient) -> anyhow::Result<Self> {
        let owner = net.workers[0].owner.address();
        let worker = WorkerClient::for_owner(&net.chain.chain, net.root(), owner).await?;
        Ok(Self {
            all: vec![
                ("app wallet", client.wallet_address().clone()),
                ("app Escrow", client.escrow_address().clone()),
                ("Worker", worker.address().clone()),
                ("worker owner", owner.clone()),
                ("relayer", net.relayer_wallet.address().clone()),
                ("treasury", net.chain.governor.address().clone()),
                ("Root", net.root().clone()),
            ],
        })
    }

    async fn marks(&self, net: &Devnet) -> anyhow::Result<Vec<Mark>> {
        let mut out = Vec::new();
        for (_, a) in &self.all {
            let st = net.chain.chain.account(a).await?;
            out.push(Mark {
                balance: st.balance,
                lt: st.last_tx.map_or(0, |t| t.lt),
            });
        }
        Ok(out)
    }

    /// The last transaction of each quiet account.
    async fn last_transactions(&self, net: &Devnet) -> anyhow::Result<Vec<u64>> {
        Ok(self.marks(net).await?[..QUIET]
            .iter()
            .map(|m| m.lt)
            .collect())
    }

    /// Prints each account's transactions since `since` and what it holds more or less; returns
    /// the session's fees: what all of them together hold less.
    async fn report(&self, net: &Devnet, since: &[Mark]) -> anyhow::Result<u128> {
        let now = self.marks(net).await?;
        let (mut before, mut after, mut txs) = (0u128, 0u128, 0usize);
        for (((role, address), then), now) in self.all.iter().zip(since).zip(&now) {
            let n = net
                .chain
                .chain
                .transactions(address, then.lt, 256)
                .await?
                .len();
            txs += n;
            before += then.balance;
            after += now.balance;
            let delta = if now.balance >= then.balance {
                format!("+{}", format_ton(now.balance - then.balance))
            } else {
                format!("-{}", format_ton(then.balance - now.balance))
            };
            println!("   {role:<14} {n:>3} transaction(s)  {delta:>14} TON");
        }
        println!("   {:<14} {txs:>3} transaction(s) in the session", "all");
        before
            .checked_sub(after)
            .context("the session's accounts hold more than before")
    }
}
