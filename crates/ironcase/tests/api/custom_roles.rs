//! An organisation's own roles (feature `custom_roles`) through HTTP: made
//! from a built-in base with permissions added and taken away and
//! conditions, held by members (by invitation or a role change) and API
//! keys, changed with effect on the next request, never granting more than
//! their maker holds, not deleted while held, and gated by the plan.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD};

fn permissions(me: &Value) -> Vec<String> {
    me["permissions"].as_array().expect("permissions").iter().map(|p| p.as_str().expect("permission").to_owned()).collect()
}

#[tokio::test]
async fn a_custom_role_grants_what_it_says_and_no_more_than_its_maker_holds() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;

    let r = app.get("/api/v1/roles", &owner.token).await.expect(200);
    let builtin: Vec<&str> = r.body["items"].as_array().expect("items").iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(builtin, ["owner", "admin", "lead", "senior_analyst", "analyst", "viewer"]);

    let triage = json!({
        "name": "triage",
        "base": "analyst",
        "grant": ["audit:read"],
        "revoke": ["evidence:download"],
        "conditions": { "own_or_assigned": true, "tlp_max": "amber" },
    });
    for (bad, why) in [
        (json!({ "name": "analyst", "base": "viewer" }), "a built-in name"),
        (json!({ "name": "x", "base": "viewer", "grant": ["audit:read"], "revoke": ["audit:read"] }), "granted and revoked"),
        (json!({ "name": "x", "base": "viewer", "grant": ["root:everything"] }), "no such permission"),
        (json!({ "name": "", "base": "viewer" }), "no name"),
        (json!({ "name": "x", "base": "emperor" }), "no such base"),
    ] {
        let r = app.post("/api/v1/roles", &owner.token, bad).await;
        assert_eq!(r.status.as_u16(), 422, "{why}: {}", r.body);
    }
    let created = app.post("/api/v1/roles", &owner.token, triage.clone()).await.expect(201);
    let id = created.str("id");
    assert!(id.starts_with("rol_"), "{}", created.body);
    let effective: Vec<&str> =
        created.body["permissions"].as_array().expect("permissions").iter().map(|g| g["permission"].as_str().expect("p")).collect();
    assert!(effective.contains(&"audit:read") && !effective.contains(&"evidence:download"), "{effective:?}");
    let update = created.body["permissions"].as_array().expect("p").iter().find(|g| g["permission"] == json!("incident:update")).cloned();
    assert_eq!(update.map(|g| g["scope"].clone()), Some(json!("own_or_assigned")));
    app.post("/api/v1/roles", &owner.token, triage.clone()).await.problem(409, "conflict");
    assert_eq!(app.get(&format!("/api/v1/roles/{id}"), &owner.token).await.expect(200).body["name"], json!("triage"));

    // Held by a member, invited by the role's name.
    let token =
        app.post("/api/v1/members", &owner.token, json!({ "email": "t@example.com", "role": "triage" })).await.expect(201).str("token");
    app.accept(&token, PASSWORD).await.expect(201);
    let member = app.login("t@example.com", PASSWORD, None).await;
    let me = app.get("/api/v1/auth/me", &member.token).await.expect(200);
    assert_eq!((me.body["role"].clone(), me.body["custom_role"].clone()), (json!("analyst"), json!(id)));
    let held = permissions(&me.body);
    assert!(held.contains(&"audit:read".to_owned()) && !held.contains(&"evidence:download".to_owned()), "{held:?}");
    app.get("/api/v1/audit", &member.token).await.expect(200);
    // Above its TLP ceiling an incident does not exist for the holder.
    let red = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "red one", "severity": "high", "category": "malware", "tlp": "red" }))
        .await
        .expect(201)
        .str("id");
    app.get(&format!("/api/v1/incidents/{red}"), &member.token).await.problem(404, "not_found");
    let amber = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "amber one", "severity": "high", "category": "malware", "tlp": "amber" }))
        .await
        .expect(201);
    let (amber, etag) = (amber.str("id"), amber.header("etag").expect("etag").to_owned());
    app.get(&format!("/api/v1/incidents/{amber}"), &member.token).await.expect(200);
    // Changes only on its own or assigned incidents.
    app.patch(&format!("/api/v1/incidents/{amber}"), &member.token, json!({ "title": "mine now" }), Some(&etag))
        .await
        .problem(403, "forbidden");

    // A change reaches the member's next request.
    let mut changed = triage.clone();
    changed["grant"] = json!([]);
    app.patch(&format!("/api/v1/roles/{id}"), &owner.token, changed, None).await.expect(200);
    app.get("/api/v1/audit", &member.token).await.problem(403, "forbidden");

    // An API key may hold it too, and sees what the role lets it see.
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "triage-bot", "role": id })).await.expect(201);
    assert_eq!(key.body["custom_role"], json!(id));
    let key = key.str("key");
    app.get(&format!("/api/v1/incidents/{red}"), &key).await.problem(404, "not_found");
    assert!(!permissions(&app.get("/api/v1/auth/me", &key).await.expect(200).body).contains(&"evidence:download".to_owned()));

    // Nobody hands out more than they hold: a manager (lead, plus members
    // and keys) cannot make or give a role with organisation:manage, nor
    // give admin.
    let manager = app
        .post("/api/v1/roles", &owner.token, json!({ "name": "manager", "base": "lead", "grant": ["members:manage"] }))
        .await
        .expect(201)
        .str("id");
    let token =
        app.post("/api/v1/members", &owner.token, json!({ "email": "m@example.com", "role": manager })).await.expect(201).str("token");
    app.accept(&token, PASSWORD).await.expect(201);
    let m = app.login("m@example.com", PASSWORD, None).await;
    let wider = json!({ "name": "wider", "base": "lead", "grant": ["organization:manage"] });
    app.post("/api/v1/roles", &m.token, wider).await.problem(403, "forbidden");
    app.post("/api/v1/members", &m.token, json!({ "email": "x@example.com", "role": "admin" })).await.problem(403, "forbidden");
    app.post("/api/v1/members", &m.token, json!({ "email": "x@example.com", "role": "triage" })).await.expect(201);
    app.post("/api/v1/members", &m.token, json!({ "email": "y@example.com", "role": "no-such-role" }))
        .await
        .problem(422, "validation_failed");
    app.patch(&format!("/api/v1/roles/{manager}"), &m.token, json!({ "name": "manager", "base": "admin" }), None)
        .await
        .problem(403, "forbidden");

    // Not deleted while held (the member, the key, the pending invitation).
    app.delete(&format!("/api/v1/roles/{id}"), &owner.token).await.problem(409, "role_in_use");
    app.patch(&format!("/api/v1/members/{}", member.id), &owner.token, json!({ "role": "viewer" }), None).await.expect(200);
    let keys = app.get("/api/v1/api-keys", &owner.token).await.expect(200);
    for k in keys.body["items"].as_array().expect("keys") {
        app.delete(&format!("/api/v1/api-keys/{}", k["id"].as_str().expect("id")), &owner.token).await.expect(204);
    }
    let pending = app.get("/api/v1/invitations", &owner.token).await.expect(200);
    for i in pending.body["items"].as_array().expect("invitations") {
        app.delete(&format!("/api/v1/invitations/{}", i["id"].as_str().expect("id")), &owner.token).await.expect(204);
    }
    app.delete(&format!("/api/v1/roles/{id}"), &owner.token).await.expect(204);
    app.get(&format!("/api/v1/roles/{id}"), &owner.token).await.problem(404, "not_found");
    let audit = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    assert!(["role.create", "role.update", "role.delete"].iter().all(|a| audit.contains(a)), "{audit}");
}

#[tokio::test]
async fn custom_roles_need_the_plan_and_stay_in_their_organisation() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (org, owner) = app.org(&operator, "small").await;
    let (_, other) = app.org(&operator, "other").await;
    let theirs = app.post("/api/v1/roles", &other.token, json!({ "name": "theirs", "base": "viewer" })).await.expect(201).str("id");
    // Another organisation's role: not found, and not assignable.
    app.get(&format!("/api/v1/roles/{theirs}"), &owner.token).await.problem(404, "not_found");
    app.delete(&format!("/api/v1/roles/{theirs}"), &owner.token).await.problem(404, "not_found");
    app.post("/api/v1/members", &owner.token, json!({ "email": "z@example.com", "role": theirs })).await.problem(422, "validation_failed");
    let listed = app.get("/api/v1/roles", &owner.token).await.expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(6), "only the built-in roles: {}", listed.body);

    // A plan without the feature.
    let plan = format!("/api/v1/admin/organizations/{}/plan", org["id"].as_str().expect("id"));
    app.send(Method::PUT, &plan, Some(&operator.token), Some(json!({ "plan": "starter" })), &[]).await.expect(200);
    let r = app.post("/api/v1/roles", &owner.token, json!({ "name": "r", "base": "viewer" })).await.problem(403, "feature_not_in_plan");
    assert_eq!(r.body["feature"], json!("custom_roles"), "{}", r.body);
    app.get("/api/v1/roles", &owner.token).await.expect(200);
}

#[tokio::test]
async fn a_role_limited_to_categories_sees_no_incident_of_another() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let role = json!({ "name": "phishing desk", "base": "analyst", "conditions": { "categories": ["phishing"] } });
    let created = app.post("/api/v1/roles", &owner.token, role).await.expect(201);
    assert_eq!(created.body["conditions"]["categories"], json!(["phishing"]));
    let id = created.str("id");
    let empty = json!({ "name": "nothing", "base": "viewer", "conditions": { "categories": [] } });
    app.post("/api/v1/roles", &owner.token, empty).await.problem(422, "validation_failed");
    let bad = json!({ "name": "x", "base": "viewer", "conditions": { "categories": ["gossip"] } });
    app.post("/api/v1/roles", &owner.token, bad).await.problem(422, "validation_failed");
    let repeated = json!({ "name": "x", "base": "viewer", "conditions": { "categories": vec!["other"; 10] } });
    app.post("/api/v1/roles", &owner.token, repeated).await.problem(422, "validation_failed");

    let mut ids = Vec::new();
    for (category, word) in [("phishing", "alpha"), ("malware", "bravo")] {
        let body = json!({ "title": format!("lure {word}"), "severity": "high", "category": category });
        let i = app.post("/api/v1/incidents", &owner.token, body).await.expect(201).str("id");
        let ioc = json!({ "type": "domain", "value": "lure.example" });
        app.post(&format!("/api/v1/incidents/{i}/iocs"), &owner.token, ioc).await.expect(201);
        ids.push(i);
    }
    let (phish, malware) = (ids[0].clone(), ids[1].clone());
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "desk", "role": id })).await.expect(201).str("key");
    let mut stream = crate::events::SseClient::open(&app, &key, "", None).await;

    let numbers = |r: &crate::helpers::Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i.get("incident").unwrap_or(i)["number"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(numbers(&app.get("/api/v1/incidents", &key).await.expect(200)), ["INC-1"]);
    app.get(&format!("/api/v1/incidents/{phish}"), &key).await.expect(200);
    for path in [
        format!("/api/v1/incidents/{malware}"),
        "/api/v1/incidents/INC-2".to_owned(),
        format!("/api/v1/incidents/{malware}/timeline"),
        format!("/api/v1/incidents/{malware}/iocs"),
        format!("/api/v1/incidents/{malware}/similar"),
        format!("/api/v1/events/stream?incident_id={malware}"),
    ] {
        app.get(&path, &key).await.problem(404, "not_found");
    }
    let found = app.get("/api/v1/search?q=lure", &key).await.expect(200);
    assert_eq!((found.body["total"].as_i64(), numbers(&found)), (Some(1), vec!["INC-1".to_owned()]));
    let facet = &found.body["facets"]["category"];
    assert!(facet["phishing"] == 1 && facet["malware"].as_i64().unwrap_or(0) == 0, "facets count only what the role sees: {facet}");
    assert_eq!(numbers(&app.get(&format!("/api/v1/incidents/{phish}/similar"), &key).await.expect(200)), Vec::<String>::new());
    assert_eq!(numbers(&app.get(&format!("/api/v1/incidents/{phish}/similar"), &owner.token).await.expect(200)), ["INC-2"]);
    let lookup = app.get("/api/v1/iocs?value=lure.example", &key).await.expect(200);
    let seen: Vec<&str> =
        lookup.body["items"][0]["incidents"].as_array().expect("incidents").iter().filter_map(|i| i["number"].as_str()).collect();
    assert_eq!(seen, ["INC-1"]);

    // What it files or changes stays in its sight.
    let other = json!({ "title": "x", "severity": "low", "category": "malware" });
    app.post("/api/v1/incidents", &key, other).await.problem(422, "validation_failed");
    let etag = app.get(&format!("/api/v1/incidents/{phish}"), &key).await.header("etag").expect("etag").to_owned();
    app.patch(&format!("/api/v1/incidents/{phish}"), &key, json!({ "category": "malware" }), Some(&etag))
        .await
        .problem(422, "validation_failed");

    // Live: a comment on the malware incident is held back; the next event
    // the stream shows is the phishing one's.
    app.post(&format!("/api/v1/incidents/{malware}/comments"), &owner.token, json!({ "body": "on malware" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{phish}/comments"), &owner.token, json!({ "body": "on phishing" })).await.expect(201);
    let got = stream.next().await.expect("event");
    assert_eq!((got.event.as_str(), got.data["incident_id"].clone()), ("comment.added", json!(phish)));

    // A holder who may manage members hands out no role that sees more.
    let manager = json!({ "name": "desk lead", "base": "lead", "grant": ["members:manage"], "conditions": { "categories": ["phishing", "malware"] } });
    let manager = app.post("/api/v1/roles", &owner.token, manager).await.expect(201).str("id");
    let token =
        app.post("/api/v1/members", &owner.token, json!({ "email": "d@example.com", "role": manager })).await.expect(201).str("token");
    app.accept(&token, PASSWORD).await.expect(201);
    let lead = app.login("d@example.com", PASSWORD, None).await;
    app.post("/api/v1/members", &lead.token, json!({ "email": "e@example.com", "role": "viewer" })).await.problem(403, "forbidden");
    app.post("/api/v1/members", &lead.token, json!({ "email": "e@example.com", "role": id })).await.expect(201);
    let wider = json!({ "name": "all of it", "base": "viewer" });
    app.post("/api/v1/roles", &lead.token, wider).await.problem(403, "forbidden");
    app.shutdown().await;
}
