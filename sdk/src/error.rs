//! The sdk's top-level error: one variant per area, each wrapping that area's own error enum.
//!
//! Functions inside an area return the area's error ([`crate::tlb::TlbError`],
//! [`crate::units::UnitsError`], ...); code that spans areas (contract clients, the CLI) returns
//! this one and converts with `?`.

use crate::attest::AttestError;
use crate::chain::ChainError;
use crate::client::ClientError;
use crate::contracts::ContractError;
use crate::job::JobError;
use crate::receipt::ReceiptError;
use crate::seal::SealError;
use crate::tlb::TlbError;
use crate::units::UnitsError;
use crate::wallet::WalletError;

/// Any error of the sdk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Encoding or decoding a TL-B value failed.
    #[error(transparent)]
    Tlb(#[from] TlbError),
    /// A TON amount could not be parsed.
    #[error(transparent)]
    Units(#[from] UnitsError),
    /// A chain call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A wallet operation failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// A contract operation failed.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Attestation evidence or policy check failed.
    #[error(transparent)]
    Attest(#[from] AttestError),
    /// Sealing or opening a sealed message failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A receipt is malformed or does not check.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// A job request or output payload is malformed or out of range.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A client API operation (worker choice, job, receipt, settlement) failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Result with the sdk's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
