//! `ironcase bench --alerts` and `--webhooks N`: alert intake (one per
//! request, and batches of 1,000), and webhook deliveries to a receiver in
//! this process (throughput over N endpoints, and the time from a commit to
//! its first attempt).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{backend_flags, phase, post_request, print, start_server_with, with_cpu, Answer, BenchArgs, Check, Render};

fn alert(n: u64) -> Value {
    const SEVERITY: [&str; 4] = ["low", "medium", "high", "critical"];
    let severity = SEVERITY[(n % 4) as usize];
    json!({
        "source": "bench",
        "source_ref": format!("r-{n}"),
        "type": "suspicious_login",
        "title": format!("Impossible travel {n}"),
        "severity": severity,
        "observables": [{ "type": "ipv4", "value": format!("198.51.{}.{}", (n / 250) % 250, n % 250) }],
        "raw": { "rule": "impossible-travel", "n": n },
    })
}

/// Alerts one per request, then in batches of 1,000: alerts per second.
pub(super) async fn run_alerts(args: &BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let (flags, _db) = backend_flags(args).await?;
    let server = start_server_with(None, &flags).await?;
    let (pid, auth) = (server.pid, server.admin_auth().await?);
    let addr = server.base.trim_start_matches("http://").to_owned();
    println!("ironcase bench --alerts: {} clients, {} s per phase, server pid {pid}", args.clients, args.seconds);
    let a = auth.clone();
    let one: Render = Arc::new(move |n| post_request("/api/v1/alerts", &a, &alert(n).to_string()));
    let created: Check = Arc::new(|ans: &Answer| ans.status == 201);
    let r = with_cpu(pid, phase("POST /alerts (one, new)", &addr, args.clients, args.seconds, args.max_requests, one, created)).await;
    print(&r, 0.0);
    println!("  = {:.0} alerts/s", r.ok as f64 / r.secs);
    // Batches: fewer clients (each request is a thousand alerts); refs past
    // the first phase's.
    let a = auth.clone();
    let batch: Render = Arc::new(move |n| {
        let alerts: Vec<Value> = (0..1000).map(|i| alert(10_000_000 + n * 1000 + i)).collect();
        post_request("/api/v1/alerts/batch", &a, &json!({ "alerts": alerts }).to_string())
    });
    let clients = args.clients.min(4);
    let r = with_cpu(
        pid,
        phase("POST /alerts/batch (1,000 new)", &addr, clients, args.seconds, args.max_requests, batch, Arc::new(|a| a.status == 200)),
    )
    .await;
    print(&r, 0.0);
    println!("  = {:.0} alerts/s ({} clients)", r.ok as f64 * 1000.0 / r.secs, clients);
    Ok(std::process::ExitCode::SUCCESS)
}

/// What the receiver saw: deliveries, and when each incident's first
/// arrived.
#[derive(Default)]
struct Seen {
    /// While set, every connection is dropped unanswered.
    down: std::sync::atomic::AtomicBool,
    count: AtomicU64,
    first: Mutex<std::collections::HashMap<String, Instant>>,
}

/// A receiver: HTTP/1.1 with keep-alive, 200 to every POST; counts them and
/// notes when each incident's first message arrived.
async fn receiver(seen: Arc<Seen>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            if seen.down.load(Ordering::Relaxed) {
                drop(s);
                continue;
            }
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut s = tokio::io::BufStream::new(s);
                let mut line = String::new();
                loop {
                    let mut len = 0usize;
                    line.clear();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if s.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let at = Instant::now();
                    seen.count.fetch_add(1, Ordering::Relaxed);
                    if let Some(id) =
                        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["data"]["incident_id"].as_str().map(str::to_owned))
                    {
                        if let Ok(mut first) = seen.first.lock() {
                            first.entry(id).or_insert(at);
                        }
                    }
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() || s.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// Deliveries per second to `endpoints` endpoints (all subscribed to
/// `incident.created`) while incidents are created for `--seconds`, until
/// every one arrived; then the time from each commit (its create answered)
/// to its first delivery, incidents created one at a time, 20 a second.
pub(super) async fn run_webhooks(args: &BenchArgs, endpoints: usize) -> anyhow::Result<std::process::ExitCode> {
    let seen = Arc::new(Seen::default());
    let port = receiver(seen.clone()).await?;
    let (mut flags, _db) = backend_flags(args).await?;
    flags.extend(["--webhook-allow-private", "true", "--webhook-allow-http", "true"].map(str::to_owned));
    let server = start_server_with(None, &flags).await?;
    let (pid, auth) = (server.pid, server.admin_auth().await?);
    let client = reqwest::Client::new();
    for i in 0..endpoints {
        let url = format!("http://127.0.0.1:{port}/hook/{i}");
        let (path, body) = if args.channels {
            let template = "[{{ incident.severity | upper }}] {{ incident.title }}: {{ summary }} {{ url }}";
            let rules = json!([{ "event_types": ["incident.created"] }]);
            (
                "notification-channels",
                json!({ "name": format!("bench {i}"), "kind": "generic", "url": url, "rules": rules, "template": template }),
            )
        } else {
            ("webhooks", json!({ "url": url, "event_types": ["incident.created"] }))
        };
        let r = client.post(format!("{}/api/v1/{path}", server.base)).header("authorization", &auth).json(&body).send().await?;
        anyhow::ensure!(r.status() == 201, "creating an endpoint: {}", r.status());
    }
    let kind = if args.channels { "notification channels" } else { "webhook endpoints" };
    println!("ironcase bench --webhooks: {endpoints} {kind}, {} clients creating for {} s, server pid {pid}", args.clients, args.seconds);
    if let Some(outage) = args.outage {
        println!("the receiver is down for the first {outage} s");
        seen.down.store(true, Ordering::Relaxed);
        let seen = seen.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(outage)).await;
            seen.down.store(false, Ordering::Relaxed);
        });
    }
    let addr = server.base.trim_start_matches("http://").to_owned();
    let a = auth.clone();
    let create: Render = Arc::new(move |n| {
        let body = json!({ "title": format!("Webhook bench {n}"), "severity": "high", "category": "malware" }).to_string();
        post_request("/api/v1/incidents", &a, &body)
    });
    let started = Instant::now();
    let cpu_before = super::cpu_seconds(pid).0;
    let r = phase(
        "POST /incidents (each to every endpoint)",
        &addr,
        args.clients,
        args.seconds,
        args.max_requests,
        create,
        Arc::new(|a| a.status == 201),
    )
    .await;
    print(&r, 0.0);
    let want = r.ok * endpoints as u64;
    // Past an outage, the next try may be a back-off step away (30 min after 5 min).
    let wait = if args.outage.is_some() { 3 * 3600 } else { 600 };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut said = Instant::now();
    while seen.count.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if said.elapsed() > Duration::from_secs(60) {
            println!("  {} s: {} of {want} delivered", started.elapsed().as_secs(), seen.count.load(Ordering::Relaxed));
            said = Instant::now();
        }
    }
    let got = seen.count.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let cpu = super::cpu_seconds(pid).0 - cpu_before;
    println!(
        "delivered {got} of {want} messages in {secs:.1} s from the first create: {:.0} deliveries/s; server CPU {:.0} µs per delivery (creates included)",
        got as f64 / secs,
        cpu * 1e6 / got.max(1) as f64
    );
    anyhow::ensure!(got >= want, "not every message arrived");
    if args.outage.is_some() {
        // Past a long outage the bench's token has expired; the latency
        // phase belongs to the runs without one.
        return Ok(std::process::ExitCode::SUCCESS);
    }

    // Latency: one incident at a time.
    let mut lat = Vec::new();
    for n in 0..200 {
        let t0 = Instant::now();
        let body = json!({ "title": format!("Latency {n}"), "severity": "low", "category": "other" });
        let r = client.post(format!("{}/api/v1/incidents", server.base)).header("authorization", &auth).json(&body).send().await?;
        let id = r.json::<Value>().await?["id"].as_str().context("an incident id")?.to_owned();
        let committed = Instant::now();
        let until = committed + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = seen.first.lock().ok().and_then(|f| f.get(&id).copied()) {
                break Some(at);
            }
            if Instant::now() > until {
                break None;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        let at = arrived.context("a message did not arrive within 10 s")?;
        lat.push(at.saturating_duration_since(committed).as_secs_f64() * 1000.0);
        let _ = t0;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!("commit to first delivery, 200 incidents one at a time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", q(0.5), q(0.99), q(1.0));
    Ok(std::process::ExitCode::SUCCESS)
}
