//! AMD certificate revocation: CRLs from the KDS (`/vcek/v1/{product}/crl`), signed with RSA-PSS
//! by the issuer they name (the ARK for ASKs and ASVKs).
//!
//! A CRL applies to a certificate of the chain when its issuer name is that certificate's issuer;
//! it must then be signed by the issuer's key and current at the policy clock, or the evidence
//! is refused (a forged or stale CRL is an attack on revocation, not an absent one).

use rsa::pss::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use sha2::Sha384;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::der::{Decode, Encode, referenced::OwnedToRef};
use x509_cert::spki::ObjectIdentifier;

use super::error::{AttestError, Result};
use super::policy::{Policy, SnpProduct};

const RSA_SSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// Checks `chain` = [ARK, intermediate, leaf] against the policy's CRLs.
pub(crate) fn check(
    policy: &Policy,
    product: SnpProduct,
    ark: &Certificate,
    below: &[(&'static str, &Certificate)],
) -> Result<()> {
    let now = policy.now_unix();
    let crls = policy
        .snp
        .crls
        .iter()
        .map(|der| {
            CertificateList::from_der(der)
                .map_err(|e| AttestError::CrlInvalid(format!("does not decode: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut issuers = vec![("ARK", ark)];
    issuers.extend(below.iter().copied());
    let mut ark_crl_seen = false;
    for pair in issuers.windows(2) {
        let (issuer, (which, subject)) = (pair[0].1, pair[1]);
        for crl in crls
            .iter()
            .filter(|c| c.tbs_cert_list.issuer == issuer.tbs_certificate.subject)
        {
            verify_signature(crl, issuer)?;
            check_current(crl, now)?;
            ark_crl_seen |= std::ptr::eq(issuer, ark);
            let serial = &subject.tbs_certificate.serial_number;
            let revoked = crl
                .tbs_cert_list
                .revoked_certificates
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|r| r.serial_number == *serial);
            if revoked {
                return Err(AttestError::CertificateRevoked {
                    which,
                    serial: hex::encode(serial.as_bytes()),
                });
            }
        }
    }
    if policy.snp.require_crl && !ark_crl_seen {
        return Err(AttestError::CrlMissing(format!("{product:?}")));
    }
    Ok(())
}

fn verify_signature(crl: &CertificateList, issuer: &Certificate) -> Result<()> {
    let bad = |m: String| AttestError::CrlInvalid(m);
    if crl.signature_algorithm.oid != RSA_SSA_PSS {
        return Err(bad(format!(
            "signature algorithm {} is not RSASSA-PSS",
            crl.signature_algorithm.oid
        )));
    }
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .owned_to_ref();
    let key = rsa::RsaPublicKey::try_from(spki)
        .map_err(|e| bad(format!("issuer key is not RSA: {e}")))?;
    let tbs = crl.tbs_cert_list.to_der().map_err(|e| bad(e.to_string()))?;
    let sig = Signature::try_from(crl.signature.raw_bytes())
        .map_err(|e| bad(format!("signature: {e}")))?;
    VerifyingKey::<Sha384>::new(key)
        .verify(&tbs, &sig)
        .map_err(|_| bad("not signed by its issuer".into()))
}

fn check_current(crl: &CertificateList, now: u64) -> Result<()> {
    let this_update = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
    let next_update = crl
        .tbs_cert_list
        .next_update
        .map(|t| t.to_unix_duration().as_secs());
    if now < this_update || next_update.is_some_and(|n| now > n) {
        return Err(AttestError::CrlNotCurrent {
            now,
            this_update,
            next_update: next_update.unwrap_or(0),
        });
    }
    Ok(())
}
