//! Per-credential and per-organisation rate limits from the organisation's
//! plan (`api_per_minute`, `api_per_day`), checked for every authenticated
//! API request. GCRA in process (see `ratelimit.rs`); a credential's own limit
//! is its organisation's per-minute limit. Rejections are audited at most
//! once per credential, class and window.

use std::collections::HashMap;
use std::sync::Mutex;

use ironcase_domain::plan::{Limits, Quota as PlanQuota};
use ironcase_domain::{OrgId, Timestamp};
use serde_json::json;

use crate::ratelimit::{Decision, Limiter, Quota};
use crate::{App, Principal, RequestMeta, Result};

/// How long a node trusts the plan it read for an organisation.
const PLAN_TTL_MS: i64 = 1_000;

pub(crate) struct ApiLimits {
    minute: Limiter,
    day: Limiter,
    /// Per organisation: (per minute, per day) and when they were read.
    plans: Mutex<HashMap<OrgId, (Rates, i64)>>,
    /// (credential, class) → the window last audited.
    audited: Mutex<HashMap<(String, &'static str), i64>>,
}

impl ApiLimits {
    pub(crate) fn new(max_keys: usize) -> ApiLimits {
        ApiLimits {
            minute: Limiter::new(Quota::per_minute(60), max_keys).named("api_minute"),
            day: Limiter::new(Quota::per_day(1_000), max_keys).named("api_day"),
            plans: Mutex::new(HashMap::new()),
            audited: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn forget_plan(&self, org: OrgId) {
        if let Ok(mut m) = self.plans.lock() {
            m.remove(&org);
        }
    }
}

/// An organisation's request rates; `None`: unlimited.
#[derive(Debug, Clone, Copy)]
struct Rates {
    per_minute: Option<Quota>,
    per_day: Option<Quota>,
}

impl Rates {
    fn of(l: &Limits) -> Rates {
        Rates {
            per_minute: quota(l.quota(PlanQuota::ApiPerMinute), Quota::per_minute),
            per_day: quota(l.quota(PlanQuota::ApiPerDay), Quota::per_day),
        }
    }
}

/// A refused request: what to answer, and what to audit.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub decision: Decision,
    class: &'static str,
    window: i64,
    credential: String,
}

fn quota(n: Option<u64>, f: fn(u32) -> Quota) -> Option<Quota> {
    n.map(|n| f(u32::try_from(n).unwrap_or(u32::MAX).max(1)))
}

/// The answer that tells the caller most: a refusal, else the allowance closest to running out.
fn tighter(a: Decision, b: Decision) -> Decision {
    match (a.allowed, b.allowed) {
        (false, _) => a,
        (_, false) => b,
        _ if b.remaining < a.remaining => b,
        _ => a,
    }
}

impl App {
    async fn rates(&self, org: OrgId, now: Timestamp) -> Result<Rates> {
        if let Some((r, at)) = self.inner.api_limits.plans.lock().ok().and_then(|m| m.get(&org).copied()) {
            if now.0 - at < PLAN_TTL_MS {
                return Ok(r);
            }
        }
        let l = self.store().read_now(move |c| crate::quotas::limits(c, org)).await?;
        let r = Rates::of(&l);
        if let Ok(mut m) = self.inner.api_limits.plans.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(org, (r, now.0));
        }
        Ok(r)
    }

    /// Counts one API request of `p`. `Ok(None)`: its plan has no rate limits.
    /// `Ok(Some(d))`: allowed, with what the headers say. `Err(_)`: refused;
    /// hand it to [`App::api_rate_refused`].
    pub async fn check_api_rate(&self, p: &Principal) -> Result<Option<Decision>, Rejection> {
        let now = self.clock().now();
        let Ok(rates) = self.rates(p.org, now).await else { return Ok(None) };
        // A credential's own limit: its plan's per-minute limit, or less where it says so.
        let own = match (p.rate_per_minute.map(Quota::per_minute), rates.per_minute) {
            (Some(mine), Some(plan)) if mine.burst < plan.burst => Some(mine),
            (Some(mine), None) => Some(mine),
            (_, plan) => plan,
        };
        if own.is_none() && rates.per_minute.is_none() && rates.per_day.is_none() {
            return Ok(None);
        }
        let credential = p.credential_id();
        let org = p.org.to_string();
        let cred_key = format!("cred:{credential}");
        let org_key = format!("org:{org}");
        let limits = &self.inner.api_limits;
        let mut checks = Vec::with_capacity(3);
        let mut classes = Vec::with_capacity(3);
        for (q, limiter, key, class, window) in [
            (own, &limits.minute, cred_key.as_str(), "credential_minute", 60_000),
            (rates.per_minute, &limits.minute, org_key.as_str(), "organization_minute", 60_000),
            (rates.per_day, &limits.day, org_key.as_str(), "organization_day", 86_400_000),
        ] {
            if let Some(q) = q {
                checks.push((limiter, key, q));
                classes.push((class, window));
            }
        }
        let mut answer: Option<Decision> = None;
        for (d, (class, window)) in self.rate_checks(&checks, now).await.into_iter().zip(classes) {
            answer = Some(answer.map_or(d, |a| tighter(a, d)));
            if !d.allowed {
                return Err(Rejection { decision: d, class, window: now.0 / window, credential: credential.clone() });
            }
        }
        Ok(answer)
    }

    /// Audits a refusal, at most once per credential, class and window.
    pub async fn api_rate_refused(&self, p: &Principal, meta: &RequestMeta, r: &Rejection) {
        let first = match self.inner.api_limits.audited.lock() {
            Ok(mut m) => {
                if m.len() > 100_000 {
                    m.clear();
                }
                m.insert((r.credential.clone(), r.class), r.window) != Some(r.window)
            }
            Err(_) => false,
        };
        if !first {
            return;
        }
        let now = self.clock().now();
        let mut e = crate::audit::by(
            p,
            meta,
            now,
            "rate_limit.rejected",
            ("credential", &r.credential),
            json!({ "class": r.class, "limit": r.decision.limit }),
        );
        e.outcome = "denied".into();
        if let Err(err) = self.write_audit(e).await {
            tracing::error!(error = %err, "could not audit a rate-limit rejection");
        }
    }
}
