//! `ironcase bench --audit-proofs DIR`: the provable audit log of a data
//! directory filled by `ironcase dev seed --audit-entries N`. The server's
//! job builds the organisation's Merkle tree and signs it (entries per
//! second, server CPU per entry); then inclusion and consistency proofs at
//! that size (req/s, p50/p99); then the log is exported and verified
//! offline, as `ironcase audit verify --export` does (entries per second).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::{get_request, login, phase, print, start_server_with, with_cpu, Answer, BenchArgs, Check, Render};

pub(super) async fn run_audit_proofs(args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    // Checkpoints as often as the job comes round, so that the tree's pace is the job's.
    let mut extra: Vec<String> = args.database_url.iter().flat_map(|u| ["--database-url".to_owned(), u.clone()]).collect();
    extra.extend(["--audit-checkpoint-seconds", "1"].map(str::to_owned));
    let server = start_server_with(Some(dir), &extra).await?;
    let (base, pid) = (server.base.clone(), server.pid);
    let token = login(&base, &server.password).await?;
    let auth = format!("Bearer {token}");
    let client = reqwest::Client::new();
    let verify: Value = client.get(format!("{base}/api/v1/audit/verify")).bearer_auth(&token).send().await?.json().await?;
    let entries = verify["entries"].as_i64().context("the audit log's length")?;
    println!("ironcase bench --audit-proofs: {entries} audit entries in `default`, server pid {pid}");

    // The tree, built and signed by the server's job.
    let started = Instant::now();
    let cpu0 = super::cpu_seconds(pid).0;
    let mut size = 0i64;
    let mut said = Instant::now();
    while size < entries && started.elapsed() < Duration::from_secs(3600) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = client.get(format!("{base}/api/v1/audit/checkpoint")).bearer_auth(&token).send().await?;
        if r.status() == 200 {
            size = r.json::<Value>().await?["size"].as_i64().unwrap_or(0);
        }
        if said.elapsed() > Duration::from_secs(10) {
            println!("  tree: {size} of {entries} entries");
            said = Instant::now();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = super::cpu_seconds(pid).0 - cpu0;
    println!(
        "tree built and signed to {size} entries in {secs:.1} s: {:.0} entries/s, server CPU {:.1} µs per entry",
        size as f64 / secs,
        cpu * 1e6 / size.max(1) as f64
    );
    anyhow::ensure!(size >= entries, "the tree did not reach the log's length");

    // Proofs at that size, for entries spread over the whole log.
    let addr = base.trim_start_matches("http://").to_owned();
    let ok: Check = std::sync::Arc::new(|a: &Answer| a.status == 200);
    let a = auth.clone();
    let inclusion: Render = std::sync::Arc::new(move |n| {
        let seq = 1 + (n.wrapping_mul(2_654_435_761) % size as u64);
        get_request(&format!("/api/v1/audit/proof/inclusion?seq={seq}&size={size}"), &a)
    });
    let r = with_cpu(
        pid,
        phase("GET /audit/proof/inclusion", &addr, args.scale_clients, args.seconds, args.max_requests, inclusion, ok.clone()),
    )
    .await;
    print(&r, 0.0);
    let a = auth.clone();
    let consistency: Render = std::sync::Arc::new(move |n| {
        let from = 1 + (n.wrapping_mul(2_654_435_761) % size as u64);
        get_request(&format!("/api/v1/audit/proof/consistency?from={from}&to={size}"), &a)
    });
    let r =
        with_cpu(pid, phase("GET /audit/proof/consistency", &addr, args.scale_clients, args.seconds, args.max_requests, consistency, ok))
            .await;
    print(&r, 0.0);

    // The export, verified offline.
    let keys: Value = client.get(format!("{base}/api/v1/audit/public-key")).send().await?.json().await?;
    let keys: Vec<_> = keys["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["vkey"].as_str().and_then(ironcase_app::checkpoints::NoteVerifier::parse))
        .collect();
    let file = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut res = client.get(format!("{base}/api/v1/audit/export")).bearer_auth(&token).send().await?;
    anyhow::ensure!(res.status() == 200, "export answered {}", res.status());
    let mut out = std::io::BufWriter::new(std::fs::File::create(file.path())?);
    let mut bytes = 0u64;
    while let Some(chunk) = res.chunk().await? {
        bytes += chunk.len() as u64;
        std::io::Write::write_all(&mut out, &chunk)?;
    }
    std::io::Write::flush(&mut out)?;
    println!("export: {:.0} MB in {:.1} s", bytes as f64 / 1e6, started.elapsed().as_secs_f64());
    let started = Instant::now();
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file.path())?);
    let report = ironcase_app::checkpoints::verify_export(input, &keys, None).map_err(|e| anyhow::anyhow!(e))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "offline verification: {} entries, {} checkpoints, ok {}, in {secs:.2} s: {:.0} entries/s",
        report.entries,
        report.checkpoints,
        report.ok,
        report.entries as f64 / secs
    );
    anyhow::ensure!(report.ok, "the export did not verify: {report:?}");
    Ok(std::process::ExitCode::SUCCESS)
}
