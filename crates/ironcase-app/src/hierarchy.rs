//! Organisation hierarchy: a parent's owners and admins list its children and,
//! where a child has granted it, read (never write) the child's incidents,
//! evidence metadata and audit log. Each such read is audited in both
//! organisations. Without the grant, the child's data does not exist for the
//! parent (404), as for any other tenant.

use ironcase_domain::{OrgId, Permission, Role};
use ironcase_store::audit::{self as store_audit, EntryRow, Filter};
use ironcase_store::org::{self, OrgRow};
use serde_json::json;

use crate::audit::{audit_page, by};
use crate::page::{Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

impl App {
    /// `PUT /organization/parent-access`: lets the parent read, or stops it.
    pub async fn parent_access_set(&self, p: &Principal, meta: &RequestMeta, granted: bool) -> Result<bool> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let o = org::get_org(c, p2.org)?;
                let Some(parent) = o.parent_id else {
                    return Err(AppError::Conflict { code: crate::ErrorCode::NoParent, detail: "this organization has no parent".into() });
                };
                org::set_parent_access(c, p2.org, granted)?;
                let details = json!({ "parent_id": parent, "granted": granted });
                store_audit::append(c, by(&p2, &meta2, now, "organization.parent_access", ("organization", &p2.org.to_string()), details))?;
                Ok(granted)
            })
            .await
    }

    /// Whether this organisation lets its parent read; `None` when it has no
    /// parent.
    pub async fn parent_access(&self, p: &Principal, meta: &RequestMeta) -> Result<Option<bool>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let id = p.org;
        self.store()
            .read_now(move |c| match org::get_org(c, id)?.parent_id {
                None => Ok(None),
                Some(_) => Ok(Some(org::parent_access(c, id)?)),
            })
            .await
    }

    /// `GET /organization/children`: with whether each lets the parent read,
    /// oldest first, after `cursor` (a keyset: created, id).
    pub async fn children(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, OrgId)>,
        size: PageSize,
    ) -> Result<Page<(OrgRow, bool)>> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let parent = p.org;
        let rows = self.store().read(move |c| org::children(c, parent, cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, |(last, _)| crate::admin::org_cursor(last)))
    }

    /// Who `p` (an owner or admin of the parent) is when reading `child`: a
    /// viewer there. Records the read (`what`) in both organisations.
    pub async fn as_parent_of(&self, p: &Principal, meta: &RequestMeta, child: OrgId, what: &str) -> Result<Principal> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        let parent = p.org;
        let allowed = self
            .store()
            .read_now(move |c| {
                let o = match org::get_org(c, child) {
                    Ok(o) => o,
                    Err(ironcase_store::StoreError::NotFound) => return Ok(false),
                    Err(e) => return Err(AppError::from(e)),
                };
                Ok(o.parent_id == Some(parent) && org::parent_access(c, child)?)
            })
            .await?;
        if !allowed {
            return Err(AppError::NotFound);
        }
        let now = self.clock().now();
        let (p2, meta2, what) = (p.clone(), meta.clone(), what.to_owned());
        self.store()
            .write(move |c| {
                let details = json!({ "parent_id": parent, "child_id": child, "read": what });
                store_audit::append(
                    c,
                    by(&p2, &meta2, now, "organization.child_read", ("organization", &child.to_string()), details.clone()),
                )?;
                let mut there = by(&p2, &meta2, now, "organization.child_read", ("organization", &child.to_string()), details);
                there.tenant = child.to_string();
                store_audit::append(c, there)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(Principal {
            org: child,
            actor: p.actor,
            role: Role::Viewer,
            grants: ironcase_domain::Grants::of(Role::Viewer),
            custom_role: None,
            session: None,
            is_operator: false,
            sight: p.sight,
            rate_per_minute: p.rate_per_minute,
            enrolling: p.enrolling,
            authenticated_at: None,
            networks: p.networks.clone(),
            signing_key: p.signing_key,
            signed: p.signed,
            // Each read is audited as `organization.child_read`, in both logs.
            audit_reads: false,
        })
    }

    /// The child's audit log, for its parent: newest first, before `before`.
    pub async fn child_audit(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        child: OrgId,
        before: Option<i64>,
        size: PageSize,
    ) -> Result<Page<EntryRow>> {
        let as_child = self.as_parent_of(p, meta, child, "audit").await?;
        let (tenant, keys) = (as_child.org.to_string(), self.inner.personal.clone());
        self.store().read(move |c| audit_page(&keys, c, &tenant, &Filter::default(), before, size)).await
    }
}
