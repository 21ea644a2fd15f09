//! A member's own account: sessions as they see them (where each began, how
//! it proved itself, when it was last used), ending one or every other; an
//! owner or admin sees and ends a member's. A new password; proving who holds
//! a session again (re-authentication), which sensitive actions need recent.

use ironcase_domain::{Permission, Role, SessionId, UserId};
use ironcase_store::org::{self, MemberRow};
use ironcase_store::session::{self, SessionDetail};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// One of the caller's sessions.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub detail: SessionDetail,
    /// The session of the request that asked.
    pub current: bool,
}

impl App {
    /// The organisations the caller's account belongs to, `(slug, name)`:
    /// where it may sign in next (each its own session, under its own
    /// policies).
    pub async fn my_organizations(&self, p: &Principal) -> Result<Vec<(String, String)>> {
        let user = Self::session_user(p)?;
        Ok(self.store().read_now(move |c| ironcase_store::org::organizations_of(c, user)).await?)
    }

    /// `GET /auth/sessions`: the caller's live sessions in this organisation.
    pub async fn my_sessions(&self, p: &Principal, cursor: Option<(i64, SessionId)>, size: PageSize) -> Result<Page<SessionView>> {
        let user = Self::session_user(p)?;
        self.sessions_page(p, user, cursor, size).await
    }

    /// A page of `user`'s live sessions in `p`'s organisation, marking `p`'s.
    async fn sessions_page(
        &self,
        p: &Principal,
        user: UserId,
        cursor: Option<(i64, SessionId)>,
        size: PageSize,
    ) -> Result<Page<SessionView>> {
        let (org, now, current) = (p.org, self.clock().now(), p.session);
        let rows = self.store().read(move |c| session::list_member_sessions(c, org, user, now, cursor, size.fetch())).await?;
        let page = Page::cut(rows, size, |last| keyset(last.session.created_at.0, last.session.id));
        Ok(page.map(|detail| SessionView { current: Some(detail.session.id) == current, detail }))
    }

    /// `DELETE /auth/sessions/{id}`: ends one of the caller's sessions
    /// (another's, or another organisation's, does not exist).
    pub async fn end_my_session(&self, p: &Principal, meta: &RequestMeta, id: SessionId) -> Result<()> {
        let user = Self::session_user(p)?;
        let (org, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "auth.session_ended", ("session", &id.to_string()), json!({}));
        let ended = self
            .store()
            .write(move |c| {
                let mine = session::session_auth(c, id, Some(org))?
                    .is_some_and(|a| a.session.user == user && a.session.revoked_at.is_none() && a.session.expires_at > now);
                if !mine {
                    return Ok(false);
                }
                session::revoke_session(c, id, now, "ended_by_member")?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(true)
            })
            .await?;
        if ended {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// The member `user`, if `p` is an owner or admin who may act on their
    /// account's security (sessions, second factor): a member of no higher
    /// role. Another organisation's member does not exist.
    pub(crate) async fn owner_or_admin_over(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<MemberRow> {
        self.require(p, meta, Permission::MembersManage).await?;
        let org_id = p.org;
        let target = self.store().read(move |c| org::get_member(c, org_id, user)).await?;
        if !matches!(p.role, Role::Owner | Role::Admin) || !p.role.covers(target.role) {
            return Err(self.deny(p, meta, Permission::MembersManage, Some(("user", user.to_string()))).await);
        }
        Ok(target)
    }

    /// `GET /members/{user_id}/sessions`: a member's live sessions here.
    pub async fn member_sessions(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        user: UserId,
        cursor: Option<(i64, SessionId)>,
        size: PageSize,
    ) -> Result<Page<SessionView>> {
        self.owner_or_admin_over(p, meta, user).await?;
        self.sessions_page(p, user, cursor, size).await
    }

    /// `DELETE /members/{user_id}/sessions`: ends every session of a member
    /// here; how many.
    pub async fn end_member_sessions(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<usize> {
        self.owner_or_admin_over(p, meta, user).await?;
        let (org, now) = (p.org, self.clock().now());
        let mut e = by(p, meta, now, "member.sessions_ended", ("user", &user.to_string()), json!({}));
        self.store()
            .write(move |c| {
                let n = session::revoke_member_sessions(c, org, user, now, "ended_by_admin")?;
                e.details = json!({ "sessions_ended": n });
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(n)
            })
            .await
    }

    /// `POST /auth/sessions/revoke-others`: ends every session of the caller
    /// here but the one asking; how many.
    pub async fn end_my_other_sessions(&self, p: &Principal, meta: &RequestMeta) -> Result<usize> {
        let user = Self::session_user(p)?;
        let Some(current) = p.session else { return Err(AppError::NotFound) };
        let (org, now) = (p.org, self.clock().now());
        let mut e = by(p, meta, now, "auth.sessions_ended", ("account", &user.to_string()), json!({}));
        self.store()
            .write(move |c| {
                let n = session::revoke_other_sessions(c, org, user, current, now, "ended_by_member")?;
                e.details = json!({ "sessions_ended": n });
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(n)
            })
            .await
    }

    /// Sensitive actions (API keys, members and roles, security settings,
    /// exports, plans) need a session that proved who holds it within
    /// `Settings::reauth_window_secs`: else 403 `reauthentication_required`.
    /// API keys are not sessions and prove nothing again; a key registered
    /// with a public key signs such requests instead (RFC 9421).
    pub(crate) fn require_recent_proof(&self, p: &Principal) -> Result<()> {
        if p.signing_key.is_some() && !p.signed {
            return Err(AppError::Refused {
                code: ErrorCode::SignatureRequired,
                detail:
                    "this API key signs its sensitive requests: Signature-Input and Signature over @method, @target-uri and content-digest"
                        .into(),
            });
        }
        match p.authenticated_at {
            Some(at) if at.plus_secs(self.settings().reauth_window_secs) <= self.clock().now() => Err(AppError::Refused {
                code: ErrorCode::ReauthenticationRequired,
                detail: format!(
                    "this action needs a login or re-authentication within the last {} minutes: POST /api/v1/auth/reauthenticate",
                    self.settings().reauth_window_secs / 60
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks the caller's password as a login would: refused while this
    /// source is locked out of the account, and a wrong one counts toward
    /// that lockout and is audited.
    async fn prove_password(&self, p: &Principal, meta: &RequestMeta, password: String, action: &str) -> Result<org::UserRow> {
        let user_id = Self::session_user(p)?;
        let now = self.clock().now();
        let settings = self.settings();
        let source = format!("ip:{}", meta.source_ip.as_deref().unwrap_or(""));
        let since = now.plus_secs(-settings.login_window_secs);
        let (user, failures) = {
            let source = source.clone();
            self.store()
                .read_now(move |c| {
                    let user = org::get_user(c, user_id)?;
                    let failures = session::login_failures(c, &user.email, &source, since)?;
                    Ok::<_, AppError>((user, failures))
                })
                .await?
        };
        if failures.from_source >= settings.login_max_failures {
            let oldest = failures.oldest_from_source.unwrap_or(now);
            let ms = oldest.plus_secs(settings.login_window_secs).0 - now.0;
            return Err(AppError::TooManyAttempts { retry_after_secs: ((ms + 999) / 1000).max(1) });
        }
        if crate::auth::verify_password(password, user.password_hash.clone()).await {
            return Ok(user);
        }
        let mut e = by(p, meta, now, action, ("account", &user_id.to_string()), json!({ "reason": "invalid_credentials" }));
        e.outcome = "failure".into();
        let email = user.email.clone();
        self.store()
            .write(move |c| {
                session::record_login_failure(c, &email, &source, now)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Err(AppError::InvalidCredentials)
    }

    /// `POST /auth/password`: a new password for the caller's account, for
    /// the current one. Every other session of the account, in every
    /// organisation, ends with its refresh tokens; this one stays, and
    /// counts as freshly proved.
    pub async fn change_password(&self, p: &Principal, meta: &RequestMeta, current: String, new: String) -> Result<usize> {
        let user_id = Self::session_user(p)?;
        let Some(sid) = p.session else { return Err(AppError::NotFound) };
        let mut errs = ironcase_domain::ValidationErrors::default();
        ironcase_domain::validate::password("new_password", &new, &mut errs);
        if new == current {
            errs.push("new_password", "must differ from the current password");
        }
        errs.into_result()?;
        self.prove_password(p, meta, current, "auth.password_change").await?;
        let hash = crate::auth::hash_password(new).await?;
        let (org, now) = (p.org, self.clock().now());
        let mut e = by(p, meta, now, "auth.password_changed", ("account", &user_id.to_string()), json!({}));
        self.store()
            .write(move |c| {
                org::set_password_hash(c, user_id, &hash)?;
                let n = session::revoke_account_sessions(c, user_id, sid, now, "password_changed")?;
                session::reauthenticated(c, org, sid, now)?;
                e.details = json!({ "sessions_ended": n });
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(n)
            })
            .await
    }

    /// `POST /auth/reauthenticate`: the caller proves again who holds the
    /// session (the password, and a current code when the account has a
    /// second factor); sensitive actions are open to it for the window.
    pub async fn reauthenticate(&self, p: &Principal, meta: &RequestMeta, password: String, code: Option<String>) -> Result<()> {
        let user_id = Self::session_user(p)?;
        let Some(sid) = p.session else { return Err(AppError::NotFound) };
        let has_factor =
            self.store().read_now(move |c| ironcase_store::mfa::totp(c, user_id)).await?.is_some_and(|t| t.confirmed_at.is_some());
        self.prove_password(p, meta, password, "auth.reauthenticate").await?;
        let method = match (has_factor, code) {
            (false, _) => "password",
            (true, Some(code)) => {
                self.current_code(p, meta, &code, None).await?;
                "mfa"
            }
            (true, None) => {
                let mut errs = ironcase_domain::ValidationErrors::default();
                errs.push("code", "is required: the account has a second factor");
                return Err(errs.into());
            }
        };
        let (org, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "auth.reauthenticated", ("session", &sid.to_string()), json!({ "method": method }));
        self.store()
            .write(move |c| {
                session::reauthenticated(c, org, sid, now)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await
    }
}
