//! Workers the relayer has verified on-chain (a record survives restarts; live sessions do not).

use cocoon_sdk::clock::unix_now_i64;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, corrupt, hash32, money};
use crate::error::Result;

/// A worker as last verified on-chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// Worker contract address (raw).
    pub address: String,
    /// ed25519 receipt key.
    pub receipt_key: [u8; 32],
    /// X25519 encryption key.
    pub encryption_key: [u8; 32],
    /// Models it serves.
    pub models: Vec<u32>,
    /// nanoTON per input token.
    pub price_in: u64,
    /// nanoTON per output token.
    pub price_out: u64,
    /// sha256 of its evidence.
    pub evidence_hash: [u8; 32],
    /// TEE kind.
    pub attestation_kind: u8,
    /// Attestation expiry, unix time.
    pub expires_at: u32,
    /// Last time a session of it was verified, unix time.
    pub last_seen: i64,
}

fn worker_from_row(row: &AnyRow) -> Result<WorkerRow> {
    let models: String = row.try_get("models")?;
    let price_in: String = row.try_get("price_in")?;
    let price_out: String = row.try_get("price_out")?;
    let kind: i64 = row.try_get("attestation_kind")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    Ok(WorkerRow {
        address: row.try_get("address")?,
        receipt_key: hash32("workers", "receipt_key", row.try_get("receipt_key")?)?,
        encryption_key: hash32("workers", "encryption_key", row.try_get("encryption_key")?)?,
        models: serde_json::from_str(&models)
            .map_err(|e| corrupt("workers", "models", e.to_string()))?,
        price_in: money("workers", "price_in", &price_in)?,
        price_out: money("workers", "price_out", &price_out)?,
        evidence_hash: hash32("workers", "evidence_hash", row.try_get("evidence_hash")?)?,
        attestation_kind: u8::try_from(kind)
            .map_err(|_| corrupt("workers", "attestation_kind", kind.to_string()))?,
        expires_at: u32::try_from(expires_at)
            .map_err(|_| corrupt("workers", "expires_at", expires_at.to_string()))?,
        last_seen: row.try_get("last_seen")?,
    })
}

impl Store {
    /// Inserts or refreshes a verified worker.
    pub async fn upsert_worker(&self, w: &WorkerRow) -> Result<()> {
        let models = serde_json::to_string(&w.models).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO workers (address, receipt_key, encryption_key, models, price_in, price_out, evidence_hash, \
             attestation_kind, expires_at, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (address) DO UPDATE SET receipt_key = excluded.receipt_key, \
             encryption_key = excluded.encryption_key, models = excluded.models, price_in = excluded.price_in, \
             price_out = excluded.price_out, evidence_hash = excluded.evidence_hash, \
             attestation_kind = excluded.attestation_kind, expires_at = excluded.expires_at, \
             last_seen = excluded.last_seen",
        )
        .bind(&w.address)
        .bind(w.receipt_key.to_vec())
        .bind(w.encryption_key.to_vec())
        .bind(models)
        .bind(w.price_in.to_string())
        .bind(w.price_out.to_string())
        .bind(w.evidence_hash.to_vec())
        .bind(i64::from(w.attestation_kind))
        .bind(i64::from(w.expires_at))
        .bind(unix_now_i64())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A worker by address.
    pub async fn worker(&self, address: &str) -> Result<Option<WorkerRow>> {
        let row = sqlx::query("SELECT * FROM workers WHERE address = $1")
            .bind(address)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(worker_from_row).transpose()
    }

    /// Every worker ever verified, by address.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query("SELECT * FROM workers ORDER BY address")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(worker_from_row).collect()
    }
}
