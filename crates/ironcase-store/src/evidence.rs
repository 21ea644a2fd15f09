//! Evidence records, their chain of custody, and the organisations' data keys.

use crate::{params, Row};
use ironcase_domain::{CustodyAction, EvidenceId, EvidenceKind, IncidentId, OrgId, Timestamp};

use crate::{exec, parse_col, parse_id, query_map, query_one, query_opt, Conn, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRow {
    pub org: OrgId,
    pub id: EvidenceId,
    pub incident_id: IncidentId,
    pub name: String,
    pub kind: EvidenceKind,
    pub description: Option<String>,
    pub size: i64,
    /// Lower-case hex SHA-256 of the original bytes.
    pub sha256: String,
    pub collected_by: Option<String>,
    pub collected_at: Option<Timestamp>,
    pub uploaded_by: String,
    pub created_at: Timestamp,
    pub data_key_id: String,
    /// Where the encrypted bytes are; `None` once deleted.
    pub blob_key: Option<String>,
    pub deleted_at: Option<Timestamp>,
    pub deleted_by: Option<String>,
    pub delete_reason: Option<String>,
}

const COLS: &str = "organization_id, evidence_id, incident_id, name, kind, description, size, sha256, collected_by, collected_at, \
                    uploaded_by, created_at, data_key_id, blob_key, deleted_at, deleted_by, delete_reason";

fn row(r: &Row<'_, '_>) -> Result<EvidenceRow> {
    Ok(EvidenceRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        incident_id: parse_id(r, 2)?,
        name: r.get(3)?,
        kind: parse_col(r, 4, EvidenceKind::parse)?,
        description: r.get(5)?,
        size: r.get(6)?,
        sha256: r.get(7)?,
        collected_by: r.get(8)?,
        collected_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
        uploaded_by: r.get(10)?,
        created_at: Timestamp(r.get(11)?),
        data_key_id: r.get(12)?,
        blob_key: r.get(13)?,
        deleted_at: r.get::<_, Option<i64>>(14)?.map(Timestamp),
        deleted_by: r.get(15)?,
        delete_reason: r.get(16)?,
    })
}

pub fn insert(c: &Tx, e: &EvidenceRow) -> Result<()> {
    c.scope(e.org)?;
    exec(
        c,
        &format!("insert into evidence ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            e.org.to_string(),
            e.id.to_string(),
            e.incident_id.to_string(),
            e.name,
            e.kind.as_str(),
            e.description,
            e.size,
            e.sha256,
            e.collected_by,
            e.collected_at.map(|t| t.0),
            e.uploaded_by,
            e.created_at.0,
            e.data_key_id,
            e.blob_key,
            e.deleted_at.map(|t| t.0),
            e.deleted_by,
            e.delete_reason,
        ],
    )?;
    Ok(())
}

/// One piece of evidence of the organisation, deleted ones (tombstones) included.
pub fn get(c: &Conn, org: OrgId, id: EvidenceId) -> Result<EvidenceRow> {
    c.scope(org)?;
    query_one(
        c,
        &format!("select {COLS} from evidence where organization_id = ? and evidence_id = ?"),
        params![org.to_string(), id.to_string()],
        row,
    )
}

/// The evidence of an incident, oldest first, tombstones included.
/// The incident's evidence oldest first, after `(created_at, id)`, at most `limit`.
pub fn list(c: &Conn, org: OrgId, incident: IncidentId, after: Option<(i64, EvidenceId)>, limit: i64) -> Result<Vec<EvidenceRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        &format!(
            "select {COLS} from evidence where organization_id = ? and incident_id = ? and (created_at, evidence_id) > (?, ?) \
             order by created_at, evidence_id limit ?"
        ),
        params![org.to_string(), incident.to_string(), at, id, limit],
        row,
    )
}

/// Turns the record into a tombstone: the blob key goes, hash and history stay.
pub fn mark_deleted(c: &Tx, org: OrgId, id: EvidenceId, by: &str, reason: &str, at: Timestamp) -> Result<bool> {
    c.scope(org)?;
    let n = exec(
        c,
        "update evidence set blob_key = null, deleted_at = ?, deleted_by = ?, delete_reason = ? \
         where organization_id = ? and evidence_id = ? and deleted_at is null",
        params![at.0, by, reason, org.to_string(), id.to_string()],
    )?;
    Ok(n == 1)
}

/// Bytes of evidence the organisation stores (tombstones hold none).
pub fn stored_bytes(c: &Conn, org: OrgId) -> Result<i64> {
    c.scope(org)?;
    query_one(
        c,
        "select cast(coalesce(sum(size), 0) as bigint) from evidence where organization_id = ? and deleted_at is null",
        params![org.to_string()],
        |r| r.get(0),
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustodyRow {
    pub seq: i64,
    pub action: CustodyAction,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub at: Timestamp,
    pub source_ip: Option<String>,
    pub reason: Option<String>,
    pub to: Option<String>,
}

/// Appends one custody step; returns its number (1, 2, …).
pub fn custody_append(c: &Tx, org: OrgId, id: EvidenceId, step: &CustodyRow) -> Result<i64> {
    c.scope(org)?;
    let seq: i64 = query_one(
        c,
        "select coalesce(max(seq), 0) + 1 from custody where organization_id = ? and evidence_id = ?",
        params![org.to_string(), id.to_string()],
        |r| r.get(0),
    )?;
    exec(
        c,
        "insert into custody (organization_id, evidence_id, seq, action, actor_id, actor_kind, at, source_ip, reason, to_party) \
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            org.to_string(),
            id.to_string(),
            seq,
            step.action.as_str(),
            step.actor_id,
            step.actor_kind,
            step.at.0,
            step.source_ip,
            step.reason,
            step.to
        ],
    )?;
    Ok(seq)
}

/// The evidence's custody steps in order, after step `after`, at most `limit`.
pub fn custody(c: &Conn, org: OrgId, id: EvidenceId, after: i64, limit: i64) -> Result<Vec<CustodyRow>> {
    c.scope(org)?;
    query_map(
        c,
        "select seq, action, actor_id, actor_kind, at, source_ip, reason, to_party from custody \
         where organization_id = ? and evidence_id = ? and seq > ? order by seq limit ?",
        params![org.to_string(), id.to_string(), after, limit],
        |r| {
            Ok(CustodyRow {
                seq: r.get(0)?,
                action: parse_col(r, 1, CustodyAction::parse)?,
                actor_id: r.get(2)?,
                actor_kind: r.get(3)?,
                at: Timestamp(r.get(4)?),
                source_ip: r.get(5)?,
                reason: r.get(6)?,
                to: r.get(7)?,
            })
        },
    )
}

/// The organisation's newest data key: `(id, sealed key)`.
pub fn data_key_current(c: &Conn, org: OrgId) -> Result<Option<(String, Vec<u8>)>> {
    c.scope(org)?;
    query_opt(
        c,
        "select data_key_id, wrapped from data_key where organization_id = ? order by created_at desc, data_key_id desc limit 1",
        params![org.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn data_key(c: &Conn, org: OrgId, key_id: &str) -> Result<Vec<u8>> {
    c.scope(org)?;
    query_one(c, "select wrapped from data_key where organization_id = ? and data_key_id = ?", params![org.to_string(), key_id], |r| {
        r.get(0)
    })
}

pub fn data_key_insert(c: &Tx, org: OrgId, key_id: &str, wrapped: &[u8], at: Timestamp) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "insert into data_key (organization_id, data_key_id, wrapped, created_at) values (?, ?, ?, ?)",
        params![org.to_string(), key_id, wrapped, at.0],
    )?;
    Ok(())
}
