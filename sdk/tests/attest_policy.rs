//! Simulated evidence, the production/development policies, the key binding, the canonical
//! encoding and provider selection.

use cocoon_sdk::attest::{
    AttestError, AttestationProvider, Evidence, EvidenceKind, Policy, ProviderConfig,
    RecordedAttestation, SimulatedProvider, WorkerBinding, detect_provider, measurement_id,
    verify_evidence, verify_worker,
};
use proptest::prelude::*;
use tonlib_core::TonAddress;

fn binding() -> WorkerBinding {
    WorkerBinding {
        receipt_key: [0x11; 32],
        encryption_key: [0x22; 32],
        worker: TonAddress::new(0, [0x33; 32].into()),
        chain_nonce: [0x44; 32],
        gpu_evidence_hash: None,
    }
}

fn simulated() -> Evidence {
    SimulatedProvider {
        label: "laptop".into(),
    }
    .attest(&binding().report_data().unwrap())
    .unwrap()
}

#[test]
fn simulated_refused_by_production_policy() {
    let err = verify_evidence(&simulated(), &Policy::production([])).unwrap_err();
    assert!(matches!(err, AttestError::SimulatedRefused), "{err}");
}

#[test]
fn production_policy_cannot_be_talked_into_simulated() {
    let policy = Policy::production([measurement_id(&[0; 48])]).with_allowed_kinds_mask(0b111);
    assert!(!policy.allows_kind(EvidenceKind::Simulated));
    assert!(policy.allows_kind(EvidenceKind::SevSnp));
    let err = verify_evidence(&simulated(), &policy).unwrap_err();
    assert!(matches!(err, AttestError::SimulatedRefused), "{err}");
}

#[test]
fn simulated_accepted_by_development_policy_and_printed_unattested() {
    let policy = Policy::development([]);
    let verified = verify_worker(&simulated(), &policy, &binding()).unwrap();
    assert_eq!(verified.kind, EvidenceKind::Simulated);
    assert_eq!(verified.measurement, [0; 48]);
    assert!(verified.to_string().contains("UNATTESTED (SIMULATED TEE)"));
    assert!(
        simulated()
            .to_string()
            .contains("UNATTESTED (SIMULATED TEE)")
    );
    assert!(policy.to_string().contains("UNATTESTED (SIMULATED TEE)"));
    assert!(!Policy::production([]).to_string().contains("UNATTESTED"));
}

#[test]
fn swapped_encryption_key_rejected() {
    let mut swapped = binding();
    swapped.encryption_key = [0x99; 32];
    let err = verify_worker(&simulated(), &Policy::development([]), &swapped).unwrap_err();
    assert!(matches!(err, AttestError::BindingMismatch), "{err}");
}

#[test]
fn every_binding_field_matters() {
    let report_data = binding().report_data().unwrap();
    let variants: [fn(&mut WorkerBinding); 5] = [
        |b| b.receipt_key[0] ^= 1,
        |b| b.encryption_key[31] ^= 1,
        |b| b.worker = TonAddress::new(-1, [0x33; 32].into()),
        |b| b.chain_nonce[7] ^= 1,
        |b| {
            b.gpu_evidence_hash = Some([0; 32]).map(|mut h| {
                h[0] = 1;
                h
            })
        },
    ];
    for change in variants {
        let mut b = binding();
        change(&mut b);
        assert!(matches!(
            b.check(&report_data),
            Err(AttestError::BindingMismatch)
        ));
    }
    binding().check(&report_data).unwrap();
}

#[test]
fn binding_refuses_workchain_outside_i8() {
    let mut b = binding();
    b.worker = TonAddress::new(300, [0; 32].into());
    assert!(matches!(
        b.report_data(),
        Err(AttestError::WorkchainOutOfRange(300))
    ));
}

#[test]
fn simulated_never_decodes_as_hardware_kind() {
    let bytes = simulated().encode();
    let decoded = Evidence::decode(&bytes).unwrap();
    assert_eq!(decoded.kind(), EvidenceKind::Simulated);
    assert_eq!(
        EvidenceKind::from_code(EvidenceKind::Simulated.code()),
        Some(EvidenceKind::Simulated)
    );
    assert_ne!(EvidenceKind::Simulated.code(), EvidenceKind::SevSnp.code());
    assert_ne!(EvidenceKind::Simulated.code(), EvidenceKind::Tdx.code());
}

#[test]
fn evidence_decode_rejects_bad_input() {
    let bytes = simulated().encode();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Evidence::decode(&trailing),
        Err(AttestError::TrailingBytes { count: 1 })
    ));
    assert!(matches!(
        Evidence::decode(&bytes[..bytes.len() - 1]),
        Err(AttestError::Truncated { .. })
    ));
    assert!(matches!(
        Evidence::decode(&[0xde, 0xad, 0xbe, 0xef]),
        Err(AttestError::UnknownKind { tag: 0xdeadbeef })
    ));
    assert!(matches!(
        Evidence::decode(&[]),
        Err(AttestError::Truncated { .. })
    ));
    let mut bad_utf8 = bytes[..4 + 64].to_vec();
    bad_utf8.extend_from_slice(&[1, 0xff]);
    assert!(matches!(
        Evidence::decode(&bad_utf8),
        Err(AttestError::NotUtf8 { .. })
    ));
}

#[test]
fn provider_without_tee_needs_the_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProviderConfig {
        configfs_root: dir.path().join("no-configfs"),
        sev_guest_device: dir.path().join("no-sev-guest"),
        ..ProviderConfig::default()
    };
    assert!(matches!(
        detect_provider(&config),
        Err(AttestError::ProviderUnavailable(_))
    ));
    let dev = ProviderConfig {
        allow_simulated: true,
        ..config.clone()
    };
    assert_eq!(
        detect_provider(&dev).unwrap().kind(),
        EvidenceKind::Simulated
    );
    let mainnet = ProviderConfig {
        allow_simulated: true,
        mainnet: true,
        ..config
    };
    assert!(matches!(
        detect_provider(&mainnet),
        Err(AttestError::SimulatedOnMainnet)
    ));
}

proptest! {
    #[test]
    fn evidence_round_trips(
        kind in 0u8..3,
        a in proptest::collection::vec(any::<u8>(), 1..300),
        b in proptest::collection::vec(any::<u8>(), 2..300),
        c in proptest::collection::vec(any::<u8>(), 0..300),
        label in "[a-z0-9 é]{0,20}",
        report_data in proptest::array::uniform32(any::<u8>()),
    ) {
        let ev = match kind {
            0 => Evidence::SevSnp { report: vec![7; 1184], vcek_der: a, ask_ark_pem: (!c.is_empty()).then_some(c) },
            1 => Evidence::Tdx { quote: a, collateral_json: b },
            _ => Evidence::simulated([report_data, report_data].concat().try_into().unwrap(), &label),
        };
        let bytes = ev.encode();
        let decoded = Evidence::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.encode(), bytes);
        prop_assert_eq!(decoded, ev);
    }

    #[test]
    fn evidence_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Evidence::decode(&bytes);
    }
}

#[test]
fn development_policy_respects_roots_kind_mask() {
    let policy = Policy::development([]).with_allowed_kinds_mask(0b110);
    let err = verify_evidence(&simulated(), &policy).unwrap_err();
    assert!(
        matches!(err, AttestError::KindNotAllowed(EvidenceKind::Simulated)),
        "{err}"
    );
}

#[test]
fn onchain_record_must_describe_the_evidence() {
    let verified = verify_worker(&simulated(), &Policy::development([]), &binding()).unwrap();
    let record = RecordedAttestation {
        kind: EvidenceKind::Simulated.code(),
        measurement: measurement_id(&[0; 48]),
        evidence_hash: simulated().hash(),
        expires_at: 2_000,
    };
    verified.check_record(&record, 1_999).unwrap();
    assert!(matches!(
        verified.check_record(&record, 2_000),
        Err(AttestError::RecordExpired { .. })
    ));
    let wrong_hash = RecordedAttestation {
        evidence_hash: [0; 32],
        ..record
    };
    assert!(matches!(
        verified.check_record(&wrong_hash, 0),
        Err(AttestError::RecordMismatch {
            field: "evidence_hash"
        })
    ));
    let wrong_kind = RecordedAttestation {
        kind: EvidenceKind::SevSnp.code(),
        ..record
    };
    assert!(matches!(
        verified.check_record(&wrong_kind, 0),
        Err(AttestError::RecordMismatch { field: "kind" })
    ));
    let wrong_measurement = RecordedAttestation {
        measurement: [1; 32],
        ..record
    };
    assert!(matches!(
        verified.check_record(&wrong_measurement, 0),
        Err(AttestError::RecordMismatch {
            field: "measurement"
        })
    ));
}

#[test]
fn policy_from_root_never_accepts_simulated_in_production() {
    use cocoon_sdk::messages::records::RootPolicy;
    let root = RootPolicy {
        allowed_kinds: 0b111,
        measurements: [measurement_id(&[7; 48])].into(),
    };
    let production = Policy::from_root(&root);
    assert!(!production.allows_kind(EvidenceKind::Simulated));
    assert!(production.allows_kind(EvidenceKind::Tdx));
    assert!(production.allows_measurement(&[7; 48]));
    assert!(matches!(
        verify_evidence(&simulated(), &production),
        Err(AttestError::SimulatedRefused)
    ));
    let dev = Policy::development_from_root(&root);
    verify_worker(&simulated(), &dev, &binding()).unwrap();
    let no_sim = RootPolicy {
        allowed_kinds: 0b110,
        ..root
    };
    assert!(matches!(
        verify_evidence(&simulated(), &Policy::development_from_root(&no_sim)),
        Err(AttestError::KindNotAllowed(EvidenceKind::Simulated))
    ));
}
