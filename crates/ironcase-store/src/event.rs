//! The organisation's event log: incident timelines today, the outbox for live
//! updates and webhooks later. Events are only appended.

use ironcase_domain::{IncidentId, OrgId, Timestamp};
use rusqlite::params;

use crate::{parse_id, parse_opt_id, query_map, query_one, Conn, Result};

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
    c: &Conn,
    org: OrgId,
    incident: Option<IncidentId>,
    kind: &str,
    actor: Option<&str>,
    data: &serde_json::Value,
    at: Timestamp,
) -> Result<i64> {
    query_one(
        c,
        "insert into event (organization_id, incident_id, type, actor_id, data, created_at) values (?, ?, ?, ?, ?, ?) returning event_id",
        params![org.to_string(), incident.map(|i| i.to_string()), kind, actor, data.to_string(), at.0],
        |r| Ok(r.get(0)?),
    )
}

pub fn for_incident(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Vec<EventRow>> {
    query_map(
        c,
        "select event_id, organization_id, incident_id, type, actor_id, data, created_at from event \
         where organization_id = ? and incident_id = ? order by event_id",
        [org.to_string(), incident.to_string()],
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
