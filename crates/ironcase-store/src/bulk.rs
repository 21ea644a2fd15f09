//! Bulk loading for benchmarks and demos (`ironcase dev seed`): whole
//! incidents with their comments, indicators, search document and timeline
//! event, written with the same rows the API writes, without the per-request
//! work (one search document per incident instead of one re-index per part).

use ironcase_domain::ioc::IocType;
use ironcase_domain::{IocId, OrgId};
use serde_json::json;

use crate::incident::{self, CommentRow, IncidentRow};
use crate::{event, ioc, org, search, Result, Tx};

/// An incident to load, with what belongs to it.
pub struct SeedIncident {
    /// `number` is assigned here.
    pub row: IncidentRow,
    pub comments: Vec<CommentRow>,
    /// Indicators in normal form.
    pub iocs: Vec<(IocType, String)>,
}

/// Fresh planner statistics after a large load (SQLite; on PostgreSQL only
/// the tables' owner may: see `Store::analyze`).
pub fn finish(c: &Tx) -> Result<()> {
    if c.backend() == crate::Backend::Sqlite {
        c.batch("pragma analysis_limit = 1000; analyze;")?;
    }
    Ok(())
}

/// Writes `items` into `org`, numbering them after its last incident.
pub fn seed_incidents(c: &Tx, org: OrgId, by: &str, items: &mut [SeedIncident]) -> Result<()> {
    c.scope(org)?;
    for it in items.iter_mut() {
        let i = &mut it.row;
        i.number = org::next_incident_number(c, org)?;
        incident::insert(c, i)?;
        let i = &it.row;
        for cm in &it.comments {
            incident::insert_comment(c, cm)?;
        }
        for (kind, value) in &it.iocs {
            let found = ioc::find(c, org, *kind, value)?;
            let id = match found {
                Some(x) => x.id,
                None => {
                    let row = ioc::IocRow {
                        org,
                        id: IocId::new(),
                        kind: *kind,
                        value: value.clone(),
                        tlp: i.tlp,
                        tags: Vec::new(),
                        created_at: i.created_at,
                    };
                    ioc::insert(c, &row, by)?;
                    row.id
                }
            };
            ioc::link(c, org, id, i.id, None, i.created_at, by)?;
        }
        search::reindex(c, org, i.id)?;
        let data = json!({ "number": i.number, "title": i.title, "severity": i.severity, "status": i.status });
        event::append(c, org, Some(i.id), "incident.created", Some(by), &data, i.created_at)?;
    }
    Ok(())
}
