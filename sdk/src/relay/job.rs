//! The identity of a job across the chain, the relayer and the worker.

use serde::{Deserialize, Serialize};

/// A job is named by the Escrow that opened it and its job id there (strictly increasing per
/// Escrow, so the pair is unique network-wide).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobRef {
    /// Escrow contract address, raw form `workchain:hex`.
    pub escrow: String,
    /// Job id within that Escrow.
    pub job_id: u64,
}

impl JobRef {
    /// A job reference from its parts.
    pub fn new(escrow: impl Into<String>, job_id: u64) -> Self {
        Self {
            escrow: escrow.into(),
            job_id,
        }
    }
}

impl std::fmt::Display for JobRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.escrow, self.job_id)
    }
}
