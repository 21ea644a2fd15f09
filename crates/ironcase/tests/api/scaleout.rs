//! Several nodes over one database and one Redis: rate limits spent on one
//! node hold on the other, events written on one reach streams held on the
//! other, a session ended on one is refused by the other, concurrent writers
//! on both keep numbers and the audit chain whole; and a node keeps serving
//! while its Redis is away, and reconnects by itself.
//!
//! Each test starts its own `redis-server` on a spare port, so that it can
//! stop and restart it. Without `redis-server` installed these tests fail
//! when `CI=true` and are skipped (with a message) otherwise.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::events::SseClient;
use crate::helpers::*;

/// A Redis server of this test's own.
struct RedisServer {
    port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("spare port");
        let mut r = RedisServer { port, child: None };
        if !r.restart() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "redis-server is required when CI=true");
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        Some(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port; false when there is no redis-server.
    fn restart(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not come up on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates 40 incidents at once, alternating between `bases` (API roots);
/// returns their numbers, asserting each was given once.
async fn create_concurrently(bases: [&str; 2], token: &str) -> HashSet<String> {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (base, token) = (bases[i % 2].to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/incidents"))
                .bearer_auth(token)
                .json(&json!({ "title": format!("race {i}"), "severity": "low", "category": "other" }))
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), 201);
            let body: serde_json::Value = r.json().await.expect("json");
            body["number"].as_str().expect("number").to_owned()
        }));
    }
    let mut numbers = HashSet::new();
    for t in tasks {
        assert!(numbers.insert(t.await.expect("task")), "a number was given twice");
    }
    numbers
}

/// Waits until `/readyz` reports Redis as `want`.
async fn redis_check(app: &TestApp, want: &str) -> serde_json::Value {
    for _ in 0..100 {
        let r = app.send(reqwest::Method::GET, "/readyz", None, None, &[]).await;
        if r.body["checks"]["redis"] == want {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Redis never became {want} on {}", app.base);
}

#[tokio::test]
async fn two_nodes_share_limits_live_updates_sessions_numbers_and_the_audit_chain() {
    let Some(redis) = RedisServer::start() else { return };
    let url = redis.url();
    let a = TestApp::spawn_with(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new(url.clone()))).await;
    let b = a.spawn_node(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new(url.clone()))).await;
    let ready = redis_check(&a, "ok").await;
    assert_eq!(ready["status"], "ready");
    redis_check(&b, "ok").await;

    // A token issued by one node works on the other.
    let admin = a.admin().await;
    b.get("/api/v1/auth/me", &admin.token).await.expect(200);

    // A rate limit spent on A holds on B: the free plan allows 10 a minute
    // per credential, one of them already spent by `org()` (its /auth/me).
    a.clock.freeze();
    b.clock.freeze();
    let r = a
        .post(
            "/api/v1/admin/organizations",
            &admin.token,
            json!({ "name": "Free", "slug": "free", "plan": "free", "owner": { "email": "o@free.test", "name": "O", "password": PASSWORD } }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["plan"], "free");
    let owner = a.login("o@free.test", PASSWORD, Some("free")).await;
    let mut allowed = 0;
    let mut refused_on_b = 0;
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node.get("/api/v1/incidents", &owner.token).await;
        match r.status.as_u16() {
            200 => allowed += 1,
            429 => {
                assert_eq!(r.code(), "rate_limited");
                if i % 2 == 1 {
                    refused_on_b += 1;
                }
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert_eq!(allowed, 9, "one allowance across both nodes, not one each");
    assert!(refused_on_b > 0);

    // An incident created through A arrives on a stream held on B.
    let mut on_b = SseClient::open(&b, &admin.token, "", None).await;
    let inc = a.incident(&admin, "written on A").await.str("id");
    let got = on_b.next().await.expect("the event reaches B");
    assert_eq!((got.event.as_str(), got.data["incident_id"].clone()), ("incident.created", json!(inc)));

    // A session ended on A is refused on B at once.
    let analyst = a.member(&admin, "ana@x.test", "analyst", None).await;
    b.get("/api/v1/auth/me", &analyst.token).await.expect(200);
    a.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&analyst.token), None, &[]).await.expect(204);
    b.get("/api/v1/auth/me", &analyst.token).await.problem(401, "unauthenticated");

    // Concurrent creates on both nodes: distinct numbers, one whole chain.
    let numbers = create_concurrently([&a.url("/api/v1"), &b.url("/api/v1")], &admin.token).await;
    let expected: HashSet<String> = (2..=41).map(|n| format!("INC-{n}")).collect();
    assert_eq!(numbers, expected);
    for node in [&a, &b] {
        let v = node.get("/api/v1/audit/verify", &admin.token).await.expect(200);
        assert_eq!(v.body["ok"], true, "{}", v.body);
    }
    drop(on_b);
    b.shutdown().await;
    a.shutdown().await;
}

/// Sessions a node found in its memory (its `/metrics`).
async fn memory_lookups(node: &TestApp) -> u64 {
    let text = node.client.get(node.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find(|l| l.starts_with("ironcase_session_lookups_total{source=\"memory\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Nodes remember the sessions they have checked (with Redis), and forget
/// them at once when any node changes what a session may do: each change
/// answered on A is refused (or reflected) by the very next request on B,
/// however often B served that session before. A node that cannot reach
/// Redis still makes its changes known (through the database, within the
/// poll interval), and while Redis is away nothing remembered is used.
#[tokio::test]
async fn remembered_sessions_are_forgotten_on_every_node_at_once() {
    let Some(mut redis) = RedisServer::start() else { return };
    let url = redis.url();
    let a = TestApp::spawn_with(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new(url.clone()))).await;
    let b = a.spawn_node(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new(url.clone()))).await;
    redis_check(&a, "ok").await;
    redis_check(&b, "ok").await;
    let admin = a.admin().await;
    let (org, owner) = a.org(&admin, "acme").await;
    let org_id = org["id"].as_str().expect("org id").to_owned();
    let warm = |node: &TestApp, token: &str| {
        let (base, token) = (node.base.clone(), token.to_owned());
        async move {
            for _ in 0..5 {
                let r = reqwest::Client::new().get(format!("{base}/api/v1/auth/me")).bearer_auth(&token).send().await.expect("me");
                assert_eq!(r.status(), 200);
            }
        }
    };

    // Logout on A.
    let ana = a.member(&owner, "ana@acme.test", "analyst", Some("acme")).await;
    let before = memory_lookups(&b).await;
    warm(&b, &ana.token).await;
    assert!(memory_lookups(&b).await >= before + 4, "B serves the session from memory after its first look-up");
    a.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&ana.token), None, &[]).await.expect(204);
    b.get("/api/v1/auth/me", &ana.token).await.problem(401, "unauthenticated");

    // A role change on A ends the member's sessions everywhere; the new
    // session has the new role on B.
    let bo = a.member(&owner, "bo@acme.test", "lead", Some("acme")).await;
    warm(&b, &bo.token).await;
    a.patch(&format!("/api/v1/members/{}", bo.id), &owner.token, json!({ "role": "viewer" }), None).await.expect(200);
    b.get("/api/v1/auth/me", &bo.token).await.problem(401, "unauthenticated");
    let bo = b.login("bo@acme.test", PASSWORD, Some("acme")).await;
    assert_eq!(b.get("/api/v1/auth/me", &bo.token).await.expect(200).body["role"], "viewer");
    b.post("/api/v1/incidents", &bo.token, json!({ "title": "t", "severity": "low", "category": "other" })).await.problem(403, "forbidden");

    // A member removed on A.
    warm(&b, &bo.token).await;
    a.delete(&format!("/api/v1/members/{}", bo.id), &owner.token).await.expect(204);
    b.get("/api/v1/auth/me", &bo.token).await.problem(401, "unauthenticated");

    // The organisation suspended through A, then made active again.
    warm(&b, &owner.token).await;
    let path = format!("/api/v1/admin/organizations/{org_id}");
    a.send(reqwest::Method::PATCH, &path, Some(&admin.token), Some(json!({ "status": "suspended" })), &[]).await.expect(200);
    b.get("/api/v1/incidents", &owner.token).await.problem(403, "organization_suspended");
    a.send(reqwest::Method::PATCH, &path, Some(&admin.token), Some(json!({ "status": "active" })), &[]).await.expect(200);
    b.get("/api/v1/incidents", &owner.token).await.expect(200);

    // A third node that cannot reach Redis: its logout reaches B through the
    // database's count, within the poll interval (and B never lets the
    // session in once it has refused it).
    let c = a.spawn_node(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new("redis://127.0.0.1:1"))).await;
    let cy = c.member(&owner, "cy@acme.test", "analyst", Some("acme")).await;
    warm(&b, &cy.token).await;
    c.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&cy.token), None, &[]).await.expect(204);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = b.get("/api/v1/auth/me", &cy.token).await.status.as_u16();
        if s == 401 {
            break;
        }
        assert_eq!(s, 200);
        assert!(std::time::Instant::now() < deadline, "B still lets in a session C ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        b.get("/api/v1/auth/me", &cy.token).await.problem(401, "unauthenticated");
    }
    c.shutdown().await;

    // Redis away: nothing remembered is used; a logout on A is refused on B.
    let dee = a.member(&owner, "dee@acme.test", "analyst", Some("acme")).await;
    warm(&b, &dee.token).await;
    redis.stop();
    redis_check(&b, "unreachable").await;
    redis_check(&a, "unreachable").await;
    b.get("/api/v1/auth/me", &dee.token).await.expect(200);
    a.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&dee.token), None, &[]).await.expect(204);
    b.get("/api/v1/auth/me", &dee.token).await.problem(401, "unauthenticated");
    // Back, and empty: what B remembered from before is not trusted.
    let eve = a.member(&owner, "eve@acme.test", "analyst", Some("acme")).await;
    assert!(redis.restart());
    redis_check(&b, "ok").await;
    redis_check(&a, "ok").await;
    warm(&b, &eve.token).await;
    a.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&eve.token), None, &[]).await.expect(204);
    b.get("/api/v1/auth/me", &eve.token).await.problem(401, "unauthenticated");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_node_serves_through_a_redis_outage_and_reconnects_by_itself() {
    let Some(mut redis) = RedisServer::start() else { return };
    let url = redis.url();
    let app = TestApp::spawn_with(|c| c.redis_url = Some(ironcase_app::shared::RedisUrl::new(url.clone()))).await;
    redis_check(&app, "ok").await;
    let admin = app.admin().await;
    let (_, owner) = app.org(&admin, "starter").await;
    app.send(
        reqwest::Method::PUT,
        &format!("/api/v1/admin/organizations/{}/plan", app.get("/api/v1/organization", &owner.token).await.str("id")),
        Some(&admin.token),
        Some(json!({ "plan": "starter" })),
        &[],
    )
    .await
    .expect(200);
    let mut stream = SseClient::open(&app, &owner.token, "", None).await;

    redis.stop();
    let degraded = redis_check(&app, "unreachable").await;
    assert_eq!(degraded["status"], "degraded");
    // Still serving: reads and writes, limited locally (the headers say so),
    // and the stream held open goes on.
    for _ in 0..3 {
        let r = app.get("/api/v1/incidents", &owner.token).await.expect(200);
        assert_eq!(r.header("ratelimit-limit"), Some("100"));
    }
    let inc = app.incident(&owner, "during the outage").await.str("id");
    assert_eq!(stream.next().await.expect("event").data["incident_id"], json!(inc));
    app.login("owner@starter.test", PASSWORD, Some("starter")).await;

    assert!(redis.restart());
    let back = redis_check(&app, "ok").await;
    assert_eq!(back["status"], "ready");
    let r = app.get("/api/v1/incidents", &owner.token).await.expect(200);
    assert_eq!(r.header("ratelimit-limit"), Some("100"));
    let inc = app.incident(&owner, "after the outage").await.str("id");
    assert_eq!(stream.next().await.expect("event").data["incident_id"], json!(inc));
    drop(stream);
    app.shutdown().await;
}

/// The two-node test with real processes: two `ironcase serve`, each
/// with a data directory of its own, over one PostgreSQL and one Redis, given
/// the same master key. Runs wherever the tests have a PostgreSQL server
/// (`ironcase_testkit::postgres_url`; required when `CI=true`).
#[tokio::test]
async fn two_server_processes_with_their_own_disks_share_one_database_and_redis() {
    let Some(admin_url) = tokio::task::spawn_blocking(ironcase_testkit::postgres_url).await.expect("task") else { return };
    let Some(redis) = RedisServer::start() else { return };
    let db = TestDb::create(admin_url).await;
    let master = "7f".repeat(32);
    let env = [("IRONCASE_DATABASE_URL", db.url.as_str()), ("IRONCASE_REDIS_URL", &redis.url()), ("IRONCASE_MASTER_KEY", &master)];
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (mut a, addr_a) = crate::process::serve(dir_a.path(), &env);
    let (mut b, addr_b) = crate::process::serve(dir_b.path(), &env);
    let (a_url, b_url) = (format!("http://{addr_a}/api/v1"), format!("http://{addr_b}/api/v1"));
    // The organisation was created once, by whichever node started first;
    // nothing else sits on either disk that the other needs.
    let password = [dir_a.path(), dir_b.path()]
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("data/initial-admin-password")).ok())
        .collect::<Vec<_>>();
    assert_eq!(password.len(), 1, "one first start");
    let http = reqwest::Client::new();
    let login = |base: String, email: String, password: String, org: Option<&'static str>| {
        let http = http.clone();
        async move {
            let mut body = json!({ "email": email, "password": password });
            if let Some(o) = org {
                body["organization"] = json!(o);
            }
            let r: serde_json::Value =
                http.post(format!("{base}/auth/login")).json(&body).send().await.expect("login").json().await.expect("json");
            r["access_token"].as_str().expect("token").to_owned()
        }
    };
    let admin = login(a_url.clone(), "admin@localhost".into(), password[0].trim().to_owned(), None).await;
    let me = http.get(format!("{b_url}/auth/me")).bearer_auth(&admin).send().await.expect("me");
    assert_eq!(me.status(), 200, "a token from A works on B");

    // A stream held on B sees what is written through A.
    let stream = http.get(format!("{b_url}/events/stream")).bearer_auth(&admin).send().await.expect("stream");
    assert_eq!(stream.status(), 200);
    let created: serde_json::Value = http
        .post(format!("{a_url}/incidents"))
        .bearer_auth(&admin)
        .json(&json!({ "title": "through A", "severity": "high", "category": "malware" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let mut body = stream.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(&id) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut body)).await.expect("the event reaches B");
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("open").expect("bytes")));
    }
    drop(body);

    // A limit spent on A holds on B.
    let r = http
        .post(format!("{a_url}/admin/organizations"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Free", "slug": "free", "plan": "free", "owner": { "email": "o@free.test", "name": "O", "password": PASSWORD } }))
        .send()
        .await
        .expect("org");
    assert_eq!(r.status(), 201);
    let owner = login(a_url.clone(), "o@free.test".into(), PASSWORD.into(), Some("free")).await;
    let mut statuses = Vec::new();
    for i in 0..14 {
        let base = if i % 2 == 0 { &a_url } else { &b_url };
        statuses.push(http.get(format!("{base}/incidents")).bearer_auth(&owner).send().await.expect("list").status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");

    // A session ended on A is refused on B.
    let other = login(b_url.clone(), "admin@localhost".into(), password[0].trim().to_owned(), None).await;
    assert_eq!(http.get(format!("{b_url}/auth/me")).bearer_auth(&other).send().await.expect("me").status(), 200);
    let r = http.post(format!("{a_url}/auth/logout")).bearer_auth(&other).send().await.expect("logout");
    assert_eq!(r.status(), 204);
    assert_eq!(http.get(format!("{b_url}/auth/me")).bearer_auth(&other).send().await.expect("me").status(), 401);

    // Concurrent creates through both: distinct numbers, one whole chain.
    let numbers = create_concurrently([&a_url, &b_url], &admin).await;
    assert_eq!(numbers, (2..=41).map(|n| format!("INC-{n}")).collect::<HashSet<_>>());
    for base in [&a_url, &b_url] {
        let v: serde_json::Value =
            http.get(format!("{base}/audit/verify")).bearer_auth(&admin).send().await.expect("verify").json().await.expect("json");
        assert_eq!(v["ok"], true, "{v}");
    }
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
}
