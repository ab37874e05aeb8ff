//! The job a sealed message belongs to; bound into every HPKE info and AEAD AAD so a sealed input
//! or response cannot be replayed into another job.

use tonlib_core::TonAddress;

use super::error::{Result, SealError};

/// The job id of [`JobContext::channel_request`].
pub const CHANNEL_JOB_ID: u64 = 0;

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
    /// The context a channel-mode request (protocol v2) is sealed under: the client's Escrow (every
    /// channel a request names is on it), job id 0 and the model. v1 job ids start at 1, so a
    /// sealed channel request never opens as a v1 job nor the reverse; within channel mode a
    /// replayed input is caught by the receipt's input commitment, which the client checks.
    pub fn channel_request(escrow: TonAddress, model_id: u32) -> Self {
        Self {
            escrow,
            job_id: CHANNEL_JOB_ID,
            model_id,
        }
    }

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
