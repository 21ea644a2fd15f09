//! Ironcase use cases. Every operation a user can do is one method on [`App`]
//! that authorizes, validates, runs one transaction (the change, its event and
//! its audit entry together) and returns domain values for the HTTP layer to
//! render.
#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod alerts;
pub mod analyzers;
pub mod apikeys;
pub mod apilimits;
pub mod audit;
pub mod auth;
pub mod breaches;
pub mod browser;
pub mod checkpoints;
pub mod clock;
pub mod compliance;
pub mod crypto;
pub mod error;
pub mod evidence;
pub mod export;
pub mod hierarchy;
pub mod incidents;
pub mod iocs;
pub mod live;
pub mod mail;
pub mod members;
pub mod mfa;
pub mod notifications;
pub mod offboard;
mod outbound;
pub mod page;
pub mod personal;
pub mod policy;
pub mod principal;
pub mod privacy;
pub mod quotas;
pub mod ratelimit;
pub mod reset;
pub mod retention;
pub mod roles;
pub mod search;
mod sessions;
pub mod shared;
pub mod signature;
pub mod sso;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use clock::Clock;
pub use error::{AppError, ErrorCode, Result};
pub use ironcase_store as store;
pub use ironcase_store::Store;
pub use principal::{Actor, Networks, Principal, RequestMeta};

/// Tunables the use cases need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Access-token lifetime in seconds (at most 15 minutes).
    pub access_ttl_secs: i64,
    /// Refresh-token lifetime in seconds (a session ends sooner, below).
    pub refresh_ttl_secs: i64,
    /// A session unused (not refreshed) this long ends (ASVS 4.0.3 V3.3.2
    /// level 2: 30 minutes).
    pub session_idle_secs: i64,
    /// A session ends this long after its login, used or not (12 hours).
    pub session_max_secs: i64,
    /// Sensitive actions need the session to have proved who holds it
    /// (password, MFA, re-authentication) within this long (10 minutes).
    pub reauth_window_secs: i64,
    /// Failed logins allowed per account and source (an address, or a device
    /// that logged in before) within `login_window_secs`; past it, that
    /// source is refused for that account until the window passes.
    pub login_max_failures: i64,
    pub login_window_secs: i64,
    /// Failed logins of an account from addresses (not known devices) within
    /// the window after which attempts from addresses are slowed: each waits
    /// 1, 2, 4, … up to 60 seconds after the last failure. Known devices are
    /// not slowed.
    pub login_throttle_after: i64,
    /// Requests to the unauthenticated auth routes (login, refresh) per source address.
    pub auth_per_address: ratelimit::Quota,
    /// Login attempts (failed or not) per account and source address.
    pub login_per_account_and_address: ratelimit::Quota,
    /// Credentials that do not check out (wrong API keys, forged or stale
    /// tokens) per source address; past it the address is refused for a while.
    pub bad_credentials_per_address: ratelimit::Quota,
    /// Exports per credential (the export route class).
    pub export_per_credential: ratelimit::Quota,
    /// Most source addresses the auth limiter remembers at once.
    pub limiter_max_keys: usize,
    /// Largest evidence file accepted, in bytes (a plan may allow less).
    pub max_evidence_bytes: u64,
    /// The plan of an organisation created without one.
    pub default_plan: ironcase_domain::plan::PlanName,
    /// How often a held event stream sends a heartbeat and checks its
    /// credential again.
    pub stream_heartbeat: std::time::Duration,
    /// Events a stream may fall behind by (per organisation and node) before
    /// it is ended with a cursor to resume from.
    pub stream_buffer: usize,
    /// Lifetime of a WebSocket ticket, in seconds.
    pub ticket_ttl_secs: i64,
    /// Shares rate limits and wake-ups with the other nodes (`redis://…`).
    pub redis_url: Option<shared::RedisUrl>,
    /// The SMTP server for invitations and password resets; none: nothing
    /// is e-mailed.
    pub smtp_url: Option<shared::SecretUrl>,
    /// The sender of every message.
    pub mail_from: String,
    /// Where people reach Ironcase (the links in messages, the SSO callback).
    pub public_url: String,
    /// Accept `http://` OpenID issuers (development and tests only); implies
    /// `sso_allow_private_issuer`.
    pub sso_allow_insecure_issuer: bool,
    /// Accept OpenID issuers at private, loopback or link-local addresses
    /// (a provider inside the operator's own network).
    pub sso_allow_private_issuer: bool,
    /// Deliver webhooks to private, loopback or link-local addresses (tests,
    /// and receivers inside the operator's network).
    pub webhook_allow_private: bool,
    /// Accept `http://` webhook endpoints (development and tests only).
    pub webhook_allow_http: bool,
    /// The waits between a message's attempts; past the last it has failed.
    pub webhook_backoff: Vec<std::time::Duration>,
    /// How long a receiver has to answer.
    pub webhook_timeout: std::time::Duration,
    /// A tenant's audit tree gets a signed checkpoint once this many
    /// entries are past the last one…
    pub audit_checkpoint_every: u64,
    /// …or this long after the last one, when any entry is past it.
    pub audit_checkpoint_interval: std::time::Duration,
    /// How often the retention job applies the organisations' policies.
    pub retention_interval_secs: u64,
    /// How often the breach-deadline job looks for warnings due.
    pub breach_check_secs: u64,
}

impl Settings {
    /// Whether an OpenID issuer may sit at a non-public address.
    pub fn sso_allows_private(&self) -> bool {
        self.sso_allow_private_issuer || self.sso_allow_insecure_issuer
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            reauth_window_secs: 600,
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            login_throttle_after: 10,
            auth_per_address: ratelimit::Quota::per_minute(30),
            login_per_account_and_address: ratelimit::Quota { burst: 5, period_ms: 15 * 60 * 1000 },
            bad_credentials_per_address: ratelimit::Quota::per_minute(20),
            export_per_credential: ratelimit::Quota { burst: 10, period_ms: 3600 * 1000 },
            limiter_max_keys: 100_000,
            max_evidence_bytes: 10 * 1024 * 1024 * 1024,
            default_plan: ironcase_domain::plan::PlanName::Enterprise,
            stream_heartbeat: live::default_heartbeat(),
            stream_buffer: 1024,
            ticket_ttl_secs: 30,
            redis_url: None,
            smtp_url: None,
            mail_from: "Ironcase <ironcase@localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            sso_allow_insecure_issuer: false,
            sso_allow_private_issuer: false,
            webhook_allow_private: false,
            webhook_allow_http: false,
            webhook_backoff: webhooks::default_backoff(),
            webhook_timeout: std::time::Duration::from_secs(10),
            audit_checkpoint_every: 1000,
            audit_checkpoint_interval: std::time::Duration::from_secs(300),
            retention_interval_secs: 300,
            breach_check_secs: 30,
        }
    }
}

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Wraps the data keys (and the token-signing keys).
    master: crypto::MasterKey,
    /// Seals and opens the personal data in audit entries.
    personal: Arc<personal::PersonalKeys>,
    /// Where evidence files are kept (encrypted).
    blobs: store::blob::BlobStore,
    keys: evidence::KeyCache,
    clock: Clock,
    settings: Settings,
    tokens: auth::TokenKeys,
    /// The Ed25519 keys that sign audit checkpoints.
    audit_keys: checkpoints::AuditKeys,
    /// A real argon2id hash to verify against when the e-mail is unknown, so
    /// that a wrong address takes as long as a wrong password.
    dummy_hash: String,
    /// Limits login and refresh per source address (the per-account lockout
    /// is separate and lives in the database).
    auth_limiter: ratelimit::Limiter,
    /// Login attempts per account and source address.
    login_limiter: ratelimit::Limiter,
    /// Credentials that did not check out, per source address.
    credential_limiter: ratelimit::Limiter,
    credential_blocks: auth::CredentialBlocks,
    /// Audit entries for requests refused by an allow-list, per
    /// organisation and address (one a minute).
    ip_denials: ratelimit::Limiter,
    /// Exports per credential.
    export_limiter: ratelimit::Limiter,
    /// Per-credential and per-organisation limits from the plans.
    api_limits: apilimits::ApiLimits,
    /// Fans new events out to the streams held open on this node.
    live: Arc<live::Hub>,
    /// What the nodes share, when Redis is configured.
    redis: Option<Arc<shared::Redis>>,
    /// Sessions looked up recently (used only with Redis).
    sessions: Arc<sessions::SessionCache>,
    mailer: mail::Mailer,
    /// Organisations' OpenID providers as discovered, and the client that
    /// reaches them.
    sso: sso::Providers,
    sso_http: outbound::Guarded,
    /// Sends webhooks: public addresses only (unless allowed), no
    /// redirects, the receiver's time-out.
    webhook_http: reqwest::Client,
}

impl App {
    /// Opens the application over `store`: loads (or on first start creates)
    /// the token-signing keys, sealed under `master`.
    pub async fn new(
        store: Store,
        blobs: store::blob::BlobStore,
        master: crypto::MasterKey,
        clock: Clock,
        settings: Settings,
    ) -> Result<App> {
        let tokens = auth::TokenKeys::load_or_create(&store, &master, clock.now()).await?;
        let audit_keys = checkpoints::AuditKeys::load_or_create(&store, &master, &settings.public_url, clock.now()).await?;
        let personal = Arc::new(personal::PersonalKeys::new(master.clone()));
        store.seal_personal_with(personal.clone());
        let dummy_hash = auth::hash_password("not a real password, only for timing".to_owned()).await?;
        let auth_limiter = ratelimit::Limiter::new(settings.auth_per_address, settings.limiter_max_keys).named("auth");
        let settings_max_keys = settings.limiter_max_keys;
        let login_limiter = ratelimit::Limiter::new(settings.login_per_account_and_address, settings.limiter_max_keys).named("login");
        let export_limiter = ratelimit::Limiter::new(settings.export_per_credential, settings.limiter_max_keys).named("export");
        let credential_limiter =
            ratelimit::Limiter::new(settings.bad_credentials_per_address, settings.limiter_max_keys).named("credentials");
        let redis = match &settings.redis_url {
            Some(url) => Some(shared::Redis::new(url).map_err(AppError::BadRequest)?),
            None => None,
        };
        let hub = live::Hub::new(settings.stream_buffer);
        tokio::spawn(live::pump(store.clone(), hub.clone(), redis.clone()));
        let sessions = Arc::new(sessions::SessionCache::default());
        if let Some(r) = &redis {
            tokio::spawn(r.clone().run(hub.clone()));
            // A change to what sessions may do, committed here: this node
            // forgets, and tells the others, before its caller is answered.
            let (cache, r2) = (sessions.clone(), r.clone());
            store.on_auth_change(Arc::new(move || {
                let (cache, r) = (cache.clone(), r2.clone());
                Box::pin(async move {
                    cache.clear();
                    if !r.bump_auth_epoch().await {
                        tracing::warn!("could not tell the other nodes of a session change through Redis; they find it within a second");
                    }
                })
            }));
            tokio::spawn(auth::poll_auth_epoch(store.clone(), sessions.clone(), hub.closed_signal()));
        } else if store.backend() == ironcase_store::Backend::Sqlite {
            // One node: the changes committed here are all there are (a
            // CLI's, in the same file, the poll finds).
            let cache = sessions.clone();
            store.on_auth_change(Arc::new(move || {
                cache.changed_here();
                Box::pin(async {})
            }));
            tokio::spawn(auth::poll_auth_epoch(store.clone(), sessions.clone(), hub.closed_signal()));
        }
        let sso_http = sso::http_client(settings.sso_allow_insecure_issuer, settings.sso_allows_private())?;
        let mailer = mail::Mailer::new(settings.smtp_url.as_ref(), &settings.mail_from, &settings.public_url)?;
        let webhook_http = outbound::client(
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(settings.webhook_timeout),
            settings.webhook_allow_private,
        )
        .map_err(|e| AppError::Internal(format!("webhook client: {e}")))?;
        Ok(App {
            inner: Arc::new(Inner {
                store,
                master,
                personal,
                blobs,
                keys: evidence::KeyCache::default(),
                clock,
                settings,
                tokens,
                audit_keys,
                dummy_hash,
                auth_limiter,
                login_limiter,
                credential_limiter,
                ip_denials: ratelimit::Limiter::new(ratelimit::Quota::per_minute(1), settings_max_keys),
                mailer,
                sso: sso::Providers::default(),
                sso_http,
                webhook_http,
                credential_blocks: Default::default(),
                export_limiter,
                api_limits: apilimits::ApiLimits::new(settings_max_keys),
                live: hub,
                redis,
                sessions,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The console's link to `page` with `token` in its fragment, as the
    /// e-mail would carry it (an invitation shown to the admin instead).
    pub fn link(&self, page: &str, token: &str) -> String {
        self.mailer().link(page, token)
    }

    pub(crate) fn mailer(&self) -> &mail::Mailer {
        &self.inner.mailer
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Counts one login or refresh attempt from `address`.
    pub async fn check_auth_rate(&self, address: &str) -> ratelimit::Decision {
        self.rate_check(&self.inner.auth_limiter, address, self.clock().now()).await
    }

    /// Counts one request against `limiter`'s `key` with its quota: in Redis
    /// when it is configured and answers (shared by every node), else in
    /// this process.
    pub(crate) async fn rate_check(&self, limiter: &ratelimit::Limiter, key: &str, now: ironcase_domain::Timestamp) -> ratelimit::Decision {
        let q = limiter.quota();
        let mut d = self.rate_checks(&[(limiter, key, q)], now).await;
        d.pop().unwrap_or(ratelimit::Decision { allowed: true, limit: q.burst, remaining: q.burst, reset_secs: 0, retry_after_secs: None })
    }

    /// As [`App::rate_check`] for several keys in order, stopping at the
    /// first refusal (the keys before it are charged, those after it not).
    pub(crate) async fn rate_checks(
        &self,
        checks: &[(&ratelimit::Limiter, &str, ratelimit::Quota)],
        now: ironcase_domain::Timestamp,
    ) -> Vec<ratelimit::Decision> {
        if let Some(r) = &self.inner.redis {
            let keyed: Vec<(String, ratelimit::Quota)> = checks.iter().map(|(l, k, q)| (format!("{}:{k}", l.name()), *q)).collect();
            if let Some(d) = r.check(&keyed, now).await {
                return d;
            }
        }
        let mut out = Vec::with_capacity(checks.len());
        for (l, k, q) in checks {
            let d = l.check_with(k, *q, now);
            out.push(d);
            if !d.allowed {
                break;
            }
        }
        out
    }

    pub async fn ready(&self) -> Result<()> {
        Ok(self.inner.store.ping().await?)
    }

    /// Sessions of access tokens found in this node's memory, and read from
    /// the database, since it started.
    pub fn session_lookups(&self) -> (u64, u64) {
        let c = &self.inner.sessions;
        (c.hits.load(std::sync::atomic::Ordering::Relaxed), c.misses.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether Redis answers: `None` when none is configured.
    pub fn redis_healthy(&self) -> Option<bool> {
        self.inner.redis.as_ref().map(|r| r.healthy())
    }

    /// On the very first start, creates the organisation `default` and its owner
    /// `admin@localhost` (also the platform operator), and writes the owner's
    /// one-time password to `data_dir/initial-admin-password` (mode 0600).
    /// Returns that path when it did so.
    pub async fn bootstrap(&self, data_dir: &Path) -> Result<Option<PathBuf>> {
        admin::bootstrap(self, data_dir).await
    }
}

impl App {
    /// A background job: `round` every `every` (the first after one wait),
    /// until the app closes. A failed round is logged; the next one comes.
    pub(crate) async fn every<T, F, Fut>(&self, every: std::time::Duration, what: &str, mut round: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut closed = self.inner.live.closed_signal();
        loop {
            tokio::select! {
                _ = closed.changed() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if *closed.borrow() {
                return;
            }
            if let Err(e) = round().await {
                tracing::warn!(error = %e, job = what, "a background round failed");
            }
        }
    }
}
