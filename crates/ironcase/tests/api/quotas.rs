//! Plans and quotas: exact limits under concurrency, monthly reset, plan
//! changes and overrides, suspension, feature flags, the usage report.

use serde_json::{json, Value};

use crate::helpers::*;

/// A new organisation on `plan` with `overrides`, and its logged-in owner.
async fn org_on(app: &TestApp, operator: &User, slug: &str, plan: &str, overrides: Value) -> (String, User) {
    let email = format!("owner@{slug}.test");
    let r = app
        .post(
            "/api/v1/admin/organizations",
            &operator.token,
            json!({ "name": slug, "slug": slug, "plan": plan, "overrides": overrides,
                    "owner": { "email": email, "name": "Owner", "password": PASSWORD } }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["plan"], plan);
    (r.str("id"), app.login(&email, PASSWORD, Some(slug)).await)
}

fn quota<'a>(usage: &'a Resp, name: &str) -> &'a Value {
    usage.body["quotas"].as_array().expect("quotas").iter().find(|q| q["quota"] == name).expect("quota listed")
}

#[tokio::test]
async fn fifty_creates_on_a_limit_of_ten_give_exactly_ten() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let (_, owner) = org_on(&app, &op, "tight", "starter", json!({ "quotas": { "incidents_per_month": 10 } })).await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/incidents"), owner.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "title": format!("race {n}"), "severity": "low", "category": "other" }))
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.expect("task");
        match status {
            201 => created += 1,
            403 => {
                assert_eq!(body["code"], "quota_exceeded", "{body}");
                assert_eq!(body["quota"], "incidents_per_month");
                assert_eq!(body["limit"], 10);
                assert_eq!(body["used"], 10);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 10);
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    let q = quota(&usage, "incidents_per_month");
    assert_eq!((q["limit"].as_u64(), q["used"].as_u64(), q["utilization_percent"].as_f64()), (Some(10), Some(10), Some(100.0)));
    assert!(q["resets_at"].is_string());
    // Crossing 80% and 100% was recorded once each, in the audit log and the organisation's events.
    for action in ["quota.warning", "quota.exceeded"] {
        let a = app.get(&format!("/api/v1/audit?action={action}"), &owner.token).await.expect(200);
        assert_eq!(a.body["items"].as_array().map(Vec::len), Some(1), "{action}: {}", a.body);
    }
    // Deleting does not give monthly capacity back; the next month does.
    let list = app.get("/api/v1/incidents?limit=1", &owner.token).await.expect(200);
    app.delete(&format!("/api/v1/incidents/{}", list.body["items"][0]["id"].as_str().expect("id")), &owner.token).await.expect(204);
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "t", "severity": "low", "category": "other" }))
        .await
        .problem(403, "quota_exceeded");
    app.clock.advance_secs(32 * 24 * 3600);
    let owner = app.login("owner@tight.test", PASSWORD, Some("tight")).await;
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "new month", "severity": "low", "category": "other" })).await.expect(201);
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert_eq!(quota(&usage, "incidents_per_month")["used"], 1);
}

#[tokio::test]
async fn members_and_storage_hold_exactly_under_concurrency() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    // Free: 3 members (the owner is one).
    let (_, owner) = org_on(
        &app,
        &op,
        "small",
        "free",
        json!({ "features": { "api_access": true }, "quotas": { "storage_bytes": 10000, "api_per_minute": null } }),
    )
    .await;
    // Members are counted when an invitation is accepted.
    let mut tasks = Vec::new();
    for n in 0..10 {
        let invite = app.invite(&owner, &format!("m{n}@small.test"), "viewer").await;
        let (client, url) = (app.client.clone(), app.url("/api/v1/invitations/accept"));
        tasks.push(tokio::spawn(async move {
            let body = json!({ "token": invite, "name": "m", "password": PASSWORD });
            (client.post(url).json(&body).send().await.expect("sent").status().as_u16(), invite)
        }));
    }
    let (mut statuses, mut refused) = (Vec::new(), Vec::new());
    for t in tasks {
        let (status, invite) = t.await.expect("task");
        statuses.push(status);
        if status == 403 {
            refused.push(invite);
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 8, "{statuses:?}");
    // Removing a member frees a place.
    let members = app.get("/api/v1/members", &owner.token).await.expect(200);
    let viewer = members.body["items"].as_array().expect("items").iter().find(|m| m["role"] == "viewer").expect("a viewer")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.delete(&format!("/api/v1/members/{viewer}"), &owner.token).await.expect(204);
    // A refused acceptance left nothing behind: the invitation still works,
    // and makes the account anew (any password, not the one of the refusal).
    app.accept(&refused[0], "a different passphrase entirely").await.expect(201);

    // Storage: 10,000 bytes, ten concurrent 3,000-byte files: exactly three fit.
    let inc = app.incident(&owner, "files").await.str("id");
    let mut tasks = Vec::new();
    for n in 0..10 {
        let form = reqwest::multipart::Form::new()
            .part("metadata", reqwest::multipart::Part::text(json!({ "name": format!("f{n}"), "kind": "other" }).to_string()))
            .part("file", reqwest::multipart::Part::bytes(vec![n as u8; 3000]).file_name("f"));
        let req = app.client.post(app.url(&format!("/api/v1/incidents/{inc}/evidence"))).bearer_auth(&owner.token).multipart(form);
        tasks.push(tokio::spawn(async move { req.send().await.expect("sent").status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert_eq!(app.blob_files().len(), 3, "refused uploads leave no blob");
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert_eq!(quota(&usage, "storage_bytes")["used"], 9000);
    assert_eq!(quota(&usage, "members")["used"], 3);
}

#[tokio::test]
async fn plans_change_overrides_apply_and_suspension_stops_everything() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let (id, owner) = org_on(&app, &op, "acme", "starter", json!({})).await;
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "viewer" })).await.expect(201).str("key");
    app.get("/api/v1/incidents", &key).await.expect(200);
    for n in 0..3 {
        app.incident(&owner, &format!("i{n}")).await;
    }
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert_eq!(usage.body["plan"], "starter");
    assert_eq!(quota(&usage, "members")["limit"], 10);
    assert_eq!(usage.body["features"]["api_access"], true);
    assert_eq!(usage.body["features"]["sso"], false);

    // Down to free, with a tighter monthly limit than what is used: allowed,
    // and creates wait. API access is not in free: the key stops working.
    let plan = format!("/api/v1/admin/organizations/{id}/plan");
    app.send(
        reqwest::Method::PUT,
        &plan,
        Some(&op.token),
        Some(json!({ "plan": "free", "overrides": { "quotas": { "incidents_per_month": 2, "api_per_minute": null } } })),
        &[],
    )
    .await
    .expect(200);
    app.post("/api/v1/incidents", &owner.token, json!({ "title": "t", "severity": "low", "category": "other" }))
        .await
        .problem(403, "quota_exceeded");
    let r = app.get("/api/v1/incidents", &key).await.problem(403, "feature_not_in_plan");
    assert_eq!(r.body["feature"], "api_access");
    app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k2", "role": "viewer" })).await.problem(403, "feature_not_in_plan");
    // An override can lift any number: null is unlimited.
    app.send(
        reqwest::Method::PUT,
        &plan,
        Some(&op.token),
        Some(json!({
            "plan": "free",
            "overrides": { "quotas": { "incidents_per_month": null, "api_per_minute": null }, "features": { "api_access": true } }
        })),
        &[],
    )
    .await
    .expect(200);
    app.incident(&owner, "unlimited now").await;
    app.get("/api/v1/incidents", &key).await.expect(200);
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert!(quota(&usage, "incidents_per_month")["limit"].is_null());
    assert_eq!(quota(&usage, "members")["limit"], 3);

    // Suspended: every request of its members and keys is 403; the data stays.
    let org = format!("/api/v1/admin/organizations/{id}");
    app.send(reqwest::Method::PATCH, &org, Some(&op.token), Some(json!({ "status": "suspended" })), &[]).await.expect(200);
    app.get("/api/v1/incidents", &owner.token).await.problem(403, "organization_suspended");
    app.get("/api/v1/incidents", &key).await.problem(403, "organization_suspended");
    app.send(reqwest::Method::PATCH, &org, Some(&op.token), Some(json!({ "status": "active" })), &[]).await.expect(200);
    let list = app.get("/api/v1/incidents?limit=200", &owner.token).await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(4));

    // Operators only; unknown organisations are 404; the operator's own organisation cannot be suspended by them.
    app.send(reqwest::Method::PUT, &plan, Some(&owner.token), Some(json!({ "plan": "enterprise" })), &[]).await.problem(403, "forbidden");
    app.send(reqwest::Method::PATCH, &org, Some(&owner.token), Some(json!({ "status": "suspended" })), &[]).await.problem(403, "forbidden");
    let missing = "/api/v1/admin/organizations/org_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b/plan";
    app.send(reqwest::Method::PUT, missing, Some(&op.token), Some(json!({ "plan": "free" })), &[]).await.problem(404, "not_found");
    app.send(reqwest::Method::PUT, "/api/v1/admin/organizations/nope/plan", Some(&op.token), Some(json!({ "plan": "free" })), &[])
        .await
        .problem(404, "not_found");
    let own = op_org(&app, &op).await;
    app.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/admin/organizations/{own}"),
        Some(&op.token),
        Some(json!({ "status": "inactive" })),
        &[],
    )
    .await
    .problem(409, "own_organization");
    // Bad bodies change nothing.
    for body in [
        json!({ "plan": "platinum" }),
        json!({ "plan": "free", "overrides": { "quotas": { "seats": 1 } } }),
        json!({ "plan": "free", "x": 1 }),
    ] {
        app.send(reqwest::Method::PUT, &plan, Some(&op.token), Some(body), &[]).await.problem(422, "validation_failed");
    }
    app.send(reqwest::Method::PATCH, &org, Some(&op.token), Some(json!({ "status": "gone" })), &[]).await.problem(422, "validation_failed");
    let usage = app.get("/api/v1/organization/usage", &owner.token).await.expect(200);
    assert_eq!(usage.body["plan"], "free");
    // Every change is audited in the organisation's log.
    let a = app.get("/api/v1/audit?action=organization.plan", &owner.token).await.expect(200);
    assert_eq!(a.body["items"].as_array().map(Vec::len), Some(2));
}

/// The operator's own organisation id.
async fn op_org(app: &TestApp, op: &User) -> String {
    app.get("/api/v1/organization", &op.token).await.expect(200).str("id")
}

#[tokio::test]
async fn new_organisations_get_the_configured_default_plan() {
    let app = TestApp::spawn_with(|c| c.default_plan = ironcase_domain::plan::PlanName::Free).await;
    let op = app.admin().await;
    let (_, owner) = app.org(&op, "dflt").await;
    assert_eq!(app.get("/api/v1/organization/usage", &owner.token).await.expect(200).body["plan"], "free");
    // The bootstrap organisation is enterprise whatever the default.
    assert_eq!(app.get("/api/v1/organization/usage", &op.token).await.expect(200).body["plan"], "enterprise");
}

#[tokio::test]
async fn plan_rate_limits_per_credential_and_organisation() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let op = app.admin().await;
    // Free: 10 requests a minute; a day's allowance of 15 to reach within the test.
    let (_, owner) =
        org_on(&app, &op, "busy", "free", json!({ "quotas": { "api_per_day": 15 }, "features": { "api_access": true } })).await;
    // Logging in read `/auth/me` once: 9 left this minute.
    let mut remaining = Vec::new();
    for _ in 0..9 {
        let r = app.get("/api/v1/incidents", &owner.token).await.expect(200);
        assert_eq!(r.header("ratelimit-limit"), Some("10"));
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert!(r.header("ratelimit-reset").is_some());
        remaining.push(r.header("ratelimit-remaining").and_then(|v| v.parse::<u32>().ok()).expect("remaining"));
    }
    assert_eq!(remaining, [8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for _ in 0..3 {
        let r = app.get("/api/v1/incidents", &owner.token).await.problem(429, "rate_limited");
        assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
    }
    // Logging out is never refused: it only takes access away.
    let other = app.login_raw("owner@busy.test", PASSWORD, Some("busy")).await.expect(200).str("access_token");
    app.get("/api/v1/incidents", &other).await.problem(429, "rate_limited");
    app.send(reqwest::Method::POST, "/api/v1/auth/logout", Some(&other), None, &[]).await.expect(204);
    app.get("/api/v1/auth/me", &other).await.problem(401, "unauthenticated");
    // A minute later the minute's allowance is back; the day's (15, 10 spent) is not.
    app.clock.advance_secs(61);
    for _ in 0..5 {
        app.get("/api/v1/incidents", &owner.token).await.expect(200);
    }
    let r = app.get("/api/v1/incidents", &owner.token).await.problem(429, "rate_limited");
    assert!(
        r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s > 60),
        "the day's limit: {:?}",
        r.header("retry-after")
    );
    // Rejections are audited once per credential, class and window, not per request.
    let op_view = app.get("/api/v1/audit?action=rate_limit.rejected", &op.token).await.expect(200);
    assert_eq!(op_view.body["items"], json!([]), "audited in the limited organisation, not elsewhere");
    // Enterprise (the bootstrap organisation) has no rate limit: no headers.
    let r = app.get("/api/v1/incidents", &op.token).await.expect(200);
    assert_eq!(r.header("ratelimit-limit"), None);
    app.clock.advance_secs(24 * 3600);
    let owner = app.login("owner@busy.test", PASSWORD, Some("busy")).await;
    let audit = app.get("/api/v1/audit?action=rate_limit.rejected", &owner.token).await.expect(200);
    let classes: Vec<&str> = audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["details"]["class"].as_str()).collect();
    assert_eq!(classes, ["organization_day", "organization_minute", "credential_minute"]);
}

#[tokio::test]
async fn a_key_can_be_held_below_its_plan() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let op = app.admin().await;
    // Enterprise is unlimited; this key is not.
    let key = app.post("/api/v1/api-keys", &op.token, json!({ "name": "noisy", "role": "viewer", "rate_per_minute": 3 })).await.expect(201);
    assert_eq!(key.body["rate_per_minute"], 3);
    let key = key.str("key");
    for left in ["2", "1", "0"] {
        let r = app.get("/api/v1/incidents", &key).await.expect(200);
        assert_eq!((r.header("ratelimit-limit"), r.header("ratelimit-remaining")), (Some("3"), Some(left)));
    }
    app.get("/api/v1/incidents", &key).await.problem(429, "rate_limited");
    // The organisation and its other credentials are not held by it.
    let r = app.get("/api/v1/incidents", &op.token).await.expect(200);
    assert_eq!(r.header("ratelimit-limit"), None);
    app.clock.advance_secs(60);
    app.get("/api/v1/incidents", &key).await.expect(200);
    // A key cannot get more than its plan: the plan's limit applies.
    let (_, owner) = org_on(&app, &op, "mid", "starter", json!({})).await;
    let generous = app
        .post("/api/v1/api-keys", &owner.token, json!({ "name": "g", "role": "viewer", "rate_per_minute": 500 }))
        .await
        .expect(201)
        .str("key");
    assert_eq!(app.get("/api/v1/incidents", &generous).await.expect(200).header("ratelimit-limit"), Some("100"));
    for rate in [0, 1_000_001, 2_147_483_648_u64] {
        app.post("/api/v1/api-keys", &owner.token, json!({ "name": "z", "role": "viewer", "rate_per_minute": rate }))
            .await
            .problem(422, "validation_failed");
    }
}
