//! Webhooks delivered to a receiver that no one here wrote the checks of:
//! `tests/webhooks/receiver.py` verifies every delivery with the Standard
//! Webhooks reference library (`standardwebhooks` from PyPI; `.ci/run`
//! installs it; outside CI without it the tests say so and stop), through
//! retries, a secret rotation, a receiver that is down, 410 Gone, and
//! replays.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spare_port, Reaped, TestApp, User};

pub(crate) struct Receiver {
    _process: Reaped,
    pub(crate) url: String,
    client: reqwest::Client,
}

impl Receiver {
    /// The receiver on a spare port, once it listens; `None` (the test
    /// stops) without the library outside CI.
    pub(crate) fn start() -> Option<Receiver> {
        let installed = std::process::Command::new("python3").args(["-c", "import standardwebhooks"]).status().is_ok_and(|s| s.success());
        if !installed {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must provide standardwebhooks (pip install standardwebhooks)");
            eprintln!("standardwebhooks is not installed: the webhook tests need it (pip install standardwebhooks)");
            return None;
        }
        let port = spare_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the receiver");
        let stdout = child.stdout.take().expect("stdout");
        let process = Reaped(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(lines.next().is_some_and(|l| l.is_ok_and(|l| l.contains("listening"))), "the receiver did not start");
        Some(Receiver { _process: process, url: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() })
    }

    pub(crate) async fn control(&self, state: Value) {
        self.client.post(format!("{}/__control", self.url)).json(&state).send().await.expect("control");
    }

    pub(crate) async fn log(&self) -> Vec<Value> {
        let r = self.client.get(format!("{}/__log", self.url)).send().await.expect("log");
        r.json::<Vec<Value>>().await.expect("json")
    }

    /// The log once it holds `n` deliveries (at most 10 s).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let log = self.log().await;
            if log.len() >= n {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver has {:?}, not {n} deliveries", self.log().await);
    }
}

pub(crate) async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_allow_http = true;
        c.webhook_retries = Some(vec![Duration::from_millis(200), Duration::from_millis(400)]);
    })
    .await
}

pub(crate) async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting: {what}");
}

async fn endpoint(app: &TestApp, owner: &User, url: &str, types: Value) -> (String, String) {
    let r =
        app.post("/api/v1/webhooks", &owner.token, json!({ "url": url, "event_types": types, "description": "SOAR" })).await.expect(201);
    assert!(r.str("secret").starts_with("whsec_"));
    (r.str("id"), r.str("secret"))
}

#[tokio::test]
async fn deliveries_are_signed_retried_rotated_and_replayed() {
    let Some(rx) = Receiver::start() else { return };
    let app = spawn().await;
    let owner = app.admin().await;
    let (id, secret) = endpoint(&app, &owner, &format!("{}/hook", rx.url), json!(["incident.created", "comment.added"])).await;
    rx.control(json!({ "secrets": [secret] })).await;
    let listed = app.get("/api/v1/webhooks", &owner.token).await.expect(200);
    assert!(!listed.body.to_string().contains("whsec_"), "the secret is shown once");

    // Signed as the specification says, with the event as the API shows it;
    // types it did not ask for are not sent.
    let incident = app.incident(&owner, "Beacon").await.str("id");
    app.patch(&format!("/api/v1/incidents/{incident}"), &owner.token, json!({ "severity": "low" }), Some("\"1\"")).await.expect(200);
    app.post(&format!("/api/v1/incidents/{incident}/comments"), &owner.token, json!({ "body": "isolated" })).await.expect(201);
    let log = rx.wait_for(2).await;
    assert_eq!(log.iter().map(|d| d["type"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["incident.created", "comment.added"]);
    assert!(log.iter().all(|d| d["verified"] == json!([true]) && d["signatures"] == 1), "{log:?}");
    assert!(log[0]["event_id"].as_i64() < log[1]["event_id"].as_i64(), "in order");

    // A receiver that fails once: the same message (same webhook-id) again
    // after the back-off, both attempts in the log.
    rx.control(json!({ "fail": 1 })).await;
    app.incident(&owner, "Second").await;
    let log = rx.wait_for(4).await;
    assert_eq!((log[2]["status"].clone(), log[3]["status"].clone()), (json!(500), json!(200)));
    assert_eq!(log[2]["id"], log[3]["id"], "the webhook-id is stable across retries");
    let failures = app.get(&format!("/api/v1/webhooks/{id}/attempts?outcome=failure"), &owner.token).await.expect(200);
    assert_eq!(failures.body["items"].as_array().map(Vec::len), Some(1), "{}", failures.body);
    assert_eq!(failures.body["items"][0]["status_code"], 500);
    assert_eq!(failures.body["items"][0]["response"], "received");
    // The receiver has the retry a moment before the server records it.
    let all = format!("/api/v1/webhooks/{id}/attempts");
    let (a, t, all) = (&app, owner.token.as_str(), all.as_str());
    until("four attempts recorded", || async move { a.get(all, t).await.body["items"].as_array().map(Vec::len) == Some(4) }).await;

    // A rotated secret: both sign for a day, and each verifies.
    let rotated = app.post(&format!("/api/v1/webhooks/{id}/rotate-secret"), &owner.token, json!({})).await.expect(200);
    let new_secret = rotated.str("secret");
    assert_ne!(new_secret, secret);
    assert!(rotated.body["previous_secret_until"].is_string());
    rx.control(json!({ "secrets": [secret, new_secret] })).await;
    app.incident(&owner, "Third").await;
    let log = rx.wait_for(5).await;
    assert_eq!((log[4]["signatures"].clone(), log[4]["verified"].clone()), (json!(2), json!([true, true])), "{log:?}");

    // Down for longer than the retries: the message has failed (a dead
    // letter); once back, a replay delivers it, with the same id.
    rx.control(json!({ "secrets": [new_secret], "fail": 3 })).await;
    app.incident(&owner, "While down").await;
    let dead = format!("/api/v1/webhooks/{id}/messages?status=failed");
    let (a, t, d) = (&app, owner.token.as_str(), dead.as_str());
    until("the message fails", || async move { a.get(d, t).await.body["items"].as_array().is_some_and(|x| x.len() == 1) }).await;
    let failed = app.get(&dead, &owner.token).await.body["items"][0].clone();
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["payload"]["type"], "incident.created");
    let r = app.post(&format!("/api/v1/webhooks/{id}/replay"), &owner.token, json!({ "since": "2000-01-01T00:00:00Z" })).await;
    assert_eq!(r.expect(202).body["messages"], 1);
    let log = rx.wait_for(9).await;
    assert_eq!((log[8]["id"].clone(), log[8]["status"].clone()), (failed["id"].clone(), json!(200)));
    // The receiver has it; the server records the attempt when the answer is read.
    let delivered_path = format!("/api/v1/webhooks/{id}/messages?status=delivered");
    let (dp, fid) = (delivered_path.as_str(), &failed["id"]);
    until("the replay is recorded", || async move {
        a.get(dp, t).await.body["items"].as_array().is_some_and(|m| m.iter().any(|m| m["id"] == *fid))
    })
    .await;
    let delivered = app.get(&delivered_path, &owner.token).await.expect(200);
    let replayed = delivered.body["items"].as_array().expect("items").iter().find(|m| m["id"] == failed["id"]).cloned().expect("delivered");
    assert_eq!(replayed["attempts"], 1, "a replay starts its back-off over");
    let r = app.post(&format!("/api/v1/webhooks/{id}/replay"), &owner.token, json!({ "message_id": failed["id"] })).await.expect(202);
    assert_eq!(r.body["messages"], 1, "a delivered message may be sent again too");
    rx.wait_for(10).await;

    // A test message; then 410 Gone disables the endpoint at once.
    app.post(&format!("/api/v1/webhooks/{id}/test"), &owner.token, json!({})).await.expect(202);
    let log = rx.wait_for(11).await;
    assert_eq!(log[10]["type"], "webhook.test");
    rx.control(json!({ "status": 410 })).await;
    app.incident(&owner, "Gone").await;
    let hook = format!("/api/v1/webhooks/{id}");
    let h = hook.as_str();
    until("410 disables it", || async move { a.get(h, t).await.body["enabled"] == false }).await;
    let w = app.get(&hook, &owner.token).await.expect(200);
    assert_eq!(w.body["disabled_reason"], "the receiver answered 410 Gone");
    let audit = app.get("/api/v1/audit?action=webhook.disabled", &owner.token).await.expect(200);
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(1));
    // Enabled again, it goes on from where it was.
    rx.control(json!({ "status": 200 })).await;
    app.patch(&hook, &owner.token, json!({ "enabled": true }), None).await.expect(200);
    app.incident(&owner, "Back").await;
    let log = rx.wait_for(13).await;
    assert_eq!(log[12]["status"], 200);
    app.delete(&hook, &owner.token).await.expect(204);
    app.get(&hook, &owner.token).await.problem(404, "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_is_not_there_is_retried_and_its_attempts_say_why() {
    let app = spawn().await;
    let owner = app.admin().await;
    let url = format!("http://127.0.0.1:{}/nobody", spare_port());
    let (id, _) = endpoint(&app, &owner, &url, json!(["*"])).await;
    app.incident(&owner, "Into the void").await;
    let attempts = format!("/api/v1/webhooks/{id}/attempts");
    let (a, t, p) = (&app, owner.token.as_str(), attempts.as_str());
    until("three attempts", || async move { a.get(p, t).await.body["items"].as_array().is_some_and(|x| x.len() == 3) }).await;
    let log = app.get(&attempts, &owner.token).await.expect(200);
    for a in log.body["items"].as_array().expect("attempts") {
        assert_eq!(
            (a["status_code"].clone(), a["error"].clone(), a["success"].clone()),
            (json!(null), json!("could not connect"), json!(false))
        );
    }
    let w = app.get(&format!("/api/v1/webhooks/{id}"), &owner.token).await.expect(200);
    assert!(w.body["failing_since"].is_string() && w.body["enabled"] == true, "{}", w.body);
    app.shutdown().await;
}

#[tokio::test]
async fn endpoints_must_be_https_at_public_addresses_on_a_plan_with_webhooks() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest",
        "https://localhost/hook",
        "https://user:pw@example.com/hook",
        "not a url",
        "ftp://example.com/",
    ] {
        let r = app.post("/api/v1/webhooks", &owner.token, json!({ "url": url, "event_types": ["*"] })).await;
        r.problem(422, "validation_failed");
    }
    let r = app
        .post("/api/v1/webhooks", &owner.token, json!({ "url": "https://203.0.113.9/hook", "event_types": ["incident.exploded"] }))
        .await;
    assert!(r.problem(422, "validation_failed").body.to_string().contains("event_types[0]"));
    // A plan without the feature.
    let body = json!({ "name": "Free", "slug": "free", "plan": "free", "owner": { "email": "o@free.test", "name": "O", "password": crate::helpers::PASSWORD } });
    app.post("/api/v1/admin/organizations", &owner.token, body).await.expect(201);
    let free = app.login("o@free.test", crate::helpers::PASSWORD, Some("free")).await;
    let r = app.post("/api/v1/webhooks", &free.token, json!({ "url": "https://203.0.113.9/hook", "event_types": ["*"] })).await;
    r.problem(403, "feature_not_in_plan");
    // Analysts do not manage webhooks.
    let analyst = app.member(&owner, "a@localhost", "analyst", None).await;
    app.get("/api/v1/webhooks", &analyst.token).await.problem(403, "forbidden");
    app.shutdown().await;
}

#[tokio::test]
async fn owners_are_told_by_email_when_an_endpoint_is_turned_off() {
    let Some(rx) = Receiver::start() else { return };
    let Some(smtp) = crate::email::Smtp::start() else { return };
    let url = smtp.url();
    let app = TestApp::spawn_with(move |c| {
        c.webhook_allow_private = true;
        c.webhook_allow_http = true;
        c.smtp_url = Some(ironcase_app::shared::SecretUrl::new(url));
        c.public_url = Some("https://ironcase.example".into());
    })
    .await;
    let owner = app.admin().await;
    let (id, _) = endpoint(&app, &owner, &format!("{}/gone", rx.url), json!(["incident.created"])).await;
    rx.control(json!({ "status": 410 })).await;
    app.incident(&owner, "Into a closed door").await;
    let mail = smtp.to("admin@localhost", 1).await;
    assert_eq!(mail.len(), 1, "one e-mail to the owner");
    let mail = [crate::email::decode_qp(&mail[0])];
    assert!(mail[0].contains("A webhook endpoint was turned off") && mail[0].contains("410 Gone"), "{}", mail[0]);
    assert!(mail[0].contains(&format!("https://ironcase.example/webhooks/{id}")), "{}", mail[0]);
    app.shutdown().await;
}
