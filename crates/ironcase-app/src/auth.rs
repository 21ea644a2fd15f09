//! Authentication: passwords (argon2id), sessions with short-lived JWT access
//! tokens, rotating refresh tokens with reuse detection, API keys, and turning
//! a bearer credential into a [`Principal`].

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ironcase_domain::{OrgId, Role, SessionId, Sight, Timestamp, UserId};
use ironcase_store::session::{self, SessionRow};
use ironcase_store::{apikey, audit::NewEntry, org, Store};
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::anonymous;
use crate::crypto::{self, MasterKey};
pub use crate::mfa::LoginOutcome;
use crate::{Actor, App, AppError, Principal, RequestMeta, Result};
use ironcase_store::mfa;

pub const API_KEY_PREFIX: &str = "ick_";
pub const REFRESH_PREFIX: &str = "icr_";
const AUDIENCE: &str = "ironcase";
const ISSUER: &str = "ironcase";

fn argon() -> Argon2<'static> {
    // OWASP: argon2id, m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Password hashes computed at once: half the cores (at least one). Each
/// costs ~17 ms of a core and 19 MiB; more at once would take every core
/// from the other requests (measured: with hashing unbounded, 4 login
/// clients cut the reads alongside from 22,400 to 6,600 a second, p99
/// 0.8 → 8 ms). Logins beyond it wait their turn.
fn hashing() -> &'static tokio::sync::Semaphore {
    static H: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    H.get_or_init(|| tokio::sync::Semaphore::new((std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) / 2).max(1)))
}

pub async fn hash_password(password: String) -> Result<String> {
    let _turn = hashing().acquire().await.map_err(|_| AppError::Internal("password hashing closed".into()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AppError::Internal("password hashing failed".into()))
    })
    .await
    .map_err(|_| AppError::Internal("password hashing task failed".into()))?
}

/// For a user about to be created: checks `password` (required, since the
/// user is new) and hashes it once every field is valid. Existing users
/// (`exists`) keep theirs: `None`, and nothing is checked.
pub(crate) async fn new_user_password(
    exists: bool,
    password: Option<&str>,
    field: &str,
    errs: &mut ironcase_domain::ValidationErrors,
) -> Result<Option<String>> {
    match (exists, password) {
        (true, _) => Ok(None),
        (false, Some(pw)) => {
            ironcase_domain::validate::password(field, pw, errs);
            if errs.is_empty() {
                Ok(Some(hash_password(pw.to_owned()).await?))
            } else {
                Ok(None)
            }
        }
        (false, None) => {
            errs.push(field, "is required for a new user");
            Ok(None)
        }
    }
}

pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_turn) = hashing().acquire().await else { return false };
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(h) => argon().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// The HMAC keys that sign access tokens, by key id. Kept in the database
/// sealed under the master key so that every node can verify every token.
pub(crate) struct TokenKeys {
    current: String,
    keys: HashMap<String, Vec<u8>>,
}

impl TokenKeys {
    pub(crate) async fn load_or_create(store: &Store, master: &MasterKey, now: Timestamp) -> Result<TokenKeys> {
        let rows = { store.read(session::signing_keys).await? };
        let mut keys = HashMap::new();
        let mut current = None;
        for (id, alg, sealed) in rows {
            if alg != "HS256" {
                continue;
            }
            let plain = master.open(&sealed, &format!("signing_key:{id}"))?;
            current.get_or_insert_with(|| id.clone());
            keys.insert(id, plain);
        }
        if let Some(current) = current {
            return Ok(TokenKeys { current, keys });
        }
        let id = format!("sk_{}", crypto::random_token(9));
        let secret = crypto::random_bytes::<32>().to_vec();
        let sealed = master.seal(&secret, &format!("signing_key:{id}"))?;
        let kid = id.clone();
        store.write(move |c| session::insert_signing_key(c, &kid, "HS256", &sealed, now)).await?;
        keys.insert(id.clone(), secret);
        Ok(TokenKeys { current: id, keys })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    org: String,
    iat: i64,
    exp: i64,
    aud: String,
    iss: String,
    typ: String,
}

/// What login and refresh hand back.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    /// After a login: proof that this client logged in to this account,
    /// which it sends with its next logins (OWASP's device cookie): failures
    /// from elsewhere do not slow it down.
    pub device_token: Option<String>,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

pub struct LoginInput {
    pub email: String,
    pub password: String,
    pub organization: Option<String>,
    /// A device token from an earlier login to this account, if any.
    pub device_token: Option<String>,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput").field("email", &self.email).field("organization", &self.organization).finish_non_exhaustive()
    }
}

const DEVICE_PREFIX: &str = "icd_";

/// Addresses refused for presenting bad credentials, until when. Bounded: a
/// flood of addresses forgets the oldest blocks (the limiter still counts).
#[derive(Default)]
pub(crate) struct CredentialBlocks(std::sync::Mutex<HashMap<String, Timestamp>>);

impl CredentialBlocks {
    /// Seconds left if `address` is refused at `now`.
    fn blocked(&self, address: &str, now: Timestamp) -> Option<i64> {
        let m = self.0.lock().ok()?;
        m.get(address).filter(|until| **until > now).map(|until| ((until.0 - now.0 + 999) / 1000).max(1))
    }

    /// Refuses `address` until `until`; true when it was not refused already
    /// (a new window: worth an audit entry).
    fn block(&self, address: &str, until: Timestamp) -> bool {
        let Ok(mut m) = self.0.lock() else { return false };
        if m.len() >= 100_000 {
            m.retain(|_, u| *u > until.plus_secs(-3600));
        }
        m.insert(address.to_owned(), until).is_none_or(|old| old < until.plus_secs(-1))
    }
}

/// Where a login attempt comes from, for counting its failures.
fn login_source(device: Option<&str>, meta: &RequestMeta) -> String {
    match device {
        Some(id) => format!("device:{id}"),
        None => format!("ip:{}", meta.source_ip.as_deref().unwrap_or("")),
    }
}

/// What `GET /auth/me` shows.
#[derive(Debug, Clone)]
pub struct Me {
    pub user: org::UserRow,
    pub organization: org::OrgRow,
    pub role: Role,
    /// The account has a confirmed authenticator.
    pub mfa_enabled: bool,
    pub backup_codes_left: i64,
}

enum Refreshed {
    Ok {
        session: SessionRow,
        refresh: String,
    },
    Reused,
    /// Idle or lived too long: ended now.
    Expired,
    Invalid,
}

impl App {
    fn sign_access(&self, s: &SessionRow, now: Timestamp) -> Result<(String, i64)> {
        let ttl = self.settings().access_ttl_secs.min(900);
        let claims = Claims {
            sub: s.user.to_string(),
            sid: s.id.to_string(),
            org: s.org.to_string(),
            iat: now.0 / 1000,
            exp: now.0 / 1000 + ttl,
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
            typ: "access".into(),
        };
        let keys = &self.inner.tokens;
        let secret = keys.keys.get(&keys.current).ok_or_else(|| AppError::Internal("no signing key".into()))?;
        let mut header = Header::new(JwtAlg::HS256);
        header.kid = Some(keys.current.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .map_err(|_| AppError::Internal("token signing failed".into()))?;
        Ok((token, ttl))
    }

    /// The MAC that binds a device id to an account's e-mail address.
    fn device_mac(&self, email: &str, id: &str) -> Result<String> {
        let keys = &self.inner.tokens;
        let secret = keys.keys.get(&keys.current).ok_or_else(|| AppError::Internal("no signing key".into()))?;
        Ok(crypto::hmac_sha256_hex(secret, format!("device|{email}|{id}").as_bytes()))
    }

    /// A new device token for `email`: `icd_<id>.<mac>`.
    fn issue_device_token(&self, email: &str) -> Result<String> {
        let id = crypto::random_token(12);
        Ok(format!("{DEVICE_PREFIX}{id}.{}", self.device_mac(email, &id)?))
    }

    /// The device id of `token` if it was issued for `email` (compared in
    /// constant time); anything else is no device.
    fn device_of(&self, email: &str, token: &str) -> Option<String> {
        let (id, mac) = token.strip_prefix(DEVICE_PREFIX)?.split_once('.')?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        let expected = self.device_mac(email, id).ok()?;
        (!expected.is_empty() && crypto::ct_eq(mac.as_bytes(), expected.as_bytes())).then(|| id.to_owned())
    }

    /// `POST /auth/login`. Failures are counted per account and source: five
    /// from one address (or one known device) refuse that source for that
    /// account until the window passes, so nobody can lock an account for
    /// everyone; many from addresses slow further attempts from addresses
    /// (1, 2, 4 … 60 s apart), while a device that logged in before is not
    /// slowed.
    /// An account with a second factor gets a challenge instead of tokens
    /// ([`App::mfa_verify`]).
    pub async fn login(&self, input: LoginInput, meta: &RequestMeta) -> Result<LoginOutcome> {
        let now = self.clock().now();
        let email = input.email.trim().to_lowercase();
        let window_start = now.plus_secs(-self.settings().login_window_secs);
        let device = input.device_token.as_deref().and_then(|t| self.device_of(&email, t));
        let source = login_source(device.as_deref(), meta);
        let (user, org_choice, failures, mfa_on, sso_only) = {
            let (email, slug, source) = (email.clone(), input.organization.clone(), source.clone());
            self.store()
                .read(move |c| {
                    let user = org::find_user_by_email(c, &email)?;
                    let mfa_on = match &user {
                        Some(u) => mfa::totp(c, u.id)?.is_some_and(|t| t.confirmed_at.is_some()),
                        None => false,
                    };
                    let failures = session::login_failures(c, &email, &source, window_start)?;
                    let choice = match (&user, &slug) {
                        (Some(u), Some(slug)) => match org::find_org_by_slug(c, slug)? {
                            Some(o) => org::membership_role(c, o.id, u.id)?.map(|r| (o.id, r)),
                            None => None,
                        },
                        (Some(u), None) => org::first_membership(c, u.id)?,
                        (None, _) => None,
                    };
                    let sso_only = match choice {
                        Some((o, role)) => crate::sso::password_login_refused(c, o, role)?,
                        None => false,
                    };
                    Ok::<_, AppError>((user, choice, failures, mfa_on, sso_only))
                })
                .await?
        };
        let audit_tenant = org_choice.map(|(o, _)| o.to_string()).unwrap_or_else(|| ironcase_store::audit::PLATFORM.to_owned());
        let user_ref = user.as_ref().map(|u| u.id.to_string());

        // The login class: attempts per account and source address, failed
        // or not (the lockout below counts failures per account alone).
        let key = format!("{email}|{}", meta.source_ip.as_deref().unwrap_or(""));
        let d = self.rate_check(&self.inner.login_limiter, &key, now).await;
        if !d.allowed {
            let mut e = anonymous(&audit_tenant, meta, now, "auth.login", "denied", json!({ "reason": "rate_limited", "email": email }));
            e.actor_id = user_ref;
            self.write_audit(e).await?;
            return Err(AppError::TooManyAttempts { retry_after_secs: d.retry_after_secs.unwrap_or(1) });
        }

        // Refused or slowed: before looking at the password, so that the right
        // one does not get through either.
        let settings = self.settings();
        let wait = if failures.from_source >= settings.login_max_failures {
            let oldest = failures.oldest_from_source.unwrap_or(now);
            Some(("too_many_failures", oldest.plus_secs(settings.login_window_secs).0 - now.0))
        } else if device.is_none() && failures.untrusted >= settings.login_throttle_after {
            let step = (failures.untrusted - settings.login_throttle_after).min(6);
            let delay_secs = (1i64 << step).min(60);
            let last = failures.newest_untrusted.unwrap_or(now);
            Some(("throttled", last.plus_secs(delay_secs).0 - now.0)).filter(|(_, ms)| *ms > 0)
        } else {
            None
        };
        if let Some((reason, ms)) = wait {
            let mut e = anonymous(&audit_tenant, meta, now, "auth.login", "denied", json!({ "reason": reason, "email": email }));
            e.actor_id = user_ref;
            self.write_audit(e).await?;
            return Err(AppError::TooManyAttempts { retry_after_secs: ((ms + 999) / 1000).max(1) });
        }

        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| self.inner.dummy_hash.clone());
        let password_ok = verify_password(input.password, hash).await && user.is_some();
        let (user, (org_id, _role)) = match (user, org_choice) {
            (Some(u), Some(choice)) if password_ok => (u, choice),
            _ => {
                let mut e = anonymous(
                    &audit_tenant,
                    meta,
                    now,
                    "auth.login",
                    "failure",
                    json!({ "reason": "invalid_credentials", "email": email }),
                );
                e.actor_id = user_ref;
                let (em, source) = (email.clone(), source.clone());
                self.store()
                    .write(move |c| {
                        session::record_login_failure(c, &em, &source, now)?;
                        ironcase_store::audit::append(c, e)?;
                        Ok::<_, AppError>(())
                    })
                    .await?;
                return Err(AppError::InvalidCredentials);
            }
        };

        // An organisation that requires single sign-on: passwords are for owners only.
        if sso_only {
            let mut e =
                anonymous(&org_id.to_string(), meta, now, "auth.login", "denied", json!({ "reason": "sso_required", "email": email }));
            e.actor_id = Some(user.id.to_string());
            self.write_audit(e).await?;
            return Err(AppError::Refused {
                code: crate::ErrorCode::SsoRequired,
                detail: "this organisation signs in through its identity provider: GET /api/v1/auth/sso/{organization}/start".into(),
            });
        }
        if mfa_on {
            return Ok(LoginOutcome::MfaRequired(self.mfa_challenge(user.id, org_id, source, meta).await?));
        }
        Ok(LoginOutcome::Tokens(self.start_session(&user, org_id, source, meta, "password").await?))
    }

    /// A new session for `user` in `org`, who proved themselves by `method`
    /// from `source`: that source's failed logins are forgotten, the login
    /// audited, and the tokens (with a device token) returned.
    pub(crate) async fn start_session(
        &self,
        user: &org::UserRow,
        org_id: OrgId,
        source: String,
        meta: &RequestMeta,
        method: &str,
    ) -> Result<TokenPair> {
        let now = self.clock().now();
        let email = user.email.clone();
        let window_start = now.plus_secs(-self.settings().login_window_secs);
        let (policy, networks) =
            self.store().read_now(move |c| Ok::<_, AppError>((org::session_policy(c, org_id)?, org::ip_allowlist(c, org_id)?))).await?;
        // The right password from outside the organisation's networks: no
        // session (its tokens would be refused anyway).
        if !networks.permits(meta.source_ip.as_deref().and_then(|a| a.parse().ok())) {
            let mut e =
                anonymous(&org_id.to_string(), meta, now, "auth.login", "denied", json!({ "reason": "ip_not_allowed", "method": method }));
            e.actor_id = Some(user.id.to_string());
            e.actor_kind = "user".into();
            self.write_audit(e).await?;
            return Err(AppError::Refused {
                code: crate::ErrorCode::IpNotAllowed,
                detail: "the organisation does not allow logins from this address".into(),
            });
        }
        let max = policy.max_secs.unwrap_or(self.settings().session_max_secs);
        let s = SessionRow {
            id: SessionId::new(),
            org: org_id,
            user: user.id,
            created_at: now,
            expires_at: now.plus_secs(self.settings().refresh_ttl_secs.min(max)),
            revoked_at: None,
        };
        let origin = session::Origin { source_ip: meta.source_ip.clone(), user_agent: meta.user_agent.clone(), method: method.to_owned() };
        let refresh = format!("{REFRESH_PREFIX}{}", crypto::random_token(32));
        let refresh_hash = crypto::sha256_hex(&refresh);
        let mut e =
            anonymous(&org_id.to_string(), meta, now, "auth.login", "success", json!({ "session_id": s.id.to_string(), "method": method }));
        e.actor_id = Some(user.id.to_string());
        e.actor_kind = "user".into();
        e.resource_type = Some("session".into());
        e.resource_id = Some(s.id.to_string());
        let device_token = self.issue_device_token(&email)?;
        let (srow, window) = (s.clone(), window_start);
        self.store()
            .write(move |c| {
                session::clear_login_failures(c, &email, &source, window)?;
                session::insert_session(c, &srow, &origin)?;
                session::insert_refresh(c, &refresh_hash, srow.id, now, srow.expires_at)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        let (access_token, expires_in) = self.sign_access(&s, now)?;
        Ok(TokenPair { access_token, refresh_token: refresh, expires_in, device_token: Some(device_token) })
    }

    /// `POST /auth/refresh`: rotates the refresh token. Presenting one that was
    /// already used revokes the whole login.
    pub async fn refresh(&self, token: &str, meta: &RequestMeta) -> Result<TokenPair> {
        let now = self.clock().now();
        if !token.starts_with(REFRESH_PREFIX) || token.len() > 256 {
            return Err(AppError::Unauthenticated);
        }
        let hash = crypto::sha256_hex(token);
        let new_refresh = format!("{REFRESH_PREFIX}{}", crypto::random_token(32));
        let new_hash = crypto::sha256_hex(&new_refresh);
        let ttl = self.settings().refresh_ttl_secs;
        let (default_idle, default_max) = (self.settings().session_idle_secs, self.settings().session_max_secs);
        let meta = meta.clone();
        let outcome = self
            .store()
            .write(move |c| {
                {
                    let Some(rt) = session::get_refresh(c, &hash)? else { return Ok(Refreshed::Invalid) };
                    let Some(auth) = session::session_auth(c, rt.session, None)? else { return Ok(Refreshed::Invalid) };
                    let s = auth.session.clone();
                    let mut e =
                        anonymous(&s.org.to_string(), &meta, now, "auth.refresh", "success", json!({ "session_id": s.id.to_string() }));
                    e.actor_id = Some(s.user.to_string());
                    e.actor_kind = "user".into();
                    e.resource_type = Some("session".into());
                    e.resource_id = Some(s.id.to_string());
                    if rt.used_at.is_some() {
                        // Someone holds a copy of a rotated token: end the login everywhere.
                        session::revoke_session(c, s.id, now, "refresh_token_reuse")?;
                        e.action = "auth.refresh_reuse".into();
                        e.outcome = "denied".into();
                        ironcase_store::audit::append(c, e)?;
                        return Ok(Refreshed::Reused);
                    }
                    if s.revoked_at.is_some() || auth.role.is_none() {
                        return Ok(Refreshed::Invalid);
                    }
                    let max = auth.policy.max_secs.unwrap_or(default_max);
                    let seen = session::last_seen(c, s.id)?.unwrap_or(s.created_at);
                    if let Some(reason) = timed_out(&auth, seen, now, (default_idle, default_max)) {
                        session::revoke_session(c, s.id, now, reason)?;
                        e.action = "auth.session_expired".into();
                        e.outcome = "denied".into();
                        e.details = json!({ "session_id": s.id.to_string(), "reason": reason });
                        ironcase_store::audit::append(c, e)?;
                        return Ok(Refreshed::Expired);
                    }
                    if s.expires_at <= now || rt.expires_at <= now {
                        return Ok(Refreshed::Invalid);
                    }
                    if !session::use_refresh(c, &hash, now)? {
                        return Ok(Refreshed::Invalid);
                    }
                    let expires = now.plus_secs(ttl).min(s.created_at.plus_secs(max));
                    session::insert_refresh(c, &new_hash, s.id, now, expires)?;
                    session::extend_session(c, s.id, expires)?;
                    session::touch_session(c, s.id, now)?;
                    ironcase_store::audit::append(c, e)?;
                    Ok::<_, AppError>(Refreshed::Ok { session: s, refresh: new_refresh })
                }
            })
            .await?;
        match outcome {
            Refreshed::Ok { session, refresh } => {
                let (access_token, expires_in) = self.sign_access(&session, now)?;
                Ok(TokenPair { access_token, refresh_token: refresh, expires_in, device_token: None })
            }
            Refreshed::Reused | Refreshed::Invalid | Refreshed::Expired => Err(AppError::Unauthenticated),
        }
    }

    /// `POST /auth/logout`: the session ends now, with every token of it.
    pub async fn logout(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        let Some(sid) = p.session else {
            return Err(AppError::Conflict {
                code: crate::ErrorCode::NotASession,
                detail: "API keys are revoked with DELETE /api/v1/api-keys/{id}".into(),
            });
        };
        let now = self.clock().now();
        let e = crate::audit::by(p, meta, now, "auth.logout", ("session", &sid.to_string()), json!({}));
        self.store()
            .write(move |c| {
                session::revoke_session(c, sid, now, "logout")?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await
    }

    pub async fn me(&self, p: &Principal) -> Result<Me> {
        let (user_id, org_id, role) = (p.user_id(), p.org, p.role);
        self.store()
            .read_now(move |c| {
                let user = org::get_user(c, user_id)?;
                let organization = org::get_org(c, org_id)?;
                let mfa_enabled = mfa::totp(c, user_id)?.is_some_and(|t| t.confirmed_at.is_some());
                let backup_codes_left = if mfa_enabled { mfa::backup_codes_left(c, user_id)? } else { 0 };
                Ok(Me { user, organization, role, mfa_enabled, backup_codes_left })
            })
            .await
    }

    pub(crate) async fn write_audit(&self, e: NewEntry) -> Result<()> {
        self.store().write(move |c| ironcase_store::audit::append(c, e).map(|_| ()).map_err(AppError::from)).await
    }

    /// [`App::authenticate`] for a request from `meta`'s address: a
    /// credential that does not check out (a wrong API key, a forged or
    /// stale token) counts against the address; past
    /// `Settings::bad_credentials_per_address` bad credentials from it are
    /// refused with 429 until its allowance returns, and the refusal is
    /// audited once per address and window (platform log). Good credentials
    /// from that address still work: one noisy client behind a shared
    /// address locks nobody else out (and keys are too long to guess).
    pub async fn authenticate_from(&self, bearer: &str, meta: &RequestMeta) -> Result<Principal> {
        let now = self.clock().now();
        let address = meta.source_ip.as_deref().unwrap_or("");
        let err = match self.authenticate(bearer).await {
            Err(AppError::Unauthenticated) => AppError::Unauthenticated,
            Ok(p) => return self.admit(p, meta).await,
            other => return other,
        };
        if let Some(secs) = self.inner.credential_blocks.blocked(address, now) {
            return Err(AppError::TooManyAttempts { retry_after_secs: secs });
        }
        let d = self.rate_check(&self.inner.credential_limiter, address, now).await;
        if d.allowed {
            return Err(err);
        }
        let secs = d.retry_after_secs.unwrap_or(1).max(1);
        if self.inner.credential_blocks.block(address, now.plus_secs(secs)) {
            let kind = if bearer.starts_with(API_KEY_PREFIX) { "api_key" } else { "token" };
            let e = anonymous(
                ironcase_store::audit::PLATFORM,
                meta,
                now,
                "auth.bad_credentials",
                "denied",
                json!({ "reason": "rate_limited", "credential": kind, "retry_after_secs": secs }),
            );
            if let Err(e) = self.write_audit(e).await {
                tracing::error!(error = %e, "could not audit refused credentials");
            }
        }
        Err(AppError::TooManyAttempts { retry_after_secs: secs })
    }

    /// `p` if the request comes from where its credential may be used (the
    /// organisation's allow-list, and an API key's own): else 403
    /// `ip_not_allowed`, audited in the organisation once a minute per
    /// address at most (a blocked client retrying does not flood the log).
    pub(crate) async fn admit(&self, p: Principal, meta: &RequestMeta) -> Result<Principal> {
        let ip = meta.source_ip.as_deref().and_then(|a| a.parse::<std::net::IpAddr>().ok());
        if p.networks.permit(ip) {
            return Ok(p);
        }
        let now = self.clock().now();
        let address = meta.source_ip.as_deref().unwrap_or("");
        if self.inner.ip_denials.check_with(&format!("{}|{address}", p.org), self.inner.ip_denials.quota(), now).allowed {
            let list = if p.networks.organization.permits(ip) { "api_key" } else { "organization" };
            let e =
                crate::audit::by(&p, meta, now, "auth.ip_not_allowed", ("organization", &p.org.to_string()), json!({ "allow_list": list }));
            let e = NewEntry { outcome: "denied".into(), ..e };
            if let Err(e) = self.write_audit(e).await {
                tracing::error!(error = %e, "could not audit a refused address");
            }
        }
        Err(AppError::Refused {
            code: crate::ErrorCode::IpNotAllowed,
            detail: "requests with this credential are not allowed from this address".into(),
        })
    }

    /// Turns `Authorization: Bearer …` into the principal it names.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_api_key(bearer).await;
        }
        let header = jsonwebtoken::decode_header(bearer).map_err(|_| AppError::Unauthenticated)?;
        if header.alg != JwtAlg::HS256 {
            return Err(AppError::Unauthenticated);
        }
        let keys = &self.inner.tokens;
        let secret = header.kid.as_ref().and_then(|k| keys.keys.get(k)).ok_or(AppError::Unauthenticated)?;
        let mut v = Validation::new(JwtAlg::HS256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        // Expiry is checked below against the application clock.
        v.validate_exp = false;
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(bearer, &DecodingKey::from_secret(secret), &v).map_err(|_| AppError::Unauthenticated)?;
        let claims = data.claims;
        let now = self.clock().now();
        if claims.typ != "access" || claims.exp * 1000 <= now.0 {
            return Err(AppError::Unauthenticated);
        }
        let sid: SessionId = claims.sid.parse().map_err(|_| AppError::Unauthenticated)?;
        let org: OrgId = claims.org.parse().map_err(|_| AppError::Unauthenticated)?;
        let user: UserId = claims.sub.parse().map_err(|_| AppError::Unauthenticated)?;
        let Some(auth) = self.session_of(sid, org, now).await? else { return Err(AppError::Unauthenticated) };
        self.session_principal(auth, org, Some(user), now)
    }

    /// The session behind an access token of `org`: remembered from a
    /// recent request when nothing has changed since (see `sessions.rs`),
    /// else read from the database.
    pub(crate) async fn session_of(&self, sid: SessionId, org: OrgId, now: Timestamp) -> Result<Option<session::SessionAuth>> {
        let cache = &self.inner.sessions;
        // Read before the database is: a change committed after it moves it.
        let tag = match &self.inner.redis {
            Some(r) => r.auth_epoch().await.map(|(redis, outages)| crate::sessions::Tag { redis, outages, db: cache.db_epoch() }),
            None if self.store().backend() == ironcase_store::Backend::Sqlite => Some(cache.local_tag()),
            None => None,
        };
        if let Some(t) = tag {
            if let Some(a) = cache.get(sid, org, t, now) {
                cache.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Some(a));
            }
        }
        cache.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let auth = self.store().read_now(move |c| session::session_auth(c, sid, Some(org))).await?;
        if let (Some(t), Some(a)) = (tag, &auth) {
            cache.put(sid, org, t, a, now);
        }
        Ok(auth)
    }

    /// The caller behind a live session of `org` (and of `user`, when given).
    pub(crate) fn session_principal(
        &self,
        auth: session::SessionAuth,
        org: OrgId,
        user: Option<UserId>,
        now: Timestamp,
    ) -> Result<Principal> {
        let s = &auth.session;
        if s.revoked_at.is_some() || s.expires_at <= now || s.org != org || user.is_some_and(|u| u != s.user) {
            return Err(AppError::Unauthenticated);
        }
        let Some(role) = auth.role else { return Err(AppError::Unauthenticated) };
        if auth.org_status != "active" {
            return Err(AppError::OrganizationSuspended);
        }
        let (grants, custom_role, sight) = match &auth.custom_role {
            Some(c) => (c.grants(), Some(c.id), c.sight()),
            None => (ironcase_domain::Grants::of(role), None, Sight::ALL),
        };
        Ok(Principal {
            org,
            actor: Actor::User(s.user),
            role,
            grants,
            custom_role,
            session: Some(s.id),
            is_operator: auth.is_operator,
            sight,
            rate_per_minute: None,
            enrolling: auth.mfa_pending,
            authenticated_at: Some(auth.authenticated_at),
            networks: crate::Networks { organization: auth.ip_allowlist, key: Default::default() },
            signing_key: None,
            signed: false,
            audit_reads: auth.audit_reads,
        })
    }

    async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        if key.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        let hash = crypto::sha256_hex(key);
        let h = hash.clone();
        let row = { self.store().read_now(move |c| apikey::find_by_hash(c, &h)).await? };
        let Some(row) = row else { return Err(AppError::Unauthenticated) };
        // The lookup was by hash; compare again in constant time all the same.
        if !crypto::ct_eq(row.key_hash.as_bytes(), hash.as_bytes()) {
            return Err(AppError::Unauthenticated);
        }
        self.key_principal(row).await
    }

    /// The caller behind an API key that is live, in an organisation that is
    /// active and whose plan allows API access.
    pub(crate) async fn key_principal(&self, row: apikey::ApiKeyRow) -> Result<Principal> {
        let now = self.clock().now();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(AppError::Unauthenticated);
        }
        let (status, limits, networks, custom, audit_reads) = {
            let (id, custom) = (row.org, row.custom_role);
            self.store()
                .read_now(move |c| {
                    let custom = custom.map(|r| ironcase_store::role::get(c, id, r)).transpose()?;
                    let (plan, limits) = (org::plan_of(c, id)?.2, crate::quotas::limits(c, id)?);
                    let (networks, audit_reads) = org::access_controls(c, id)?;
                    Ok::<_, AppError>((plan, limits, networks, custom, audit_reads))
                })
                .await?
        };
        if status != "active" {
            return Err(AppError::OrganizationSuspended);
        }
        if !limits.has(ironcase_domain::plan::Feature::ApiAccess) {
            return Err(AppError::FeatureNotInPlan("api_access"));
        }
        // Remember use at most once a minute, off the request's path.
        if row.last_used_at.is_none_or(|t| now.0 - t.0 > 60_000) {
            let (store, id) = (self.store().clone(), row.id);
            tokio::spawn(async move {
                let r: Result<()> = store.write(move |c| Ok(apikey::touch(c, id, now)?)).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            });
        }
        // The key's own ceiling, within its role's sight.
        let own = Sight { tlp_max: row.tlp_max, categories: None };
        let sight = custom.as_ref().map_or(own, |c| c.sight().and(own));
        Ok(Principal {
            org: row.org,
            actor: Actor::ApiKey { key: row.id, owner: row.created_by },
            role: row.role,
            grants: custom.as_ref().map_or_else(|| ironcase_domain::Grants::of(row.role), |c| c.grants()),
            custom_role: row.custom_role,
            session: None,
            is_operator: false,
            sight,
            rate_per_minute: row.rate_per_minute,
            enrolling: false,
            authenticated_at: None,
            networks: crate::Networks { organization: networks, key: row.allowed_cidrs },
            signing_key: row.public_key.as_deref().and_then(crate::signature::public_key),
            signed: false,
            audit_reads,
        })
    }
}

/// Why a session has ended by time at `now`, if it has: lived too long, or
/// idle too long since `seen` (the organisation's timeouts, else the
/// server's `defaults`, idle and lifetime in seconds).
pub(crate) fn timed_out(auth: &session::SessionAuth, seen: Timestamp, now: Timestamp, defaults: (i64, i64)) -> Option<&'static str> {
    let idle = auth.policy.idle_secs.unwrap_or(defaults.0);
    let max = auth.policy.max_secs.unwrap_or(defaults.1);
    if auth.session.created_at.plus_secs(max) <= now {
        Some("lifetime_reached")
    } else if seen.plus_secs(idle) <= now {
        Some("idle_timeout")
    } else {
        None
    }
}

/// Generates a new API key: the key (shown once), its hash and display prefix.
pub(crate) fn new_api_key() -> (String, String, String) {
    let key = format!("{API_KEY_PREFIX}{}", crypto::random_token(32));
    let hash = crypto::sha256_hex(&key);
    let prefix = key.chars().take(12).collect();
    (key, hash, prefix)
}

/// Reads the database's count of changes to what sessions may do once every
/// [`crate::sessions::POLL_EVERY`], so that a node forgets the sessions it
/// remembers even when the node that made a change could not say so through
/// Redis. Ends when the node shuts down.
pub(crate) async fn poll_auth_epoch(
    store: ironcase_store::Store,
    cache: std::sync::Arc<crate::sessions::SessionCache>,
    mut closed: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match store.read_now(session::auth_epoch).await {
            Ok(n) => cache.polled(n),
            Err(e) => {
                // Unknown: nothing remembered is to be trusted.
                cache.polled(-1);
                tracing::warn!(error = %e, "could not read the count of session changes");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::sessions::POLL_EVERY) => {}
            _ = closed.changed() => return,
        }
        if *closed.borrow() {
            return;
        }
    }
}
