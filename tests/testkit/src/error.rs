//! The test kit's one error: an sdk error from any area, or localnet failing.

/// Why a test-kit helper failed.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// An sdk call failed (chain, wallet, contract, attestation, sealing, client).
    #[error(transparent)]
    Sdk(#[from] cocoon_sdk::Error),
    /// Localnet did not start or a dev endpoint (faucet, clock) failed.
    #[error("localnet: {0}")]
    Localnet(String),
    /// A socket of a fake peer or proxy failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Result of the test kit.
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;

macro_rules! via_sdk {
    ($($t:ty),*) => {$(
        impl From<$t> for TestkitError {
            fn from(e: $t) -> Self {
                Self::Sdk(e.into())
            }
        }
    )*};
}

via_sdk!(
    cocoon_sdk::chain::ChainError,
    cocoon_sdk::contracts::ContractError,
    cocoon_sdk::wallet::WalletError,
    cocoon_sdk::attest::AttestError,
    cocoon_sdk::tlb::TlbError,
    cocoon_sdk::seal::SealError,
    cocoon_sdk::client::ClientError
);
