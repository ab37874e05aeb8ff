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
    escrow_config => EscrowConfig, channel_parties => ChannelParties, channel => Channel,
    settle_proof => SettleProof, receipt_seal => ReceiptSeal,
    receipt_ref_hashes => ReceiptRefHashes, snp_min_tcb => SnpMinTcb, tdx_policy => TdxPolicy,
    tee_policy => TeePolicy, root_data => RootData, worker_data => WorkerData,
    escrow_data => EscrowData,
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
    apply_change => ApplyChange, cancel_change => CancelChange, set_tee_policy => SetTeePolicy,
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
    settlement_record => SettlementRecord, excesses => Excesses,
    // logs
    log_close_requested => LogCloseRequested, log_channel_closed => LogChannelClosed,
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
            "set_tee_policy",
            RootMsg::from_boc(&boc_of("set_tee_policy")).is_ok(),
        ),
        (
            "log_channel_closed",
            Log::from_boc(&boc_of("log_channel_closed")).is_ok(),
        ),
    ] {
        assert!(ok, "{name}");
    }
    // A v2 Escrow message is no Worker message.
    assert!(WorkerMsg::from_boc(&boc_of("open_channel")).is_err());
}

/// A submission built from a signed receipt and voucher carries the receipt's own channel cell
/// and the hashes of its two hash cells (what the Worker rebuilds the body from), and the
/// voucher's signature, cumulative and final flag beside the receipt's seq, tokens and cost.
#[test]
fn a_submission_takes_the_receipt_apart_and_carries_the_voucher_in_its_proof() {
    let r = SignedChannelReceipt::from_boc(&boc_of("signed_receipt")).unwrap();
    let v = SignedVoucher::from_boc(&boc_of("signed_voucher")).unwrap();
    let m = SubmitSettlement::new(42, &r, &v).unwrap();
    let body = r.body.to_cell().unwrap();
    let refs = body.references();
    assert_eq!(
        m.channel.to_cell().unwrap().cell_hash(),
        refs[0].cell_hash()
    );
    assert_eq!(
        m.ref_hashes.hashes_hash,
        <[u8; 32]>::from(refs[1].cell_hash())
    );
    assert_eq!(
        m.ref_hashes.commitments_hash,
        <[u8; 32]>::from(refs[2].cell_hash())
    );
    assert_eq!(
        (m.model_id, m.time, m.seal.signature, m.seal.prev_acc),
        (r.body.model_id, r.body.time, r.signature, r.body.prev_acc)
    );
    assert_eq!(
        m.proof,
        SettleProof {
            voucher_signature: v.signature,
            cumulative: v.body.cumulative,
            is_final: v.body.is_final,
            seq: r.body.seq,
            tokens_in: r.body.tokens_in,
            tokens_out: r.body.tokens_out,
            cost: r.body.cost,
        }
    );
    let boc = m.to_boc().unwrap();
    assert_eq!(
        WorkerMsg::from_boc(&boc).unwrap(),
        WorkerMsg::SubmitSettlement(m)
    );
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
        ApplyChange, CancelChange, SetTeePolicy, WorkerInit, WorkerUpdate, SubmitSettlement, ReportEquivocation,
        TopUpStake, Unbond, WithdrawStake, UpdateRecord, EscrowInit, Deposit, OpenChannel, Settle,
        TopUp, Withdraw, RequestClose, CloseChannel, CollectFees, ChannelOpened, RelayerFee,
        Payout, Excesses, LogCloseRequested, LogChannelClosed, LogSlashed, LogChangeQueued,
        LogChangeApplied, LogChangeCancelled,
    );
}

mod untagged {
    use super::*;
    round_trips!(false;
        RootParams, RootPolicy, RootCodes, PendingChange, GovernanceQueue, Attestation,
        WorkerRecord, WorkerConfig, EscrowConfig, ChannelParties, Channel, SettleProof,
        ReceiptSeal, ReceiptRefHashes, SnpMinTcb, TdxPolicy, TeePolicy, RootData, WorkerData,
        EscrowData, SettlementRecord,
    );
}
