use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn api_keys_are_shown_once_work_and_can_be_revoked_and_rotated() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let r = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "analyst" })).await.expect(201);
    let key = r.str("key");
    let id = r.str("id");
    assert!(key.starts_with("ick_"));
    assert_eq!(r.body["role"], "analyst");
    let me = app.get("/api/v1/auth/me", &key).await.expect(200);
    assert_eq!(me.body["role"], "analyst");
    assert_eq!(me.body["credential"], "api_key");
    // The key acts with its own role, not its creator's.
    let inc = app.incident(&owner, "by owner").await.str("id");
    app.delete(&format!("/api/v1/incidents/{inc}"), &key).await.problem(403, "forbidden");
    let mine =
        app.post("/api/v1/incidents", &key, json!({ "title": "from siem", "severity": "low", "category": "other" })).await.expect(201);
    assert_eq!(mine.body["reporter_id"], owner.id.as_str());

    // Listing never shows a secret, and records use.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list = app.get("/api/v1/api-keys", &owner.token).await.expect(200);
    let text = list.body.to_string();
    assert!(!text.contains(&key), "the secret leaked into the list");
    assert!(!text.contains("hash"));
    let item = &list.body["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert!(item["last_used_at"].is_string(), "{item}");
    assert_eq!(item["prefix"].as_str().expect("prefix"), &key[..12]);

    // Rotation: the old secret stops, the new one works.
    let rot = app.post(&format!("/api/v1/api-keys/{id}/rotate"), &owner.token, json!({})).await.expect(200);
    let key2 = rot.str("key");
    assert_ne!(key, key2);
    app.get("/api/v1/auth/me", &key).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &key2).await.expect(200);

    // Revocation.
    app.delete(&format!("/api/v1/api-keys/{id}"), &owner.token).await.expect(204);
    app.get("/api/v1/auth/me", &key2).await.problem(401, "unauthenticated");
    app.delete(&format!("/api/v1/api-keys/{id}"), &owner.token).await.problem(404, "not_found");
    assert_eq!(app.get("/api/v1/api-keys", &owner.token).await.body["items"], json!([]));
}

#[tokio::test]
async fn api_keys_expire_and_never_exceed_their_creator() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let soon = ironcase_domain::Timestamp(app.clock.now().0 + 60_000).to_rfc3339();
    let r = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "short", "role": "viewer", "expires_at": soon })).await.expect(201);
    let key = r.str("key");
    app.get("/api/v1/auth/me", &key).await.expect(200);
    app.clock.advance_secs(61);
    app.get("/api/v1/auth/me", &key).await.problem(401, "unauthenticated");
    app.post("/api/v1/api-keys", &owner.token, json!({ "name": "past", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z" }))
        .await
        .problem(422, "validation_failed");

    let lead = app.member(&owner, "lead@example.com", "lead", None).await;
    app.post("/api/v1/api-keys", &lead.token, json!({ "name": "too strong", "role": "admin" })).await.problem(403, "forbidden");
    app.post("/api/v1/api-keys", &lead.token, json!({ "name": "ok", "role": "lead" })).await.expect(201);
    let analyst = app.member(&owner, "an@example.com", "analyst", None).await;
    app.post("/api/v1/api-keys", &analyst.token, json!({ "name": "x", "role": "viewer" })).await.problem(403, "forbidden");
    // An API key cannot log out.
    let k = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "viewer" })).await.expect(201).str("key");
    app.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&k), None, &[]).await.problem(409, "not_a_session");
}
