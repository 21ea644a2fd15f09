//! Live updates: the organisation's events as a stream that a client holds
//! open (SSE or WebSocket) and resumes by cursor.
//!
//! The event table is the truth; everything here is only a faster way to it.
//! One task per node (the pump) waits for committed writes, reads the new
//! events once, serialises each once, and fans them out to the subscribers of
//! their organisation over a bounded broadcast channel. A subscriber first
//! reads what it missed from the table (after its cursor), then takes events
//! from the channel, skipping ids it has passed. A lost wake-up delays an
//! event and never loses it; a subscriber that falls a whole channel behind
//! while live is ended with the cursor to resume from, so it cannot slow the
//! writers or the other subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironcase_domain::{Category, IncidentId, OrgId, Permission, Timestamp, Tlp};
use ironcase_store::event::{self, LiveRow, TicketHolder};
use ironcase_store::{apikey, incident, session, Store};
use serde_json::json;
use tokio::sync::{broadcast, watch, Notify};

use crate::principal::Actor;
use crate::{crypto, App, AppError, Principal, RequestMeta, Result};

/// Events a catch-up read takes at once.
const PAGE: i64 = 500;

/// Every event type that exists, for validating `types=` filters.
pub const EVENT_TYPES: &[&str] = &[
    "incident.created",
    "incident.updated",
    "incident.status_changed",
    "incident.deleted",
    "comment.added",
    "ioc.added",
    "ioc.removed",
    "evidence.added",
    "evidence.deleted",
    "quota.warning",
    "quota.exceeded",
    "alert.created",
    "alert.promoted",
    "webhook.disabled",
    "ioc.analyzed",
    "incident.breach_flagged",
    "incident.breach_deadline",
];

/// One event, serialised once for every subscriber.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: i64,
    pub org: OrgId,
    pub incident_id: Option<IncidentId>,
    pub kind: String,
    /// The incident's TLP and category when the event was read (`None`: no
    /// incident).
    pub tlp: Option<Tlp>,
    pub category: Option<Category>,
    /// `{id, type, incident_id, actor_id, at, data}`.
    pub json: String,
}

impl LiveEvent {
    fn from_row(r: LiveRow) -> LiveEvent {
        let e = r.event;
        let json = json!({
            "id": e.id,
            "type": e.kind,
            "incident_id": e.incident_id,
            "actor_id": e.actor_id,
            "at": e.created_at,
            "data": e.data,
        })
        .to_string();
        LiveEvent {
            id: e.id,
            org: e.org,
            incident_id: e.incident_id,
            kind: e.kind,
            tlp: r.incident_tlp,
            category: r.incident_category,
            json,
        }
    }
}

/// The node's fan-out of new events to its subscribers.
pub struct Hub {
    orgs: Mutex<HashMap<OrgId, broadcast::Sender<Arc<LiveEvent>>>>,
    subscribers: AtomicI64,
    /// Wakes the pump: a write committed here, or (later) on another node.
    wake: Notify,
    closed: watch::Sender<bool>,
    capacity: usize,
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Arc<Hub> {
        Arc::new(Hub {
            orgs: Mutex::new(HashMap::new()),
            subscribers: AtomicI64::new(0),
            wake: Notify::new(),
            closed: watch::channel(false).0,
            capacity: capacity.max(16),
        })
    }

    /// Streams held open on this node.
    pub fn subscribers(&self) -> i64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Something may have been written: read the event log again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Changes when the hub closes.
    pub(crate) fn closed_signal(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Ends every stream (shutdown): they finish their current event and close.
    pub fn close(&self) {
        self.closed.send_replace(true);
        self.wake.notify_one();
    }

    fn subscribe(self: &Arc<Self>, org: OrgId) -> (broadcast::Receiver<Arc<LiveEvent>>, Subscribed) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        let rx = orgs.entry(org).or_insert_with(|| broadcast::channel(self.capacity).0).subscribe();
        // Counted under the lock the pump reads it under: see `pump`.
        self.subscribers.fetch_add(1, Ordering::SeqCst);
        (rx, Subscribed(self.clone()))
    }

    fn idle(&self) -> bool {
        let _orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        self.subscribers.load(Ordering::SeqCst) == 0
    }

    fn publish(&self, row: LiveRow) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        let org = row.event.org;
        let Some(tx) = orgs.get(&org) else { return };
        if tx.receiver_count() == 0 {
            orgs.remove(&org);
            return;
        }
        let _ = tx.send(Arc::new(LiveEvent::from_row(row)));
    }
}

/// Held by each open stream; counts it out when dropped.
struct Subscribed(Arc<Hub>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads new events after each wake-up and hands them to the hub. Runs until
/// the hub closes. With Redis, tells the other nodes when this one committed
/// events, and looks at the table once a second besides, so that streams
/// catch up even while wake-ups cannot travel.
pub(crate) async fn pump(store: Store, hub: Arc<Hub>, redis: Option<Arc<crate::shared::Redis>>) {
    let mut commits = store.commits();
    let mut closed = hub.closed.subscribe();
    let mut last = match store.read_now(event::last_id).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "live updates: cannot read the event log; streams will only catch up from it");
            return;
        }
    };
    let mut announced = last;
    let poll = if redis.is_some() { Duration::from_secs(1) } else { Duration::from_secs(3600) };
    loop {
        let local = tokio::select! {
            r = commits.changed() => if r.is_err() { return } else { true },
            _ = hub.wake.notified() => false,
            _ = tokio::time::sleep(poll) => false,
            _ = closed.changed() => return,
        };
        if *closed.borrow() {
            return;
        }
        // The newest id is read before asking whether anyone listens. A
        // stream that subscribes after that question reads the table itself
        // once subscribed, so it sees everything up to this id; events after
        // it are fanned out below on the next round.
        let newest = match store.read_now(event::last_id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "live updates: reading the event log failed");
                continue;
            }
        };
        if local && newest > announced {
            announced = newest;
            if let Some(r) = &redis {
                r.publish_wake().await;
            }
        }
        if hub.idle() {
            last = newest;
            continue;
        }
        loop {
            let after = last;
            let rows = match store.read(move |c| event::all_after(c, after, PAGE)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: reading new events failed");
                    break;
                }
            };
            let n = rows.len();
            for r in rows {
                last = r.event.id;
                hub.publish(r);
            }
            if (n as i64) < PAGE {
                break;
            }
        }
    }
}

/// What a stream carries: every event (`None`) or only some.
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    pub incident: Option<incident::IncidentRef>,
    pub types: Option<Vec<String>>,
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It fell a whole buffer behind; reconnect with this cursor.
    TooSlow { resume_from: i64 },
    /// Its credential was revoked or expired, or its organisation suspended.
    Unauthenticated,
    /// The server is shutting down; reconnect (to another node) with this cursor.
    ShuttingDown { resume_from: i64 },
}

impl End {
    /// `{code, detail, resume_from?}`: the last thing a client reads.
    pub fn json(&self) -> String {
        match self {
            End::TooSlow { resume_from } => json!({
                "code": "too_slow",
                "detail": "this stream fell too far behind; reconnect with the cursor to resume",
                "resume_from": resume_from,
            }),
            End::Unauthenticated => json!({ "code": "unauthenticated", "detail": "the credential of this stream is no longer valid" }),
            End::ShuttingDown { resume_from } => json!({
                "code": "shutting_down",
                "detail": "the server is shutting down; reconnect with the cursor to resume",
                "resume_from": resume_from,
            }),
        }
        .to_string()
    }
}

/// One open stream: next event, or the reason it ended.
pub struct EventStream {
    app: App,
    principal: Principal,
    incident: Option<IncidentId>,
    types: Option<Vec<String>>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    closed: watch::Receiver<bool>,
    /// Last id this stream has passed (delivered or filtered out).
    cursor: i64,
    backlog: VecDeque<Arc<LiveEvent>>,
    /// Reading from the table rather than the channel.
    catching_up: bool,
    /// Has taken an event from the channel since it last caught up: a lag now
    /// means the reader is slow, not that the catch-up took long.
    live: bool,
    recheck: tokio::time::Interval,
    _sub: Subscribed,
}

impl EventStream {
    /// The cursor: the last event id this stream has passed.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next event this stream's reader may see, or why it ends.
    pub async fn next(&mut self) -> std::result::Result<Arc<LiveEvent>, End> {
        loop {
            if *self.closed.borrow() {
                return Err(End::ShuttingDown { resume_from: self.cursor });
            }
            if let Some(e) = self.backlog.pop_front() {
                self.cursor = e.id;
                if self.wants(&e) {
                    return Ok(e);
                }
                continue;
            }
            if self.catching_up {
                self.catch_up().await?;
                continue;
            }
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(e) => {
                        self.live = true;
                        if e.id > self.cursor {
                            self.backlog.push_back(e);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) if self.live => {
                        return Err(End::TooSlow { resume_from: self.cursor });
                    }
                    // Fell behind while reading the table: read it again.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => return Err(End::ShuttingDown { resume_from: self.cursor }),
                },
                _ = self.closed.changed() => {},
                _ = self.recheck.tick() => {
                    if self.app.recheck(&self.principal).await.is_err() {
                        return Err(End::Unauthenticated);
                    }
                }
            }
        }
    }

    async fn catch_up(&mut self) -> std::result::Result<(), End> {
        let (org, after) = (self.principal.org, self.cursor);
        let rows = self.app.store().read(move |c| event::org_after(c, org, after, PAGE)).await;
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                // The cursor is intact: the client resumes from it elsewhere.
                tracing::warn!(error = %e, "live updates: catch-up read failed");
                return Err(End::ShuttingDown { resume_from: self.cursor });
            }
        };
        if (rows.len() as i64) < PAGE {
            self.catching_up = false;
            self.live = false;
        }
        self.backlog.extend(rows.into_iter().map(|r| Arc::new(LiveEvent::from_row(r))));
        Ok(())
    }

    fn wants(&self, e: &LiveEvent) -> bool {
        if let Some(types) = &self.types {
            if !types.contains(&e.kind) {
                return false;
            }
        }
        match e.incident_id {
            Some(id) => {
                if self.incident.is_some_and(|want| want != id) {
                    return false;
                }
                // A credential with a limited sight sees only incidents in
                // it; an incident that is gone has nothing left to show.
                let sight = self.principal.sight;
                match (e.tlp, e.category) {
                    (Some(t), Some(c)) => sight.sees(t, c),
                    _ => sight.is_all(),
                }
            }
            None => self.incident.is_none() && self.principal.has(Permission::OrganizationRead),
        }
    }
}

impl App {
    /// The node's live hub.
    pub fn live(&self) -> &Arc<Hub> {
        &self.inner.live
    }

    /// Opens a stream of the caller's organisation's events after `since`
    /// (only new ones when `None`).
    pub async fn open_stream(&self, p: &Principal, meta: &RequestMeta, since: Option<i64>, filter: StreamFilter) -> Result<EventStream> {
        self.require(p, meta, Permission::IncidentRead).await?;
        if let Some(types) = &filter.types {
            let mut errs = ironcase_domain::ValidationErrors::default();
            for t in types {
                if !EVENT_TYPES.contains(&t.as_str()) {
                    errs.push("types", format!("unknown event type {t:?}"));
                }
            }
            errs.into_result()?;
        }
        let incident = match filter.incident {
            Some(r) => {
                let org = p.org;
                let i = self.store().read_now(move |c| incident::get(c, org, r)).await?;
                Some(crate::incidents::visible(p, i)?.id)
            }
            None => None,
        };
        let (rx, sub) = self.live().subscribe(p.org);
        // Subscribed first, then the cursor: nothing can fall between them.
        let cursor = match since {
            Some(n) => n.max(0),
            None => {
                let org = p.org;
                self.store().read_now(move |c| event::org_last_id(c, org)).await?
            }
        };
        let period = self.settings().stream_heartbeat;
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(EventStream {
            app: self.clone(),
            principal: p.clone(),
            incident,
            types: filter.types,
            rx,
            closed: self.live().closed.subscribe(),
            cursor,
            backlog: VecDeque::new(),
            catching_up: true,
            live: false,
            recheck,
            _sub: sub,
        })
    }

    /// A short-lived, single-use ticket for opening the WebSocket stream from
    /// a browser. Only its hash is stored.
    pub async fn stream_ticket(&self, p: &Principal, meta: &RequestMeta) -> Result<(String, Timestamp)> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let holder = match (p.actor, p.session) {
            (Actor::ApiKey { key, .. }, _) => TicketHolder::ApiKey(key),
            (Actor::User(_), Some(s)) => TicketHolder::Session(s),
            (Actor::User(_), None) => return Err(AppError::Unauthenticated),
        };
        let ticket = format!("ict_{}", crypto::random_token(32));
        let hash = crypto::sha256_hex(&ticket);
        let now = self.clock().now();
        let expires = now.plus_secs(self.settings().ticket_ttl_secs);
        let org = p.org;
        self.store().write(move |c| event::insert_ticket(c, &hash, org, &holder, expires, now)).await?;
        Ok((ticket, expires))
    }

    /// Takes a ticket (it cannot be used again) and returns the caller it was
    /// issued to, checked afresh: a revoked session's ticket opens nothing.
    pub async fn redeem_ticket(&self, ticket: &str, meta: &RequestMeta) -> Result<Principal> {
        if !ticket.starts_with("ict_") || ticket.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        let hash = crypto::sha256_hex(ticket);
        let now = self.clock().now();
        let taken = self.store().write(move |c| event::take_ticket(c, &hash, now)).await?;
        let Some((org, holder)) = taken else { return Err(AppError::Unauthenticated) };
        match holder {
            TicketHolder::Session(sid) => {
                let auth =
                    self.store().read_now(move |c| session::session_auth(c, sid, Some(org))).await?.ok_or(AppError::Unauthenticated)?;
                self.admit(self.session_principal(auth, org, None, now)?, meta).await
            }
            TicketHolder::ApiKey(key) => {
                let row = self.store().read_now(move |c| apikey::get(c, org, key)).await.map_err(|_| AppError::Unauthenticated)?;
                self.admit(self.key_principal(row).await?, meta).await
            }
        }
    }

    /// Whether the credential behind a long-lived stream still holds.
    pub async fn recheck(&self, p: &Principal) -> Result<()> {
        let now = self.clock().now();
        match (p.actor, p.session) {
            (Actor::User(user), Some(sid)) => {
                let org = p.org;
                let auth =
                    self.store().read_now(move |c| session::session_auth(c, sid, Some(org))).await?.ok_or(AppError::Unauthenticated)?;
                let again = self.session_principal(auth, p.org, Some(user), now)?;
                if again.role != p.role || again.grants != p.grants {
                    return Err(AppError::Unauthenticated);
                }
                Ok(())
            }
            (Actor::ApiKey { key, .. }, _) => {
                let org = p.org;
                let row = self.store().read_now(move |c| apikey::get(c, org, key)).await.map_err(|_| AppError::Unauthenticated)?;
                self.key_principal(row).await.map(|_| ())
            }
            (Actor::User(_), None) => Err(AppError::Unauthenticated),
        }
    }
}

/// How often a held stream checks its credential again, and sends a heartbeat.
pub fn default_heartbeat() -> Duration {
    Duration::from_secs(15)
}
