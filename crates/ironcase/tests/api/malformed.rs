//! Hostile and broken input: every body-taking endpoint answers 400/413/415/422
//! problem+json, changes nothing, and the server keeps serving.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn raw(app: &TestApp, m: Method, path: &str, token: Option<&str>, ct: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Resp {
    let mut rb = app.client.request(m, app.url(path)).header("content-type", ct).body(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    let res = rb.send().await.expect("sent");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

#[tokio::test]
async fn every_body_endpoint_rejects_bad_input_cleanly() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "target").await.str("id");
    let member = app.member(&owner, "m@example.com", "viewer", None).await;
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "viewer" })).await.expect(201).str("id");
    let evd = app.upload(&owner.token, &inc, json!({ "name": "e.txt", "kind": "other" }), b"evidence".to_vec()).await.expect(201).str("id");
    let org = app.get("/api/v1/organization", &owner.token).await.expect(200).str("id");
    let before_audit = app.get("/api/v1/audit/verify", &owner.token).await.body["entries"].as_i64().expect("entries");

    // (method, path, a body with wrong types and an unknown field, fields that must be named)
    let endpoints: Vec<(Method, String, Value, Vec<&str>)> = vec![
        (Method::POST, "/api/v1/auth/login".into(), json!({ "email": 1, "password": [], "x": 1 }), vec!["email", "password", "x"]),
        (Method::POST, "/api/v1/auth/refresh".into(), json!({ "refresh_token": 5, "y": 2 }), vec!["refresh_token", "y"]),
        (
            Method::POST,
            "/api/v1/incidents".into(),
            json!({ "title": 3, "severity": "huge", "category": "x", "tags": "a", "bogus": 1 }),
            vec!["title", "severity", "category", "tags", "bogus"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/incidents/{inc}"),
            json!({ "status": "exploded", "assignee_id": 7, "z": 0 }),
            vec!["status", "assignee_id", "z"],
        ),
        (Method::POST, format!("/api/v1/incidents/{inc}/comments"), json!({ "body": {}, "w": 1 }), vec!["body", "w"]),
        (
            Method::POST,
            "/api/v1/members".into(),
            json!({ "email": false, "name": 1, "role": "god", "password": 1 }),
            vec!["email", "name", "role", "password"],
        ),
        (Method::PATCH, format!("/api/v1/members/{}", member.id), json!({ "role": "emperor", "q": 1 }), vec!["role", "q"]),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            json!({ "name": [], "role": "root", "expires_at": "tomorrow" }),
            vec!["name", "role", "expires_at"],
        ),
        (Method::POST, "/api/v1/admin/organizations".into(), json!({ "name": 1, "slug": 2, "owner": "me" }), vec!["name", "slug", "owner"]),
        (
            Method::POST,
            format!("/api/v1/incidents/{inc}/iocs"),
            json!({ "type": "phone", "value": 5, "tags": {}, "k": 1 }),
            vec!["type", "value", "tags", "k"],
        ),
        (Method::POST, format!("/api/v1/incidents/{inc}/iocs/extract"), json!({ "text": [], "save": "yes" }), vec!["text", "save"]),
        (
            Method::POST,
            format!("/api/v1/evidence/{evd}/custody"),
            json!({ "action": "lost", "to": 1, "reason": [], "x": 1 }),
            vec!["action", "to", "reason", "x"],
        ),
        (Method::DELETE, format!("/api/v1/evidence/{evd}"), json!({ "reason": 5, "why": 1 }), vec!["reason", "why"]),
        (
            Method::PUT,
            format!("/api/v1/admin/organizations/{org}/plan"),
            json!({ "plan": "gold", "overrides": { "quotas": { "seats": 1 } }, "x": 1 }),
            vec!["plan", "overrides", "x"],
        ),
        (Method::PATCH, format!("/api/v1/admin/organizations/{org}"), json!({ "status": "paused", "y": 1 }), vec!["status", "y"]),
        (Method::PUT, "/api/v1/organization/parent-access".into(), json!({ "granted": "yes", "z": 1 }), vec!["granted", "z"]),
    ];
    let if_match = [("if-match", "\"1\"")];
    for (m, path, wrong, fields) in &endpoints {
        let token = if path.contains("/auth/") { None } else { Some(owner.token.as_str()) };
        let h: &[(&str, &str)] = if *m == Method::PATCH { &if_match } else { &[] };
        let r = raw(&app, m.clone(), path, token, "application/json", b"{\"title\": ".to_vec(), h).await;
        r.problem(400, "malformed_json");
        let r = raw(&app, m.clone(), path, token, "application/json", b"[1,2,3]".to_vec(), h).await;
        r.problem(422, "validation_failed");
        let r = raw(&app, m.clone(), path, token, "text/plain", b"{}".to_vec(), h).await;
        r.problem(415, "unsupported_media_type");
        let huge = format!("{{\"title\": \"{}\"}}", "a".repeat(100 * 1024));
        let r = raw(&app, m.clone(), path, token, "application/json", huge.into_bytes(), h).await;
        r.problem(413, "payload_too_large");
        let r = raw(&app, m.clone(), path, token, "application/json", serde_json::to_vec(wrong).expect("json"), h)
            .await
            .problem(422, "validation_failed");
        let named: Vec<&str> = r.body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
        for f in fields {
            assert!(named.iter().any(|n| n == f || n.starts_with(&format!("{f}."))), "{m} {path}: {f} not named in {named:?}");
        }
        let r = raw(&app, m.clone(), path, token, "application/json", b"\xff\xfe\x00garbage".to_vec(), h).await;
        r.problem(400, "malformed_json");
    }

    // Semantic validation: well-typed but invalid values.
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "", "severity": "low", "category": "other" }))
        .await
        .problem(422, "validation_failed");
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "x".repeat(301), "severity": "low", "category": "other" }))
        .await
        .problem(422, "validation_failed");
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "t", "severity": "low", "category": "other", "tags": ["bad tag!"] }))
        .await
        .problem(422, "validation_failed");
    app.post("/api/v1/incidents/".to_owned().as_str(), &owner.token, json!({})).await;
    app.post("/api/v1/members", &owner.token, json!({ "email": "not-an-email", "name": "n", "role": "viewer", "password": PASSWORD }))
        .await
        .problem(422, "validation_failed");
    app.post("/api/v1/members", &owner.token, json!({ "email": "short@example.com", "name": "n", "role": "viewer", "password": "short" }))
        .await
        .problem(422, "validation_failed");
    app.post(
        "/api/v1/admin/organizations",
        &owner.token,
        json!({ "name": "n", "slug": "Bad Slug", "owner": { "email": "o@o.test", "name": "o", "password": PASSWORD } }),
    )
    .await
    .problem(422, "validation_failed");

    // Query strings.
    for q in [
        "status=exploded",
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=zzz",
        "created_after=yesterday",
        "sort=title",
        "colour=red",
        "status=open&status=closed",
    ] {
        let r = app.get(&format!("/api/v1/incidents?{q}"), &owner.token).await;
        r.problem(422, "validation_failed");
    }
    for q in ["limit=-1", "cursor=abc", "from=nope", "frobnicate=1"] {
        app.get(&format!("/api/v1/audit?{q}"), &owner.token).await.problem(422, "validation_failed");
    }
    // Path ids that cannot exist.
    for p in [
        "/api/v1/incidents/%00",
        "/api/v1/incidents/INC-0",
        "/api/v1/incidents/INC--1",
        "/api/v1/incidents/99999999999999999999999",
        "/api/v1/members/nope",
        "/api/v1/api-keys/nope",
        "/api/v1/api-keys/key_zz/rotate",
        "/api/v1/evidence/nope",
        "/api/v1/evidence/evd_zz/content",
        "/api/v1/evidence/inc_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b/custody",
        "/api/v1/incidents/INC-0/evidence",
    ] {
        let m = if p.starts_with("/api/v1/incidents") || p.starts_with("/api/v1/evidence") {
            Method::GET
        } else if p.ends_with("rotate") {
            Method::POST
        } else {
            Method::DELETE
        };
        let body = if m == Method::POST { Some(json!({})) } else { None };
        let r = app.send(m, p, Some(&owner.token), body, &[]).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
    }
    // Hostile headers.
    let r = app.send(Method::GET, "/api/v1/auth/me", None, None, &[("authorization", "Basic YWRtaW46YWRtaW4=")]).await;
    r.problem(401, "unauthenticated");
    let r = app.send(Method::GET, "/api/v1/auth/me", None, None, &[("authorization", &format!("Bearer ick_{}", "a".repeat(5000)))]).await;
    assert_eq!(r.status, 401);

    // Nothing changed, and the server still serves.
    let list = app.get("/api/v1/incidents", &owner.token).await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert_eq!(usage.body["plan"], "enterprise");
    assert_eq!(app.get("/api/v1/organization", &owner.token).await.body["status"], "active");
    let e = app.get(&format!("/api/v1/evidence/{evd}"), &owner.token).await.expect(200);
    assert!(e.body["deleted_at"].is_null());
    let custody = app.get(&format!("/api/v1/evidence/{evd}/custody"), &owner.token).await.expect(200);
    assert_eq!(custody.body["items"].as_array().map(Vec::len), Some(1));
    let t = app.get(&format!("/api/v1/incidents/{inc}"), &owner.token).await.expect(200);
    assert_eq!(t.body["version"], 1);
    assert_eq!(app.get("/api/v1/members", &owner.token).await.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.get("/api/v1/api-keys", &owner.token).await.body["items"][0]["id"], key.as_str());
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
    assert_eq!(v.body["ok"], true);
    // Failed logins are audited (two bad-credential attempts never reach the
    // password check: malformed bodies are refused before), so the chain may
    // only have grown by audited events, never by a change.
    assert!(v.body["entries"].as_i64().expect("entries") >= before_audit);
    let changes = app.get("/api/v1/audit?outcome=success", &owner.token).await.expect(200);
    let since: Vec<&Value> =
        changes.body["items"].as_array().expect("items").iter().filter(|e| e["seq"].as_i64() > Some(before_audit)).collect();
    assert!(since.is_empty(), "a bad request changed something: {since:?}");
}

/// Multipart bodies for an upload: (content type, body, status, code).
fn bad_uploads() -> Vec<(String, Vec<u8>, u16, &'static str)> {
    let b = "bnd";
    let ct = format!("multipart/form-data; boundary={b}");
    let part = |name: &str, content: &str| format!("--{b}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{content}\r\n");
    let end = format!("--{b}--\r\n");
    let good_meta = r#"{"name":"a.txt","kind":"other"}"#;
    vec![
        ("application/json".into(), br#"{"name":"a.txt"}"#.to_vec(), 415, "unsupported_media_type"),
        ("multipart/form-data".into(), b"no boundary".to_vec(), 415, "unsupported_media_type"),
        (ct.clone(), format!("{}{end}", part("file", "abc")).into_bytes(), 400, "malformed_multipart"),
        (ct.clone(), format!("{}{end}", part("metadata", good_meta)).into_bytes(), 400, "malformed_multipart"),
        (ct.clone(), format!("{}{}{end}", part("metadata", good_meta), part("other", "x")).into_bytes(), 400, "malformed_multipart"),
        (
            ct.clone(),
            format!("{}{}{}{end}", part("metadata", good_meta), part("file", "x"), part("file", "y")).into_bytes(),
            400,
            "malformed_multipart",
        ),
        (
            ct.clone(),
            format!("{}{}", part("metadata", good_meta), "--bnd\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\ntruncated")
                .into_bytes(),
            400,
            "malformed_multipart",
        ),
        (ct.clone(), b"garbage without any boundary".to_vec(), 400, "malformed_multipart"),
        (ct.clone(), format!("{}{}{end}", part("metadata", "{\"name\": "), part("file", "x")).into_bytes(), 400, "malformed_json"),
        (
            ct.clone(),
            format!("{}{}{end}", part("metadata", &"x".repeat(70 * 1024)), part("file", "x")).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            ct.clone(),
            format!("{}{}{end}", part("metadata", r#"{"name":7,"kind":"photo","sha256":[],"extra":1}"#), part("file", "x")).into_bytes(),
            422,
            "validation_failed",
        ),
        (
            ct.clone(),
            format!("{}{}{end}", part("metadata", r#"{"name":"..","kind":"other","sha256":"abc"}"#), part("file", "x")).into_bytes(),
            422,
            "validation_failed",
        ),
        (
            ct.clone(),
            format!(
                "{}{}{end}",
                part("metadata", r#"{"name":"a","kind":"other","collected_at":"2999-01-01T00:00:00Z"}"#),
                part("file", "x")
            )
            .into_bytes(),
            422,
            "validation_failed",
        ),
    ]
}

#[tokio::test]
async fn evidence_uploads_reject_bad_input_cleanly() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "target").await.str("id");
    let path = format!("/api/v1/incidents/{inc}/evidence");
    for (ct, body, status, code) in bad_uploads() {
        let r = raw(&app, Method::POST, &path, Some(&owner.token), &ct, body.clone(), &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "{ct} {}: {}",
            String::from_utf8_lossy(&body[..body.len().min(120)]),
            r.body
        );
        r.problem(status, code);
    }
    let r = raw(
        &app,
        Method::POST,
        &path,
        Some(&owner.token),
        "multipart/form-data; boundary=bnd",
        b"--bnd\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{\"name\":7,\"kind\":\"photo\",\"extra\":1}\r\n--bnd--\r\n"
            .to_vec(),
        &[],
    )
    .await
    .problem(422, "validation_failed");
    let mut named: Vec<&str> = r.body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
    named.sort();
    assert_eq!(named, ["extra", "kind", "name"]);
    // Nothing was kept, and uploads still work.
    let list = app.get(&path, &owner.token).await.expect(200);
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(app.blob_files(), Vec::<std::path::PathBuf>::new());
    app.upload(&owner.token, &inc, json!({ "name": "ok.txt", "kind": "other" }), b"ok".to_vec()).await.expect(201);
}

/// The routes without a body (live updates, export) with hostile query
/// strings and headers: each refused cleanly, nothing opened or changed.
#[tokio::test]
async fn stream_and_export_routes_reject_bad_input_cleanly() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.incident(&owner, "target").await;
    let long_types = vec!["incident.created"; 40].join(",");
    for route in ["/api/v1/events/stream", "/api/v1/events/ws"] {
        for bad in
            ["?since=1e3", "?since=99999999999999999999", "?types=%00", &format!("?types={long_types}"), "?incident_id=inc_nope", "?x=1"]
        {
            let r = app.get(&format!("{route}{bad}"), &owner.token).await;
            assert!(matches!(r.status.as_u16(), 404 | 422), "{route}{bad}: {} {}", r.status, r.body);
            let (status, code) = if r.status == 404 { (404, "not_found") } else { (422, "validation_failed") };
            r.problem(status, code);
        }
    }
    let r = app.send(Method::GET, "/api/v1/events/stream", Some(&owner.token), None, &[("last-event-id", "-5")]).await;
    r.problem(422, "validation_failed");
    // A body where none is expected is not read; garbage in it changes nothing.
    let r = raw(&app, Method::POST, "/api/v1/events/ticket", Some(&owner.token), "application/json", b"\xff{".to_vec(), &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = raw(&app, Method::GET, "/api/v1/organization/export", None, "application/json", b"{}".to_vec(), &[]).await;
    r.problem(401, "unauthenticated");
    // Still serving, nothing held open.
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.lines().any(|l| l == "ironcase_live_subscribers 0"), "no stream left open");
    app.get("/api/v1/incidents", &owner.token).await.expect(200);
    app.shutdown().await;
}
