//! Personal data breaches — the incidents this platform exists for. An
//! incident flagged as one gets the GDPR Art. 33 deadline (72 hours from
//! when the organisation became aware); a job raises `incident.breach_deadline`
//! at 48 h, 66 h and when overdue (for webhooks and notification channels),
//! once each, until the regulator's notification is recorded.

use std::time::Duration;

use ironcase_domain::privacy::{self, BreachStage, BreachState};
use ironcase_domain::{validate, IncidentId, Permission, Timestamp, ValidationErrors};
use ironcase_store::breach::{self as store, BreachRow};
use ironcase_store::event;
use ironcase_store::incident::IncidentRef;
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// What a member records about a breach.
#[derive(Debug, Clone, Default)]
pub struct BreachInput {
    /// When the organisation became aware (default: now).
    pub aware_at: Option<Timestamp>,
    /// When the regulator was told (`None`: not yet).
    pub notified_at: Option<Timestamp>,
    /// The regulator's reference for the notification.
    pub reference: Option<String>,
}

/// A breach with its deadline and where it stands now.
#[derive(Debug, Clone)]
pub struct Breach {
    pub row: BreachRow,
    pub deadline: Timestamp,
    pub state: BreachState,
}

impl App {
    pub(crate) fn breach(&self, row: BreachRow) -> Breach {
        let now = self.clock().now();
        Breach { deadline: privacy::deadline(row.aware_at), state: privacy::state(row.aware_at, row.notified_at, now), row }
    }

    /// `PUT /incidents/{id}/breach`: flags the incident as a personal data
    /// breach, or records what changed (the regulator told, its reference).
    pub async fn breach_put(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, input: BreachInput) -> Result<Breach> {
        let incident = self.incident_for(p, r).await?;
        self.may_change(p, meta, &incident).await?;
        let now = self.clock().now();
        let aware_at = input.aware_at.unwrap_or(now);
        let mut errs = ValidationErrors::default();
        // A few minutes of clock difference between a client and this server.
        let soon = Timestamp(now.0 + 5 * 60_000);
        if aware_at > soon {
            errs.push("aware_at", "must not be in the future");
        }
        if let Some(n) = input.notified_at {
            if n > soon {
                errs.push("regulator_notified_at", "must not be in the future");
            } else if n < aware_at {
                errs.push("regulator_notified_at", "must not be before aware_at");
            }
        }
        let reference = input.reference.as_deref().map(|t| validate::text("reference", t, 1, 200, &mut errs));
        errs.into_result()?;
        let (p2, meta2, id) = (p.clone(), meta.clone(), incident.id);
        let row = self
            .store()
            .write(move |c| {
                ironcase_store::incident::get(c, p2.org, IncidentRef::Id(id))?;
                let before = store::get(c, p2.org, id)?;
                let row = BreachRow {
                    org: p2.org,
                    incident_id: id,
                    aware_at,
                    notified_at: input.notified_at,
                    reference,
                    warned: before.as_ref().map_or(0, |b| b.warned),
                    set_by: Some(p2.actor_id()),
                    updated_at: now,
                };
                store::put(c, &row)?;
                let data = json!({
                    "aware_at": row.aware_at,
                    "deadline": privacy::deadline(row.aware_at),
                    "regulator_notified_at": row.notified_at,
                    "reference": row.reference,
                    "flagged": before.is_none(),
                });
                event::append(c, p2.org, Some(id), "incident.breach_flagged", Some(&p2.actor_id()), &data, now)?;
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "privacy.breach", ("incident", &id.to_string()), data))?;
                Ok::<_, AppError>(row)
            })
            .await?;
        Ok(self.breach(row))
    }

    /// `GET /incidents/{id}/breach`: 404 when the incident is not flagged.
    pub async fn breach_get(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<Breach> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let incident = self.incident_for(p, r).await?;
        let (org, id) = (p.org, incident.id);
        let row = self.store().read_now(move |c| store::get(c, org, id)).await?.ok_or(AppError::NotFound)?;
        Ok(self.breach(row))
    }

    /// `DELETE /incidents/{id}/breach`: it was not one after all.
    pub async fn breach_remove(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<()> {
        let incident = self.incident_for(p, r).await?;
        self.may_change(p, meta, &incident).await?;
        let (p2, meta2, id, now) = (p.clone(), meta.clone(), incident.id, self.clock().now());
        self.store()
            .write(move |c| {
                if !store::remove(c, p2.org, id)? {
                    return Err(AppError::NotFound);
                }
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "privacy.breach_removed", ("incident", &id.to_string()), json!({})))?;
                Ok(())
            })
            .await
    }

    /// `GET /breaches`: the earliest known first; `open` only those whose
    /// regulator is still to be told (`Some(false)`: only those told).
    pub async fn breach_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        open: Option<bool>,
        cursor: Option<(i64, IncidentId)>,
        size: PageSize,
    ) -> Result<Page<Breach>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        let after = cursor.map(|(at, id)| (at, id.to_string()));
        let rows = self.store().read_now(move |c| store::list(c, org, open, after, size.fetch())).await?;
        // Incidents outside the caller's sight are left out of the page.
        let seen = self.seen_incidents(p, rows.iter().map(|b| b.incident_id).collect()).await?;
        let page = Page::cut(rows, size, |last| keyset(last.aware_at.0, last.incident_id));
        Ok(Page {
            items: page.items.into_iter().filter(|b| seen.contains(&b.incident_id)).map(|b| self.breach(b)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// The deadline job's round: each breach not yet notified gets the
    /// warning now due, once. How many were raised.
    pub async fn breach_round(&self) -> Result<usize> {
        let now = self.clock().now();
        let since = Timestamp(now.0 - privacy::FIRST_WARNING_MS);
        let due = self.store().read(move |c| Ok::<_, AppError>(store::due(c, since, 500)?)).await?;
        let mut raised = 0;
        for b in due {
            let Some(stage) = privacy::stage(b.aware_at, now).filter(|s| s.rank() > b.warned) else { continue };
            let raise = self
                .store()
                .write(move |c| {
                    if !store::mark_warned(c, b.org, b.incident_id, stage.rank())? {
                        return Ok::<_, AppError>(false);
                    }
                    let data = json!({
                        "stage": stage,
                        "aware_at": b.aware_at,
                        "deadline": privacy::deadline(b.aware_at),
                    });
                    event::append(c, b.org, Some(b.incident_id), "incident.breach_deadline", None, &data, now)?;
                    let e = crate::audit::system(
                        &b.org.to_string(),
                        now,
                        "privacy.breach_deadline",
                        ("incident", &b.incident_id.to_string()),
                        data,
                    );
                    ironcase_store::audit::append(c, e)?;
                    Ok(true)
                })
                .await?;
            raised += usize::from(raise);
            if stage == BreachStage::Overdue {
                tracing::warn!(org = %b.org, incident = %b.incident_id, "a personal data breach is past its 72-hour deadline");
            }
        }
        Ok(raised)
    }
}

/// The deadline job: a round every `breach_check_secs` until the app closes. Each
/// node runs it; a warning is raised by the one write that records it.
pub async fn run(app: App) {
    let every = Duration::from_secs(app.settings().breach_check_secs.max(1));
    app.every(every, "breach deadlines", || app.breach_round()).await
}
