//! `/organization` and `/members`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::members::{Acceptance, NewMember};
use ironcase_app::page::parse_keyset;
use ironcase_app::store::invitation::InvitationRow;
use ironcase_app::store::org::{MemberRow, OrgRow};
use ironcase_app::Principal;
use ironcase_domain::{InvitationId, OrgId, Role, RoleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{path_id, Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(organization))
        .routes(routes!(usage))
        .routes(routes!(list, add))
        .routes(routes!(invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(set_role, remove))
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationOut {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub parent_id: Option<OrgId>,
    pub created_at: Timestamp,
}

impl From<OrgRow> for OrganizationOut {
    fn from(o: OrgRow) -> Self {
        OrganizationOut {
            id: o.id,
            slug: o.slug,
            name: o.name,
            plan: o.plan,
            status: o.status,
            parent_id: o.parent_id,
            created_at: o.created_at,
        }
    }
}

/// The caller's organisation.
#[utoipa::path(get, path = "/organization", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = OrganizationOut)))]
pub async fn organization(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<OrganizationOut>> {
    Ok(axum::Json(s.app.organization_get(&p, &meta).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    /// The built-in role, or the base of the organisation's own role.
    pub role: Role,
    /// The organisation's own role the member holds (`GET /roles`), if any.
    pub custom_role: Option<RoleId>,
    pub joined_at: Timestamp,
}

impl From<MemberRow> for MemberOut {
    fn from(m: MemberRow) -> Self {
        MemberOut { user_id: m.user_id, email: m.email, name: m.name, role: m.role, custom_role: m.custom_role, joined_at: m.joined_at }
    }
}

/// Members of the caller's organisation, oldest first.
#[utoipa::path(get, path = "/members", tag = "organization", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<MemberOut>)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<MemberOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.member_list(&p, &meta, cursor, size).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[schema(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+$")]
    pub email: String,
    /// A built-in role or one of the organisation's own, by id or name.
    #[schema(min_length = 1, max_length = 64)]
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationOut {
    pub id: InvitationId,
    pub email: String,
    pub role: Role,
    pub custom_role: Option<RoleId>,
    pub invited_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl From<InvitationRow> for InvitationOut {
    fn from(i: InvitationRow) -> Self {
        InvitationOut {
            id: i.id,
            email: i.email,
            role: i.role,
            custom_role: i.custom_role,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationCreated {
    pub invitation: InvitationOut,
    /// The invitation's secret, shown only now: the invitee sends it to
    /// `POST /api/v1/invitations/accept` (with their password, or the name and
    /// password of their new account). Valid for 7 days, once. Null when the
    /// server e-mailed the link to the address instead.
    pub token: Option<String>,
    /// The link went to the invited address by e-mail.
    pub emailed: bool,
}

/// Invites someone to join with a role. Nobody is added without accepting,
/// and the answer is the same whether an account has the address or not.
#[utoipa::path(post, path = "/members", tag = "organization", request_body = AddMember, security(("bearer" = [])),
    responses((status = 201, body = InvitationCreated), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<AddMember>,
) -> ApiResult<(StatusCode, axum::Json<InvitationCreated>)> {
    let (row, token) = s.app.member_invite(&p, &meta, NewMember { email: b.email, role: b.role }).await?;
    Ok((StatusCode::CREATED, axum::Json(InvitationCreated { invitation: row.into(), emailed: token.is_none(), token })))
}

/// Pending invitations, oldest first.
#[utoipa::path(get, path = "/invitations", tag = "organization", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<InvitationOut>)))]
pub async fn invitations(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<InvitationOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.invitation_list(&p, &meta, cursor, size).await?.into()))
}

/// Withdraws a pending invitation.
#[utoipa::path(delete, path = "/invitations/{id}", tag = "organization", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke_invitation(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.invitation_revoke(&p, &meta, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
    /// For a new account: the name to show.
    #[serde(default)]
    pub name: Option<String>,
    /// The password of the account that has the invited address, or of the
    /// new account (at least 12 characters).
    pub password: String,
}

impl std::fmt::Debug for AcceptInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptInvitation").field("name", &self.name).finish_non_exhaustive()
    }
}

#[derive(Serialize, ToSchema)]
pub struct Joined {
    pub organization: OrganizationOut,
    pub member: MemberOut,
}

/// Accepts an invitation (no credential: the token is one). An unknown, used,
/// withdrawn or expired token is 404; a wrong password for an existing
/// account, 401.
#[utoipa::path(post, path = "/invitations/accept", tag = "organization", request_body = AcceptInvitation,
    responses((status = 201, body = Joined), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn accept(
    State(s): State<AppState>,
    Meta(meta): Meta,
    Json(b): Json<AcceptInvitation>,
) -> ApiResult<(StatusCode, axum::Json<Joined>)> {
    let (o, m) = s.app.invitation_accept(&meta, Acceptance { token: b.token, name: b.name, password: b.password }).await?;
    Ok((StatusCode::CREATED, axum::Json(Joined { organization: o.into(), member: m.into() })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// A built-in role (`owner`, `admin`, `lead`, `senior_analyst`,
    /// `analyst`, `viewer`) or one of the organisation's own, by id or name.
    #[schema(min_length = 1, max_length = 64)]
    pub role: String,
}

pub(crate) fn user_id(raw: &str) -> ApiResult<UserId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Changes a member's role; their sessions here end at once.
#[utoipa::path(patch, path = "/members/{user_id}", tag = "organization", request_body = SetRole, security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = MemberOut), (status = 404, body = Problem), (status = 409, body = Problem, description = "`last_owner`")))]
pub async fn set_role(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<SetRole>,
) -> ApiResult<axum::Json<MemberOut>> {
    Ok(axum::Json(s.app.member_set_role(&p, &meta, user_id(&id)?, &b.role).await?.into()))
}

/// Removes a member; their sessions here end at once.
#[utoipa::path(delete, path = "/members/{user_id}", tag = "organization", security(("bearer" = [])),
    params(("user_id" = String, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.member_remove(&p, &meta, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct QuotaOut {
    pub quota: ironcase_domain::plan::Quota,
    /// `null`: unlimited.
    pub limit: Option<u64>,
    /// `null`: not metered here (a per-file limit, or a rate).
    pub used: Option<u64>,
    /// `used` as a percentage of `limit`, when both are known.
    pub utilization_percent: Option<f64>,
    /// When a periodic quota starts again.
    pub resets_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageOut {
    pub plan: ironcase_domain::plan::PlanName,
    pub quotas: Vec<QuotaOut>,
    pub features: std::collections::BTreeMap<ironcase_domain::plan::Feature, bool>,
}

/// The organisation's quotas (limit, use, utilization, reset) and features.
#[utoipa::path(get, path = "/organization/usage", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = UsageOut)))]
pub async fn usage(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<UsageOut>> {
    let u = s.app.usage(&p, &meta).await?;
    Ok(axum::Json(UsageOut {
        plan: u.plan,
        quotas: u
            .quotas
            .into_iter()
            .map(|q| QuotaOut {
                quota: q.quota,
                limit: q.limit,
                used: q.used,
                utilization_percent: match (q.used, q.limit) {
                    (Some(u), Some(l)) if l > 0 => Some((u as f64 * 10_000.0 / l as f64).round() / 100.0),
                    _ => None,
                },
                resets_at: q.resets_at,
            })
            .collect(),
        features: u.features.into_iter().collect(),
    }))
}
