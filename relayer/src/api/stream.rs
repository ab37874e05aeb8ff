//! `GET /v1/jobs/{escrow}/{job_id}/stream`: the job's events as Server-Sent Events, from the
//! start of the stream, ending after the receipt (or the failure). Only the job's owner and the
//! operator may follow it: chunk sizes and timing would tell anyone else how long the answer is.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::ApiFailure;
use super::jobs::job_ref;
use crate::hub::Subscription;
use crate::state::Shared;
use crate::store::JobState;

/// Opens the event stream of a job the relayer knows.
pub async fn stream(
    State(shared): State<Arc<Shared>>,
    Path((escrow, job_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiFailure> {
    let job = job_ref(&escrow, &job_id)?;
    super::access::authorize_read(&shared, &headers, &job).await?;
    let record = shared
        .store
        .job(&job)
        .await?
        .ok_or_else(|| crate::Error::JobNotFound {
            job: job.to_string(),
        })?;
    let sub = match shared.hub.subscribe(&job) {
        Some(sub) => sub,
        // Finished before this process saw it stream (restart, eviction): rebuild the end.
        None if record.state.is_final()
            || matches!(record.state, JobState::Answered | JobState::ReceiptQueued) =>
        {
            let mut history = Vec::new();
            if let Some(r) = shared.store.receipt(&job).await? {
                history.push(StreamEvent::Receipt {
                    worker: r.worker,
                    attempt: record.attempts,
                    chunks: 0,
                    receipt: r.receipt,
                    cost: r.cost,
                });
            } else {
                let reason = record.reason.unwrap_or_else(|| record.state.to_string());
                history.push(match crate::dispatcher::parse_refusal(&reason) {
                    Some((code, reason)) => StreamEvent::Refused { code, reason },
                    None => StreamEvent::Failed { reason },
                });
            }
            Subscription {
                history,
                live: None,
            }
        }
        None => shared.hub.subscribe_or_create(&job),
    };
    // Counted while this connection lasts: a job nobody follows any more is cancelled.
    let follower = sub.live.is_some().then(|| shared.hub.follow(&job));
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        forward(shared, job, sub, tx).await;
        drop(follower);
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

fn event(ev: &StreamEvent) -> Event {
    Event::default()
        .event(ev.name())
        .data(serde_json::to_string(ev).unwrap_or_default())
}

async fn forward(
    shared: Arc<Shared>,
    job: JobRef,
    sub: Subscription,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut sent = 0usize;
    for ev in &sub.history {
        if tx.send(Ok(event(ev))).await.is_err() || ev.is_final() {
            return;
        }
        sent += 1;
    }
    let Some(mut live) = sub.live else { return };
    let mut close = shared.shutdown_signal();
    loop {
        tokio::select! {
            _ = close.changed() => return,
            // The connection is gone (the body was dropped): stop counting it as a follower now,
            // not at the next event, which may be far off while a long prompt is read.
            _ = tx.closed() => return,
            got = live.recv() => match got {
                Ok(ev) => {
                    if tx.send(Ok(event(&ev))).await.is_err() || ev.is_final() {
                        return;
                    }
                    sent += 1;
                }
                // A slow client: catch up from the history, which only ever grows.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(again) = shared.hub.subscribe(&job) else { return };
                    for ev in again.history.iter().skip(sent) {
                        if tx.send(Ok(event(ev))).await.is_err() || ev.is_final() {
                            return;
                        }
                        sent += 1;
                    }
                    match again.live {
                        Some(l) => live = l,
                        None => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
