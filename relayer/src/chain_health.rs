//! Whether the chain answers, for `/health`: a probe reads Root's account every period; the
//! relayer is degraded when the last probe failed or none succeeded for [`STALE_AFTER_S`] (a
//! probe stuck on a dead connection counts as a failure once it is that old). Without a chain
//! (an offline relayer) nothing is reported.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use cocoon_sdk::clock::unix_now_i64;

/// Seconds without a successful probe after which the chain counts as unreachable.
pub const STALE_AFTER_S: i64 = 30;

/// The chain's reachability as last probed.
#[derive(Debug, Default)]
pub struct ChainHealth {
    configured: AtomicBool,
    last_ok: AtomicI64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// What `/health` says of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain answered recently.
    pub reachable: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
}

impl ChainHealth {
    /// A relayer with a chain: from now on its reachability is reported (reachable now: the
    /// service read Root before starting).
    pub fn configure(&self) {
        self.configured.store(true, Ordering::SeqCst);
        self.succeeded();
    }

    /// A probe answered.
    pub fn succeeded(&self) {
        self.last_ok.store(unix_now_i64(), Ordering::SeqCst);
        self.failing.store(false, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A probe failed with `error`.
    pub fn failed(&self, error: String) {
        self.failing.store(true, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// The chain's status at `now`; `None` without a chain.
    pub fn status(&self, now: i64) -> Option<ChainStatus> {
        if !self.configured.load(Ordering::SeqCst) {
            return None;
        }
        let age = now.saturating_sub(self.last_ok.load(Ordering::SeqCst));
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if self.failing.load(Ordering::SeqCst) {
            return Some(ChainStatus {
                reachable: false,
                error: error.or_else(|| Some("the chain did not answer".into())),
            });
        }
        if age > STALE_AFTER_S {
            return Some(ChainStatus {
                reachable: false,
                error: Some(format!("no answer from the chain for {age} s")),
            });
        }
        Some(ChainStatus {
            reachable: true,
            error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_reports_nothing_and_failures_and_silence_are_unreachable() {
        let h = ChainHealth::default();
        assert_eq!(h.status(unix_now_i64()), None);
        h.configure();
        let now = unix_now_i64();
        assert_eq!(h.status(now).map(|s| s.reachable), Some(true));
        assert!(!h.status(now + STALE_AFTER_S + 1).unwrap().reachable);
        h.failed("connection refused".into());
        let s = h.status(now).unwrap();
        assert!(!s.reachable);
        assert_eq!(s.error.as_deref(), Some("connection refused"));
        h.succeeded();
        assert!(h.status(unix_now_i64()).unwrap().reachable);
    }
}
