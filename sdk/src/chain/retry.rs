//! Retry with exponential backoff for transient failures.

use std::time::Duration;

/// Default attempts per call (first try included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default first backoff delay.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(200);
/// Default cap on one backoff delay.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// Delay after the failed attempt number `attempt` (1-based), with up to 25% jitter so that
    /// clients throttled together do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let d = exp.min(self.max_delay);
        let jitter = rand::random::<f64>() * 0.25;
        d.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let d1 = p.delay(1);
        let d3 = p.delay(3);
        assert!(d1 <= Duration::from_millis(100) && d1 >= Duration::from_millis(75));
        assert!(d3 <= Duration::from_millis(350) && d3 >= Duration::from_millis(262));
        assert!(p.delay(40) <= Duration::from_millis(350));
    }
}
