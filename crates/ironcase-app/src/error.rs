//! The one error type of the use cases, and the one list of the machine codes
//! an error answer can carry ([`ErrorCode`]): each code has its HTTP status and
//! its meaning here, and the README's list and the OpenAPI document's problem
//! schema are made from this list (a test keeps the README equal to it).

use ironcase_domain::ValidationErrors;
use ironcase_store::{StoreError, Taken};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// Every stable machine code of an error answer (`code` of a
        /// problem+json body).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the README's list.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status every answer with this code has.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// What the code means, for people.
            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }
        }
    };
}

error_codes! {
    MalformedJson = "malformed_json", 400, "the body is not JSON";
    MalformedMultipart = "malformed_multipart", 400, "the multipart body is malformed or ended early";
    InvalidQuery = "invalid_query", 400, "the search query does not parse (`position`: the byte offset of the problem)";
    DigestMismatch = "digest_mismatch", 400, "the body's digest is not the `Content-Digest` sent, or no algorithm of it is supported (sha-256, sha-512)";
    BadRequest = "bad_request", 400, "the request cannot be read (a body cut short, say)";
    Unauthenticated = "unauthenticated", 401, "no credential, or one that is expired, revoked or unknown";
    InvalidCredentials = "invalid_credentials", 401, "wrong e-mail or password (the same answer for both)";
    InvalidMfaCode = "invalid_mfa_code", 401, "the second factor's code is wrong or was already used (each code works once)";
    MfaChallengeInvalid = "mfa_challenge_invalid", 401, "the login challenge is unknown, expired or spent: log in again";
    SsoFailed = "sso_failed", 401, "a single sign-on login did not complete (`detail` says why; every refusal is audited)";
    SignatureInvalid = "signature_invalid", 401, "the request's HTTP message signature does not verify, is stale, or was used before";
    Forbidden = "forbidden", 403, "the caller's role lacks the permission";
    OrganizationSuspended = "organization_suspended", 403, "the organisation is suspended or inactive";
    QuotaExceeded = "quota_exceeded", 403, "the plan has no room for this create (`quota`, `limit`, `used`)";
    FeatureNotInPlan = "feature_not_in_plan", 403, "the plan does not include the feature (`feature`)";
    MfaEnrollmentRequired = "mfa_enrollment_required", 403, "the organisation requires a second factor and the session may only enrol one";
    SsoRequired = "sso_required", 403, "the organisation requires single sign-on: password logins are kept only for the roles it names (break-glass)";
    SignatureRequired = "signature_required", 403, "this API key must sign sensitive requests (RFC 9421 over @method, @target-uri, content-digest)";
    IpNotAllowed = "ip_not_allowed", 403, "the organisation's (or the API key's) allow-list does not include the client's address";
    ReauthenticationRequired = "reauthentication_required", 403, "a sensitive action needs the session to have proved its identity recently: POST /api/v1/auth/reauthenticate";
    OriginNotAllowed = "origin_not_allowed", 403, "a WebSocket from an origin that is not allowed";
    NotFound = "not_found", 404, "no such resource or route, or another organisation's";
    MethodNotAllowed = "method_not_allowed", 405, "the route does not take this method";
    Conflict = "conflict", 409, "the request conflicts with what is stored";
    SlugTaken = "slug_taken", 409, "another organisation has this slug";
    EmailTaken = "email_taken", 409, "another account has this e-mail address";
    AlreadyMember = "already_member", 409, "the account is already a member";
    LastOwner = "last_owner", 409, "an organisation keeps at least one owner";
    OwnOrganization = "own_organization", 409, "an operator cannot suspend or delete their own organisation";
    HasChildren = "has_children", 409, "the organisation has organisations under it";
    NotASession = "not_a_session", 409, "logout needs a session's access token, not an API key";
    MfaAlreadyEnabled = "mfa_already_enabled", 409, "the account already has an authenticator";
    MfaNotEnrolled = "mfa_not_enrolled", 409, "the account has no authenticator (or no enrolment to confirm)";
    EmailUnavailable = "email_unavailable", 409, "this server sends no e-mail (no SMTP server configured): an owner or admin resets passwords";
    AccountShared = "account_shared", 409, "the account belongs to other organisations too: only the account holder (by e-mail) or a platform operator resets its password";
    RoleInUse = "role_in_use", 409, "members, API keys or pending invitations hold the role";
    WouldLockOut = "would_lock_out", 409, "the allow-list would exclude the caller's own address; send `confirm: true` to apply it anyway";
    NoParent = "no_parent", 409, "the organisation has no parent to grant access to";
    AlertPromoted = "alert_promoted", 409, "the alert was already promoted into an incident (`detail` names it): triage goes on there";
    EvidenceDeleted = "evidence_deleted", 410, "the evidence was deleted; its record and custody remain";
    ArchiveGone = "archive_gone", 410, "a data-subject archive is downloaded once, within 7 days";
    VersionConflict = "version_conflict", 412, "the resource changed since the `If-Match` version was read";
    PayloadTooLarge = "payload_too_large", 413, "the body or file is larger than its limit";
    UnsupportedMediaType = "unsupported_media_type", 415, "the body is not of the content type the route takes";
    ValidationFailed = "validation_failed", 422, "fields or parameters are invalid (`errors`: each field and why)";
    InvalidTransition = "invalid_transition", 422, "the workflow does not allow this status change";
    PartsOutOfOrder = "parts_out_of_order", 422, "an upload's parts are not `metadata` then `file`, and nothing else";
    HashMismatch = "hash_mismatch", 422, "the uploaded file's SHA-256 is not the one declared; nothing was kept";
    UpgradeRequired = "upgrade_required", 426, "the route speaks the WebSocket protocol only";
    PreconditionRequired = "precondition_required", 428, "the change needs `If-Match` with the ETag read";
    RateLimited = "rate_limited", 429, "a rate limit or the login throttle refused the request (`Retry-After`)";
    Internal = "internal", 500, "a fault of the server; the cause is logged with the request id, never sent";
    IntegrityFailure = "integrity_failure", 500, "stored evidence no longer matches its hash; it was not served";
    Unavailable = "unavailable", 503, "the database is unreachable, stalled or too slow, or the service is shutting down; try again (after Retry-After)";
}

impl ErrorCode {
    /// The README's list of codes: one row per code.
    pub fn markdown_table() -> String {
        let mut t = String::from("| code | status | meaning |\n|---|---|---|\n");
        for c in ErrorCode::ALL {
            t.push_str(&format!("| `{}` | {} | {} |\n", c.as_str(), c.status(), c.meaning()));
        }
        t
    }
}

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
    /// A request that conflicts with the current state (a 409 code).
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// A refusal with a code of its own (its status is the code's).
    #[error("{detail}")]
    Refused { code: ErrorCode, detail: String },
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
    /// The resource existed and was removed (a 410 code).
    #[error("{detail}")]
    Gone { code: ErrorCode, detail: String },
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
            // The constraint's name stays here: a client learns what was
            // taken, in words, and never the schema.
            StoreError::Conflict(_) => {
                let (code, detail) = match e.taken() {
                    Some(Taken::Slug) => (ErrorCode::SlugTaken, "another organization has this slug"),
                    Some(Taken::Email) => (ErrorCode::EmailTaken, "another account has this e-mail address"),
                    Some(Taken::Membership) => (ErrorCode::AlreadyMember, "this user is already a member"),
                    None => (ErrorCode::Conflict, "the request conflicts with what is already stored"),
                };
                AppError::Conflict { code, detail: detail.to_owned() }
            }
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
