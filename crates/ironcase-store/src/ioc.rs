//! Indicators of compromise and their sightings in incidents.

use crate::{params, Row};
use ironcase_domain::ioc::IocType;
use ironcase_domain::{Category, IncidentId, IocId, OrgId, Timestamp, Tlp};

use crate::{exec, parse_col, parse_id, query_map, query_opt, Conn, Result, StoreError, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct IocRow {
    pub org: OrgId,
    pub id: IocId,
    pub kind: IocType,
    pub value: String,
    pub tlp: Tlp,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
}

/// An indicator as seen in one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingRow {
    pub ioc: IocRow,
    pub incident_id: IncidentId,
    pub incident_number: i64,
    pub incident_title: String,
    /// The TLP of the incident that saw it.
    pub incident_tlp: Tlp,
    pub incident_category: Category,
    pub note: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

const IOC_COLS: &str = "i.organization_id, i.ioc_id, i.type, i.value, i.tlp, i.tags, i.created_at";

fn ioc(r: &Row<'_, '_>) -> Result<IocRow> {
    let tags = r.with_str(5, |t| serde_json::from_str::<Vec<String>>(t).map_err(|e| StoreError::Corrupt(format!("tags: {e}"))))?;
    Ok(IocRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        kind: parse_col(r, 2, IocType::parse)?,
        value: r.get(3)?,
        tlp: parse_col(r, 4, Tlp::parse)?,
        tags,
        created_at: Timestamp(r.get(6)?),
    })
}

fn sighting_row(r: &Row<'_, '_>) -> Result<SightingRow> {
    Ok(SightingRow {
        ioc: ioc(r)?,
        incident_id: parse_id(r, 7)?,
        incident_number: r.get(8)?,
        incident_title: r.get(9)?,
        incident_tlp: parse_col(r, 13, Tlp::parse)?,
        incident_category: parse_col(r, 14, Category::parse)?,
        note: r.get(10)?,
        first_seen: Timestamp(r.get(11)?),
        last_seen: Timestamp(r.get(12)?),
    })
}

pub fn find(c: &Conn, org: OrgId, kind: IocType, value: &str) -> Result<Option<IocRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {IOC_COLS} from ioc i where i.organization_id = ? and i.type = ? and i.value = ?"),
        params![org.to_string(), kind.as_str(), value],
        ioc,
    )
}

pub fn insert(c: &Tx, i: &IocRow, by: &str) -> Result<()> {
    c.scope(i.org)?;
    exec(
        c,
        "insert into ioc (organization_id, ioc_id, type, value, tlp, tags, created_by, created_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            i.org.to_string(),
            i.id.to_string(),
            i.kind.as_str(),
            i.value,
            i.tlp.as_str(),
            serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()),
            by,
            i.created_at.0
        ],
    )?;
    Ok(())
}

/// Links an indicator to an incident, or, when already linked, moves its
/// last sighting forward. Returns whether the link is new.
pub fn link(c: &Tx, org: OrgId, ioc: IocId, incident: IncidentId, note: Option<&str>, at: Timestamp, by: &str) -> Result<bool> {
    c.scope(org)?;
    let n = exec(
        c,
        "insert into ioc_sighting (organization_id, ioc_id, incident_id, note, first_seen, last_seen, added_by) values (?, ?, ?, ?, ?, ?, ?) \
         on conflict (organization_id, ioc_id, incident_id) do nothing",
        params![org.to_string(), ioc.to_string(), incident.to_string(), note, at.0, at.0, by],
    )?;
    if n == 0 {
        exec(
            c,
            "update ioc_sighting set last_seen = ?, note = coalesce(?, note) where organization_id = ? and ioc_id = ? and incident_id = ?",
            params![at.0, note, org.to_string(), ioc.to_string(), incident.to_string()],
        )?;
    }
    Ok(n == 1)
}

pub fn unlink(c: &Tx, org: OrgId, ioc: IocId, incident: IncidentId) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "delete from ioc_sighting where organization_id = ? and ioc_id = ? and incident_id = ?",
        params![org.to_string(), ioc.to_string(), incident.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

const SIGHTING_SQL: &str = "select i.organization_id, i.ioc_id, i.type, i.value, i.tlp, i.tags, i.created_at, \
     s.incident_id, n.number, n.title, s.note, s.first_seen, s.last_seen, n.tlp, n.category \
     from ioc_sighting s join ioc i on i.organization_id = s.organization_id and i.ioc_id = s.ioc_id \
     join incident n on n.organization_id = s.organization_id and n.incident_id = s.incident_id and n.deleted_at is null";

/// The indicators one incident saw at or below `tlp_max`, by first sighting,
/// after `(first_seen, ioc id)`, at most `limit`.
pub fn for_incident(
    c: &Conn,
    org: OrgId,
    incident: IncidentId,
    tlp_max: Option<Tlp>,
    after: Option<(i64, IocId)>,
    limit: i64,
) -> Result<Vec<SightingRow>> {
    c.scope(org)?;
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    query_map(
        c,
        &format!(
            "{SIGHTING_SQL} where s.organization_id = ? and s.incident_id = ?{} and (s.first_seen, i.ioc_id) > (?, ?) \
             order by s.first_seen, i.ioc_id limit ?",
            crate::incident::tlp_clause("i.", tlp_max)
        ),
        params![org.to_string(), incident.to_string(), at, id, limit],
        sighting_row,
    )
}

/// Every (live) incident that saw one indicator.
pub fn sightings(c: &Conn, org: OrgId, ioc: IocId) -> Result<Vec<SightingRow>> {
    c.scope(org)?;
    query_map(
        c,
        &format!("{SIGHTING_SQL} where s.organization_id = ? and s.ioc_id = ? order by s.first_seen, s.incident_id"),
        params![org.to_string(), ioc.to_string()],
        sighting_row,
    )
}

/// One indicator's sighting in one incident.
pub fn sighting(c: &Conn, org: OrgId, ioc: IocId, incident: IncidentId) -> Result<Option<SightingRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("{SIGHTING_SQL} where s.organization_id = ? and s.ioc_id = ? and s.incident_id = ?"),
        params![org.to_string(), ioc.to_string(), incident.to_string()],
        sighting_row,
    )
}

/// One indicator by id.
pub fn get(c: &Conn, org: OrgId, id: IocId) -> Result<IocRow> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {IOC_COLS} from ioc i where i.organization_id = ? and i.ioc_id = ?"),
        [org.to_string(), id.to_string()],
        ioc,
    )?
    .ok_or(StoreError::NotFound)
}
