//! Webhook endpoints, their outbox of messages and the log of every attempt
//! to deliver one. Messages are made from the event log by each endpoint's
//! cursor (`enqueue`), in the write that moves the cursor, so an event is
//! enqueued once per endpoint whichever node runs it. Due messages are
//! leased in a write (`claim`): writes take turns across nodes, so no two
//! nodes hold the same attempt; a lease that runs out (its node died) makes
//! the message due again.

use ironcase_domain::{MessageId, OrgId, Timestamp, WebhookId};

use crate::event::EVENTS;
use crate::{exec, params, parse_id, query_map, query_one, query_opt, Conn, Result, Row, StoreError, Tx};

#[derive(Clone)]
pub struct WebhookRow {
    pub org: OrgId,
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    /// The event types it receives; `["*"]`: all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub sealed_secret: Vec<u8>,
    /// The secret before the last rotation, still signing until `previous_until`.
    pub sealed_previous: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
    /// The last event looked at.
    pub event_cursor: i64,
    /// Since when every attempt has failed (`None`: the last one succeeded).
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// What the endpoint is: `webhook`; a notification channel (`email`,
    /// `slack`, `teams`, `generic`); or an `analyzer`.
    pub kind: String,
    /// Its settings as the app keeps them (JSON).
    pub config: String,
    /// Its address when the address is itself a secret (sealed); `url`
    /// then shows only where it goes.
    pub sealed_url: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("org", &self.org)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WebhookRow {
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.iter().any(|t| t == "*" || t == kind)
    }
}

const COLS: &str = "organization_id, webhook_id, url, description, event_types, enabled, sealed_secret, sealed_previous, previous_until, \
     event_cursor, failing_since, disabled_reason, created_at, updated_at, kind, config, sealed_url";

fn webhook(r: &Row<'_, '_>) -> Result<WebhookRow> {
    let types: String = r.get(4)?;
    Ok(WebhookRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        url: r.get(2)?,
        description: r.get(3)?,
        event_types: types.split_ascii_whitespace().map(str::to_owned).collect(),
        enabled: r.get::<_, i64>(5)? != 0,
        sealed_secret: r.get(6)?,
        sealed_previous: r.get(7)?,
        previous_until: r.get::<_, Option<i64>>(8)?.map(Timestamp),
        event_cursor: r.get(9)?,
        failing_since: r.get::<_, Option<i64>>(10)?.map(Timestamp),
        disabled_reason: r.get(11)?,
        created_at: Timestamp(r.get(12)?),
        updated_at: Timestamp(r.get(13)?),
        kind: r.get(14)?,
        config: r.get(15)?,
        sealed_url: r.get(16)?,
    })
}

/// The organisation's newest event id: a new endpoint starts after it.
pub fn last_event(c: &Conn, org: OrgId) -> Result<i64> {
    c.scope(org)?;
    c.sees(&EVENTS)?;
    query_one(c, "select coalesce(max(event_id), 0) from event where organization_id = ?", [org.to_string()], |r| r.get(0))
}

pub fn insert(c: &Tx, w: &WebhookRow) -> Result<()> {
    c.scope(w.org)?;
    exec(
        c,
        &format!("insert into webhook ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            w.org.to_string(),
            w.id.to_string(),
            w.url,
            w.description,
            w.event_types.join(" "),
            i64::from(w.enabled),
            w.sealed_secret,
            w.sealed_previous,
            w.previous_until.map(|t| t.0),
            w.event_cursor,
            w.failing_since.map(|t| t.0),
            w.disabled_reason,
            w.created_at.0,
            w.updated_at.0,
            w.kind,
            w.config,
            w.sealed_url
        ],
    )?;
    Ok(())
}

/// Writes what a person may change (URL, description, types, enabled, the
/// secrets) and the failure state that enabling clears.
pub fn update(c: &Tx, w: &WebhookRow) -> Result<()> {
    c.scope(w.org)?;
    let n = exec(
        c,
        "update webhook set url = ?, description = ?, event_types = ?, enabled = ?, sealed_secret = ?, sealed_previous = ?, \
         previous_until = ?, failing_since = ?, disabled_reason = ?, updated_at = ?, config = ?, sealed_url = ? \
         where organization_id = ? and webhook_id = ?",
        params![
            w.url,
            w.description,
            w.event_types.join(" "),
            i64::from(w.enabled),
            w.sealed_secret,
            w.sealed_previous,
            w.previous_until.map(|t| t.0),
            w.failing_since.map(|t| t.0),
            w.disabled_reason,
            w.updated_at.0,
            w.config,
            w.sealed_url,
            w.org.to_string(),
            w.id.to_string()
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn get(c: &Conn, org: OrgId, id: WebhookId) -> Result<WebhookRow> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {COLS} from webhook where organization_id = ? and webhook_id = ?"),
        [org.to_string(), id.to_string()],
        webhook,
    )?
    .ok_or(StoreError::NotFound)
}

/// The organisation's endpoints of the given kinds oldest first, after
/// `(created_at, id)`.
pub fn list(c: &Conn, org: OrgId, kinds: &[&str], after: Option<(i64, WebhookId)>, limit: i64) -> Result<Vec<WebhookRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    // The kinds are the app's constants; each is checked to be a plain word.
    if kinds.is_empty() || !kinds.iter().all(|k| k.bytes().all(|b| b.is_ascii_lowercase())) {
        return Ok(Vec::new());
    }
    let kinds = kinds.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    query_map(
        c,
        &format!(
            "select {COLS} from webhook where organization_id = ? and kind in ({kinds}) \
             and (created_at > ? or (created_at = ? and webhook_id > ?)) order by created_at, webhook_id limit ?"
        ),
        params![org.to_string(), at, at, id, limit],
        webhook,
    )
}

/// Deletes an endpoint with its messages and attempts.
pub fn delete(c: &Tx, org: OrgId, id: WebhookId) -> Result<()> {
    c.scope(org)?;
    let (o, i) = (org.to_string(), id.to_string());
    let n = exec(c, "delete from webhook where organization_id = ? and webhook_id = ?", [&o, &i])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    exec(c, "delete from webhook_message where organization_id = ? and webhook_id = ?", [&o, &i])?;
    exec(c, "delete from webhook_attempt where organization_id = ? and webhook_id = ?", [&o, &i])?;
    Ok(())
}

/// A message to deliver.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub org: OrgId,
    pub id: MessageId,
    pub webhook_id: WebhookId,
    pub event_id: Option<i64>,
    pub kind: String,
    /// The body sent, exactly: `{type, timestamp, data}`.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (retries exhausted: the dead letters).
    pub status: String,
    pub attempts: i64,
    pub next_at: Timestamp,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

const MESSAGE_COLS: &str =
    "organization_id, message_id, webhook_id, event_id, type, payload, status, attempts, next_at, created_at, finished_at";

fn message(r: &Row<'_, '_>) -> Result<MessageRow> {
    Ok(MessageRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        webhook_id: parse_id(r, 2)?,
        event_id: r.get(3)?,
        kind: r.get(4)?,
        payload: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        next_at: Timestamp(r.get(8)?),
        created_at: Timestamp(r.get(9)?),
        finished_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
    })
}

pub fn insert_message(c: &Tx, m: &MessageRow) -> Result<()> {
    c.scope(m.org)?;
    exec(
        c,
        &format!("insert into webhook_message ({MESSAGE_COLS}, lease_until) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)"),
        params![
            m.org.to_string(),
            m.id.to_string(),
            m.webhook_id.to_string(),
            m.event_id,
            m.kind,
            m.payload,
            m.status,
            m.attempts,
            m.next_at.0,
            m.created_at.0,
            m.finished_at.map(|t| t.0)
        ],
    )?;
    Ok(())
}

/// Every enabled endpoint, of every organisation (the dispatcher's).
pub fn enabled(c: &Conn) -> Result<Vec<WebhookRow>> {
    c.platform()?;
    query_map(c, &format!("select {COLS} from webhook where enabled = 1 order by organization_id, webhook_id"), params![], webhook)
}

/// Moves an endpoint's cursor to `to` (the last event looked at).
pub fn advance(c: &Tx, org: OrgId, id: WebhookId, to: i64) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update webhook set event_cursor = ? where organization_id = ? and webhook_id = ? and event_cursor < ?",
        params![to, org.to_string(), id.to_string(), to],
    )?;
    Ok(())
}

/// An endpoint's pending messages in order (the head first), at most `limit`.
fn pending_of(c: &Conn, w: &WebhookRow, limit: i64) -> Result<Vec<(MessageRow, Option<i64>)>> {
    c.scope(w.org)?;
    query_map(
        c,
        &format!(
            "select {MESSAGE_COLS}, lease_until from webhook_message where organization_id = ? and webhook_id = ? and status = 'pending' \
             order by created_at, message_id limit ?"
        ),
        params![w.org.to_string(), w.id.to_string(), limit],
        |r| Ok((message(r)?, r.get(11)?)),
    )
}

/// What may go now from one endpoint's pending messages: its head and the
/// messages after it, in order, while they are due and not leased; nothing
/// when the head waits (a retry's back-off) or another node holds it.
fn sendable(pending: Vec<(MessageRow, Option<i64>)>, now: Timestamp) -> Vec<MessageRow> {
    pending.into_iter().take_while(|(m, lease)| m.next_at <= now && lease.is_none_or(|l| l < now.0)).map(|(m, _)| m).collect()
}

/// Whether `claim` would find anything at `now` (reads only, so that an
/// idle dispatcher writes nothing).
pub fn any_due(c: &Conn, now: Timestamp) -> Result<bool> {
    for w in enabled(c)? {
        if !sendable(pending_of(c, &w, 1)?, now).is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A leased message with what sending it needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub message: MessageRow,
    pub kind: String,
    pub url: String,
    pub sealed_url: Option<Vec<u8>>,
    pub sealed_secret: Vec<u8>,
    pub sealed_previous: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
}

/// Leases, until `lease_until`, up to `per_endpoint` messages of each
/// enabled endpoint whose head is sendable: in order, one run per endpoint
/// (messages go out in order, one at a time per endpoint), none another
/// node holds.
pub fn claim(c: &Tx, now: Timestamp, lease_until: Timestamp, per_endpoint: i64) -> Result<Vec<Vec<Due>>> {
    let mut runs = Vec::new();
    for w in enabled(c)? {
        let run: Vec<Due> = sendable(pending_of(c, &w, per_endpoint)?, now)
            .into_iter()
            .map(|message| Due {
                message,
                kind: w.kind.clone(),
                url: w.url.clone(),
                sealed_url: w.sealed_url.clone(),
                sealed_secret: w.sealed_secret.clone(),
                sealed_previous: w.sealed_previous.clone(),
                previous_until: w.previous_until,
            })
            .collect();
        for d in &run {
            exec(
                c,
                "update webhook_message set lease_until = ? where organization_id = ? and message_id = ?",
                params![lease_until.0, d.message.org.to_string(), d.message.id.to_string()],
            )?;
        }
        if !run.is_empty() {
            runs.push(run);
        }
    }
    Ok(runs)
}

/// Gives back the lease of a message that was not tried (its endpoint's
/// run stopped at a failure before it).
pub fn release(c: &Tx, org: OrgId, message: MessageId) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update webhook_message set lease_until = null where organization_id = ? and message_id = ?",
        params![org.to_string(), message.to_string()],
    )?;
    Ok(())
}

/// One attempt to deliver a message.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub org: OrgId,
    pub id: i64,
    pub webhook_id: WebhookId,
    pub message_id: MessageId,
    pub at: Timestamp,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub success: bool,
    pub error: Option<String>,
    pub response: String,
}

/// Records an attempt (its id: the endpoint's next) and the message's
/// outcome: `next_at` to try again then, or `status` final.
pub fn record(c: &Tx, a: &AttemptRow, status: &str, next_at: Timestamp) -> Result<()> {
    c.scope(a.org)?;
    let id: i64 =
        query_one(c, "select coalesce(max(attempt_id), 0) + 1 from webhook_attempt where organization_id = ?", [a.org.to_string()], |r| {
            r.get(0)
        })?;
    exec(
        c,
        "insert into webhook_attempt (organization_id, attempt_id, webhook_id, message_id, at, status_code, latency_ms, success, error, response) \
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            a.org.to_string(),
            id,
            a.webhook_id.to_string(),
            a.message_id.to_string(),
            a.at.0,
            a.status_code,
            a.latency_ms,
            i64::from(a.success),
            a.error,
            a.response
        ],
    )?;
    let finished = (status != "pending").then_some(a.at.0);
    exec(
        c,
        "update webhook_message set status = ?, attempts = attempts + 1, next_at = ?, lease_until = null, finished_at = ? \
         where organization_id = ? and message_id = ?",
        params![status, next_at.0, finished, a.org.to_string(), a.message_id.to_string()],
    )?;
    Ok(())
}

/// Records whether the endpoint's last attempt failed: `failing_since` is
/// the first failure of the run (`None`: it succeeded).
pub fn set_failing(c: &Tx, org: OrgId, id: WebhookId, failing_since: Option<Timestamp>) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update webhook set failing_since = ? where organization_id = ? and webhook_id = ?",
        params![failing_since.map(|t| t.0), org.to_string(), id.to_string()],
    )?;
    Ok(())
}

/// Turns an endpoint off, saying why (its receiver is gone, or it failed
/// for days); its pending messages wait for it to be enabled again.
pub fn disable(c: &Tx, org: OrgId, id: WebhookId, reason: &str, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update webhook set enabled = 0, disabled_reason = ?, updated_at = ? where organization_id = ? and webhook_id = ?",
        params![reason, at.0, org.to_string(), id.to_string()],
    )?;
    Ok(())
}

/// The endpoint's attempts newest first, before attempt `before`; only
/// successes or failures when `success` says so.
pub fn attempts(c: &Conn, org: OrgId, id: WebhookId, success: Option<bool>, before: Option<i64>, limit: i64) -> Result<Vec<AttemptRow>> {
    c.scope(org)?;
    let outcome = match success {
        None => "",
        Some(true) => " and success = 1",
        Some(false) => " and success = 0",
    };
    query_map(
        c,
        &format!(
            "select organization_id, attempt_id, webhook_id, message_id, at, status_code, latency_ms, success, error, response \
             from webhook_attempt where organization_id = ? and webhook_id = ? and attempt_id < ?{outcome} order by attempt_id desc limit ?"
        ),
        params![org.to_string(), id.to_string(), before.unwrap_or(i64::MAX), limit],
        |r| {
            Ok(AttemptRow {
                org: parse_id(r, 0)?,
                id: r.get(1)?,
                webhook_id: parse_id(r, 2)?,
                message_id: parse_id(r, 3)?,
                at: Timestamp(r.get(4)?),
                status_code: r.get(5)?,
                latency_ms: r.get(6)?,
                success: r.get::<_, i64>(7)? != 0,
                error: r.get(8)?,
                response: r.get(9)?,
            })
        },
    )
}

/// The endpoint's messages of `status` oldest first, after `(created_at, id)`.
pub fn messages(c: &Conn, org: OrgId, id: WebhookId, status: &str, after: Option<(i64, MessageId)>, limit: i64) -> Result<Vec<MessageRow>> {
    c.scope(org)?;
    let (at, mid) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        &format!(
            "select {MESSAGE_COLS} from webhook_message where organization_id = ? and webhook_id = ? and status = ? \
             and (created_at > ? or (created_at = ? and message_id > ?)) order by created_at, message_id limit ?"
        ),
        params![org.to_string(), id.to_string(), status, at, at, mid, limit],
        message,
    )
}

/// Sends a finished message again from `now` (same id; its back-off starts
/// over, its earlier attempts stay in the log); how many. `message`: that one; else every failed one created at or
/// after `since`.
pub fn replay(c: &Tx, org: OrgId, id: WebhookId, message: Option<MessageId>, since: Timestamp, now: Timestamp) -> Result<usize> {
    c.scope(org)?;
    match message {
        Some(m) => exec(
            c,
            "update webhook_message set status = 'pending', attempts = 0, next_at = ?, lease_until = null, finished_at = null \
             where organization_id = ? and webhook_id = ? and message_id = ? and status <> 'pending'",
            params![now.0, org.to_string(), id.to_string(), m.to_string()],
        ),
        None => exec(
            c,
            "update webhook_message set status = 'pending', attempts = 0, next_at = ?, lease_until = null, finished_at = null \
             where organization_id = ? and webhook_id = ? and status = 'failed' and created_at >= ?",
            params![now.0, org.to_string(), id.to_string(), since.0],
        ),
    }
}
