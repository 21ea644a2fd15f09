//! API keys: stored only as hashes.

use crate::{params, Row};
use ironcase_domain::net::AllowList;
use ironcase_domain::{ApiKeyId, OrgId, Role, RoleId, Timestamp, Tlp, UserId};

use crate::{exec, parse_col, parse_id, query_map, query_one, query_opt, Conn, Result, StoreError, Tx};

#[derive(Clone)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub name: String,
    pub role: Role,
    /// An organisation's own role the key holds (`role` is its base).
    pub custom_role: Option<RoleId>,
    pub key_hash: String,
    pub key_prefix: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// The most restricted TLP the key may see; `None`: no ceiling.
    pub tlp_max: Option<Tlp>,
    /// Requests per minute for this key, below its plan's; `None`: the plan's.
    pub rate_per_minute: Option<u32>,
    /// The ranges the key may call from (within the organisation's).
    pub allowed_cidrs: AllowList,
    /// An Ed25519 public key (base64): the key's sensitive requests must be
    /// signed with its private half (RFC 9421).
    pub public_key: Option<String>,
}

impl std::fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRow").field("id", &self.id).field("org", &self.org).field("role", &self.role).finish_non_exhaustive()
    }
}

fn ts(r: &Row<'_, '_>, col: &str) -> Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(col)?.map(Timestamp))
}

fn key(r: &Row<'_, '_>) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: parse_id(r, "api_key_id")?,
        org: parse_id(r, "organization_id")?,
        name: r.get("name")?,
        role: parse_col(r, "role", Role::parse)?,
        custom_role: crate::parse_opt_id(r, "custom_role_id")?,
        key_hash: r.get("key_hash")?,
        key_prefix: r.get("key_prefix")?,
        created_by: parse_id(r, "created_by")?,
        created_at: Timestamp(r.get("created_at")?),
        expires_at: ts(r, "expires_at")?,
        revoked_at: ts(r, "revoked_at")?,
        last_used_at: ts(r, "last_used_at")?,
        tlp_max: r
            .get::<_, Option<String>>("tlp_max")?
            .map(|t| Tlp::parse(&t).ok_or_else(|| StoreError::Corrupt(format!("tlp_max={t}"))))
            .transpose()?,
        rate_per_minute: r.get::<_, Option<i64>>("rate_per_minute")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        allowed_cidrs: {
            let raw: String = r.get("allowed_cidrs")?;
            AllowList::from_stored(&raw).ok_or_else(|| StoreError::Corrupt("api_key.allowed_cidrs".into()))?
        },
        public_key: r.get("public_key")?,
    })
}

const COLS: &str =
    "api_key_id, organization_id, name, role, custom_role_id, key_hash, key_prefix, created_by, created_at, expires_at, revoked_at, last_used_at, tlp_max, rate_per_minute, \
     allowed_cidrs, public_key";

pub fn insert(c: &Tx, k: &ApiKeyRow) -> Result<()> {
    c.scope(k.org)?;
    exec(
        c,
        &format!("insert into api_key ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            k.id.to_string(),
            k.org.to_string(),
            k.name,
            k.role.as_str(),
            k.custom_role.map(|r| r.to_string()),
            k.key_hash,
            k.key_prefix,
            k.created_by.to_string(),
            k.created_at.0,
            k.expires_at.map(|t| t.0),
            k.revoked_at.map(|t| t.0),
            k.last_used_at.map(|t| t.0),
            k.tlp_max.map(|t| t.as_str()),
            k.rate_per_minute.map(i64::from),
            k.allowed_cidrs.stored(),
            k.public_key.clone()
        ],
    )?;
    Ok(())
}

/// Live keys oldest first, after `(created_at, id)`, at most `limit`.
pub fn list(c: &Conn, org: OrgId, after: Option<(i64, ApiKeyId)>, limit: i64) -> Result<Vec<ApiKeyRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        &format!(
            "select {COLS} from api_key where organization_id = ? and revoked_at is null \
             and (created_at, api_key_id) > (?, ?) order by created_at, api_key_id limit ?"
        ),
        params![org.to_string(), at, id, limit],
        key,
    )
}

pub fn get(c: &Conn, org: OrgId, id: ApiKeyId) -> Result<ApiKeyRow> {
    c.scope(org)?;
    query_one(
        c,
        &format!("select {COLS} from api_key where organization_id = ? and api_key_id = ? and revoked_at is null"),
        [org.to_string(), id.to_string()],
        key,
    )
}

pub fn find_by_hash(c: &Conn, hash: &str) -> Result<Option<ApiKeyRow>> {
    c.platform()?;
    query_opt(c, &format!("select {COLS} from api_key where key_hash = ?"), [hash], key)
}

pub fn revoke(c: &Tx, org: OrgId, id: ApiKeyId, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "update api_key set revoked_at = ? where organization_id = ? and api_key_id = ? and revoked_at is null",
        params![at.0, org.to_string(), id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn touch(c: &Tx, id: ApiKeyId, at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(c, "update api_key set last_used_at = ? where api_key_id = ?", params![at.0, id.to_string()])?;
    Ok(())
}

/// Swaps a live key's secret (rotation).
pub fn replace_secret(c: &Tx, org: OrgId, id: ApiKeyId, hash: &str, prefix: &str) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "update api_key set key_hash = ?, key_prefix = ? where organization_id = ? and api_key_id = ? and revoked_at is null",
        params![hash, prefix, org.to_string(), id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Renames a live key, changes the ranges it may call from or the public
/// key its sensitive requests are signed with.
pub fn update(c: &Tx, k: &ApiKeyRow) -> Result<()> {
    c.scope(k.org)?;
    let n = exec(
        c,
        "update api_key set name = ?, allowed_cidrs = ?, public_key = ? where organization_id = ? and api_key_id = ? and revoked_at is null",
        params![k.name, k.allowed_cidrs.stored(), k.public_key.clone(), k.org.to_string(), k.id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Remembers a request signature (its hash) until `expires_at`: false when
/// it was seen before (a replay). Forgets the expired ones.
pub fn remember_signature(c: &Tx, hash: &str, expires_at: Timestamp, now: Timestamp) -> Result<bool> {
    c.platform()?;
    exec(c, "delete from request_signature where expires_at <= ?", params![now.0])?;
    let n = exec(
        c,
        "insert into request_signature (signature_hash, expires_at) values (?, ?) on conflict (signature_hash) do nothing",
        params![hash, expires_at.0],
    )?;
    Ok(n == 1)
}
