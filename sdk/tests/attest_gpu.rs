//! NVIDIA Hopper GPU attestation: the vendor samples from `nv-local-gpu-verifier` (report,
//! device chain, RIMs) against NVIDIA's pinned roots, and evidence from a test PKI
//! (`support::nv_pki`) for what needs our nonce: the binding to the worker's keys, the
//! measurement comparison, the RIM versions. Every rule has a named tamper test.

mod support;

use std::sync::Arc;

use cocoon_sdk::attest::{
    AttestError, Evidence, FixedClock, GpuEvidence, GpuEvidenceProvider, GpuTrust, Policy, SnpTcb,
    SnpTrust, SpdmReport, WorkerBinding, measurement_id, verify_gpu, verify_rim, verify_worker,
};
use cocoon_sdk::tlb::TonAddress;
use support::amd_pki;
use support::nv_pki::{self as nv, EmulatedGpu};

// --- vendor samples against NVIDIA's roots ----------------------------------------------------

fn nvidia_policy(now: u64) -> Policy {
    Policy::production([]).with_clock(Arc::new(FixedClock(now)))
}

fn vendor_evidence() -> GpuEvidence {
    GpuEvidence::from_vendor_files(nv::REPORT_HEX, nv::CHAIN_PEM, nv::DRIVER_RIM, nv::VBIOS_RIM)
        .unwrap()
}

#[test]
fn gpu_vendor_report_parses() {
    let r = SpdmReport::parse(&nv::vendor_report()).unwrap();
    assert_eq!(r.measurements.len(), 64);
    assert!(r.measurements.values().all(|m| m.len() == 48));
    assert_eq!(r.driver_version().as_deref(), Some(nv::DRIVER_VERSION));
    assert_eq!(r.vbios_version().as_deref(), Some(nv::VBIOS_VERSION));
    assert_eq!(
        hex::encode(r.nonce),
        "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
    );
}

/// Chain to NVIDIA's device root, report signature and FWID pass on the vendor sample; the
/// package ships no RIMs for its driver, so verification stops at the RIM version, naming it.
#[test]
fn gpu_vendor_report_chain_and_signature_verify_up_to_the_rim_versions() {
    let err = verify_gpu(&vendor_evidence(), &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(&err, AttestError::GpuRimVersionMismatch { which: "driver RIM", rim, report }
            if rim == "545.00" && report == nv::DRIVER_VERSION),
        "{err}"
    );
}

#[test]
fn gpu_vendor_rims_signatures_verify_under_nvidias_rim_root() {
    let driver = verify_rim(nv::DRIVER_RIM, &nvidia_policy(nv::NOW)).unwrap();
    assert_eq!(driver.version, "545.00");
    assert!(!driver.measurements.is_empty());
    let vbios = verify_rim(nv::VBIOS_RIM, &nvidia_policy(nv::NOW)).unwrap();
    assert_eq!(vbios.version, "96.00.5E.00.01");
    assert!(
        driver
            .measurements
            .keys()
            .all(|i| !vbios.measurements.contains_key(i)),
        "driver and VBIOS RIMs cover disjoint indices"
    );
}

#[test]
fn gpu_vendor_rim_with_a_changed_golden_value_rejected() {
    let xml = String::from_utf8(nv::DRIVER_RIM.to_vec()).unwrap();
    let tampered = xml.replacen(
        "0e0ee161b59bf124ce6b6dca6efa7616",
        "0e0ee161b59bf124ce6b6dca6efa7617",
        1,
    );
    assert_ne!(tampered, xml);
    let err = verify_rim(tampered.as_bytes(), &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(err, AttestError::GpuRimSignatureInvalid { .. }),
        "{err}"
    );
}

#[test]
fn gpu_vendor_rim_with_a_changed_signature_value_rejected() {
    let xml = String::from_utf8(nv::DRIVER_RIM.to_vec()).unwrap();
    let start = xml.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut bytes = xml.into_bytes();
    // Swap two base64 digits of the signature.
    let pos = (start..start + 40)
        .find(|&i| bytes[i] != bytes[i + 1])
        .unwrap();
    bytes.swap(pos, pos + 1);
    let err = verify_rim(&bytes, &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(err, AttestError::GpuRimSignatureInvalid { .. }),
        "{err}"
    );
}

#[test]
fn gpu_vendor_rim_signing_chain_expired_rejected() {
    // 2026-01-01: the vendor RIM signer (valid until 2025-06-26) has expired.
    let err = verify_rim(nv::DRIVER_RIM, &nvidia_policy(1_767_225_600)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "RIM", .. }
        ),
        "{err}"
    );
}

#[test]
fn gpu_vendor_rim_with_another_signature_profile_rejected() {
    let xml = String::from_utf8(nv::DRIVER_RIM.to_vec()).unwrap();
    let weaker = xml.replacen(
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
        "",
        1,
    );
    assert_ne!(weaker, xml);
    let err = verify_rim(weaker.as_bytes(), &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(matches!(err, AttestError::GpuRimInvalid { .. }), "{err}");
}

#[test]
fn gpu_vendor_report_tampered_measurement_rejected() {
    let mut ev = vendor_evidence();
    let off = nv::measurement_offset(&ev.report, 5);
    ev.report[off] ^= 0x01;
    let err = verify_gpu(&ev, &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(err, AttestError::GpuReportSignatureInvalid),
        "{err}"
    );
}

#[test]
fn gpu_vendor_report_tampered_nonce_rejected() {
    let mut ev = vendor_evidence();
    ev.report[10] ^= 0x01;
    let err = verify_gpu(&ev, &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(err, AttestError::GpuReportSignatureInvalid),
        "{err}"
    );
}

#[test]
fn gpu_vendor_chain_missing_an_intermediate_rejected() {
    let mut ev = vendor_evidence();
    ev.cert_chain.remove(1);
    let err = verify_gpu(&ev, &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuCertChain {
                which: "GPU device",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_vendor_chain_with_a_tampered_certificate_rejected() {
    let mut ev = vendor_evidence();
    // A byte in the middle of the intermediate that issued the attestation key.
    let n = ev.cert_chain[1].len();
    ev.cert_chain[1][n / 2] ^= 0x01;
    let err = verify_gpu(&ev, &nvidia_policy(nv::NOW)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuCertChain {
                which: "GPU device",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_vendor_chain_under_another_root_rejected() {
    let policy = {
        let mut p = nvidia_policy(nv::NOW);
        p.gpu.trust = nv::trust();
        p
    };
    let err = verify_gpu(&vendor_evidence(), &policy).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuCertChain {
                which: "GPU device",
                ..
            }
        ),
        "{err}"
    );
}

// --- test PKI: binding, measurements, versions -------------------------------------------------

fn binding() -> WorkerBinding {
    WorkerBinding {
        receipt_key: [1; 32],
        encryption_key: [2; 32],
        worker: TonAddress::new(0, [3; 32].into()),
        chain_nonce: [4; 32],
        gpu_evidence_hash: None,
    }
}

fn test_policy() -> Policy {
    let mut p = Policy::production([]).with_clock(Arc::new(FixedClock(amd_pki::NOW)));
    p.gpu.trust = nv::trust();
    p
}

/// SEV-SNP evidence (the `sev` Milan sample re-signed by the AMD test PKI) carrying
/// `report_data`, and the policy that accepts it with the GPU test roots.
fn snp(report_data: [u8; 64]) -> (Evidence, Policy) {
    const TCB: SnpTcb = SnpTcb {
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 115,
    };
    let mut report =
        hex::decode(include_str!("fixtures/attest/sev/report_milan.hex").trim()).unwrap();
    report[amd_pki::OFF_REPORT_DATA..amd_pki::OFF_REPORT_DATA + 64].copy_from_slice(&report_data);
    amd_pki::set_tcb(&mut report, TCB);
    amd_pki::sign_report(&mut report);
    let chip_id = report[amd_pki::OFF_CHIP_ID..amd_pki::OFF_CHIP_ID + 64].to_vec();
    let m: [u8; 48] = report[0x90..0xC0].try_into().unwrap();
    let mut policy =
        Policy::production([measurement_id(&m)]).with_clock(Arc::new(FixedClock(amd_pki::NOW)));
    policy.snp.trust = SnpTrust::Custom(vec![amd_pki::root(amd_pki::ark(), amd_pki::ask())]);
    policy.gpu.trust = nv::trust();
    let ev = Evidence::SevSnp {
        vcek_der: amd_pki::vcek(&chip_id, TCB, amd_pki::LEAF_FROM, amd_pki::LEAF_UNTIL),
        report,
        ask_ark_pem: None,
    };
    (ev, policy)
}

/// What a worker does: GPU evidence for its binding's nonce, its hash in REPORT_DATA.
fn worker_evidence(gpu: GpuEvidence) -> (Evidence, Policy) {
    let b = WorkerBinding {
        gpu_evidence_hash: Some(gpu.hash()),
        ..binding()
    };
    let (cpu, policy) = snp(b.report_data().unwrap());
    (Evidence::with_gpu(cpu, gpu).unwrap(), policy)
}

fn collected() -> GpuEvidence {
    EmulatedGpu
        .collect(&binding().gpu_nonce().unwrap())
        .unwrap()
}

#[test]
fn gpu_evidence_bound_to_the_worker_verifies_with_the_cpu_report() {
    let (ev, policy) = worker_evidence(collected());
    let policy = policy.require_gpu(true);
    let verified = verify_worker(&ev, &policy, &binding()).unwrap();
    assert_eq!(verified.evidence_hash, ev.hash());
    let gpu = verify_gpu(ev.gpu().unwrap(), &policy).unwrap();
    // What a client shows is what it verified: the GPU part travels with the result.
    assert_eq!(verified.gpu.as_ref(), Some(&gpu));
    assert!(
        verified.to_string().contains(&format!(
            "NVIDIA GPU in confidential-computing mode (driver {}, VBIOS {}, 64 measurements)",
            nv::DRIVER_VERSION,
            nv::VBIOS_VERSION
        )),
        "{verified}"
    );
    assert_eq!(gpu.driver_version, nv::DRIVER_VERSION);
    assert_eq!(gpu.vbios_version, nv::VBIOS_VERSION);
    assert_eq!(gpu.measurements_checked, 64);
    // The canonical encoding carries it: decode ∘ encode is the identity, the hash covers it.
    assert_eq!(Evidence::decode(&ev.encode()).unwrap(), ev);
    assert_ne!(ev.hash(), ev.cpu().hash());
}

#[test]
fn gpu_required_and_absent_rejected() {
    let (cpu, policy) = snp(binding().report_data().unwrap());
    let verified = verify_worker(&cpu, &policy, &binding()).unwrap();
    assert_eq!(verified.gpu, None, "no GPU part, none shown");
    let err = verify_worker(&cpu, &policy.require_gpu(true), &binding()).unwrap_err();
    assert!(matches!(err, AttestError::GpuEvidenceRequired), "{err}");
}

#[test]
fn gpu_hash_not_in_report_data_rejected() {
    // The CPU report binds no GPU evidence (zeros), and GPU evidence is attached anyway.
    let (cpu, policy) = snp(binding().report_data().unwrap());
    let ev = Evidence::with_gpu(cpu, collected()).unwrap();
    let err = verify_worker(&ev, &policy, &binding()).unwrap_err();
    assert!(matches!(err, AttestError::GpuNotBound), "{err}");
}

#[test]
fn gpu_evidence_swapped_for_other_valid_evidence_rejected() {
    // REPORT_DATA binds one GPU evidence; another, equally valid, is served.
    let (ev, policy) = worker_evidence(collected());
    let Evidence::WithGpu { cpu, mut gpu } = ev else {
        unreachable!()
    };
    gpu.cert_chain.pop();
    let ev = Evidence::with_gpu(*cpu, gpu).unwrap();
    let err = verify_worker(&ev, &policy, &binding()).unwrap_err();
    assert!(matches!(err, AttestError::BindingMismatch), "{err}");
}

#[test]
fn gpu_nonce_of_other_keys_rejected() {
    let other = WorkerBinding {
        receipt_key: [9; 32],
        ..binding()
    };
    let (ev, policy) = worker_evidence(EmulatedGpu.collect(&other.gpu_nonce().unwrap()).unwrap());
    let err = verify_worker(&ev, &policy, &binding()).unwrap_err();
    assert!(matches!(err, AttestError::GpuNonceMismatch), "{err}");
}

#[test]
fn gpu_measurement_not_in_rim_rejected() {
    let nonce = binding().gpu_nonce().unwrap();
    let good = collected();
    // The GPU reports another value at index 7 (block 8); the RIMs keep the golden one.
    let report = nv::report_with(&nonce, |r| {
        let off = nv::measurement_offset(r, 8);
        r[off] ^= 0xff;
    });
    let gpu = GpuEvidence { report, ..good };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuMeasurementMismatch {
                index: 7,
                rim: "driver RIM",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_measurement_matching_an_alternative_accepted() {
    let nonce = binding().gpu_nonce().unwrap();
    let report = nv::report_with(&nonce, |_| {});
    let mut golden = nv::golden_of(&report, 32..64);
    golden[0].1.insert(0, vec![0xaa; 48]);
    let k = nv::keys();
    let gpu = GpuEvidence {
        vbios_rim: nv::rim(nv::VBIOS_VERSION, &golden, &k.rim_signer, &nv::rim_chain()),
        ..collected()
    };
    verify_gpu(&gpu, &test_policy()).unwrap();
}

#[test]
fn gpu_rim_of_another_driver_version_rejected() {
    let k = nv::keys();
    let good = collected();
    let gpu = GpuEvidence {
        driver_rim: nv::rim(
            "550.90.08",
            &nv::golden_of(&good.report, 0..32),
            &k.rim_signer,
            &nv::rim_chain(),
        ),
        ..good
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuRimVersionMismatch {
                which: "driver RIM",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_rims_claiming_the_same_index_rejected() {
    let k = nv::keys();
    let good = collected();
    let gpu = GpuEvidence {
        vbios_rim: nv::rim(
            nv::VBIOS_VERSION,
            &nv::golden_of(&good.report, 31..64),
            &k.rim_signer,
            &nv::rim_chain(),
        ),
        ..good
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(matches!(err, AttestError::GpuRimInvalid { .. }), "{err}");
}

#[test]
fn gpu_rim_signed_by_a_key_outside_the_rim_chain_rejected() {
    let k = nv::keys();
    let good = collected();
    let gpu = GpuEvidence {
        driver_rim: nv::rim(
            nv::DRIVER_VERSION,
            &nv::golden_of(&good.report, 0..32),
            &k.rogue,
            &nv::rim_chain(),
        ),
        ..good
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuRimSignatureInvalid {
                which: "driver RIM",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_rim_edited_after_signing_rejected() {
    let k = nv::keys();
    let good = collected();
    let gpu = GpuEvidence {
        driver_rim: nv::rim_with(
            nv::DRIVER_VERSION,
            &nv::golden_of(&good.report, 0..32),
            &k.rim_signer,
            &nv::rim_chain(),
            |xml| *xml = xml.replacen("active=\"True\"", "active=\"False\"", 1),
        ),
        ..good
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuRimSignatureInvalid {
                which: "driver RIM",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_rim_chain_under_the_device_root_rejected() {
    // A RIM signed by a key chained to the device root, not the RIM root.
    let k = nv::keys();
    let good = collected();
    let signer = nv::cert(
        9,
        nv::RIM_SIGNER,
        nv::DEVICE_ROOT,
        &k.rim_signer,
        &k.device_root,
        (nv::FROM, nv::UNTIL),
        vec![],
    );
    let gpu = GpuEvidence {
        driver_rim: nv::rim(
            nv::DRIVER_VERSION,
            &nv::golden_of(&good.report, 0..32),
            &k.rim_signer,
            &[signer, nv::device_root()],
        ),
        ..good
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::GpuCertChain {
                which: "driver RIM",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_fwid_not_in_the_attestation_key_certificate_rejected() {
    let gpu = GpuEvidence {
        cert_chain: vec![
            nv::ak_cert_with(nv::other_fwid_extension()),
            nv::device_root(),
        ],
        ..collected()
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(matches!(err, AttestError::GpuFwidMismatch), "{err}");
}

#[test]
fn gpu_attestation_key_expired_rejected() {
    let k = nv::keys();
    let expired = nv::cert(
        2,
        nv::AK,
        nv::DEVICE_ROOT,
        &k.ak,
        &k.device_root,
        (nv::FROM, amd_pki::NOW - 1),
        vec![nv::vendor_fwid_extension()],
    );
    let gpu = GpuEvidence {
        cert_chain: vec![expired],
        ..collected()
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow {
                which: "GPU device",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_report_signed_by_another_key_rejected() {
    let k = nv::keys();
    // The chain names a key that did not sign the report.
    let other_ak = nv::cert(
        2,
        nv::AK,
        nv::DEVICE_ROOT,
        &k.rogue,
        &k.device_root,
        (nv::FROM, nv::UNTIL),
        vec![nv::vendor_fwid_extension()],
    );
    let gpu = GpuEvidence {
        cert_chain: vec![other_ak],
        ..collected()
    };
    let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
    assert!(
        matches!(err, AttestError::GpuReportSignatureInvalid),
        "{err}"
    );
}

#[test]
fn gpu_truncated_or_padded_report_rejected() {
    let good = collected();
    for report in [
        good.report[..good.report.len() - 1].to_vec(),
        [good.report.clone(), vec![0]].concat(),
        good.report[..30].to_vec(),
    ] {
        let gpu = GpuEvidence {
            report,
            ..good.clone()
        };
        let err = verify_gpu(&gpu, &test_policy()).unwrap_err();
        assert!(matches!(err, AttestError::GpuReportParse(_)), "{err}");
    }
}

#[test]
fn gpu_evidence_encoding_is_strict() {
    let (ev, _) = worker_evidence(collected());
    let bytes = ev.encode();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Evidence::decode(&trailing),
        Err(AttestError::TrailingBytes { count: 1 })
    ));
    assert!(Evidence::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(matches!(
        Evidence::with_gpu(ev.clone(), collected()),
        Err(AttestError::GpuNested)
    ));
    let gpu = ev.gpu().unwrap();
    assert_eq!(&GpuEvidence::decode(&gpu.encode()).unwrap(), gpu);
}

#[test]
fn gpu_trust_defaults_to_nvidias_roots() {
    assert_eq!(Policy::production([]).gpu.trust, GpuTrust::Nvidia);
    assert!(!Policy::production([]).gpu.required);
}

#[cfg(unix)]
#[test]
fn gpu_command_provider_reads_the_operators_bridge() {
    use cocoon_sdk::attest::CommandGpuProvider;
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let nonce = binding().gpu_nonce().unwrap();
    let ev = collected();
    let pem: String = ev
        .cert_chain
        .iter()
        .map(|der| {
            use base64::Engine as _;
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        })
        .collect();
    let json = serde_json::json!({
        "report_hex": hex::encode(&ev.report),
        "cert_chain_pem": pem,
        "driver_rim": String::from_utf8(ev.driver_rim.clone()).unwrap(),
        "vbios_rim": String::from_utf8(ev.vbios_rim.clone()).unwrap(),
    });
    let out = dir.path().join("evidence.json");
    std::fs::write(&out, json.to_string()).unwrap();
    let script = dir.path().join("gpu-evidence");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$2\" = \"{}\" ] || {{ echo \"wrong nonce $2\" >&2; exit 3; }}\ncat \"$1\"\n",
            hex::encode(nonce)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider = CommandGpuProvider {
        program: script,
        args: vec![out.display().to_string()],
    };
    assert_eq!(provider.collect(&nonce).unwrap(), ev);
    let err = provider.collect(&[0; 32]).unwrap_err();
    assert!(
        matches!(&err, AttestError::GpuProvider(m) if m.contains("wrong nonce")),
        "{err}"
    );
}
