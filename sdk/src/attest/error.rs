//! Errors of evidence decoding, verification, policy and the worker-side providers.

use super::evidence::EvidenceKind;

/// An input a provider needs and was not given: each names what the operator must supply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MissingInput {
    /// No VCEK/VLEK: the host's certificate table has none and no file or KDS URL is configured.
    #[error(
        "no VCEK or VLEK for the SEV-SNP report: the host's certificate table has none, and neither a certificate file nor an AMD KDS URL is configured"
    )]
    SnpSigningCert,
    /// A VLEK-signed report needs the ASVK that signed the VLEK.
    #[error(
        "the SEV-SNP report is signed by a VLEK but no ASVK is available: the host's certificate table has none and no certificate chain file is configured"
    )]
    SnpVlekChain,
    /// The KDS path names the product; version 2 reports do not carry it.
    #[error(
        "the AMD product line (milan, genoa, turin) is needed to fetch the VCEK from the KDS and the report does not name it"
    )]
    SnpProduct,
    /// A TDX quote verifies only with Intel's collateral.
    #[error(
        "a TDX quote verifies only with Intel's collateral: neither a collateral file nor a PCCS/PCS URL is configured"
    )]
    TdxCollateral,
    /// The pre-created configfs-tsm report entry does not exist.
    #[error("configfs-tsm report entry {0} does not exist")]
    ConfigfsEntry(String),
}

/// Result alias of the attestation module.
pub type Result<T, E = AttestError> = std::result::Result<T, E>;

/// Why evidence was refused, could not be decoded, or could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The canonical evidence encoding ended before a field was complete.
    #[error("evidence truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes follow the last field of the canonical encoding.
    #[error("{count} trailing bytes after the evidence")]
    TrailingBytes {
        /// Number of unexpected bytes.
        count: usize,
    },
    /// The kind tag is none of SEV-SNP, TDX or Simulated.
    #[error("unknown evidence kind tag {tag:#010x}")]
    UnknownKind {
        /// The tag found.
        tag: u32,
    },
    /// A field has a length outside its allowed range.
    #[error("evidence field {field} has length {len}, allowed {min}..={max}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// The length found.
        len: usize,
        /// Minimum allowed length.
        min: usize,
        /// Maximum allowed length.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("evidence field {field} is not valid UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// The SEV-SNP report could not be parsed by the `sev` crate.
    #[error("SEV-SNP report does not parse: {0}")]
    SnpReportParse(String),
    /// The report's version is older than the policy's minimum.
    #[error("SEV-SNP report version {version} is below the minimum {min}")]
    ReportVersionTooOld {
        /// Version in the report.
        version: u32,
        /// Minimum accepted.
        min: u32,
    },
    /// The report is signed with an algorithm other than ECDSA P-384/SHA-384.
    #[error("unsupported SEV-SNP signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(u32),
    /// The guest policy lets the host debug the guest (memory readable by the host).
    #[error("guest policy allows debugging")]
    DebugAllowed,
    /// The guest policy allows a migration agent (keys may leave the platform).
    #[error("guest policy allows a migration agent")]
    MigrationAgentAllowed,
    /// The report was requested at another VMPL than the policy expects.
    #[error("report VMPL {actual}, expected {expected}")]
    WrongVmpl {
        /// Expected VMPL.
        expected: u32,
        /// VMPL in the report.
        actual: u32,
    },
    /// KEY_INFO names a signing key that is neither the VCEK nor a VLEK.
    #[error("report signed by unknown key {0} (0 = VCEK, 1 = VLEK)")]
    UnsupportedSigningKey(u32),
    /// The evidence kind is not in the policy's allowed kinds.
    #[error("evidence kind {0} is not allowed by the policy")]
    KindNotAllowed(EvidenceKind),
    /// Simulated evidence met a production policy, which can never accept it.
    #[error("UNATTESTED (SIMULATED TEE) evidence is refused by the production policy")]
    SimulatedRefused,
    /// The measurement is not on the allow-list read from Root.
    #[error("measurement {measurement} of kind {kind} is not on the allow-list")]
    MeasurementNotAllowed {
        /// The evidence kind.
        kind: EvidenceKind,
        /// Hex of the measurement.
        measurement: String,
    },
    /// A TCB component is below the policy's minimum.
    #[error("TCB component {component} is {reported}, minimum {minimum}")]
    TcbTooLow {
        /// Which component (bootloader, tee, snp, microcode).
        component: &'static str,
        /// Reported value.
        reported: u8,
        /// Minimum.
        minimum: u8,
    },
    /// A certificate could not be decoded.
    #[error("certificate {which} does not decode: {reason}")]
    Certificate {
        /// Which certificate (VCEK, ASK/ARK).
        which: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// The VCEK does not chain to the pinned ARK/ASK of any allowed product, or the chain shipped
    /// with the evidence is not the pinned chain of the product that signed the VCEK.
    #[error("VCEK does not chain to an allowed product root: {0}")]
    WrongProductChain(String),
    /// A certificate is outside its validity period at the policy clock.
    #[error("certificate {which} is not valid at {now} (valid {not_before}..{not_after})")]
    CertificateNotValidNow {
        /// Which certificate.
        which: &'static str,
        /// Policy clock, unix seconds.
        now: u64,
        /// Start of validity, unix seconds.
        not_before: u64,
        /// End of validity, unix seconds.
        not_after: u64,
    },
    /// A certificate of the chain is on its issuer's CRL.
    #[error("certificate {which} (serial {serial}) is revoked by AMD's CRL")]
    CertificateRevoked {
        /// Which certificate (ASK, ASVK, VCEK, VLEK).
        which: &'static str,
        /// Its serial number, hex.
        serial: String,
    },
    /// A CRL naming the product's ARK as issuer does not decode or is not signed by that ARK.
    #[error("AMD CRL is invalid: {0}")]
    CrlInvalid(String),
    /// A CRL is outside its thisUpdate..nextUpdate window at the policy clock.
    #[error("AMD CRL is not current at {now} (valid {this_update}..{next_update})")]
    CrlNotCurrent {
        /// Policy clock, unix seconds.
        now: u64,
        /// thisUpdate, unix seconds.
        this_update: u64,
        /// nextUpdate, unix seconds (0 when absent).
        next_update: u64,
    },
    /// The policy requires a CRL and none of the product's ARK was given.
    #[error("the policy requires AMD's CRL for {0} and none was given")]
    CrlMissing(String),
    /// The report is VLEK-signed and the policy does not accept VLEKs.
    #[error("report signed by a VLEK, which the policy does not accept")]
    VlekNotAllowed,
    /// A VLEK-signed report came without an ASVK that chains to an allowed ARK.
    #[error("VLEK does not chain to an allowed ARK through an ASVK: {0}")]
    VlekChain(String),
    /// The ECDSA signature over the raw report bytes does not verify under the VCEK.
    #[error("SEV-SNP report signature is invalid")]
    ReportSignatureInvalid,
    /// The VCEK's extensions do not describe the chip or TCB named in the report.
    #[error("VCEK extension {extension} does not match the report")]
    VcekMismatch {
        /// The extension (hwID, blSPL, teeSPL, snpSPL, ucodeSPL).
        extension: &'static str,
    },
    /// `dcap-qvl` refused the TDX quote (signature, chain, CRL, collateral freshness).
    #[error("TDX quote refused: {0}")]
    TdxQuoteRejected(String),
    /// The TDX collateral is not valid JSON of the expected shape.
    #[error("TDX collateral does not decode: {0}")]
    TdxCollateral(String),
    /// The TCB status that Intel's collateral gives this platform is not accepted.
    #[error("TDX TCB status {0} is not accepted by the policy")]
    TdxStatusNotAllowed(String),
    /// The quote is not a TD quote (for example an SGX enclave quote).
    #[error("quote is not a TDX TD report")]
    NotATdQuote,
    /// The TD runs with the DEBUG attribute.
    #[error("TD has the DEBUG attribute set")]
    TdxDebug,
    /// The TD's attributes under the policy mask differ from the required value.
    #[error("TD attributes {actual:#018x} under mask {mask:#018x} are not {required:#018x}")]
    TdxAttributes {
        /// TDATTRIBUTES of the TD.
        actual: u64,
        /// Policy mask.
        mask: u64,
        /// Required masked value.
        required: u64,
    },
    /// A TD register differs from the value the policy requires.
    #[error("TD {register} {actual} is not the one the policy requires")]
    TdxRegisterMismatch {
        /// MRCONFIGID, MROWNER, MROWNERCONFIG or RTMR3.
        register: &'static str,
        /// Hex of the TD's value.
        actual: String,
    },
    /// REPORT_DATA does not equal the binding of the expected keys, address and nonce.
    #[error("REPORT_DATA does not bind the expected worker keys, address and nonce")]
    BindingMismatch,
    /// The Worker contract's attestation record does not describe this evidence.
    #[error("on-chain attestation record field {field} does not match the evidence")]
    RecordMismatch {
        /// The record field.
        field: &'static str,
    },
    /// The Worker contract's attestation record has expired.
    #[error("on-chain attestation expired at {expires_at} (now {now})")]
    RecordExpired {
        /// Record expiry, unix seconds.
        expires_at: u32,
        /// Now, unix seconds.
        now: u64,
    },
    /// The worker address has a workchain that does not fit the binding's signed byte.
    #[error("workchain {0} does not fit in an i8")]
    WorkchainOutOfRange(i32),
    /// No TEE guest interface is present and Simulated was not explicitly enabled.
    #[error("no TEE interface available ({0}); Simulated evidence needs an explicit flag")]
    ProviderUnavailable(String),
    /// Simulated evidence was requested for mainnet.
    #[error("UNATTESTED (SIMULATED TEE) is refused on mainnet")]
    SimulatedOnMainnet,
    /// A provider input is missing (see [`MissingInput`] for which).
    #[error(transparent)]
    Missing(#[from] MissingInput),
    /// The TEE answered with a report for other REPORT_DATA than requested.
    #[error("the TEE returned a report whose REPORT_DATA is not the one requested")]
    ReportDataNotEchoed,
    /// Another writer used the configfs-tsm entry between our write and read.
    #[error(
        "configfs-tsm entry {path} changed while reading the report (generation {before} → {after})"
    )]
    ConfigfsRace {
        /// The report entry.
        path: String,
        /// `generation` after our write of `inblob`.
        before: u64,
        /// `generation` after reading `outblob`.
        after: u64,
    },
    /// An HTTP fetch (AMD KDS, Intel PCS/PCCS) failed.
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Transport error or HTTP status.
        reason: String,
    },
    /// The host's certificate table is malformed.
    #[error("host certificate table malformed: {0}")]
    CertTable(String),
    /// The TEE guest interface answered with an error.
    #[error("TEE guest interface error: {0}")]
    Provider(String),
    /// Reading or writing a guest interface file failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The GPU attestation report does not parse (SPDM GET_MEASUREMENTS request + response).
    #[error("GPU attestation report does not parse: {0}")]
    GpuReportParse(String),
    /// A GPU device or RIM signing chain does not verify up to its pinned NVIDIA root.
    #[error("{which} certificate chain is refused: {reason}")]
    GpuCertChain {
        /// Which chain (GPU device, driver RIM, VBIOS RIM).
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// The GPU report's ECDSA signature does not verify under the attestation key certificate.
    #[error("GPU attestation report signature is invalid")]
    GpuReportSignatureInvalid,
    /// The report's firmware id differs from the one in the attestation key certificate.
    #[error("GPU report FWID does not match its attestation key certificate")]
    GpuFwidMismatch,
    /// A RIM is malformed, or signs something other than the whole document with ECDSA-SHA384.
    #[error("{which} is invalid: {reason}")]
    GpuRimInvalid {
        /// Which RIM.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// A RIM's XML signature does not verify (digest or SignedInfo signature).
    #[error("{which} signature is invalid: {reason}")]
    GpuRimSignatureInvalid {
        /// Which RIM.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// A RIM describes another driver or VBIOS version than the report names.
    #[error("{which} is for version {rim}, the GPU report names {report}")]
    GpuRimVersionMismatch {
        /// Which RIM.
        which: &'static str,
        /// Version in the RIM.
        rim: String,
        /// Version in the report.
        report: String,
    },
    /// A runtime GPU measurement is none of its RIM's golden values.
    #[error("GPU measurement {index} (from {rim}) does not match its golden value: {actual}")]
    GpuMeasurementMismatch {
        /// Measurement index, 0-based as in RIMs.
        index: u8,
        /// The RIM that holds the golden value.
        rim: &'static str,
        /// Hex of the runtime value, or `absent`.
        actual: String,
    },
    /// The GPU signed another nonce than the one derived from the worker's keys and chain nonce.
    #[error("GPU report nonce does not bind the worker's keys")]
    GpuNonceMismatch,
    /// REPORT_DATA does not carry the hash of the GPU evidence served with it.
    #[error("REPORT_DATA does not bind the GPU evidence served with it")]
    GpuNotBound,
    /// The policy requires GPU attestation and the evidence has none.
    #[error("GPU attestation is required and the worker's evidence has none")]
    GpuEvidenceRequired,
    /// GPU evidence was nested inside GPU evidence.
    #[error("GPU evidence wraps evidence that already has a GPU part")]
    GpuNested,
    /// The GPU evidence provider failed.
    #[error("GPU evidence provider: {0}")]
    GpuProvider(String),
}
