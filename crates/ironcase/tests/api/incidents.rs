use std::collections::HashSet;

use ironcase_domain::{Resolution, Status};
use proptest::prelude::*;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn create_read_by_id_and_number() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let r = app
        .post(
            "/api/v1/incidents",
            &u.token,
            json!({ "title": "  Ransomware on FS01 ", "description": "encrypted shares", "severity": "critical", "category": "malware", "tlp": "amber+strict", "tags": ["Ransomware", "fs01"], "assignee_id": u.id }),
        )
        .await
        .expect(201);
    let id = r.str("id");
    assert!(id.starts_with("inc_"));
    assert_eq!(r.body["number"], "INC-1");
    assert_eq!(r.body["title"], "Ransomware on FS01");
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["tlp"], "amber+strict");
    assert_eq!(r.body["tags"], json!(["ransomware", "fs01"]));
    assert_eq!(r.body["reporter_id"], u.id.as_str());
    assert_eq!(r.body["assignee_id"], u.id.as_str());
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.header("location"), Some(format!("/api/v1/incidents/{id}").as_str()));
    let by_id = app.get(&format!("/api/v1/incidents/{id}"), &u.token).await.expect(200);
    assert_eq!(by_id.header("etag"), Some("\"1\""));
    assert_eq!(by_id.body, r.body);
    let by_number = app.get("/api/v1/incidents/INC-1", &u.token).await.expect(200);
    assert_eq!(by_number.body, r.body);
    // Defaults.
    let d = app.incident(&u, "second").await;
    assert_eq!(d.body["number"], "INC-2");
    assert_eq!(d.body["tlp"], "amber");
    assert_eq!(d.body["description"], "");
    app.get("/api/v1/incidents/INC-3", &u.token).await.problem(404, "not_found");
    app.get("/api/v1/incidents/inc_00000000000000000000000000000000", &u.token).await.problem(404, "not_found");
    app.get("/api/v1/incidents/garbage", &u.token).await.problem(404, "not_found");
    // Assignee must be a member.
    app.post(
        "/api/v1/incidents",
        &u.token,
        json!({ "title": "t", "severity": "low", "category": "other", "assignee_id": "usr_00000000000000000000000000000000" }),
    )
    .await
    .problem(422, "validation_failed");
}

#[tokio::test]
async fn patch_needs_if_match_and_detects_stale_versions() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let id = app.incident(&u, "x").await.str("id");
    let path = format!("/api/v1/incidents/{id}");
    app.patch(&path, &u.token, json!({ "severity": "low" }), None).await.problem(428, "precondition_required");
    let r = app.patch(&path, &u.token, json!({ "severity": "low", "tags": ["a"] }), Some("\"1\"")).await.expect(200);
    assert_eq!(r.body["severity"], "low");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));
    app.patch(&path, &u.token, json!({ "severity": "high" }), Some("\"1\"")).await.problem(412, "version_conflict");
    app.patch(&path, &u.token, json!({ "severity": "high" }), Some("nonsense")).await.problem(412, "version_conflict");
    // Unassign with null; an unchanged patch does not bump the version.
    let r = app.patch(&path, &u.token, json!({ "assignee_id": u.id }), Some("\"2\"")).await.expect(200);
    assert_eq!(r.body["version"], 3);
    let r = app.patch(&path, &u.token, json!({ "assignee_id": null }), Some("\"3\"")).await.expect(200);
    assert_eq!(r.body["assignee_id"], json!(null));
    let r = app.patch(&path, &u.token, json!({ "severity": "low" }), Some("\"4\"")).await.expect(200);
    assert_eq!(r.body["version"], 4);
}

#[tokio::test]
async fn concurrent_patches_with_the_same_version_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    for round in 0..5 {
        let id = app.incident(&u, &format!("race {round}")).await.str("id");
        let path = format!("/api/v1/incidents/{id}");
        let futs = (0..8).map(|i| {
            let (app, path, token) = (&app, path.clone(), u.token.clone());
            async move { app.patch(&path, &token, json!({ "title": format!("writer {i}") }), Some("\"1\"")).await }
        });
        let results = futures::future::join_all(futs).await;
        let ok = results.iter().filter(|r| r.status == 200).count();
        let conflicts = results.iter().filter(|r| r.status == 412 && r.code() == "version_conflict").count();
        assert_eq!((ok, conflicts), (1, 7), "round {round}: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
        let now = app.get(&path, &u.token).await.expect(200);
        assert_eq!(now.body["version"], 2);
    }
}

#[tokio::test]
async fn workflow_milestones_resolution_and_timeline() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let id = app.incident(&u, "wf").await.str("id");
    let path = format!("/api/v1/incidents/{id}");
    let r = app.patch(&path, &u.token, json!({ "status": "resolved" }), Some("\"1\"")).await.problem(422, "invalid_transition");
    assert!(r.body["detail"].as_str().expect("detail").contains("open"));
    app.patch(&path, &u.token, json!({ "status": "closed" }), Some("\"1\"")).await.problem(422, "invalid_transition");
    app.patch(&path, &u.token, json!({ "resolution": "benign" }), Some("\"1\"")).await.problem(422, "validation_failed");
    let r = app.patch(&path, &u.token, json!({ "status": "in_progress" }), Some("\"1\"")).await.expect(200);
    assert!(r.body["acknowledged_at"].is_string());
    let r = app.patch(&path, &u.token, json!({ "status": "contained" }), Some("\"2\"")).await.expect(200);
    assert!(r.body["contained_at"].is_string());
    let r = app.patch(&path, &u.token, json!({ "status": "resolved" }), Some("\"3\"")).await.expect(200);
    assert!(r.body["resolved_at"].is_string());
    let r = app
        .patch(&path, &u.token, json!({ "status": "closed", "resolution": "true_positive", "title": "wf done" }), Some("\"4\""))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "closed");
    assert_eq!(r.body["resolution"], "true_positive");
    assert!(r.body["closed_at"].is_string());
    app.post(&format!("{path}/comments"), &u.token, json!({ "body": "post-mortem written" })).await.expect(201);

    let t = app.get(&format!("{path}/timeline"), &u.token).await.expect(200);
    let items = t.body["items"].as_array().expect("items");
    let kinds: Vec<&str> = items.iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(
        kinds,
        [
            "incident.created",
            "incident.status_changed",
            "incident.status_changed",
            "incident.status_changed",
            "incident.updated",
            "incident.status_changed",
            "comment.added"
        ]
    );
    assert_eq!(items[1]["data"]["from"], "open");
    assert_eq!(items[1]["data"]["to"], "in_progress");
    assert_eq!(items[4]["data"]["changes"][0], json!({ "field": "title", "old": "wf", "new": "wf done" }));
    assert_eq!(items[5]["data"]["resolution"], "true_positive");
    assert_eq!(items[6]["data"]["body"], "post-mortem written");
    assert!(items.iter().all(|e| e["actor_id"] == u.id.as_str() && e["at"].is_string()));
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn delete_hides_the_incident_and_keeps_the_trail() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let id = app.incident(&u, "to delete").await.str("id");
    app.delete(&format!("/api/v1/incidents/{id}"), &u.token).await.expect(204);
    app.get(&format!("/api/v1/incidents/{id}"), &u.token).await.problem(404, "not_found");
    app.delete(&format!("/api/v1/incidents/{id}"), &u.token).await.problem(404, "not_found");
    let list = app.get("/api/v1/incidents", &u.token).await.expect(200);
    assert_eq!(list.body["items"].as_array().expect("items").len(), 0);
    let a = app.get(&format!("/api/v1/audit?resource_id={id}"), &u.token).await.expect(200);
    let actions: Vec<&str> = a.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["incident.delete", "incident.create"]);
    // Numbers are not reused.
    assert_eq!(app.incident(&u, "next").await.body["number"], "INC-2");
}

#[tokio::test]
async fn list_filters_sorts_and_paginates_while_rows_arrive() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    for i in 0..25 {
        let sev = if i % 5 == 0 { "critical" } else { "low" };
        let tags = if i % 2 == 0 { json!(["even"]) } else { json!([]) };
        app.post("/api/v1/incidents", &u.token, json!({ "title": format!("n{i}"), "severity": sev, "category": "malware", "tags": tags }))
            .await
            .expect(201);
    }
    let crit = app.get("/api/v1/incidents?severity=critical", &u.token).await.expect(200);
    assert_eq!(crit.body["items"].as_array().expect("items").len(), 5);
    let even = app.get("/api/v1/incidents?tag=even&limit=200", &u.token).await.expect(200);
    assert_eq!(even.body["items"].as_array().expect("items").len(), 13);
    let none = app.get("/api/v1/incidents?category=phishing", &u.token).await.expect(200);
    assert_eq!(none.body["items"], json!([]));
    assert_eq!(none.body["next_cursor"], json!(null));

    // Walk pages of 7, oldest first, inserting new incidents between pages:
    // every original row is seen exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut extra = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/incidents?sort=created_at&limit=7&cursor={c}"),
            None => "/api/v1/incidents?sort=created_at&limit=7".to_owned(),
        };
        let page = app.get(&q, &u.token).await.expect(200);
        for it in page.body["items"].as_array().expect("items") {
            seen.push(it["number"].as_str().expect("number").to_owned());
        }
        app.incident(&u, &format!("late {extra}")).await;
        extra += 1;
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(extra < 50, "pagination does not end");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row was seen twice");
    let originals: Vec<String> = (1..=25).map(|n| format!("INC-{n}")).collect();
    assert_eq!(&seen[..25], &originals[..]);

    // Newest first by default.
    let first = app.get("/api/v1/incidents?limit=1", &u.token).await.expect(200);
    assert_eq!(first.body["items"][0]["number"], format!("INC-{}", 25 + extra));
    // Time filters.
    let future = app.get("/api/v1/incidents?created_after=2999-01-01T00:00:00Z", &u.token).await.expect(200);
    assert_eq!(future.body["items"], json!([]));
    let past = app.get("/api/v1/incidents?created_before=2999-01-01T00:00:00Z&limit=200", &u.token).await.expect(200);
    assert_eq!(past.body["items"].as_array().expect("items").len() as i64, 25 + extra);
}

fn statuses() -> impl Strategy<Value = Vec<(Status, Option<Resolution>)>> {
    prop::collection::vec(
        (prop::sample::select(Status::ALL.to_vec()), prop::option::of(prop::sample::select(Resolution::ALL.to_vec()))),
        1..8,
    )
}

/// Random walks through the API agree with the workflow table.
#[test]
fn workflow_over_http_matches_the_model() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(TestApp::spawn());
    let u = rt.block_on(app.admin());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
    runner
        .run(&statuses(), |steps| {
            rt.block_on(async {
                let created = app.incident(&u, "walk").await;
                let path = format!("/api/v1/incidents/{}", created.str("id"));
                let (mut status, mut version) = (Status::Open, 1);
                for (to, res) in steps {
                    let mut body = json!({ "status": to });
                    if let Some(r) = res {
                        body["resolution"] = json!(r);
                    }
                    let r = app.patch(&path, &u.token, body, Some(&format!("\"{version}\""))).await;
                    let allowed = to == status || (status.can_move_to(to) && (to != Status::Closed || res.is_some()));
                    let resolution_misplaced = res.is_some() && to != Status::Closed;
                    if resolution_misplaced {
                        prop_assert_eq!(r.status.as_u16(), 422);
                    } else if allowed {
                        prop_assert_eq!(r.status.as_u16(), 200, "{} -> {}: {}", status, to, r.body);
                        if to != status {
                            version += 1;
                        }
                        status = to;
                    } else {
                        prop_assert_eq!(r.status.as_u16(), 422, "{} -> {} should be refused", status, to);
                        prop_assert_eq!(r.code(), "invalid_transition");
                    }
                    prop_assert_eq!(r.status.as_u16() != 500, true);
                }
                let now = app.get(&path, &u.token).await;
                prop_assert_eq!(now.body["status"].as_str(), Some(status.as_str()));
                prop_assert_eq!(now.body["version"].as_i64(), Some(version));
                Ok(())
            })
        })
        .expect("workflow property");
    rt.block_on(app.shutdown());
}
