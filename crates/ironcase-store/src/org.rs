//! Organisations, users and memberships.

use crate::{params, Row};
use ironcase_domain::net::AllowList;
use ironcase_domain::{OrgId, Role, RoleId, Timestamp, UserId};

use crate::{
    exec, parse_col, parse_id, parse_opt_id, query_map, query_one, query_opt, Conn, Lookup, MemoKey, Result, StoreError, Tx, Value,
};

#[derive(Debug, Clone)]
pub struct OrgRow {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub parent_id: Option<OrgId>,
    pub created_at: Timestamp,
}

fn org(r: &Row<'_, '_>) -> Result<OrgRow> {
    Ok(OrgRow {
        id: parse_id(r, "organization_id")?,
        slug: r.get("slug")?,
        name: r.get("name")?,
        plan: r.get("plan")?,
        status: r.get("status")?,
        parent_id: parse_opt_id(r, "parent_id")?,
        created_at: Timestamp(r.get("created_at")?),
    })
}

pub fn insert_org(c: &Tx, o: &OrgRow) -> Result<()> {
    c.scope(o.id)?;
    exec(
        c,
        "insert into organization (organization_id, slug, name, plan, status, parent_id, created_at) values (?, ?, ?, ?, ?, ?, ?)",
        params![o.id.to_string(), o.slug, o.name, o.plan, o.status, o.parent_id.map(|p| p.to_string()), o.created_at.0],
    )?;
    Ok(())
}

pub fn get_org(c: &Conn, id: OrgId) -> Result<OrgRow> {
    c.scope(id)?;
    query_one(
        c,
        "select organization_id, slug, name, plan, status, parent_id, created_at from organization where organization_id = ?",
        [id.to_string()],
        org,
    )
}

pub fn find_org_by_slug(c: &Conn, slug: &str) -> Result<Option<OrgRow>> {
    c.platform()?;
    query_opt(c, "select organization_id, slug, name, plan, status, parent_id, created_at from organization where slug = ?", [slug], org)
}

/// Organisations oldest first, after `(created_at, id)`, at most `limit`.
pub fn list_orgs(c: &Conn, after: Option<(i64, OrgId)>, limit: i64) -> Result<Vec<OrgRow>> {
    c.platform()?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        "select organization_id, slug, name, plan, status, parent_id, created_at from organization \
         where (created_at, organization_id) > (?, ?) order by created_at, organization_id limit ?",
        params![at, id, limit],
        org,
    )
}

pub fn count_orgs(c: &Conn) -> Result<i64> {
    c.platform()?;
    query_one(c, "select count(*) from organization", params![], |r| r.get(0))
}

/// Whether the organisation lets its parent read its data.
pub fn parent_access(c: &Conn, id: OrgId) -> Result<bool> {
    c.scope(id)?;
    query_one(c, "select parent_access from organization where organization_id = ?", [id.to_string()], |r| Ok(r.get::<_, i64>(0)? != 0))
}

/// Whether every read of the organisation's incidents, evidence and
/// indicators is audited.
pub fn audit_reads(c: &Conn, id: OrgId) -> Result<bool> {
    c.scope(id)?;
    query_one(c, "select audit_reads from organization where organization_id = ?", [id.to_string()], |r| Ok(r.get::<_, i64>(0)? != 0))
}

/// Turns read auditing on or off; every credential follows at once.
pub fn set_audit_reads(c: &Tx, id: OrgId, on: bool) -> Result<()> {
    c.scope(id)?;
    exec(c, "update organization set audit_reads = ? where organization_id = ?", params![i64::from(on), id.to_string()])?;
    crate::session::note_auth_change(c)
}

pub fn set_parent_access(c: &Tx, id: OrgId, granted: bool) -> Result<()> {
    c.scope(id)?;
    exec(c, "update organization set parent_access = ? where organization_id = ?", params![i64::from(granted), id.to_string()])?;
    Ok(())
}

/// The organisation's children, with whether each lets it read.
pub fn children(c: &Conn, parent: OrgId, after: Option<(i64, OrgId)>, limit: i64) -> Result<Vec<(OrgRow, bool)>> {
    // The children are other tenants: read as the platform, filtered by parent.
    c.platform()?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        "select organization_id, slug, name, plan, status, parent_id, created_at, parent_access from organization \
         where parent_id = ? and (created_at, organization_id) > (?, ?) order by created_at, organization_id limit ?",
        params![parent.to_string(), at, id, limit],
        |r| Ok((org(r)?, r.get::<_, i64>("parent_access")? != 0)),
    )
}

/// The organisation's plan, its overrides (JSON) and its status. In a
/// write, remembered for the rest of the batch (every create asks);
/// `set_plan` and `set_status` forget it.
pub fn plan_of(c: &impl Lookup, id: OrgId) -> Result<(String, String, String)> {
    let (tx, c) = (c.tx(), c.conn());
    c.scope(id)?;
    let memo = MemoKey::Plan(id.to_string());
    if let Some(known) = tx.and_then(|t| t.memo(&memo)).and_then(|(_, s)| serde_json::from_str(&s).ok()) {
        return Ok(known);
    }
    let found: (String, String, String) =
        query_one(&c, "select plan, plan_overrides, status from organization where organization_id = ?", [id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if let (Some(tx), Ok(s)) = (tx, serde_json::to_string(&found)) {
        tx.remember(memo, (0, s));
    }
    Ok(found)
}

pub fn set_plan(c: &Tx, id: OrgId, plan: &str, overrides_json: &str) -> Result<()> {
    c.scope(id)?;
    if exec(
        c,
        "update organization set plan = ?, plan_overrides = ? where organization_id = ?",
        params![plan, overrides_json, id.to_string()],
    )? == 0
    {
        return Err(StoreError::NotFound);
    }
    c.forget(&MemoKey::Plan(id.to_string()));
    Ok(())
}

pub fn set_status(c: &Tx, id: OrgId, status: &str) -> Result<()> {
    c.scope(id)?;
    if exec(c, "update organization set status = ? where organization_id = ?", params![status, id.to_string()])? == 0 {
        return Err(StoreError::NotFound);
    }
    c.forget(&MemoKey::Plan(id.to_string()));
    crate::session::note_auth_change(c)
}

/// Whether the organisation requires every member to have a second factor.
pub fn mfa_required(c: &Conn, id: OrgId) -> Result<bool> {
    c.scope(id)?;
    query_one(c, "select mfa_required from organization where organization_id = ?", [id.to_string()], |r| r.get(0))
}

/// Sets the organisation's second-factor policy; what its sessions may do
/// changes with it.
pub fn set_mfa_required(c: &Tx, id: OrgId, required: bool) -> Result<()> {
    c.scope(id)?;
    if exec(c, "update organization set mfa_required = ? where organization_id = ?", params![required, id.to_string()])? == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

/// An organisation's session timeouts; `None`: the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_secs: Option<i64>,
    pub max_secs: Option<i64>,
}

pub fn session_policy(c: &Conn, id: OrgId) -> Result<SessionPolicy> {
    c.scope(id)?;
    query_one(c, "select session_idle_secs, session_max_secs from organization where organization_id = ?", [id.to_string()], |r| {
        Ok(SessionPolicy { idle_secs: r.get(0)?, max_secs: r.get(1)? })
    })
}

/// Sets the organisation's session timeouts; live sessions follow at their
/// next refresh.
pub fn set_session_policy(c: &Tx, id: OrgId, p: SessionPolicy) -> Result<()> {
    c.scope(id)?;
    let n = exec(
        c,
        "update organization set session_idle_secs = ?, session_max_secs = ? where organization_id = ?",
        params![p.idle_secs, p.max_secs, id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

/// What applies to every credential of the organisation: the ranges it may
/// call from, and whether its reads are audited (one read of its row, on
/// every API key's request).
pub fn access_controls(c: &Conn, id: OrgId) -> Result<(AllowList, bool)> {
    c.scope(id)?;
    let (raw, reads): (String, i64) =
        query_one(c, "select ip_allowlist, audit_reads from organization where organization_id = ?", [id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let list = AllowList::from_stored(&raw).ok_or_else(|| StoreError::Corrupt(format!("ip_allowlist of {id}")))?;
    Ok((list, reads != 0))
}

/// The ranges the organisation's members and keys may call from.
pub fn ip_allowlist(c: &Conn, id: OrgId) -> Result<AllowList> {
    c.scope(id)?;
    let raw: String = query_one(c, "select ip_allowlist from organization where organization_id = ?", [id.to_string()], |r| r.get(0))?;
    AllowList::from_stored(&raw).ok_or_else(|| StoreError::Corrupt(format!("ip_allowlist of {id}")))
}

/// Sets the organisation's allow-list; every credential follows at once.
pub fn set_ip_allowlist(c: &Tx, id: OrgId, list: &AllowList) -> Result<()> {
    c.scope(id)?;
    if exec(c, "update organization set ip_allowlist = ? where organization_id = ?", params![list.stored(), id.to_string()])? == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

/// A new password for the account (its hash).
pub fn set_password_hash(c: &Tx, id: UserId, hash: &str) -> Result<()> {
    c.platform()?;
    if exec(c, "update account set password_hash = ? where user_id = ?", params![hash, id.to_string()])? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn count_members(c: &Conn, id: OrgId) -> Result<i64> {
    c.scope(id)?;
    query_one(c, "select count(*) from membership where organization_id = ?", [id.to_string()], |r| r.get(0))
}

/// How much of a periodic quota is used in `period`.
pub fn usage(c: &Conn, id: OrgId, quota: &str, period: &str) -> Result<i64> {
    c.scope(id)?;
    Ok(query_opt(
        c,
        "select used from usage_counter where organization_id = ? and quota = ? and period = ?",
        params![id.to_string(), quota, period],
        |r| r.get(0),
    )?
    .unwrap_or(0))
}

/// Adds `n` to a periodic quota's counter; returns the new value.
pub fn usage_add(c: &Tx, id: OrgId, quota: &str, period: &str, n: i64) -> Result<i64> {
    c.scope(id)?;
    const ADD: &str = "insert into usage_counter (organization_id, quota, period, used) values (?, ?, ?, ?) \
                       on conflict (organization_id, quota, period) do update set used = usage_counter.used + excluded.used";
    let memo = MemoKey::Usage { org: id.to_string(), quota: quota.to_owned(), period: period.to_owned() };
    if let Some((before, _)) = c.memo(&memo) {
        let used = before + n;
        c.write_behind(
            memo,
            (used, String::new()),
            "insert into usage_counter (organization_id, quota, period, used) values (?, ?, ?, ?) \
             on conflict (organization_id, quota, period) do update set used = excluded.used",
            vec![Value::Text(id.to_string()), Value::Text(quota.to_owned()), Value::Text(period.to_owned()), Value::Integer(used)],
        )?;
        return Ok(used);
    }
    let used = query_one(c, &format!("{ADD} returning used"), params![id.to_string(), quota, period, n], |r| r.get(0))?;
    c.remember(memo, (used, String::new()));
    Ok(used)
}

/// Issues the next per-organisation incident number inside the caller's transaction.
pub fn next_incident_number(c: &Tx, id: OrgId) -> Result<i64> {
    c.scope(id)?;
    let memo = MemoKey::IncidentSeq(id.to_string());
    if let Some((last, _)) = c.memo(&memo) {
        let next = last + 1;
        c.write_behind(
            memo,
            (next, String::new()),
            "update organization set incident_seq = ? where organization_id = ?",
            vec![Value::Integer(next), Value::Text(id.to_string())],
        )?;
        return Ok(next);
    }
    let next = query_one(
        c,
        "update organization set incident_seq = incident_seq + 1 where organization_id = ? returning incident_seq",
        [id.to_string()],
        |r| r.get(0),
    )?;
    c.remember(memo, (next, String::new()));
    Ok(next)
}

#[derive(Clone)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_operator: bool,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow").field("id", &self.id).field("email", &self.email).finish_non_exhaustive()
    }
}

fn user(r: &Row<'_, '_>) -> Result<UserRow> {
    Ok(UserRow {
        id: parse_id(r, "user_id")?,
        email: r.get("email")?,
        name: r.get("name")?,
        password_hash: r.get("password_hash")?,
        is_operator: r.get("is_operator")?,
        created_at: Timestamp(r.get("created_at")?),
    })
}

pub fn insert_user(c: &Tx, u: &UserRow) -> Result<()> {
    exec(
        c,
        "insert into account (user_id, email, name, password_hash, is_operator, created_at) values (?, ?, ?, ?, ?, ?)",
        params![u.id.to_string(), u.email, u.name, u.password_hash, u.is_operator, u.created_at.0],
    )?;
    Ok(())
}

pub fn find_user_by_email(c: &Conn, email: &str) -> Result<Option<UserRow>> {
    query_opt(c, "select user_id, email, name, password_hash, is_operator, created_at from account where email = ?", [email], user)
}

pub fn get_user(c: &Conn, id: UserId) -> Result<UserRow> {
    query_one(
        c,
        "select user_id, email, name, password_hash, is_operator, created_at from account where user_id = ?",
        [id.to_string()],
        user,
    )
}

/// A new member with `role`, or an organisation's own role (`custom`, whose
/// base `role` is).
pub fn insert_membership(c: &Tx, org: OrgId, user: UserId, role: Role, custom: Option<RoleId>, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "insert into membership (organization_id, user_id, role, custom_role_id, created_at) values (?, ?, ?, ?, ?)",
        params![org.to_string(), user.to_string(), role.as_str(), custom.map(|r| r.to_string()), at.0],
    )?;
    Ok(())
}

/// How many organisations the account belongs to.
pub fn count_memberships(c: &Conn, user: UserId) -> Result<i64> {
    c.platform()?;
    query_one(c, "select count(*) from membership where user_id = ?", [user.to_string()], |r| r.get(0))
}

pub fn membership_role(c: &Conn, org: OrgId, user: UserId) -> Result<Option<Role>> {
    c.scope(org)?;
    query_opt(c, "select role from membership where organization_id = ? and user_id = ?", [org.to_string(), user.to_string()], |r| {
        parse_col(r, "role", Role::parse)
    })
}

/// Whether the account with this address is a member of `org`.
pub fn is_member_by_email(c: &Conn, org: OrgId, email: &str) -> Result<bool> {
    c.scope(org)?;
    query_one(
        c,
        "select count(*) from membership m join account u on u.user_id = m.user_id where m.organization_id = ? and u.email = ?",
        [org.to_string(), email.to_owned()],
        |r| Ok(r.get::<_, i64>(0)? > 0),
    )
}

/// The organisation a user joined first, with their role there.
/// The organisations an account belongs to: `(slug, name)`, by name (at
/// most 200).
pub fn organizations_of(c: &Conn, user: UserId) -> Result<Vec<(String, String)>> {
    c.platform()?;
    query_map(
        c,
        "select o.slug, o.name from membership m join organization o on o.organization_id = m.organization_id \
         where m.user_id = ? order by o.name, o.slug limit 200",
        [user.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn first_membership(c: &Conn, user: UserId) -> Result<Option<(OrgId, Role)>> {
    c.platform()?;
    query_opt(
        c,
        "select organization_id, role from membership where user_id = ? order by created_at, organization_id limit 1",
        [user.to_string()],
        |r| Ok((parse_id(r, "organization_id")?, parse_col(r, "role", Role::parse)?)),
    )
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// An organisation's own role the member holds (`role` is its base).
    pub custom_role: Option<RoleId>,
    pub joined_at: Timestamp,
}

fn member(r: &Row<'_, '_>) -> Result<MemberRow> {
    Ok(MemberRow {
        user_id: parse_id(r, "user_id")?,
        email: r.get("email")?,
        name: r.get("name")?,
        role: parse_col(r, "role", Role::parse)?,
        custom_role: parse_opt_id(r, "custom_role_id")?,
        joined_at: Timestamp(r.get("created_at")?),
    })
}

/// Members oldest first, after `(joined, user id)`, at most `limit`.
pub fn list_members(c: &Conn, org: OrgId, after: Option<(i64, UserId)>, limit: i64) -> Result<Vec<MemberRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        "select m.user_id, u.email, u.name, m.role, m.custom_role_id, m.created_at from membership m join account u on u.user_id = m.user_id \
         where m.organization_id = ? and (m.created_at, m.user_id) > (?, ?) order by m.created_at, m.user_id limit ?",
        params![org.to_string(), at, id, limit],
        member,
    )
}

/// The names (else e-mail addresses) of those of `users` who are members of
/// `org` (at most 100 asked at once).
pub fn member_names(c: &Conn, org: OrgId, users: &[UserId]) -> Result<Vec<(UserId, String)>> {
    c.scope(org)?;
    let users = &users[..users.len().min(100)];
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; users.len()].join(", ");
    let mut p = vec![crate::Value::Text(org.to_string())];
    p.extend(users.iter().map(|u| crate::Value::Text(u.to_string())));
    query_map(
        c,
        &format!(
            "select m.user_id, case when u.name = '' then u.email else u.name end from membership m \
             join account u on u.user_id = m.user_id where m.organization_id = ? and m.user_id in ({marks})"
        ),
        p,
        |r| Ok((parse_id(r, 0)?, r.get(1)?)),
    )
}

pub fn get_member(c: &Conn, org: OrgId, user: UserId) -> Result<MemberRow> {
    c.scope(org)?;
    query_one(
        c,
        "select m.user_id, u.email, u.name, m.role, m.custom_role_id, m.created_at from membership m join account u on u.user_id = m.user_id \
         where m.organization_id = ? and m.user_id = ?",
        [org.to_string(), user.to_string()],
        member,
    )
}

pub fn update_role(c: &Tx, org: OrgId, user: UserId, role: Role, custom: Option<RoleId>) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "update membership set role = ?, custom_role_id = ? where organization_id = ? and user_id = ?",
        params![role.as_str(), custom.map(|r| r.to_string()), org.to_string(), user.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

pub fn delete_membership(c: &Tx, org: OrgId, user: UserId) -> Result<()> {
    c.scope(org)?;
    let n = exec(c, "delete from membership where organization_id = ? and user_id = ?", [org.to_string(), user.to_string()])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

pub fn count_role(c: &Conn, org: OrgId, role: Role) -> Result<i64> {
    c.scope(org)?;
    query_one(c, "select count(*) from membership where organization_id = ? and role = ?", params![org.to_string(), role.as_str()], |r| {
        r.get(0)
    })
}
