//! AMD SEV-SNP verification: pinned ARK/ASK → VCEK (or ARK → ASVK → VLEK), validity dates and
//! AMD CRLs, the ECDSA P-384 signature over the raw report
//! bytes, VCEK extensions ↔ report, and the guest-policy rules the `sev` crate leaves to callers.

use p384::ecdsa::signature::Verifier as _;
use sev::certs::snp::{Certificate, Verifiable, builtin};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use x509_cert::der::{Decode, asn1::OctetStringRef};

use super::crl;
use super::error::{AttestError, Result};
use super::evidence::{EvidenceKind, SNP_REPORT_LEN};
use super::policy::{Policy, SnpProduct, SnpRoot, SnpTcb, SnpTrust};
use super::verify::{Tcb, Verified};

/// The report bytes covered by the signature (ABI spec: offsets 0x0..0x2A0).
const SIGNED_LEN: usize = 0x2A0;
/// ECDSA P-384 with SHA-384, the only algorithm SNP firmware uses today.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// KEY_INFO.SIGNING_KEY: 0 = VCEK.
const SIGNING_KEY_VCEK: u32 = 0;
/// KEY_INFO.SIGNING_KEY: 1 = VLEK.
const SIGNING_KEY_VLEK: u32 = 1;
const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_HW_ID: &str = "1.3.6.1.4.1.3704.1.4";

/// Verifies SEV-SNP evidence under `policy`. The cheap field rules run before the cryptography so
/// that each refusal names its real cause; all of them must pass either way.
pub(crate) fn verify(
    raw: &[u8],
    vcek_der: &[u8],
    ask_ark_pem: Option<&[u8]>,
    policy: &Policy,
    evidence_hash: [u8; 32],
) -> Result<Verified> {
    if raw.len() != SNP_REPORT_LEN {
        return Err(AttestError::BadLength {
            field: "report",
            len: raw.len(),
            min: SNP_REPORT_LEN,
            max: SNP_REPORT_LEN,
        });
    }
    let report = AttestationReport::from_bytes(raw)
        .map_err(|e| AttestError::SnpReportParse(e.to_string()))?;
    let tcb = SnpTcb {
        bootloader: report.reported_tcb.bootloader,
        tee: report.reported_tcb.tee,
        snp: report.reported_tcb.snp,
        microcode: report.reported_tcb.microcode,
    };
    let vlek = check_report_fields(&report, policy)?;
    let leaf_name = if vlek { "VLEK" } else { "VCEK" };
    let leaf = cert(vcek_der, leaf_name)?;
    let chain = if vlek {
        vlek_chain(&leaf, ask_ark_pem, policy)?
    } else {
        vcek_chain(&leaf, ask_ark_pem, policy)?
    };
    let now = policy.now_unix();
    let leaf_x509 = x509(vcek_der, leaf_name)?;
    check_validity(&leaf_x509, leaf_name, now)?;
    let intermediate = x509(&chain.intermediate_der, chain.intermediate_name)?;
    check_validity(&intermediate, chain.intermediate_name, now)?;
    let ark = x509(&chain.ark_der, "ARK")?;
    check_validity(&ark, "ARK", now)?;
    crl::check(
        policy,
        chain.product,
        &ark,
        &[
            (chain.intermediate_name, &intermediate),
            (leaf_name, &leaf_x509),
        ],
    )?;
    check_signature(raw, &leaf)?;
    check_leaf_extensions(&leaf_x509, (!vlek).then_some(&report.chip_id), &tcb)?;
    check_min_tcb(&tcb, chain.product, policy)?;
    if let Some(fmc) = report.reported_tcb.fmc
        && fmc < policy.snp.min_fmc
    {
        return Err(AttestError::TcbTooLow {
            component: "fmc",
            reported: fmc,
            minimum: policy.snp.min_fmc,
        });
    }

    Ok(Verified {
        kind: EvidenceKind::SevSnp,
        measurement: report.measurement,
        tcb: Tcb::Snp {
            product: chain.product,
            tcb,
        },
        report_data: report.report_data,
        evidence_hash,
        gpu: None,
    })
}

fn x509(der: &[u8], which: &'static str) -> Result<x509_cert::Certificate> {
    x509_cert::Certificate::from_der(der).map_err(|e| AttestError::Certificate {
        which,
        reason: e.to_string(),
    })
}

fn cert(der_bytes: &[u8], which: &'static str) -> Result<Certificate> {
    Certificate::from_der(der_bytes).map_err(|e| AttestError::Certificate {
        which,
        reason: e.to_string(),
    })
}

/// Guest policy, VMPL, version, algorithm, signing key and the measurement allow-list. Returns
/// whether the report is VLEK-signed.
fn check_report_fields(report: &AttestationReport, policy: &Policy) -> Result<bool> {
    let snp = &policy.snp;
    if report.version < snp.min_report_version {
        return Err(AttestError::ReportVersionTooOld {
            version: report.version,
            min: snp.min_report_version,
        });
    }
    if report.sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(AttestError::UnsupportedSignatureAlgorithm(report.sig_algo));
    }
    if report.policy.debug_allowed() {
        return Err(AttestError::DebugAllowed);
    }
    if report.policy.migrate_ma_allowed() {
        return Err(AttestError::MigrationAgentAllowed);
    }
    if report.vmpl != snp.vmpl {
        return Err(AttestError::WrongVmpl {
            expected: snp.vmpl,
            actual: report.vmpl,
        });
    }
    let vlek = match report.key_info.signing_key() {
        SIGNING_KEY_VCEK => false,
        SIGNING_KEY_VLEK if snp.allow_vlek => true,
        SIGNING_KEY_VLEK => return Err(AttestError::VlekNotAllowed),
        other => return Err(AttestError::UnsupportedSigningKey(other)),
    };
    if !policy.allows_measurement(&report.measurement) {
        return Err(AttestError::MeasurementNotAllowed {
            kind: EvidenceKind::SevSnp,
            measurement: hex::encode(report.measurement),
        });
    }
    Ok(vlek)
}

/// Every component at least the policy's minimum for all products and for this product.
fn check_min_tcb(tcb: &SnpTcb, product: SnpProduct, policy: &Policy) -> Result<()> {
    let snp = &policy.snp;
    let minima = std::iter::once(&snp.min_tcb).chain(snp.min_tcb_per_product.get(&product));
    for min in minima {
        for (component, reported, minimum) in [
            ("bootloader", tcb.bootloader, min.bootloader),
            ("tee", tcb.tee, min.tee),
            ("snp", tcb.snp, min.snp),
            ("microcode", tcb.microcode, min.microcode),
        ] {
            if reported < minimum {
                return Err(AttestError::TcbTooLow {
                    component,
                    reported,
                    minimum,
                });
            }
        }
    }
    Ok(())
}

/// The chain a report's signing certificate was verified under.
struct Chain {
    product: SnpProduct,
    ark_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate_name: &'static str,
}

fn amd_root(product: SnpProduct) -> Result<SnpRoot> {
    let pinned = match product {
        SnpProduct::Milan => (builtin::milan::ark(), builtin::milan::ask()),
        SnpProduct::Genoa => (builtin::genoa::ark(), builtin::genoa::ask()),
        SnpProduct::Turin => (builtin::turin::ark(), builtin::turin::ask()),
    };
    let err = |e: std::io::Error| AttestError::Certificate {
        which: "pinned ARK/ASK",
        reason: e.to_string(),
    };
    Ok(SnpRoot {
        product,
        ark_der: der(&pinned.0.map_err(err)?)?,
        ask_der: der(&pinned.1.map_err(err)?)?,
        asvk_der: None,
    })
}

/// The roots of the allowed products, in the policy's order.
fn roots(policy: &Policy) -> Result<Vec<SnpRoot>> {
    let snp = &policy.snp;
    match &snp.trust {
        SnpTrust::Amd => snp.products.iter().map(|p| amd_root(*p)).collect(),
        SnpTrust::Custom(roots) => Ok(roots
            .iter()
            .filter(|r| snp.products.contains(&r.product))
            .cloned()
            .collect()),
    }
}

/// `signer` signs `signee` (RSA-PSS/SHA-384, as AMD signs its chain).
fn signs(signer: &Certificate, signee: &Certificate) -> bool {
    (signer, signee).verify().is_ok()
}

/// Finds the allowed product whose pinned ARK → ASK signs the VCEK. A chain shipped with the
/// evidence is never trusted; it must be exactly that product's pinned chain.
fn vcek_chain(vcek: &Certificate, shipped: Option<&[u8]>, policy: &Policy) -> Result<Chain> {
    let mut tried = Vec::new();
    for root in roots(policy)? {
        let ark = cert(&root.ark_der, "ARK")?;
        let ask = cert(&root.ask_der, "ASK")?;
        if !(signs(&ark, &ark) && signs(&ark, &ask) && signs(&ask, vcek)) {
            tried.push(format!("{:?}", root.product));
            continue;
        }
        if let Some(pem) = shipped {
            let mut shipped = pem_certificates(pem)?;
            let mut pinned = vec![root.ask_der.clone(), root.ark_der.clone()];
            shipped.sort();
            pinned.sort();
            if shipped != pinned {
                return Err(AttestError::WrongProductChain(format!(
                    "the ASK/ARK shipped with the evidence is not the pinned {:?} chain",
                    root.product
                )));
            }
        }
        return Ok(Chain {
            product: root.product,
            ark_der: root.ark_der,
            intermediate_der: root.ask_der,
            intermediate_name: "ASK",
        });
    }
    Err(AttestError::WrongProductChain(format!(
        "not signed by the pinned roots of {}",
        tried.join(", ")
    )))
}

/// Finds the allowed product whose ARK signs an ASVK (pinned, or shipped with the evidence) that
/// signs the VLEK. A shipped ASVK is only a candidate: the ARK's signature is what makes it one.
fn vlek_chain(vlek: &Certificate, shipped: Option<&[u8]>, policy: &Policy) -> Result<Chain> {
    let shipped = shipped
        .map(pem_certificates)
        .transpose()?
        .unwrap_or_default();
    for root in roots(policy)? {
        let ark = cert(&root.ark_der, "ARK")?;
        if !signs(&ark, &ark) {
            continue;
        }
        let candidates = root.asvk_der.iter().chain(
            shipped
                .iter()
                .filter(|c| **c != root.ark_der && **c != root.ask_der),
        );
        for asvk_der in candidates {
            let asvk = cert(asvk_der, "ASVK")?;
            if signs(&ark, &asvk) && signs(&asvk, vlek) {
                return Ok(Chain {
                    product: root.product,
                    ark_der: root.ark_der,
                    intermediate_der: asvk_der.clone(),
                    intermediate_name: "ASVK",
                });
            }
        }
    }
    Err(AttestError::VlekChain(if shipped.is_empty() {
        "no ASVK was pinned or shipped with the evidence".into()
    } else {
        "no shipped ASVK is signed by an allowed ARK and signs the VLEK".into()
    }))
}

fn der(cert: &Certificate) -> Result<Vec<u8>> {
    cert.to_der().map_err(|e| AttestError::Certificate {
        which: "ASK/ARK",
        reason: e.to_string(),
    })
}

/// DER of every certificate in a PEM stack (the `sev` crate's stack parser needs OpenSSL).
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let err = |reason: String| AttestError::Certificate {
        which: "ASK/ARK",
        reason,
    };
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = find(rest, b"-----BEGIN CERTIFICATE-----") {
        let end = find(&rest[start..], END).ok_or_else(|| err("unterminated PEM block".into()))?
            + start
            + END.len();
        let cert = Certificate::from_pem(&rest[start..end]).map_err(|e| err(e.to_string()))?;
        out.push(der(&cert)?);
        rest = &rest[end..];
    }
    if out.is_empty() {
        return Err(err("no certificate in the PEM stack".into()));
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn check_validity(cert: &x509_cert::Certificate, which: &'static str, now: u64) -> Result<()> {
    let validity = &cert.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if now < not_before || now > not_after {
        return Err(AttestError::CertificateNotValidNow {
            which,
            now,
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// ECDSA P-384 over `raw[..0x2A0]`. The `sev` crate's own check hashes a re-encoding of the parsed
/// struct, which would miss bytes the parser ignores; this one covers the exact signed bytes.
fn check_signature(raw: &[u8], vcek: &Certificate) -> Result<()> {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(vcek.public_key_sec1()).map_err(|e| {
        AttestError::Certificate {
            which: "VCEK",
            reason: e.to_string(),
        }
    })?;
    // Signature at 0x2A0: r and s, 72 bytes each, little-endian; P-384 uses the low 48 bytes.
    let le_to_be = |le: &[u8]| {
        let mut be = [0u8; 48];
        for (i, b) in le[..48].iter().enumerate() {
            be[47 - i] = *b;
        }
        be
    };
    let r = le_to_be(&raw[SIGNED_LEN..SIGNED_LEN + 72]);
    let s = le_to_be(&raw[SIGNED_LEN + 72..SIGNED_LEN + 144]);
    let sig = p384::ecdsa::Signature::from_scalars(r, s)
        .map_err(|_| AttestError::ReportSignatureInvalid)?;
    key.verify(&raw[..SIGNED_LEN], &sig)
        .map_err(|_| AttestError::ReportSignatureInvalid)
}

/// The VCEK is specific to a chip and a TCB, a VLEK to a TCB: the hwID (VCEK only) and SPL
/// extensions must equal the report's CHIP_ID and REPORTED_TCB, otherwise a certificate of an
/// older (vulnerable) TCB could vouch for a report claiming a newer one.
fn check_leaf_extensions(
    cert: &x509_cert::Certificate,
    chip_id: Option<&[u8; 64]>,
    tcb: &SnpTcb,
) -> Result<()> {
    let extensions = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    let find = |oid: &str| {
        extensions
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    if let Some(chip_id) = chip_id {
        check_hw_id(find(OID_HW_ID), chip_id)?;
    }
    for (oid, extension, reported) in [
        (OID_BL_SPL, "blSPL", tcb.bootloader),
        (OID_TEE_SPL, "teeSPL", tcb.tee),
        (OID_SNP_SPL, "snpSPL", tcb.snp),
        (OID_UCODE_SPL, "ucodeSPL", tcb.microcode),
    ] {
        let value = find(oid).ok_or(AttestError::VcekMismatch { extension })?;
        let spl = u8::from_der(value).map_err(|_| AttestError::VcekMismatch { extension })?;
        if spl != reported {
            return Err(AttestError::VcekMismatch { extension });
        }
    }
    Ok(())
}

fn check_hw_id(hw_id: Option<&[u8]>, chip_id: &[u8; 64]) -> Result<()> {
    let hw_id = hw_id.ok_or(AttestError::VcekMismatch { extension: "hwID" })?;
    // AMD stores the raw chip id as the extension value; accept a wrapped OCTET STRING too.
    let hw_id = match OctetStringRef::from_der(hw_id) {
        Ok(inner) if hw_id.len() != 64 => inner.as_bytes(),
        _ => hw_id,
    };
    // Turin VCEKs carry an 8-byte hwID; the report zero-pads CHIP_ID to 64 bytes.
    let matches = !hw_id.is_empty()
        && hw_id.len() <= 64
        && chip_id[..hw_id.len()] == *hw_id
        && chip_id[hw_id.len()..].iter().all(|b| *b == 0);
    if !matches {
        return Err(AttestError::VcekMismatch { extension: "hwID" });
    }
    Ok(())
}
