//! Intel TDX verification against the vendor sample shipped in the `dcap-qvl` crate (a TDX quote
//! and its collateral, valid 2025-06-19..2025-07-19), and tampered copies of it.

use std::sync::Arc;

use cocoon_sdk::attest::{
    AttestError, Evidence, EvidenceKind, FixedClock, Policy, TD_ATTRIBUTE_SEPT_VE_DISABLE, Tcb,
    measurement_id, tdx_measurement, verify_evidence,
};

const QUOTE: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote_collateral.json");
/// 2025-06-27T00:00:00Z, inside the collateral's validity window.
const NOW: u64 = 1_750_982_400;
/// REPORT_DATA sits 520 bytes into the TD report, which follows the 48-byte quote header.
const OFF_REPORT_DATA: usize = 48 + 520;

fn sample_measurement() -> [u8; 48] {
    let quote = dcap_qvl::quote::Quote::parse(QUOTE).unwrap();
    let td = quote.report.as_td10().unwrap();
    tdx_measurement(&td.mr_td, &td.rt_mr0, &td.rt_mr1, &td.rt_mr2)
}

fn evidence(quote: &[u8], collateral: &[u8]) -> Evidence {
    Evidence::Tdx {
        quote: quote.to_vec(),
        collateral_json: collateral.to_vec(),
    }
}

fn policy_at(now: u64) -> Policy {
    Policy::production([measurement_id(&sample_measurement())])
        .with_clock(Arc::new(FixedClock(now)))
}

#[test]
fn tdx_vendor_sample_verifies() {
    let verified = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy_at(NOW)).unwrap();
    assert_eq!(verified.kind, EvidenceKind::Tdx);
    assert_eq!(verified.measurement, sample_measurement());
    assert!(
        matches!(&verified.tcb, Tcb::Tdx { status, .. } if status == "UpToDate"),
        "{:?}",
        verified.tcb
    );
    assert_eq!(
        verified.report_data[..],
        QUOTE[OFF_REPORT_DATA..OFF_REPORT_DATA + 64]
    );
}

#[test]
fn tdx_stale_collateral_rejected() {
    // 2025-09-01: the sample's TCB info and CRLs expired in July 2025.
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy_at(1_756_684_800)).unwrap_err();
    assert!(matches!(err, AttestError::TdxQuoteRejected(_)), "{err}");
}

#[test]
fn tdx_collateral_not_yet_valid_rejected() {
    // 2024-01-01: before the collateral was issued.
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy_at(1_704_067_200)).unwrap_err();
    assert!(matches!(err, AttestError::TdxQuoteRejected(_)), "{err}");
}

#[test]
fn tdx_flipped_report_data_bit_rejected() {
    let mut quote = QUOTE.to_vec();
    quote[OFF_REPORT_DATA] ^= 0x01;
    let err = verify_evidence(&evidence(&quote, COLLATERAL), &policy_at(NOW)).unwrap_err();
    assert!(matches!(err, AttestError::TdxQuoteRejected(_)), "{err}");
}

#[test]
fn tdx_flipped_mrtd_bit_rejected() {
    let mut quote = QUOTE.to_vec();
    // MR_TD follows TEE_TCB_SVN(16) MRSEAM(48) MRSIGNERSEAM(48) SEAMATTRIBUTES(8) TDATTRIBUTES(8) XFAM(8).
    quote[48 + 136] ^= 0x01;
    let err = verify_evidence(&evidence(&quote, COLLATERAL), &policy_at(NOW)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TdxQuoteRejected(_) | AttestError::MeasurementNotAllowed { .. }
        ),
        "{err}"
    );
}

#[test]
fn tdx_measurement_not_allowed_rejected() {
    let policy = Policy::production([[0x4d; 32]]).with_clock(Arc::new(FixedClock(NOW)));
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::MeasurementNotAllowed {
                kind: EvidenceKind::Tdx,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tdx_status_not_allowed_rejected() {
    let mut policy = policy_at(NOW);
    policy.tdx.allowed_statuses = vec!["SWHardeningNeeded".into()];
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy).unwrap_err();
    assert!(
        matches!(err, AttestError::TdxStatusNotAllowed(ref s) if s == "UpToDate"),
        "{err}"
    );
}

#[test]
fn tdx_malformed_collateral_rejected() {
    let err = verify_evidence(
        &evidence(QUOTE, b"{\"not\":\"collateral\"}"),
        &policy_at(NOW),
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::TdxCollateral(_)), "{err}");
}

#[test]
fn tdx_truncated_quote_rejected() {
    let err = verify_evidence(&evidence(&QUOTE[..600], COLLATERAL), &policy_at(NOW)).unwrap_err();
    assert!(matches!(err, AttestError::TdxQuoteRejected(_)), "{err}");
}

#[test]
fn tdx_evidence_round_trips_and_hash_covers_collateral() {
    let ev = evidence(QUOTE, COLLATERAL);
    assert_eq!(Evidence::decode(&ev.encode()).unwrap(), ev);
    let mut other = COLLATERAL.to_vec();
    other.push(b' ');
    assert_ne!(evidence(QUOTE, &other).hash(), ev.hash());
}

fn td() -> dcap_qvl::quote::TDReport10 {
    *dcap_qvl::quote::Quote::parse(QUOTE)
        .unwrap()
        .report
        .as_td10()
        .unwrap()
}

#[test]
fn tdx_policy_on_the_samples_own_registers_accepted() {
    let td = td();
    let mut policy = policy_at(NOW);
    policy.tdx.mr_config_id = Some(td.mr_config_id);
    policy.tdx.mr_owner = Some(td.mr_owner);
    policy.tdx.mr_owner_config = Some(td.mr_owner_config);
    policy.tdx.rtmr3 = vec![[9; 48], td.rt_mr3];
    let attributes = u64::from_le_bytes(td.td_attributes);
    policy.tdx.td_attributes_mask = u64::MAX;
    policy.tdx.td_attributes = attributes;
    verify_evidence(&evidence(QUOTE, COLLATERAL), &policy).unwrap();
}

fn other(register: &[u8; 48]) -> [u8; 48] {
    let mut r = *register;
    r[0] ^= 0x01;
    r
}

fn register_refused(policy: Policy, name: &str) {
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy).unwrap_err();
    assert!(
        matches!(&err, AttestError::TdxRegisterMismatch { register, .. } if *register == name),
        "{name}: {err}"
    );
}

#[test]
fn tdx_wrong_mrconfigid_rejected() {
    let mut policy = policy_at(NOW);
    policy.tdx.mr_config_id = Some(other(&td().mr_config_id));
    register_refused(policy, "MRCONFIGID");
}

#[test]
fn tdx_wrong_mrowner_rejected() {
    let mut policy = policy_at(NOW);
    policy.tdx.mr_owner = Some(other(&td().mr_owner));
    register_refused(policy, "MROWNER");
}

#[test]
fn tdx_wrong_mrownerconfig_rejected() {
    let mut policy = policy_at(NOW);
    policy.tdx.mr_owner_config = Some(other(&td().mr_owner_config));
    register_refused(policy, "MROWNERCONFIG");
}

#[test]
fn tdx_rtmr3_not_allowed_rejected() {
    let mut policy = policy_at(NOW);
    policy.tdx.rtmr3 = vec![other(&td().rt_mr3)];
    register_refused(policy, "RTMR3");
}

#[test]
fn tdx_td_attributes_policy_rejected() {
    let attributes = u64::from_le_bytes(td().td_attributes);
    let mut policy = policy_at(NOW);
    // Require SEPT_VE_DISABLE to be the opposite of what the sample has.
    policy.tdx.td_attributes_mask = TD_ATTRIBUTE_SEPT_VE_DISABLE;
    policy.tdx.td_attributes = !attributes & TD_ATTRIBUTE_SEPT_VE_DISABLE;
    let err = verify_evidence(&evidence(QUOTE, COLLATERAL), &policy).unwrap_err();
    assert!(
        matches!(err, AttestError::TdxAttributes { actual, .. } if actual == attributes),
        "{err}"
    );
}
