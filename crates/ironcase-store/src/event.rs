//! The organisation's event log: incident timelines today, the outbox for live
//! updates and webhooks later. Events are only appended.

use ironcase_domain::{IncidentId, OrgId, Timestamp};
use sqlx::Row;

use crate::{parse_opt_id, Conn, Result};

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

pub async fn append(
    c: &mut Conn,
    org: OrgId,
    incident: Option<IncidentId>,
    kind: &str,
    actor: Option<&str>,
    data: &serde_json::Value,
    at: Timestamp,
) -> Result<i64> {
    let r = sqlx::query(
        "insert into event (organization_id, incident_id, type, actor_id, data, created_at) values (?, ?, ?, ?, ?, ?) returning event_id",
    )
    .bind(org.to_string())
    .bind(incident.map(|i| i.to_string()))
    .bind(kind)
    .bind(actor)
    .bind(data.to_string())
    .bind(at.0)
    .fetch_one(&mut *c)
    .await?;
    Ok(r.try_get(0)?)
}

pub async fn for_incident(c: &mut Conn, org: OrgId, incident: IncidentId) -> Result<Vec<EventRow>> {
    let rows = sqlx::query(
        "select event_id, organization_id, incident_id, type, actor_id, data, created_at from event \
         where organization_id = ? and incident_id = ? order by event_id",
    )
    .bind(org.to_string())
    .bind(incident.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            let data: String = r.try_get("data")?;
            Ok(EventRow {
                id: r.try_get("event_id")?,
                org: crate::parse_id(r, "organization_id")?,
                incident_id: parse_opt_id(r, "incident_id")?,
                kind: r.try_get("type")?,
                actor_id: r.try_get("actor_id")?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                created_at: Timestamp(r.try_get("created_at")?),
            })
        })
        .collect()
}
