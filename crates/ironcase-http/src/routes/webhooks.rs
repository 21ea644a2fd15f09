//! `/webhooks`: endpoints (owners and admins, plan feature `webhooks`), their
//! attempts, messages and replays.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::store::webhook::{AttemptRow, MessageRow, WebhookRow};
use ironcase_app::webhooks::{Family, NewWebhook, WebhookChange, WithSecret};
use ironcase_app::Principal;
use ironcase_domain::{MessageId, Timestamp, WebhookId};
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
        .routes(routes!(get, update, delete))
        .routes(routes!(test))
        .routes(routes!(rotate_secret))
        .routes(routes!(attempts))
        .routes(routes!(messages))
        .routes(routes!(replay))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where messages are posted: `https` (plain `http` only where the
    /// operator allows it), at a public address.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// The event types to receive (those of `GET /events`), or `["*"]`.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<String>>,
    /// Enabling a disabled endpoint clears why it was disabled; its pending
    /// messages go out again.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled (410 from the receiver, or 5 days of failures).
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed; null: the last one succeeded.
    pub failing_since: Option<Timestamp>,
    /// Until when the previous secret still signs alongside the new one.
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<WebhookRow> for WebhookOut {
    fn from(w: WebhookRow) -> Self {
        WebhookOut {
            id: w.id,
            url: w.url,
            description: w.description,
            event_types: w.event_types,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            failing_since: w.failing_since,
            previous_secret_until: w.previous_until,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// An endpoint with its secret: returned only by create and rotate-secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// The signing secret (`whsec_…`, Standard Webhooks). Shown only now.
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecret {
    fn from(w: WithSecret) -> Self {
        WebhookWithSecret { webhook: w.webhook.into(), secret: w.secret }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AttemptOut {
    pub id: i64,
    pub message_id: MessageId,
    pub at: Timestamp,
    /// The receiver's status; null when it did not answer.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub success: bool,
    /// Why there was no answer.
    pub error: Option<String>,
    /// The first 1 KB of the answer.
    pub response: String,
}

impl From<AttemptRow> for AttemptOut {
    fn from(a: AttemptRow) -> Self {
        AttemptOut {
            id: a.id,
            message_id: a.message_id,
            at: a.at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            success: a.success,
            error: a.error,
            response: a.response,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    /// The `webhook-id` header: the same on every attempt.
    pub id: MessageId,
    #[serde(rename = "type")]
    pub kind: String,
    /// The event it carries; null for a test message.
    pub event_id: Option<i64>,
    /// `pending`, `delivered` or `failed` (retries exhausted).
    pub status: String,
    /// Attempts since it was queued or last replayed (the attempt log keeps
    /// them all).
    pub attempts: i64,
    /// When the next attempt is due (pending messages).
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The body as sent.
    pub payload: serde_json::Value,
}

impl From<MessageRow> for MessageOut {
    fn from(m: MessageRow) -> Self {
        MessageOut {
            id: m.id,
            kind: m.kind,
            event_id: m.event_id,
            next_attempt_at: (m.status == "pending").then_some(m.next_at),
            status: m.status,
            attempts: m.attempts,
            created_at: m.created_at,
            finished_at: m.finished_at,
            payload: serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// This message again (delivered or failed).
    #[serde(default)]
    pub message_id: Option<String>,
    /// Every failed message created at or after this time (when no
    /// `message_id`); omitted: every failed one.
    #[serde(default)]
    pub since: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// Messages sent again.
    pub messages: usize,
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    pub message_id: MessageId,
}

fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Creates an endpoint; it receives events committed from now on. The
/// secret is in this answer only.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook, security(("bearer" = [])),
    responses((status = 201, body = WebhookWithSecret), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateWebhook>,
) -> ApiResult<(StatusCode, axum::Json<WebhookWithSecret>)> {
    let input = NewWebhook { url: b.url, description: b.description, event_types: b.event_types, enabled: b.enabled };
    Ok((StatusCode::CREATED, axum::Json(s.app.webhook_create(&p, &meta, input).await?.into())))
}

/// The organisation's endpoints (no secrets), oldest first.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<WebhookOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<WebhookOut>>> {
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.webhook_list(&p, &meta, cursor, size).await?.into()))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WebhookOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<WebhookOut>> {
    Ok(axum::Json(s.app.webhook_get(&p, &meta, webhook_id(&id)?).await?.into()))
}

/// Changes an endpoint's address, description, event types or whether it is on.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", request_body = UpdateWebhook, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<UpdateWebhook>,
) -> ApiResult<axum::Json<WebhookOut>> {
    let change = WebhookChange { url: b.url, description: b.description, event_types: b.event_types, enabled: b.enabled };
    Ok(axum::Json(s.app.webhook_update(&p, &meta, webhook_id(&id)?, change).await?.into()))
}

/// Deletes an endpoint with its messages and attempts.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.endpoint_delete(&p, &meta, Family::Webhooks, webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a `webhook.test` message, delivered like any other.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = TestSent), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn test(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<TestSent>)> {
    let message_id = s.app.webhook_test(&p, &meta, webhook_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(TestSent { message_id })))
}

/// A new secret, in this answer only; the previous one still signs
/// alongside it for 24 hours (two signatures in `webhook-signature`).
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WebhookWithSecret>> {
    Ok(axum::Json(s.app.webhook_rotate(&p, &meta, webhook_id(&id)?).await?.into()))
}

/// Every attempt to deliver to the endpoint, newest first; `outcome`
/// keeps successes or failures.
#[utoipa::path(get, path = "/webhooks/{id}/attempts", tag = "webhooks", security(("bearer" = [])),
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
    attempts_of(s, p, meta, Family::Webhooks, &id, q).await
}

/// The attempts of an endpoint of any family (webhooks, channels, analyzers).
pub(crate) async fn attempts_of(
    s: AppState,
    p: Principal,
    meta: ironcase_app::RequestMeta,
    family: Family,
    id: &str,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AttemptOut>>> {
    let outcome = q.parse(
        "outcome",
        |v| match v {
            "success" => Some(true),
            "failure" => Some(false),
            _ => None,
        },
        "success or failure",
    );
    let (before, size) = q.page(ironcase_app::page::parse_seq, 50);
    q.finish()?;
    Ok(axum::Json(s.app.webhook_attempts(&p, &meta, family, webhook_id(id)?, outcome, before, size).await?.into()))
}

/// The endpoint's messages of one status, oldest first: `failed` is the
/// dead-letter view (retries exhausted; replay them).
#[utoipa::path(get, path = "/webhooks/{id}/messages", tag = "webhooks", security(("bearer" = [])),
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
    messages_of(s, p, meta, Family::Webhooks, &id, q).await
}

/// The messages of an endpoint of any family.
pub(crate) async fn messages_of(
    s: AppState,
    p: Principal,
    meta: ironcase_app::RequestMeta,
    family: Family,
    id: &str,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<MessageOut>>> {
    let status =
        q.parse("status", |v| ["pending", "delivered", "failed"].contains(&v).then(|| v.to_owned()), "pending, delivered or failed");
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    let status = status.unwrap_or_else(|| "failed".into());
    Ok(axum::Json(s.app.webhook_messages(&p, &meta, family, webhook_id(id)?, &status, cursor, size).await?.into()))
}

/// Sends one finished message again (same id), or every failed one since
/// a time.
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "webhooks", request_body = Replay, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Replayed), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn replay(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Replay>,
) -> ApiResult<(StatusCode, axum::Json<Replayed>)> {
    replay_of(s, p, meta, Family::Webhooks, &id, b).await
}

/// Replays messages of an endpoint of any family.
pub(crate) async fn replay_of(
    s: AppState,
    p: Principal,
    meta: ironcase_app::RequestMeta,
    family: Family,
    id: &str,
    b: Replay,
) -> ApiResult<(StatusCode, axum::Json<Replayed>)> {
    let message = match b.message_id {
        Some(m) => Some(m.parse::<MessageId>().map_err(|_| ApiError::not_found())?),
        None => None,
    };
    let messages = s.app.webhook_replay(&p, &meta, family, webhook_id(id)?, message, b.since).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Replayed { messages })))
}
