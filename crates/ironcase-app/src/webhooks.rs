//! Webhooks (Standard Webhooks): an organisation's endpoints, each with a
//! secret shown once (`whsec_…`), the event types it wants and its log of
//! attempts; and the dispatcher every node runs, which turns committed
//! events into messages (the outbox, by cursor), leases the due ones, signs
//! and sends them, and records each attempt with its outcome.
//!
//! Delivery is at least once and in order per endpoint: an endpoint's next
//! message waits until the one before it is delivered or has failed for
//! good. 2xx is delivered; 410 disables the endpoint at once; anything else
//! (or no answer within the time-out) is tried again after the next step of
//! the back-off, with jitter; past the last step the message has failed (a
//! dead letter, replayable). An endpoint failing for five days is disabled,
//! with an event `webhook.disabled`, an audit entry and an e-mail to the
//! owners (when the server sends e-mail).

use std::time::Duration;

use base64::Engine;
use ironcase_domain::plan::Feature;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{MessageId, OrgId, Permission, Timestamp, WebhookId};
use ironcase_store::event;
use ironcase_store::webhook::{self as store, AttemptRow, Due, MessageRow, WebhookRow};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{crypto, App, AppError, Principal, RequestMeta, Result};

/// How long the previous secret still signs after a rotation.
const PREVIOUS_SECRET_FOR_MS: i64 = 24 * 3600 * 1000;
/// An endpoint failing this long is disabled.
const DISABLE_AFTER_MS: i64 = 5 * 24 * 3600 * 1000;
/// The most of an answer kept in the attempt log, and read at all.
const LOGGED_ANSWER: usize = 1024;
const READ_ANSWER: usize = 64 * 1024;
/// Messages of one endpoint leased at once (a run, sent in order), and how
/// long a lease holds.
const RUN: i64 = 100;
const LEASE_MS: i64 = 60_000;
/// Most endpoints an organisation may have.
const MAX_ENDPOINTS: usize = 50;

/// The back-off between attempts: after the first failure, the first step;
/// past the last, the message has failed. About a day in all.
pub fn default_backoff() -> Vec<Duration> {
    [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600].into_iter().map(Duration::from_secs).collect()
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: Option<bool>,
}

/// A change to an endpoint: what is `Some` changes. Enabling one clears
/// why it was disabled and its failure run.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its secret, which is shown this once.
pub struct WithSecret {
    pub webhook: WebhookRow,
    pub secret: String,
}

impl std::fmt::Debug for WithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithSecret").field("webhook", &self.webhook).finish_non_exhaustive()
    }
}

/// The three uses of the outbox's endpoints, each with its own API: what
/// kinds of endpoint it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Webhooks,
    Channels,
    Analyzers,
}

impl Family {
    /// What its audit entries call one.
    pub fn noun(self) -> &'static str {
        match self {
            Family::Webhooks => "webhook",
            Family::Channels => "channel",
            Family::Analyzers => "analyzer",
        }
    }

    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            Family::Webhooks => &["webhook"],
            Family::Channels => crate::notifications::CHANNEL_KINDS,
            Family::Analyzers => &["analyzer"],
        }
    }
}

/// An endpoint of the family: another family's is not found.
pub(crate) fn endpoint(c: &ironcase_store::Conn, org: OrgId, id: WebhookId, family: Family) -> Result<WebhookRow> {
    let w = store::get(c, org, id)?;
    if !family.kinds().contains(&w.kind.as_str()) {
        return Err(AppError::NotFound);
    }
    Ok(w)
}

/// Fails (422 on `field`) when the organisation has as many endpoints of
/// the family as it may.
pub(crate) fn room_for_one(c: &ironcase_store::Conn, org: OrgId, family: Family, field: &str) -> Result<()> {
    if store::list(c, org, family.kinds(), None, MAX_ENDPOINTS as i64 + 1)?.len() >= MAX_ENDPOINTS {
        return Err(ValidationErrors::one(field, format!("an organisation may have at most {MAX_ENDPOINTS} of these")).into());
    }
    Ok(())
}

/// Turns an endpoint on or off; turning it on clears why it was turned
/// off and its run of failures.
pub(crate) fn switch(w: &mut WebhookRow, on: bool) {
    if on && !w.enabled {
        (w.disabled_reason, w.failing_since) = (None, None);
    }
    w.enabled = on;
}

pub(crate) fn new_secret() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(crypto::random_bytes::<32>()))
}

pub(crate) fn aad(org: OrgId, id: WebhookId) -> String {
    format!("webhook:{org}:{id}")
}

/// The Standard Webhooks signature of a message: base64 of HMAC-SHA256
/// over `id.timestamp.body`, keyed by the secret's bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// What the enqueuing round has read once and may need again: incidents
/// by id, and each organisation's members with their preferences.
#[derive(Default)]
pub(crate) struct Seen {
    pub incidents: std::collections::HashMap<ironcase_domain::IncidentId, Option<ironcase_store::incident::IncidentRow>>,
    pub audiences: std::collections::HashMap<OrgId, std::sync::Arc<crate::notifications::Audience>>,
}

/// A webhook's body: the event as the API shows it.
fn webhook_payload(e: &ironcase_store::event::EventRow) -> String {
    json!({ "type": e.kind, "timestamp": e.created_at, "data": event_json(e) }).to_string()
}

/// An event as the API shows it.
pub(crate) fn event_json(e: &ironcase_store::event::EventRow) -> serde_json::Value {
    json!({ "id": e.id, "type": e.kind, "incident_id": e.incident_id, "actor_id": e.actor_id, "at": e.created_at, "data": e.data })
}

impl App {
    /// Whether the principal may manage the family's endpoints.
    pub(crate) async fn family_allowed(&self, p: &Principal, meta: &RequestMeta, family: Family) -> Result<()> {
        match family {
            Family::Channels => self.require(p, meta, Permission::OrganizationManage).await,
            Family::Webhooks | Family::Analyzers => self.webhooks_allowed(p, meta).await,
        }
    }

    pub(crate) async fn webhooks_allowed(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let org = p.org;
        let limits = self.store().read_now(move |c| crate::quotas::limits(c, org)).await?;
        if !limits.has(Feature::Webhooks) {
            return Err(AppError::FeatureNotInPlan("webhooks"));
        }
        Ok(())
    }

    /// Checks an endpoint's address: `https` (or `http` where the operator
    /// allows it), a host at public addresses (unless allowed), no
    /// credentials or fragment.
    pub(crate) async fn checked_url(&self, raw: &str, errs: &mut ValidationErrors) -> String {
        let url = validate::text("url", raw, 1, 2000, errs);
        let Ok(u) = reqwest::Url::parse(&url) else {
            errs.push("url", "must be an absolute URL");
            return url;
        };
        let s = self.settings();
        match u.scheme() {
            "https" => {}
            "http" if s.webhook_allow_http => {}
            _ => errs.push("url", "must be https"),
        }
        if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
            errs.push("url", "must not carry credentials or a fragment");
        }
        match u.host_str() {
            None => errs.push("url", "must name a host"),
            Some(host) if !s.webhook_allow_private => {
                if !crate::outbound::host_is_public(host, u.port_or_known_default().unwrap_or(443)).await {
                    errs.push("url", "must be at a public address");
                }
            }
            Some(_) => {}
        }
        url
    }

    pub(crate) fn checked_types(field: &str, types: &[String], errs: &mut ValidationErrors) -> Vec<String> {
        if types.is_empty() || types.len() > 50 {
            errs.push(field, "must list 1 to 50 event types, or \"*\"");
        }
        let mut out: Vec<String> = Vec::new();
        for (i, t) in types.iter().enumerate() {
            if t != "*" && !crate::live::EVENT_TYPES.contains(&t.as_str()) {
                errs.push(&format!("{field}[{i}]"), format!("is not an event type ({})", crate::live::EVENT_TYPES.join(", ")));
            } else if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// `POST /webhooks`: a new endpoint; it receives events committed from
    /// now on. Its secret is shown this once.
    pub async fn webhook_create(&self, p: &Principal, meta: &RequestMeta, input: NewWebhook) -> Result<WithSecret> {
        self.webhooks_allowed(p, meta).await?;
        let mut errs = ValidationErrors::default();
        let url = self.checked_url(&input.url, &mut errs).await;
        let description = validate::text("description", input.description.as_deref().unwrap_or(""), 0, 500, &mut errs);
        let event_types = Self::checked_types("event_types", &input.event_types, &mut errs);
        errs.into_result()?;
        let (org, id, now, secret) = (p.org, WebhookId::new(), self.clock().now(), new_secret());
        let sealed = self.inner.master.seal(secret.as_bytes(), &aad(org, id))?;
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                room_for_one(c, org, Family::Webhooks, "url")?;
                let row = WebhookRow {
                    org,
                    id,
                    url,
                    description,
                    event_types,
                    enabled: input.enabled.unwrap_or(true),
                    sealed_secret: sealed,
                    sealed_previous: None,
                    previous_until: None,
                    event_cursor: store::last_event(c, org)?,
                    failing_since: None,
                    disabled_reason: None,
                    created_at: now,
                    updated_at: now,
                    kind: "webhook".into(),
                    config: "{}".into(),
                    sealed_url: None,
                };
                store::insert(c, &row)?;
                let details = json!({ "url": row.url, "event_types": row.event_types });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "webhook.create", ("webhook", &id.to_string()), details))?;
                Ok::<_, AppError>(row)
            })
            .await?;
        Ok(WithSecret { webhook: row, secret })
    }

    pub async fn webhook_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, WebhookId)>,
        size: PageSize,
    ) -> Result<Page<WebhookRow>> {
        self.webhooks_allowed(p, meta).await?;
        let org = p.org;
        let rows = self.store().read(move |c| store::list(c, org, Family::Webhooks.kinds(), cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| keyset(last.created_at.0, last.id)))
    }

    pub async fn webhook_get(&self, p: &Principal, meta: &RequestMeta, id: WebhookId) -> Result<WebhookRow> {
        self.webhooks_allowed(p, meta).await?;
        let org = p.org;
        self.store().read_now(move |c| endpoint(c, org, id, Family::Webhooks)).await
    }

    /// `PATCH /webhooks/{id}`.
    pub async fn webhook_update(&self, p: &Principal, meta: &RequestMeta, id: WebhookId, change: WebhookChange) -> Result<WebhookRow> {
        self.webhooks_allowed(p, meta).await?;
        let mut errs = ValidationErrors::default();
        let url = match &change.url {
            Some(u) => Some(self.checked_url(u, &mut errs).await),
            None => None,
        };
        let description = change.description.as_deref().map(|d| validate::text("description", d, 0, 500, &mut errs));
        let types = change.event_types.as_deref().map(|t| Self::checked_types("event_types", t, &mut errs));
        errs.into_result()?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                let mut w = endpoint(c, org, id, Family::Webhooks)?;
                if let Some(u) = url {
                    w.url = u;
                }
                if let Some(d) = description {
                    w.description = d;
                }
                if let Some(t) = types {
                    w.event_types = t;
                }
                if let Some(on) = change.enabled {
                    switch(&mut w, on);
                }
                w.updated_at = now;
                store::update(c, &w)?;
                let details = json!({ "url": w.url, "event_types": w.event_types, "enabled": w.enabled });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "webhook.update", ("webhook", &id.to_string()), details))?;
                Ok::<_, AppError>(w)
            })
            .await?;
        Ok(row)
    }

    /// `DELETE /webhooks/{id}`, `/notification-channels/{id}`,
    /// `/analyzers/{id}`: the endpoint with its messages and attempts (an
    /// analyzer's reports stay on the indicators, under its name).
    pub async fn endpoint_delete(&self, p: &Principal, meta: &RequestMeta, family: Family, id: WebhookId) -> Result<()> {
        self.family_allowed(p, meta, family).await?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let kind = family.noun();
        self.store()
            .write(move |c| {
                endpoint(c, org, id, family)?;
                store::delete(c, org, id)?;
                let action = format!("{kind}.delete");
                ironcase_store::audit::append(c, by(&p2, &meta2, now, &action, (kind, &id.to_string()), json!({})))?;
                Ok::<_, AppError>(())
            })
            .await
    }

    /// `POST /webhooks/{id}/rotate-secret`: a new secret, shown once; the old
    /// one signs alongside it for a day.
    pub async fn webhook_rotate(&self, p: &Principal, meta: &RequestMeta, id: WebhookId) -> Result<WithSecret> {
        self.webhooks_allowed(p, meta).await?;
        self.require_recent_proof(p)?;
        let (org, now, secret) = (p.org, self.clock().now(), new_secret());
        let sealed = self.inner.master.seal(secret.as_bytes(), &aad(org, id))?;
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                let mut w = endpoint(c, org, id, Family::Webhooks)?;
                w.sealed_previous = Some(std::mem::replace(&mut w.sealed_secret, sealed));
                w.previous_until = Some(Timestamp(now.0 + PREVIOUS_SECRET_FOR_MS));
                w.updated_at = now;
                store::update(c, &w)?;
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "webhook.rotate_secret", ("webhook", &id.to_string()), json!({})))?;
                Ok::<_, AppError>(w)
            })
            .await?;
        Ok(WithSecret { webhook: row, secret })
    }

    /// `POST /webhooks/{id}/test`: a `webhook.test` message, delivered like
    /// any other; its id.
    pub async fn webhook_test(&self, p: &Principal, meta: &RequestMeta, id: WebhookId) -> Result<MessageId> {
        self.webhooks_allowed(p, meta).await?;
        let (org, now, message) = (p.org, self.clock().now(), MessageId::new());
        let payload = json!({ "type": "webhook.test", "timestamp": now, "data": { "webhook_id": id } }).to_string();
        self.store()
            .write(move |c| {
                endpoint(c, org, id, Family::Webhooks)?;
                let m = MessageRow {
                    org,
                    id: message,
                    webhook_id: id,
                    event_id: None,
                    kind: "webhook.test".into(),
                    payload,
                    status: "pending".into(),
                    attempts: 0,
                    next_at: now,
                    created_at: now,
                    finished_at: None,
                };
                store::insert_message(c, &m)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(message)
    }

    /// `GET /webhooks/{id}/attempts` (and a channel's or an analyzer's):
    /// newest first, before attempt `before`.
    #[allow(clippy::too_many_arguments)]
    pub async fn webhook_attempts(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        family: Family,
        id: WebhookId,
        success: Option<bool>,
        before: Option<i64>,
        size: PageSize,
    ) -> Result<Page<AttemptRow>> {
        self.family_allowed(p, meta, family).await?;
        let org = p.org;
        let rows = self
            .store()
            .read(move |c| {
                endpoint(c, org, id, family)?;
                Ok::<_, AppError>(store::attempts(c, org, id, success, before, size.fetch())?)
            })
            .await?;
        Ok(Page::cut(rows, size, |last| last.id.to_string()))
    }

    /// `GET /webhooks/{id}/messages?status=`: pending, delivered, or failed
    /// (the dead letters), oldest first.
    #[allow(clippy::too_many_arguments)]
    pub async fn webhook_messages(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        family: Family,
        id: WebhookId,
        status: &str,
        cursor: Option<(i64, MessageId)>,
        size: PageSize,
    ) -> Result<Page<MessageRow>> {
        self.family_allowed(p, meta, family).await?;
        let (org, status) = (p.org, status.to_owned());
        let rows = self
            .store()
            .read(move |c| {
                endpoint(c, org, id, family)?;
                Ok::<_, AppError>(store::messages(c, org, id, &status, cursor, size.fetch())?)
            })
            .await?;
        Ok(Page::cut(rows, size, |last| keyset(last.created_at.0, last.id)))
    }

    /// `POST /webhooks/{id}/replay`: one finished message again (`message`),
    /// or every failed one since `since`; how many.
    pub async fn webhook_replay(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        family: Family,
        id: WebhookId,
        message: Option<MessageId>,
        since: Option<Timestamp>,
    ) -> Result<usize> {
        self.family_allowed(p, meta, family).await?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let n = self
            .store()
            .write(move |c| {
                endpoint(c, org, id, family)?;
                let n = store::replay(c, org, id, message, since.unwrap_or(Timestamp(0)), now)?;
                if message.is_some() && n == 0 {
                    return Err(AppError::NotFound);
                }
                let details = json!({ "message_id": message, "since": since, "messages": n });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "webhook.replay", ("webhook", &id.to_string()), details))?;
                Ok(n)
            })
            .await?;
        Ok(n)
    }

    /// Makes messages of the events committed since each enabled endpoint's
    /// cursor, and moves the cursor, in one write; how many.
    async fn webhook_enqueue(&self) -> Result<usize> {
        // A look first, so that an idle node writes nothing.
        let behind = self
            .store()
            .read_now(|c| {
                for w in store::enabled(c)? {
                    if !event::org_after(c, w.org, w.event_cursor, 1)?.is_empty() {
                        return Ok::<_, AppError>(true);
                    }
                }
                Ok(false)
            })
            .await?;
        if !behind {
            return Ok(0);
        }
        let (now, base) = (self.clock().now(), self.settings().public_url.trim_end_matches('/').to_owned());
        let mailer = self.mailer().enabled();
        self.store()
            .write(move |c| {
                let mut made = 0;
                let mut seen = Seen::default();
                for w in store::enabled(c)? {
                    let events = event::org_after(c, w.org, w.event_cursor, 1000)?;
                    let Some(last) = events.last().map(|e| e.event.id) else { continue };
                    for e in events {
                        let e = e.event;
                        let bodies = match w.kind.as_str() {
                            "webhook" if w.wants(&e.kind) => vec![webhook_payload(&e)],
                            "webhook" => Vec::new(),
                            "analyzer" => crate::analyzers::payloads(c, &w, &e)?,
                            _ => crate::notifications::payloads(c, &w, &e, &mut seen, &base, mailer)?,
                        };
                        for payload in bodies {
                            let m = MessageRow {
                                org: w.org,
                                id: MessageId::new(),
                                webhook_id: w.id,
                                event_id: Some(e.id),
                                kind: e.kind.clone(),
                                payload,
                                status: "pending".into(),
                                attempts: 0,
                                next_at: now,
                                created_at: now,
                                finished_at: None,
                            };
                            store::insert_message(c, &m)?;
                            made += 1;
                        }
                    }
                    store::advance(c, w.org, w.id, last)?;
                }
                Ok::<_, AppError>(made)
            })
            .await
    }

    /// One round of the dispatcher: enqueue, lease what is due (a run of
    /// messages per endpoint, in order), send the runs at once (each in
    /// order, stopping at its first failure), record the outcomes. How many
    /// were sent.
    pub async fn webhook_round(&self) -> Result<usize> {
        self.webhook_enqueue().await?;
        let now = self.clock().now();
        if !self.store().read_now(move |c| store::any_due(c, now)).await? {
            return Ok(0);
        }
        let runs = self.store().write(move |c| store::claim(c, now, Timestamp(now.0 + LEASE_MS), RUN)).await?;
        let results = futures::future::join_all(runs.into_iter().map(|run| self.webhook_send_run(run))).await;
        let n = results.iter().map(|(sent, _)| sent.len()).sum();
        let backoff = self.settings().webhook_backoff.clone();
        let now = self.clock().now();
        let disabled = self
            .store()
            .write(move |c| {
                let mut disabled = Vec::new();
                for (sent, untried) in results {
                    for m in untried {
                        store::release(c, m.org, m.id)?;
                    }
                    // A run is one endpoint's: read once; deleted while its
                    // messages were out, there is nothing to record.
                    let Some(first) = sent.first().map(|s| &s.attempt) else { continue };
                    let w = match store::get(c, first.org, first.webhook_id) {
                        Ok(w) => w,
                        Err(ironcase_store::StoreError::NotFound) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut last = None;
                    for Sent { attempt, failures, report } in sent {
                        let (status, next_at, gone) = outcome(&attempt, failures, &backoff, now);
                        store::record(c, &attempt, status, next_at)?;
                        if let Some(report) = report {
                            crate::analyzers::keep(c, &w, report, now)?;
                        }
                        last = Some((attempt, gone));
                    }
                    // A run stops at its first failure: only its last attempt may have failed.
                    let Some((attempt, gone)) = last else { continue };
                    if attempt.success {
                        if w.failing_since.is_some() {
                            store::set_failing(c, w.org, w.id, None)?;
                        }
                        continue;
                    }
                    let since = w.failing_since.unwrap_or(attempt.at);
                    store::set_failing(c, w.org, w.id, Some(since))?;
                    let reason = match (gone, now.0 - since.0 >= DISABLE_AFTER_MS) {
                        (true, _) => Some("the receiver answered 410 Gone"),
                        (false, true) => Some("every attempt failed for 5 days"),
                        _ => None,
                    };
                    if let (Some(reason), true) = (reason, w.enabled) {
                        store::disable(c, w.org, w.id, reason, now)?;
                        let data = json!({ "webhook_id": w.id, "url": w.url, "reason": reason });
                        event::append(c, w.org, None, "webhook.disabled", None, &data, now)?;
                        disabled.push((w.org, w.id, w.kind.clone(), format!("{} ({})", w.description, w.url), reason));
                        ironcase_store::audit::append(
                            c,
                            ironcase_store::audit::NewEntry {
                                tenant: w.org.to_string(),
                                at: now,
                                actor_id: None,
                                actor_kind: "system".into(),
                                action: "webhook.disabled".into(),
                                resource_type: Some("webhook".into()),
                                resource_id: Some(w.id.to_string()),
                                outcome: "success".into(),
                                request_id: None,
                                source_ip: None,
                                user_agent: None,
                                details: data,
                            },
                        )?;
                    }
                }
                Ok::<_, AppError>(disabled)
            })
            .await?;
        for (org, id, kind, what, reason) in disabled {
            self.tell_owners_disabled(org, id, &kind, &what, reason).await;
        }
        Ok(n)
    }

    /// E-mails the organisation's owners that an endpoint was turned off
    /// (when the server sends e-mail); a failure is logged, never retried.
    async fn tell_owners_disabled(&self, org: OrgId, id: WebhookId, kind: &str, what: &str, reason: &str) {
        if !self.mailer().enabled() {
            return;
        }
        let owners = match self.store().read(move |c| ironcase_store::org::list_members(c, org, None, 200)).await {
            Ok(m) => m.into_iter().filter(|m| m.role == ironcase_domain::Role::Owner).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the owners to tell of a disabled webhook");
                return;
            }
        };
        let (noun, path) = match kind {
            "webhook" => ("A webhook endpoint", "webhooks"),
            "analyzer" => ("An analyzer", "analyzers"),
            _ => ("A notification channel", "notifications"),
        };
        let page = format!("{}/{path}/{id}", self.settings().public_url.trim_end_matches('/'));
        let body = format!(
            "Ironcase turned off {} of your organisation:\n\n  {what}\n\nWhy: {reason}.\n\n\
             Messages for it wait until it is turned on again: {page}\n",
            noun.to_lowercase()
        );
        let subject = format!("{noun} was turned off");
        for o in owners {
            if self.mailer().send(&o.email, &subject, body.clone()).await.is_err() {
                tracing::warn!(webhook = %id, "could not e-mail an owner that a webhook was turned off");
            }
        }
    }

    /// Sends one endpoint's run in order, stopping at the first failure:
    /// the attempts made (each with the failures before it), and the
    /// messages not tried.
    async fn webhook_send_run(&self, run: Vec<Due>) -> (Vec<Sent>, Vec<MessageRow>) {
        let mut sent = Vec::with_capacity(run.len());
        let mut rest = run.into_iter();
        for d in rest.by_ref() {
            let s = self.webhook_send(d).await;
            let ok = s.attempt.success;
            sent.push(s);
            if !ok {
                break;
            }
        }
        (sent, rest.map(|d| d.message).collect())
    }

    /// Sends one message: an e-mail for an e-mail channel; else a POST,
    /// signed with the endpoint's secret (and the previous one while it
    /// still signs) where the receiver checks signatures. An analyzer's
    /// answer must be a report.
    async fn webhook_send(&self, d: Due) -> Sent {
        let m = &d.message;
        let started = std::time::Instant::now();
        let at = self.clock().now();
        let mut attempt = AttemptRow {
            org: m.org,
            id: 0,
            webhook_id: m.webhook_id,
            message_id: m.id,
            at,
            status_code: None,
            latency_ms: 0,
            success: false,
            error: None,
            response: String::new(),
        };
        let mut report = None;
        let result = if d.kind == "email" { self.send_email(m).await } else { self.post(&d, at).await };
        attempt.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok((status, body)) => {
                attempt.status_code = status.map(i64::from);
                attempt.success = status.is_none_or(|s| (200..300).contains(&s));
                attempt.response = String::from_utf8_lossy(&body[..body.len().min(LOGGED_ANSWER)]).into_owned();
                if attempt.success && d.kind == "analyzer" {
                    match crate::analyzers::parse_report(m, &body) {
                        Ok(r) => report = Some(r),
                        Err(why) => (attempt.success, attempt.error) = (false, Some(why)),
                    }
                }
            }
            Err(e) => attempt.error = Some(e),
        }
        Sent { attempt, failures: m.attempts, report }
    }

    /// An e-mail channel's message: one e-mail (`{to, subject, body}`).
    async fn send_email(&self, m: &MessageRow) -> std::result::Result<(Option<u16>, Vec<u8>), String> {
        #[derive(serde::Deserialize)]
        struct Mail {
            to: String,
            subject: String,
            body: String,
        }
        let mail: Mail = serde_json::from_str(&m.payload).map_err(|_| "the message is not an e-mail".to_owned())?;
        if !self.mailer().enabled() {
            return Err("this server does not send e-mail".into());
        }
        self.mailer().send(&mail.to, &mail.subject, mail.body).await.map_err(|_| "the mail server did not take it".to_owned())?;
        Ok((None, b"sent".to_vec()))
    }

    /// A POST of the message to the endpoint's address: its status and the
    /// start of its answer.
    async fn post(&self, d: &Due, at: Timestamp) -> std::result::Result<(Option<u16>, Vec<u8>), String> {
        let m = &d.message;
        let timestamp = at.0.div_euclid(1000);
        let mut signatures = Vec::new();
        if SIGNED.contains(&d.kind.as_str()) {
            let secrets = [Some(&d.sealed_secret), d.sealed_previous.as_ref().filter(|_| d.previous_until.is_some_and(|u| u > at))];
            for sealed in secrets.into_iter().flatten() {
                match self.inner.master.open(sealed, &aad(m.org, m.webhook_id)).ok().and_then(|s| String::from_utf8(s).ok()) {
                    Some(secret) => signatures.extend(sign(&secret, &m.id.to_string(), timestamp, &m.payload).map(|s| format!("v1,{s}"))),
                    None => tracing::error!(webhook = %m.webhook_id, "a webhook secret does not open"),
                }
            }
        }
        let address = match &d.sealed_url {
            Some(sealed) => self
                .inner
                .master
                .open(sealed, &crate::notifications::url_aad(m.org, m.webhook_id))
                .ok()
                .and_then(|u| String::from_utf8(u).ok())
                .ok_or_else(|| "the endpoint's address does not open".to_owned())?,
            None => d.url.clone(),
        };
        let url = reqwest::Url::parse(&address).map_err(|_| "the endpoint's URL does not parse".to_owned())?;
        if !self.settings().webhook_allow_private && crate::outbound::literal_is_private(url.host_str().unwrap_or("")) {
            return Err("the endpoint is not at a public address".to_owned());
        }
        let mut request = self
            .inner
            .webhook_http
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "Ironcase-Webhooks/1")
            .body(m.payload.clone());
        if !signatures.is_empty() {
            request = request
                .header("webhook-id", m.id.to_string())
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signatures.join(" "));
        }
        let r = request.send().await.map_err(|e| describe(&e))?;
        let status = r.status().as_u16();
        Ok((Some(status), read_some(r).await))
    }
}

/// The kinds whose receivers check Standard Webhooks signatures.
const SIGNED: &[&str] = &["webhook", "generic", "analyzer"];

/// One attempt made: how many failed before it, and the report it brought
/// (an analyzer's).
struct Sent {
    attempt: AttemptRow,
    failures: i64,
    report: Option<crate::analyzers::Report>,
}

/// A transport error as the attempt log says it (never the URL's secrets:
/// reqwest's message names the URL, which a person set and may see).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within the time-out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "answered with a redirect, which is not followed".into()
    } else {
        "the request failed".into()
    }
}

/// At most `READ_ANSWER` bytes of the answer.
async fn read_some(mut r: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(READ_ANSWER - out.len())]);
        if out.len() >= READ_ANSWER {
            break;
        }
    }
    out
}

/// What an attempt means for its message: its status, when next, and
/// whether the receiver said it is gone (410).
fn outcome(a: &AttemptRow, previous_failures: i64, backoff: &[Duration], now: Timestamp) -> (&'static str, Timestamp, bool) {
    if a.success {
        return ("delivered", now, false);
    }
    let gone = a.status_code == Some(410);
    let step = usize::try_from(previous_failures).unwrap_or(usize::MAX);
    match backoff.get(step) {
        Some(wait) if !gone => {
            let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            // ±10% jitter, so that endpoints failing together do not retry together.
            let jitter = (ms / 10).max(1);
            let offset = (i64::from(crypto::random_bytes::<2>()[0]) * 2 * jitter / 255) - jitter;
            ("pending", Timestamp(now.0 + ms + offset), false)
        }
        _ => ("failed", now, gone),
    }
}

/// The dispatcher: a round after each commit on this node, and at least
/// every second (retries coming due, another node's commits); until the
/// app closes. An idle round only reads.
pub async fn dispatch(app: App) {
    let mut closed = app.inner.live.closed_signal();
    let mut commits = app.store().commits();
    loop {
        match app.webhook_round().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook round failed"),
        }
        tokio::select! {
            _ = closed.changed() => return,
            r = commits.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if *closed.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_as_the_specification_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not a secret", "m", 1, body), None);
    }
}
