//! Golden vectors of the v2 contract suite (`tests/v2/vectors/*.json`): every BOC decodes into our
//! type, its fields equal the vector's, and it re-encodes byte for byte. Every vector file is
//! either checked here or named in [`NOT_MESSAGES`], so a new one cannot be missed.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::Value;

use super::escrow::*;
use super::notify::*;
use super::records::*;
use super::root::*;
use super::worker::*;
use crate::channel::{ChannelReceipt, ChannelRef, SignedChannelReceipt, SignedVoucher, Voucher};
use crate::messages::testing::{Arb, Json, check_round_trip, json_matches};
use crate::receipt::{ReceiptCommitments, ReceiptHashes};
use crate::tlb::TlbType;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/v2/vectors")
}

fn vectors(name: &str) -> Vec<Value> {
    let p = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

/// TL-B's `final` is a Rust keyword: our field is `is_final`.
fn rust_names(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let k = if k == "final" { "is_final" } else { k.as_str() };
                    (k.to_owned(), rust_names(x))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(rust_names).collect()),
        other => other.clone(),
    }
}

fn check<T: TlbType + Json + std::fmt::Debug>(name: &str) {
    let vs = vectors(name);
    assert!(!vs.is_empty(), "{name}: no vectors");
    for (i, v) in vs.iter().enumerate() {
        let boc = STANDARD.decode(v["boc"].as_str().unwrap()).unwrap();
        let value = T::from_boc(&boc).unwrap_or_else(|e| panic!("{name}[{i}]: {e}"));
        let ours = value.to_json();
        let theirs = rust_names(&v["fields"]);
        assert!(
            json_matches(&ours, &theirs),
            "{name}[{i}]: fields differ\n ours: {ours}\n file: {theirs}"
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
    ($($file:ident => $t:ty),* $(,)?) => {
        $( #[test] fn $file() { check::<$t>(stringify!($file)); } )*
        const CHECKED: &[&str] = &[$(stringify!($file)),*];
    };
}

vector_tests! {
    // records
    root_params => RootParams, root_policy => RootPolicy, root_codes => RootCodes,
    pending_change => PendingChange, governance_queue => GovernanceQueue,
    attestation => Attestation, worker_record => WorkerRecord, worker_config => WorkerConfig,
    escrow_config => EscrowConfig, channel_terms => ChannelTerms, channel => Channel,
    settle_proof => SettleProof, channel_route => ChannelRoute, root_data => RootData,
    worker_data => WorkerData, escrow_data => EscrowData,
    // signed cells (crate::channel)
    channel_ref => ChannelRef, receipt_hashes => ReceiptHashes,
    receipt_commitments => ReceiptCommitments, receipt_body => ChannelReceipt,
    signed_receipt => SignedChannelReceipt, voucher_body => Voucher,
    signed_voucher => SignedVoucher,
    // to Root
    register_worker => RegisterWorker, update_worker => UpdateWorker,
    create_escrow => CreateEscrow, set_params => SetParams, set_allowed_kinds => SetAllowedKinds,
    add_measurement => AddMeasurement, remove_measurement => RemoveMeasurement,
    set_model => SetModel, remove_model => RemoveModel, set_codes => SetCodes,
    transfer_ownership => TransferOwnership, accept_ownership => AcceptOwnership,
    apply_change => ApplyChange, cancel_change => CancelChange,
    // to Worker
    worker_init => WorkerInit, worker_update => WorkerUpdate,
    submit_settlement => SubmitSettlement, report_equivocation => ReportEquivocation,
    top_up_stake => TopUpStake, unbond => Unbond, withdraw_stake => WithdrawStake,
    update_record => UpdateRecord,
    // to Escrow
    escrow_init => EscrowInit, deposit => Deposit, open_channel => OpenChannel,
    settle => Settle, top_up => TopUp, withdraw => Withdraw, request_close => RequestClose,
    close_channel => CloseChannel, collect_fees => CollectFees,
    // to wallets
    channel_opened => ChannelOpened, relayer_fee => RelayerFee, payout => Payout,
    excesses => Excesses,
    // logs
    log_channel_settled => LogChannelSettled, log_close_requested => LogCloseRequested,
    log_channel_closed => LogChannelClosed, log_channel_final_settled => LogChannelFinalSettled,
    log_slashed => LogSlashed, log_change_queued => LogChangeQueued,
    log_change_applied => LogChangeApplied, log_change_cancelled => LogChangeCancelled,
}

/// Vector files that are not one message or record: the child addresses (checked in
/// `contracts::v2`) and a channel end to end (`sdk/tests/channel_vectors.rs`).
const NOT_MESSAGES: &[&str] = &["child_addresses", "receipt_chain"];

#[test]
fn every_vector_file_is_checked() {
    let mut unchecked = Vec::new();
    for e in std::fs::read_dir(dir()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".json")
            && !CHECKED.contains(&stem)
            && !NOT_MESSAGES.contains(&stem)
        {
            unchecked.push(stem.to_owned());
        }
    }
    assert!(
        unchecked.is_empty(),
        "vector files nobody checks: {unchecked:?}"
    );
}

#[test]
fn messages_dispatch_on_their_opcode() {
    for (name, ok) in [
        (
            "open_channel",
            EscrowMsg::from_boc(&boc_of("open_channel")).is_ok(),
        ),
        ("settle", EscrowMsg::from_boc(&boc_of("settle")).is_ok()),
        (
            "submit_settlement",
            WorkerMsg::from_boc(&boc_of("submit_settlement")).is_ok(),
        ),
        (
            "apply_change",
            RootMsg::from_boc(&boc_of("apply_change")).is_ok(),
        ),
        ("payout", WalletMsg::from_boc(&boc_of("payout")).is_ok()),
        (
            "log_channel_settled",
            Log::from_boc(&boc_of("log_channel_settled")).is_ok(),
        ),
    ] {
        assert!(ok, "{name}");
    }
    // A v2 Escrow message is no Worker message.
    assert!(WorkerMsg::from_boc(&boc_of("open_channel")).is_err());
}

fn boc_of(name: &str) -> Vec<u8> {
    STANDARD
        .decode(vectors(name)[0]["boc"].as_str().unwrap())
        .unwrap()
}

macro_rules! round_trips {
    ($tagged:expr; $($t:ident),* $(,)?) => { proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        $( #[test] #[allow(non_snake_case)] fn $t(v in <$t as Arb>::arb()) {
            check_round_trip(&v, $tagged)?;
        } )*
    } };
}

mod tagged {
    use super::*;
    round_trips!(true;
        RegisterWorker, UpdateWorker, CreateEscrow, SetParams, SetAllowedKinds, AddMeasurement,
        RemoveMeasurement, SetModel, RemoveModel, SetCodes, TransferOwnership, AcceptOwnership,
        ApplyChange, CancelChange, WorkerInit, WorkerUpdate, SubmitSettlement, ReportEquivocation,
        TopUpStake, Unbond, WithdrawStake, UpdateRecord, EscrowInit, Deposit, OpenChannel, Settle,
        TopUp, Withdraw, RequestClose, CloseChannel, CollectFees, ChannelOpened, RelayerFee,
        Payout, Excesses, LogChannelSettled, LogCloseRequested, LogChannelClosed,
        LogChannelFinalSettled, LogSlashed, LogChangeQueued, LogChangeApplied, LogChangeCancelled,
    );
}

mod untagged {
    use super::*;
    round_trips!(false;
        RootParams, RootPolicy, RootCodes, PendingChange, GovernanceQueue, Attestation,
        WorkerRecord, WorkerConfig, EscrowConfig, ChannelTerms, Channel, SettleProof, ChannelRoute,
        RootData, WorkerData, EscrowData,
    );
}
