//! The audit log: append (hash-chained, in the caller's transaction), query, verify.

use ironcase_domain::audit::{Canonical, GENESIS};
use ironcase_domain::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{Conn, Result};

/// The chain of operator actions that belong to no organisation.
pub const PLATFORM: &str = "platform";

#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub tenant: String,
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub tenant: String,
    pub seq: i64,
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EntryRow {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            tenant: &self.tenant,
            seq: self.seq,
            at: self.at.0,
            actor_id: self.actor_id.as_deref(),
            actor_kind: &self.actor_kind,
            action: &self.action,
            resource_type: self.resource_type.as_deref(),
            resource_id: self.resource_id.as_deref(),
            outcome: &self.outcome,
            request_id: self.request_id.as_deref(),
            source_ip: self.source_ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            details: &self.details,
        }
    }
}

const COLS: &str = "organization_id, seq, at, actor_id, actor_kind, action, resource_type, resource_id, outcome, request_id, \
    source_ip, user_agent, details, prev_hash, hash";

fn entry(r: &SqliteRow) -> Result<EntryRow> {
    Ok(EntryRow {
        tenant: r.try_get("organization_id")?,
        seq: r.try_get("seq")?,
        at: Timestamp(r.try_get("at")?),
        actor_id: r.try_get("actor_id")?,
        actor_kind: r.try_get("actor_kind")?,
        action: r.try_get("action")?,
        resource_type: r.try_get("resource_type")?,
        resource_id: r.try_get("resource_id")?,
        outcome: r.try_get("outcome")?,
        request_id: r.try_get("request_id")?,
        source_ip: r.try_get("source_ip")?,
        user_agent: r.try_get("user_agent")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Appends one entry to its tenant's chain. Must run inside the transaction
/// of the change it records.
pub async fn append(c: &mut Conn, e: NewEntry) -> Result<i64> {
    let head = sqlx::query("select seq, hash from audit_head where organization_id = ?").bind(&e.tenant).fetch_optional(&mut *c).await?;
    let (prev_seq, prev_hash) = match head {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_owned()),
    };
    let mut row = EntryRow {
        tenant: e.tenant,
        seq: prev_seq + 1,
        at: e.at,
        actor_id: e.actor_id,
        actor_kind: e.actor_kind,
        action: e.action,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        outcome: e.outcome,
        request_id: e.request_id,
        source_ip: e.source_ip,
        user_agent: e.user_agent,
        details: e.details.to_string(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = row.canonical().hash(&row.prev_hash);
    sqlx::query(&format!("insert into audit_log ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(&row.tenant)
        .bind(row.seq)
        .bind(row.at.0)
        .bind(&row.actor_id)
        .bind(&row.actor_kind)
        .bind(&row.action)
        .bind(&row.resource_type)
        .bind(&row.resource_id)
        .bind(&row.outcome)
        .bind(&row.request_id)
        .bind(&row.source_ip)
        .bind(&row.user_agent)
        .bind(&row.details)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "insert into audit_head (organization_id, seq, hash) values (?, ?, ?) \
         on conflict (organization_id) do update set seq = excluded.seq, hash = excluded.hash",
    )
    .bind(&row.tenant)
    .bind(row.seq)
    .bind(&row.hash)
    .execute(&mut *c)
    .await?;
    Ok(row.seq)
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Newest first, entries with `seq < before`.
pub async fn list(c: &mut Conn, tenant: &str, f: &Filter, before: Option<i64>, limit: i64) -> Result<Vec<EntryRow>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!("select {COLS} from audit_log where organization_id = "));
    q.push_bind(tenant.to_owned());
    for (col, v) in [
        ("action", &f.action),
        ("actor_id", &f.actor_id),
        ("resource_type", &f.resource_type),
        ("resource_id", &f.resource_id),
        ("outcome", &f.outcome),
    ] {
        if let Some(v) = v {
            q.push(format!(" and {col} = ")).push_bind(v.clone());
        }
    }
    if let Some(t) = f.from {
        q.push(" and at >= ").push_bind(t.0);
    }
    if let Some(t) = f.to {
        q.push(" and at < ").push_bind(t.0);
    }
    if let Some(b) = before {
        q.push(" and seq < ").push_bind(b);
    }
    q.push(" order by seq desc limit ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *c).await?;
    rows.iter().map(entry).collect()
}

/// The outcome of re-computing a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub tenant: String,
    pub ok: bool,
    pub entries: i64,
    pub head: Option<String>,
    /// The first sequence number that does not check out.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Recomputes one tenant's chain from the first entry.
pub async fn verify(c: &mut Conn, tenant: &str) -> Result<Verification> {
    use futures::TryStreamExt;
    let mut v = Verification { tenant: tenant.to_owned(), ok: true, entries: 0, head: None, first_bad_seq: None, reason: None };
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    {
        let sql = format!("select {COLS} from audit_log where organization_id = ? order by seq");
        let mut rows = sqlx::query(&sql).bind(tenant).fetch(&mut *c);
        while let Some(r) = rows.try_next().await? {
            let e = entry(&r)?;
            v.entries += 1;
            let bad = if e.seq != expected_seq {
                Some("sequence gap")
            } else if e.prev_hash != prev {
                Some("previous hash does not match")
            } else if e.canonical().hash(&prev) != e.hash {
                Some("entry does not match its hash")
            } else {
                None
            };
            if let Some(why) = bad {
                v.ok = false;
                v.first_bad_seq = Some(expected_seq.min(e.seq));
                v.reason = Some(why.to_owned());
                return Ok(v);
            }
            prev = e.hash.clone();
            expected_seq += 1;
        }
    }
    let head = sqlx::query("select seq, hash from audit_head where organization_id = ?").bind(tenant).fetch_optional(&mut *c).await?;
    let last = expected_seq - 1;
    match head {
        Some(h) => {
            let (hs, hh): (i64, String) = (h.try_get(0)?, h.try_get(1)?);
            if hs != last || hh != prev {
                v.ok = false;
                v.first_bad_seq = Some((last + 1).min(hs));
                v.reason = Some("chain ends before its recorded head".to_owned());
                return Ok(v);
            }
        }
        None if last > 0 => {
            v.ok = false;
            v.first_bad_seq = Some(1);
            v.reason = Some("chain has no recorded head".to_owned());
            return Ok(v);
        }
        None => {}
    }
    if last > 0 {
        v.head = Some(prev);
    }
    Ok(v)
}

/// Every tenant that has a chain.
pub async fn tenants(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("select organization_id from audit_head union select distinct organization_id from audit_log order by 1")
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
