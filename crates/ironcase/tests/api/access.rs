//! Access controls through HTTP: a new password (not a common one; the
//! account's other sessions end), re-authentication before sensitive
//! actions, an organisation's session timeouts, and the networks an
//! organisation and an API key may be used from.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp, User, PASSWORD};

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": token })), &[]).await
}

async fn audit_actions(app: &TestApp, owner: &User) -> Vec<String> {
    let r = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200);
    r.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn a_new_password_ends_the_accounts_other_sessions() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let u = app.member(&operator, "p@example.com", "analyst", None).await;
    let other = app.login("p@example.com", PASSWORD, None).await;
    // A second organisation of the same account: its session ends too.
    let (_, owner2) = app.org(&operator, "second").await;
    let token = app.invite(&owner2, "p@example.com", "viewer").await;
    app.accept(&token, PASSWORD).await.expect(201);
    let elsewhere = app.login("p@example.com", PASSWORD, Some("second")).await;

    let change = |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    for weak in ["password1234", "qwertyuiop123", "short"] {
        let r = app.post("/api/v1/auth/password", &u.token, change(PASSWORD, weak)).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], json!("new_password"), "{}", r.body);
    }
    app.post("/api/v1/auth/password", &u.token, change(PASSWORD, PASSWORD)).await.problem(422, "validation_failed");
    app.post("/api/v1/auth/password", &u.token, change("not the password", "tangerine ocelot viaduct"))
        .await
        .problem(401, "invalid_credentials");
    // Nothing changed by the refusals.
    app.get("/api/v1/auth/me", &other.token).await.expect(200);

    let r = app.post("/api/v1/auth/password", &u.token, change(PASSWORD, "tangerine ocelot viaduct")).await.expect(200);
    assert_eq!(r.body, json!({ "sessions_ended": 2 }));
    app.get("/api/v1/auth/me", &u.token).await.expect(200);
    for gone in [&other, &elsewhere] {
        app.get("/api/v1/auth/me", &gone.token).await.problem(401, "unauthenticated");
        refresh(&app, &gone.refresh).await.problem(401, "unauthenticated");
    }
    refresh(&app, &u.refresh).await.expect(200);
    app.login_raw("p@example.com", PASSWORD, None).await.problem(401, "invalid_credentials");
    app.login("p@example.com", "tangerine ocelot viaduct", None).await;

    // An API key has no password to change.
    let key = app.post("/api/v1/api-keys", &operator.token, json!({ "name": "k", "role": "analyst" })).await.expect(201).str("key");
    app.post("/api/v1/auth/password", &key, change(PASSWORD, "tangerine ocelot viaduct")).await.problem(403, "forbidden");
    let actions = audit_actions(&app, &operator).await;
    assert!(actions.iter().any(|a| a == "auth.password_changed") && actions.iter().any(|a| a == "auth.password_change"), "{actions:?}");
}

#[tokio::test]
async fn sensitive_actions_need_a_recent_proof_of_identity() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    let key_body = json!({ "name": "k", "role": "analyst" });
    let key = app.post("/api/v1/api-keys", &owner.token, key_body.clone()).await.expect(201);
    let key_id = key.str("id");

    // Eleven minutes after the login: refused, reading still works.
    app.clock.advance_secs(11 * 60);
    let r = app.post("/api/v1/api-keys", &owner.token, key_body.clone()).await.problem(403, "reauthentication_required");
    assert!(r.body["detail"].as_str().unwrap_or_default().contains("/auth/reauthenticate"), "{}", r.body);
    app.post(&format!("/api/v1/api-keys/{key_id}/rotate"), &owner.token, json!({})).await.problem(403, "reauthentication_required");
    app.put_json("/api/v1/organization/mfa-policy", &owner.token, json!({ "mfa_required": true }))
        .await
        .problem(403, "reauthentication_required");
    let r = app.post("/api/v1/members", &owner.token, json!({ "email": "m@example.com", "role": "viewer" })).await;
    r.problem(403, "reauthentication_required");
    app.get("/api/v1/api-keys", &owner.token).await.expect(200);
    // A refreshed token keeps the time of the proof.
    let r = refresh(&app, &owner.refresh).await.expect(200);
    let (fresh, fresh_refresh) = (r.str("access_token"), r.str("refresh_token"));
    app.post("/api/v1/api-keys", &fresh, key_body.clone()).await.problem(403, "reauthentication_required");

    let reauth = |password: &str| json!({ "password": password });
    app.post("/api/v1/auth/reauthenticate", &owner.token, reauth("not the password")).await.problem(401, "invalid_credentials");
    app.post("/api/v1/auth/reauthenticate", &owner.token, reauth(&app.admin_password.clone())).await.expect(204);
    app.post("/api/v1/api-keys", &owner.token, key_body.clone()).await.expect(201);
    app.post("/api/v1/api-keys", &fresh, key_body.clone()).await.expect(201);
    app.clock.advance_secs(10 * 60);
    app.post("/api/v1/api-keys", &fresh, key_body.clone()).await.problem(403, "reauthentication_required");

    // An account with a second factor proves it too.
    let r = refresh(&app, &fresh_refresh).await.expect(200);
    let owner = User { token: r.str("access_token"), refresh: r.str("refresh_token"), ..owner };
    let (secret, _) = crate::mfa::enable(&app, &owner).await;
    let admin_pw = app.admin_password.clone();
    app.post("/api/v1/auth/reauthenticate", &owner.token, reauth(&admin_pw)).await.problem(422, "validation_failed");
    // (The code of this step confirmed the enrolment: each step once.)
    let body = json!({ "password": admin_pw, "code": crate::mfa::code(&app, &secret, 0) });
    app.post("/api/v1/auth/reauthenticate", &owner.token, body).await.problem(401, "invalid_mfa_code");
    let body = json!({ "password": admin_pw, "code": crate::mfa::code(&app, &secret, 1) });
    app.post("/api/v1/auth/reauthenticate", &owner.token, body).await.expect(204);
    app.post("/api/v1/api-keys", &owner.token, key_body.clone()).await.expect(201);

    let actions = audit_actions(&app, &owner).await;
    assert_eq!(actions.iter().filter(|a| *a == "auth.reauthenticated").count(), 2, "{actions:?}");

    // API keys prove nothing again: not asked.
    let admin_key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "a", "role": "admin" })).await.expect(201).str("key");
    app.clock.advance_secs(3600);
    app.post("/api/v1/api-keys", &admin_key, key_body).await.expect(201);
    app.post("/api/v1/auth/reauthenticate", &admin_key, reauth(&app.admin_password.clone())).await.problem(403, "forbidden");
}

#[tokio::test]
async fn an_organisation_sets_its_own_session_timeouts() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    let r = app.get("/api/v1/organization/session-policy", &owner.token).await.expect(200);
    assert_eq!(r.body, json!({ "idle_timeout_secs": 1800, "absolute_timeout_secs": 43200, "custom": false }));
    for bad in [
        json!({ "idle_timeout_secs": 10 }),
        json!({ "absolute_timeout_secs": 99_999_999 }),
        json!({ "idle_timeout_secs": 7200, "absolute_timeout_secs": 3600 }),
        json!({ "idle_timeout_secs": "soon" }),
    ] {
        let r = app.put_json("/api/v1/organization/session-policy", &owner.token, bad.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{bad}: {}", r.body);
    }
    let viewer = app.member(&owner, "v@example.com", "viewer", None).await;
    app.put_json("/api/v1/organization/session-policy", &viewer.token, json!({ "idle_timeout_secs": 600 })).await.problem(403, "forbidden");
    let r = app
        .put_json("/api/v1/organization/session-policy", &owner.token, json!({ "idle_timeout_secs": 600, "absolute_timeout_secs": 3600 }))
        .await
        .expect(200);
    assert_eq!(r.body, json!({ "idle_timeout_secs": 600, "absolute_timeout_secs": 3600, "custom": true }));

    // Eleven idle minutes end a session now (the server's default is 30).
    let s = app.login("v@example.com", PASSWORD, None).await;
    app.clock.advance_secs(11 * 60);
    refresh(&app, &s.refresh).await.problem(401, "unauthenticated");
    // And an hour ends even a busy one.
    let busy = app.login("v@example.com", PASSWORD, None).await;
    let mut token = busy.refresh;
    for _ in 0..6 {
        app.clock.advance_secs(9 * 60);
        token = refresh(&app, &token).await.expect(200).str("refresh_token");
    }
    app.clock.advance_secs(9 * 60);
    refresh(&app, &token).await.problem(401, "unauthenticated");

    // Back to the server's.
    let owner = app.admin().await;
    let r = app.put_json("/api/v1/organization/session-policy", &owner.token, json!({})).await.expect(200);
    assert_eq!(r.body["custom"], json!(false));
}

fn from(ip: &str) -> [(&'static str, String); 1] {
    [("x-forwarded-for", ip.to_owned())]
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>, ip: &str) -> Resp {
    let h = from(ip);
    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.send(method, path, Some(token), body, &headers).await
}

#[tokio::test]
async fn an_allow_list_refuses_requests_from_elsewhere() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into(), "::1/128".into()]).await;
    let owner = app.admin().await;
    let (_, other_org) = app.org(&owner, "elsewhere").await;
    let office = "203.0.113.50";
    let list = |cidrs: Value, confirm: bool| json!({ "cidrs": cidrs, "confirm": confirm });
    let put = Method::PUT;
    let path = "/api/v1/organization/ip-allowlist";

    let r = call(&app, put.clone(), path, &owner.token, Some(list(json!(["203.0.113.0/24", "nonsense"]), false)), office).await;
    let r = r.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], json!("cidrs[1]"), "{}", r.body);
    // A list without the caller's own address: refused unless confirmed.
    call(&app, put.clone(), path, &owner.token, Some(list(json!(["198.51.100.0/24"]), false)), office).await.problem(409, "would_lock_out");
    app.get(path, &owner.token).await.expect(200);
    let r = call(&app, put.clone(), path, &owner.token, Some(list(json!(["203.0.113.9/24", "2001:db8::/32"]), false)), office).await;
    assert_eq!(r.expect(200).body, json!({ "cidrs": ["203.0.113.0/24", "2001:db8::/32"] }));

    // From inside: served; from elsewhere: 403, for every credential.
    call(&app, Method::GET, "/api/v1/incidents", &owner.token, None, "203.0.113.7").await.expect(200);
    call(&app, Method::GET, "/api/v1/incidents", &owner.token, None, "2001:db8::7").await.expect(200);
    call(&app, Method::GET, "/api/v1/incidents", &owner.token, None, "198.51.100.7").await.problem(403, "ip_not_allowed");
    // Another organisation's members are not held to it.
    call(&app, Method::GET, "/api/v1/incidents", &other_org.token, None, "198.51.100.7").await.expect(200);
    let key = call(&app, Method::POST, "/api/v1/api-keys", &owner.token, Some(json!({ "name": "k", "role": "analyst" })), office).await;
    let key = key.expect(201).str("key");
    call(&app, Method::GET, "/api/v1/incidents", &key, None, "198.51.100.7").await.problem(403, "ip_not_allowed");
    // A login from elsewhere gets no session, with the right password.
    let login = json!({ "email": "admin@localhost", "password": app.admin_password.clone() });
    let h = from("198.51.100.7");
    let r = app.send(Method::POST, "/api/v1/auth/login", None, Some(login.clone()), &[("x-forwarded-for", h[0].1.as_str())]).await;
    r.problem(403, "ip_not_allowed");
    app.send(Method::POST, "/api/v1/auth/login", None, Some(login), &[("x-forwarded-for", office)]).await.expect(200);

    // A key held to its own range as well: both lists apply.
    let body = json!({ "name": "ci", "role": "analyst", "allowed_cidrs": ["192.0.2.0/24"] });
    let ci = call(&app, Method::POST, "/api/v1/api-keys", &owner.token, Some(body), office).await.expect(201);
    assert_eq!(ci.body["allowed_cidrs"], json!(["192.0.2.0/24"]));
    let (ci_id, ci) = (ci.str("id"), ci.str("key"));
    call(&app, Method::GET, "/api/v1/incidents", &ci, None, office).await.problem(403, "ip_not_allowed");
    call(&app, Method::GET, "/api/v1/incidents", &ci, None, "192.0.2.10").await.problem(403, "ip_not_allowed");
    let widen = list(json!(["203.0.113.0/24", "192.0.2.0/24"]), false);
    call(&app, put.clone(), path, &owner.token, Some(widen), office).await.expect(200);
    call(&app, Method::GET, "/api/v1/incidents", &ci, None, "192.0.2.10").await.expect(200);
    let r =
        call(&app, Method::PATCH, &format!("/api/v1/api-keys/{ci_id}"), &owner.token, Some(json!({ "allowed_cidrs": [] })), office).await;
    assert_eq!(r.expect(200).body["allowed_cidrs"], json!([]));
    call(&app, Method::GET, "/api/v1/incidents", &ci, None, office).await.expect(200);
    let bad = json!({ "allowed_cidrs": ["10.0.0.0/99"] });
    call(&app, Method::PATCH, &format!("/api/v1/api-keys/{ci_id}"), &owner.token, Some(bad), office)
        .await
        .problem(422, "validation_failed");

    // Refusals are audited, once a minute per address.
    let r = call(&app, Method::GET, "/api/v1/audit?limit=200", &owner.token, None, office).await.expect(200);
    let refused: Vec<&Value> =
        r.body["items"].as_array().expect("items").iter().filter(|e| e["action"] == json!("auth.ip_not_allowed")).collect();
    // 198.51.100.7 (a session, then a key: once), the office for the key's
    // own list, 192.0.2.10.
    assert_eq!(refused.len(), 3, "{refused:?}");
    // Anywhere again.
    call(&app, put, path, &owner.token, Some(list(json!([]), false)), office).await.expect(200);
    call(&app, Method::GET, "/api/v1/incidents", &owner.token, None, "198.51.100.7").await.expect(200);
}
