//! `/auth`: login, refresh, logout, me (the second factor: `mfa.rs`).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::auth::{LoginInput, LoginOutcome, TokenPair};
use ironcase_app::Principal;
use ironcase_domain::{OrgId, Permission, Role, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let limited = OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(super::members::accept))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::middleware::limit_auth_by_address));
    OpenApiRouter::new().merge(limited).routes(routes!(logout)).routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// An organisation slug; without it, the user's first organisation.
    #[serde(default)]
    pub organization: Option<String>,
    /// The `device_token` of an earlier login to this account (or send it as
    /// the `ironcase_device` cookie): failed logins from elsewhere do not slow
    /// this client down.
    #[serde(default)]
    pub device_token: Option<String>,
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
    /// After a login: send it with the next logins to this account
    /// (`device_token`, or the `ironcase_device` cookie set with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

impl From<TokenPair> for TokenResponse {
    fn from(t: TokenPair) -> Self {
        TokenResponse {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            device_token: t.device_token,
        }
    }
}

const DEVICE_COOKIE: &str = "ironcase_device";

/// The device token a browser keeps as a cookie.
fn device_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(DEVICE_COOKIE)?.strip_prefix('=').map(str::to_owned))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// An account with MFA: no tokens yet, but a challenge for
/// `POST /auth/mfa/verify`.
#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single-use, for five minutes and five codes.
    pub challenge: String,
    /// What the verification takes: `totp`, `backup_code`.
    pub methods: Vec<&'static str>,
}

/// What a login answers: tokens, or (for an account with MFA) a challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    MfaRequired(MfaRequired),
}

/// Exchanges e-mail and password for tokens, or for a second-factor
/// challenge when the account has MFA.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(State(s): State<AppState>, Meta(meta): Meta, headers: HeaderMap, Json(body): Json<LoginRequest>) -> ApiResult<Response> {
    let device_token = body.device_token.or_else(|| device_cookie(&headers));
    let input = LoginInput { email: body.email, password: body.password, organization: body.organization, device_token };
    match s.app.login(input, &meta).await? {
        LoginOutcome::Tokens(t) => Ok(tokens_with_device_cookie(t.into())),
        LoginOutcome::MfaRequired(m) => {
            Ok(axum::Json(LoginResponse::MfaRequired(MfaRequired { mfa_required: true, challenge: m.challenge, methods: m.methods }))
                .into_response())
        }
    }
}

/// The tokens of a login, with its device token also set as a cookie.
pub(crate) fn tokens_with_device_cookie(tokens: TokenResponse) -> Response {
    let cookie = tokens.device_token.as_ref().and_then(|t| {
        HeaderValue::from_str(&format!("{DEVICE_COOKIE}={t}; Path=/api/v1/auth/login; Max-Age=31536000; HttpOnly; SameSite=Strict")).ok()
    });
    let mut res = axum::Json(tokens).into_response();
    if let Some(c) = cookie {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

/// Rotates a refresh token. A token presented twice ends its whole login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
pub async fn refresh(
    State(s): State<AppState>,
    Meta(meta): Meta,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    Ok(axum::Json(s.app.refresh(&body.refresh_token, &meta).await?.into()))
}

/// Ends the session: its access tokens stop working at once.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem, description = "`not_a_session`: an API key")))]
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
    /// The built-in role, or the base of the organisation's own role.
    pub role: Role,
    /// The organisation's own role the credential holds, if any.
    pub custom_role: Option<ironcase_domain::RoleId>,
    /// What the credential may do (its role's, custom or built in).
    pub permissions: Vec<Permission>,
    /// `user` or `api_key`.
    pub credential: &'static str,
    pub is_operator: bool,
    pub mfa: MeMfa,
}

/// The account's second factor.
#[derive(Serialize, ToSchema)]
pub struct MeMfa {
    /// A confirmed authenticator (TOTP).
    pub totp: bool,
    /// Backup codes not yet used.
    pub backup_codes_left: i64,
}

/// Who the credential belongs to, where it acts, and what it may do.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)))]
pub async fn me(State(s): State<AppState>, p: Principal) -> ApiResult<axum::Json<MeResponse>> {
    let me = s.app.me(&p).await?;
    Ok(axum::Json(MeResponse {
        user: MeUser { id: me.user.id, email: me.user.email, name: me.user.name },
        organization: MeOrganization { id: me.organization.id, slug: me.organization.slug, name: me.organization.name },
        role: me.role,
        custom_role: p.custom_role,
        permissions: p.grants.list().map(|(p, _)| p).collect(),
        credential: p.actor_kind(),
        is_operator: p.is_operator,
        mfa: MeMfa { totp: me.mfa_enabled, backup_codes_left: me.backup_codes_left },
    }))
}
