//! Organisation hierarchy: a parent's view of the children that let it read.

use axum::extract::{Path, State};
use ironcase_app::store::incident::{Filter, Sort};
use ironcase_app::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::AuditEntryOut;
use super::evidence::EvidenceOut;
use super::incidents::{incident_ref, IncidentOut};
use super::members::OrganizationOut;
use crate::error::{ApiResult, Problem};
use crate::extract::{path_id, Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;
use ironcase_app::page::parse_keyset;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(children))
        .routes(routes!(set_parent_access))
        .routes(routes!(child_incidents))
        .routes(routes!(child_incident))
        .routes(routes!(child_evidence))
        .routes(routes!(child_audit))
}

#[derive(Serialize, ToSchema)]
pub struct ChildOut {
    pub organization: OrganizationOut,
    /// Whether the child lets this organisation read its incidents, evidence metadata and audit log.
    pub parent_access: bool,
}

/// The organisation's children, oldest first (owners and admins).
#[utoipa::path(get, path = "/organization/children", tag = "organization", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<ChildOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn children(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<ChildOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    let page = s.app.children(&p, &meta, cursor, size).await?.map(|(o, a)| ChildOut { organization: o.into(), parent_access: a });
    Ok(axum::Json(page.into()))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentAccess {
    /// Let the parent organisation read (never write) this organisation's
    /// incidents, evidence metadata and audit log.
    pub granted: bool,
}

/// Grants or revokes the parent's read access (owners and admins).
#[utoipa::path(put, path = "/organization/parent-access", tag = "organization", request_body = ParentAccess, security(("bearer" = [])),
    responses((status = 200, body = ParentAccess), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn set_parent_access(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<ParentAccess>,
) -> ApiResult<axum::Json<ParentAccess>> {
    Ok(axum::Json(ParentAccess { granted: s.app.parent_access_set(&p, &meta, b.granted).await? }))
}

/// A child's incidents, newest first (read-only; audited in both organisations).
#[utoipa::path(get, path = "/organizations/{org}/incidents", tag = "organization", security(("bearer" = [])),
    params(("org" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<IncidentOut>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn child_incidents(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(org): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<IncidentOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    let child = s.app.as_parent_of(&p, &meta, path_id(&org)?, "incidents").await?;
    Ok(axum::Json(s.app.incident_list(&child, &meta, &Filter::default(), Sort::CreatedDesc, cursor, size).await?.into()))
}

/// One incident of a child.
#[utoipa::path(get, path = "/organizations/{org}/incidents/{id}", tag = "organization", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = IncidentOut), (status = 404, body = Problem)))]
pub async fn child_incident(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<IncidentOut>> {
    let r = incident_ref(&id)?;
    let child = s.app.as_parent_of(&p, &meta, path_id(&org)?, "incident").await?;
    Ok(axum::Json(s.app.incident_get(&child, &meta, r).await?.into()))
}

/// The evidence metadata of a child's incident (never its content).
#[utoipa::path(get, path = "/organizations/{org}/incidents/{id}/evidence", tag = "organization", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<EvidenceOut>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn child_evidence(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path((org, id)): Path<(String, String)>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<EvidenceOut>>> {
    let r = incident_ref(&id)?;
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    let child = s.app.as_parent_of(&p, &meta, path_id(&org)?, "evidence").await?;
    Ok(axum::Json(s.app.evidence_list(&child, &meta, r, cursor, size).await?.into()))
}

/// A child's audit log, newest first.
#[utoipa::path(get, path = "/organizations/{org}/audit", tag = "organization", security(("bearer" = [])),
    params(("org" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<AuditEntryOut>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn child_audit(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(org): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AuditEntryOut>>> {
    let (before, size) = q.page(ironcase_app::page::parse_seq, 50);
    q.finish()?;
    Ok(axum::Json(s.app.child_audit(&p, &meta, path_id(&org)?, before, size).await?.into()))
}
