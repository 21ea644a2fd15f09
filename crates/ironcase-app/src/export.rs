//! Export: everything an organisation holds about its incidents, streamed
//! page by page (incidents with their comments, indicators and evidence
//! metadata with its chain of custody), so that memory stays flat however
//! large the organisation. Owners and admins only, when the plan has the
//! `export` feature; its own route class (10 an hour per credential unless
//! configured); every export audited before its first byte.

use ironcase_domain::plan::Feature;
use ironcase_domain::{IncidentId, OrgId, Permission, Sight, Timestamp};
use ironcase_store::evidence::{self, CustodyRow, EvidenceRow};
use ironcase_store::incident::{self, CommentRow, Filter, IncidentRow, Sort};
use ironcase_store::ioc::{self, SightingRow};
use ironcase_store::org::{self, OrgRow};
use serde_json::json;

use crate::ratelimit::Decision;
use crate::{App, AppError, Principal, RequestMeta, Result};

/// Incidents read per page.
const PAGE: i64 = 200;

/// One incident and everything hanging from it.
#[derive(Debug)]
pub struct ExportItem {
    pub incident: IncidentRow,
    pub comments: Vec<CommentRow>,
    pub indicators: Vec<SightingRow>,
    pub evidence: Vec<(EvidenceRow, Vec<CustodyRow>)>,
}

/// An export under way.
pub struct Export {
    app: App,
    org: OrgId,
    sight: Sight,
    after: Option<(i64, IncidentId)>,
    done: bool,
    pub organization: OrgRow,
    pub started_at: Timestamp,
    /// Incidents handed out so far.
    pub count: u64,
}

impl App {
    /// Counts one export of `p` against the export route class.
    pub async fn check_export_rate(&self, p: &Principal) -> Decision {
        self.rate_check(&self.inner.export_limiter, &p.credential_id(), self.clock().now()).await
    }

    /// Authorizes and audits an export, and returns it ready to read.
    pub async fn export_start(&self, p: &Principal, meta: &RequestMeta) -> Result<Export> {
        self.require(p, meta, Permission::OrganizationExport).await?;
        self.require_recent_proof(p)?;
        let org = p.org;
        if !self.store().read_now(move |c| crate::quotas::limits(c, org)).await?.has(Feature::Export) {
            return Err(AppError::FeatureNotInPlan("export"));
        }
        let organization = self.store().read_now(move |c| org::get_org(c, org)).await?;
        let now = self.clock().now();
        let e = crate::audit::by(p, meta, now, "organization.export", ("organization", &org.to_string()), json!({ "format": "ndjson" }));
        self.write_audit(e).await?;
        Ok(Export { app: self.clone(), org, sight: p.sight, after: None, done: false, organization, started_at: now, count: 0 })
    }
}

impl Export {
    /// The next page of incidents, oldest first; `None` when all were read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ExportItem>>> {
        if self.done {
            return Ok(None);
        }
        let (org, after, sight) = (self.org, self.after, self.sight);
        let items = self
            .app
            .store()
            .read(move |c| -> Result<Vec<ExportItem>> {
                let f = Filter { sight, ..Filter::default() };
                let incidents = incident::list(c, org, &f, Sort::CreatedAsc, after, PAGE)?;
                let mut out = Vec::with_capacity(incidents.len());
                for i in incidents {
                    let comments = incident::comments(c, org, i.id)?;
                    let indicators = ioc::for_incident(c, org, i.id, sight.tlp_max, None, i64::MAX)?;
                    let mut evidence_out = Vec::new();
                    for e in evidence::list(c, org, i.id, None, i64::MAX)? {
                        let custody = evidence::custody(c, org, e.id, 0, i64::MAX)?;
                        evidence_out.push((e, custody));
                    }
                    out.push(ExportItem { incident: i, comments, indicators, evidence: evidence_out });
                }
                Ok(out)
            })
            .await?;
        if (items.len() as i64) < PAGE {
            self.done = true;
        }
        if let Some(last) = items.last() {
            self.after = Some((Sort::CreatedAsc.key(&last.incident), last.incident.id));
        }
        self.count += items.len() as u64;
        if items.is_empty() {
            return Ok(None);
        }
        Ok(Some(items))
    }
}
