//! A parent organisation reads (never writes) a child's incidents, evidence
//! metadata and audit log only while the child grants it; each read is
//! audited in both organisations.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_parent_reads_a_child_only_while_granted() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let parent_id = app.get("/api/v1/organization", &op.token).await.expect(200).str("id");
    let r = app
        .post(
            "/api/v1/admin/organizations",
            &op.token,
            json!({ "name": "Kid", "slug": "kid", "parent_id": parent_id, "owner": { "email": "o@kid.test", "name": "O", "password": PASSWORD } }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["parent_id"], parent_id.as_str());
    let kid = r.str("id");
    let kid_owner = app.login("o@kid.test", PASSWORD, Some("kid")).await;
    let inc = app.incident(&kid_owner, "kid secret").await.str("id");
    app.upload(&kid_owner.token, &inc, json!({ "name": "k.log", "kind": "log_file" }), b"kid".to_vec()).await.expect(201);
    let (_, stranger) = app.org(&op, "stranger").await;

    let children = app.get("/api/v1/organization/children", &op.token).await.expect(200);
    assert_eq!(children.body["items"][0]["organization"]["id"], kid.as_str());
    assert_eq!(children.body["items"][0]["parent_access"], false);
    let base = format!("/api/v1/organizations/{kid}");
    let reads = [
        format!("{base}/incidents"),
        format!("{base}/incidents/{inc}"),
        format!("{base}/incidents/{inc}/evidence"),
        format!("{base}/audit"),
    ];
    for path in &reads {
        app.get(path, &op.token).await.problem(404, "not_found");
    }

    app.send(Method::PUT, "/api/v1/organization/parent-access", Some(&kid_owner.token), Some(json!({ "granted": true })), &[])
        .await
        .expect(200);
    let list = app.get(&format!("{base}/incidents"), &op.token).await.expect(200);
    assert_eq!(list.body["items"][0]["title"], "kid secret");
    assert_eq!(app.get(&format!("{base}/incidents/INC-1"), &op.token).await.expect(200).body["id"], inc.as_str());
    let ev = app.get(&format!("{base}/incidents/{inc}/evidence"), &op.token).await.expect(200);
    assert_eq!(ev.body["items"][0]["name"], "k.log");
    app.get(&format!("{base}/audit"), &op.token).await.expect(200);
    // Never write: no such routes, and the child's own routes are another tenant's.
    app.patch(&format!("{base}/incidents/{inc}"), &op.token, json!({ "title": "x" }), Some("\"1\""))
        .await
        .problem(405, "method_not_allowed");
    app.get(&format!("/api/v1/incidents/{inc}"), &op.token).await.problem(404, "not_found");
    // Not the parent: nothing, granted or not.
    for path in &reads {
        app.get(path, &stranger.token).await.problem(404, "not_found");
    }
    // A viewer of the parent is not an owner or admin.
    let viewer = app.member(&op, "v@example.com", "viewer", None).await;
    app.get(&format!("{base}/incidents"), &viewer.token).await.problem(403, "forbidden");
    app.get("/api/v1/organization/children", &viewer.token).await.problem(403, "forbidden");

    // Each read is in both audit logs.
    let here = app.get("/api/v1/audit?action=organization.child_read", &op.token).await.expect(200);
    let there = app.get("/api/v1/audit?action=organization.child_read", &kid_owner.token).await.expect(200);
    assert_eq!(here.body["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(there.body["items"].as_array().map(Vec::len), Some(4));

    // Revoked: gone again. An organisation without a parent has nothing to grant.
    app.send(Method::PUT, "/api/v1/organization/parent-access", Some(&kid_owner.token), Some(json!({ "granted": false })), &[])
        .await
        .expect(200);
    for path in &reads {
        app.get(path, &op.token).await.problem(404, "not_found");
    }
    app.send(Method::PUT, "/api/v1/organization/parent-access", Some(&stranger.token), Some(json!({ "granted": true })), &[])
        .await
        .problem(409, "no_parent");
    // A parent that does not exist is refused at creation.
    app.post(
        "/api/v1/admin/organizations",
        &op.token,
        json!({ "name": "Orphan", "slug": "orphan", "parent_id": "org_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b", "owner": { "email": "o@orphan.test", "name": "O", "password": PASSWORD } }),
    )
    .await
    .problem(422, "validation_failed");
}
