//! Retention: each organisation's policies, the legal holds that protect
//! incidents from them, and the statements that find and remove what a
//! policy no longer keeps, in bounded batches. Also the leases that let one
//! node at a time run a background job.

use ironcase_domain::retention::RetentionKind;
use ironcase_domain::{IncidentId, OrgId, Timestamp};

use crate::event::EVENTS;
use crate::incident::TAGS;
use crate::{exec, params, parse_col, parse_id, query_map, query_one, query_opt, Conn, Result, Row, Tx};

/// The organisation's policies: each kind it keeps for a number of days
/// (a kind not listed is kept forever).
pub fn policies(c: &Conn, org: OrgId) -> Result<Vec<(RetentionKind, i64)>> {
    c.scope(org)?;
    query_map(c, "select kind, days from retention_policy where organization_id = ? order by kind", [org.to_string()], |r| {
        Ok((parse_col(r, 0, RetentionKind::parse)?, r.get(1)?))
    })
}

/// Sets each named kind's days (`None`: kept forever); other kinds keep theirs.
pub fn set_policies(c: &Tx, org: OrgId, policies: &[(RetentionKind, Option<i64>)], at: Timestamp) -> Result<()> {
    c.scope(org)?;
    for (kind, days) in policies {
        match days {
            Some(d) => exec(
                c,
                "insert into retention_policy (organization_id, kind, days, updated_at) values (?, ?, ?, ?) \
                 on conflict (organization_id, kind) do update set days = excluded.days, updated_at = excluded.updated_at",
                params![org.to_string(), kind.as_str(), *d, at.0],
            )?,
            None => {
                exec(c, "delete from retention_policy where organization_id = ? and kind = ?", params![org.to_string(), kind.as_str()])?
            }
        };
    }
    Ok(())
}

/// Every organisation with a policy (the job's round).
pub fn organizations(c: &Conn) -> Result<Vec<OrgId>> {
    c.platform()?;
    query_map(c, "select distinct organization_id from retention_policy order by 1", params![], |r| parse_id(r, 0))
}

/// Incidents under a legal hold are left out of every kind.
const NOT_HELD: &str = "not in (select h.incident_id from legal_hold h where h.organization_id = ?)";

/// A closed incident is due from its closing, a deleted one from its deletion.
const INCIDENTS_DUE: &str = "select incident_id from incident where organization_id = ? \
     and ((closed_at is not null and closed_at < ?) or (deleted_at is not null and deleted_at < ?))";

/// How many of `kind` are due: older than `cutoff`, not held. Audit
/// entries are counted by [`crate::audit::prunable`].
pub fn count_due(c: &Conn, org: OrgId, kind: RetentionKind, cutoff: Timestamp) -> Result<i64> {
    c.scope(org)?;
    let (o, t) = (org.to_string(), cutoff.0);
    let count = |sql: &str, p: crate::db::List<'_>| query_one(c, sql, p, |r| r.get::<_, i64>(0));
    match kind {
        RetentionKind::ClosedIncidents => {
            count(&format!("select count(*) from ({INCIDENTS_DUE} and incident_id {NOT_HELD}) d"), params![o.as_str(), t, t, o.as_str()])
        }
        RetentionKind::Evidence => count(
            &format!(
                "select count(*) from evidence where organization_id = ? and created_at < ? and deleted_at is null \
                 and incident_id {NOT_HELD}"
            ),
            params![o.as_str(), t, o.as_str()],
        ),
        RetentionKind::Alerts => count(
            &format!(
                "select count(*) from alert where organization_id = ? and created_at < ? \
                 and (incident_id is null or incident_id {NOT_HELD})"
            ),
            params![o.as_str(), t, o.as_str()],
        ),
        RetentionKind::Events => {
            c.sees(&EVENTS)?;
            count(
                &format!(
                    "select count(*) from event where organization_id = ? and created_at < ? and event_id <= ? \
                     and (incident_id is null or incident_id {NOT_HELD})"
                ),
                params![o.as_str(), t, delivered_events(c, org)?, o.as_str()],
            )
        }
        RetentionKind::Sessions => count(
            "select count(*) from session where organization_id = ? and (expires_at < ? or revoked_at < ?)",
            params![o.as_str(), t, t],
        ),
        RetentionKind::Audit => Ok(0),
    }
}

/// The last event every endpoint of the organisation (webhooks, channels,
/// analyzers) has looked at: events after it are still to be sent.
fn delivered_events(c: &Conn, org: OrgId) -> Result<i64> {
    query_one(c, "select coalesce(min(event_cursor), 9223372036854775807) from webhook where organization_id = ?", [org.to_string()], |r| {
        r.get(0)
    })
}

/// What one batch removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub count: i64,
    /// Blobs of evidence whose records were removed or emptied: the caller
    /// deletes them once the batch is committed.
    pub blobs: Vec<String>,
}

/// Removes at most `limit` of `kind` that are due (as [`count_due`] counts
/// them). A removed incident takes its comments, timeline, sightings,
/// evidence (records, custody and blobs) and search entry with it.
pub fn remove_due(c: &Tx, org: OrgId, kind: RetentionKind, cutoff: Timestamp, limit: i64, now: Timestamp) -> Result<Removed> {
    c.scope(org)?;
    let (o, t) = (org.to_string(), cutoff.0);
    let mut out = Removed::default();
    match kind {
        RetentionKind::ClosedIncidents => {
            let ids: Vec<IncidentId> = query_map(
                c,
                &format!("{INCIDENTS_DUE} and incident_id {NOT_HELD} order by incident_id limit ?"),
                params![o.as_str(), t, t, o.as_str(), limit],
                |r| parse_id(r, 0),
            )?;
            c.sees(&EVENTS)?;
            c.sees(&TAGS)?;
            for id in ids {
                out.blobs.extend(remove_incident(c, org, id)?);
                out.count += 1;
            }
        }
        RetentionKind::Evidence => {
            let due: Vec<(String, Option<String>)> = query_map(
                c,
                &format!(
                    "select evidence_id, blob_key from evidence where organization_id = ? and created_at < ? \
                     and deleted_at is null and incident_id {NOT_HELD} order by created_at limit ?"
                ),
                params![o.as_str(), t, o.as_str(), limit],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            for (id, blob) in due {
                let n = exec(
                    c,
                    "update evidence set blob_key = null, deleted_at = ?, deleted_by = 'retention', delete_reason = 'retention policy' \
                     where organization_id = ? and evidence_id = ? and deleted_at is null",
                    params![now.0, o.as_str(), id.as_str()],
                )?;
                out.count += n as i64;
                out.blobs.extend(blob);
            }
        }
        RetentionKind::Alerts => {
            out.count = exec(
                c,
                &format!(
                    "delete from alert where organization_id = ? and alert_id in (select alert_id from alert \
                     where organization_id = ? and created_at < ? and (incident_id is null or incident_id {NOT_HELD}) limit ?)"
                ),
                params![o.as_str(), o.as_str(), t, o.as_str(), limit],
            )? as i64;
        }
        RetentionKind::Events => {
            c.sees(&EVENTS)?;
            let upto = delivered_events(c, org)?;
            out.count = exec(
                c,
                &format!(
                    "delete from event where event_id in (select event_id from event where organization_id = ? \
                     and created_at < ? and event_id <= ? and (incident_id is null or incident_id {NOT_HELD}) \
                     order by event_id limit ?)"
                ),
                params![o.as_str(), t, upto, o.as_str(), limit],
            )? as i64;
        }
        RetentionKind::Sessions => {
            let ids: Vec<String> = query_map(
                c,
                "select session_id from session where organization_id = ? and (expires_at < ? or revoked_at < ?) limit ?",
                params![o.as_str(), t, t, limit],
                |r| r.get(0),
            )?;
            for id in ids {
                exec(c, "delete from refresh_token where session_id = ?", [id.as_str()])?;
                exec(c, "delete from stream_ticket where session_id = ?", [id.as_str()])?;
                out.count += exec(c, "delete from session where organization_id = ? and session_id = ?", [o.as_str(), id.as_str()])? as i64;
            }
        }
        RetentionKind::Audit => {}
    }
    Ok(out)
}

/// Removes one incident and everything that is only its own; the blobs of
/// its evidence for the caller to delete.
fn remove_incident(c: &Tx, org: OrgId, id: IncidentId) -> Result<Vec<String>> {
    let (o, i) = (org.to_string(), id.to_string());
    let blobs: Vec<String> = query_map(
        c,
        "select blob_key from evidence where organization_id = ? and incident_id = ? and blob_key is not null",
        [o.as_str(), i.as_str()],
        |r| r.get(0),
    )?;
    crate::search::remove_incident(c, org, id)?;
    exec(
        c,
        "delete from custody where organization_id = ? and evidence_id in \
         (select evidence_id from evidence where organization_id = ? and incident_id = ?)",
        [o.as_str(), o.as_str(), i.as_str()],
    )?;
    for table in ["evidence", "comment", "ioc_sighting", "event", "incident_tag", "incident_breach", "incident"] {
        exec(c, &format!("delete from {table} where organization_id = ? and incident_id = ?"), [o.as_str(), i.as_str()])?;
    }
    exec(c, "update alert set incident_id = null where organization_id = ? and incident_id = ?", [o.as_str(), i.as_str()])?;
    Ok(blobs)
}

/// A legal hold on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub org: OrgId,
    pub incident_id: IncidentId,
    pub reason: String,
    pub set_by: Option<String>,
    pub set_at: Timestamp,
}

const HOLD_COLS: &str = "organization_id, incident_id, reason, set_by, set_at";

fn hold(r: &Row<'_, '_>) -> Result<HoldRow> {
    Ok(HoldRow { org: parse_id(r, 0)?, incident_id: parse_id(r, 1)?, reason: r.get(2)?, set_by: r.get(3)?, set_at: Timestamp(r.get(4)?) })
}

/// Puts the hold (or replaces its reason); whether there was none before.
pub fn hold_put(c: &Tx, h: &HoldRow) -> Result<bool> {
    c.scope(h.org)?;
    let before = held(c, h.org, h.incident_id)?;
    exec(
        c,
        &format!(
            "insert into legal_hold ({HOLD_COLS}) values (?, ?, ?, ?, ?) on conflict (organization_id, incident_id) \
             do update set reason = excluded.reason"
        ),
        params![h.org.to_string(), h.incident_id.to_string(), h.reason.as_str(), h.set_by.clone(), h.set_at.0],
    )?;
    Ok(before.is_none())
}

/// Lifts the hold; whether there was one.
pub fn hold_remove(c: &Tx, org: OrgId, incident: IncidentId) -> Result<bool> {
    c.scope(org)?;
    Ok(exec(c, "delete from legal_hold where organization_id = ? and incident_id = ?", [org.to_string(), incident.to_string()])? == 1)
}

pub fn held(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Option<HoldRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {HOLD_COLS} from legal_hold where organization_id = ? and incident_id = ?"),
        [org.to_string(), incident.to_string()],
        hold,
    )
}

/// The organisation's holds, newest first, after the keyset `before`
/// (`set_at`, incident id).
pub fn holds(c: &Conn, org: OrgId, before: Option<(i64, String)>, limit: i64) -> Result<Vec<HoldRow>> {
    c.scope(org)?;
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    query_map(
        c,
        &format!(
            "select {HOLD_COLS} from legal_hold where organization_id = ? and (set_at, incident_id) < (?, ?) \
             order by set_at desc, incident_id desc limit ?"
        ),
        params![org.to_string(), at, id.as_str(), limit],
        hold,
    )
}

/// Takes (or renews) the lease on job `name` for `holder` until `until`:
/// whether it is this holder's now. Another holder's lease is taken only
/// once it has run out.
pub fn take_lease(c: &Tx, name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
    c.platform()?;
    let n = exec(
        c,
        "insert into job_lease (name, holder, until) values (?, ?, ?) on conflict (name) do update \
         set holder = excluded.holder, until = excluded.until where job_lease.holder = excluded.holder or job_lease.until < ?",
        params![name, holder, until.0, now.0],
    )?;
    Ok(n == 1)
}
