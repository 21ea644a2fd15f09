//! The organisation and its members.

use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{InvitationId, Permission, Role, Sight, UserId};
use ironcase_store::invitation::{self, InvitationRow};
use ironcase_store::org::{self, MemberRow, OrgRow, UserRow};
use ironcase_store::{audit, session, Conn};
use serde_json::json;

use crate::audit::by;
use crate::auth::{new_user_password, verify_password};
use crate::crypto;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// The prefix of an invitation's token.
pub const INVITATION_PREFIX: &str = "ici_";
/// How long an invitation's link works.
pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;

/// Whom to invite, with which role.
pub struct NewMember {
    pub email: String,
    /// A built-in role, or one of the organisation's own (id or name).
    pub role: String,
}

/// An invitation's token, with the password of the account that has its
/// address, or the name and password of the account to make.
pub struct Acceptance {
    pub token: String,
    pub name: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for Acceptance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptance").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Refuses to leave an organisation without an owner.
pub(crate) fn keep_an_owner(c: &Conn, org_id: ironcase_domain::OrgId, target_role: Role) -> Result<()> {
    if target_role == Role::Owner && org::count_role(c, org_id, Role::Owner)? <= 1 {
        return Err(AppError::Conflict { code: ErrorCode::LastOwner, detail: "an organization keeps at least one owner".into() });
    }
    Ok(())
}

impl App {
    pub async fn organization_get(&self, p: &Principal, meta: &RequestMeta) -> Result<OrgRow> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let id = p.org;
        Ok(self.store().read_now(move |c| org::get_org(c, id)).await?)
    }

    /// What to call the members among `users` (their names, else their
    /// addresses); those who are not members are left out.
    pub async fn member_names(&self, p: &Principal, meta: &RequestMeta, users: Vec<UserId>) -> Result<Vec<(UserId, String)>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let org = p.org;
        Ok(self.store().read_now(move |c| org::member_names(c, org, &users)).await?)
    }

    /// Members, oldest first, after `cursor` (a keyset: joined, user id).
    pub async fn member_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, UserId)>,
        size: PageSize,
    ) -> Result<Page<MemberRow>> {
        self.require(p, meta, Permission::MembersRead).await?;
        let id = p.org;
        let rows = self.store().read(move |c| org::list_members(c, id, cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| keyset(last.joined_at.0, last.user_id)))
    }

    /// Invites `input.email` to join with `input.role`. Nobody becomes a
    /// member without accepting, and the answer is the same whether an account
    /// has this address or not (nothing of another tenant's user is shown).
    /// Only the token's hash is kept. With an SMTP server the link is
    /// e-mailed to the address (and not returned: `None`); without, the
    /// token is returned once, for the admin to pass on.
    pub async fn member_invite(&self, p: &Principal, meta: &RequestMeta, input: NewMember) -> Result<(InvitationRow, Option<String>)> {
        self.require(p, meta, Permission::MembersManage).await?;
        self.require_recent_proof(p)?;
        let assigned = self.assignable(p, meta, &input.role, Permission::MembersManage).await?;
        let mut errs = ValidationErrors::default();
        let email = validate::email("email", &input.email, &mut errs);
        errs.into_result()?;
        let now = self.clock().now();
        let token = format!("{INVITATION_PREFIX}{}", crypto::random_token(32));
        let row = InvitationRow {
            id: InvitationId::new(),
            org: p.org,
            email,
            role: assigned.role,
            custom_role: assigned.custom_id(),
            token_hash: crypto::sha256_hex(&token),
            invited_by: p.user_id(),
            created_at: now,
            expires_at: now.plus_secs(INVITATION_TTL_SECS),
            accepted_at: None,
            revoked_at: None,
        };
        let emailed = self.mailer().enabled();
        let (p2, meta2, r) = (p.clone(), meta.clone(), row.clone());
        self.store()
            .write(move |c| {
                if org::is_member_by_email(c, p2.org, &r.email)? {
                    return Err(AppError::Conflict { code: ErrorCode::AlreadyMember, detail: "this address is already a member".into() });
                }
                invitation::insert(c, &r)?;
                let details =
                    json!({ "email": r.email, "role": r.role, "custom_role": r.custom_role, "expires_at": r.expires_at, "emailed": emailed });
                audit::append(c, by(&p2, &meta2, now, "member.invite", ("invitation", &r.id.to_string()), details))?;
                Ok::<_, AppError>(())
            })
            .await?;
        if !emailed {
            return Ok((row, Some(token)));
        }
        let org_id = p.org;
        let organization = self.store().read_now(move |c| org::get_org(c, org_id)).await?;
        let body = format!(
            "You are invited to join {} on Ironcase as {}.\n\nOpen this link within 7 days to accept (it works once):\n{}\n\n\
             If you did not expect this invitation, ignore this message.\n",
            organization.name,
            row.role,
            self.mailer().link("invitation", &token)
        );
        if let Err(e) = self.mailer().send(&row.email, &format!("Your invitation to {} on Ironcase", organization.name), body).await {
            // Not delivered: the invitation is withdrawn, nothing is left half-done.
            let (id, org_id) = (row.id, row.org);
            self.store().write(move |c| Ok::<_, AppError>(invitation::revoke(c, org_id, id, now)?)).await?;
            return Err(e);
        }
        Ok((row, None))
    }

    /// Pending invitations, oldest first.
    pub async fn invitation_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, InvitationId)>,
        size: PageSize,
    ) -> Result<Page<InvitationRow>> {
        self.require(p, meta, Permission::MembersManage).await?;
        let (org_id, now) = (p.org, self.clock().now());
        let rows = self.store().read(move |c| invitation::list_pending(c, org_id, now, cursor, size.fetch())).await?;
        Ok(Page::cut(rows, size, |last| keyset(last.created_at.0, last.id)))
    }

    /// Withdraws a pending invitation: its link no longer works.
    pub async fn invitation_revoke(&self, p: &Principal, meta: &RequestMeta, id: InvitationId) -> Result<()> {
        self.require(p, meta, Permission::MembersManage).await?;
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                invitation::revoke(c, p2.org, id, now)?;
                audit::append(c, by(&p2, &meta2, now, "member.invite_revoked", ("invitation", &id.to_string()), json!({})))?;
                Ok::<_, AppError>(())
            })
            .await
    }

    /// Accepts an invitation by its token. An account that has the invited
    /// address already proves it is its holder with its password; otherwise
    /// one is made with `name` and `password`. Anything wrong with the token
    /// (unknown, used, revoked, expired) is the same 404.
    pub async fn invitation_accept(&self, meta: &RequestMeta, input: Acceptance) -> Result<(OrgRow, MemberRow)> {
        let now = self.clock().now();
        if !input.token.starts_with(INVITATION_PREFIX) || input.token.len() > 128 {
            return Err(AppError::NotFound);
        }
        let hash = crypto::sha256_hex(&input.token);
        let found = self.store().read(move |c| invitation::find_by_hash(c, &hash)).await?;
        let Some(inv) = found.filter(|i| i.pending(now)) else { return Err(AppError::NotFound) };
        let existing = {
            let email = inv.email.clone();
            self.store().read(move |c| org::find_user_by_email(c, &email)).await?
        };
        let is_new = existing.is_none();
        let user = match existing {
            Some(u) => {
                let hash = u.password_hash.clone();
                if !verify_password(input.password.clone(), hash).await {
                    return Err(AppError::InvalidCredentials);
                }
                u
            }
            None => {
                let mut errs = ValidationErrors::default();
                let name = validate::text("name", input.name.as_deref().unwrap_or(""), 1, 200, &mut errs);
                let hash = new_user_password(false, Some(&input.password), "password", &mut errs).await?;
                errs.into_result()?;
                UserRow {
                    id: UserId::new(),
                    email: inv.email.clone(),
                    name,
                    password_hash: hash.unwrap_or_default(),
                    is_operator: false,
                    created_at: now,
                }
            }
        };
        let joined = Principal {
            org: inv.org,
            actor: crate::Actor::User(user.id),
            role: inv.role,
            grants: ironcase_domain::Grants::of(inv.role),
            custom_role: inv.custom_role,
            session: None,
            is_operator: false,
            sight: Sight::ALL,
            rate_per_minute: None,
            enrolling: false,
            authenticated_at: None,
            networks: Default::default(),
            signing_key: None,
            signed: false,
            audit_reads: false,
        };
        let meta2 = meta.clone();
        // One transaction: a refusal (quota, a race) leaves no account behind.
        self.store()
            .write(move |c| {
                invitation::accept(c, inv.org, inv.id, now)?;
                if is_new {
                    org::insert_user(c, &user)?;
                }
                if org::membership_role(c, inv.org, user.id)?.is_some() {
                    return Err(AppError::Conflict { code: ErrorCode::AlreadyMember, detail: "this account is already a member".into() });
                }
                crate::quotas::check_members(c, &joined, &meta2, now)?;
                org::insert_membership(c, inv.org, user.id, inv.role, inv.custom_role, now)?;
                let details = json!({
                    "email": user.email,
                    "role": inv.role,
                    "custom_role": inv.custom_role,
                    "invitation_id": inv.id,
                    "invited_by": inv.invited_by,
                });
                audit::append(c, by(&joined, &meta2, now, "member.add", ("user", &user.id.to_string()), details))?;
                Ok((org::get_org(c, inv.org)?, org::get_member(c, inv.org, user.id)?))
            })
            .await
    }

    /// Changes a member's role; ends their sessions in this organisation at once.
    /// `role`: a built-in role, or one of the organisation's own (id or name).
    pub async fn member_set_role(&self, p: &Principal, meta: &RequestMeta, user: UserId, role: &str) -> Result<MemberRow> {
        self.require(p, meta, Permission::MembersManage).await?;
        self.require_recent_proof(p)?;
        let target = {
            let id = p.org;
            self.store().read(move |c| org::get_member(c, id, user)).await?
        };
        if !p.role.covers(target.role) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("user", user.to_string()))).await);
        }
        let assigned = self.assignable(p, meta, role, Permission::MembersManage).await?;
        let (role, custom) = (assigned.role, assigned.custom_id());
        let now = self.clock().now();
        let (p2, meta2) = (p.clone(), meta.clone());
        self.store()
            .write(move |c| {
                let current = org::get_member(c, p2.org, user)?;
                if current.role != role || current.custom_role != custom {
                    if role != Role::Owner {
                        keep_an_owner(c, p2.org, current.role)?;
                    }
                    org::update_role(c, p2.org, user, role, custom)?;
                    let ended = session::revoke_member_sessions(c, p2.org, user, now, "role_changed")?;
                    let details = json!({
                        "old_role": current.role,
                        "old_custom_role": current.custom_role,
                        "new_role": role,
                        "new_custom_role": custom,
                        "sessions_ended": ended,
                    });
                    audit::append(c, by(&p2, &meta2, now, "member.update", ("user", &user.to_string()), details))?;
                }
                Ok(org::get_member(c, p2.org, user)?)
            })
            .await
    }

    /// Removes a member; ends their sessions in this organisation at once.
    pub async fn member_remove(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<()> {
        self.require(p, meta, Permission::MembersManage).await?;
        self.require_recent_proof(p)?;
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
