//! The console in a real browser: starts the server, fills it (members of
//! each role, a second factor, another organisation's incident), and runs
//! `tests/browser/flows.mjs` (playwright-core driving Debian's chromium),
//! which fails on the first broken flow. Without chromium or the npm
//! packages a developer's run says why and skips; with `CI=true` it fails.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

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
    let app = TestApp::spawn_with(|c| c.login_limit = Some("1000/60".into())).await;
    let owner = app.admin().await;
    app.member(&owner, "analyst@example.com", "analyst", None).await;
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
