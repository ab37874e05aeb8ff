//! Channel mode (protocol v2): a request names a channel and the seq it expects and carries the
//! client's latest voucher; the worker answers with the receipt it signed for (channel, seq).
//! Nothing on-chain per request.
//!
//! ```text
//! client ── ChannelSubmit {tickets: K × (channel, seq, voucher), model, max_tokens, sealed} ─▶ relayer
//! relayer ── ChannelDispatch {request_id, attempt, one ticket, model, max_tokens, sealed} ──▶ worker
//! worker ── ChannelChunk {request_id, …} … ChannelDone {receipt} | ChannelRefused {code} ─▶ relayer
//! relayer ── ChannelEvent::{Dispatched, Chunk, Receipt, Refused, Failed} ─────────────────────▶ client
//! client ── ChannelVoucherPush {channel, voucher} (latest or final) ─▶ relayer ─▶ worker
//! ```
//!
//! The sealed input is sealed to the workers of every ticket's channel, so the relayer can fail
//! over from one channel to the next without asking the client again; a refusal says whether
//! another channel may answer ([`ChannelRefusal::fails_over`]).
//!
//! JSON conventions as in the rest of [`crate::relay`]; in addition, channel refs are objects
//! with raw addresses, nanoTON amounts are decimal strings, and vouchers and receipts are the
//! base64 BOC of their signed cells (parsed on receipt: a malformed one is a malformed message).

use serde::{Deserialize, Serialize};

use super::bytes::base64;
use crate::channel::serde_fields::{boc, nano, opt_boc};
use crate::channel::{
    ChannelError, ChannelRef, RequestTicket, SignedChannelReceipt, SignedVoucher,
};

/// The most channels one request may name (K for failover).
pub const MAX_TICKETS: usize = 8;

/// One channel a request may be served on: the channel, the seq the client expects its receipt
/// to have there, and the latest voucher of that channel (none before its first receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTicket {
    /// The channel.
    pub channel: ChannelRef,
    /// The seq the client expects.
    pub seq: u32,
    /// The latest voucher (base64 BOC of a `SignedVoucher`), or null.
    #[serde(default, with = "opt_boc")]
    pub voucher: Option<SignedVoucher>,
}

impl From<RequestTicket> for ChannelTicket {
    fn from(t: RequestTicket) -> Self {
        Self {
            channel: t.channel,
            seq: t.seq,
            voucher: t.voucher,
        }
    }
}

/// Body of a channel-mode request from a client to the relayer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSubmit {
    /// Protocol version the client speaks.
    pub version: u16,
    /// Channels to serve it on, most preferred first (1 to [`MAX_TICKETS`], each channel once).
    pub tickets: Vec<ChannelTicket>,
    /// Model asked for.
    pub model_id: u32,
    /// Most output tokens; with the prompt's tokens it bounds the request's cost.
    pub max_tokens: u32,
    /// The HPKE-sealed input, sealed to the workers of all the tickets' channels.
    #[serde(with = "base64")]
    pub sealed_input: Vec<u8>,
}

impl ChannelSubmit {
    /// Checks what serde cannot: 1 to [`MAX_TICKETS`] tickets, no channel twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.tickets.is_empty() || self.tickets.len() > MAX_TICKETS {
            return Err(format!(
                "{} tickets: 1 to {MAX_TICKETS} are accepted",
                self.tickets.len()
            ));
        }
        for (i, t) in self.tickets.iter().enumerate() {
            if self.tickets[..i].iter().any(|o| o.channel == t.channel) {
                return Err(format!(
                    "channel {} of {} is named twice",
                    t.channel.channel_id,
                    t.channel.escrow.to_hex()
                ));
            }
        }
        Ok(())
    }
}

/// A channel request handed to the worker of one ticket's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDispatch {
    /// Relayer-local id of the request; the worker's chunks and answer name it.
    pub request_id: u64,
    /// Attempt number (1 for the first channel tried, then 2, ...).
    pub attempt: u32,
    /// The ticket of the worker's channel.
    pub ticket: ChannelTicket,
    /// Model asked for.
    pub model_id: u32,
    /// Most output tokens.
    pub max_tokens: u32,
    /// The sealed input, exactly as the client submitted it (its sha256 is the receipt's input
    /// commitment).
    #[serde(with = "base64")]
    pub sealed_input: Vec<u8>,
}

/// One sealed output chunk of a channel request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelChunk {
    /// Which request.
    pub request_id: u64,
    /// Which attempt.
    pub attempt: u32,
    /// 0-based position in the output stream.
    pub seq: u32,
    /// Sealed bytes (opaque to the relayer).
    #[serde(with = "base64")]
    pub data: Vec<u8>,
}

/// The worker served the request: the receipt it signed for (channel, seq), persisted before
/// it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDone {
    /// Which request.
    pub request_id: u64,
    /// Which attempt.
    pub attempt: u32,
    /// Number of chunks sent (so a receiver can tell a truncated stream).
    pub chunks: u32,
    /// The signed channel receipt (base64 BOC).
    #[serde(with = "boc")]
    pub receipt: SignedChannelReceipt,
    /// Its cost, nanoTON (repeated so the relayer can account without parsing; the receipt is
    /// authoritative).
    #[serde(with = "nano")]
    pub cost: u128,
}

/// The worker did not serve the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRefused {
    /// Which request.
    pub request_id: u64,
    /// Which attempt.
    pub attempt: u32,
    /// Machine-readable reason.
    pub code: ChannelRefusal,
    /// Human-readable detail (never plaintext of the request).
    pub message: String,
    /// With `wrong_seq`: the seq the worker expects next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u32>,
    /// With `seq_taken`: the receipt already signed for that seq, resent (never a second one);
    /// the client pays it with `ChannelSession::on_receipt_without_answer`.
    #[serde(default, with = "opt_boc", skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedChannelReceipt>,
}

/// Why a worker refuses a channel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelRefusal {
    /// The chain holds no such channel, or it is not this worker's.
    UnknownChannel,
    /// The channel is expired or its client asked to close it.
    NotServing,
    /// The client signed a final voucher for the channel.
    Closing,
    /// Another request of the channel is being served.
    Busy,
    /// The seq already has a receipt (resent in the refusal).
    SeqTaken,
    /// The seq is not the next one.
    WrongSeq,
    /// The channel cannot pay the request's maximum cost: top it up.
    Exhausted,
    /// Too much is unpaid: the client must send its voucher for what it received.
    OverCredit,
    /// The voucher does not check (signature, channel, amounts) or is older than one held.
    BadVoucher,
    /// The request itself cannot be served by any worker (unknown model, undecryptable, malformed).
    BadRequest,
    /// The prompt does not fit the model's context window: no worker can serve it either.
    ContextLengthExceeded,
    /// The worker failed; another channel may answer.
    Internal,
}

impl ChannelRefusal {
    /// The refusal for a channel check's error.
    pub fn of(e: &ChannelError) -> Self {
        use ChannelError as E;
        match e {
            E::WrongChannel { what: "voucher" } => Self::BadVoucher,
            E::NotOurChannel { .. } | E::LostHistory { .. } | E::WrongChannel { .. } => {
                Self::UnknownChannel
            }
            E::NotServing { .. } => Self::NotServing,
            E::Closing => Self::Closing,
            E::Busy { .. } => Self::Busy,
            E::SeqTaken { .. } => Self::SeqTaken,
            E::WrongSeq { .. } => Self::WrongSeq,
            E::Exhausted { .. } | E::OverAmount { .. } => Self::Exhausted,
            E::OverCredit { .. } => Self::OverCredit,
            E::BadSignature { .. }
            | E::InvalidKey
            | E::StaleVoucher { .. }
            | E::UnsignedSeq { .. }
            | E::VoucherMismatch { .. }
            | E::Tlb(_) => Self::BadVoucher,
            _ => Self::Internal,
        }
    }

    /// Whether another ticket's channel (another worker) may serve the request: everything that is
    /// about this channel or worker, not about the request itself.
    pub fn fails_over(self) -> bool {
        !matches!(self, Self::BadRequest | Self::ContextLengthExceeded)
    }
}

/// A voucher the client hands its channel's worker outside a request: the latest one (so the
/// worker can settle it, e.g. before shutting down) or the final one of a cooperative close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelVoucherPush {
    /// Protocol version the client speaks.
    pub version: u16,
    /// The channel.
    pub channel: ChannelRef,
    /// The voucher (base64 BOC).
    #[serde(with = "boc")]
    pub voucher: SignedVoucher,
}

/// One event of a channel request's stream to the client (Server-Sent Events, the variant's name
/// as the event name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// The request was handed to the worker of one ticket's channel. A later `dispatched` with a
    /// higher attempt means failover: discard chunks of earlier attempts.
    Dispatched {
        /// The ticket's channel.
        channel: ChannelRef,
        /// Attempt number.
        attempt: u32,
    },
    /// A sealed output chunk.
    Chunk {
        /// Attempt it belongs to.
        attempt: u32,
        /// 0-based position.
        seq: u32,
        /// Sealed bytes.
        #[serde(with = "base64")]
        data: Vec<u8>,
    },
    /// The worker's signed receipt; the last event of a served request.
    Receipt {
        /// Attempt it belongs to.
        attempt: u32,
        /// Number of chunks of that attempt.
        chunks: u32,
        /// The signed channel receipt (base64 BOC).
        #[serde(with = "boc")]
        receipt: SignedChannelReceipt,
    },
    /// A worker refused; the relayer tries the next ticket when the refusal fails over.
    Refused {
        /// Attempt it belongs to.
        attempt: u32,
        /// Machine-readable reason.
        code: ChannelRefusal,
        /// Human-readable detail.
        message: String,
        /// With `wrong_seq`: the seq the worker expects next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_seq: Option<u32>,
        /// With `seq_taken`: the receipt already signed for that seq.
        #[serde(default, with = "opt_boc", skip_serializing_if = "Option::is_none")]
        receipt: Option<SignedChannelReceipt>,
    },
    /// No ticket's worker served the request.
    Failed {
        /// Why.
        reason: String,
    },
}

impl ChannelEvent {
    /// The SSE event name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelEvent::Dispatched { .. } => "dispatched",
            ChannelEvent::Chunk { .. } => "chunk",
            ChannelEvent::Receipt { .. } => "receipt",
            ChannelEvent::Refused { .. } => "refused",
            ChannelEvent::Failed { .. } => "failed",
        }
    }

    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ChannelEvent::Receipt { .. } | ChannelEvent::Failed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use tonlib_core::TonAddress;

    use super::*;
    use crate::channel::{ChannelReceipt, Voucher};
    use crate::receipt::{ReceiptCommitments, ReceiptHashes};

    fn channel(id: u64) -> ChannelRef {
        ChannelRef {
            global_id: -239,
            root: TonAddress::new(0, [1; 32].into()),
            escrow: TonAddress::new(0, [2; 32].into()),
            channel_id: id,
        }
    }

    fn voucher() -> SignedVoucher {
        Voucher {
            channel: channel(7),
            cumulative: u128::from(u64::MAX) * 3,
            last_seq: 4,
            acc: [5; 32],
            is_final: false,
        }
        .sign(&SigningKey::from_bytes(&[1; 32]))
        .unwrap()
    }

    fn receipt() -> SignedChannelReceipt {
        ChannelReceipt {
            channel: channel(7),
            seq: 5,
            worker: TonAddress::new(0, [4; 32].into()),
            model_id: 3,
            tokens_in: 10,
            tokens_out: 20,
            cost: 70_000,
            time: 1_800_000_000,
            prev_acc: [5; 32],
            hashes: ReceiptHashes {
                weights_hash: [6; 32],
                evidence_hash: [7; 32],
            },
            commitments: ReceiptCommitments {
                input_commitment: [8; 32],
                output_commitment: [9; 32],
            },
        }
        .sign(&SigningKey::from_bytes(&[2; 32]))
        .unwrap()
    }

    fn roundtrip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        v: &T,
    ) -> String {
        let s = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&s).unwrap(), v, "{s}");
        s
    }

    fn submit() -> ChannelSubmit {
        ChannelSubmit {
            version: 1,
            tickets: vec![
                ChannelTicket {
                    channel: channel(7),
                    seq: 5,
                    voucher: Some(voucher()),
                },
                ChannelTicket {
                    channel: channel(8),
                    seq: 1,
                    voucher: None,
                },
            ],
            model_id: 3,
            max_tokens: 128,
            sealed_input: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_submission_roundtrips_with_raw_addresses_and_boc_vouchers() {
        let s = roundtrip(&submit());
        assert!(
            s.contains(&format!(
                r#"{{"channel":{{"global_id":-239,"root":"0:{}","escrow":"0:{}","channel_id":7}},"seq":5,"voucher":""#,
                "01".repeat(32),
                "02".repeat(32)
            )),
            "{s}"
        );
        assert!(s.contains(r#""voucher":null"#), "{s}");
        assert!(s.ends_with(r#""sealed_input":"AQID"}"#), "{s}");
        submit().validate().unwrap();
        // A missing voucher field is the same as null (a channel's first request).
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let mut first = v.clone();
        first["tickets"][1]
            .as_object_mut()
            .unwrap()
            .remove("voucher");
        assert_eq!(
            serde_json::from_value::<ChannelSubmit>(first).unwrap(),
            submit()
        );
    }

    #[test]
    fn malformed_submissions_are_refused() {
        let good = serde_json::to_value(submit()).unwrap();
        type Tweak = Box<dyn Fn(&mut serde_json::Value)>;
        let bad: Vec<(&str, Tweak)> = vec![
            ("unknown field", Box::new(|v| v["extra"] = 1.into())),
            (
                "unknown ticket field",
                Box::new(|v| v["tickets"][0]["x"] = 1.into()),
            ),
            (
                "voucher not base64",
                Box::new(|v| v["tickets"][0]["voucher"] = "%%".into()),
            ),
            (
                "voucher not a voucher",
                Box::new(|v| v["tickets"][0]["voucher"] = "AAAA".into()),
            ),
            (
                "a receipt for a voucher",
                Box::new(|v| {
                    v["tickets"][0]["voucher"] = serde_json::to_value(ChannelEvent::Receipt {
                        attempt: 1,
                        chunks: 0,
                        receipt: receipt(),
                    })
                    .unwrap()["receipt"]
                        .clone()
                }),
            ),
            (
                "friendly address",
                Box::new(|v| {
                    v["tickets"][0]["channel"]["escrow"] =
                        "EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjrR".into()
                }),
            ),
            (
                "negative seq",
                Box::new(|v| v["tickets"][0]["seq"] = (-1).into()),
            ),
            (
                "no input",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("sealed_input");
                }),
            ),
        ];
        for (what, tweak) in bad {
            let mut v = good.clone();
            tweak(&mut v);
            assert!(
                serde_json::from_value::<ChannelSubmit>(v).is_err(),
                "{what}"
            );
        }
        let mut none = submit();
        none.tickets.clear();
        assert!(none.validate().is_err());
        let mut twice = submit();
        twice.tickets[1].channel = channel(7);
        assert!(twice.validate().unwrap_err().contains("named twice"));
        let mut many = submit();
        many.tickets = (0..=MAX_TICKETS as u64)
            .map(|i| ChannelTicket {
                channel: channel(i),
                seq: 1,
                voucher: None,
            })
            .collect();
        assert!(many.validate().is_err());
        many.tickets.pop();
        many.validate().unwrap();
    }

    #[test]
    fn worker_messages_and_events_roundtrip() {
        roundtrip(&ChannelDispatch {
            request_id: u64::MAX,
            attempt: 2,
            ticket: submit().tickets[0].clone(),
            model_id: 3,
            max_tokens: 64,
            sealed_input: vec![0, 255],
        });
        roundtrip(&ChannelChunk {
            request_id: 1,
            attempt: 1,
            seq: 0,
            data: vec![1],
        });
        let s = roundtrip(&ChannelDone {
            request_id: 1,
            attempt: 1,
            chunks: 3,
            receipt: receipt(),
            cost: u128::MAX,
        });
        assert!(s.contains(&format!(r#""cost":"{}""#, u128::MAX)), "{s}");
        let s = roundtrip(&ChannelRefused {
            request_id: 1,
            attempt: 1,
            code: ChannelRefusal::OverCredit,
            message: "pay first".into(),
            expected_seq: None,
            receipt: None,
        });
        assert!(
            s.contains(r#""code":"over_credit""#) && !s.contains("receipt"),
            "{s}"
        );
        roundtrip(&ChannelRefused {
            request_id: 1,
            attempt: 1,
            code: ChannelRefusal::SeqTaken,
            message: "resent".into(),
            expected_seq: Some(6),
            receipt: Some(receipt()),
        });
        roundtrip(&ChannelVoucherPush {
            version: 1,
            channel: channel(7),
            voucher: voucher(),
        });
        let events = [
            ChannelEvent::Dispatched {
                channel: channel(7),
                attempt: 1,
            },
            ChannelEvent::Chunk {
                attempt: 1,
                seq: 0,
                data: vec![1],
            },
            ChannelEvent::Receipt {
                attempt: 1,
                chunks: 1,
                receipt: receipt(),
            },
            ChannelEvent::Refused {
                attempt: 1,
                code: ChannelRefusal::WrongSeq,
                message: "m".into(),
                expected_seq: Some(2),
                receipt: None,
            },
            ChannelEvent::Failed {
                reason: "no worker".into(),
            },
        ];
        for e in events {
            let s = roundtrip(&e);
            assert!(s.starts_with(&format!(r#"{{"type":"{}""#, e.name())), "{s}");
            assert_eq!(
                e.is_final(),
                matches!(
                    e,
                    ChannelEvent::Receipt { .. } | ChannelEvent::Failed { .. }
                )
            );
        }
    }

    #[test]
    fn each_channel_error_has_a_refusal_and_only_bad_requests_stay() {
        use ChannelError as E;
        let cases = [
            (E::Busy { seq: 1 }, ChannelRefusal::Busy),
            (E::SeqTaken { seq: 1 }, ChannelRefusal::SeqTaken),
            (
                E::WrongSeq {
                    got: 3,
                    expected: 2,
                },
                ChannelRefusal::WrongSeq,
            ),
            (
                E::OverCredit {
                    unpaid: 1,
                    max_cost: 1,
                    credit: 1,
                },
                ChannelRefusal::OverCredit,
            ),
            (
                E::Exhausted {
                    cumulative: 1,
                    max_cost: 1,
                    amount: 1,
                },
                ChannelRefusal::Exhausted,
            ),
            (
                E::NotServing {
                    now: 1,
                    expires_at: 1,
                    close_requested_at: 0,
                },
                ChannelRefusal::NotServing,
            ),
            (E::Closing, ChannelRefusal::Closing),
            (
                E::StaleVoucher { seq: 1, held: 2 },
                ChannelRefusal::BadVoucher,
            ),
            (
                E::BadSignature { what: "voucher" },
                ChannelRefusal::BadVoucher,
            ),
            (
                E::VoucherMismatch {
                    seq: 1,
                    field: "acc",
                },
                ChannelRefusal::BadVoucher,
            ),
            (
                E::LostHistory { last_seq: 1 },
                ChannelRefusal::UnknownChannel,
            ),
            (
                E::WrongChannel { what: "voucher" },
                ChannelRefusal::BadVoucher,
            ),
            (
                E::NotOurChannel {
                    channel_worker: "0:00".into(),
                },
                ChannelRefusal::UnknownChannel,
            ),
            (E::Overflow, ChannelRefusal::Internal),
        ];
        for (e, r) in cases {
            assert_eq!(ChannelRefusal::of(&e), r, "{e}");
            assert!(r.fails_over());
        }
        assert!(!ChannelRefusal::BadRequest.fails_over());
        assert!(!ChannelRefusal::ContextLengthExceeded.fails_over());
        assert_eq!(
            serde_json::to_value(ChannelRefusal::ContextLengthExceeded).unwrap(),
            "context_length_exceeded"
        );
        assert_eq!(
            serde_json::to_string(&ChannelRefusal::BadVoucher).unwrap(),
            r#""bad_voucher""#
        );
    }
}
