//! Exit codes of the v2 contracts, mirrored from `contracts/v2/errors.tolk` (a test checks every
//! line), and the typed refusal a [`ContractError`] carries.

use super::super::ContractError;

macro_rules! exits {
    ($( $(#[$m:meta])* $name:ident = $code:literal, )*) => {
        /// A v2 contract's refusal, by its `errors.tolk` name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Exit {
            $( $(#[$m])* $name = $code, )*
        }

        impl Exit {
            /// Every named code.
            pub const ALL: &'static [Exit] = &[$(Exit::$name),*];

            /// The exit code.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The name in `errors.tolk`.
            pub fn name(self) -> &'static str {
                match self { $( Exit::$name => stringify!($name), )* }
            }

            /// The named exit for `code`, if it is one of the v2 contracts'.
            pub fn from_code(code: i32) -> Option<Exit> {
                match code { $( $code => Some(Exit::$name), )* _ => None }
            }
        }
    };
}

exits! {
    /// The body's opcode is not one this contract accepts.
    UnknownOp = 64,
    /// An owner-only operation was sent by someone else.
    NotOwner = 65,
    /// A Root-only message came from another sender.
    NotRoot = 66,
    /// AcceptOwnership from an address that is not the pending owner.
    NotPendingOwner = 67,
    /// The attached value does not cover what the handler will spend.
    NotEnoughValue = 68,
    /// An address that must be on the basechain is not.
    NotBasechain = 69,
    /// A signed payload names another network.
    WrongNetwork = 70,
    /// A cell the contract would keep is exotic (a library or Merkle cell).
    ExoticCell = 71,
    /// RegisterWorker with a stake below the minimum.
    StakeTooLow = 100,
    /// The attestation kind is not allowed.
    TeeKindNotAllowed = 101,
    /// The attestation measurement is not allow-listed.
    MeasurementNotAllowed = 102,
    /// A served model is not registered.
    UnknownModel = 103,
    /// The attestation has expired.
    AttestationExpired = 104,
    /// A parameter is out of range.
    BadParams = 105,
    /// UpdateWorker from something that is not a Worker of this Root.
    NotGenuineWorker = 106,
    /// No such queued change.
    ChangeNotFound = 107,
    /// ApplyChange before the change's ready time.
    ChangeNotReady = 108,
    /// A queued body is not a governance change.
    NotAChange = 109,
    /// The operation needs an active worker.
    NotActive = 200,
    /// The worker is slashed.
    WorkerSlashed = 201,
    /// WithdrawStake while not unbonding.
    NotUnbonding = 202,
    /// WithdrawStake before unlock_at.
    StakeLocked = 203,
    /// The Worker is not initialised yet.
    NotInitialized = 205,
    /// A receipt's signature does not verify under the receipt key (also a receipt naming
    /// another Worker: the Worker rebuilds the body with its own address).
    BadSignature = 206,
    /// A receipt names another Worker contract.
    WrongWorker = 207,
    /// A receipt's model is not served by this worker.
    ModelNotServed = 208,
    /// The two reported receipts are not an equivocation.
    NotEquivocation = 210,
    /// A reported receipt key was never registered.
    UnknownReceiptKey = 212,
    /// The receipt key history is full.
    KeyHistoryFull = 213,
    /// A receipt names another Root.
    WrongRoot = 214,
    /// The Escrow is not initialised yet.
    EscrowNotInitialized = 300,
    /// A relayer fee above Root's cap.
    RelayerFeeTooHigh = 302,
    /// An expiry not in the future.
    ExpiryInPast = 303,
    /// More than the free balance.
    InsufficientFreeBalance = 304,
    /// An amount of 2^64 nanoTON or more.
    AmountTooLarge = 305,
    /// The channel is not open.
    ChannelNotFound = 306,
    /// A settlement from a sender that is not the channel's Worker.
    NotChannelWorker = 307,
    /// A settlement after the channel's settlement window.
    SettlementTooLate = 308,
    /// A voucher above the channel's amount.
    AboveChannelAmount = 309,
    /// An expiry beyond Root's maximum channel lifetime.
    ExpiryTooFar = 315,
    /// Too many open channels.
    TooManyChannels = 316,
    /// A voucher not signed by the channel's voucher key (or for another channel, seq or
    /// accumulator: the Escrow rebuilds the body it checks).
    BadVoucherSignature = 317,
    /// A voucher for another Root, Escrow or channel.
    WrongChannel = 318,
    /// A cumulative amount that does not exceed what was settled.
    CumulativeNotIncreasing = 319,
    /// A seq that does not exceed the last settled one.
    WrongSeq = 320,
    /// Unused since the Worker computes the accumulator it forwards (codes are never reused).
    WrongAccumulator = 321,
    /// A receipt cost other than its tokens at the channel's prices.
    WrongCost = 322,
    /// Close before the settlement window ended.
    ChannelNotClosable = 323,
}

impl Exit {
    /// The v2 refusal `e` carries, if it is one.
    pub fn of(e: &ContractError) -> Option<Exit> {
        match e {
            ContractError::Failed { exit_code, .. } => Exit::from_code(*exit_code),
            _ => None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// The name of a v2 exit code, or of a common TVM one.
pub fn error_name(code: i32) -> Option<&'static str> {
    match code {
        9 => Some("CellUnderflow"),
        13 => Some("OutOfGas"),
        37 => Some("NotEnoughTon"),
        _ => Exit::from_code(code).map(Exit::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Name = code` line of contracts/v2/errors.tolk is mirrored with the same name, and
    /// nothing else is.
    #[test]
    fn mirrors_v2_errors_tolk() {
        let src = include_str!("../../../../contracts/v2/errors.tolk");
        let mut n = 0;
        for line in src.lines() {
            let l = line.trim().trim_end_matches(',');
            if let Some((name, code)) = l.split_once(" = ")
                && let Ok(code) = code.trim().parse::<i32>()
            {
                assert_eq!(
                    Exit::from_code(code).map(Exit::name),
                    Some(name.trim()),
                    "code {code}"
                );
                n += 1;
            }
        }
        assert_eq!(n, Exit::ALL.len(), "errors.tolk has {n} codes");
        assert_eq!(error_name(317), Some("BadVoucherSignature"));
        assert_eq!(Exit::from_code(1), None);
    }
}
