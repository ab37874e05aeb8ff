//! Intel TDX verification with `dcap-qvl`: quote signature, PCK chain to the pinned Intel root,
//! CRLs and collateral freshness at the policy clock, then our own rules on the TD report.

use sha2::{Digest, Sha384};

use super::error::{AttestError, Result};
use super::evidence::EvidenceKind;
use super::policy::{Policy, TD_ATTRIBUTE_DEBUG};
use super::verify::{Tcb, Verified};

pub(crate) fn verify(
    quote: &[u8],
    collateral_json: &[u8],
    policy: &Policy,
    evidence_hash: [u8; 32],
) -> Result<Verified> {
    let collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(collateral_json)
        .map_err(|e| AttestError::TdxCollateral(e.to_string()))?;
    // `verify` pins Intel's production root and refuses debug TDs; the clock decides whether the
    // TCB info, QE identity and CRLs are still current.
    let verified = dcap_qvl::verify::verify(quote, &collateral, policy.now_unix())
        .map_err(|e| AttestError::TdxQuoteRejected(format!("{e:#}")))?;
    let td = verified.report.as_td10().ok_or(AttestError::NotATdQuote)?;
    let attributes = u64::from_le_bytes(td.td_attributes);
    if attributes & TD_ATTRIBUTE_DEBUG != 0 {
        return Err(AttestError::TdxDebug);
    }
    let rules = &policy.tdx;
    if attributes & rules.td_attributes_mask != rules.td_attributes & rules.td_attributes_mask {
        return Err(AttestError::TdxAttributes {
            actual: attributes,
            mask: rules.td_attributes_mask,
            required: rules.td_attributes,
        });
    }
    for (register, actual, required) in [
        ("MRCONFIGID", &td.mr_config_id, &rules.mr_config_id),
        ("MROWNER", &td.mr_owner, &rules.mr_owner),
        ("MROWNERCONFIG", &td.mr_owner_config, &rules.mr_owner_config),
    ] {
        if required.is_some_and(|r| r != *actual) {
            return Err(AttestError::TdxRegisterMismatch {
                register,
                actual: hex::encode(actual),
            });
        }
    }
    for (register, actual, allowed) in [
        ("MRCONFIGID", &td.mr_config_id, &rules.mr_config_ids),
        ("MROWNER", &td.mr_owner, &rules.mr_owners),
    ] {
        if !allowed.is_empty() && !allowed.contains(actual) {
            return Err(AttestError::TdxRegisterMismatch {
                register,
                actual: hex::encode(actual),
            });
        }
    }
    if !rules.rtmr3.is_empty() && !rules.rtmr3.contains(&td.rt_mr3) {
        return Err(AttestError::TdxRegisterMismatch {
            register: "RTMR3",
            actual: hex::encode(td.rt_mr3),
        });
    }
    if !policy.tdx.allowed_statuses.contains(&verified.status) {
        return Err(AttestError::TdxStatusNotAllowed(verified.status));
    }
    let measurement = tdx_measurement(&td.mr_td, &td.rt_mr0, &td.rt_mr1, &td.rt_mr2);
    if !policy.allows_measurement(&measurement) {
        return Err(AttestError::MeasurementNotAllowed {
            kind: EvidenceKind::Tdx,
            measurement: hex::encode(measurement),
        });
    }
    Ok(Verified {
        kind: EvidenceKind::Tdx,
        measurement,
        tcb: Tcb::Tdx {
            tee_tcb_svn: td.tee_tcb_svn,
            status: verified.status,
        },
        report_data: td.report_data,
        evidence_hash,
        gpu: None,
    })
}

/// The TDX launch measurement used on allow-lists: SHA-384(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2), i.e. the
/// firmware image, its configuration, and the kernel/initrd/command line.
pub fn tdx_measurement(
    mr_td: &[u8; 48],
    rtmr0: &[u8; 48],
    rtmr1: &[u8; 48],
    rtmr2: &[u8; 48],
) -> [u8; 48] {
    let mut h = Sha384::new();
    for part in [mr_td, rtmr0, rtmr1, rtmr2] {
        h.update(part);
    }
    h.finalize().into()
}
