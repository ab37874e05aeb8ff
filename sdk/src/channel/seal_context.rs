//! What a channel request's sealed input is bound to. A request is sealed once to the workers
//! of all its tickets' channels (failover without asking the client again), so the binding names
//! what those channels share — the client's Escrow — and the model, never one channel or seq.
//! Replaying a sealed input gains nothing: each receipt commits to sha256 of the sealed bytes,
//! and the client pays only receipts of requests it sent.

use tonlib_core::TonAddress;

use crate::seal::JobContext;

/// The [`JobContext`] a channel request on `escrow`'s channels for `model_id` is sealed and
/// opened with (client: `seal_input`; worker: `open_input`): [`JobContext::channel_request`].
pub fn request_seal_context(escrow: &TonAddress, model_id: u32) -> JobContext {
    JobContext::channel_request(escrow.clone(), model_id)
}
