//! When a worker settles a channel: rarely, because every settlement costs a fee. It settles once
//! the fee is at most 1 % of what the settlement earns it, before the settlement window closes,
//! when the client handed it a final voucher (cooperative close), and on shutdown.

use super::voucher::SignedVoucher;

/// A settlement earns the worker at least this many times its fee (fees ≤ 1 % of earnings).
pub const FEE_SHARE_DIVISOR: u128 = 100;

/// Basis points in a whole (the Escrow's `BPS`).
pub const BPS: u128 = 10_000;

/// Default safety margin before the end of the settlement window: an hour, because a
/// settlement may wait for blocks, a congested network or a relayer (keep windows in hours).
pub const DEFAULT_SETTLE_MARGIN_SECS: u32 = 3_600;

/// The node's settlement rule for its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    /// What one settlement costs the worker in fees, nanoTON (from the chain's fee getter).
    pub settle_fee: u128,
    /// Settle when the settlement window ends within this many seconds.
    pub margin_secs: u32,
}

impl SettlePolicy {
    /// The policy for a settlement fee, with the default margin.
    pub fn new(settle_fee: u128) -> Self {
        Self {
            settle_fee,
            margin_secs: DEFAULT_SETTLE_MARGIN_SECS,
        }
    }

    /// The worker's share at which a settlement's fee is 1 % of it.
    pub fn threshold(&self) -> u128 {
        self.settle_fee.saturating_mul(FEE_SHARE_DIVISOR)
    }
}

/// Why a settlement is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleReason {
    /// The client signed a final voucher: settling it closes the channel.
    FinalVoucher,
    /// The settlement window ends within the policy's margin.
    Expiry,
    /// The worker's share reached the policy's threshold.
    Threshold,
    /// The node is shutting down.
    Shutdown,
}

/// A settlement to submit: the voucher, to be posted with the worker's signed receipt for
/// `voucher.body.last_seq` (from its ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The best voucher held.
    pub voucher: SignedVoucher,
    /// What the Escrow pays out of the channel: voucher cumulative − settled.
    pub due: u128,
    /// The worker's part of `due`, after the relayer's and the protocol's fees.
    pub worker_share: u128,
    /// Why now.
    pub reason: SettleReason,
}

/// The worker's share of `due` exactly as the Escrow computes it: each fee is floored
/// separately (`mulDivFloor`), the rest is the worker's.
pub fn worker_share(due: u128, relayer_fee_bps: u16, protocol_fee_bps: u16) -> u128 {
    let fee = |bps: u16| mul_div_floor(due, u128::from(bps), BPS);
    due.saturating_sub(fee(relayer_fee_bps))
        .saturating_sub(fee(protocol_fee_bps))
}

/// floor(a × b / d) for a small `b` and `d` without an intermediate overflow (saturating where
/// the result itself would not fit, b > d).
fn mul_div_floor(a: u128, b: u128, d: u128) -> u128 {
    (a / d).saturating_mul(b).saturating_add((a % d) * b / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_floors_each_fee_like_the_escrow() {
        // 5 % relayer, 1 % protocol of 1,999: floor(99.95) = 99, floor(19.99) = 19.
        assert_eq!(worker_share(1_999, 500, 100), 1_999 - 99 - 19);
        assert_eq!(worker_share(0, 500, 100), 0);
        assert_eq!(worker_share(u128::MAX, 0, 0), u128::MAX);
        assert_eq!(
            worker_share(u128::MAX, 10_000, 0),
            0,
            "no overflow at the top"
        );
        assert_eq!(SettlePolicy::new(7).threshold(), 700);
        assert_eq!(SettlePolicy::new(u128::MAX).threshold(), u128::MAX);
    }
}
