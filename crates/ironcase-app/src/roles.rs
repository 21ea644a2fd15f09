//! Roles: the built-in ones, and an organisation's own (feature
//! `custom_roles`): a built-in base with permissions added (`grant`) and
//! taken away (`revoke`), and conditions (`own_or_assigned`: changes to
//! incidents only on those the holder reported or is assigned to;
//! `tlp_max`: incidents above it do not exist for the holder; `categories`:
//! nor do incidents of other categories). Nobody creates, changes or hands
//! out a role that grants or sees more than they do, nor one whose base
//! outranks theirs. A change reaches every session holding the
//! role at its next request, on every node (the session epoch).

use ironcase_domain::plan::Feature;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{Categories, Category, Grants, Permission, Role, RoleId, Sight, Tlp};
use ironcase_store::role::{self, CustomRoleRow};
use serde_json::json;

use crate::audit::by;
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// At most this many roles of its own per organisation.
pub const MAX_CUSTOM_ROLES: usize = 100;

/// A role as a client names it for a member, an invitation or an API key:
/// its resolution in the organisation.
#[derive(Debug, Clone)]
pub struct Assigned {
    /// The built-in role, or the custom role's base (the rank).
    pub role: Role,
    pub custom: Option<CustomRoleRow>,
}

impl Assigned {
    pub fn grants(&self) -> Grants {
        self.custom.as_ref().map_or_else(|| Grants::of(self.role), CustomRoleRow::grants)
    }

    /// The incidents its holder sees.
    pub fn sight(&self) -> Sight {
        self.custom.as_ref().map_or(Sight::ALL, CustomRoleRow::sight)
    }

    pub fn custom_id(&self) -> Option<RoleId> {
        self.custom.as_ref().map(|c| c.id)
    }
}

/// What a custom role is asked to be.
#[derive(Debug, Clone)]
pub struct RoleInput {
    pub name: String,
    pub base: Role,
    pub grant: Vec<Permission>,
    pub revoke: Vec<Permission>,
    pub own_or_assigned: bool,
    pub tlp_max: Option<Tlp>,
    /// The only categories of incidents its holders see (`None`: all).
    pub categories: Option<Vec<Category>>,
}

impl RoleInput {
    fn sight(&self) -> Sight {
        Sight { tlp_max: self.tlp_max, categories: self.categories.as_deref().map(Categories::of) }
    }
}

/// One role as `GET /roles` shows it.
#[derive(Debug, Clone)]
pub struct RoleView {
    pub builtin: Option<Role>,
    pub custom: Option<CustomRoleRow>,
    pub grants: Grants,
}

impl App {
    /// Whether `p` may hold out `grants` with base `base`, seeing `sight`:
    /// no higher rank, no permission `p` does not hold as widely, no
    /// incident `p` does not see.
    fn may_hand_out(p: &Principal, base: Role, grants: &Grants, sight: Sight) -> bool {
        p.role.covers(base) && p.grants.covers(grants) && p.sight.covers(sight)
    }

    /// The role a client named (`raw`: a built-in role's name, or one of
    /// the organisation's own by id or name), if `p` may hand it out;
    /// refused (403, audited) when it grants more than `p` holds. An
    /// organisation's own role needs the plan's `custom_roles`.
    pub(crate) async fn assignable(&self, p: &Principal, meta: &RequestMeta, raw: &str, perm: Permission) -> Result<Assigned> {
        self.assignable_as(p, meta, raw, perm, "role", Sight::ALL).await
    }

    /// [`App::assignable`], naming `field` in a validation error; the
    /// holder will see no more than `within` (an API key's own ceiling).
    pub(crate) async fn assignable_as(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        raw: &str,
        perm: Permission,
        field: &str,
        within: Sight,
    ) -> Result<Assigned> {
        let (org, r) = (p.org, raw.to_owned());
        let assigned = self.store().read_now(move |c| resolve(c, org, &r)).await?;
        let Some(assigned) = assigned else {
            let mut errs = ValidationErrors::default();
            errs.push(field, "is neither a built-in role nor one of the organisation's roles");
            return Err(errs.into());
        };
        if !Self::may_hand_out(p, assigned.role, &assigned.grants(), assigned.sight().and(within)) {
            return Err(self.deny(p, meta, perm, Some(("role", raw.to_owned()))).await);
        }
        Ok(assigned)
    }

    /// `GET /roles`: the built-in roles and the organisation's own, each
    /// with what it grants.
    pub async fn roles_list(&self, p: &Principal, meta: &RequestMeta) -> Result<Vec<RoleView>> {
        self.require(p, meta, Permission::MembersRead).await?;
        let org = p.org;
        let custom = self.store().read(move |c| role::list(c, org)).await?;
        let builtin = Role::ALL.iter().map(|r| RoleView { builtin: Some(*r), custom: None, grants: Grants::of(*r) });
        Ok(builtin.chain(custom.into_iter().map(|c| RoleView { builtin: None, grants: c.grants(), custom: Some(c) })).collect())
    }

    /// `GET /roles/{id}`: one of the organisation's own roles.
    pub async fn role_get(&self, p: &Principal, meta: &RequestMeta, id: RoleId) -> Result<CustomRoleRow> {
        self.require(p, meta, Permission::MembersRead).await?;
        let org = p.org;
        Ok(self.store().read(move |c| role::get(c, org, id)).await?)
    }

    /// Checks `input` as a role of `p`'s organisation: its fields, the plan,
    /// and that it grants no more than `p` holds.
    async fn checked_role(&self, p: &Principal, meta: &RequestMeta, input: &RoleInput) -> Result<(String, Grants)> {
        self.require(p, meta, Permission::MembersManage).await?;
        self.require_recent_proof(p)?;
        let org = p.org;
        if !self.store().read_now(move |c| crate::quotas::limits(c, org)).await?.has(Feature::CustomRoles) {
            return Err(AppError::FeatureNotInPlan("custom_roles"));
        }
        let mut errs = ValidationErrors::default();
        let name = validate::text("name", &input.name, 1, 64, &mut errs);
        if Role::parse(&name).is_some() || name.starts_with(RoleId::PREFIX) {
            errs.push("name", "must differ from the built-in roles' names and not look like a role id");
        }
        if input.grant.iter().any(|g| input.revoke.contains(g)) {
            errs.push("revoke", "must not name a permission that `grant` names");
        }
        match input.categories.as_ref().map(Vec::len) {
            Some(0) => errs.push("conditions.categories", "must name at least one category (leave it out for every category)"),
            Some(n) if n > Category::ALL.len() => errs.push("conditions.categories", "names a category more than once"),
            _ => {}
        }
        errs.into_result()?;
        let grants = Grants::custom(input.base, &input.grant, &input.revoke, input.own_or_assigned);
        if !Self::may_hand_out(p, input.base, &grants, input.sight()) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("role", name))).await);
        }
        Ok((name, grants))
    }

    /// `POST /roles`.
    pub async fn role_create(&self, p: &Principal, meta: &RequestMeta, input: RoleInput) -> Result<CustomRoleRow> {
        let (name, grants) = self.checked_role(p, meta, &input).await?;
        let now = self.clock().now();
        let row = CustomRoleRow {
            id: RoleId::new(),
            org: p.org,
            name,
            base: input.base,
            grant: input.grant,
            revoke: input.revoke,
            own_or_assigned: input.own_or_assigned,
            tlp_max: input.tlp_max,
            categories: input.categories.as_deref().map(Categories::of),
            created_at: now,
            updated_at: now,
        };
        let details = role_details(&row, &grants);
        let e = by(p, meta, now, "role.create", ("role", &row.id.to_string()), details);
        let r = row.clone();
        self.store()
            .write(move |c| {
                if role::list(c, r.org)?.len() >= MAX_CUSTOM_ROLES {
                    return Err(AppError::Conflict {
                        code: ErrorCode::Conflict,
                        detail: format!("an organisation has at most {MAX_CUSTOM_ROLES} roles of its own"),
                    });
                }
                name_free(c, &r)?;
                role::insert(c, &r)?;
                ironcase_store::audit::append(c, e)?;
                Ok(())
            })
            .await?;
        Ok(row)
    }

    /// `PATCH /roles/{id}`: the whole role again (what `POST` takes). The
    /// caller must hold what the role grants now and what it will grant.
    pub async fn role_update(&self, p: &Principal, meta: &RequestMeta, id: RoleId, input: RoleInput) -> Result<CustomRoleRow> {
        let (name, grants) = self.checked_role(p, meta, &input).await?;
        let org = p.org;
        let old = self.store().read(move |c| role::get(c, org, id)).await?;
        if !Self::may_hand_out(p, old.base, &old.grants(), old.sight()) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("role", id.to_string()))).await);
        }
        let now = self.clock().now();
        let row = CustomRoleRow {
            name,
            base: input.base,
            grant: input.grant,
            revoke: input.revoke,
            own_or_assigned: input.own_or_assigned,
            tlp_max: input.tlp_max,
            categories: input.categories.as_deref().map(Categories::of),
            updated_at: now,
            ..old
        };
        let e = by(p, meta, now, "role.update", ("role", &id.to_string()), role_details(&row, &grants));
        let r = row.clone();
        self.store()
            .write(move |c| {
                name_free(c, &r)?;
                role::update(c, &r)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(row)
    }

    /// `DELETE /roles/{id}`: only a role no member, live API key or pending
    /// invitation holds (409 `role_in_use`).
    pub async fn role_delete(&self, p: &Principal, meta: &RequestMeta, id: RoleId) -> Result<()> {
        self.require(p, meta, Permission::MembersManage).await?;
        self.require_recent_proof(p)?;
        let (org, now) = (p.org, self.clock().now());
        let old = self.store().read(move |c| role::get(c, org, id)).await?;
        if !Self::may_hand_out(p, old.base, &old.grants(), old.sight()) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("role", id.to_string()))).await);
        }
        let e = by(p, meta, now, "role.delete", ("role", &id.to_string()), json!({ "name": old.name }));
        self.store()
            .write(move |c| {
                if role::in_use(c, org, id, now)? {
                    return Err(AppError::Conflict {
                        code: ErrorCode::RoleInUse,
                        detail: "members, API keys or pending invitations hold this role: give them another first".into(),
                    });
                }
                role::delete(c, org, id)?;
                ironcase_store::audit::append(c, e)?;
                Ok(())
            })
            .await
    }
}

/// The role `raw` names in `org`: a built-in role's name, or one of the
/// organisation's own by id or name (which needs the plan's
/// `custom_roles`); `None` when there is no such role.
pub(crate) fn resolve(c: &ironcase_store::Conn, org: ironcase_domain::OrgId, raw: &str) -> Result<Option<Assigned>> {
    if let Some(role) = Role::parse(raw) {
        return Ok(Some(Assigned { role, custom: None }));
    }
    let found = match raw.parse::<RoleId>() {
        Ok(id) => match role::get(c, org, id) {
            Ok(r) => Some(r),
            Err(ironcase_store::StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => role::find_by_name(c, org, raw)?,
    };
    let Some(custom) = found else { return Ok(None) };
    if !crate::quotas::limits(c, org)?.has(Feature::CustomRoles) {
        return Err(AppError::FeatureNotInPlan("custom_roles"));
    }
    Ok(Some(Assigned { role: custom.base, custom: Some(custom) }))
}

/// Another role of the organisation has this name: 409.
fn name_free(c: &ironcase_store::Tx, r: &CustomRoleRow) -> Result<()> {
    match role::find_by_name(c, r.org, &r.name)? {
        Some(other) if other.id != r.id => {
            Err(AppError::Conflict { code: ErrorCode::Conflict, detail: "the organisation has a role of this name".into() })
        }
        _ => Ok(()),
    }
}

fn role_details(r: &CustomRoleRow, grants: &Grants) -> serde_json::Value {
    json!({
        "name": r.name,
        "base": r.base,
        "grant": r.grant,
        "revoke": r.revoke,
        "own_or_assigned": r.own_or_assigned,
        "tlp_max": r.tlp_max,
        "categories": r.categories.map(Categories::list),
        "permissions": grants.list().map(|(p, _)| p).collect::<Vec<_>>(),
    })
}
