//! Forgotten passwords. With an SMTP server, anyone may ask for a reset link
//! for an address (`POST /auth/password-reset`): the answer is the same
//! whether an account has it or not, and takes as long (the message goes
//! out after the answer); at most three links an hour per account, each
//! single-use and valid 30 minutes, only its hash kept. An owner or admin
//! may reset a member's password (`POST /members/{user_id}/password-reset`):
//! the link is e-mailed to the member, or, without SMTP, handed to the admin
//! once, and only for an account that belongs to no other organisation (or
//! by a platform operator), so that no organisation's admin can take over an
//! account another organisation relies on. A reset ends every session of
//! the account; a second factor stays.

use ironcase_domain::{SessionId, Timestamp, UserId, ValidationErrors};
use ironcase_store::{org, reset, session};
use serde_json::json;

use crate::audit::{anonymous, by};
use crate::{crypto, App, AppError, ErrorCode, Principal, RequestMeta, Result};

pub const RESET_PREFIX: &str = "icp_";
const RESET_TTL_SECS: i64 = 30 * 60;
const RESETS_PER_HOUR: i64 = 3;

/// A reset link made for an admin to pass on (no SMTP server).
pub struct ResetLink {
    pub token: String,
    pub url: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for ResetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetLink").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Keeps a reset of `user` by its token's hash, unless three were made in
/// the last hour (false).
fn open_reset(c: &ironcase_store::Tx, user: UserId, hash: &str, now: Timestamp) -> Result<bool> {
    if reset::count_since(c, user, now.plus_secs(-3600))? >= RESETS_PER_HOUR {
        return Ok(false);
    }
    reset::insert(c, hash, user, now, now.plus_secs(RESET_TTL_SECS))?;
    Ok(true)
}

impl App {
    /// A new reset for `user`, unless three were made this hour: its token.
    async fn new_reset(&self, user: UserId, now: Timestamp) -> Result<Option<String>> {
        let token = format!("{RESET_PREFIX}{}", crypto::random_token(32));
        let hash = crypto::sha256_hex(&token);
        let made = self.store().write(move |c| open_reset(c, user, &hash, now)).await?;
        Ok(made.then_some(token))
    }

    fn reset_message(&self, token: &str) -> String {
        format!(
            "Someone asked to reset the password of your Ironcase account.\n\n\
             Open this link within 30 minutes to choose a new one (it works once):\n{}\n\n\
             If it was not you, ignore this message: your password stays as it is.\n",
            self.mailer().link("reset-password", token)
        )
    }

    /// Sends the message after the answer: how long an answer takes says
    /// nothing of whether the address has an account.
    fn send_later(&self, to: String, subject: &'static str, body: String) {
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = app.mailer().send(&to, subject, body).await {
                tracing::warn!(error = %e, "a password reset message was not delivered");
            }
        });
    }

    /// `POST /auth/password-reset`: a reset link to `email`, if an account
    /// has it (the same answer either way).
    pub async fn request_password_reset(&self, email: &str, meta: &RequestMeta) -> Result<()> {
        if !self.mailer().enabled() {
            return Err(AppError::Refused {
                code: ErrorCode::EmailUnavailable,
                detail: "this server sends no e-mail: ask an owner or admin of your organisation to reset your password".into(),
            });
        }
        let mut errs = ValidationErrors::default();
        let email = ironcase_domain::validate::email("email", email, &mut errs);
        errs.into_result()?;
        let now = self.clock().now();
        let e = email.clone();
        let user = self.store().read_now(move |c| org::find_user_by_email(c, &e)).await?;
        // One read and one write whether the account exists or not.
        let token = format!("{RESET_PREFIX}{}", crypto::random_token(32));
        let hash = crypto::sha256_hex(&token);
        let mut entry =
            anonymous(ironcase_store::audit::PLATFORM, meta, now, "auth.password_reset_requested", "denied", json!({ "email": email }));
        entry.actor_id = user.as_ref().map(|u| u.id.to_string());
        let account = user.as_ref().map(|u| u.id);
        let sent = self
            .store()
            .write(move |c| {
                let reason = match account {
                    None => "unknown_account",
                    Some(u) if !open_reset(c, u, &hash, now)? => "rate_limited",
                    Some(_) => {
                        entry.outcome = "success".into();
                        "sent"
                    }
                };
                entry.details["reason"] = json!(reason);
                ironcase_store::audit::append(c, entry)?;
                Ok::<_, AppError>(reason == "sent")
            })
            .await?;
        if let (true, Some(u)) = (sent, user) {
            self.send_later(u.email, "Reset your Ironcase password", self.reset_message(&token));
        }
        Ok(())
    }

    /// `POST /auth/password-reset/confirm`: a new password by a reset
    /// link's token. Anything wrong with the token (unknown, used, expired)
    /// is the same 404, and a refused password does not spend it.
    pub async fn confirm_password_reset(&self, token: &str, new_password: String, meta: &RequestMeta) -> Result<()> {
        let mut errs = ValidationErrors::default();
        ironcase_domain::validate::password("new_password", &new_password, &mut errs);
        errs.into_result()?;
        if !token.starts_with(RESET_PREFIX) || token.len() > 128 {
            return Err(AppError::NotFound);
        }
        let hash = crypto::sha256_hex(token);
        let password_hash = crate::auth::hash_password(new_password).await?;
        let now = self.clock().now();
        let meta = meta.clone();
        self.store()
            .write(move |c| {
                let Some(user) = reset::take(c, &hash, now)? else { return Err(AppError::NotFound) };
                org::set_password_hash(c, user, &password_hash)?;
                // No session is kept: whoever holds one may be who the reset is against.
                let ended = session::revoke_account_sessions(c, user, SessionId::new(), now, "password_reset")?;
                let mut e = anonymous(
                    ironcase_store::audit::PLATFORM,
                    &meta,
                    now,
                    "auth.password_reset",
                    "success",
                    json!({ "sessions_ended": ended }),
                );
                e.actor_id = Some(user.to_string());
                e.actor_kind = "user".into();
                ironcase_store::audit::append(c, e)?;
                Ok(())
            })
            .await
    }

    /// `POST /members/{user_id}/password-reset`: an owner or admin resets a
    /// member's password. `None`: the link was e-mailed to the member.
    pub async fn member_password_reset(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<Option<ResetLink>> {
        let target = self.owner_or_admin_over(p, meta, user).await?;
        self.require_recent_proof(p)?;
        let elsewhere = self.store().read_now(move |c| org::count_memberships(c, user)).await? > 1;
        if elsewhere && !p.is_operator {
            return Err(AppError::Conflict {
                code: ErrorCode::AccountShared,
                detail: "the account belongs to other organisations too: its holder resets the password by e-mail".into(),
            });
        }
        let now = self.clock().now();
        let Some(token) = self.new_reset(user, now).await? else {
            return Err(AppError::TooManyAttempts { retry_after_secs: 3600 });
        };
        let emailed = self.mailer().enabled();
        let e = by(p, meta, now, "member.password_reset", ("user", &user.to_string()), json!({ "emailed": emailed }));
        self.write_audit(e).await?;
        if emailed {
            self.mailer().send(&target.email, "Reset your Ironcase password", self.reset_message(&token)).await?;
            return Ok(None);
        }
        let url = self.mailer().link("reset-password", &token);
        Ok(Some(ResetLink { token, url, expires_at: now.plus_secs(RESET_TTL_SECS) }))
    }
}
