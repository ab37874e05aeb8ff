//! Settlement of the node's channels: rarely, because each one costs a fee. Every
//! `settle_every` the node asks each channel's book whether a settlement is due under the
//! [`SettlePolicy`] (the worker's share at least 100 × the Worker's settlement fee, the window
//! closing, or a final voucher), and once more when it shuts down, whatever the amount.
//!
//! ```text
//! tick / shutdown ─▶ fee = Worker.get_fees().settle ─▶ book.settlement(now, policy)
//!   ─▶ ledger.begin_settlement(channel, cumulative)   (Done: submitted, never again;
//!                                                      RetryLater: it failed, or a crash left
//!                                                      it on its way: sent again later if the
//!                                                      chain still shows it unsettled)
//!   ─▶ submit_settlement(receipt of voucher.last_seq, voucher) ─▶ ledger: submitted | failed
//! ```

use std::sync::Arc;
use std::time::Duration;

use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::channel::{SettlePolicy, Settlement};
use cocoon_sdk::contracts::v2::WorkerClient;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::wallet::{SendOptions, ServiceSender};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::NodeContext;
use super::channel_desk::{Book, ChannelDesk};
use super::channel_ledger::{SettlementStart, SettlementStatus};

/// What the settlement loop needs besides the desk.
#[derive(Debug, Clone)]
pub(crate) struct SettleLoop {
    pub chain: TonCenterClient,
    pub root: TonAddress,
    pub sender: ServiceSender,
    pub every: Duration,
    pub margin_secs: u32,
}

/// Settles due channels every `every` until shutdown, then (once the requests in flight are
/// done) settles every channel with anything unsettled.
pub(crate) async fn run(
    ctx: Arc<NodeContext>,
    desk: Arc<ChannelDesk>,
    cfg: SettleLoop,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
        pass(&desk, &cfg, false).await;
    }
    while ctx.load() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pass(&desk, &cfg, true).await;
}

/// One look at every channel; returns how many settlements were submitted.
pub(crate) async fn pass(desk: &ChannelDesk, cfg: &SettleLoop, shutting_down: bool) -> usize {
    let worker = WorkerClient::at(&cfg.chain, cfg.root.clone(), desk.worker.clone());
    let fee = match worker.fees().await {
        Ok(f) => f.settle,
        Err(e) => {
            warn!(target: "worker::node::settle", error = %e, "cannot read the settlement fee; not settling now");
            return 0;
        }
    };
    let policy = SettlePolicy {
        settle_fee: fee,
        margin_secs: cfg.margin_secs,
    };
    let mut submitted = 0;
    for (ch, book) in desk.books() {
        let due = {
            let mut b = book.lock().await;
            if let Err(r) = desk.refresh_cached(&mut b).await {
                debug!(target: "worker::node::settle", channel_id = ch.channel_id, reason = %r.message, "channel not refreshed");
            }
            b.settlement(cocoon_sdk::clock::unix_now_u32(), &policy, shutting_down)
        };
        if let Some(s) = due
            && settle(desk, cfg, &book, s).await
        {
            submitted += 1;
        }
    }
    submitted
}

/// Submits one settlement, exactly once per cumulative amount; true when the chain took it.
async fn settle(desk: &ChannelDesk, cfg: &SettleLoop, book: &Book, s: Settlement) -> bool {
    let v = &s.voucher.body;
    let (ch, cumulative, seq) = (v.channel.clone(), v.cumulative, v.last_seq);
    let fail = |what: String| {
        warn!(target: "worker::node::settle", channel_id = ch.channel_id, cumulative = %cumulative, error = %what, "settlement not submitted");
        false
    };
    let receipt = match desk.ledger.receipt(&ch, seq).await {
        Ok(Some(r)) => r,
        Ok(None) => return fail(format!("no receipt for seq {seq} in the ledger")),
        Err(e) => return fail(e.to_string()),
    };
    match desk.ledger.begin_settlement(&ch, cumulative, seq).await {
        Ok(SettlementStart::Started) => {}
        Ok(SettlementStart::Done) => {
            book.lock().await.settlement_submitted(cumulative);
            debug!(target: "worker::node::settle", channel_id = ch.channel_id, cumulative = %cumulative, "settlement of this amount already sent once");
            return false;
        }
        Ok(SettlementStart::RetryLater) => {
            debug!(target: "worker::node::settle", channel_id = ch.channel_id, cumulative = %cumulative, "settlement of this amount failed or may still land; sent again after a pause");
            return false;
        }
        Err(e) => return fail(e.to_string()),
    }
    book.lock().await.settlement_submitted(cumulative);
    info!(target: "worker::node::settle", channel_id = ch.channel_id, seq, cumulative = %cumulative, due = %s.due, worker_share = %s.worker_share, reason = ?s.reason, "submitting a settlement");
    let worker = WorkerClient::at(&cfg.chain, cfg.root.clone(), desk.worker.clone());
    let result = worker
        .submit_settlement(&cfg.sender, &receipt, &s.voucher, &SendOptions::default())
        .await;
    let (status, detail) = match &result {
        Ok((_, log)) => (SettlementStatus::Submitted, format!("{:?}", log.tx)),
        Err(e) => (SettlementStatus::Failed, e.to_string()),
    };
    if let Err(e) = desk
        .ledger
        .finish_settlement(&ch, cumulative, status, &detail)
        .await
    {
        warn!(target: "worker::node::settle", channel_id = ch.channel_id, error = %e, "cannot record the settlement's end");
    }
    match result {
        Ok(_) => {
            info!(target: "worker::node::settle", channel_id = ch.channel_id, cumulative = %cumulative, tx = %detail, "settled");
            true
        }
        Err(e) => {
            // Proposed again at a later pass; the ledger paces and bounds the retries.
            book.lock().await.settlement_failed();
            fail(e.to_string())
        }
    }
}
