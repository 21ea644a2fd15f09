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
    // Dozens of bad bodies to the login routes from one address: their
    // limit per address is raised.
    let app = TestApp::spawn_with(|c| c.auth_address_limit = Some("100000/60".to_owned())).await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "target").await.str("id");
    let member = app.member(&owner, "m@example.com", "viewer", None).await;
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "viewer" })).await.expect(201).str("id");
    let evd = app.upload(&owner.token, &inc, json!({ "name": "e.txt", "kind": "other" }), b"evidence".to_vec()).await.expect(201).str("id");
    let org = app.get("/api/v1/organization", &owner.token).await.expect(200).str("id");
    let hook_body = json!({ "url": "https://93.184.215.14/h", "event_types": ["quota.exceeded"] });
    let hook = app.post("/api/v1/webhooks", &owner.token, hook_body).await.expect(201).str("id");
    let channel_body = json!({ "name": "c", "kind": "generic", "url": "https://93.184.215.14/c", "rules": [{ "event_types": ["*"] }] });
    let channel = app.post("/api/v1/notification-channels", &owner.token, channel_body).await.expect(201).str("id");
    let analyzer = app.post("/api/v1/analyzers", &owner.token, json!({ "name": "a", "url": "https://93.184.215.14/a" })).await;
    let analyzer = analyzer.expect(201).str("id");
    let ioc = app.post(&format!("/api/v1/incidents/{inc}/iocs"), &owner.token, json!({ "type": "domain", "value": "m.example" })).await;
    let ioc = ioc.expect(201).str("id");
    let alert_body = json!({ "source": "edr", "source_ref": "m-1", "type": "x", "title": "an alert", "severity": "low" });
    let alert = app.post("/api/v1/alerts", &owner.token, alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
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
        (Method::POST, "/api/v1/members".into(), json!({ "email": false, "name": 1, "role": 7 }), vec!["email", "name", "role"]),
        (Method::PATCH, format!("/api/v1/members/{}", member.id), json!({ "role": ["emperor"], "q": 1 }), vec!["role", "q"]),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            json!({ "name": [], "role": {}, "expires_at": "tomorrow" }),
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
        (Method::POST, "/api/v1/auth/mfa/verify".into(), json!({ "challenge": 1, "code": 2, "x": 1 }), vec!["challenge", "code", "x"]),
        (Method::POST, "/api/v1/auth/mfa/totp/confirm".into(), json!({ "code": 1, "y": 1 }), vec!["code", "y"]),
        (Method::POST, "/api/v1/auth/mfa/totp/disable".into(), json!({ "password": 1, "code": [], "z": 1 }), vec!["password", "code", "z"]),
        (Method::POST, "/api/v1/auth/mfa/backup-codes".into(), json!({ "code": {}, "w": 1 }), vec!["code", "w"]),
        (Method::PUT, "/api/v1/organization/mfa-policy".into(), json!({ "mfa_required": "yes", "x": 1 }), vec!["mfa_required", "x"]),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            json!({ "current_password": 1, "new_password": [], "x": 1 }),
            vec!["current_password", "new_password", "x"],
        ),
        (Method::POST, "/api/v1/auth/reauthenticate".into(), json!({ "password": 1, "code": 2, "x": 1 }), vec!["password", "code", "x"]),
        (
            Method::PUT,
            "/api/v1/organization/session-policy".into(),
            json!({ "idle_timeout_secs": "1", "absolute_timeout_secs": [], "x": 1 }),
            vec!["idle_timeout_secs", "absolute_timeout_secs", "x"],
        ),
        (
            Method::PUT,
            "/api/v1/organization/ip-allowlist".into(),
            json!({ "cidrs": "10.0.0.0/8", "confirm": 1, "x": 1 }),
            vec!["cidrs", "confirm", "x"],
        ),
        (
            Method::POST,
            "/api/v1/roles".into(),
            json!({ "name": 1, "base": "emperor", "grant": "all", "revoke": "none", "conditions": [], "x": 1 }),
            vec!["name", "base", "grant", "revoke", "conditions", "x"],
        ),
        (
            Method::PUT,
            "/api/v1/organization/sso".into(),
            json!({ "issuer": 1, "client_id": [], "role_mapping": [], "jit": "yes", "x": 1 }),
            vec!["issuer", "client_id", "role_mapping", "jit", "x"],
        ),
        (Method::POST, "/api/v1/auth/sso/token".into(), json!({ "code": 5, "x": 1 }), vec!["code", "x"]),
        (Method::POST, "/api/v1/auth/password-reset".into(), json!({ "email": 5, "x": 1 }), vec!["email", "x"]),
        (
            Method::POST,
            "/api/v1/auth/password-reset/confirm".into(),
            json!({ "token": [], "new_password": 1, "x": 1 }),
            vec!["token", "new_password", "x"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/api-keys/{key}"),
            json!({ "name": 5, "allowed_cidrs": "any", "public_key": [], "x": 1 }),
            vec!["name", "allowed_cidrs", "public_key", "x"],
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            json!({ "url": 5, "event_types": "all", "enabled": "yes", "x": 1 }),
            vec!["url", "event_types", "enabled", "x"],
        ),
        (Method::PATCH, format!("/api/v1/webhooks/{hook}"), json!({ "url": [], "enabled": 3, "y": 1 }), vec!["url", "enabled", "y"]),
        (
            Method::POST,
            format!("/api/v1/webhooks/{hook}/replay"),
            json!({ "message_id": 5, "since": "yesterday", "z": 1 }),
            vec!["message_id", "since", "z"],
        ),
        (
            Method::POST,
            "/api/v1/alerts".into(),
            json!({ "source": 1, "source_ref": [], "type": {}, "title": 2, "severity": "apocalyptic", "observables": "x", "q": 1 }),
            vec!["source", "source_ref", "type", "title", "severity", "observables", "q"],
        ),
        (Method::POST, "/api/v1/alerts/batch".into(), json!({ "alerts": {}, "w": 1 }), vec!["alerts", "w"]),
        (
            Method::POST,
            "/api/v1/notification-channels".into(),
            json!({ "name": 1, "kind": [], "url": 2, "rules": "all", "members": "yes", "max_tlp": "purple", "q": 1 }),
            vec!["name", "kind", "url", "rules", "members", "max_tlp", "q"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/notification-channels/{channel}"),
            json!({ "rules": [{ "event_types": "x", "severities": ["huge"] }], "enabled": 3, "y": 1 }),
            vec!["rules[0].event_types", "enabled", "y"],
        ),
        (
            Method::POST,
            "/api/v1/notification-channels/preview".into(),
            json!({ "kind": 1, "event_type": [], "template": {}, "z": 1 }),
            vec!["kind", "event_type", "template", "z"],
        ),
        (
            Method::POST,
            format!("/api/v1/notification-channels/{channel}/replay"),
            json!({ "message_id": 5, "since": "yesterday", "z": 1 }),
            vec!["message_id", "since", "z"],
        ),
        (
            Method::PUT,
            "/api/v1/auth/notifications".into(),
            json!({ "email": "yes", "event_types": 1, "only_assigned": [], "w": 1 }),
            vec!["email", "event_types", "only_assigned", "w"],
        ),
        (
            Method::POST,
            "/api/v1/analyzers".into(),
            json!({ "name": 1, "url": [], "ioc_types": ["shoe"], "max_tlp": 3, "x": 1 }),
            vec!["name", "url", "ioc_types[0]", "max_tlp", "x"],
        ),
        (Method::PATCH, format!("/api/v1/analyzers/{analyzer}"), json!({ "url": [], "enabled": 3, "y": 1 }), vec!["url", "enabled", "y"]),
        (
            Method::POST,
            format!("/api/v1/analyzers/{analyzer}/replay"),
            json!({ "message_id": 5, "since": "yesterday", "z": 1 }),
            vec!["message_id", "since", "z"],
        ),
        (Method::POST, format!("/api/v1/iocs/{ioc}/analyze"), json!({ "analyzers": "all", "q": 1 }), vec!["analyzers", "q"]),
        (
            Method::POST,
            format!("/api/v1/alerts/{alert}/promote"),
            json!({ "incident_id": 5, "severity": "huge", "category": 1, "v": 1 }),
            vec!["incident_id", "severity", "category", "v"],
        ),
        (Method::POST, format!("/api/v1/alerts/{alert}/dismiss"), json!({ "reason": [], "u": 1 }), vec!["reason", "u"]),
        (
            Method::PUT,
            "/api/v1/retention".into(),
            json!({ "policies": [{ "kind": "forever", "days": "ten" }], "t": 1 }),
            vec!["policies", "policies[0].days", "t"],
        ),
        (Method::POST, "/api/v1/retention/preview".into(), json!({ "policies": {}, "s": 1 }), vec!["policies", "s"]),
        (Method::PUT, "/api/v1/organization/audit-reads".into(), json!({ "enabled": 1, "q": 1 }), vec!["enabled", "q"]),
        (Method::POST, format!("/api/v1/admin/organizations/{org}/offboard"), json!({ "confirm": 7, "o": 1 }), vec!["confirm", "o"]),
        (
            Method::POST,
            "/api/v1/privacy/requests".into(),
            json!({ "type": "erase_everything", "subject": { "account_id": 5, "phone": "1" }, "n": 1 }),
            vec!["type", "subject", "n"],
        ),
        (
            Method::PUT,
            format!("/api/v1/incidents/{inc}/breach"),
            json!({ "aware_at": "yesterday", "regulator_notified_at": 5, "reference": [], "p": 1 }),
            vec!["aware_at", "regulator_notified_at", "reference", "p"],
        ),
        (Method::PUT, format!("/api/v1/incidents/{inc}/legal-hold"), json!({ "reason": 7, "r": 1 }), vec!["reason", "r"]),
        (Method::POST, format!("/api/v1/alerts/{alert}/snooze"), json!({ "until": "later", "t": 1 }), vec!["until", "t"]),
    ];
    let if_match = [("if-match", "\"1\"")];
    for (m, path, wrong, fields) in &endpoints {
        let anonymous = ["/auth/login", "/auth/refresh", "/auth/mfa/verify", "/auth/password-reset", "/auth/password-reset/confirm"]
            .iter()
            .any(|a| path.ends_with(a));
        let token = if anonymous { None } else { Some(owner.token.as_str()) };
        let h: &[(&str, &str)] = if *m == Method::PATCH { &if_match } else { &[] };
        let r = raw(&app, m.clone(), path, token, "application/json", b"{\"title\": ".to_vec(), h).await;
        r.problem(400, "malformed_json");
        // Never an object's fields from an array (serde would read a
        // struct from one) nor anything else that is not an object.
        for body in [&b"[1,2,3]"[..], b"[null, null]", b"[]", b"null", b"\"text\"", b" 7"] {
            let r = raw(&app, m.clone(), path, token, "application/json", body.to_vec(), h).await;
            r.problem(422, "validation_failed");
        }
        let r = raw(&app, m.clone(), path, token, "text/plain", b"{}".to_vec(), h).await;
        r.problem(415, "unsupported_media_type");
        // The alert batch has a limit of its own (16 MiB).
        let over = if path.ends_with("/alerts/batch") { 17 * 1024 * 1024 } else { 100 * 1024 };
        let huge = format!("{{\"title\": \"{}\"}}", "a".repeat(over));
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
    app.post("/api/v1/members", &owner.token, json!({ "email": "not-an-email", "role": "viewer" })).await.problem(422, "validation_failed");
    // A nested object given as an array of its fields.
    let r = app.post("/api/v1/roles", &owner.token, json!({ "name": "r", "base": "viewer", "conditions": [true, "red"] })).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], json!("conditions"));
    let org_body = json!({ "name": "N", "slug": "nested", "owner": ["o@example.com", "O", "correct horse battery staple"] });
    let r = app.post("/api/v1/admin/organizations", &owner.token, org_body).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], json!("owner"));
    // A role that is neither built in nor the organisation's own.
    for (m, path, body) in [
        (Method::POST, "/api/v1/members".to_owned(), json!({ "email": "g@example.com", "role": "god" })),
        (Method::PATCH, format!("/api/v1/members/{}", member.id), json!({ "role": "emperor" })),
        (Method::POST, "/api/v1/api-keys".to_owned(), json!({ "name": "k", "role": "root" })),
    ] {
        let r = app.send(m, &path, Some(&owner.token), Some(body), &[]).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], json!("role"), "{}", r.body);
    }
    let r = app.send(Method::POST, "/api/v1/invitations/accept", None, Some(json!({ "token": 1, "password": [] })), &[]).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"].as_array().map(Vec::len), Some(2));
    app.accept("ici_not-a-token", PASSWORD).await.problem(404, "not_found");
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
        // A typed parameter given empty is not left out.
        "limit=",
        "status=",
        "created_after=",
    ] {
        let r = app.get(&format!("/api/v1/incidents?{q}"), &owner.token).await;
        r.problem(422, "validation_failed");
    }
    for path in [
        format!("/api/v1/incidents/{inc}/timeline?limit="),
        format!("/api/v1/incidents/{inc}/similar?limit="),
        format!("/api/v1/webhooks/{hook}/attempts?outcome=maybe"),
        format!("/api/v1/webhooks/{hook}/attempts?cursor=x"),
        format!("/api/v1/webhooks/{hook}/messages?status=lost"),
        "/api/v1/webhooks?limit=0".to_owned(),
        format!("/api/v1/notification-channels/{channel}/attempts?outcome=maybe"),
        format!("/api/v1/notification-channels/{channel}/messages?status=lost"),
        "/api/v1/notification-channels?limit=0".to_owned(),
        format!("/api/v1/analyzers/{analyzer}/attempts?cursor=x"),
        format!("/api/v1/analyzers/{analyzer}/messages?status=lost"),
        "/api/v1/analyzers?cursor=x".to_owned(),
        "/api/v1/audit/proof/inclusion?seq=abc".to_owned(),
        "/api/v1/audit/proof/inclusion?size=2".to_owned(),
        "/api/v1/audit/proof/inclusion?seq=1&size=99999999".to_owned(),
        "/api/v1/audit/proof/consistency?from=%00".to_owned(),
        "/api/v1/audit/proof/consistency?from=1&to=x&y=1".to_owned(),
        "/api/v1/alerts?status=lost".to_owned(),
        "/api/v1/alerts?severity=huge".to_owned(),
        "/api/v1/alerts?cursor=x".to_owned(),
        "/api/v1/alerts?limit=500".to_owned(),
        "/api/v1/legal-holds?cursor=x".to_owned(),
        "/api/v1/legal-holds?limit=0".to_owned(),
        "/api/v1/breaches?open=maybe".to_owned(),
        "/api/v1/breaches?cursor=x".to_owned(),
        "/api/v1/privacy/requests?cursor=x".to_owned(),
    ] {
        app.get(&path, &owner.token).await.problem(422, "validation_failed");
    }
    // An empty cursor is the first page.
    app.get("/api/v1/incidents?cursor=", &owner.token).await.expect(200);
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
        "/api/v1/webhooks/nope",
        "/api/v1/notification-channels/nope",
        "/api/v1/analyzers/nope",
        "/api/v1/iocs/nope/reports",
        "/api/v1/evidence/nope",
        "/api/v1/evidence/evd_zz/content",
        "/api/v1/evidence/inc_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b/custody",
        "/api/v1/incidents/INC-0/evidence",
        "/api/v1/incidents/INC-0/legal-hold",
        "/api/v1/incidents/INC-0/breach",
        "/api/v1/compliance/nope",
        "/api/v1/privacy/requests/nope",
        "/api/v1/privacy/requests/dsr_zz/archive",
    ] {
        let m = if ["/api/v1/incidents", "/api/v1/evidence", "/api/v1/iocs", "/api/v1/compliance", "/api/v1/privacy"]
            .iter()
            .any(|x| p.starts_with(x))
        {
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
    app.get("/api/v1/alerts/nope", &owner.token).await.problem(404, "not_found");
    assert_eq!(app.get(&format!("/api/v1/alerts/{alert}"), &owner.token).await.expect(200).body["status"], "new");
    let h = app.get(&format!("/api/v1/webhooks/{hook}"), &owner.token).await.expect(200);
    assert_eq!((h.body["url"].clone(), h.body["enabled"].clone()), (json!("https://93.184.215.14/h"), json!(true)));
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
        // Well-formed bodies with the wrong parts, or in the wrong order.
        (ct.clone(), format!("{}{end}", part("file", "abc")).into_bytes(), 422, "parts_out_of_order"),
        (ct.clone(), format!("{}{}{end}", part("file", "abc"), part("metadata", good_meta)).into_bytes(), 422, "parts_out_of_order"),
        (ct.clone(), format!("{}{end}", part("metadata", good_meta)).into_bytes(), 422, "parts_out_of_order"),
        (ct.clone(), format!("{}{}{end}", part("metadata", good_meta), part("other", "x")).into_bytes(), 422, "parts_out_of_order"),
        (
            ct.clone(),
            format!("{}{}{}{end}", part("metadata", good_meta), part("file", "x"), part("file", "y")).into_bytes(),
            422,
            "parts_out_of_order",
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

/// A unique constraint that refuses a write under a race answers the same
/// stable code as the check before it, in words: no constraint, table or
/// column name in the body.
#[tokio::test]
async fn a_unique_conflict_names_what_was_taken_and_not_the_schema() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let tries = (0..8).map(|i| {
        app.post(
            "/api/v1/admin/organizations",
            &op.token,
            json!({ "name": "Race", "slug": "race", "owner": { "email": format!("o{i}@race.test"), "name": "O", "password": PASSWORD } }),
        )
    });
    let answers = futures::future::join_all(tries).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 1);
    for r in answers.into_iter().filter(|r| r.status != 201) {
        let text = r.body.to_string();
        r.problem(409, "slug_taken");
        for leak in ["constraint", "organization.slug", "organization_slug_key", "UNIQUE", "sql"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
    // Two invitations of one new address accepted at once: one account, the other told so in words.
    let (a, b) = (app.invite(&op, "dup@example.com", "analyst").await, app.invite(&op, "dup@example.com", "viewer").await);
    let answers = futures::future::join_all([app.accept(&a, PASSWORD), app.accept(&b, PASSWORD)]).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 1, "{answers:?}");
    for r in answers.into_iter().filter(|r| r.status != 201) {
        let text = r.body.to_string();
        assert!(["already_member", "email_taken"].contains(&r.code()) || r.status == 401, "{text}");
        assert!(!text.contains("constraint") && !text.contains("account.email") && !text.contains("_key"), "{text}");
    }
}

/// Arbitrary Unicode in every path parameter and every query parameter of
/// every route the OpenAPI document lists: never a 5xx, never a dropped
/// connection (a byte-index slice inside a character used to panic and drop
/// it, for any non-ASCII incident reference).
#[tokio::test]
async fn arbitrary_unicode_in_any_parameter_is_a_clean_answer() {
    use proptest::strategy::{Strategy, ValueTree};
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "fuzzed").await.str("id");
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200).body;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut samples: Vec<String> = [
        "abc\u{e9}",
        "INC-\u{e9}",
        "inc-1\u{1F600}",
        "\u{202e}",
        "a\u{0}",
        "%",
        "%zz",
        "../..",
        "~",
        "\u{10FFFF}",
        "INC-00",
        "-1",
        "9".repeat(30).as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..12 {
        samples.push(proptest::arbitrary::any::<String>().new_tree(&mut runner).expect("a string").current());
    }
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().expect("client");
    let mut sent = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let params: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| (p["name"].as_str().unwrap_or(""), p["in"].as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            if !params.iter().any(|(_, at)| *at == "path" || *at == "query") {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            for (i, sample) in samples.iter().enumerate() {
                // Each path parameter, then each query parameter, takes the sample in turn.
                for (name, at) in params.iter().filter(|(_, at)| *at == "path" || *at == "query") {
                    let mut url = reqwest::Url::parse(&app.url("/")).expect("base");
                    {
                        let mut segs = url.path_segments_mut().expect("segments");
                        segs.clear();
                        for seg in path.trim_start_matches('/').split('/') {
                            let value = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                                Some(p) if *at == "path" && p == *name => sample.as_str(),
                                Some(_) => inc.as_str(),
                                None => seg,
                            };
                            segs.push(value);
                        }
                    }
                    if *at == "query" {
                        url.query_pairs_mut().append_pair(name, sample);
                    }
                    let mut rb = client.request(method.clone(), url.clone()).bearer_auth(&owner.token);
                    if method != Method::GET && method != Method::DELETE {
                        rb = rb.header("content-type", "application/json").body("{}");
                    }
                    if method == Method::PATCH {
                        rb = rb.header("if-match", "\"0\"");
                    }
                    let res = rb.send().await.unwrap_or_else(|e| panic!("{method} {url} (sample {i}): no answer: {e}"));
                    assert!(res.status().as_u16() < 500, "{method} {url} (sample {i}): {}", res.status());
                    sent += 1;
                }
            }
        }
    }
    assert!(sent > 500, "only {sent} requests");
    // Still serving, and the incident is as it was.
    assert_eq!(app.get(&format!("/api/v1/incidents/{inc}"), &owner.token).await.expect(200).body["title"], "fuzzed");
}

/// HTTP as RFC 9110 has it, and what every answer tells a browser.
#[tokio::test]
async fn http_details_and_security_headers() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "details").await.str("id");
    let path = format!("/api/v1/incidents/{inc}");

    // If-Match: a weak tag never matches; `*` matches whatever is current; a list matches any of its tags.
    app.patch(&path, &owner.token, json!({ "severity": "low" }), Some("W/\"1\"")).await.problem(412, "version_conflict");
    let r = app.patch(&path, &owner.token, json!({ "severity": "low" }), Some("*")).await.expect(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    app.patch(&path, &owner.token, json!({ "severity": "medium" }), Some("\"7\", \"2\"")).await.expect(200);
    app.patch(&path, &owner.token, json!({ "severity": "high" }), Some("\"2\"")).await.problem(412, "version_conflict");

    // The Bearer scheme in any case.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {}", owner.token);
        app.send(Method::GET, "/api/v1/auth/me", None, None, &[("authorization", auth.as_str())]).await.expect(200);
    }
    app.send(Method::GET, "/api/v1/auth/me", None, None, &[("authorization", "Basic abc")]).await.problem(401, "unauthenticated");

    // A NUL in a search is a query error, not a 500.
    let r = app.get("/api/v1/search?q=a%00", &owner.token).await.problem(400, "invalid_query");
    assert_eq!(r.body["position"], 1);
    // No text holds a NUL (PostgreSQL could not store it): in a body or a parameter, the field is named.
    let r = app.post(&format!("{path}/comments"), &owner.token, json!({ "body": "a\u{0}b" })).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "body");
    let r = app.post(&format!("{path}/iocs"), &owner.token, json!({ "type": "domain", "value": "x", "tags": ["t\u{0}"] })).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], "tags[0]");
    let r = app.get("/api/v1/audit?action=a%00", &owner.token).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "action");

    // Text-direction and zero-width characters: refused in titles and names, dropped from file names.
    for title in ["\u{202e}txt.exe", "in\u{200b}voice", "\u{2066}x\u{2069}", "\u{feff}bom"] {
        let r = app.post("/api/v1/incidents", &owner.token, json!({ "title": title, "severity": "low", "category": "other" })).await;
        assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], "title");
    }
    let ev = app.upload(&owner.token, &inc, json!({ "name": "invoice\u{202e}fdp.exe", "kind": "other" }), b"x".to_vec()).await.expect(201);
    assert_eq!(ev.body["name"], "invoicefdp.exe");

    // Every answer: no sniffing, no framing, no scripts, no referrer; API answers are not kept by caches.
    let login = app.login_raw("admin@localhost", &app.admin_password.clone(), None).await.expect(200);
    assert_eq!(login.header("cache-control"), Some("no-store"), "a token answer");
    for (path, token) in [("/api/v1/auth/me", Some(owner.token.as_str())), ("/api/v1/nowhere", None), ("/healthz", None)] {
        let r = app.send(Method::GET, path, token, None, &[]).await;
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let docs = app.client.get(app.url("/docs/")).send().await.expect("docs");
    let csp = docs.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(docs.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
}
