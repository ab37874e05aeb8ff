//! Protocol v1 (`--protocol jobs`): an escrow deposit, then a chat job and an embeddings job,
//! each opened on-chain and settled by the relayer with the worker's receipt.

use std::io::Write as _;

use anyhow::Context;
use cocoon_e2e::Devnet;
use cocoon_sdk::client::{Client, JobEvent, JobOptions, JobResult};
use cocoon_sdk::contracts::WorkerClient;
use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};
use cocoon_sdk::job::{ChatMessage, GenerationParams, JobRequest};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{NANO_PER_TON, format_ton};

use crate::{Args, embedding_texts, print_similarities, say};

pub(crate) async fn run(net: &Devnet, args: &Args) -> anyhow::Result<()> {
    let wallet = net.funded_wallet(50 * NANO_PER_TON).await?;
    let client = Client::connect(net.client_config(), wallet)
        .await
        .context("connecting the SDK client")?;
    let worker = net.workers[0].owner.address().clone();
    let before = Balances::read(net, &client, &worker).await?;

    say("the app deposits 5 TON into its escrow");
    client.deposit(5 * NANO_PER_TON).await?;
    let after_deposit = Balances::read(net, &client, &worker).await?;
    after_deposit.print("after the deposit");

    say(&format!(
        "chat job on {}: {:?}",
        SMOLLM2_135M.name, args.prompt
    ));
    let params = GenerationParams {
        max_tokens: args.max_tokens,
        temperature: 0.0,
        ..GenerationParams::default()
    };
    let request = JobRequest::chat(vec![ChatMessage::new("user", args.prompt.clone())], params);
    let mut stream = client
        .open_job(SMOLLM2_135M.name, request, JobOptions::default())
        .await?;
    println!(
        "   job {} opened on-chain in {} ms; answer:",
        stream.job(),
        stream.open_timing().as_millis()
    );
    print!("   > ");
    let chat = loop {
        match stream.next().await {
            Some(Ok(JobEvent::Delta(text))) => {
                print!("{text}");
                std::io::stdout().flush()?;
            }
            Some(Ok(JobEvent::Done(result))) => break *result,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("chat job"),
            None => anyhow::bail!("the job stream ended without a result"),
        }
    };
    println!();
    print_result(&chat);

    say(&format!("embeddings job on {}", ALL_MINILM_L6_V2.name));
    let texts = embedding_texts();
    let embed = client
        .open_job(
            ALL_MINILM_L6_V2.name,
            JobRequest::embeddings(texts.clone()),
            JobOptions::default(),
        )
        .await?
        .finish()
        .await?;
    let vectors = embed
        .embeddings
        .clone()
        .context("an embeddings job returns vectors")?;
    print_similarities(&texts, &vectors);
    print_result(&embed);

    say("waiting for the relayer to post the receipts on-chain, then finding the settlements");
    for (what, r) in [("chat", &chat), ("embeddings", &embed)] {
        let s = client
            .verify_settlement(r)
            .await
            .with_context(|| format!("settlement of the {what} job"))?;
        println!(
            "   {what:<10} settled in transaction {} (lt {}), cost {} TON, paid to {}",
            hex::encode(s.tx_hash),
            s.lt,
            format_ton(s.cost),
            s.worker
        );
    }
    let after = Balances::read(net, &client, &worker).await?;
    before.print("before");
    after.print("after");
    // Each cost splits exactly: the worker's share, the relayer's fee and the protocol's fee.
    let relayer_bps = u128::from(client.config().relayer_fee_bps);
    let protocol_bps = u128::from(cocoon_testkit::dev::PROTOCOL_FEE_BPS);
    let share = |c: u128| c - c * relayer_bps / 10_000 - c * protocol_bps / 10_000;
    let earned = after.worker_earned - before.worker_earned;
    println!(
        "   the jobs cost {} TON; the worker earned exactly its share, {} TON ({} bps to the relayer, {} bps to the protocol)",
        format_ton(chat.cost + embed.cost),
        format_ton(earned),
        relayer_bps,
        protocol_bps
    );
    anyhow::ensure!(
        earned == share(chat.cost) + share(embed.cost),
        "the worker earned {earned} nanoTON, the receipts say otherwise"
    );
    Ok(())
}

fn print_result(r: &JobResult) {
    println!(
        "   usage         {} prompt + {} completion tokens ({:?})",
        r.usage.prompt_tokens, r.usage.completion_tokens, r.finish_reason
    );
    println!(
        "   cost          {} TON (max {} TON locked)",
        format_ton(r.cost),
        format_ton(r.max_cost)
    );
    println!(
        "   worker        {}  attestation {}",
        r.worker, r.attestation_kind
    );
    println!(
        "   receipt       hash {}  signature by the worker's registered key: valid",
        hex::encode(r.receipt_hash)
    );
    println!(
        "                 input commitment {}",
        hex::encode(r.receipt.body.commitments.input_commitment)
    );
    println!(
        "                 output commitment {} (matches the answer received)",
        hex::encode(r.receipt.body.commitments.output_commitment)
    );
    println!(
        "                 weights {}",
        hex::encode(r.receipt.body.hashes.weights_hash)
    );
}

struct Balances {
    app_wallet: u128,
    escrow_free: u128,
    escrow_locked: u128,
    worker_earned: u128,
    relayer_wallet: u128,
}

impl Balances {
    async fn read(
        net: &Devnet,
        client: &Client,
        worker_owner: &TonAddress,
    ) -> anyhow::Result<Self> {
        let escrow = client.balance().await?;
        let w = WorkerClient::for_owner(&net.chain.chain, net.root(), worker_owner)
            .await?
            .state()
            .await?;
        Ok(Self {
            app_wallet: net.chain.balance(client.wallet_address()).await?,
            escrow_free: escrow.free,
            escrow_locked: escrow.locked,
            worker_earned: w.earned,
            relayer_wallet: net.chain.balance(net.relayer_wallet.address()).await?,
        })
    }

    fn print(&self, when: &str) {
        println!(
            "   balances {when:<18} app wallet {} | escrow free {} locked {} | worker earned {} | relayer wallet {} (TON)",
            format_ton(self.app_wallet),
            format_ton(self.escrow_free),
            format_ton(self.escrow_locked),
            format_ton(self.worker_earned),
            format_ton(self.relayer_wallet)
        );
    }
}
