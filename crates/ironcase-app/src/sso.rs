//! Single sign-on with each organisation's own OpenID provider (feature
//! `sso`), with the `openidconnect` crate: discovery, the authorization-code
//! flow with PKCE (S256), `state` and `nonce`, and the ID token's checks
//! (signature by the provider's JWKS with asymmetric algorithms only; `iss`,
//! `aud`, `exp`; `iat`, `azp` and the nonce checked here too).
//!
//! - `GET /auth/sso/{slug}/start` keeps the login's state (hashed), nonce
//!   and PKCE verifier in the database (any node may receive the callback),
//!   sets a cookie that binds the login to the browser that began it, and
//!   redirects to the provider.
//! - The callback (one URL for every organisation: the state says whose)
//!   takes the pending login once, exchanges the code, checks the ID token
//!   (an unknown `kid` fetches the provider's keys again, once a minute at
//!   most: key rotation needs no restart), and finds the account: one the
//!   provider's subject signed in as before; else, by a verified e-mail in
//!   an allowed domain, a member of this organisation (linked now) or, with
//!   `jit`, a new account. An account that exists but is not a member here
//!   is refused: a provider an organisation configures speaks only for its
//!   own members; an address invited here (pending) signs in and so accepts
//!   the invitation, with its role unless a group maps one. The mapped role is applied at every login (a group removed
//!   at the provider demotes; no group and no default refuses); owners keep
//!   theirs (they are managed here, and are the break-glass accounts).
//! - `?mode=api` answers a one-time code (60 s) that `POST /auth/sso/token`
//!   exchanges for the usual tokens; the browser mode redirects to the
//!   console's `/sso#code=…`, which does the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironcase_domain::plan::Feature;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{OrgId, Permission, Role, Sight, Timestamp, UserId};
use ironcase_store::sso::{self, PendingLogin, SsoConfigRow};
use ironcase_store::{org, Conn};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm as Alg, CoreProviderMetadata, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenClaims, IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{anonymous, by};
use crate::auth::TokenPair;
use crate::roles::Assigned;
use crate::{crypto, App, AppError, ErrorCode, Principal, RequestMeta, Result};

const LOGIN_TTL_SECS: i64 = 600;
const CODE_TTL_SECS: i64 = 60;
const CODE_PREFIX: &str = "ics_";
/// The cookie that binds a login to the browser that began it.
pub const BINDING_COOKIE: &str = "ironcase_sso";
/// How long a provider's discovery document is trusted.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// At most one fetch of a provider's keys for an unknown `kid` this often.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp` and `iat`; an ID token older than this is refused.
const SKEW_SECS: i64 = 60;
const MAX_IAT_AGE_SECS: i64 = 600;

/// The ID token's claims beyond the standard ones (the group claim is the
/// organisation's choice).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

impl ExtraClaims {
    /// A claim holding a list of strings (or one string).
    fn strings(&self, claim: &str) -> Vec<String> {
        match self.other.get(claim) {
            Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

type TokenFields = IdTokenFields<ExtraClaims, EmptyExtraTokenFields, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, Alg>;
type Tokens = StandardTokenResponse<TokenFields, CoreTokenType>;
type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
type ClientOf<TokenUrl> = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    TokenUrl,
    EndpointMaybeSet,
>;
/// A provider's client once its token endpoint is known.
type OidcClient = ClientOf<EndpointSet>;

/// Algorithms an ID token may be signed with: asymmetric only (never
/// `none`, never an HMAC keyed with something public).
const ASYMMETRIC: [Alg; 9] = [
    Alg::RsaSsaPkcs1V15Sha256,
    Alg::RsaSsaPkcs1V15Sha384,
    Alg::RsaSsaPkcs1V15Sha512,
    Alg::RsaSsaPssSha256,
    Alg::RsaSsaPssSha384,
    Alg::RsaSsaPssSha512,
    Alg::EcdsaP256Sha256,
    Alg::EcdsaP384Sha384,
    Alg::EdDsa,
];

/// A provider as this node knows it: discovered, with its keys.
struct Provider {
    metadata: CoreProviderMetadata,
    client: OidcClient,
    algs: Vec<Alg>,
    /// The configuration it was made for (a change makes a new one).
    config_at: Timestamp,
    fetched: Instant,
    client_id: String,
}

/// The providers this node has discovered, by organisation, and when each
/// last fetched its keys for an unknown `kid`.
#[derive(Default)]
pub(crate) struct Providers {
    by_org: Mutex<HashMap<OrgId, Arc<Provider>>>,
    refreshed: Mutex<HashMap<OrgId, Instant>>,
}

/// An organisation's provider as configured (the secret stays out).
#[derive(Debug, Clone)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub group_claim: String,
    pub role_mapping: BTreeMap<String, String>,
    pub default_role: Option<String>,
    pub jit: bool,
    pub sso_required: bool,
    pub password_roles: Vec<Role>,
    pub updated_at: Timestamp,
    /// Where the provider sends browsers back (to register there).
    pub redirect_uri: String,
}

/// What `PUT /organization/sso` asks for.
pub struct SsoInput {
    pub issuer: String,
    pub client_id: String,
    /// Required the first time; omitted: the one already set.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub group_claim: String,
    pub role_mapping: BTreeMap<String, String>,
    pub default_role: Option<String>,
    pub jit: bool,
    pub sso_required: bool,
    /// Roles that may still use a password while `sso_required`.
    pub password_roles: Vec<Role>,
}

impl std::fmt::Debug for SsoInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoInput").field("issuer", &self.issuer).field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Where `start` sends the browser, and the cookie that binds the login to it.
pub struct Started {
    pub redirect: String,
    pub binding: String,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}

/// How a finished login answers.
pub enum Finished {
    /// `?mode=api`: a one-time code for `POST /auth/sso/token`.
    Api { code: String },
    /// The console's page, with the one-time code in the fragment.
    Browser { redirect: String },
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Finished(..)")
    }
}

/// What the callback was given.
#[derive(Default)]
pub struct CallbackInput {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    /// The binding cookie's value.
    pub binding: Option<String>,
}

fn failed(reason: &str) -> AppError {
    AppError::Refused { code: ErrorCode::SsoFailed, detail: format!("single sign-on failed: {reason}") }
}

fn config_view(row: &SsoConfigRow, redirect_uri: String) -> SsoConfig {
    SsoConfig {
        redirect_uri,
        issuer: row.issuer.clone(),
        client_id: row.client_id.clone(),
        scopes: row.scopes.clone(),
        allowed_domains: row.allowed_domains.clone(),
        group_claim: row.group_claim.clone(),
        role_mapping: serde_json::from_str(&row.role_mapping).unwrap_or_default(),
        default_role: row.default_role.clone(),
        jit: row.jit,
        sso_required: row.sso_required,
        password_roles: row.password_roles.clone(),
        updated_at: row.updated_at,
    }
}

fn chrono_of(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(t.0).unwrap_or_default()
}

/// The HTTP client every provider is reached with: no redirects followed,
/// public addresses only unless the server allows private ones (SSRF, see
/// `outbound.rs`), `https` only unless it allows insecure issuers, bounded
/// in time.
pub(crate) fn http_client(allow_insecure: bool, allow_private: bool) -> Result<crate::outbound::Guarded> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!allow_insecure)
        // Rare requests: no idle connections kept, which a provider may
        // close under a request (Node closes them after 5 seconds).
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("ironcase/", env!("CARGO_PKG_VERSION"), " (sso)"));
    crate::outbound::Guarded::new(builder, allow_private).map_err(|_| AppError::Internal("could not build the SSO HTTP client".into()))
}

impl App {
    fn callback_url(&self) -> String {
        format!("{}/api/v1/auth/sso/callback", self.settings().public_url.trim_end_matches('/'))
    }

    async fn discover(&self, row: &SsoConfigRow, secret: String) -> Result<Provider> {
        let issuer = IssuerUrl::new(row.issuer.clone()).map_err(|_| failed("the issuer is not a URL"))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.inner.sso_http).await.map_err(|e| {
            tracing::warn!(issuer = %row.issuer, error = %e, "OpenID discovery failed");
            failed("the provider's discovery document could not be read")
        })?;
        self.provider_from(metadata, row, secret)
    }

    fn provider_from(&self, metadata: CoreProviderMetadata, row: &SsoConfigRow, secret: String) -> Result<Provider> {
        let token_url = metadata.token_endpoint().cloned().ok_or_else(|| failed("the provider has no token endpoint"))?;
        let redirect = RedirectUrl::new(self.callback_url()).map_err(|_| AppError::Internal("the public URL is not a URL".into()))?;
        let mut algs: Vec<Alg> =
            metadata.id_token_signing_alg_values_supported().iter().filter(|a| ASYMMETRIC.contains(a)).cloned().collect();
        if algs.is_empty() {
            algs.push(Alg::RsaSsaPkcs1V15Sha256);
        }
        let client = ClientOf::<EndpointMaybeSet>::from_provider_metadata(
            metadata.clone(),
            ClientId::new(row.client_id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(redirect)
        .set_token_uri(token_url);
        Ok(Provider { metadata, client, algs, config_at: row.updated_at, fetched: Instant::now(), client_id: row.client_id.clone() })
    }

    fn secret_of(&self, row: &SsoConfigRow) -> Result<String> {
        let plain = self.inner.master.open(&row.sealed_secret, &format!("sso:{}", row.org))?;
        String::from_utf8(plain).map_err(|_| AppError::Internal("a sealed client secret is not text".into()))
    }

    /// The organisation's provider, discovered once an hour at most.
    async fn provider(&self, row: &SsoConfigRow) -> Result<Arc<Provider>> {
        let cached = self.inner.sso.by_org.lock().ok().and_then(|m| m.get(&row.org).cloned());
        if let Some(p) = cached.filter(|p| p.config_at == row.updated_at && p.fetched.elapsed() < METADATA_TTL) {
            return Ok(p);
        }
        let p = Arc::new(self.discover(row, self.secret_of(row)?).await?);
        if let Ok(mut m) = self.inner.sso.by_org.lock() {
            m.insert(row.org, p.clone());
        }
        Ok(p)
    }

    /// After an ID token signed with a key the provider did not publish
    /// before: its keys again, once a minute at most per organisation.
    async fn refresh_keys(&self, row: &SsoConfigRow, stale: &Provider) -> Result<Option<Arc<Provider>>> {
        {
            let Ok(mut last) = self.inner.sso.refreshed.lock() else { return Ok(None) };
            if last.get(&row.org).is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH) {
                return Ok(None);
            }
            last.insert(row.org, Instant::now());
        }
        let jwks = CoreJsonWebKeySet::fetch_async(stale.metadata.jwks_uri(), &self.inner.sso_http).await.map_err(|e| {
            tracing::warn!(issuer = %row.issuer, error = %e, "fetching the provider's keys failed");
            failed("the provider's keys could not be read")
        })?;
        let fresh = Arc::new(self.provider_from(stale.metadata.clone().set_jwks(jwks), row, self.secret_of(row)?)?);
        if let Ok(mut m) = self.inner.sso.by_org.lock() {
            m.insert(row.org, fresh.clone());
        }
        Ok(Some(fresh))
    }

    fn verify(
        &self,
        provider: &Provider,
        tokens: &Tokens,
        nonce: &Nonce,
    ) -> std::result::Result<Claims, openidconnect::ClaimsVerificationError> {
        use openidconnect::ClaimsVerificationError as E;
        let id_token = tokens.id_token().ok_or_else(|| E::Other("no ID token".into()))?;
        let now = self.clock().now();
        let verifier = provider
            .client
            .id_token_verifier()
            .set_allowed_algs(provider.algs.iter().cloned())
            .set_time_fn(move || chrono_of(now.plus_secs(-SKEW_SECS)))
            .set_issue_time_verifier_fn(move |iat| {
                let iat = iat.timestamp_millis();
                if iat > now.plus_secs(SKEW_SECS).0 || iat < now.plus_secs(-MAX_IAT_AGE_SECS).0 {
                    return Err("iat is out of range".into());
                }
                Ok(())
            });
        let claims = id_token.claims(&verifier, nonce)?.clone();
        if claims.authorized_party().is_some_and(|azp| azp.as_str() != provider.client_id) {
            return Err(E::Other("azp is not this client".into()));
        }
        Ok(claims)
    }

    /// `GET /organization/sso`.
    pub async fn sso_config(&self, p: &Principal, meta: &RequestMeta) -> Result<SsoConfig> {
        self.require(p, meta, Permission::OrganizationRead).await?;
        let org_id = p.org;
        let row = self.store().read_now(move |c| sso::config(c, org_id)).await?;
        row.map(|r| config_view(&r, self.callback_url())).ok_or(AppError::NotFound)
    }

    /// `PUT /organization/sso`: checks every field, that every mapped role
    /// may be handed out by the caller, and that the provider's discovery
    /// document can be read, then keeps it (the secret sealed).
    pub async fn set_sso_config(&self, p: &Principal, meta: &RequestMeta, input: SsoInput) -> Result<SsoConfig> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let org_id = p.org;
        let (limits, existing) =
            self.store().read_now(move |c| Ok::<_, AppError>((crate::quotas::limits(c, org_id)?, sso::config(c, org_id)?))).await?;
        if !limits.has(Feature::Sso) {
            return Err(AppError::FeatureNotInPlan("sso"));
        }
        let mut errs = ValidationErrors::default();
        match url::Url::parse(&input.issuer) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && self.settings().sso_allow_insecure_issuer) => {
                let (host, port) = (u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(443));
                if !self.settings().sso_allows_private() && !crate::outbound::host_is_public(host, port).await {
                    errs.push(
                        "issuer",
                        "must be at a public address (this server reaches no private, loopback or link-local address \
                     for single sign-on unless it runs with --sso-allow-private-issuer)",
                    );
                }
            }
            _ => errs.push("issuer", "must be an https:// URL"),
        }
        let client_id = validate::text("client_id", &input.client_id, 1, 256, &mut errs);
        let secret = match (&input.client_secret, &existing) {
            (Some(s), _) => Some(validate::text("client_secret", s, 1, 1024, &mut errs)),
            (None, Some(_)) => None,
            (None, None) => {
                errs.push("client_secret", "is required");
                None
            }
        };
        if input.scopes.len() > 20 || input.scopes.iter().any(|s| s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_whitespace())) {
            errs.push("scopes", "at most 20 scopes, each 1-64 characters without spaces");
        }
        let domains: Vec<String> = input.allowed_domains.iter().map(|d| d.trim().to_lowercase()).collect();
        if domains.len() > 50 || domains.iter().any(|d| d.is_empty() || d.len() > 253 || d.contains(['@', ' ', '/'])) {
            errs.push("allowed_domains", "at most 50 domain names");
        }
        let group_claim = validate::text("group_claim", &input.group_claim, 1, 64, &mut errs);
        if input.password_roles.len() > Role::ALL.len() {
            errs.push("password_roles", "names a role more than once");
        }
        if input.role_mapping.len() > 100 || input.role_mapping.keys().any(|g| g.is_empty() || g.len() > 256) {
            errs.push("role_mapping", "at most 100 groups, each 1-256 characters");
        }
        errs.into_result()?;
        // Every role it can give is one the caller may give.
        for role in input.role_mapping.values().chain(input.default_role.iter()) {
            self.assignable_as(p, meta, role, Permission::MembersManage, "role_mapping", Sight::ALL).await?;
        }
        let now = self.clock().now();
        let sealed = match (secret, &existing) {
            (Some(s), _) => self.inner.master.seal(s.as_bytes(), &format!("sso:{org_id}"))?,
            (None, Some(e)) => e.sealed_secret.clone(),
            (None, None) => return Err(AppError::Internal("no client secret".into())),
        };
        let row = SsoConfigRow {
            org: org_id,
            issuer: input.issuer.clone(),
            client_id,
            sealed_secret: sealed,
            scopes: input.scopes,
            allowed_domains: domains,
            group_claim,
            role_mapping: serde_json::to_string(&input.role_mapping).map_err(|e| AppError::Internal(e.to_string()))?,
            default_role: input.default_role,
            jit: input.jit,
            sso_required: input.sso_required,
            password_roles: input.password_roles.clone(),
            updated_at: now,
        };
        // The provider answers before it is kept.
        if let Err(e) = self.discover(&row, self.secret_of(&row)?).await {
            let mut errs = ValidationErrors::default();
            errs.push("issuer", e.to_string());
            return Err(errs.into());
        }
        let view = config_view(&row, self.callback_url());
        let details = json!({
            "issuer": view.issuer, "client_id": view.client_id, "secret_changed": input.client_secret.is_some(),
            "role_mapping": view.role_mapping, "default_role": view.default_role, "jit": view.jit, "sso_required": view.sso_required,
            "password_roles": view.password_roles,
        });
        let e = by(p, meta, now, "organization.sso", ("organization", &org_id.to_string()), details);
        self.store()
            .write(move |c| {
                sso::put_config(c, &row)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(view)
    }

    /// `DELETE /organization/sso`.
    pub async fn delete_sso_config(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        self.require(p, meta, Permission::OrganizationManage).await?;
        self.require_recent_proof(p)?;
        let (org_id, now) = (p.org, self.clock().now());
        let e = by(p, meta, now, "organization.sso_removed", ("organization", &org_id.to_string()), json!({}));
        let removed = self
            .store()
            .write(move |c| {
                let removed = sso::delete_config(c, org_id)?;
                if removed {
                    ironcase_store::audit::append(c, e)?;
                }
                Ok::<_, AppError>(removed)
            })
            .await?;
        if removed {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// `GET /auth/sso/{slug}/start`: the provider's authorization URL for a
    /// new login of the organisation `slug`. An organisation without SSO
    /// (or unknown) is 404.
    /// The organisation a person signs in to by single sign-on, from what
    /// they typed: its short name, or their e-mail address (the
    /// organisation whose provider takes its domain). `None`: none.
    pub async fn sso_organization_for(&self, typed: &str) -> Result<Option<String>> {
        let typed = typed.trim().to_lowercase();
        let Some((_, domain)) = typed.rsplit_once('@') else { return Ok(Some(typed).filter(|s| !s.is_empty())) };
        if domain.is_empty() || domain.len() > 253 {
            return Ok(None);
        }
        let domain = domain.to_owned();
        Ok(self.store().read(move |c| sso::slug_for_domain(c, &domain)).await?)
    }

    pub async fn sso_start(&self, slug: &str, api_mode: bool, meta: &RequestMeta) -> Result<Started> {
        let slug = slug.to_owned();
        let row = self
            .store()
            .read_now(move |c| {
                let Some(o) = org::find_org_by_slug(c, &slug)? else { return Ok(None) };
                if o.status != "active" || !crate::quotas::limits(c, o.id)?.has(Feature::Sso) {
                    return Ok(None);
                }
                Ok::<_, AppError>(sso::config(c, o.id)?)
            })
            .await?;
        let Some(row) = row else { return Err(AppError::NotFound) };
        let provider = self.provider(&row).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        for s in row.scopes.iter().filter(|s| *s != "openid" && *s != "email") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.url();
        let binding = crypto::random_token(24);
        let now = self.clock().now();
        let pending = PendingLogin {
            state_hash: crypto::sha256_hex(state.secret()),
            org: row.org,
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            binding_hash: crypto::sha256_hex(&binding),
            mode: if api_mode { "api" } else { "browser" }.into(),
            created_at: now,
            expires_at: now.plus_secs(LOGIN_TTL_SECS),
        };
        let e = anonymous(&row.org.to_string(), meta, now, "sso.start", "success", json!({ "issuer": row.issuer }));
        self.store()
            .write(move |c| {
                sso::insert_login(c, &pending)?;
                ironcase_store::audit::append(c, e)?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(Started { redirect: url.to_string(), binding })
    }

    /// `GET /auth/sso/callback`: finishes a login (see the module). Every
    /// refusal is audited with its reason (never a token) and answers 401
    /// `sso_failed`.
    pub async fn sso_callback(&self, input: CallbackInput, meta: &RequestMeta) -> Result<Finished> {
        let now = self.clock().now();
        let Some(state) = input.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512) else {
            return Err(failed("the callback has no state"));
        };
        let hash = crypto::sha256_hex(state);
        let pending = self.store().write(move |c| Ok::<_, AppError>(sso::take_login(c, &hash, now)?)).await?;
        let Some(pending) = pending else { return Err(failed("the login is unknown, expired or already finished")) };
        let org_id = pending.org;
        match self.finish_login(&pending, &input, meta).await {
            Ok(done) => Ok(done),
            Err((reason, user)) => {
                let mut e = anonymous(&org_id.to_string(), meta, now, "sso.login", "failure", json!({ "reason": reason }));
                e.actor_id = user.map(|u| u.to_string());
                self.write_audit(e).await?;
                Err(failed(reason))
            }
        }
    }

    async fn finish_login(
        &self,
        pending: &PendingLogin,
        input: &CallbackInput,
        meta: &RequestMeta,
    ) -> std::result::Result<Finished, (&'static str, Option<UserId>)> {
        let bound =
            input.binding.as_deref().is_some_and(|b| crypto::ct_eq(crypto::sha256_hex(b).as_bytes(), pending.binding_hash.as_bytes()));
        if !bound {
            return Err(("not_the_browser_that_began_the_login", None));
        }
        if input.error.is_some() {
            return Err(("provider_refused", None));
        }
        let Some(code) = input.code.clone().filter(|c| !c.is_empty() && c.len() <= 2048) else { return Err(("no_code", None)) };
        let org_id = pending.org;
        let row = self.store().read_now(move |c| sso::config(c, org_id)).await.map_err(internal)?;
        let Some(row) = row else { return Err(("sso_not_configured", None)) };
        if input.iss.as_deref().is_some_and(|iss| iss != row.issuer) {
            return Err(("issuer_mismatch", None));
        }
        let provider = self.provider(&row).await.map_err(|_| ("provider_unreachable", None))?;
        let tokens = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.inner.sso_http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %row.issuer, error = ?e, "the provider did not exchange the code");
                ("code_exchange_failed", None)
            })?;
        let nonce = Nonce::new(pending.nonce.clone());
        use openidconnect::{ClaimsVerificationError as E, SignatureVerificationError as S};
        let claims = match self.verify(&provider, &tokens, &nonce) {
            Err(E::SignatureVerification(S::NoMatchingKey)) => match self.refresh_keys(&row, &provider).await {
                Ok(Some(fresh)) => self.verify(&fresh, &tokens, &nonce),
                _ => return Err(("unknown_signing_key", None)),
            },
            other => other,
        }
        .map_err(|e| {
            tracing::warn!(issuer = %row.issuer, error = %e, "an ID token failed its checks");
            ("id_token_invalid", None)
        })?;
        let user = self.sso_account(&row, &claims, meta).await?;
        // The tokens come from a one-time code, exchanged by the client.
        let code = format!("{CODE_PREFIX}{}", crypto::random_token(32));
        let (hash, now) = (crypto::sha256_hex(&code), self.clock().now());
        let user_id = user.id;
        self.store()
            .write(move |c| Ok::<_, AppError>(sso::insert_code(c, &hash, org_id, user_id, now.plus_secs(CODE_TTL_SECS))?))
            .await
            .map_err(internal)?;
        Ok(if pending.mode == "api" {
            Finished::Api { code }
        } else {
            Finished::Browser { redirect: format!("{}/sso#code={code}", self.settings().public_url.trim_end_matches('/')) }
        })
    }

    /// The account the provider vouched for, a member of the organisation
    /// with the role its groups map to (see the module).
    async fn sso_account(
        &self,
        row: &SsoConfigRow,
        claims: &Claims,
        meta: &RequestMeta,
    ) -> std::result::Result<org::UserRow, (&'static str, Option<UserId>)> {
        let subject = claims.subject().as_str().to_owned();
        let email = claims.email().filter(|_| claims.email_verified() == Some(true)).map(|e| e.as_str().trim().to_lowercase());
        let groups = claims.additional_claims().strings(&row.group_claim);
        let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
        let mapping: BTreeMap<String, String> = serde_json::from_str(&row.role_mapping).unwrap_or_default();
        let domain_ok =
            |e: &str| row.allowed_domains.is_empty() || e.rsplit_once('@').is_some_and(|(_, d)| row.allowed_domains.iter().any(|a| a == d));
        if email.as_deref().is_some_and(|e| !domain_ok(e)) {
            return Err(("email_domain_not_allowed", None));
        }
        let (org_id, issuer, now) = (row.org, row.issuer.clone(), self.clock().now());
        let (jit, default_role) = (row.jit, row.default_role.clone());
        let meta = meta.clone();
        let outcome = self
            .store()
            .write(move |c| {
                // Who: the subject as linked before, else by a verified address.
                let linked = sso::identity(c, &issuer, &subject)?;
                let (user, link) = match linked {
                    Some(u) => (Some(org::get_user(c, u)?), false),
                    None => {
                        let Some(email) = &email else { return Ok(Err("no_verified_email")) };
                        (org::find_user_by_email(c, email)?, true)
                    }
                };
                let membership = match &user {
                    Some(u) => org::membership_role(c, org_id, u.id)?,
                    None => None,
                };
                // An invitation to this address, pending: signing in accepts it.
                let invited = match (&email, membership) {
                    (Some(e), None) => ironcase_store::invitation::pending_for(c, org_id, e, now)?,
                    _ => None,
                };
                if user.is_some() && membership.is_none() && link && invited.is_none() {
                    // An account of someone else's organisations: not this provider's to speak for.
                    return Ok(Err("account_exists_outside_the_organization"));
                }
                // The role: the highest mapped from its groups, else the default.
                let mut chosen: Option<Assigned> = None;
                for g in &groups {
                    if let Some(raw) = mapping.get(g) {
                        if let Some(a) = crate::roles::resolve(c, org_id, raw)? {
                            if chosen.as_ref().is_none_or(|c| a.role.rank() > c.role.rank()) {
                                chosen = Some(a);
                            }
                        }
                    }
                }
                if chosen.is_none() {
                    if let Some(raw) = &default_role {
                        chosen = crate::roles::resolve(c, org_id, raw)?;
                    }
                }
                let user = match (user, membership) {
                    (Some(u), Some(current)) => {
                        // Owners keep their role (managed here; break-glass).
                        if current != Role::Owner {
                            let Some(a) = chosen else { return Ok(Err("no_role_for_groups")) };
                            let now_custom = org::get_member(c, org_id, u.id)?.custom_role;
                            if a.role != current || a.custom_id() != now_custom {
                                org::update_role(c, org_id, u.id, a.role, a.custom_id())?;
                                let details = json!({
                                    "old_role": current, "new_role": a.role, "custom_role": a.custom_id(), "groups": groups,
                                });
                                let mut e = anonymous(&org_id.to_string(), &meta, now, "sso.role_mapped", "success", details);
                                e.actor_id = Some(u.id.to_string());
                                ironcase_store::audit::append(c, e)?;
                            }
                        }
                        u
                    }
                    (existing, _) => {
                        if !jit && invited.is_none() {
                            return Ok(Err("not_provisioned"));
                        }
                        // The mapped role, else the one the invitation offered.
                        let offered = match &invited {
                            Some(i) => Some(Assigned {
                                role: i.role,
                                custom: i.custom_role.map(|r| ironcase_store::role::get(c, org_id, r)).transpose()?,
                            }),
                            None => None,
                        };
                        let Some(a) = chosen.or(offered) else { return Ok(Err("no_role_for_groups")) };
                        if let Some(i) = &invited {
                            ironcase_store::invitation::accept(c, org_id, i.id, now)?;
                        }
                        let limit = crate::quotas::limits(c, org_id)?.quota(ironcase_domain::plan::Quota::Members);
                        if limit.is_some_and(|l| org::count_members(c, org_id).map_or(true, |n| n.max(0) as u64 + 1 > l)) {
                            return Ok(Err("members_quota_exceeded"));
                        }
                        // The provider's account of another of its organisations, or a new one.
                        let u = match existing {
                            Some(u) => u,
                            None => {
                                let Some(email) = &email else { return Ok(Err("no_verified_email")) };
                                let u = org::UserRow {
                                    id: UserId::new(),
                                    email: email.clone(),
                                    name: name.clone().unwrap_or_else(|| email.clone()),
                                    // No password: this account signs in through its provider.
                                    password_hash: "!sso".into(),
                                    is_operator: false,
                                    created_at: now,
                                };
                                org::insert_user(c, &u)?;
                                u
                            }
                        };
                        org::insert_membership(c, org_id, u.id, a.role, a.custom_id(), now)?;
                        let details = json!({
                            "email": u.email, "role": a.role, "custom_role": a.custom_id(), "groups": groups,
                            "invitation_id": invited.as_ref().map(|i| i.id),
                        });
                        let mut e = anonymous(&org_id.to_string(), &meta, now, "sso.provisioned", "success", details);
                        e.actor_id = Some(u.id.to_string());
                        ironcase_store::audit::append(c, e)?;
                        u
                    }
                };
                if link {
                    sso::link_identity(c, &issuer, &subject, user.id, now)?;
                }
                Ok::<_, AppError>(Ok(user))
            })
            .await
            .map_err(internal)?;
        outcome.map_err(|reason| (reason, None))
    }

    /// `POST /auth/sso/token`: the tokens of a finished login, for its
    /// one-time code.
    pub async fn sso_token(&self, code: &str, meta: &RequestMeta) -> Result<TokenPair> {
        if !code.starts_with(CODE_PREFIX) || code.len() > 128 {
            return Err(failed("the code is unknown, expired or spent"));
        }
        let (hash, now) = (crypto::sha256_hex(code), self.clock().now());
        let taken = self.store().write(move |c| Ok::<_, AppError>(sso::take_code(c, &hash, now)?)).await?;
        let Some((org_id, user_id)) = taken else { return Err(failed("the code is unknown, expired or spent")) };
        let user = self.store().read_now(move |c| org::get_user(c, user_id)).await?;
        let source = format!("ip:{}", meta.source_ip.as_deref().unwrap_or(""));
        self.start_session(&user, org_id, source, meta, "sso").await
    }
}

/// A failure of the server's own, during a login.
fn internal<E>(_: E) -> (&'static str, Option<UserId>) {
    ("internal_error", None)
}

/// Whether password logins to the organisation are refused for `role`
/// (single sign-on required, and `role` is not one that may still use a
/// password: break-glass).
pub(crate) fn password_login_refused(c: &Conn, org: OrgId, role: Role) -> Result<bool> {
    Ok(sso::config(c, org)?.is_some_and(|s| s.sso_required && !s.password_roles.contains(&role)))
}
