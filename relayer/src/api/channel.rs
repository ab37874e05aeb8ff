//! Channel mode's client routes: `POST /v2/requests` (a [`ChannelSubmit`], answered with a
//! Server-Sent-Events stream of
//! [`ChannelEvent`](cocoon_sdk::relay::channel::ChannelEvent)s) and `POST /v2/vouchers` (a
//! [`ChannelVoucherPush`] handed to the channel's worker).
//!
//! Bodies are parsed here rather than by axum's `Json` so that every malformed body is a 400
//! with the parser's message.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cocoon_sdk::relay::PROTOCOL_VERSION;
use cocoon_sdk::relay::channel::ChannelVoucherPush;
use cocoon_sdk::relay::client::ApiErrorCode;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ApiFailure;
use crate::channels::route::{self, Rendered};
use crate::channels::wire;
use crate::channels::{ChannelRouter, TicketRefusal, VoucherRefusal};

/// Events buffered per client stream before the request waits for the client.
const STREAM_EVENTS: usize = 64;

fn malformed(what: &str, e: serde_json::Error) -> ApiFailure {
    ApiFailure::new(ApiErrorCode::BadRequest, format!("malformed {what}: {e}"))
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiFailure> {
    serde_json::from_slice(body).map_err(|e| malformed(what, e))
}

fn check_version(version: u16) -> Result<(), ApiFailure> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ApiFailure::new(
            ApiErrorCode::UnsupportedVersion,
            format!("relayer speaks version {PROTOCOL_VERSION}, client {version}"),
        ))
    }
}

fn failure(status: StatusCode, code: ApiErrorCode, message: String) -> ApiFailure {
    let mut f = ApiFailure::new(code, message);
    f.status = status;
    f
}

/// The answer when no ticket can be routed: 404 when no channel is known, 503 when the chain
/// could not be read or no worker is connected, 409 when the channels do not serve here now.
fn none_routable(refused: &[TicketRefusal]) -> ApiFailure {
    let message = refused
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let all = |f: fn(&TicketRefusal) -> bool| refused.iter().all(f);
    if all(|r| matches!(r, TicketRefusal::Unknown { .. })) {
        failure(StatusCode::NOT_FOUND, ApiErrorCode::JobNotFound, message)
    } else if refused.iter().any(|r| matches!(r, TicketRefusal::Chain(_))) {
        failure(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Internal,
            message,
        )
    } else {
        failure(StatusCode::CONFLICT, ApiErrorCode::NotOpen, message)
    }
}

fn event(ev: Rendered) -> Result<Event, Infallible> {
    Ok(Event::default().event(ev.name).data(ev.data))
}

/// `POST /v2/requests`.
pub async fn submit(State(router): State<Arc<ChannelRouter>>, body: Bytes) -> Response {
    match start(router, &body).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn start(router: Arc<ChannelRouter>, body: &[u8]) -> Result<Response, ApiFailure> {
    // Parsed once: the request, and the parts passed on to the worker as the client wrote them.
    let (submit, encoded) =
        wire::parse_submit(body).map_err(|e| malformed("channel request", e))?;
    check_version(submit.version)?;
    submit
        .validate()
        .map_err(|e| ApiFailure::new(ApiErrorCode::BadRequest, e))?;
    let (mut routable, mut refused) = router.admit(&submit).await;
    // A ticket whose worker is offline now cannot be served now: say so rather than stream a
    // failure, unless another ticket can be.
    routable.retain(|r| {
        let online = router.session_of(&r.state).is_some();
        if !online {
            refused.push(TicketRefusal::WorkerOffline {
                channel_id: r.ticket.channel.channel_id,
            });
        }
        online
    });
    if routable.is_empty() {
        if refused.iter().all(|r| {
            matches!(
                r,
                TicketRefusal::WorkerOffline { .. } | TicketRefusal::Unknown { .. }
            )
        }) && refused
            .iter()
            .any(|r| matches!(r, TicketRefusal::WorkerOffline { .. }))
        {
            let message = refused
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                ApiErrorCode::NoCandidates,
                message,
            ));
        }
        return Err(none_routable(&refused));
    }
    let (tx, rx) = mpsc::channel(STREAM_EVENTS);
    tokio::spawn(route::run(router, submit, encoded, routable, tx));
    let stream = ReceiverStream::new(rx).map(event);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `POST /v2/vouchers`: 202 once queued to the worker.
pub async fn voucher(State(router): State<Arc<ChannelRouter>>, body: Bytes) -> Response {
    let push = match parse::<ChannelVoucherPush>(&body, "voucher push")
        .and_then(|p| check_version(p.version).map(|()| p))
    {
        Ok(p) => p,
        Err(f) => return f.into_response(),
    };
    if push.voucher.body.channel != push.channel {
        return ApiFailure::new(
            ApiErrorCode::BadRequest,
            "the voucher is for another channel",
        )
        .into_response();
    }
    match router.push_voucher(push).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e @ VoucherRefusal::Unknown(_)) => failure(
            StatusCode::NOT_FOUND,
            ApiErrorCode::JobNotFound,
            e.to_string(),
        )
        .into_response(),
        Err(e) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::NoCandidates,
            e.to_string(),
        )
        .into_response(),
    }
}
