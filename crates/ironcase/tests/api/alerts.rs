//! Alert intake and triage through HTTP: duplicates by source reference
//! (exact under concurrent senders), grouping by dedup key, batches that keep
//! nothing when one alert is bad, the queue's filters, promotion into a new
//! incident or an existing one, dismissal, snoozing, the TLP ceiling and the
//! monthly quota.

use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD};

fn alert(source_ref: &str) -> Value {
    json!({
        "source": "splunk",
        "source_ref": source_ref,
        "type": "suspicious_login",
        "title": format!("Impossible travel for j.doe ({source_ref})"),
        "severity": "high",
        "observables": [{ "type": "ipv4", "value": "198.51.100.23" }, { "type": "domain", "value": "Evil.Example" }],
        "raw": { "rule": "impossible-travel", "user": "j.doe" },
    })
}

#[tokio::test]
async fn alerts_are_kept_once_grouped_by_their_key_and_batched_whole() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let r = app.post("/api/v1/alerts", &owner.token, alert("sp-1")).await.expect(201);
    assert_eq!(r.body["outcome"], "created");
    let first = r.body["alert"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        r.body["alert"]["observables"],
        json!([{ "type": "ipv4", "value": "198.51.100.23" }, { "type": "domain", "value": "evil.example" }])
    );
    assert_eq!((r.body["alert"]["status"].clone(), r.body["alert"]["tlp"].clone()), (json!("new"), json!("amber")));
    // The same reference again: the first alert.
    let again = app.post("/api/v1/alerts", &owner.token, alert("sp-1")).await.expect(200);
    assert_eq!((again.body["outcome"].clone(), again.body["alert"]["id"].clone()), (json!("duplicate"), json!(first)));

    // Thirty-two senders of one new reference at once: one alert.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/alerts"), owner.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&alert("sp-race")).send().await.expect("send");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json")["alert"]["id"].as_str().unwrap_or("").to_owned())
        }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.expect("task");
        created += usize::from(status == 201);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!((created, ids.len()), (1, 1), "exactly one alert, the same for every sender");

    // A dedup key groups later alerts under the first open one.
    let mut keyed = alert("sp-2");
    keyed["dedup_key"] = json!("j.doe:impossible-travel");
    let grouped_under = app.post("/api/v1/alerts", &owner.token, keyed.clone()).await.expect(201).body["alert"]["id"].clone();
    keyed["source_ref"] = json!("sp-3");
    let g = app.post("/api/v1/alerts", &owner.token, keyed).await.expect(200);
    assert_eq!(
        (g.body["outcome"].clone(), g.body["alert"]["id"].clone(), g.body["alert"]["count"].clone()),
        (json!("grouped"), grouped_under, json!(2))
    );

    // A batch: every alert checked first; one bad one keeps nothing.
    let before = app.get("/api/v1/alerts?limit=200", &owner.token).await.expect(200).body["items"].as_array().map(Vec::len);
    let mut bad = alert("sp-5");
    bad["title"] = json!("");
    let r =
        app.post("/api/v1/alerts/batch", &owner.token, json!({ "alerts": [alert("sp-4"), bad] })).await.problem(422, "validation_failed");
    assert!(r.body.to_string().contains("alerts[1].title"), "{}", r.body);
    let mut bad = alert("sp-5");
    bad["observables"] = json!([{ "type": "ipv4", "value": "999.1.1.1" }]);
    let r = app.post("/api/v1/alerts/batch", &owner.token, json!({ "alerts": [bad] })).await.problem(422, "validation_failed");
    assert!(r.body.to_string().contains("alerts[0].observables[0].value"), "{}", r.body);
    let after = app.get("/api/v1/alerts?limit=200", &owner.token).await.expect(200).body["items"].as_array().map(Vec::len);
    assert_eq!(before, after, "nothing kept");
    let r = app
        .post("/api/v1/alerts/batch", &owner.token, json!({ "alerts": [alert("sp-4"), alert("sp-1"), alert("sp-4")] }))
        .await
        .expect(200);
    let outcomes: Vec<&str> = r.body["items"].as_array().expect("items").iter().map(|i| i["outcome"].as_str().unwrap_or("")).collect();
    assert_eq!(outcomes, ["created", "duplicate", "duplicate"]);
    let many: Vec<Value> = (0..1001).map(|n| alert(&format!("m-{n}"))).collect();
    app.post("/api/v1/alerts/batch", &owner.token, json!({ "alerts": many })).await.problem(422, "validation_failed");
    let audit = app.get("/api/v1/audit?action=alert.ingest", &owner.token).await.expect(200);
    assert!(audit.body["items"].as_array().is_some_and(|a| a.len() >= 4));
    app.shutdown().await;
}

#[tokio::test]
async fn alerts_are_triaged_promoted_merged_dismissed_and_snoozed() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    // An incident that already saw one of the observables.
    let seen = app.incident(&owner, "Earlier phishing").await.str("id");
    app.post(&format!("/api/v1/incidents/{seen}/iocs"), &owner.token, json!({ "type": "domain", "value": "evil.example" }))
        .await
        .expect(201);
    let a = app.post("/api/v1/alerts", &owner.token, alert("a-1")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let detail = app.get(&format!("/api/v1/alerts/{a}"), &owner.token).await.expect(200);
    assert_eq!(detail.body["seen_in"][0]["value"], "evil.example");
    assert_eq!(detail.body["seen_in"][0]["incidents"][0]["id"], seen.as_str());
    assert_eq!(detail.body["raw"]["rule"], "impossible-travel");

    // Promoted into a new incident: its observables are the indicators.
    let r = app.post(&format!("/api/v1/alerts/{a}/promote"), &owner.token, json!({ "category": "unauthorized_access" })).await.expect(200);
    assert_eq!(r.body["alert"]["status"], "promoted");
    let incident = r.body["incident"]["id"].as_str().expect("id").to_owned();
    assert_eq!(r.body["alert"]["incident_id"], incident.as_str());
    assert_eq!(
        (r.body["incident"]["title"].clone(), r.body["incident"]["severity"].clone()),
        (json!("Impossible travel for j.doe (a-1)"), json!("high"))
    );
    let iocs = app.get(&format!("/api/v1/incidents/{incident}/iocs"), &owner.token).await.expect(200);
    assert_eq!(iocs.body["items"].as_array().map(Vec::len), Some(2));
    let timeline = app.get(&format!("/api/v1/incidents/{incident}/timeline"), &owner.token).await.expect(200);
    assert!(timeline.body.to_string().contains("alert.promoted"));
    let again = app.post(&format!("/api/v1/alerts/{a}/promote"), &owner.token, json!({})).await.problem(409, "alert_promoted");
    assert!(again.body["detail"].as_str().is_some_and(|d| d.contains("INC-2")), "{}", again.body);
    app.post(&format!("/api/v1/alerts/{a}/dismiss"), &owner.token, json!({ "reason": "late" })).await.problem(409, "alert_promoted");

    // Merged into an existing incident by its number.
    let b = app.post("/api/v1/alerts", &owner.token, alert("a-2")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let r = app.post(&format!("/api/v1/alerts/{b}/promote"), &owner.token, json!({ "incident_id": "INC-1" })).await.expect(200);
    assert_eq!(r.body["incident"]["id"], seen.as_str());
    assert_eq!(app.get(&format!("/api/v1/incidents/{seen}/iocs"), &owner.token).await.body["items"].as_array().map(Vec::len), Some(2));
    app.post(&format!("/api/v1/alerts/{b}/promote"), &owner.token, json!({ "incident_id": "INC-99" })).await.problem(409, "alert_promoted");
    let c = app.post("/api/v1/alerts", &owner.token, alert("a-3")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/alerts/{c}/promote"), &owner.token, json!({ "incident_id": "INC-99" })).await.problem(404, "not_found");

    // Dismissed with a reason; snoozed until later; acknowledged.
    app.post(&format!("/api/v1/alerts/{c}/dismiss"), &owner.token, json!({ "reason": "" })).await.problem(422, "validation_failed");
    // Longer than the document allows as sent, even if it trims short (schemathesis found it).
    let padded = format!("/x{}", "\r".repeat(1000));
    app.post(&format!("/api/v1/alerts/{c}/dismiss"), &owner.token, json!({ "reason": padded })).await.problem(422, "validation_failed");
    let d = app.post(&format!("/api/v1/alerts/{c}/dismiss"), &owner.token, json!({ "reason": "known scanner" })).await.expect(200);
    assert_eq!((d.body["status"].clone(), d.body["dismiss_reason"].clone()), (json!("dismissed"), json!("known scanner")));
    let e = app.post("/api/v1/alerts", &owner.token, alert("a-4")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/alerts/{e}/snooze"), &owner.token, json!({ "until": "2000-01-01T00:00:00Z" }))
        .await
        .problem(422, "validation_failed");
    let until = chrono_in_an_hour();
    let s = app.post(&format!("/api/v1/alerts/{e}/snooze"), &owner.token, json!({ "until": until })).await.expect(200);
    assert_eq!(s.body["status"], "snoozed");
    let f = app.post("/api/v1/alerts", &owner.token, alert("a-5")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(&format!("/api/v1/alerts/{f}/acknowledge"), &owner.token, json!({})).await.expect(200).body["status"],
        "acknowledged"
    );

    // The queue's filters.
    let ids = |v: &Value| {
        v["items"].as_array().map(|a| a.iter().map(|i| i["id"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>()).unwrap_or_default()
    };
    assert_eq!(ids(&app.get("/api/v1/alerts?status=snoozed", &owner.token).await.expect(200).body), [e.as_str()]);
    assert_eq!(ids(&app.get("/api/v1/alerts?status=dismissed", &owner.token).await.expect(200).body), [c.as_str()]);
    assert_eq!(ids(&app.get("/api/v1/alerts?status=promoted", &owner.token).await.expect(200).body), [b.as_str(), a.as_str()]);
    assert_eq!(ids(&app.get("/api/v1/alerts?q=(a-5)", &owner.token).await.expect(200).body), [f.as_str()]);
    assert_eq!(
        app.get("/api/v1/alerts?q=100%25", &owner.token).await.expect(200).body["items"],
        json!([]),
        "% is a character, not a wildcard"
    );
    assert_eq!(app.get("/api/v1/alerts?source=crowdstrike", &owner.token).await.expect(200).body["items"], json!([]));
    let page = app.get("/api/v1/alerts?limit=2", &owner.token).await.expect(200);
    let next = page.body["next_cursor"].as_str().expect("a next page").to_owned();
    let rest = app.get(&format!("/api/v1/alerts?limit=10&cursor={next}"), &owner.token).await.expect(200);
    assert_eq!(ids(&page.body).len() + ids(&rest.body).len(), 5);
    app.shutdown().await;
}

fn chrono_in_an_hour() -> String {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64 + 3_600_000;
    ironcase_domain::Timestamp(at).to_rfc3339()
}

#[tokio::test]
async fn alerts_keep_to_the_tlp_ceiling_the_roles_and_the_plan() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let mut red = alert("r-1");
    red["tlp"] = json!("red");
    let red = app.post("/api/v1/alerts", &owner.token, red).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let key = app
        .post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "analyst", "tlp_max": "green" }))
        .await
        .expect(201)
        .str("key");
    app.get(&format!("/api/v1/alerts/{red}"), &key).await.problem(404, "not_found");
    assert_eq!(app.get("/api/v1/alerts", &key).await.expect(200).body["items"], json!([]));
    let mut above = alert("r-2");
    above["tlp"] = json!("amber");
    app.post("/api/v1/alerts", &key, above).await.problem(422, "validation_failed");
    let own = app.post("/api/v1/alerts", &key, alert("r-3")).await.expect(201);
    assert_eq!(own.body["alert"]["tlp"], "green", "a sender files at its ceiling");
    // A viewer reads the queue but does not send or triage.
    let viewer = app.member(&owner, "v@localhost", "viewer", None).await;
    app.get("/api/v1/alerts", &viewer.token).await.expect(200);
    app.post("/api/v1/alerts", &viewer.token, alert("v-1")).await.problem(403, "forbidden");
    app.post(&format!("/api/v1/alerts/{red}/dismiss"), &viewer.token, json!({ "reason": "x" })).await.problem(403, "forbidden");
    // A role that sees only phishing files promotions only there.
    let role = json!({ "name": "phishing desk", "base": "analyst", "conditions": { "categories": ["phishing"] } });
    app.post("/api/v1/roles", &owner.token, role).await.expect(201);
    let desk = app.member(&owner, "desk@localhost", "phishing desk", None).await;
    let mine = app.post("/api/v1/alerts", &desk.token, alert("d-1")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let r = app.post(&format!("/api/v1/alerts/{mine}/promote"), &desk.token, json!({})).await.problem(422, "validation_failed");
    assert!(r.body.to_string().contains("category"), "{}", r.body);
    let r = app.post(&format!("/api/v1/alerts/{mine}/promote"), &desk.token, json!({ "category": "phishing" })).await.expect(200);
    assert_eq!(r.body["incident"]["category"], "phishing");
    // The plan's monthly quota.
    let body = json!({ "name": "Small", "slug": "small", "plan": "free", "overrides": { "quotas": { "alerts_per_month": 2 } },
        "owner": { "email": "o@small.test", "name": "O", "password": PASSWORD } });
    app.post("/api/v1/admin/organizations", &owner.token, body).await.expect(201);
    let small = app.login("o@small.test", PASSWORD, Some("small")).await;
    app.post("/api/v1/alerts/batch", &small.token, json!({ "alerts": [alert("q-1"), alert("q-2")] })).await.expect(200);
    app.post("/api/v1/alerts", &small.token, alert("q-1")).await.expect(200);
    app.post("/api/v1/alerts", &small.token, alert("q-3")).await.problem(403, "quota_exceeded");
    let usage = app.get("/api/v1/organization/usage", &small.token).await.expect(200);
    let q = usage.body["quotas"].as_array().expect("quotas").iter().find(|q| q["quota"] == "alerts_per_month").cloned().expect("listed");
    assert_eq!((q["limit"].clone(), q["used"].clone()), (json!(2), json!(2)));
    app.shutdown().await;
}
