//! Audit entries for the use cases, and the audit read/verify operations.

use ironcase_domain::{Permission, Timestamp};
use ironcase_store::audit::{self as store_audit, EntryRow, Filter, NewEntry, Verification};
use serde_json::json;

use crate::page::{Page, PageSize};
use crate::personal::PersonalKeys;
use crate::{App, AppError, Principal, RequestMeta, Result};

/// An entry for something `p` did successfully.
pub(crate) fn by(
    p: &Principal,
    meta: &RequestMeta,
    at: Timestamp,
    action: &str,
    resource: (&str, &str),
    details: serde_json::Value,
) -> NewEntry {
    NewEntry {
        tenant: p.org.to_string(),
        at,
        actor_id: Some(p.actor_id()),
        actor_kind: p.actor_kind().to_owned(),
        action: action.to_owned(),
        resource_type: Some(resource.0.to_owned()),
        resource_id: Some(resource.1.to_owned()),
        outcome: "success".to_owned(),
        request_id: meta.request_id.clone(),
        source_ip: meta.source_ip.clone(),
        user_agent: meta.user_agent.clone(),
        details,
    }
}

impl App {
    /// Records a read of `resource` when the organisation audits reads
    /// (`audit_reads`). A read that cannot be recorded is not served.
    pub(crate) async fn audit_read(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        action: &str,
        resource: (&str, &str),
        details: serde_json::Value,
    ) -> Result<()> {
        if !p.audit_reads {
            return Ok(());
        }
        self.write_audit(by(p, meta, self.clock().now(), action, resource, details)).await
    }
}

/// An entry with no principal (logins, refreshes): the caller fills in the rest.
pub(crate) fn anonymous(
    tenant: &str,
    meta: &RequestMeta,
    at: Timestamp,
    action: &str,
    outcome: &str,
    details: serde_json::Value,
) -> NewEntry {
    NewEntry {
        tenant: tenant.to_owned(),
        at,
        actor_id: None,
        actor_kind: "anonymous".to_owned(),
        action: action.to_owned(),
        resource_type: None,
        resource_id: None,
        outcome: outcome.to_owned(),
        request_id: meta.request_id.clone(),
        source_ip: meta.source_ip.clone(),
        user_agent: meta.user_agent.clone(),
        details,
    }
}

/// An entry for something the server did by itself (a job).
pub(crate) fn system(tenant: &str, at: Timestamp, action: &str, resource: (&str, &str), details: serde_json::Value) -> NewEntry {
    NewEntry {
        tenant: tenant.to_owned(),
        at,
        actor_id: None,
        actor_kind: "system".to_owned(),
        action: action.to_owned(),
        resource_type: Some(resource.0.to_owned()),
        resource_id: Some(resource.1.to_owned()),
        outcome: "success".to_owned(),
        request_id: None,
        source_ip: None,
        user_agent: None,
        details,
    }
}

/// Where an offline command finds the data.
pub enum Offline<'a> {
    /// The embedded database, opened read-only (a server may be running).
    Sqlite(&'a std::path::Path),
    /// The PostgreSQL database of the nodes (its URL).
    Postgres(&'a str),
}

/// `ironcase audit verify`: every chain in the store (each organisation's
/// and the platform's) recomputed, offline, without an [`App`].
pub async fn verify_offline(data: Offline<'_>) -> Result<Vec<Verification>> {
    match data {
        Offline::Postgres(url) => {
            // Reading a long chain may take a while: an hour at most.
            let store = ironcase_store::Store::open_postgres_within(url, std::time::Duration::from_secs(3600)).await?;
            let lines = store.read(verify_all).await;
            store.close().await;
            lines
        }
        Offline::Sqlite(path) => verify_all(&ironcase_store::Conn::Sqlite(&ironcase_store::Store::open_readonly(path)?)),
    }
}

fn verify_all(c: &ironcase_store::Conn) -> Result<Vec<Verification>> {
    let mut out = Vec::new();
    for tenant in store_audit::tenants(c)? {
        out.push(store_audit::verify(c, &tenant)?);
    }
    Ok(out)
}

/// One page of entries, newest first: entries before `before`, with their
/// personal data where it was not erased.
pub(crate) fn audit_page(
    keys: &PersonalKeys,
    c: &ironcase_store::Conn,
    tenant: &str,
    f: &Filter,
    before: Option<i64>,
    size: PageSize,
) -> Result<Page<EntryRow>> {
    let mut f = f.clone();
    f.source_ip_tag = f.source_ip.as_deref().map(|ip| keys.ip_tag(tenant, ip));
    let mut rows = store_audit::list(c, tenant, &f, before, size.fetch())?;
    keys.reveal(c, tenant, &mut rows)?;
    Ok(Page::cut(rows, size, |last| last.seq.to_string()))
}

impl App {
    /// Records that `p` was refused `perm` (on `resource`), and returns the
    /// error to answer with. The entry commits on its own: the refused change
    /// never happened.
    pub(crate) async fn deny(&self, p: &Principal, meta: &RequestMeta, perm: Permission, resource: Option<(&str, String)>) -> AppError {
        let mut e = by(p, meta, self.clock().now(), "access.denied", ("", ""), json!({ "permission": perm.as_str() }));
        e.outcome = "denied".to_owned();
        e.resource_type = resource.as_ref().map(|r| r.0.to_owned());
        e.resource_id = resource.map(|r| r.1);
        let written: Result<i64> = self.store().write(move |c| Ok(store_audit::append(c, e)?)).await;
        if let Err(err) = written {
            tracing::error!(error = %err, "could not audit a denial");
        }
        AppError::Forbidden(format!("missing permission {perm}"))
    }

    /// Fails with an audited 403 unless `p` holds `perm`.
    pub(crate) async fn require(&self, p: &Principal, meta: &RequestMeta, perm: Permission) -> Result<()> {
        if p.enrolling {
            return Err(crate::mfa::enrollment_required());
        }
        if p.has(perm) {
            Ok(())
        } else {
            Err(self.deny(p, meta, perm, None).await)
        }
    }

    /// `GET /audit`: newest first, `before` is the cursor (a sequence number).
    pub async fn audit_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        f: &Filter,
        before: Option<i64>,
        size: PageSize,
    ) -> Result<Page<EntryRow>> {
        self.require(p, meta, Permission::AuditRead).await?;
        let (tenant, f, keys) = (p.org.to_string(), f.clone(), self.inner.personal.clone());
        self.store().read(move |c| audit_page(&keys, c, &tenant, &f, before, size)).await
    }

    pub async fn audit_verify(&self, p: &Principal, meta: &RequestMeta) -> Result<Verification> {
        self.require(p, meta, Permission::AuditRead).await?;
        let tenant = p.org.to_string();
        Ok(self.store().read(move |c| store_audit::verify(c, &tenant)).await?)
    }
}
