//! What Ironcase's tests share, and nothing the server runs: a PostgreSQL
//! server for the tests without any setup. `IRONCASE_TEST_POSTGRES_URL`
//! names one; without it, wherever PostgreSQL's server programs are
//! installed, the tests make a cluster of their own with `initdb` and start
//! it; without either they are skipped, saying why, unless `CI=true`, where
//! they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PostgreSQL server for tests: `IRONCASE_TEST_POSTGRES_URL`, else
/// a cluster of the tests' own, made with `initdb` the first time and
/// started when needed ([`local_cluster`]), wherever PostgreSQL's server
/// programs are installed. Without either the PostgreSQL tests are
/// skipped, saying why, unless `CI=true`, where they fail.
pub fn postgres_url() -> Option<String> {
    if let Ok(u) = std::env::var("IRONCASE_TEST_POSTGRES_URL") {
        if !u.is_empty() {
            return Some(u);
        }
    }
    match local_cluster() {
        Ok(url) => Some(url),
        Err(why) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "a PostgreSQL server is required when CI=true: {why}");
            eprintln!("skipping: no IRONCASE_TEST_POSTGRES_URL, and {why}");
            None
        }
    }
}

/// PostgreSQL's server programs (`pg_config --bindir`), when installed.
pub fn server_programs() -> Option<PathBuf> {
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|b| b.join("initdb").exists())
}

/// Whether PostgreSQL's programs must run as the `postgres` user
/// (`initdb` refuses to run as root).
pub fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs one of PostgreSQL's programs (as `postgres` when this is root).
pub fn run_server_program(program: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", program.display(), String::from_utf8_lossy(&out.stderr)))
    }
}

/// The tests' own cluster, in the temporary directory: made with
/// `initdb` (trust on loopback) the first time, started when it is not
/// running, and left running for the next test processes and runs (stop
/// it with `pg_ctl -D <tmp>/ironcase-test-postgres/data stop`). Test
/// processes starting together take turns through a lock file.
fn local_cluster() -> Result<String, String> {
    let bin = server_programs().ok_or("PostgreSQL's server programs (initdb, from `pg_config --bindir`) are not installed")?;
    let dir = std::env::temp_dir().join("ironcase-test-postgres");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock = dir.join("lock");
    for _ in 0..1200 {
        if let Some(url) = running(&dir) {
            return Ok(url);
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {
                let started = start(&bin, &dir);
                let _ = std::fs::remove_file(&lock);
                return started;
            }
            Err(_) => {
                // A lock left by a process that died while starting it.
                let stale = std::fs::metadata(&lock).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 120));
                if stale {
                    let _ = std::fs::remove_file(&lock);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    Err("the tests' own PostgreSQL cluster did not start within two minutes".into())
}

/// The cluster's URL, if it answers.
fn running(dir: &Path) -> Option<String> {
    let url = std::fs::read_to_string(dir.join("url")).ok()?;
    let port: u16 = url.rsplit_once(':')?.1.split('/').next()?.parse().ok()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).ok().map(|_| url.trim().to_owned())
}

fn start(bin: &Path, dir: &Path) -> Result<String, String> {
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    if as_root() {
        let out = Command::new("chown").args(["-R", "postgres", &path("")]).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("chown: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    if !dir.join("data/PG_VERSION").exists() {
        let _ = std::fs::remove_dir_all(dir.join("data"));
        run_server_program(&bin.join("initdb"), &["-D", &path("data"), "-U", "postgres", "--auth=trust", "--no-sync"])?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", path(""));
    run_server_program(&bin.join("pg_ctl"), &["-D", &path("data"), "-o", &opts, "-l", &path("log"), "-w", "start"])?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    std::fs::write(dir.join("url"), &url).map_err(|e| e.to_string())?;
    Ok(url)
}
