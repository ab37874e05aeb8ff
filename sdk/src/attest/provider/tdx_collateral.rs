//! Intel collateral for a TDX quote: a file the operator refreshes, or a PCCS / Intel PCS
//! (`/sgx|tdx/certification/v4/...`) fetched at every attestation so it is never stale.

use tracing::info;

use super::super::error::{AttestError, MissingInput, Result};
use super::http;

/// Intel's Provisioning Certification Service.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the SGX/TDX root CA's CRL (Intel PCS has no `rootcacrl` endpoint).
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// Where TDX collateral comes from.
#[derive(Debug, Clone, Default)]
pub struct TdxCollateralConfig {
    /// `dcap-qvl` `QuoteCollateralV3` JSON from a file.
    pub collateral_json: Option<Vec<u8>>,
    /// A PCCS or Intel PCS base URL.
    pub pccs_url: Option<String>,
}

impl TdxCollateralConfig {
    /// The collateral JSON for `quote`: the file when one is configured, else fetched.
    pub(crate) fn collateral_for(&self, quote: &[u8]) -> Result<Vec<u8>> {
        match (&self.collateral_json, &self.pccs_url) {
            (Some(json), _) => Ok(json.clone()),
            (None, Some(url)) => fetch_collateral(url, quote),
            (None, None) => Err(MissingInput::TdxCollateral.into()),
        }
    }
}

/// The REPORT_DATA of a TD quote, compared with the request.
pub(crate) fn check_tdx_echo(quote: &[u8], report_data: &[u8; 64]) -> Result<()> {
    let parsed = dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| AttestError::TdxQuoteRejected(format!("quote does not parse: {e:#}")))?;
    let td = parsed.report.as_td10().ok_or(AttestError::NotATdQuote)?;
    if td.report_data != *report_data {
        return Err(AttestError::ReportDataNotEchoed);
    }
    Ok(())
}

/// Fetches the collateral (PCK CRL, TCB info, QE identity, root CA CRL) for the quote's FMSPC and
/// PCK CA, and returns it as `QuoteCollateralV3` JSON with the quote's PCK chain attached.
pub fn fetch_collateral(base_url: &str, quote: &[u8]) -> Result<Vec<u8>> {
    let coll = |m: String| AttestError::TdxCollateral(m);
    let parsed = dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| AttestError::TdxQuoteRejected(format!("quote does not parse: {e:#}")))?;
    let pck_chain = parsed.raw_cert_chain().map_err(|e| {
        coll(format!(
            "the quote carries no PCK certificate chain ({e:#}); supply a collateral file"
        ))
    })?;
    let pck_chain = String::from_utf8_lossy(pck_chain).into_owned();
    let fmspc = dcap_qvl::intel::quote_fmspc(&parsed)
        .map_err(|e| coll(format!("no FMSPC in the PCK certificate: {e:#}")))?;
    let ca = dcap_qvl::intel::quote_ca(&parsed)
        .map_err(|e| coll(format!("unknown PCK CA: {e:#}")))?
        .as_id_str();
    let base = base_url
        .trim_end_matches('/')
        .trim_end_matches("/sgx/certification/v4")
        .trim_end_matches("/tdx/certification/v4");
    let fmspc = hex::encode_upper(fmspc);
    info!(target: "sdk::attest", pccs = %base, %fmspc, ca, "fetching TDX collateral");

    let header = |reply: &http::Reply, names: &[&str]| {
        names
            .iter()
            .find_map(|n| reply.header(n))
            .ok_or_else(|| coll(format!("PCCS reply lacks the {} header", names[0])))
            .and_then(http::percent_decode)
    };
    let crl = http::get(&format!(
        "{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"
    ))?;
    let pck_crl_issuer_chain = header(&crl, &["SGX-PCK-CRL-Issuer-Chain"])?;
    let tcb = http::get(&format!("{base}/tdx/certification/v4/tcb?fmspc={fmspc}"))?;
    let tcb_info_issuer_chain = header(
        &tcb,
        &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
    )?;
    let (tcb_info, tcb_info_signature) = signed_body(&tcb.body, "tcbInfo")?;
    let qe = http::get(&format!("{base}/tdx/certification/v4/qe/identity"))?;
    let qe_identity_issuer_chain = header(&qe, &["SGX-Enclave-Identity-Issuer-Chain"])?;
    let (qe_identity, qe_identity_signature) = signed_body(&qe.body, "enclaveIdentity")?;
    // A PCCS serves the root CA CRL (hex); Intel's PCS does not, its CRL lives at a fixed URL.
    let root_ca_crl = match http::get(&format!("{base}/sgx/certification/v4/rootcacrl")) {
        Ok(reply) => der_or_hex(reply.body)?,
        Err(_) => http::get(INTEL_ROOT_CA_CRL_URL)?.body,
    };
    let collateral = dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain,
        root_ca_crl,
        pck_crl: der_or_hex(crl.body)?,
        tcb_info_issuer_chain,
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: Some(pck_chain),
    };
    serde_json::to_vec(&collateral).map_err(|e| coll(e.to_string()))
}

/// A CRL as DER, whether sent as DER or as hex text.
fn der_or_hex(body: Vec<u8>) -> Result<Vec<u8>> {
    if body.first() == Some(&0x30) {
        return Ok(body);
    }
    let text = String::from_utf8_lossy(&body);
    hex::decode(text.trim())
        .map_err(|_| AttestError::TdxCollateral("CRL is neither DER nor hex".into()))
}

/// Splits `{"<field>": {...}, "signature": "<hex>"}` into the exact text of the signed object
/// (the signature covers those bytes, so it is sliced out, never re-serialised) and the signature.
fn signed_body(body: &[u8], field: &str) -> Result<(String, Vec<u8>)> {
    let coll = |m: String| AttestError::TdxCollateral(m);
    let text =
        std::str::from_utf8(body).map_err(|_| coll(format!("{field} reply is not UTF-8")))?;
    #[derive(serde::Deserialize)]
    struct Signed {
        signature: String,
    }
    let signed: Signed =
        serde_json::from_str(text).map_err(|e| coll(format!("{field} reply: {e}")))?;
    let signature = hex::decode(&signed.signature)
        .map_err(|_| coll(format!("{field} signature is not hex")))?;
    let key = format!("\"{field}\"");
    let start = text
        .find(&key)
        .and_then(|i| text[i + key.len()..].find('{').map(|j| i + key.len() + j))
        .ok_or_else(|| coll(format!("{field} missing from the reply")))?;
    let end = start
        + object_len(&text[start..])
            .ok_or_else(|| coll(format!("{field} is not a JSON object")))?;
    Ok((text[start..end].to_owned(), signature))
}

/// Length of the JSON object at the start of `s` (braces balanced outside strings).
fn object_len(s: &str) -> Option<usize> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in s.char_indices() {
        match (in_str, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '{') => depth += 1,
            (false, '}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_object_is_sliced_verbatim() {
        let body = br#"{"tcbInfo":{"a":"}{\"","b":[1, {"c":2}]},"signature":"0aff"}"#;
        let (obj, sig) = signed_body(body, "tcbInfo").unwrap();
        assert_eq!(obj, r#"{"a":"}{\"","b":[1, {"c":2}]}"#);
        assert_eq!(sig, vec![0x0a, 0xff]);
        assert!(signed_body(br#"{"signature":"00"}"#, "tcbInfo").is_err());
    }
}
