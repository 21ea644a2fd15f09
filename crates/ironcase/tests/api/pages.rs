//! Every list pages through one page type: walking every page of a
//! collection larger than the largest page, at the largest page, finds each
//! item exactly once (a list that lost the rows past its clamp answered a
//! full page and no cursor).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Every item of the list at `path`, page by page at `limit`, by `key`.
/// Fails on an item seen twice.
async fn walk(app: &TestApp, token: &str, path: &str, limit: u32, key: impl Fn(&Value) -> String) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (mut seen, mut all, mut cursor, mut pages) = (HashSet::new(), Vec::new(), None::<String>, 0);
    loop {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            // Cursors are made of unreserved characters only.
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "{path}: cursor {c:?}");
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, token).await.expect(200);
        let items = r.body["items"].as_array().unwrap_or_else(|| panic!("no items in {}", r.body)).clone();
        assert!(items.len() <= limit as usize, "{path}: a page of {} for limit {limit}", items.len());
        for item in &items {
            let k = key(item);
            assert!(seen.insert(k.clone()), "{path}: {k} served twice");
            all.push(k);
        }
        pages += 1;
        assert!(pages < 50, "{path}: more pages than items");
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert!(!items.is_empty(), "{path}: an empty page with a cursor");
                cursor = Some(c.to_owned());
            }
            None => return all,
        }
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// The largest page of incident lists, audit lists and organisation lists.
const MAX: u32 = 200;

#[tokio::test]
async fn every_list_walks_past_its_largest_page() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let org_id = app.get("/api/v1/organization", &op.token).await.expect(200).str("id");
    let n = MAX as usize + 6;
    let mut made = HashSet::new();
    for i in 0..n {
        made.insert(app.incident(&op, &format!("paged alpha {i}")).await.str("id"));
    }

    // Incidents, in every order.
    for sort in ["-created_at", "created_at", "-updated_at", "updated_at"] {
        let got = walk(&app, &op.token, &format!("/api/v1/incidents?sort={sort}"), MAX, id).await;
        assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), made, "sort {sort}");
    }
    // A page size that does not divide the collection.
    assert_eq!(walk(&app, &op.token, "/api/v1/incidents", 7, id).await.len(), n);
    // Search (its pages are counted: the total is known).
    let got = walk(&app, &op.token, "/api/v1/search?q=alpha", 100, |h| id(&h["incident"])).await;
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), made);

    // The audit log: one entry per create, and the login's.
    let seqs = walk(&app, &op.token, "/api/v1/audit", MAX, |e| e["seq"].to_string()).await;
    assert!(seqs.len() > n, "{} audit entries", seqs.len());
    let numbers: Vec<i64> = seqs.iter().map(|s| s.parse().expect("seq")).collect();
    assert!(numbers.windows(2).all(|w| w[0] == w[1] + 1), "audit pages skip or repeat entries");
    assert_eq!(numbers.last(), Some(&1));

    // Organisations (operators) and children (the parent's owners): more
    // than a page of children of `default`, owned by the operator's account.
    let mut children = HashSet::new();
    for i in 0..(MAX as usize + 1) {
        let r = app
            .post(
                "/api/v1/admin/organizations",
                &op.token,
                json!({ "name": format!("Child {i}"), "slug": format!("child-{i}"), "parent_id": org_id,
                        "owner": { "email": "admin@localhost", "name": "Admin" } }),
            )
            .await
            .expect(201);
        children.insert(r.str("id"));
    }
    let got = walk(&app, &op.token, "/api/v1/organization/children", MAX, |c| id(&c["organization"])).await;
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), children);
    let all = walk(&app, &op.token, "/api/v1/admin/organizations", MAX, id).await;
    assert_eq!(all.len(), children.len() + 1);
    assert!(children.iter().all(|c| all.contains(c)) && all.contains(&org_id));

    // A child's incidents and audit log, read by its parent.
    let kid = app.get("/api/v1/admin/organizations?limit=2", &op.token).await.expect(200).body["items"][1]["id"]
        .as_str()
        .expect("the first child")
        .to_owned();
    assert!(children.contains(&kid));
    let kid_owner = app.login("admin@localhost", &app.admin_password.clone(), Some("child-0")).await;
    app.send(Method::PUT, "/api/v1/organization/parent-access", Some(&kid_owner.token), Some(json!({ "granted": true })), &[])
        .await
        .expect(200);
    let mut kid_made = HashSet::new();
    for i in 0..n {
        kid_made.insert(app.incident(&kid_owner, &format!("kid {i}")).await.str("id"));
    }
    let got = walk(&app, &op.token, &format!("/api/v1/organizations/{kid}/incidents"), MAX, id).await;
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), kid_made);
    let seqs = walk(&app, &op.token, &format!("/api/v1/organizations/{kid}/audit"), MAX, |e| e["seq"].to_string()).await;
    assert!(seqs.len() > n, "{} child audit entries", seqs.len());

    // Past the largest page is the documented 422, naming the parameter.
    for path in ["/api/v1/incidents", "/api/v1/audit", "/api/v1/admin/organizations", "/api/v1/organization/children"] {
        let r = app.get(&format!("{path}?limit={}", MAX + 1), &op.token).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "limit");
    }
}

#[tokio::test]
async fn members_keys_and_invitations_walk_past_their_largest_page() {
    // Accepting is limited per address as login is (30 a minute): raised here.
    let app = TestApp::spawn_with(|c| c.auth_address_limit = Some("100000/60".to_owned())).await;
    let owner = app.admin().await;
    let n = MAX as usize + 1;
    let mut keys = HashSet::new();
    let mut invited = HashSet::new();
    for i in 0..n {
        let k = app.post("/api/v1/api-keys", &owner.token, json!({ "name": format!("k{i}"), "role": "viewer" })).await.expect(201);
        keys.insert(k.str("id"));
        let inv = app.post("/api/v1/members", &owner.token, json!({ "email": format!("m{i}@example.com"), "role": "viewer" })).await;
        invited.insert(inv.expect(201).body["invitation"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(walk(&app, &owner.token, "/api/v1/api-keys", MAX, id).await.into_iter().collect::<HashSet<_>>(), keys);
    assert_eq!(walk(&app, &owner.token, "/api/v1/invitations", MAX, id).await.into_iter().collect::<HashSet<_>>(), invited);
    // Members: accepted invitations (each makes an account, so the slowest part of the suite's setup).
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        for i in 0..n {
            t.push(app.invite(&owner, &format!("member{i}@example.com"), "viewer").await);
        }
        t
    };
    for chunk in tokens.chunks(8) {
        for r in futures::future::join_all(chunk.iter().map(|t| app.accept(t, PASSWORD))).await {
            r.expect(201);
        }
    }
    let members = walk(&app, &owner.token, "/api/v1/members", MAX, |m| m["user_id"].as_str().expect("user_id").to_owned()).await;
    assert_eq!(members.len(), n + 1, "the invited and the owner");
}

#[tokio::test]
async fn a_members_sessions_walk_past_their_largest_page() {
    // One account logging in again and again from one address: the login
    // throttles are raised.
    let app = TestApp::spawn_with(|c| {
        c.login_limit = Some("100000/60".to_owned());
        c.auth_address_limit = Some("100000/60".to_owned());
    })
    .await;
    let owner = app.admin().await;
    let u = app.member(&owner, "busy@example.com", "analyst", None).await;
    for _ in 0..MAX {
        app.login_raw("busy@example.com", PASSWORD, None).await.expect(200);
    }
    let own = walk(&app, &u.token, "/api/v1/auth/sessions", MAX, id).await;
    assert_eq!(own.iter().collect::<HashSet<_>>().len(), MAX as usize + 1);
    let seen_by_owner = walk(&app, &owner.token, &format!("/api/v1/members/{}/sessions", u.id), MAX, id).await;
    assert_eq!(seen_by_owner.into_iter().collect::<HashSet<_>>(), own.into_iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn an_incidents_timeline_and_an_evidences_custody_walk_past_their_largest_page() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "busy").await.str("id");
    let evd = app.upload(&owner.token, &inc, json!({ "name": "e.txt", "kind": "other" }), b"evidence".to_vec()).await.expect(201).str("id");
    for i in 0..MAX {
        app.post(&format!("/api/v1/incidents/{inc}/comments"), &owner.token, json!({ "body": format!("note {i}") })).await.expect(201);
        let (status, _, _) = app.download(&owner.token, &evd).await;
        assert_eq!(status, 200);
    }
    let seq = |v: &Value| v["id"].to_string();
    let events = walk(&app, &owner.token, &format!("/api/v1/incidents/{inc}/timeline"), MAX, seq).await;
    assert_eq!(events.len(), MAX as usize + 2, "created, evidence added, and every comment");
    let numbers: Vec<i64> = events.iter().map(|s| s.parse().expect("event id")).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let steps = walk(&app, &owner.token, &format!("/api/v1/evidence/{evd}/custody"), MAX, |c| c["seq"].to_string()).await;
    assert_eq!(steps.len(), MAX as usize + 1, "the upload and every download");
}

#[tokio::test]
async fn an_incidents_evidence_walks_past_its_largest_page() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "many files").await.str("id");
    let mut made = HashSet::new();
    for i in 0..=MAX {
        let e = app.upload(&owner.token, &inc, json!({ "name": format!("f{i}.txt"), "kind": "other" }), vec![b'x'; 16]).await;
        made.insert(e.expect(201).str("id"));
    }
    let got = walk(&app, &owner.token, &format!("/api/v1/incidents/{inc}/evidence"), MAX, id).await;
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), made);
}

#[tokio::test]
async fn an_incidents_indicators_walk_past_their_largest_page_within_a_keys_tlp() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let body = json!({ "title": "noisy", "severity": "low", "category": "other", "tlp": "green" });
    let inc = app.post("/api/v1/incidents", &owner.token, body).await.expect(201).str("id");
    let mut green = HashSet::new();
    for i in 0..=MAX {
        let tlp = if i % 2 == 0 { "green" } else { "red" };
        let r = app
            .post(
                &format!("/api/v1/incidents/{inc}/iocs"),
                &owner.token,
                json!({ "type": "domain", "value": format!("d{i}.example"), "tlp": tlp }),
            )
            .await
            .expect(201);
        if tlp == "green" {
            green.insert(r.body["ioc"]["id"].as_str().or(r.body["id"].as_str()).expect("ioc id").to_owned());
        }
    }
    let ioc_id = |s: &Value| s["ioc"]["id"].as_str().or(s["id"].as_str()).expect("ioc id").to_owned();
    assert_eq!(walk(&app, &owner.token, &format!("/api/v1/incidents/{inc}/iocs"), MAX, ioc_id).await.len(), MAX as usize + 1);
    // A key with a green ceiling walks only the green ones, in full pages.
    let key = app
        .post("/api/v1/api-keys", &owner.token, json!({ "name": "g", "role": "viewer", "tlp_max": "green" }))
        .await
        .expect(201)
        .str("key");
    let seen = walk(&app, &key, &format!("/api/v1/incidents/{inc}/iocs"), 50, ioc_id).await;
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), green);
}

#[tokio::test]
async fn alerts_webhooks_and_their_attempts_and_messages_walk_past_their_largest_page() {
    // Every delivery fails at once (nobody listens, no retries): one
    // attempt and one failed message per incident.
    let app = TestApp::spawn_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_allow_http = true;
        c.webhook_retries = Some(Vec::new());
    })
    .await;
    let owner = app.admin().await;
    let n = MAX as usize + 1;
    let alerts: Vec<Value> = (0..n)
        .map(|i| json!({ "source": "edr", "source_ref": format!("p-{i}"), "type": "x", "title": format!("paged {i}"), "severity": "low" }))
        .collect();
    let made = app.post("/api/v1/alerts/batch", &owner.token, json!({ "alerts": alerts })).await.expect(200);
    let made: HashSet<String> = made.body["items"].as_array().expect("items").iter().map(|i| id(&i["alert"])).collect();
    assert_eq!(walk(&app, &owner.token, "/api/v1/alerts", MAX, id).await.into_iter().collect::<HashSet<_>>(), made);
    assert_eq!(walk(&app, &owner.token, "/api/v1/alerts?severity=low", 7, id).await.len(), n);

    let nobody = format!("http://127.0.0.1:{}/", spare_port());
    let mut hooks = HashSet::new();
    for types in [json!(["incident.created"]), json!(["alert.created"]), json!(["quota.exceeded"])] {
        hooks
            .insert(app.post("/api/v1/webhooks", &owner.token, json!({ "url": nobody, "event_types": types })).await.expect(201).str("id"));
    }
    // An organisation has at most 50 endpoints: walked at a small page.
    assert_eq!(walk(&app, &owner.token, "/api/v1/webhooks", 2, id).await.into_iter().collect::<HashSet<_>>(), hooks);
    // Channels and analyzers, likewise.
    let (mut channels, mut analyzers) = (HashSet::new(), HashSet::new());
    for i in 0..3 {
        let body = json!({ "name": format!("c{i}"), "kind": "generic", "url": nobody, "rules": [{ "event_types": ["quota.exceeded"] }] });
        channels.insert(app.post("/api/v1/notification-channels", &owner.token, body).await.expect(201).str("id"));
        let body = json!({ "name": format!("a{i}"), "url": nobody });
        analyzers.insert(app.post("/api/v1/analyzers", &owner.token, body).await.expect(201).str("id"));
    }
    assert_eq!(walk(&app, &owner.token, "/api/v1/notification-channels", 2, id).await.into_iter().collect::<HashSet<_>>(), channels);
    assert_eq!(walk(&app, &owner.token, "/api/v1/analyzers", 2, id).await.into_iter().collect::<HashSet<_>>(), analyzers);
    // The oldest: the one that receives `incident.created`.
    let hook = id(&app.get("/api/v1/webhooks?limit=1", &owner.token).await.expect(200).body["items"][0]);
    for i in 0..n {
        app.incident(&owner, &format!("to nobody {i}")).await;
    }
    let failed = format!("/api/v1/webhooks/{hook}/messages?status=failed");
    let mut ready = false;
    for _ in 0..400 {
        if walk(&app, &owner.token, &failed, MAX, id).await.len() == n {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "every message failed once");
    let attempts = walk(&app, &owner.token, &format!("/api/v1/webhooks/{hook}/attempts"), MAX, |a| a["id"].to_string()).await;
    assert_eq!(attempts.len(), n);
    let ids: Vec<i64> = attempts.iter().map(|s| s.parse().expect("attempt id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    for path in ["/api/v1/alerts".to_owned(), "/api/v1/webhooks".to_owned(), failed.clone(), format!("/api/v1/webhooks/{hook}/attempts")] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = app.get(&format!("{path}{sep}limit={}", MAX + 1), &owner.token).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], "limit");
    }
    // Legal holds, several set in one millisecond (the clock stands still).
    app.clock.freeze();
    let mut held = HashSet::new();
    for i in 0..5 {
        let inc = app.incident(&owner, &format!("held {i}")).await.str("id");
        app.put_json(&format!("/api/v1/incidents/{inc}/legal-hold"), &owner.token, json!({ "reason": "r" })).await.expect(200);
        held.insert(inc);
    }
    let by_incident = |v: &Value| v["incident_id"].as_str().expect("incident id").to_owned();
    assert_eq!(walk(&app, &owner.token, "/api/v1/legal-holds", 2, by_incident).await.into_iter().collect::<HashSet<_>>(), held);
    // Breaches, all known at one instant.
    for inc in &held {
        app.put_json(&format!("/api/v1/incidents/{inc}/breach"), &owner.token, json!({})).await.expect(200);
    }
    assert_eq!(walk(&app, &owner.token, "/api/v1/breaches?open=true", 2, by_incident).await.into_iter().collect::<HashSet<_>>(), held);
    // Data-subject requests, several made in one instant.
    let mut made = HashSet::new();
    for i in 0..5 {
        let body = json!({ "type": "access", "subject": { "email": format!("p{i}@example.org") } });
        made.insert(app.post("/api/v1/privacy/requests", &owner.token, body).await.expect(201).str("id"));
    }
    assert_eq!(walk(&app, &owner.token, "/api/v1/privacy/requests", 2, id).await.into_iter().collect::<HashSet<_>>(), made);
}
