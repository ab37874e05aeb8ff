// Opcodes, exit codes and protocol constants of the Cocoon v2 contracts.
// Mirrors contracts/v2/schema.tlb, contracts/v2/errors.tolk and contracts/v2/constants.tolk;
// tests/v2/schema.spec.ts checks that they agree. The Rust sdk will mirror this file (issue 14).
import { TYPES } from './schema';

export { RECEIPT_TAG, VOUCHER_TAG } from './schema';

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** 32-bit opcodes of every tagged message, by camel-cased TL-B constructor name. */
export const Op: { [name: string]: number } = Object.fromEntries(
    TYPES.filter((t) => t.tag !== undefined && !['receipt_body', 'voucher_body'].includes(t.name)).map((t) => [
        camel(t.name),
        t.tag!,
    ]),
);

/** Exit codes (64..2048); see contracts/v2/errors.tolk for each meaning. */
export enum Err {
    UnknownOp = 64,
    NotOwner = 65,
    NotRoot = 66,
    NotPendingOwner = 67,
    NotEnoughValue = 68,
    NotBasechain = 69,
    WrongNetwork = 70,
    ExoticCell = 71,
    StakeTooLow = 100,
    TeeKindNotAllowed = 101,
    MeasurementNotAllowed = 102,
    UnknownModel = 103,
    AttestationExpired = 104,
    BadParams = 105,
    NotGenuineWorker = 106,
    ChangeNotFound = 107,
    ChangeNotReady = 108,
    NotAChange = 109,
    NotActive = 200,
    WorkerSlashed = 201,
    NotUnbonding = 202,
    StakeLocked = 203,
    NotInitialized = 205,
    BadSignature = 206,
    WrongWorker = 207,
    ModelNotServed = 208,
    NotEquivocation = 210,
    UnknownReceiptKey = 212,
    KeyHistoryFull = 213,
    WrongRoot = 214,
    EscrowNotInitialized = 300,
    RelayerFeeTooHigh = 302,
    ExpiryInPast = 303,
    InsufficientFreeBalance = 304,
    AmountTooLarge = 305,
    ChannelNotFound = 306,
    NotChannelWorker = 307,
    SettlementTooLate = 308,
    AboveChannelAmount = 309,
    ExpiryTooFar = 315,
    TooManyChannels = 316,
    BadVoucherSignature = 317,
    WrongChannel = 318,
    CumulativeNotIncreasing = 319,
    WrongSeq = 320,
    WrongAccumulator = 321,
    WrongCost = 322,
    ChannelNotClosable = 323,
}

/** Worker status values (worker_data.status). */
export enum WorkerStatus {
    Uninitialized = 0,
    Active = 1,
    Unbonding = 2,
    Slashed = 3,
    Exited = 4,
}

/** TEE kinds (attestation.kind). */
export enum TeeKind {
    Simulated = 0,
    SevSnp = 1,
    Tdx = 2,
}

/** payout.reason values. */
export enum PayoutReason {
    StakeWithdrawn = 1,
    EscrowWithdrawal = 3,
    SlashReward = 5,
    SlashedStake = 6,
    ProtocolFees = 7,
    RegistrationRefund = 9,
    ChannelSettled = 10,
    UpdateRefused = 11,
    SettlementRefused = 12,
}

export const BPS = 10000n;
/** Amounts stay below 2^64 nanoTON. */
export const AMOUNT_LIMIT = 1n << 64n;
/** Untracked balance an Escrow keeps for storage; free = balance - locked - fees_due - this. */
export const ESCROW_STORAGE_RESERVE = 10_000_000n;
/** Most channels one Escrow holds open at once. */
export const MAX_OPEN_CHANNELS = 16;
/** Most receipt keys a Worker ever registers. */
export const MAX_RECEIPT_KEYS = 16;
/** Network global ids (config param 19). */
export const GLOBAL_ID_MAINNET = -239;
export const GLOBAL_ID_TESTNET = -3;
