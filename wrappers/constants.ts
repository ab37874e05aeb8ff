// Opcodes, exit codes and protocol constants of the Cocoon contracts.
// Mirrors contracts/schema.tlb, contracts/errors.tolk and contracts/constants.tolk; the Rust sdk
// mirrors this file. A jest test checks that errors.tolk and this file agree.

/** 32-bit opcodes, by TL-B constructor name. */
export const Op = {
    // to Root
    registerWorker: 0xc0c00101,
    updateWorker: 0xc0c00102,
    createEscrow: 0xc0c00103,
    setParams: 0xc0c00110,
    setAllowedKinds: 0xc0c00111,
    addMeasurement: 0xc0c00112,
    removeMeasurement: 0xc0c00113,
    setModel: 0xc0c00114,
    removeModel: 0xc0c00115,
    setCodes: 0xc0c00116,
    transferOwnership: 0xc0c00117,
    acceptOwnership: 0xc0c00118,
    // to Worker
    workerInit: 0xc0c00201,
    workerUpdate: 0xc0c00202,
    submitReceipts: 0xc0c00203,
    payWorker: 0xc0c00204,
    reportEquivocation: 0xc0c00205,
    topUpStake: 0xc0c00206,
    unbond: 0xc0c00207,
    withdrawStake: 0xc0c00208,
    withdrawEarnings: 0xc0c00209,
    // to Escrow
    escrowInit: 0xc0c00301,
    deposit: 0xc0c00302,
    openJob: 0xc0c00303,
    settle: 0xc0c00304,
    expireJob: 0xc0c00305,
    withdraw: 0xc0c00306,
    close: 0xc0c00307,
    collectFees: 0xc0c00308,
    // to wallets
    jobOpened: 0xc0c00401,
    relayerFee: 0xc0c00402,
    payout: 0xc0c00406,
    excesses: 0xd53276db,
    // external-out logs
    logSettled: 0xc0c00501,
    logReceiptSkipped: 0xc0c00502,
    logJobExpired: 0xc0c00503,
    logSlashed: 0xc0c00504,
} as const;

/** Domain tag of receipt_body ("rcpt"). */
export const RECEIPT_TAG = 0x72637074;

/** Exit codes (64..2048); see contracts/errors.tolk for each meaning. */
export enum Err {
    UnknownOp = 64,
    NotOwner = 65,
    NotRoot = 66,
    NotPendingOwner = 67,
    NotEnoughValue = 68,

    StakeTooLow = 100,
    TeeKindNotAllowed = 101,
    MeasurementNotAllowed = 102,
    UnknownModel = 103,
    AttestationExpired = 104,
    BadParams = 105,

    NotActive = 200,
    WorkerSlashed = 201,
    NotUnbonding = 202,
    StakeLocked = 203,
    InsufficientEarnings = 204,
    NotInitialized = 205,
    BadSignature = 206,
    WrongWorker = 207,
    ModelNotServed = 208,
    WrongCost = 209,
    NotEquivocation = 210,
    BatchTooLarge = 211,

    EscrowNotInitialized = 300,
    JobIdNotIncreasing = 301,
    RelayerFeeTooHigh = 302,
    DeadlineInPast = 303,
    InsufficientFreeBalance = 304,
    MaxCostTooLarge = 305,
    JobNotFound = 306,
    NotGenuineWorker = 307,
    SettlementTooLate = 308,
    CostAboveMax = 309,
    WrongModel = 310,
    WrongInput = 311,
    WrongWorkerForJob = 312,
    JobNotExpired = 313,
    OpenJobsExist = 314,
}

/** Worker status values (worker_data.status). */
export enum WorkerStatus {
    Uninitialized = 0,
    Active = 1,
    Unbonding = 2,
    Slashed = 3,
    Exited = 4,
}

/** TEE kinds (attestation.kind); Root allows kind k when bit (1 << k) of allowed_kinds is set. */
export enum TeeKind {
    Simulated = 0,
    SevSnp = 1,
    Tdx = 2,
}

/** payout.reason values. */
export enum PayoutReason {
    StakeWithdrawn = 1,
    EarningsWithdrawn = 2,
    EscrowWithdrawal = 3,
    EscrowClosed = 4,
    SlashReward = 5,
    SlashedStake = 6,
    ProtocolFees = 7,
    RegistrationRefund = 9,
}

/** Basis-point denominator: 10000 bps = 100 %. */
export const BPS = 10000n;

// Value requirements (nanoTON). Mirrored in contracts/constants.tolk; pinned by the gas tests.
/** RegisterWorker must carry at least stake + REGISTER_GAS. */
export const REGISTER_GAS = 50_000_000n;
/** SubmitReceipts must carry at least SUBMIT_BASE_GAS + count * SUBMIT_PER_RECEIPT. */
export const SUBMIT_BASE_GAS = 10_000_000n;
export const SUBMIT_PER_RECEIPT = 15_000_000n;
/** Value a Worker attaches to each forwarded settle; its leftover ends on the Worker. */
export const SETTLE_VALUE = 10_000_000n;
/** Untracked balance an Escrow keeps for storage; free = balance - locked - fees_due - this. */
export const ESCROW_STORAGE_RESERVE = 10_000_000n;
/** Largest `count` of one SubmitReceipts batch. */
export const MAX_BATCH = 100;
