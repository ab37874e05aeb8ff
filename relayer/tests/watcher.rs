//! The chain watcher over recorded transactions: decoding, Escrow authentication, cursor,
//! idempotence, paging and catch-up.

mod common;

use std::sync::{Arc, Mutex};

use cocoon_relayer::store::JobState;
use cocoon_relayer::watcher::{
    EscrowAddressCheck, EscrowCheck, InMessage, JOB_OPENED_OP, SourceError, TransactionSource,
    WatchedTx, Watcher, decode_job_opened,
};
use futures_util::future::BoxFuture;
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, CellBuilder};

struct Recorded {
    txs: Mutex<Vec<WatchedTx>>,
    fail: Mutex<bool>,
}

impl TransactionSource for Recorded {
    fn transactions_after<'a>(
        &'a self,
        _address: &'a str,
        after_lt: u64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<WatchedTx>, SourceError>> {
        let out = if *self.fail.lock().unwrap() {
            Err(SourceError("503 from toncenter".into()))
        } else {
            Ok(self
                .txs
                .lock()
                .unwrap()
                .iter()
                .filter(|t| t.lt > after_lt)
                .take(limit as usize)
                .cloned()
                .collect())
        };
        Box::pin(async move { out })
    }
}

fn addr(n: u8) -> TonAddress {
    TonAddress::from_hex_str(&format!("0:{}", hex::encode([n; 32]))).unwrap()
}

fn check() -> EscrowAddressCheck {
    let code: ArcCell = Arc::new(
        CellBuilder::new()
            .store_u32(32, 0xdead_beef)
            .unwrap()
            .build()
            .unwrap(),
    );
    EscrowAddressCheck {
        root: addr(1),
        escrow_code: code,
    }
}

fn job_opened(
    owner: &TonAddress,
    job_id: u64,
    relayer: &TonAddress,
    worker: Option<&TonAddress>,
) -> ArcCell {
    let mut route = CellBuilder::new();
    route.store_address(relayer).unwrap();
    match worker {
        Some(w) => route.store_address(w).unwrap(),
        None => route.store_u8(2, 0).unwrap(),
    };
    let route = route.build().unwrap();
    Arc::new(
        CellBuilder::new()
            .store_u32(32, JOB_OPENED_OP)
            .unwrap()
            .store_u64(64, 7)
            .unwrap()
            .store_address(owner)
            .unwrap()
            .store_u64(64, job_id)
            .unwrap()
            .store_u32(32, 1)
            .unwrap()
            .store_u8(4, 2)
            .unwrap()
            .store_slice(&[0x01, 0x00])
            .unwrap()
            .store_u32(32, 2_000_000_000)
            .unwrap()
            .store_u16(16, 500)
            .unwrap()
            .store_slice(&[9; 32])
            .unwrap()
            .store_child(route)
            .unwrap()
            .build()
            .unwrap(),
    )
}

fn tx(lt: u64, source: &TonAddress, body: ArcCell) -> WatchedTx {
    WatchedTx {
        lt,
        hash: [lt as u8; 32],
        now: 1_700_000_000,
        aborted: false,
        in_msg: Some(InMessage {
            source: Some(source.to_hex()),
            bounced: false,
            body: Some(body),
        }),
    }
}

#[test]
fn job_opened_decodes_and_rejects_other_bodies() {
    let owner = addr(2);
    let body = job_opened(&owner, 5, &addr(3), Some(&addr(4)));
    let m = decode_job_opened(&body).unwrap();
    assert_eq!(
        (
            m.job_id,
            m.model_id,
            m.max_cost,
            m.deadline,
            m.relayer_fee_bps
        ),
        (5, 1, 256, 2_000_000_000, 500)
    );
    assert_eq!(
        (m.escrow_owner, m.relayer, m.worker),
        (owner.to_hex(), addr(3).to_hex(), Some(addr(4).to_hex()))
    );
    assert_eq!(
        decode_job_opened(&job_opened(&owner, 5, &addr(3), None))
            .unwrap()
            .worker,
        None
    );
    let other = CellBuilder::new()
        .store_u32(32, 0x1234)
        .unwrap()
        .build()
        .unwrap();
    assert!(decode_job_opened(&other).is_err());
}

#[tokio::test]
async fn watcher_records_genuine_jobs_once_and_catches_up() {
    let t = common::sqlite().await;
    let relayer = addr(3);
    let chk = check();
    let owner = addr(2);
    let escrow = chk.escrow_address(&owner).unwrap();
    assert!(chk.is_genuine(&escrow.to_hex(), &owner.to_hex()));
    let fake = addr(9);
    let mut bounced = tx(4, &escrow, job_opened(&owner, 4, &relayer, None));
    bounced.in_msg.as_mut().unwrap().bounced = true;
    let mut aborted = tx(5, &escrow, job_opened(&owner, 5, &relayer, None));
    aborted.aborted = true;
    let source = Arc::new(Recorded {
        txs: Mutex::new(vec![
            tx(1, &escrow, job_opened(&owner, 1, &relayer, None)),
            tx(2, &fake, job_opened(&owner, 2, &relayer, None)),
            tx(3, &escrow, job_opened(&owner, 3, &addr(8), None)),
            bounced,
            aborted,
            tx(
                6,
                &escrow,
                Arc::new(
                    CellBuilder::new()
                        .store_u32(32, JOB_OPENED_OP)
                        .unwrap()
                        .build()
                        .unwrap(),
                ),
            ),
            tx(7, &escrow, job_opened(&owner, 7, &relayer, Some(&addr(4)))),
        ]),
        fail: Mutex::new(false),
    });
    let w = Watcher::new(
        t.store.clone(),
        source.clone(),
        Arc::new(check()),
        relayer.to_hex(),
    )
    .with_page(2);
    let new = w.poll_once().await.unwrap();
    let ids: Vec<u64> = new.iter().map(|j| j.job_id).collect();
    assert_eq!(
        ids,
        vec![1, 5, 7],
        "only genuine, unbounced notifications to this relayer (an aborted relayer transaction, \
         e.g. at an undeployed wallet, still announces a job the Escrow committed)"
    );
    assert_eq!(
        t.store.cursor(&relayer.to_hex()).await.unwrap().unwrap().lt,
        7
    );
    let j7 = t.store.job(&new[2]).await.unwrap().unwrap();
    assert_eq!(
        (j7.state, j7.opened.route_worker.clone(), j7.opened.max_cost),
        (JobState::Opened, Some(addr(4).to_hex()), 256)
    );
    assert!(
        w.poll_once().await.unwrap().is_empty(),
        "nothing is processed twice"
    );

    // Chain errors leave the cursor where it was.
    source
        .txs
        .lock()
        .unwrap()
        .push(tx(8, &escrow, job_opened(&owner, 8, &relayer, None)));
    *source.fail.lock().unwrap() = true;
    assert!(w.poll_once().await.is_err());
    assert_eq!(
        t.store.cursor(&relayer.to_hex()).await.unwrap().unwrap().lt,
        7
    );
    // A fresh watcher (a restart) catches up from the persisted cursor.
    *source.fail.lock().unwrap() = false;
    let again = Watcher::new(t.store.clone(), source, Arc::new(check()), relayer.to_hex());
    assert_eq!(
        again
            .poll_once()
            .await
            .unwrap()
            .iter()
            .map(|j| j.job_id)
            .collect::<Vec<_>>(),
        vec![8]
    );
}
