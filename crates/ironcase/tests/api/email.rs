//! E-mail through a real SMTP server (aiosmtpd from PyPI, its Maildir
//! handler, started here; `.ci/run` installs it, and outside CI without it
//! the tests say so and stop): invitations go to the invited address, and a
//! forgotten password is reset by a link that works once. Without an SMTP
//! server, invitation links go to the admin and admins reset passwords.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{spare_port, Reaped, TestApp, PASSWORD};

/// aiosmtpd on a spare port, keeping what it receives in a Maildir.
pub(crate) struct Smtp {
    _server: Reaped,
    dir: tempfile::TempDir,
    port: u16,
}

impl Smtp {
    pub(crate) fn start() -> Option<Smtp> {
        let installed = std::process::Command::new("python3").args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        if !installed {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must provide aiosmtpd (pip install aiosmtpd)");
            eprintln!("aiosmtpd is not installed: the e-mail tests need a real SMTP server (pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = spare_port();
        let server = Reaped(
            std::process::Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
                .arg(dir.path().join("mail"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start aiosmtpd"),
        );
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Smtp { _server: server, dir, port });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("aiosmtpd did not come up");
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.dir.path().join("mail").join(d)).ok())
            .flat_map(|r| r.filter_map(|e| e.ok().map(|e| e.path())))
            .collect();
        files.sort();
        files
    }

    /// The messages to `to` so far.
    fn received(&self, to: &str) -> Vec<String> {
        self.files()
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter(|m| m.lines().any(|l| l.eq_ignore_ascii_case(&format!("to: {to}"))))
            .collect()
    }

    /// The messages to `to`, waiting up to 10 s for the `n`th.
    pub(crate) async fn to(&self, to: &str, n: usize) -> Vec<String> {
        for _ in 0..400 {
            if self.received(to).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.received(to)
    }
}

/// A quoted-printable body as a mail client reads it (RFC 2045 6.7): soft
/// line breaks joined, `=XX` decoded.
pub(crate) fn decode_qp(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// The token in a message's link (`…#token=<token>`), and the link's page.
pub(crate) fn link(message: &str) -> (String, String) {
    let message = &decode_qp(message);
    let at = message.find("#token=").expect("a link with a token");
    let start = message[..at].rfind("https://").expect("the link");
    let token: String = message[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    (message[start..at].to_owned(), token)
}

async fn spawn_with_mail(smtp: &Smtp) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with(move |c| {
        c.smtp_url = Some(ironcase_app::shared::SecretUrl::new(url));
        c.public_url = Some("https://ironcase.example".into());
        c.auth_address_limit = Some("100000/60".into());
    })
    .await
}

#[tokio::test]
async fn invitations_and_password_resets_go_by_email() {
    let Some(smtp) = Smtp::start() else { return };
    let app = spawn_with_mail(&smtp).await;
    let owner = app.admin().await;

    // An invitation goes to the address; the admin never sees its token.
    let r = app.post("/api/v1/members", &owner.token, json!({ "email": "new@example.com", "role": "analyst" })).await.expect(201);
    assert_eq!((r.body["emailed"].clone(), r.body["token"].clone()), (json!(true), json!(null)), "{}", r.body);
    let mail = smtp.to("new@example.com", 1).await;
    assert_eq!(mail.len(), 1, "one invitation message");
    assert!(mail[0].contains("Subject: Your invitation to"), "{}", mail[0]);
    let (page, token) = link(&mail[0]);
    assert_eq!(page, "https://ironcase.example/invitation");
    let accept = json!({ "token": token, "name": "New", "password": PASSWORD });
    app.send(reqwest::Method::POST, "/api/v1/invitations/accept", None, Some(accept), &[]).await.expect(201);
    let member = app.login("new@example.com", PASSWORD, None).await;

    // A forgotten password: the same answer for an address with no account,
    // and a message only to one that has.
    let ask = |email: &str| {
        let body = json!({ "email": email });
        let app = &app;
        async move { app.send(reqwest::Method::POST, "/api/v1/auth/password-reset", None, Some(body), &[]).await }
    };
    let known = ask("new@example.com").await.expect(202);
    let unknown = ask("nobody@example.com").await.expect(202);
    assert_eq!(known.body, unknown.body);
    let mail = smtp.to("new@example.com", 2).await;
    assert_eq!(mail.len(), 2, "the invitation and the reset");
    let reset = mail.iter().find(|m| m.contains("reset-password#token=")).expect("the reset message");
    let (page, token) = link(reset);
    assert_eq!(page, "https://ironcase.example/reset-password");
    assert!(smtp.received("nobody@example.com").is_empty());

    let confirm = |token: &str, password: &str| {
        let body = json!({ "token": token, "new_password": password });
        let app = &app;
        async move { app.send(reqwest::Method::POST, "/api/v1/auth/password-reset/confirm", None, Some(body), &[]).await }
    };
    // A refused password does not spend the token.
    confirm(&token, "password1234").await.problem(422, "validation_failed");
    confirm(&token, "tangerine ocelot viaduct").await.expect(204);
    confirm(&token, "tangerine ocelot viaduct 2").await.problem(404, "not_found");
    confirm("icp_nonsense", "tangerine ocelot viaduct").await.problem(404, "not_found");
    app.get("/api/v1/auth/me", &member.token).await.problem(401, "unauthenticated");
    app.login_raw("new@example.com", PASSWORD, None).await.problem(401, "invalid_credentials");
    let member = app.login("new@example.com", "tangerine ocelot viaduct", None).await;

    // Three links an hour per account: the fourth ask answers the same and
    // sends nothing.
    for _ in 0..3 {
        ask("new@example.com").await.expect(202);
    }
    let mail = smtp.to("new@example.com", 4).await;
    assert_eq!(mail.len(), 4, "the invitation, the first reset and two more");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received("new@example.com").len(), 4, "no fifth message");

    // An admin's reset goes to the member too.
    app.clock.advance_secs(3601);
    let owner = app.admin().await;
    let r = app.post(&format!("/api/v1/members/{}/password-reset", member.id), &owner.token, json!({})).await.expect(200);
    assert_eq!(r.body, json!({ "emailed": true, "token": null, "url": null, "expires_at": null }));
    assert_eq!(smtp.to("new@example.com", 5).await.len(), 5);

    let audit = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    assert!(audit.contains("member.password_reset") && audit.contains("\"emailed\":true"), "{audit}");
    for message in smtp.to("new@example.com", 5).await {
        assert!(!message.contains(&app.admin_password), "no other secret in a message");
    }
}

#[tokio::test]
async fn without_smtp_admins_hand_out_the_links() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let body = json!({ "email": "m@example.com" });
    app.send(reqwest::Method::POST, "/api/v1/auth/password-reset", None, Some(body), &[]).await.problem(409, "email_unavailable");

    let member = app.member(&operator, "m@example.com", "analyst", None).await;
    let r = app.post(&format!("/api/v1/members/{}/password-reset", member.id), &operator.token, json!({})).await.expect(200);
    assert_eq!(r.body["emailed"], json!(false));
    let token = r.str("token");
    assert!(r.str("url").ends_with(&format!("/reset-password#token={token}")), "{}", r.body);
    let confirm = json!({ "token": token, "new_password": "tangerine ocelot viaduct" });
    app.send(reqwest::Method::POST, "/api/v1/auth/password-reset/confirm", None, Some(confirm), &[]).await.expect(204);
    app.get("/api/v1/auth/me", &member.token).await.problem(401, "unauthenticated");
    app.login("m@example.com", "tangerine ocelot viaduct", None).await;

    // An account another organisation relies on is not this admin's to take over.
    let (_, owner2) = app.org(&operator, "second").await;
    let token = app.invite(&owner2, "m@example.com", "viewer").await;
    app.accept(&token, "tangerine ocelot viaduct").await.expect(201);
    let r = app.post(&format!("/api/v1/members/{}/password-reset", member.id), &owner2.token, json!({})).await;
    r.problem(409, "account_shared");
    // A platform operator may.
    app.post(&format!("/api/v1/members/{}/password-reset", member.id), &operator.token, json!({})).await.expect(200);
    // Another organisation's member does not exist; a viewer may not.
    let outsider = app.member(&owner2, "o@example.com", "viewer", Some("second")).await;
    app.post(&format!("/api/v1/members/{}/password-reset", outsider.id), &operator.token, json!({})).await.problem(404, "not_found");
    app.post(&format!("/api/v1/members/{}/password-reset", member.id), &outsider.token, json!({})).await.problem(403, "forbidden");
}
