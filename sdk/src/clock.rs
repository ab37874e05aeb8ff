//! The one "now" of the workspace: unix seconds from the system clock. Chain fields narrow it
//! where they are stored (`u32` on-chain times, `i64` database columns) at the place they do.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// [`unix_now`] as the `uint32` the contracts store times in (saturating in 2106).
pub fn unix_now_u32() -> u32 {
    u32::try_from(unix_now()).unwrap_or(u32::MAX)
}

/// [`unix_now`] as the `BIGINT` the relayer's store keeps times in.
pub fn unix_now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2025_and_fits_u32() {
        assert!(unix_now() > 1_735_689_600);
        let (a, b) = (unix_now_u32(), unix_now());
        assert!(b - u64::from(a) <= 1);
        assert!(unix_now_i64() >= i64::from(a));
    }
}
