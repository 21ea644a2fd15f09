//! Password resets: the SHA-256 of each link's token, single-use and
//! short-lived. Accounts are no tenant's: the platform's table, found by
//! account or by the token's hash.

use ironcase_domain::{Timestamp, UserId};

use crate::params;
use crate::{exec, parse_id, query_one, query_opt, Conn, Result, Tx};

pub fn insert(c: &Tx, token_hash: &str, user: UserId, at: Timestamp, expires_at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(
        c,
        "insert into password_reset (token_hash, user_id, created_at, expires_at) values (?, ?, ?, ?)",
        params![token_hash, user.to_string(), at.0, expires_at.0],
    )?;
    Ok(())
}

/// Resets of the account asked for since `since` (the per-account limit).
pub fn count_since(c: &Conn, user: UserId, since: Timestamp) -> Result<i64> {
    c.platform()?;
    query_one(c, "select count(*) from password_reset where user_id = ? and created_at >= ?", params![user.to_string(), since.0], |r| {
        r.get(0)
    })
}

/// Spends the reset with this token hash: its account when it was live
/// (unused, not expired), else `None`. The account's other live resets
/// are spent with it. One statement takes it, so a token works once.
pub fn take(c: &Tx, token_hash: &str, now: Timestamp) -> Result<Option<UserId>> {
    c.platform()?;
    let user: Option<UserId> = query_opt(
        c,
        "update password_reset set used_at = ? where token_hash = ? and used_at is null and expires_at > ? returning user_id",
        params![now.0, token_hash, now.0],
        |r| parse_id(r, 0),
    )?;
    if let Some(u) = user {
        exec(c, "update password_reset set used_at = ? where user_id = ? and used_at is null", params![now.0, u.to_string()])?;
    }
    Ok(user)
}
