//! A test stand-in for AMD's PKI: an ARK, ASK and ASVK (RSA-PSS/SHA-384 like AMD's), VCEK/VLEK
//! leaves (P-384) with AMD's hwID and SPL extensions, CRLs, and reports signed by the leaves.
//! Verified under `SnpTrust::Custom`, it lets tests reach the rules a vendor sample cannot:
//! revocation, expired intermediates, VLEK chains, TCBs below a minimum.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use cocoon_sdk::attest::{SnpProduct, SnpRoot, SnpTcb};
use p384::ecdsa::SigningKey as EcKey;
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// 2020-01-01 .. 2045-01-01: the span of the test ARK/ASK/ASVK.
pub const CA_FROM: u64 = 1_577_836_800;
pub const CA_UNTIL: u64 = 2_366_841_600;
/// 2025-01-01 .. 2032-01-01: the span of a test leaf.
pub const LEAF_FROM: u64 = 1_735_689_600;
pub const LEAF_UNTIL: u64 = 1_956_528_000;
/// 2025-06-27: the tests' clock.
pub const NOW: u64 = 1_750_982_400;

pub const ARK_NAME: &str = "CN=ARK-Test,O=Cocoon Test AMD";
pub const ASK_NAME: &str = "CN=SEV-Test,O=Cocoon Test AMD";
pub const ASVK_NAME: &str = "CN=SEV-VLEK-Test,O=Cocoon Test AMD";

pub struct Keys {
    pub ark: RsaPrivateKey,
    pub ask: RsaPrivateKey,
    pub asvk: RsaPrivateKey,
    pub rogue: RsaPrivateKey,
    pub leaf: EcKey,
}

/// RSA key generation is slow; every test of a process shares one set.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let mut rsa = || RsaPrivateKey::new(&mut rng, 2048).unwrap();
        Keys {
            ark: rsa(),
            ask: rsa(),
            asvk: rsa(),
            rogue: rsa(),
            leaf: EcKey::random(&mut rand::thread_rng()),
        }
    })
}

fn time(secs: u64) -> Time {
    let d = Duration::from_secs(secs);
    if secs < 2_524_608_000 {
        Time::UtcTime(UtcTime::from_unix_duration(d).unwrap())
    } else {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(d).unwrap())
    }
}

fn pss() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: RSA_PSS,
        parameters: None,
    }
}

pub fn rsa_sign(key: &RsaPrivateKey, data: &[u8]) -> Vec<u8> {
    let signer = rsa::pss::BlindedSigningKey::<sha2::Sha384>::new(key.clone());
    signer.sign_with_rng(&mut rand::thread_rng(), data).to_vec()
}

fn rsa_spki(key: &RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key().to_public_key_der().unwrap();
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap()
}

fn ec_spki(key: &EcKey) -> SubjectPublicKeyInfoOwned {
    let point = key.verifying_key().to_encoded_point(false);
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: EC_PUBLIC_KEY,
            parameters: Some(x509_cert::der::Any::from(
                x509_cert::der::asn1::AnyRef::from(&SECP384R1),
            )),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes()).unwrap(),
    }
}

/// What a test certificate says.
pub struct Spec<'a> {
    pub serial: u64,
    pub subject: &'a str,
    pub issuer: &'a str,
    pub from: u64,
    pub until: u64,
    pub extensions: Vec<Extension>,
}

fn build(spec: Spec<'_>, spki: SubjectPublicKeyInfoOwned, signer: &RsaPrivateKey) -> Vec<u8> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::from(spec.serial),
        signature: pss(),
        issuer: Name::from_str(spec.issuer).unwrap(),
        validity: Validity {
            not_before: time(spec.from),
            not_after: time(spec.until),
        },
        subject: Name::from_str(spec.subject).unwrap(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!spec.extensions.is_empty()).then_some(spec.extensions),
    };
    let signature = rsa_sign(signer, &tbs.to_der().unwrap());
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: pss(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

pub fn ca(spec: Spec<'_>, key: &RsaPrivateKey, signer: &RsaPrivateKey) -> Vec<u8> {
    build(spec, rsa_spki(key), signer)
}

pub fn leaf(spec: Spec<'_>, signer: &RsaPrivateKey) -> Vec<u8> {
    build(spec, ec_spki(&keys().leaf), signer)
}

fn ext(oid: &str, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical: false,
        extn_value: OctetString::new(value).unwrap(),
    }
}

/// AMD's VCEK/VLEK extensions: SPLs as DER INTEGERs, hwID as the raw chip id (VCEK only).
pub fn leaf_extensions(chip_id: Option<&[u8]>, tcb: SnpTcb) -> Vec<Extension> {
    let int = |v: u8| v.to_der().unwrap();
    let mut out = vec![
        ext("1.3.6.1.4.1.3704.1.3.1", int(tcb.bootloader)),
        ext("1.3.6.1.4.1.3704.1.3.2", int(tcb.tee)),
        ext("1.3.6.1.4.1.3704.1.3.3", int(tcb.snp)),
        ext("1.3.6.1.4.1.3704.1.3.8", int(tcb.microcode)),
    ];
    if let Some(id) = chip_id {
        out.push(ext("1.3.6.1.4.1.3704.1.4", id.to_vec()));
    }
    out
}

pub fn ark() -> Vec<u8> {
    ark_valid(CA_FROM, CA_UNTIL)
}

pub fn ark_valid(from: u64, until: u64) -> Vec<u8> {
    let k = keys();
    ca(
        Spec {
            serial: 1,
            subject: ARK_NAME,
            issuer: ARK_NAME,
            from,
            until,
            extensions: vec![],
        },
        &k.ark,
        &k.ark,
    )
}

pub fn ask_valid(from: u64, until: u64) -> Vec<u8> {
    let k = keys();
    ca(
        Spec {
            serial: 2,
            subject: ASK_NAME,
            issuer: ARK_NAME,
            from,
            until,
            extensions: vec![],
        },
        &k.ask,
        &k.ark,
    )
}

pub fn ask() -> Vec<u8> {
    ask_valid(CA_FROM, CA_UNTIL)
}

pub fn asvk() -> Vec<u8> {
    let k = keys();
    ca(
        Spec {
            serial: 3,
            subject: ASVK_NAME,
            issuer: ARK_NAME,
            from: CA_FROM,
            until: CA_UNTIL,
            extensions: vec![],
        },
        &k.asvk,
        &k.ark,
    )
}

/// The roots a `SnpTrust::Custom` policy pins for the test product (reported as Milan).
pub fn root(ark: Vec<u8>, ask: Vec<u8>) -> SnpRoot {
    SnpRoot {
        product: SnpProduct::Milan,
        ark_der: ark,
        ask_der: ask,
        asvk_der: None,
    }
}

pub fn vcek(chip_id: &[u8], tcb: SnpTcb, from: u64, until: u64) -> Vec<u8> {
    leaf(
        Spec {
            serial: 0x10,
            subject: "CN=SEV-VCEK,O=Cocoon Test AMD",
            issuer: ASK_NAME,
            from,
            until,
            extensions: leaf_extensions(Some(chip_id), tcb),
        },
        &keys().ask,
    )
}

pub fn vlek(tcb: SnpTcb) -> Vec<u8> {
    leaf(
        Spec {
            serial: 0x11,
            subject: "CN=SEV-VLEK,O=Cocoon Test AMD",
            issuer: ASVK_NAME,
            from: LEAF_FROM,
            until: LEAF_UNTIL,
            extensions: leaf_extensions(None, tcb),
        },
        &keys().asvk,
    )
}

/// A CRL of `issuer` signed by `signer`, revoking `serials`.
pub fn crl(issuer: &str, signer: &RsaPrivateKey, this: u64, next: u64, serials: &[u64]) -> Vec<u8> {
    let revoked = serials
        .iter()
        .map(|s| RevokedCert {
            serial_number: SerialNumber::from(*s),
            revocation_date: time(this),
            crl_entry_extensions: None,
        })
        .collect::<Vec<_>>();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: pss(),
        issuer: Name::from_str(issuer).unwrap(),
        this_update: time(this),
        next_update: Some(time(next)),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: None,
    };
    let signature = rsa_sign(signer, &tbs.to_der().unwrap());
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: pss(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

pub const OFF_KEY_INFO: usize = 0x48;
pub const OFF_REPORT_DATA: usize = 0x50;
pub const OFF_REPORTED_TCB: usize = 0x180;
pub const OFF_CHIP_ID: usize = 0x1A0;
pub const OFF_SIGNATURE: usize = 0x2A0;

/// Writes REPORTED_TCB (Milan/Genoa layout) and signs the report with the test leaf key.
pub fn set_tcb(report: &mut [u8], tcb: SnpTcb) {
    let t = &mut report[OFF_REPORTED_TCB..OFF_REPORTED_TCB + 8];
    t[0] = tcb.bootloader;
    t[1] = tcb.tee;
    t[6] = tcb.snp;
    t[7] = tcb.microcode;
}

/// KEY_INFO.SIGNING_KEY (bits 2..4): 0 = VCEK, 1 = VLEK.
pub fn set_signing_key(report: &mut [u8], key: u32) {
    let info = (key & 7) << 2;
    report[OFF_KEY_INFO..OFF_KEY_INFO + 4].copy_from_slice(&info.to_le_bytes());
}

/// ECDSA P-384 over bytes 0..0x2A0; r and s little-endian in 72-byte fields.
pub fn sign_report(report: &mut [u8]) {
    use p384::ecdsa::signature::Signer as _;
    let sig: p384::ecdsa::Signature = keys().leaf.sign(&report[..OFF_SIGNATURE]);
    let (r, s) = sig.split_bytes();
    let field = &mut report[OFF_SIGNATURE..OFF_SIGNATURE + 144];
    field.fill(0);
    for i in 0..48 {
        field[i] = r[47 - i];
        field[72 + i] = s[47 - i];
    }
}
