//! The organisation and its members.

use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{Permission, Role, UserId};
use ironcase_store::org::{self, MemberRow, OrgRow, UserRow};
use ironcase_store::{audit, session, Conn};
use serde_json::json;

use crate::audit::by;
use crate::auth::new_user_password;
use crate::{App, AppError, Principal, RequestMeta, Result};

pub struct NewMember {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: Option<String>,
}

/// Refuses to leave an organisation without an owner.
fn keep_an_owner(c: &Conn, org_id: ironcase_domain::OrgId, target_role: Role) -> Result<()> {
    if target_role == Role::Owner && org::count_role(c, org_id, Role::Owner)? <= 1 {
        return Err(AppError::Conflict { code: crate::ErrorCode::LastOwner, detail: "an organization keeps at least one owner".into() });
    }
    Ok(())
}

impl App {
    pub async fn organization_get(&self, p: &Principal, meta: &RequestMeta) -> Result<OrgRow> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let id = p.org;
        Ok(self.store().read_now(move |c| org::get_org(c, id)).await?)
    }

    pub async fn member_list(&self, p: &Principal, meta: &RequestMeta) -> Result<Vec<MemberRow>> {
        self.require(p, meta, Permission::MembersRead).await?;
        let id = p.org;
        Ok(self.store().read(move |c| org::list_members(c, id)).await?)
    }

    /// Adds a member. An existing user (by e-mail) joins with the given role and
    /// keeps their password; a new user is created with `password`.
    pub async fn member_add(&self, p: &Principal, meta: &RequestMeta, input: NewMember) -> Result<MemberRow> {
        self.require(p, meta, Permission::MembersManage).await?;
        if !p.role.covers(input.role) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("role", input.role.to_string()))).await);
        }
        let mut errs = ValidationErrors::default();
        let email = validate::email("email", &input.email, &mut errs);
        let name = validate::text("name", &input.name, 1, 200, &mut errs);
        let existing = {
            let email = email.clone();
            self.store().read(move |c| org::find_user_by_email(c, &email)).await?
        };
        let new_hash = new_user_password(existing.is_some(), input.password.as_deref(), "password", &mut errs).await?;
        errs.into_result()?;
        let now = self.clock().now();
        let is_new = existing.is_none();
        let user = match existing {
            Some(u) => u,
            None => {
                UserRow { id: UserId::new(), email, name, password_hash: new_hash.unwrap_or_default(), is_operator: false, created_at: now }
            }
        };
        let (p2, meta2, role) = (p.clone(), meta.clone(), input.role);
        self.store()
            .write(move |c| {
                if is_new {
                    org::insert_user(c, &user)?;
                }
                if org::membership_role(c, p2.org, user.id)?.is_some() {
                    return Err(AppError::Conflict {
                        code: crate::ErrorCode::AlreadyMember,
                        detail: "this user is already a member".into(),
                    });
                }
                crate::quotas::check_members(c, &p2, &meta2, now)?;
                org::insert_membership(c, p2.org, user.id, role, now)?;
                let details = json!({ "email": user.email, "role": role, "new_user": is_new });
                audit::append(c, by(&p2, &meta2, now, "member.add", ("user", &user.id.to_string()), details))?;
                Ok(org::get_member(c, p2.org, user.id)?)
            })
            .await
    }

    /// Changes a member's role; ends their sessions in this organisation at once.
    pub async fn member_set_role(&self, p: &Principal, meta: &RequestMeta, user: UserId, role: Role) -> Result<MemberRow> {
        self.require(p, meta, Permission::MembersManage).await?;
        let target = {
            let id = p.org;
            self.store().read(move |c| org::get_member(c, id, user)).await?
        };
        if !p.role.covers(target.role) || !p.role.covers(role) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("user", user.to_string()))).await);
        }
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let current = org::get_member(c, p2.org, user)?;
                if current.role != role {
                    if role != Role::Owner {
                        keep_an_owner(c, p2.org, current.role)?;
                    }
                    org::update_role(c, p2.org, user, role)?;
                    let ended = session::revoke_member_sessions(c, p2.org, user, now, "role_changed")?;
                    let details = json!({ "old_role": current.role, "new_role": role, "sessions_ended": ended });
                    audit::append(c, by(&p2, &meta2, now, "member.update", ("user", &user.to_string()), details))?;
                }
                Ok(org::get_member(c, p2.org, user)?)
            })
            .await
    }

    /// Removes a member; ends their sessions in this organisation at once.
    pub async fn member_remove(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<()> {
        self.require(p, meta, Permission::MembersManage).await?;
        let target = {
            let id = p.org;
            self.store().read(move |c| org::get_member(c, id, user)).await?
        };
        if !p.role.covers(target.role) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("user", user.to_string()))).await);
        }
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let current = org::get_member(c, p2.org, user)?;
                keep_an_owner(c, p2.org, current.role)?;
                org::delete_membership(c, p2.org, user)?;
                let ended = session::revoke_member_sessions(c, p2.org, user, now, "member_removed")?;
                let details = json!({ "email": current.email, "role": current.role, "sessions_ended": ended });
                audit::append(c, by(&p2, &meta2, now, "member.remove", ("user", &user.to_string()), details))?;
                Ok(())
            })
            .await
    }
}
