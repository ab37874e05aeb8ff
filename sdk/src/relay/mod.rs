//! Wire types shared by the relayer and its two kinds of peers.
//!
//! ```text
//!  client ──HTTP/JSON + SSE──▶ relayer ◀──WebSocket/JSON── worker (dials out, works behind NAT)
//! ```
//!
//! - [`worker`]: the worker-session protocol. The relayer sends a [`worker::Challenge`]; the worker
//!   answers with [`worker::Hello`] signed by its ed25519 receipt key over [`auth::auth_payload`];
//!   then heartbeats (load, capacity), job dispatches carrying the sealed input, sealed output
//!   chunks, and the final signed receipt.
//! - [`client`]: the client HTTP API: submit the sealed input for (escrow, job id), the
//!   Server-Sent-Events stream of sealed chunks and the receipt, the worker list, errors.
//! - [`auth`]: exactly which bytes a worker signs to open a session.
//! - [`read_auth`]: how the owner of a job proves it may read the job's status and stream.
//! - [`channel`]: channel mode (protocol v2): requests with a channel, seq and voucher, answered
//!   with a signed channel receipt.
//!
//! Everything is JSON; binary fields are base64 (standard alphabet, padded), keys and hashes are
//! lowercase hex, addresses are raw `workchain:hex` strings, money is nanoTON integers. Every
//! message that opens an exchange carries [`PROTOCOL_VERSION`]. The relayer only ever sees
//! ciphertext: sealed inputs and output chunks are opaque bytes to it.

pub mod auth;
pub mod bytes;
pub mod channel;
pub mod client;
pub mod job;
pub mod read_auth;
pub mod worker;

pub use job::JobRef;

/// Version of the relay protocol (worker sessions and client API). Bumped on any incompatible
/// change; peers refuse versions they do not speak.
pub const PROTOCOL_VERSION: u16 = 1;

/// Path of the WebSocket endpoint workers dial.
pub const WORKER_WS_PATH: &str = "/v1/worker";

/// Channel mode: `POST` a [`channel::ChannelSubmit`]; the answer is a Server-Sent-Events stream
/// of [`channel::ChannelEvent`]s (event name = the variant's name).
pub const CHANNEL_REQUESTS_PATH: &str = "/v2/requests";

/// Channel mode: `POST` a [`channel::ChannelVoucherPush`]; the relayer hands it to the channel's
/// worker (202), or answers 404 for a channel it does not know.
pub const CHANNEL_VOUCHERS_PATH: &str = "/v2/vouchers";
