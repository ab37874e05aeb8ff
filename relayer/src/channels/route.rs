//! One channel request, ticket by ticket: dispatch to the channel's worker, pass its chunks on,
//! end with its receipt; on a refusal that fails over, a worker that goes away or goes quiet,
//! the next ticket.

use std::sync::Arc;

use cocoon_sdk::relay::channel::{
    ChannelDispatch, ChannelDone, ChannelEvent, ChannelRefusal, ChannelSubmit,
};
use cocoon_sdk::relay::worker::RelayMessage;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{ChannelRouter, Routable, WorkerAnswer};

/// How one attempt ended.
enum Outcome {
    /// The receipt was passed on: the request is done.
    Served,
    /// The request ends without an answer (the refusal was passed on, or the client left).
    Ended,
    /// Try the next ticket.
    Next(String),
}

/// Serves `submit` on the routable tickets in order, sending its events to `events`.
pub async fn run(
    router: Arc<ChannelRouter>,
    submit: ChannelSubmit,
    routable: Vec<Routable>,
    events: mpsc::Sender<ChannelEvent>,
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
        let dispatch = ChannelDispatch {
            request_id,
            attempt,
            ticket: r.ticket.clone(),
            model_id: submit.model_id,
            max_tokens: submit.max_tokens,
            sealed_input: submit.sealed_input.clone(),
        };
        let outcome = if !session.send(RelayMessage::ChannelDispatch(dispatch)) {
            Outcome::Next(format!(
                "the worker of channel {channel_id} is not reachable"
            ))
        } else {
            debug!(target: "relayer::channels", request = request_id, attempt, channel = channel_id, worker = %session.worker, "dispatched");
            let dispatched = ChannelEvent::Dispatched {
                channel: r.ticket.channel.clone(),
                attempt,
            };
            if events.send(dispatched).await.is_err() {
                Outcome::Ended
            } else {
                follow(
                    &router,
                    &r,
                    &session.chain.receipt_key,
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
    let _ = events.send(ChannelEvent::Failed { reason }).await;
}

/// Passes one attempt's answers on until it ends.
async fn follow(
    router: &ChannelRouter,
    r: &Routable,
    receipt_key: &[u8; 32],
    attempt: u32,
    mut answers: mpsc::UnboundedReceiver<WorkerAnswer>,
    events: &mpsc::Sender<ChannelEvent>,
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
            WorkerAnswer::Done(d) => {
                if let Err(why) = check_receipt(r, receipt_key, &d) {
                    warn!(target: "relayer::channels", channel = channel_id, %why, "worker answered with a bad receipt");
                    return Outcome::Next(format!("the worker of channel {channel_id}: {why}"));
                }
                let done = ChannelEvent::Receipt {
                    attempt,
                    chunks: d.chunks,
                    receipt: d.receipt,
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
                if events.send(refused).await.is_err() {
                    return Outcome::Ended;
                }
                if fails_over {
                    return Outcome::Next(reason);
                }
                let _ = events.send(ChannelEvent::Failed { reason }).await;
                return Outcome::Ended;
            }
            WorkerAnswer::Disconnected => {
                return Outcome::Next(format!("the worker of channel {channel_id} disconnected"));
            }
        };
        if events.send(event).await.is_err() {
            return Outcome::Ended;
        }
    }
}

/// What the relayer can check of a receipt without trusting the worker: its signature by the
/// session's receipt key, and that it is for this ticket's channel and seq.
fn check_receipt(r: &Routable, receipt_key: &[u8; 32], d: &ChannelDone) -> Result<(), String> {
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
    d.receipt
        .verify_signature(receipt_key)
        .map_err(|e| format!("receipt signature: {e}"))
}
