//! Exit codes of the Cocoon contracts, mirrored from `contracts/errors.tolk`.

/// Named exit codes.
pub mod exit {
    #![allow(missing_docs)]
    pub const UNKNOWN_OP: i32 = 64;
    pub const NOT_OWNER: i32 = 65;
    pub const NOT_ROOT: i32 = 66;
    pub const NOT_PENDING_OWNER: i32 = 67;
    pub const NOT_ENOUGH_VALUE: i32 = 68;
    pub const STAKE_TOO_LOW: i32 = 100;
    pub const TEE_KIND_NOT_ALLOWED: i32 = 101;
    pub const MEASUREMENT_NOT_ALLOWED: i32 = 102;
    pub const UNKNOWN_MODEL: i32 = 103;
    pub const ATTESTATION_EXPIRED: i32 = 104;
    pub const BAD_PARAMS: i32 = 105;
    pub const NOT_ACTIVE: i32 = 200;
    pub const WORKER_SLASHED: i32 = 201;
    pub const NOT_UNBONDING: i32 = 202;
    pub const STAKE_LOCKED: i32 = 203;
    pub const INSUFFICIENT_EARNINGS: i32 = 204;
    pub const NOT_INITIALIZED: i32 = 205;
    pub const BAD_SIGNATURE: i32 = 206;
    pub const WRONG_WORKER: i32 = 207;
    pub const MODEL_NOT_SERVED: i32 = 208;
    pub const WRONG_COST: i32 = 209;
    pub const NOT_EQUIVOCATION: i32 = 210;
    pub const BATCH_TOO_LARGE: i32 = 211;
    pub const ESCROW_NOT_INITIALIZED: i32 = 300;
    pub const JOB_ID_NOT_INCREASING: i32 = 301;
    pub const RELAYER_FEE_TOO_HIGH: i32 = 302;
    pub const DEADLINE_IN_PAST: i32 = 303;
    pub const INSUFFICIENT_FREE_BALANCE: i32 = 304;
    pub const MAX_COST_TOO_LARGE: i32 = 305;
    pub const JOB_NOT_FOUND: i32 = 306;
    pub const NOT_GENUINE_WORKER: i32 = 307;
    pub const SETTLEMENT_TOO_LATE: i32 = 308;
    pub const COST_ABOVE_MAX: i32 = 309;
    pub const WRONG_MODEL: i32 = 310;
    pub const WRONG_INPUT: i32 = 311;
    pub const WRONG_WORKER_FOR_JOB: i32 = 312;
    pub const JOB_NOT_EXPIRED: i32 = 313;
    pub const OPEN_JOBS_EXIST: i32 = 314;
}

/// The name of a Cocoon exit code (`errors.tolk`), or of a common TVM one.
pub fn error_name(code: i32) -> Option<&'static str> {
    use exit::*;
    Some(match code {
        9 => "CellUnderflow",
        UNKNOWN_OP => "UnknownOp",
        NOT_OWNER => "NotOwner",
        NOT_ROOT => "NotRoot",
        NOT_PENDING_OWNER => "NotPendingOwner",
        NOT_ENOUGH_VALUE => "NotEnoughValue",
        STAKE_TOO_LOW => "StakeTooLow",
        TEE_KIND_NOT_ALLOWED => "TeeKindNotAllowed",
        MEASUREMENT_NOT_ALLOWED => "MeasurementNotAllowed",
        UNKNOWN_MODEL => "UnknownModel",
        ATTESTATION_EXPIRED => "AttestationExpired",
        BAD_PARAMS => "BadParams",
        NOT_ACTIVE => "NotActive",
        WORKER_SLASHED => "WorkerSlashed",
        NOT_UNBONDING => "NotUnbonding",
        STAKE_LOCKED => "StakeLocked",
        INSUFFICIENT_EARNINGS => "InsufficientEarnings",
        NOT_INITIALIZED => "NotInitialized",
        BAD_SIGNATURE => "BadSignature",
        WRONG_WORKER => "WrongWorker",
        MODEL_NOT_SERVED => "ModelNotServed",
        WRONG_COST => "WrongCost",
        NOT_EQUIVOCATION => "NotEquivocation",
        BATCH_TOO_LARGE => "BatchTooLarge",
        ESCROW_NOT_INITIALIZED => "EscrowNotInitialized",
        JOB_ID_NOT_INCREASING => "JobIdNotIncreasing",
        RELAYER_FEE_TOO_HIGH => "RelayerFeeTooHigh",
        DEADLINE_IN_PAST => "DeadlineInPast",
        INSUFFICIENT_FREE_BALANCE => "InsufficientFreeBalance",
        MAX_COST_TOO_LARGE => "MaxCostTooLarge",
        JOB_NOT_FOUND => "JobNotFound",
        NOT_GENUINE_WORKER => "NotGenuineWorker",
        SETTLEMENT_TOO_LATE => "SettlementTooLate",
        COST_ABOVE_MAX => "CostAboveMax",
        WRONG_MODEL => "WrongModel",
        WRONG_INPUT => "WrongInput",
        WRONG_WORKER_FOR_JOB => "WrongWorkerForJob",
        JOB_NOT_EXPIRED => "JobNotExpired",
        OPEN_JOBS_EXIST => "OpenJobsExist",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    /// Every `Name = code` line of errors.tolk is mirrored here with the same name.
    #[test]
    fn mirrors_errors_tolk() {
        let src = include_str!("../../../contracts/errors.tolk");
        let mut n = 0;
        for line in src.lines() {
            let l = line.trim().trim_end_matches(',');
            if let Some((name, code)) = l.split_once(" = ")
                && let Ok(code) = code.trim().parse::<i32>()
            {
                assert_eq!(super::error_name(code), Some(name.trim()), "code {code}");
                n += 1;
            }
        }
        assert!(n >= 38, "parsed {n} codes");
    }
}
