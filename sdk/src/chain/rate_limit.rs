//! The client's own request budget. toncenter allows a number of requests per second per API key
//! (1 without a key, 10 with a free one) and answers 429 beyond it; a client that polls faster
//! turns every wait into a 429 storm that exhausts its retries. So every call first takes a slot
//! from a budget shared by everything in the process that uses the same endpoint and key.
//!
//! The budget is a GCRA token bucket: a burst of one second's worth, then one request per
//! `1 s / rps`, granted in the order asked (each caller reserves its slot, then sleeps until it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// toncenter's limit for requests without an API key (requests per second).
pub const FREE_PLAN_RPS_WITHOUT_KEY: u32 = 1;
/// toncenter's limit for a free API key (requests per second).
pub const FREE_PLAN_RPS_WITH_KEY: u32 = 10;
/// Hosts whose limits [`RateLimit::Auto`] knows.
const TONCENTER_HOSTS: [&str; 2] = ["toncenter.com", "testnet.toncenter.com"];

/// How many requests per second a client may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimit {
    /// toncenter's free-plan limits on toncenter's hosts (with or without a key); no limit
    /// elsewhere (localnet, a node of one's own).
    #[default]
    Auto,
    /// No client-side limit.
    Unlimited,
    /// At most this many requests per second (a paid plan: 25, 100).
    PerSecond(u32),
}

impl RateLimit {
    /// Requests per second for `base_url`, or `None` for no limit.
    pub fn resolve(self, base_url: &str, has_key: bool) -> Option<u32> {
        match self {
            RateLimit::Unlimited | RateLimit::PerSecond(0) => None,
            RateLimit::PerSecond(n) => Some(n),
            RateLimit::Auto => {
                let host = host_of(base_url);
                TONCENTER_HOSTS.contains(&host).then_some(if has_key {
                    FREE_PLAN_RPS_WITH_KEY
                } else {
                    FREE_PLAN_RPS_WITHOUT_KEY
                })
            }
        }
    }
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    /// `auto`, `unlimited` (or `0`), or a number of requests per second.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(RateLimit::Auto),
            "unlimited" | "0" => Ok(RateLimit::Unlimited),
            n => n.parse().map(RateLimit::PerSecond).map_err(|_| {
                format!("rate limit must be auto, unlimited or requests per second, got {s:?}")
            }),
        }
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateLimit::Auto => f.write_str("auto"),
            RateLimit::Unlimited => f.write_str("unlimited"),
            RateLimit::PerSecond(n) => write!(f, "{n}"),
        }
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap_or("")
}

/// A shared request budget (see the module doc). Cloning shares it.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Option<Arc<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    interval: Duration,
    /// How far ahead of now reservations may run: the burst minus one request.
    tolerance: Duration,
    /// When the next request would be due if requests came at exactly the limit.
    next_due: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A budget of `rps` requests per second, or none.
    pub fn new(rps: Option<u32>) -> Self {
        let inner = rps.filter(|&n| n > 0).map(|n| {
            let interval = Duration::from_secs(1) / n;
            Arc::new(Bucket {
                interval,
                tolerance: interval * (n - 1),
                next_due: Mutex::new(None),
            })
        });
        Self { inner }
    }

    /// The budget every client of this process shares for `base_url` and `api_key` (toncenter
    /// counts per key, so two clients with one key must not each use the whole allowance).
    pub fn shared(base_url: &str, api_key: Option<&str>, rps: Option<u32>) -> Self {
        let Some(rps) = rps.filter(|&n| n > 0) else {
            return Self::new(None);
        };
        // (host, API key, requests per second) → the one limiter for that budget.
        type Budgets = HashMap<(String, Option<String>, u32), RateLimiter>;
        static REGISTRY: OnceLock<Mutex<Budgets>> = OnceLock::new();
        let key = (
            host_of(base_url).to_owned(),
            api_key.map(str::to_owned),
            rps,
        );
        let mut map = REGISTRY
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Self::new(Some(rps)))
            .clone()
    }

    /// Whether this budget limits anything.
    pub fn is_limited(&self) -> bool {
        self.inner.is_some()
    }

    /// Waits until a request may be made, and counts it.
    pub async fn acquire(&self) {
        let Some(b) = &self.inner else { return };
        let wait = {
            let mut due = b.next_due.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let tat = due.map_or(now, |d| d.max(now));
            let allowed_at = tat.checked_sub(b.tolerance).unwrap_or(now);
            *due = Some(tat + b.interval);
            allowed_at.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_knows_toncenter_only() {
        let a = RateLimit::Auto;
        assert_eq!(a.resolve("https://toncenter.com", false), Some(1));
        assert_eq!(a.resolve("https://toncenter.com/", true), Some(10));
        assert_eq!(a.resolve("https://testnet.toncenter.com", true), Some(10));
        assert_eq!(a.resolve("http://127.0.0.1:8081", false), None);
        assert_eq!(a.resolve("https://toncenter.com.evil.example", false), None);
        assert_eq!(
            RateLimit::PerSecond(25).resolve("http://x", false),
            Some(25)
        );
        assert_eq!(
            RateLimit::Unlimited.resolve("https://toncenter.com", false),
            None
        );
    }

    #[test]
    fn parses_from_flags() {
        assert_eq!("auto".parse(), Ok(RateLimit::Auto));
        assert_eq!("0".parse(), Ok(RateLimit::Unlimited));
        assert_eq!("25".parse(), Ok(RateLimit::PerSecond(25)));
        assert!("fast".parse::<RateLimit>().is_err());
        for r in [
            RateLimit::Auto,
            RateLimit::Unlimited,
            RateLimit::PerSecond(7),
        ] {
            assert_eq!(r.to_string().parse(), Ok(r));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_per_interval() {
        let l = RateLimiter::new(Some(10));
        let start = Instant::now();
        for _ in 0..10 {
            l.acquire().await;
        }
        // The first second's worth passes at once.
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        // After a quiet second the burst is back.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let again = Instant::now();
        for _ in 0..10 {
            l.acquire().await;
        }
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn one_per_second_without_a_key() {
        let l = RateLimiter::new(RateLimit::Auto.resolve("https://toncenter.com", false));
        let start = Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn clients_of_one_key_share_a_budget() {
        let a = RateLimiter::shared("https://toncenter.com", Some("k"), Some(10));
        let b = RateLimiter::shared("https://toncenter.com/", Some("k"), Some(10));
        let other = RateLimiter::shared("https://toncenter.com", Some("k2"), Some(10));
        let (a, b, other) = (a.inner.unwrap(), b.inner.unwrap(), other.inner.unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        assert!(!RateLimiter::shared("http://127.0.0.1", None, None).is_limited());
    }
}
