//! Ironcase use cases. Every operation a user can do is one method on [`App`]
//! that authorizes, validates, runs one transaction (the change, its event and
//! its audit entry together) and returns domain values for the HTTP layer to
//! render.
#![forbid(unsafe_code)]

pub mod admin;
pub mod apikeys;
pub mod apilimits;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod evidence;
pub mod hierarchy;
pub mod incidents;
pub mod iocs;
pub mod live;
pub mod members;
pub mod principal;
pub mod quotas;
pub mod ratelimit;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use clock::Clock;
pub use error::{AppError, Result};
pub use ironcase_store as store;
pub use ironcase_store::Store;
pub use principal::{Actor, Principal, RequestMeta};

/// Tunables the use cases need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Access-token lifetime in seconds (at most 15 minutes).
    pub access_ttl_secs: i64,
    /// Refresh-token (and session) lifetime in seconds.
    pub refresh_ttl_secs: i64,
    /// Failed logins allowed per account within `login_window_secs`.
    pub login_max_failures: i64,
    pub login_window_secs: i64,
    /// Requests to the unauthenticated auth routes (login, refresh) per source address.
    pub auth_per_address: ratelimit::Quota,
    /// Login attempts (failed or not) per account and source address.
    pub login_per_account_and_address: ratelimit::Quota,
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            auth_per_address: ratelimit::Quota::per_minute(30),
            login_per_account_and_address: ratelimit::Quota { burst: 5, period_ms: 15 * 60 * 1000 },
            limiter_max_keys: 100_000,
            max_evidence_bytes: 10 * 1024 * 1024 * 1024,
            default_plan: ironcase_domain::plan::PlanName::Enterprise,
            stream_heartbeat: live::default_heartbeat(),
            stream_buffer: 1024,
            ticket_ttl_secs: 30,
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
    /// Where evidence files are kept (encrypted).
    blobs: store::blob::BlobStore,
    keys: evidence::KeyCache,
    clock: Clock,
    settings: Settings,
    tokens: auth::TokenKeys,
    /// A real argon2id hash to verify against when the e-mail is unknown, so
    /// that a wrong address takes as long as a wrong password.
    dummy_hash: String,
    /// Limits login and refresh per source address (the per-account lockout
    /// is separate and lives in the database).
    auth_limiter: ratelimit::Limiter,
    /// Login attempts per account and source address.
    login_limiter: ratelimit::Limiter,
    /// Per-credential and per-organisation limits from the plans.
    api_limits: apilimits::ApiLimits,
    /// Fans new events out to the streams held open on this node.
    live: Arc<live::Hub>,
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
        let dummy_hash = auth::hash_password("not a real password, only for timing".to_owned()).await?;
        let auth_limiter = ratelimit::Limiter::new(settings.auth_per_address, settings.limiter_max_keys);
        let settings_max_keys = settings.limiter_max_keys;
        let login_limiter = ratelimit::Limiter::new(settings.login_per_account_and_address, settings.limiter_max_keys);
        let hub = live::Hub::new(settings.stream_buffer);
        tokio::spawn(live::pump(store.clone(), hub.clone()));
        Ok(App {
            inner: Arc::new(Inner {
                store,
                master,
                blobs,
                keys: evidence::KeyCache::default(),
                clock,
                settings,
                tokens,
                dummy_hash,
                auth_limiter,
                login_limiter,
                api_limits: apilimits::ApiLimits::new(settings_max_keys),
                live: hub,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Counts one login or refresh attempt from `address`.
    pub fn check_auth_rate(&self, address: &str) -> ratelimit::Decision {
        self.inner.auth_limiter.check(address, self.clock().now())
    }

    pub async fn ready(&self) -> Result<()> {
        Ok(self.inner.store.ping().await?)
    }

    /// On the very first start, creates the organisation `default` and its owner
    /// `admin@localhost` (also the platform operator), and writes the owner's
    /// one-time password to `data_dir/initial-admin-password` (mode 0600).
    /// Returns that path when it did so.
    pub async fn bootstrap(&self, data_dir: &Path) -> Result<Option<PathBuf>> {
        admin::bootstrap(self, data_dir).await
    }
}
