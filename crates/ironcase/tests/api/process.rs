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
