//! `/auth/password` and `/auth/reauthenticate`: the caller's own password,
//! and proving again who holds the session before a sensitive action.
//! `/auth/password-reset`: a forgotten password, by e-mail; and an owner's
//! or admin's reset of a member's (`/members/{user_id}/password-reset`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{path_id, Json, Meta};
use crate::AppState;

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    // Both check a password: limited per address like a login.
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(reauthenticate))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(member_reset))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::middleware::limit_auth_by_address))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters and not a common password (no other rules).
    #[schema(min_length = 12)]
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// The account's other sessions, in every organisation, that ended.
    pub sessions_ended: usize,
}

/// Changes the caller's password. Every other session of the account ends;
/// this one stays.
#[utoipa::path(post, path = "/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 200, body = PasswordChanged), (status = 401, body = Problem, description = "the current password is wrong"),
        (status = 403, body = Problem, description = "an API key"), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn change_password(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<PasswordChange>,
) -> ApiResult<axum::Json<PasswordChanged>> {
    let sessions_ended = s.app.change_password(&p, &meta, b.current_password, b.new_password).await?;
    Ok(axum::Json(PasswordChanged { sessions_ended }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauthentication {
    pub password: String,
    /// A current TOTP code: required when the account has a second factor.
    #[serde(default)]
    pub code: Option<String>,
}

impl std::fmt::Debug for Reauthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauthentication").finish_non_exhaustive()
    }
}

/// Proves again who holds this session; sensitive actions (API keys,
/// members and roles, security settings, exports, plans) need that within
/// the last 10 minutes, else 403 `reauthentication_required`.
#[utoipa::path(post, path = "/auth/reauthenticate", tag = "auth", security(("bearer" = [])), request_body = Reauthentication,
    responses((status = 204), (status = 401, body = Problem, description = "a wrong password or code"),
        (status = 403, body = Problem, description = "an API key"), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn reauthenticate(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<Reauthentication>,
) -> ApiResult<StatusCode> {
    s.app.reauthenticate(&p, &meta, b.password, b.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetRequested {
    /// The same whether an account has the address or not.
    pub message: String,
}

/// Asks for a password reset link by e-mail. The answer is the same whether
/// an account has the address or not; at most three links an hour per
/// account, each valid 30 minutes, once. Without an SMTP server: 409
/// `email_unavailable` (an owner or admin resets passwords).
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = ResetRequested), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn request_reset(
    State(s): State<AppState>,
    Meta(meta): Meta,
    Json(b): Json<ResetRequest>,
) -> ApiResult<(StatusCode, axum::Json<ResetRequested>)> {
    s.app.request_password_reset(&b.email, &meta).await?;
    let message = "if an account has this address, a link to reset its password is on its way".to_owned();
    Ok((StatusCode::ACCEPTED, axum::Json(ResetRequested { message })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token of the link (`icp_…`).
    pub token: String,
    #[schema(min_length = 12)]
    pub new_password: String,
}

impl std::fmt::Debug for ResetConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetConfirm").finish_non_exhaustive()
    }
}

/// Sets a new password with a reset link's token; every session of the
/// account ends. An unknown, used or expired token is 404.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn confirm_reset(State(s): State<AppState>, Meta(meta): Meta, Json(b): Json<ResetConfirm>) -> ApiResult<StatusCode> {
    s.app.confirm_password_reset(&b.token, b.new_password, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MemberReset {
    /// The link went to the member by e-mail.
    pub emailed: bool,
    /// Without an SMTP server: the link's token, shown only now, for the
    /// member (`POST /api/v1/auth/password-reset/confirm`).
    pub token: Option<String>,
    pub url: Option<String>,
    pub expires_at: Option<ironcase_domain::Timestamp>,
}

/// Resets a member's password (owners and admins, over members of no higher
/// role): a link for the member, e-mailed or shown once. Refused with 409
/// `account_shared` for an account that belongs to other organisations too,
/// unless the caller is a platform operator.
#[utoipa::path(post, path = "/members/{user_id}/password-reset", tag = "organization", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = MemberReset), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 429, body = Problem)))]
pub async fn member_reset(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<MemberReset>> {
    let out = match s.app.member_password_reset(&p, &meta, path_id(&user_id)?).await? {
        None => MemberReset { emailed: true, token: None, url: None, expires_at: None },
        Some(l) => MemberReset { emailed: false, token: Some(l.token), url: Some(l.url), expires_at: Some(l.expires_at) },
    };
    Ok(axum::Json(out))
}
