//! Invitations to join an organisation: stored with the hash of their token
//! only, pending until accepted, revoked or expired.

use ironcase_domain::{InvitationId, OrgId, Role, RoleId, Timestamp, UserId};

use crate::{exec, params, parse_col, parse_id, query_map, query_opt, Conn, Result, Row, StoreError, Tx};

#[derive(Clone)]
pub struct InvitationRow {
    pub id: InvitationId,
    pub org: OrgId,
    pub email: String,
    pub role: Role,
    /// An organisation's own role to join with (`role` is its base).
    pub custom_role: Option<RoleId>,
    pub token_hash: String,
    pub invited_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for InvitationRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationRow").field("id", &self.id).field("org", &self.org).field("role", &self.role).finish_non_exhaustive()
    }
}

impl InvitationRow {
    /// Neither accepted nor revoked, and not expired at `now`.
    pub fn pending(&self, now: Timestamp) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

const COLS: &str =
    "organization_id, invitation_id, email, role, custom_role_id, token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at";

fn invitation(r: &Row<'_, '_>) -> Result<InvitationRow> {
    Ok(InvitationRow {
        id: parse_id(r, "invitation_id")?,
        org: parse_id(r, "organization_id")?,
        email: r.get("email")?,
        role: parse_col(r, "role", Role::parse)?,
        custom_role: crate::parse_opt_id(r, "custom_role_id")?,
        token_hash: r.get("token_hash")?,
        invited_by: parse_id(r, "invited_by")?,
        created_at: Timestamp(r.get("created_at")?),
        expires_at: Timestamp(r.get("expires_at")?),
        accepted_at: r.get::<_, Option<i64>>("accepted_at")?.map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>("revoked_at")?.map(Timestamp),
    })
}

pub fn insert(c: &Tx, i: &InvitationRow) -> Result<()> {
    c.scope(i.org)?;
    exec(
        c,
        &format!("insert into invitation ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            i.org.to_string(),
            i.id.to_string(),
            i.email,
            i.role.as_str(),
            i.custom_role.map(|r| r.to_string()),
            i.token_hash,
            i.invited_by.to_string(),
            i.created_at.0,
            i.expires_at.0,
            i.accepted_at.map(|t| t.0),
            i.revoked_at.map(|t| t.0)
        ],
    )?;
    Ok(())
}

/// Pending invitations oldest first, after `(created_at, id)`, at most `limit`.
pub fn list_pending(c: &Conn, org: OrgId, now: Timestamp, after: Option<(i64, InvitationId)>, limit: i64) -> Result<Vec<InvitationRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        &format!(
            "select {COLS} from invitation where organization_id = ? and accepted_at is null and revoked_at is null \
             and expires_at > ? and (created_at, invitation_id) > (?, ?) order by created_at, invitation_id limit ?"
        ),
        params![org.to_string(), now.0, at, id, limit],
        invitation,
    )
}

/// The invitation whose token hashes to `hash`, whichever organisation's.
pub fn find_by_hash(c: &Conn, hash: &str) -> Result<Option<InvitationRow>> {
    c.platform()?;
    query_opt(c, &format!("select {COLS} from invitation where token_hash = ?"), [hash], invitation)
}

/// The newest invitation of `email` to `org` still pending at `now` (one
/// signing in through the organisation's provider accepts it).
pub fn pending_for(c: &Conn, org: OrgId, email: &str, now: Timestamp) -> Result<Option<InvitationRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!(
            "select {COLS} from invitation where organization_id = ? and email = ? and accepted_at is null and revoked_at is null \
             and expires_at > ? order by created_at desc limit 1"
        ),
        params![org.to_string(), email, now.0],
        invitation,
    )
}

/// Ends a pending invitation: accepted or revoked (`column`) at `at`.
fn end(c: &Conn, org: OrgId, id: InvitationId, column: &str, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        &format!(
            "update invitation set {column} = ? where organization_id = ? and invitation_id = ? \
             and accepted_at is null and revoked_at is null"
        ),
        params![at.0, org.to_string(), id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn accept(c: &Tx, org: OrgId, id: InvitationId, at: Timestamp) -> Result<()> {
    end(c, org, id, "accepted_at", at)
}

pub fn revoke(c: &Tx, org: OrgId, id: InvitationId, at: Timestamp) -> Result<()> {
    end(c, org, id, "revoked_at", at)
}
