//! Start-up: data directory, master key, store, application, bootstrap,
//! listener; then serve until SIGTERM or Ctrl-C and drain.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ironcase_app::crypto::MasterKey;
use ironcase_app::store::blob::{BlobStore, S3Options};
use ironcase_app::{App, Clock, Settings, Store};
use ironcase_http::HttpConfig;
use tokio::sync::oneshot;

use crate::config::{Config, LogFormat, ServeArgs};

/// A server started in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    /// Resolves when the server has drained and stopped.
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
    /// Where the first start wrote the owner's one-time password.
    pub initial_password_file: Option<std::path::PathBuf>,
}

impl Running {
    /// Stops accepting, drains in-flight requests, flushes the writer.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = self.done.await.unwrap_or(Ok(()));
        self.app.store().close().await;
        r
    }
}

fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    match std::env::var("IRONCASE_MASTER_KEY") {
        Ok(v) if !v.is_empty() => MasterKey::parse(&v).map_err(|e| anyhow::anyhow!("IRONCASE_MASTER_KEY: {e}")),
        _ => MasterKey::load_or_create_file(&data_dir.join("master.key")).context("reading the master key file"),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(|| format!("securing {}", dir.display()))?;
    }
    Ok(())
}

/// Opens the data directory (database, keys, evidence store) and the
/// application over it; on the very first start, creates the first
/// organisation. Returns the app and, then, where the owner's password is.
pub async fn open(cfg: &Config, clock: Clock) -> anyhow::Result<(App, Option<std::path::PathBuf>)> {
    create_private_dir(&cfg.data_dir)?;
    let master = master_key(&cfg.data_dir)?;
    let store = match &cfg.database_url {
        Some(url) => Store::open_postgres_within(url.expose(), std::time::Duration::from_secs(cfg.database_timeout_secs))
            .await
            .context("opening the PostgreSQL database")?,
        None => Store::open_sqlite(&cfg.data_dir.join("ironcase.db")).await.context("opening the database")?,
    };
    let blobs = if cfg.evidence_store == "local" {
        BlobStore::local(&cfg.data_dir.join("blobs"))
    } else {
        BlobStore::s3(&cfg.evidence_store, &S3Options { endpoint: cfg.s3_endpoint.clone(), allow_http: cfg.s3_allow_http })
    }
    .context("opening the evidence store")?;
    let mut settings = Settings {
        max_evidence_bytes: cfg.max_evidence_bytes,
        default_plan: cfg.default_plan,
        stream_heartbeat: std::time::Duration::from_secs(cfg.stream_heartbeat_secs),
        stream_buffer: cfg.stream_buffer,
        redis_url: cfg.redis_url.clone(),
        smtp_url: cfg.smtp_url.clone(),
        mail_from: cfg.mail_from.clone(),
        public_url: cfg.public_url.clone().unwrap_or_else(|| format!("http://{}", cfg.bind)),
        sso_allow_insecure_issuer: cfg.sso_allow_insecure_issuer,
        sso_allow_private_issuer: cfg.sso_allow_private_issuer,
        webhook_allow_private: cfg.webhook_allow_private,
        webhook_allow_http: cfg.webhook_allow_http,
        audit_checkpoint_every: cfg.audit_checkpoint_every,
        audit_checkpoint_interval: std::time::Duration::from_secs(cfg.audit_checkpoint_seconds),
        retention_interval_secs: cfg.retention_seconds,
        breach_check_secs: cfg.breach_check_seconds,
        ..Settings::default()
    };
    if let Some(waits) = &cfg.webhook_retries {
        settings.webhook_backoff = waits.clone();
    }
    if let Some(q) = cfg.login_limit.as_deref().and_then(crate::config::parse_limit) {
        settings.login_per_account_and_address = q;
    }
    if let Some(q) = cfg.auth_address_limit.as_deref().and_then(crate::config::parse_limit) {
        settings.auth_per_address = q;
    }
    if let Some(q) = cfg.bad_credential_limit.as_deref().and_then(crate::config::parse_limit) {
        settings.bad_credentials_per_address = q;
    }
    if let Some(q) = cfg.export_limit.as_deref().and_then(crate::config::parse_limit) {
        settings.export_per_credential = q;
    }
    let shared_db = cfg.database_url.is_some();
    let app = App::new(store, blobs, master, clock, settings).await.with_context(|| {
        if shared_db {
            "starting the application (nodes sharing a database must all be given the same IRONCASE_MASTER_KEY)"
        } else {
            "starting the application"
        }
    })?;
    let initial_password_file = app.bootstrap(&cfg.data_dir).await.context("creating the first organisation")?;
    Ok((app, initial_password_file))
}

/// Opens everything and starts serving; `clock` lets tests move time.
pub async fn start(cfg: &Config, clock: Clock) -> anyhow::Result<Running> {
    let (app, initial_password_file) = open(cfg, clock).await?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await.with_context(|| format!("binding {}", cfg.bind))?;
    let addr = listener.local_addr()?;
    let trusted_proxies = cfg.trusted_proxies.iter().filter_map(|p| ironcase_http::proxy::Cidr::parse(p)).collect();
    let allowed_origins = cfg.allowed_origins.iter().filter_map(|o| ironcase_http::routes::events::normalize_origin(o)).collect();
    let metrics_token = cfg.metrics_token.as_ref().map(|t| ironcase_app::crypto::sha256_hex(t.expose()));
    let router = ironcase_http::router(
        app.clone(),
        HttpConfig { max_body_bytes: cfg.max_body_bytes, trusted_proxies, allowed_origins, metrics_token_sha256: metrics_token },
    );
    let (stop, stopped) = oneshot::channel::<()>();
    // Webhook deliveries, until the app closes (with the live hub).
    tokio::spawn(ironcase_app::webhooks::dispatch(app.clone()));
    tokio::spawn(ironcase_app::checkpoints::run(app.clone()));
    tokio::spawn(ironcase_app::retention::run(app.clone()));
    tokio::spawn(ironcase_app::breaches::run(app.clone()));
    let live = app.live().clone();
    let done = tokio::spawn(ironcase_http::serve(listener, router, async move {
        let _ = stopped.await;
        // Held streams never end by themselves: end them, so that draining
        // can finish (clients resume from their cursor elsewhere).
        live.close();
    }));
    Ok(Running { addr, app, done, stop: Some(stop), initial_password_file })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IRONCASE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when first polled, so that a signal sent as soon as the server
/// says it listens is not lost to the default action.
fn terminated() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `ironcase serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::resolve(args)?;
    init_logs(cfg.log_format);
    let stop = terminated();
    let running = start(&cfg, Clock::system()).await?;
    if let Some(p) = &running.initial_password_file {
        tracing::info!(path = %p.display(), "first start: created organisation `default` and owner admin@localhost; the one-time password is in this file");
        println!("First start: the password of admin@localhost is in {}", p.display());
    }
    tracing::info!(addr = %running.addr, data_dir = %cfg.data_dir.display(), "listening");
    println!("Ironcase listening on http://{}", running.addr);
    stop.await;
    tracing::info!("shutting down: draining requests");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
