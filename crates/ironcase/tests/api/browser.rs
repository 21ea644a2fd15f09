//! The console in a real browser: starts the server, fills it (members of
//! each role, a second factor, another organisation's incident), and runs
//! `tests/browser/flows.mjs`, with a real OpenID provider for single sign-on (playwright-core driving Debian's chromium),
//! which fails on the first broken flow. Without chromium or the npm
//! packages a developer's run says why and skips; with `CI=true` it fails.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::{spare_port, TestApp, PASSWORD};

fn chromium() -> Option<PathBuf> {
    let candidates = [std::env::var("CHROMIUM").ok(), Some("/usr/bin/chromium".into()), Some("/usr/bin/chromium-browser".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser flows, if anything.
fn missing() -> Option<String> {
    if chromium().is_none() {
        return Some("no chromium (apt-get install chromium, or set CHROMIUM)".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("no playwright-core (npm ci --prefix crates/ironcase/tests/browser)".into());
    }
    if std::process::Command::new("node").arg("--version").output().is_err() {
        return Some("no Node.js".into());
    }
    None
}

#[tokio::test]
async fn the_main_flows_work_in_a_real_browser() {
    if let Some(why) = missing() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true needs the browser tests: {why}");
        eprintln!("skipped: the browser flows need {why}");
        return;
    }
    // The organisation's provider: a real one (oidc-provider), which the
    // browser signs in at through its own login form.
    let (port, idp_port) = (spare_port(), spare_port());
    let base = format!("http://127.0.0.1:{port}");
    let idp = crate::sso::start_provider(idp_port, &format!("{base}/api/v1/auth/sso/callback"));
    let app = TestApp::spawn_with(|c| {
        c.login_limit = Some("1000/60".into());
        c.bind = format!("127.0.0.1:{port}").parse().expect("addr");
        c.public_url = Some(base.clone());
        c.sso_allow_insecure_issuer = true;
    })
    .await;
    let owner = app.admin().await;
    if idp.is_some() {
        let config = json!({
            "issuer": format!("http://127.0.0.1:{idp_port}"),
            "client_id": crate::sso::CLIENT_ID,
            "client_secret": crate::sso::CLIENT_SECRET,
            "scopes": ["groups"],
            "allowed_domains": ["example.test"],
            "role_mapping": { "responders": "analyst" },
            "jit": true,
        });
        app.put_json("/api/v1/organization/sso", &owner.token, config).await.expect(200);
    }
    let analyst = app.member(&owner, "analyst@example.com", "analyst", None).await;
    let organization = app.get("/api/v1/organization", &owner.token).await.expect(200).str("id");
    let alert_body = json!({ "source": "splunk", "source_ref": "b-1", "type": "login", "title": "Impossible travel for j.doe", "severity": "high",
        "observables": [{ "type": "ipv4", "value": "198.51.100.23" }] });
    let alert = app.post("/api/v1/alerts", &owner.token, alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    app.member(&owner, "viewer@example.com", "viewer", None).await;
    let mfa = app.member(&owner, "mfa@example.com", "analyst", None).await;
    let (secret, _) = crate::mfa::enable(&app, &mfa).await;
    let (_, beta) = app.org(&owner, "beta").await;
    let foreign = app.incident(&beta, "beta's own").await.str("id");
    app.incident(&owner, "Phishing wave against finance").await;
    let fixture = json!({
        "owner": { "email": "admin@localhost", "password": app.admin_password },
        "analyst": { "email": "analyst@example.com", "password": PASSWORD },
        "viewer": { "email": "viewer@example.com", "password": PASSWORD },
        "mfa": { "email": "mfa@example.com", "password": PASSWORD, "secret": secret },
        "foreign_incident": foreign,
        "analyst_id": analyst.id,
        "organization_id": organization,
        "alert_id": alert,
        "sso": idp.is_some().then(|| json!({ "organization": "default", "login": "bob", "email": "bob@example.test" })),
    });
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let out = tokio::process::Command::new("node")
        .arg("flows.mjs")
        .current_dir(browser_dir())
        .env("BASE", &app.base)
        .env("CHROMIUM", chromium().expect("chromium"))
        .env("SHOTS", &shots)
        .env("FIXTURE", fixture.to_string())
        .output()
        .await
        .expect("run node");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser flows failed:\n{stdout}\n{stderr}");
    eprintln!("{stdout}");
    app.shutdown().await;
}
