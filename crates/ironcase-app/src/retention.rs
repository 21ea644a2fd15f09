//! Retention: how long an organisation keeps each kind of its data, legal
//! holds, and the job that removes what a policy no longer keeps — in
//! bounded batches, one node at a time, audited with counts. Audit entries
//! go only up to a signed checkpoint, so what remains still verifies.

use std::time::Duration;

use ironcase_domain::retention::{RetentionKind, DAY_MS};
use ironcase_domain::{validate, OrgId, Permission, Timestamp, ValidationErrors};
use ironcase_store::audit as store_audit;
use ironcase_store::incident::IncidentRef;
use ironcase_store::retention::{self as store, HoldRow};
use serde_json::json;

use crate::audit::{by, system};
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// Rows removed per transaction.
const BATCH: i64 = 500;
/// Audit entries removed per transaction.
const AUDIT_BATCH: i64 = 5_000;
/// Batches per kind per organisation in one round: a large backlog goes
/// over several rounds, and the writer is never held long.
const ROUND_BATCHES: usize = 40;

/// One kind's policy: kept `days` (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub kind: RetentionKind,
    pub days: Option<i64>,
}

/// What a kind's policy removes now (a preview) or removed (a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub kind: RetentionKind,
    pub days: Option<i64>,
    /// Older than this goes (none without a policy).
    pub cutoff: Option<Timestamp>,
    pub count: i64,
}

/// Every kind with its policy, in the kinds' order.
fn complete(set: &[(RetentionKind, i64)]) -> Vec<Policy> {
    RetentionKind::ALL.iter().map(|k| Policy { kind: *k, days: set.iter().find(|(s, _)| s == k).map(|(_, d)| *d) }).collect()
}

fn check(policies: &[Policy]) -> Result<()> {
    let mut errs = ValidationErrors::default();
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|q| q.kind == p.kind) {
            errs.push(&format!("policies[{i}].kind"), "is named twice");
        }
        if let Some(d) = p.days.filter(|d| !p.kind.days().contains(d)) {
            let r = p.kind.days();
            errs.push(&format!("policies[{i}].days"), format!("must be from {} to {} for {} (not {d})", r.start(), r.end(), p.kind));
        }
    }
    errs.into_result().map_err(Into::into)
}

impl App {
    /// `GET /retention`: every kind with the days the organisation keeps it.
    pub async fn retention_policies(&self, p: &Principal, meta: &RequestMeta) -> Result<Vec<Policy>> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org = p.org;
        Ok(complete(&self.store().read_now(move |c| store::policies(c, org)).await?))
    }

    /// `PUT /retention`: sets the kinds named (the others keep theirs).
    pub async fn set_retention(&self, p: &Principal, meta: &RequestMeta, policies: Vec<Policy>) -> Result<Vec<Policy>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        check(&policies)?;
        let (org, now) = (p.org, self.clock().now());
        let details = json!({ "policies": policies.iter().map(|q| json!({ "kind": q.kind, "days": q.days })).collect::<Vec<_>>() });
        let e = by(p, meta, now, "retention.policy", ("organization", &org.to_string()), details);
        let set: Vec<_> = policies.iter().map(|q| (q.kind, q.days)).collect();
        let now_set = self
            .store()
            .write(move |c| {
                store::set_policies(c, org, &set, now)?;
                store_audit::append(c, e)?;
                Ok::<_, AppError>(store::policies(c, org)?)
            })
            .await?;
        Ok(complete(&now_set))
    }

    /// `POST /retention/preview`: what the policies (the organisation's,
    /// with `proposed` in place of its own for the kinds it names) would
    /// remove now, per kind.
    pub async fn retention_preview(&self, p: &Principal, meta: &RequestMeta, proposed: Vec<Policy>) -> Result<Vec<Tally>> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        check(&proposed)?;
        let (org, now) = (p.org, self.clock().now());
        let mut policies = complete(&self.store().read_now(move |c| store::policies(c, org)).await?);
        for q in proposed {
            if let Some(slot) = policies.iter_mut().find(|s| s.kind == q.kind) {
                slot.days = q.days;
            }
        }
        self.store()
            .read(move |c| {
                policies
                    .into_iter()
                    .map(|q| {
                        let cutoff = q.days.map(|d| Timestamp(now.0 - d * DAY_MS));
                        let count = match (q.kind, cutoff) {
                            (_, None) => 0,
                            (RetentionKind::Audit, Some(t)) => {
                                let tenant = org.to_string();
                                let from = store_audit::pruned(c, &tenant)?.map_or(0, |x| x.0);
                                audit_prune_point(c, &tenant, t)?.map_or(0, |upto| upto - from)
                            }
                            (k, Some(t)) => store::count_due(c, org, k, t)?,
                        };
                        Ok(Tally { kind: q.kind, days: q.days, cutoff, count })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await
    }

    /// `POST /retention/run`: applies the organisation's policies now (as
    /// the job does), a round's worth; what each kind removed.
    pub async fn retention_run(&self, p: &Principal, meta: &RequestMeta) -> Result<Vec<Tally>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        self.purge(p.org).await
    }

    /// Applies one organisation's policies: each kind in batches (each its
    /// own transaction, blobs removed after it commits), at most a round's
    /// worth, then one audit entry with the counts when anything went.
    async fn purge(&self, org: OrgId) -> Result<Vec<Tally>> {
        let now = self.clock().now();
        let policies = complete(&self.store().read_now(move |c| store::policies(c, org)).await?);
        let mut out = Vec::new();
        for q in policies {
            let Some(days) = q.days else { continue };
            let cutoff = Timestamp(now.0 - days * DAY_MS);
            let mut count = 0;
            for _ in 0..ROUND_BATCHES {
                let kind = q.kind;
                let removed = if kind == RetentionKind::Audit {
                    let tenant = org.to_string();
                    self.store()
                        .write(move |c| {
                            let from = store_audit::pruned(c, &tenant)?.map_or(0, |x| x.0);
                            let Some(upto) = audit_prune_point(c, &tenant, cutoff)?.filter(|u| *u > from) else {
                                return Ok::<_, AppError>(store::Removed::default());
                            };
                            let n = store_audit::prune(c, &tenant, upto.min(from + AUDIT_BATCH), now)?;
                            Ok(store::Removed { count: n, blobs: Vec::new() })
                        })
                        .await?
                } else {
                    self.store().write(move |c| Ok::<_, AppError>(store::remove_due(c, org, kind, cutoff, BATCH, now)?)).await?
                };
                for b in &removed.blobs {
                    if let Err(e) = self.inner.blobs.delete(b).await {
                        tracing::error!(error = %e, blob = %b, "retention removed a record, but not its blob");
                    }
                }
                count += removed.count;
                if removed.count == 0 {
                    break;
                }
            }
            out.push(Tally { kind: q.kind, days: q.days, cutoff: Some(cutoff), count });
        }
        if out.iter().any(|t| t.count > 0) {
            let counts: serde_json::Map<_, _> = out.iter().map(|t| (t.kind.to_string(), json!(t.count))).collect();
            let e = system(&org.to_string(), now, "retention.purge", ("organization", &org.to_string()), json!({ "removed": counts }));
            self.write_audit(e).await?;
        }
        Ok(out)
    }

    /// The job's round: every organisation with a policy, while this node
    /// holds the lease.
    pub async fn retention_round(&self, holder: &str) -> Result<usize> {
        let now = self.clock().now();
        let (h, until) = (holder.to_owned(), Timestamp(now.0 + 10 * 60_000));
        if !self.store().write(move |c| Ok::<_, AppError>(store::take_lease(c, "retention", &h, now, until)?)).await? {
            return Ok(0);
        }
        let orgs = self.store().read(|c| Ok::<_, AppError>(store::organizations(c)?)).await?;
        let n = orgs.len();
        for org in orgs {
            if let Err(e) = self.purge(org).await {
                tracing::warn!(error = %e, org = %org, "retention round failed for an organisation");
            }
        }
        Ok(n)
    }

    /// `PUT /incidents/{id}/legal-hold`: no policy removes the incident (or
    /// anything of it) while held.
    pub async fn legal_hold_put(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef, reason: &str) -> Result<HoldRow> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let mut errs = ValidationErrors::default();
        let reason = validate::text("reason", reason, 1, 500, &mut errs);
        errs.into_result()?;
        let (p2, meta2, now) = (p.clone(), meta.clone(), self.clock().now());
        self.store()
            .write(move |c| {
                let i = crate::incidents::visible(&p2, ironcase_store::incident::get(c, p2.org, r)?)?;
                let h = HoldRow { org: p2.org, incident_id: i.id, reason, set_by: Some(p2.actor_id()), set_at: now };
                store::hold_put(c, &h)?;
                let id = i.id.to_string();
                store_audit::append(c, by(&p2, &meta2, now, "retention.legal_hold", ("incident", &id), json!({ "reason": h.reason })))?;
                Ok::<_, AppError>(store::held(c, p2.org, i.id)?.unwrap_or(h))
            })
            .await
    }

    /// `DELETE /incidents/{id}/legal-hold`.
    pub async fn legal_hold_remove(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<()> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let (p2, meta2, now) = (p.clone(), meta.clone(), self.clock().now());
        self.store()
            .write(move |c| {
                let i = crate::incidents::visible(&p2, ironcase_store::incident::get(c, p2.org, r)?)?;
                if !store::hold_remove(c, p2.org, i.id)? {
                    return Err(AppError::NotFound);
                }
                let id = i.id.to_string();
                store_audit::append(c, by(&p2, &meta2, now, "retention.legal_hold_released", ("incident", &id), json!({})))?;
                Ok(())
            })
            .await
    }

    /// `GET /incidents/{id}/legal-hold`.
    pub async fn legal_hold(&self, p: &Principal, meta: &RequestMeta, r: IncidentRef) -> Result<HoldRow> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, p2) = (p.org, p.clone());
        self.store()
            .read_now(move |c| {
                let i = crate::incidents::visible(&p2, ironcase_store::incident::get(c, org, r)?)?;
                store::held(c, org, i.id)?.ok_or(AppError::NotFound)
            })
            .await
    }

    /// `GET /legal-holds`: newest first.
    pub async fn legal_holds(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, String)>,
        size: PageSize,
    ) -> Result<Page<HoldRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        let rows = self.store().read_now(move |c| store::holds(c, org, cursor, size.fetch())).await?;
        // Incidents outside the caller's sight are left out of the page.
        let seen = self.seen_incidents(p, rows.iter().map(|h| h.incident_id).collect()).await?;
        let page = Page::cut(rows, size, |last| keyset(last.set_at.0, last.incident_id));
        Ok(Page { items: page.items.into_iter().filter(|h| seen.contains(&h.incident_id)).collect(), next_cursor: page.next_cursor })
    }
}

/// Where audit pruning may go for `cutoff`: the largest signed checkpoint
/// that every entry before it is older than the cutoff (none: nowhere).
fn audit_prune_point(c: &ironcase_store::Conn, tenant: &str, cutoff: Timestamp) -> Result<Option<i64>> {
    let Some(latest) = store_audit::latest_checkpoint(c, tenant)? else { return Ok(None) };
    let upto = store_audit::prunable(c, tenant, cutoff, latest.size)?;
    Ok(store_audit::checkpoint_at_most(c, tenant, upto)?)
}

/// The retention job: a round a minute (or as configured), until the app
/// closes. Each node runs it; the lease lets one at a time do the work.
pub async fn run(app: App) {
    let holder = crate::crypto::random_token(16);
    let every = Duration::from_secs(app.settings().retention_interval_secs.max(1));
    app.every(every, "retention", || app.retention_round(&holder)).await
}
