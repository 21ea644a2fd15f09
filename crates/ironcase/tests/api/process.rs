//! The binary as an operator runs it: first start, configuration, SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `ironcase serve` on port 0 and returns the child and its address.
pub(crate) fn serve(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironcase"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.env_remove("IRONCASE_MASTER_KEY");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ironcase serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("the server prints its address").expect("line");
        if let Some(a) = line.strip_prefix("Ironcase listening on http://") {
            break a.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn terminate(child: &std::process::Child) {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill").success();
    assert!(ok);
}

#[test]
fn first_start_files_and_sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = serve(dir.path(), &[]);
    let data = dir.path().join("data");
    // The one-time password and the master key are private files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["initial-admin-password", "master.key"] {
            let mode = std::fs::metadata(data.join(f)).expect(f).permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(std::fs::metadata(&data).expect("data dir").permissions().mode() & 0o777, 0o700);
    }
    let password = std::fs::read_to_string(data.join("initial-admin-password")).expect("password").trim().to_owned();

    // A request is in flight when SIGTERM arrives: its body's last byte is
    // sent only after the signal, and it must still be answered.
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    let body = format!("{{\"email\":\"admin@localhost\",\"password\":\"{password}\"}}");
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (head, last) = req.as_bytes().split_at(req.len() - 1);
    s.write_all(head).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(last).expect("send the last byte");
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "the in-flight request was not answered: {answer:?}");
    assert!(answer.contains("access_token"));
    let status = child.wait().expect("wait");
    assert!(status.success(), "SIGTERM must exit 0, got {status}");

    // A second start keeps the data and does not re-create the first owner.
    std::fs::remove_file(data.join("initial-admin-password")).expect("rm");
    let (child2, _) = serve(dir.path(), &[]);
    assert!(!data.join("initial-admin-password").exists());
    terminate(&child2);
    let mut child2 = child2;
    assert!(child2.wait().expect("wait").success());
}

#[test]
fn a_wrong_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = serve(dir.path(), &[]);
    terminate(&child);
    let mut child = child;
    assert!(child.wait().expect("wait").success());
    // The signing keys were sealed under the key file's key; another key cannot open them.
    let out = Command::new(env!("CARGO_BIN_EXE_ironcase"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("IRONCASE_MASTER_KEY", "11".repeat(32))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(&"11".repeat(32)), "the key leaked into the error: {err}");
}

/// Concurrent creates, `kill -9` in the middle of them, a start on the same
/// data: every incident whose create was acknowledged is there, and the
/// audit chain verifies (over HTTP and offline). On SQLite; and on
/// PostgreSQL wherever the tests have one (`ironcase_testkit::postgres_url`;
/// required when `CI=true`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9() {
    crash_and_recover(None).await;
    if let Some(url) = tokio::task::spawn_blocking(ironcase_testkit::postgres_url).await.expect("task") {
        let db = crate::helpers::TestDb::create(url).await;
        crash_and_recover(Some(&db.url)).await;
    }
}

async fn crash_and_recover(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env: Vec<(&str, &str)> = database_url.map(|u| vec![("IRONCASE_DATABASE_URL", u)]).unwrap_or_default();
    let (mut child, addr) = serve(dir.path(), &env);
    let password = std::fs::read_to_string(dir.path().join("data/initial-admin-password")).expect("password").trim().to_owned();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/api/v1");
    let login = |base: String, password: String| {
        let http = http.clone();
        async move {
            let r = http.post(format!("{base}/auth/login")).json(&serde_json::json!({ "email": "admin@localhost", "password": password }));
            let body: serde_json::Value = r.send().await.expect("login").json().await.expect("json");
            body["access_token"].as_str().expect("token").to_owned()
        }
    };
    let token = login(base.clone(), password.clone()).await;

    // Eight writers create as fast as they are answered; the ids answered 201 are kept.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (http, base, token, acked) = (http.clone(), base.clone(), token.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = serde_json::json!({ "title": format!("crash {w}-{i}"), "severity": "low", "category": "other" });
                let Ok(r) = http.post(format!("{base}/incidents")).bearer_auth(&token).json(&body).send().await else { return };
                if r.status() != 201 {
                    return;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else { return };
                if let Some(id) = v["id"].as_str() {
                    acked.lock().expect("lock").push(id.to_owned());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Command::new("kill").args(["-KILL", &child.id().to_string()]).status().expect("kill").success();
    assert!(killed);
    child.wait().expect("wait");
    for w in writers {
        let _ = w.await;
    }
    let acked = acknowledged.lock().expect("lock").clone();
    assert!(acked.len() > 50, "only {} creates before the kill", acked.len());

    // Start again on the same data: every acknowledged incident is there.
    let (mut child, addr) = serve(dir.path(), &env);
    let base = format!("http://{addr}/api/v1");
    let token = login(base.clone(), password).await;
    let mut found = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/incidents?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = http.get(url).bearer_auth(&token).send().await.expect("list").json().await.expect("json");
        for i in page["items"].as_array().expect("items") {
            found.insert(i["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged incidents lost after kill -9: {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let v: serde_json::Value =
        http.get(format!("{base}/audit/verify")).bearer_auth(&token).send().await.expect("verify").json().await.expect("json");
    assert_eq!(v["ok"], true, "{v}");
    terminate(&child);
    assert!(child.wait().expect("wait").success());
    // And offline, as an auditor would.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironcase"));
    cmd.args(["audit", "verify", "--data-dir"]).arg(dir.path().join("data"));
    if let Some(u) = database_url {
        cmd.args(["--database-url", u]);
    }
    let out = cmd.output().expect("ironcase audit verify");
    assert!(out.status.success(), "offline verification failed: {}", String::from_utf8_lossy(&out.stdout));
}
