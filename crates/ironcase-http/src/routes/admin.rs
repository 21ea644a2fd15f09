//! `/admin/organizations`: platform operators only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::admin::NewOrganization;
use ironcase_app::page::parse_keyset;
use ironcase_app::Principal;
use ironcase_domain::plan::{OrgStatus, Overrides, PlanName};
use ironcase_domain::OrgId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::members::OrganizationOut;
use crate::error::{ApiResult, Problem};
use crate::extract::{path_id, Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(set_status)).routes(routes!(set_plan)).routes(routes!(offboard))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    pub email: String,
    pub name: String,
    /// Required when the e-mail is new.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    pub slug: String,
    #[serde(deserialize_with = "crate::extract::object")]
    pub owner: NewOwner,
    /// Without it, the configured default plan (enterprise unless configured).
    #[serde(default)]
    pub plan: Option<PlanName>,
    /// Changes to the plan's quotas and features; a quota of `null` is unlimited.
    #[serde(default, deserialize_with = "crate::extract::object")]
    pub overrides: Option<Overrides>,
    /// The parent organisation (an MSSP hosting this customer, say). The
    /// child decides whether the parent may read its data.
    #[serde(default)]
    pub parent_id: Option<OrgId>,
}

/// Creates an organisation with its owner.
#[utoipa::path(post, path = "/admin/organizations", tag = "admin", request_body = CreateOrganization, security(("bearer" = [])),
    responses((status = 201, body = OrganizationOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateOrganization>,
) -> ApiResult<(StatusCode, axum::Json<OrganizationOut>)> {
    let input = NewOrganization {
        name: b.name,
        slug: b.slug,
        owner_email: b.owner.email,
        owner_name: b.owner.name,
        owner_password: b.owner.password,
        plan: b.plan,
        overrides: b.overrides,
        parent: b.parent_id,
    };
    let row = s.app.org_create(&p, &meta, input).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Every organisation on the platform, oldest first.
#[utoipa::path(get, path = "/admin/organizations", tag = "admin", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<OrganizationOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<OrganizationOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.org_list(&p, &meta, cursor, size).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPlan {
    pub plan: PlanName,
    /// Replaces the organisation's overrides; omitted: none.
    #[serde(default, deserialize_with = "crate::extract::object")]
    pub overrides: Option<Overrides>,
}

/// Changes an organisation's plan and overrides. Downgrading below current
/// use is allowed; new creates wait until use fits.
#[utoipa::path(put, path = "/admin/organizations/{id}/plan", tag = "admin", request_body = SetPlan, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OrganizationOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_plan(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<SetPlan>,
) -> ApiResult<axum::Json<OrganizationOut>> {
    let row = s.app.org_change_plan(&p, &meta, path_id(&id)?, b.plan, b.overrides.unwrap_or_default()).await?;
    Ok(axum::Json(row.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    /// `suspended` and `inactive`: every request of its members and keys is 403; the data stays.
    pub status: OrgStatus,
}

/// Suspends, deactivates or reactivates an organisation.
#[utoipa::path(patch, path = "/admin/organizations/{id}", tag = "admin", request_body = SetStatus, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = OrganizationOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_status(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<SetStatus>,
) -> ApiResult<axum::Json<OrganizationOut>> {
    let row = s.app.org_set_status(&p, &meta, path_id(&id)?, b.status).await?;
    Ok(axum::Json(row.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Offboard {
    /// The organisation's slug, typed again.
    #[schema(max_length = 63)]
    pub confirm: String,
}

#[derive(Serialize, ToSchema)]
pub struct CertificateOut {
    /// What was removed, when and by whom.
    #[schema(value_type = Object)]
    pub certificate: serde_json::Value,
    /// The certificate as a C2SP signed note (its text is the certificate's
    /// compact JSON), verifiable with `GET /audit/public-key`; also kept in
    /// the platform's audit log (`organization.deleted`).
    pub note: String,
}

/// Deletes an organisation for good (operators, with a recent sign-in): its
/// data keys are destroyed first, then its evidence files and every row of
/// it. Answers the signed deletion certificate.
#[utoipa::path(post, path = "/admin/organizations/{id}/offboard", tag = "admin", request_body = Offboard, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = CertificateOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn offboard(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Offboard>,
) -> ApiResult<axum::Json<CertificateOut>> {
    let c = s.app.org_delete(&p, &meta, path_id(&id)?, &b.confirm).await?;
    Ok(axum::Json(CertificateOut { certificate: c.statement, note: c.note }))
}
