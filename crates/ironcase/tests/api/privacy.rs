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

/// Erasure by crypto-shredding: a member's addresses, user agents and
/// e-mail addresses in the audit log become unreadable for good, while the
/// chain, the tree and the checkpoints signed before still verify, offline
/// too; the member is gone, their comments stay with the author erased.
#[tokio::test]
async fn an_erasure_destroys_the_subjects_keys_and_the_log_still_verifies() {
    use crate::audit_proofs::{checkpoint_of, export, is_entry, lines, unlines, verify_offline};
    let app = TestApp::spawn_with(|c| {
        c.audit_checkpoint_every = 4;
        c.audit_checkpoint_seconds = 3600;
    })
    .await;
    let owner = app.admin().await;
    let dana = app.member(&owner, "dana@erase.test", "analyst", None).await;
    let inc = app.incident(&dana, "Dana's report").await.str("id");
    app.post(&format!("/api/v1/incidents/{inc}/comments"), &dana.token, json!({ "body": "I clicked it" })).await.expect(201);
    // A failed sign-in with her address: an anonymous entry holding it.
    app.login_raw("dana@erase.test", "wrong password", None).await.expect(401);
    app.incident(&owner, "The owner's own").await;
    let vkey =
        app.get("/api/v1/audit/public-key", &owner.token).await.expect(200).body["keys"][0]["vkey"].as_str().expect("vkey").to_owned();

    // Before: her data is there, sealed outside what the chain hashes, and
    // the export carries it opened, checked against its commitments.
    let log = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body;
    let hers = |log: &Value| -> Vec<Value> {
        log["items"].as_array().expect("items").iter().filter(|e| e["actor_id"] == json!(dana.id)).cloned().collect()
    };
    assert!(hers(&log).iter().all(|e| e["source_ip"] == "127.0.0.1" && e["personal_data_erased"] == false), "{log}");
    assert!(log.to_string().contains("dana@erase.test"), "her address is readable before");
    // A checkpoint signed before the erasure (whatever size it signs).
    let before = checkpoint_of(&app, &owner, 1).await;
    let text = export(&app, &owner).await;
    let dir = tempfile::tempdir().expect("dir");
    let (ok, report) = verify_offline(dir.path(), "before", &text, &vkey, None);
    assert!(ok && report["personal_parts"].as_i64() > Some(0) && report["personal_parts_erased"] == 0, "{report}");
    // Personal data changed in the export no longer matches its commitment.
    let mut forged = lines(&text);
    let k = forged.iter().position(|l| l["kind"] == "personal" && l.to_string().contains("127.0.0.1")).expect("an address's line");
    let seq = forged[k]["seq"].as_i64().expect("seq");
    let fields = forged[k]["parts"][0]["fields"].as_str().expect("fields").replace("127.0.0.1", "192.0.2.66");
    assert!(fields.contains("192.0.2.66"), "{}", forged[k]);
    forged[k]["parts"][0]["fields"] = json!(fields);
    let (ok, report) = verify_offline(dir.path(), "forged-personal", &unlines(&forged), &vkey, None);
    assert!(!ok && report["first_bad_seq"].as_i64() == Some(seq), "{report}");

    // Only owners and admins, never oneself.
    app.post("/api/v1/privacy/requests", &dana.token, json!({ "type": "erasure", "subject": { "account_id": dana.id } }))
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/privacy/requests", &owner.token, json!({ "type": "erasure", "subject": { "account_id": owner.id } }))
        .await
        .problem(422, "validation_failed");
    let r = app
        .post("/api/v1/privacy/requests", &owner.token, json!({ "type": "erasure", "subject": { "account_id": dana.id } }))
        .await
        .expect(201);
    assert_eq!(
        (r.body["type"].clone(), r.body["status"].clone(), r.body["subject_email"].clone()),
        (json!("erasure"), json!("completed"), json!(null))
    );

    // After: she is signed out and gone; what she wrote stays, author erased.
    app.get("/api/v1/auth/me", &dana.token).await.expect(401);
    app.login_raw("dana@erase.test", crate::helpers::PASSWORD, None).await.expect(401);
    let res = app.client.get(app.url("/api/v1/organization/export")).bearer_auth(&owner.token).send().await.expect("sent");
    let exported = res.text().await.expect("body");
    let incident: Value =
        exported.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON")).find(|l| l["id"] == json!(inc)).expect("the incident");
    let c = &incident["comments"][0];
    assert_eq!((c["body"].clone(), c["author_erased"].clone()), (json!("I clicked it"), json!(true)), "{incident}");
    // Her personal data in the log can no longer be read; the owner's can.
    let log = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body;
    assert!(!hers(&log).is_empty() && hers(&log).iter().all(|e| e["source_ip"].is_null() && e["personal_data_erased"] == true), "{log}");
    assert!(!log.to_string().contains("dana@erase.test"), "her address is gone from the log");
    let owners: Vec<Value> = log["items"].as_array().expect("items").iter().filter(|e| e["actor_id"] == json!(owner.id)).cloned().collect();
    assert!(owners.iter().all(|e| e["source_ip"] == "127.0.0.1"), "{log}");
    let by_address = app.get("/api/v1/audit?source_ip=127.0.0.1&limit=200", &owner.token).await.expect(200).body;
    assert!(hers(&by_address).is_empty() && !by_address["items"].as_array().expect("items").is_empty(), "{by_address}");
    let erasure = app.get("/api/v1/audit?action=privacy.erasure", &owner.token).await.expect(200).body;
    let d = &erasure["items"][0]["details"];
    assert!(d["keys_destroyed"].as_i64() >= Some(2) && d["sessions_ended"].as_i64() >= Some(1) && d["pseudonymised"] == true, "{d}");

    // The chain, the tree and every checkpoint still hold, online and off.
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200).body;
    assert_eq!(v["ok"], true, "{v}");
    // Enough entries for the next checkpoint (every 4), which extends the one before.
    for i in 0..4 {
        app.incident(&owner, &format!("after {i}")).await;
    }
    let from = before["size"].as_i64().expect("size");
    let after = checkpoint_of(&app, &owner, from + 1).await;
    let to = after["size"].as_i64().expect("size");
    app.get(&format!("/api/v1/audit/proof/consistency?from={from}&to={to}"), &owner.token).await.expect(200);
    let text = export(&app, &owner).await;
    assert!(!text.contains("dana@erase.test"), "the export holds no trace of her address");
    let (ok, report) = verify_offline(dir.path(), "after", &text, &vkey, before["note"].as_str());
    assert!(ok && report["personal_parts_erased"].as_i64() >= Some(hers(&log).len() as i64), "{report}");
    assert!(lines(&text).iter().filter(|l| is_entry(l)).count() as i64 == report["entries"].as_i64().expect("entries"));
    // By address, someone who was never a member: their share goes too.
    let r = app
        .post("/api/v1/privacy/requests", &owner.token, json!({ "type": "erasure", "subject": { "email": "nobody@else.test" } }))
        .await
        .expect(201);
    assert_eq!(r.body["subject_account_id"], json!(null));
    app.shutdown().await;
}
