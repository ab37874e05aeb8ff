//! One channel request, ticket by ticket: dispatch to the channel's worker, pass its chunks on,
//! end with its receipt; on a refusal that fails over, a worker that goes away or goes quiet,
//! the next ticket.

use std::sync::Arc;

use cocoon_sdk::channel::ChannelRef;
use cocoon_sdk::relay::channel::{
    ChannelDispatch, ChannelDone, ChannelEvent, ChannelRefusal, ChannelSubmit,
};
use cocoon_sdk::relay::worker::RelayMessage;
use ed25519_dalek::VerifyingKey;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{ChannelRouter, Routable, WorkerAnswer};

/// One event of a request's stream, rendered for Server-Sent Events: the event name and its
/// JSON (a [`ChannelEvent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// [`ChannelEvent::name`].
    pub name: &'static str,
    /// The event as JSON.
    pub data: String,
}

impl Rendered {
    /// Renders `ev`.
    pub fn event(ev: &ChannelEvent) -> Self {
        Self {
            name: ev.name(),
            data: serde_json::to_string(ev).unwrap_or_default(),
        }
    }

    /// The `receipt` event of a checked receipt, carrying the receipt exactly as the worker
    /// encoded it (`encoded`, base64 BOC; the client parses and checks it itself). Encoding it
    /// again would give the same event at the cost of a cell tree built and hashed per request.
    pub fn receipt(attempt: u32, chunks: u32, encoded: &str) -> Self {
        #[derive(serde::Serialize)]
        struct ReceiptEvent<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            attempt: u32,
            chunks: u32,
            receipt: &'a str,
        }
        Self {
            name: "receipt",
            data: serde_json::to_string(&ReceiptEvent {
                kind: "receipt",
                attempt,
                chunks,
                receipt: encoded,
            })
            .unwrap_or_default(),
        }
    }
}

/// How one attempt ended.
enum Outcome {
    /// The receipt was passed on: the request is done.
    Served,
    /// The request ends without an answer (the refusal was passed on, or the client left).
    Ended,
    /// Try the next ticket.
    Next(String),
}

/// The parts of a request body the relayer hands the worker as the client encoded them (its
/// sealed input and each ticket's voucher, base64), kept while the body is parsed
/// ([`super::wire::parse_submit`]): decoding and encoding them again per dispatch would give
/// the same frame at the cost of a cell tree built and hashed per voucher.
#[derive(Debug, Clone)]
pub struct EncodedSubmit {
    tickets: Vec<EncodedTicket>,
    sealed_input: String,
}

/// One ticket's channel and its voucher as the client encoded it.
#[derive(Debug, Clone)]
pub(crate) struct EncodedTicket {
    pub(crate) channel: ChannelRef,
    pub(crate) voucher: Option<String>,
}

impl EncodedSubmit {
    pub(crate) fn new(tickets: Vec<EncodedTicket>, sealed_input: String) -> Self {
        Self {
            tickets,
            sealed_input,
        }
    }

    /// The sealed input as the client encoded it.
    pub fn sealed_input(&self) -> &str {
        &self.sealed_input
    }

    /// The voucher of `channel`'s ticket as the client encoded it (`Some(None)`: the ticket
    /// carries none), or `None` when the body names no such channel.
    pub fn voucher_of(&self, channel: &ChannelRef) -> Option<Option<&str>> {
        self.tickets
            .iter()
            .find(|t| &t.channel == channel)
            .map(|t| t.voucher.as_deref())
    }

    /// The `channel_dispatch` frame of `r`'s ticket, or `None` when this body does not hold
    /// that ticket.
    fn dispatch(
        &self,
        submit: &ChannelSubmit,
        r: &Routable,
        request_id: u64,
        attempt: u32,
    ) -> Option<String> {
        #[derive(serde::Serialize)]
        struct Ticket<'a> {
            channel: &'a ChannelRef,
            seq: u32,
            voucher: Option<&'a str>,
        }
        #[derive(serde::Serialize)]
        struct Dispatch<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            request_id: u64,
            attempt: u32,
            ticket: Ticket<'a>,
            model_id: u32,
            max_tokens: u32,
            sealed_input: &'a str,
        }
        let voucher = self.voucher_of(&r.ticket.channel)?;
        serde_json::to_string(&Dispatch {
            kind: "channel_dispatch",
            request_id,
            attempt,
            ticket: Ticket {
                channel: &r.ticket.channel,
                seq: r.ticket.seq,
                voucher,
            },
            model_id: submit.model_id,
            max_tokens: submit.max_tokens,
            sealed_input: &self.sealed_input,
        })
        .ok()
    }
}

/// Serves `submit` on the routable tickets in order, sending its events to `events`.
/// `encoded`: the body's encoded parts, passed on as they are (see [`EncodedSubmit`]).
pub async fn run(
    router: Arc<ChannelRouter>,
    submit: ChannelSubmit,
    encoded: EncodedSubmit,
    routable: Vec<Routable>,
    events: mpsc::Sender<Rendered>,
) {
    let mut attempt = 0u32;
    let mut why = Vec::new();
    for r in routable {
        let channel_id = r.ticket.channel.channel_id;
        let Some(session) = router.session_of(&r.state) else {
            why.push(format!(
                "the worker of channel {channel_id} is not connected"
            ));
            continue;
        };
        attempt += 1;
        let (request_id, answers) = router.open_route(&session, attempt);
        let queued = match encoded.dispatch(&submit, &r, request_id, attempt) {
            Some(frame) => session.send_encoded(frame),
            None => session.send(RelayMessage::ChannelDispatch(ChannelDispatch {
                request_id,
                attempt,
                ticket: r.ticket.clone(),
                model_id: submit.model_id,
                max_tokens: submit.max_tokens,
                sealed_input: submit.sealed_input.clone(),
            })),
        };
        let outcome = if !queued {
            Outcome::Next(format!(
                "the worker of channel {channel_id} is not reachable"
            ))
        } else {
            debug!(target: "relayer::channels", request = request_id, attempt, channel = channel_id, worker = %session.worker, "dispatched");
            let dispatched = ChannelEvent::Dispatched {
                channel: r.ticket.channel.clone(),
                attempt,
            };
            if events.send(Rendered::event(&dispatched)).await.is_err() {
                Outcome::Ended
            } else {
                follow(
                    &router,
                    &r,
                    session.receipt_verifier.as_ref(),
                    attempt,
                    answers,
                    &events,
                )
                .await
            }
        };
        router.close_route(request_id);
        match outcome {
            Outcome::Served | Outcome::Ended => return,
            Outcome::Next(reason) => {
                info!(target: "relayer::channels", request = request_id, attempt, channel = channel_id, %reason, "failing over");
                why.push(reason);
            }
        }
    }
    let reason = if why.is_empty() {
        "no ticket could be served".to_string()
    } else {
        why.join("; ")
    };
    let _ = events
        .send(Rendered::event(&ChannelEvent::Failed { reason }))
        .await;
}

/// Passes one attempt's answers on until it ends.
async fn follow(
    router: &ChannelRouter,
    r: &Routable,
    receipt_key: Option<&VerifyingKey>,
    attempt: u32,
    mut answers: mpsc::UnboundedReceiver<WorkerAnswer>,
    events: &mpsc::Sender<Rendered>,
) -> Outcome {
    let channel_id = r.ticket.channel.channel_id;
    let mut timeout = router.first_chunk_timeout;
    loop {
        let answer = match tokio::time::timeout(timeout, answers.recv()).await {
            Err(_) => {
                return Outcome::Next(format!("the worker of channel {channel_id} went quiet"));
            }
            Ok(Some(a)) => a,
            Ok(None) => WorkerAnswer::Disconnected,
        };
        timeout = router.idle_timeout;
        let event = match answer {
            WorkerAnswer::Chunk(c) => ChannelEvent::Chunk {
                attempt,
                seq: c.seq,
                data: c.data,
            },
            WorkerAnswer::Done(d, encoded) => {
                if let Err(why) = check_receipt(r, receipt_key, &d) {
                    warn!(target: "relayer::channels", channel = channel_id, %why, "worker answered with a bad receipt");
                    return Outcome::Next(format!("the worker of channel {channel_id}: {why}"));
                }
                let done = match encoded {
                    Some(encoded) => Rendered::receipt(attempt, d.chunks, &encoded),
                    None => Rendered::event(&ChannelEvent::Receipt {
                        attempt,
                        chunks: d.chunks,
                        receipt: d.receipt,
                    }),
                };
                let _ = events.send(done).await;
                return Outcome::Served;
            }
            WorkerAnswer::Refused(f) => {
                if matches!(
                    f.code,
                    ChannelRefusal::UnknownChannel
                        | ChannelRefusal::NotServing
                        | ChannelRefusal::Closing
                        | ChannelRefusal::Exhausted
                ) {
                    // The worker saw the channel change: read it again next time.
                    router.cache.forget(&r.ticket.channel.escrow, channel_id);
                }
                let fails_over = f.code.fails_over();
                let reason = format!("channel {channel_id}: {:?}: {}", f.code, f.message);
                let refused = ChannelEvent::Refused {
                    attempt,
                    code: f.code,
                    message: f.message,
                    expected_seq: f.expected_seq,
                    receipt: f.receipt,
                };
                if events.send(Rendered::event(&refused)).await.is_err() {
                    return Outcome::Ended;
                }
                if fails_over {
                    return Outcome::Next(reason);
                }
                let _ = events
                    .send(Rendered::event(&ChannelEvent::Failed { reason }))
                    .await;
                return Outcome::Ended;
            }
            WorkerAnswer::Disconnected => {
                return Outcome::Next(format!("the worker of channel {channel_id} disconnected"));
            }
        };
        if events.send(Rendered::event(&event)).await.is_err() {
            return Outcome::Ended;
        }
    }
}

/// What the relayer can check of a receipt without trusting the worker: its signature by the
/// session's receipt key (decoded once per session; `None` when it is not a valid key), and
/// that it is for this ticket's channel and seq.
fn check_receipt(
    r: &Routable,
    receipt_key: Option<&VerifyingKey>,
    d: &ChannelDone,
) -> Result<(), String> {
    let body = &d.receipt.body;
    if body.channel != r.ticket.channel {
        return Err("receipt for another channel".into());
    }
    if body.seq != r.ticket.seq {
        return Err(format!(
            "receipt for seq {}, the client expected {}",
            body.seq, r.ticket.seq
        ));
    }
    let key = receipt_key.ok_or("receipt signature: the worker's receipt key is not valid")?;
    d.receipt
        .verify_signature_by(key)
        .map_err(|e| format!("receipt signature: {e}"))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use cocoon_sdk::channel::ChannelState;
    use cocoon_sdk::relay::channel::ChannelTicket;
    use cocoon_sdk::tlb::TlbType as _;
    use ed25519_dalek::SigningKey;

    use super::super::fixtures::{addr, channel, sample_receipt, sample_submit};
    use super::*;

    fn routable(ticket: &ChannelTicket) -> Routable {
        Routable {
            ticket: ticket.clone(),
            state: ChannelState {
                channel: ticket.channel.clone(),
                amount: 1_000_000,
                settled: 0,
                last_seq: 0,
                expires_at: u32::MAX,
                close_requested_at: 0,
                settle_until: u32::MAX,
                price_in: 1,
                price_out: 1,
                worker: addr(4),
                worker_owner: addr(5),
                relayer: addr(6),
                relayer_fee_bps: 100,
                protocol_fee_bps: 100,
                voucher_key: [9; 32],
                relayer_due: 0,
            },
        }
    }

    #[test]
    fn a_dispatch_built_from_the_client_encoding_is_the_frame_the_sdk_would_encode() {
        let submit = sample_submit();
        let body = serde_json::to_vec(&submit).unwrap();
        let (_, encoded) = super::super::wire::parse_submit(&body).unwrap();
        for (i, ticket) in submit.tickets.iter().enumerate() {
            let frame = encoded
                .dispatch(&submit, &routable(ticket), 40 + i as u64, i as u32 + 1)
                .unwrap();
            let expected = RelayMessage::ChannelDispatch(ChannelDispatch {
                request_id: 40 + i as u64,
                attempt: i as u32 + 1,
                ticket: ticket.clone(),
                model_id: 3,
                max_tokens: 64,
                sealed_input: submit.sealed_input.clone(),
            });
            assert_eq!(frame, serde_json::to_string(&expected).unwrap());
            assert_eq!(
                serde_json::from_str::<RelayMessage>(&frame).unwrap(),
                expected
            );
        }
        // A ticket the body does not hold has no encoded frame (the caller encodes it).
        let other = ChannelTicket {
            channel: channel(3),
            seq: 1,
            voucher: None,
        };
        assert!(encoded.dispatch(&submit, &routable(&other), 1, 1).is_none());
    }

    #[test]
    fn the_session_decoded_key_gives_the_verdict_of_the_raw_key_on_every_receipt() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let ticket = ChannelTicket {
            channel: channel(7),
            seq: 3,
            voucher: None,
        };
        let r = routable(&ticket);
        let good = sample_receipt().sign(&key).unwrap();
        let mut cases = vec![("valid", good.clone())];
        let mut tampered = good.clone();
        tampered.body.cost += 1;
        cases.push(("tampered body", tampered));
        let mut s_unreduced = good.clone();
        s_unreduced.signature[63] |= 0xe0;
        cases.push(("s not reduced", s_unreduced));
        // s + l: the same point equation, a non-canonical scalar that strict checking refuses.
        let mut s_plus_l = good.clone();
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, add) in s_plus_l.signature[32..].iter_mut().zip(l) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        cases.push(("s + l", s_plus_l));
        let mut r_identity = good.clone();
        r_identity.signature[..32].copy_from_slice(&{
            let mut id = [0u8; 32];
            id[0] = 1;
            id
        });
        cases.push(("R small order", r_identity));
        let mut r_not_a_point = good.clone();
        r_not_a_point.signature[..32].copy_from_slice(&[0xff; 32]);
        cases.push(("R non-canonical", r_not_a_point));
        let wrong_key = SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes();
        // The identity as a key: small order, refused by strict checking.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for raw in [key.verifying_key().to_bytes(), wrong_key, identity] {
            let decoded = VerifyingKey::from_bytes(&raw).ok();
            for (what, receipt) in &cases {
                let done = ChannelDone {
                    request_id: 1,
                    attempt: 1,
                    chunks: 1,
                    receipt: receipt.clone(),
                    cost: receipt.body.cost,
                };
                assert_eq!(
                    check_receipt(&r, decoded.as_ref(), &done).is_ok(),
                    receipt.verify_signature(&raw).is_ok(),
                    "{what} under key {}",
                    hex::encode(raw)
                );
            }
        }
        let valid = ChannelDone {
            request_id: 1,
            attempt: 1,
            chunks: 1,
            receipt: good,
            cost: 40_000,
        };
        assert!(check_receipt(&r, Some(&key.verifying_key()), &valid).is_ok());
        // A key that does not decode refuses every receipt.
        assert!(check_receipt(&r, None, &valid).is_err());
    }

    /// Channel 7's receipt for seq 3 (unsigned).
    #[test]
    fn a_receipt_passed_on_as_encoded_is_the_event_the_sdk_would_render() {
        let receipt = sample_receipt()
            .sign(&SigningKey::from_bytes(&[3; 32]))
            .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(receipt.to_boc().unwrap());
        let passed = Rendered::receipt(2, 5, &encoded);
        let rendered = Rendered::event(&ChannelEvent::Receipt {
            attempt: 2,
            chunks: 5,
            receipt: receipt.clone(),
        });
        assert_eq!(passed, rendered);
        assert_eq!(
            serde_json::from_str::<ChannelEvent>(&passed.data).unwrap(),
            ChannelEvent::Receipt {
                attempt: 2,
                chunks: 5,
                receipt
            }
        );
    }
}
