//! Offboarding an organisation: its keys destroyed first, then its evidence
//! files and every row of it, on both backends; a deletion certificate
//! signed with the audit key (checked with Cloudflare's `signed_note`) and
//! kept in the platform's audit log; only by an operator, never their own.

use serde_json::{json, Value};

use crate::helpers::{direct_sql, TestApp, PASSWORD};

#[tokio::test]
async fn an_organisation_is_deleted_for_good_with_a_signed_certificate() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (org, owner) = app.org(&operator, "leaving").await;
    let id = org["id"].as_str().expect("id").to_owned();
    app.member(&owner, "m@leaving.test", "analyst", Some("leaving")).await;
    let inc = app.incident(&owner, "their last incident").await.str("id");
    app.post(&format!("/api/v1/incidents/{inc}/comments"), &owner.token, json!({ "body": "note" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{inc}/iocs"), &owner.token, json!({ "type": "domain", "value": "leaving.example" }))
        .await
        .expect(201);
    app.upload(&owner.token, &inc, json!({ "name": "a.log", "kind": "log_file" }), b"secret bytes".to_vec()).await.expect(201);
    app.post("/api/v1/api-keys", &owner.token, json!({ "name": "k", "role": "viewer" })).await.expect(201);
    app.post("/api/v1/alerts", &owner.token, json!({ "source": "edr", "source_ref": "1", "type": "x", "title": "a", "severity": "low" }))
        .await
        .expect(201);
    app.put_json(&format!("/api/v1/incidents/{inc}/breach"), &owner.token, json!({})).await.expect(200);
    let ours = app.incident(&operator, "stays").await.str("id");
    assert_eq!(app.blob_files().len(), 1);

    let path = format!("/api/v1/admin/organizations/{id}/offboard");
    app.post(&path, &owner.token, json!({ "confirm": "leaving" })).await.problem(403, "forbidden");
    app.post(&path, &operator.token, json!({ "confirm": "leavin" })).await.problem(422, "validation_failed");
    let own = app.get("/api/v1/organization", &operator.token).await.expect(200).str("id");
    app.post(&format!("/api/v1/admin/organizations/{own}/offboard"), &operator.token, json!({ "confirm": "default" }))
        .await
        .problem(409, "own_organization");

    let r = app.post(&path, &operator.token, json!({ "confirm": "leaving" })).await.expect(200);
    let cert = &r.body["certificate"];
    assert_eq!(cert["organization"]["slug"], "leaving");
    assert_eq!((cert["data_keys_destroyed"].clone(), cert["evidence_blobs_removed"].clone()), (json!(1), json!(1)));
    let rows = &cert["rows_removed"];
    for (table, at_least) in [
        ("incident", 1),
        ("comment", 1),
        ("ioc", 1),
        ("evidence", 1),
        ("api_key", 1),
        ("alert", 1),
        ("membership", 2),
        ("audit_log", 5),
        ("organization", 1),
        ("incident_breach", 1),
    ] {
        assert!(rows[table].as_i64() >= Some(at_least), "{table}: {rows}");
    }
    // The note: signed with the published audit key, over the certificate.
    let keys = app.get("/api/v1/audit/public-key", "").await.expect(200);
    let vkey = keys.body["keys"][0]["vkey"].as_str().expect("vkey");
    let verifier = signed_note::StandardVerifier::new(vkey).expect("the published key parses");
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let note = signed_note::Note::from_bytes(r.body["note"].as_str().expect("note").as_bytes()).expect("a signed note");
    note.verify(&list).expect("signed by the published key");
    let signed: Value = serde_json::from_slice(note.text()).expect("the text is the certificate");
    assert_eq!(&signed, cert);

    // Gone: its files, its rows, its sessions; the rest untouched.
    assert!(app.blob_files().is_empty());
    for table in ["incident", "comment", "evidence", "data_key", "audit_log", "membership", "session", "organization", "event", "alert"] {
        let n = direct_sql(&app, &format!("select count(*) from {table} where organization_id = '{id}'")).await;
        assert_eq!(n, Some(0), "{table}");
    }
    app.get("/api/v1/incidents", &owner.token).await.problem(401, "unauthenticated");
    app.login_raw("owner@leaving.test", PASSWORD, Some("leaving")).await.problem(401, "invalid_credentials");
    app.get(&format!("/api/v1/incidents/{ours}"), &operator.token).await.expect(200);
    let listed = app.get("/api/v1/admin/organizations?limit=200", &operator.token).await.expect(200);
    assert!(!listed.body.to_string().contains(&id));
    let kept =
        direct_sql(&app, "select count(*) from audit_log where organization_id = 'platform' and action = 'organization.deleted'").await;
    assert_eq!(kept, Some(1), "the certificate is in the platform's log");
    app.post(&path, &operator.token, json!({ "confirm": "leaving" })).await.problem(404, "not_found");
}
