//! API keys: stored only as hashes.

use ironcase_domain::{ApiKeyId, OrgId, Role, Timestamp, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::{parse_col, parse_id, Conn, Result, StoreError};

#[derive(Clone)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub name: String,
    pub role: Role,
    pub key_hash: String,
    pub key_prefix: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl std::fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRow").field("id", &self.id).field("org", &self.org).field("role", &self.role).finish_non_exhaustive()
    }
}

const COLS: &str =
    "api_key_id, organization_id, name, role, key_hash, key_prefix, created_by, created_at, expires_at, revoked_at, last_used_at";

fn key(r: &SqliteRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: parse_id(r, "api_key_id")?,
        org: parse_id(r, "organization_id")?,
        name: r.try_get("name")?,
        role: parse_col(r, "role", Role::parse)?,
        key_hash: r.try_get("key_hash")?,
        key_prefix: r.try_get("key_prefix")?,
        created_by: parse_id(r, "created_by")?,
        created_at: Timestamp(r.try_get("created_at")?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp),
    })
}

pub async fn insert(c: &mut Conn, k: &ApiKeyRow) -> Result<()> {
    sqlx::query(&format!("insert into api_key ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(k.id.to_string())
        .bind(k.org.to_string())
        .bind(&k.name)
        .bind(k.role.as_str())
        .bind(&k.key_hash)
        .bind(&k.key_prefix)
        .bind(k.created_by.to_string())
        .bind(k.created_at.0)
        .bind(k.expires_at.map(|t| t.0))
        .bind(k.revoked_at.map(|t| t.0))
        .bind(k.last_used_at.map(|t| t.0))
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn list(c: &mut Conn, org: OrgId) -> Result<Vec<ApiKeyRow>> {
    let rows = sqlx::query(&format!(
        "select {COLS} from api_key where organization_id = ? and revoked_at is null order by created_at, api_key_id"
    ))
    .bind(org.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(key).collect()
}

pub async fn get(c: &mut Conn, org: OrgId, id: ApiKeyId) -> Result<ApiKeyRow> {
    let r = sqlx::query(&format!("select {COLS} from api_key where organization_id = ? and api_key_id = ? and revoked_at is null"))
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_one(&mut *c)
        .await?;
    key(&r)
}

pub async fn find_by_hash(c: &mut Conn, hash: &str) -> Result<Option<ApiKeyRow>> {
    let r = sqlx::query(&format!("select {COLS} from api_key where key_hash = ?")).bind(hash).fetch_optional(&mut *c).await?;
    r.as_ref().map(key).transpose()
}

pub async fn revoke(c: &mut Conn, org: OrgId, id: ApiKeyId, at: Timestamp) -> Result<()> {
    let n = sqlx::query("update api_key set revoked_at = ? where organization_id = ? and api_key_id = ? and revoked_at is null")
        .bind(at.0)
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn touch(c: &mut Conn, id: ApiKeyId, at: Timestamp) -> Result<()> {
    sqlx::query("update api_key set last_used_at = ? where api_key_id = ?").bind(at.0).bind(id.to_string()).execute(&mut *c).await?;
    Ok(())
}

/// Swaps a live key's secret (rotation).
pub async fn replace_secret(c: &mut Conn, org: OrgId, id: ApiKeyId, hash: &str, prefix: &str) -> Result<()> {
    let n =
        sqlx::query("update api_key set key_hash = ?, key_prefix = ? where organization_id = ? and api_key_id = ? and revoked_at is null")
            .bind(hash)
            .bind(prefix)
            .bind(org.to_string())
            .bind(id.to_string())
            .execute(&mut *c)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
