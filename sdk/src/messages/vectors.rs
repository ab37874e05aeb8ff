//! Golden vectors from the contract suite (`tests/vectors/*.json`): every BOC decodes into our
//! type, re-encodes byte for byte, and its fields equal the vector's.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::escrow::*;
use super::notify::*;
use super::records::*;
use super::root::*;
use super::testing::{Json, json_matches};
use super::worker::*;
use crate::tlb::TlbType;

fn vectors(name: &str) -> Vec<Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn check<T: TlbType + Json + std::fmt::Debug>(name: &str) {
    let vs = vectors(name);
    assert!(!vs.is_empty(), "{name}: no vectors");
    for (i, v) in vs.iter().enumerate() {
        let boc = STANDARD.decode(v["boc"].as_str().unwrap()).unwrap();
        let value = T::from_boc(&boc).unwrap_or_else(|e| panic!("{name}[{i}]: {e}"));
        let ours = value.to_json();
        assert!(
            json_matches(&ours, &v["fields"]),
            "{name}[{i}]: fields differ\n ours: {ours}\n file: {}",
            v["fields"]
        );
        let again = value.to_boc().unwrap();
        assert_eq!(
            STANDARD.encode(&again),
            STANDARD.encode(&boc),
            "{name}[{i}]: re-encoded BOC differs"
        );
    }
}

macro_rules! vector_tests {
    ($($file:ident => $t:ty),* $(,)?) => { $( #[test] fn $file() { check::<$t>(stringify!($file)); } )* };
}

vector_tests! {
    root_params => RootParams, root_policy => RootPolicy, attestation => Attestation,
    worker_record => WorkerRecord, worker_config => WorkerConfig, escrow_config => EscrowConfig,
    job_route => JobRoute, job => Job, root_codes => RootCodes, root_data => RootData,
    worker_data => WorkerData, escrow_data => EscrowData,
    register_worker => RegisterWorker, update_worker => UpdateWorker, create_escrow => CreateEscrow,
    set_params => SetParams, set_allowed_kinds => SetAllowedKinds, add_measurement => AddMeasurement,
    remove_measurement => RemoveMeasurement, set_model => SetModel, remove_model => RemoveModel,
    set_codes => SetCodes, transfer_ownership => TransferOwnership, accept_ownership => AcceptOwnership,
    worker_init => WorkerInit, worker_update => WorkerUpdate, submit_receipts => SubmitReceipts,
    pay_worker => PayWorker, report_equivocation => ReportEquivocation, top_up_stake => TopUpStake,
    unbond => Unbond, withdraw_stake => WithdrawStake, withdraw_earnings => WithdrawEarnings,
    escrow_init => EscrowInit, deposit => Deposit, open_job => OpenJob, settle => Settle,
    expire_job => ExpireJob, withdraw => Withdraw, close => Close, collect_fees => CollectFees,
    job_opened => JobOpened, relayer_fee => RelayerFee, payout => Payout, excesses => Excesses,
    log_settled => LogSettled, log_receipt_skipped => LogReceiptSkipped,
    log_job_expired => LogJobExpired, log_slashed => LogSlashed,
}
