//! Retention under a frozen clock: policies remove what they no longer keep
//! (closed incidents with everything of theirs, evidence files, alerts,
//! events, ended sessions, audit entries up to a signed checkpoint), never
//! what a legal hold protects; the pruned audit log still verifies, on the
//! server and offline.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{TestApp, User, PASSWORD};

const DAY: i64 = 86_400;

async fn spawn() -> TestApp {
    let app = TestApp::spawn_with(|c| {
        c.audit_checkpoint_every = 4;
        c.audit_checkpoint_seconds = 3600;
        c.retention_seconds = 3600;
    })
    .await;
    app.clock.freeze();
    app
}

/// A count from a preview or a run, by kind.
fn count(r: &Value, kind: &str) -> i64 {
    r["kinds"].as_array().expect("kinds").iter().find(|k| k["kind"] == kind).expect("the kind")["count"].as_i64().expect("count")
}

async fn close(app: &TestApp, u: &User, id: &str) {
    app.patch(&format!("/api/v1/incidents/{id}"), &u.token, json!({ "status": "closed", "resolution": "false_positive" }), Some("\"1\""))
        .await
        .expect(200);
}

/// The latest checkpoint once it signs the whole log (at most 10 s).
async fn signed_to_head(app: &TestApp, u: &User) -> i64 {
    for _ in 0..200 {
        let head = app.get("/api/v1/audit?limit=1", &u.token).await.expect(200).body["items"][0]["seq"].as_i64().expect("seq");
        let k = app.get("/api/v1/audit/checkpoint", &u.token).await;
        // The two reads above add no entry; a checkpoint every 4 entries
        // leaves at most 3 unsigned.
        if k.status == 200 && k.body["size"].as_i64().unwrap_or(0) + 3 >= head {
            return k.body["size"].as_i64().expect("size");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint near the head");
}

#[tokio::test]
async fn policies_remove_what_they_no_longer_keep_but_never_what_is_held() {
    let app = spawn().await;
    let operator = app.admin().await;
    let (_, owner) = app.org(&operator, "keep").await;
    let analyst = app.member(&owner, "analyst@keep.test", "analyst", Some("keep")).await;

    let gone = app.incident(&owner, "old and closed").await.str("id");
    let held = app.incident(&owner, "old, closed, held").await.str("id");
    let open = app.incident(&owner, "old but open").await.str("id");
    app.post(&format!("/api/v1/incidents/{gone}/comments"), &owner.token, json!({ "body": "a note" })).await.expect(201);
    app.upload(&owner.token, &gone, json!({ "name": "a.log", "kind": "log_file" }), b"of the closed one".to_vec()).await.expect(201);
    let kept_file = app
        .upload(&owner.token, &open, json!({ "name": "a.log", "kind": "log_file" }), b"of the open one".to_vec())
        .await
        .expect(201)
        .str("id");
    close(&app, &owner, &gone).await;
    close(&app, &owner, &held).await;
    assert_eq!(app.blob_files().len(), 2);

    // Holds: owners and admins; a reason; 404 for what is not there.
    app.put_json(&format!("/api/v1/incidents/{held}/legal-hold"), &analyst.token, json!({ "reason": "x" })).await.problem(403, "forbidden");
    app.put_json(&format!("/api/v1/incidents/{held}/legal-hold"), &owner.token, json!({ "reason": "" }))
        .await
        .problem(422, "validation_failed");
    let h = app.put_json(&format!("/api/v1/incidents/{held}/legal-hold"), &owner.token, json!({ "reason": "matter 7" })).await.expect(200);
    assert_eq!(h.body["reason"], "matter 7");
    app.get(&format!("/api/v1/incidents/{open}/legal-hold"), &analyst.token).await.problem(404, "not_found");
    assert_eq!(app.get("/api/v1/legal-holds", &analyst.token).await.expect(200).body["items"][0]["incident_id"], held.as_str());

    // Policies: owners and admins; bounds per kind; each kind once.
    app.put_json("/api/v1/retention", &analyst.token, json!({ "policies": [{ "kind": "alerts", "days": 5 }] }))
        .await
        .problem(403, "forbidden");
    let r = app
        .put_json(
            "/api/v1/retention",
            &owner.token,
            json!({ "policies": [{ "kind": "audit", "days": 30 }, { "kind": "alerts", "days": 0 }] }),
        )
        .await
        .problem(422, "validation_failed");
    let fields: Vec<_> = r.body["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("policies[0].days"), json!("policies[1].days")]);
    app.put_json(
        "/api/v1/retention",
        &owner.token,
        json!({ "policies": [{ "kind": "alerts", "days": 5 }, { "kind": "alerts", "days": 6 }] }),
    )
    .await
    .problem(422, "validation_failed");
    let policies = json!({ "policies": [
        { "kind": "closed_incidents", "days": 30 },
        { "kind": "evidence", "days": 60 },
        { "kind": "events", "days": 30 },
        { "kind": "sessions", "days": 1 },
        { "kind": "audit", "days": 90 },
    ] });
    let set = app.put_json("/api/v1/retention", &owner.token, policies).await.expect(200);
    assert_eq!(set.body["policies"].as_array().expect("policies").len(), 6, "every kind, alerts kept forever");
    assert_eq!(app.get("/api/v1/retention", &analyst.token).await.expect(200).body, set.body);

    // Nothing is old yet.
    let before = app.post("/api/v1/retention/preview", &owner.token, json!({})).await.expect(200);
    assert!(before.body["kinds"].as_array().expect("kinds").iter().all(|k| k["count"] == 0), "{}", before.body);

    // 31 days on: the closed incident that is not held goes, with its comment,
    // timeline, file and search entry; the preview said so and changed nothing.
    app.clock.advance_secs(31 * DAY);
    let owner = app.login("owner@keep.test", PASSWORD, Some("keep")).await;
    let p = app.post("/api/v1/retention/preview", &owner.token, json!({})).await.expect(200);
    assert_eq!(count(&p.body, "closed_incidents"), 1);
    assert_eq!(count(&p.body, "evidence"), 0);
    assert!(count(&p.body, "sessions") >= 2, "the sessions of the first day ended long ago: {}", p.body);
    let proposed =
        app.post("/api/v1/retention/preview", &owner.token, json!({ "policies": [{ "kind": "evidence", "days": 10 }] })).await.expect(200);
    assert_eq!(count(&proposed.body, "evidence"), 2, "both files: each kind is counted on its own");
    app.get(&format!("/api/v1/incidents/{gone}"), &owner.token).await.expect(200);

    let run = app.post("/api/v1/retention/run", &owner.token, json!({})).await.expect(200);
    assert_eq!(count(&run.body, "closed_incidents"), 1);
    assert!(count(&run.body, "events") > 0);
    assert!(count(&run.body, "sessions") >= 2);
    app.get(&format!("/api/v1/incidents/{gone}"), &owner.token).await.problem(404, "not_found");
    app.get(&format!("/api/v1/incidents/{held}"), &owner.token).await.expect(200);
    app.get(&format!("/api/v1/incidents/{open}"), &owner.token).await.expect(200);
    assert_eq!(app.blob_files().len(), 1, "the closed incident's file is gone from the store");
    let found = app.get("/api/v1/search?q=closed", &owner.token).await.expect(200);
    assert!(!found.body.to_string().contains(&gone), "{}", found.body);
    let timeline = app.get(&format!("/api/v1/incidents/{held}/timeline"), &owner.token).await.expect(200);
    assert!(!timeline.body["items"].as_array().expect("items").is_empty(), "a held incident keeps its timeline");
    let audit = app.get("/api/v1/audit?action=retention.purge", &owner.token).await.expect(200);
    let e = &audit.body["items"][0];
    assert_eq!(e["actor_kind"], "system");
    assert_eq!(e["details"]["removed"]["closed_incidents"], 1);
    let again = app.post("/api/v1/retention/run", &owner.token, json!({})).await.expect(200);
    assert!(again.body["kinds"].as_array().expect("kinds").iter().all(|k| k["count"] == 0), "{}", again.body);

    // 61 days: the open incident's file goes, its record stays as removed.
    app.clock.advance_secs(30 * DAY);
    let owner = app.login("owner@keep.test", PASSWORD, Some("keep")).await;
    let run = app.post("/api/v1/retention/run", &owner.token, json!({})).await.expect(200);
    assert_eq!(count(&run.body, "evidence"), 1);
    assert!(app.blob_files().is_empty());
    let (status, _, _) = app.download(&owner.token, &kept_file).await;
    assert_eq!(status, 410);

    // Lifting the hold lets the policy take the incident.
    app.delete(&format!("/api/v1/incidents/{held}/legal-hold"), &owner.token).await.expect(204);
    app.delete(&format!("/api/v1/incidents/{held}/legal-hold"), &owner.token).await.problem(404, "not_found");
    let run = app.post("/api/v1/retention/run", &owner.token, json!({})).await.expect(200);
    assert_eq!(count(&run.body, "closed_incidents"), 1);
    app.get(&format!("/api/v1/incidents/{held}"), &owner.token).await.problem(404, "not_found");
}

#[tokio::test]
async fn audit_entries_are_pruned_up_to_a_checkpoint_and_the_rest_still_verifies() {
    let app = spawn().await;
    let operator = app.admin().await;
    let (_, owner) = app.org(&operator, "prune").await;
    for i in 0..10 {
        app.incident(&owner, &format!("n{i}")).await;
    }
    let old_size = signed_to_head(&app, &owner).await;
    let old = app.get("/api/v1/audit/checkpoint", &owner.token).await.expect(200).body;
    app.put_json("/api/v1/retention", &owner.token, json!({ "policies": [{ "kind": "audit", "days": 90 }] })).await.expect(200);

    app.clock.advance_secs(91 * DAY);
    let owner = app.login("owner@prune.test", PASSWORD, Some("prune")).await;
    for i in 0..5 {
        app.incident(&owner, &format!("m{i}")).await;
    }
    signed_to_head(&app, &owner).await;
    let p = app.post("/api/v1/retention/preview", &owner.token, json!({})).await.expect(200);
    let due = count(&p.body, "audit");
    assert!(due > 0 && due <= old_size + 4, "entries up to a checkpoint before the cutoff: {}", p.body);
    let run = app.post("/api/v1/retention/run", &owner.token, json!({})).await.expect(200);
    assert_eq!(count(&run.body, "audit"), due);
    let first = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body["items"]
        .as_array()
        .expect("items")
        .last()
        .expect("an entry")["seq"]
        .clone();
    assert_eq!(first, json!(due + 1), "the log starts after the pruned prefix");

    // The server's own verification, the old checkpoint's consistency with
    // the new one, and an inclusion proof for a pruned entry's successor.
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let size = signed_to_head(&app, &owner).await;
    app.get(&format!("/api/v1/audit/proof/consistency?from={}&to={size}", old["size"]), &owner.token).await.expect(200);
    app.get(&format!("/api/v1/audit/proof/inclusion?seq={}&size={size}", due + 1), &owner.token).await.expect(200);

    // Offline: the export starts with the pruned prefix and verifies; a
    // forged prefix does not.
    let key = app.get("/api/v1/audit/public-key", "").await.expect(200).body["keys"][0]["vkey"].as_str().expect("vkey").to_owned();
    let r = app.client.get(app.url("/api/v1/audit/export")).bearer_auth(&owner.token).send().await.expect("export");
    let text = r.text().await.expect("body");
    let mut lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a line")).collect();
    assert_eq!(lines[1]["kind"], "pruned");
    assert_eq!(lines[1]["size"], due);
    let dir = tempfile::tempdir().expect("dir");
    let verify = |name: &str, text: String| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironcase"))
            .args(["audit", "verify", "--export"])
            .arg(&file)
            .args(["--public-key", &key])
            .output()
            .expect("run");
        (out.status.success(), serde_json::from_slice::<Value>(&out.stdout).expect("a report"))
    };
    let (ok, report) = verify("good.ndjson", text.clone());
    assert!(ok, "{report}");
    assert_eq!(report["pruned"], due);
    assert!(report["checkpoints"].as_i64() >= Some(1));
    let f0 = lines[1]["frontier"][0].as_str().expect("a hash").to_owned();
    lines[1]["frontier"][0] = json!(format!("{}{}", if f0.starts_with('0') { "1" } else { "0" }, &f0[1..]));
    let forged: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (ok, report) = verify("forged.ndjson", forged);
    assert!(!ok);
    assert_eq!(report["first_bad_seq"], due + 1, "{report}");
}

#[tokio::test]
async fn holds_and_breaches_of_incidents_above_a_ceiling_do_not_exist_for_it() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let red = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "red", "severity": "high", "category": "malware", "tlp": "red" }))
        .await
        .expect(201)
        .str("id");
    let green = app
        .post("/api/v1/incidents", &owner.token, json!({ "title": "green", "severity": "low", "category": "malware", "tlp": "green" }))
        .await
        .expect(201)
        .str("id");
    for inc in [&red, &green] {
        app.put_json(&format!("/api/v1/incidents/{inc}/legal-hold"), &owner.token, json!({ "reason": "r" })).await.expect(200);
        app.put_json(&format!("/api/v1/incidents/{inc}/breach"), &owner.token, json!({})).await.expect(200);
    }
    let key = app
        .post("/api/v1/api-keys", &owner.token, json!({ "name": "green", "role": "viewer", "tlp_max": "green" }))
        .await
        .expect(201)
        .str("key");
    let ids = |v: &Value| {
        v["items"].as_array().expect("items").iter().map(|h| h["incident_id"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&app.get("/api/v1/legal-holds", &key).await.expect(200).body), [green.as_str()]);
    assert_eq!(ids(&app.get("/api/v1/breaches", &key).await.expect(200).body), [green.as_str()]);
    app.get(&format!("/api/v1/incidents/{red}/legal-hold"), &key).await.problem(404, "not_found");
    app.get(&format!("/api/v1/incidents/{red}/breach"), &key).await.problem(404, "not_found");
    assert_eq!(ids(&app.get("/api/v1/legal-holds", &owner.token).await.expect(200).body).len(), 2);
}
