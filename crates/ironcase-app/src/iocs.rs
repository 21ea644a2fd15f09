//! Indicators of compromise on incidents: add (normalised, one per
//! organisation, type and value; a second incident adds a sighting), list,
//! unlink, look up by any written form, and extract from free text.

use ironcase_domain::ioc::{self as rules, Found, IocType};
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{IncidentId, IocId, OrgId, Permission, Timestamp, Tlp};
use ironcase_store::incident::{self as incidents, IncidentRef, IncidentRow};
use ironcase_store::ioc::{self as store, IocRow, SightingRow};
use ironcase_store::{audit, event, search, Conn, Tx};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

pub struct NewIoc {
    pub kind: IocType,
    pub value: String,
    pub tlp: Option<Tlp>,
    pub tags: Option<Vec<String>>,
    pub note: Option<String>,
}

/// An indicator and every incident that saw it.
pub struct Lookup {
    pub ioc: IocRow,
    pub sightings: Vec<SightingRow>,
}

/// An indicator found in text, and whether the organisation already tracks it.
pub struct Extracted {
    pub found: Found,
    pub existing: Option<IocId>,
}

/// Most indicators one extraction returns (or saves).
pub const MAX_EXTRACTED: usize = 1000;

fn invalid(kind: IocType, value: &str) -> AppError {
    match rules::normalize(kind, value) {
        Ok(_) => AppError::Internal("normalize disagreed with itself".into()),
        Err(e) => ValidationErrors::one("value", format!("{e}")).into(),
    }
}

/// Inside a write: finds or creates the indicator and links it to the incident.
/// Returns the indicator and whether the link is new. The caller re-indexes
/// the incident for search (once, however many it links).
#[allow(clippy::too_many_arguments)]
pub(crate) fn link_one(
    c: &Tx,
    p: &Principal,
    meta: &RequestMeta,
    incident: &IncidentRow,
    kind: IocType,
    value: &str,
    tlp: Tlp,
    tags: &[String],
    note: Option<&str>,
    now: Timestamp,
) -> Result<(IocRow, bool)> {
    let actor = p.actor_id();
    let ioc = match store::find(c, p.org, kind, value)? {
        Some(i) => i,
        None => {
            let row = IocRow { org: p.org, id: IocId::new(), kind, value: value.to_owned(), tlp, tags: tags.to_vec(), created_at: now };
            store::insert(c, &row, &actor)?;
            row
        }
    };
    let new_link = store::link(c, p.org, ioc.id, incident.id, note, now, &actor)?;
    if new_link {
        let data = json!({ "ioc_id": ioc.id, "type": ioc.kind, "value": ioc.value });
        event::append(c, p.org, Some(incident.id), "ioc.added", Some(&actor), &data, now)?;
        let details = json!({ "incident_id": incident.id, "type": ioc.kind, "value": ioc.value });
        audit::append(c, by(p, meta, now, "ioc.link", ("ioc", &ioc.id.to_string()), details))?;
    }
    Ok((ioc, new_link))
}

fn sighting_of(c: &Conn, org: OrgId, ioc: IocId, incident: IncidentId) -> Result<SightingRow> {
    store::sighting(c, org, ioc, incident)?.ok_or(AppError::NotFound)
}

impl App {
    pub(crate) async fn incident_for(&self, p: &Principal, r: IncidentRef) -> Result<IncidentRow> {
        let org = p.org;
        let i = self.store().read_now(move |c| incidents::get(c, org, r)).await?;
        crate::incidents::visible(p, i)
    }

    pub(crate) async fn may_change(&self, p: &Principal, meta: &RequestMeta, i: &IncidentRow) -> Result<()> {
        if p.may_on_incident(Permission::IncidentUpdate, i.reporter_id, i.assignee_id) {
            Ok(())
        } else {
            Err(self.deny(p, meta, Permission::IncidentUpdate, Some(("incident", i.id.to_string()))).await)
        }
    }

    /// Adds an indicator to an incident. `Ok((sighting, true))` when the link is new.
    pub async fn ioc_add(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, input: NewIoc) -> Result<(SightingRow, bool)> {
        let incident = self.incident_for(p, r).await?;
        self.may_change(p, meta, &incident).await?;
        let value = rules::normalize(input.kind, &input.value).map_err(|_| invalid(input.kind, &input.value))?;
        let mut errs = ValidationErrors::default();
        let tags = validate::tags("tags", input.tags.as_deref().unwrap_or(&[]), &mut errs);
        let note = input.note.as_deref().map(|n| validate::long_text("note", n, 10_000, &mut errs));
        errs.into_result()?;
        let now = self.clock().now();
        let (p2, meta2, kind, tlp) = (p.clone(), meta.clone(), input.kind, input.tlp.unwrap_or(Tlp::DEFAULT));
        self.store()
            .write(move |c| {
                // The incident may have been deleted since it was read.
                let incident = incidents::get(c, p2.org, IncidentRef::Id(incident.id))?;
                let (ioc, new_link) = link_one(c, &p2, &meta2, &incident, kind, &value, tlp, &tags, note.as_deref(), now)?;
                if new_link {
                    search::reindex(c, p2.org, incident.id)?;
                }
                Ok((sighting_of(c, p2.org, ioc.id, incident.id)?, new_link))
            })
            .await
    }

    /// The incident's indicators (those the caller may see), by first
    /// sighting, after `cursor` (a keyset: first seen, indicator id).
    pub async fn ioc_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        r: IncidentRef,
        cursor: Option<(i64, IocId)>,
        size: PageSize,
    ) -> Result<Page<SightingRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let incident = self.incident_for(p, r).await?;
        let (org, tlp_max) = (p.org, p.sight.tlp_max);
        let rows = self.store().read(move |c| store::for_incident(c, org, incident.id, tlp_max, cursor, size.fetch())).await?;
        let page = Page::cut(rows, size, |last| keyset(last.first_seen.0, last.ioc.id));
        self.audit_read(p, meta, "ioc.list", ("incident", &incident.id.to_string()), json!({ "count": page.items.len() })).await?;
        Ok(page)
    }

    /// Removes an indicator from an incident; the indicator stays for the others.
    pub async fn ioc_unlink(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, ioc: IocId) -> Result<()> {
        let incident = self.incident_for(p, r).await?;
        self.may_change(p, meta, &incident).await?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let s = sighting_of(c, p2.org, ioc, incident.id)?;
                store::unlink(c, p2.org, ioc, incident.id)?;
                search::reindex(c, p2.org, incident.id)?;
                let actor = p2.actor_id();
                let data = json!({ "ioc_id": ioc, "type": s.ioc.kind, "value": s.ioc.value });
                event::append(c, p2.org, Some(incident.id), "ioc.removed", Some(&actor), &data, now)?;
                let details = json!({ "incident_id": incident.id, "type": s.ioc.kind, "value": s.ioc.value });
                audit::append(c, by(&p2, &meta2, now, "ioc.unlink", ("ioc", &ioc.to_string()), details))?;
                Ok(())
            })
            .await
    }

    /// Finds indicators by any written form of `value`; without `kind`, every
    /// type the value is valid for is tried.
    pub async fn ioc_lookup(&self, p: &Principal, meta: &RequestMeta, kind: Option<IocType>, value: &str) -> Result<Vec<Lookup>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let candidates: Vec<(IocType, String)> = match kind {
            Some(k) => vec![(k, rules::normalize(k, value).map_err(|_| invalid(k, value))?)],
            None => IocType::ALL.iter().filter_map(|k| rules::normalize(*k, value).ok().map(|v| (*k, v))).collect(),
        };
        let org = p.org;
        let p2 = p.clone();
        let found: Vec<Lookup> = self
            .store()
            .read(move |c| {
                let mut out = Vec::new();
                for (k, v) in candidates {
                    if let Some(ioc) = store::find(c, org, k, &v)?.filter(|i| p2.sight.sees_tlp(i.tlp)) {
                        let mut sightings = store::sightings(c, org, ioc.id)?;
                        sightings.retain(|s| p2.sight.sees(s.incident_tlp, s.incident_category));
                        out.push(Lookup { ioc, sightings });
                    }
                }
                Ok::<_, AppError>(out)
            })
            .await?;
        for l in &found {
            self.audit_read(p, meta, "ioc.read", ("ioc", &l.ioc.id.to_string()), json!({ "sightings": l.sightings.len() })).await?;
        }
        Ok(found)
    }

    /// Pulls every indicator out of `text`. With `save`, links them all to the
    /// incident in one transaction.
    pub async fn ioc_extract(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, text: String, save: bool) -> Result<Vec<Extracted>> {
        let incident = self.incident_for(p, r).await?;
        if save {
            self.may_change(p, meta, &incident).await?;
        } else {
            self.require(p, meta, Permission::IncidentRead).await?;
        }
        let mut found = tokio::task::spawn_blocking(move || rules::extract(&text))
            .await
            .map_err(|_| AppError::Internal("extraction task failed".into()))?;
        found.truncate(MAX_EXTRACTED);
        let org = p.org;
        if !save {
            return self
                .store()
                .read(move |c| {
                    found
                        .into_iter()
                        .map(|f| Ok(Extracted { existing: store::find(c, org, f.kind, &f.value)?.map(|i| i.id), found: f }))
                        .collect()
                })
                .await;
        }
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let incident = incidents::get(c, p2.org, IncidentRef::Id(incident.id))?;
                let linked = found
                    .into_iter()
                    .map(|f| {
                        let (ioc, _) = link_one(c, &p2, &meta2, &incident, f.kind, &f.value, Tlp::DEFAULT, &[], None, now)?;
                        Ok(Extracted { existing: Some(ioc.id), found: f })
                    })
                    .collect::<Result<Vec<_>>>()?;
                search::reindex(c, p2.org, incident.id)?;
                Ok(linked)
            })
            .await
    }
}
