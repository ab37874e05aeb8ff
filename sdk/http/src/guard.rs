//! The request layers: a per-client rate limit (429) and the body guard (413 from the
//! `Content-Length` before any of the body is read, 408 when the body is too slow). Each service
//! renders a [`Refusal`] in its own error format.
//!
//! The client is the peer IP ([`ConnectInfo`], set by [`crate::serve`]); requests that carry no
//! peer address (a router called in-process) are not rate limited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use http_body::Body as _;

use crate::Limits;

/// Why a request was refused before the service saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body is (or says it is) larger than the cap (413).
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// The body did not arrive in time (408).
    BodyTimeout {
        /// The time it had.
        timeout: Duration,
    },
    /// The body broke off or could not be read (400).
    BodyUnreadable(String),
    /// The client made too many requests (429).
    RateLimited {
        /// Seconds until it may try again.
        retry_after_secs: u64,
    },
}

impl Refusal {
    /// The status this refusal answers with.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Refusal::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A sentence for the error body.
    pub fn message(&self) -> String {
        match self {
            Refusal::TooLarge { limit } => format!("request body larger than {limit} bytes"),
            Refusal::BodyTimeout { timeout } => {
                format!(
                    "request body not received within {} ms",
                    timeout.as_millis()
                )
            }
            Refusal::BodyUnreadable(why) => format!("request body unreadable: {why}"),
            Refusal::RateLimited { retry_after_secs } => {
                format!("too many requests; retry in {retry_after_secs} s")
            }
        }
    }
}

/// Renders a refusal as the service's error response (status from [`Refusal::status`]; a 429
/// gets a `Retry-After` header added).
pub type Render = Arc<dyn Fn(&Refusal) -> Response + Send + Sync>;

/// Both layers over `router`: the rate limit outside, the body guard inside. A service that
/// must check something first (the gateway's key) puts its own layer between them with
/// [`limit_rate`] and [`guard_body`].
pub fn harden(router: Router, limits: &Limits, render: Render) -> Router {
    limit_rate(guard_body(router, limits, render.clone()), limits, render)
}

/// The body guard over `router`.
pub fn guard_body(router: Router, limits: &Limits, render: Render) -> Router {
    let guard = Arc::new(BodyGuard {
        max: limits.max_body_bytes,
        timeout: limits.body_timeout,
        render,
    });
    router.layer(from_fn_with_state(guard, body_guard))
}

/// The per-client rate limit over `router` (none when the rate is 0).
pub fn limit_rate(router: Router, limits: &Limits, render: Render) -> Router {
    if limits.rate_per_second == 0 {
        return router;
    }
    let limiter = Arc::new(RateLimiter::new(limits.rate_per_second, limits.rate_burst));
    router.layer(from_fn_with_state((limiter, render), rate_limit))
}

struct BodyGuard {
    max: usize,
    timeout: Duration,
    render: Render,
}

/// Reads the whole body (within the cap and the time) before the handler runs, so a handler
/// never waits on a slow client and an oversized body is refused from its `Content-Length`
/// alone.
async fn body_guard(State(g): State<Arc<BodyGuard>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let refuse = |r: Refusal| respond(&g.render, &r);
    // hyper's size hint is exactly the Content-Length when there is one.
    if body.size_hint().lower() > g.max as u64 {
        return refuse(Refusal::TooLarge { limit: g.max });
    }
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    match tokio::time::timeout(g.timeout, axum::body::to_bytes(body, g.max)).await {
        Err(_) => refuse(Refusal::BodyTimeout { timeout: g.timeout }),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                refuse(Refusal::TooLarge { limit: g.max })
            } else {
                refuse(Refusal::BodyUnreadable(e.to_string()))
            }
        }
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

async fn rate_limit(
    State((limiter, render)): State<(Arc<RateLimiter>, Render)>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(retry_after_secs) = limiter.take(peer.ip())
    {
        return respond(&render, &Refusal::RateLimited { retry_after_secs });
    }
    next.run(req).await
}

fn respond(render: &Render, refusal: &Refusal) -> Response {
    let mut res = render(refusal);
    *res.status_mut() = refusal.status();
    if let Refusal::RateLimited { retry_after_secs } = refusal
        && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
    {
        res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    res
}

/// Clients tracked at once; beyond it, clients whose bucket is full again are forgotten (they
/// lose nothing: a new bucket starts full).
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// A token bucket per client IP, in thousandths of a request so the refill stays integral.
#[derive(Debug)]
pub struct RateLimiter {
    /// Thousandths of a request refilled per millisecond (= requests per second).
    per_ms: u64,
    /// Bucket size, thousandths of a request.
    capacity: u64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second` requests on average, `burst` above it.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_ms: u64::from(per_second),
            capacity: u64::from(per_second.max(1)).max(u64::from(burst)) * 1000,
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `ip`'s bucket; `Err(seconds to wait)` when it is empty.
    pub fn take(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            buckets.retain(|_, b| self.refilled(*b, now) < self.capacity);
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            milli_tokens: self.capacity,
            at: now,
        });
        let tokens = self.refilled(*b, now);
        *b = Bucket {
            milli_tokens: tokens,
            at: now,
        };
        if tokens >= 1000 {
            b.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing_ms = (1000 - tokens).div_ceil(self.per_ms.max(1));
            Err(missing_ms.div_ceil(1000).max(1))
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> u64 {
        let ms = u64::try_from(now.saturating_duration_since(b.at).as_millis()).unwrap_or(u64::MAX);
        b.milli_tokens
            .saturating_add(ms.saturating_mul(self.per_ms))
            .min(self.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_refuses_then_refills() {
        let r = RateLimiter::new(1000, 5);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        // The burst is at least one second's worth.
        for _ in 0..1000 {
            r.take(ip).unwrap();
        }
        assert_eq!(r.take(ip), Err(1));
        r.take(other).expect("another client has its own bucket");
        std::thread::sleep(Duration::from_millis(5));
        r.take(ip).expect("refilled");
        let slow = RateLimiter::new(1, 2);
        slow.take(ip).unwrap();
        slow.take(ip).unwrap();
        assert_eq!(slow.take(ip), Err(1));
    }
}
