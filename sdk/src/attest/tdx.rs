//! Intel TDX verification with `dcap-qvl`: quote signature, PCK chain to the pinned Intel root,
//! CRLs and collateral freshness at the policy clock, then our own rules on the TD report.

use sha2::{Digest, Sha384};

use super::error::{AttestError, Result};
use super::evidence::EvidenceKind;
use super::policy::Policy;
use super::verify::{Tcb, Verified};

/// TDATTRIBUTES bit 0: the TD is debuggable by the host.
const TD_ATTRIBUTE_DEBUG: u8 = 0x01;

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
    if td.td_attributes[0] & TD_ATTRIBUTE_DEBUG != 0 {
        return Err(AttestError::TdxDebug);
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
