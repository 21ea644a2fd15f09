//! `/auth`: login, refresh, logout, me.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use ironcase_app::auth::{LoginInput, TokenPair};
use ironcase_app::Principal;
use ironcase_domain::{OrgId, Permission, Role, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let limited = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::middleware::limit_auth_by_address));
    Router::new().merge(limited).route("/auth/logout", post(logout)).route("/auth/me", get(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// An organisation slug; without it, the user's first organisation.
    #[serde(default)]
    pub organization: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("email", &self.email).finish_non_exhaustive()
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(t: TokenPair) -> Self {
        TokenResponse { access_token: t.access_token, refresh_token: t.refresh_token, token_type: "Bearer", expires_in: t.expires_in }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges e-mail and password for tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(State(s): State<AppState>, Meta(meta): Meta, Json(body): Json<LoginRequest>) -> ApiResult<axum::Json<TokenResponse>> {
    let input = LoginInput { email: body.email, password: body.password, organization: body.organization };
    Ok(axum::Json(s.app.login(input, &meta).await?.into()))
}

/// Rotates a refresh token. A token presented twice ends its whole login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
pub async fn refresh(
    State(s): State<AppState>,
    Meta(meta): Meta,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    Ok(axum::Json(s.app.refresh(&body.refresh_token, &meta).await?.into()))
}

/// Ends the session: its access tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<StatusCode> {
    s.app.logout(&p, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MeUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeOrganization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: MeUser,
    pub organization: MeOrganization,
    pub role: Role,
    pub permissions: Vec<Permission>,
    /// `user` or `api_key`.
    pub credential: &'static str,
    pub is_operator: bool,
}

/// Who the credential belongs to, where it acts, and what it may do.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)))]
pub async fn me(State(s): State<AppState>, p: Principal) -> ApiResult<axum::Json<MeResponse>> {
    let me = s.app.me(&p).await?;
    Ok(axum::Json(MeResponse {
        user: MeUser { id: me.user.id, email: me.user.email, name: me.user.name },
        organization: MeOrganization { id: me.organization.id, slug: me.organization.slug, name: me.organization.name },
        role: me.role,
        permissions: me.role.permissions().collect(),
        credential: p.actor_kind(),
        is_operator: p.is_operator,
    }))
}
