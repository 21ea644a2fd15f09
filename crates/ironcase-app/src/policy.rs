//! An organisation's access policy, set by its owners and admins: how long
//! sessions last, and the networks its members and API keys may call from.

use ironcase_domain::net::AllowList;
use ironcase_domain::{Permission, ValidationErrors};
use ironcase_store::org::{self, SessionPolicy};
use serde_json::json;

use crate::audit::by;
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// Bounds of an organisation's session timeouts, in seconds.
pub const IDLE_SECS: std::ops::RangeInclusive<i64> = 300..=86_400;
pub const MAX_SECS: std::ops::RangeInclusive<i64> = 900..=30 * 86_400;

/// An organisation's session timeouts as they apply (its own or the
/// server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle_secs: i64,
    pub max_secs: i64,
    /// Set by the organisation (else the server's defaults).
    pub custom: bool,
}

impl App {
    fn timeouts(&self, p: SessionPolicy) -> Timeouts {
        Timeouts {
            idle_secs: p.idle_secs.unwrap_or(self.settings().session_idle_secs),
            max_secs: p.max_secs.unwrap_or(self.settings().session_max_secs),
            custom: p != SessionPolicy::default(),
        }
    }

    /// `GET /organization/session-policy`.
    pub async fn session_policy(&self, p: &Principal, meta: &RequestMeta) -> Result<Timeouts> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org_id = p.org;
        Ok(self.timeouts(self.store().read_now(move |c| org::session_policy(c, org_id)).await?))
    }

    /// `PUT /organization/session-policy`: the organisation's idle timeout
    /// and absolute lifetime (`None` both: the server's again). Live
    /// sessions follow at their next refresh.
    pub async fn set_session_policy(&self, p: &Principal, meta: &RequestMeta, policy: SessionPolicy) -> Result<Timeouts> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let mut errs = ValidationErrors::default();
        if policy.idle_secs.is_some_and(|s| !IDLE_SECS.contains(&s)) {
            errs.push("idle_timeout_secs", format!("must be from {} to {}", IDLE_SECS.start(), IDLE_SECS.end()));
        }
        if policy.max_secs.is_some_and(|s| !MAX_SECS.contains(&s)) {
            errs.push("absolute_timeout_secs", format!("must be from {} to {}", MAX_SECS.start(), MAX_SECS.end()));
        }
        let t = self.timeouts(policy);
        if errs.is_empty() && t.idle_secs > t.max_secs {
            errs.push("idle_timeout_secs", "must not exceed the absolute timeout");
        }
        errs.into_result()?;
        let (org_id, now) = (p.org, self.clock().now());
        let e = by(
            p,
            meta,
            now,
            "organization.session_policy",
            ("organization", &org_id.to_string()),
            json!({ "idle_timeout_secs": policy.idle_secs, "absolute_timeout_secs": policy.max_secs }),
        );
        self.store()
            .write(move |c| {
                org::set_session_policy(c, org_id, policy)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(t)
    }

    /// `GET /organization/audit-reads`: whether every read of an incident,
    /// its evidence and indicators is audited.
    pub async fn audit_reads(&self, p: &Principal, meta: &RequestMeta) -> Result<bool> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org_id = p.org;
        Ok(self.store().read_now(move |c| org::audit_reads(c, org_id)).await?)
    }

    /// `PUT /organization/audit-reads`: every credential follows at once.
    pub async fn set_audit_reads(&self, p: &Principal, meta: &RequestMeta, on: bool) -> Result<bool> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let (org_id, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "organization.audit_reads", ("organization", &org_id.to_string()), json!({ "enabled": on }));
        self.store()
            .write(move |c| {
                org::set_audit_reads(c, org_id, on)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(on)
    }

    /// `GET /organization/ip-allowlist`: the ranges members and keys may
    /// call from (empty: anywhere).
    pub async fn ip_allowlist(&self, p: &Principal, meta: &RequestMeta) -> Result<AllowList> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org_id = p.org;
        Ok(self.store().read_now(move |c| org::ip_allowlist(c, org_id)).await?)
    }

    /// `PUT /organization/ip-allowlist`: every credential of the
    /// organisation follows at once. A list that leaves out the caller's
    /// own address is refused (409 `would_lock_out`) unless `confirm`.
    pub async fn set_ip_allowlist(&self, p: &Principal, meta: &RequestMeta, ranges: &[String], confirm: bool) -> Result<AllowList> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let mut errs = ValidationErrors::default();
        let list = AllowList::parse("cidrs", ranges, &mut errs);
        errs.into_result()?;
        if !confirm && !list.permits(meta.source_ip.as_deref().and_then(|a| a.parse().ok())) {
            return Err(AppError::Conflict {
                code: ErrorCode::WouldLockOut,
                detail: "the list leaves out the address of this request; send \"confirm\": true to apply it anyway".into(),
            });
        }
        let (org_id, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "organization.ip_allowlist", ("organization", &org_id.to_string()), json!({ "cidrs": list.ranges() }));
        let stored = list.clone();
        self.store()
            .write(move |c| {
                org::set_ip_allowlist(c, org_id, &stored)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(list)
    }
}
