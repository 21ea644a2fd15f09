//! Two organisations: every endpoint, given the other's ids, answers 404 and
//! changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// Method, path, body, headers.
type Attempt = (Method, String, Option<serde_json::Value>, Vec<(&'static str, &'static str)>);

#[tokio::test]
async fn another_tenants_objects_are_404_everywhere() {
    let app = TestApp::spawn().await;
    let a = app.admin().await;
    let (_, b) = app.org(&a, "beta").await;
    let b_inc = app.incident(&b, "beta secret").await;
    let b_inc_id = b_inc.str("id");
    let b_member = app.member(&b, "m@beta.test", "analyst", Some("beta")).await;
    let b_key = app.post("/api/v1/api-keys", &b.token, json!({ "name": "b", "role": "viewer" })).await.expect(201);
    let b_key_id = b_key.str("id");
    let b_role = app.post("/api/v1/roles", &b.token, json!({ "name": "b-role", "base": "viewer" })).await.expect(201).str("id");
    let b_key_secret = b_key.str("key");
    let b_hook = app
        .post("/api/v1/webhooks", &b.token, json!({ "url": "https://93.184.215.14/beta", "event_types": ["quota.exceeded"] }))
        .await
        .expect(201)
        .str("id");
    let hook = format!("/api/v1/webhooks/{b_hook}");
    let b_channel_body =
        json!({ "name": "beta", "kind": "generic", "url": "https://93.184.215.14/chan", "rules": [{ "event_types": ["*"] }] });
    let b_channel = app.post("/api/v1/notification-channels", &b.token, b_channel_body).await.expect(201).str("id");
    let channel = format!("/api/v1/notification-channels/{b_channel}");
    let b_analyzer_body = json!({ "name": "beta", "url": "https://93.184.215.14/analyze" });
    let b_analyzer = app.post("/api/v1/analyzers", &b.token, b_analyzer_body).await.expect(201).str("id");
    let analyzer = format!("/api/v1/analyzers/{b_analyzer}");
    let b_alert_body = json!({ "source": "edr", "source_ref": "b-1", "type": "x", "title": "beta alert", "severity": "low" });
    let b_alert = app.post("/api/v1/alerts", &b.token, b_alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let alert = format!("/api/v1/alerts/{b_alert}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    let tomorrow = ironcase_domain::Timestamp(now_ms + 86_400_000).to_rfc3339();
    let b_ioc = app
        .post(&format!("/api/v1/incidents/{b_inc_id}/iocs"), &b.token, json!({ "type": "domain", "value": "beta-only.example" }))
        .await
        .expect(201)
        .str("id");

    let b_evd = app
        .upload(
            &b.token,
            &b_inc_id,
            json!({ "name": "beta.pcap", "kind": "network_capture", "description": "beta capture" }),
            b"pcap".to_vec(),
        )
        .await
        .expect(201)
        .str("id");
    let evd = format!("/api/v1/evidence/{b_evd}");
    let b_org = app.get("/api/v1/organization", &b.token).await.expect(200).str("id");
    let b_session =
        app.get("/api/v1/auth/sessions", &b_member.token).await.expect(200).body["items"][0]["id"].as_str().expect("a session").to_owned();
    let inc = format!("/api/v1/incidents/{b_inc_id}");
    app.put_json(&format!("{inc}/legal-hold"), &b.token, json!({ "reason": "beta matter" })).await.expect(200);
    app.put_json(&format!("{inc}/breach"), &b.token, json!({})).await.expect(200);
    app.put_json("/api/v1/retention", &b.token, json!({ "policies": [{ "kind": "alerts", "days": 1 }] })).await.expect(200);
    let b_dsr = app
        .post("/api/v1/privacy/requests", &b.token, json!({ "type": "access", "subject": { "account_id": b_member.id } }))
        .await
        .expect(201)
        .str("id");
    let attempts: Vec<Attempt> = vec![
        (Method::GET, format!("{inc}/legal-hold"), None, vec![]),
        (Method::PUT, format!("{inc}/legal-hold"), Some(json!({ "reason": "pwned" })), vec![]),
        (Method::DELETE, format!("{inc}/legal-hold"), None, vec![]),
        (Method::GET, format!("{inc}/breach"), None, vec![]),
        (Method::GET, format!("/api/v1/privacy/requests/{b_dsr}"), None, vec![]),
        (Method::GET, format!("/api/v1/privacy/requests/{b_dsr}/archive"), None, vec![]),
        (
            Method::POST,
            "/api/v1/privacy/requests".into(),
            Some(json!({ "type": "access", "subject": { "account_id": b_member.id } })),
            vec![],
        ),
        (Method::PUT, format!("{inc}/breach"), Some(json!({ "reference": "pwned" })), vec![]),
        (Method::DELETE, format!("{inc}/breach"), None, vec![]),
        (Method::GET, inc.clone(), None, vec![]),
        (Method::PATCH, inc.clone(), Some(json!({ "title": "pwned" })), vec![("if-match", "\"1\"")]),
        (Method::DELETE, inc.clone(), None, vec![]),
        (Method::POST, format!("{inc}/comments"), Some(json!({ "body": "pwned" })), vec![]),
        (Method::GET, format!("{inc}/timeline"), None, vec![]),
        (Method::PATCH, format!("/api/v1/members/{}", b_member.id), Some(json!({ "role": "viewer" })), vec![]),
        (Method::DELETE, format!("/api/v1/members/{}", b_member.id), None, vec![]),
        (Method::DELETE, format!("/api/v1/api-keys/{b_key_id}"), None, vec![]),
        (Method::POST, format!("/api/v1/api-keys/{b_key_id}/rotate"), Some(json!({})), vec![]),
        (Method::GET, format!("/api/v1/roles/{b_role}"), None, vec![]),
        (Method::PATCH, format!("/api/v1/roles/{b_role}"), Some(json!({ "name": "pwned", "base": "viewer" })), vec![]),
        (Method::DELETE, format!("/api/v1/roles/{b_role}"), None, vec![]),
        (Method::PATCH, format!("/api/v1/api-keys/{b_key_id}"), Some(json!({ "allowed_cidrs": ["0.0.0.0/0"] })), vec![]),
        (Method::POST, format!("{inc}/iocs"), Some(json!({ "type": "domain", "value": "pwned.example" })), vec![]),
        (Method::GET, format!("{inc}/iocs"), None, vec![]),
        (Method::GET, format!("{inc}/similar"), None, vec![]),
        (Method::DELETE, format!("{inc}/iocs/{b_ioc}"), None, vec![]),
        (Method::POST, format!("{inc}/iocs/extract"), Some(json!({ "text": "pwned.example", "save": true })), vec![]),
        (Method::GET, format!("{inc}/evidence"), None, vec![]),
        (Method::GET, evd.clone(), None, vec![]),
        (Method::GET, format!("{evd}/content"), None, vec![]),
        (Method::GET, format!("{evd}/custody"), None, vec![]),
        (Method::POST, format!("{evd}/custody"), Some(json!({ "action": "transferred", "to": "x", "reason": "pwned" })), vec![]),
        (Method::DELETE, evd.clone(), Some(json!({ "reason": "pwned" })), vec![]),
        (Method::GET, format!("/api/v1/organizations/{b_org}/incidents"), None, vec![]),
        (Method::GET, format!("/api/v1/organizations/{b_org}/incidents/{b_inc_id}"), None, vec![]),
        (Method::GET, format!("/api/v1/organizations/{b_org}/incidents/{b_inc_id}/evidence"), None, vec![]),
        (Method::GET, format!("/api/v1/organizations/{b_org}/audit"), None, vec![]),
        (Method::GET, format!("/api/v1/events/stream?incident_id={b_inc_id}"), None, vec![]),
        (Method::GET, format!("/api/v1/events/ws?incident_id={b_inc_id}"), None, vec![]),
        (Method::DELETE, format!("/api/v1/members/{}/mfa", b_member.id), None, vec![]),
        (Method::POST, format!("/api/v1/members/{}/password-reset", b_member.id), Some(json!({})), vec![]),
        (Method::GET, format!("/api/v1/members/{}/sessions", b_member.id), None, vec![]),
        (Method::DELETE, format!("/api/v1/members/{}/sessions", b_member.id), None, vec![]),
        (Method::DELETE, format!("/api/v1/auth/sessions/{b_session}"), None, vec![]),
        (Method::GET, hook.clone(), None, vec![]),
        (Method::PATCH, hook.clone(), Some(json!({ "url": "https://93.184.215.14/pwned" })), vec![]),
        (Method::POST, format!("{hook}/test"), Some(json!({})), vec![]),
        (Method::POST, format!("{hook}/rotate-secret"), Some(json!({})), vec![]),
        (Method::POST, format!("{hook}/replay"), Some(json!({})), vec![]),
        (Method::GET, format!("{hook}/attempts"), None, vec![]),
        (Method::GET, format!("{hook}/messages"), None, vec![]),
        (Method::DELETE, hook.clone(), None, vec![]),
        (Method::GET, channel.clone(), None, vec![]),
        (Method::PATCH, channel.clone(), Some(json!({ "name": "pwned" })), vec![]),
        (Method::GET, format!("{channel}/attempts"), None, vec![]),
        (Method::GET, format!("{channel}/messages"), None, vec![]),
        (Method::POST, format!("{channel}/replay"), Some(json!({})), vec![]),
        (Method::DELETE, channel.clone(), None, vec![]),
        (Method::GET, analyzer.clone(), None, vec![]),
        (Method::PATCH, analyzer.clone(), Some(json!({ "name": "pwned" })), vec![]),
        (Method::GET, format!("{analyzer}/attempts"), None, vec![]),
        (Method::GET, format!("{analyzer}/messages"), None, vec![]),
        (Method::POST, format!("{analyzer}/replay"), Some(json!({})), vec![]),
        (Method::DELETE, analyzer.clone(), None, vec![]),
        (Method::POST, format!("/api/v1/iocs/{b_ioc}/analyze"), Some(json!({})), vec![]),
        (Method::GET, format!("/api/v1/iocs/{b_ioc}/reports"), None, vec![]),
        (Method::GET, alert.clone(), None, vec![]),
        (Method::POST, format!("{alert}/promote"), Some(json!({})), vec![]),
        (Method::POST, format!("{alert}/dismiss"), Some(json!({ "reason": "pwned" })), vec![]),
        (Method::POST, format!("{alert}/snooze"), Some(json!({ "until": tomorrow })), vec![]),
        (Method::POST, format!("{alert}/acknowledge"), Some(json!({})), vec![]),
    ];
    for (m, path, body, headers) in &attempts {
        let r = app.send(m.clone(), path, Some(&a.token), body.clone(), headers).await;
        assert_eq!(r.status, 404, "{m} {path}: {}", r.body);
        assert_eq!(r.code(), "not_found");
    }
    app.upload(&a.token, &b_inc_id, json!({ "name": "x", "kind": "other" }), b"pwned".to_vec()).await.problem(404, "not_found");
    // Lists and filters show nothing of the other tenant.
    let list = app.get("/api/v1/incidents?limit=200", &a.token).await.expect(200);
    assert!(!list.body.to_string().contains(&b_inc_id));
    let audit = app.get(&format!("/api/v1/audit?resource_id={b_inc_id}"), &a.token).await.expect(200);
    assert_eq!(audit.body["items"], json!([]));
    let export = app.client.get(app.url("/api/v1/organization/export")).bearer_auth(&a.token).send().await.expect("export");
    assert_eq!(export.status(), 200);
    assert!(!export.text().await.expect("body").contains(&b_inc_id), "an export holds only the caller's organisation");
    let found = app.get("/api/v1/search?q=beta", &a.token).await.expect(200);
    assert_eq!(found.body["total"], 0, "{}", found.body);
    let found = app.get("/api/v1/search?q=capture", &a.token).await.expect(200);
    assert_eq!(found.body["total"], 0);
    let found = app.get("/api/v1/search?q=ioc:beta-only.example", &a.token).await.expect(200);
    assert_eq!(found.body["total"], 0);
    assert_eq!(app.get("/api/v1/search?q=beta", &b.token).await.body["total"], 1);
    let iocs = app.get("/api/v1/iocs?value=beta-only.example", &a.token).await.expect(200);
    assert_eq!(iocs.body["items"], json!([]));
    // Usage is the caller's own organisation's; an owner of beta cannot change plans or status.
    let usage = app.get("/api/v1/organization/usage", &b.token).await.expect(200);
    assert_eq!(
        usage.body["quotas"].as_array().and_then(|q| q.iter().find(|q| q["quota"] == "incidents_per_month")).map(|q| q["used"].clone()),
        Some(json!(1))
    );
    let a_org = app.get("/api/v1/organization", &a.token).await.expect(200).str("id");
    app.send(Method::PUT, &format!("/api/v1/admin/organizations/{a_org}/plan"), Some(&b.token), Some(json!({ "plan": "free" })), &[])
        .await
        .problem(403, "forbidden");
    app.send(Method::PATCH, &format!("/api/v1/admin/organizations/{a_org}"), Some(&b.token), Some(json!({ "status": "suspended" })), &[])
        .await
        .problem(403, "forbidden");
    app.post(&format!("/api/v1/admin/organizations/{a_org}/offboard"), &b.token, json!({ "confirm": "default" }))
        .await
        .problem(403, "forbidden");
    let members = app.get("/api/v1/members", &a.token).await.expect(200);
    assert!(!members.body.to_string().contains(&b_member.id));
    let keys = app.get("/api/v1/api-keys", &a.token).await.expect(200);
    assert!(!keys.body.to_string().contains(&b_key_id));
    assert_eq!(app.get("/api/v1/webhooks", &a.token).await.expect(200).body["items"], json!([]));
    // Holds and retention are each organisation's own.
    assert_eq!(app.get("/api/v1/legal-holds", &a.token).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get("/api/v1/breaches", &a.token).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get("/api/v1/privacy/requests", &a.token).await.expect(200).body["items"], json!([]));
    app.get(&format!("/api/v1/privacy/requests/{b_dsr}/archive"), &b.token).await.expect(200);
    assert_eq!(app.get(&format!("{inc}/breach"), &b.token).await.expect(200).body["reference"], json!(null));
    assert_eq!(app.get(&format!("{inc}/legal-hold"), &b.token).await.expect(200).body["reason"], "beta matter");
    let mine = app.get("/api/v1/retention", &a.token).await.expect(200);
    assert!(mine.body["policies"].as_array().expect("policies").iter().all(|p| p["days"].is_null()), "{}", mine.body);
    let preview =
        app.post("/api/v1/retention/preview", &a.token, json!({ "policies": [{ "kind": "alerts", "days": 1 }] })).await.expect(200);
    assert!(preview.body["kinds"].as_array().expect("kinds").iter().all(|k| k["count"] == 0), "{}", preview.body);
    assert_eq!(app.get("/api/v1/notification-channels", &a.token).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get("/api/v1/analyzers", &a.token).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get(&channel, &b.token).await.expect(200).body["name"], "beta", "untouched");
    assert_eq!(app.get(&analyzer, &b.token).await.expect(200).body["name"], "beta", "untouched");
    assert_eq!(app.get("/api/v1/alerts", &a.token).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get(&alert, &b.token).await.expect(200).body["status"], "new", "untouched");
    // Their alert promoted into our incident, or ours into theirs: neither exists for the other.
    let a_alert_body = json!({ "source": "edr", "source_ref": "a-1", "type": "x", "title": "alpha alert", "severity": "low" });
    let a_alert = app.post("/api/v1/alerts", &a.token, a_alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/alerts/{a_alert}/promote"), &a.token, json!({ "incident_id": b_inc_id })).await.problem(404, "not_found");
    assert_eq!(app.get(&hook, &b.token).await.expect(200).body["url"], "https://93.184.215.14/beta", "unchanged");
    // INC-1 names a different incident in each organisation.
    let a_inc = app.incident(&a, "alpha").await;
    assert_eq!(a_inc.body["number"], "INC-1");
    assert_eq!(app.get("/api/v1/incidents/INC-1", &a.token).await.body["title"], "alpha");
    assert_eq!(app.get("/api/v1/incidents/INC-1", &b.token).await.body["title"], "beta secret");
    // The other way round, with an API key.
    let r = app.get(&format!("/api/v1/incidents/{}", a_inc.str("id")), &b_key_secret).await;
    r.problem(404, "not_found");
    // Their analyzer, named on our indicator, is no analyzer of ours.
    let a_iocs = format!("/api/v1/incidents/{}/iocs", a_inc.str("id"));
    let a_ioc = app.post(&a_iocs, &a.token, json!({ "type": "domain", "value": "alpha.example" })).await.expect(201).str("id");
    let r = app.post(&format!("/api/v1/iocs/{a_ioc}/analyze"), &a.token, json!({ "analyzers": [b_analyzer] })).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], "analyzers[0]");

    // Nothing of beta changed.
    let still = app.get(&inc, &b.token).await.expect(200);
    assert_eq!(still.body["title"], "beta secret");
    assert_eq!(still.body["version"], 1);
    let tl = app.get(&format!("{inc}/timeline"), &b.token).await.expect(200);
    assert_eq!(
        tl.body["items"].as_array().map(Vec::len),
        Some(4),
        "created, ioc.added, evidence.added, breach_flagged; nothing from alpha"
    );
    let custody = app.get(&format!("{evd}/custody"), &b.token).await.expect(200);
    assert_eq!(custody.body["items"].as_array().map(Vec::len), Some(1), "only the upload");
    let (status, _, bytes) = app.download(&b.token, &b_evd).await;
    assert_eq!((status.as_u16(), bytes), (200, b"pcap".to_vec()));
    let b_iocs = app.get(&format!("{inc}/iocs"), &b.token).await.expect(200);
    assert_eq!(b_iocs.body["items"].as_array().map(Vec::len), Some(1));
    app.get("/api/v1/auth/me", &b_member.token).await.expect(200);
    app.get("/api/v1/auth/me", &b_key_secret).await.expect(200);
    assert_eq!(app.get("/api/v1/members", &b.token).await.body["items"].as_array().map(Vec::len), Some(2));
}
