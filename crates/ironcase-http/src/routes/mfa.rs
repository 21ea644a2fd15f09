//! `/auth/mfa`: enrolling a TOTP authenticator, confirming it, backup codes,
//! turning it off, and the second step of a login.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ironcase_app::mfa::SecondFactor;
use ironcase_app::Principal;
use ironcase_domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let limited = OpenApiRouter::new()
        .routes(routes!(verify))
        .route_layer(axum::middleware::from_fn_with_state(state, crate::middleware::limit_auth_by_address));
    OpenApiRouter::new()
        .merge(limited)
        .routes(routes!(enroll))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(backup_codes))
        .routes(routes!(reset))
        .routes(routes!(get_policy, put_policy))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicy {
    /// Every member needs a second factor: one without logs in to a session
    /// that can only enrol one (API keys are not affected).
    pub mfa_required: bool,
}

/// Whether the organisation requires a second factor of its members.
#[utoipa::path(get, path = "/organization/mfa-policy", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = MfaPolicy), (status = 403, body = Problem)))]
pub async fn get_policy(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<MfaPolicy>> {
    Ok(axum::Json(MfaPolicy { mfa_required: s.app.mfa_policy(&p, &meta).await? }))
}

/// Requires (or stops requiring) a second factor of every member; sessions
/// follow at once.
#[utoipa::path(put, path = "/organization/mfa-policy", tag = "organization", security(("bearer" = [])), request_body = MfaPolicy,
    responses((status = 200, body = MfaPolicy), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_policy(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<MfaPolicy>,
) -> ApiResult<axum::Json<MfaPolicy>> {
    Ok(axum::Json(MfaPolicy { mfa_required: s.app.set_mfa_policy(&p, &meta, b.mfa_required).await? }))
}

/// An owner or admin removes a member's authenticator (a lost device): the
/// member logs in with the password again, and their sessions here end.
#[utoipa::path(delete, path = "/members/{user_id}/mfa", tag = "organization", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`mfa_not_enrolled`")))]
pub async fn reset(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.member_mfa_reset(&p, &meta, super::members::user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// The secret (base32), for authenticators that cannot scan: shown
    /// this once.
    pub secret: String,
    /// `otpauth://totp/Ironcase:{email}?secret=…&issuer=Ironcase`.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, as an SVG document.
    pub qr_svg: String,
}

/// Starts enrolling an authenticator (TOTP) for the caller's account: a new
/// secret, shown once. Confirm it with a first code.
#[utoipa::path(post, path = "/auth/mfa/totp", tag = "auth", security(("bearer" = [])),
    responses((status = 201, body = TotpEnrollment), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "an API key"), (status = 409, body = Problem, description = "`mfa_already_enabled`")))]
pub async fn enroll(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<Response> {
    let e = s.app.totp_enroll(&p, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(TotpEnrollment { secret: e.secret, otpauth_uri: e.uri, qr_svg: e.qr_svg })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The six digits the authenticator shows now.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten single-use codes for when the authenticator is not at hand:
    /// shown this once.
    pub backup_codes: Vec<String>,
}

/// Confirms the enrolment with a first code: MFA is on for the account, and
/// its backup codes are returned, once.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = BackupCodes), (status = 401, body = Problem, description = "`invalid_mfa_code`"),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "`mfa_not_enrolled`, `mfa_already_enabled`"),
        (status = 422, body = Problem)))]
pub async fn confirm(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CodeRequest>,
) -> ApiResult<axum::Json<BackupCodes>> {
    Ok(axum::Json(BackupCodes { backup_codes: s.app.totp_confirm(&p, &meta, &b.code).await? }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    pub password: String,
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

/// Turns the account's authenticator off: the password and a current code.
#[utoipa::path(post, path = "/auth/mfa/totp/disable", tag = "auth", security(("bearer" = [])), request_body = DisableRequest,
    responses((status = 204), (status = 401, body = Problem, description = "`invalid_credentials`, `invalid_mfa_code`"),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "`mfa_not_enrolled`"), (status = 422, body = Problem)))]
pub async fn disable(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Json(b): Json<DisableRequest>) -> ApiResult<StatusCode> {
    s.app.totp_disable(&p, &meta, b.password, &b.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new backup codes for a current code; the old ones stop working.
#[utoipa::path(post, path = "/auth/mfa/backup-codes", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = BackupCodes), (status = 401, body = Problem, description = "`invalid_mfa_code`"),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "`mfa_not_enrolled`"), (status = 422, body = Problem)))]
pub async fn backup_codes(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CodeRequest>,
) -> ApiResult<axum::Json<BackupCodes>> {
    Ok(axum::Json(BackupCodes { backup_codes: s.app.backup_codes_regenerate(&p, &meta, &b.code).await? }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The `challenge` the password step answered.
    pub challenge: String,
    /// A current code of the authenticator; or
    #[serde(default)]
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: Option<String>,
    /// one of the backup codes (each works once).
    #[serde(default)]
    pub backup_code: Option<String>,
}

/// The second step of a login to an account with MFA: the challenge and a
/// code (or a backup code) for the tokens. A challenge works once, for five
/// minutes and five codes; wrong codes count as failed logins.
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 200, body = super::auth::TokenResponse),
        (status = 401, body = Problem, description = "`invalid_mfa_code`, `mfa_challenge_invalid`"),
        (status = 422, body = Problem, description = "neither or both of `code` and `backup_code`"), (status = 429, body = Problem)))]
pub async fn verify(State(s): State<AppState>, Meta(meta): Meta, Json(b): Json<VerifyRequest>) -> ApiResult<Response> {
    let factor = match (b.code, b.backup_code) {
        (Some(c), None) => SecondFactor::Code(c),
        (None, Some(c)) => SecondFactor::BackupCode(c),
        _ => {
            let why = "give exactly one of `code` and `backup_code`";
            return Err(ApiError::validation(vec![FieldError { field: "code".into(), message: why.into() }]));
        }
    };
    let tokens = s.app.mfa_verify(&b.challenge, factor, &meta).await?;
    Ok(super::auth::tokens_with_device_cookie(tokens.into()))
}
