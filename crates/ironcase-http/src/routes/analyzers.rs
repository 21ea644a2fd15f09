//! `/analyzers`: enrichment services (owners and admins, plan feature
//! `webhooks`), their attempts, messages and replays; and an indicator's
//! analysis: `POST /iocs/{id}/analyze`, `GET /iocs/{id}/reports`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::analyzers::{Analyzer, AnalyzerChange, AnalyzerConfig, AnalyzerCreated, NewAnalyzer, Queued};
use ironcase_app::store::report::ReportRow;
use ironcase_app::webhooks::Family;
use ironcase_app::Principal;
use ironcase_domain::ioc::IocType;
use ironcase_domain::{IocId, MessageId, Timestamp, Tlp, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::webhooks::{AttemptOut, MessageOut, Replay, Replayed};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(attempts))
        .routes(routes!(messages))
        .routes(routes!(replay))
        .routes(routes!(analyze))
        .routes(routes!(reports))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAnalyzer {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Where indicators are posted (signed like webhooks): `https`, at a public address.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// New indicators of these types are sent by themselves; empty: on demand only.
    #[serde(default)]
    pub ioc_types: Vec<IocType>,
    /// Indicators marked above this are never sent (default amber).
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAnalyzer {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    #[serde(default)]
    pub ioc_types: Option<Vec<IocType>>,
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct AnalyzerOut {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
    pub ioc_types: Vec<IocType>,
    pub max_tlp: Tlp,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Analyzer> for AnalyzerOut {
    fn from(a: Analyzer) -> Self {
        let max_tlp = a.config.ceiling();
        let (w, AnalyzerConfig { ioc_types, .. }) = (a.row, a.config);
        AnalyzerOut {
            id: w.id,
            name: w.description,
            url: w.url,
            ioc_types,
            max_tlp,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            failing_since: w.failing_since,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A new analyzer with its signing secret, in this answer only.
#[derive(Serialize, ToSchema)]
pub struct AnalyzerWithSecret {
    #[serde(flatten)]
    pub analyzer: AnalyzerOut,
    /// The signing secret (`whsec_…`, Standard Webhooks).
    pub secret: String,
}

impl From<AnalyzerCreated> for AnalyzerWithSecret {
    fn from(a: AnalyzerCreated) -> Self {
        AnalyzerWithSecret { analyzer: a.analyzer.into(), secret: a.secret }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// These analyzers; omitted: every enabled one whose ceiling allows the indicator.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    pub analyzers: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedOut {
    pub analyzer_id: WebhookId,
    /// The message carrying the indicator (see the analyzer's attempts).
    pub message_id: MessageId,
}

impl From<Queued> for QueuedOut {
    fn from(q: Queued) -> Self {
        QueuedOut { analyzer_id: q.analyzer, message_id: q.message }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Analysis {
    pub queued: Vec<QueuedOut>,
}

#[derive(Serialize, ToSchema)]
pub struct ReportOut {
    pub analyzer_id: WebhookId,
    /// The analyzer's name when it reported.
    pub analyzer: String,
    /// `malicious`, `suspicious`, `benign` or `unknown`.
    pub verdict: String,
    pub summary: String,
    pub link: Option<String>,
    /// The analyzer's own details.
    pub raw: serde_json::Value,
    pub at: Timestamp,
}

impl From<ReportRow> for ReportOut {
    fn from(r: ReportRow) -> Self {
        ReportOut {
            analyzer_id: r.analyzer,
            analyzer: r.analyzer_name,
            verdict: r.verdict,
            summary: r.summary,
            link: r.link,
            raw: serde_json::from_str(&r.raw).unwrap_or(serde_json::Value::Null),
            at: r.at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Reports {
    pub items: Vec<ReportOut>,
}

fn analyzer_id(raw: &str) -> ApiResult<WebhookId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Creates an analyzer. The secret is in this answer only.
#[utoipa::path(post, path = "/analyzers", tag = "analyzers", request_body = CreateAnalyzer, security(("bearer" = [])),
    responses((status = 201, body = AnalyzerWithSecret), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateAnalyzer>,
) -> ApiResult<(StatusCode, axum::Json<AnalyzerWithSecret>)> {
    let input =
        NewAnalyzer { name: b.name, url: b.url, config: AnalyzerConfig { ioc_types: b.ioc_types, max_tlp: b.max_tlp }, enabled: b.enabled };
    Ok((StatusCode::CREATED, axum::Json(s.app.analyzer_create(&p, &meta, input).await?.into())))
}

/// The organisation's analyzers (no secrets), oldest first.
#[utoipa::path(get, path = "/analyzers", tag = "analyzers", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<AnalyzerOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AnalyzerOut>>> {
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.analyzer_list(&p, &meta, cursor, size).await?.into()))
}

#[utoipa::path(get, path = "/analyzers/{id}", tag = "analyzers", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AnalyzerOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<AnalyzerOut>> {
    Ok(axum::Json(s.app.analyzer_get(&p, &meta, analyzer_id(&id)?).await?.into()))
}

/// Changes an analyzer's name, address, indicator types, ceiling or whether it is on.
#[utoipa::path(patch, path = "/analyzers/{id}", tag = "analyzers", request_body = UpdateAnalyzer, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AnalyzerOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<UpdateAnalyzer>,
) -> ApiResult<axum::Json<AnalyzerOut>> {
    let change = AnalyzerChange { name: b.name, url: b.url, ioc_types: b.ioc_types, max_tlp: b.max_tlp, enabled: b.enabled };
    Ok(axum::Json(s.app.analyzer_update(&p, &meta, analyzer_id(&id)?, change).await?.into()))
}

/// Deletes an analyzer with its messages and attempts; its reports stay.
#[utoipa::path(delete, path = "/analyzers/{id}", tag = "analyzers", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.endpoint_delete(&p, &meta, Family::Analyzers, analyzer_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every attempt to send to the analyzer, newest first.
#[utoipa::path(get, path = "/analyzers/{id}/attempts", tag = "analyzers", security(("bearer" = [])),
    params(("id" = String, Path), ("outcome" = Option<String>, Query, description = "success or failure"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<AttemptOut>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn attempts(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AttemptOut>>> {
    super::webhooks::attempts_of(s, p, meta, Family::Analyzers, &id, q).await
}

/// The analyzer's messages of one status, oldest first (`failed`: the dead letters).
#[utoipa::path(get, path = "/analyzers/{id}/messages", tag = "analyzers", security(("bearer" = [])),
    params(("id" = String, Path), ("status" = Option<String>, Query, description = "pending, delivered or failed (default)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<MessageOut>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn messages(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<axum::Json<PageOut<MessageOut>>> {
    super::webhooks::messages_of(s, p, meta, Family::Analyzers, &id, q).await
}

/// Sends one finished message again (same id), or every failed one since a time.
#[utoipa::path(post, path = "/analyzers/{id}/replay", tag = "analyzers", request_body = Replay, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Replayed), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn replay(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Replay>,
) -> ApiResult<(StatusCode, axum::Json<Replayed>)> {
    super::webhooks::replay_of(s, p, meta, Family::Analyzers, &id, b).await
}

/// Sends the indicator to analyzers now; their reports arrive at
/// `GET /iocs/{id}/reports` (and as `ioc.analyzed` events).
#[utoipa::path(post, path = "/iocs/{id}/analyze", tag = "iocs", request_body = AnalyzeRequest, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Analysis), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn analyze(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<AnalyzeRequest>,
) -> ApiResult<(StatusCode, axum::Json<Analysis>)> {
    let ioc: IocId = id.parse().map_err(|_| ApiError::not_found())?;
    let only = match b.analyzers {
        Some(ids) => {
            let mut errs = ironcase_domain::validate::ValidationErrors::default();
            let parsed: Vec<WebhookId> = ids
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    a.parse().map_err(|_| errs.push(&format!("analyzers[{i}]"), "is not an analyzer of this organisation")).ok()
                })
                .collect();
            errs.into_result().map_err(ironcase_app::AppError::from)?;
            Some(parsed)
        }
        None => None,
    };
    let queued = s.app.ioc_analyze(&p, &meta, ioc, only).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Analysis { queued: queued.into_iter().map(QueuedOut::from).collect() })))
}

/// Each analyzer's latest report on the indicator, newest first.
#[utoipa::path(get, path = "/iocs/{id}/reports", tag = "iocs", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Reports), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn reports(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<Reports>> {
    let ioc: IocId = id.parse().map_err(|_| ApiError::not_found())?;
    let items = s.app.ioc_reports(&p, &meta, ioc).await?.into_iter().map(ReportOut::from).collect();
    Ok(axum::Json(Reports { items }))
}
