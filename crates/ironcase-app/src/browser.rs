//! Browser sessions, for the console: a cookie names the same server-side
//! session a token pair does (the login, MFA step and SSO that made it are
//! the API's own), by the hash of a secret only the cookie holds. A browser
//! does not refresh: each request checks the session's idle and absolute
//! timeouts as a refresh does, and at most once a minute moves its last use
//! and expiry forward. A state-changing request carries a CSRF token bound
//! to its session.

use ironcase_domain::Timestamp;
use ironcase_store::session;
use serde_json::json;

use crate::audit::anonymous;
use crate::auth::{timed_out, TokenPair};
use crate::crypto;
use crate::{App, AppError, Principal, RequestMeta, Result};

const BROWSER_PREFIX: &str = "icw_";
/// How often a browser's use of its session is written down.
const KEEPALIVE_SECS: i64 = 60;

/// A browser's cookie secret: shown to the browser once, kept only hashed.
pub struct BrowserSecret(pub String);

impl std::fmt::Debug for BrowserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserSecret(<redacted>)")
    }
}

impl App {
    /// Names the session of a token pair just issued (a login, its MFA
    /// step, an SSO code) by a new browser secret, for a cookie.
    pub async fn browser_bind(&self, tokens: &TokenPair, meta: &RequestMeta) -> Result<BrowserSecret> {
        let p = self.authenticate_from(&tokens.access_token, meta).await?;
        let sid = p.session.ok_or(AppError::Unauthenticated)?;
        let secret = format!("{BROWSER_PREFIX}{}", crypto::random_token(32));
        let hash = crypto::sha256_hex(&secret);
        self.store().write(move |c| Ok::<_, AppError>(session::bind_browser(c, sid, &hash)?)).await?;
        Ok(BrowserSecret(secret))
    }

    /// The caller behind a browser's cookie: its session, live, within its
    /// timeouts, from an address its organisation allows.
    pub async fn browser_principal(&self, secret: &str, meta: &RequestMeta) -> Result<Principal> {
        if !secret.starts_with(BROWSER_PREFIX) || secret.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        let hash = crypto::sha256_hex(secret);
        let found = self.store().read_now(move |c| session::by_browser(c, &hash)).await?;
        let Some((sid, org, seen)) = found else { return Err(AppError::Unauthenticated) };
        let now = self.clock().now();
        let Some(auth) = self.session_of(sid, org, now).await? else { return Err(AppError::Unauthenticated) };
        let p = self.session_principal(auth.clone(), org, None, now)?;
        if seen.plus_secs(KEEPALIVE_SECS) <= now || auth.session.expires_at.plus_secs(-KEEPALIVE_SECS) <= now {
            self.browser_keepalive(&auth, seen, now, meta).await?;
        }
        self.admit(p, meta).await
    }

    /// Ends a session whose time is up (audited, as a refresh would), or
    /// records its use and moves its expiry as a refresh would.
    async fn browser_keepalive(&self, auth: &session::SessionAuth, seen: Timestamp, now: Timestamp, meta: &RequestMeta) -> Result<()> {
        let defaults = (self.settings().session_idle_secs, self.settings().session_max_secs);
        let s = auth.session.clone();
        let max = auth.policy.max_secs.unwrap_or(defaults.1);
        let expires = now.plus_secs(self.settings().refresh_ttl_secs).min(s.created_at.plus_secs(max));
        let ended = timed_out(auth, seen, now, defaults);
        let meta = meta.clone();
        self.store()
            .write(move |c| {
                match ended {
                    Some(reason) => {
                        session::revoke_session(c, s.id, now, reason)?;
                        let details = json!({ "session_id": s.id.to_string(), "reason": reason });
                        let mut e = anonymous(&s.org.to_string(), &meta, now, "auth.session_expired", "denied", details);
                        e.actor_id = Some(s.user.to_string());
                        e.actor_kind = "user".into();
                        ironcase_store::audit::append(c, e)?;
                    }
                    None => {
                        session::extend_session(c, s.id, expires)?;
                        session::touch_session(c, s.id, now)?;
                    }
                }
                Ok::<_, AppError>(())
            })
            .await?;
        match ended {
            Some(_) => Err(AppError::Unauthenticated),
            None => Ok(()),
        }
    }

    /// The CSRF token of `p`'s session: a MAC of the session id under a key
    /// derived from the master key (nothing stored; the same for the
    /// session's life).
    pub fn csrf_token(&self, p: &Principal) -> Option<String> {
        p.session.map(|sid| self.inner.master.mac_hex("console-csrf", sid.to_string().as_bytes()))
    }

    /// Whether `token` is `p`'s session's CSRF token (constant time).
    pub fn csrf_valid(&self, p: &Principal, token: &str) -> bool {
        self.csrf_token(p).is_some_and(|t| crypto::ct_eq(t.as_bytes(), token.as_bytes()))
    }
}
