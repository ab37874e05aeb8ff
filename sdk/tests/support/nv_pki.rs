//! A test stand-in for NVIDIA's PKIs: a device identity root with an attestation-key leaf
//! (P-384, carrying the vendor sample's FWID), and a RIM signing root with a signer. Reports are
//! NVIDIA's sample report with our nonce (and tampering) re-signed by the test attestation key;
//! RIMs are written here and signed with XML-DSig (C14N 1.1, ECDSA-SHA384) as NVIDIA signs them.
//! Verified under `GpuTrust::Custom`, it reaches what the vendor samples cannot: the nonce, the
//! measurement comparison, the RIM versions.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use cocoon_sdk::attest::{
    GpuEvidence, GpuEvidenceProvider, GpuTrust, SPDM_SIGNATURE_LEN, SpdmReport, pem_chain,
};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer as _;
use sha2::{Digest, Sha384};
use x509_cert::der::asn1::{BitString, OctetString, UtcTime};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

pub const REPORT_HEX: &str = include_str!("../fixtures/attest/nvidia/hopperAttestationReport.txt");
pub const CHAIN_PEM: &str = include_str!("../fixtures/attest/nvidia/hopperCertChain.txt");
pub const DRIVER_RIM: &[u8] =
    include_bytes!("../fixtures/attest/nvidia/Driver_RIM_test_no_gpu.swidtag");
pub const VBIOS_RIM: &[u8] =
    include_bytes!("../fixtures/attest/nvidia/1010_0200_882_96005E0001_PROD.swidtag");
/// 2024-06-01: inside the vendor RIM signing chain's validity (2023-06-27 .. 2025-06-26).
pub const NOW: u64 = 1_717_200_000;
/// The versions the vendor sample report names.
pub const DRIVER_VERSION: &str = "550.90.07";
pub const VBIOS_VERSION: &str = "96.00.9F.00.01";

const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const FWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
const SWID_NS: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

pub struct Keys {
    pub device_root: SigningKey,
    pub ak: SigningKey,
    pub rim_root: SigningKey,
    pub rim_signer: SigningKey,
    pub rogue: SigningKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let k = || SigningKey::random(&mut rand::thread_rng());
        Keys {
            device_root: k(),
            ak: k(),
            rim_root: k(),
            rim_signer: k(),
            rogue: k(),
        }
    })
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: EC_PUBLIC_KEY,
            parameters: Some(x509_cert::der::Any::from(
                x509_cert::der::asn1::AnyRef::from(&SECP384R1),
            )),
        },
        subject_public_key: BitString::from_bytes(
            key.verifying_key().to_encoded_point(false).as_bytes(),
        )
        .unwrap(),
    }
}

fn time(secs: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
}

/// 2020-01-01 .. 2045-01-01.
pub const FROM: u64 = 1_577_836_800;
pub const UNTIL: u64 = 2_366_841_600;

/// A certificate for `key`, signed by `signer` (ecdsa-with-SHA384).
pub fn cert(
    serial: u64,
    subject: &str,
    issuer: &str,
    key: &SigningKey,
    signer: &SigningKey,
    validity: (u64, u64),
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let alg = AlgorithmIdentifierOwned {
        oid: ECDSA_SHA384,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::from(serial),
        signature: alg.clone(),
        issuer: Name::from_str(issuer).unwrap(),
        validity: Validity {
            not_before: time(validity.0),
            not_after: time(validity.1),
        },
        subject: Name::from_str(subject).unwrap(),
        subject_public_key_info: spki(key),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let sig: p384::ecdsa::Signature = signer.sign(&tbs.to_der().unwrap());
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(sig.to_der().as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}

pub const DEVICE_ROOT: &str = "CN=Cocoon Test Device Identity CA,O=Cocoon Test NVIDIA";
pub const AK: &str = "CN=Cocoon Test GH100 AK,O=Cocoon Test NVIDIA";
pub const RIM_ROOT: &str = "CN=Cocoon Test RIM Root,O=Cocoon Test NVIDIA";
pub const RIM_SIGNER: &str = "CN=Cocoon Test RIM Signer,O=Cocoon Test NVIDIA";

pub fn device_root() -> Vec<u8> {
    let k = keys();
    cert(
        1,
        DEVICE_ROOT,
        DEVICE_ROOT,
        &k.device_root,
        &k.device_root,
        (FROM, UNTIL),
        vec![],
    )
}

/// The vendor attestation key certificate's FWID extension (its last 48 bytes are the FWID the
/// sample report names).
pub fn vendor_fwid_extension() -> Extension {
    let leaf = Certificate::from_der(&pem_chain(CHAIN_PEM).unwrap()[0]).unwrap();
    leaf.tbs_certificate
        .extensions
        .unwrap()
        .into_iter()
        .find(|e| e.extn_id == FWID)
        .unwrap()
}

pub fn ak_cert_with(fwid: Extension) -> Vec<u8> {
    let k = keys();
    cert(
        2,
        AK,
        DEVICE_ROOT,
        &k.ak,
        &k.device_root,
        (FROM, UNTIL),
        vec![fwid],
    )
}

pub fn ak_cert() -> Vec<u8> {
    ak_cert_with(vendor_fwid_extension())
}

pub fn other_fwid_extension() -> Extension {
    let mut ext = vendor_fwid_extension();
    let mut v = ext.extn_value.as_bytes().to_vec();
    let last = v.len() - 1;
    v[last] ^= 1;
    ext.extn_value = OctetString::new(v).unwrap();
    ext
}

pub fn rim_root() -> Vec<u8> {
    let k = keys();
    cert(
        1,
        RIM_ROOT,
        RIM_ROOT,
        &k.rim_root,
        &k.rim_root,
        (FROM, UNTIL),
        vec![],
    )
}

pub fn rim_signer_cert() -> Vec<u8> {
    let k = keys();
    cert(
        3,
        RIM_SIGNER,
        RIM_ROOT,
        &k.rim_signer,
        &k.rim_root,
        (FROM, UNTIL),
        vec![],
    )
}

pub fn trust() -> GpuTrust {
    GpuTrust::Custom {
        device_root_der: device_root(),
        rim_root_der: rim_root(),
    }
}

pub fn vendor_report() -> Vec<u8> {
    hex::decode(REPORT_HEX.trim()).unwrap()
}

/// Signs a report in place with the test attestation key (r ‖ s over everything before them).
pub fn sign_report(report: &mut [u8]) {
    let n = report.len() - SPDM_SIGNATURE_LEN;
    let sig: p384::ecdsa::Signature = keys().ak.sign(&report[..n]);
    report[n..].copy_from_slice(&sig.to_bytes());
}

/// The vendor report carrying `nonce`, tampered by `tweak`, re-signed.
pub fn report_with(nonce: &[u8; 32], tweak: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut r = vendor_report();
    r[4..36].copy_from_slice(nonce);
    tweak(&mut r);
    sign_report(&mut r);
    r
}

/// Byte offset of measurement block `index` (1-based) value in a report.
pub fn measurement_offset(report: &[u8], index: u8) -> usize {
    // request (37) + response header (8), then blocks of 4 + 3 + value.
    let mut pos = 37 + 8;
    loop {
        let size = u16::from_le_bytes([report[pos + 2], report[pos + 3]]) as usize;
        if report[pos] == index {
            return pos + 4 + 3;
        }
        pos += 4 + size;
    }
}

/// A golden measurement: index (0-based) and its accepted values.
pub type Golden = (u8, Vec<Vec<u8>>);

/// The report's own measurements as golden values: indices `range` (0-based).
pub fn golden_of(report: &[u8], range: std::ops::Range<u8>) -> Vec<Golden> {
    let parsed = SpdmReport::parse(report).unwrap();
    range
        .map(|i| (i, vec![parsed.measurements[&(i + 1)].clone()]))
        .collect()
}

/// A RIM in canonical form, signed (enveloped XML-DSig, C14N 1.1, ECDSA-SHA384) by `signer`
/// whose chain `chain` (DER, signer first) goes into KeyInfo.
pub fn rim(version: &str, golden: &[Golden], signer: &SigningKey, chain: &[Vec<u8>]) -> Vec<u8> {
    rim_with(version, golden, signer, chain, |_| {})
}

/// As [`rim`], with `edit` applied to the signed text (tampering after signing).
pub fn rim_with(
    version: &str,
    golden: &[Golden],
    signer: &SigningKey,
    chain: &[Vec<u8>],
    edit: impl FnOnce(&mut String),
) -> Vec<u8> {
    let mut body = format!(
        "<SoftwareIdentity xmlns=\"{SWID_NS}\" name=\"GH100\" tagId=\"cocoon-test-{version}\" version=\"1.0\">\n  <Meta colloquialVersion=\"{version}\"></Meta>\n  <Payload>\n"
    );
    for (index, values) in golden {
        let hashes: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("Hash{i}=\"{}\" ", hex::encode(v)))
            .collect();
        body.push_str(&format!(
            "    <Resource {hashes}active=\"True\" alternatives=\"{}\" index=\"{index}\" name=\"Measurement_{index}\" size=\"48\" type=\"Measurement\"></Resource>\n",
            values.len()
        ));
    }
    body.push_str("  </Payload>\n");
    let digest = b64(&Sha384::digest(
        format!("{body}</SoftwareIdentity>").as_bytes(),
    ));
    let inner = format!(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384\"></ds:SignatureMethod><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform><ds:Transform Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#sha384\"></ds:DigestMethod><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    );
    // Canonical SignedInfo: the namespaces in scope at the apex are rendered on it.
    let canonical = format!("<ds:SignedInfo xmlns=\"{SWID_NS}\" xmlns:ds=\"{DSIG_NS}\">{inner}");
    let sig: p384::ecdsa::Signature = signer.sign(canonical.as_bytes());
    let certs: String = chain
        .iter()
        .map(|c| format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(c)))
        .collect();
    let mut xml = format!(
        "{body}<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>{inner}<ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>{certs}</ds:X509Data></ds:KeyInfo></ds:Signature></SoftwareIdentity>",
        b64(&sig.to_bytes())
    );
    edit(&mut xml);
    xml.into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn rim_chain() -> Vec<Vec<u8>> {
    vec![rim_signer_cert(), rim_root()]
}

/// Driver RIM (indices 0..32) and VBIOS RIM (32..64) matching `report`.
pub fn rims_for(report: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let k = keys();
    (
        rim(
            DRIVER_VERSION,
            &golden_of(report, 0..32),
            &k.rim_signer,
            &rim_chain(),
        ),
        rim(
            VBIOS_VERSION,
            &golden_of(report, 32..64),
            &k.rim_signer,
            &rim_chain(),
        ),
    )
}

/// Complete test GPU evidence for `nonce`: report, chain (AK, root), both RIMs.
pub fn evidence(nonce: &[u8; 32]) -> GpuEvidence {
    let report = report_with(nonce, |_| {});
    let (driver_rim, vbios_rim) = rims_for(&report);
    GpuEvidence {
        report,
        cert_chain: vec![ak_cert(), device_root()],
        driver_rim,
        vbios_rim,
    }
}

/// The GPU emulated behind the real provider trait: answers with test evidence for the nonce.
#[derive(Debug, Default)]
pub struct EmulatedGpu;

impl GpuEvidenceProvider for EmulatedGpu {
    fn collect(&self, nonce: &[u8; 32]) -> cocoon_sdk::attest::Result<GpuEvidence> {
        Ok(evidence(nonce))
    }
}
