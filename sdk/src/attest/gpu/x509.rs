//! ECDSA P-384 certificate chains (NVIDIA's device identity and RIM signing PKIs) up to a pinned
//! root: issuer names, ecdsa-with-SHA384 signatures and validity at the policy clock.

use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature, VerifyingKey};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::ObjectIdentifier;

use super::super::error::{AttestError, Result};

const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// Longest chain accepted below the root (NVIDIA's GPU chains have four).
pub(crate) const MAX_CHAIN_CERTS: usize = 5;

/// The leaf of a verified chain.
pub(crate) struct Leaf {
    /// The leaf certificate.
    pub cert: Certificate,
    /// Its P-384 public key.
    pub key: VerifyingKey,
}

/// Verifies `chain` (DER, leaf first; it may end with the root itself) up to `root_der` at `now`.
pub(crate) fn verify_chain(
    chain: &[Vec<u8>],
    root_der: &[u8],
    now: u64,
    which: &'static str,
) -> Result<Leaf> {
    let bad = |reason: String| AttestError::GpuCertChain { which, reason };
    let chain = match chain.split_last() {
        Some((last, rest)) if last.as_slice() == root_der => rest,
        _ => chain,
    };
    if chain.is_empty() {
        return Err(bad("no certificate below the root".into()));
    }
    if chain.len() > MAX_CHAIN_CERTS {
        return Err(bad(format!(
            "{} certificates, at most {MAX_CHAIN_CERTS}",
            chain.len()
        )));
    }
    let root = Certificate::from_der(root_der).map_err(|e| bad(format!("pinned root: {e}")))?;
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der)
                .map_err(|e| bad(format!("certificate {i} does not decode: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    check_validity(&root, which, now)?;
    let mut issuer = &root;
    for (i, cert) in certs.iter().enumerate().rev() {
        if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
            return Err(bad(format!(
                "certificate {i} ({}) is not issued by {}",
                cert.tbs_certificate.subject, issuer.tbs_certificate.subject
            )));
        }
        check_signature(cert, issuer)
            .map_err(|reason| bad(format!("certificate {i}: {reason}")))?;
        check_validity(cert, which, now)?;
        issuer = cert;
    }
    let cert = certs.into_iter().next().expect("chain is not empty");
    let key = public_key(&cert).map_err(|reason| bad(format!("leaf: {reason}")))?;
    Ok(Leaf { cert, key })
}

fn public_key(cert: &Certificate) -> std::result::Result<VerifyingKey, String> {
    let spki = &cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key;
    VerifyingKey::from_sec1_bytes(spki.raw_bytes()).map_err(|_| "key is not a P-384 point".into())
}

fn check_signature(cert: &Certificate, issuer: &Certificate) -> std::result::Result<(), String> {
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA384 {
        return Err(format!(
            "signature algorithm {} is not ecdsa-with-SHA384",
            cert.signature_algorithm.oid
        ));
    }
    let key = public_key(issuer)?;
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let sig = Signature::from_der(cert.signature.raw_bytes())
        .map_err(|_| "signature is not a DER ECDSA signature".to_owned())?;
    key.verify(&tbs, &sig)
        .map_err(|_| "signature does not verify under its issuer's key".to_owned())
}

fn check_validity(cert: &Certificate, which: &'static str, now: u64) -> Result<()> {
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
