//! Indicators of compromise: on incidents, and looked up across them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::iocs::{Extracted, Lookup, NewIoc};
use ironcase_app::store::ioc::SightingRow;
use ironcase_app::Principal;
use ironcase_domain::ioc::IocType;
use ironcase_domain::{IncidentId, IocId, Timestamp, Tlp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_ref;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add, list)).routes(routes!(extract)).routes(routes!(unlink)).routes(routes!(lookup))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddIoc {
    #[serde(rename = "type")]
    pub kind: IocType,
    /// Any written form: defanged, upper-case, unbracketed… it is normalised.
    pub value: String,
    #[serde(default)]
    pub tlp: Option<Tlp>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub note: Option<String>,
}

/// An indicator as seen in one incident.
#[derive(Serialize, ToSchema)]
pub struct IocSighting {
    pub id: IocId,
    #[serde(rename = "type")]
    pub kind: IocType,
    /// The normal form.
    pub value: String,
    pub tlp: Tlp,
    pub tags: Vec<String>,
    pub incident_id: IncidentId,
    pub note: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub created_at: Timestamp,
}

impl From<SightingRow> for IocSighting {
    fn from(s: SightingRow) -> Self {
        IocSighting {
            id: s.ioc.id,
            kind: s.ioc.kind,
            value: s.ioc.value,
            tlp: s.ioc.tlp,
            tags: s.ioc.tags,
            incident_id: s.incident_id,
            note: s.note,
            first_seen: s.first_seen,
            last_seen: s.last_seen,
            created_at: s.ioc.created_at,
        }
    }
}

/// Adds an indicator to an incident (201), or records a new sighting of one it
/// already has (200). The same indicator on another incident is linked, not copied.
#[utoipa::path(post, path = "/incidents/{id}/iocs", tag = "iocs", request_body = AddIoc, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = IocSighting), (status = 200, body = IocSighting), (status = 422, body = Problem), (status = 404, body = Problem)))]
pub async fn add(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<AddIoc>,
) -> ApiResult<(StatusCode, axum::Json<IocSighting>)> {
    let input = NewIoc { kind: b.kind, value: b.value, tlp: b.tlp, tags: b.tags, note: b.note };
    let (row, new_link) = s.app.ioc_add(&p, &meta, incident_ref(&id)?, input).await?;
    Ok((if new_link { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(row.into())))
}

/// The indicators of an incident, by first sighting.
#[utoipa::path(get, path = "/incidents/{id}/iocs", tag = "iocs", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 100"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<IocSighting>), (status = 404, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<IocSighting>>> {
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 100);
    q.finish()?;
    Ok(axum::Json(s.app.ioc_list(&p, &meta, incident_ref(&id)?, cursor, size).await?.into()))
}

/// Unlinks an indicator from an incident.
#[utoipa::path(delete, path = "/incidents/{id}/iocs/{ioc_id}", tag = "iocs", security(("bearer" = [])),
    params(("id" = String, Path), ("ioc_id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn unlink(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path((id, ioc)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let ioc: IocId = ioc.parse().map_err(|_| ApiError::not_found())?;
    s.app.ioc_unlink(&p, &meta, incident_ref(&id)?, ioc).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Seen {
    pub incident_id: IncidentId,
    pub number: String,
    pub title: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub struct IocOut {
    pub id: IocId,
    #[serde(rename = "type")]
    pub kind: IocType,
    pub value: String,
    pub tlp: Tlp,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    /// Every incident that saw it, oldest sighting first.
    pub incidents: Vec<Seen>,
}

impl From<Lookup> for IocOut {
    fn from(l: Lookup) -> Self {
        IocOut {
            id: l.ioc.id,
            kind: l.ioc.kind,
            value: l.ioc.value,
            tlp: l.ioc.tlp,
            tags: l.ioc.tags,
            created_at: l.ioc.created_at,
            incidents: l
                .sightings
                .into_iter()
                .map(|s| Seen {
                    incident_id: s.incident_id,
                    number: format!("INC-{}", s.incident_number),
                    title: s.incident_title,
                    first_seen: s.first_seen,
                    last_seen: s.last_seen,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IocLookupList {
    pub items: Vec<IocOut>,
}

/// Finds an indicator by any of its forms and lists every incident that saw it.
#[utoipa::path(get, path = "/iocs", tag = "iocs", security(("bearer" = [])),
    params(("value" = String, Query, min_length = 1), ("type" = Option<IocType>, Query, description = "without it, every type the value fits is tried")),
    responses((status = 200, body = IocLookupList), (status = 422, body = Problem)))]
pub async fn lookup(State(s): State<AppState>, p: Principal, Meta(meta): Meta, mut q: QueryParams) -> ApiResult<axum::Json<IocLookupList>> {
    let kind = q.parse("type", IocType::parse, "an indicator type");
    let value = q.str("value");
    if value.is_none() {
        q.error("value", "is required");
    }
    q.finish()?;
    let rows = s.app.ioc_lookup(&p, &meta, kind, &value.unwrap_or_default()).await?;
    Ok(axum::Json(IocLookupList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    /// Logs, e-mails, reports: defanged or not.
    pub text: String,
    /// Link everything found to the incident, in one transaction.
    #[serde(default)]
    pub save: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ExtractedOut {
    #[serde(rename = "type")]
    pub kind: IocType,
    pub value: String,
    /// As it stood in the text.
    pub raw: String,
    /// Set when the organisation tracks this indicator (always, after `save`).
    pub ioc_id: Option<IocId>,
}

#[derive(Serialize, ToSchema)]
pub struct ExtractedList {
    pub items: Vec<ExtractedOut>,
    pub saved: bool,
}

impl From<Extracted> for ExtractedOut {
    fn from(e: Extracted) -> Self {
        ExtractedOut { kind: e.found.kind, value: e.found.value, raw: e.found.raw, ioc_id: e.existing }
    }
}

/// Pulls every indicator out of free text for review; with `save`, links them all.
#[utoipa::path(post, path = "/incidents/{id}/iocs/extract", tag = "iocs", request_body = ExtractRequest, security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ExtractedList), (status = 404, body = Problem)))]
pub async fn extract(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<ExtractRequest>,
) -> ApiResult<axum::Json<ExtractedList>> {
    let rows = s.app.ioc_extract(&p, &meta, incident_ref(&id)?, b.text, b.save).await?;
    Ok(axum::Json(ExtractedList { items: rows.into_iter().map(Into::into).collect(), saved: b.save }))
}
