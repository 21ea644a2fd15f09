//! Organisation export: everything about the incidents as NDJSON, for owners
//! and admins, gated by the plan's `export` feature, limited by its own route
//! class, audited, and only ever the caller's organisation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Fetches the export: status, headers, and the lines parsed.
async fn export(app: &TestApp, token: &str) -> (u16, reqwest::header::HeaderMap, Vec<Value>) {
    let res = app.client.get(app.url("/api/v1/organization/export")).bearer_auth(token).send().await.expect("sent");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let text = res.text().await.expect("body");
    let lines = if status == 200 {
        text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect()
    } else {
        vec![serde_json::from_str(&text).expect("problem")]
    };
    (status, headers, lines)
}

#[tokio::test]
async fn an_export_holds_every_incident_with_its_comments_indicators_and_evidence() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let (_, other) = app.org(&owner, "beta").await;
    app.incident(&other, "beta's own").await;
    let first = app.incident(&owner, "first").await.str("id");
    app.post(&format!("/api/v1/incidents/{first}/comments"), &owner.token, json!({ "body": "a note" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{first}/iocs"), &owner.token, json!({ "type": "domain", "value": "evil[.]example" }))
        .await
        .expect(201);
    let evd = app.upload(&owner.token, &first, json!({ "name": "mail.eml", "kind": "document" }), b"headers".to_vec()).await.expect(201);
    let second = app.incident(&owner, "second").await.str("id");

    let (status, headers, lines) = export(&app, &owner.token).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-ndjson"));
    let disposition = headers.get("content-disposition").and_then(|v| v.to_str().ok()).expect("disposition");
    assert!(disposition.starts_with("attachment; filename=\"ironcase-export-default-"), "{disposition}");
    assert_eq!(lines.len(), 4, "header, two incidents, end: {lines:?}");
    assert_eq!(lines[0]["kind"], "header");
    assert_eq!(lines[0]["format"], "ironcase-export");
    assert_eq!(lines[0]["organization"]["slug"], "default");
    let inc = &lines[1];
    assert_eq!((inc["kind"].as_str(), inc["id"].as_str()), (Some("incident"), Some(first.as_str())));
    assert_eq!(inc["comments"][0]["body"], "a note");
    assert_eq!(inc["indicators"][0]["value"], "evil.example", "{inc}");
    assert_eq!(inc["evidence"][0]["id"], evd.body["id"]);
    assert_eq!(inc["evidence"][0]["sha256"], evd.body["sha256"]);
    assert_eq!(inc["evidence"][0]["custody"][0]["action"], "uploaded", "{}", inc["evidence"][0]);
    assert_eq!(lines[2]["id"], json!(second));
    assert_eq!(lines[2]["comments"], json!([]));
    assert_eq!(lines[3], json!({ "kind": "end", "incidents": 2 }));
    assert!(!lines.iter().any(|l| l.to_string().contains("beta's own")), "nothing of another organisation");

    // Audited.
    let audit = app.get("/api/v1/audit?action=organization.export", &owner.token).await.expect(200);
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(1));
    // The other organisation's export is its own.
    let (_, _, theirs) = export(&app, &other.token).await;
    assert_eq!(theirs.len(), 3);
    assert_eq!(theirs[1]["title"], "beta's own");
    app.shutdown().await;
}

#[tokio::test]
async fn exports_are_for_owners_and_admins_on_plans_with_the_feature_within_the_tlp_ceiling() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.incident(&owner, "amber by default").await;
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "public", "severity": "low", "category": "other", "tlp": "clear" }))
        .await
        .expect(201);
    for role in ["lead", "analyst", "viewer"] {
        let m = app.member(&owner, &format!("{role}@x.test"), role, None).await;
        let (status, _, body) = export(&app, &m.token).await;
        assert_eq!((status, body[0]["code"].as_str()), (403, Some("forbidden")), "{role}");
    }
    // An admin key with a TLP:GREEN ceiling exports only what it may see.
    let key =
        app.post("/api/v1/api-keys", &owner.token, json!({ "name": "backup", "role": "admin", "tlp_max": "green" })).await.expect(201);
    let (status, _, lines) = export(&app, &key.str("key")).await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1]["title"], "public");

    // A plan without `export`.
    let r = app
        .post(
            "/api/v1/admin/organizations",
            &owner.token,
            json!({ "name": "No export", "slug": "noexp", "plan": "starter", "overrides": { "features": { "export": false } },
                    "owner": { "email": "o@noexp.test", "name": "O", "password": PASSWORD } }),
        )
        .await
        .expect(201);
    let org_id = r.str("id");
    let no = app.login("o@noexp.test", PASSWORD, Some("noexp")).await;
    let (status, _, body) = export(&app, &no.token).await;
    assert_eq!((status, body[0]["code"].as_str(), body[0]["feature"].as_str()), (403, Some("feature_not_in_plan"), Some("export")));
    // Turned on, it works.
    app.send(
        Method::PUT,
        &format!("/api/v1/admin/organizations/{org_id}/plan"),
        Some(&owner.token),
        Some(json!({ "plan": "starter" })),
        &[],
    )
    .await
    .expect(200);
    assert_eq!(export(&app, &no.token).await.0, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn the_export_class_has_its_own_limit_per_credential() {
    let app = TestApp::spawn_with(|c| c.export_limit = Some("2/3600".into())).await;
    app.clock.freeze();
    let owner = app.admin().await;
    // An API key: a credential that outlives the hour below.
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "backup", "role": "admin" })).await.expect(201).str("key");
    for _ in 0..2 {
        let (status, headers, _) = export(&app, &key).await;
        assert_eq!(status, 200);
        assert_eq!(headers.get("ratelimit-limit").and_then(|v| v.to_str().ok()), Some("2"));
    }
    let (status, headers, body) = export(&app, &key).await;
    assert_eq!((status, body[0]["code"].as_str()), (429, Some("rate_limited")));
    let retry: i64 = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("retry-after");
    assert!((1..=1800).contains(&retry), "{retry}");
    // Other requests of the same credential are not held by it, nor is another credential.
    app.get("/api/v1/incidents", &key).await.expect(200);
    assert_eq!(export(&app, &owner.token).await.0, 200);
    // Half an hour later one more may go (GCRA refills evenly), an hour later both.
    app.clock.advance_secs(1800);
    assert_eq!(export(&app, &key).await.0, 200);
    assert_eq!(export(&app, &key).await.0, 429);
    app.clock.advance_secs(3600);
    assert_eq!(export(&app, &key).await.0, 200);
    assert_eq!(export(&app, &key).await.0, 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("ironcase_rate_limited_total{class=\"export\"} 2"), "{metrics}");
    app.shutdown().await;
}
