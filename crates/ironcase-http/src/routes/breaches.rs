//! Personal data breaches: `/incidents/{id}/breach` (flag, record the
//! regulator's notification, unflag) and `/breaches` (the organisation's,
//! with their GDPR Art. 33 deadlines).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::breaches::{Breach, BreachInput};
use ironcase_app::page::parse_keyset;
use ironcase_app::Principal;
use ironcase_domain::privacy::BreachState;
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
    OpenApiRouter::new().routes(routes!(get_breach, put_breach, delete_breach)).routes(routes!(list))
}

#[derive(Serialize, ToSchema)]
pub struct BreachOut {
    pub incident_id: IncidentId,
    /// When the organisation became aware of the breach.
    pub aware_at: Timestamp,
    /// 72 hours later: when the regulator must have been told (GDPR Art. 33).
    pub deadline: Timestamp,
    pub regulator_notified_at: Option<Timestamp>,
    pub reference: Option<String>,
    pub state: BreachState,
    /// Deadline warnings raised so far (at 48 h, 66 h, overdue): 0 to 3.
    pub warnings: i64,
}

impl From<Breach> for BreachOut {
    fn from(b: Breach) -> Self {
        BreachOut {
            incident_id: b.row.incident_id,
            aware_at: b.row.aware_at,
            deadline: b.deadline,
            regulator_notified_at: b.row.notified_at,
            reference: b.row.reference,
            state: b.state,
            warnings: b.row.warned,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreachIn {
    /// When the organisation became aware (not in the future); default: now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub aware_at: Option<Timestamp>,
    /// When the regulator was told (not before `aware_at`); null: not yet.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub regulator_notified_at: Option<Timestamp>,
    /// The regulator's reference for the notification (1 to 200 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
}

/// The incident's breach record; 404 when it is not flagged as one.
#[utoipa::path(get, path = "/incidents/{id}/breach", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = BreachOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_breach(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BreachOut>> {
    Ok(axum::Json(s.app.breach_get(&p, &meta, incident_ref(&id)?).await?.into()))
}

/// Flags the incident as a personal data breach, or records what changed
/// (the regulator told, its reference). Those who may update the incident.
#[utoipa::path(put, path = "/incidents/{id}/breach", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = BreachIn,
    responses((status = 200, body = BreachOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_breach(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<BreachIn>,
) -> ApiResult<axum::Json<BreachOut>> {
    let input = BreachInput { aware_at: b.aware_at, notified_at: b.regulator_notified_at, reference: b.reference };
    Ok(axum::Json(s.app.breach_put(&p, &meta, incident_ref(&id)?, input).await?.into()))
}

/// Unflags the incident; 404 when it was not flagged.
#[utoipa::path(delete, path = "/incidents/{id}/breach", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_breach(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.breach_remove(&p, &meta, incident_ref(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organisation's personal data breaches, the earliest known first.
#[utoipa::path(get, path = "/breaches", tag = "incidents", security(("bearer" = [])),
    params(("open" = Option<bool>, Query, description = "true: the regulator still to be told; false: told"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<BreachOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<BreachOut>>> {
    let open = q.parse("open", |v| v.parse::<bool>().ok(), "true or false");
    let (cursor, size) = q.page(parse_keyset::<IncidentId>, 50);
    q.finish()?;
    Ok(axum::Json(s.app.breach_list(&p, &meta, open, cursor, size).await?.into()))
}
