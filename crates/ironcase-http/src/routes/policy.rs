//! `/organization/session-policy` and `/organization/ip-allowlist`: how long
//! the organisation's sessions last and where its credentials may be used.

use axum::extract::State;
use ironcase_app::policy::Timeouts;
use ironcase_app::store::org::SessionPolicy;
use ironcase_app::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_sessions, put_sessions))
        .routes(routes!(get_allowlist, put_allowlist))
        .routes(routes!(get_audit_reads, put_audit_reads))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPolicyIn {
    /// A session unused this long ends (300 to 86,400 s); null: the
    /// server's (1,800 s by default).
    #[serde(default)]
    #[schema(minimum = 300, maximum = 86400)]
    pub idle_timeout_secs: Option<i64>,
    /// A session ends this long after its login (900 s to 30 days); null:
    /// the server's (43,200 s by default).
    #[serde(default)]
    #[schema(minimum = 900, maximum = 2592000)]
    pub absolute_timeout_secs: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionPolicyOut {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
    /// Set by the organisation; false: the server's defaults.
    pub custom: bool,
}

impl From<Timeouts> for SessionPolicyOut {
    fn from(t: Timeouts) -> Self {
        SessionPolicyOut { idle_timeout_secs: t.idle_secs, absolute_timeout_secs: t.max_secs, custom: t.custom }
    }
}

/// The organisation's session timeouts.
#[utoipa::path(get, path = "/organization/session-policy", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = SessionPolicyOut), (status = 403, body = Problem)))]
pub async fn get_sessions(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<SessionPolicyOut>> {
    Ok(axum::Json(s.app.session_policy(&p, &meta).await?.into()))
}

/// Sets the organisation's session timeouts; live sessions follow at their
/// next refresh.
#[utoipa::path(put, path = "/organization/session-policy", tag = "organization", security(("bearer" = [])),
    request_body = SessionPolicyIn,
    responses((status = 200, body = SessionPolicyOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_sessions(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<SessionPolicyIn>,
) -> ApiResult<axum::Json<SessionPolicyOut>> {
    let policy = SessionPolicy { idle_secs: b.idle_timeout_secs, max_secs: b.absolute_timeout_secs };
    Ok(axum::Json(s.app.set_session_policy(&p, &meta, policy).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowListIn {
    /// IPv4 or IPv6 addresses and ranges (`192.0.2.0/24`), at most 100;
    /// empty: anywhere.
    #[schema(max_items = 100)]
    pub cidrs: Vec<String>,
    /// Apply a list that leaves out the address of this request.
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AllowListOut {
    /// The ranges, each as its network address and prefix.
    pub cidrs: Vec<String>,
}

/// The networks the organisation's members and API keys may call from.
#[utoipa::path(get, path = "/organization/ip-allowlist", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = AllowListOut), (status = 403, body = Problem)))]
pub async fn get_allowlist(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<AllowListOut>> {
    Ok(axum::Json(AllowListOut { cidrs: s.app.ip_allowlist(&p, &meta).await?.ranges() }))
}

/// Sets the networks the organisation's members and API keys may call from
/// (after trusted-proxy resolution); requests from elsewhere get 403
/// `ip_not_allowed`. A list that leaves out this request's own address is
/// refused with 409 `would_lock_out` unless `confirm` is true.
#[utoipa::path(put, path = "/organization/ip-allowlist", tag = "organization", security(("bearer" = [])), request_body = AllowListIn,
    responses((status = 200, body = AllowListOut), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put_allowlist(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<AllowListIn>,
) -> ApiResult<axum::Json<AllowListOut>> {
    Ok(axum::Json(AllowListOut { cidrs: s.app.set_ip_allowlist(&p, &meta, &b.cidrs, b.confirm).await?.ranges() }))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditReadsIo {
    /// Every read of an incident (one, a list, a search), its evidence and
    /// indicators is recorded in the audit log (the access logging HIPAA
    /// asks for). Off by default.
    pub enabled: bool,
}

/// Whether the organisation audits reads.
#[utoipa::path(get, path = "/organization/audit-reads", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = AuditReadsIo), (status = 403, body = Problem)))]
pub async fn get_audit_reads(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<AuditReadsIo>> {
    Ok(axum::Json(AuditReadsIo { enabled: s.app.audit_reads(&p, &meta).await? }))
}

/// Turns read auditing on or off (owners and admins, with a recent sign-in);
/// every credential follows at once.
#[utoipa::path(put, path = "/organization/audit-reads", tag = "organization", security(("bearer" = [])), request_body = AuditReadsIo,
    responses((status = 200, body = AuditReadsIo), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_audit_reads(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<AuditReadsIo>,
) -> ApiResult<axum::Json<AuditReadsIo>> {
    Ok(axum::Json(AuditReadsIo { enabled: s.app.set_audit_reads(&p, &meta, b.enabled).await? }))
}
