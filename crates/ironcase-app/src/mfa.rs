//! A second factor for accounts: TOTP (RFC 6238: SHA-1, six digits,
//! 30-second steps, one step of skew either way) with ten single-use backup
//! codes, and the login that asks for it. The secret is sealed under the
//! master key (associated data bound to the account) and shown only at
//! enrolment; each step is accepted at most once per account; backup codes
//! and login challenges are kept only as SHA-256 hashes.

use ironcase_domain::{OrgId, Permission, Timestamp, UserId};
use ironcase_store::mfa::{self, ChallengeRow};
use ironcase_store::org::{self, UserRow};
use ironcase_store::session;
use serde_json::json;

use crate::audit::{anonymous, by};
use crate::auth::{verify_password, TokenPair};
use crate::crypto;
use crate::{Actor, App, AppError, ErrorCode, Principal, RequestMeta, Result};

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// How long a login waits for its second factor.
pub const CHALLENGE_SECS: i64 = 300;
/// Codes a login challenge takes before it is spent.
pub const CHALLENGE_TRIES: i64 = 5;
/// Backup codes given at once.
pub const BACKUP_CODES: usize = 10;
const CHALLENGE_PREFIX: &str = "icm_";
const ISSUER: &str = "Ironcase";

/// What enrolment shows once: the secret, its `otpauth://` URI and that
/// URI's QR code (SVG).
pub struct Enrollment {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment").finish_non_exhaustive()
    }
}

/// A login that passed its password and waits for its second factor.
pub struct MfaChallenge {
    pub challenge: String,
    pub methods: Vec<&'static str>,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge").field("methods", &self.methods).finish_non_exhaustive()
    }
}

/// What the password step of a login answers.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens(TokenPair),
    MfaRequired(MfaChallenge),
}

/// A second factor as a client gives it.
pub enum SecondFactor {
    Code(String),
    BackupCode(String),
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecondFactor::Code(_) => "Code(..)",
            SecondFactor::BackupCode(_) => "BackupCode(..)",
        })
    }
}

fn sealing_context(user: UserId) -> String {
    format!("totp:{user}")
}

fn wrong_code() -> AppError {
    AppError::Refused { code: ErrorCode::InvalidMfaCode, detail: "the code is wrong or was already used".into() }
}

fn spent_challenge() -> AppError {
    AppError::Refused { code: ErrorCode::MfaChallengeInvalid, detail: "the challenge is unknown, expired or spent; log in again".into() }
}

/// What a session that may only enrol a second factor is told.
pub(crate) fn enrollment_required() -> AppError {
    AppError::Refused {
        code: ErrorCode::MfaEnrollmentRequired,
        detail: "the organisation requires a second factor: enrol one (POST /api/v1/auth/mfa/totp) first".into(),
    }
}

fn authenticator(secret: Vec<u8>, email: &str) -> Result<totp_rs::TOTP> {
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, STEP_SECS as u64, secret, Some(ISSUER.to_owned()), email.to_owned())
        .map_err(|e| AppError::Internal(format!("totp: {e}")))
}

/// The step `code` is the code of, among the previous, the current and the
/// next step at `now`. Every candidate is compared (in constant time), so
/// the time taken says nothing about which matched.
pub fn matching_step(totp: &totp_rs::TOTP, code: &str, now: Timestamp) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.0.div_euclid(1000) / STEP_SECS;
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let Ok(t) = u64::try_from(step * STEP_SECS) else { continue };
        if crypto::ct_eq(totp.generate(t).as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// The step of `code` for the authenticator sealed in `sealed` (the
/// account `user`'s, as [`App::totp_enroll`] sealed it): what a login's
/// second step computes (`ironcase bench --micro` measures it).
pub fn code_step(master: &crypto::MasterKey, sealed: &[u8], user: &UserRow, code: &str, now: Timestamp) -> Result<Option<i64>> {
    let secret = master.open(sealed, &sealing_context(user.id))?;
    Ok(matching_step(&authenticator(secret, &user.email)?, code, now))
}

/// A backup code as shown (`xxxx-xxxx-xxxx-xxxx`, 64 random bits) and the
/// hash kept of it.
fn backup_code() -> (String, String) {
    let raw = hex::encode(crypto::random_bytes::<8>());
    let shown = raw.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-");
    (shown, backup_hash(&raw))
}

/// The hash of a backup code however it was typed (case, dashes, spaces).
fn backup_hash(typed: &str) -> String {
    let norm: String = typed.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    crypto::sha256_hex(&format!("backup|{norm}"))
}

fn new_backup_codes() -> (Vec<String>, Vec<String>) {
    (0..BACKUP_CODES).map(|_| backup_code()).unzip()
}

impl App {
    /// The account behind a session: API keys have no second factor.
    pub(crate) fn session_user(p: &Principal) -> Result<UserId> {
        match (p.actor, p.session) {
            (Actor::User(u), Some(_)) => Ok(u),
            _ => Err(AppError::Forbidden("a second factor belongs to an account: sign in with a session, not an API key".into())),
        }
    }

    /// `POST /auth/mfa/totp`: a new secret for the caller's account, waiting
    /// for a first code. Starting again replaces one not yet confirmed.
    pub async fn totp_enroll(&self, p: &Principal, meta: &RequestMeta) -> Result<Enrollment> {
        let user_id = Self::session_user(p)?;
        let now = self.clock().now();
        let user = self.store().read_now(move |c| org::get_user(c, user_id)).await?;
        let secret = crypto::random_bytes::<20>().to_vec();
        let sealed = self.inner.master.seal(&secret, &sealing_context(user_id))?;
        let totp = authenticator(secret, &user.email)?;
        let e = by(p, meta, now, "auth.mfa.enrollment_started", ("account", &user_id.to_string()), json!({ "method": "totp" }));
        let started = self
            .store()
            .write(move |c| {
                if !mfa::begin_totp(c, user_id, &sealed, now)? {
                    return Ok(false);
                }
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(true)
            })
            .await?;
        if !started {
            return Err(AppError::Conflict {
                code: ErrorCode::MfaAlreadyEnabled,
                detail: "the account already has an authenticator".into(),
            });
        }
        let uri = totp.get_url();
        let qr_svg = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| AppError::Internal(format!("qr: {e}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok(Enrollment { secret: totp.get_secret_base32(), uri, qr_svg })
    }

    /// `POST /auth/mfa/totp/confirm`: a first code proves the authenticator
    /// holds the secret; the account's MFA is on, and its ten backup codes
    /// are returned, once.
    pub async fn totp_confirm(&self, p: &Principal, meta: &RequestMeta, code: &str) -> Result<Vec<String>> {
        let user_id = Self::session_user(p)?;
        let now = self.clock().now();
        let (user, row) = self.store().read_now(move |c| Ok::<_, AppError>((org::get_user(c, user_id)?, mfa::totp(c, user_id)?))).await?;
        let row = match row {
            Some(r) if r.confirmed_at.is_none() => r,
            Some(_) => {
                return Err(AppError::Conflict {
                    code: ErrorCode::MfaAlreadyEnabled,
                    detail: "the account already has an authenticator".into(),
                })
            }
            None => return Err(AppError::Conflict { code: ErrorCode::MfaNotEnrolled, detail: "start an enrolment first".into() }),
        };
        let step = code_step(&self.inner.master, &row.sealed_secret, &user, code, now)?;
        let (shown, hashes) = new_backup_codes();
        let ok = by(p, meta, now, "auth.mfa.enrolled", ("account", &user_id.to_string()), json!({ "method": "totp" }));
        let mut failed = by(p, meta, now, "auth.mfa.enrollment_failed", ("account", &user_id.to_string()), json!({ "method": "totp" }));
        failed.outcome = "failure".into();
        let confirmed = self
            .store()
            .write(move |c| {
                if let Some(step) = step {
                    if mfa::accept_step(c, user_id, step, Some(now))? {
                        mfa::replace_backup_codes(c, user_id, &hashes, now)?;
                        // A session that could only enrol may now do the rest.
                        session::note_auth_change(c)?;
                        ironcase_store::audit::append(c, ok)?;
                        return Ok(true);
                    }
                }
                ironcase_store::audit::append(c, failed)?;
                Ok::<_, AppError>(false)
            })
            .await?;
        if confirmed {
            Ok(shown)
        } else {
            Err(wrong_code())
        }
    }

    /// Checks a current code of the caller's confirmed authenticator (each
    /// step once), auditing a failure; the account's row for the caller.
    pub(crate) async fn current_code(&self, p: &Principal, meta: &RequestMeta, code: &str, password: Option<String>) -> Result<UserId> {
        let user_id = Self::session_user(p)?;
        let now = self.clock().now();
        let (user, row) = self.store().read_now(move |c| Ok::<_, AppError>((org::get_user(c, user_id)?, mfa::totp(c, user_id)?))).await?;
        let Some(row) = row.filter(|r| r.confirmed_at.is_some()) else {
            return Err(AppError::Conflict { code: ErrorCode::MfaNotEnrolled, detail: "the account has no authenticator".into() });
        };
        if let Some(pw) = password {
            if !verify_password(pw, user.password_hash.clone()).await {
                return Err(AppError::InvalidCredentials);
            }
        }
        let step = code_step(&self.inner.master, &row.sealed_secret, &user, code, now)?;
        let mut failed = by(p, meta, now, "auth.mfa.failed", ("account", &user_id.to_string()), json!({ "method": "totp" }));
        failed.outcome = "failure".into();
        let accepted = self
            .store()
            .write(move |c| {
                if let Some(step) = step {
                    if mfa::accept_step(c, user_id, step, None)? {
                        return Ok(true);
                    }
                }
                ironcase_store::audit::append(c, failed)?;
                Ok::<_, AppError>(false)
            })
            .await?;
        if accepted {
            Ok(user_id)
        } else {
            Err(wrong_code())
        }
    }

    /// `POST /auth/mfa/totp/disable`: with the password and a current code.
    pub async fn totp_disable(&self, p: &Principal, meta: &RequestMeta, password: String, code: &str) -> Result<()> {
        let user_id = self.current_code(p, meta, code, Some(password)).await?;
        let now = self.clock().now();
        let e = by(p, meta, now, "auth.mfa.disabled", ("account", &user_id.to_string()), json!({ "method": "totp" }));
        self.store()
            .write(move |c| {
                mfa::remove(c, user_id)?;
                session::note_auth_change(c)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await
    }

    /// `POST /auth/mfa/backup-codes`: ten new backup codes for a current
    /// code; the old ones stop working.
    pub async fn backup_codes_regenerate(&self, p: &Principal, meta: &RequestMeta, code: &str) -> Result<Vec<String>> {
        let user_id = self.current_code(p, meta, code, None).await?;
        let now = self.clock().now();
        let (shown, hashes) = new_backup_codes();
        let e = by(p, meta, now, "auth.mfa.backup_codes_regenerated", ("account", &user_id.to_string()), json!({}));
        self.store()
            .write(move |c| {
                mfa::replace_backup_codes(c, user_id, &hashes, now)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(shown)
    }

    /// `DELETE /members/{user_id}/mfa`: an owner or admin removes a
    /// member's authenticator (lost, say). Their sessions here end; the
    /// reset is audited in the organisation and, as the account is no
    /// single organisation's, in the platform's log.
    pub async fn member_mfa_reset(&self, p: &Principal, meta: &RequestMeta, user: UserId) -> Result<()> {
        let target = self.owner_or_admin_over(p, meta, user).await?;
        self.require_recent_proof(p)?;
        let org_id = p.org;
        let now = self.clock().now();
        let in_org = by(p, meta, now, "member.mfa_reset", ("user", &user.to_string()), json!({ "email": target.email }));
        let mut on_account = by(p, meta, now, "account.mfa_reset", ("account", &user.to_string()), json!({ "organization_id": org_id }));
        on_account.tenant = ironcase_store::audit::PLATFORM.to_owned();
        let reset = self
            .store()
            .write(move |c| {
                if mfa::totp(c, user)?.is_none() {
                    return Ok(false);
                }
                mfa::remove(c, user)?;
                session::revoke_member_sessions(c, org_id, user, now, "mfa_reset")?;
                ironcase_store::audit::append(c, in_org)?;
                ironcase_store::audit::append(c, on_account)?;
                Ok::<_, AppError>(true)
            })
            .await?;
        if reset {
            Ok(())
        } else {
            Err(AppError::Conflict { code: ErrorCode::MfaNotEnrolled, detail: "the member has no authenticator".into() })
        }
    }

    /// `GET /organization/mfa-policy`: whether every member needs a second
    /// factor.
    pub async fn mfa_policy(&self, p: &Principal, meta: &RequestMeta) -> Result<bool> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org_id = p.org;
        self.store().read_now(move |c| org::mfa_required(c, org_id)).await.map_err(AppError::from)
    }

    /// `PUT /organization/mfa-policy`: with `required`, a member without a
    /// second factor who logs in gets a session that can only enrol one
    /// (API keys are not affected); sessions follow at once.
    pub async fn set_mfa_policy(&self, p: &Principal, meta: &RequestMeta, required: bool) -> Result<bool> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let now = self.clock().now();
        let org_id = p.org;
        let e = by(p, meta, now, "organization.mfa_policy", ("organization", &org_id.to_string()), json!({ "mfa_required": required }));
        self.store()
            .write(move |c| {
                org::set_mfa_required(c, org_id, required)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(required)
    }

    /// After a good password for an account with MFA: a challenge for
    /// [`App::mfa_verify`] instead of tokens.
    pub(crate) async fn mfa_challenge(&self, user: UserId, org: OrgId, source: String, meta: &RequestMeta) -> Result<MfaChallenge> {
        let now = self.clock().now();
        let challenge = format!("{CHALLENGE_PREFIX}{}", crypto::random_token(32));
        let hash = crypto::sha256_hex(&challenge);
        let row = ChallengeRow { user, org, source, expires_at: now.plus_secs(CHALLENGE_SECS), tries: 0 };
        let mut e = anonymous(&org.to_string(), meta, now, "auth.login", "mfa_required", json!({ "methods": ["totp", "backup_code"] }));
        e.actor_id = Some(user.to_string());
        self.store()
            .write(move |c| {
                mfa::insert_challenge(c, &hash, &row, now)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(MfaChallenge { challenge, methods: vec!["totp", "backup_code"] })
    }

    /// `POST /auth/mfa/verify`: the second step of a login. A challenge is
    /// single-use, bound to its account, expires after five minutes and
    /// takes five codes; a wrong code counts as a failed login of the
    /// account from the login's source, and a code whose step was already
    /// accepted is refused (and audited) as a replay.
    pub async fn mfa_verify(&self, challenge: &str, factor: SecondFactor, meta: &RequestMeta) -> Result<TokenPair> {
        let now = self.clock().now();
        let hash = crypto::sha256_hex(challenge);
        // The try is counted whatever follows (its write commits).
        let h = hash.clone();
        let found = self
            .store()
            .write(move |c| {
                let Some(ch) = mfa::try_challenge(c, &h)? else { return Ok(None) };
                if ch.expires_at <= now || ch.tries > CHALLENGE_TRIES {
                    mfa::end_challenge(c, &h)?;
                    return Ok(None);
                }
                let user = org::get_user(c, ch.user)?;
                let row = mfa::totp(c, ch.user)?;
                Ok::<_, AppError>(Some((ch, user, row)))
            })
            .await?;
        let Some((ch, user, row)) = found else { return Err(spent_challenge()) };
        let step = match (&factor, &row) {
            (SecondFactor::Code(code), Some(row)) if row.confirmed_at.is_some() => {
                code_step(&self.inner.master, &row.sealed_secret, &user, code, now)?
            }
            _ => None,
        };
        let backup = match &factor {
            SecondFactor::BackupCode(b) => Some(backup_hash(b)),
            SecondFactor::Code(_) => None,
        };
        let method = if backup.is_some() { "backup_code" } else { "totp" };
        let (user_id, tenant) = (ch.user, ch.org.to_string());
        let mut failure = anonymous(&tenant, meta, now, "auth.mfa.failed", "failure", json!({ "method": method }));
        failure.actor_id = Some(user_id.to_string());
        let mut replay = anonymous(&tenant, meta, now, "auth.mfa.replay_refused", "denied", json!({ "method": method }));
        replay.actor_id = Some(user_id.to_string());
        let mut used = anonymous(&tenant, meta, now, "auth.mfa.backup_code_used", "success", json!({}));
        used.actor_id = Some(user_id.to_string());
        let (email, source, tries) = (user.email.clone(), ch.source.clone(), ch.tries);
        let h = hash.clone();
        let passed = self
            .store()
            .write(move |c| {
                let passed = match (step, &backup) {
                    (Some(step), None) => {
                        let accepted = mfa::accept_step(c, user_id, step, None)?;
                        if !accepted {
                            ironcase_store::audit::append(c, replay)?;
                        }
                        accepted
                    }
                    (None, Some(b)) => {
                        let ok = mfa::use_backup_code(c, user_id, b, now)?;
                        if ok {
                            ironcase_store::audit::append(c, used)?;
                        }
                        ok
                    }
                    _ => false,
                };
                // Single use: a challenge another request ended is spent.
                if passed && mfa::end_challenge(c, &h)? {
                    return Ok(true);
                }
                session::record_login_failure(c, &email, &source, now)?;
                ironcase_store::audit::append(c, failure)?;
                if tries >= CHALLENGE_TRIES {
                    mfa::end_challenge(c, &h)?;
                }
                Ok::<_, AppError>(false)
            })
            .await?;
        if !passed {
            return Err(wrong_code());
        }
        self.start_session(&user, ch.org, ch.source, meta, "mfa").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 test vectors (eight digits there; the last six of
    /// them here), at and around each step.
    #[test]
    fn codes_are_rfc_6238s() {
        let secret = b"12345678901234567890".to_vec();
        let totp = authenticator(secret, "a@example.org").expect("totp");
        for (secs, code8) in [(59_i64, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924"), (2_000_000_000, "69279037")] {
            let code = &code8[2..];
            let step = secs / STEP_SECS;
            assert_eq!(matching_step(&totp, code, Timestamp(secs * 1000)), Some(step), "{secs}");
            assert_eq!(matching_step(&totp, code, Timestamp((secs + STEP_SECS) * 1000)), Some(step), "one step late");
            assert_eq!(matching_step(&totp, code, Timestamp((secs - STEP_SECS) * 1000)), Some(step), "one step early");
            assert_eq!(matching_step(&totp, code, Timestamp((secs + 2 * STEP_SECS) * 1000)), None, "two steps late");
        }
        assert_eq!(matching_step(&totp, "28708", Timestamp(59_000)), None, "five digits");
        assert_eq!(matching_step(&totp, "28708a", Timestamp(59_000)), None);
    }

    #[test]
    fn backup_codes_are_typed_loosely_and_shown_grouped() {
        let (shown, hash) = backup_code();
        assert_eq!(shown.len(), 19);
        assert_eq!(backup_hash(&shown.to_uppercase().replace('-', " ")), hash);
        assert_ne!(backup_hash("0000-0000-0000-0000"), hash);
    }
}
