//! The job a sealed message belongs to; bound into every HPKE info and AEAD AAD so a sealed input
//! or response cannot be replayed into another job.

use tonlib_core::TonAddress;

use super::error::{Result, SealError};

/// Identifies one job: the client's Escrow, the job id it opened, and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The client's Escrow contract.
    pub escrow: TonAddress,
    /// The job id opened on that Escrow (strictly increasing per Escrow).
    pub job_id: u64,
    /// The model id from Root's registry.
    pub model_id: u32,
}

impl JobContext {
    /// `"cocoon/job/v1\0" ‖ workchain:i8 ‖ escrow hash[32] ‖ job_id:u64be ‖ model_id:u32be`.
    pub fn binding(&self) -> Result<Vec<u8>> {
        let wc = i8::try_from(self.escrow.workchain)
            .map_err(|_| SealError::WorkchainOutOfRange(self.escrow.workchain))?;
        let mut out = Vec::with_capacity(14 + 1 + 32 + 8 + 4);
        out.extend_from_slice(b"cocoon/job/v1\0");
        out.extend_from_slice(&wc.to_be_bytes());
        out.extend_from_slice(self.escrow.hash_part.as_slice());
        out.extend_from_slice(&self.job_id.to_be_bytes());
        out.extend_from_slice(&self.model_id.to_be_bytes());
        Ok(out)
    }
}
