//! Analyzers: indicators sent (signed, checked by `standardwebhooks` in the
//! receiver of the webhook tests) on demand and by themselves, within a TLP
//! ceiling; their reports kept on the indicator; an answer that is not a
//! report is a failed attempt.

use serde_json::{json, Value};

use crate::helpers::{TestApp, User};
use crate::webhooks::{spawn, until, Receiver};

async fn ioc(app: &TestApp, by: &User, incident: &str, kind: &str, value: &str, tlp: &str) -> String {
    let r = app.post(&format!("/api/v1/incidents/{incident}/iocs"), &by.token, json!({ "type": kind, "value": value, "tlp": tlp })).await;
    r.expect(201).str("id")
}

async fn reports(app: &TestApp, by: &User, ioc: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/iocs/{ioc}/reports"), &by.token).await.expect(200);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn analyzers_enrich_indicators_on_demand_and_by_themselves_within_their_ceiling() {
    let Some(rx) = Receiver::start() else { return };
    let app = spawn().await;
    let owner = app.admin().await;
    let report = json!({ "verdict": "malicious", "summary": "C2 of a known campaign", "link": "https://intel.example/r/1",
                         "raw": { "score": 97 } });
    rx.control(json!({ "answer": report })).await;
    let created = app
        .post(
            "/api/v1/analyzers",
            &owner.token,
            json!({ "name": "Sandbox", "url": format!("{}/analyze", rx.url), "ioc_types": ["domain"] }),
        )
        .await
        .expect(201);
    let analyzer = created.str("id");
    assert!(created.str("secret").starts_with("whsec_"));
    assert_eq!(created.body["max_tlp"], "amber");
    rx.control(json!({ "secrets": [created.str("secret")] })).await;
    let incident = app.incident(&owner, "Beacon").await.str("id");

    // A new domain goes by itself; its report lands on the indicator.
    let domain = ioc(&app, &owner, &incident, "domain", "evil.example", "amber").await;
    until("the domain's report", || async { !reports(&app, &owner, &domain).await.is_empty() }).await;
    let got = reports(&app, &owner, &domain).await;
    assert_eq!((got[0]["verdict"].clone(), got[0]["analyzer"].clone()), (json!("malicious"), json!("Sandbox")));
    assert_eq!(got[0]["raw"], json!({ "score": 97 }));
    let log = rx.log().await;
    assert_eq!(log[0]["type"], "ioc.analyze");
    assert_eq!(log[0]["body"]["data"]["ioc"]["value"], "evil.example");
    assert_eq!(log[0]["verified"], json!([true]), "signed as Standard Webhooks");

    // An address is not of the types it takes: sent only when asked.
    let address = ioc(&app, &owner, &incident, "ipv4", "198.51.100.7", "green").await;
    rx.control(json!({ "answer": { "verdict": "benign" } })).await;
    let asked = app.post(&format!("/api/v1/iocs/{address}/analyze"), &owner.token, json!({})).await.expect(202);
    assert_eq!(asked.body["queued"][0]["analyzer_id"], analyzer.as_str());
    until("the address's report", || async { !reports(&app, &owner, &address).await.is_empty() }).await;
    assert_eq!(reports(&app, &owner, &address).await[0]["verdict"], "benign");
    assert_eq!(rx.log().await.len(), 2, "the address went once, when asked");

    // Above the ceiling: never sent, not even when asked.
    let secret = ioc(&app, &owner, &incident, "domain", "red.example", "red").await;
    let r = app.post(&format!("/api/v1/iocs/{secret}/analyze"), &owner.token, json!({})).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "analyzers");
    let r = app.post(&format!("/api/v1/iocs/{secret}/analyze"), &owner.token, json!({ "analyzers": [analyzer] })).await;
    r.problem(422, "validation_failed");
    let r = app.post(&format!("/api/v1/iocs/{secret}/analyze"), &owner.token, json!({ "analyzers": ["not-an-id"] })).await;
    assert_eq!(r.problem(422, "validation_failed").body["errors"][0]["field"], "analyzers[0]");

    // An answer that is not a report fails the attempt, which says why, and is retried.
    rx.control(json!({ "answer": { "verdict": "probably fine" } })).await;
    app.post(&format!("/api/v1/iocs/{domain}/analyze"), &owner.token, json!({})).await.expect(202);
    until("a failed attempt", || async {
        let r = app.get(&format!("/api/v1/analyzers/{analyzer}/attempts?outcome=failure"), &owner.token).await.expect(200);
        r.body["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let failed = app.get(&format!("/api/v1/analyzers/{analyzer}/attempts?outcome=failure"), &owner.token).await.expect(200);
    assert!(failed.body["items"][0]["error"].as_str().unwrap_or("").contains("verdict must be one of"), "{}", failed.body);
    assert_eq!(failed.body["items"][0]["status_code"], 200);
    assert_eq!(reports(&app, &owner, &domain).await[0]["verdict"], "malicious", "the last good report stays");
    rx.control(json!({ "answer": { "verdict": "suspicious" } })).await;
    until("the retry's report", || async { reports(&app, &owner, &domain).await[0]["verdict"] == "suspicious" }).await;

    // Listed, changed and deleted as analyzers, never as webhooks or channels.
    let listed = app.get("/api/v1/analyzers", &owner.token).await.expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert!(!listed.body.to_string().contains("whsec_"));
    app.get(&format!("/api/v1/notification-channels/{analyzer}"), &owner.token).await.problem(404, "not_found");
    app.get(&format!("/api/v1/webhooks/{analyzer}"), &owner.token).await.problem(404, "not_found");
    let changed =
        app.patch(&format!("/api/v1/analyzers/{analyzer}"), &owner.token, json!({ "max_tlp": "red", "ioc_types": [] }), None).await;
    assert_eq!((changed.body["max_tlp"].clone(), changed.body["ioc_types"].clone()), (json!("red"), json!([])));
    app.post(&format!("/api/v1/iocs/{secret}/analyze"), &owner.token, json!({})).await.expect(202);
    app.delete(&format!("/api/v1/analyzers/{analyzer}"), &owner.token).await.expect(204);
    assert_eq!(reports(&app, &owner, &domain).await[0]["analyzer"], "Sandbox", "reports outlive their analyzer");

    // A viewer reads reports but may not send indicators out.
    let viewer = app.member(&owner, "viewer@example.com", "viewer", None).await;
    assert_eq!(reports(&app, &viewer, &domain).await.len(), 1);
    app.post(&format!("/api/v1/iocs/{domain}/analyze"), &viewer.token, json!({})).await.problem(403, "forbidden");
    app.get("/api/v1/analyzers", &viewer.token).await.problem(403, "forbidden");
    app.shutdown().await;
}
