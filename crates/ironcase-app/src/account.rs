//! Sessions as their member sees them (where each began, how it proved
//! itself, when it was last used): a member ends one or every other; an
//! owner or admin sees and ends a member's.

use ironcase_domain::{Permission, Role, SessionId, UserId};
use ironcase_store::org::{self, MemberRow};
use ironcase_store::session::{self, SessionDetail};
use serde_json::json;

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// One of the caller's sessions.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub detail: SessionDetail,
    /// The session of the request that asked.
    pub current: bool,
}

impl App {
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
}
