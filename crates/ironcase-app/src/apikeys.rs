//! API keys: created with a role no higher than the creator's, shown once,
//! stored as a hash, revocable and rotatable.

use ironcase_domain::net::AllowList;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{ApiKeyId, Grants, Permission, Sight, Timestamp, Tlp};
use ironcase_store::apikey::{self, ApiKeyRow};
use ironcase_store::audit;
use serde_json::json;

use crate::audit::by;
use crate::auth::new_api_key;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// The most a key's own rate limit may say (requests per minute).
pub const MAX_RATE_PER_MINUTE: u32 = 1_000_000;

/// A key together with its secret, which exists only in this answer.
pub struct CreatedKey {
    pub row: ApiKeyRow,
    pub key: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey").field("row", &self.row).finish_non_exhaustive()
    }
}

/// What a new API key is asked to be.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    /// A built-in role, or one of the organisation's own (id or name).
    pub role: String,
    pub expires_at: Option<Timestamp>,
    /// The most restricted TLP the key may see.
    pub tlp_max: Option<Tlp>,
    /// Requests per minute, below the plan's.
    pub rate_per_minute: Option<u32>,
    /// The ranges the key may call from (within the organisation's).
    pub allowed_cidrs: Vec<String>,
    /// An Ed25519 public key (base64): sensitive requests must be signed.
    pub public_key: Option<String>,
}

/// What `PATCH /api-keys/{id}` changes; `None`: unchanged.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub allowed_cidrs: Option<Vec<String>>,
    /// `Some(None)`: no public key any more.
    pub public_key: Option<Option<String>>,
}

/// Whether `p` may rotate or change the key `k`: it grants and sees no
/// more than `p` (a rotation hands out its new secret).
fn may_act_on(c: &ironcase_store::Tx, p: &Principal, k: &ApiKeyRow) -> Result<bool> {
    let own = Sight { tlp_max: k.tlp_max, categories: None };
    let (grants, sight) = match k.custom_role {
        Some(r) => {
            let role = ironcase_store::role::get(c, k.org, r)?;
            (role.grants(), role.sight().and(own))
        }
        None => (Grants::of(k.role), own),
    };
    Ok(p.role.covers(k.role) && p.grants.covers(&grants) && p.sight.covers(sight))
}

impl App {
    pub async fn apikey_create(&self, p: &Principal, meta: &RequestMeta, input: NewApiKey) -> Result<CreatedKey> {
        let NewApiKey { name, role, expires_at, tlp_max, rate_per_minute, allowed_cidrs, public_key } = input;
        let name = name.as_str();
        self.require(p, meta, Permission::ApiKeysManage).await?;
        self.require_recent_proof(p)?;
        let org_id = p.org;
        if !self.store().read_now(move |c| crate::quotas::limits(c, org_id)).await?.has(ironcase_domain::plan::Feature::ApiAccess) {
            return Err(AppError::FeatureNotInPlan("api_access"));
        }
        // A key never sees more than its creator.
        let tlp_max = match (tlp_max, p.sight.tlp_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let within = Sight { tlp_max, categories: None };
        let assigned = self.assignable_as(p, meta, &role, Permission::ApiKeysManage, "role", within).await?;
        let now = self.clock().now();
        let mut errs = ValidationErrors::default();
        let name = validate::text("name", name, 1, 200, &mut errs);
        if expires_at.is_some_and(|e| e <= now) {
            errs.push("expires_at", "must be in the future");
        }
        if rate_per_minute.is_some_and(|r| !(1..=MAX_RATE_PER_MINUTE).contains(&r)) {
            errs.push("rate_per_minute", format!("must be from 1 to {MAX_RATE_PER_MINUTE}"));
        }
        let allowed_cidrs = AllowList::parse("allowed_cidrs", &allowed_cidrs, &mut errs);
        let public_key = public_key.and_then(|k| crate::signature::checked_public_key(&k, &mut errs));
        errs.into_result()?;
        let (key, key_hash, key_prefix) = new_api_key();
        let row = ApiKeyRow {
            id: ApiKeyId::new(),
            org: p.org,
            name,
            role: assigned.role,
            custom_role: assigned.custom_id(),
            key_hash,
            key_prefix,
            created_by: p.user_id(),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
            tlp_max,
            rate_per_minute,
            allowed_cidrs,
            public_key,
        };
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                apikey::insert(c, &row)?;
                let details =
                    json!({ "name": row.name, "role": row.role, "custom_role": row.custom_role, "expires_at": row.expires_at, "allowed_cidrs": row.allowed_cidrs.ranges() });
                audit::append(c, by(&p2, &meta2, now, "apikey.create", ("api_key", &row.id.to_string()), details))?;
                Ok::<_, AppError>(row)
            })
            .await?;
        Ok(CreatedKey { row, key })
    }

    /// Live keys, oldest first, after `cursor` (a keyset: created, id).
    pub async fn apikey_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, ApiKeyId)>,
        size: PageSize,
    ) -> Result<Page<ApiKeyRow>> {
        self.require(p, meta, Permission::ApiKeysManage).await?;
        let org = p.org;
        let rows = self.store().read(move |c| apikey::list(c, org, cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| keyset(last.created_at.0, last.id)))
    }

    pub async fn apikey_revoke(&self, p: &Principal, meta: &RequestMeta, id: ApiKeyId) -> Result<()> {
        self.require(p, meta, Permission::ApiKeysManage).await?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let row = apikey::get(c, p2.org, id)?;
                apikey::revoke(c, p2.org, id, now)?;
                let details = json!({ "name": row.name });
                audit::append(c, by(&p2, &meta2, now, "apikey.revoke", ("api_key", &id.to_string()), details))?;
                Ok(())
            })
            .await
    }

    /// Replaces a key's secret: the old one stops working at once.
    pub async fn apikey_rotate(&self, p: &Principal, meta: &RequestMeta, id: ApiKeyId) -> Result<CreatedKey> {
        self.require(p, meta, Permission::ApiKeysManage).await?;
        self.require_recent_proof(p)?;
        let now = self.clock().now();
        let (key, key_hash, key_prefix) = new_api_key();
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                {
                    let old = apikey::get(c, p2.org, id)?;
                    if !may_act_on(c, &p2, &old)? {
                        return Err(AppError::Forbidden(format!("missing permission {}", Permission::ApiKeysManage)));
                    }
                    // Same id, name, role and expiry; a new secret.
                    apikey::replace_secret(c, p2.org, id, &key_hash, &key_prefix)?;
                    audit::append(c, by(&p2, &meta2, now, "apikey.rotate", ("api_key", &id.to_string()), json!({ "name": old.name })))?;
                    Ok(ApiKeyRow { key_hash, key_prefix, ..old })
                }
            })
            .await;
        match row {
            Ok(row) => Ok(CreatedKey { row, key }),
            Err(AppError::Forbidden(_)) => Err(self.deny(p, meta, Permission::ApiKeysManage, Some(("api_key", id.to_string()))).await),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /api-keys/{id}`: renames a key or changes the ranges it may
    /// call from (a key of a higher role than the caller's is not theirs to
    /// change).
    pub async fn apikey_update(&self, p: &Principal, meta: &RequestMeta, id: ApiKeyId, change: KeyChange) -> Result<ApiKeyRow> {
        self.require(p, meta, Permission::ApiKeysManage).await?;
        self.require_recent_proof(p)?;
        let mut errs = ValidationErrors::default();
        let name = change.name.as_deref().map(|n| validate::text("name", n, 1, 200, &mut errs));
        let cidrs = change.allowed_cidrs.as_deref().map(|c| AllowList::parse("allowed_cidrs", c, &mut errs));
        let public_key = change.public_key.map(|k| k.and_then(|k| crate::signature::checked_public_key(&k, &mut errs)));
        errs.into_result()?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                let old = apikey::get(c, p2.org, id)?;
                if !may_act_on(c, &p2, &old)? {
                    return Err(AppError::Forbidden(format!("missing permission {}", Permission::ApiKeysManage)));
                }
                let row = ApiKeyRow {
                    name: name.unwrap_or(old.name),
                    allowed_cidrs: cidrs.unwrap_or(old.allowed_cidrs),
                    public_key: public_key.unwrap_or(old.public_key),
                    ..old
                };
                apikey::update(c, &row)?;
                let details = json!({ "name": row.name, "allowed_cidrs": row.allowed_cidrs.ranges(), "public_key": row.public_key });
                audit::append(c, by(&p2, &meta2, now, "apikey.update", ("api_key", &id.to_string()), details))?;
                Ok(row)
            })
            .await;
        match row {
            Err(AppError::Forbidden(_)) => Err(self.deny(p, meta, Permission::ApiKeysManage, Some(("api_key", id.to_string()))).await),
            other => other,
        }
    }
}
