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
    plans: Mutex<HashMap<OrgId, (Limits, i64)>>,
    /// (credential, class) → the window last audited.
    audited: Mutex<HashMap<(String, &'static str), i64>>,
}

impl ApiLimits {
    pub(crate) fn new(max_keys: usize) -> ApiLimits {
        ApiLimits {
            minute: Limiter::new(Quota::per_minute(60), max_keys),
            day: Limiter::new(Quota::per_day(1_000), max_keys),
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
    async fn plan_limits(&self, org: OrgId, now: Timestamp) -> Result<Limits> {
        if let Some((l, at)) = self.inner.api_limits.plans.lock().ok().and_then(|m| m.get(&org).cloned()) {
            if now.0 - at < PLAN_TTL_MS {
                return Ok(l);
            }
        }
        let l = self.store().read_now(|c| crate::quotas::limits(c, org)).await?;
        if let Ok(mut m) = self.inner.api_limits.plans.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(org, (l.clone(), now.0));
        }
        Ok(l)
    }

    /// Counts one API request of `p`. `Ok(None)`: its plan has no rate limits.
    /// `Ok(Some(d))`: allowed, with what the headers say. `Err(d)`: refused.
    pub async fn check_api_rate(&self, p: &Principal, meta: &RequestMeta) -> Result<Option<Decision>, Decision> {
        let now = self.clock().now();
        let Ok(l) = self.plan_limits(p.org, now).await else { return Ok(None) };
        let per_minute = quota(l.quota(PlanQuota::ApiPerMinute), Quota::per_minute);
        let per_day = quota(l.quota(PlanQuota::ApiPerDay), Quota::per_day);
        let credential = match p.session {
            Some(s) => s.to_string(),
            None => p.actor_id(),
        };
        let mut answer: Option<Decision> = None;
        let mut refused: Option<(&'static str, i64)> = None;
        let checks = [
            (per_minute, &self.inner.api_limits.minute, format!("cred:{credential}"), "credential_minute", 60_000),
            (per_minute, &self.inner.api_limits.minute, format!("org:{}", p.org), "organization_minute", 60_000),
            (per_day, &self.inner.api_limits.day, format!("org:{}", p.org), "organization_day", 86_400_000),
        ];
        for (q, limiter, key, class, window) in checks {
            let Some(q) = q else { continue };
            let d = limiter.check_with(&key, q, now);
            answer = Some(answer.map_or(d, |a| tighter(a, d)));
            if !d.allowed {
                refused = Some((class, window));
                break;
            }
        }
        match (answer, refused) {
            (Some(d), Some((class, window))) => {
                self.audit_rejection(p, meta, &credential, class, now.0 / window, d).await;
                Err(d)
            }
            (d, _) => Ok(d),
        }
    }

    /// Audits a rejection once per credential, class and window.
    async fn audit_rejection(&self, p: &Principal, meta: &RequestMeta, credential: &str, class: &'static str, window: i64, d: Decision) {
        let first = match self.inner.api_limits.audited.lock() {
            Ok(mut m) => {
                if m.len() > 100_000 {
                    m.clear();
                }
                m.insert((credential.to_owned(), class), window) != Some(window)
            }
            Err(_) => false,
        };
        if !first {
            return;
        }
        let now = self.clock().now();
        let mut e =
            crate::audit::by(p, meta, now, "rate_limit.rejected", ("credential", credential), json!({ "class": class, "limit": d.limit }));
        e.outcome = "denied".into();
        if let Err(err) = self.write_audit(e).await {
            tracing::error!(error = %err, "could not audit a rate-limit rejection");
        }
    }
}
