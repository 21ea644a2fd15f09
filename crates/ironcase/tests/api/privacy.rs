//! Data-subject access requests: an archive of everything the organisation
//! holds about a member (or anyone, by e-mail address), downloadable once,
//! sealed until then; the request's deadline; owners and admins only;
//! audited; nothing of another organisation's.

use serde_json::{json, Value};

use crate::helpers::TestApp;

#[tokio::test]
async fn an_access_request_yields_everything_held_about_the_subject_once() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, owner) = app.org(&operator, "dsr").await;
    let dana = app.member(&owner, "dana@dsr.test", "analyst", Some("dsr")).await;
    let inc = app.incident(&dana, "Lure sent to dana@dsr.test and others").await.str("id");
    app.post(&format!("/api/v1/incidents/{inc}/comments"), &dana.token, json!({ "body": "I clicked it" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{inc}/comments"), &owner.token, json!({ "body": "ask Erin@Outside.example" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{inc}/iocs"), &owner.token, json!({ "type": "email", "value": "erin@outside.example" }))
        .await
        .expect(201);
    // Another organisation's mention is not this one's to give.
    app.incident(&operator, "erin@outside.example wrote to us too").await;

    app.post("/api/v1/privacy/requests", &dana.token, json!({ "type": "access", "subject": { "account_id": dana.id } }))
        .await
        .problem(403, "forbidden");
    for bad in [json!({ "type": "access", "subject": {} }), json!({ "type": "access", "subject": { "email": "not an address" } })] {
        app.post("/api/v1/privacy/requests", &owner.token, bad).await.problem(422, "validation_failed");
    }
    app.post("/api/v1/privacy/requests", &owner.token, json!({ "type": "access", "subject": { "account_id": operator.id } }))
        .await
        .problem(404, "not_found");

    let r = app
        .post("/api/v1/privacy/requests", &owner.token, json!({ "type": "access", "subject": { "account_id": dana.id } }))
        .await
        .expect(201);
    assert_eq!((r.body["status"].clone(), r.body["subject_email"].clone()), (json!("completed"), json!("dana@dsr.test")));
    let id = r.str("id");
    let created = ironcase_domain::Timestamp::parse_rfc3339(r.body["created_at"].as_str().expect("created")).expect("a time");
    let due = ironcase_domain::Timestamp::parse_rfc3339(r.body["due_at"].as_str().expect("due")).expect("a time");
    assert_eq!(due.0 - created.0, 30 * 86_400_000);
    let res =
        app.client.get(app.url(&format!("/api/v1/privacy/requests/{id}/archive"))).bearer_auth(&owner.token).send().await.expect("sent");
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.expect("body");
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), r.body["archive_sha256"].as_str().expect("sha"));
    let a: Value = serde_json::from_slice(&bytes).expect("JSON");
    let held = &a["held"];
    assert_eq!(held["account"]["email"], "dana@dsr.test");
    assert_eq!(held["account"]["membership"]["role"], "analyst");
    assert!(!held["sessions"]["items"].as_array().expect("sessions").is_empty());
    assert!(held["audit_entries"]["items"].as_array().expect("entries").iter().any(|e| e["action"] == "incident.create"));
    assert_eq!(held["comments_written"]["items"][0]["body"], "I clicked it");
    assert_eq!(held["incidents_mentioning"]["items"][0]["id"], inc.as_str());
    // Once only.
    app.get(&format!("/api/v1/privacy/requests/{id}/archive"), &owner.token).await.problem(410, "archive_gone");
    let seen = app.get(&format!("/api/v1/privacy/requests/{id}"), &owner.token).await.expect(200);
    assert!(seen.body["downloaded_at"].is_string());

    // Anyone, by address: what mentions them, here only.
    let r = app
        .post("/api/v1/privacy/requests", &owner.token, json!({ "type": "access", "subject": { "email": "ERIN@outside.example" } }))
        .await
        .expect(201);
    assert_eq!(r.body["subject_account_id"], json!(null));
    let a = app.get(&format!("/api/v1/privacy/requests/{}/archive", r.str("id")), &owner.token).await.expect(200).body;
    assert!(a["held"]["account"].is_null());
    assert_eq!(a["held"]["incidents_mentioning"]["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(a["held"]["comments_mentioning"]["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(a["held"]["indicators_mentioning"]["items"][0]["value"], "erin@outside.example");

    let list = app.get("/api/v1/privacy/requests", &owner.token).await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(2));
    let log = app.get("/api/v1/audit?action=privacy.request", &owner.token).await.expect(200);
    assert_eq!(log.body["items"].as_array().map(Vec::len), Some(2));
    assert!(!log.body.to_string().contains("erin@outside.example"), "the audit log names no one by address");
    let downloads = app.get("/api/v1/audit?action=privacy.archive_downloaded", &owner.token).await.expect(200);
    assert_eq!(downloads.body["items"].as_array().map(Vec::len), Some(2));
    // The compliance report counts them.
    let gdpr = app.get("/api/v1/compliance/gdpr", &owner.token).await.expect(200).body;
    let rights = gdpr["controls"].as_array().expect("controls").iter().find(|c| c["id"] == "Art. 15–17").expect("rights");
    assert_eq!((rights["status"].clone(), rights["checks"][0]["figures"]["requests"].clone()), (json!("met"), json!(2)));
}
