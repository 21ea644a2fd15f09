//! Platform operations: organisations (operator only) and the first start.

use std::path::{Path, PathBuf};

use ironcase_domain::plan::{OrgStatus, Overrides, PlanName};
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{OrgId, Role, Timestamp, UserId};
use ironcase_store::audit::{self, PLATFORM};
use ironcase_store::org::{self, OrgRow, UserRow};
use serde_json::json;

use crate::audit::by;
use crate::auth::{hash_password, new_user_password};
use crate::crypto;
use crate::page::{Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// The bootstrap organisation's plan: a self-hosted install meets no surprise limits.
pub const DEFAULT_PLAN: &str = "enterprise";

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub owner_email: String,
    pub owner_name: String,
    pub owner_password: Option<String>,
    /// Without it, the configured default plan.
    pub plan: Option<PlanName>,
    pub overrides: Option<Overrides>,
    /// The organisation's parent (an MSSP, say), if any.
    pub parent: Option<OrgId>,
}

impl App {
    fn require_operator(&self, p: &Principal) -> Result<()> {
        if p.is_operator {
            Ok(())
        } else {
            Err(AppError::Forbidden("platform operators only".into()))
        }
    }

    pub(crate) async fn operator_only(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        if let Err(e) = self.require_operator(p) {
            let mut entry = by(p, meta, self.clock().now(), "access.denied", ("", ""), json!({ "permission": "platform:operator" }));
            entry.outcome = "denied".into();
            entry.resource_type = Some("organization".into());
            entry.resource_id = None;
            self.write_audit(entry).await?;
            return Err(e);
        }
        Ok(())
    }

    /// An organisation by its slug, for an operator (`None`: no such one).
    pub async fn org_by_slug(&self, p: &Principal, meta: &RequestMeta, slug: &str) -> Result<Option<OrgRow>> {
        self.operator_only(p, meta).await?;
        let slug = slug.to_owned();
        Ok(self.store().read_now(move |c| org::find_org_by_slug(c, &slug)).await?)
    }

    /// An organisation with its plan and that plan's overrides, for an
    /// operator.
    pub async fn org_plan(&self, p: &Principal, meta: &RequestMeta, id: OrgId) -> Result<(OrgRow, PlanName, Overrides)> {
        self.operator_only(p, meta).await?;
        let (row, (plan, overrides, _)) =
            self.store().read_now(move |c| Ok::<_, AppError>((org::get_org(c, id)?, org::plan_of(c, id)?))).await?;
        let plan = PlanName::parse(&plan).ok_or_else(|| AppError::Internal(format!("plan {plan}")))?;
        let overrides = serde_json::from_str(&overrides).map_err(|e| AppError::Internal(format!("overrides: {e}")))?;
        Ok((row, plan, overrides))
    }

    pub async fn org_create(&self, p: &Principal, meta: &RequestMeta, input: NewOrganization) -> Result<OrgRow> {
        self.operator_only(p, meta).await?;
        let mut errs = ValidationErrors::default();
        let name = validate::text("name", &input.name, 1, 200, &mut errs);
        let slug = validate::slug("slug", &input.slug, &mut errs);
        let email = validate::email("owner.email", &input.owner_email, &mut errs);
        let owner_name = validate::text("owner.name", &input.owner_name, 1, 200, &mut errs);
        let existing = {
            let email = email.clone();
            self.store().read(move |c| org::find_user_by_email(c, &email)).await?
        };
        let hash = new_user_password(existing.is_some(), input.owner_password.as_deref(), "owner.password", &mut errs).await?;
        errs.into_result()?;
        let now = self.clock().now();
        let plan = input.plan.unwrap_or(self.settings().default_plan);
        let overrides = input.overrides.unwrap_or_default();
        let overrides_json = serde_json::to_string(&overrides).map_err(|e| AppError::Internal(e.to_string()))?;
        let row = OrgRow {
            id: OrgId::new(),
            slug,
            name,
            plan: plan.as_str().into(),
            status: "active".into(),
            parent_id: input.parent,
            created_at: now,
        };
        let new_user = hash.map(|h| UserRow {
            id: UserId::new(),
            email: email.clone(),
            name: owner_name,
            password_hash: h,
            is_operator: false,
            created_at: now,
        });
        let owner_id = existing.as_ref().map(|u| u.id).or(new_user.as_ref().map(|u| u.id)).ok_or(AppError::Internal("no owner".into()))?;
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                if org::find_org_by_slug(c, &row.slug)?.is_some() {
                    return Err(AppError::Conflict { code: crate::ErrorCode::SlugTaken, detail: format!("the slug {} is taken", row.slug) });
                }
                if let Some(parent) = row.parent_id {
                    if let Err(ironcase_store::StoreError::NotFound) = org::get_org(c, parent) {
                        return Err(ValidationErrors::one("parent_id", "no such organization").into());
                    }
                }
                org::insert_org(c, &row)?;
                org::set_plan(c, row.id, &row.plan, &overrides_json)?;
                if let Some(u) = &new_user {
                    org::insert_user(c, u)?;
                }
                org::insert_membership(c, row.id, owner_id, Role::Owner, None, now)?;
                let details = json!({ "slug": row.slug, "name": row.name, "plan": row.plan, "overrides": overrides, "owner_id": owner_id, "owner_email": email });
                let mut platform = by(&p2, &meta2, now, "organization.create", ("organization", &row.id.to_string()), details.clone());
                platform.tenant = PLATFORM.into();
                audit::append(c, platform)?;
                let mut own = by(&p2, &meta2, now, "organization.create", ("organization", &row.id.to_string()), details);
                own.tenant = row.id.to_string();
                audit::append(c, own)?;
                Ok(row)
            })
            .await
    }

    /// Changes an organisation's plan and overrides (operators only).
    /// Downgrading below current use is allowed: new creates wait until use fits.
    pub async fn org_set_plan(&self, p: &Principal, meta: &RequestMeta, id: OrgId, plan: PlanName, overrides: Overrides) -> Result<OrgRow> {
        self.operator_only(p, meta).await?;
        self.require_recent_proof(p)?;
        let json = serde_json::to_string(&overrides).map_err(|e| AppError::Internal(e.to_string()))?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let before = org::plan_of(c, id)?;
                org::set_plan(c, id, plan.as_str(), &json)?;
                let details = json!({ "from": before.0, "to": plan, "overrides": overrides });
                for tenant in [PLATFORM.to_owned(), id.to_string()] {
                    let mut e = by(&p2, &meta2, now, "organization.plan", ("organization", &id.to_string()), details.clone());
                    e.tenant = tenant;
                    audit::append(c, e)?;
                }
                Ok(org::get_org(c, id)?)
            })
            .await
    }

    /// Changes an organisation's plan, and makes this node read it afresh.
    pub async fn org_change_plan(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        id: OrgId,
        plan: PlanName,
        overrides: Overrides,
    ) -> Result<OrgRow> {
        let row = self.org_set_plan(p, meta, id, plan, overrides).await?;
        self.inner.api_limits.forget_plan(id);
        Ok(row)
    }

    /// Suspends, deactivates or reactivates an organisation (operators only).
    pub async fn org_set_status(&self, p: &Principal, meta: &RequestMeta, id: OrgId, status: OrgStatus) -> Result<OrgRow> {
        self.operator_only(p, meta).await?;
        self.require_recent_proof(p)?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let before = org::get_org(c, id)?;
                if p2.org == id && status != OrgStatus::Active {
                    return Err(AppError::Conflict {
                        code: crate::ErrorCode::OwnOrganization,
                        detail: "an operator cannot suspend the organization they act from".into(),
                    });
                }
                org::set_status(c, id, status.as_str())?;
                let details = json!({ "from": before.status, "to": status });
                for tenant in [PLATFORM.to_owned(), id.to_string()] {
                    let mut e = by(&p2, &meta2, now, "organization.status", ("organization", &id.to_string()), details.clone());
                    e.tenant = tenant;
                    audit::append(c, e)?;
                }
                Ok(org::get_org(c, id)?)
            })
            .await
    }

    /// Every organisation, oldest first, after `cursor` (a keyset: created, id).
    pub async fn org_list(&self, p: &Principal, meta: &RequestMeta, cursor: Option<(i64, OrgId)>, size: PageSize) -> Result<Page<OrgRow>> {
        self.operator_only(p, meta).await?;
        let rows = self.store().read(move |c| org::list_orgs(c, cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, org_cursor))
    }
}

pub(crate) fn org_cursor(o: &OrgRow) -> String {
    crate::page::keyset(o.created_at.0, o.id)
}

pub(crate) async fn bootstrap(app: &App, data_dir: &Path) -> Result<Option<PathBuf>> {
    {
        if app.store().read(org::count_orgs).await? > 0 {
            return Ok(None);
        }
    }
    let password = crypto::random_token(18);
    let hash = hash_password(password.clone()).await?;
    let now: Timestamp = app.clock().now();
    let o = OrgRow {
        id: OrgId::new(),
        slug: "default".into(),
        name: "Default".into(),
        plan: DEFAULT_PLAN.into(),
        status: "active".into(),
        parent_id: None,
        created_at: now,
    };
    let u = UserRow {
        id: UserId::new(),
        email: "admin@localhost".into(),
        name: "Administrator".into(),
        password_hash: hash,
        is_operator: true,
        created_at: now,
    };
    let created = app
        .store()
        .write(move |c| {
            if org::count_orgs(c)? > 0 {
                return Ok(false);
            }
            org::insert_org(c, &o)?;
            org::insert_user(c, &u)?;
            org::insert_membership(c, o.id, u.id, Role::Owner, None, now)?;
            let mut e = audit::NewEntry {
                tenant: PLATFORM.into(),
                at: now,
                actor_id: None,
                actor_kind: "system".into(),
                action: "platform.bootstrap".into(),
                resource_type: Some("organization".into()),
                resource_id: Some(o.id.to_string()),
                outcome: "success".into(),
                details: json!({ "organization": o.slug, "owner_email": u.email }),
                ..Default::default()
            };
            audit::append(c, e.clone())?;
            e.tenant = o.id.to_string();
            audit::append(c, e)?;
            Ok::<_, AppError>(true)
        })
        .await?;
    if !created {
        return Ok(None);
    }
    let path = data_dir.join("initial-admin-password");
    let _ = std::fs::remove_file(&path);
    crypto::write_secret_file(&path, format!("{password}\n").as_bytes())
        .map_err(|e| AppError::Internal(format!("writing {}: {e}", path.display())))?;
    Ok(Some(path))
}

/// Bulk loading for benchmarks and demos (`ironcase dev seed`).
impl App {
    /// The organisation with this slug and a member to act as reporter (its
    /// first owner).
    pub async fn seed_target(&self, slug: &str) -> Result<(OrgId, UserId)> {
        let slug = slug.to_owned();
        self.store()
            .read(move |c| {
                let o = org::find_org_by_slug(c, &slug)?.ok_or(AppError::NotFound)?;
                // The first owner is among the first members: an organisation is made with its owner.
                let owner =
                    org::list_members(c, o.id, None, 1_000)?.into_iter().find(|m| m.role == Role::Owner).ok_or(AppError::NotFound)?;
                Ok((o.id, owner.user_id))
            })
            .await
    }

    /// Loads one batch of whole incidents in one transaction.
    pub async fn seed_batch(&self, org: OrgId, by: UserId, mut items: Vec<ironcase_store::bulk::SeedIncident>) -> Result<()> {
        Ok(self.store().write(move |c| ironcase_store::bulk::seed_incidents(c, org, &by.to_string(), &mut items)).await?)
    }

    /// Appends `n` audit entries (numbered from `from`) to the
    /// organisation's chain in one write: a long log for the audit
    /// benchmarks.
    pub async fn seed_audit(&self, org: OrgId, by: UserId, from: u64, n: u64) -> Result<()> {
        let now = self.clock().now();
        self.store()
            .write(move |c| {
                for i in from..from + n {
                    let entry = audit::NewEntry {
                        tenant: org.to_string(),
                        at: ironcase_domain::Timestamp(now.0 + i as i64),
                        actor_id: Some(by.to_string()),
                        actor_kind: "cli".to_owned(),
                        action: "dev.seed.entry".to_owned(),
                        resource_type: Some("incident".to_owned()),
                        resource_id: Some(format!("INC-{i}")),
                        outcome: "success".to_owned(),
                        request_id: None,
                        source_ip: Some("192.0.2.1".to_owned()),
                        user_agent: Some("ironcase dev seed".to_owned()),
                        details: json!({ "n": i }),
                    };
                    audit::append(c, entry)?;
                }
                Ok::<_, AppError>(())
            })
            .await
    }

    /// Audits a finished load.
    pub async fn seed_finished(&self, org: OrgId, by: UserId, incidents: u64) -> Result<()> {
        let now = self.clock().now();
        let entry = audit::NewEntry {
            tenant: org.to_string(),
            at: now,
            actor_id: Some(by.to_string()),
            actor_kind: "cli".to_owned(),
            action: "dev.seed".to_owned(),
            resource_type: Some("organization".to_owned()),
            resource_id: Some(org.to_string()),
            outcome: "success".to_owned(),
            request_id: None,
            source_ip: None,
            user_agent: None,
            details: json!({ "incidents": incidents }),
        };
        self.store().write(move |c| Ok::<_, AppError>(audit::append(c, entry)?)).await?;
        Ok(self.store().analyze().await?)
    }
}
