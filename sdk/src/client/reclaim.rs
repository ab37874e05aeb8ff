//! Funds that come back by themselves: a job that can no longer be served (its caller hung up
//! before the input was sent, or it expired without an answer) keeps its max cost locked in the
//! Escrow until someone sends `expire_job` after its deadline plus Root's grace period. The
//! [`Reclaimer`] does that for the client's own Escrow: it watches the jobs opened on it, and
//! once some are due it expires them in one wallet transfer, but only when what they free is
//! more than the transfer costs. Each pass ends in a [`ReclaimReport`] for the app.
//!
//! Time is the chain's (the Escrow account's last sync time), never the local clock: the Escrow
//! judges expiry by its own `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::Client;
use super::error::Result;
use crate::chain::{AccountStatus, ChainApi as _};
use crate::relay::JobRef;
use crate::wallet::WalletKind;

/// Default pause between two passes.
pub const DEFAULT_RECLAIM_INTERVAL: Duration = Duration::from_secs(60);
/// Estimated cost of one `expire_job` message, nanoTON: the Escrow's ~5,700 gas and the wallet's
/// share per message (contracts/gas-snapshot.json, `expire job`) at the basechain's 400 nanoTON
/// per gas, plus the forward fees of the message and of its excess, rounded up.
pub const EXPIRE_COST_PER_JOB: u128 = 4_000_000;
/// Estimated fixed cost of one wallet transfer, nanoTON (~4,300 gas, import and storage fees).
pub const EXPIRE_COST_PER_TRANSFER: u128 = 3_000_000;
/// Jobs below the newest the first pass looks at (a client that restarts finds what its last
/// run left open among them).
pub const DEFAULT_LOOKBACK: u64 = 256;

/// How the reclaimer works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReclaimOptions {
    /// Pause between passes.
    pub interval: Duration,
    /// Estimated cost of each `expire_job` message, nanoTON.
    pub cost_per_job: u128,
    /// Estimated fixed cost of a transfer, nanoTON.
    pub cost_per_transfer: u128,
    /// Jobs before the newest that the first pass looks at.
    pub lookback: u64,
}

impl Default for ReclaimOptions {
    fn default() -> Self {
        Self {
            interval: DEFAULT_RECLAIM_INTERVAL,
            cost_per_job: EXPIRE_COST_PER_JOB,
            cost_per_transfer: EXPIRE_COST_PER_TRANSFER,
            lookback: DEFAULT_LOOKBACK,
        }
    }
}

/// One job and its locked funds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedJob {
    /// The job.
    pub job: JobRef,
    /// Its max cost, locked in the Escrow, nanoTON.
    pub locked: u128,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Jobs expired on-chain by this pass: their funds are free again.
    pub reclaimed: Vec<LockedJob>,
    /// Due jobs left locked because expiring them would cost more than they free (no longer
    /// watched; `Client::expire` still refunds them by hand).
    pub uneconomic: Vec<LockedJob>,
    /// Why the pass stopped early, if it did (it is retried at the next one).
    pub error: Option<String>,
}

impl ReclaimReport {
    /// nanoTON freed by this pass.
    pub fn freed(&self) -> u128 {
        self.reclaimed.iter().map(|j| j.locked).sum()
    }

    /// Whether the pass did nothing worth telling.
    pub fn is_empty(&self) -> bool {
        self.reclaimed.is_empty() && self.uneconomic.is_empty() && self.error.is_none()
    }
}

/// A job open on the Escrow, as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watched {
    deadline: u32,
    locked: u128,
}

/// A due job: its id and locked funds.
type Due = (u64, u128);

/// Splits the due jobs (id → locked) into transfers worth sending (at most `per_transfer` jobs
/// each) and the jobs that would cost more than they free. The richest jobs go first, so a
/// transfer's fixed cost is carried by the jobs most worth freeing.
fn plan(
    mut due: Vec<Due>,
    per_transfer: usize,
    opts: &ReclaimOptions,
) -> (Vec<Vec<Due>>, Vec<Due>) {
    due.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (worth, mut uneconomic): (Vec<_>, Vec<_>) =
        due.into_iter().partition(|(_, l)| *l > opts.cost_per_job);
    let mut batches = Vec::new();
    for chunk in worth.chunks(per_transfer.max(1)) {
        let freed: u128 = chunk.iter().map(|(_, l)| l).sum();
        let cost = opts.cost_per_transfer + opts.cost_per_job * chunk.len() as u128;
        if freed > cost {
            batches.push(chunk.to_vec());
        } else {
            uneconomic.extend_from_slice(chunk);
        }
    }
    (batches, uneconomic)
}

/// Most `expire_job` messages one transfer of this wallet carries (V4R2 sends at most four).
fn per_transfer(kind: WalletKind) -> usize {
    match kind {
        WalletKind::V4r2 => 4,
        WalletKind::V5r1 => 100,
    }
}

/// Expires the client's due jobs; see the module doc.
#[derive(Debug)]
pub struct Reclaimer {
    client: Client,
    options: ReclaimOptions,
    /// Highest job id looked at.
    scanned_to: Option<u64>,
    watch: BTreeMap<u64, Watched>,
    grace: Option<u32>,
}

impl Reclaimer {
    /// A reclaimer of `client`'s Escrow.
    pub fn new(client: Client, options: ReclaimOptions) -> Self {
        Self {
            client,
            options,
            scanned_to: None,
            watch: BTreeMap::new(),
            grace: None,
        }
    }

    /// One pass: learn the jobs opened since the last, expire the due ones worth it.
    pub async fn pass(&mut self) -> ReclaimReport {
        let mut report = ReclaimReport::default();
        if let Err(e) = self.run(&mut report).await {
            report.error = Some(e.to_string());
        }
        report
    }

    async fn run(&mut self, report: &mut ReclaimReport) -> Result<()> {
        let chain = &self.client.inner.chain;
        let account = chain.account(&self.client.inner.escrow).await?;
        if account.status != AccountStatus::Active {
            return Ok(());
        }
        let escrow = self.client.escrow_client().await?;
        let grace = match self.grace {
            Some(g) => g,
            None => *self.grace.insert(escrow.config().await?.grace_period),
        };
        let last = escrow.state().await?.last_job_id;
        let first = match self.scanned_to {
            Some(s) => s + 1,
            None => last.saturating_sub(self.options.lookback).max(1),
        };
        for id in first..=last {
            if let Some(v) = escrow.job(id).await? {
                self.watch.insert(
                    id,
                    Watched {
                        deadline: v.deadline,
                        locked: v.max_cost,
                    },
                );
            }
            self.scanned_to = Some(id);
        }
        let now = account.sync_utime;
        let due_ids: Vec<u64> = self
            .watch
            .iter()
            .filter(|(_, w)| u64::from(w.deadline) + u64::from(grace) < now)
            .map(|(&id, _)| id)
            .collect();
        let mut due = Vec::new();
        for id in due_ids {
            // Settled or expired by someone else since: nothing to do.
            match escrow.job(id).await? {
                Some(v) => due.push((id, v.max_cost)),
                None => {
                    self.watch.remove(&id);
                }
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let escrow_hex = self.client.inner.escrow.to_hex();
        let locked = |(id, l): (u64, u128)| LockedJob {
            job: JobRef::new(escrow_hex.clone(), id),
            locked: l,
        };
        let (batches, uneconomic) = plan(
            due,
            per_transfer(self.client.inner.wallet.kind()),
            &self.options,
        );
        for j in uneconomic {
            self.watch.remove(&j.0);
            debug!(target: "sdk::reclaim", job = %locked(j).job, locked = %j.1, "expiring it would cost more than it frees; left locked");
            report.uneconomic.push(locked(j));
        }
        for batch in batches {
            let ids: Vec<u64> = batch.iter().map(|j| j.0).collect();
            {
                let _send = self.client.inner.sending.lock().await;
                escrow
                    .expire_many(
                        &self.client.inner.wallet,
                        &ids,
                        &self.client.inner.config.send,
                    )
                    .await?;
            }
            for j in batch {
                if escrow.job(j.0).await?.is_none() {
                    self.watch.remove(&j.0);
                    report.reclaimed.push(locked(j));
                }
            }
        }
        if !report.reclaimed.is_empty() {
            info!(target: "sdk::reclaim", jobs = report.reclaimed.len(), freed = %report.freed(), "expired jobs reclaimed");
        }
        Ok(())
    }

    /// Runs a pass every interval until dropped (the returned task aborts on drop), handing
    /// each report that did something to `tell`.
    pub fn spawn(mut self, mut tell: impl FnMut(&ReclaimReport) + Send + 'static) -> ReclaimerTask {
        let task = tokio::spawn(async move {
            loop {
                let report = self.pass().await;
                if let Some(e) = &report.error {
                    warn!(target: "sdk::reclaim", error = %e, "reclaim pass failed; retrying at the next");
                }
                if !report.is_empty() {
                    tell(&report);
                }
                tokio::time::sleep(self.options.interval).await;
            }
        });
        ReclaimerTask(task)
    }
}

/// A running [`Reclaimer`]; stops when dropped.
#[derive(Debug)]
pub struct ReclaimerTask(tokio::task::JoinHandle<()>);

impl Drop for ReclaimerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// Starts a [`Reclaimer`] of this client's Escrow in the background: jobs it opened that
    /// can no longer be served are expired on-chain by themselves and `tell` hears of each pass
    /// that reclaimed (or gave up on) any.
    pub fn spawn_reclaimer(
        &self,
        options: ReclaimOptions,
        tell: impl FnMut(&ReclaimReport) + Send + 'static,
    ) -> ReclaimerTask {
        Reclaimer::new(self.clone(), options).spawn(tell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReclaimOptions {
        ReclaimOptions {
            cost_per_job: 10,
            cost_per_transfer: 30,
            ..ReclaimOptions::default()
        }
    }

    #[test]
    fn only_transfers_that_free_more_than_they_cost_are_planned() {
        // 11 frees 1 more than its message; alone it would not carry the transfer.
        let (batches, left) = plan(vec![(1, 11)], 4, &opts());
        assert!(batches.is_empty());
        assert_eq!(left, vec![(1, 11)]);
        // Below a message's own cost a job is never worth it, whatever rides along.
        let (batches, left) = plan(vec![(1, 100), (2, 5), (3, 10)], 4, &opts());
        assert_eq!(batches, vec![vec![(1, 100)]]);
        assert_eq!(left, vec![(3, 10), (2, 5)]);
    }

    #[test]
    fn transfers_carry_at_most_the_wallet_limit_richest_first() {
        let due: Vec<_> = (1..=6).map(|i| (i, 100 * i as u128)).collect();
        let (batches, left) = plan(due, 4, &opts());
        assert_eq!(
            batches,
            vec![
                vec![(6, 600), (5, 500), (4, 400), (3, 300)],
                vec![(2, 200), (1, 100)]
            ]
        );
        assert!(left.is_empty());
        // The poor tail alone does not pay for its own transfer: left, reported.
        let (batches, left) = plan(
            vec![(1, 1000), (2, 20), (3, 20), (4, 20), (5, 20), (6, 20)],
            4,
            &opts(),
        );
        assert_eq!(batches.len(), 1);
        assert_eq!(left, vec![(5, 20), (6, 20)]);
        assert_eq!(per_transfer(WalletKind::V4r2), 4);
    }
}
