//! `/auth/sessions`: the caller's own sessions; `/members/{user_id}/sessions`:
//! a member's, for owners and admins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::account::SessionView;
use ironcase_app::Principal;
use ironcase_domain::{SessionId, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{path_id, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(end)).routes(routes!(end_others)).routes(routes!(member_list, member_end))
}

#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    pub id: SessionId,
    pub created_at: Timestamp,
    /// The login, or the last refresh.
    pub last_seen_at: Timestamp,
    /// When it ends at the latest.
    pub expires_at: Timestamp,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// How it proved itself: `password`, `mfa`.
    pub method: String,
    /// The session of this request.
    pub current: bool,
}

impl From<SessionView> for SessionOut {
    fn from(v: SessionView) -> Self {
        let d = v.detail;
        SessionOut {
            id: d.session.id,
            created_at: d.session.created_at,
            last_seen_at: d.last_seen_at,
            expires_at: d.session.expires_at,
            source_ip: d.origin.source_ip,
            user_agent: d.origin.user_agent,
            method: d.origin.method,
            current: v.current,
        }
    }
}

/// The caller's live sessions in this organisation, oldest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<SessionOut>), (status = 403, body = Problem, description = "an API key")))]
pub async fn list(State(s): State<AppState>, p: Principal, mut q: QueryParams) -> ApiResult<axum::Json<PageOut<SessionOut>>> {
    let (after, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.my_sessions(&p, after, size).await?.into()))
}

/// Ends one of the caller's sessions (this one too, like a logout).
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn end(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.end_my_session(&p, &meta, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member's live sessions here (owners and admins).
#[utoipa::path(get, path = "/members/{user_id}/sessions", tag = "organization", security(("bearer" = [])),
    params(("user_id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<SessionOut>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn member_list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<SessionOut>>> {
    let user = super::members::user_id(&id)?;
    let (after, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.member_sessions(&p, &meta, user, after, size).await?.into()))
}

/// Ends every session of a member here (owners and admins).
#[utoipa::path(delete, path = "/members/{user_id}/sessions", tag = "organization", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = SessionsEnded), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn member_end(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SessionsEnded>> {
    let user = super::members::user_id(&id)?;
    Ok(axum::Json(SessionsEnded { sessions_ended: s.app.end_member_sessions(&p, &meta, user).await? }))
}

#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: usize,
}

/// Ends every session of the caller here but this one.
#[utoipa::path(post, path = "/auth/sessions/revoke-others", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SessionsEnded), (status = 403, body = Problem)))]
pub async fn end_others(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<SessionsEnded>> {
    Ok(axum::Json(SessionsEnded { sessions_ended: s.app.end_my_other_sessions(&p, &meta).await? }))
}
