-- Cocoon relayer schema (SQLite dialect; migrations/postgres holds the same schema for PostgreSQL).
-- u64 values (job ids, logical times) are stored bit-for-bit in signed 64-bit columns; money is
-- nanoTON as decimal TEXT (it may exceed i64). Only ciphertext is ever stored.

CREATE TABLE jobs (
    escrow           TEXT    NOT NULL,
    job_id           BIGINT  NOT NULL,
    escrow_owner     TEXT    NOT NULL,
    model_id         BIGINT  NOT NULL,
    max_cost         TEXT    NOT NULL,
    deadline         BIGINT  NOT NULL,
    input_commitment BLOB    NOT NULL,
    route_worker     TEXT,
    opened_lt        BIGINT  NOT NULL,
    state            TEXT    NOT NULL,
    reason           TEXT,
    worker           TEXT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (escrow, job_id)
);
CREATE INDEX jobs_by_state ON jobs (state, deadline);

CREATE TABLE sealed_inputs (
    escrow      TEXT   NOT NULL,
    job_id      BIGINT NOT NULL,
    ciphertext  BLOB   NOT NULL,
    candidates  TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (escrow, job_id),
    FOREIGN KEY (escrow, job_id) REFERENCES jobs (escrow, job_id)
);

CREATE TABLE workers (
    address         TEXT   PRIMARY KEY,
    receipt_key     BLOB   NOT NULL,
    encryption_key  BLOB   NOT NULL,
    models          TEXT   NOT NULL,
    price_in        TEXT   NOT NULL,
    price_out       TEXT   NOT NULL,
    evidence_hash   BLOB   NOT NULL,
    attestation_kind BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    first_seen      BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL
);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    worker       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    seqno        BIGINT,
    message      BLOB,
    msg_hash     BLOB,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    last_error   TEXT,
    tx_lt        BIGINT,
    tx_hash      BLOB,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX outbox_by_status ON outbox (status);

CREATE TABLE receipts (
    escrow      TEXT   NOT NULL,
    job_id      BIGINT NOT NULL,
    worker      TEXT   NOT NULL,
    receipt     BLOB   NOT NULL,
    cost        TEXT   NOT NULL,
    outbox_id   BIGINT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (escrow, job_id),
    FOREIGN KEY (escrow, job_id) REFERENCES jobs (escrow, job_id)
);
CREATE INDEX receipts_unbatched ON receipts (worker, outbox_id);

CREATE TABLE watcher_cursor (
    address TEXT   PRIMARY KEY,
    lt      BIGINT NOT NULL,
    hash    BLOB   NOT NULL
);
