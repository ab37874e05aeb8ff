//! Errors of the job payload formats.

/// Why a job payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The bytes are not the expected JSON shape.
    #[error("malformed job payload: {0}")]
    Malformed(String),
    /// The payload is larger than the format allows.
    #[error("job payload of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size seen.
        size: usize,
        /// Most allowed.
        limit: usize,
    },
    /// The payload speaks another format version.
    #[error("job payload version {0} is not supported (expected {expected})", expected = super::JOB_FORMAT_VERSION)]
    UnsupportedVersion(u16),
    /// A field is out of its allowed range.
    #[error("invalid job request: {0}")]
    Invalid(String),
    /// No model with this id or name is known.
    #[error("unknown model {0}")]
    UnknownModel(String),
}

/// Result with [`JobError`].
pub type Result<T, E = JobError> = std::result::Result<T, E>;
