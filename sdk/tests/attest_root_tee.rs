//! Root v2's TEE policy enforced by the verifier: `Policy::from_root_v2` (and the chain reader
//! `contracts::attestation_policy`) take the SEV-SNP minimum TCB and the TDX attributes rule and
//! MRCONFIGID/MROWNER/RTMR3 allow-lists from `get_tee_policy`. Each rule has a named tamper test.
//! SEV-SNP uses the `sev` Milan sample re-signed by the test PKI (as `attest_snp_rules`), TDX the
//! `dcap-qvl` sample quote and collateral.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cocoon_sdk::attest::{
    AttestError, Evidence, FixedClock, Policy, SnpTcb, SnpTrust, measurement_id, tdx_measurement,
    verify_evidence,
};
use cocoon_sdk::messages::records::RootPolicy;
use cocoon_sdk::messages::v2::records::{SnpMinTcb, TeePolicy};
use support::amd_pki::{self as pki, NOW};

const REPORT_HEX: &str = include_str!("fixtures/attest/sev/report_milan.hex");
/// The sample's REPORTED_TCB.
const TCB: SnpTcb = SnpTcb {
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};
const QUOTE: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("fixtures/attest/dcap-qvl/tdx_quote_collateral.json");
/// Inside the TDX sample collateral's validity window.
const TDX_NOW: u64 = 1_750_982_400;

fn snp_evidence() -> Evidence {
    let mut report = hex::decode(REPORT_HEX.trim()).unwrap();
    pki::set_tcb(&mut report, TCB);
    pki::sign_report(&mut report);
    let chip_id = report[pki::OFF_CHIP_ID..pki::OFF_CHIP_ID + 64].to_vec();
    Evidence::SevSnp {
        vcek_der: pki::vcek(&chip_id, TCB, pki::LEAF_FROM, pki::LEAF_UNTIL),
        report,
        ask_ark_pem: None,
    }
}

fn snp_root() -> RootPolicy {
    let report = hex::decode(REPORT_HEX.trim()).unwrap();
    let m: [u8; 48] = report[0x90..0xC0].try_into().unwrap();
    RootPolicy {
        allowed_kinds: 0b110,
        measurements: BTreeSet::from([measurement_id(&m)]),
    }
}

/// The policy a client builds from a v2 Root, with the test PKI pinned in place of AMD's roots.
fn snp_policy(tee: &TeePolicy) -> Policy {
    let mut p = Policy::from_root_v2(&snp_root(), tee).with_clock(Arc::new(FixedClock(NOW)));
    p.snp.trust = SnpTrust::Custom(vec![pki::root(pki::ark(), pki::ask())]);
    p
}

fn min_tcb(boot_loader: u8, tee: u8, snp: u8, microcode: u8, fmc: u8) -> TeePolicy {
    TeePolicy {
        snp_min_tcb: SnpMinTcb {
            boot_loader,
            tee,
            snp,
            microcode,
            fmc,
        },
        ..TeePolicy::any()
    }
}

#[test]
fn snp_at_roots_min_tcb_accepted() {
    // Exactly the sample's TCB; fmc is not reported by Milan, so Root's fmc minimum does not apply.
    verify_evidence(&snp_evidence(), &snp_policy(&min_tcb(3, 0, 8, 115, 9))).unwrap();
    verify_evidence(&snp_evidence(), &snp_policy(&TeePolicy::any())).unwrap();
}

#[test]
fn snp_report_below_roots_min_tcb_rejected() {
    for (tee, name, reported, minimum) in [
        (min_tcb(4, 0, 8, 115, 0), "bootloader", 3, 4),
        (min_tcb(3, 1, 8, 115, 0), "tee", 0, 1),
        (min_tcb(3, 0, 9, 115, 0), "snp", 8, 9),
        (min_tcb(3, 0, 8, 116, 0), "microcode", 115, 116),
    ] {
        let err = verify_evidence(&snp_evidence(), &snp_policy(&tee)).unwrap_err();
        assert!(
            matches!(err, AttestError::TcbTooLow { component, reported: r, minimum: m }
                if component == name && r == reported && m == minimum),
            "{name}: {err}"
        );
    }
}

fn td() -> dcap_qvl::quote::TDReport10 {
    *dcap_qvl::quote::Quote::parse(QUOTE)
        .unwrap()
        .report
        .as_td10()
        .unwrap()
}

fn tdx_policy(tee: &TeePolicy) -> Policy {
    let td = td();
    let m = tdx_measurement(&td.mr_td, &td.rt_mr0, &td.rt_mr1, &td.rt_mr2);
    let root = RootPolicy {
        allowed_kinds: 0b110,
        measurements: BTreeSet::from([measurement_id(&m)]),
    };
    Policy::from_root_v2(&root, tee).with_clock(Arc::new(FixedClock(TDX_NOW)))
}

fn tdx_evidence() -> Evidence {
    Evidence::Tdx {
        quote: QUOTE.to_vec(),
        collateral_json: COLLATERAL.to_vec(),
    }
}

fn flip(register: &[u8; 48]) -> [u8; 48] {
    let mut r = *register;
    r[47] ^= 0x80;
    r
}

/// Root's rule built on the sample's own registers: every list holds the sample's value and one
/// other, the attributes rule requires the sample's SEPT_VE_DISABLE bit.
fn matching_tdx_rule() -> TeePolicy {
    let td = td();
    let mut tee = TeePolicy::any();
    let attributes = u64::from_le_bytes(td.td_attributes);
    tee.tdx.td_attributes_mask = 1 | 1 << 28;
    tee.tdx.td_attributes_value = attributes & (1 << 28);
    tee.tdx.mr_config_ids = BTreeSet::from([td.mr_config_id, flip(&td.mr_config_id)]);
    tee.tdx.mr_owners = BTreeSet::from([td.mr_owner, flip(&td.mr_owner)]);
    tee.tdx.rtmr3s = BTreeSet::from([td.rt_mr3, flip(&td.rt_mr3)]);
    tee
}

#[test]
fn tdx_roots_rule_on_the_samples_registers_accepted() {
    verify_evidence(&tdx_evidence(), &tdx_policy(&matching_tdx_rule())).unwrap();
    verify_evidence(&tdx_evidence(), &tdx_policy(&TeePolicy::any())).unwrap();
}

fn register_refused(tee: TeePolicy, name: &str) {
    let err = verify_evidence(&tdx_evidence(), &tdx_policy(&tee)).unwrap_err();
    assert!(
        matches!(&err, AttestError::TdxRegisterMismatch { register, .. } if *register == name),
        "{name}: {err}"
    );
}

#[test]
fn tdx_mrconfigid_not_on_roots_list_rejected() {
    let mut tee = matching_tdx_rule();
    tee.tdx.mr_config_ids = BTreeSet::from([flip(&td().mr_config_id)]);
    register_refused(tee, "MRCONFIGID");
}

#[test]
fn tdx_mrowner_not_on_roots_list_rejected() {
    let mut tee = matching_tdx_rule();
    tee.tdx.mr_owners = BTreeSet::from([flip(&td().mr_owner)]);
    register_refused(tee, "MROWNER");
}

#[test]
fn tdx_rtmr3_not_on_roots_list_rejected() {
    let mut tee = matching_tdx_rule();
    tee.tdx.rtmr3s = BTreeSet::from([flip(&td().rt_mr3)]);
    register_refused(tee, "RTMR3");
}

#[test]
fn tdx_attributes_against_roots_rule_rejected() {
    let attributes = u64::from_le_bytes(td().td_attributes);
    let mut tee = matching_tdx_rule();
    // Require the opposite SEPT_VE_DISABLE bit.
    tee.tdx.td_attributes_mask = 1 << 28;
    tee.tdx.td_attributes_value = !attributes & (1 << 28);
    let err = verify_evidence(&tdx_evidence(), &tdx_policy(&tee)).unwrap_err();
    assert!(
        matches!(err, AttestError::TdxAttributes { actual, .. } if actual == attributes),
        "{err}"
    );
}

#[test]
fn roots_open_tdx_mask_still_refuses_debug() {
    // Root's mask leaves DEBUG out: the verifier keeps it in the mask with value 0.
    let p = tdx_policy(&TeePolicy::any());
    assert_eq!(p.tdx.td_attributes_mask & 1, 1);
    assert_eq!(p.tdx.td_attributes & 1, 0);
    let mut tee = TeePolicy::any();
    tee.tdx.td_attributes_mask = 1;
    tee.tdx.td_attributes_value = 1;
    let p = tdx_policy(&tee);
    assert_eq!(p.tdx.td_attributes & 1, 0);
}

/// The policy a client, the relayer or the worker reads from a live v2 Root carries the TEE policy
/// applied through the governance queue, and refuses a report below its minimum TCB.
#[tokio::test]
async fn attestation_policy_read_from_a_v2_root_enforces_its_min_tcb_on_localnet() {
    use cocoon_sdk::contracts::attestation_policy;
    use cocoon_sdk::contracts::v2::RootClient;
    use cocoon_sdk::wallet::SendOptions;
    use cocoon_testkit::chain::start_localnet;
    use cocoon_testkit::{DevChainV2, dev};

    let dev_chain = DevChainV2::on(start_localnet().await.unwrap(), BTreeMap::new())
        .await
        .unwrap();
    let root = RootClient::at(&dev_chain.chain, dev_chain.root.clone());
    let opts = SendOptions::default();
    let tee = min_tcb(3, 0, 8, 116, 0);
    let id = root.next_change_id().await.unwrap();
    root.queue_tee_policy(&dev_chain.governor, tee.clone(), &opts)
        .await
        .unwrap();
    dev_chain
        .localnet
        .advance_time(u64::from(dev::GOVERNANCE_DELAY) + 1)
        .await
        .unwrap();
    root.apply_change(&dev_chain.governor, id, &opts)
        .await
        .unwrap();

    let policy = attestation_policy(&dev_chain.chain, &dev_chain.root, false)
        .await
        .unwrap();
    assert!(!policy.is_development());
    assert_eq!(
        policy.snp.min_tcb,
        SnpTcb {
            microcode: 116,
            ..TCB
        }
    );
    assert_eq!(policy.tdx.td_attributes_mask, 1, "DEBUG stays refused");
    // The same rules with the sample's measurement allowed refuse the report, naming the component.
    let read = root.tee_policy().await.unwrap();
    assert_eq!(read, tee);
    let err = verify_evidence(&snp_evidence(), &snp_policy(&read)).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TcbTooLow {
                component: "microcode",
                reported: 115,
                minimum: 116
            }
        ),
        "{err}"
    );
}
