//! Sessions, refresh tokens, login failures and token-signing keys.

use crate::params;
use ironcase_domain::net::AllowList;
use ironcase_domain::{OrgId, Role, SessionId, Timestamp, UserId};

use crate::{exec, parse_id, query_map, query_one, query_opt, Conn, Result, Tx};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: SessionId,
    pub org: OrgId,
    pub user: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Where a session began and how it proved itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// `password`, `mfa`.
    pub method: String,
}

pub fn insert_session(c: &Tx, s: &SessionRow, origin: &Origin) -> Result<()> {
    c.scope(s.org)?;
    exec(
        c,
        "insert into session (session_id, organization_id, user_id, created_at, expires_at, last_seen_at, authenticated_at, \
         source_ip, user_agent, method) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            s.id.to_string(),
            s.org.to_string(),
            s.user.to_string(),
            s.created_at.0,
            s.expires_at.0,
            s.created_at.0,
            s.created_at.0,
            origin.source_ip.clone(),
            origin.user_agent.clone(),
            origin.method.clone()
        ],
    )?;
    Ok(())
}

/// A session as its member sees it.
#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub session: SessionRow,
    pub last_seen_at: Timestamp,
    pub origin: Origin,
}

/// The member's live sessions in the organisation, oldest first, after the
/// cursor `(created_at, id)`.
pub fn list_member_sessions(
    c: &Conn,
    org: OrgId,
    user: UserId,
    now: Timestamp,
    after: Option<(i64, SessionId)>,
    limit: i64,
) -> Result<Vec<SessionDetail>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        "select session_id, organization_id, user_id, created_at, expires_at, revoked_at, last_seen_at, source_ip, user_agent, method \
         from session where organization_id = ? and user_id = ? and revoked_at is null and expires_at > ? \
         and (created_at, session_id) > (?, ?) order by created_at, session_id limit ?",
        params![org.to_string(), user.to_string(), now.0, at, id, limit],
        |r| {
            Ok(SessionDetail {
                session: SessionRow {
                    id: parse_id(r, 0)?,
                    org: parse_id(r, 1)?,
                    user: parse_id(r, 2)?,
                    created_at: Timestamp(r.get(3)?),
                    expires_at: Timestamp(r.get(4)?),
                    revoked_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                },
                last_seen_at: Timestamp(r.get(6)?),
                origin: Origin { source_ip: r.get(7)?, user_agent: r.get(8)?, method: r.get(9)? },
            })
        },
    )
}

/// The session was used (a refresh): idleness counts from now.
pub fn touch_session(c: &Tx, id: SessionId, at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(c, "update session set last_seen_at = ? where session_id = ?", params![at.0, id.to_string()])?;
    Ok(())
}

/// Names the session by a browser's cookie: the SHA-256 of its secret.
pub fn bind_browser(c: &Tx, id: SessionId, hash: &str) -> Result<()> {
    c.platform()?;
    exec(c, "update session set browser_hash = ? where session_id = ?", params![hash, id.to_string()])?;
    Ok(())
}

/// The session a browser's cookie names (by the hash of its secret): its
/// id, organisation and when it was last used.
pub fn by_browser(c: &Conn, hash: &str) -> Result<Option<(SessionId, OrgId, Timestamp)>> {
    c.platform()?;
    query_opt(c, "select session_id, organization_id, last_seen_at from session where browser_hash = ?", [hash.to_owned()], |r| {
        Ok((parse_id(r, 0)?, parse_id(r, 1)?, Timestamp(r.get(2)?)))
    })
}

/// When the session was last used.
pub fn last_seen(c: &Conn, id: SessionId) -> Result<Option<Timestamp>> {
    c.platform()?;
    query_opt(c, "select last_seen_at from session where session_id = ?", [id.to_string()], |r| Ok(Timestamp(r.get(0)?)))
}

/// The session's holder proved who they are again (re-authentication):
/// sensitive actions are open to it for a while.
pub fn reauthenticated(c: &Tx, org: OrgId, id: SessionId, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "update session set authenticated_at = ? where organization_id = ? and session_id = ? and revoked_at is null",
        params![at.0, org.to_string(), id.to_string()],
    )?;
    if n == 0 {
        return Err(crate::StoreError::NotFound);
    }
    note_auth_change(c)
}

/// Ends every live session of the account, in every organisation, but
/// `keep` (a new password).
pub fn revoke_account_sessions(c: &Tx, user: UserId, keep: SessionId, at: Timestamp, reason: &str) -> Result<usize> {
    c.platform()?;
    let n = exec(
        c,
        "update session set revoked_at = ?, revoked_reason = ? where user_id = ? and session_id <> ? and revoked_at is null",
        params![at.0, reason, user.to_string(), keep.to_string()],
    )?;
    note_auth_change(c)?;
    Ok(n)
}

/// Ends every live session of the member in the organisation but `keep`.
pub fn revoke_other_sessions(c: &Tx, org: OrgId, user: UserId, keep: SessionId, at: Timestamp, reason: &str) -> Result<usize> {
    c.scope(org)?;
    let n = exec(
        c,
        "update session set revoked_at = ?, revoked_reason = ? \
         where organization_id = ? and user_id = ? and session_id <> ? and revoked_at is null",
        params![at.0, reason, org.to_string(), user.to_string(), keep.to_string()],
    )?;
    note_auth_change(c)?;
    Ok(n)
}

pub fn extend_session(c: &Tx, id: SessionId, expires_at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(c, "update session set expires_at = ? where session_id = ?", params![expires_at.0, id.to_string()])?;
    Ok(())
}

pub fn revoke_session(c: &Tx, id: SessionId, at: Timestamp, reason: &str) -> Result<()> {
    c.platform()?;
    exec(
        c,
        "update session set revoked_at = ?, revoked_reason = ? where session_id = ? and revoked_at is null",
        params![at.0, reason, id.to_string()],
    )?;
    note_auth_change(c)
}

/// Ends every live session of one member in one organisation. Returns how many.
pub fn revoke_member_sessions(c: &Tx, org: OrgId, user: UserId, at: Timestamp, reason: &str) -> Result<usize> {
    c.scope(org)?;
    let n = exec(
        c,
        "update session set revoked_at = ?, revoked_reason = ? where organization_id = ? and user_id = ? and revoked_at is null",
        params![at.0, reason, org.to_string(), user.to_string()],
    )?;
    note_auth_change(c)?;
    Ok(n)
}

/// Records, in the transaction of the change, that what a session may do has
/// changed (what [`session_auth`] reads: a session's revocation, a member's
/// role or membership, an organisation's status). Every function that makes
/// such a change calls it. The count in `auth_epoch` moves with the change,
/// and the store's auth hook runs after the commit, before the write's caller
/// is answered, so that every node forgets the sessions it remembers.
pub fn note_auth_change(c: &Tx) -> Result<()> {
    c.run("update auth_epoch set epoch = epoch + 1 where id = 1", params![])?;
    crate::writer::note_auth_change();
    Ok(())
}

/// The count of changes to what sessions may do ([`note_auth_change`]).
pub fn auth_epoch(c: &Conn) -> Result<i64> {
    query_one(c, "select epoch from auth_epoch where id = 1", params![], |r| r.get(0))
}

pub fn insert_refresh(c: &Tx, hash: &str, session: SessionId, at: Timestamp, expires_at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(
        c,
        "insert into refresh_token (token_hash, session_id, created_at, expires_at) values (?, ?, ?, ?)",
        params![hash, session.to_string(), at.0, expires_at.0],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub session: SessionId,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub fn get_refresh(c: &Conn, hash: &str) -> Result<Option<RefreshRow>> {
    c.platform()?;
    query_opt(c, "select session_id, expires_at, used_at from refresh_token where token_hash = ?", [hash], |r| {
        Ok(RefreshRow {
            session: parse_id(r, "session_id")?,
            expires_at: Timestamp(r.get("expires_at")?),
            used_at: r.get::<_, Option<i64>>("used_at")?.map(Timestamp),
        })
    })
}

/// Marks a refresh token used; false when it already was.
pub fn use_refresh(c: &Tx, hash: &str, at: Timestamp) -> Result<bool> {
    c.platform()?;
    Ok(exec(c, "update refresh_token set used_at = ? where token_hash = ? and used_at is null", params![at.0, hash])? == 1)
}

/// A failed login for `email` from `source`: `ip:<address>`, or
/// `device:<id>` for a client that proved an earlier successful login.
pub fn record_login_failure(c: &Tx, email: &str, source: &str, at: Timestamp) -> Result<()> {
    exec(c, "insert into login_failure (email, at, source) values (?, ?, ?)", params![email, at.0, source])?;
    Ok(())
}

/// An account's failed logins within a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// From the source asking now, and the oldest of them.
    pub from_source: i64,
    pub oldest_from_source: Option<Timestamp>,
    /// From addresses (not from known devices), and the newest of them.
    pub untrusted: i64,
    pub newest_untrusted: Option<Timestamp>,
}

/// `email`'s failures since `since`, seen from `source`.
pub fn login_failures(c: &Conn, email: &str, source: &str, since: Timestamp) -> Result<LoginFailures> {
    query_one(
        c,
        "select coalesce(sum(case when source = ? then 1 else 0 end), 0), min(case when source = ? then at end), \
                coalesce(sum(case when source like 'ip:%' then 1 else 0 end), 0), max(case when source like 'ip:%' then at end) \
         from login_failure where email = ? and at >= ?",
        params![source, source, email, since.0],
        |r| {
            Ok(LoginFailures {
                from_source: r.get(0)?,
                oldest_from_source: r.get::<_, Option<i64>>(1)?.map(Timestamp),
                untrusted: r.get(2)?,
                newest_untrusted: r.get::<_, Option<i64>>(3)?.map(Timestamp),
            })
        },
    )
}

/// Forgets `email`'s failures from `source` (after it logged in: the other
/// sources' stay counted) and everyone's older than `before` (they no longer
/// count).
pub fn clear_login_failures(c: &Tx, email: &str, source: &str, before: Timestamp) -> Result<()> {
    exec(c, "delete from login_failure where (email = ? and source = ?) or at < ?", params![email, source, before.0])?;
    Ok(())
}

pub fn insert_signing_key(c: &Tx, id: &str, algorithm: &str, ciphertext: &[u8], at: Timestamp) -> Result<()> {
    exec(
        c,
        "insert into signing_key (signing_key_id, algorithm, ciphertext, created_at) values (?, ?, ?, ?)",
        params![id, algorithm, ciphertext, at.0],
    )?;
    Ok(())
}

/// All signing keys, newest first: `(id, algorithm, ciphertext)`.
pub fn signing_keys(c: &Conn) -> Result<Vec<(String, String, Vec<u8>)>> {
    query_map(c, "select signing_key_id, algorithm, ciphertext from signing_key order by created_at desc", params![], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// What a request needs to know about the session behind an access token.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub session: SessionRow,
    /// The member's role now; `None` when no longer a member.
    pub role: Option<Role>,
    pub is_operator: bool,
    pub org_status: String,
    /// The organisation requires a second factor and the account has none
    /// yet: the session may only enrol one.
    pub mfa_pending: bool,
    /// When the holder last proved who they are (login, re-authentication).
    pub authenticated_at: Timestamp,
    /// The organisation's session timeouts.
    pub policy: crate::org::SessionPolicy,
    /// The ranges the organisation's members may call from.
    pub ip_allowlist: AllowList,
    /// The organisation's own role the member holds, if any.
    pub custom_role: Option<crate::role::CustomRoleRow>,
    /// The organisation audits every read of its incidents.
    pub audit_reads: bool,
}

/// The session `id` and what its holder may do. With `org` (the organisation
/// an access token names) the read is scoped to it, and a session of another
/// organisation does not exist; without, every tenant's (a refresh token
/// finds its session).
pub fn session_auth(c: &Conn, id: SessionId, org: Option<OrgId>) -> Result<Option<SessionAuth>> {
    match org {
        Some(o) => c.scope(o)?,
        None => c.platform()?,
    }
    // The scope is PostgreSQL's wall; SQLite has none, so the session's
    // organisation is checked here as well (found by the store's story).
    let found = query_opt(
        c,
        &format!(
            "select s.session_id, s.organization_id, s.user_id, s.created_at, s.expires_at, s.revoked_at, m.role, \
                u.is_operator, o.status, {}, \
                o.mfa_required and not exists (select 1 from mfa_totp t where t.user_id = s.user_id and t.confirmed_at is not null) \
                as mfa_pending, s.authenticated_at, o.session_idle_secs, o.session_max_secs, o.ip_allowlist, o.audit_reads \
         from session s join account u on u.user_id = s.user_id join organization o on o.organization_id = s.organization_id \
         left join membership m on m.organization_id = s.organization_id and m.user_id = s.user_id \
         left join custom_role cr on cr.role_id = m.custom_role_id \
         where s.session_id = ?",
            crate::role::JOINED_COLS
        ),
        [id.to_string()],
        |r| {
            let role: Option<String> = r.get("role")?;
            let auth = SessionAuth {
                session: SessionRow {
                    id: parse_id(r, "session_id")?,
                    org: parse_id(r, "organization_id")?,
                    user: parse_id(r, "user_id")?,
                    created_at: Timestamp(r.get("created_at")?),
                    expires_at: Timestamp(r.get("expires_at")?),
                    revoked_at: r.get::<_, Option<i64>>("revoked_at")?.map(Timestamp),
                },
                role: role.and_then(|s| Role::parse(&s)),
                is_operator: r.get("is_operator")?,
                org_status: r.get("status")?,
                mfa_pending: r.get("mfa_pending")?,
                authenticated_at: Timestamp(r.get("authenticated_at")?),
                policy: crate::org::SessionPolicy { idle_secs: r.get("session_idle_secs")?, max_secs: r.get("session_max_secs")? },
                ip_allowlist: {
                    let raw: String = r.get("ip_allowlist")?;
                    AllowList::from_stored(&raw).ok_or_else(|| crate::StoreError::Corrupt("organization.ip_allowlist".into()))?
                },
                custom_role: crate::role::joined(r)?,
                audit_reads: r.get::<_, i64>("audit_reads")? != 0,
            };
            Ok(auth)
        },
    )?;
    Ok(found.filter(|f| org.is_none_or(|o| f.session.org == o)))
}
