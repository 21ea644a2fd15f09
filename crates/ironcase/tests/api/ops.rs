use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let app = TestApp::spawn().await;
    let h = app.send(Method::GET, "/healthz", None, None, &[]).await.expect(200);
    assert!(h.header("x-request-id").is_some_and(|v| !v.is_empty()));
    app.send(Method::GET, "/readyz", None, None, &[]).await.expect(200);
    // A sane incoming request id is echoed, also in error bodies.
    let r = app.send(Method::GET, "/nope", None, None, &[("x-request-id", "req-abc-123")]).await.problem(404, "not_found");
    assert_eq!(r.header("x-request-id"), Some("req-abc-123"));
    assert_eq!(r.body["request_id"], "req-abc-123");
    // An insane one is replaced.
    let r = app.send(Method::GET, "/healthz", None, None, &[("x-request-id", &"x".repeat(500))]).await;
    assert_ne!(r.header("x-request-id").map(str::len), Some(500));
    app.send(Method::DELETE, "/healthz", None, None, &[]).await.problem(405, "method_not_allowed");
    // Invented methods do not become label values.
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).expect("method");
        app.send(method, "/healthz", None, None, &[]).await;
    }
    let m = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    let text = m.text().await.expect("text");
    assert!(text.contains("ironcase_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    assert!(text.contains("ironcase_http_request_duration_seconds_bucket"), "{text}");
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn openapi_document_and_docs_are_served_locally() {
    let app = TestApp::spawn().await;
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200);
    assert!(doc.body["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc.body["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/admin/organizations",
        "/api/v1/organization",
        "/api/v1/members",
        "/api/v1/members/{user_id}",
        "/api/v1/invitations",
        "/api/v1/invitations/{id}",
        "/api/v1/invitations/accept",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/api-keys/{id}/rotate",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/comments",
        "/api/v1/incidents/{id}/timeline",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/incidents/{id}/evidence",
        "/api/v1/evidence/{id}",
        "/api/v1/evidence/{id}/content",
        "/api/v1/evidence/{id}/custody",
        "/api/v1/organization/usage",
        "/api/v1/admin/organizations/{id}",
        "/api/v1/admin/organizations/{id}/plan",
        "/api/v1/organization/children",
        "/api/v1/organization/parent-access",
        "/api/v1/organizations/{org}/incidents",
        "/api/v1/organizations/{org}/audit",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    let ui = app.client.get(app.url("/docs/")).send().await.expect("docs");
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.expect("html").to_lowercase().contains("swagger"));
}

/// The committed OpenAPI document is the served one, so that API drift shows
/// in review. After an intended change: `IRONCASE_UPDATE_OPENAPI=1 cargo test openapi_snapshot`.
#[tokio::test]
async fn openapi_snapshot() {
    let app = TestApp::spawn().await;
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200);
    let served = serde_json::to_string_pretty(&doc.body).expect("json") + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var("IRONCASE_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(path, &served).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json differs from the served document; review the change and run IRONCASE_UPDATE_OPENAPI=1 cargo test openapi_snapshot"
    );
}

/// `X-Forwarded-For` is believed only from configured trusted proxies: the
/// audit log's source address and the per-address limits use what they say.
#[tokio::test]
async fn forwarded_addresses_only_from_trusted_proxies() {
    for (trusted, expected) in [(vec!["127.0.0.1/32".to_owned()], "203.0.113.7"), (vec![], "127.0.0.1")] {
        let app = TestApp::spawn_with(|c| c.trusted_proxies = trusted).await;
        let body = serde_json::json!({ "email": "admin@localhost", "password": app.admin_password });
        let xff = [("x-forwarded-for", "198.51.100.1, 203.0.113.7")];
        let r = app.send(Method::POST, "/api/v1/auth/login", None, Some(body), &xff).await.expect(200);
        let token = r.str("access_token");
        let audit = app.get("/api/v1/audit?action=auth.login", &token).await.expect(200);
        assert_eq!(audit.body["items"][0]["source_ip"], expected, "{}", audit.body);
    }
}

/// Every enum the document describes lists the values the API speaks
/// (`"low"`, `"in_progress"`, `"amber+strict"`), never the Rust names.
#[tokio::test]
async fn the_documented_enums_are_the_wire_values() {
    let app = TestApp::spawn().await;
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200);
    let schemas = doc.body["components"]["schemas"].as_object().expect("schemas");
    let mut enums = 0;
    for (name, s) in schemas {
        for v in s["enum"].as_array().into_iter().flatten() {
            let v = v.as_str().expect("a string value");
            assert!(!v.chars().any(|c| c.is_ascii_uppercase()), "{name}: {v}");
            enums += 1;
        }
    }
    assert!(enums > 50, "{enums} enum values");
    assert_eq!(schemas["Severity"]["enum"], serde_json::json!(["low", "medium", "high", "critical"]));
    assert_eq!(schemas["Status"]["enum"][2], "in_progress");
}

/// Every error an API operation documents is problem+json, and every
/// operation documents the errors its kind of route can answer.
#[tokio::test]
async fn every_documented_error_is_problem_json() {
    let app = TestApp::spawn().await;
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None, &[]).await.expect(200).body;
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().expect("paths").iter().filter(|(p, _)| p.starts_with("/api/v1/")) {
        for (method, op) in item.as_object().expect("operations") {
            let responses = op["responses"].as_object().expect("responses");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let has_path = op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "path");
            let mut required = vec!["429", "500", "503"];
            if secured {
                required.extend(["401", "403"]);
            }
            if has_path {
                required.push("404");
            }
            for status in required {
                assert!(responses.contains_key(status), "{method} {path}: {status} undocumented");
            }
            for (status, r) in responses.iter().filter(|(s, _)| s.starts_with(['4', '5'])) {
                assert_eq!(
                    r["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                assert!(r["content"].get("application/json").is_none(), "{method} {path} {status}");
            }
            ops += 1;
        }
    }
    assert!(ops > 40, "{ops} operations");
}

/// `/metrics` answers this machine's own connections, or whoever presents the
/// metrics token; a forwarded request without it is a 404 like any unknown route.
#[tokio::test]
async fn metrics_are_for_this_machine_or_the_token_holder() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".to_owned()];
        c.metrics_token = Some(ironcase_app::shared::SecretUrl::new("a-long-metrics-token"));
    })
    .await;
    app.send(Method::GET, "/metrics", None, None, &[]).await.expect(200);
    let via_proxy = [("x-forwarded-for", "203.0.113.9")];
    app.send(Method::GET, "/metrics", None, None, &via_proxy).await.problem(404, "not_found");
    app.send(Method::GET, "/metrics", Some("wrong-token-of-some-length"), None, &via_proxy).await.problem(404, "not_found");
    let r = app.send(Method::GET, "/metrics", Some("a-long-metrics-token"), None, &via_proxy).await.expect(200);
    assert!(r.body.as_str().is_some_and(|t| t.contains("ironcase_")), "{:?}", r.body);
}
