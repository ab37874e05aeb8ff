//! Property tests of a channel's accounting, client and worker together: for any sequence of
//! requests (served, failed, unpaid), withheld or stale vouchers, replayed receipts, top-ups and
//! worker restarts, the worker's unpaid amount never exceeds its credit, the client's voucher
//! always pays exactly the receipts it checked, and no seq ever gets two receipts.

use std::collections::HashMap;

use proptest::prelude::*;

use super::testing::*;
use super::{
    ChannelError, ChannelReceipt, ChannelSession, SignedVoucher, WorkerChannel, request_max_cost,
};

#[derive(Debug, Clone)]
enum Op {
    /// A request asking for `max_tokens` with a `tokens_in` prompt, producing `used` % of it;
    /// `pay`: the request carries the client's latest voucher (else its previous one, or none);
    /// `fail`: the engine fails before a receipt.
    Request {
        tokens_in: u32,
        max_tokens: u32,
        used: u32,
        pay: bool,
        fail: bool,
    },
    /// The relayer delivers the last receipt to the client once more.
    Replay,
    /// The client tops the channel up.
    TopUp(u128),
    /// The worker restarts from its ledger.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..200, 0u32..100, 0u32..=100, proptest::bool::weighted(0.8), proptest::bool::weighted(0.1))
            .prop_map(|(tokens_in, max_tokens, used, pay, fail)| Op::Request { tokens_in, max_tokens, used, pay, fail }),
        1 => Just(Op::Replay),
        1 => (0u128..2_000_000).prop_map(Op::TopUp),
        1 => Just(Op::Restart),
    ]
}

/// The worker's durable ledger as the test keeps it: what a restart reads back.
#[derive(Default)]
struct Ledger {
    receipts: Vec<ChannelReceipt>,
    by_seq: HashMap<u32, [u8; 32]>,
    best: Option<SignedVoucher>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unpaid_within_credit_vouchers_pay_checked_receipts_one_receipt_per_seq(
        amount in 0u128..3_000_000,
        credit_requests in 1u32..4,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut st = state(amount);
        let credit = request_max_cost(&st, 200, 100).unwrap() * u128::from(credit_requests);
        let mut w = WorkerChannel::new(st.clone(), &worker(), credit).unwrap();
        let mut c = ChannelSession::open(st.clone(), receipt_key(), client_key()).unwrap();
        let mut ledger = Ledger::default();
        let mut checked_costs: u128 = 0;
        let mut previous_voucher: Option<SignedVoucher> = None;
        let mut last_receipt = None;

        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Request { tokens_in, max_tokens, used, pay, fail } => {
                    let ticket = c.next_request(NOW).unwrap();
                    let carried = if pay { ticket.voucher.clone() } else { previous_voucher.clone() };
                    if let Some(v) = &carried {
                        match w.accept_voucher(v) {
                            Ok(_) => {
                                if ledger.best.as_ref().is_none_or(|b| b.body.last_seq < v.body.last_seq) {
                                    ledger.best = Some(v.clone());
                                }
                            }
                            // A withheld (older) voucher is refused as stale; nothing else.
                            Err(ChannelError::StaleVoucher { .. }) => prop_assert!(!pay),
                            Err(e) => prop_assert!(false, "voucher refused: {e}"),
                        }
                    }
                    let max_cost = request_max_cost(w.state(), tokens_in, max_tokens).unwrap();
                    let admission = match w.admit(NOW, ticket.seq, max_cost) {
                        Ok(a) => a,
                        Err(ChannelError::OverCredit { unpaid, max_cost: m, credit: cr }) => {
                            prop_assert!(unpaid + m > cr);
                            continue;
                        }
                        Err(ChannelError::Exhausted { cumulative, max_cost: m, amount }) => {
                            prop_assert!(cumulative + m > amount);
                            continue;
                        }
                        Err(e) => { prop_assert!(false, "admission refused: {e}"); unreachable!() }
                    };
                    if fail {
                        w.release(admission.seq).unwrap();
                        continue;
                    }
                    let d = draft(n as u8, tokens_in, max_tokens * used / 100);
                    let e = expectation(&d, max_tokens);
                    let p = w.sign_receipt(admission.seq, d, &worker_key()).unwrap();
                    // Persist: never a second receipt for a seq in the ledger.
                    let hash = p.receipt.body.hash().unwrap();
                    prop_assert!(ledger.by_seq.insert(p.receipt.body.seq, hash).is_none(),
                        "two receipts for seq {}", p.receipt.body.seq);
                    ledger.receipts.push(p.receipt.body.clone());
                    w.commit(&p).unwrap();
                    previous_voucher = c.latest_voucher().cloned();
                    c.on_receipt(&p.receipt, &e).unwrap();
                    checked_costs += p.receipt.body.cost;
                    last_receipt = Some((p.receipt, e));
                }
                Op::Replay => {
                    if let Some((r, e)) = &last_receipt {
                        let before = c.snapshot();
                        let replayed = matches!(
                            c.on_receipt(r, e),
                            Err(ChannelError::ReplayedReceipt { .. })
                        );
                        prop_assert!(replayed);
                        prop_assert_eq!(c.snapshot(), before);
                    }
                }
                Op::TopUp(more) => {
                    st.amount += more;
                    w.refresh(st.clone()).unwrap();
                    c.refresh(st.clone()).unwrap();
                }
                Op::Restart => {
                    w = WorkerChannel::restore(
                        st.clone(), &worker(), credit, ledger.receipts.clone(), ledger.best.clone(),
                    ).unwrap();
                }
            }

            prop_assert!(w.unpaid() <= credit, "unpaid {} > credit {}", w.unpaid(), credit);
            let signed = c.latest_voucher().map_or(0, |v| v.body.cumulative);
            prop_assert_eq!(signed, checked_costs);
            prop_assert_eq!(c.accumulator().cumulative(), checked_costs);
            prop_assert!(signed <= st.amount);
            // Both sides agree on every receipt so far.
            prop_assert_eq!(w.accumulator(), c.accumulator());
            if let Some(v) = w.best_voucher() {
                let paid: u128 = ledger.receipts.iter()
                    .filter(|r| r.seq <= v.body.last_seq).map(|r| r.cost).sum();
                prop_assert_eq!(v.body.cumulative, paid);
            }
        }
    }
}
