//! Members' e-mail preferences for their organisation's notifications.

use ironcase_domain::{OrgId, Timestamp, UserId};

use crate::{exec, params, parse_id, query_map, query_opt, Conn, Result, Row, Tx};

/// What a member wants by e-mail. With no row, the default: everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefRow {
    pub org: OrgId,
    pub account: UserId,
    /// Whether they receive e-mail from the channels at all.
    pub email: bool,
    /// The event types they want; `["*"]`: all.
    pub event_types: Vec<String>,
    /// Only events on incidents assigned to them.
    pub only_assigned: bool,
    pub updated_at: Timestamp,
}

const COLS: &str = "organization_id, account_id, email, event_types, only_assigned, updated_at";

fn pref(r: &Row<'_, '_>) -> Result<PrefRow> {
    let types: String = r.get(3)?;
    Ok(PrefRow {
        org: parse_id(r, 0)?,
        account: parse_id(r, 1)?,
        email: r.get::<_, i64>(2)? != 0,
        event_types: types.split_ascii_whitespace().map(str::to_owned).collect(),
        only_assigned: r.get::<_, i64>(4)? != 0,
        updated_at: Timestamp(r.get(5)?),
    })
}

pub fn get(c: &Conn, org: OrgId, account: UserId) -> Result<Option<PrefRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {COLS} from notification_pref where organization_id = ? and account_id = ?"),
        [org.to_string(), account.to_string()],
        pref,
    )
}

/// Every member's preferences that differ from the default.
pub fn of_org(c: &Conn, org: OrgId) -> Result<Vec<PrefRow>> {
    c.scope(org)?;
    query_map(c, &format!("select {COLS} from notification_pref where organization_id = ?"), [org.to_string()], pref)
}

pub fn put(c: &Tx, p: &PrefRow) -> Result<()> {
    c.scope(p.org)?;
    exec(
        c,
        &format!(
            "insert into notification_pref ({COLS}) values (?, ?, ?, ?, ?, ?) on conflict (organization_id, account_id) do update \
             set email = excluded.email, event_types = excluded.event_types, only_assigned = excluded.only_assigned, \
             updated_at = excluded.updated_at"
        ),
        params![
            p.org.to_string(),
            p.account.to_string(),
            i64::from(p.email),
            p.event_types.join(" "),
            i64::from(p.only_assigned),
            p.updated_at.0
        ],
    )?;
    Ok(())
}
