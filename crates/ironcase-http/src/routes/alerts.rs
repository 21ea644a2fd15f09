//! `/alerts`: intake from detection tools, and triage.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::alerts::{AlertView, NewAlert, Outcome, Promotion};
use ironcase_app::store::alert::{AlertRow, Filter};
use ironcase_app::Principal;
use ironcase_domain::ioc::IocType;
use ironcase_domain::{AlertId, AlertStatus, Category, IncidentId, Severity, Timestamp, Tlp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::routes::incidents::IncidentOut;
use crate::AppState;

/// The largest batch body: 1,000 alerts of about 16 KiB each (the general
/// body limit would hold a batch to about 1 KiB an alert).
pub const BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes({
            let (schemas, paths, batch) = routes!(batch);
            (schemas, paths, batch.layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES)))
        })
        .routes(routes!(get))
        .routes(routes!(promote))
        .routes(routes!(dismiss))
        .routes(routes!(snooze))
        .routes(routes!(acknowledge))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Observable {
    #[serde(rename = "type")]
    pub kind: IocType,
    #[schema(min_length = 1, max_length = 2048)]
    pub value: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlert {
    /// The sending tool (`splunk`, `crowdstrike`, …).
    #[schema(min_length = 1, max_length = 100)]
    pub source: String,
    /// The alert's id at its source: unique per source and organisation.
    #[schema(min_length = 1, max_length = 200)]
    pub source_ref: String,
    /// What kind of alert it is at its source.
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 100)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 300)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 100000)]
    pub description: Option<String>,
    pub severity: Severity,
    /// Omitted: amber (or the sender's ceiling, if lower).
    #[serde(default)]
    pub tlp: Option<Tlp>,
    /// Indicators, normalised as everywhere (at most 100).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub observables: Vec<Observable>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
    /// The original payload, as JSON (at most 64 KiB).
    #[serde(default)]
    pub raw: Option<serde_json::Value>,
    /// Alerts with the same key within an hour group under the first open one.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub dedup_key: Option<String>,
}

impl From<CreateAlert> for NewAlert {
    fn from(a: CreateAlert) -> Self {
        NewAlert {
            source: a.source,
            source_ref: a.source_ref,
            kind: a.kind,
            title: a.title,
            description: a.description,
            severity: a.severity,
            tlp: a.tlp,
            observables: a.observables.into_iter().map(|o| (o.kind, o.value)).collect(),
            occurred_at: a.occurred_at,
            raw: a.raw,
            dedup_key: a.dedup_key,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlerts {
    #[schema(min_items = 1, max_items = 1000)]
    pub alerts: Vec<CreateAlert>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertOut {
    pub id: AlertId,
    pub source: String,
    pub source_ref: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub tlp: Tlp,
    /// `[{type, value}]`, normalised.
    #[schema(value_type = Vec<Object>)]
    pub observables: serde_json::Value,
    pub occurred_at: Timestamp,
    /// The original payload, as it was sent (any JSON value).
    pub raw: Option<serde_json::Value>,
    pub dedup_key: Option<String>,
    pub status: AlertStatus,
    /// How many alerts it stands for (itself and those grouped under it).
    pub count: i64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The incident it became or joined.
    pub incident_id: Option<IncidentId>,
    pub dismiss_reason: Option<String>,
    pub snoozed_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<AlertRow> for AlertOut {
    fn from(a: AlertRow) -> Self {
        AlertOut {
            id: a.id,
            source: a.source,
            source_ref: a.source_ref,
            kind: a.kind,
            title: a.title,
            description: a.description,
            severity: a.severity,
            tlp: a.tlp,
            observables: a.observables,
            occurred_at: a.occurred_at,
            raw: a.raw.and_then(|r| serde_json::from_str(&r).ok()),
            dedup_key: a.dedup_key,
            status: a.status,
            count: a.count,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            incident_id: a.incident_id,
            dismiss_reason: a.dismiss_reason,
            snoozed_until: a.snoozed_until,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SeenInOut {
    #[serde(rename = "type")]
    pub kind: IocType,
    pub value: String,
    /// `[{id, number, title}]` of the incidents (in the caller's sight).
    #[schema(value_type = Vec<Object>)]
    pub incidents: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertOut,
    /// Observables other incidents already saw, with those incidents.
    pub seen_in: Vec<SeenInOut>,
}

impl From<AlertView> for AlertDetail {
    fn from(v: AlertView) -> Self {
        let seen_in = v
            .seen_in
            .into_iter()
            .map(|s| SeenInOut {
                kind: s.kind,
                value: s.value,
                incidents: s
                    .incidents
                    .into_iter()
                    .map(|(id, n, t)| serde_json::json!({ "id": id, "number": format!("INC-{n}"), "title": t }))
                    .collect(),
            })
            .collect();
        AlertDetail { alert: v.alert.into(), seen_in }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Ingested {
    /// `created`, `duplicate` (the same source and source_ref: the first
    /// alert) or `grouped` (under an open alert with the same dedup key).
    pub outcome: String,
    pub alert: AlertOut,
}

fn ingested((a, o): (AlertRow, Outcome)) -> Ingested {
    Ingested { outcome: o.as_str().to_owned(), alert: a.into() }
}

#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    /// One per alert sent, in order.
    pub items: Vec<Ingested>,
}

/// One alert from a detection tool. 201 when new; 200 with the first alert
/// when its `source` + `source_ref` was sent before, or with the open
/// alert it grouped under.
#[utoipa::path(post, path = "/alerts", tag = "alerts", request_body = CreateAlert, security(("bearer" = [])),
    responses((status = 201, body = Ingested), (status = 200, body = Ingested), (status = 403, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateAlert>,
) -> ApiResult<(StatusCode, axum::Json<Ingested>)> {
    let mut out = s.app.alert_ingest(&p, &meta, vec![b.into()], false).await?;
    let one = out.pop().ok_or_else(|| ApiError::from(ironcase_app::AppError::Internal("no outcome".into())))?;
    let status = if one.1 == Outcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(ingested(one))))
}

/// Up to 1,000 alerts at once (a body of at most 16 MiB), each checked
/// before any is kept (one bad alert keeps none, and is named:
/// `alerts[3].title`).
#[utoipa::path(post, path = "/alerts/batch", tag = "alerts", request_body = CreateAlerts, security(("bearer" = [])),
    responses((status = 200, body = BatchOut), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub async fn batch(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateAlerts>,
) -> ApiResult<axum::Json<BatchOut>> {
    let alerts = b.alerts.into_iter().map(NewAlert::from).collect();
    let out = s.app.alert_ingest(&p, &meta, alerts, true).await?;
    Ok(axum::Json(BatchOut { items: out.into_iter().map(ingested).collect() }))
}

/// Alerts newest first (in the caller's TLP sight).
#[utoipa::path(get, path = "/alerts", tag = "alerts", security(("bearer" = [])),
    params(("status" = Option<AlertStatus>, Query), ("source" = Option<String>, Query), ("severity" = Option<Severity>, Query),
        ("q" = Option<String>, Query, description = "words in the title"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<AlertOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AlertOut>>> {
    let f = Filter {
        status: q.parse("status", AlertStatus::parse, "new, acknowledged, promoted, dismissed or snoozed"),
        source: q.str("source").filter(|v| !v.is_empty()),
        severity: q.parse("severity", Severity::parse, "a severity"),
        text: q.str("q").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
        ..Filter::default()
    };
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.alert_list(&p, &meta, f, cursor, size).await?.into()))
}

fn alert_id(raw: &str) -> ApiResult<AlertId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// One alert, with the incidents that already saw its observables.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AlertDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<AlertDetail>> {
    Ok(axum::Json(s.app.alert_get(&p, &meta, alert_id(&id)?).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// Merge into this incident (id or `INC-n`) instead of making one.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// For a new incident: the alert's title, severity when omitted; the
    /// category `other`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 300)]
    pub title: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub category: Option<Category>,
}

#[derive(Serialize, ToSchema)]
pub struct Promoted {
    pub alert: AlertOut,
    pub incident: IncidentOut,
}

/// Promotes an alert into a new incident, or merges it into an existing
/// one: its observables become the incident's indicators.
#[utoipa::path(post, path = "/alerts/{id}/promote", tag = "alerts", request_body = Promote, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Promoted), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn promote(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Promote>,
) -> ApiResult<axum::Json<Promoted>> {
    let incident = match b.incident_id.as_deref() {
        Some(r) => Some(ironcase_app::incidents::parse_ref(r).ok_or_else(ApiError::not_found)?),
        None => None,
    };
    let how = Promotion { incident, title: b.title, severity: b.severity, category: b.category };
    let (alert, incident) = s.app.alert_promote(&p, &meta, alert_id(&id)?, how).await?;
    Ok(axum::Json(Promoted { alert: alert.into(), incident: incident.into() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismiss {
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// Dismisses an alert, with the reason.
#[utoipa::path(post, path = "/alerts/{id}/dismiss", tag = "alerts", request_body = Dismiss, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AlertOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn dismiss(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Dismiss>,
) -> ApiResult<axum::Json<AlertOut>> {
    Ok(axum::Json(s.app.alert_dismiss(&p, &meta, alert_id(&id)?, &b.reason).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snooze {
    /// Back in the queue (as `new`) at this time, within 90 days.
    pub until: Timestamp,
}

/// Snoozes an alert until a time.
#[utoipa::path(post, path = "/alerts/{id}/snooze", tag = "alerts", request_body = Snooze, security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AlertOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn snooze(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Snooze>,
) -> ApiResult<axum::Json<AlertOut>> {
    Ok(axum::Json(s.app.alert_snooze(&p, &meta, alert_id(&id)?, b.until).await?.into()))
}

/// Marks an alert as being looked at.
#[utoipa::path(post, path = "/alerts/{id}/acknowledge", tag = "alerts", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AlertOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn acknowledge(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertOut>> {
    Ok(axum::Json(s.app.alert_acknowledge(&p, &meta, alert_id(&id)?).await?.into()))
}
