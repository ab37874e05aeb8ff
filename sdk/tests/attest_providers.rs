//! The node's evidence providers on emulated kernel interfaces: a configfs-tsm tree in a tempdir
//! and an emulated `/dev/sev-guest`, answering with the vendor samples (the `sev` crate's Milan
//! report and VCEK, `dcap-qvl`'s TDX quote and collateral). What they produce must pass the
//! client-side verifier under the production policy; each missing input fails with its message.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cocoon_sdk::attest::{
    AttestError, AttestationProvider, ConfigfsTsmProvider, Evidence, EvidenceKind, FixedClock,
    HostCert, HostCertKind, MissingInput, Policy, ProviderConfig, Result, SevGuestDevice,
    SevGuestProvider, SnpCertConfig, SnpProduct, TdxCollateralConfig, TeeInterface,
    detect_provider, encode_cert_table, measurement_id, tdx_measurement, verify_evidence,
};
use support::fake_tsm;
use support::http_stub::{Canned, HttpStub, percent_encode};

const REPORT_HEX: &str = include_str!("fixtures/attest/sev/report_milan.hex");
const VCEK_MILAN: &[u8] = include_bytes!("fixtures/attest/sev/vcek_milan.der");
const TDX_QUOTE: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote");
const TDX_COLLATERAL: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote_collateral.json");
/// 2025-06-27: inside the sample VCEK's and the TDX collateral's validity.
const NOW: u64 = 1_750_982_400;
const ENTRY: &str = "worker0";

fn snp_report() -> Vec<u8> {
    hex::decode(REPORT_HEX.trim()).unwrap()
}

fn snp_report_data() -> [u8; 64] {
    snp_report()[0x50..0x90].try_into().unwrap()
}

fn tdx_report_data() -> [u8; 64] {
    TDX_QUOTE[48 + 520..48 + 584].try_into().unwrap()
}

fn snp_policy() -> Policy {
    let m: [u8; 48] = snp_report()[0x90..0xC0].try_into().unwrap();
    Policy::production([measurement_id(&m)]).with_clock(Arc::new(FixedClock(NOW)))
}

fn tdx_policy() -> Policy {
    let quote = dcap_qvl::quote::Quote::parse(TDX_QUOTE).unwrap();
    let td = quote.report.as_td10().unwrap();
    let m = tdx_measurement(&td.mr_td, &td.rt_mr0, &td.rt_mr1, &td.rt_mr2);
    Policy::production([measurement_id(&m)]).with_clock(Arc::new(FixedClock(NOW)))
}

fn vcek_table() -> Vec<u8> {
    encode_cert_table(&[HostCert {
        kind: HostCertKind::Vcek,
        der: VCEK_MILAN.to_vec(),
    }])
}

fn configfs(
    dir: &tempfile::TempDir,
    snp: SnpCertConfig,
    tdx: TdxCollateralConfig,
) -> Result<ConfigfsTsmProvider> {
    ConfigfsTsmProvider::open(dir.path(), Some(ENTRY.into()), snp, tdx)
}

#[test]
fn configfs_snp_with_the_hosts_certificate_table_verifies() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), &vcek_table());
    let provider = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap();
    assert_eq!(provider.kind(), EvidenceKind::SevSnp);
    let evidence = provider.attest(&snp_report_data()).unwrap();
    let written = std::fs::read(dir.path().join(ENTRY).join("inblob")).unwrap();
    assert_eq!(written, snp_report_data());
    let verified = verify_evidence(&evidence, &snp_policy()).unwrap();
    assert_eq!(verified.report_data, snp_report_data());
}

#[test]
fn configfs_snp_with_a_vcek_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), b"");
    let snp = SnpCertConfig {
        signing_cert: Some(VCEK_MILAN.to_vec()),
        ..SnpCertConfig::default()
    };
    let provider = configfs(&dir, snp, TdxCollateralConfig::default()).unwrap();
    let evidence = provider.attest(&snp_report_data()).unwrap();
    verify_evidence(&evidence, &snp_policy()).unwrap();
}

#[test]
fn configfs_snp_without_any_vcek_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), b"");
    let provider = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap();
    let err = provider.attest(&snp_report_data()).unwrap_err();
    assert!(
        matches!(err, AttestError::Missing(MissingInput::SnpSigningCert)),
        "{err}"
    );
    assert!(err.to_string().contains("certificate table"), "{err}");
}

fn kds_stub() -> HttpStub {
    let report = snp_report();
    let chip = hex::encode(&report[0x1A0..0x1E0]);
    let path = format!("/vcek/v1/Milan/{chip}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115");
    HttpStub::start(BTreeMap::from([(
        path,
        Canned {
            headers: vec![],
            body: VCEK_MILAN.to_vec(),
        },
    )]))
}

#[test]
fn configfs_snp_fetches_the_vcek_from_the_kds() {
    let kds = kds_stub();
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), b"");
    let snp = SnpCertConfig {
        kds_url: Some(format!("{}/", kds.base_url)),
        product: Some(SnpProduct::Milan),
        ..SnpCertConfig::default()
    };
    let provider = configfs(&dir, snp, TdxCollateralConfig::default()).unwrap();
    let evidence = provider.attest(&snp_report_data()).unwrap();
    verify_evidence(&evidence, &snp_policy()).unwrap();
    assert_eq!(kds.requested().len(), 1, "{:?}", kds.requested());
}

#[test]
fn kds_without_a_product_for_a_version_2_report_names_what_is_missing() {
    let kds = kds_stub();
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), b"");
    let snp = SnpCertConfig {
        kds_url: Some(kds.base_url.clone()),
        ..SnpCertConfig::default()
    };
    let provider = configfs(&dir, snp, TdxCollateralConfig::default()).unwrap();
    let err = provider.attest(&snp_report_data()).unwrap_err();
    assert!(
        matches!(err, AttestError::Missing(MissingInput::SnpProduct)),
        "{err}"
    );
    assert!(kds.requested().is_empty());
}

#[test]
fn kds_answering_404_is_an_http_error() {
    let kds = HttpStub::start(BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), b"");
    let snp = SnpCertConfig {
        kds_url: Some(kds.base_url.clone()),
        product: Some(SnpProduct::Milan),
        ..SnpCertConfig::default()
    };
    let provider = configfs(&dir, snp, TdxCollateralConfig::default()).unwrap();
    let err = provider.attest(&snp_report_data()).unwrap_err();
    assert!(
        matches!(&err, AttestError::Http { reason, .. } if reason.contains("404")),
        "{err}"
    );
}

#[test]
fn a_report_for_other_report_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), &vcek_table());
    let provider = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap();
    let err = provider.attest(&[7; 64]).unwrap_err();
    assert!(matches!(err, AttestError::ReportDataNotEchoed), "{err}");
}

#[test]
fn a_missing_configfs_entry_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, AttestError::Missing(MissingInput::ConfigfsEntry(p)) if p.ends_with(ENTRY)),
        "{err}"
    );
}

#[test]
fn a_malformed_certificate_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = vcek_table();
    table.truncate(30);
    fake_tsm::entry(dir.path(), ENTRY, "sev_guest", &snp_report(), &table);
    let provider = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap();
    let err = provider.attest(&snp_report_data()).unwrap_err();
    assert!(matches!(err, AttestError::CertTable(_)), "{err}");
}

#[test]
fn configfs_tdx_with_a_collateral_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "tdx_guest", TDX_QUOTE, b"");
    let tdx = TdxCollateralConfig {
        collateral_json: Some(TDX_COLLATERAL.to_vec()),
        pccs_url: None,
    };
    let provider = configfs(&dir, SnpCertConfig::default(), tdx).unwrap();
    assert_eq!(provider.kind(), EvidenceKind::Tdx);
    let evidence = provider.attest(&tdx_report_data()).unwrap();
    assert!(matches!(evidence, Evidence::Tdx { .. }));
    verify_evidence(&evidence, &tdx_policy()).unwrap();
}

#[test]
fn configfs_tdx_without_collateral_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "tdx_guest", TDX_QUOTE, b"");
    let provider = configfs(
        &dir,
        SnpCertConfig::default(),
        TdxCollateralConfig::default(),
    )
    .unwrap();
    let err = provider.attest(&tdx_report_data()).unwrap_err();
    assert!(
        matches!(err, AttestError::Missing(MissingInput::TdxCollateral)),
        "{err}"
    );
    assert!(err.to_string().contains("PCCS"), "{err}");
}

/// A PCCS serving the sample collateral the way Intel's API lays it out.
fn pccs_stub() -> HttpStub {
    let c: serde_json::Value = serde_json::from_slice(TDX_COLLATERAL).unwrap();
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    let signed = |field: &str, body: &str, sig: &str| {
        format!("{{\"{field}\":{body},\"signature\":\"{sig}\"}}").into_bytes()
    };
    let quote = dcap_qvl::quote::Quote::parse(TDX_QUOTE).unwrap();
    let fmspc = hex::encode_upper(dcap_qvl::intel::quote_fmspc(&quote).unwrap());
    let ca = dcap_qvl::intel::quote_ca(&quote).unwrap().as_id_str();
    let routes = BTreeMap::from([
        (
            format!("/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"),
            Canned {
                headers: vec![(
                    "SGX-PCK-CRL-Issuer-Chain".into(),
                    percent_encode(&s("pck_crl_issuer_chain")),
                )],
                body: hex::decode(s("pck_crl")).unwrap(),
            },
        ),
        (
            format!("/tdx/certification/v4/tcb?fmspc={fmspc}"),
            Canned {
                headers: vec![(
                    "TCB-Info-Issuer-Chain".into(),
                    percent_encode(&s("tcb_info_issuer_chain")),
                )],
                body: signed("tcbInfo", &s("tcb_info"), &s("tcb_info_signature")),
            },
        ),
        (
            "/tdx/certification/v4/qe/identity".into(),
            Canned {
                headers: vec![(
                    "SGX-Enclave-Identity-Issuer-Chain".into(),
                    percent_encode(&s("qe_identity_issuer_chain")),
                )],
                body: signed(
                    "enclaveIdentity",
                    &s("qe_identity"),
                    &s("qe_identity_signature"),
                ),
            },
        ),
        (
            "/sgx/certification/v4/rootcacrl".into(),
            Canned {
                headers: vec![],
                body: s("root_ca_crl").into_bytes(),
            },
        ),
    ]);
    HttpStub::start(routes)
}

#[test]
fn configfs_tdx_fetches_collateral_from_a_pccs() {
    let pccs = pccs_stub();
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "tdx_guest", TDX_QUOTE, b"");
    let tdx = TdxCollateralConfig {
        collateral_json: None,
        pccs_url: Some(format!("{}/sgx/certification/v4/", pccs.base_url)),
    };
    let provider = configfs(&dir, SnpCertConfig::default(), tdx).unwrap();
    let evidence = provider.attest(&tdx_report_data()).unwrap();
    verify_evidence(&evidence, &tdx_policy()).unwrap();
    assert_eq!(pccs.requested().len(), 4, "{:?}", pccs.requested());
}

#[test]
fn a_pccs_missing_a_header_is_refused() {
    let pccs = HttpStub::start(BTreeMap::from([(
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der".into(),
        Canned::default(),
    )]));
    let err = cocoon_sdk::attest::fetch_collateral(&pccs.base_url, TDX_QUOTE).unwrap_err();
    assert!(
        matches!(
            &err,
            AttestError::TdxCollateral(_) | AttestError::Http { .. }
        ),
        "{err}"
    );
}

/// `/dev/sev-guest` emulated: answers with a fixed report and certificate table, and records
/// the requests it saw.
#[derive(Debug)]
struct EmulatedSevGuest {
    report: Vec<u8>,
    table: Vec<HostCert>,
    seen: Mutex<Vec<([u8; 64], u32)>>,
}

impl SevGuestDevice for EmulatedSevGuest {
    fn get_ext_report(
        &self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, Vec<HostCert>)> {
        self.seen.lock().unwrap().push((*report_data, vmpl));
        Ok((self.report.clone(), self.table.clone()))
    }
}

fn emulated(table: Vec<HostCert>) -> Arc<EmulatedSevGuest> {
    Arc::new(EmulatedSevGuest {
        report: snp_report(),
        table,
        seen: Mutex::new(Vec::new()),
    })
}

#[test]
fn sev_guest_with_the_hosts_certificate_table_verifies() {
    let device = emulated(vec![
        HostCert {
            kind: HostCertKind::Ark,
            der: vec![1, 2, 3],
        },
        HostCert {
            kind: HostCertKind::Vcek,
            der: VCEK_MILAN.to_vec(),
        },
    ]);
    let provider = SevGuestProvider::new(device.clone(), SnpCertConfig::default());
    let evidence = provider.attest(&snp_report_data()).unwrap();
    verify_evidence(&evidence, &snp_policy()).unwrap();
    assert_eq!(*device.seen.lock().unwrap(), vec![(snp_report_data(), 0)]);
}

#[test]
fn sev_guest_without_a_table_uses_the_file_or_names_what_is_missing() {
    let provider = SevGuestProvider::new(emulated(vec![]), SnpCertConfig::default());
    let err = provider.attest(&snp_report_data()).unwrap_err();
    assert!(
        matches!(err, AttestError::Missing(MissingInput::SnpSigningCert)),
        "{err}"
    );
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(VCEK_MILAN)
        }
    );
    let provider = SevGuestProvider::new(
        emulated(vec![]),
        SnpCertConfig {
            signing_cert: Some(pem.into_bytes()),
            ..SnpCertConfig::default()
        },
    );
    let evidence = provider.attest(&snp_report_data()).unwrap();
    verify_evidence(&evidence, &snp_policy()).unwrap();
}

#[test]
fn detection_uses_the_configured_configfs_entry() {
    let dir = tempfile::tempdir().unwrap();
    fake_tsm::entry(dir.path(), ENTRY, "tdx_guest", TDX_QUOTE, b"");
    let config = ProviderConfig {
        configfs_root: dir.path().to_path_buf(),
        configfs_entry: Some(ENTRY.into()),
        sev_guest_device: dir.path().join("no-sev-guest"),
        tdx: TdxCollateralConfig {
            collateral_json: Some(TDX_COLLATERAL.to_vec()),
            pccs_url: None,
        },
        ..ProviderConfig::default()
    };
    let provider = detect_provider(&config).unwrap();
    assert_eq!(provider.kind(), EvidenceKind::Tdx);
    verify_evidence(&provider.attest(&tdx_report_data()).unwrap(), &tdx_policy()).unwrap();
    let forced = ProviderConfig {
        interface: TeeInterface::SevGuest,
        ..config
    };
    let err = detect_provider(&forced).unwrap_err();
    assert!(
        matches!(&err, AttestError::ProviderUnavailable(m) if m.contains("no-sev-guest")),
        "{err}"
    );
}
