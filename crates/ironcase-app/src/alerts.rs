//! Alert intake and triage: detection tools post alerts (one, or up to
//! 1,000 at once); the same `source` + `source_ref` again is the first
//! alert, not a new one; alerts with the same `dedup_key` within an hour
//! group under the first open one. People list and search them, and promote
//! one into a new incident (its observables become indicators), merge it
//! into an existing one, dismiss it with a reason or snooze it.

use ironcase_domain::ioc::{self as rules, IocType};
use ironcase_domain::plan::Quota;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{AlertId, AlertStatus, Category, IncidentId, Permission, Severity, Status, Timestamp, Tlp};
use ironcase_store::alert::{self as store, AlertRow, Filter};
use ironcase_store::incident::{self as incidents, IncidentRef, IncidentRow};
use ironcase_store::{event, ioc, search, Tx};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// Most alerts one batch carries.
pub const MAX_BATCH: usize = 1000;
/// Most observables one alert carries.
pub const MAX_OBSERVABLES: usize = 100;
/// The largest raw payload kept, in bytes of its JSON.
pub const MAX_RAW_BYTES: usize = 64 * 1024;
/// Alerts with the same dedup key this close together group.
const DEDUP_WINDOW_MS: i64 = 3600 * 1000;

/// An alert as a detection tool sends it.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub source: String,
    pub source_ref: String,
    pub kind: String,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub tlp: Option<Tlp>,
    /// `(type, value)`, normalised as indicators are.
    pub observables: Vec<(IocType, String)>,
    pub occurred_at: Option<Timestamp>,
    pub raw: Option<serde_json::Value>,
    pub dedup_key: Option<String>,
}

/// What became of one alert sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Its `source` + `source_ref` was sent before: the first one.
    Duplicate,
    /// Grouped under an open alert with the same dedup key.
    Grouped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Duplicate => "duplicate",
            Outcome::Grouped => "grouped",
        }
    }
}

/// An alert with the incidents that already saw each of its observables
/// (those the caller may see).
#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert: AlertRow,
    pub seen_in: Vec<SeenIn>,
}

#[derive(Debug, Clone)]
pub struct SeenIn {
    pub kind: IocType,
    pub value: String,
    pub incidents: Vec<(IncidentId, i64, String)>,
}

/// How an alert is promoted: into a new incident (these fill it; the rest
/// comes from the alert), or into an existing one (`incident`).
#[derive(Debug, Clone, Default)]
pub struct Promotion {
    pub incident: Option<IncidentRef>,
    pub title: Option<String>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
}

/// An alert's status as people see it: a snooze that has run out is new.
fn shown(mut a: AlertRow, now: Timestamp) -> AlertRow {
    if a.status == AlertStatus::Snoozed && a.snoozed_until.is_some_and(|u| u <= now) {
        a.status = AlertStatus::New;
    }
    a
}

fn prefixed(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Checks one alert; its fields named under `prefix` (`alerts[3]` in a batch).
fn checked(p: &Principal, a: NewAlert, prefix: &str, now: Timestamp, errs: &mut ValidationErrors) -> AlertRow {
    let f = |field: &str| prefixed(prefix, field);
    let source = validate::text(&f("source"), &a.source, 1, 100, errs);
    let source_ref = validate::text(&f("source_ref"), &a.source_ref, 1, 200, errs);
    let kind = validate::text(&f("type"), &a.kind, 1, 100, errs);
    let title = validate::text(&f("title"), &a.title, 1, 300, errs);
    let description = validate::long_text(&f("description"), a.description.as_deref().unwrap_or(""), 100_000, errs);
    let dedup_key = a.dedup_key.as_deref().map(|k| validate::text(&f("dedup_key"), k, 1, 200, errs));
    if let (Some(max), Some(t)) = (p.sight.tlp_max, a.tlp) {
        if t > max {
            errs.push(&f("tlp"), format!("must be at most {} (your ceiling)", max.as_str()));
        }
    }
    let tlp = a.tlp.unwrap_or_else(|| p.sight.tlp_max.map_or(Tlp::DEFAULT, |m| m.min(Tlp::DEFAULT)));
    if a.observables.len() > MAX_OBSERVABLES {
        errs.push(&f("observables"), format!("must hold at most {MAX_OBSERVABLES} observables"));
    }
    let mut observables = Vec::new();
    for (i, (kind, value)) in a.observables.iter().enumerate() {
        match rules::normalize(*kind, value) {
            Ok(v) => {
                let o = json!({ "type": kind, "value": v });
                if !observables.contains(&o) {
                    observables.push(o);
                }
            }
            Err(e) => errs.push(&f(&format!("observables[{i}].value")), format!("{e}")),
        }
    }
    let raw = a.raw.map(|r| r.to_string());
    if raw.as_ref().is_some_and(|r| r.len() > MAX_RAW_BYTES) {
        errs.push(&f("raw"), format!("must be at most {MAX_RAW_BYTES} bytes of JSON"));
    }
    if a.occurred_at.is_some_and(|t| t.0 > now.0 + 24 * 3600 * 1000) {
        errs.push(&f("occurred_at"), "must not be more than a day in the future");
    }
    AlertRow {
        org: p.org,
        id: AlertId::new(),
        source,
        source_ref,
        kind,
        title,
        description,
        severity: a.severity,
        tlp,
        observables: serde_json::Value::Array(observables),
        occurred_at: a.occurred_at.unwrap_or(now),
        raw,
        dedup_key,
        status: AlertStatus::New,
        count: 1,
        first_seen: now,
        last_seen: now,
        incident_id: None,
        dismiss_reason: None,
        snoozed_until: None,
        created_at: now,
        updated_at: now,
    }
}

/// Inside a write: one alert kept, found again or grouped.
fn ingest_one(c: &Tx, p: &Principal, meta: &RequestMeta, row: AlertRow, now: Timestamp) -> Result<(AlertRow, Outcome)> {
    if let Some(first) = store::by_ref(c, p.org, &row.source, &row.source_ref)? {
        return Ok((first, Outcome::Duplicate));
    }
    if let Some(key) = &row.dedup_key {
        if let Some(mut group) = store::group_for(c, p.org, key, Timestamp(now.0 - DEDUP_WINDOW_MS))? {
            store::bump(c, p.org, group.id, now)?;
            (group.count, group.last_seen) = (group.count + 1, now.max(group.last_seen));
            return Ok((group, Outcome::Grouped));
        }
    }
    crate::quotas::charge(c, p, meta, Quota::AlertsPerMonth, now)?;
    store::insert(c, &row)?;
    let data = json!({ "alert_id": row.id, "source": row.source, "type": row.kind, "severity": row.severity, "tlp": row.tlp });
    event::append(c, p.org, None, "alert.created", Some(&p.actor_id()), &data, now)?;
    Ok((row, Outcome::Created))
}

impl App {
    /// `POST /alerts` and `/alerts/batch`: every alert checked before any
    /// is kept (a batch with one bad alert keeps nothing, and says which);
    /// then, in one write, each is kept, found again or grouped.
    pub async fn alert_ingest(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        alerts: Vec<NewAlert>,
        batch: bool,
    ) -> Result<Vec<(AlertRow, Outcome)>> {
        self.require(p, meta, Permission::IncidentCreate).await?;
        let now = self.clock().now();
        let mut errs = ValidationErrors::default();
        if alerts.is_empty() || alerts.len() > MAX_BATCH {
            errs.push("alerts", format!("must hold 1 to {MAX_BATCH} alerts"));
        }
        let rows: Vec<AlertRow> = alerts
            .into_iter()
            .enumerate()
            .map(|(i, a)| checked(p, a, &if batch { format!("alerts[{i}]") } else { String::new() }, now, &mut errs))
            .collect();
        errs.into_result()?;
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(ingest_one(c, &p2, &meta2, row, now)?);
                }
                let count = |o: Outcome| out.iter().filter(|(_, x)| *x == o).count();
                let details = json!({
                    "created": count(Outcome::Created), "duplicates": count(Outcome::Duplicate), "grouped": count(Outcome::Grouped),
                });
                let first = out.first().map(|(a, _)| a.id.to_string()).unwrap_or_default();
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "alert.ingest", ("alert", &first), details))?;
                Ok(out)
            })
            .await
    }

    /// Alerts newest first, in the caller's TLP sight.
    pub async fn alert_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        mut f: Filter,
        cursor: Option<(i64, AlertId)>,
        size: PageSize,
    ) -> Result<Page<AlertRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, now) = (p.org, self.clock().now());
        f.tlp_max = match (f.tlp_max, p.sight.tlp_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        f.now = now;
        let rows = self.store().read(move |c| store::list(c, org, &f, cursor, size.fetch())).await?;
        let page = Page::cut(rows, size, |last| keyset(last.created_at.0, last.id));
        Ok(Page { items: page.items.into_iter().map(|a| shown(a, now)).collect(), next_cursor: page.next_cursor })
    }

    fn visible_alert(p: &Principal, a: AlertRow) -> Result<AlertRow> {
        match p.sight.tlp_max {
            Some(max) if a.tlp > max => Err(AppError::NotFound),
            _ => Ok(a),
        }
    }

    /// One alert, with the incidents that already saw its observables.
    pub async fn alert_get(&self, p: &Principal, meta: &RequestMeta, id: AlertId) -> Result<AlertView> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, now, p2) = (p.org, self.clock().now(), p.clone());
        self.store()
            .read(move |c| {
                let alert = shown(Self::visible_alert(&p2, store::get(c, org, id)?)?, now);
                let mut seen_in = Vec::new();
                for o in alert.observables.as_array().into_iter().flatten() {
                    let (Some(kind), Some(value)) = (o["type"].as_str().and_then(IocType::parse), o["value"].as_str()) else { continue };
                    let Some(found) = ioc::find(c, org, kind, value)? else { continue };
                    let incidents: Vec<(IncidentId, i64, String)> = ioc::sightings(c, org, found.id)?
                        .into_iter()
                        .filter(|s| p2.sight.sees(s.incident_tlp, s.incident_category))
                        .map(|s| (s.incident_id, s.incident_number, s.incident_title))
                        .collect();
                    if !incidents.is_empty() {
                        seen_in.push(SeenIn { kind, value: value.to_owned(), incidents });
                    }
                }
                Ok::<_, AppError>(AlertView { alert, seen_in })
            })
            .await
    }

    /// `POST /alerts/{id}/promote`: into a new incident, or into an existing
    /// one; its observables become the incident's indicators, the alert
    /// promoted and linked, in one write.
    pub async fn alert_promote(&self, p: &Principal, meta: &RequestMeta, id: AlertId, how: Promotion) -> Result<(AlertRow, IncidentRow)> {
        let perm = if how.incident.is_some() { Permission::IncidentUpdate } else { Permission::IncidentCreate };
        self.require(p, meta, perm).await?;
        let mut errs = ValidationErrors::default();
        let title = how.title.as_deref().map(|t| validate::text("title", t, 1, 300, &mut errs));
        // A new incident is filed in `other` unless told: within the sight too.
        let category = how.category.unwrap_or(Category::Other);
        if how.incident.is_none() {
            crate::incidents::check_sight(p, None, Some(category), &mut errs);
        }
        errs.into_result()?;
        let (now, p2, meta2) = (self.clock().now(), p.clone(), meta.clone());
        let done = self
            .store()
            .write(move |c| {
                let mut alert = Self::visible_alert(&p2, store::get(c, p2.org, id)?)?;
                if let Some(inc) = alert.incident_id.filter(|_| alert.status == AlertStatus::Promoted) {
                    let number = incidents::get(c, p2.org, IncidentRef::Id(inc)).map(|i| i.number).unwrap_or(0);
                    return Err(AppError::Conflict {
                        code: crate::ErrorCode::AlertPromoted,
                        detail: format!("the alert was already promoted into INC-{number}"),
                    });
                }
                let incident = match how.incident {
                    Some(r) => {
                        let i = crate::incidents::visible(&p2, incidents::get(c, p2.org, r)?)?;
                        if !p2.may_on_incident(Permission::IncidentUpdate, i.reporter_id, i.assignee_id) {
                            return Err(AppError::Forbidden(format!("missing permission {}", Permission::IncidentUpdate)));
                        }
                        if i.status == Status::Closed {
                            return Err(
                                ValidationErrors::one("incident_id", "is closed: reopen it first, or promote into a new incident").into()
                            );
                        }
                        i
                    }
                    None => {
                        let mut row = IncidentRow {
                            org: p2.org,
                            id: IncidentId::new(),
                            number: 0,
                            title: title.clone().unwrap_or_else(|| alert.title.clone()),
                            description: format!(
                                "{}\n\nFrom alert {} `{}` ({}).",
                                alert.description, alert.source, alert.source_ref, alert.kind
                            )
                            .trim_start()
                            .to_owned(),
                            severity: how.severity.unwrap_or(alert.severity),
                            category,
                            status: Status::Open,
                            resolution: None,
                            tlp: alert.tlp,
                            tags: vec!["alert".into()],
                            assignee_id: None,
                            reporter_id: p2.user_id(),
                            created_at: now,
                            updated_at: now,
                            acknowledged_at: None,
                            contained_at: None,
                            resolved_at: None,
                            closed_at: None,
                            version: 1,
                        };
                        crate::incidents::insert_new(c, &p2, &meta2, &mut row, now)?;
                        row
                    }
                };
                let note = format!("from alert {} {}", alert.source, alert.source_ref);
                let mut linked = 0;
                for o in alert.observables.as_array().cloned().unwrap_or_default() {
                    let (Some(kind), Some(value)) = (o["type"].as_str().and_then(IocType::parse), o["value"].as_str()) else { continue };
                    let (_, new) = crate::iocs::link_one(c, &p2, &meta2, &incident, kind, value, alert.tlp, &[], Some(&note), now)?;
                    linked += usize::from(new);
                }
                if linked > 0 {
                    search::reindex(c, p2.org, incident.id)?;
                }
                (alert.status, alert.incident_id, alert.updated_at) = (AlertStatus::Promoted, Some(incident.id), now);
                store::set_triage(c, &alert)?;
                let data = json!({ "alert_id": alert.id, "source": alert.source, "source_ref": alert.source_ref, "count": alert.count });
                event::append(c, p2.org, Some(incident.id), "alert.promoted", Some(&p2.actor_id()), &data, now)?;
                let details = json!({ "incident_id": incident.id, "observables_linked": linked });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "alert.promote", ("alert", &alert.id.to_string()), details))?;
                Ok((alert, incident))
            })
            .await;
        match done {
            Err(AppError::Forbidden(_)) => Err(self.deny(p, meta, Permission::IncidentUpdate, Some(("alert", id.to_string()))).await),
            other => other,
        }
    }

    async fn alert_triage(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        id: AlertId,
        action: &'static str,
        change: impl FnOnce(&mut AlertRow) + Send + 'static,
    ) -> Result<AlertRow> {
        self.require(p, meta, Permission::IncidentUpdate).await?;
        let (now, p2, meta2) = (self.clock().now(), p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let mut alert = Self::visible_alert(&p2, store::get(c, p2.org, id)?)?;
                if alert.status == AlertStatus::Promoted {
                    return Err(AppError::Conflict {
                        code: crate::ErrorCode::AlertPromoted,
                        detail: "the alert was promoted: triage goes on in its incident".into(),
                    });
                }
                change(&mut alert);
                alert.updated_at = now;
                store::set_triage(c, &alert)?;
                let details = json!({ "status": alert.status, "reason": alert.dismiss_reason, "until": alert.snoozed_until });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, action, ("alert", &id.to_string()), details))?;
                Ok(shown(alert, now))
            })
            .await
    }

    /// `POST /alerts/{id}/dismiss` with a reason.
    pub async fn alert_dismiss(&self, p: &Principal, meta: &RequestMeta, id: AlertId, reason: &str) -> Result<AlertRow> {
        let mut errs = ValidationErrors::default();
        let reason = validate::text("reason", reason, 1, 1000, &mut errs);
        errs.into_result()?;
        self.alert_triage(p, meta, id, "alert.dismiss", move |a| {
            (a.status, a.dismiss_reason, a.snoozed_until) = (AlertStatus::Dismissed, Some(reason), None);
        })
        .await
    }

    /// `POST /alerts/{id}/snooze` until a time to come (at most 90 days).
    pub async fn alert_snooze(&self, p: &Principal, meta: &RequestMeta, id: AlertId, until: Timestamp) -> Result<AlertRow> {
        let now = self.clock().now();
        if until <= now || until.0 > now.0 + 90 * 24 * 3600 * 1000 {
            return Err(ValidationErrors::one("until", "must be in the next 90 days").into());
        }
        self.alert_triage(p, meta, id, "alert.snooze", move |a| (a.status, a.snoozed_until) = (AlertStatus::Snoozed, Some(until))).await
    }

    /// `POST /alerts/{id}/acknowledge`: someone is looking at it.
    pub async fn alert_acknowledge(&self, p: &Principal, meta: &RequestMeta, id: AlertId) -> Result<AlertRow> {
        self.alert_triage(p, meta, id, "alert.acknowledge", |a| (a.status, a.snoozed_until) = (AlertStatus::Acknowledged, None)).await
    }
}
