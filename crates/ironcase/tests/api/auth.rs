use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_me_refresh_logout() {
    let app = TestApp::spawn().await;
    let r = app.login_raw("admin@localhost", &app.admin_password, None).await.expect(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r.body["expires_in"].as_i64().expect("expires_in") <= 900);
    let access = r.str("access_token");
    let refresh = r.str("refresh_token");
    let me = app.get("/api/v1/auth/me", &access).await.expect(200);
    assert_eq!(me.body["user"]["email"], "admin@localhost");
    assert_eq!(me.body["organization"]["slug"], "default");
    assert_eq!(me.body["role"], "owner");
    assert!(me.body["permissions"].as_array().expect("permissions").iter().any(|p| p == "audit:read"));

    // Refresh rotates: a new pair, and the old access token still works until logout.
    let r2 = app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": refresh })), &[]).await.expect(200);
    let access2 = r2.str("access_token");
    assert_ne!(r2.str("refresh_token"), refresh);
    app.get("/api/v1/auth/me", &access2).await.expect(200);

    // Logout ends the session at once: both access tokens of the login stop.
    app.send(Method::POST, "/api/v1/auth/logout", Some(&access2), None, &[]).await.expect(204);
    app.get("/api/v1/auth/me", &access2).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &access).await.problem(401, "unauthenticated");
    let r3 = app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": r2.str("refresh_token") })), &[]).await;
    r3.problem(401, "unauthenticated");
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_email_and_wrong_password_answer_alike() {
    let app = TestApp::spawn().await;
    let a = app.login_raw("admin@localhost", "wrong password!!", None).await.problem(401, "invalid_credentials");
    let b = app.login_raw("nobody@example.com", "wrong password!!", None).await.problem(401, "invalid_credentials");
    assert_eq!(a.body["detail"], b.body["detail"]);
    assert_eq!(a.body["title"], b.body["title"]);
    // Member of no such organisation: the same answer.
    app.login_raw("admin@localhost", &app.admin_password, Some("nope")).await.problem(401, "invalid_credentials");
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_login() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let refresh = |t: String| app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": t })), &[]);
    let first = refresh(u.refresh.clone()).await.expect(200);
    let newest_access = first.str("access_token");
    let newest_refresh = first.str("refresh_token");
    // A thief replays the old token: 401, and the legitimate holder's tokens die too.
    refresh(u.refresh.clone()).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &newest_access).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &u.token).await.problem(401, "unauthenticated");
    refresh(newest_refresh).await.problem(401, "unauthenticated");
    // Another login is unaffected.
    let again = app.admin().await;
    app.get("/api/v1/auth/me", &again.token).await.expect(200);
    // The reuse is in the audit log.
    let audit = app.get("/api/v1/audit?action=auth.refresh_reuse", &again.token).await.expect(200);
    assert_eq!(audit.body["items"].as_array().expect("items").len(), 1);
}

/// Failed logins refuse the source they come from, never the account for
/// everyone (anyone could otherwise lock anyone out, the operator included);
/// many failures from many addresses slow the attempts from addresses, while
/// a client that logged in before (its device token) is not slowed.
#[tokio::test]
async fn failed_logins_refuse_their_source_and_never_lock_the_account_for_everyone() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".to_owned()]).await;
    app.clock.freeze();
    let pw = app.admin_password.clone();
    let attempt = |ip: String, password: String, device: Option<String>| {
        let mut body = json!({ "email": "admin@localhost", "password": password });
        if let Some(d) = device {
            body["device_token"] = json!(d);
        }
        let app = &app;
        async move { app.send(Method::POST, "/api/v1/auth/login", None, Some(body), &[("x-forwarded-for", ip.as_str())]).await }
    };
    // The owner logs in from their laptop and keeps the device token.
    let first = attempt("192.0.2.1".into(), pw.clone(), None).await.expect(200);
    let device = first.str("device_token");
    assert!(device.starts_with("icd_"));
    assert!(first.header("set-cookie").is_some_and(|c| c.starts_with("ironcase_device=") && c.contains("HttpOnly")));

    // Five failures from one address refuse that address, the right password included…
    for _ in 0..5 {
        attempt("203.0.113.7".into(), "not the password".into(), None).await.problem(401, "invalid_credentials");
    }
    let r = attempt("203.0.113.7".into(), pw.clone(), None).await.problem(429, "rate_limited");
    let retry: i64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    // …and nobody else: the owner logs in from another address.
    attempt("198.51.100.9".into(), pw.clone(), None).await.expect(200);
    // Unknown accounts answer the same way (no enumeration through 429s).
    let ghost = json!({ "email": "ghost@example.com", "password": "not the password" });
    for _ in 0..5 {
        app.send(Method::POST, "/api/v1/auth/login", None, Some(ghost.clone()), &[("x-forwarded-for", "203.0.113.8")])
            .await
            .problem(401, "invalid_credentials");
    }
    app.send(Method::POST, "/api/v1/auth/login", None, Some(ghost), &[("x-forwarded-for", "203.0.113.8")])
        .await
        .problem(429, "rate_limited");

    // Guesses spread over many addresses: past ten failures, attempts from
    // addresses wait 1, 2, 4 … seconds after the last failure.
    for i in 0..5 {
        attempt(format!("203.0.113.{}", 100 + i), "not the password".into(), None).await.problem(401, "invalid_credentials");
    }
    let r = attempt("203.0.113.200".into(), pw.clone(), None).await.problem(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("1"));
    // The device that logged in before is not slowed, from any address.
    let again = attempt("203.0.113.201".into(), pw.clone(), Some(device.clone())).await.expect(200);
    // A device token is worth nothing for another account, nor when forged.
    let forged = format!("{}x", &device[..device.len() - 1]);
    attempt("203.0.113.202".into(), pw.clone(), Some(forged)).await.problem(429, "rate_limited");
    // A second later, one more attempt from an address is allowed.
    app.clock.advance_secs(1);
    attempt("203.0.113.203".into(), "still not it".into(), None).await.problem(401, "invalid_credentials");
    let r = attempt("203.0.113.204".into(), pw.clone(), None).await.problem(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("2"));
    // A known device's own failures count against it alone: five, and it is refused too.
    for i in 0..5 {
        attempt(format!("203.0.113.{}", 210 + i), "wrong".into(), Some(device.clone())).await.problem(401, "invalid_credentials");
    }
    attempt("203.0.113.220".into(), pw.clone(), Some(device.clone())).await.problem(429, "rate_limited");
    // The refusals are audited with their reasons; after the window all is forgotten.
    let audit = app.get("/api/v1/audit?action=auth.login&outcome=denied&limit=200", &again.str("access_token")).await.expect(200);
    let text = audit.body.to_string();
    assert!(text.contains("\"reason\":\"too_many_failures\"") && text.contains("\"reason\":\"throttled\""), "{text}");
    app.clock.advance_secs(15 * 60 + 1);
    attempt("203.0.113.7".into(), pw.clone(), None).await.expect(200);
}

#[tokio::test]
async fn garbage_and_forged_tokens_are_401() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    for bad in ["", "x", "ick_nope", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let r = app.send(Method::GET, "/api/v1/auth/me", Some(bad), None, &[]).await;
        assert_eq!(r.status, 401, "{bad}: {}", r.body);
    }
    // A token whose signature was altered.
    let mut t = u.token.clone().into_bytes();
    let n = t.len() - 3;
    t[n] = if t[n] == b'A' { b'B' } else { b'A' };
    app.get("/api/v1/auth/me", &String::from_utf8(t).expect("utf8")).await.problem(401, "unauthenticated");
    // No header at all.
    app.send(Method::GET, "/api/v1/auth/me", None, None, &[]).await.problem(401, "unauthenticated");
    // Access tokens expire after at most 15 minutes.
    app.clock.advance_secs(15 * 60 + 1);
    app.get("/api/v1/auth/me", &u.token).await.problem(401, "unauthenticated");
}

#[tokio::test]
async fn a_user_in_two_organisations_acts_in_one_per_token() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let (_, acme) = app.org(&op, "acme").await;
    // admin@localhost is invited to acme as a viewer and accepts with its password.
    let invite = app.invite(&acme, "admin@localhost", "viewer").await;
    app.accept(&invite, &app.admin_password.clone()).await.expect(201);
    let in_default = app.login("admin@localhost", &app.admin_password.clone(), None).await;
    let in_acme = app.login("admin@localhost", &app.admin_password.clone(), Some("acme")).await;
    let a = app.get("/api/v1/auth/me", &in_default.token).await.expect(200);
    let b = app.get("/api/v1/auth/me", &in_acme.token).await.expect(200);
    assert_eq!(a.body["organization"]["slug"], "default");
    assert_eq!(a.body["role"], "owner");
    assert_eq!(b.body["organization"]["slug"], "acme");
    assert_eq!(b.body["role"], "viewer");
    // The viewer token cannot create in acme even though the user owns default.
    app.post("/api/v1/incidents", &in_acme.token, json!({ "title": "t", "severity": "low", "category": "other" }))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn login_and_refresh_are_limited_per_source_address() {
    let app = TestApp::spawn().await;
    // The allowance refills with time: stop the clock so the count is exact
    // however long the attempts take on a loaded machine.
    app.clock.freeze();
    // 30 attempts a minute per address, whatever the account (so spreading
    // guesses over many accounts does not get around the per-account lockout).
    for i in 0..30 {
        let r = app.login_raw(&format!("guess{i}@example.com"), "not the password", None).await.problem(401, "invalid_credentials");
        assert_eq!(r.header("ratelimit-limit"), Some("30"));
        assert_eq!(r.header("ratelimit-remaining"), Some((29 - i).to_string().as_str()), "attempt {i}");
        assert!(r.header("x-ratelimit-reset").is_some());
    }
    let r = app.login_raw("admin@localhost", &app.admin_password, None).await.problem(429, "rate_limited");
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let retry: i64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let r = app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": "icr_x" })), &[]).await;
    r.problem(429, "rate_limited");
    // Authenticated routes are not under this limit.
    app.send(Method::GET, "/healthz", None, None, &[]).await.expect(200);
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("ironcase_rate_limited_total{class=\"auth\"} 2"), "{metrics}");
    // The allowance refills: one attempt per two seconds, all of it after a minute.
    app.clock.advance_secs(60);
    app.login_raw("admin@localhost", &app.admin_password, None).await.expect(200);
}

#[tokio::test]
async fn login_attempts_are_limited_per_account_and_address() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".to_owned()];
        c.login_limit = Some("5/900".to_owned());
    })
    .await;
    app.clock.freeze();
    let pw = app.admin_password.clone();
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let login = |ip: &'static str| {
        let body = json!({ "email": "admin@localhost", "password": pw.clone() });
        let h = from(ip);
        let app = &app;
        async move { app.send(Method::POST, "/api/v1/auth/login", None, Some(body), &h).await }
    };
    // Five attempts (successful ones count too) per account and address in 15 minutes.
    for _ in 0..5 {
        login("203.0.113.7").await.expect(200);
    }
    let r = login("203.0.113.7").await.problem(429, "rate_limited");
    let retry: i64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    // Another address, or another account from the same address, has its own allowance.
    login("198.51.100.4").await.expect(200);
    let other = json!({ "email": "nobody@example.com", "password": "wrong password" });
    app.send(Method::POST, "/api/v1/auth/login", None, Some(other), &from("203.0.113.7")).await.problem(401, "invalid_credentials");
    // The refusal is audited; a quarter of an hour later the account logs in again.
    app.clock.advance_secs(15 * 60);
    let t = login("203.0.113.7").await.expect(200).str("access_token");
    let audit = app.get("/api/v1/audit?action=auth.login&outcome=denied", &t).await.expect(200);
    assert!(audit.body.to_string().contains("\"reason\":\"rate_limited\""), "{}", audit.body);
}

/// Wrong API keys and forged tokens count against their address: past 20 a
/// minute further bad ones from it are 429, audited once; other addresses,
/// and good credentials from any address, are not affected.
#[tokio::test]
async fn bad_credentials_are_throttled_and_audited_per_address() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".to_owned()]).await;
    app.clock.freeze();
    let owner = app.admin().await;
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "viewer" })).await.expect(201).str("key");
    let from = |ip: &'static str, token: String| {
        let app = &app;
        async move { app.send(Method::GET, "/api/v1/auth/me", Some(&token), None, &[("x-forwarded-for", ip)]).await }
    };
    for i in 0..20 {
        let wrong = if i % 2 == 0 { format!("ick_wrong{i}") } else { format!("{}x", owner.token) };
        from("203.0.113.50", wrong).await.problem(401, "unauthenticated");
    }
    // The 21st bad one, and the next ones, are refused for a while; a good key still works.
    let r = from("203.0.113.50", "ick_wrong21".into()).await.problem(429, "rate_limited");
    let retry: i64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    from("203.0.113.50", key.clone()).await.expect(200);
    from("203.0.113.50", "ick_wrong22".into()).await.problem(429, "rate_limited");
    // Another address is not affected.
    from("198.51.100.50", key.clone()).await.expect(200);
    // One audit entry for the refusal, in the platform's log, with the
    // address sealed (its keyed hash to find it by), not in plain text.
    let audited = direct_sql(
        &app,
        "select count(*) from audit_log where organization_id = 'platform' and action = 'auth.bad_credentials' \
         and ip_tag is not null and personal is not null",
    )
    .await;
    assert_eq!(audited, Some(1));
    let plain = direct_sql(&app, "select count(*) from audit_log where source_ip is not null or personal like '%203.0.113.50%'").await;
    assert_eq!(plain, Some(0));
    // The allowance returns with time.
    app.clock.advance_secs(retry);
    from("203.0.113.50", "ick_wrong23".into()).await.problem(401, "unauthenticated");
}
