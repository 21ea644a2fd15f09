//! An organisation's own roles: a built-in base with permissions added and
//! taken away, and conditions. What they grant is computed once
//! ([`CustomRoleRow::grants`]) and checked in memory.

use ironcase_domain::{Categories, Category, Grants, OrgId, Permission, Role, RoleId, Sight, Timestamp, Tlp};

use crate::{exec, params, parse_col, parse_id, query_map, query_one, query_opt, Conn, Result, Row, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRoleRow {
    pub id: RoleId,
    pub org: OrgId,
    pub name: String,
    pub base: Role,
    pub grant: Vec<Permission>,
    pub revoke: Vec<Permission>,
    /// Changes to incidents only on those the holder reported or is
    /// assigned to.
    pub own_or_assigned: bool,
    /// The most restricted TLP the holder may see.
    pub tlp_max: Option<Tlp>,
    /// The only categories of incidents the holder sees (`None`: all).
    pub categories: Option<Categories>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CustomRoleRow {
    pub fn grants(&self) -> Grants {
        Grants::custom(self.base, &self.grant, &self.revoke, self.own_or_assigned)
    }

    /// The incidents the holder sees.
    pub fn sight(&self) -> Sight {
        Sight { tlp_max: self.tlp_max, categories: self.categories }
    }
}

fn categories(raw: &str) -> Result<Categories> {
    let list = raw.split_ascii_whitespace().map(|c| Category::parse(c).ok_or_else(|| StoreError::Corrupt(format!("category {c}"))));
    Ok(Categories::of(&list.collect::<Result<Vec<_>>>()?))
}

fn stored_categories(c: Option<Categories>) -> Option<String> {
    c.map(|set| set.list().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" "))
}

fn permissions(raw: &str) -> Result<Vec<Permission>> {
    raw.split_ascii_whitespace().map(|p| Permission::parse(p).ok_or_else(|| StoreError::Corrupt(format!("permission {p}")))).collect()
}

fn stored(ps: &[Permission]) -> String {
    ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")
}

/// A row read with [`JOINED_COLS`] from `custom_role cr`.
fn role(r: &Row<'_, '_>) -> Result<CustomRoleRow> {
    joined(r)?.ok_or_else(|| StoreError::Corrupt("custom_role without an id".into()))
}

/// The columns [`joined`] reads, for a query of (or joining) `custom_role cr`.
pub(crate) const JOINED_COLS: &str = "cr.role_id as cr_id, cr.organization_id as cr_org, cr.name as cr_name, cr.base as cr_base, \
     cr.grants as cr_grants, cr.revokes as cr_revokes, cr.own_or_assigned as cr_own, cr.tlp_max as cr_tlp, cr.categories as cr_categories, \
     cr.created_at as cr_created, cr.updated_at as cr_updated";

/// The custom role a query joined (`left join custom_role cr`, read with
/// [`JOINED_COLS`]), if the row has one.
pub(crate) fn joined(r: &Row<'_, '_>) -> Result<Option<CustomRoleRow>> {
    let Some(id) = crate::parse_opt_id(r, "cr_id")? else { return Ok(None) };
    Ok(Some(CustomRoleRow {
        id,
        org: parse_id(r, "cr_org")?,
        name: r.get("cr_name")?,
        base: parse_col(r, "cr_base", Role::parse)?,
        grant: permissions(&r.get::<_, String>("cr_grants")?)?,
        revoke: permissions(&r.get::<_, String>("cr_revokes")?)?,
        own_or_assigned: r.get("cr_own")?,
        tlp_max: r
            .get::<_, Option<String>>("cr_tlp")?
            .map(|t| Tlp::parse(&t).ok_or_else(|| StoreError::Corrupt(format!("tlp_max={t}"))))
            .transpose()?,
        categories: r.get::<_, Option<String>>("cr_categories")?.as_deref().map(categories).transpose()?,
        created_at: Timestamp(r.get("cr_created")?),
        updated_at: Timestamp(r.get("cr_updated")?),
    }))
}

const COLS: &str = "role_id, organization_id, name, base, grants, revokes, own_or_assigned, tlp_max, categories, created_at, updated_at";

pub fn insert(c: &Tx, r: &CustomRoleRow) -> Result<()> {
    c.scope(r.org)?;
    exec(
        c,
        &format!("insert into custom_role ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            r.id.to_string(),
            r.org.to_string(),
            r.name,
            r.base.as_str(),
            stored(&r.grant),
            stored(&r.revoke),
            r.own_or_assigned,
            r.tlp_max.map(|t| t.as_str()),
            stored_categories(r.categories),
            r.created_at.0,
            r.updated_at.0
        ],
    )?;
    Ok(())
}

/// The organisation's roles by name.
pub fn list(c: &Conn, org: OrgId) -> Result<Vec<CustomRoleRow>> {
    c.scope(org)?;
    query_map(
        c,
        &format!("select {JOINED_COLS} from custom_role cr where cr.organization_id = ? order by cr.name, cr.role_id"),
        [org.to_string()],
        role,
    )
}

pub fn get(c: &Conn, org: OrgId, id: RoleId) -> Result<CustomRoleRow> {
    c.scope(org)?;
    query_one(
        c,
        &format!("select {JOINED_COLS} from custom_role cr where cr.organization_id = ? and cr.role_id = ?"),
        [org.to_string(), id.to_string()],
        role,
    )
}

pub fn find_by_name(c: &Conn, org: OrgId, name: &str) -> Result<Option<CustomRoleRow>> {
    c.scope(org)?;
    query_opt(
        c,
        &format!("select {JOINED_COLS} from custom_role cr where cr.organization_id = ? and cr.name = ?"),
        [org.to_string(), name.to_owned()],
        role,
    )
}

/// Changes a role; every session holding it follows at its next request.
pub fn update(c: &Tx, r: &CustomRoleRow) -> Result<()> {
    c.scope(r.org)?;
    let n = exec(
        c,
        "update custom_role set name = ?, base = ?, grants = ?, revokes = ?, own_or_assigned = ?, tlp_max = ?, categories = ?, updated_at = ? \
         where organization_id = ? and role_id = ?",
        params![
            r.name,
            r.base.as_str(),
            stored(&r.grant),
            stored(&r.revoke),
            r.own_or_assigned,
            r.tlp_max.map(|t| t.as_str()),
            stored_categories(r.categories),
            r.updated_at.0,
            r.org.to_string(),
            r.id.to_string()
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    crate::session::note_auth_change(c)
}

/// Whether a member, a live API key or a pending invitation holds the role.
pub fn in_use(c: &Conn, org: OrgId, id: RoleId, now: Timestamp) -> Result<bool> {
    c.scope(org)?;
    query_one(
        c,
        "select exists (select 1 from membership where organization_id = ? and custom_role_id = ?) \
             or exists (select 1 from api_key where organization_id = ? and custom_role_id = ? and revoked_at is null) \
             or exists (select 1 from invitation where organization_id = ? and custom_role_id = ? \
                        and accepted_at is null and revoked_at is null and expires_at > ?)",
        params![org.to_string(), id.to_string(), org.to_string(), id.to_string(), org.to_string(), id.to_string(), now.0],
        |r| r.get(0),
    )
}

/// Removes a role no one holds any more (see [`in_use`]); spent
/// invitations and revoked keys that named it forget it.
pub fn delete(c: &Tx, org: OrgId, id: RoleId) -> Result<()> {
    c.scope(org)?;
    exec(
        c,
        "update invitation set custom_role_id = null where organization_id = ? and custom_role_id = ?",
        [org.to_string(), id.to_string()],
    )?;
    exec(
        c,
        "update api_key set custom_role_id = null where organization_id = ? and custom_role_id = ?",
        [org.to_string(), id.to_string()],
    )?;
    if exec(c, "delete from custom_role where organization_id = ? and role_id = ?", [org.to_string(), id.to_string()])? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
