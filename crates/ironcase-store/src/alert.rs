//! Alerts: stored as sent (normalised), found again by `(source,
//! source_ref)` or grouped by dedup key, triaged by status.

use ironcase_domain::{AlertId, AlertStatus, IncidentId, OrgId, Severity, Timestamp, Tlp};

use crate::{exec, params, parse_col, parse_id, parse_opt_id, query_map, query_opt, Conn, Result, Row, StoreError, Tx, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub org: OrgId,
    pub id: AlertId,
    pub source: String,
    pub source_ref: String,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub tlp: Tlp,
    /// `[{"type", "value"}]`, normalised.
    pub observables: serde_json::Value,
    pub occurred_at: Timestamp,
    pub raw: Option<String>,
    pub dedup_key: Option<String>,
    pub status: AlertStatus,
    /// How many alerts it stands for (itself and those grouped under it).
    pub count: i64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The incident it became or joined.
    pub incident_id: Option<IncidentId>,
    pub dismiss_reason: Option<String>,
    pub snoozed_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLS: &str =
    "organization_id, alert_id, source, source_ref, type, title, description, severity, tlp, observables, occurred_at, raw, \
     dedup_key, status, count, first_seen, last_seen, incident_id, dismiss_reason, snoozed_until, created_at, updated_at";

fn ts(r: &Row<'_, '_>, col: usize) -> Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(col)?.map(Timestamp))
}

fn alert(r: &Row<'_, '_>) -> Result<AlertRow> {
    let observables: String = r.get(9)?;
    Ok(AlertRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        source: r.get(2)?,
        source_ref: r.get(3)?,
        kind: r.get(4)?,
        title: r.get(5)?,
        description: r.get(6)?,
        severity: parse_col(r, 7, Severity::parse)?,
        tlp: parse_col(r, 8, Tlp::parse)?,
        observables: serde_json::from_str(&observables).map_err(|e| StoreError::Corrupt(format!("observables: {e}")))?,
        occurred_at: Timestamp(r.get(10)?),
        raw: r.get(11)?,
        dedup_key: r.get(12)?,
        status: parse_col(r, 13, AlertStatus::parse)?,
        count: r.get(14)?,
        first_seen: Timestamp(r.get(15)?),
        last_seen: Timestamp(r.get(16)?),
        incident_id: parse_opt_id(r, 17)?,
        dismiss_reason: r.get(18)?,
        snoozed_until: ts(r, 19)?,
        created_at: Timestamp(r.get(20)?),
        updated_at: Timestamp(r.get(21)?),
    })
}

pub fn insert(c: &Tx, a: &AlertRow) -> Result<()> {
    c.scope(a.org)?;
    exec(
        c,
        &format!("insert into alert ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            a.org.to_string(),
            a.id.to_string(),
            a.source,
            a.source_ref,
            a.kind,
            a.title,
            a.description,
            a.severity.as_str(),
            a.tlp.as_str(),
            a.observables.to_string(),
            a.occurred_at.0,
            a.raw,
            a.dedup_key,
            a.status.as_str(),
            a.count,
            a.first_seen.0,
            a.last_seen.0,
            a.incident_id.map(|i| i.to_string()),
            a.dismiss_reason,
            a.snoozed_until.map(|t| t.0),
            a.created_at.0,
            a.updated_at.0
        ],
    )?;
    Ok(())
}

pub fn get(c: &Conn, org: OrgId, id: AlertId) -> Result<AlertRow> {
    c.scope(org)?;
    query_opt(c, &format!("select {COLS} from alert where organization_id = ? and alert_id = ?"), [org.to_string(), id.to_string()], alert)?
        .ok_or(StoreError::NotFound)
}

/// The alert a source sent under `source_ref`, if any.
pub fn by_ref(c: &Conn, org: OrgId, source: &str, source_ref: &str) -> Result<Option<AlertRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {COLS} from alert where organization_id = ? and source = ? and source_ref = ?"),
        [org.to_string(), source.to_owned(), source_ref.to_owned()],
        alert,
    )
}

/// The oldest open alert with `dedup_key` last seen at or after `since`.
pub fn group_for(c: &Conn, org: OrgId, dedup_key: &str, since: Timestamp) -> Result<Option<AlertRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!(
            "select {COLS} from alert where organization_id = ? and dedup_key = ? and last_seen >= ? \
             and status in ('new', 'acknowledged', 'snoozed') order by created_at, alert_id limit 1"
        ),
        params![org.to_string(), dedup_key, since.0],
        alert,
    )
}

/// One more alert grouped under `id`, seen at `at`.
pub fn bump(c: &Tx, org: OrgId, id: AlertId, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update alert set count = count + 1, last_seen = case when last_seen < ? then ? else last_seen end, updated_at = ? \
         where organization_id = ? and alert_id = ?",
        params![at.0, at.0, at.0, org.to_string(), id.to_string()],
    )?;
    Ok(())
}

/// Writes an alert's triage: status, incident, reason, snooze.
pub fn set_triage(c: &Tx, a: &AlertRow) -> Result<()> {
    c.scope(a.org)?;
    let n = exec(
        c,
        "update alert set status = ?, incident_id = ?, dismiss_reason = ?, snoozed_until = ?, updated_at = ? \
         where organization_id = ? and alert_id = ?",
        params![
            a.status.as_str(),
            a.incident_id.map(|i| i.to_string()),
            a.dismiss_reason,
            a.snoozed_until.map(|t| t.0),
            a.updated_at.0,
            a.org.to_string(),
            a.id.to_string()
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// What a list of alerts keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<AlertStatus>,
    pub source: Option<String>,
    pub severity: Option<Severity>,
    /// Words in the title (case-insensitive).
    pub text: Option<String>,
    /// At most this TLP (the caller's ceiling).
    pub tlp_max: Option<Tlp>,
    /// Now: a snooze that has run out counts as `new` again.
    pub now: Timestamp,
}

/// Alerts newest first, before `(created_at, id)`, at most `limit`.
pub fn list(c: &Conn, org: OrgId, f: &Filter, before: Option<(i64, AlertId)>, limit: i64) -> Result<Vec<AlertRow>> {
    c.scope(org)?;
    let mut sql = format!("select {COLS} from alert where organization_id = ?1{}", crate::incident::tlp_clause("", f.tlp_max));
    let mut p: Vec<Value> = vec![Value::Text(org.to_string())];
    let mut bind = |sql: &mut String, clause: &str, v: Value| {
        p.push(v);
        sql.push_str(&clause.replace('$', &format!("?{}", p.len())));
    };
    match f.status {
        None => {}
        Some(AlertStatus::New) => {
            bind(&mut sql, " and (status = 'new' or (status = 'snoozed' and snoozed_until <= $))", Value::Integer(f.now.0))
        }
        Some(AlertStatus::Snoozed) => bind(&mut sql, " and status = 'snoozed' and snoozed_until > $", Value::Integer(f.now.0)),
        Some(s) => bind(&mut sql, " and status = $", Value::Text(s.as_str().into())),
    }
    if let Some(s) = &f.source {
        bind(&mut sql, " and source = $", Value::Text(s.clone()));
    }
    if let Some(s) = f.severity {
        bind(&mut sql, " and severity = $", Value::Text(s.as_str().into()));
    }
    if let Some(t) = &f.text {
        let escaped = t.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        bind(&mut sql, " and lower(title) like $ escape '\\'", Value::Text(format!("%{escaped}%")));
    }
    if let Some((at, id)) = before {
        bind(&mut sql, " and (created_at, alert_id) < ($", Value::Integer(at));
        bind(&mut sql, ", $)", Value::Text(id.to_string()));
    }
    bind(&mut sql, " order by created_at desc, alert_id desc limit $", Value::Integer(limit));
    query_map(c, &sql, p, alert)
}
