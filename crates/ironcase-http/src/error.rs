//! RFC 9457 problem+json errors with stable machine codes. A 5xx never carries
//! its cause: that is logged with the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::{AppError, ErrorCode};
use ironcase_domain::FieldError;
use serde::Serialize;

tokio::task_local! {
    /// The current request's id, for error bodies and logs.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// The problem document every error answers with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable reason, e.g. `version_conflict`: one of
    /// `ErrorCode`'s, each with its own status.
    #[schema(schema_with = code_schema)]
    pub code: String,
    pub request_id: Option<String>,
    /// For `validation_failed`: each bad field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `invalid_query`: the byte offset of the problem in the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Facts particular to the code (`quota_exceeded`: quota, limit, used;
    /// `feature_not_in_plan`: feature).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The problem's `code`: an enum of every code there is.
fn code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .build()
}

#[derive(Debug)]
pub struct ApiError {
    /// The machine code; the status is the code's.
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<i64>,
    pub position: Option<usize>,
    /// Boxed: errors travel in `Result`s, which should stay small.
    pub extra: Box<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), errors: Vec::new(), retry_after: None, position: None, extra: Default::default() }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError { errors, ..ApiError::new(ErrorCode::ValidationFailed, "the request has invalid fields") }
    }

    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound, "no such resource")
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        use ErrorCode as C;
        match e {
            AppError::Unauthenticated => ApiError::new(C::Unauthenticated, "a valid bearer token or API key is required"),
            AppError::InvalidCredentials => ApiError::new(C::InvalidCredentials, "invalid e-mail or password"),
            AppError::Forbidden(d) => ApiError::new(C::Forbidden, d),
            AppError::OrganizationSuspended => ApiError::new(C::OrganizationSuspended, "the organization is suspended"),
            AppError::NotFound => ApiError::not_found(),
            AppError::Validation(v) => ApiError::validation(v.0),
            AppError::Conflict { code, detail } | AppError::Refused { code, detail } => ApiError::new(code, detail),
            AppError::VersionConflict => ApiError::new(C::VersionConflict, "the resource changed since it was read; fetch it again"),
            AppError::PreconditionRequired => ApiError::new(C::PreconditionRequired, "send If-Match with the ETag you read"),
            AppError::InvalidTransition(d) => ApiError::new(C::InvalidTransition, d),
            AppError::TooManyAttempts { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(C::RateLimited, "too many failed attempts; try again later")
            },
            AppError::PayloadTooLarge { limit } => {
                ApiError::new(C::PayloadTooLarge, format!("the file is larger than the limit of {limit} bytes"))
            }
            AppError::HashMismatch { declared, actual } => ApiError::new(
                C::HashMismatch,
                format!("the uploaded file's SHA-256 is {actual}, not the declared {declared}; nothing was kept"),
            ),
            AppError::IntegrityFailure => ApiError::new(
                C::IntegrityFailure,
                "the stored file no longer matches its recorded hash; it was not served and the failure was recorded",
            ),
            AppError::Gone { code, detail } => ApiError::new(code, detail),
            AppError::QuotaExceeded { quota, limit, used } => {
                let mut e = ApiError::new(
                    C::QuotaExceeded,
                    format!("the organization's {quota} quota is used up ({used} of {limit}); its plan decides the limit"),
                );
                e.extra.insert("quota".into(), quota.into());
                e.extra.insert("limit".into(), limit.into());
                e.extra.insert("used".into(), used.into());
                e
            }
            AppError::FeatureNotInPlan(feature) => {
                let mut e = ApiError::new(C::FeatureNotInPlan, format!("the organization's plan does not include {feature}"));
                e.extra.insert("feature".into(), feature.into());
                e
            }
            AppError::BadRequest(d) => ApiError::new(C::BadRequest, d),
            AppError::InvalidQuery { position, message } => {
                ApiError { position: Some(position), ..ApiError::new(C::InvalidQuery, format!("{message} (at position {position})")) }
            }
            AppError::Unavailable => ApiError {
                retry_after: Some(1),
                ..ApiError::new(C::Unavailable, "the database cannot be reached now, or the service is shutting down; try again")
            },
            AppError::Internal(cause) => {
                tracing::error!(request_id = current_request_id(), cause = %cause, "internal error");
                ApiError::new(C::Internal, "an internal error occurred; quote the request id when reporting it")
            }
        }
    }
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Problem {
            kind: format!("https://ironcase.dev/problems/{}", self.code.as_str().replace('_', "-")),
            title: title(status),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code.as_str().to_owned(),
            request_id: current_request_id(),
            errors: self.errors,
            position: self.position,
            extra: *self.extra,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (status, bytes).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
