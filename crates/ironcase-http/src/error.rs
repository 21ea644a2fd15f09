//! RFC 9457 problem+json errors with stable machine codes. A 5xx never carries
//! its cause: that is logged with the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::AppError;
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
    /// Stable, machine-readable reason, e.g. `version_conflict`.
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

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<i64>,
    pub position: Option<usize>,
    /// Boxed: errors travel in `Result`s, which should stay small.
    pub extra: Box<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), errors: Vec::new(), retry_after: None, position: None, extra: Default::default() }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            detail: "the request has invalid fields".into(),
            errors,
            retry_after: None,
            position: None,
            extra: Default::default(),
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        use StatusCode as S;
        match e {
            AppError::Unauthenticated => ApiError::new(S::UNAUTHORIZED, "unauthenticated", "a valid bearer token or API key is required"),
            AppError::InvalidCredentials => ApiError::new(S::UNAUTHORIZED, "invalid_credentials", "invalid e-mail or password"),
            AppError::Forbidden(d) => ApiError::new(S::FORBIDDEN, "forbidden", d),
            AppError::OrganizationSuspended => ApiError::new(S::FORBIDDEN, "organization_suspended", "the organization is suspended"),
            AppError::NotFound => ApiError::not_found(),
            AppError::Validation(v) => ApiError::validation(v.0),
            AppError::Conflict { code, detail } => ApiError::new(S::CONFLICT, code, detail),
            AppError::VersionConflict => {
                ApiError::new(S::PRECONDITION_FAILED, "version_conflict", "the resource changed since it was read; fetch it again")
            }
            AppError::PreconditionRequired => {
                ApiError::new(S::PRECONDITION_REQUIRED, "precondition_required", "send If-Match with the ETag you read")
            }
            AppError::InvalidTransition(d) => ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_transition", d),
            AppError::TooManyAttempts { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(S::TOO_MANY_REQUESTS, "rate_limited", "too many failed attempts; try again later")
            },
            AppError::PayloadTooLarge { limit } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the file is larger than the limit of {limit} bytes"))
            }
            AppError::HashMismatch { declared, actual } => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                format!("the uploaded file's SHA-256 is {actual}, not the declared {declared}; nothing was kept"),
            ),
            AppError::IntegrityFailure => ApiError::new(
                S::INTERNAL_SERVER_ERROR,
                "integrity_failure",
                "the stored file no longer matches its recorded hash; it was not served and the failure was recorded",
            ),
            AppError::Gone { code, detail } => ApiError::new(S::GONE, code, detail),
            AppError::QuotaExceeded { quota, limit, used } => {
                let mut e = ApiError::new(
                    S::FORBIDDEN,
                    "quota_exceeded",
                    format!("the organization's {quota} quota is used up ({used} of {limit}); its plan decides the limit"),
                );
                e.extra.insert("quota".into(), quota.into());
                e.extra.insert("limit".into(), limit.into());
                e.extra.insert("used".into(), used.into());
                e
            }
            AppError::FeatureNotInPlan(feature) => {
                let mut e =
                    ApiError::new(S::FORBIDDEN, "feature_not_in_plan", format!("the organization's plan does not include {feature}"));
                e.extra.insert("feature".into(), feature.into());
                e
            }
            AppError::BadRequest(d) => ApiError::new(S::BAD_REQUEST, "bad_request", d),
            AppError::InvalidQuery { position, message } => ApiError {
                position: Some(position),
                ..ApiError::new(S::BAD_REQUEST, "invalid_query", format!("{message} (at position {position})"))
            },
            AppError::Unavailable => ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", "the service is shutting down or overloaded"),
            AppError::Internal(cause) => {
                tracing::error!(request_id = current_request_id(), cause = %cause, "internal error");
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred; quote the request id when reporting it")
            }
        }
    }
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("https://ironcase.dev/problems/{}", self.code.replace('_', "-")),
            title: title(self.status),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            request_id: current_request_id(),
            errors: self.errors,
            position: self.position,
            extra: *self.extra,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (self.status, bytes).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
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
