//! `TestApp`: the real server on port 0 over a fresh data dir, and a client.

use std::path::PathBuf;

use ironcase::config::{Config, LogFormat};
use ironcase::server::{start, Running};
use ironcase_app::Clock;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub admin_password: String,
    pub data_dir: PathBuf,
    running: Option<Running>,
    /// The data directory's owner; `None` for a second node over another's.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database of this test, when the suite runs on it.
    pub database: Option<std::sync::Arc<TestDb>>,
}

/// A fresh PostgreSQL database for one test, dropped with it.
pub struct TestDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDb {
    /// With `IRONCASE_TEST_BACKEND=postgres`, a new database on the tests'
    /// PostgreSQL server ([`ironcase_testkit::postgres_url`]: the one at
    /// `IRONCASE_TEST_POSTGRES_URL`, else a cluster of the tests' own);
    /// otherwise `None` (SQLite).
    async fn for_this_test() -> Option<std::sync::Arc<TestDb>> {
        if std::env::var("IRONCASE_TEST_BACKEND").as_deref() != Ok("postgres") {
            return None;
        }
        let admin_url = tokio::task::spawn_blocking(ironcase_testkit::postgres_url).await.expect("task");
        Some(TestDb::create(admin_url.expect("IRONCASE_TEST_BACKEND=postgres needs a PostgreSQL server (see above)")).await)
    }

    /// A new database on the server at `admin_url`.
    pub async fn create(admin_url: String) -> std::sync::Arc<TestDb> {
        let name = format!("ironcase_t_{}", uuid::Uuid::now_v7().simple());
        let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or_else(|| admin_url.clone());
        let (a, n) = (admin_url.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let mut admin = postgres::Client::connect(&a, postgres::NoTls).expect("connect to the test server");
            admin.batch_execute(&format!("create database {n}")).expect("create the test database");
        })
        .await
        .expect("create database");
        std::sync::Arc::new(TestDb { url: format!("{base}/{name}"), admin_url, name })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (a, n) = (self.admin_url.clone(), self.name.clone());
        // Not on the async thread: the driver blocks.
        let _ = std::thread::spawn(move || {
            if let Ok(mut admin) = postgres::Client::connect(&a, postgres::NoTls) {
                let _ = admin.batch_execute(&format!("drop database if exists {n} with (force)"));
            }
        })
        .join();
    }
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem+json `code`, for errors.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {} {}", self.status, self.body);
        self
    }

    /// Asserts an RFC 9457 problem with this status and code.
    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        assert_eq!(self.body["status"].as_u64(), Some(u64::from(status)));
        let known = ironcase_app::ErrorCode::ALL.iter().find(|c| c.as_str() == code);
        assert_eq!(known.map(|c| c.status()), Some(status), "{code} is not a listed code of status {status}");
        assert!(self.body["title"].is_string() && self.body["type"].is_string() && self.body["detail"].is_string());
        assert!(self.body["request_id"].is_string(), "problem without request_id: {}", self.body);
        self
    }

    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("no string {key} in {}", self.body)).to_owned()
    }
}

/// A logged-in caller.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
    pub refresh: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts first. With
    /// `IRONCASE_TEST_LOG` set (a `tracing` filter), the server logs to stderr.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        if let Ok(filter) = std::env::var("IRONCASE_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_test_writer().try_init();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let mut cfg = Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            max_body_bytes: 64 * 1024,
            max_evidence_bytes: 4 * 1024 * 1024 * 1024,
            log_format: LogFormat::Text,
            ..Config::for_data_dir(data_dir.clone())
        };
        let database = TestDb::for_this_test().await;
        cfg.database_url = database.as_ref().map(|d| ironcase_app::shared::SecretUrl::new(d.url.clone()));
        tweak(&mut cfg);
        let clock = Clock::system();
        let running = start(&cfg, clock.clone()).await.expect("server starts");
        let pw_file = running.initial_password_file.clone().expect("first start writes the password file");
        let admin_password = std::fs::read_to_string(&pw_file).expect("password file").trim().to_owned();
        TestApp {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            clock,
            admin_password,
            data_dir,
            running: Some(running),
            _dir: Some(dir),
            database,
        }
    }

    /// Another node over this one's data directory (one database, as
    /// several nodes share one), configured by `tweak`. It must be shut down
    /// before this one.
    pub async fn spawn_node(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut cfg = Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            max_body_bytes: 64 * 1024,
            log_format: LogFormat::Text,
            ..Config::for_data_dir(self.data_dir.clone())
        };
        cfg.database_url = self.database.as_ref().map(|d| ironcase_app::shared::SecretUrl::new(d.url.clone()));
        tweak(&mut cfg);
        let clock = Clock::system();
        let running = start(&cfg, clock.clone()).await.expect("second node starts");
        assert!(running.initial_password_file.is_none(), "the second node finds the first organisation");
        TestApp {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            clock,
            admin_password: self.admin_password.clone(),
            data_dir: self.data_dir.clone(),
            running: Some(running),
            _dir: None,
            database: self.database.clone(),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value, if_match: Option<&str>) -> Resp {
        let h: Vec<(&str, &str)> = if_match.map(|v| vec![("if-match", v)]).unwrap_or_default();
        self.send(Method::PATCH, path, Some(token), Some(body), &h).await
    }
    pub async fn put_json(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None, &[]).await
    }

    pub async fn login_raw(&self, email: &str, password: &str, org: Option<&str>) -> Resp {
        let mut body = json!({ "email": email, "password": password });
        if let Some(o) = org {
            body["organization"] = json!(o);
        }
        self.send(Method::POST, "/api/v1/auth/login", None, Some(body), &[]).await
    }

    pub async fn login(&self, email: &str, password: &str, org: Option<&str>) -> User {
        let r = self.login_raw(email, password, org).await.expect(200);
        let token = r.str("access_token");
        let me = self.get("/api/v1/auth/me", &token).await.expect(200);
        User { id: me.body["user"]["id"].as_str().expect("user id").to_owned(), token, refresh: r.str("refresh_token") }
    }

    /// The bootstrap owner of `default`, also the platform operator.
    pub async fn admin(&self) -> User {
        self.login("admin@localhost", &self.admin_password.clone(), None).await
    }

    /// A new organisation and its logged-in owner.
    pub async fn org(&self, operator: &User, slug: &str) -> (Value, User) {
        let email = format!("owner@{slug}.test");
        let r = self
            .post(
                "/api/v1/admin/organizations",
                &operator.token,
                json!({ "name": format!("Org {slug}"), "slug": slug, "owner": { "email": email, "name": "Owner", "password": PASSWORD } }),
            )
            .await
            .expect(201);
        let owner = self.login(&email, PASSWORD, Some(slug)).await;
        (r.body, owner)
    }

    /// Invites `email` with `role` through `by`; they accept (a new account
    /// with `PASSWORD`, or an existing one proving it with `PASSWORD`) and log in.
    pub async fn member(&self, by: &User, email: &str, role: &str, org_slug: Option<&str>) -> User {
        let token = self.invite(by, email, role).await;
        self.accept(&token, PASSWORD).await.expect(201);
        self.login(email, PASSWORD, org_slug).await
    }

    /// An invitation's token.
    pub async fn invite(&self, by: &User, email: &str, role: &str) -> String {
        self.post("/api/v1/members", &by.token, json!({ "email": email, "role": role })).await.expect(201).str("token")
    }

    /// Accepts an invitation as `Member` with `password`.
    pub async fn accept(&self, token: &str, password: &str) -> Resp {
        let body = json!({ "token": token, "name": "Member", "password": password });
        self.send(Method::POST, "/api/v1/invitations/accept", None, Some(body), &[]).await
    }

    pub async fn incident(&self, by: &User, title: &str) -> Resp {
        self.post("/api/v1/incidents", &by.token, json!({ "title": title, "severity": "high", "category": "phishing" })).await.expect(201)
    }

    /// Uploads `bytes` as evidence of `incident` with this `metadata`.
    pub async fn upload(&self, token: &str, incident: &str, metadata: Value, bytes: Vec<u8>) -> Resp {
        let form = reqwest::multipart::Form::new()
            .part("metadata", reqwest::multipart::Part::text(metadata.to_string()).mime_str("application/json").expect("mime"))
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name("upload.bin"));
        let res = self
            .client
            .post(self.url(&format!("/api/v1/incidents/{incident}/evidence")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// Downloads evidence content: status, headers and the raw bytes.
    pub async fn download(&self, token: &str, evidence: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let res = self.client.get(self.url(&format!("/api/v1/evidence/{evidence}/content"))).bearer_auth(token).send().await.expect("sent");
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }

    /// Every file under the evidence store, temporary ones included.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir.join("blobs"), &mut out);
        out
    }
}

/// Runs `sql` on the server's database directly, as an attacker with access
/// to it would (the file; or PostgreSQL as the owner, whom row-level
/// security does not hold), and returns the first column of the first row.
pub async fn direct_sql(app: &TestApp, sql: &str) -> Option<i64> {
    let sql = sql.to_owned();
    match &app.database {
        None => {
            let c = rusqlite::Connection::open(app.data_dir.join("ironcase.db")).expect("open the database file");
            c.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
            let mut st = c.prepare(&sql).expect("prepare");
            let mut rows = st.query([]).expect("run");
            rows.next().expect("row").map(|r| r.get(0).expect("integer"))
        }
        Some(db) => {
            let url = db.url.clone();
            tokio::task::spawn_blocking(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                c.query(sql.as_str(), &[]).expect("run").first().map(|r| r.get(0))
            })
            .await
            .expect("tamper")
        }
    }
}

/// A free loopback port.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Kills the child when dropped (peers the tests start, and servers).
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
