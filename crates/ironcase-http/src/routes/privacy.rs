//! `/privacy/requests`: data-subject access requests and their archives.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::page::parse_keyset;
use ironcase_app::privacy::{Kind, Subject};
use ironcase_app::store::privacy::RequestRow;
use ironcase_app::{AppError, Principal};

use ironcase_domain::{PrivacyRequestId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(get)).routes(routes!(archive))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectIn {
    /// A member of the organisation.
    #[serde(default)]
    pub account_id: Option<UserId>,
    /// Anyone, by e-mail address (a member's account is found by it).
    #[serde(default)]
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

/// What a request asks for: `access` (everything held about the subject,
/// as a machine-readable archive) or `erasure` (their personal data
/// erased: see `POST /privacy/requests`).
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    Erasure,
}

impl From<RequestKind> for Kind {
    fn from(k: RequestKind) -> Kind {
        match k {
            RequestKind::Access => Kind::Access,
            RequestKind::Erasure => Kind::Erasure,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type")]
    pub kind: RequestKind,
    /// One of `account_id` and `email`.
    pub subject: SubjectIn,
}

#[derive(Serialize, ToSchema)]
pub struct RequestOut {
    pub id: PrivacyRequestId,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_account_id: Option<UserId>,
    pub subject_email: Option<String>,
    /// `completed` once answered.
    pub status: String,
    pub requested_by: Option<String>,
    pub created_at: Timestamp,
    /// 30 days after it was made.
    pub due_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// The archive's SHA-256 (hex), to check the download against.
    pub archive_sha256: Option<String>,
    pub archive_expires_at: Option<Timestamp>,
    pub downloaded_at: Option<Timestamp>,
}

impl From<RequestRow> for RequestOut {
    fn from(r: RequestRow) -> Self {
        RequestOut {
            id: r.id,
            kind: r.kind,
            subject_account_id: r.subject_id,
            subject_email: r.subject_email,
            status: r.status,
            requested_by: r.requested_by,
            created_at: r.created_at,
            due_at: r.due_at,
            completed_at: r.completed_at,
            archive_sha256: r.archive_sha256,
            archive_expires_at: r.archive_expires_at,
            downloaded_at: r.downloaded_at,
        }
    }
}

/// Makes a data-subject request (owners and admins, with a recent sign-in),
/// answered at once. `access`: an archive of everything the organisation
/// holds about the subject, to download once within 7 days. `erasure`: the
/// subject's personal data in the audit log (addresses, user agents,
/// e-mail addresses) made unreadable for good by destroying their keys, the
/// log still verifying; a member is removed, their sessions and API keys
/// end, their comments stay with the author shown as erased, and an account
/// in no other organisation is pseudonymised. Not yourself; not the last
/// owner (409 `last_owner`).
#[utoipa::path(post, path = "/privacy/requests", tag = "organization", request_body = CreateRequest, security(("bearer" = [])),
    responses((status = 201, body = RequestOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateRequest>,
) -> ApiResult<(StatusCode, axum::Json<RequestOut>)> {
    let subject = Subject::one_of(b.subject.account_id, b.subject.email)?;
    Ok((StatusCode::CREATED, axum::Json(s.app.privacy_request_create(&p, &meta, b.kind.into(), subject).await?.into())))
}

/// The organisation's data-subject requests, newest first.
#[utoipa::path(get, path = "/privacy/requests", tag = "organization", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<RequestOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<RequestOut>>> {
    let (cursor, size) = q.page(parse_keyset::<PrivacyRequestId>, 50);
    q.finish()?;
    Ok(axum::Json(s.app.privacy_requests(&p, &meta, cursor, size).await?.into()))
}

fn request_id(raw: &str) -> Result<PrivacyRequestId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

#[utoipa::path(get, path = "/privacy/requests/{id}", tag = "organization", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RequestOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<RequestOut>> {
    Ok(axum::Json(s.app.privacy_request(&p, &meta, request_id(&id)?).await?.into()))
}

/// The request's archive (JSON), once: 410 `archive_gone` after it was
/// downloaded or expired.
#[utoipa::path(get, path = "/privacy/requests/{id}/archive", tag = "organization", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "application/json", body = Object), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 410, body = Problem)))]
pub async fn archive(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<Response> {
    let bytes = s.app.privacy_archive(&p, &meta, request_id(&id)?).await?;
    let mut res = bytes.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ironcase-subject-access.json\""));
    Ok(res)
}
