//! `/incidents`: create, read, list, patch, delete, comments, timeline.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::incidents::{parse_ref, IfMatch, IncidentPatch, NewIncident};
use ironcase_app::page::parse_keyset;
use ironcase_app::store::event::EventRow;
use ironcase_app::store::incident::{CommentRow, Filter, IncidentRef, IncidentRow, Sort};
use ironcase_app::{AppError, Principal};
use ironcase_domain::{Category, CommentId, IncidentId, Resolution, Severity, Status, Timestamp, Tlp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
        .routes(routes!(comment))
        .routes(routes!(timeline))
}

#[derive(Serialize, ToSchema)]
pub struct IncidentOut {
    pub id: IncidentId,
    /// Per-organisation number, `INC-42`.
    pub number: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub category: Category,
    pub status: Status,
    pub resolution: Option<Resolution>,
    pub tlp: Tlp,
    pub tags: Vec<String>,
    pub assignee_id: Option<UserId>,
    pub reporter_id: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub contained_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub version: i64,
}

impl From<IncidentRow> for IncidentOut {
    fn from(i: IncidentRow) -> Self {
        IncidentOut {
            id: i.id,
            number: format!("INC-{}", i.number),
            title: i.title,
            description: i.description,
            severity: i.severity,
            category: i.category,
            status: i.status,
            resolution: i.resolution,
            tlp: i.tlp,
            tags: i.tags,
            assignee_id: i.assignee_id,
            reporter_id: i.reporter_id,
            created_at: i.created_at,
            updated_at: i.updated_at,
            acknowledged_at: i.acknowledged_at,
            contained_at: i.contained_at,
            resolved_at: i.resolved_at,
            closed_at: i.closed_at,
            version: i.version,
        }
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn with_etag(status: StatusCode, i: IncidentRow, location: bool) -> Response {
    let tag = etag(i.version);
    let loc = format!("/api/v1/incidents/{}", i.id);
    let mut res = (status, axum::Json(IncidentOut::from(i))).into_response();
    res.headers_mut().insert(header::ETAG, tag);
    if location {
        if let Ok(v) = HeaderValue::from_str(&loc) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    res
}

pub(crate) fn incident_ref(raw: &str) -> ApiResult<IncidentRef> {
    parse_ref(raw).ok_or_else(ApiError::not_found)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    /// One line, 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub severity: Severity,
    pub category: Category,
    /// Defaults to `amber`.
    #[serde(default)]
    pub tlp: Option<Tlp>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub assignee_id: Option<UserId>,
}

/// Opens an incident.
#[utoipa::path(post, path = "/incidents", tag = "incidents", request_body = CreateIncident, security(("bearer" = [])),
    responses((status = 201, body = IncidentOut, headers(("ETag" = String), ("Location" = String))), (status = 422, body = Problem)))]
pub async fn create(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Json(b): Json<CreateIncident>) -> ApiResult<Response> {
    let input = NewIncident {
        title: b.title,
        description: b.description,
        severity: b.severity,
        category: b.category,
        tlp: b.tlp,
        tags: b.tags,
        assignee_id: b.assignee_id,
    };
    let row = s.app.incident_create(&p, &meta, input).await?;
    Ok(with_etag(StatusCode::CREATED, row, true))
}

/// One incident, by id (`inc_…`) or number (`INC-42`).
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path, description = "id or number")),
    responses((status = 200, body = IncidentOut, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn read(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<Response> {
    let row = s.app.incident_get(&p, &meta, incident_ref(&id)?).await?;
    Ok(with_etag(StatusCode::OK, row, false))
}

/// Incidents, newest first by default, filtered, one page at a time.
#[utoipa::path(get, path = "/incidents", tag = "incidents", security(("bearer" = [])),
    params(
        ("status" = Option<Status>, Query), ("severity" = Option<Severity>, Query), ("category" = Option<Category>, Query),
        ("assignee_id" = Option<String>, Query), ("tag" = Option<String>, Query),
        ("created_after" = Option<String>, Query), ("created_before" = Option<String>, Query),
        ("sort" = Option<String>, Query, description = "-created_at (default), created_at, -updated_at, updated_at"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<IncidentOut>), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<IncidentOut>>> {
    let f = Filter {
        status: q.parse("status", Status::parse, "a status"),
        severity: q.parse("severity", Severity::parse, "a severity"),
        category: q.parse("category", Category::parse, "a category"),
        assignee_id: q.parse("assignee_id", |s| s.parse().ok(), "a user id"),
        tag: q.str("tag").map(|t| t.to_lowercase()),
        created_after: q.time("created_after"),
        created_before: q.time("created_before"),
        // Narrowed to the caller's sight by the use case.
        sight: Default::default(),
    };
    let sort = q.parse("sort", Sort::parse, "one of -created_at, created_at, -updated_at, updated_at").unwrap_or(Sort::CreatedDesc);
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.incident_list(&p, &meta, &f, sort, cursor, size).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIncident {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub tlp: Option<Tlp>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "crate::extract::double_option")]
    #[schema(value_type = Option<String>)]
    pub assignee_id: Option<Option<UserId>>,
    #[serde(default)]
    pub status: Option<Status>,
    /// Required when closing.
    #[serde(default)]
    pub resolution: Option<Resolution>,
}

/// `If-Match` (RFC 9110 §13.1.1): `*`, or a list of entity tags of which the
/// strong ones name versions; a weak or foreign tag matches nothing.
fn if_match(h: &HeaderMap) -> ApiResult<IfMatch> {
    let mut values = h.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Err(AppError::PreconditionRequired.into());
    }
    let mut versions = Vec::new();
    for v in values {
        for tag in v.to_str().unwrap_or("").split(',').map(str::trim) {
            if tag == "*" {
                return Ok(IfMatch::Any);
            }
            if let Some(n) = tag.strip_prefix('"').and_then(|s| s.strip_suffix('"')).and_then(|s| s.parse::<i64>().ok()) {
                versions.push(n);
            }
        }
    }
    Ok(IfMatch::Versions(versions))
}

/// Changes fields and moves the status along the workflow. Needs `If-Match`.
#[utoipa::path(patch, path = "/incidents/{id}", tag = "incidents", request_body = PatchIncident, security(("bearer" = [])),
    params(("id" = String, Path), ("If-Match" = String, Header, description = "the ETag last read")),
    responses((status = 200, body = IncidentOut), (status = 412, body = Problem), (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<PatchIncident>,
) -> ApiResult<Response> {
    let r = incident_ref(&id)?;
    let version = if_match(&headers)?;
    let patch = IncidentPatch {
        title: b.title,
        description: b.description,
        severity: b.severity,
        category: b.category,
        tlp: b.tlp,
        tags: b.tags,
        assignee_id: b.assignee_id,
        status: b.status,
        resolution: b.resolution,
    };
    let row = s.app.incident_update(&p, &meta, r, version, patch).await?;
    Ok(with_etag(StatusCode::OK, row, false))
}

/// Deletes an incident (lead and above): gone from reads, kept in the audit trail.
#[utoipa::path(delete, path = "/incidents/{id}", tag = "incidents", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.incident_delete(&p, &meta, incident_ref(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct CommentOut {
    pub id: CommentId,
    pub incident_id: IncidentId,
    pub author_id: UserId,
    /// The organisation erased the author (a data-subject erasure): the
    /// comment stays, its author is not to be shown.
    pub author_erased: bool,
    pub body: String,
    pub created_at: Timestamp,
}

impl From<CommentRow> for CommentOut {
    fn from(c: CommentRow) -> Self {
        CommentOut {
            id: c.id,
            incident_id: c.incident_id,
            author_id: c.author_id,
            author_erased: c.author_erased,
            body: c.body,
            created_at: c.created_at,
        }
    }
}

/// Adds a comment to an incident.
#[utoipa::path(post, path = "/incidents/{id}/comments", tag = "incidents", request_body = CreateComment, security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 201, body = CommentOut), (status = 404, body = Problem)))]
pub async fn comment(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<CreateComment>,
) -> ApiResult<(StatusCode, axum::Json<CommentOut>)> {
    let row = s.app.comment_create(&p, &meta, incident_ref(&id)?, &b.body).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Serialize, ToSchema)]
pub struct TimelineEvent {
    pub id: i64,
    /// `incident.created`, `incident.updated`, `incident.status_changed`, `comment.added`, `incident.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    pub actor_id: Option<String>,
    pub at: Timestamp,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<EventRow> for TimelineEvent {
    fn from(e: EventRow) -> Self {
        TimelineEvent { id: e.id, kind: e.kind, actor_id: e.actor_id, at: e.created_at, data: e.data }
    }
}

/// The incident's events, oldest first.
#[utoipa::path(get, path = "/incidents/{id}/timeline", tag = "incidents", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 100"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<TimelineEvent>), (status = 404, body = Problem)))]
pub async fn timeline(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<TimelineEvent>>> {
    let (after, size) = q.page(ironcase_app::page::parse_seq, 100);
    q.finish()?;
    Ok(axum::Json(s.app.incident_timeline(&p, &meta, incident_ref(&id)?, after, size).await?.into()))
}
