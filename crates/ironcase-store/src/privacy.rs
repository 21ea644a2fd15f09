//! Data-subject requests, and what the organisation holds about a subject:
//! their account and membership, sessions, API keys, the audit entries
//! where they act, the comments they wrote, and the incidents, comments and
//! indicators that mention their e-mail address.

use ironcase_domain::{OrgId, PrivacyRequestId, Timestamp, UserId};
use serde_json::{json, Value};

use crate::{exec, params, parse_id, parse_opt_id, query_map, query_opt, Conn, Result, Row, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub org: OrgId,
    pub id: PrivacyRequestId,
    /// `access` (erasure comes with crypto-shredding).
    pub kind: String,
    pub subject_id: Option<UserId>,
    pub subject_email: Option<String>,
    /// `open` or `completed`.
    pub status: String,
    pub requested_by: Option<String>,
    pub created_at: Timestamp,
    pub due_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub archive_sha256: Option<String>,
    pub archive_expires_at: Option<Timestamp>,
    pub downloaded_at: Option<Timestamp>,
}

const COLS: &str = "organization_id, request_id, kind, subject_id, subject_email, status, requested_by, created_at, due_at, \
    completed_at, archive_sha256, archive_expires_at, downloaded_at";

fn row(r: &Row<'_, '_>) -> Result<RequestRow> {
    let t = |i: usize| -> Result<Option<Timestamp>> { Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp)) };
    Ok(RequestRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        kind: r.get(2)?,
        subject_id: parse_opt_id(r, 3)?,
        subject_email: r.get(4)?,
        status: r.get(5)?,
        requested_by: r.get(6)?,
        created_at: Timestamp(r.get(7)?),
        due_at: Timestamp(r.get(8)?),
        completed_at: t(9)?,
        archive_sha256: r.get(10)?,
        archive_expires_at: t(11)?,
        downloaded_at: t(12)?,
    })
}

/// Records a request, with its sealed archive when there is one.
pub fn insert(c: &Tx, q: &RequestRow, archive: Option<&[u8]>) -> Result<()> {
    c.scope(q.org)?;
    exec(
        c,
        &format!("insert into privacy_request ({COLS}, archive) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            q.org.to_string(),
            q.id.to_string(),
            q.kind.as_str(),
            q.subject_id.map(|u| u.to_string()),
            q.subject_email.clone(),
            q.status.as_str(),
            q.requested_by.clone(),
            q.created_at.0,
            q.due_at.0,
            q.completed_at.map(|t| t.0),
            q.archive_sha256.clone(),
            q.archive_expires_at.map(|t| t.0),
            q.downloaded_at.map(|t| t.0),
            archive.map(<[u8]>::to_vec)
        ],
    )?;
    Ok(())
}

pub fn get(c: &Conn, org: OrgId, id: PrivacyRequestId) -> Result<Option<RequestRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {COLS} from privacy_request where organization_id = ? and request_id = ?"),
        [org.to_string(), id.to_string()],
        row,
    )
}

/// The organisation's requests, newest first, before the keyset `before`.
pub fn list(c: &Conn, org: OrgId, before: Option<(i64, String)>, limit: i64) -> Result<Vec<RequestRow>> {
    c.scope(org)?;
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    query_map(
        c,
        &format!(
            "select {COLS} from privacy_request where organization_id = ? and (created_at, request_id) < (?, ?) \
             order by created_at desc, request_id desc limit ?"
        ),
        params![org.to_string(), at, id.as_str(), limit],
        row,
    )
}

/// The sealed archive, handed out once: it is removed as it is read.
/// `None` when it was downloaded, expired or never made.
pub fn take_archive(c: &Tx, org: OrgId, id: PrivacyRequestId, now: Timestamp) -> Result<Option<Vec<u8>>> {
    c.scope(org)?;
    let found: Option<Option<Vec<u8>>> = query_opt(
        c,
        "select archive from privacy_request where organization_id = ? and request_id = ? and archive_expires_at > ?",
        params![org.to_string(), id.to_string(), now.0],
        |r| r.get(0),
    )?;
    let Some(Some(archive)) = found else { return Ok(None) };
    exec(
        c,
        "update privacy_request set archive = null, downloaded_at = ? where organization_id = ? and request_id = ?",
        params![now.0, org.to_string(), id.to_string()],
    )?;
    Ok(Some(archive))
}

/// Requests answered after their deadline, and those still open past it.
pub fn late(c: &Conn, org: OrgId, now: Timestamp) -> Result<(i64, i64, i64)> {
    c.scope(org)?;
    crate::query_one(
        c,
        "select count(*), coalesce(sum(case when completed_at is not null and completed_at > due_at then 1 else 0 end), 0), \
         coalesce(sum(case when completed_at is null and due_at < ? then 1 else 0 end), 0) \
         from privacy_request where organization_id = ?",
        params![now.0, org.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Rows read per part of an archive; a part that reaches it says so.
pub const PART_LIMIT: i64 = 10_000;

fn part(rows: Vec<Value>) -> Value {
    json!({ "truncated": rows.len() as i64 >= PART_LIMIT, "items": rows })
}

/// Everything the organisation holds about the subject: their account (when
/// they have one here) and, by their e-mail address, what mentions them.
pub fn subject_data(c: &Conn, org: OrgId, subject: Option<UserId>, email: Option<&str>) -> Result<Value> {
    c.scope(org)?;
    let o = org.to_string();
    let mut out = serde_json::Map::new();
    if let Some(u) = subject {
        let uid = u.to_string();
        let account = query_opt(
            c,
            "select a.user_id, a.email, a.name, a.created_at, m.role, m.created_at from account a \
             join membership m on m.user_id = a.user_id and m.organization_id = ? where a.user_id = ?",
            [o.as_str(), uid.as_str()],
            |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?, "email": r.get::<_, String>(1)?, "name": r.get::<_, String>(2)?,
                    "created_at": Timestamp(r.get(3)?), "membership": { "role": r.get::<_, String>(4)?, "since": Timestamp(r.get(5)?) },
                }))
            },
        )?;
        out.insert("account".into(), account.unwrap_or(Value::Null));
        let sessions = query_map(
            c,
            "select session_id, created_at, expires_at, revoked_at, source_ip, user_agent, method from session \
             where organization_id = ? and user_id = ? order by created_at desc limit ?",
            params![o.as_str(), uid.as_str(), PART_LIMIT],
            |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?, "created_at": Timestamp(r.get(1)?), "expires_at": Timestamp(r.get(2)?),
                    "revoked_at": r.get::<_, Option<i64>>(3)?.map(Timestamp), "source_ip": r.get::<_, Option<String>>(4)?,
                    "user_agent": r.get::<_, Option<String>>(5)?, "method": r.get::<_, String>(6)?,
                }))
            },
        )?;
        out.insert("sessions".into(), part(sessions));
        let keys = query_map(
            c,
            "select api_key_id, name, role, created_at, expires_at, revoked_at, last_used_at from api_key \
             where organization_id = ? and created_by = ? order by created_at desc limit ?",
            params![o.as_str(), uid.as_str(), PART_LIMIT],
            |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?, "role": r.get::<_, String>(2)?,
                    "created_at": Timestamp(r.get(3)?), "expires_at": r.get::<_, Option<i64>>(4)?.map(Timestamp),
                    "revoked_at": r.get::<_, Option<i64>>(5)?.map(Timestamp), "last_used_at": r.get::<_, Option<i64>>(6)?.map(Timestamp),
                }))
            },
        )?;
        out.insert("api_keys".into(), part(keys));
        let comments = query_map(
            c,
            "select comment_id, incident_id, body, created_at from comment where organization_id = ? and author_id = ? \
             order by created_at desc limit ?",
            params![o.as_str(), uid.as_str(), PART_LIMIT],
            |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?, "incident_id": r.get::<_, String>(1)?, "body": r.get::<_, String>(2)?,
                    "created_at": Timestamp(r.get(3)?),
                }))
            },
        )?;
        out.insert("comments_written".into(), part(comments));
    }
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        // A substring, with LIKE's own characters taken literally.
        let needle = format!("%{}%", e.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let incidents = query_map(
            c,
            "select incident_id, number, title from incident where organization_id = ? and deleted_at is null \
             and (lower(title) like ? escape '\\' or lower(description) like ? escape '\\') order by created_at desc limit ?",
            params![o.as_str(), needle.as_str(), needle.as_str(), PART_LIMIT],
            |r| Ok(json!({ "id": r.get::<_, String>(0)?, "number": r.get::<_, i64>(1)?, "title": r.get::<_, String>(2)? })),
        )?;
        out.insert("incidents_mentioning".into(), part(incidents));
        let comments = query_map(
            c,
            "select comment_id, incident_id, created_at from comment where organization_id = ? and lower(body) like ? escape '\\' \
             order by created_at desc limit ?",
            params![o.as_str(), needle.as_str(), PART_LIMIT],
            |r| Ok(json!({ "id": r.get::<_, String>(0)?, "incident_id": r.get::<_, String>(1)?, "created_at": Timestamp(r.get(2)?) })),
        )?;
        out.insert("comments_mentioning".into(), part(comments));
        let iocs = query_map(
            c,
            "select ioc_id, type, value, created_at from ioc where organization_id = ? and lower(value) like ? escape '\\' \
             order by created_at desc limit ?",
            params![o.as_str(), needle.as_str(), PART_LIMIT],
            |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?, "type": r.get::<_, String>(1)?, "value": r.get::<_, String>(2)?,
                    "created_at": Timestamp(r.get(3)?),
                }))
            },
        )?;
        out.insert("indicators_mentioning".into(), part(iocs));
    }
    Ok(Value::Object(out))
}

/// What erasing a member ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    pub sessions_ended: i64,
    pub api_keys_revoked: i64,
    /// The account belonged to no other organisation: its address, name,
    /// password, MFA and sign-in links went (its id stays: what it wrote
    /// still names it, shown as erased).
    pub pseudonymised: bool,
}

/// Every API key the member made here (revoked or not): the subjects their
/// calls' audit entries were sealed under.
pub fn api_keys_of(c: &Conn, org: OrgId, user: UserId) -> Result<Vec<String>> {
    c.scope(org)?;
    query_map(c, "select api_key_id from api_key where organization_id = ? and created_by = ?", [org.to_string(), user.to_string()], |r| {
        r.get(0)
    })
}

/// Erases a member of `org`: their membership goes, their sessions here end,
/// their API keys here are revoked, the erasure is recorded (their comments
/// show the author erased), and an account left in no organisation is
/// pseudonymised.
pub fn erase_member(c: &Tx, org: OrgId, user: UserId, request: PrivacyRequestId, at: Timestamp) -> Result<Erased> {
    c.scope(org)?;
    let (o, u) = (org.to_string(), user.to_string());
    crate::org::delete_membership(c, org, user)?;
    let sessions_ended = crate::session::revoke_member_sessions(c, org, user, at, "erased")? as i64;
    let api_keys_revoked = exec(
        c,
        "update api_key set revoked_at = ? where organization_id = ? and created_by = ? and revoked_at is null",
        params![at.0, o.as_str(), u.as_str()],
    )? as i64;
    exec(
        c,
        "insert into erased_subject (organization_id, user_id, request_id, at) values (?, ?, ?, ?) \
         on conflict (organization_id, user_id) do nothing",
        params![o.as_str(), u.as_str(), request.to_string(), at.0],
    )?;
    c.platform()?;
    let elsewhere: i64 = crate::query_one(c, "select count(*) from membership where user_id = ?", [u.as_str()], |r| r.get(0))?;
    let operator: bool = crate::query_one(c, "select is_operator from account where user_id = ?", [u.as_str()], |r| r.get(0))?;
    let pseudonymised = elsewhere == 0 && !operator;
    if pseudonymised {
        exec(
            c,
            "update account set email = ?, name = 'erased', password_hash = '!' where user_id = ?",
            params![format!("erased-{u}@erased.invalid"), u.as_str()],
        )?;
        for table in ["mfa_totp", "mfa_backup_code", "mfa_challenge", "password_reset", "sso_identity"] {
            exec(c, &format!("delete from {table} where user_id = ?"), [u.as_str()])?;
        }
    }
    crate::session::note_auth_change(c)?;
    Ok(Erased { sessions_ended, api_keys_revoked, pseudonymised })
}
