use serde_json::{json, Value};

use crate::helpers::*;

fn numbers(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> =
        r.body["items"].as_array().expect("items").iter().map(|h| h["incident"]["number"].as_str().expect("number").to_owned()).collect();
    v.sort();
    v
}

async fn create(app: &TestApp, u: &User, body: Value) -> String {
    app.post("/api/v1/incidents", &u.token, body).await.expect(201).str("id")
}

#[tokio::test]
async fn search_finds_text_comments_and_indicators_with_filters_and_facets() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let a = create(&app, &u, json!({ "title": "Ransomware on file server", "description": "Lateral movement from the finance VLAN", "severity": "critical", "category": "malware", "tags": ["ransomware", "finance"], "assignee_id": u.id })).await;
    let b = create(&app, &u, json!({ "title": "Phishing wave", "description": "Credential harvesting pages", "severity": "high", "category": "phishing", "tags": ["finance"] })).await;
    let _c = create(&app, &u, json!({ "title": "Test ransomware drill", "description": "Tabletop exercise", "severity": "low", "category": "other", "tlp": "green" })).await;
    app.post(&format!("/api/v1/incidents/{b}/comments"), &u.token, json!({ "body": "The kit used a cobalt strike beacon" }))
        .await
        .expect(201);
    app.post(&format!("/api/v1/incidents/{b}/iocs"), &u.token, json!({ "type": "ipv4", "value": "203[.]0[.]113[.]9" })).await.expect(201);

    // A 201 is already findable; words match title and description.
    let r = app.get("/api/v1/search?q=ransomware", &u.token).await.expect(200);
    assert_eq!(numbers(&r), ["INC-1", "INC-3"]);
    assert_eq!(r.body["total"], 2);
    let hl = r.body["items"][0]["highlights"][0].as_str().expect("highlight");
    assert!(hl.to_lowercase().contains("<mark>ransomware</mark>"), "{hl}");
    assert!(r.body["items"][0]["score"].is_number());
    assert_eq!(r.body["facets"]["severity"], json!({ "critical": 1, "low": 1 }));
    assert_eq!(r.body["facets"]["tag"], json!({ "finance": 1, "ransomware": 1 }));
    assert_eq!(r.body["facets"]["category"], json!({ "malware": 1, "other": 1 }));

    // Exclusions, phrases, OR, comments and indicators.
    assert_eq!(numbers(&app.get("/api/v1/search?q=ransomware%20-drill", &u.token).await.expect(200)), ["INC-1"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=%22lateral%20movement%22", &u.token).await.expect(200)), ["INC-1"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=%22movement%20lateral%22", &u.token).await.expect(200)), Vec::<String>::new());
    assert_eq!(numbers(&app.get("/api/v1/search?q=tabletop%20OR%20harvesting", &u.token).await.expect(200)), ["INC-2", "INC-3"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=cobalt%20beacon", &u.token).await.expect(200)), ["INC-2"]);
    // Words of one query may match different documents of one incident.
    assert_eq!(numbers(&app.get("/api/v1/search?q=phishing%20cobalt", &u.token).await.expect(200)), ["INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=203.0.113.9", &u.token).await.expect(200)), ["INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=ioc:203%5B.%5D0%5B.%5D113%5B.%5D9", &u.token).await.expect(200)), ["INC-2"]);

    // Filters alone, and with words.
    assert_eq!(numbers(&app.get("/api/v1/search?q=tag:finance", &u.token).await.expect(200)), ["INC-1", "INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=tag:finance%20severity:high", &u.token).await.expect(200)), ["INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=severity:high%20severity:critical", &u.token).await.expect(200)), ["INC-1", "INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=assignee:me", &u.token).await.expect(200)), ["INC-1"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=ransomware%20tlp:green", &u.token).await.expect(200)), ["INC-3"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=category:phishing%20status:open", &u.token).await.expect(200)), ["INC-2"]);
    assert_eq!(app.get("/api/v1/search?q=created:%3E2999-01-01", &u.token).await.expect(200).body["total"], 0);
    assert_eq!(app.get("/api/v1/search?q=created:%3C2999-01-01", &u.token).await.expect(200).body["total"], 3);

    // Edits are findable at once; deleted incidents are gone.
    let inc = app.get(&format!("/api/v1/incidents/{a}"), &u.token).await;
    let v = inc.header("etag").expect("etag").to_owned();
    app.patch(&format!("/api/v1/incidents/{a}"), &u.token, json!({ "title": "Ryuk detonation" }), Some(&v)).await.expect(200);
    assert_eq!(numbers(&app.get("/api/v1/search?q=ryuk", &u.token).await.expect(200)), ["INC-1"]);
    assert_eq!(numbers(&app.get("/api/v1/search?q=ransomware", &u.token).await.expect(200)), ["INC-3"]);
    app.delete(&format!("/api/v1/incidents/{b}"), &u.token).await.expect(204);
    assert_eq!(app.get("/api/v1/search?q=cobalt", &u.token).await.expect(200).body["total"], 0);
}

#[tokio::test]
async fn search_pages_and_refuses_bad_queries_with_positions() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    for i in 0..7 {
        create(&app, &u, json!({ "title": format!("Beacon number {i}"), "severity": "low", "category": "other" })).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app.get(&format!("/api/v1/search?q=beacon&limit=3{cursor}"), &u.token).await.expect(200);
        assert_eq!(r.body["total"], 7);
        seen.extend(numbers(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    let r = app.get("/api/v1/search?q=ransom%20%22lateral", &u.token).await.problem(400, "invalid_query");
    assert_eq!(r.body["position"], 7);
    let r = app.get("/api/v1/search?q=severity:huge", &u.token).await.problem(400, "invalid_query");
    assert_eq!(r.body["position"], 9);
    app.get("/api/v1/search?q=colour:red", &u.token).await.problem(400, "invalid_query");
    app.get("/api/v1/search?q=%20%20", &u.token).await.problem(400, "invalid_query");
    app.get("/api/v1/search", &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/search?q=a&limit=0", &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/search?q=a&cursor=-5", &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/search?q=a&sort=x", &u.token).await.problem(422, "validation_failed");
    // FTS syntax in words is taken literally, never as operators.
    for q in ["NEAR(a%20b)", "a*", "%5E", "col:umn", "%22a%22%22b%22", "AND", "NOT"] {
        let r = app.get(&format!("/api/v1/search?q={q}"), &u.token).await;
        assert!(r.status == 200 || (r.status == 400 && r.code() == "invalid_query"), "{q}: {} {}", r.status, r.body);
    }
    // Viewers search too.
    let v = app.member(&u, "v@example.com", "viewer", None).await;
    assert_eq!(app.get("/api/v1/search?q=beacon", &v.token).await.expect(200).body["total"], 7);
}

#[tokio::test]
async fn similar_incidents_rank_shared_indicators_then_text() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let one = create(&app, &u, json!({ "title": "Ransomware at the plant", "severity": "high", "category": "malware" })).await;
    let two = create(&app, &u, json!({ "title": "Odd traffic", "severity": "low", "category": "other" })).await;
    let three = create(&app, &u, json!({ "title": "Beaconing host", "severity": "low", "category": "other" })).await;
    let _four = create(&app, &u, json!({ "title": "Ransomware email", "severity": "low", "category": "phishing" })).await;
    let _five = create(&app, &u, json!({ "title": "Lost laptop", "severity": "low", "category": "other" })).await;
    let add = |inc: String, v: &'static str| {
        let (app, token) = (&app, u.token.clone());
        async move { app.post(&format!("/api/v1/incidents/{inc}/iocs"), &token, json!({ "type": "ipv4", "value": v })).await.expect(201) }
    };
    add(one.clone(), "203.0.113.9").await;
    add(one.clone(), "198.51.100.7").await;
    add(two.clone(), "203.0.113.9").await;
    add(two.clone(), "198.51.100.7").await;
    add(three.clone(), "203.0.113.9").await;

    let r = app.get(&format!("/api/v1/incidents/{one}/similar"), &u.token).await.expect(200);
    let items = r.body["items"].as_array().expect("items");
    let order: Vec<&str> = items.iter().map(|i| i["incident"]["number"].as_str().expect("number")).collect();
    assert_eq!(order, ["INC-2", "INC-3", "INC-4"]);
    assert_eq!(items[0]["shared_iocs"], json!([{ "type": "ipv4", "value": "198.51.100.7" }, { "type": "ipv4", "value": "203.0.113.9" }]));
    assert_eq!(items[1]["shared_iocs"].as_array().map(Vec::len), Some(1));
    assert_eq!(items[2]["shared_iocs"], json!([]));
    assert!(items[2]["text_score"].is_number());
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{one}/similar?limit=1"), &u.token).await.body["items"].as_array().map(Vec::len),
        Some(1)
    );
    app.get(&format!("/api/v1/incidents/{one}/similar?limit=0"), &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/incidents/INC-99/similar", &u.token).await.problem(404, "not_found");
}
