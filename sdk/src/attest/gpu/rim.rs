//! NVIDIA Reference Integrity Manifests: ISO SWID tags (`SoftwareIdentity`) listing golden
//! measurements, each signed with an enveloped XML-DSig (C14N 1.1, ECDSA P-384/SHA-384) by a key
//! whose certificate chain travels in `KeyInfo` and ends at NVIDIA's RIM signing root.
//!
//! The signature is checked the way XML-DSig defines it: the document without the `Signature`
//! element, canonicalised, must hash to `DigestValue`, and the canonical `SignedInfo` must verify
//! under the first certificate of `KeyInfo`. Only this exact profile is accepted (one reference
//! to the whole document, the enveloped-signature and C14N 1.1 transforms): anything else could
//! sign less than the measurements.

use std::collections::BTreeMap;

use base64::Engine as _;
use p384::ecdsa::signature::Verifier as _;
use roxmltree::{Document, Node, ParsingOptions};
use sha2::{Digest, Sha384};

use super::super::error::{AttestError, Result};
use super::c14n::canonicalize;
use super::x509;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const SHA384_DIGEST: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha384",
];
/// Largest RIM accepted (NVIDIA's are about 20 KiB).
pub(crate) const MAX_RIM_LEN: usize = 256 * 1024;

/// One golden measurement of a RIM: its index (0-based; SPDM block `index + 1`) and the values
/// the runtime measurement may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenMeasurement {
    /// Measurement index, 0-based.
    pub index: u8,
    /// Accepted values (`Hash0`, `Hash1`, ...).
    pub alternatives: Vec<Vec<u8>>,
    /// Size of each value in bytes.
    pub size: usize,
}

/// A RIM whose signature and signing chain verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rim {
    /// `Meta/@colloquialVersion`: the driver version (`550.90.07`) or VBIOS version
    /// (`96.00.9F.00.01`) the RIM describes.
    pub version: String,
    /// Active golden measurements by index.
    pub measurements: BTreeMap<u8, GoldenMeasurement>,
}

/// Verifies a RIM's XML-DSig and its certificate chain up to `root_der` at `now`, then reads its
/// active golden measurements. `which` names it in errors (`driver RIM`, `VBIOS RIM`).
pub(crate) fn verify(xml: &[u8], which: &'static str, root_der: &[u8], now: u64) -> Result<Rim> {
    let bad = |reason: String| AttestError::GpuRimInvalid { which, reason };
    if xml.len() > MAX_RIM_LEN {
        return Err(bad(format!("{} bytes, at most {MAX_RIM_LEN}", xml.len())));
    }
    let src = std::str::from_utf8(xml).map_err(|_| bad("not UTF-8".into()))?;
    let doc = Document::parse_with_options(
        src,
        ParsingOptions {
            allow_dtd: false,
            ..ParsingOptions::default()
        },
    )
    .map_err(|e| bad(format!("does not parse: {e}")))?;
    let root = doc.root_element();
    let signatures: Vec<Node<'_, '_>> = root
        .children()
        .filter(|n| is(n, DSIG, "Signature"))
        .collect();
    let [signature] = signatures[..] else {
        return Err(bad(format!(
            "{} enveloped Signature elements, expected 1",
            signatures.len()
        )));
    };
    if root
        .descendants()
        .filter(|n| is(n, DSIG, "Signature"))
        .count()
        != 1
    {
        return Err(bad("a Signature element is nested in the payload".into()));
    }
    let signed_info = child(signature, "SignedInfo").ok_or_else(|| bad("no SignedInfo".into()))?;
    check_profile(signed_info).map_err(bad)?;

    let reference = child(signed_info, "Reference").ok_or_else(|| bad("no Reference".into()))?;
    let digest_value = child(reference, "DigestValue")
        .and_then(|n| n.text())
        .ok_or_else(|| bad("no DigestValue".into()))?;
    let expected = b64(digest_value).map_err(|e| bad(format!("DigestValue: {e}")))?;
    let digest = Sha384::digest(canonicalize(src, root, Some(signature)).as_bytes());
    if digest.as_slice() != expected.as_slice() {
        return Err(AttestError::GpuRimSignatureInvalid {
            which,
            reason: "the document does not hash to its DigestValue".into(),
        });
    }

    let certs: Vec<Vec<u8>> = signature
        .descendants()
        .filter(|n| is(n, DSIG, "X509Certificate"))
        .map(|n| b64(n.text().unwrap_or_default()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("X509Certificate: {e}")))?;
    let leaf = x509::verify_chain(&certs, root_der, now, which)?.key;
    let signature_value = child(signature, "SignatureValue")
        .and_then(|n| n.text())
        .ok_or_else(|| bad("no SignatureValue".into()))?;
    let sig = b64(signature_value).map_err(|e| bad(format!("SignatureValue: {e}")))?;
    let sig = p384::ecdsa::Signature::from_slice(&sig).map_err(|_| {
        AttestError::GpuRimSignatureInvalid {
            which,
            reason: format!("SignatureValue is {} bytes, not r ‖ s of P-384", sig.len()),
        }
    })?;
    let signed = canonicalize(src, signed_info, None);
    leaf.verify(signed.as_bytes(), &sig)
        .map_err(|_| AttestError::GpuRimSignatureInvalid {
            which,
            reason: "SignedInfo does not verify under the RIM signing certificate".into(),
        })?;

    read_payload(root).map_err(bad)
}

fn check_profile(signed_info: Node<'_, '_>) -> std::result::Result<(), String> {
    let algorithm = |n: Option<Node<'_, '_>>, what: &str| {
        n.and_then(|n| n.attribute("Algorithm"))
            .map(str::to_owned)
            .ok_or(format!("no {what} algorithm"))
    };
    let c14n = algorithm(
        child(signed_info, "CanonicalizationMethod"),
        "canonicalization",
    )?;
    let method = algorithm(child(signed_info, "SignatureMethod"), "signature")?;
    let references: Vec<_> = signed_info
        .children()
        .filter(|n| is(n, DSIG, "Reference"))
        .collect();
    if references.len() != 1 {
        return Err(format!("{} references, expected 1", references.len()));
    }
    let reference = references[0];
    let digest = algorithm(child(reference, "DigestMethod"), "digest")?;
    let transforms: Vec<String> = child(reference, "Transforms")
        .map(|t| {
            t.children()
                .filter(|n| is(n, DSIG, "Transform"))
                .filter_map(|n| n.attribute("Algorithm").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if c14n != C14N11 {
        return Err(format!("canonicalization {c14n} is not C14N 1.1"));
    }
    if method != ECDSA_SHA384 {
        return Err(format!("signature method {method} is not ECDSA-SHA384"));
    }
    if !SHA384_DIGEST.contains(&digest.as_str()) {
        return Err(format!("digest method {digest} is not SHA-384"));
    }
    if reference.attribute("URI") != Some("") {
        return Err("the reference is not to the whole document (URI=\"\")".into());
    }
    if transforms != [ENVELOPED, C14N11] {
        return Err(format!(
            "transforms {transforms:?} are not enveloped-signature then C14N 1.1"
        ));
    }
    Ok(())
}

fn read_payload(root: Node<'_, '_>) -> std::result::Result<Rim, String> {
    let version = root
        .children()
        .find(|n| n.tag_name().name() == "Meta")
        .and_then(|m| m.attribute("colloquialVersion"))
        .ok_or("no Meta/@colloquialVersion")?
        .to_owned();
    let payload = root
        .children()
        .find(|n| n.tag_name().name() == "Payload")
        .ok_or("no Payload")?;
    let mut measurements = BTreeMap::new();
    for resource in payload
        .children()
        .filter(|n| n.tag_name().name() == "Resource")
    {
        if resource.attribute("type") != Some("Measurement") {
            continue;
        }
        let index: u8 = resource
            .attribute("index")
            .and_then(|v| v.parse().ok())
            .ok_or("a Resource without a valid index")?;
        let active = match resource.attribute("active") {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            other => return Err(format!("measurement {index}: active={other:?}")),
        };
        if !active {
            continue;
        }
        let size: usize = resource
            .attribute("size")
            .and_then(|v| v.parse().ok())
            .ok_or(format!("measurement {index}: no size"))?;
        let count: usize = resource
            .attribute("alternatives")
            .and_then(|v| v.parse().ok())
            .ok_or(format!("measurement {index}: no alternatives"))?;
        let mut alternatives = Vec::with_capacity(count);
        for i in 0..count {
            let name = format!("Hash{i}");
            let value = resource
                .attributes()
                .find(|a| a.name() == name)
                .ok_or(format!("measurement {index}: no {name}"))?
                .value();
            let bytes = hex::decode(value).map_err(|_| format!("measurement {index}: {name}"))?;
            if bytes.len() != size {
                return Err(format!(
                    "measurement {index}: {name} is {} bytes, size says {size}",
                    bytes.len()
                ));
            }
            alternatives.push(bytes);
        }
        let golden = GoldenMeasurement {
            index,
            alternatives,
            size,
        };
        if measurements.insert(index, golden).is_some() {
            return Err(format!("measurement {index} listed twice"));
        }
    }
    Ok(Rim {
        version,
        measurements,
    })
}

fn is(n: &Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(c, DSIG, name))
}

fn b64(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}
