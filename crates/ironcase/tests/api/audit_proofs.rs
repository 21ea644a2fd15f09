//! Audit an outsider can check: signed checkpoints (verified with
//! Cloudflare's `signed_note`, which no one here wrote), inclusion and
//! consistency proofs (checked with `tlog_tiles`' verifiers against the
//! signed roots), and the offline verification of an export, which names
//! the first bad sequence number of every kind of tampering.

use std::time::Duration;

use ironcase_domain::audit::{chain_hash, Canonical, CanonicalV2, PersonalPart};
use serde_json::{json, Value};
use tlog_tiles::{Checkpoint, Hash};

use crate::helpers::{TestApp, User};

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.audit_checkpoint_every = 4;
        c.audit_checkpoint_seconds = 3600;
    })
    .await
}

/// The latest checkpoint once it signs at least `size` entries (at most 10 s).
pub(crate) async fn checkpoint_of(app: &TestApp, user: &User, size: i64) -> Value {
    for _ in 0..200 {
        let r = app.get("/api/v1/audit/checkpoint", &user.token).await;
        if r.status == 200 && r.body["size"].as_i64() >= Some(size) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of {size} entries");
}

fn hash(b64: &str) -> Hash {
    Hash::parse_hash(b64).expect("a base64 hash")
}

fn proof(v: &Value) -> Vec<Hash> {
    v["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hash"))).collect()
}

/// A signed checkpoint verified by `signed_note` with the published key: its size and root.
fn verified(note: &str, vkey: &str) -> (u64, Hash) {
    let verifier = signed_note::StandardVerifier::new(vkey).expect("the published key parses");
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).expect("a signed note");
    parsed.verify(&list).expect("signed by the published key");
    let c = Checkpoint::from_bytes(parsed.text()).expect("a C2SP checkpoint");
    (c.size(), *c.hash())
}

pub(crate) async fn export(app: &TestApp, user: &User) -> String {
    let r = app.client.get(app.url("/api/v1/audit/export")).bearer_auth(&user.token).send().await.expect("export");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    r.text().await.expect("body")
}

/// `ironcase audit verify --export` on `text`: whether it passed, and its report.
pub(crate) fn verify_offline(dir: &std::path::Path, name: &str, text: &str, vkey: &str, checkpoint: Option<&str>) -> (bool, Value) {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write the export");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ironcase"));
    cmd.args(["audit", "verify", "--export"]).arg(&file).args(["--public-key", vkey]);
    if let Some(k) = checkpoint {
        let kf = dir.join(format!("{name}.checkpoint"));
        std::fs::write(&kf, k).expect("write the checkpoint");
        cmd.arg("--checkpoint").arg(kf);
    }
    let out = cmd.output().expect("run ironcase audit verify");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("a JSON report: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

pub(crate) fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

pub(crate) fn unlines(v: &[Value]) -> String {
    v.iter().map(|l| format!("{l}\n")).collect()
}

/// An entry line of either kind.
pub(crate) fn is_entry(l: &Value) -> bool {
    l["kind"] == "entry" || l["kind"] == "sealed_entry"
}

/// The bytes an entry line's chain link hashes (and its leaf).
fn entry_bytes(e: &Value) -> Vec<u8> {
    if e["kind"] != "sealed_entry" {
        return canonical(e).bytes();
    }
    let s = |k: &str| e[k].as_str();
    let parts: Vec<PersonalPart> = serde_json::from_value(e["personal"].clone()).expect("commitments");
    CanonicalV2 {
        v: 2,
        tenant: s("tenant").unwrap_or(""),
        seq: e["seq"].as_i64().unwrap_or(0),
        at: e["at"].as_i64().unwrap_or(0),
        actor_id: s("actor_id"),
        actor_kind: s("actor_kind").unwrap_or(""),
        action: s("action").unwrap_or(""),
        resource_type: s("resource_type"),
        resource_id: s("resource_id"),
        outcome: s("outcome").unwrap_or(""),
        request_id: s("request_id"),
        details: s("details").unwrap_or(""),
        personal: &parts,
    }
    .bytes()
}

fn canonical(e: &Value) -> Canonical<'_> {
    let s = |k: &str| e[k].as_str();
    Canonical {
        tenant: s("tenant").unwrap_or(""),
        seq: e["seq"].as_i64().unwrap_or(0),
        at: e["at"].as_i64().unwrap_or(0),
        actor_id: s("actor_id"),
        actor_kind: s("actor_kind").unwrap_or(""),
        action: s("action").unwrap_or(""),
        resource_type: s("resource_type"),
        resource_id: s("resource_id"),
        outcome: s("outcome").unwrap_or(""),
        request_id: s("request_id"),
        source_ip: s("source_ip"),
        user_agent: s("user_agent"),
        details: s("details").unwrap_or(""),
    }
}

/// Rehashes the chain from entry `from` on (as a forger who rewrote the
/// rest of the log would).
fn rechain(v: &mut [Value], from: usize) {
    for i in from..v.len() {
        if !is_entry(&v[i]) {
            continue;
        }
        let before = v[..i].iter().rev().find(|l| is_entry(l));
        let prev = before.and_then(|l| l["hash"].as_str()).map(str::to_owned).unwrap_or_else(|| ironcase_domain::audit::GENESIS.to_owned());
        v[i]["prev_hash"] = json!(prev);
        let h = chain_hash(&entry_bytes(&v[i]), &prev);
        v[i]["hash"] = json!(h);
    }
}

#[tokio::test]
async fn checkpoints_are_signed_and_prove_inclusion_and_consistency() {
    let app = spawn().await;
    let owner = app.admin().await;
    for i in 0..4 {
        app.incident(&owner, &format!("proof {i}")).await;
    }
    let keys = app.get("/api/v1/audit/public-key", &owner.token).await.expect(200);
    let vkey = keys.body["keys"][0]["vkey"].as_str().expect("vkey").to_owned();
    assert!(vkey.starts_with("ironcase-audit+"), "{vkey}");
    let first = checkpoint_of(&app, &owner, 4).await;
    let (size1, root1) = verified(first["note"].as_str().expect("note"), &vkey);
    assert_eq!(root1, hash(first["root"].as_str().expect("root")));
    let org = app.get("/api/v1/auth/me", &owner.token).await.body["organization"]["id"].as_str().expect("org").to_owned();
    assert!(first["note"].as_str().expect("note").starts_with(&format!("ironcase/audit/{org}\n")), "the origin names the organisation");

    // Entry 2 is in the signed tree: its leaf is SHA-256(0x00 ‖ the entry as the export has it).
    let inc = app.get(&format!("/api/v1/audit/proof/inclusion?seq=2&size={size1}"), &owner.token).await.expect(200);
    let ex = lines(&export(&app, &owner).await);
    let entry2 = ex.iter().find(|l| is_entry(l) && l["seq"] == 2).expect("entry 2");
    let leaf = tlog_tiles::record_hash(&entry_bytes(entry2));
    assert_eq!(hash(inc.body["leaf_hash"].as_str().expect("leaf")), leaf);
    tlog_tiles::check_record(&proof(&inc.body), size1, root1, 1, leaf).expect("the inclusion proof checks out against the signed root");
    assert!(tlog_tiles::check_record(&proof(&inc.body), size1, root1, 2, leaf).is_err(), "not as another entry");

    // More entries, a later checkpoint, which extends the first.
    for i in 0..5 {
        app.incident(&owner, &format!("later {i}")).await;
    }
    let second = checkpoint_of(&app, &owner, size1 as i64 + 4).await;
    let (size2, root2) = verified(second["note"].as_str().expect("note"), &vkey);
    let cons = app.get(&format!("/api/v1/audit/proof/consistency?from={size1}&to={size2}"), &owner.token).await.expect(200);
    tlog_tiles::check_tree(&proof(&cons.body), size2, root2, size1, root1).expect("the later tree extends the earlier");
    assert!(tlog_tiles::check_tree(&proof(&cons.body), size2, root2, size1, root2).is_err());
    let default_size = app.get("/api/v1/audit/proof/inclusion?seq=1", &owner.token).await.expect(200);
    assert_eq!(default_size.body["size"].as_u64(), Some(size2), "the latest checkpoint's size by default");

    // Sizes and entries outside the signed tree are refused, saying which.
    for (q, field) in [
        ("inclusion?seq=0", "seq"),
        ("inclusion", "seq"),
        (&format!("inclusion?seq=1&size={}", size2 + 1000) as &str, "size"),
        ("inclusion?seq=x", "seq"),
        ("consistency?from=0", "from"),
        (&format!("consistency?from={size2}&to={size1}"), "from"),
        ("consistency", "from"),
        ("consistency?from=1&to=-1", "to"),
    ] {
        let r = app.get(&format!("/api/v1/audit/proof/{q}"), &owner.token).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], field, "{q}: {}", r.body);
    }
    // Another organisation's checkpoint is its own.
    let (_, beta) = app.org(&owner, "beta").await;
    for _ in 0..4 {
        app.incident(&beta, "beta's").await;
    }
    let theirs = checkpoint_of(&app, &beta, 4).await;
    assert!(!theirs["note"].as_str().expect("note").contains(&org), "{theirs}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_exported_log_verifies_offline_and_every_tampering_names_its_first_bad_entry() {
    let app = spawn().await;
    let owner = app.admin().await;
    for i in 0..10 {
        app.incident(&owner, &format!("export {i}")).await;
    }
    let early = checkpoint_of(&app, &owner, 4).await;
    let keys = app.get("/api/v1/audit/public-key", &owner.token).await.expect(200);
    let vkey = keys.body["keys"][0]["vkey"].as_str().expect("vkey").to_owned();
    checkpoint_of(&app, &owner, 12).await;
    let text = export(&app, &owner).await;
    let dir = tempfile::tempdir().expect("dir");
    let (ok, report) = verify_offline(dir.path(), "whole", &text, &vkey, early["note"].as_str());
    assert!(ok, "{report}");
    assert!(report["checkpoints"].as_i64() >= Some(3) && report["proven_by_checkpoint"].as_i64() >= Some(12), "{report}");
    let exported = lines(&text);
    let n = exported.iter().filter(|l| is_entry(l)).count() as i64;
    assert_eq!(report["entries"].as_i64(), Some(n));
    let at = |seq: i64| exported.iter().position(|l| is_entry(l) && l["seq"] == seq).expect("entry");

    let mut cases: Vec<(&str, Vec<Value>, i64)> = Vec::new();
    // An entry edited.
    let mut edited = exported.clone();
    edited[at(5)]["action"] = json!("nothing.happened");
    cases.push(("edited", edited, 5));
    // An entry deleted.
    let mut deleted = exported.clone();
    deleted.remove(at(6));
    cases.push(("deleted", deleted, 6));
    // An entry inserted (a copy of the one before it).
    let mut inserted = exported.clone();
    let copy = inserted[at(7)].clone();
    inserted.insert(at(7), copy);
    cases.push(("inserted", inserted, 8));
    // Two entries swapped.
    let mut swapped = exported.clone();
    swapped.swap(at(3), at(4));
    cases.push(("reordered", swapped, 3));
    // An entry edited and the chain after it rehashed: only the checkpoints
    // catch it, after the last one that still holds.
    let mut forged = exported.clone();
    forged[at(6)]["action"] = json!("nothing.happened");
    rechain(&mut forged, at(6));
    let holds = exported.iter().filter(|l| l["kind"] == "checkpoint").filter_map(|l| l["size"].as_i64()).filter(|s| *s < 6).max();
    cases.push(("rechained", forged, holds.unwrap_or(0) + 1));
    // A checkpoint whose size was changed after signing.
    let mut cp = exported.clone();
    let k = cp.iter().position(|l| l["kind"] == "checkpoint").expect("a checkpoint");
    let note = cp[k]["note"].as_str().expect("note").to_owned();
    let size = cp[k]["size"].as_i64().expect("size");
    cp[k]["note"] = json!(note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size - 1), 1));
    cases.push(("forged checkpoint", cp, 1));
    for (what, v, first_bad) in cases {
        let (ok, report) = verify_offline(dir.path(), what, &unlines(&v), &vkey, None);
        assert!(!ok, "{what}: {report}");
        assert_eq!(report["ok"], false, "{what}: {report}");
        assert_eq!(report["first_bad_seq"].as_i64(), Some(first_bad), "{what}: {report}");
    }
    // A key that did not sign it: no checkpoint is genuine.
    let other = ironcase_app::checkpoints::vkey("ironcase-audit", &ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key());
    let (ok, report) = verify_offline(dir.path(), "other-key", &text, &other, None);
    assert!(!ok, "{report}");
    assert_eq!(
        (report["first_bad_seq"].as_i64(), report["reason"].as_str()),
        (Some(1), Some("a checkpoint is not genuine: no signature by a known key"))
    );
    app.shutdown().await;
}

async fn seqs(app: &TestApp, user: &User, query: &str) -> Vec<i64> {
    let r = app.get(&format!("/api/v1/audit?limit=200&{query}"), &user.token).await.expect(200);
    r.body["items"].as_array().expect("items").iter().filter_map(|e| e["seq"].as_i64()).collect()
}

#[tokio::test]
async fn the_log_is_queried_by_category_severity_address_and_request_and_exported_as_csv() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let viewer = app.member(&owner, "viewer@example.com", "viewer", None).await;
    app.get("/api/v1/audit", &viewer.token).await.problem(403, "forbidden");
    let made = app
        .send(
            reqwest::Method::POST,
            "/api/v1/incidents",
            Some(&owner.token),
            Some(json!({ "title": "Correlated", "severity": "low", "category": "other" })),
            &[("x-request-id", "req-correlate-1"), ("user-agent", "=HYPERLINK(\"https://evil.example\")")],
        )
        .await;
    assert_eq!(made.status, 201);

    // Every category and severity filter keeps exactly the entries the
    // entries themselves say they are (the SQL and the rules agree).
    let all = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body["items"].as_array().cloned().expect("items");
    for (param, values) in [
        ("category", &["authentication", "authorization", "data", "configuration", "security", "compliance"][..]),
        ("severity", &["info", "warning", "critical"][..]),
    ] {
        for v in values {
            let want: Vec<i64> = all.iter().filter(|e| e[param] == *v).filter_map(|e| e["seq"].as_i64()).collect();
            assert_eq!(seqs(&app, &owner, &format!("{param}={v}")).await, want, "{param}={v}");
        }
    }
    let denied = all.iter().find(|e| e["action"] == "access.denied").expect("the viewer's refusal");
    assert_eq!((denied["category"].clone(), denied["severity"].clone()), (json!("authorization"), json!("warning")));
    assert!(all.iter().any(|e| e["category"] == "data" && e["severity"] == "info"));
    // One request's entries, by its id; entries by their source address.
    let one = app.get("/api/v1/audit?request_id=req-correlate-1", &owner.token).await.expect(200);
    let actions: Vec<&str> = one.body["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["incident.create"]);
    assert_eq!(seqs(&app, &owner, "source_ip=127.0.0.1").await.len(), all.iter().filter(|e| e["source_ip"] == "127.0.0.1").count());
    assert!(seqs(&app, &owner, "source_ip=203.0.113.9").await.is_empty());
    for q in ["category=gossip", "severity=loud", "category=", "severity=%00"] {
        app.get(&format!("/api/v1/audit?{q}"), &owner.token).await.problem(422, "validation_failed");
    }

    // CSV: a header, a row per entry, a formula neutralised.
    let r = app.client.get(app.url("/api/v1/audit/export?format=csv")).bearer_auth(&owner.token).send().await.expect("csv");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap_or("").starts_with("text/csv"));
    let text = r.text().await.expect("body");
    let mut rows = csv_rows(&text);
    let header = rows.remove(0);
    assert_eq!(header[..7], ["seq", "at", "actor_id", "actor_kind", "action", "category", "severity"]);
    assert_eq!(rows.len(), all.len() + 1, "every entry and the export's own");
    let agent = rows.iter().find(|r| r[4] == "incident.create").expect("the incident's row")[12].clone();
    assert_eq!(agent, "'=HYPERLINK(\"https://evil.example\")");
    app.get("/api/v1/audit/export?format=xml", &owner.token).await.problem(422, "validation_failed");
    app.shutdown().await;
}

/// RFC 4180 rows: quoted cells may hold commas, quotes (doubled) and line breaks.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    rows
}
