//! `ironcase bench`: the load benchmark. Starts this binary as a server on a
//! fresh data directory and a free loopback port, drives it with concurrent
//! keep-alive clients, and prints req/s and latency percentiles per operation,
//! with `GET /healthz` as the ceiling of the HTTP stack, and the server's peak
//! RSS. Every phase is bounded in time and requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Incidents in the organisation before the list phase.
    #[arg(long, default_value_t = 100_000)]
    pub list_rows: u64,
    /// Stop a phase after this many requests even if time remains.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// Instead of the default phases, measure search, indicator lookup,
    /// similar incidents and evidence transfer on this data directory, filled
    /// beforehand by `ironcase dev seed` (its organisation `default`).
    #[arg(long)]
    pub seeded: Option<std::path::PathBuf>,
    /// Instead of the default phases, the provable audit log of this data
    /// directory, filled beforehand by `ironcase dev seed --audit-entries N`:
    /// how fast its tree is built and signed, inclusion and consistency
    /// proofs at its size, and the offline verification of its export.
    #[arg(long)]
    pub audit_proofs: Option<std::path::PathBuf>,
    /// Instead of the default phases, every framework's compliance report on
    /// this data directory, filled beforehand by `ironcase dev seed`.
    #[arg(long)]
    pub compliance: Option<std::path::PathBuf>,
    /// Concurrent clients for the latency phases of `--seeded`.
    #[arg(long, default_value_t = 4)]
    pub scale_clients: usize,
    /// Size of the evidence file moved each way by `--seeded`, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub evidence_mib: u64,
    /// Instead of load phases, the writer's pattern of statements (jobs of a
    /// savepoint, eight unwaited inserts and a release; 32 jobs a commit)
    /// over the store's own PostgreSQL connection and over `tokio-postgres`
    /// pipelining, alternately, on a database made on `--postgres`: jobs
    /// per second, and this process's and PostgreSQL's CPU per job
    /// (`--max-requests` jobs a run, at most 200,000).
    #[arg(long)]
    pub wire: bool,
    /// Instead of the default phases, password logins (argon2id at OWASP's
    /// parameters) from this many clients: their latency alone, then
    /// alongside `GET /incidents/{id}` from `--clients` clients, whose
    /// latency shows whether logins starve other requests.
    #[arg(long)]
    pub logins: Option<usize>,
    /// Instead of load phases, micro-benchmarks in this process: the
    /// rate-limit check, the permission check, and a million limiter keys.
    #[arg(long)]
    pub micro: bool,
    /// Instead of load phases, live updates: this many SSE subscribers
    /// receive every event of a stream of created incidents; prints the
    /// delivery latency (from the moment the create was sent).
    #[arg(long)]
    pub live: Option<usize>,
    /// With `--live`: idle SSE connections opened first, to measure what
    /// each costs the server in memory.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// With `--live`: incidents created (one at a time, 20 a second).
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// The server uses this Redis, as nodes of a cluster do. With `--live`:
    /// a second node over the same data directory, sharing this Redis with
    /// the first, holds `--remote` more subscribers; the incidents are
    /// created on the first node.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// With `--redis-url`: subscribers on the second node.
    #[arg(long, default_value_t = 100)]
    pub remote: usize,
    /// Run the server on PostgreSQL: a fresh database is created on this
    /// server (a URL with the right to create databases) and dropped after.
    #[arg(long)]
    pub postgres: Option<String>,
    /// With `--seeded`: the PostgreSQL database `dev seed --database-url`
    /// filled (the data directory holds its master key).
    #[arg(long)]
    pub database_url: Option<String>,
    /// The `ironcase` binary to run as the server (default: this one), so
    /// that two builds are measured by the same load generator.
    #[arg(long)]
    pub server_bin: Option<std::path::PathBuf>,
    /// The default phases as a member holding one of this many custom
    /// roles of the organisation (made first), instead of its owner.
    #[arg(long, default_value_t = 0)]
    pub custom_roles: usize,
    /// Instead of the default phases, alert intake: one alert per request,
    /// then batches of 1,000 (alerts per second).
    #[arg(long)]
    pub alerts: bool,
    /// Instead of the default phases, webhook deliveries to a receiver in
    /// this process, from this many endpoints: deliveries per second while
    /// incidents are created for `--seconds`, then the time from a commit to
    /// its first delivery.
    #[arg(long)]
    pub webhooks: Option<usize>,
    /// With `--webhooks`: the endpoints are notification channels (generic
    /// webhooks with a message template) instead of webhooks.
    #[arg(long)]
    pub channels: bool,
    /// With `--webhooks`: the receiver is down (it drops every connection)
    /// for this many seconds from the first create, then back; the run
    /// waits, with the default back-off, until every message arrived.
    #[arg(long)]
    pub outage: Option<u64>,
}

/// With Redis, login limits outlive a run (they are Redis's): runs one after
/// another log the same account in from the same address, so their servers
/// allow it more often.
mod audit;
mod compliance;
mod integrations;

const BENCH_LOGINS: [&str; 4] = ["--login-limit", "1000/60", "--auth-address-limit", "1000/60"];

/// The server binary of this run (`--server-bin`, else this one).
static SERVER_BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// A database made for one benchmark run, dropped with it.
struct BenchDb {
    admin: String,
    name: String,
    url: String,
}

impl BenchDb {
    fn create(admin: &str) -> anyhow::Result<BenchDb> {
        let name = format!("ironcase_bench_{}", uuid::Uuid::now_v7().simple());
        let mut c = postgres::Client::connect(admin, postgres::NoTls).context("connecting to PostgreSQL")?;
        c.batch_execute(&format!("create database {name}"))?;
        // The server's URL: the same, for the new database (its query, such
        // as `?sslmode=…`, kept).
        let (path, query) = admin.split_once('?').map_or((admin, String::new()), |(p, q)| (p, format!("?{q}")));
        let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or(path);
        Ok(BenchDb { admin: admin.to_owned(), url: format!("{base}/{name}{query}"), name })
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("drop database if exists {name} with (force)"));
            }
        })
        .join();
    }
}

/// `serve` flags (and the database behind them) for `--postgres`.
async fn backend_flags(args: &BenchArgs) -> anyhow::Result<(Vec<String>, Option<BenchDb>)> {
    match args.postgres.clone() {
        Some(admin) => {
            let db = tokio::task::spawn_blocking(move || BenchDb::create(&admin)).await??;
            Ok((vec!["--database-url".to_owned(), db.url.clone()], Some(db)))
        }
        None => Ok((Vec::new(), None)),
    }
}

struct Server {
    child: tokio::process::Child,
    base: String,
    pid: u32,
    _dir: tempfile::TempDir,
    password: String,
}

impl Server {
    /// Logs in as the first owner: the `Authorization` header value.
    async fn admin_auth(&self) -> anyhow::Result<String> {
        let login: Value = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "email": "admin@localhost", "password": self.password }))
            .send()
            .await?
            .json()
            .await?;
        Ok(format!("Bearer {}", login["access_token"].as_str().context("login failed")?))
    }

    /// The console's cookie of the owner, signed in through the sign-in form.
    async fn console_cookie(&self) -> anyhow::Result<String> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let form = [("email", "admin@localhost"), ("password", self.password.as_str())];
        let r = client.post(format!("{}/signin", self.base)).form(&form).send().await?;
        let set = r.headers().get(reqwest::header::SET_COOKIE).and_then(|v| v.to_str().ok()).context("no console cookie")?;
        Ok(set.split(';').next().unwrap_or_default().to_owned())
    }

    /// `n` custom roles made by the owner, and the bearer of a member who
    /// holds the first (invited, accepted, logged in).
    async fn custom_role_member(&self, owner: &str, n: usize) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let call = |path: &str, auth: Option<&str>, body: Value| {
            let mut r = client.post(format!("{}/api/v1{path}", self.base)).json(&body);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            let path = path.to_owned();
            async move {
                let r = r.send().await?;
                anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
                Ok::<Value, anyhow::Error>(r.json().await?)
            }
        };
        let mut first = None;
        for i in 0..n {
            let role = json!({ "name": format!("bench-{i}"), "base": "lead", "grant": [], "revoke": ["evidence:delete"] });
            let made = call("/roles", Some(owner), role).await?;
            first.get_or_insert(made["id"].as_str().context("a role id")?.to_owned());
        }
        let role = first.context("--custom-roles needs at least one")?;
        let invited = call("/members", Some(owner), json!({ "email": "bench-member@example.org", "role": role })).await?;
        let token = invited["token"].as_str().context("an invitation token")?;
        let password = "bench member's long passphrase";
        call("/invitations/accept", None, json!({ "token": token, "name": "Bench", "password": password })).await?;
        let login = call("/auth/login", None, json!({ "email": "bench-member@example.org", "password": password })).await?;
        Ok(format!("Bearer {}", login["access_token"].as_str().context("login failed")?))
    }
}

/// Starts the server over `data` (a fresh directory when `None`), with
/// `extra` flags.
async fn start_server_with(data: Option<&std::path::Path>, extra: &[String]) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let data = data.map(std::path::Path::to_path_buf).unwrap_or_else(|| dir.path().join("data"));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let exe = match SERVER_BIN.get() {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let child = tokio::process::Command::new(exe)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .args(extra)
        .env("IRONCASE_LOG", "warn")
        .env_remove("IRONCASE_MASTER_KEY")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let pid = child.id().context("server pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            let password = std::fs::read_to_string(data.join("initial-admin-password"))
                .context("the data directory has no initial-admin-password file")?
                .trim()
                .to_owned();
            return Ok(Server { child, base, pid, _dir: dir, password });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not come up")
}

/// The server's private resident memory (anonymous pages), in MB. Pages of
/// the database file that readers map are the OS page cache, shared and
/// reclaimable, and are left out.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("RssAnon:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A minimal HTTP/1.1 keep-alive client: the load generator shares the two
/// cores with the server, so it must cost as little as possible per request
/// (a general-purpose client spent more CPU than the server did).
struct Conn {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
    line: String,
}

/// An answer: status, `Location` header, body.
struct Answer {
    status: u16,
    location: Option<String>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn { stream: tokio::io::BufStream::new(s), line: String::with_capacity(256) })
    }

    async fn request(&mut self, raw: &[u8]) -> std::io::Result<Answer> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(raw).await?;
        self.stream.flush().await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status = self.line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        let mut location = None;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("location") {
                    location = Some(v.trim().to_owned());
                }
            }
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await?;
        Ok(Answer { status, location })
    }
}

/// Renders request `n` of a phase.
type Render = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;
/// Judges an answer; may keep something from it.
type Check = Arc<dyn Fn(&Answer) -> bool + Send + Sync>;

struct PhaseResult {
    name: String,
    ok: u64,
    errors: u64,
    secs: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// CPU time per request answered, in µs: the server's, and every
    /// PostgreSQL process's on this machine. On a shared VM throughput moves
    /// with the neighbours; the CPU a request costs much less so.
    cpu_us: Option<(f64, f64)>,
}

/// CPU seconds used so far by process `pid`, and by all PostgreSQL
/// processes (`/proc`, in USER_HZ ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    fn ticks(stat: &str) -> Option<u64> {
        // Fields after the command (which may hold spaces): utime, stime are the 12th and 13th.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| ticks(&s)).unwrap_or(0);
    let mut db = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let path = e.path();
            if std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
                db += std::fs::read_to_string(path.join("stat")).ok().and_then(|s| ticks(&s)).unwrap_or(0);
            }
        }
    }
    (own as f64 / 100.0, db as f64 / 100.0)
}

/// Runs a phase and notes the CPU it cost the server (`pid`) and PostgreSQL.
async fn with_cpu(pid: u32, f: impl std::future::Future<Output = PhaseResult>) -> PhaseResult {
    let (s0, d0) = cpu_seconds(pid);
    let mut r = f.await;
    let (s1, d1) = cpu_seconds(pid);
    if r.ok > 0 {
        let per = |a: f64, b: f64| (b - a) * 1e6 / r.ok as f64;
        r.cpu_us = Some((per(s0, s1), per(d0, d1)));
    }
    r
}

async fn phase(name: &str, addr: &str, clients: usize, seconds: u64, max: u64, render: Render, check: Check) -> PhaseResult {
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (stop, issued, render, check, addr) = (stop.clone(), issued.clone(), render.clone(), check.clone(), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let raw = render(n);
                let t = Instant::now();
                if conn.is_none() {
                    conn = Conn::open(&addr).await.ok();
                }
                let ok = match conn.as_mut() {
                    Some(c) => match c.request(&raw).await {
                        Ok(a) => check(&a),
                        Err(_) => {
                            conn = None;
                            false
                        }
                    },
                    None => false,
                };
                if ok {
                    lat.push(t.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if issued.load(Ordering::Relaxed) >= max { break; }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| percentile_ms(&all, p);
    PhaseResult {
        name: name.to_owned(),
        ok: all.len() as u64,
        errors,
        secs,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        cpu_us: None,
    }
}

/// The `p` quantile (0 to 1) of sorted latencies in microseconds, in ms.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

fn get_request(path: &str, auth: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: {auth}\r\n\r\n").into_bytes()
}

fn page_request(path: &str, cookie: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/html\r\ncookie: {cookie}\r\n\r\n").into_bytes()
}

fn post_request(path: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn print(r: &PhaseResult, peak_rss: f64) {
    let cpu = match r.cpu_us {
        Some((server, 0.0)) => format!("   cpu/req server {server:.0} µs"),
        Some((server, db)) => format!("   cpu/req server {server:.0} µs, PostgreSQL {db:.0} µs"),
        None => String::new(),
    };
    println!(
        "{:<34} {:>9} ok {:>6} err {:>10.0} req/s   p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   private RSS {:>6.1} MB{cpu}",
        r.name,
        r.ok,
        r.errors,
        r.ok as f64 / r.secs,
        r.p50_ms,
        r.p95_ms,
        r.p99_ms,
        peak_rss
    );
}

fn incident_body(n: u64) -> Value {
    const SEV: [&str; 4] = ["low", "medium", "high", "critical"];
    const CAT: [&str; 4] = ["malware", "phishing", "unauthorized_access", "other"];
    json!({
        "title": format!("Benchmark incident {n}"),
        "description": "Suspicious activity reported by the benchmark; several hosts affected.",
        "severity": SEV[(n % 4) as usize],
        "category": CAT[(n / 4 % 4) as usize],
        "tags": ["bench", format!("batch-{}", n % 10)],
    })
}

pub async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Some(p) = &args.server_bin {
        let _ = SERVER_BIN.set(p.clone());
    }
    if args.micro {
        return run_micro();
    }
    if args.wire {
        let admin = args.postgres.clone().context("--wire needs --postgres")?;
        let db = tokio::task::spawn_blocking(move || BenchDb::create(&admin)).await??;
        return crate::wire::run(&db.url, args.max_requests.min(200_000)).await;
    }
    if let Some(dir) = args.compliance.clone() {
        return compliance::run_compliance(&args, &dir).await;
    }
    if let Some(dir) = args.audit_proofs.clone() {
        return audit::run_audit_proofs(&args, &dir).await;
    }
    if let Some(dir) = args.seeded.clone() {
        return run_seeded(&args, &dir).await;
    }
    if let Some(subscribers) = args.live {
        return run_live(&args, subscribers).await;
    }
    if let Some(clients) = args.logins {
        return run_logins(&args, clients).await;
    }
    if args.alerts {
        return integrations::run_alerts(&args).await;
    }
    if let Some(endpoints) = args.webhooks {
        return integrations::run_webhooks(&args, endpoints).await;
    }
    let (mut flags, _db) = backend_flags(&args).await?;
    // With Redis, as several nodes run: shared limits, sessions remembered.
    if let Some(url) = &args.redis_url {
        flags.extend(["--redis-url".to_owned(), url.clone()]);
        flags.extend(BENCH_LOGINS.iter().map(|s| (*s).to_owned()));
    }
    let server = start_server_with(None, &flags).await?;
    let base = server.base.clone();
    let pid = server.pid;
    let mut auth = server.admin_auth().await?;
    if args.custom_roles > 0 {
        auth = server.custom_role_member(&auth, args.custom_roles).await?;
        println!("as a member holding one of {} custom roles", args.custom_roles);
    }

    let peak = Arc::new(std::sync::Mutex::new(0.0f64));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let r = rss_mb(pid);
                if let Ok(mut p) = peak.lock() {
                    *p = p.max(r);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let peak_now = || peak.lock().map(|p| *p).unwrap_or(0.0);

    println!("ironcase bench: {} clients, {} s per phase, server pid {pid} on {base}", args.clients, args.seconds);
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        if args.postgres.is_some() { "PostgreSQL on loopback" } else { "SQLite WAL, synchronous=FULL" }
    );
    if args.redis_url.is_some() {
        println!("with Redis (limits shared, sessions remembered between requests)");
    }

    let addr = base.trim_start_matches("http://").to_owned();
    let status_is = |code: u16| -> Check { Arc::new(move |a: &Answer| a.status == code) };
    let r = with_cpu(
        pid,
        phase(
            "GET /healthz (HTTP ceiling)",
            &addr,
            args.clients,
            args.seconds,
            args.max_requests,
            Arc::new(|_| b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n".to_vec()),
            status_is(200),
        ),
    )
    .await;
    print(&r, peak_now());

    let ids = Arc::new(std::sync::Mutex::new(Vec::<String>::with_capacity(200_000)));
    let a = auth.clone();
    let create: Render = Arc::new(move |n| post_request("/api/v1/incidents", &a, &incident_body(n).to_string()));
    let ids2 = ids.clone();
    let created: Check = Arc::new(move |ans: &Answer| {
        if ans.status != 201 {
            return false;
        }
        if let Some(id) = ans.location.as_deref().and_then(|l| l.rsplit('/').next()) {
            if let Ok(mut v) = ids2.lock() {
                v.push(id.to_owned());
            }
        }
        true
    });
    let r = with_cpu(
        pid,
        phase("POST /incidents (create)", &addr, args.clients, args.seconds, args.max_requests, create.clone(), created.clone()),
    )
    .await;
    print(&r, peak_now());

    let all_ids: Arc<Vec<String>> = Arc::new(ids.lock().map(|v| v.clone()).unwrap_or_default());
    anyhow::ensure!(!all_ids.is_empty(), "no incident was created");
    let (a, pool) = (auth.clone(), all_ids.clone());
    let get: Render = Arc::new(move |n| {
        let id = &pool[(n.wrapping_mul(2_654_435_761) % pool.len() as u64) as usize];
        get_request(&format!("/api/v1/incidents/{id}"), &a)
    });
    let r = with_cpu(pid, phase("GET /incidents/{id}", &addr, args.clients, args.seconds, args.max_requests, get, status_is(200))).await;
    print(&r, peak_now());

    // Fill up to `list_rows` incidents, then measure lists.
    let have = all_ids.len() as u64;
    if have < args.list_rows {
        let started = Instant::now();
        let r = phase("(seeding for the list phase)", &addr, args.clients, 900, args.list_rows - have, create, created).await;
        println!("seeded {} more incidents in {:.1} s ({} in all)", r.ok, started.elapsed().as_secs_f64(), have + r.ok);
    }
    let a = auth.clone();
    let list: Render = Arc::new(move |n| {
        const SEV: [&str; 4] = ["low", "medium", "high", "critical"];
        get_request(&format!("/api/v1/incidents?limit=50&severity={}", SEV[(n % 4) as usize]), &a)
    });
    let r = with_cpu(
        pid,
        phase("GET /incidents?limit=50&severity=…", &addr, args.clients, args.seconds, args.max_requests, list, status_is(200)),
    )
    .await;
    print(&r, peak_now());

    // The console's pages over the same data, with its cookie.
    let cookie = server.console_cookie().await?;
    let c = cookie.clone();
    let queue: Render = Arc::new(move |n| {
        const SEV: [&str; 4] = ["low", "medium", "high", "critical"];
        page_request(&format!("/?severity={}", SEV[(n % 4) as usize]), &c)
    });
    let r =
        with_cpu(pid, phase("console GET / (queue, 50 rows)", &addr, args.clients, args.seconds, args.max_requests, queue, status_is(200)))
            .await;
    print(&r, peak_now());
    let (c, pool) = (cookie.clone(), all_ids.clone());
    let incident: Render = Arc::new(move |n| {
        let id = &pool[(n.wrapping_mul(2_654_435_761) % pool.len() as u64) as usize];
        page_request(&format!("/incidents/{id}"), &c)
    });
    let r =
        with_cpu(pid, phase("console GET /incidents/{id}", &addr, args.clients, args.seconds, args.max_requests, incident, status_is(200)))
            .await;
    print(&r, peak_now());

    let c = cookie.clone();
    let dashboard: Render = Arc::new(move |_| page_request("/dashboard", &c));
    let r = with_cpu(pid, phase("console GET /dashboard", &addr, args.clients, args.seconds, args.max_requests, dashboard, status_is(200)))
        .await;
    print(&r, peak_now());

    sampler.abort();
    println!("server peak private RSS over the run: {:.1} MB", peak_now());
    let mut child = server.child;
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `ironcase bench --logins N`.
async fn run_logins(args: &BenchArgs, clients: usize) -> anyhow::Result<std::process::ExitCode> {
    let (mut flags, _db) = backend_flags(args).await?;
    // Every login is the same account from one address: the throttles that
    // would refuse them are lifted; argon2 is what is measured.
    flags.extend(["--login-limit", "100000000/60", "--auth-address-limit", "100000000/60"].map(str::to_owned));
    if let Some(url) = &args.redis_url {
        flags.extend(["--redis-url".to_owned(), url.clone()]);
    }
    let server = start_server_with(None, &flags).await?;
    let (addr, pid) = (server.base.trim_start_matches("http://").to_owned(), server.pid);
    let auth = server.admin_auth().await?;
    println!(
        "ironcase bench --logins: {clients} login clients, {} other clients, {} s per phase, {} cores",
        args.clients,
        args.seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let body = json!({ "email": "admin@localhost", "password": server.password }).to_string();
    let login: Render = Arc::new(move |_| {
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let ok: Check = Arc::new(|a: &Answer| a.status == 200);
    let r =
        with_cpu(pid, phase("POST /auth/login (alone)", &addr, clients, args.seconds, args.max_requests, login.clone(), ok.clone())).await;
    print(&r, rss_mb(pid));

    let created = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents", server.base))
        .header("authorization", &auth)
        .json(&incident_body(1))
        .send()
        .await?;
    let location = created.headers().get("location").and_then(|v| v.to_str().ok()).context("no incident made")?.to_owned();
    let a = auth.clone();
    let get: Render = Arc::new(move |_| get_request(&location, &a));
    let r = phase("GET /incidents/{id} (alone)", &addr, args.clients, args.seconds, args.max_requests, get.clone(), ok.clone()).await;
    print(&r, rss_mb(pid));
    let (logins, gets) = tokio::join!(
        phase("POST /auth/login (with gets)", &addr, clients, args.seconds, args.max_requests, login, ok.clone()),
        phase("GET /incidents/{id} (with logins)", &addr, args.clients, args.seconds, args.max_requests, get, ok),
    );
    print(&logins, rss_mb(pid));
    print(&gets, rss_mb(pid));
    Ok(std::process::ExitCode::SUCCESS)
}

async fn login(base: &str, password: &str) -> anyhow::Result<String> {
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@localhost", "password": password }))
        .send()
        .await?
        .json()
        .await?;
    Ok(login["access_token"].as_str().context("login failed")?.to_owned())
}

/// Peak RSS sampled every 20 ms while `f` runs, in MB.
async fn peak_while<T>(pid: u32, f: impl std::future::Future<Output = T>) -> (T, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(std::sync::Mutex::new(0.0f64));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = rss_mb(pid);
                if let Ok(mut p) = peak.lock() {
                    *p = p.max(r);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let p = peak.lock().map(|p| *p).unwrap_or(0.0);
    (out, p)
}

/// The `--seeded` phases: evidence transfer, then search, indicator lookup
/// and similar incidents over the seeded organisation.
async fn run_seeded(args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    let extra: Vec<String> = args.database_url.iter().flat_map(|u| ["--database-url".to_owned(), u.clone()]).collect();
    let server = start_server_with(Some(dir), &extra).await?;
    let (base, pid) = (server.base.clone(), server.pid);
    let token = login(&base, &server.password).await?;
    let auth = format!("Bearer {token}");
    let client = reqwest::Client::new();
    let newest: Value = client.get(format!("{base}/api/v1/incidents?limit=1")).bearer_auth(&token).send().await?.json().await?;
    let incidents: u64 = newest["items"][0]["number"]
        .as_str()
        .and_then(|n| n.strip_prefix("INC-"))
        .and_then(|n| n.parse().ok())
        .context("the seeded organisation has no incidents")?;
    println!(
        "ironcase bench --seeded: {incidents} incidents in `default`, {} clients for latency phases, server pid {pid}",
        args.scale_clients
    );

    // Evidence: one client streams a file up, then down.
    let size = args.evidence_mib * 1024 * 1024;
    let inc = newest["items"][0]["id"].as_str().context("incident id")?.to_owned();
    let before = rss_mb(pid);
    let block: Arc<Vec<u8>> = Arc::new((0..(1u32 << 20)).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect());
    let boundary = "benchboundary";
    let head = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"disk.img\"\r\n\r\n",
        json!({ "name": "disk.img", "kind": "disk_image" })
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() as u64 + size + tail.len() as u64;
    let pieces = size.div_ceil(1 << 20);
    let b2 = block.clone();
    let body = std::iter::once(bytes::Bytes::from(head.into_bytes()))
        .chain((0..pieces).map(move |i| {
            let n = ((size - i * (1 << 20)).min(1 << 20)) as usize;
            bytes::Bytes::copy_from_slice(&b2[..n])
        }))
        .chain(std::iter::once(bytes::Bytes::from(tail.into_bytes())));
    let started = Instant::now();
    let (res, up_peak) = peak_while(pid, async {
        client
            .post(format!("{base}/api/v1/incidents/{inc}/evidence"))
            .bearer_auth(&token)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("content-length", len)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(body.map(Ok::<_, std::io::Error>))))
            .send()
            .await
    })
    .await;
    let res = res?;
    anyhow::ensure!(res.status() == 201, "upload answered {}", res.status());
    let up_secs = started.elapsed().as_secs_f64();
    let evd: Value = res.json().await?;
    let evd = evd["id"].as_str().context("evidence id")?.to_owned();
    let started = Instant::now();
    let (got, down_peak) = peak_while(pid, async {
        let mut res = client.get(format!("{base}/api/v1/evidence/{evd}/content")).bearer_auth(&token).send().await?;
        anyhow::ensure!(res.status() == 200, "download answered {}", res.status());
        let mut n = 0u64;
        while let Some(chunk) = res.chunk().await? {
            n += chunk.len() as u64;
        }
        Ok(n)
    })
    .await;
    anyhow::ensure!(got? == size, "the download was short");
    let down_secs = started.elapsed().as_secs_f64();
    let mb = size as f64 / 1e6;
    println!(
        "evidence upload   {:>6} MiB  {:>7.1} MB/s   server private RSS {before:.1} MB before, peak {up_peak:.1} MB (+{:.1})",
        args.evidence_mib,
        mb / up_secs,
        up_peak - before
    );
    println!(
        "evidence download {:>6} MiB  {:>7.1} MB/s   server private RSS peak {down_peak:.1} MB (+{:.1}); verified before the first byte and while streaming",
        args.evidence_mib,
        mb / down_secs,
        down_peak - before
    );

    let addr = base.trim_start_matches("http://").to_owned();
    let ok: Check = Arc::new(|a: &Answer| a.status == 200);
    let clients = args.scale_clients;
    let words = Arc::new(crate::seed::words());
    let (a, w) = (auth.clone(), words.clone());
    let search: Render = Arc::new(move |n| {
        const SEV: [&str; 4] = ["low", "medium", "high", "critical"];
        // Words of middling frequency (ranks 20 to 320 of the vocabulary).
        let w1 = &w[20 + (n.wrapping_mul(7) % 300) as usize];
        let w2 = &w[20 + (n.wrapping_mul(13).wrapping_add(5) % 300) as usize];
        get_request(&format!("/api/v1/search?q={w1}%20{w2}%20severity:{}&limit=20", SEV[(n % 4) as usize]), &a)
    });
    let r = phase("GET /search (2 words + filter, facets)", &addr, clients, args.seconds, args.max_requests, search, ok.clone()).await;
    print(&r, rss_mb(pid));

    let pool = crate::seed::ioc_pool(incidents, 5);
    let a = auth.clone();
    let lookup: Render = Arc::new(move |n| {
        let u = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        let (kind, value) = crate::seed::ioc_value((u * u * pool as f64) as u64);
        let value: String = form_urlencoded(&value);
        get_request(&format!("/api/v1/iocs?type={kind}&value={value}"), &a)
    });
    let r = phase("GET /iocs?value= (lookup)", &addr, clients, args.seconds, args.max_requests, lookup, ok.clone()).await;
    print(&r, rss_mb(pid));

    let a = auth.clone();
    let similar: Render = Arc::new(move |n| {
        let k = 1 + n.wrapping_mul(2_654_435_761) % incidents;
        get_request(&format!("/api/v1/incidents/INC-{k}/similar?limit=10"), &a)
    });
    let r = phase("GET /incidents/{id}/similar", &addr, clients, args.seconds, args.max_requests, similar, ok).await;
    print(&r, rss_mb(pid));

    let mut child = server.child;
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Percent-encodes a query value.
fn form_urlencoded(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// This process's private resident memory, in MB.
fn own_rss_mb() -> f64 {
    rss_mb(std::process::id())
}

/// Nanoseconds per call of `f`, over `n` calls.
fn ns_per(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// `ironcase bench --micro`.
fn run_micro() -> anyhow::Result<std::process::ExitCode> {
    use ironcase_app::ratelimit::{Limiter, Quota};
    use ironcase_app::{Actor, Principal};
    use ironcase_domain::{Permission, Role, Timestamp, UserId};
    use std::hint::black_box;

    println!("ironcase bench --micro: one thread, release build");
    let now = Timestamp(1_800_000_000_000);
    let limiter = Limiter::new(Quota::per_minute(1_000_000), 1_100_000);
    let keys: Vec<String> = (0..10_000).map(|i| format!("cred:ses_{i:032x}")).collect();
    let q = Quota::per_minute(1_000);
    let ns = ns_per(5_000_000, |i| {
        black_box(limiter.check_with(&keys[(i % 10_000) as usize], q, Timestamp(now.0 + (i / 10_000) as i64)));
    });
    println!("rate-limit check (10,000 hot keys)        {ns:>8.1} ns/check   (target <= 1,000 ns)");

    let me = UserId::new();
    let p = Principal {
        org: ironcase_domain::OrgId::new(),
        actor: Actor::User(me),
        role: Role::Analyst,
        grants: ironcase_domain::Grants::of(Role::Analyst),
        custom_role: None,
        session: None,
        is_operator: false,
        sight: ironcase_domain::Sight::ALL,
        rate_per_minute: None,
        enrolling: false,
        authenticated_at: None,
        networks: Default::default(),
        signing_key: None,
        signed: false,
        audit_reads: false,
    };
    let other = UserId::new();
    let ns = ns_per(50_000_000, |i| {
        let reporter = if i % 2 == 0 { me } else { other };
        black_box(p.may_on_incident(black_box(Permission::IncidentUpdate), reporter, None));
    });
    println!("permission check (role table + condition) {ns:>8.1} ns/check   (target <= 500 ns)");
    // The same check for a custom role (an organisation's own: a base,
    // grants, revokes and the own-or-assigned condition), one of ten.
    use ironcase_domain::Permission as P;
    let customs: Vec<Principal> = (0..10)
        .map(|i| Principal {
            grants: ironcase_domain::Grants::custom(Role::ALL[i % Role::ALL.len()], &[P::AuditRead], &[P::EvidenceDownload], i % 2 == 0),
            custom_role: Some(ironcase_domain::RoleId::new()),
            ..p.clone()
        })
        .collect();
    let ns = ns_per(50_000_000, |i| {
        let reporter = if i % 2 == 0 { me } else { other };
        let q = &customs[(i % 10) as usize];
        black_box(q.may_on_incident(black_box(Permission::IncidentUpdate), reporter, None) && q.has(black_box(P::AuditRead)));
    });
    println!("permission check (custom role, 2 checks)  {ns:>8.1} ns/check   (target <= 500 ns)");

    // A login's second step: open the sealed secret, compute the codes of
    // three steps, compare each in constant time.
    let master = ironcase_app::crypto::MasterKey::parse(&"5a".repeat(32))?;
    let account = ironcase_store::org::UserRow {
        id: me,
        email: "bench@example.org".into(),
        name: "bench".into(),
        password_hash: String::new(),
        is_operator: false,
        created_at: now,
    };
    let sealed = master.seal(&[7u8; 20], &format!("totp:{me}"))?;
    let ns = ns_per(200_000, |i| {
        black_box(ironcase_app::mfa::code_step(&master, &sealed, &account, black_box("123456"), Timestamp(now.0 + i as i64)).ok());
    });
    println!("TOTP verification (unseal + 3 steps)      {:>8.1} µs/check   (target <= 50 µs)", ns / 1000.0);

    let before = own_rss_mb();
    let big = Limiter::new(Quota::per_minute(30), 1_000_000);
    let t = Instant::now();
    for i in 0..1_000_000u64 {
        big.check(&format!("{}.{}.{}.{}", 10 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255), now);
    }
    let after = own_rss_mb();
    println!(
        "1,000,000 distinct keys                   {:>8.1} MB   ({} keys held, {:.0} ns/insert; target <= 150 MB)",
        after - before,
        big.len(),
        t.elapsed().as_nanos() as f64 / 1e6
    );
    // A minute later every key is idle: a new flood replaces them, the count stays bounded.
    let later = Timestamp(now.0 + 61_000);
    for i in 0..1_000_000u64 {
        big.check(&format!("new-{i}"), later);
    }
    println!(
        "another 1,000,000 keys a minute later      {:>8} keys held (bounded at 1,000,000; idle keys evicted), {:.1} MB now",
        big.len(),
        own_rss_mb() - before
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Opens `GET /api/v1/events/stream` on a raw connection and reads the
/// response head; the rest of the stream is the caller's to read.
async fn open_sse(addr: &str, auth: &str) -> anyhow::Result<tokio::io::BufReader<tokio::net::TcpStream>> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&get_request("/api/v1/events/stream", auth)).await?;
    let mut r = tokio::io::BufReader::with_capacity(4096, s);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    anyhow::ensure!(line.starts_with("HTTP/1.1 200"), "stream refused: {}", line.trim_end());
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    Ok(r)
}

/// Subscribers reading the live stream on one connection each; each returns
/// the delivery latency of every event it saw, in microseconds.
async fn subscribe_all(
    addr: &str,
    auth: &str,
    n: usize,
    origin: Instant,
    sent_at: &Arc<Vec<AtomicU64>>,
    done: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Vec<u32>>>> {
    use tokio::io::AsyncBufReadExt;
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut r = open_sse(addr, auth).await?;
        let (sent_at, done) = (sent_at.clone(), done.clone());
        let events = sent_at.len();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(events);
            let mut line = String::new();
            while lat.len() < events && !done.load(Ordering::Relaxed) {
                line.clear();
                match tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => break,
                }
                let Some(at) = line.find("live-bench ") else { continue };
                let digits: String = line[at + 11..].chars().take_while(char::is_ascii_digit).collect();
                let Ok(k) = digits.parse::<usize>() else { continue };
                let now = origin.elapsed().as_micros() as u64;
                let sent = sent_at.get(k).map(|a| a.load(Ordering::Relaxed)).unwrap_or(now);
                lat.push(now.saturating_sub(sent) as u32);
            }
            lat
        }));
    }
    Ok(tasks)
}

async fn report_delivery(label: &str, tasks: Vec<tokio::task::JoinHandle<Vec<u32>>>, expected: usize) {
    let mut all: Vec<u32> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all.sort_unstable();
    let pct = |p: f64| percentile_ms(&all, p);
    println!(
        "{label:<22} delivered {} of {expected} (events x subscribers)   p50 {:.2} ms   p95 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        all.len(),
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0),
    );
}

/// `--live`: memory per idle stream, then delivery latency to many, on this
/// node and (with `--redis-url`) on another.
async fn run_live(args: &BenchArgs, subscribers: usize) -> anyhow::Result<std::process::ExitCode> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut extra, _db) = backend_flags(args).await?;
    extra.extend(args.redis_url.iter().flat_map(|u| ["--redis-url".to_owned(), u.clone()]));
    if args.redis_url.is_some() {
        extra.extend(BENCH_LOGINS.iter().map(|s| (*s).to_owned()));
    }
    let server = start_server_with(Some(&data), &extra).await?;
    let (base, pid) = (server.base.clone(), server.pid);
    let auth = server.admin_auth().await?;
    let addr = base.trim_start_matches("http://").to_owned();
    println!("ironcase bench --live: server pid {pid} on {base}");

    // Idle connections: what each costs the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_mb(pid);
    let mut idle = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        idle.push(open_sse(&addr, &auth).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mb(pid);
    println!(
        "{} idle SSE streams: private RSS {before:.1} MB -> {after:.1} MB (+{:.1} MB, {:.1} KB each)",
        args.idle,
        after - before,
        (after - before) * 1024.0 / args.idle.max(1) as f64
    );
    drop(idle);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let other = match &args.redis_url {
        Some(_) => {
            let s = start_server_with(Some(&data), &extra).await?;
            println!("second node: pid {} on {}, sharing the database and Redis", s.pid, s.base);
            Some(s)
        }
        None => None,
    };

    // Delivery: every subscriber reads every event; latency from the send.
    let origin = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..args.events).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let local = subscribe_all(&addr, &auth, subscribers, origin, &sent_at, &done).await?;
    let remote = match &other {
        Some(s) => subscribe_all(s.base.trim_start_matches("http://"), &auth, args.remote, origin, &sent_at, &done).await?,
        None => Vec::new(),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{subscribers} SSE subscribers on this node{}; creating {} incidents here, 20 a second",
        if other.is_some() { format!(", {} on the other", args.remote) } else { String::new() },
        args.events
    );
    let mut conn = Conn::open(&addr).await?;
    for (k, slot) in sent_at.iter().enumerate() {
        let body = json!({ "title": format!("live-bench {k}"), "severity": "low", "category": "other" }).to_string();
        slot.store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
        let a = conn.request(&post_request("/api/v1/incidents", &auth, &body)).await?;
        anyhow::ensure!(a.status == 201, "create answered {}", a.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.store(true, Ordering::Relaxed);
    report_delivery("same node", local, args.events * subscribers).await;
    if other.is_some() {
        report_delivery("other node (Redis)", remote, args.events * args.remote).await;
    }
    println!("server private RSS {:.1} MB", rss_mb(pid));
    drop(other);
    drop(server);
    Ok(std::process::ExitCode::SUCCESS)
}
