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
