//! Single sign-on: each organisation's OpenID provider (its client secret
//! sealed by the caller), logins on their way through a provider (found by
//! the hash of their state, single-use), the accounts a provider knows
//! (issuer, subject), and the one-time codes a finished login hands to an
//! API client.

use ironcase_domain::{OrgId, Role, Timestamp, UserId};

use crate::{exec, params, parse_id, query_opt, Conn, Result, Row, Tx};

#[derive(Clone, PartialEq, Eq)]
pub struct SsoConfigRow {
    pub org: OrgId,
    pub issuer: String,
    pub client_id: String,
    /// The client secret, sealed (never shown again).
    pub sealed_secret: Vec<u8>,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub group_claim: String,
    /// `{group: role}` as JSON.
    pub role_mapping: String,
    pub default_role: Option<String>,
    pub jit: bool,
    pub sso_required: bool,
    /// The roles that may still sign in with a password while single
    /// sign-on is required (break-glass).
    pub password_roles: Vec<Role>,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for SsoConfigRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfigRow").field("org", &self.org).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_ascii_whitespace().map(str::to_owned).collect()
}

fn config_row(r: &Row<'_, '_>) -> Result<SsoConfigRow> {
    Ok(SsoConfigRow {
        org: parse_id(r, "organization_id")?,
        issuer: r.get("issuer")?,
        client_id: r.get("client_id")?,
        sealed_secret: r.get("sealed_secret")?,
        scopes: words(&r.get::<_, String>("scopes")?),
        allowed_domains: words(&r.get::<_, String>("allowed_domains")?),
        group_claim: r.get("group_claim")?,
        role_mapping: r.get("role_mapping")?,
        default_role: r.get("default_role")?,
        jit: r.get("jit")?,
        sso_required: r.get("sso_required")?,
        password_roles: r
            .get::<_, String>("password_roles")?
            .split_ascii_whitespace()
            .map(|w| Role::parse(w).ok_or_else(|| crate::StoreError::Corrupt(format!("password_roles: {w}"))))
            .collect::<Result<_>>()?,
        updated_at: Timestamp(r.get("updated_at")?),
    })
}

pub fn config(c: &Conn, org: OrgId) -> Result<Option<SsoConfigRow>> {
    c.scope(org)?;
    query_opt(
        c,
        "select organization_id, issuer, client_id, sealed_secret, scopes, allowed_domains, group_claim, role_mapping, default_role, \
                jit, sso_required, password_roles, updated_at from sso_config where organization_id = ?",
        [org.to_string()],
        config_row,
    )
}

/// Sets (or replaces) the organisation's provider.
pub fn put_config(c: &Tx, s: &SsoConfigRow) -> Result<()> {
    c.scope(s.org)?;
    exec(
        c,
        "insert into sso_config (organization_id, issuer, client_id, sealed_secret, scopes, allowed_domains, group_claim, role_mapping, \
                default_role, jit, sso_required, password_roles, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         on conflict (organization_id) do update set issuer = excluded.issuer, client_id = excluded.client_id, \
                sealed_secret = excluded.sealed_secret, scopes = excluded.scopes, allowed_domains = excluded.allowed_domains, \
                group_claim = excluded.group_claim, role_mapping = excluded.role_mapping, default_role = excluded.default_role, \
                jit = excluded.jit, sso_required = excluded.sso_required, password_roles = excluded.password_roles, \
                updated_at = excluded.updated_at",
        params![
            s.org.to_string(),
            s.issuer,
            s.client_id,
            s.sealed_secret,
            s.scopes.join(" "),
            s.allowed_domains.join(" "),
            s.group_claim,
            s.role_mapping,
            s.default_role,
            s.jit,
            s.sso_required,
            s.password_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" "),
            s.updated_at.0
        ],
    )?;
    Ok(())
}

/// The slug of the organisation whose provider signs in addresses of
/// `domain` (lower-case), if one does.
pub fn slug_for_domain(c: &Conn, domain: &str) -> Result<Option<String>> {
    c.platform()?;
    // A domain name, never a pattern.
    let domain: String = domain.chars().filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-')).collect();
    if domain.is_empty() {
        return Ok(None);
    }
    query_opt(
        c,
        "select o.slug from sso_config s join organization o on o.organization_id = s.organization_id \
         where ' ' || s.allowed_domains || ' ' like ? order by o.slug limit 1",
        [format!("% {domain} %")],
        |r| r.get(0),
    )
}

/// Removes the organisation's provider; false when it had none.
pub fn delete_config(c: &Tx, org: OrgId) -> Result<bool> {
    c.scope(org)?;
    Ok(exec(c, "delete from sso_config where organization_id = ?", [org.to_string()])? == 1)
}

/// A login on its way through the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub state_hash: String,
    pub org: OrgId,
    pub nonce: String,
    pub pkce_verifier: String,
    pub binding_hash: String,
    /// `api` or `browser`.
    pub mode: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").field("org", &self.org).field("mode", &self.mode).finish_non_exhaustive()
    }
}

pub fn insert_login(c: &Tx, l: &PendingLogin) -> Result<()> {
    c.platform()?;
    exec(c, "delete from sso_login where expires_at <= ?", params![l.created_at.0])?;
    exec(
        c,
        "insert into sso_login (state_hash, organization_id, nonce, pkce_verifier, binding_hash, mode, created_at, expires_at) \
         values (?, ?, ?, ?, ?, ?, ?, ?)",
        params![l.state_hash, l.org.to_string(), l.nonce, l.pkce_verifier, l.binding_hash, l.mode, l.created_at.0, l.expires_at.0],
    )?;
    Ok(())
}

/// Takes the pending login of this state, once, if it has not expired.
pub fn take_login(c: &Tx, state_hash: &str, now: Timestamp) -> Result<Option<PendingLogin>> {
    c.platform()?;
    let found = query_opt(
        c,
        "delete from sso_login where state_hash = ? returning state_hash, organization_id, nonce, pkce_verifier, binding_hash, mode, \
                created_at, expires_at",
        [state_hash],
        |r| {
            Ok(PendingLogin {
                state_hash: r.get("state_hash")?,
                org: parse_id(r, "organization_id")?,
                nonce: r.get("nonce")?,
                pkce_verifier: r.get("pkce_verifier")?,
                binding_hash: r.get("binding_hash")?,
                mode: r.get("mode")?,
                created_at: Timestamp(r.get("created_at")?),
                expires_at: Timestamp(r.get("expires_at")?),
            })
        },
    )?;
    Ok(found.filter(|l| l.expires_at > now))
}

/// The account a provider's subject signed in as before.
pub fn identity(c: &Conn, issuer: &str, subject: &str) -> Result<Option<UserId>> {
    c.platform()?;
    query_opt(c, "select user_id from sso_identity where issuer = ? and subject = ?", [issuer, subject], |r| parse_id(r, 0))
}

pub fn link_identity(c: &Tx, issuer: &str, subject: &str, user: UserId, at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(
        c,
        "insert into sso_identity (issuer, subject, user_id, created_at) values (?, ?, ?, ?)",
        params![issuer, subject, user.to_string(), at.0],
    )?;
    Ok(())
}

pub fn insert_code(c: &Tx, code_hash: &str, org: OrgId, user: UserId, expires_at: Timestamp) -> Result<()> {
    c.platform()?;
    exec(
        c,
        "insert into sso_code (code_hash, organization_id, user_id, expires_at) values (?, ?, ?, ?)",
        params![code_hash, org.to_string(), user.to_string(), expires_at.0],
    )?;
    Ok(())
}

/// Spends a one-time code: the organisation and account it was for, if it
/// has not expired.
pub fn take_code(c: &Tx, code_hash: &str, now: Timestamp) -> Result<Option<(OrgId, UserId)>> {
    c.platform()?;
    let found =
        query_opt(c, "delete from sso_code where code_hash = ? returning organization_id, user_id, expires_at", [code_hash], |r| {
            Ok((parse_id::<OrgId, _>(r, 0)?, parse_id::<UserId, _>(r, 1)?, Timestamp(r.get(2)?)))
        })?;
    Ok(found.filter(|(_, _, exp)| *exp > now).map(|(o, u, _)| (o, u)))
}
