//! Sessions, refresh tokens, login failures and token-signing keys.

use ironcase_domain::{OrgId, SessionId, Timestamp, UserId};
use sqlx::Row;

use crate::{parse_id, Conn, Result};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: SessionId,
    pub org: OrgId,
    pub user: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

pub async fn insert_session(c: &mut Conn, s: &SessionRow) -> Result<()> {
    sqlx::query("insert into session (session_id, organization_id, user_id, created_at, expires_at) values (?, ?, ?, ?, ?)")
        .bind(s.id.to_string())
        .bind(s.org.to_string())
        .bind(s.user.to_string())
        .bind(s.created_at.0)
        .bind(s.expires_at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn get_session(c: &mut Conn, id: SessionId) -> Result<Option<SessionRow>> {
    let r =
        sqlx::query("select session_id, organization_id, user_id, created_at, expires_at, revoked_at from session where session_id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *c)
            .await?;
    r.map(|r| {
        Ok(SessionRow {
            id: parse_id(&r, "session_id")?,
            org: parse_id(&r, "organization_id")?,
            user: parse_id(&r, "user_id")?,
            created_at: Timestamp(r.try_get("created_at")?),
            expires_at: Timestamp(r.try_get("expires_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
        })
    })
    .transpose()
}

pub async fn extend_session(c: &mut Conn, id: SessionId, expires_at: Timestamp) -> Result<()> {
    sqlx::query("update session set expires_at = ? where session_id = ?").bind(expires_at.0).bind(id.to_string()).execute(&mut *c).await?;
    Ok(())
}

pub async fn revoke_session(c: &mut Conn, id: SessionId, at: Timestamp, reason: &str) -> Result<()> {
    sqlx::query("update session set revoked_at = ?, revoked_reason = ? where session_id = ? and revoked_at is null")
        .bind(at.0)
        .bind(reason)
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Ends every live session of one member in one organisation. Returns how many.
pub async fn revoke_member_sessions(c: &mut Conn, org: OrgId, user: UserId, at: Timestamp, reason: &str) -> Result<u64> {
    Ok(sqlx::query(
        "update session set revoked_at = ?, revoked_reason = ? where organization_id = ? and user_id = ? and revoked_at is null",
    )
    .bind(at.0)
    .bind(reason)
    .bind(org.to_string())
    .bind(user.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected())
}

pub async fn insert_refresh(c: &mut Conn, hash: &str, session: SessionId, at: Timestamp, expires_at: Timestamp) -> Result<()> {
    sqlx::query("insert into refresh_token (token_hash, session_id, created_at, expires_at) values (?, ?, ?, ?)")
        .bind(hash)
        .bind(session.to_string())
        .bind(at.0)
        .bind(expires_at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub session: SessionId,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

pub async fn get_refresh(c: &mut Conn, hash: &str) -> Result<Option<RefreshRow>> {
    let r = sqlx::query("select session_id, expires_at, used_at from refresh_token where token_hash = ?")
        .bind(hash)
        .fetch_optional(&mut *c)
        .await?;
    r.map(|r| {
        Ok(RefreshRow {
            session: parse_id(&r, "session_id")?,
            expires_at: Timestamp(r.try_get("expires_at")?),
            used_at: r.try_get::<Option<i64>, _>("used_at")?.map(Timestamp),
        })
    })
    .transpose()
}

/// Marks a refresh token used; false when it already was.
pub async fn use_refresh(c: &mut Conn, hash: &str, at: Timestamp) -> Result<bool> {
    Ok(sqlx::query("update refresh_token set used_at = ? where token_hash = ? and used_at is null")
        .bind(at.0)
        .bind(hash)
        .execute(&mut *c)
        .await?
        .rows_affected()
        == 1)
}

pub async fn record_login_failure(c: &mut Conn, email: &str, at: Timestamp) -> Result<()> {
    sqlx::query("insert into login_failure (email, at) values (?, ?)").bind(email).bind(at.0).execute(&mut *c).await?;
    Ok(())
}

/// Failures for `email` since `since`: how many, and the oldest of them.
pub async fn login_failures(c: &mut Conn, email: &str, since: Timestamp) -> Result<(i64, Option<Timestamp>)> {
    let r = sqlx::query("select count(*), min(at) from login_failure where email = ? and at >= ?")
        .bind(email)
        .bind(since.0)
        .fetch_one(&mut *c)
        .await?;
    Ok((r.try_get(0)?, r.try_get::<Option<i64>, _>(1)?.map(Timestamp)))
}

pub async fn clear_login_failures(c: &mut Conn, email: &str, before: Timestamp) -> Result<()> {
    sqlx::query("delete from login_failure where email = ? or at < ?").bind(email).bind(before.0).execute(&mut *c).await?;
    Ok(())
}

pub async fn insert_signing_key(c: &mut Conn, id: &str, algorithm: &str, ciphertext: &[u8], at: Timestamp) -> Result<()> {
    sqlx::query("insert into signing_key (signing_key_id, algorithm, ciphertext, created_at) values (?, ?, ?, ?)")
        .bind(id)
        .bind(algorithm)
        .bind(ciphertext)
        .bind(at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// All signing keys, newest first: `(id, algorithm, ciphertext)`.
pub async fn signing_keys(c: &mut Conn) -> Result<Vec<(String, String, Vec<u8>)>> {
    let rows =
        sqlx::query("select signing_key_id, algorithm, ciphertext from signing_key order by created_at desc").fetch_all(&mut *c).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
}

/// What a request needs to know about the session behind an access token.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub session: SessionRow,
    /// The member's role now; `None` when no longer a member.
    pub role: Option<ironcase_domain::Role>,
    pub is_operator: bool,
    pub org_status: String,
}

pub async fn session_auth(c: &mut Conn, id: SessionId) -> Result<Option<SessionAuth>> {
    let r = sqlx::query(
        "select s.session_id, s.organization_id, s.user_id, s.created_at, s.expires_at, s.revoked_at, m.role, u.is_operator, o.status \
         from session s join user u on u.user_id = s.user_id join organization o on o.organization_id = s.organization_id \
         left join membership m on m.organization_id = s.organization_id and m.user_id = s.user_id \
         where s.session_id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| {
        let role: Option<String> = r.try_get("role")?;
        Ok(SessionAuth {
            session: SessionRow {
                id: parse_id(&r, "session_id")?,
                org: parse_id(&r, "organization_id")?,
                user: parse_id(&r, "user_id")?,
                created_at: Timestamp(r.try_get("created_at")?),
                expires_at: Timestamp(r.try_get("expires_at")?),
                revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
            },
            role: role.and_then(|s| ironcase_domain::Role::parse(&s)),
            is_operator: r.try_get("is_operator")?,
            org_status: r.try_get("status")?,
        })
    })
    .transpose()
}
