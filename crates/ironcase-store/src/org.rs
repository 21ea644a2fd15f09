//! Organisations, users and memberships.

use ironcase_domain::{OrgId, Role, Timestamp, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::{parse_col, parse_id, parse_opt_id, Conn, Result, StoreError};

#[derive(Debug, Clone)]
pub struct OrgRow {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub parent_id: Option<OrgId>,
    pub created_at: Timestamp,
}

fn org(r: &SqliteRow) -> Result<OrgRow> {
    Ok(OrgRow {
        id: parse_id(r, "organization_id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        plan: r.try_get("plan")?,
        status: r.try_get("status")?,
        parent_id: parse_opt_id(r, "parent_id")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

const ORG_COLS: &str = "organization_id, slug, name, plan, status, parent_id, created_at";

pub async fn insert_org(c: &mut Conn, o: &OrgRow) -> Result<()> {
    sqlx::query("insert into organization (organization_id, slug, name, plan, status, parent_id, created_at) values (?, ?, ?, ?, ?, ?, ?)")
        .bind(o.id.to_string())
        .bind(&o.slug)
        .bind(&o.name)
        .bind(&o.plan)
        .bind(&o.status)
        .bind(o.parent_id.map(|p| p.to_string()))
        .bind(o.created_at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn get_org(c: &mut Conn, id: OrgId) -> Result<OrgRow> {
    let r = sqlx::query(&format!("select {ORG_COLS} from organization where organization_id = ?"))
        .bind(id.to_string())
        .fetch_one(&mut *c)
        .await?;
    org(&r)
}

pub async fn find_org_by_slug(c: &mut Conn, slug: &str) -> Result<Option<OrgRow>> {
    let r = sqlx::query(&format!("select {ORG_COLS} from organization where slug = ?")).bind(slug).fetch_optional(&mut *c).await?;
    r.as_ref().map(org).transpose()
}

pub async fn list_orgs(c: &mut Conn) -> Result<Vec<OrgRow>> {
    let rows = sqlx::query(&format!("select {ORG_COLS} from organization order by created_at, organization_id")).fetch_all(&mut *c).await?;
    rows.iter().map(org).collect()
}

pub async fn count_orgs(c: &mut Conn) -> Result<i64> {
    Ok(sqlx::query("select count(*) from organization").fetch_one(&mut *c).await?.try_get(0)?)
}

/// Issues the next per-organisation incident number inside the caller's transaction.
pub async fn next_incident_number(c: &mut Conn, id: OrgId) -> Result<i64> {
    let r = sqlx::query("update organization set incident_seq = incident_seq + 1 where organization_id = ? returning incident_seq")
        .bind(id.to_string())
        .fetch_one(&mut *c)
        .await?;
    Ok(r.try_get(0)?)
}

#[derive(Clone)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_operator: bool,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow").field("id", &self.id).field("email", &self.email).finish_non_exhaustive()
    }
}

fn user(r: &SqliteRow) -> Result<UserRow> {
    Ok(UserRow {
        id: parse_id(r, "user_id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        is_operator: r.try_get("is_operator")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

const USER_COLS: &str = "user_id, email, name, password_hash, is_operator, created_at";

pub async fn insert_user(c: &mut Conn, u: &UserRow) -> Result<()> {
    sqlx::query("insert into user (user_id, email, name, password_hash, is_operator, created_at) values (?, ?, ?, ?, ?, ?)")
        .bind(u.id.to_string())
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.is_operator)
        .bind(u.created_at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn find_user_by_email(c: &mut Conn, email: &str) -> Result<Option<UserRow>> {
    let r = sqlx::query(&format!("select {USER_COLS} from user where email = ?")).bind(email).fetch_optional(&mut *c).await?;
    r.as_ref().map(user).transpose()
}

pub async fn get_user(c: &mut Conn, id: UserId) -> Result<UserRow> {
    let r = sqlx::query(&format!("select {USER_COLS} from user where user_id = ?")).bind(id.to_string()).fetch_one(&mut *c).await?;
    user(&r)
}

pub async fn insert_membership(c: &mut Conn, org: OrgId, user: UserId, role: Role, at: Timestamp) -> Result<()> {
    sqlx::query("insert into membership (organization_id, user_id, role, created_at) values (?, ?, ?, ?)")
        .bind(org.to_string())
        .bind(user.to_string())
        .bind(role.as_str())
        .bind(at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn membership_role(c: &mut Conn, org: OrgId, user: UserId) -> Result<Option<Role>> {
    let r = sqlx::query("select role from membership where organization_id = ? and user_id = ?")
        .bind(org.to_string())
        .bind(user.to_string())
        .fetch_optional(&mut *c)
        .await?;
    r.map(|r| parse_col(&r, "role", Role::parse)).transpose()
}

/// The organisation a user joined first, with their role there.
pub async fn first_membership(c: &mut Conn, user: UserId) -> Result<Option<(OrgId, Role)>> {
    let r = sqlx::query("select organization_id, role from membership where user_id = ? order by created_at, organization_id limit 1")
        .bind(user.to_string())
        .fetch_optional(&mut *c)
        .await?;
    r.map(|r| Ok((parse_id(&r, "organization_id")?, parse_col(&r, "role", Role::parse)?))).transpose()
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: Timestamp,
}

fn member(r: &SqliteRow) -> Result<MemberRow> {
    Ok(MemberRow {
        user_id: parse_id(r, "user_id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: parse_col(r, "role", Role::parse)?,
        joined_at: Timestamp(r.try_get("created_at")?),
    })
}

pub async fn list_members(c: &mut Conn, org: OrgId) -> Result<Vec<MemberRow>> {
    let rows = sqlx::query(
        "select m.user_id, u.email, u.name, m.role, m.created_at from membership m join user u on u.user_id = m.user_id \
         where m.organization_id = ? order by m.created_at, m.user_id",
    )
    .bind(org.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(member).collect()
}

pub async fn get_member(c: &mut Conn, org: OrgId, user: UserId) -> Result<MemberRow> {
    let r = sqlx::query(
        "select m.user_id, u.email, u.name, m.role, m.created_at from membership m join user u on u.user_id = m.user_id \
         where m.organization_id = ? and m.user_id = ?",
    )
    .bind(org.to_string())
    .bind(user.to_string())
    .fetch_one(&mut *c)
    .await?;
    member(&r)
}

pub async fn update_role(c: &mut Conn, org: OrgId, user: UserId, role: Role) -> Result<()> {
    let n = sqlx::query("update membership set role = ? where organization_id = ? and user_id = ?")
        .bind(role.as_str())
        .bind(org.to_string())
        .bind(user.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn delete_membership(c: &mut Conn, org: OrgId, user: UserId) -> Result<()> {
    let n = sqlx::query("delete from membership where organization_id = ? and user_id = ?")
        .bind(org.to_string())
        .bind(user.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn count_role(c: &mut Conn, org: OrgId, role: Role) -> Result<i64> {
    Ok(sqlx::query("select count(*) from membership where organization_id = ? and role = ?")
        .bind(org.to_string())
        .bind(role.as_str())
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?)
}
