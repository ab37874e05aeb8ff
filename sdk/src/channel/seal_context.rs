//! What a channel request's sealed input is bound to. A request is sealed once to the workers
//! of all its tickets' channels (failover without asking the client again), so the binding names
//! what those channels share — the client's Escrow — and the model, never one channel or seq.
//! Replaying a sealed input gains nothing: each receipt commits to sha256 of the sealed bytes,
//! and the client pays only receipts of requests it sent.

use tonlib_core::TonAddress;

use crate::seal::JobContext;

/// The job id in the [`JobContext`] of every channel request (channels have no job ids; v1 job
/// ids start at 1 and live on v1 Escrows, so the binding never collides with a v1 job's).
pub const CHANNEL_REQUEST_JOB_ID: u64 = 0;

/// The [`JobContext`] a channel request on `escrow`'s channels for `model_id` is sealed and
/// opened with (client: `seal_input`; worker: `open_input`).
pub fn request_seal_context(escrow: &TonAddress, model_id: u32) -> JobContext {
    JobContext {
        escrow: escrow.clone(),
        job_id: CHANNEL_REQUEST_JOB_ID,
        model_id,
    }
}
