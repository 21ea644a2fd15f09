//! Second factors of accounts: a TOTP authenticator (its secret sealed by
//! the caller), backup codes (hashes), and the challenges of logins that
//! passed their password and wait for a code. Accounts are no tenant's:
//! these tables are the platform's, found by account or by a secret's hash.

use ironcase_domain::{OrgId, Timestamp, UserId};

use crate::params;
use crate::{exec, parse_id, query_one, query_opt, Conn, Result, Tx};

/// An account's authenticator.
#[derive(Clone)]
pub struct TotpRow {
    /// The secret, sealed (never shown again after enrolment).
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
    /// `None` while enrolment waits for a first code.
    pub confirmed_at: Option<Timestamp>,
    /// The newest 30-second step a code was accepted for.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow").field("confirmed_at", &self.confirmed_at).finish_non_exhaustive()
    }
}

pub fn totp(c: &Conn, user: UserId) -> Result<Option<TotpRow>> {
    c.platform()?;
    query_opt(c, "select sealed_secret, created_at, confirmed_at, last_step from mfa_totp where user_id = ?", [user.to_string()], |r| {
        Ok(TotpRow {
            sealed_secret: r.get(0)?,
            created_at: Timestamp(r.get(1)?),
            confirmed_at: r.get::<_, Option<i64>>(2)?.map(Timestamp),
            last_step: r.get(3)?,
        })
    })
}

/// Starts (or starts again) an enrolment with a new sealed secret; false,
/// and nothing changed, when the account already has a confirmed one.
pub fn begin_totp(c: &Tx, user: UserId, sealed: &[u8], at: Timestamp) -> Result<bool> {
    c.platform()?;
    let n = exec(
        c,
        "insert into mfa_totp (user_id, sealed_secret, created_at, confirmed_at, last_step) values (?, ?, ?, null, 0) \
         on conflict (user_id) do update set sealed_secret = excluded.sealed_secret, created_at = excluded.created_at \
         where mfa_totp.confirmed_at is null",
        params![user.to_string(), sealed, at.0],
    )?;
    Ok(n == 1)
}

/// Accepts a code of `step`: true (and the step remembered) only when the
/// authenticator is confirmed, or `confirm` is set, and no code of this or
/// a later step was accepted before. One statement, so two requests with
/// the same code cannot both pass.
pub fn accept_step(c: &Tx, user: UserId, step: i64, confirm: Option<Timestamp>) -> Result<bool> {
    c.platform()?;
    let n = match confirm {
        None => exec(
            c,
            "update mfa_totp set last_step = ? where user_id = ? and confirmed_at is not null and last_step < ?",
            params![step, user.to_string(), step],
        )?,
        Some(at) => {
            let n = exec(
                c,
                "update mfa_totp set last_step = ?, confirmed_at = ? where user_id = ? and confirmed_at is null and last_step < ?",
                params![step, at.0, user.to_string(), step],
            )?;
            // An enrolling session (organisation policy) is one no more.
            if n == 1 {
                crate::session::note_auth_change(c)?;
            }
            n
        }
    };
    Ok(n == 1)
}

/// Removes the account's authenticator and backup codes (its sessions in
/// organisations that require a second factor are enrolling again).
pub fn remove(c: &Tx, user: UserId) -> Result<()> {
    c.platform()?;
    exec(c, "delete from mfa_backup_code where user_id = ?", [user.to_string()])?;
    exec(c, "delete from mfa_totp where user_id = ?", [user.to_string()])?;
    crate::session::note_auth_change(c)
}

/// Replaces the account's backup codes with these hashes.
pub fn replace_backup_codes(c: &Tx, user: UserId, hashes: &[String], at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(c, "delete from mfa_backup_code where user_id = ?", [user.to_string()])?;
    for h in hashes {
        exec(c, "insert into mfa_backup_code (user_id, code_hash, created_at) values (?, ?, ?)", params![user.to_string(), h, at.0])?;
    }
    Ok(())
}

/// Spends a backup code: true once per code.
pub fn use_backup_code(c: &Tx, user: UserId, hash: &str, at: Timestamp) -> Result<bool> {
    c.platform()?;
    let n = exec(
        c,
        "update mfa_backup_code set used_at = ? where user_id = ? and code_hash = ? and used_at is null",
        params![at.0, user.to_string(), hash],
    )?;
    Ok(n == 1)
}

/// Backup codes not yet used.
pub fn backup_codes_left(c: &Conn, user: UserId) -> Result<i64> {
    c.platform()?;
    query_one(c, "select count(*) from mfa_backup_code where user_id = ? and used_at is null", [user.to_string()], |r| r.get(0))
}

/// A login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub user: UserId,
    pub org: OrgId,
    /// Where the login came from (as login failures count it).
    pub source: String,
    pub expires_at: Timestamp,
    pub tries: i64,
}

/// A new challenge (by its hash); expired ones go as new ones come.
pub fn insert_challenge(c: &Tx, hash: &str, ch: &ChallengeRow, at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(c, "delete from mfa_challenge where expires_at <= ?", [at.0])?;
    exec(
        c,
        "insert into mfa_challenge (challenge_hash, user_id, organization_id, source, created_at, expires_at, tries) \
         values (?, ?, ?, ?, ?, ?, ?)",
        params![hash, ch.user.to_string(), ch.org.to_string(), ch.source.clone(), at.0, ch.expires_at.0, ch.tries],
    )?;
    Ok(())
}

/// Counts one try of the challenge and returns it as it is now; `None` when
/// there is no such challenge.
pub fn try_challenge(c: &Tx, hash: &str) -> Result<Option<ChallengeRow>> {
    c.platform()?;
    if exec(c, "update mfa_challenge set tries = tries + 1 where challenge_hash = ?", [hash])? == 0 {
        return Ok(None);
    }
    query_opt(c, "select user_id, organization_id, source, expires_at, tries from mfa_challenge where challenge_hash = ?", [hash], |r| {
        Ok(ChallengeRow {
            user: parse_id(r, 0)?,
            org: parse_id(r, 1)?,
            source: r.get(2)?,
            expires_at: Timestamp(r.get(3)?),
            tries: r.get(4)?,
        })
    })
}

/// Ends a challenge (used, or out of tries); false when it had ended.
pub fn end_challenge(c: &Tx, hash: &str) -> Result<bool> {
    c.platform()?;
    Ok(exec(c, "delete from mfa_challenge where challenge_hash = ?", [hash])? == 1)
}
