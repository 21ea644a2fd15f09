//! The organisation's event log: incident timelines, and the outbox that live
//! updates read by cursor (webhooks later). Events are only appended; within
//! one database, ids grow in commit order (one writer), so a reader that has
//! seen id N has seen every committed event below it. Also the single-use
//! tickets that open a WebSocket stream.

use ironcase_domain::{ApiKeyId, Category, IncidentId, OrgId, SessionId, Timestamp, Tlp};

use crate::db::Appendable;
use crate::{exec, params, parse_id, parse_opt_id, query_map, query_one, query_opt, Conn, Result, Row, Tx};

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub org: OrgId,
    pub incident_id: Option<IncidentId>,
    pub kind: String,
    pub actor_id: Option<String>,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
}

pub fn append(
    c: &Tx,
    org: OrgId,
    incident: Option<IncidentId>,
    kind: &str,
    actor: Option<&str>,
    data: &serde_json::Value,
    at: Timestamp,
) -> Result<()> {
    // Ids must grow in commit order for cursors to be exact: write
    // transactions take turns, on one node and across nodes (`writer.rs`).
    c.scope(org)?;
    c.append(
        &EVENTS,
        vec![
            org.to_string().into(),
            incident.map(|i| i.to_string()).into(),
            kind.into(),
            actor.into(),
            data.to_string().into(),
            at.0.into(),
        ],
    )
}

/// Events are only appended; what reads them declares it ([`Conn::sees`]).
pub(crate) static EVENTS: Appendable = Appendable {
    table: "event",
    one: "insert into event (organization_id, incident_id, type, actor_id, data, created_at) values (?, ?, ?, ?, ?, ?)",
    many: "insert into event (organization_id, incident_id, type, actor_id, data, created_at) \
           select * from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[])",
};

/// The incident's events oldest first, after event `after`, at most `limit`.
pub fn for_incident(c: &Conn, org: OrgId, incident: IncidentId, after: i64, limit: i64) -> Result<Vec<EventRow>> {
    c.scope(org)?;
    c.sees(&EVENTS)?;
    query_map(
        c,
        "select event_id, organization_id, incident_id, type, actor_id, data, created_at from event \
         where organization_id = ? and incident_id = ? and event_id > ? order by event_id limit ?",
        params![org.to_string(), incident.to_string(), after, limit],
        |r| {
            let data: String = r.get("data")?;
            Ok(EventRow {
                id: r.get("event_id")?,
                org: parse_id(r, "organization_id")?,
                incident_id: parse_opt_id(r, "incident_id")?,
                kind: r.get("type")?,
                actor_id: r.get("actor_id")?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                created_at: Timestamp(r.get("created_at")?),
            })
        },
    )
}

/// An event as live updates carry it: with the current TLP and category of
/// its incident (`None` when it has none, or the incident is gone), so that
/// a stream can hold back what its reader may not see.
#[derive(Debug, Clone)]
pub struct LiveRow {
    pub event: EventRow,
    pub incident_tlp: Option<Tlp>,
    pub incident_category: Option<Category>,
}

const LIVE_COLUMNS: &str =
    "select e.event_id, e.organization_id, e.incident_id, e.type, e.actor_id, e.data, e.created_at, i.tlp, i.category \
     from event e left join incident i on i.organization_id = e.organization_id and i.incident_id = e.incident_id";

fn live_row(r: &Row<'_, '_>) -> Result<LiveRow> {
    let data: String = r.get(5)?;
    let tlp: Option<String> = r.get(7)?;
    let category: Option<String> = r.get(8)?;
    Ok(LiveRow {
        event: EventRow {
            id: r.get(0)?,
            org: parse_id(r, 1)?,
            incident_id: parse_opt_id(r, 2)?,
            kind: r.get(3)?,
            actor_id: r.get(4)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            created_at: Timestamp(r.get(6)?),
        },
        incident_tlp: tlp.as_deref().and_then(Tlp::parse),
        incident_category: category.as_deref().and_then(Category::parse),
    })
}

/// The organisation's events after `after`, oldest first, at most `limit`.
pub fn org_after(c: &Conn, org: OrgId, after: i64, limit: i64) -> Result<Vec<LiveRow>> {
    c.scope(org)?;
    c.sees(&EVENTS)?;
    query_map(
        c,
        &format!("{LIVE_COLUMNS} where e.organization_id = ? and e.event_id > ? order by e.event_id limit ?"),
        params![org.to_string(), after, limit],
        live_row,
    )
}

/// Every organisation's events after `after`, oldest first, at most `limit`:
/// what the node's live hub fans out.
pub fn all_after(c: &Conn, after: i64, limit: i64) -> Result<Vec<LiveRow>> {
    c.platform()?;
    c.sees(&EVENTS)?;
    query_map(c, &format!("{LIVE_COLUMNS} where e.event_id > ? order by e.event_id limit ?"), params![after, limit], live_row)
}

/// The newest event id of all, 0 when there is none.
pub fn last_id(c: &Conn) -> Result<i64> {
    c.platform()?;
    c.sees(&EVENTS)?;
    query_one(c, "select coalesce(max(event_id), 0) from event", params![], |r| r.get(0))
}

/// The newest event id of one organisation, 0 when it has none.
pub fn org_last_id(c: &Conn, org: OrgId) -> Result<i64> {
    c.scope(org)?;
    c.sees(&EVENTS)?;
    query_one(c, "select coalesce(max(event_id), 0) from event where organization_id = ?", [org.to_string()], |r| r.get(0))
}

/// Whose credential a stream ticket stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketHolder {
    Session(SessionId),
    ApiKey(ApiKeyId),
}

pub fn insert_ticket(c: &Tx, hash: &str, org: OrgId, holder: &TicketHolder, expires_at: Timestamp, now: Timestamp) -> Result<()> {
    c.scope(org)?;
    // Expired tickets go as new ones come, so the table stays small.
    exec(c, "delete from stream_ticket where expires_at <= ?", [now.0])?;
    let (session, key) = match holder {
        TicketHolder::Session(s) => (Some(s.to_string()), None),
        TicketHolder::ApiKey(k) => (None, Some(k.to_string())),
    };
    exec(
        c,
        "insert into stream_ticket (ticket_hash, organization_id, session_id, api_key_id, expires_at) values (?, ?, ?, ?, ?)",
        params![hash, org.to_string(), session, key, expires_at.0],
    )?;
    Ok(())
}

/// Takes a ticket: it is gone after this, used or not. `None` when there is
/// no such ticket or it has expired.
pub fn take_ticket(c: &Tx, hash: &str, now: Timestamp) -> Result<Option<(OrgId, TicketHolder)>> {
    c.platform()?;
    let row = query_opt(
        c,
        "delete from stream_ticket where ticket_hash = ? returning organization_id, session_id, api_key_id, expires_at",
        [hash],
        |r| {
            let org: OrgId = parse_id(r, 0)?;
            let session: Option<SessionId> = parse_opt_id(r, 1)?;
            let key: Option<ApiKeyId> = parse_opt_id(r, 2)?;
            let expires: i64 = r.get(3)?;
            Ok((org, session, key, expires))
        },
    )?;
    Ok(match row {
        Some((org, Some(s), None, exp)) if exp > now.0 => Some((org, TicketHolder::Session(s))),
        Some((org, None, Some(k), exp)) if exp > now.0 => Some((org, TicketHolder::ApiKey(k))),
        _ => None,
    })
}
