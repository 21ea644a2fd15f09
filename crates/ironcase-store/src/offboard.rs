//! Offboarding: an organisation's data removed for good. Its data keys go
//! first (its evidence is unreadable from that commit on), then its rows,
//! table by table in bounded batches, then the organisation itself.

use ironcase_domain::OrgId;

use crate::db::Backend;
use crate::{exec, query_map, query_one, Conn, Result, Tx};

/// Every table that holds an organisation's rows, in the order they are
/// removed: what refers to a row goes before it. `the_list_names_every_table`
/// (in the store's story) keeps it whole.
pub const TABLES: &[&str] = &[
    "stream_ticket",
    "webhook_attempt",
    "webhook_message",
    "webhook",
    "notification_pref",
    "ioc_report",
    "custody",
    "evidence",
    "ioc_sighting",
    "ioc",
    "comment",
    "incident_tag",
    "incident_search",
    "incident_breach",
    "legal_hold",
    "privacy_request",
    "incident",
    "incident_tally",
    "incident_day",
    "event",
    "alert",
    "invitation",
    "mfa_challenge",
    "sso_code",
    "sso_login",
    "sso_config",
    "api_key",
    "session",
    "membership",
    "custom_role",
    "usage_counter",
    "retention_policy",
    "audit_pruned",
    "audit_checkpoint",
    "audit_tree",
    "audit_head",
    "audit_log",
    "subject_key",
    "erased_subject",
    "data_key",
    "organization",
];

/// SQLite tables made `without rowid`.
const WITHOUT_ROWID: &[&str] = &["incident_tag", "usage_counter", "incident_tally", "incident_day"];

/// Destroys the organisation's data keys and suspends it as `deleting`, in
/// one write: from its commit, its evidence cannot be read, and no one can
/// sign in to it. The evidence blobs' keys, for the caller to remove; and
/// how many data keys went.
pub fn destroy_keys(c: &Tx, org: OrgId) -> Result<(i64, Vec<String>)> {
    c.scope(org)?;
    let o = org.to_string();
    let blobs =
        query_map(c, "select blob_key from evidence where organization_id = ? and blob_key is not null", [o.as_str()], |r| r.get(0))?;
    let keys = exec(c, "delete from data_key where organization_id = ?", [o.as_str()])? as i64;
    // The personal data in its audit log goes with its subjects' keys.
    exec(c, "delete from subject_key where organization_id = ?", [o.as_str()])?;
    exec(c, "update organization set status = 'deleting' where organization_id = ?", [o.as_str()])?;
    crate::session::note_auth_change(c)?;
    Ok((keys, blobs))
}

/// Removes at most `limit` of the organisation's rows of `table` (one of
/// [`TABLES`]): how many went. The table is done when fewer than `limit` go.
pub fn remove_rows(c: &Tx, org: OrgId, table: &str, limit: i64) -> Result<i64> {
    c.scope(org)?;
    if !TABLES.contains(&table) {
        return Err(crate::StoreError::Corrupt(format!("not an organisation's table: {table}")));
    }
    let o = org.to_string();
    let pg = c.backend() == Backend::Postgres;
    if table == "incident_search" && !pg {
        return Ok(0);
    }
    if table == "audit_log" {
        c.sees(&crate::audit::ENTRIES)?;
    }
    if table == "event" {
        c.sees(&crate::event::EVENTS)?;
    }
    if table == "incident_tag" {
        c.sees(&crate::incident::TAGS)?;
    }
    if table == "incident_search" {
        c.sees(&crate::search::NEW_DOCUMENTS)?;
    }
    if table == "session" {
        exec(
            c,
            "delete from refresh_token where session_id in (select session_id from session where organization_id = ? limit ?)",
            crate::params![o.as_str(), limit],
        )?;
    }
    if table == "incident" && !pg {
        // The text index's rows are the incidents' row ids.
        exec(
            c,
            "delete from search_fts where rowid in (select row_id from incident where organization_id = ? limit ?)",
            crate::params![o.as_str(), limit],
        )?;
    }
    // The tree's hashes (without a row id on SQLite) go by their index, in batches.
    if !pg && table == "audit_tree" {
        let n = exec(
            c,
            "delete from audit_tree where organization_id = ? and idx in \
             (select idx from audit_tree where organization_id = ? limit ?)",
            crate::params![o.as_str(), o.as_str(), limit],
        )?;
        return Ok(n as i64);
    }
    // SQLite's tables without a row id (tags, tallies, counters) go at once.
    if !pg && WITHOUT_ROWID.contains(&table) {
        return Ok(exec(c, &format!("delete from {table} where organization_id = ?"), [o.as_str()])? as i64);
    }
    let key = if pg { "ctid" } else { "rowid" };
    let n = exec(
        c,
        &format!("delete from {table} where {key} in (select {key} from {table} where organization_id = ? limit ?)"),
        crate::params![o.as_str(), limit],
    )?;
    Ok(n as i64)
}

/// How many of the organisation's rows `table` holds.
pub fn count(c: &Conn, org: OrgId, table: &str) -> Result<i64> {
    c.scope(org)?;
    if !TABLES.contains(&table) || (table == "incident_search" && c.backend() != Backend::Postgres) {
        return Ok(0);
    }
    query_one(c, &format!("select count(*) from {table} where organization_id = ?"), [org.to_string()], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    /// Every table a migration gives an `organization_id` is one offboarding
    /// empties (the PostgreSQL schema: the same tables as SQLite's, which a
    /// test of `pg` keeps so).
    #[test]
    fn the_list_names_every_table_of_an_organisation() {
        let mut missing = Vec::new();
        for (_, _, sql) in crate::pg::MIGRATIONS {
            let sql = sql.to_lowercase();
            for part in sql.split("create table ").skip(1) {
                let name = part.split([' ', '(']).next().unwrap_or_default();
                let body = part.split("\n);").next().unwrap_or_default();
                if body.contains("organization_id") && !super::TABLES.contains(&name) {
                    missing.push(name.to_owned());
                }
            }
            for part in sql.split("alter table ").skip(1) {
                let name = part.split(' ').next().unwrap_or_default();
                if part.starts_with(&format!("{name} add column organization_id")) && !super::TABLES.contains(&name) {
                    missing.push(name.to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "offboarding leaves rows in {missing:?}");
    }
}
