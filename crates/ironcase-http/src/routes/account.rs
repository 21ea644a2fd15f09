//! `/auth/password` and `/auth/reauthenticate`: the caller's own password,
//! and proving again who holds the session before a sensitive action.

use axum::extract::State;
use axum::http::StatusCode;
use ironcase_app::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    // Both check a password: limited per address like a login.
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(reauthenticate))
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
