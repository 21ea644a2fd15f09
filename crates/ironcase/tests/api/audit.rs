use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn entries_record_who_what_where_and_denials() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app
        .send(
            reqwest::Method::POST,
            "/api/v1/incidents",
            Some(&owner.token),
            Some(json!({ "title": "t", "severity": "low", "category": "other" })),
            &[("x-request-id", "audit-req-1"), ("user-agent", "audit-test/1.0")],
        )
        .await
        .expect(201);
    let id = inc.str("id");
    let viewer = app.member(&owner, "v@example.com", "viewer", None).await;
    app.patch(&format!("/api/v1/incidents/{id}"), &viewer.token, json!({ "title": "no" }), Some("\"1\"")).await.problem(403, "forbidden");
    app.login_raw("admin@localhost", "wrong wrong wrong", None).await.problem(401, "invalid_credentials");

    let page = app.get("/api/v1/audit?action=incident.create", &owner.token).await.expect(200);
    let e = &page.body["items"][0];
    assert_eq!(e["actor_id"], owner.id.as_str());
    assert_eq!(e["actor_kind"], "user");
    assert_eq!(e["resource_type"], "incident");
    assert_eq!(e["resource_id"], id.as_str());
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["request_id"], "audit-req-1");
    assert_eq!(e["user_agent"], "audit-test/1.0");
    assert_eq!(e["source_ip"], "127.0.0.1");
    assert_eq!(e["hash"].as_str().map(str::len), Some(64));

    let denied = app.get("/api/v1/audit?outcome=denied", &owner.token).await.expect(200);
    let d = &denied.body["items"][0];
    assert_eq!(d["action"], "access.denied");
    assert_eq!(d["actor_id"], viewer.id.as_str());
    assert_eq!(d["details"]["permission"], "incident:update");
    let failures = app.get("/api/v1/audit?action=auth.login&outcome=failure", &owner.token).await.expect(200);
    assert_eq!(failures.body["items"].as_array().map(Vec::len), Some(1));
    let by_actor = app.get(&format!("/api/v1/audit?actor_id={}", viewer.id), &owner.token).await.expect(200);
    assert!(by_actor.body["items"].as_array().expect("items").iter().all(|e| e["actor_id"] == viewer.id.as_str()));

    // Cursor pagination walks the chain newest first without gaps.
    let mut seqs = Vec::new();
    let mut cursor = String::new();
    loop {
        let p = app.get(&format!("/api/v1/audit?limit=2{cursor}"), &owner.token).await.expect(200);
        seqs.extend(p.body["items"].as_array().expect("items").iter().map(|e| e["seq"].as_i64().expect("seq")));
        match p.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let n = seqs.len() as i64;
    assert_eq!(seqs, (1..=n).rev().collect::<Vec<_>>());
    // Viewers may not read the audit log (and that refusal is audited too).
    app.get("/api/v1/audit", &viewer.token).await.problem(403, "forbidden");
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
    assert_eq!(v.body["ok"], true);
    assert_eq!(v.body["entries"].as_i64(), Some(n + 1));
}

fn cli_verify(app: &TestApp) -> (bool, Vec<Value>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ironcase"));
    cmd.args(["audit", "verify", "--data-dir"]).arg(&app.data_dir);
    if let Some(db) = &app.database {
        cmd.args(["--database-url", &db.url]);
    }
    let out = cmd.output().expect("run ironcase audit verify");
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    (out.status.success(), lines)
}

/// Five incidents: an audit chain with a few entries in the org.
async fn seeded() -> (TestApp, User, String) {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    for i in 0..5 {
        app.incident(&owner, &format!("i{i}")).await;
    }
    let org = app.get("/api/v1/auth/me", &owner.token).await.body["organization"]["id"].as_str().expect("org").to_owned();
    (app, owner, org)
}

async fn expect_broken(app: &TestApp, owner: &User, org: &str, seq: i64) {
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
    assert_eq!(v.body["ok"], false, "{}", v.body);
    assert_eq!(v.body["first_bad_seq"].as_i64(), Some(seq), "{}", v.body);
    let (ok, lines) = cli_verify(app);
    assert!(!ok, "the CLI must exit non-zero: {lines:?}");
    let mine = lines.iter().find(|l| l["tenant"] == org).expect("a line for the org");
    assert_eq!(mine["ok"], false);
    assert_eq!(mine["first_bad_seq"].as_i64(), Some(seq));
}

#[tokio::test]
async fn an_intact_chain_verifies_over_http_and_cli() {
    let (app, owner, _) = seeded().await;
    let v = app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
    assert_eq!(v.body["ok"], true);
    assert!(v.body["entries"].as_i64().expect("entries") >= 7);
    assert_eq!(v.body["head"].as_str().map(str::len), Some(64));
    let (ok, lines) = cli_verify(&app);
    assert!(ok, "{lines:?}");
    assert!(lines.iter().all(|l| l["ok"] == true));
}

#[tokio::test]
async fn an_edited_entry_is_found() {
    let (app, owner, org) = seeded().await;
    direct_sql(&app, &format!("update audit_log set action = 'incident.read' where organization_id = '{org}' and seq = 4")).await;
    expect_broken(&app, &owner, &org, 4).await;
}

#[tokio::test]
async fn a_deleted_entry_is_found() {
    let (app, owner, org) = seeded().await;
    direct_sql(&app, &format!("delete from audit_log where organization_id = '{org}' and seq = 3")).await;
    expect_broken(&app, &owner, &org, 3).await;
}

#[tokio::test]
async fn a_deleted_tail_is_found() {
    let (app, owner, org) = seeded().await;
    let last = direct_sql(&app, &format!("select max(seq) from audit_log where organization_id = '{org}'")).await.expect("max");
    direct_sql(&app, &format!("delete from audit_log where organization_id = '{org}' and seq = {last}")).await;
    expect_broken(&app, &owner, &org, last).await;
}

#[tokio::test]
async fn reordered_entries_are_found() {
    let (app, owner, org) = seeded().await;
    // Swap entries 2 and 5 by renumbering them.
    for (from, to) in [(2, -2), (5, 2), (-2, 5)] {
        direct_sql(&app, &format!("update audit_log set seq = {to} where organization_id = '{org}' and seq = {from}")).await;
    }
    expect_broken(&app, &owner, &org, 2).await;
}

#[tokio::test]
async fn reads_are_audited_when_the_organisation_asks_and_only_then() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let analyst = app.member(&owner, "reader@localhost", "analyst", None).await;
    let inc = app.incident(&owner, "patient records exposed").await.str("id");
    app.post(&format!("/api/v1/incidents/{inc}/iocs"), &owner.token, json!({ "type": "domain", "value": "leak.example" }))
        .await
        .expect(201);
    let evd = app.upload(&owner.token, &inc, json!({ "name": "a.log", "kind": "log_file" }), b"x".to_vec()).await.expect(201).str("id");
    let key = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "reader", "role": "viewer" })).await.expect(201).str("key");
    let reads = |token: String| {
        let (app, inc, evd) = (&app, inc.clone(), evd.clone());
        async move {
            app.get(&format!("/api/v1/incidents/{inc}"), &token).await.expect(200);
            app.get("/api/v1/incidents", &token).await.expect(200);
            app.get("/api/v1/search?q=patient", &token).await.expect(200);
            app.get(&format!("/api/v1/incidents/{inc}/timeline"), &token).await.expect(200);
            app.get(&format!("/api/v1/incidents/{inc}/evidence"), &token).await.expect(200);
            app.get(&format!("/api/v1/evidence/{evd}"), &token).await.expect(200);
            app.get(&format!("/api/v1/incidents/{inc}/iocs"), &token).await.expect(200);
            app.get("/api/v1/iocs?value=leak.example", &token).await.expect(200);
        }
    };
    let read_actions = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["action"].as_str().is_some_and(|a| a.ends_with(".read") || a.ends_with(".list") || a.ends_with(".search")))
            .map(|e| format!("{} {}", e["action"].as_str().unwrap_or(""), e["actor_id"].as_str().unwrap_or("")))
            .collect()
    };
    // Off by default: nothing recorded.
    assert_eq!(app.get("/api/v1/organization/audit-reads", &analyst.token).await.expect(200).body["enabled"], false);
    reads(analyst.token.clone()).await;
    assert!(read_actions(&app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body).is_empty());

    app.put_json("/api/v1/organization/audit-reads", &analyst.token, json!({ "enabled": true })).await.problem(403, "forbidden");
    app.put_json("/api/v1/organization/audit-reads", &owner.token, json!({ "enabled": "yes" })).await.problem(422, "validation_failed");
    assert_eq!(
        app.put_json("/api/v1/organization/audit-reads", &owner.token, json!({ "enabled": true })).await.expect(200).body["enabled"],
        true
    );
    reads(analyst.token.clone()).await;
    reads(key.clone()).await;
    let log = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body;
    let got = read_actions(&log);
    let expected =
        ["ioc.read", "ioc.list", "evidence.read", "evidence.list", "incident.read", "incident.search", "incident.list", "incident.read"];
    let by_analyst: Vec<_> = got.iter().filter(|a| a.ends_with(&analyst.id)).map(|a| a.split(' ').next().unwrap_or("")).collect();
    assert_eq!(by_analyst, expected, "newest first: {got:?}");
    assert_eq!(got.len(), 2 * expected.len(), "the API key's reads too: {got:?}");
    let one = log["items"].as_array().expect("items").iter().find(|e| e["action"] == "incident.read").expect("a read");
    assert_eq!(one["resource_id"], inc.as_str());
    assert_eq!(one["category"], "data");
    let changed = app.get("/api/v1/audit?action=organization.audit_reads", &owner.token).await.expect(200);
    assert_eq!(changed.body["items"][0]["details"]["enabled"], true);
    assert_eq!(changed.body["items"][0]["category"], "compliance");

    app.put_json("/api/v1/organization/audit-reads", &owner.token, json!({ "enabled": false })).await.expect(200);
    let before = read_actions(&app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body).len();
    reads(analyst.token.clone()).await;
    assert_eq!(read_actions(&app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body).len(), before);
}
