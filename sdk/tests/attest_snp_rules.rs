//! SEV-SNP rules a vendor sample cannot reach, each with a named tamper test: AMD CRLs, validity
//! of the ARK/ASK/ASVK/VCEK, VLEK chains, the VCEK's TCB extensions, minimum TCB per product.
//! Reports are the `sev` crate's Milan sample re-signed by a test PKI (`support::amd_pki`)
//! pinned through `SnpTrust::Custom`.

mod support;

use std::sync::Arc;

use cocoon_sdk::attest::{
    AttestError, AttestationProvider, Evidence, FixedClock, HostCert, HostCertKind, Policy,
    SevGuestDevice, SevGuestProvider, SnpCertConfig, SnpProduct, SnpTcb, SnpTrust, measurement_id,
    verify_evidence,
};
use support::amd_pki::{self as pki, NOW};

const REPORT_HEX: &str = include_str!("fixtures/attest/sev/report_milan.hex");
const TCB: SnpTcb = SnpTcb {
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};

fn sample() -> Vec<u8> {
    hex::decode(REPORT_HEX.trim()).unwrap()
}

fn chip_id() -> Vec<u8> {
    sample()[pki::OFF_CHIP_ID..pki::OFF_CHIP_ID + 64].to_vec()
}

/// The sample with `tcb` and a signing key, re-signed by the test leaf.
fn report(tcb: SnpTcb, signing_key: u32) -> Vec<u8> {
    let mut r = sample();
    pki::set_tcb(&mut r, tcb);
    pki::set_signing_key(&mut r, signing_key);
    pki::sign_report(&mut r);
    r
}

fn policy_with(ark: Vec<u8>, ask: Vec<u8>) -> Policy {
    let m: [u8; 48] = sample()[0x90..0xC0].try_into().unwrap();
    let mut p = Policy::production([measurement_id(&m)]).with_clock(Arc::new(FixedClock(NOW)));
    p.snp.trust = SnpTrust::Custom(vec![pki::root(ark, ask)]);
    p
}

fn policy() -> Policy {
    policy_with(pki::ark(), pki::ask())
}

fn vcek_evidence(report: Vec<u8>, vcek: Vec<u8>) -> Evidence {
    Evidence::SevSnp {
        report,
        vcek_der: vcek,
        ask_ark_pem: None,
    }
}

fn good_vcek() -> Vec<u8> {
    pki::vcek(&chip_id(), TCB, pki::LEAF_FROM, pki::LEAF_UNTIL)
}

fn good() -> Evidence {
    vcek_evidence(report(TCB, 0), good_vcek())
}

#[test]
fn test_pki_report_verifies() {
    let v = verify_evidence(&good(), &policy()).unwrap();
    assert_eq!(
        v.tcb,
        cocoon_sdk::attest::Tcb::Snp {
            product: SnpProduct::Milan,
            tcb: TCB
        }
    );
}

#[test]
fn test_pki_is_not_amd() {
    // The same evidence under AMD's pinned roots: the test ASK is nobody's.
    let mut p = policy();
    p.snp.trust = SnpTrust::Amd;
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(matches!(err, AttestError::WrongProductChain(_)), "{err}");
}

// --- CRL ---------------------------------------------------------------------------------------

fn ark_crl(serials: &[u64]) -> Vec<u8> {
    pki::crl(
        pki::ARK_NAME,
        &pki::keys().ark,
        NOW - 86_400,
        NOW + 7 * 86_400,
        serials,
    )
}

#[test]
fn snp_revoked_ask_rejected() {
    let mut p = policy();
    p.snp.crls = vec![ark_crl(&[2])];
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(&err, AttestError::CertificateRevoked { which: "ASK", .. }),
        "{err}"
    );
}

#[test]
fn snp_revoked_vcek_rejected() {
    let mut p = policy();
    p.snp.crls = vec![
        ark_crl(&[]),
        pki::crl(pki::ASK_NAME, &pki::keys().ask, NOW - 60, NOW + 60, &[0x10]),
    ];
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(&err, AttestError::CertificateRevoked { which: "VCEK", .. }),
        "{err}"
    );
}

#[test]
fn snp_crl_revoking_others_accepted() {
    let mut p = policy();
    p.snp.crls = vec![ark_crl(&[7, 9])];
    p.snp.require_crl = true;
    verify_evidence(&good(), &p).unwrap();
}

#[test]
fn snp_crl_not_signed_by_the_ark_rejected() {
    let mut p = policy();
    // Names the ARK as issuer but is signed by another key: a forged "nothing revoked".
    p.snp.crls = vec![pki::crl(
        pki::ARK_NAME,
        &pki::keys().rogue,
        NOW - 60,
        NOW + 60,
        &[],
    )];
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(matches!(err, AttestError::CrlInvalid(_)), "{err}");
}

#[test]
fn snp_stale_crl_rejected() {
    let mut p = policy();
    p.snp.crls = vec![pki::crl(
        pki::ARK_NAME,
        &pki::keys().ark,
        NOW - 90 * 86_400,
        NOW - 60 * 86_400,
        &[],
    )];
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(matches!(err, AttestError::CrlNotCurrent { .. }), "{err}");
}

#[test]
fn snp_required_crl_missing_rejected() {
    let mut p = policy();
    p.snp.require_crl = true;
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(matches!(err, AttestError::CrlMissing(_)), "{err}");
}

#[test]
fn snp_garbage_crl_rejected() {
    let mut p = policy();
    p.snp.crls = vec![vec![0x30, 0x01, 0x00]];
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(matches!(err, AttestError::CrlInvalid(_)), "{err}");
}

// --- validity ----------------------------------------------------------------------------------

#[test]
fn snp_expired_ask_rejected() {
    let p = policy_with(pki::ark(), pki::ask_valid(pki::CA_FROM, NOW - 1));
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "ASK", .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_not_yet_valid_ark_rejected() {
    let ark = pki::ark_valid(NOW + 1, pki::CA_UNTIL);
    let p = policy_with(ark, pki::ask());
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "ARK", .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_expired_ark_rejected() {
    let p = policy_with(pki::ark_valid(pki::CA_FROM, NOW - 1), pki::ask());
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "ARK", .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_not_yet_valid_vcek_rejected() {
    let vcek = pki::vcek(&chip_id(), TCB, NOW + 1, pki::LEAF_UNTIL);
    let err = verify_evidence(&vcek_evidence(report(TCB, 0), vcek), &policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::CertificateNotValidNow { which: "VCEK", .. }
        ),
        "{err}"
    );
}

#[test]
fn snp_amd_ark_and_ask_checked_for_validity() {
    // The real Milan chain at 2100: the sample VCEK expires first, and the check names it.
    let raw = sample();
    let m: [u8; 48] = raw[0x90..0xC0].try_into().unwrap();
    let p =
        Policy::production([measurement_id(&m)]).with_clock(Arc::new(FixedClock(4_102_444_800)));
    let ev = vcek_evidence(
        raw,
        include_bytes!("fixtures/attest/sev/vcek_milan.der").to_vec(),
    );
    let err = verify_evidence(&ev, &p).unwrap_err();
    assert!(
        matches!(err, AttestError::CertificateNotValidNow { .. }),
        "{err}"
    );
}

// --- VCEK extensions, TCB ----------------------------------------------------------------------

#[test]
fn snp_vcek_of_an_older_tcb_rejected() {
    // A VCEK for microcode 114 cannot vouch for a report claiming 115.
    let old = SnpTcb {
        microcode: 114,
        ..TCB
    };
    let vcek = pki::vcek(&chip_id(), old, pki::LEAF_FROM, pki::LEAF_UNTIL);
    let err = verify_evidence(&vcek_evidence(report(TCB, 0), vcek), &policy()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::VcekMismatch {
                extension: "ucodeSPL"
            }
        ),
        "{err}"
    );
}

#[test]
fn snp_vcek_of_another_chip_rejected() {
    let mut other = chip_id();
    other[0] ^= 1;
    let vcek = pki::vcek(&other, TCB, pki::LEAF_FROM, pki::LEAF_UNTIL);
    let err = verify_evidence(&vcek_evidence(report(TCB, 0), vcek), &policy()).unwrap_err();
    assert!(
        matches!(err, AttestError::VcekMismatch { extension: "hwID" }),
        "{err}"
    );
}

#[test]
fn snp_min_tcb_per_product_rejects_below_and_ignores_other_products() {
    let mut p = policy();
    p.snp.min_tcb_per_product.insert(
        SnpProduct::Genoa,
        SnpTcb {
            microcode: 200,
            ..SnpTcb::default()
        },
    );
    verify_evidence(&good(), &p).unwrap();
    p.snp.min_tcb_per_product.insert(
        SnpProduct::Milan,
        SnpTcb {
            tee: 1,
            ..SnpTcb::default()
        },
    );
    let err = verify_evidence(&good(), &p).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TcbTooLow {
                component: "tee",
                reported: 0,
                minimum: 1
            }
        ),
        "{err}"
    );
}

// --- VLEK --------------------------------------------------------------------------------------

fn vlek_evidence(chain: Option<Vec<u8>>) -> Evidence {
    Evidence::SevSnp {
        report: report(TCB, 1),
        vcek_der: pki::vlek(TCB),
        ask_ark_pem: chain,
    }
}

fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

#[test]
fn snp_vlek_report_with_its_asvk_verifies() {
    let mut chain = pem(&pki::asvk());
    chain.extend(pem(&pki::ark()));
    let v = verify_evidence(&vlek_evidence(Some(chain)), &policy()).unwrap();
    assert!(matches!(v.tcb, cocoon_sdk::attest::Tcb::Snp { .. }));
}

#[test]
fn snp_vlek_with_a_pinned_asvk_verifies() {
    let mut p = policy();
    let mut root = pki::root(pki::ark(), pki::ask());
    root.asvk_der = Some(pki::asvk());
    p.snp.trust = SnpTrust::Custom(vec![root]);
    verify_evidence(&vlek_evidence(None), &p).unwrap();
}

#[test]
fn snp_vlek_without_asvk_rejected() {
    let err = verify_evidence(&vlek_evidence(None), &policy()).unwrap_err();
    assert!(matches!(err, AttestError::VlekChain(_)), "{err}");
}

#[test]
fn snp_vlek_with_a_self_made_asvk_rejected() {
    // An "ASVK" not signed by the ARK: the rogue key signs it and the VLEK chain must fail.
    let k = pki::keys();
    let fake = pki::ca(
        pki::Spec {
            serial: 3,
            subject: pki::ASVK_NAME,
            issuer: pki::ARK_NAME,
            from: pki::CA_FROM,
            until: pki::CA_UNTIL,
            extensions: vec![],
        },
        &k.asvk,
        &k.rogue,
    );
    let err = verify_evidence(&vlek_evidence(Some(pem(&fake))), &policy()).unwrap_err();
    assert!(matches!(err, AttestError::VlekChain(_)), "{err}");
}

#[test]
fn snp_vlek_refused_when_the_policy_says_so() {
    let mut p = policy();
    p.snp.allow_vlek = false;
    let err = verify_evidence(&vlek_evidence(Some(pem(&pki::asvk()))), &p).unwrap_err();
    assert!(matches!(err, AttestError::VlekNotAllowed), "{err}");
}

#[test]
fn snp_revoked_asvk_rejected() {
    let mut p = policy();
    p.snp.crls = vec![ark_crl(&[3])];
    let err = verify_evidence(&vlek_evidence(Some(pem(&pki::asvk()))), &p).unwrap_err();
    assert!(
        matches!(&err, AttestError::CertificateRevoked { which: "ASVK", .. }),
        "{err}"
    );
}

/// The host's table holds a VLEK and the ASVK (under the ASK GUID, as hosts provision it): the
/// provider ships them and the verifier accepts.
#[derive(Debug)]
struct VlekHost;

impl SevGuestDevice for VlekHost {
    fn get_ext_report(
        &self,
        report_data: &[u8; 64],
        _vmpl: u32,
    ) -> cocoon_sdk::attest::Result<(Vec<u8>, Vec<HostCert>)> {
        let mut r = report(TCB, 1);
        r[pki::OFF_REPORT_DATA..pki::OFF_REPORT_DATA + 64].copy_from_slice(report_data);
        pki::sign_report(&mut r);
        Ok((
            r,
            vec![
                HostCert {
                    kind: HostCertKind::Vlek,
                    der: pki::vlek(TCB),
                },
                HostCert {
                    kind: HostCertKind::Ask,
                    der: pki::asvk(),
                },
                HostCert {
                    kind: HostCertKind::Ark,
                    der: pki::ark(),
                },
            ],
        ))
    }
}

#[test]
fn sev_guest_vlek_host_produces_evidence_the_verifier_accepts() {
    let provider = SevGuestProvider::new(Arc::new(VlekHost), SnpCertConfig::default());
    let ev = provider.attest(&[0x42; 64]).unwrap();
    let v = verify_evidence(&ev, &policy()).unwrap();
    assert_eq!(v.report_data, [0x42; 64]);
}

#[test]
fn sev_guest_vlek_without_asvk_names_what_is_missing() {
    #[derive(Debug)]
    struct VlekOnly;
    impl SevGuestDevice for VlekOnly {
        fn get_ext_report(
            &self,
            report_data: &[u8; 64],
            vmpl: u32,
        ) -> cocoon_sdk::attest::Result<(Vec<u8>, Vec<HostCert>)> {
            let (r, table) = VlekHost.get_ext_report(report_data, vmpl)?;
            Ok((r, table.into_iter().take(1).collect()))
        }
    }
    let provider = SevGuestProvider::new(Arc::new(VlekOnly), SnpCertConfig::default());
    let err = provider.attest(&[0x42; 64]).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::Missing(cocoon_sdk::attest::MissingInput::SnpVlekChain)
        ),
        "{err}"
    );
}
