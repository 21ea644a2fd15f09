//! Single sign-on: `/organization/sso` (an organisation's OpenID provider),
//! and the login through it: `/auth/sso/{org_slug}/start`, the provider's
//! `/auth/sso/callback`, and `/auth/sso/token`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::sso::{CallbackInput, Finished, SsoConfig, SsoInput, BINDING_COOKIE};
use ironcase_app::Principal;
use ironcase_domain::{Role, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::AppState;

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let limited = OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(callback))
        .routes(routes!(token))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::middleware::limit_auth_by_address));
    OpenApiRouter::new().merge(limited).routes(routes!(get_config, put_config, delete_config))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoConfigIn {
    /// The provider's issuer, exactly as its discovery document says
    /// (`https://` unless the server runs with `--sso-allow-insecure-issuer`).
    #[schema(min_length = 1, max_length = 2048)]
    pub issuer: String,
    #[schema(min_length = 1, max_length = 256)]
    pub client_id: String,
    /// Stored sealed and never returned; omitted: the one set before.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub client_secret: Option<String>,
    /// Scopes besides `openid` and `email` (`groups`, say).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub scopes: Vec<String>,
    /// E-mail domains whose accounts may sign in; empty: any.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub allowed_domains: Vec<String>,
    /// The ID token claim that lists the account's groups.
    #[serde(default = "groups")]
    #[schema(min_length = 1, max_length = 64)]
    pub group_claim: String,
    /// `{group: role}`: a built-in role, or one of the organisation's own by
    /// id or name. The highest role of the account's groups applies, at
    /// every login.
    #[serde(default)]
    pub role_mapping: BTreeMap<String, String>,
    /// The role of an account none of whose groups is mapped; null: such an
    /// account is refused.
    #[serde(default)]
    pub default_role: Option<String>,
    /// Make an account (and membership) at its first login.
    #[serde(default)]
    pub jit: bool,
    /// Members sign in only through the provider, but for the roles in
    /// `password_roles`.
    #[serde(default)]
    pub sso_required: bool,
    /// The roles that may still sign in with a password while
    /// `sso_required` (break-glass, should the provider fail); `[]`: none.
    #[serde(default = "owners")]
    #[schema(max_items = 6)]
    pub password_roles: Vec<Role>,
}

fn owners() -> Vec<Role> {
    vec![Role::Owner]
}

impl std::fmt::Debug for SsoConfigIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfigIn").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

fn groups() -> String {
    "groups".into()
}

#[derive(Serialize, ToSchema)]
pub struct SsoConfigOut {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub group_claim: String,
    pub role_mapping: BTreeMap<String, String>,
    pub default_role: Option<String>,
    pub jit: bool,
    pub sso_required: bool,
    pub password_roles: Vec<Role>,
    /// Where the provider sends browsers back (register it there).
    pub redirect_uri: String,
    pub updated_at: Timestamp,
}

fn config_out(c: SsoConfig) -> SsoConfigOut {
    SsoConfigOut {
        issuer: c.issuer,
        client_id: c.client_id,
        scopes: c.scopes,
        allowed_domains: c.allowed_domains,
        group_claim: c.group_claim,
        role_mapping: c.role_mapping,
        default_role: c.default_role,
        jit: c.jit,
        sso_required: c.sso_required,
        password_roles: c.password_roles,
        redirect_uri: c.redirect_uri,
        updated_at: c.updated_at,
    }
}

/// The organisation's OpenID provider (404 when it has none).
#[utoipa::path(get, path = "/organization/sso", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = SsoConfigOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_config(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<SsoConfigOut>> {
    let c = s.app.sso_config(&p, &meta).await?;
    Ok(axum::Json(config_out(c)))
}

/// Sets the organisation's OpenID provider (feature `sso`); its discovery
/// document must answer.
#[utoipa::path(put, path = "/organization/sso", tag = "organization", security(("bearer" = [])), request_body = SsoConfigIn,
    responses((status = 200, body = SsoConfigOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_config(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<SsoConfigIn>,
) -> ApiResult<axum::Json<SsoConfigOut>> {
    let input = SsoInput {
        issuer: b.issuer,
        client_id: b.client_id,
        client_secret: b.client_secret,
        scopes: b.scopes,
        allowed_domains: b.allowed_domains,
        group_claim: b.group_claim,
        role_mapping: b.role_mapping,
        default_role: b.default_role,
        jit: b.jit,
        sso_required: b.sso_required,
        password_roles: b.password_roles,
    };
    let c = s.app.set_sso_config(&p, &meta, input).await?;
    Ok(axum::Json(config_out(c)))
}

/// Removes the organisation's OpenID provider.
#[utoipa::path(delete, path = "/organization/sso", tag = "organization", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_config(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<StatusCode> {
    s.app.delete_sso_config(&p, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The cookie's attributes: only the SSO routes see it, only over https
/// when the server is reached that way.
fn cookie(s: &AppState, value: &str, max_age: i64) -> String {
    let secure = if s.app.settings().public_url.starts_with("https://") { "; Secure" } else { "" };
    format!("{BINDING_COOKIE}={value}; Path=/api/v1/auth/sso; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// Begins a login through the organisation's provider: a redirect to it.
/// `mode=api`: the callback answers a one-time code for
/// `POST /api/v1/auth/sso/token` (else it redirects to the console).
#[utoipa::path(get, path = "/auth/sso/{org_slug}/start", tag = "auth",
    params(("org_slug" = String, Path), ("mode" = Option<String>, Query, description = "`api` or `browser` (default)")),
    responses((status = 302, description = "to the provider; sets the `ironcase_sso` cookie"), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn start(State(s): State<AppState>, Meta(meta): Meta, Path(slug): Path<String>, mut q: QueryParams) -> ApiResult<Response> {
    let mode = q.parse("mode", |m| matches!(m, "api" | "browser").then(|| m == "api"), "`api` or `browser`");
    q.finish()?;
    let started = s.app.sso_start(&slug, mode.unwrap_or(false), &meta).await?;
    let headers = [(header::LOCATION, started.redirect), (header::SET_COOKIE, cookie(&s, &started.binding, 600))];
    Ok((StatusCode::FOUND, headers).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SsoCode {
    /// One-time, 60 seconds: `POST /api/v1/auth/sso/token`.
    pub code: String,
}

/// Where the provider sends the browser back. `mode=api` logins answer a
/// one-time code; browser logins are redirected to the console's `/sso`
/// with the code in the URL's fragment. A refusal is 401 `sso_failed`.
#[utoipa::path(get, path = "/auth/sso/callback", tag = "auth",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("iss" = Option<String>, Query),
        ("error" = Option<String>, Query, description = "the provider refused; other parameters a provider adds are ignored")),
    responses((status = 200, body = SsoCode), (status = 303, description = "to the console"), (status = 401, body = Problem),
        (status = 429, body = Problem)))]
pub async fn callback(State(s): State<AppState>, Meta(meta): Meta, headers: HeaderMap, mut q: QueryParams) -> ApiResult<Response> {
    let input = CallbackInput {
        code: q.str("code"),
        state: q.str("state"),
        iss: q.str("iss"),
        error: q.str("error"),
        binding: binding_cookie(&headers),
    };
    // Providers add parameters of their own (`session_state`, …).
    q.finish_ignoring_others()?;
    let clear = (header::SET_COOKIE, cookie(&s, "", 0));
    Ok(match s.app.sso_callback(input, &meta).await? {
        Finished::Api { code } => ([clear], axum::Json(SsoCode { code })).into_response(),
        Finished::Browser { redirect } => (StatusCode::SEE_OTHER, [clear, (header::LOCATION, redirect)]).into_response(),
    })
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == BINDING_COOKIE)
        .map(|(_, v)| v.to_owned())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoTokenRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub code: String,
}

/// The tokens of a finished single sign-on login, for its one-time code.
#[utoipa::path(post, path = "/auth/sso/token", tag = "auth", request_body = SsoTokenRequest,
    responses((status = 200, body = super::auth::TokenResponse), (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn token(State(s): State<AppState>, Meta(meta): Meta, Json(b): Json<SsoTokenRequest>) -> ApiResult<Response> {
    let tokens = s.app.sso_token(&b.code, &meta).await?;
    Ok(super::auth::tokens_with_device_cookie(tokens.into()))
}
