//! Verification policy: allowed kinds and measurements (read from Root), minimum TCB, the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::evidence::EvidenceKind;
use super::gpu::GpuPolicy;

/// A launch measurement: the SNP MEASUREMENT, or for TDX SHA-384(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2)
/// (RTMR3 is extended at run time and is not a launch value). Simulated evidence has all zeros.
pub type Measurement = [u8; 48];

/// The 256-bit value Root's allow-list and the Worker record's `attestation.measurement` hold:
/// `sha256(measurement)` (TL-B `bits256`; the 48-byte launch digests do not fit).
pub fn measurement_id(measurement: &Measurement) -> [u8; 32] {
    Sha256::digest(measurement).into()
}

/// Source of "now" for certificate and collateral validity; injected so tests are reproducible.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since the unix epoch.
    fn now_unix(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        crate::clock::unix_now()
    }
}

/// A clock stopped at a fixed instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_unix(&self) -> u64 {
        self.0
    }
}

/// AMD EPYC product lines whose ARK/ASK are pinned (shipped inside the `sev` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnpProduct {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004.
    Genoa,
    /// EPYC 9005.
    Turin,
}

impl SnpProduct {
    /// Every product with a pinned root.
    pub const ALL: [SnpProduct; 3] = [Self::Milan, Self::Genoa, Self::Turin];
}

/// SEV-SNP TCB components (SVNs) as reported in REPORTED_TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnpTcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Microcode SVN.
    pub microcode: u8,
}

impl fmt::Display for SnpTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// The trust anchors of one product line: the ARK (root), the ASK (signs VCEKs) and optionally
/// the ASVK (signs VLEKs; when absent it must come with the evidence and chain to the ARK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpRoot {
    /// The product line.
    pub product: SnpProduct,
    /// ARK certificate, DER.
    pub ark_der: Vec<u8>,
    /// ASK certificate, DER.
    pub ask_der: Vec<u8>,
    /// ASVK certificate, DER, when pinned.
    pub asvk_der: Option<Vec<u8>>,
}

/// Which roots an SNP chain must end in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SnpTrust {
    /// AMD's ARK/ASK per product, pinned inside the `sev` crate. The only choice of a policy
    /// read from Root.
    #[default]
    Amd,
    /// Other roots: tests, and private AMD-compatible PKIs. Never built from on-chain data.
    Custom(Vec<SnpRoot>),
}

/// SEV-SNP specific rules.
#[derive(Debug, Clone)]
pub struct SnpPolicy {
    /// Product lines accepted.
    pub products: Vec<SnpProduct>,
    /// Where their roots come from.
    pub trust: SnpTrust,
    /// Every component of REPORTED_TCB must be at least this (all products).
    pub min_tcb: SnpTcb,
    /// Per-product minimum, checked in addition to `min_tcb` (SVNs are numbered per product
    /// line: Milan's microcode SVN says nothing about Genoa's).
    pub min_tcb_per_product: BTreeMap<SnpProduct, SnpTcb>,
    /// Minimum FMC SVN, checked only on reports that carry one (Turin-era processors).
    pub min_fmc: u8,
    /// The VMPL the report must come from (0 = the guest kernel itself).
    pub vmpl: u32,
    /// Minimum report format version.
    pub min_report_version: u32,
    /// Accept reports signed by a VLEK (a cloud's key from AMD, chained ARK → ASVK → VLEK).
    pub allow_vlek: bool,
    /// AMD CRLs (DER, from the KDS `/vcek/v1/{product}/crl` and `/vlek/v1/{product}/crl`):
    /// each must be signed by the product's ARK and current at the policy clock.
    pub crls: Vec<Vec<u8>>,
    /// Refuse evidence when no CRL of its product is given.
    pub require_crl: bool,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            products: SnpProduct::ALL.to_vec(),
            trust: SnpTrust::Amd,
            min_tcb: SnpTcb::default(),
            min_tcb_per_product: BTreeMap::new(),
            min_fmc: 0,
            vmpl: 0,
            min_report_version: 2,
            allow_vlek: true,
            crls: Vec::new(),
            require_crl: false,
        }
    }
}

/// TDATTRIBUTES bit 0: the TD is debuggable by the host.
pub const TD_ATTRIBUTE_DEBUG: u64 = 1;
/// TDATTRIBUTES bit 28: EPT violations are never converted to #VE (SEPT_VE_DISABLE).
pub const TD_ATTRIBUTE_SEPT_VE_DISABLE: u64 = 1 << 28;

/// Intel TDX specific rules.
#[derive(Debug, Clone)]
pub struct TdxPolicy {
    /// Accepted TCB statuses from Intel's collateral (`UpToDate`; `SWHardeningNeeded` only if
    /// governance allows).
    pub allowed_statuses: Vec<String>,
    /// TDATTRIBUTES (little-endian u64) under this mask must equal `td_attributes`.
    pub td_attributes_mask: u64,
    /// Required value of the masked TDATTRIBUTES bits. DEBUG is refused whatever the mask.
    pub td_attributes: u64,
    /// MRCONFIGID the TD must carry (the host sets it at launch), when set.
    pub mr_config_id: Option<[u8; 48]>,
    /// Accepted MRCONFIGID values (Root's `mr_config_ids`); empty = any.
    pub mr_config_ids: Vec<[u8; 48]>,
    /// MROWNER the TD must carry, when set.
    pub mr_owner: Option<[u8; 48]>,
    /// Accepted MROWNER values (Root's `mr_owners`); empty = any.
    pub mr_owners: Vec<[u8; 48]>,
    /// MROWNERCONFIG the TD must carry, when set.
    pub mr_owner_config: Option<[u8; 48]>,
    /// Accepted RTMR3 values (extended at run time, e.g. by the app's measured config); empty =
    /// any.
    pub rtmr3: Vec<[u8; 48]>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            allowed_statuses: vec!["UpToDate".to_owned()],
            td_attributes_mask: TD_ATTRIBUTE_DEBUG,
            td_attributes: 0,
            mr_config_id: None,
            mr_config_ids: Vec::new(),
            mr_owner: None,
            mr_owners: Vec::new(),
            mr_owner_config: None,
            rtmr3: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Production,
    Development,
}

/// What evidence a verifier accepts.
///
/// Built with [`Policy::production`], which has no path that accepts Simulated evidence, or
/// [`Policy::development`], which does and says so (`UNATTESTED (SIMULATED TEE)`) in its Display.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    allowed_kinds: BTreeSet<EvidenceKind>,
    allow_list: BTreeSet<[u8; 32]>,
    /// SEV-SNP rules.
    pub snp: SnpPolicy,
    /// TDX rules.
    pub tdx: TdxPolicy,
    /// NVIDIA GPU rules.
    pub gpu: GpuPolicy,
    clock: Arc<dyn Clock>,
}

impl Policy {
    /// A production policy: SEV-SNP and TDX, the given allow-list of measurement ids (Root's
    /// `measurements`, see [`measurement_id`]).
    pub fn production(allow_list: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self {
            mode: Mode::Production,
            allowed_kinds: [EvidenceKind::SevSnp, EvidenceKind::Tdx].into(),
            allow_list: allow_list.into_iter().collect(),
            snp: SnpPolicy::default(),
            tdx: TdxPolicy::default(),
            gpu: GpuPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// A development policy: like production, plus Simulated evidence (zero measurement).
    /// Never use it for mainnet.
    pub fn development(allow_list: impl IntoIterator<Item = [u8; 32]>) -> Self {
        let mut policy = Self::production(allow_list);
        policy.mode = Mode::Development;
        policy.allowed_kinds.insert(EvidenceKind::Simulated);
        policy.allow_list.insert(measurement_id(&[0; 48]));
        policy
    }

    /// Restricts the accepted kinds (Root's allowed kinds). Simulated is kept only by a
    /// development policy.
    pub fn with_allowed_kinds(mut self, kinds: impl IntoIterator<Item = EvidenceKind>) -> Self {
        let dev = self.is_development();
        self.allowed_kinds = kinds
            .into_iter()
            .filter(|k| dev || *k != EvidenceKind::Simulated)
            .collect();
        self
    }

    /// Restricts the accepted kinds to Root's `allowed_kinds` bit mask (bit `1 << code`).
    pub fn with_allowed_kinds_mask(self, mask: u8) -> Self {
        let kinds = [
            EvidenceKind::Simulated,
            EvidenceKind::SevSnp,
            EvidenceKind::Tdx,
        ]
        .into_iter()
        .filter(|k| mask & (1 << k.code()) != 0)
        .collect::<Vec<_>>();
        self.with_allowed_kinds(kinds)
    }

    /// The production policy a Root publishes: its allowed kinds (never Simulated) and its
    /// allow-listed measurement ids.
    pub fn from_root(root: &crate::messages::records::RootPolicy) -> Self {
        Self::production(root.measurements.iter().copied())
            .with_allowed_kinds_mask(root.allowed_kinds)
    }

    /// The development policy for a local Root: honours its Simulated bit. Never for mainnet.
    pub fn development_from_root(root: &crate::messages::records::RootPolicy) -> Self {
        Self::development(root.measurements.iter().copied())
            .with_allowed_kinds_mask(root.allowed_kinds)
    }

    /// Adds a v2 Root's TEE policy (`get_tee_policy`): its SEV-SNP minimum TCB per component
    /// and its TDX attributes rule and MRCONFIGID/MROWNER/RTMR3 allow-lists (empty: any value).
    /// The built-in rules stay: DEBUG is refused whatever Root's TDX mask says.
    pub fn with_root_tee_policy(mut self, tee: &crate::messages::v2::records::TeePolicy) -> Self {
        let min = &tee.snp_min_tcb;
        self.snp.min_tcb = SnpTcb {
            bootloader: min.boot_loader,
            tee: min.tee,
            snp: min.snp,
            microcode: min.microcode,
        };
        self.snp.min_fmc = min.fmc;
        let tdx = &tee.tdx;
        self.tdx.td_attributes_mask = tdx.td_attributes_mask | TD_ATTRIBUTE_DEBUG;
        self.tdx.td_attributes = tdx.td_attributes_value & !TD_ATTRIBUTE_DEBUG;
        self.tdx.mr_config_ids = tdx.mr_config_ids.iter().copied().collect();
        self.tdx.mr_owners = tdx.mr_owners.iter().copied().collect();
        self.tdx.rtmr3 = tdx.rtmr3s.iter().copied().collect();
        self
    }

    /// The production policy a v2 Root publishes: [`Policy::from_root`] plus its TEE policy.
    pub fn from_root_v2(
        root: &crate::messages::records::RootPolicy,
        tee: &crate::messages::v2::records::TeePolicy,
    ) -> Self {
        Self::from_root(root).with_root_tee_policy(tee)
    }

    /// The development policy of a local v2 Root (honours its Simulated bit), with its TEE policy.
    pub fn development_from_root_v2(
        root: &crate::messages::records::RootPolicy,
        tee: &crate::messages::v2::records::TeePolicy,
    ) -> Self {
        Self::development_from_root(root).with_root_tee_policy(tee)
    }

    /// Requires GPU evidence (`--require-gpu-attestation`): workers without a valid NVIDIA
    /// confidential-computing report are refused.
    pub fn require_gpu(mut self, required: bool) -> Self {
        self.gpu.required = required;
        self
    }

    /// Replaces the clock (tests pin it; TDX sample collateral is only valid in a fixed window).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether this is a development policy (accepts Simulated evidence).
    pub fn is_development(&self) -> bool {
        self.mode == Mode::Development
    }

    /// Whether evidence of this kind is accepted at all.
    pub fn allows_kind(&self, kind: EvidenceKind) -> bool {
        (kind != EvidenceKind::Simulated || self.is_development())
            && self.allowed_kinds.contains(&kind)
    }

    /// Whether the measurement's id is on the allow-list.
    pub fn allows_measurement(&self, measurement: &Measurement) -> bool {
        self.allow_list.contains(&measurement_id(measurement))
    }

    /// Now, by the policy clock.
    pub fn now_unix(&self) -> u64 {
        self.clock.now_unix()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::Production => f.write_str("production attestation policy")?,
            Mode::Development => {
                f.write_str("development attestation policy, accepts UNATTESTED (SIMULATED TEE)")?
            }
        }
        write!(f, " ({} allowed measurements)", self.allow_list.len())
    }
}
