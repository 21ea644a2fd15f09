//! A member's own sessions: listed with where each began, ended one by one
//! or all but the current; sessions end when idle 30 minutes or 12 hours
//! after their login.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

async fn refresh(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.send(Method::POST, "/api/v1/auth/refresh", None, Some(json!({ "refresh_token": token })), &[]).await
}

#[tokio::test]
async fn a_member_sees_and_ends_their_own_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let u = app.member(&owner, "s@example.com", "analyst", None).await;
    let other = app.login("s@example.com", PASSWORD, None).await;
    let r = app.get("/api/v1/auth/sessions", &u.token).await.expect(200);
    let items = r.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "{}", r.body);
    assert_eq!(items.iter().filter(|s| s["current"] == json!(true)).count(), 1);
    for s in &items {
        assert_eq!(s["method"], json!("password"));
        assert_eq!(s["source_ip"], json!("127.0.0.1"));
    }
    // Paged like every list.
    let first = app.get("/api/v1/auth/sessions?limit=1", &u.token).await.expect(200);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor").to_owned();
    let second = app.get(&format!("/api/v1/auth/sessions?limit=1&cursor={cursor}"), &u.token).await.expect(200);
    assert_ne!(first.body["items"][0]["id"], second.body["items"][0]["id"]);
    assert_eq!(second.body["next_cursor"], json!(null));

    let other_id = items.iter().find(|s| s["current"] == json!(false)).expect("the other")["id"].as_str().expect("id").to_owned();
    // Not the owner's to end through this route, nor another organisation's.
    app.delete(&format!("/api/v1/auth/sessions/{other_id}"), &owner.token).await.problem(404, "not_found");
    app.delete(&format!("/api/v1/auth/sessions/{other_id}"), &u.token).await.expect(204);
    app.get("/api/v1/auth/me", &other.token).await.problem(401, "unauthenticated");
    app.delete(&format!("/api/v1/auth/sessions/{other_id}"), &u.token).await.problem(404, "not_found");

    // Every other session, at once.
    let third = app.login("s@example.com", PASSWORD, None).await;
    let fourth = app.login("s@example.com", PASSWORD, None).await;
    let r = app.post("/api/v1/auth/sessions/revoke-others", &u.token, json!({})).await.expect(200);
    assert_eq!(r.body, json!({ "sessions_ended": 2 }));
    app.get("/api/v1/auth/me", &third.token).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &fourth.token).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &u.token).await.expect(200);
    assert_eq!(app.get("/api/v1/auth/sessions", &u.token).await.expect(200).body["items"].as_array().map(Vec::len), Some(1));

    // API keys have no sessions.
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "analyst" })).await.expect(201).str("key");
    app.get("/api/v1/auth/sessions", &key).await.problem(403, "forbidden");
    let audit = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    assert!(audit.contains("auth.session_ended") && audit.contains("auth.sessions_ended"));
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    // Idle: no refresh for 30 minutes.
    let idle = app.login("admin@localhost", &app.admin_password.clone(), None).await;
    app.clock.advance_secs(29 * 60);
    let r = refresh(&app, &idle.refresh).await.expect(200);
    app.clock.advance_secs(30 * 60);
    refresh(&app, &r.str("refresh_token")).await.problem(401, "unauthenticated");

    // Used all along: still ends 12 hours after its login.
    let busy = app.login("admin@localhost", &app.admin_password.clone(), None).await;
    let mut token = busy.refresh.clone();
    let mut refreshed = 0;
    loop {
        app.clock.advance_secs(20 * 60);
        let r = refresh(&app, &token).await;
        if r.status.as_u16() != 200 {
            r.problem(401, "unauthenticated");
            break;
        }
        token = r.str("refresh_token");
        refreshed += 1;
        assert!(refreshed < 100, "never ended");
    }
    assert_eq!(refreshed, 35, "every 20 minutes for 12 hours: 35 refreshes, then the end");
    let fresh = app.admin().await;
    let audit = app.get("/api/v1/audit?action=auth.session_expired&limit=10", &fresh.token).await.expect(200);
    let reasons: Vec<&str> =
        audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["details"]["reason"].as_str()).collect();
    assert!(reasons.contains(&"idle_timeout") && reasons.contains(&"lifetime_reached"), "{reasons:?}");
    drop(owner);
}

#[tokio::test]
async fn an_owner_sees_and_ends_a_members_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let u = app.member(&owner, "s@example.com", "analyst", None).await;
    app.login("s@example.com", PASSWORD, None).await;
    let path = format!("/api/v1/members/{}/sessions", u.id);
    let r = app.get(&path, &owner.token).await.expect(200);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2), "{}", r.body);
    assert!(r.body["items"].as_array().expect("items").iter().all(|s| s["current"] == json!(false)));
    // Not a peer analyst; not another organisation's owner.
    let peer = app.member(&owner, "peer@example.com", "analyst", None).await;
    app.get(&path, &peer.token).await.problem(403, "forbidden");
    app.delete(&path, &peer.token).await.problem(403, "forbidden");
    let (_, stranger) = app.org(&owner, "elsewhere").await;
    app.get(&path, &stranger.token).await.problem(404, "not_found");
    app.delete(&path, &stranger.token).await.problem(404, "not_found");

    let r = app.delete(&path, &owner.token).await.expect(200);
    assert_eq!(r.body, json!({ "sessions_ended": 2 }));
    app.get("/api/v1/auth/me", &u.token).await.problem(401, "unauthenticated");
    assert_eq!(app.get(&path, &owner.token).await.expect(200).body["items"], json!([]));
}
