//! A second factor (TOTP, RFC 6238) through HTTP: enrolment with its QR
//! code, confirmation and backup codes, the login challenge, replayed and
//! wrong codes, spent challenges, turning it off; and what is audited.

use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp, User, PASSWORD};

/// The code an authenticator holding `secret` (base32) shows `steps_ahead`
/// 30-second steps from the server's clock.
pub(crate) fn code(app: &TestApp, secret: &str, steps_ahead: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().expect("base32 secret");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "test".into()).expect("totp");
    let secs = app.clock.now().0 / 1000 + steps_ahead * 30;
    totp.generate(u64::try_from(secs).expect("time"))
}

/// Enrols and confirms an authenticator for `u`: its secret and backup codes.
pub(crate) async fn enable(app: &TestApp, u: &User) -> (String, Vec<String>) {
    let e = app.post("/api/v1/auth/mfa/totp", &u.token, json!({})).await.expect(201);
    let secret = e.str("secret");
    let codes = app.post("/api/v1/auth/mfa/totp/confirm", &u.token, json!({ "code": code(app, &secret, 0) })).await.expect(200);
    let codes = codes.body["backup_codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("code").to_owned()).collect();
    (secret, codes)
}

async fn verify(app: &TestApp, challenge: &str, factor: Value) -> Resp {
    let mut body = factor;
    body["challenge"] = json!(challenge);
    app.send(reqwest::Method::POST, "/api/v1/auth/mfa/verify", None, Some(body), &[]).await
}

async fn challenge(app: &TestApp, email: &str) -> String {
    let r = app.login_raw(email, PASSWORD, None).await.expect(200);
    assert_eq!(r.body["mfa_required"], json!(true), "{}", r.body);
    assert_eq!(r.body["methods"], json!(["totp", "backup_code"]));
    assert!(r.body.get("access_token").is_none(), "no tokens before the second factor: {}", r.body);
    r.str("challenge")
}

async fn audit_actions(app: &TestApp, owner: &User) -> Vec<String> {
    let r = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200);
    r.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn an_account_with_totp_logs_in_with_a_code_once() {
    // Many logins of one account from one address: the login class's limit
    // is raised (the failure lockout stays).
    let app = TestApp::spawn_with(|c| c.login_limit = Some("1000/60".into())).await;
    app.clock.freeze();
    let owner = app.admin().await;
    let u = app.member(&owner, "mfa@example.com", "analyst", None).await;

    // Enrolment: a secret, its otpauth URI and a QR code drawn here.
    let e = app.post("/api/v1/auth/mfa/totp", &u.token, json!({})).await.expect(201);
    let secret = e.str("secret");
    let uri = e.str("otpauth_uri");
    assert!(
        uri.starts_with("otpauth://totp/Ironcase:mfa%40example.com?") || uri.starts_with("otpauth://totp/Ironcase:mfa@example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Ironcase"), "{uri}");
    let svg = e.str("qr_svg");
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{}", &svg[..svg.len().min(200)]);
    // Until confirmed, login is by password alone; a wrong code confirms nothing.
    app.login(&u_email(), PASSWORD, None).await;
    app.post("/api/v1/auth/mfa/totp/confirm", &u.token, json!({ "code": code(&app, &secret, 5) })).await.problem(401, "invalid_mfa_code");
    let codes = app.post("/api/v1/auth/mfa/totp/confirm", &u.token, json!({ "code": code(&app, &secret, 0) })).await.expect(200);
    let backup: Vec<String> =
        codes.body["backup_codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("code").to_owned()).collect();
    assert_eq!(backup.len(), 10);
    app.post("/api/v1/auth/mfa/totp", &u.token, json!({})).await.problem(409, "mfa_already_enabled");

    // The password alone now gives a challenge, not tokens.
    let ch = challenge(&app, &u_email()).await;
    // The code that confirmed the enrolment was used: refused as a replay.
    verify(&app, &ch, json!({ "code": code(&app, &secret, 0) })).await.problem(401, "invalid_mfa_code");
    // The next step's code (one step of skew) passes, once.
    let t = verify(&app, &ch, json!({ "code": code(&app, &secret, 1) })).await.expect(200);
    app.get("/api/v1/auth/me", &t.str("access_token")).await.expect(200);
    verify(&app, &ch, json!({ "code": code(&app, &secret, 1) })).await.problem(401, "mfa_challenge_invalid");
    // A new login cannot use that code again either.
    let ch = challenge(&app, &u_email()).await;
    verify(&app, &ch, json!({ "code": code(&app, &secret, 1) })).await.problem(401, "invalid_mfa_code");
    // Two steps ahead is outside the skew.
    verify(&app, &ch, json!({ "code": code(&app, &secret, 2) })).await.problem(401, "invalid_mfa_code");
    // A backup code works once, however it is typed.
    let typed = backup[0].to_uppercase().replace('-', " ");
    verify(&app, &ch, json!({ "backup_code": typed })).await.expect(200);
    let ch = challenge(&app, &u_email()).await;
    verify(&app, &ch, json!({ "backup_code": backup[0] })).await.problem(401, "invalid_mfa_code");
    verify(&app, &ch, json!({ "code": "123456", "backup_code": backup[1] })).await.problem(422, "validation_failed");
    verify(&app, &ch, json!({})).await.problem(422, "validation_failed");

    // Time passes: the authenticator's next codes work, each once.
    app.clock.advance_secs(90);
    verify(&app, &ch, json!({ "code": code(&app, &secret, 0) })).await.expect(200);

    // New backup codes need a current code; the old ones stop working.
    app.clock.advance_secs(30);
    let fresh = app.post("/api/v1/auth/mfa/backup-codes", &u.token, json!({ "code": code(&app, &secret, 0) })).await.expect(200);
    let fresh = fresh.body["backup_codes"][0].as_str().expect("code").to_owned();
    let ch = challenge(&app, &u_email()).await;
    verify(&app, &ch, json!({ "backup_code": backup[1] })).await.problem(401, "invalid_mfa_code");
    verify(&app, &ch, json!({ "backup_code": fresh })).await.expect(200);

    // Off: the password and a current code; then the password is enough.
    app.clock.advance_secs(30);
    let now = code(&app, &secret, 0);
    app.post("/api/v1/auth/mfa/totp/disable", &u.token, json!({ "password": "wrong password!", "code": now }))
        .await
        .problem(401, "invalid_credentials");
    app.post("/api/v1/auth/mfa/totp/disable", &u.token, json!({ "password": PASSWORD, "code": now })).await.expect(204);
    app.login(&u_email(), PASSWORD, None).await;
    app.post("/api/v1/auth/mfa/backup-codes", &u.token, json!({ "code": now })).await.problem(409, "mfa_not_enrolled");

    // Every step is in the organisation's audit log.
    let actions = audit_actions(&app, &owner).await;
    for a in [
        "auth.mfa.enrollment_started",
        "auth.mfa.enrollment_failed",
        "auth.mfa.enrolled",
        "auth.mfa.replay_refused",
        "auth.mfa.failed",
        "auth.mfa.backup_code_used",
        "auth.mfa.backup_codes_regenerated",
        "auth.mfa.disabled",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited: {actions:?}");
    }
    // No secret, code or challenge in the log's details.
    let log = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    assert!(!log.contains(&secret) && !log.contains(&backup[2]) && !log.contains(&fresh), "a secret in the audit log");
}

fn u_email() -> String {
    "mfa@example.com".to_owned()
}

#[tokio::test]
async fn a_challenge_is_bound_short_lived_and_takes_five_codes() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    let u = app.member(&owner, "mfa@example.com", "analyst", None).await;
    let (secret, _) = enable(&app, &u).await;

    // API keys have no second factor.
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "analyst" })).await.expect(201).str("key");
    app.post("/api/v1/auth/mfa/totp", &key, json!({})).await.problem(403, "forbidden");
    // Confirming needs an enrolment.
    let other = app.member(&owner, "plain@example.com", "viewer", None).await;
    app.post("/api/v1/auth/mfa/totp/confirm", &other.token, json!({ "code": "123456" })).await.problem(409, "mfa_not_enrolled");

    // Five wrong codes spend it: the right one is refused after.
    let ch = challenge(&app, &u_email()).await;
    for _ in 0..5 {
        verify(&app, &ch, json!({ "code": "000000" })).await.problem(401, "invalid_mfa_code");
    }
    verify(&app, &ch, json!({ "code": code(&app, &secret, 1) })).await.problem(401, "mfa_challenge_invalid");
    // Those failures count toward the account's lockout from this source.
    app.login_raw(&u_email(), PASSWORD, None).await.problem(429, "rate_limited");

    // Five minutes later (the failures' window is longer): a challenge expires.
    app.clock.advance_secs(3600);
    let ch = challenge(&app, &u_email()).await;
    app.clock.advance_secs(301);
    verify(&app, &ch, json!({ "code": code(&app, &secret, 0) })).await.problem(401, "mfa_challenge_invalid");
    // Unknown challenges are the same answer.
    verify(&app, "icm_nothing", json!({ "code": code(&app, &secret, 0) })).await.problem(401, "mfa_challenge_invalid");
}

#[tokio::test]
async fn an_owner_resets_a_members_lost_authenticator() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    let u = app.member(&owner, "mfa@example.com", "analyst", None).await;
    let me = app.get("/api/v1/auth/me", &u.token).await.expect(200);
    assert_eq!(me.body["mfa"], json!({ "totp": false, "backup_codes_left": 0 }));
    enable(&app, &u).await;
    let me = app.get("/api/v1/auth/me", &u.token).await.expect(200);
    assert_eq!(me.body["mfa"], json!({ "totp": true, "backup_codes_left": 10 }));

    // Not an analyst, not another organisation's owner.
    let analyst = app.member(&owner, "peer@example.com", "analyst", None).await;
    let path = format!("/api/v1/members/{}/mfa", u.id);
    app.delete(&path, &analyst.token).await.problem(403, "forbidden");
    let (_, stranger) = app.org(&owner, "elsewhere").await;
    app.delete(&path, &stranger.token).await.problem(404, "not_found");

    app.delete(&path, &owner.token).await.expect(204);
    app.get("/api/v1/auth/me", &u.token).await.problem(401, "unauthenticated");
    let again = app.login(&u_email(), PASSWORD, None).await;
    let me = app.get("/api/v1/auth/me", &again.token).await.expect(200);
    assert_eq!(me.body["mfa"]["totp"], json!(false));
    app.delete(&path, &owner.token).await.problem(409, "mfa_not_enrolled");
    assert!(audit_actions(&app, &owner).await.iter().any(|a| a == "member.mfa_reset"));
}

#[tokio::test]
async fn an_organisation_that_requires_mfa_lets_a_member_without_it_only_enrol() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    let u = app.member(&owner, "mfa@example.com", "analyst", None).await;
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "analyst" })).await.expect(201).str("key");
    app.get("/api/v1/organization/mfa-policy", &owner.token).await.expect(200);
    app.send(reqwest::Method::PUT, "/api/v1/organization/mfa-policy", Some(&u.token), Some(json!({ "mfa_required": true })), &[])
        .await
        .problem(403, "forbidden");
    let r = app
        .send(reqwest::Method::PUT, "/api/v1/organization/mfa-policy", Some(&owner.token), Some(json!({ "mfa_required": true })), &[])
        .await
        .expect(200);
    assert_eq!(r.body, json!({ "mfa_required": true }));

    // The member's session, already open, may only enrol now.
    app.get("/api/v1/incidents", &u.token).await.problem(403, "mfa_enrollment_required");
    app.get("/api/v1/auth/me", &u.token).await.expect(200);
    // So may a new one; API keys are not affected.
    let fresh = app.login(&u_email(), PASSWORD, None).await;
    app.post("/api/v1/incidents", &fresh.token, json!({ "title": "x", "severity": "low", "category": "other" }))
        .await
        .problem(403, "mfa_enrollment_required");
    app.get("/api/v1/incidents", &key).await.expect(200);
    let (secret, _) = enable(&app, &fresh).await;
    app.get("/api/v1/incidents", &fresh.token).await.expect(200);
    // From then on the login asks for the code.
    let ch = challenge(&app, &u_email()).await;
    verify(&app, &ch, json!({ "code": code(&app, &secret, 1) })).await.expect(200);
}
