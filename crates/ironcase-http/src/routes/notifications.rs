//! `/notification-channels`: e-mail, Slack, Teams and generic-webhook
//! channels with their rules and templates (owners and admins; the
//! channels that post to the internet need the plan's `webhooks`), their
//! attempts, messages and replays; and `/auth/notifications`, what the
//! caller wants by e-mail.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::notifications::{Channel, ChannelChange, ChannelConfig, Created, NewChannel, Prefs, Preview, Rule};
use ironcase_app::webhooks::Family;
use ironcase_app::Principal;
use ironcase_domain::{Severity, Timestamp, Tlp, WebhookId};
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
        .routes(routes!(preview))
        .routes(routes!(attempts))
        .routes(routes!(messages))
        .routes(routes!(replay))
        .routes(routes!(prefs, set_prefs))
}

/// Which events a channel carries.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIo {
    /// Event types (those of `GET /events`), or `["*"]`.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Vec<String>,
    /// Only events on incidents (or alerts) of these severities; empty or
    /// omitted: any.
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// E-mail only: to the incident's assignee (as their preferences allow).
    #[serde(default)]
    pub assigned_to_me: bool,
}

impl From<RuleIo> for Rule {
    fn from(r: RuleIo) -> Self {
        Rule { event_types: r.event_types, severities: r.severities, assigned_to_me: r.assigned_to_me }
    }
}

impl From<Rule> for RuleIo {
    fn from(r: Rule) -> Self {
        RuleIo { event_types: r.event_types, severities: r.severities, assigned_to_me: r.assigned_to_me }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `email`, `slack`, `teams` or `generic` (a signed webhook of the rendered message).
    pub kind: String,
    /// Slack's or Teams' incoming-webhook address (kept sealed, never shown
    /// again), or the generic webhook's; none for e-mail.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    #[schema(min_items = 1, max_items = 20)]
    pub rules: Vec<RuleIo>,
    /// A minijinja template of the message (for e-mail, its body); omitted: the default.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub template: Option<String>,
    /// E-mail: a minijinja template of the subject.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub subject: Option<String>,
    /// E-mail: fixed addresses.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub recipients: Vec<String>,
    /// E-mail: the organisation's members, as each one's preferences say.
    #[serde(default)]
    pub members: bool,
    /// Events on incidents marked above this are not sent (default amber).
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 20)]
    pub rules: Option<Vec<RuleIo>>,
    /// Empty: back to the default.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub template: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub subject: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub recipients: Option<Vec<String>>,
    #[serde(default)]
    pub members: Option<bool>,
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
    /// Enabling a disabled channel clears why it was disabled.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelOut {
    pub id: WebhookId,
    pub name: String,
    pub kind: String,
    /// Where it posts; for Slack and Teams only the host (the address is a secret).
    pub url: Option<String>,
    pub rules: Vec<RuleIo>,
    pub template: Option<String>,
    pub subject: Option<String>,
    pub recipients: Vec<String>,
    pub members: bool,
    pub max_tlp: Tlp,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Channel> for ChannelOut {
    fn from(c: Channel) -> Self {
        let ChannelConfig { rules, template, subject, recipients, members, max_tlp } = c.config;
        let w = c.row;
        ChannelOut {
            id: w.id,
            name: w.description,
            url: (!w.url.is_empty()).then_some(w.url),
            kind: w.kind,
            rules: rules.into_iter().map(RuleIo::from).collect(),
            template,
            subject,
            recipients,
            members,
            max_tlp: max_tlp.unwrap_or(Tlp::Amber),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            failing_since: w.failing_since,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A new channel; a generic webhook's signing secret is in this answer only.
#[derive(Serialize, ToSchema)]
pub struct ChannelCreated {
    #[serde(flatten)]
    pub channel: ChannelOut,
    /// Generic webhooks: the signing secret (`whsec_…`, Standard Webhooks).
    pub secret: Option<String>,
}

impl From<Created> for ChannelCreated {
    fn from(c: Created) -> Self {
        ChannelCreated { channel: c.channel.into(), secret: c.secret }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// `email`, `slack`, `teams` or `generic`.
    pub kind: String,
    /// The event type of the example.
    pub event_type: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub template: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub subject: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewOut {
    /// E-mail's subject, Teams' title.
    pub subject: Option<String>,
    pub text: String,
    /// The body a channel of the kind would be sent.
    pub payload: serde_json::Value,
}

impl From<Preview> for PreviewOut {
    fn from(p: Preview) -> Self {
        PreviewOut { subject: p.subject, text: p.text, payload: p.payload }
    }
}

/// What a member wants by e-mail from the organisation's channels.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefsIo {
    /// Whether they receive the channels' e-mail at all.
    pub email: bool,
    /// The event types they want, or `["*"]`.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Vec<String>,
    /// Only events on incidents assigned to them.
    pub only_assigned: bool,
}

impl From<Prefs> for PrefsIo {
    fn from(p: Prefs) -> Self {
        PrefsIo { email: p.email, event_types: p.event_types, only_assigned: p.only_assigned }
    }
}

fn channel_id(raw: &str) -> ApiResult<WebhookId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Creates a channel; it carries events committed from now on.
#[utoipa::path(post, path = "/notification-channels", tag = "notifications", request_body = CreateChannel, security(("bearer" = [])),
    responses((status = 201, body = ChannelCreated), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateChannel>,
) -> ApiResult<(StatusCode, axum::Json<ChannelCreated>)> {
    let config = ChannelConfig {
        rules: b.rules.into_iter().map(Rule::from).collect(),
        template: b.template,
        subject: b.subject,
        recipients: b.recipients,
        members: b.members,
        max_tlp: b.max_tlp,
    };
    let input = NewChannel { name: b.name, kind: b.kind, url: b.url, config, enabled: b.enabled };
    Ok((StatusCode::CREATED, axum::Json(s.app.channel_create(&p, &meta, input).await?.into())))
}

/// The organisation's channels, oldest first.
#[utoipa::path(get, path = "/notification-channels", tag = "notifications", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<ChannelOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<ChannelOut>>> {
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.channel_list(&p, &meta, cursor, size).await?.into()))
}

#[utoipa::path(get, path = "/notification-channels/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ChannelOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<ChannelOut>> {
    Ok(axum::Json(s.app.channel_get(&p, &meta, channel_id(&id)?).await?.into()))
}

/// Changes a channel's name, address, rules, templates, recipients,
/// ceiling or whether it is on.
#[utoipa::path(patch, path = "/notification-channels/{id}", tag = "notifications", request_body = UpdateChannel, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ChannelOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<UpdateChannel>,
) -> ApiResult<axum::Json<ChannelOut>> {
    let change = ChannelChange {
        name: b.name,
        url: b.url,
        rules: b.rules.map(|r| r.into_iter().map(Rule::from).collect()),
        template: b.template,
        subject: b.subject,
        recipients: b.recipients,
        members: b.members,
        max_tlp: b.max_tlp,
        enabled: b.enabled,
    };
    Ok(axum::Json(s.app.channel_update(&p, &meta, channel_id(&id)?, change).await?.into()))
}

/// Deletes a channel with its messages and attempts.
#[utoipa::path(delete, path = "/notification-channels/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.endpoint_delete(&p, &meta, Family::Channels, channel_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renders a template for an example event of a type, as a channel of the
/// kind would send it; a template that does not render is a 422 saying why.
#[utoipa::path(post, path = "/notification-channels/preview", tag = "notifications", request_body = PreviewRequest, security(("bearer" = [])),
    responses((status = 200, body = PreviewOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn preview(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<PreviewRequest>,
) -> ApiResult<axum::Json<PreviewOut>> {
    let out = s.app.channel_preview(&p, &meta, &b.kind, &b.event_type, b.template.as_deref(), b.subject.as_deref()).await?;
    Ok(axum::Json(out.into()))
}

/// Every attempt to deliver the channel's messages, newest first.
#[utoipa::path(get, path = "/notification-channels/{id}/attempts", tag = "notifications", security(("bearer" = [])),
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
    super::webhooks::attempts_of(s, p, meta, Family::Channels, &id, q).await
}

/// The channel's messages of one status, oldest first (`failed`: the dead letters).
#[utoipa::path(get, path = "/notification-channels/{id}/messages", tag = "notifications", security(("bearer" = [])),
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
    super::webhooks::messages_of(s, p, meta, Family::Channels, &id, q).await
}

/// Sends one finished message again (same id), or every failed one since a time.
#[utoipa::path(post, path = "/notification-channels/{id}/replay", tag = "notifications", request_body = Replay, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Replayed), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn replay(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<Replay>,
) -> ApiResult<(StatusCode, axum::Json<Replayed>)> {
    super::webhooks::replay_of(s, p, meta, Family::Channels, &id, b).await
}

/// What the caller wants by e-mail from this organisation's channels.
#[utoipa::path(get, path = "/auth/notifications", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = PrefsIo), (status = 401, body = Problem)))]
pub async fn prefs(State(s): State<AppState>, p: Principal) -> ApiResult<axum::Json<PrefsIo>> {
    Ok(axum::Json(s.app.notification_prefs(&p).await?.into()))
}

#[utoipa::path(put, path = "/auth/notifications", tag = "auth", request_body = PrefsIo, security(("bearer" = [])),
    responses((status = 200, body = PrefsIo), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn set_prefs(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<PrefsIo>,
) -> ApiResult<axum::Json<PrefsIo>> {
    let input = Prefs { email: b.email, event_types: b.event_types, only_assigned: b.only_assigned };
    Ok(axum::Json(s.app.notification_prefs_set(&p, &meta, input).await?.into()))
}
