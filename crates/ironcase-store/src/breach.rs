//! Incidents flagged as personal data breaches, with their GDPR Art. 33
//! deadline's facts: when the organisation became aware, when the regulator
//! was told, and which warnings went out.

use ironcase_domain::{IncidentId, OrgId, Timestamp};

use crate::{exec, params, parse_id, query_map, query_opt, Conn, Result, Row, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachRow {
    pub org: OrgId,
    pub incident_id: IncidentId,
    pub aware_at: Timestamp,
    pub notified_at: Option<Timestamp>,
    pub reference: Option<String>,
    /// Warnings raised: 0 none, 1 at 48 h, 2 at 66 h, 3 overdue.
    pub warned: i64,
    pub set_by: Option<String>,
    pub updated_at: Timestamp,
}

const COLS: &str = "organization_id, incident_id, aware_at, notified_at, reference, warned, set_by, updated_at";

fn row(r: &Row<'_, '_>) -> Result<BreachRow> {
    Ok(BreachRow {
        org: parse_id(r, 0)?,
        incident_id: parse_id(r, 1)?,
        aware_at: Timestamp(r.get(2)?),
        notified_at: r.get::<_, Option<i64>>(3)?.map(Timestamp),
        reference: r.get(4)?,
        warned: r.get(5)?,
        set_by: r.get(6)?,
        updated_at: Timestamp(r.get(7)?),
    })
}

/// Flags the incident, or changes its facts (warnings raised stay).
pub fn put(c: &Tx, b: &BreachRow) -> Result<()> {
    c.scope(b.org)?;
    exec(
        c,
        &format!(
            "insert into incident_breach ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (organization_id, incident_id) do update \
             set aware_at = excluded.aware_at, notified_at = excluded.notified_at, reference = excluded.reference, \
             set_by = excluded.set_by, updated_at = excluded.updated_at"
        ),
        params![
            b.org.to_string(),
            b.incident_id.to_string(),
            b.aware_at.0,
            b.notified_at.map(|t| t.0),
            b.reference.clone(),
            b.warned,
            b.set_by.clone(),
            b.updated_at.0
        ],
    )?;
    Ok(())
}

pub fn get(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Option<BreachRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {COLS} from incident_breach where organization_id = ? and incident_id = ?"),
        [org.to_string(), incident.to_string()],
        row,
    )
}

/// Unflags the incident; whether it was flagged.
pub fn remove(c: &Tx, org: OrgId, incident: IncidentId) -> Result<bool> {
    c.scope(org)?;
    Ok(exec(c, "delete from incident_breach where organization_id = ? and incident_id = ?", [org.to_string(), incident.to_string()])? == 1)
}

/// The organisation's breaches, the earliest known first, after the keyset
/// `after` (aware_at, incident id); `open` only those not yet notified.
pub fn list(c: &Conn, org: OrgId, open: Option<bool>, after: Option<(i64, String)>, limit: i64) -> Result<Vec<BreachRow>> {
    c.scope(org)?;
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    let filter = match open {
        Some(true) => " and notified_at is null",
        Some(false) => " and notified_at is not null",
        None => "",
    };
    query_map(
        c,
        &format!(
            "select {COLS} from incident_breach where organization_id = ? and (aware_at, incident_id) > (?, ?){filter} \
             order by aware_at, incident_id limit ?"
        ),
        params![org.to_string(), at, id.as_str(), limit],
        row,
    )
}

/// Breaches of every organisation not yet notified, known since before
/// `since` and warned fewer than 3 times (the deadline job's).
pub fn due(c: &Conn, since: Timestamp, limit: i64) -> Result<Vec<BreachRow>> {
    c.platform()?;
    query_map(
        c,
        &format!("select {COLS} from incident_breach where notified_at is null and aware_at <= ? and warned < 3 order by aware_at limit ?"),
        params![since.0, limit],
        row,
    )
}

/// Records that warning `rank` went out, unless it (or a later one) did:
/// whether this call is the one that raises it.
pub fn mark_warned(c: &Tx, org: OrgId, incident: IncidentId, rank: i64) -> Result<bool> {
    c.scope(org)?;
    let n = exec(
        c,
        "update incident_breach set warned = ? where organization_id = ? and incident_id = ? and warned < ? and notified_at is null",
        params![rank, org.to_string(), incident.to_string(), rank],
    )?;
    Ok(n == 1)
}
