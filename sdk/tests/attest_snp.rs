//! SEV-SNP verification against the vendor sample shipped in the `sev` crate (Milan report and
//! VCEK), and tampered copies of it.

use std::sync::Arc;

use cocoon_sdk::attest::{
    AttestError, Evidence, EvidenceKind, FixedClock, Policy, SnpProduct, SnpTcb, Tcb,
    WorkerBinding, measurement_id, verify_evidence,
};
use tonlib_core::TonAddress;

const REPORT_HEX: &str = include_str!("fixtures/attest/sev/report_milan.hex");
const VCEK_MILAN: &[u8] = include_bytes!("fixtures/attest/sev/vcek_milan.der");
const VCEK_TURIN: &[u8] = include_bytes!("fixtures/attest/sev/vcek_turin.der");
const CHAIN_MILAN: &[u8] = include_bytes!("fixtures/attest/sev/cert_chain_milan");
const CHAIN_GENOA: &[u8] = include_bytes!("fixtures/attest/sev/genoa_ask_ark.pem");
/// 2025-06-27T00:00:00Z, inside the sample VCEK's validity.
const NOW: u64 = 1_750_982_400;
const OFF_POLICY: usize = 0x08;
const OFF_REPORT_DATA: usize = 0x50;
const OFF_MEASUREMENT: usize = 0x90;
const OFF_SIGNATURE: usize = 0x2A0;

fn report() -> Vec<u8> {
    hex::decode(REPORT_HEX.trim()).unwrap()
}

fn measurement_of(report: &[u8]) -> [u8; 48] {
    report[OFF_MEASUREMENT..OFF_MEASUREMENT + 48]
        .try_into()
        .unwrap()
}

fn evidence(report: Vec<u8>) -> Evidence {
    Evidence::SevSnp {
        report,
        vcek_der: VCEK_MILAN.to_vec(),
        ask_ark_pem: None,
    }
}

/// Production policy whose allow-list holds the measurement of `report`.
fn policy_for(report: &[u8]) -> Policy {
    Policy::production([measurement_id(&measurement_of(report))])
        .with_clock(Arc::new(FixedClock(NOW)))
}

#[test]
fn snp_vendor_sample_verifies() {
    let raw = report();
    let verified = verify_evidence(&evidence(raw.clone()), &policy_for(&raw)).unwrap();
    assert_eq!(verified.kind, EvidenceKind::SevSnp);
    assert_eq!(verified.measurement, measurement_of(&raw));
    assert_eq!(
        verified.tcb,
        Tcb::Snp {
            product: SnpProduct::Milan,
            tcb: SnpTcb {
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115
            }
        }
    );
    assert_eq!(
        verified.report_data[..],
        raw[OFF_REPORT_DATA..OFF_REPORT_DATA + 64]
    );
    assert_eq!(verified.evidence_hash, evidence(raw).hash());
}

#[test]
fn snp_with_its_own_milan_chain_verifies() {
    let raw = report();
    let ev = Evidence::SevSnp {
        report: raw.clone(),
        vcek_der: VCEK_MILAN.to_vec(),
        ask_ark_pem: Some(CHAIN_MILAN.to_vec()),
    };
    verify_evidence(&ev, &policy_for(&raw)).unwrap();
}

#[test]
fn snp_flipped_report_data_bit_rejected() {
    let mut raw = report();
    raw[OFF_REPORT_DATA] ^= 0x01;
    let err = verify_evidence(&evidence(raw.clone()), &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::ReportSignatureInvalid), "{err}");
}

#[test]
fn snp_flipped_measurement_bit_rejected() {
    let mut raw = report();
    raw[OFF_MEASUREMENT] ^= 0x01;
    // The tampered measurement is on the allow-list, so only the signature can catch it.
    let err = verify_evidence(&evidence(raw.clone()), &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::ReportSignatureInvalid), "{err}");
}

#[test]
fn snp_flipped_signature_bit_rejected() {
    let raw = report();
    let mut tampered = raw.clone();
    tampered[OFF_SIGNATURE + 5] ^= 0x01;
    let err = verify_evidence(&evidence(tampered), &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::ReportSignatureInvalid), "{err}");
}

#[test]
fn snp_wrong_product_chain_rejected() {
    let raw = report();
    let mut genoa_only = policy_for(&raw);
    genoa_only.snp.products = vec![SnpProduct::Genoa, SnpProduct::Turin];
    let err = verify_evidence(&evidence(raw.clone()), &genoa_only).unwrap_err();
    assert!(matches!(err, AttestError::WrongProductChain(_)), "{err}");
}

#[test]
fn snp_shipped_chain_of_another_product_rejected() {
    let raw = report();
    let ev = Evidence::SevSnp {
        report: raw.clone(),
        vcek_der: VCEK_MILAN.to_vec(),
        ask_ark_pem: Some(CHAIN_GENOA.to_vec()),
    };
    let err = verify_evidence(&ev, &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::WrongProductChain(_)), "{err}");
}

#[test]
fn snp_vcek_of_another_chip_rejected() {
    let raw = report();
    let ev = Evidence::SevSnp {
        report: raw.clone(),
        vcek_der: VCEK_TURIN.to_vec(),
        ask_ark_pem: None,
    };
    let err = verify_evidence(&ev, &policy_for(&raw)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::ReportSignatureInvalid | AttestError::VcekMismatch { .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_debug_allowed_rejected() {
    let raw = report();
    let mut tampered = raw.clone();
    // GUEST_POLICY bit 19 (DEBUG).
    tampered[OFF_POLICY + 2] |= 1 << 3;
    let err = verify_evidence(&evidence(tampered), &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::DebugAllowed), "{err}");
}

#[test]
fn snp_migration_agent_rejected() {
    let raw = report();
    let mut tampered = raw.clone();
    // GUEST_POLICY bit 18 (MIGRATE_MA).
    tampered[OFF_POLICY + 2] |= 1 << 2;
    let err = verify_evidence(&evidence(tampered), &policy_for(&raw)).unwrap_err();
    assert!(matches!(err, AttestError::MigrationAgentAllowed), "{err}");
}

#[test]
fn snp_wrong_vmpl_rejected() {
    let raw = report();
    let mut policy = policy_for(&raw);
    policy.snp.vmpl = 1;
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::WrongVmpl {
                expected: 1,
                actual: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn snp_measurement_not_allowed_rejected() {
    let raw = report();
    let mut other = measurement_of(&raw);
    other[0] ^= 0xff;
    let policy = Policy::production([measurement_id(&other)]).with_clock(Arc::new(FixedClock(NOW)));
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::MeasurementNotAllowed {
                kind: EvidenceKind::SevSnp,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn snp_tcb_below_minimum_rejected() {
    let raw = report();
    let mut policy = policy_for(&raw);
    policy.snp.min_tcb = SnpTcb {
        bootloader: 3,
        tee: 0,
        snp: 9,
        microcode: 115,
    };
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TcbTooLow {
                component: "snp",
                reported: 8,
                minimum: 9
            }
        ),
        "{err}"
    );
}

#[test]
fn snp_tcb_below_minimum_rejected_for_every_component() {
    let sample = SnpTcb {
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 115,
    };
    let raised: [(&str, SnpTcb); 4] = [
        (
            "bootloader",
            SnpTcb {
                bootloader: 4,
                ..sample
            },
        ),
        ("tee", SnpTcb { tee: 1, ..sample }),
        ("snp", SnpTcb { snp: 9, ..sample }),
        (
            "microcode",
            SnpTcb {
                microcode: 116,
                ..sample
            },
        ),
    ];
    for (name, min) in raised {
        let raw = report();
        let mut policy = policy_for(&raw);
        policy.snp.min_tcb = min;
        let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
        assert!(
            matches!(err, AttestError::TcbTooLow { component, .. } if component == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn snp_tcb_below_the_products_minimum_rejected() {
    let raw = report();
    let mut policy = policy_for(&raw);
    policy.snp.min_tcb_per_product.insert(
        SnpProduct::Milan,
        SnpTcb {
            microcode: 200,
            ..SnpTcb::default()
        },
    );
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TcbTooLow {
                component: "microcode",
                reported: 115,
                minimum: 200
            }
        ),
        "{err}"
    );
}

#[test]
fn snp_tcb_at_minimum_accepted() {
    let raw = report();
    let mut policy = policy_for(&raw);
    policy.snp.min_tcb = SnpTcb {
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 115,
    };
    verify_evidence(&evidence(raw), &policy).unwrap();
}

#[test]
fn snp_expired_vcek_rejected() {
    let raw = report();
    // 2100-01-01: long after any VCEK's validity.
    let policy = policy_for(&raw).with_clock(Arc::new(FixedClock(4_102_444_800)));
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "VCEK", .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_kind_not_allowed_rejected() {
    let raw = report();
    let policy = policy_for(&raw).with_allowed_kinds([EvidenceKind::Tdx]);
    let err = verify_evidence(&evidence(raw), &policy).unwrap_err();
    assert!(
        matches!(err, AttestError::KindNotAllowed(EvidenceKind::SevSnp)),
        "{err}"
    );
}

#[test]
fn snp_garbage_vcek_rejected() {
    let raw = report();
    let ev = Evidence::SevSnp {
        report: raw.clone(),
        vcek_der: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        ask_ark_pem: None,
    };
    let err = verify_evidence(&ev, &policy_for(&raw)).unwrap_err();
    assert!(
        matches!(err, AttestError::Certificate { which: "VCEK", .. }),
        "{err}"
    );
}

#[test]
fn snp_sample_does_not_bind_our_keys() {
    let raw = report();
    let verified = verify_evidence(&evidence(raw.clone()), &policy_for(&raw)).unwrap();
    let binding = WorkerBinding {
        receipt_key: [1; 32],
        encryption_key: [2; 32],
        worker: TonAddress::new(0, [3; 32].into()),
        chain_nonce: [4; 32],
        gpu_evidence_hash: None,
    };
    let err = verified.check_binding(&binding).unwrap_err();
    assert!(matches!(err, AttestError::BindingMismatch), "{err}");
}

#[test]
fn snp_evidence_round_trips_through_canonical_encoding() {
    let ev = Evidence::SevSnp {
        report: report(),
        vcek_der: VCEK_MILAN.to_vec(),
        ask_ark_pem: Some(CHAIN_MILAN.to_vec()),
    };
    let bytes = ev.encode();
    assert_eq!(Evidence::decode(&bytes).unwrap(), ev);
    let mut short = report();
    short.pop();
    let bad = Evidence::SevSnp {
        report: short,
        vcek_der: VCEK_MILAN.to_vec(),
        ask_ark_pem: None,
    }
    .encode();
    assert!(matches!(
        Evidence::decode(&bad),
        Err(AttestError::BadLength {
            field: "report",
            ..
        })
    ));
}
