//! `ironcase bench --compliance DIR`: compliance reports on a data directory
//! filled by `ironcase dev seed` (its organisation `default`): each
//! framework's report, latency and server CPU per report.

use super::{get_request, login, phase, print, start_server_with, with_cpu, Answer, BenchArgs, Check, Render};

pub(super) async fn run_compliance(args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<std::process::ExitCode> {
    let extra: Vec<String> = args.database_url.iter().flat_map(|u| ["--database-url".to_owned(), u.clone()]).collect();
    let server = start_server_with(Some(dir), &extra).await?;
    let (base, pid) = (server.base.clone(), server.pid);
    let token = login(&base, &server.password).await?;
    let auth = format!("Bearer {token}");
    let probe: serde_json::Value =
        reqwest::Client::new().get(format!("{base}/api/v1/compliance/soc2")).bearer_auth(&token).send().await?.json().await?;
    let open = probe["controls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["checks"].as_array().into_iter().flatten())
        .find_map(|k| (k["check"] == "incident_response").then(|| k["figures"]["open"].clone()));
    println!("ironcase bench --compliance: `default` has {} unresolved incidents, server pid {pid}", open.unwrap_or_default());
    let addr = base.trim_start_matches("http://").to_owned();
    let ok: Check = std::sync::Arc::new(|a: &Answer| a.status == 200);
    for f in ["soc2", "iso27001", "nist-csf", "gdpr", "ccpa"] {
        let a = auth.clone();
        let path = format!("/api/v1/compliance/{f}");
        let render: Render = std::sync::Arc::new(move |_| get_request(&path, &a));
        let name = format!("GET /compliance/{f}");
        let r = with_cpu(pid, phase(&name, &addr, args.scale_clients, args.seconds, args.max_requests, render, ok.clone())).await;
        print(&r, 0.0);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
