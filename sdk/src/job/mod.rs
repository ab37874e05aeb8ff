//! What travels inside the sealed envelopes: the [`JobRequest`] a client seals to a worker, and
//! the [`JobOutput`] messages a worker seals back, one per response chunk. The relayer never sees
//! these; only the client and the attested worker do.
//!
//! Both are JSON (`serde_json`), versioned by [`JOB_FORMAT_VERSION`], and bounded in size so a
//! hostile peer cannot make the other side allocate without limit.
//!
//! ```text
//! client ── seal(JobRequest) ──▶ relayer ──▶ worker
//! client ◀── seal(Delta)… seal(Done, final) ── relayer ◀── worker     (text jobs)
//! client ◀── seal(Embeddings) seal(Done, final) ── …                  (embedding jobs)
//! ```
//!
//! [`models`] names the models of the network: id in Root's registry, name, weights hash.

pub mod error;
pub mod models;
pub mod output;
pub mod request;

pub use error::{JobError, Result};
pub use models::{ModelKind, ModelSpec, RecommendedSampling};
pub use output::{FinishReason, JobOutput};
pub use request::{ChatMessage, GenerationParams, JobRequest, Task};

/// Version of the request/output payload format; a worker refuses any other.
pub const JOB_FORMAT_VERSION: u16 = 1;
