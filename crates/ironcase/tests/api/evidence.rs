//! Evidence: streamed upload and verified download, hash checks, limits,
//! interrupted uploads, tampering, chain of custody and deletion.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn actions(custody: &Resp) -> Vec<String> {
    custody.body["items"].as_array().expect("items").iter().map(|c| c["action"].as_str().unwrap_or("").to_owned()).collect()
}

async fn audit_actions(app: &TestApp, u: &User, resource: &str) -> Vec<String> {
    let r = app.get(&format!("/api/v1/audit?resource_id={resource}&limit=200"), &u.token).await.expect(200);
    let mut v: Vec<String> =
        r.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().unwrap_or("").to_owned()).collect();
    v.reverse();
    v
}

#[tokio::test]
async fn upload_download_custody_and_search() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "Phishing wave").await.str("id");
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let meta = json!({
        "name": "../../mail/headers.eml", "kind": "document", "description": "Headers of the lure mail",
        "sha256": sha(&data).to_uppercase(), "collected_by": "Dana (mail team)", "collected_at": "2026-01-05T10:00:00Z"
    });
    let r = app.upload(&owner.token, &inc, meta, data.clone()).await.expect(201);
    let id = r.str("id");
    assert!(id.starts_with("evd_"));
    assert_eq!(r.header("location"), Some(format!("/api/v1/evidence/{id}").as_str()));
    assert_eq!(r.body["name"], "headers.eml", "a path is cut to its file name");
    assert_eq!(r.body["size"], 700_000);
    assert_eq!(r.body["sha256"], sha(&data));
    assert_eq!(r.body["incident_id"], inc);
    assert_eq!(r.body["collected_by"], "Dana (mail team)");

    // Stored encrypted: the bytes on disk are not the file.
    let files = app.blob_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(&files[0]).expect("blob");
    assert!(stored.len() > data.len());
    assert!(!stored.windows(64).any(|w| w == &data[1000..1064]), "plaintext on disk");

    let got = app.get(&format!("/api/v1/evidence/{id}"), &owner.token).await.expect(200);
    assert_eq!(got.body["sha256"], sha(&data));
    let list = app.get(&format!("/api/v1/incidents/{inc}/evidence"), &owner.token).await.expect(200);
    assert_eq!(list.body["items"][0]["id"], id);

    let (status, headers, bytes) = app.download(&owner.token, &id).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, data);
    assert_eq!(headers.get("content-length").and_then(|v| v.to_str().ok()), Some("700000"));
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/octet-stream"));
    assert!(headers.get("content-disposition").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("headers.eml")));
    assert!(headers.get("repr-digest").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("sha-256=:")));

    let t = app
        .post(
            &format!("/api/v1/evidence/{id}/custody"),
            &owner.token,
            json!({ "action": "transferred", "to": "Forensics Ltd", "reason": "disk analysis" }),
        )
        .await
        .expect(201);
    assert_eq!(t.body["to"], "Forensics Ltd");
    app.post(&format!("/api/v1/evidence/{id}/custody"), &owner.token, json!({ "action": "downloaded", "to": "x", "reason": "y" }))
        .await
        .problem(422, "validation_failed");
    app.download(&owner.token, &id).await;

    let custody = app.get(&format!("/api/v1/evidence/{id}/custody"), &owner.token).await.expect(200);
    assert_eq!(actions(&custody), ["collected", "uploaded", "downloaded", "transferred", "downloaded"]);
    let items = custody.body["items"].as_array().expect("items");
    let seqs: Vec<i64> = items.iter().map(|c| c["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(items[0]["collected_by"], "Dana (mail team)");
    assert_eq!(items[0]["at"], "2026-01-05T10:00:00.000Z");
    assert_eq!(items[2]["actor_id"], owner.id);
    assert!(items[2]["source_ip"].as_str().is_some_and(|ip| ip == "127.0.0.1"));
    assert_eq!(items[3]["reason"], "disk analysis");

    assert_eq!(audit_actions(&app, &owner, &id).await, ["evidence.upload", "evidence.download", "evidence.custody", "evidence.download"]);
    let timeline = app.get(&format!("/api/v1/incidents/{inc}/timeline"), &owner.token).await.expect(200);
    assert!(timeline.body.to_string().contains("evidence.added"));

    // Findable by name and description at once.
    let found = app.get("/api/v1/search?q=lure%20mail", &owner.token).await.expect(200);
    assert_eq!(found.body["total"], 1, "{}", found.body);
    app.get("/api/v1/audit/verify", &owner.token).await.expect(200);
}

#[tokio::test]
async fn a_hash_mismatch_keeps_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "x").await.str("id");
    let r =
        app.upload(&owner.token, &inc, json!({ "name": "a.log", "kind": "log_file", "sha256": "0".repeat(64) }), b"hello".to_vec()).await;
    let r = r.problem(422, "hash_mismatch");
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains(&sha(b"hello"))));
    let list = app.get(&format!("/api/v1/incidents/{inc}/evidence"), &owner.token).await.expect(200);
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(app.blob_files(), Vec::<std::path::PathBuf>::new());
    // Empty files are evidence too (an empty log says something).
    let r = app
        .upload(&owner.token, &inc, json!({ "name": "empty.log", "kind": "log_file", "sha256": sha(b"") }), Vec::new())
        .await
        .expect(201);
    let (status, _, bytes) = app.download(&owner.token, &r.str("id")).await;
    assert_eq!((status.as_u16(), bytes.len()), (200, 0));
}

/// Sends the head of a multipart upload that promises `promised` file bytes,
/// then `sent` bytes of it, and hangs up.
async fn interrupted_upload(app: &TestApp, token: &str, inc: &str, promised: usize, sent: usize) {
    let boundary = "XyZBoundary";
    let head = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{{\"name\":\"big.bin\",\"kind\":\"other\"}}\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\ncontent-type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + promised + tail.len();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /api/v1/incidents/{inc}/evidence HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\ncontent-length: {len}\r\n\r\n{head}"
    );
    s.write_all(req.as_bytes()).await.expect("send head");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await.expect("send");
        left -= n;
    }
    s.flush().await.expect("flush");
    // The upload is under way: its temporary blob exists.
    for _ in 0..100 {
        if !app.blob_files().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!app.blob_files().is_empty(), "the upload never started");
    drop(s);
}

#[tokio::test]
async fn an_interrupted_upload_leaves_no_blob_and_no_row() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "x").await.str("id");
    interrupted_upload(&app, &owner.token, &inc, 10 * 1024 * 1024, 3 * 1024 * 1024).await;
    // The server notices the hang-up and cleans up; wait for it, boundedly.
    let mut left = app.blob_files();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = app.blob_files();
    }
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "a partial blob was left behind");
    let list = app.get(&format!("/api/v1/incidents/{inc}/evidence"), &owner.token).await.expect(200);
    assert_eq!(list.body["items"], json!([]));
    // And the server keeps serving uploads.
    app.upload(&owner.token, &inc, json!({ "name": "ok.txt", "kind": "other" }), b"fine".to_vec()).await.expect(201);
}

#[tokio::test]
async fn files_over_the_limit_are_refused_early_and_leave_nothing() {
    let app = TestApp::spawn_with(|c| c.max_evidence_bytes = 1024 * 1024).await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "x").await.str("id");
    // Declared too large: refused from the headers.
    let r = app.upload(&owner.token, &inc, json!({ "name": "big.bin", "kind": "other" }), vec![1u8; 2 * 1024 * 1024]).await;
    r.problem(413, "payload_too_large");
    // Not declared (chunked): refused once the limit is passed.
    let boundary = "b0undary";
    let mut body = format!("--{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{{\"name\":\"c.bin\",\"kind\":\"other\"}}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"c.bin\"\r\n\r\n").into_bytes();
    body.extend(vec![2u8; 1024 * 1024 + 1]);
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/incidents/{inc}/evidence")))
        .bearer_auth(&owner.token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(res) = res {
        // The server may answer before the client finished sending.
        assert_eq!(res.status(), 413);
        let v: Value = res.json().await.expect("problem");
        assert_eq!(v["code"], "payload_too_large");
    }
    // Exactly at the limit is fine.
    app.upload(&owner.token, &inc, json!({ "name": "fits.bin", "kind": "other" }), vec![3u8; 1024 * 1024]).await.expect(201);
    let list = app.get(&format!("/api/v1/incidents/{inc}/evidence"), &owner.token).await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.blob_files().len(), 1);
}

#[tokio::test]
async fn a_tampered_or_missing_blob_is_never_served() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let inc = app.incident(&owner, "x").await.str("id");
    let data = vec![9u8; 600_000];
    let id = app.upload(&owner.token, &inc, json!({ "name": "mem.raw", "kind": "memory_dump" }), data.clone()).await.expect(201).str("id");
    let path = app.blob_files().pop().expect("blob");
    let mut stored = std::fs::read(&path).expect("read");
    let i = stored.len() - 1000;
    stored[i] ^= 1;
    std::fs::write(&path, &stored).expect("tamper");
    let (status, headers, body) = app.download(&owner.token, &id).await;
    assert_eq!(status, 500);
    let v: Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(v["code"], "integrity_failure");
    assert_eq!(headers.get("content-type").and_then(|h| h.to_str().ok()), Some("application/problem+json"));
    let custody = app.get(&format!("/api/v1/evidence/{id}/custody"), &owner.token).await.expect(200);
    assert_eq!(actions(&custody), ["uploaded", "integrity_failure"]);
    assert_eq!(audit_actions(&app, &owner, &id).await, ["evidence.upload", "evidence.integrity_failure"]);

    // A removed blob is the same failure.
    std::fs::remove_file(&path).expect("rm");
    let (status, _, body) = app.download(&owner.token, &id).await;
    assert_eq!(status, 500);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("problem")["code"], "integrity_failure");
}

#[tokio::test]
async fn deleting_keeps_a_tombstone_with_hash_and_history() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let analyst = app.member(&owner, "an@example.com", "analyst", None).await;
    let lead = app.member(&owner, "lead@example.com", "lead", None).await;
    let inc = app.incident(&owner, "x").await.str("id");
    let id = app
        .upload(&owner.token, &inc, json!({ "name": "sample.exe", "kind": "malware_sample", "description": "dropper" }), b"MZ...".to_vec())
        .await
        .expect(201)
        .str("id");
    let path = format!("/api/v1/evidence/{id}");
    let del = |u: &User, body: Value| {
        let token = u.token.clone();
        let (app, path) = (&app, path.clone());
        async move { app.send(reqwest::Method::DELETE, &path, Some(&token), Some(body), &[]).await }
    };
    del(&analyst, json!({ "reason": "no" })).await.problem(403, "forbidden");
    del(&lead, json!({ "reason": "  " })).await.problem(422, "validation_failed");
    del(&lead, json!({})).await.problem(422, "validation_failed");
    assert_eq!(app.blob_files().len(), 1);
    let r = del(&lead, json!({ "reason": "legal hold released" })).await.expect(200);
    assert_eq!(r.body["delete_reason"], "legal hold released");
    assert_eq!(r.body["sha256"], sha(b"MZ..."));
    assert!(r.body["deleted_at"].is_string());
    assert_eq!(app.blob_files(), Vec::<std::path::PathBuf>::new(), "the file is gone");
    let meta = app.get(&path, &owner.token).await.expect(200);
    assert_eq!(meta.body["deleted_by"], lead.id);
    let (status, _, body) = app.download(&owner.token, &id).await;
    assert_eq!(status, 410);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("problem")["code"], "evidence_deleted");
    del(&lead, json!({ "reason": "again" })).await.problem(410, "evidence_deleted");
    app.post(&format!("{path}/custody"), &owner.token, json!({ "action": "transferred", "to": "x", "reason": "y" }))
        .await
        .problem(410, "evidence_deleted");
    let custody = app.get(&format!("{path}/custody"), &owner.token).await.expect(200);
    assert_eq!(actions(&custody), ["uploaded", "deleted"]);
    assert_eq!(app.get("/api/v1/search?q=dropper", &owner.token).await.expect(200).body["total"], 0);
    let list = app.get(&format!("/api/v1/incidents/{inc}/evidence"), &owner.token).await.expect(200);
    assert!(list.body["items"][0]["deleted_at"].is_string());
}

#[tokio::test]
async fn who_may_upload_download_and_transfer() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let analyst = app.member(&owner, "an@example.com", "analyst", None).await;
    let viewer = app.member(&owner, "v@example.com", "viewer", None).await;
    let theirs = app.incident(&owner, "not the analyst's").await.str("id");
    let mine = app.incident(&analyst, "the analyst's").await.str("id");
    let m = json!({ "name": "a.txt", "kind": "other" });
    app.upload(&analyst.token, &theirs, m.clone(), b"a".to_vec()).await.problem(403, "forbidden");
    let id = app.upload(&analyst.token, &mine, m.clone(), b"a".to_vec()).await.expect(201).str("id");
    app.upload(&viewer.token, &mine, m.clone(), b"a".to_vec()).await.problem(403, "forbidden");
    // Viewers see the record, not the content.
    app.get(&format!("/api/v1/evidence/{id}"), &viewer.token).await.expect(200);
    let (status, _, _) = app.download(&viewer.token, &id).await;
    assert_eq!(status, 403);
    let (status, _, _) = app.download(&analyst.token, &id).await;
    assert_eq!(status, 200);
    app.post(&format!("/api/v1/evidence/{id}/custody"), &viewer.token, json!({ "action": "transferred", "to": "x", "reason": "y" }))
        .await
        .problem(403, "forbidden");
    let denied = app.get("/api/v1/audit?action=access.denied", &owner.token).await.expect(200);
    assert!(denied.body.to_string().contains("evidence:download"));
}

/// Starts the binary (see `process::serve`) and logs in as the first owner
/// over HTTP; returns the child, the base URL, a token and a new incident's id.
async fn serve_and_open_incident(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    client: &reqwest::Client,
) -> (std::process::Child, String, String, String) {
    let (child, addr) = crate::process::serve(dir, env);
    let pw = std::fs::read_to_string(dir.join("data/initial-admin-password")).expect("password").trim().to_owned();
    let base = format!("http://{addr}");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@localhost", "password": pw }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let inc: Value = client
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({ "title": "evidence", "severity": "high", "category": "malware" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let inc = inc["id"].as_str().expect("id").to_owned();
    (child, base, token, inc)
}

/// Peak and current resident memory of a process, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A deterministic stream of `total` bytes in pieces of `piece`: one
/// pseudo-random block, stamped with each piece's number.
fn generated(total: usize, piece: usize) -> impl Iterator<Item = Vec<u8>> {
    let block: Vec<u8> = (0..piece as u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect();
    let mut sent = 0usize;
    std::iter::from_fn(move || {
        if sent >= total {
            return None;
        }
        let n = piece.min(total - sent);
        let mut v = block[..n].to_vec();
        let stamp = (sent as u64).to_le_bytes();
        let k = stamp.len().min(n);
        v[..k].copy_from_slice(&stamp[..k]);
        sent += n;
        Some(v)
    })
}

#[tokio::test]
async fn a_gigabyte_streams_through_in_flat_memory() {
    const SIZE: usize = 1024 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let (mut child, base, token, inc) = serve_and_open_incident(dir.path(), &[], &client).await;
    let (_, before) = rss(child.id());

    let mut expected = Sha256::new();
    for piece in generated(SIZE, 1 << 20) {
        expected.update(&piece);
    }
    let expected = hex::encode(expected.finalize());
    let boundary = "gigabyteboundary";
    let head = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"disk.img\"\r\n\r\n",
        json!({ "name": "disk.img", "kind": "disk_image", "sha256": expected })
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + SIZE + tail.len();
    let parts = std::iter::once(head.into_bytes()).chain(generated(SIZE, 1 << 20)).chain(std::iter::once(tail.into_bytes()));
    let body = reqwest::Body::wrap_stream(futures::stream::iter(parts.map(Ok::<_, std::io::Error>)));
    let res = client
        .post(format!("{base}/api/v1/incidents/{inc}/evidence"))
        .bearer_auth(&token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("content-length", len)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    assert_eq!(created["size"], SIZE as u64);
    assert_eq!(created["sha256"], expected);
    let id = created["id"].as_str().expect("id").to_owned();

    let mut res = client.get(format!("{base}/api/v1/evidence/{id}/content")).bearer_auth(&token).send().await.expect("download");
    assert_eq!(res.status(), 200);
    let mut got = Sha256::new();
    let mut n = 0usize;
    while let Some(chunk) = res.chunk().await.expect("chunk") {
        n += chunk.len();
        got.update(&chunk);
    }
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(got.finalize()), expected);

    let (peak, _) = rss(child.id());
    let growth = peak.saturating_sub(before);
    assert!(growth < 128 * 1024 * 1024, "server memory grew by {} MiB while moving 1 GiB each way", growth >> 20);
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// Object keys in the bucket, from a ListObjectsV2 answer.
async fn bucket_keys(client: &reqwest::Client, s3: &str) -> Vec<String> {
    let xml = client.get(format!("{s3}/ironcase-test?list-type=2")).send().await.expect("list").text().await.expect("xml");
    xml.split("<Key>").skip(1).filter_map(|p| p.split("</Key>").next()).map(str::to_owned).collect()
}

/// The same evidence story on S3-compatible object storage: moto's S3 server,
/// started here on a spare port (`.ci/run` installs it; outside CI and
/// without it, the test says so and stops).
#[tokio::test]
async fn evidence_on_s3_compatible_storage() {
    let moto = || {
        let mut c = std::process::Command::new("python3");
        c.args(["-m", "moto.server"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        c
    };
    if !moto().arg("--help").status().is_ok_and(|s| s.success()) {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must provide moto's server (pip install 'moto[server]')");
        eprintln!("moto is not installed: the S3 evidence test needs it (pip install 'moto[server]')");
        return;
    }
    let port = spare_port();
    let _moto = Reaped(moto().args(["-H", "127.0.0.1", "-p", &port.to_string()]).spawn().expect("start moto's server"));
    let s3 = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if client.put(format!("{s3}/ironcase-test")).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "moto's server did not come up");

    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("IRONCASE_EVIDENCE_STORE", "s3://ironcase-test/evidence"),
        ("IRONCASE_S3_ENDPOINT", s3.as_str()),
        ("IRONCASE_S3_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret"),
        ("AWS_REGION", "us-east-1"),
    ];
    let (child, base, token, inc) = serve_and_open_incident(dir.path(), &env, &client).await;
    let _server = Reaped(child);
    let upload = |meta: Value, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part("metadata", reqwest::multipart::Part::text(meta.to_string()))
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name("f"));
        client.post(format!("{base}/api/v1/incidents/{inc}/evidence")).bearer_auth(&token).multipart(form).send()
    };

    // 20 MiB: three multipart parts.
    let data: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let res = upload(json!({ "name": "dump.raw", "kind": "memory_dump", "sha256": sha(&data) }), data.clone()).await.expect("upload");
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let keys = bucket_keys(&client, &s3).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("evidence/org_") && keys[0].ends_with(&id), "{keys:?}");
    let stored = client.get(format!("{s3}/ironcase-test/{}", keys[0])).send().await.expect("get").bytes().await.expect("bytes");
    assert!(stored.len() > data.len() && !stored.windows(64).any(|w| w == &data[4096..4160]), "stored in the clear");

    let got = client.get(format!("{base}/api/v1/evidence/{id}/content")).bearer_auth(&token).send().await.expect("download");
    assert_eq!(got.status(), 200);
    assert!(got.bytes().await.expect("bytes").as_ref() == data.as_slice(), "round trip differs");

    // A refused upload leaves no object.
    let res = upload(json!({ "name": "x", "kind": "other", "sha256": "0".repeat(64) }), vec![1u8; 9 * 1024 * 1024]).await.expect("upload");
    assert_eq!(res.status(), 422);
    assert_eq!(bucket_keys(&client, &s3).await.len(), 1);

    // A tampered object is caught, not served.
    let mut bad = stored.to_vec();
    let i = bad.len() / 2;
    bad[i] ^= 1;
    client.put(format!("{s3}/ironcase-test/{}", keys[0])).body(bad).send().await.expect("tamper");
    let got = client.get(format!("{base}/api/v1/evidence/{id}/content")).bearer_auth(&token).send().await.expect("download");
    assert_eq!(got.status(), 500);
    assert_eq!(got.json::<Value>().await.expect("problem")["code"], "integrity_failure");

    // Deleting removes the object.
    let del = client
        .delete(format!("{base}/api/v1/evidence/{id}"))
        .bearer_auth(&token)
        .json(&json!({ "reason": "test" }))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 200);
    assert_eq!(bucket_keys(&client, &s3).await, Vec::<String>::new());
}
