//! Configuration: built-in defaults < `ironcase.toml` < `IRONCASE_*`
//! environment < command-line flags. The master key is read only from the
//! environment or its key file, never from a flag (flags show in `ps`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ironcase_domain::plan::PlanName;
use serde::Deserialize;

#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "IRONCASE_BIND")]
    pub bind: Option<SocketAddr>,
    /// Where the database, keys and files live [default: ./ironcase-data]
    #[arg(long, env = "IRONCASE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `text` or `json` [default: text]
    #[arg(long, env = "IRONCASE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Configuration file [default: ./ironcase.toml when present]
    #[arg(long, env = "IRONCASE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "IRONCASE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest evidence file in bytes [default: 10737418240, 10 GiB]
    #[arg(long, env = "IRONCASE_MAX_EVIDENCE_BYTES")]
    pub max_evidence_bytes: Option<u64>,
    /// Where evidence files go: `local` (DATA_DIR/blobs) or s3://bucket[/prefix];
    /// S3 credentials come from the standard AWS_* environment [default: local]
    #[arg(long, env = "IRONCASE_EVIDENCE_STORE")]
    pub evidence_store: Option<String>,
    /// The endpoint of an S3-compatible service (MinIO, Ceph, R2…)
    #[arg(long, env = "IRONCASE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Allow a plain-HTTP S3 endpoint (a private network only)
    #[arg(long, env = "IRONCASE_S3_ALLOW_HTTP")]
    pub s3_allow_http: Option<bool>,
    /// The plan of organisations created without one: free, starter,
    /// professional or enterprise [default: enterprise]
    #[arg(long, env = "IRONCASE_DEFAULT_PLAN", value_parser = parse_plan)]
    pub default_plan: Option<PlanName>,
    /// Proxies whose X-Forwarded-For is believed, comma-separated addresses
    /// or ranges (10.0.0.0/8,::1) [default: none]
    #[arg(long, env = "IRONCASE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Login attempts per account and source address, as N/SECONDS [default: 5/900]
    #[arg(long, env = "IRONCASE_LOGIN_LIMIT")]
    pub login_limit: Option<String>,
    /// Login and token-refresh requests per source address, as N/SECONDS [default: 30/60]
    #[arg(long, env = "IRONCASE_AUTH_ADDRESS_LIMIT")]
    pub auth_address_limit: Option<String>,
    /// Bad credentials (wrong API keys, forged or stale tokens) per source address before it is answered 429, as N/SECONDS [default: 20/60]
    #[arg(long, env = "IRONCASE_BAD_CREDENTIAL_LIMIT")]
    pub bad_credential_limit: Option<String>,
    /// Exports per credential, as N/SECONDS [default: 10/3600]
    #[arg(long, env = "IRONCASE_EXPORT_LIMIT")]
    pub export_limit: Option<String>,
    /// Web origins allowed to open the WebSocket event stream, comma-separated
    /// (https://console.example.com); the server's own origin always is [default: none]
    #[arg(long, env = "IRONCASE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Seconds between heartbeats (and credential checks) on event streams [default: 15]
    #[arg(long, env = "IRONCASE_STREAM_HEARTBEAT")]
    pub stream_heartbeat: Option<u64>,
    /// Events an event stream may fall behind by before it is ended with a
    /// cursor to resume from [default: 1024]
    #[arg(long, env = "IRONCASE_STREAM_BUFFER")]
    pub stream_buffer: Option<usize>,
    /// Redis shared by the nodes (redis://[:password@]host:port): rate limits
    /// and live-update wake-ups across nodes [default: none, one node]
    #[arg(long, env = "IRONCASE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PostgreSQL instead of the embedded SQLite (postgres://user[:password]@host/db):
    /// several nodes over one database [default: none, SQLite in the data dir]
    #[arg(long, env = "IRONCASE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seconds PostgreSQL may keep a request waiting (silent, stalled, gone,
    /// or one statement running that long) before the request fails with
    /// 503 `unavailable` and the connection is made again [default: 10]
    #[arg(long, env = "IRONCASE_DATABASE_TIMEOUT")]
    pub database_timeout: Option<u64>,
    /// A secret that opens `/metrics` to any address (`Authorization: Bearer
    /// <token>`); without it, `/metrics` answers only connections from this
    /// machine that no proxy forwarded [default: none]
    #[arg(long, env = "IRONCASE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// The SMTP server for invitations and password resets
    /// (smtp://host:port, smtp://user:password@host:587?tls=required,
    /// smtps://host:465) [default: none: invitation links go to the admin,
    /// admins reset passwords]
    #[arg(long, env = "IRONCASE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of e-mail [default: Ironcase <ironcase@localhost>]
    #[arg(long, env = "IRONCASE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Where people reach this server, for the links in e-mail
    /// [default: http://<bind>]
    #[arg(long, env = "IRONCASE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accept http:// OpenID issuers for single sign-on (development and
    /// tests only) [default: false]
    #[arg(long, env = "IRONCASE_SSO_ALLOW_INSECURE_ISSUER")]
    pub sso_allow_insecure_issuer: Option<bool>,
    /// Accept OpenID issuers at private, loopback or link-local addresses
    /// (a provider inside your own network) [default: false]
    #[arg(long, env = "IRONCASE_SSO_ALLOW_PRIVATE_ISSUER")]
    pub sso_allow_private_issuer: Option<bool>,
    /// Deliver webhooks to private, loopback or link-local addresses
    /// (receivers inside your own network, tests) [default: false]
    #[arg(long, env = "IRONCASE_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: Option<bool>,
    /// Accept http:// webhook endpoints (development and tests only)
    /// [default: false]
    #[arg(long, env = "IRONCASE_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: Option<bool>,
    /// The waits between a webhook message's attempts, in seconds,
    /// comma-separated; past the last the message has failed
    /// [default: 5,300,1800,7200,18000,36000,36000]
    #[arg(long, env = "IRONCASE_WEBHOOK_RETRIES", value_delimiter = ',')]
    pub webhook_retries: Option<Vec<f64>>,
    /// A signed audit checkpoint once this many entries are past the last
    /// one [default: 1000]
    #[arg(long, env = "IRONCASE_AUDIT_CHECKPOINT_EVERY")]
    pub audit_checkpoint_every: Option<u64>,
    /// …or this many seconds after the last one [default: 300]
    #[arg(long, env = "IRONCASE_AUDIT_CHECKPOINT_SECONDS")]
    pub audit_checkpoint_seconds: Option<u64>,
    /// Seconds between rounds of the retention job [default: 300]
    #[arg(long, env = "IRONCASE_RETENTION_SECONDS")]
    pub retention_seconds: Option<u64>,
}

const DEFAULT_MAIL_FROM: &str = "Ironcase <ironcase@localhost>";

/// `N/SECONDS`: N requests per that many seconds.
pub fn parse_limit(s: &str) -> Option<ironcase_app::ratelimit::Quota> {
    let (n, secs) = s.trim().split_once('/')?;
    let (n, secs) = (n.trim().parse::<u32>().ok()?, secs.trim().parse::<i64>().ok()?);
    (n > 0 && secs > 0 && secs <= 31 * 24 * 3600).then_some(ironcase_app::ratelimit::Quota { burst: n, period_ms: secs * 1000 })
}

fn parse_plan(s: &str) -> Result<PlanName, String> {
    PlanName::parse(s).ok_or_else(|| "expected free, starter, professional or enterprise".to_owned())
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What `ironcase.toml` may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    max_body_bytes: Option<usize>,
    max_evidence_bytes: Option<u64>,
    evidence_store: Option<String>,
    s3_endpoint: Option<String>,
    s3_allow_http: Option<bool>,
    default_plan: Option<PlanName>,
    trusted_proxies: Option<Vec<String>>,
    login_limit: Option<String>,
    auth_address_limit: Option<String>,
    bad_credential_limit: Option<String>,
    export_limit: Option<String>,
    allowed_origins: Option<Vec<String>>,
    stream_heartbeat: Option<u64>,
    stream_buffer: Option<usize>,
    redis_url: Option<String>,
    database_url: Option<String>,
    database_timeout: Option<u64>,
    metrics_token: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    public_url: Option<String>,
    sso_allow_insecure_issuer: Option<bool>,
    sso_allow_private_issuer: Option<bool>,
    webhook_allow_private: Option<bool>,
    webhook_allow_http: Option<bool>,
    webhook_retries: Option<Vec<f64>>,
    audit_checkpoint_every: Option<u64>,
    audit_checkpoint_seconds: Option<u64>,
    retention_seconds: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub max_evidence_bytes: u64,
    /// `local`, or `s3://bucket[/prefix]`.
    pub evidence_store: String,
    pub s3_endpoint: Option<String>,
    pub s3_allow_http: bool,
    pub default_plan: PlanName,
    /// Addresses or ranges whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// `N/SECONDS` for the login class (per account and address); `None`: the default.
    pub login_limit: Option<String>,
    /// `N/SECONDS` for login and refresh per address; `None`: the default.
    pub auth_address_limit: Option<String>,
    /// `N/SECONDS` bad credentials per address; `None`: the default.
    pub bad_credential_limit: Option<String>,
    /// `N/SECONDS` for exports per credential; `None`: the default.
    pub export_limit: Option<String>,
    /// Origins (`scheme://host[:port]`) allowed to open the WebSocket stream
    /// besides the server's own.
    pub allowed_origins: Vec<String>,
    /// Seconds between event-stream heartbeats and credential checks.
    pub stream_heartbeat_secs: u64,
    /// Events a stream may fall behind by before it is ended.
    pub stream_buffer: usize,
    /// Redis shared by the nodes; `None`: this node alone.
    pub redis_url: Option<ironcase_app::shared::RedisUrl>,
    /// PostgreSQL; `None`: SQLite under the data directory.
    pub database_url: Option<ironcase_app::shared::SecretUrl>,
    /// How long PostgreSQL may keep a request waiting.
    pub database_timeout_secs: u64,
    /// Opens `/metrics` to those who present it; `None`: loopback only.
    pub metrics_token: Option<ironcase_app::shared::SecretUrl>,
    pub smtp_url: Option<ironcase_app::shared::SecretUrl>,
    pub mail_from: String,
    /// None: `http://<bind>`.
    pub public_url: Option<String>,
    pub sso_allow_insecure_issuer: bool,
    pub sso_allow_private_issuer: bool,
    pub webhook_allow_private: bool,
    pub webhook_allow_http: bool,
    /// The waits between a webhook message's attempts; none: the default.
    pub webhook_retries: Option<Vec<std::time::Duration>>,
    pub audit_checkpoint_every: u64,
    pub audit_checkpoint_seconds: u64,
    pub retention_seconds: u64,
    /// Seconds between looks for personal-data-breach warnings due (tests
    /// shorten it).
    pub breach_check_seconds: u64,
}

impl Config {
    /// The defaults, over `data_dir`: for offline commands.
    pub fn for_data_dir(data_dir: PathBuf) -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            log_format: LogFormat::Text,
            max_body_bytes: 1024 * 1024,
            max_evidence_bytes: 10 * 1024 * 1024 * 1024,
            evidence_store: "local".to_owned(),
            s3_endpoint: None,
            s3_allow_http: false,
            default_plan: PlanName::Enterprise,
            trusted_proxies: Vec::new(),
            login_limit: None,
            auth_address_limit: None,
            bad_credential_limit: None,
            export_limit: None,
            allowed_origins: Vec::new(),
            stream_heartbeat_secs: 15,
            stream_buffer: 1024,
            redis_url: None,
            database_url: None,
            database_timeout_secs: 10,
            metrics_token: None,
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            public_url: None,
            sso_allow_insecure_issuer: false,
            sso_allow_private_issuer: false,
            webhook_allow_private: false,
            webhook_allow_http: false,
            webhook_retries: None,
            audit_checkpoint_every: 1000,
            audit_checkpoint_seconds: 300,
            retention_seconds: 300,
            breach_check_seconds: 30,
        }
    }

    pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
        let (path, required) = match &args.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from("ironcase.toml"), false),
        };
        let file = read_file(&path, required)?;
        let cfg = Config {
            bind: args.bind.or(file.bind).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("ironcase-data")),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            max_body_bytes: args.max_body_bytes.or(file.max_body_bytes).unwrap_or(1024 * 1024),
            max_evidence_bytes: args.max_evidence_bytes.or(file.max_evidence_bytes).unwrap_or(10 * 1024 * 1024 * 1024),
            evidence_store: args.evidence_store.or(file.evidence_store).unwrap_or_else(|| "local".to_owned()),
            s3_endpoint: args.s3_endpoint.or(file.s3_endpoint),
            s3_allow_http: args.s3_allow_http.or(file.s3_allow_http).unwrap_or(false),
            default_plan: args.default_plan.or(file.default_plan).unwrap_or(PlanName::Enterprise),
            trusted_proxies: args.trusted_proxies.or(file.trusted_proxies).unwrap_or_default(),
            login_limit: args.login_limit.or(file.login_limit),
            auth_address_limit: args.auth_address_limit.or(file.auth_address_limit),
            bad_credential_limit: args.bad_credential_limit.or(file.bad_credential_limit),
            export_limit: args.export_limit.or(file.export_limit),
            allowed_origins: args.allowed_origins.or(file.allowed_origins).unwrap_or_default(),
            stream_heartbeat_secs: args.stream_heartbeat.or(file.stream_heartbeat).unwrap_or(15),
            stream_buffer: args.stream_buffer.or(file.stream_buffer).unwrap_or(1024),
            redis_url: args.redis_url.or(file.redis_url).map(ironcase_app::shared::RedisUrl::new),
            database_url: args.database_url.or(file.database_url).map(ironcase_app::shared::SecretUrl::new),
            database_timeout_secs: args.database_timeout.or(file.database_timeout).unwrap_or(10),
            metrics_token: args.metrics_token.or(file.metrics_token).map(ironcase_app::shared::SecretUrl::new),
            smtp_url: args.smtp_url.or(file.smtp_url).map(ironcase_app::shared::SecretUrl::new),
            mail_from: args.mail_from.or(file.mail_from).unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned()),
            public_url: args.public_url.or(file.public_url),
            sso_allow_insecure_issuer: args.sso_allow_insecure_issuer.or(file.sso_allow_insecure_issuer).unwrap_or(false),
            sso_allow_private_issuer: args.sso_allow_private_issuer.or(file.sso_allow_private_issuer).unwrap_or(false),
            webhook_allow_private: args.webhook_allow_private.or(file.webhook_allow_private).unwrap_or(false),
            webhook_allow_http: args.webhook_allow_http.or(file.webhook_allow_http).unwrap_or(false),
            audit_checkpoint_every: args.audit_checkpoint_every.or(file.audit_checkpoint_every).unwrap_or(1000).max(1),
            audit_checkpoint_seconds: args.audit_checkpoint_seconds.or(file.audit_checkpoint_seconds).unwrap_or(300).max(1),
            retention_seconds: args.retention_seconds.or(file.retention_seconds).unwrap_or(300).max(1),
            breach_check_seconds: 30,
            webhook_retries: match args.webhook_retries.or(file.webhook_retries) {
                None => None,
                Some(secs) => Some(
                    secs.into_iter()
                        .map(|s| {
                            std::time::Duration::try_from_secs_f64(s)
                                .map_err(|_| anyhow::anyhow!("--webhook-retries: {s} is not a wait in seconds"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?,
                ),
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
        for (name, v) in [
            ("login_limit", &self.login_limit),
            ("auth_address_limit", &self.auth_address_limit),
            ("bad_credential_limit", &self.bad_credential_limit),
            ("export_limit", &self.export_limit),
        ] {
            if let Some(v) = v {
                anyhow::ensure!(parse_limit(v).is_some(), "{name}: `{v}` is not N/SECONDS");
            }
        }
        if let Some(t) = &self.metrics_token {
            anyhow::ensure!(t.expose().len() >= 16, "metrics_token must be at least 16 characters");
        }
        anyhow::ensure!((1..=3600).contains(&self.stream_heartbeat_secs), "stream_heartbeat must be 1 to 3600 seconds");
        anyhow::ensure!((1..=3600).contains(&self.database_timeout_secs), "database_timeout must be 1 to 3600 seconds");
        anyhow::ensure!((16..=1_000_000).contains(&self.stream_buffer), "stream_buffer must be 16 to 1000000 events");
        for o in &self.allowed_origins {
            anyhow::ensure!(
                ironcase_http::routes::events::normalize_origin(o).is_some(),
                "allowed_origins: `{o}` is not an origin (scheme://host[:port])"
            );
        }
        if let Some(u) = &self.database_url {
            anyhow::ensure!(
                u.expose().starts_with("postgres://") || u.expose().starts_with("postgresql://"),
                "database_url must be a postgres:// URL"
            );
        }
        if let Some(u) = &self.redis_url {
            anyhow::ensure!(ironcase_app::shared::Redis::new(u).is_ok(), "redis_url is not a valid redis:// URL");
        }
        if let Some(u) = &self.public_url {
            anyhow::ensure!(
                url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()),
                "public_url must be an http:// or https:// URL"
            );
        }
        ironcase_app::mail::Mailer::new(self.smtp_url.as_ref(), &self.mail_from, "http://localhost").map_err(|e| anyhow::anyhow!("{e}"))?;
        for p in &self.trusted_proxies {
            anyhow::ensure!(ironcase_http::proxy::Cidr::parse(p).is_some(), "trusted_proxies: `{p}` is not an address or range");
        }
        anyhow::ensure!(
            self.evidence_store == "local" || self.evidence_store.starts_with("s3://"),
            "evidence_store must be `local` or s3://bucket[/prefix]"
        );
        Ok(())
    }
}

fn read_file(path: &Path, required: bool) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(s) => toml::from_str(&s).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_n_per_seconds() {
        assert_eq!(parse_limit("5/900"), Some(ironcase_app::ratelimit::Quota { burst: 5, period_ms: 900_000 }));
        for bad in ["0/60", "5/0", "5", "x/60", "5/-1", "5/99999999999"] {
            assert_eq!(parse_limit(bad), None, "{bad}");
        }
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ironcase.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n").expect("write");
        let cfg = Config::resolve(ServeArgs { config: Some(path.clone()), ..Default::default() }).expect("resolve");
        assert_eq!(cfg.bind.port(), 9000);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.max_body_bytes, 1024 * 1024);
        let cfg = Config::resolve(ServeArgs {
            config: Some(path.clone()),
            bind: Some("127.0.0.1:7000".parse().expect("addr")),
            ..Default::default()
        })
        .expect("resolve");
        assert_eq!(cfg.bind.port(), 7000);
        std::fs::write(&path, "nonsense = 1\n").expect("write");
        assert!(Config::resolve(ServeArgs { config: Some(path), ..Default::default() }).is_err());
    }
}
