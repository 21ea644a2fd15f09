//! Plans and quotas: what an organisation may hold, checked and counted in
//! the transaction of the create they guard (the single writer runs those
//! transactions one after another, so concurrent creates cannot overshoot),
//! and the usage report.

use ironcase_domain::plan::{Feature, Limits, Overrides, PlanName, Quota};
use ironcase_domain::{OrgId, Timestamp};
use ironcase_store::{audit, event, evidence, org, Lookup, Tx};
use serde_json::json;

use crate::{App, AppError, Principal, RequestMeta, Result};

/// The organisation's effective limits, read in the caller's transaction.
pub(crate) fn limits(c: &impl Lookup, id: OrgId) -> Result<Limits> {
    let (plan, overrides, _) = org::plan_of(c, id)?;
    let plan = PlanName::parse(&plan).ok_or_else(|| AppError::Internal(format!("unknown plan {plan}")))?;
    if overrides == "{}" {
        return Ok(plan.defaults());
    }
    let overrides: Overrides = serde_json::from_str(&overrides).map_err(|_| AppError::Internal("corrupt plan overrides".into()))?;
    Ok(plan.with(&overrides))
}

/// The calendar month (UTC) of `t` as `YYYY-MM`, and when the next begins.
pub(crate) fn month(t: Timestamp) -> (String, Timestamp) {
    let dt = time::OffsetDateTime::from_unix_timestamp((t.0 / 1000).max(0)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, m) = (dt.year(), dt.month());
    let next = match time::Date::from_calendar_date(if m == time::Month::December { y + 1 } else { y }, m.next(), 1) {
        Ok(d) => d.midnight().assume_utc().unix_timestamp() * 1000,
        Err(_) => t.0,
    };
    (format!("{y:04}-{:02}", u8::from(m)), Timestamp(next))
}

/// The answer when `quota` is full.
fn exceeded(quota: Quota, limit: u64, used: u64) -> AppError {
    AppError::QuotaExceeded { quota: quota.as_str(), limit, used }
}

/// A quota's use going from `before` to `after` against `limit`.
struct Step {
    quota: Quota,
    before: u64,
    after: u64,
    limit: u64,
}

/// Records crossing 80% and 100% of a quota: an organisation event (for
/// timelines and webhooks) and an audit entry.
fn note_crossing(c: &Tx, p: &Principal, meta: &RequestMeta, now: Timestamp, s: Step) -> Result<()> {
    for (pct, kind) in [(80u64, "quota.warning"), (100u64, "quota.exceeded")] {
        let mark = s.limit * pct; // compared with use * 100
        if s.before * 100 < mark && s.after * 100 >= mark {
            let data = json!({ "quota": s.quota, "limit": s.limit, "used": s.after, "percent": pct });
            event::append(c, p.org, None, kind, Some(&p.actor_id()), &data, now)?;
            audit::append(c, crate::audit::by(p, meta, now, kind, ("organization", &p.org.to_string()), data))?;
        }
    }
    Ok(())
}

/// Charges one incident to this month's quota, or refuses.
pub(crate) fn charge_incident(c: &Tx, p: &Principal, meta: &RequestMeta, now: Timestamp) -> Result<()> {
    charge(c, p, meta, Quota::IncidentsPerMonth, now)
}

/// Charges one to this month's count of a monthly quota (incidents,
/// alerts), or refuses.
pub(crate) fn charge(c: &Tx, p: &Principal, meta: &RequestMeta, q: Quota, now: Timestamp) -> Result<()> {
    let l = limits(c, p.org)?;
    let (period, _) = month(now);
    // Counted first: a refusal returns an error, and the request's savepoint
    // takes the count back with everything else.
    let after = org::usage_add(c, p.org, q.as_str(), &period, 1)?.max(0) as u64;
    if let Some(limit) = l.quota(q) {
        if after > limit {
            return Err(exceeded(q, limit, after - 1));
        }
        note_crossing(c, p, meta, now, Step { quota: q, before: after - 1, after, limit })?;
    }
    Ok(())
}

/// Refuses a member beyond the quota (members are counted, not charged:
/// removing one frees its place).
pub(crate) fn check_members(c: &Tx, p: &Principal, meta: &RequestMeta, now: Timestamp) -> Result<()> {
    let q = Quota::Members;
    if let Some(limit) = limits(c, p.org)?.quota(q) {
        let used = org::count_members(c, p.org)?.max(0) as u64;
        if used + 1 > limit {
            return Err(exceeded(q, limit, used));
        }
        note_crossing(c, p, meta, now, Step { quota: q, before: used, after: used + 1, limit })?;
    }
    Ok(())
}

/// Refuses evidence that would not fit the storage quota.
pub(crate) fn check_storage(c: &Tx, p: &Principal, meta: &RequestMeta, adding: u64, now: Timestamp) -> Result<()> {
    let q = Quota::StorageBytes;
    if let Some(limit) = limits(c, p.org)?.quota(q) {
        let used = evidence::stored_bytes(c, p.org)?.max(0) as u64;
        if used + adding > limit {
            return Err(exceeded(q, limit, used));
        }
        note_crossing(c, p, meta, now, Step { quota: q, before: used, after: used + adding, limit })?;
    }
    Ok(())
}

/// One quota in the usage report.
#[derive(Debug, Clone)]
pub struct QuotaUsage {
    pub quota: Quota,
    /// `None`: unlimited.
    pub limit: Option<u64>,
    /// `None`: not metered (a per-file limit, or rate limits).
    pub used: Option<u64>,
    pub resets_at: Option<Timestamp>,
}

pub struct Usage {
    pub plan: PlanName,
    pub quotas: Vec<QuotaUsage>,
    pub features: Vec<(Feature, bool)>,
}

impl App {
    /// `GET /organization/usage`: every quota with its limit and use, and the features.
    pub async fn usage(&self, p: &Principal, meta: &RequestMeta) -> Result<Usage> {
        self.require(p, meta, ironcase_domain::Permission::OrganizationRead).await?;
        let (org_id, now) = (p.org, self.clock().now());
        self.store()
            .read(move |c| {
                let (plan, _, _) = org::plan_of(c, org_id)?;
                let plan = PlanName::parse(&plan).ok_or_else(|| AppError::Internal("unknown plan".into()))?;
                let l = limits(c, org_id)?;
                let (period, reset) = month(now);
                let quotas = Quota::ALL
                    .iter()
                    .map(|q| {
                        let (used, resets_at) = match q {
                            Quota::Members => (Some(org::count_members(c, org_id)?.max(0) as u64), None),
                            Quota::IncidentsPerMonth | Quota::AlertsPerMonth => {
                                (Some(org::usage(c, org_id, q.as_str(), &period)?.max(0) as u64), Some(reset))
                            }
                            Quota::StorageBytes => (Some(evidence::stored_bytes(c, org_id)?.max(0) as u64), None),
                            _ => (None, None),
                        };
                        Ok(QuotaUsage { quota: *q, limit: l.quota(*q), used, resets_at })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let features = Feature::ALL.iter().map(|f| (*f, l.has(*f))).collect();
                Ok(Usage { plan, quotas, features })
            })
            .await
    }

    /// The largest evidence file the organisation may upload now: the plan's
    /// limit, within the server's.
    pub(crate) async fn max_evidence_bytes(&self, org_id: OrgId) -> Result<u64> {
        let server = self.settings().max_evidence_bytes;
        let l = self.store().read_now(move |c| limits(c, org_id)).await?;
        Ok(l.quota(Quota::MaxEvidenceBytes).map_or(server, |q| q.min(server)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_ends() {
        // 2026-11-24T10:00:00Z
        let (p, next) = month(Timestamp(1_795_514_400_000));
        assert_eq!(p, "2026-11");
        assert_eq!(next, Timestamp(1_796_083_200_000)); // 2026-12-01T00:00:00Z
        let (p, next) = month(Timestamp(1_798_675_200_000)); // 2026-12-31T00:00:00Z
        assert_eq!(p, "2026-12");
        assert_eq!(next, Timestamp(1_798_761_600_000)); // 2027-01-01
    }
}
