//! Incidents: create, read, list, update (with optimistic concurrency and the
//! status workflow), delete, comment, timeline.

use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{
    transition, Category, CommentId, EvidenceId, IncidentId, IocId, Milestone, Permission, Resolution, Severity, Status, Timestamp, Tlp,
    UserId,
};
use ironcase_store::event::{self, EventRow};
use ironcase_store::incident::{self as store, CommentRow, Filter, IncidentRef, IncidentRow, Sort};
use ironcase_store::{audit, org, search, Conn};
use serde_json::{json, Value};

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

#[derive(Debug, Clone)]
pub struct NewIncident {
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub category: Category,
    pub tlp: Option<Tlp>,
    pub tags: Option<Vec<String>>,
    pub assignee_id: Option<UserId>,
}

/// Where each long part of an incident's page starts: the previous page's
/// cursor of its timeline, indicators and files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewCursors {
    pub events: Option<i64>,
    pub iocs: Option<(i64, IocId)>,
    pub files: Option<(i64, EvidenceId)>,
}

/// An incident's page: see [`App::incident_view`].
#[derive(Debug)]
pub struct IncidentView {
    pub incident: IncidentRow,
    pub timeline: Page<EventRow>,
    pub iocs: Page<ironcase_store::ioc::SightingRow>,
    pub files: Page<ironcase_store::evidence::EvidenceRow>,
    /// What to call the members the timeline names.
    pub names: Vec<(UserId, String)>,
    /// Its legal hold, if any.
    pub hold: Option<ironcase_store::retention::HoldRow>,
    /// Its personal-data-breach record, if flagged as one.
    pub breach: Option<crate::breaches::Breach>,
}

/// What the dashboard shows.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub by_status: Vec<(String, i64)>,
    pub by_severity: Vec<(String, i64)>,
    /// Each day's start, and the incidents opened and closed that day.
    pub per_day: Vec<(Timestamp, i64, i64)>,
}

/// A partial update; `None` leaves a field alone. `assignee_id: Some(None)` unassigns.
#[derive(Debug, Clone, Default)]
pub struct IncidentPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub tlp: Option<Tlp>,
    pub tags: Option<Vec<String>>,
    pub assignee_id: Option<Option<UserId>>,
    pub status: Option<Status>,
    pub resolution: Option<Resolution>,
}

/// The versions a change may apply to (`If-Match`, RFC 9110 §13.1.1): any
/// current one (`*`), or one of those listed (strong validators only: a weak
/// one never matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Versions(Vec<i64>),
}

impl IfMatch {
    pub fn accepts(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }
}

/// Parses `inc_…` or `INC-42` (case-insensitive) or `42`.
pub fn parse_ref(s: &str) -> Option<IncidentRef> {
    if let Ok(id) = s.parse::<IncidentId>() {
        return Some(IncidentRef::Id(id));
    }
    // `get`, not an index: a reference is client input, and byte 4 may fall
    // inside a character.
    let digits = match (s.get(..4), s.get(4..)) {
        (Some(head), Some(rest)) if !rest.is_empty() && head.eq_ignore_ascii_case("inc-") => rest,
        _ => s,
    };
    match digits.parse::<i64>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Some(IncidentRef::Number(n)),
        _ => None,
    }
}

fn check_assignee(c: &Conn, org: ironcase_domain::OrgId, a: Option<UserId>) -> Result<()> {
    if let Some(a) = a {
        if org::membership_role(c, org, a)?.is_none() {
            return Err(ValidationErrors::one("assignee_id", "is not a member of this organization").into());
        }
    }
    Ok(())
}

/// The incident, if it is within the principal's TLP ceiling; otherwise it
/// does not exist for them.
pub(crate) fn visible(p: &Principal, i: IncidentRow) -> Result<IncidentRow> {
    if p.sight.sees(i.tlp, i.category) {
        Ok(i)
    } else {
        Err(AppError::NotFound)
    }
}

/// Inside a write: files `row` (validated, in `p`'s sight) as a new
/// incident: the quota charged, its number, search document, event and
/// audit entry.
pub(crate) fn insert_new(c: &ironcase_store::Tx, p: &Principal, meta: &RequestMeta, row: &mut IncidentRow, now: Timestamp) -> Result<()> {
    check_assignee(c, p.org, row.assignee_id)?;
    crate::quotas::charge_incident(c, p, meta, now)?;
    row.number = org::next_incident_number(c, p.org)?;
    store::insert(c, row)?;
    search::index_new(c, row)?;
    let data = json!({ "number": row.number, "title": row.title, "severity": row.severity, "category": row.category, "tlp": row.tlp });
    event::append(c, p.org, Some(row.id), "incident.created", Some(&p.actor_id()), &data, now)?;
    audit::append(c, by(p, meta, now, "incident.create", ("incident", &row.id.to_string()), data))?;
    Ok(())
}

/// A principal may not mark an incident above its own TLP ceiling, nor file
/// it under a category it does not see: it would lose sight of it.
pub(crate) fn check_sight(p: &Principal, tlp: Option<Tlp>, category: Option<Category>, errs: &mut ValidationErrors) {
    if let (Some(t), Some(max)) = (tlp, p.sight.tlp_max) {
        if t > max {
            errs.push("tlp", format!("is above this credential's TLP ceiling ({max})"));
        }
    }
    if category.is_some_and(|c| !p.sight.sees_category(c)) {
        errs.push("category", "is not one of the categories this credential sees");
    }
}

fn incident_ref(i: &IncidentRow) -> (&'static str, String) {
    ("incident", i.id.to_string())
}

impl App {
    /// Which of `ids` are incidents the principal sees (a list of things
    /// about incidents leaves out those of the others).
    pub(crate) async fn seen_incidents(&self, p: &Principal, ids: Vec<IncidentId>) -> Result<Vec<IncidentId>> {
        let (org, sight) = (p.org, p.sight);
        if sight == ironcase_domain::Sight::ALL {
            return Ok(ids);
        }
        self.store()
            .read_now(move |c| {
                let mut out = Vec::new();
                for id in ids {
                    match store::get(c, org, IncidentRef::Id(id)) {
                        Ok(i) if sight.sees(i.tlp, i.category) => out.push(id),
                        Ok(_) | Err(ironcase_store::StoreError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok::<_, AppError>(out)
            })
            .await
    }

    async fn load(&self, p: &Principal, r: IncidentRef) -> Result<IncidentRow> {
        let org = p.org;
        let i = self.store().read_now(move |c| store::get(c, org, r)).await?;
        visible(p, i)
    }

    pub async fn incident_create(&self, p: &Principal, meta: &RequestMeta, input: NewIncident) -> Result<IncidentRow> {
        self.require(p, meta, Permission::IncidentCreate).await?;
        let mut errs = ValidationErrors::default();
        let title = validate::text("title", &input.title, 1, 300, &mut errs);
        let description = validate::long_text("description", input.description.as_deref().unwrap_or(""), 100_000, &mut errs);
        let tags = validate::tags("tags", input.tags.as_deref().unwrap_or(&[]), &mut errs);
        check_sight(p, input.tlp, Some(input.category), &mut errs);
        errs.into_result()?;
        let now = self.clock().now();
        let mut row = IncidentRow {
            org: p.org,
            id: IncidentId::new(),
            number: 0,
            title,
            description,
            severity: input.severity,
            category: input.category,
            status: Status::Open,
            resolution: None,
            // A principal with a ceiling below the default files at its ceiling.
            tlp: input.tlp.unwrap_or_else(|| p.sight.tlp_max.map_or(Tlp::DEFAULT, |m| m.min(Tlp::DEFAULT))),
            tags,
            assignee_id: input.assignee_id,
            reporter_id: p.user_id(),
            created_at: now,
            updated_at: now,
            acknowledged_at: None,
            contained_at: None,
            resolved_at: None,
            closed_at: None,
            version: 1,
        };
        let (p2, meta) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                insert_new(c, &p2, &meta, &mut row, now)?;
                Ok(row)
            })
            .await
    }

    /// The dashboard's figures: live incidents by status and by severity,
    /// and opened and closed per day over the last `days` days (UTC),
    /// within the caller's sight.
    pub async fn dashboard(&self, p: &Principal, meta: &RequestMeta, days: i64) -> Result<Dashboard> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, sight) = (p.org, p.sight);
        let today = self.clock().now().0.div_euclid(86_400_000);
        let first = today - days + 1;
        let (by_status, by_severity, counted) = self
            .store()
            .read(move |c| {
                Ok::<_, AppError>((
                    store::counts(c, org, sight, store::CountBy::Status)?,
                    store::counts(c, org, sight, store::CountBy::Severity)?,
                    store::per_day(c, org, sight, Timestamp(first * 86_400_000))?,
                ))
            })
            .await?;
        let per_day = (first..=today)
            .map(|d| {
                counted
                    .iter()
                    .find(|(day, _, _)| *day == d)
                    .map_or((Timestamp(d * 86_400_000), 0, 0), |(_, o, c)| (Timestamp(d * 86_400_000), *o, *c))
            })
            .collect();
        Ok(Dashboard { by_status, by_severity, per_day })
    }

    pub async fn incident_get(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<IncidentRow> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let i = self.load(p, r).await?;
        self.audit_read(p, meta, "incident.read", ("incident", &i.id.to_string()), json!({})).await?;
        Ok(i)
    }

    /// One page of incidents after `cursor` (the previous page's keyset:
    /// the sort column's value and the id).
    pub async fn incident_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        f: &Filter,
        sort: Sort,
        cursor: Option<(i64, IncidentId)>,
        size: PageSize,
    ) -> Result<Page<IncidentRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, mut f) = (p.org, f.clone());
        // A filter may narrow the caller's sight, never widen it.
        f.sight = f.sight.and(p.sight);
        // A page is at most page::MAX_PAGE rows found through an index that gives the
        // order: short enough to run inline, which costs less than a thread hop.
        let rows = self.store().read_now(move |c| store::list(c, org, &f, sort, cursor, size.fetch())).await?;
        let page = Page::cut(rows, size, |last| keyset(sort.key(last), last.id));
        self.audit_read(p, meta, "incident.list", ("organization", &org.to_string()), json!({ "count": page.items.len() })).await?;
        Ok(page)
    }

    /// The queue's facets for `f`: how many incidents in the caller's sight
    /// have each status, severity and category (each leaving out `f`'s own
    /// condition on it). From the tallies unless `f` names an assignee, a
    /// tag or a time.
    pub async fn incident_facets(&self, p: &Principal, meta: &RequestMeta, f: &Filter) -> Result<Vec<(store::CountBy, String, i64)>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, mut f) = (p.org, f.clone());
        f.sight = f.sight.and(p.sight);
        Ok(self.store().read_now(move |c| store::facets(c, org, &f)).await?)
    }

    pub async fn incident_update(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        r: IncidentRef,
        expected: IfMatch,
        patch: IncidentPatch,
    ) -> Result<IncidentRow> {
        let current = self.load(p, r).await?;
        if !p.may_on_incident(Permission::IncidentUpdate, current.reporter_id, current.assignee_id) {
            return Err(self.deny(p, meta, Permission::IncidentUpdate, Some(incident_ref(&current))).await);
        }
        let mut errs = ValidationErrors::default();
        let title = patch.title.as_deref().map(|t| validate::text("title", t, 1, 300, &mut errs));
        let description = patch.description.as_deref().map(|d| validate::long_text("description", d, 100_000, &mut errs));
        let tags = patch.tags.as_deref().map(|t| validate::tags("tags", t, &mut errs));
        check_sight(p, patch.tlp, patch.category, &mut errs);
        if patch.resolution.is_some() && patch.status != Some(Status::Closed) {
            errs.push("resolution", "may only be given when closing (status: closed)");
        }
        errs.into_result()?;
        let now = self.clock().now();
        let (p2, meta2, id) = (p.clone(), meta.clone(), current.id);
        let out = self
            .store()
            .write(move |c| {
                let old = store::get(c, p2.org, IncidentRef::Id(id))?;
                if !expected.accepts(old.version) {
                    return Err(AppError::VersionConflict);
                }
                if !p2.may_on_incident(Permission::IncidentUpdate, old.reporter_id, old.assignee_id) {
                    return Err(AppError::Forbidden(format!("missing permission {}", Permission::IncidentUpdate)));
                }
                let mut new = old.clone();
                let mut changes: Vec<Value> = Vec::new();
                macro_rules! set {
                        ($field:ident, $value:expr) => {
                            if let Some(v) = $value {
                                if new.$field != v {
                                    changes.push(json!({ "field": stringify!($field), "old": old.$field, "new": v }));
                                    new.$field = v;
                                }
                            }
                        };
                    }
                set!(title, title);
                set!(description, description);
                set!(severity, patch.severity);
                set!(category, patch.category);
                set!(tlp, patch.tlp);
                let tags_changed = tags.as_ref().is_some_and(|t| *t != old.tags);
                set!(tags, tags);
                if let Some(a) = patch.assignee_id {
                    check_assignee(c, p2.org, a)?;
                }
                set!(assignee_id, patch.assignee_id);
                let mut status_change = None;
                if let Some(to) = patch.status.filter(|s| *s != old.status) {
                    let milestones =
                        transition(old.status, to, patch.resolution).map_err(|e| AppError::InvalidTransition(e.to_string()))?;
                    for m in milestones {
                        let slot = match m {
                            Milestone::Acknowledged => &mut new.acknowledged_at,
                            Milestone::Contained => &mut new.contained_at,
                            Milestone::Resolved => &mut new.resolved_at,
                            Milestone::Closed => &mut new.closed_at,
                        };
                        slot.get_or_insert(now);
                    }
                    new.status = to;
                    new.resolution = if to == Status::Closed { patch.resolution } else { None };
                    status_change = Some(json!({ "from": old.status, "to": to, "resolution": new.resolution }));
                }
                if changes.is_empty() && status_change.is_none() {
                    return Ok(old);
                }
                new.version = old.version + 1;
                new.updated_at = now;
                if !store::update(c, &new, old.version, tags_changed)? {
                    return Err(AppError::VersionConflict);
                }
                if new.title != old.title || new.description != old.description {
                    search::reindex(c, p2.org, id)?;
                }
                let actor = p2.actor_id();
                if !changes.is_empty() {
                    event::append(c, p2.org, Some(id), "incident.updated", Some(&actor), &json!({ "changes": changes }), now)?;
                }
                if let Some(sc) = &status_change {
                    event::append(c, p2.org, Some(id), "incident.status_changed", Some(&actor), sc, now)?;
                }
                let details = json!({ "changes": changes, "status": status_change, "version": new.version });
                audit::append(c, by(&p2, &meta2, now, "incident.update", ("incident", &id.to_string()), details))?;
                Ok(new)
            })
            .await;
        match out {
            Err(AppError::Forbidden(_)) => Err(self.deny(p, meta, Permission::IncidentUpdate, Some(incident_ref(&current))).await),
            other => other,
        }
    }

    pub async fn incident_delete(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<()> {
        let current = self.load(p, r).await?;
        if !p.may_on_incident(Permission::IncidentDelete, current.reporter_id, current.assignee_id) {
            return Err(self.deny(p, meta, Permission::IncidentDelete, Some(incident_ref(&current))).await);
        }
        let now = self.clock().now();
        let (p2, meta2, id, number) = (p.clone(), meta.clone(), current.id, current.number);
        self.store()
            .write(move |c| {
                store::soft_delete(c, p2.org, id, now)?;
                search::remove_incident(c, p2.org, id)?;
                let data = json!({ "number": number });
                event::append(c, p2.org, Some(id), "incident.deleted", Some(&p2.actor_id()), &data, now)?;
                audit::append(c, by(&p2, &meta2, now, "incident.delete", ("incident", &id.to_string()), data))?;
                Ok(())
            })
            .await
    }

    pub async fn comment_create(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, body: &str) -> Result<CommentRow> {
        let current = self.load(p, r).await?;
        if !p.may_on_incident(Permission::CommentCreate, current.reporter_id, current.assignee_id) {
            return Err(self.deny(p, meta, Permission::CommentCreate, Some(incident_ref(&current))).await);
        }
        let mut errs = ValidationErrors::default();
        let body = validate::long_text("body", body, 100_000, &mut errs);
        if body.trim().is_empty() {
            errs.push("body", "must not be empty");
        }
        errs.into_result()?;
        let now = self.clock().now();
        let row = CommentRow {
            org: p.org,
            id: CommentId::new(),
            incident_id: current.id,
            author_id: p.user_id(),
            body,
            created_at: now,
            author_erased: false,
        };
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                {
                    // The incident may have been deleted since it was read.
                    store::get(c, p2.org, IncidentRef::Id(row.incident_id))?;
                    store::insert_comment(c, &row)?;
                    search::reindex(c, p2.org, row.incident_id)?;
                    let data = json!({ "comment_id": row.id, "body": row.body });
                    event::append(c, p2.org, Some(row.incident_id), "comment.added", Some(&p2.actor_id()), &data, now)?;
                    let details = json!({ "incident_id": row.incident_id, "length": row.body.chars().count() });
                    audit::append(c, by(&p2, &meta2, now, "comment.create", ("comment", &row.id.to_string()), details))?;
                    Ok(row)
                }
            })
            .await
    }

    /// Everything an incident's page shows, read once in one snapshot: the
    /// incident, a page each of its timeline, indicators (those in the
    /// caller's sight) and files from the cursors in `at`, and the names of
    /// the members the timeline mentions.
    pub async fn incident_view(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, at: ViewCursors) -> Result<IncidentView> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, p2) = (p.org, p.clone());
        let (events, iocs, files) = (PageSize::default_of(200), PageSize::default_of(200), PageSize::default_of(100));
        let (incident, timeline, sightings, evidence, names, hold, breach) = self
            .store()
            .read(move |c| {
                let i = visible(&p2, store::get(c, org, r)?)?;
                let timeline = event::for_incident(c, org, i.id, at.events.unwrap_or(0), events.fetch())?;
                let sightings = ironcase_store::ioc::for_incident(c, org, i.id, p2.sight.tlp_max, at.iocs, iocs.fetch())?;
                let evidence = ironcase_store::evidence::list(c, org, i.id, at.files, files.fetch())?;
                let mut actors: Vec<UserId> = timeline.iter().filter_map(|e| e.actor_id.as_deref()?.parse().ok()).collect();
                actors.sort();
                actors.dedup();
                let names = org::member_names(c, org, &actors)?;
                let hold = ironcase_store::retention::held(c, org, i.id)?;
                let breach = ironcase_store::breach::get(c, org, i.id)?;
                Ok::<_, AppError>((i, timeline, sightings, evidence, names, hold, breach))
            })
            .await?;
        self.audit_read(p, meta, "incident.read", ("incident", &incident.id.to_string()), json!({ "view": "page" })).await?;
        Ok(IncidentView {
            incident,
            timeline: Page::cut(timeline, events, |last| last.id.to_string()),
            iocs: Page::cut(sightings, iocs, |last| keyset(last.first_seen.0, last.ioc.id)),
            files: Page::cut(evidence, files, |last| keyset(last.created_at.0, last.id)),
            names,
            hold,
            breach: breach.map(|b| self.breach(b)),
        })
    }

    /// The incident's events, oldest first, after event `after` (the cursor).
    pub async fn incident_timeline(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        r: IncidentRef,
        after: Option<i64>,
        size: PageSize,
    ) -> Result<Page<EventRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let current = self.load(p, r).await?;
        let (org, id) = (p.org, current.id);
        let rows = self.store().read(move |c| event::for_incident(c, org, id, after.unwrap_or(0), size.fetch())).await?;
        self.audit_read(p, meta, "incident.read", ("incident", &id.to_string()), json!({ "part": "timeline" })).await?;
        Ok(Page::cut(rows, size, |last| last.id.to_string()))
    }
}
