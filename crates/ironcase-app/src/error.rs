//! The one error type of the use cases. Each variant maps to one HTTP status
//! and one stable machine code in the HTTP layer.

use ironcase_domain::ValidationErrors;
use ironcase_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credential, or one that does not check out.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong e-mail or password (the same answer for both).
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("permission denied: {0}")]
    Forbidden(String),
    #[error("the organization is suspended")]
    OrganizationSuspended,
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(ValidationErrors),
    /// A request that conflicts with the current state; `code` is stable.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("the resource changed since it was read")]
    VersionConflict,
    #[error("this request needs an If-Match header")]
    PreconditionRequired,
    #[error("{0}")]
    InvalidTransition(String),
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: i64 },
    /// A search query that does not parse; `position` is a byte offset.
    #[error("{message} (at position {position})")]
    InvalidQuery { position: usize, message: String },
    /// A body larger than the limit that applies to it.
    #[error("the upload exceeds {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// The uploaded bytes do not have the SHA-256 the client declared.
    #[error("the file's SHA-256 is {actual}, not the declared {declared}")]
    HashMismatch { declared: String, actual: String },
    /// A stored file no longer matches what was stored; never served.
    #[error("stored evidence failed its integrity check")]
    IntegrityFailure,
    /// The resource existed and was removed; `code` is stable.
    #[error("{detail}")]
    Gone { code: &'static str, detail: String },
    /// A create the organisation's plan has no room for.
    #[error("the {quota} quota is used up ({used} of {limit})")]
    QuotaExceeded { quota: &'static str, limit: u64, used: u64 },
    /// A feature the organisation's plan does not include.
    #[error("the plan does not include {0}")]
    FeatureNotInPlan(&'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("service unavailable")]
    Unavailable,
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(what) => AppError::Conflict { code: "conflict", detail: format!("already exists ({what})") },
            StoreError::Unavailable => AppError::Unavailable,
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ValidationErrors> for AppError {
    fn from(e: ValidationErrors) -> Self {
        AppError::Validation(e)
    }
}
