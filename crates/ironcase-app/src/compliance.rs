//! Compliance reports: the organisation's live figures judged against a
//! framework's controls (the rules in `domain::compliance`). Every report
//! made is audited.

use ironcase_domain::compliance::{evaluate, summary, Control, Framework, Summary};
use ironcase_domain::{Permission, Timestamp};
use ironcase_store::audit as store_audit;
use serde_json::json;

use crate::audit::by;
use crate::{App, AppError, Principal, RequestMeta, Result};

#[derive(Debug, Clone)]
pub struct Report {
    pub framework: Framework,
    pub generated_at: Timestamp,
    pub summary: Summary,
    pub controls: Vec<Control>,
}

impl App {
    /// `GET /compliance/{framework}`.
    pub async fn compliance_report(&self, p: &Principal, meta: &RequestMeta, framework: Framework) -> Result<Report> {
        self.require(p, meta, Permission::AuditRead).await?;
        let (org, now) = (p.org, self.clock().now());
        let (every, interval) = (self.settings().audit_checkpoint_every as i64, self.settings().audit_checkpoint_interval.as_secs() as i64);
        let figures = self
            .store()
            .read(move |c| {
                let mut f = ironcase_store::compliance::figures(c, org, now)?;
                let tenant = org.to_string();
                f.audit_entries = store_audit::head(c, &tenant)?.map_or(0, |h| h.0);
                let k = store_audit::latest_checkpoint(c, &tenant)?;
                f.checkpoint_size = k.as_ref().map(|k| k.size);
                f.checkpoint_age_secs = k.map(|k| (now.0 - k.at.0) / 1000);
                (f.checkpoint_every, f.checkpoint_interval_secs) = (every, interval);
                Ok::<_, AppError>(f)
            })
            .await?;
        let controls = evaluate(framework, &figures);
        let summary = summary(&controls);
        let details = json!({ "framework": framework, "met": summary.met, "partly": summary.partly, "not_met": summary.not_met });
        self.write_audit(by(p, meta, now, "compliance.report", ("organization", &org.to_string()), details)).await?;
        Ok(Report { framework, generated_at: now, summary, controls })
    }
}
