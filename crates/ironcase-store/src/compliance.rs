//! The figures a compliance report judges, read from the organisation's
//! live data in one snapshot: each a count or an aggregate over an index,
//! or a row of the incident tallies, so a report costs the same at a
//! million incidents as at a hundred.

use ironcase_domain::compliance::{Figures, RESOLVE_TARGET_DAYS};
use ironcase_domain::privacy::DEADLINE_HOURS;
use ironcase_domain::{OrgId, Status, Timestamp};

use crate::audit::ENTRIES;
use crate::{params, query_map, query_one, query_opt, Conn, Result};

const DAY_MS: i64 = 86_400_000;

/// Statuses of an incident not yet resolved.
const UNRESOLVED: [Status; 4] = [Status::Open, Status::Triaged, Status::InProgress, Status::Contained];

fn unresolved_sql() -> String {
    UNRESOLVED.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}

/// Everything but the server's checkpoint settings and the audit chain's
/// head and checkpoint (the caller adds those).
pub fn figures(c: &Conn, org: OrgId, now: Timestamp) -> Result<Figures> {
    c.scope(org)?;
    let o = org.to_string();
    let ago_90 = now.0 - 90 * DAY_MS;
    let mut f = Figures::default();
    (f.members, f.owners_and_admins, f.members_with_mfa) = query_one(
        c,
        "select count(*), coalesce(sum(case when m.role in ('owner', 'admin') then 1 else 0 end), 0), \
         coalesce(sum(case when exists (select 1 from mfa_totp t where t.user_id = m.user_id and t.confirmed_at is not null) \
         then 1 else 0 end), 0) from membership m where m.organization_id = ?",
        [o.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    (f.mfa_required, f.ip_allowlist, f.session_policy_custom, f.audit_reads) = query_one(
        c,
        "select cast(case when mfa_required then 1 else 0 end as bigint), ip_allowlist, \
         cast(case when session_idle_secs is null and session_max_secs is null then 0 else 1 end as bigint), audit_reads \
         from organization where organization_id = ?",
        [o.as_str()],
        |r| Ok((r.get::<_, i64>(0)? != 0, !r.get::<_, String>(1)?.is_empty(), r.get::<_, i64>(2)? != 0, r.get::<_, i64>(3)? != 0)),
    )?;
    if let Some(required) = query_opt(
        c,
        "select cast(case when sso_required then 1 else 0 end as bigint) from sso_config where organization_id = ?",
        [o.as_str()],
        |r| r.get::<_, i64>(0),
    )? {
        (f.sso_configured, f.sso_required) = (true, required != 0);
    }
    f.custom_roles = query_one(c, "select count(*) from custom_role where organization_id = ?", [o.as_str()], |r| r.get(0))?;
    c.sees(&ENTRIES)?;
    f.role_changes_90d = query_one(
        c,
        "select count(*) from audit_log where organization_id = ? and at >= ? and action in \
         ('member.update', 'member.invite', 'member.remove', 'role.create', 'role.update', 'role.delete')",
        params![o.as_str(), ago_90],
        |r| r.get(0),
    )?;
    (f.api_keys_live, f.api_keys_without_expiry, f.api_keys_unused_90d) = query_one(
        c,
        "select count(*), coalesce(sum(case when expires_at is null then 1 else 0 end), 0), \
         coalesce(sum(case when coalesce(last_used_at, created_at) < ? then 1 else 0 end), 0) \
         from api_key where organization_id = ? and revoked_at is null and (expires_at is null or expires_at > ?)",
        params![ago_90, o.as_str(), now.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (keys, oldest): (i64, Option<i64>) =
        query_one(c, "select count(*), min(created_at) from data_key where organization_id = ?", [o.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    (f.data_keys, f.oldest_data_key_days) = (keys, oldest.map(|t| (now.0 - t) / DAY_MS));
    f.retention = crate::retention::policies(c, org)?;
    f.legal_holds = query_one(c, "select count(*) from legal_hold where organization_id = ?", [o.as_str()], |r| r.get(0))?;
    (f.closed_90d, f.mean_acknowledge_secs, f.mean_contain_secs, f.mean_resolve_secs) = query_one(
        c,
        "select count(*), cast(avg(acknowledged_at - created_at) / 1000 as bigint), cast(avg(contained_at - created_at) / 1000 as bigint), \
         cast(avg(resolved_at - created_at) / 1000 as bigint) from incident \
         where organization_id = ? and closed_at is not null and closed_at >= ? and deleted_at is null",
        params![o.as_str(), ago_90],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    // Unresolved incidents from the tallies; those past their target are
    // all of them but the ones opened within it (a short range of an index).
    let unresolved = unresolved_sql();
    let by_severity: Vec<(String, i64)> = query_map(
        c,
        &format!(
            "select severity, cast(sum(n) as bigint) from incident_tally where organization_id = ? and status in ({unresolved}) \
             group by severity"
        ),
        [o.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (sev, days) in RESOLVE_TARGET_DAYS {
        let all = by_severity.iter().find(|(s, _)| s == sev.as_str()).map_or(0, |(_, n)| *n);
        if all == 0 {
            continue;
        }
        let recent: i64 = query_one(
            c,
            &format!(
                "select count(*) from incident where organization_id = ? and severity = ? and created_at >= ? \
                 and status in ({unresolved}) and deleted_at is null"
            ),
            params![o.as_str(), sev.as_str(), now.0 - days * DAY_MS],
            |r| r.get(0),
        )?;
        f.open += all;
        f.open_past_target += (all - recent).max(0);
    }
    let deadline_ms = DEADLINE_HOURS * 3_600_000;
    (f.breaches_open, f.breaches_overdue, f.breaches_notified_on_time, f.breaches_notified_late) = query_one(
        c,
        "select coalesce(sum(case when notified_at is null and aware_at + ? > ? then 1 else 0 end), 0), \
         coalesce(sum(case when notified_at is null and aware_at + ? <= ? then 1 else 0 end), 0), \
         coalesce(sum(case when notified_at is not null and notified_at <= aware_at + ? then 1 else 0 end), 0), \
         coalesce(sum(case when notified_at is not null and notified_at > aware_at + ? then 1 else 0 end), 0) \
         from incident_breach where organization_id = ?",
        params![deadline_ms, now.0, deadline_ms, now.0, deadline_ms, deadline_ms, o.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    (f.dsr_requests, f.dsr_answered_late, f.dsr_open_overdue) = crate::privacy::late(c, org, now)?;
    Ok(f)
}
