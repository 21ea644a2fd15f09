//! `/retention` (how long the organisation keeps each kind of data, what
//! that removes, and applying it now) and legal holds on incidents.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::page::parse_keyset;
use ironcase_app::retention::{Policy, Tally};
use ironcase_app::store::retention::HoldRow;
use ironcase_app::Principal;
use ironcase_domain::retention::RetentionKind;
use ironcase_domain::{IncidentId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_ref;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policies, put_policies))
        .routes(routes!(preview))
        .routes(routes!(run))
        .routes(routes!(get_hold, put_hold, delete_hold))
        .routes(routes!(list_holds))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyIo {
    pub kind: RetentionKind,
    /// Days kept (audit: 90 to 36,500; the rest: 1 to 36,500); null:
    /// forever.
    #[schema(minimum = 1, maximum = 36500)]
    pub days: Option<i64>,
}

impl From<Policy> for PolicyIo {
    fn from(p: Policy) -> Self {
        PolicyIo { kind: p.kind, days: p.days }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PoliciesOut {
    /// Every kind, with its days (null: kept forever).
    pub policies: Vec<PolicyIo>,
}

fn policies_out(v: Vec<Policy>) -> axum::Json<PoliciesOut> {
    axum::Json(PoliciesOut { policies: v.into_iter().map(Into::into).collect() })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoliciesIn {
    /// The kinds to set (the others keep theirs).
    #[schema(max_items = 6)]
    pub policies: Vec<PolicyIo>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// Proposed policies, in place of the organisation's for the kinds
    /// they name; none: the organisation's own.
    #[serde(default)]
    #[schema(max_items = 6)]
    pub policies: Vec<PolicyIo>,
}

fn policies_in(v: Vec<PolicyIo>) -> Vec<Policy> {
    v.into_iter().map(|p| Policy { kind: p.kind, days: p.days }).collect()
}

#[derive(Serialize, ToSchema)]
pub struct TallyOut {
    pub kind: RetentionKind,
    pub days: Option<i64>,
    /// What is older than this goes; null: the kind is kept forever.
    pub cutoff: Option<Timestamp>,
    /// How many (a preview: would go now; a run: went).
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TalliesOut {
    pub kinds: Vec<TallyOut>,
}

fn tallies(v: Vec<Tally>) -> axum::Json<TalliesOut> {
    axum::Json(TalliesOut {
        kinds: v.into_iter().map(|t| TallyOut { kind: t.kind, days: t.days, cutoff: t.cutoff, count: t.count }).collect(),
    })
}

/// How long the organisation keeps each kind of its data.
#[utoipa::path(get, path = "/retention", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = PoliciesOut), (status = 403, body = Problem)))]
pub async fn get_policies(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<PoliciesOut>> {
    Ok(policies_out(s.app.retention_policies(&p, &meta).await?))
}

/// Sets how long the organisation keeps the kinds named (owners and admins,
/// with a recent sign-in). The retention job applies it.
#[utoipa::path(put, path = "/retention", tag = "organization", security(("bearer" = [])), request_body = PoliciesIn,
    responses((status = 200, body = PoliciesOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_policies(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<PoliciesIn>,
) -> ApiResult<axum::Json<PoliciesOut>> {
    Ok(policies_out(s.app.set_retention(&p, &meta, policies_in(b.policies)).await?))
}

/// Counts what the policies (the organisation's, or those proposed) would
/// remove now; changes nothing.
#[utoipa::path(post, path = "/retention/preview", tag = "organization", security(("bearer" = [])), request_body = PreviewIn,
    responses((status = 200, body = TalliesOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn preview(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<PreviewIn>,
) -> ApiResult<axum::Json<TalliesOut>> {
    Ok(tallies(s.app.retention_preview(&p, &meta, policies_in(b.policies)).await?))
}

/// Applies the organisation's policies now, as the retention job does (a
/// round's worth: a large backlog takes more); what went, per kind.
#[utoipa::path(post, path = "/retention/run", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = TalliesOut), (status = 403, body = Problem)))]
pub async fn run(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<TalliesOut>> {
    Ok(tallies(s.app.retention_run(&p, &meta).await?))
}

#[derive(Serialize, ToSchema)]
pub struct HoldOut {
    pub incident_id: IncidentId,
    pub reason: String,
    pub set_by: Option<String>,
    pub set_at: Timestamp,
}

impl From<HoldRow> for HoldOut {
    fn from(h: HoldRow) -> Self {
        HoldOut { incident_id: h.incident_id, reason: h.reason, set_by: h.set_by, set_at: h.set_at }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    /// Why (a matter, a request): 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// The incident's legal hold; 404 when it has none.
#[utoipa::path(get, path = "/incidents/{id}/legal-hold", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = HoldOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_hold(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<HoldOut>> {
    Ok(axum::Json(s.app.legal_hold(&p, &meta, incident_ref(&id)?).await?.into()))
}

/// Puts the incident under a legal hold (owners and admins): no retention
/// policy removes it, or anything of it, while held.
#[utoipa::path(put, path = "/incidents/{id}/legal-hold", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = HoldIn,
    responses((status = 200, body = HoldOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_hold(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<HoldIn>,
) -> ApiResult<axum::Json<HoldOut>> {
    Ok(axum::Json(s.app.legal_hold_put(&p, &meta, incident_ref(&id)?, &b.reason).await?.into()))
}

/// Lifts the incident's legal hold; 404 when it has none.
#[utoipa::path(delete, path = "/incidents/{id}/legal-hold", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_hold(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.legal_hold_remove(&p, &meta, incident_ref(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organisation's legal holds, newest first.
#[utoipa::path(get, path = "/legal-holds", tag = "incidents", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<HoldOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_holds(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<HoldOut>>> {
    let (cursor, size) = q.page(parse_keyset::<IncidentId>, 50);
    q.finish()?;
    let cursor = cursor.map(|(at, id)| (at, id.to_string()));
    Ok(axum::Json(s.app.legal_holds(&p, &meta, cursor, size).await?.into()))
}
