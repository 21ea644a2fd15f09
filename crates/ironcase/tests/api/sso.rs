//! Single sign-on against a real, certified OpenID provider that no one here
//! wrote: panva's `oidc-provider` from the npm registry, run with Node.js
//! (`tests/oidc/provider.mjs`; `.ci/run` installs it; outside CI without it
//! the test says so and stops). A browser is played by an HTTP client that
//! keeps each host's cookies and follows redirects by hand.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spare_port, Reaped, TestApp, PASSWORD};

pub(crate) const CLIENT_ID: &str = "ironcase-test";
pub(crate) const CLIENT_SECRET: &str = "a client secret for the tests";

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// The provider on `port`, once it answers; `None` (the test stops) without
/// Node.js or oidc-provider outside CI.
pub(crate) fn start_provider(port: u16, redirect_uri: &str) -> Option<Reaped> {
    let dir = oidc_dir();
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node || !dir.join("node_modules/oidc-provider").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must provide Node.js and oidc-provider (npm ci --prefix crates/ironcase/tests/oidc)"
        );
        eprintln!("Node.js or oidc-provider is missing: the SSO test needs them (npm ci --prefix crates/ironcase/tests/oidc)");
        return None;
    }
    let mut child = std::process::Command::new("node")
        .current_dir(&dir)
        .args(["provider.mjs", &port.to_string(), CLIENT_ID, CLIENT_SECRET, redirect_uri])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start oidc-provider");
    let stdout = child.stdout.take().expect("stdout");
    let reaped = Reaped(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line.expect("provider output").contains("listening") {
            // Read on: a provider writing to a closed pipe would die.
            std::thread::spawn(move || lines.for_each(drop));
            return Some(reaped);
        }
    }
    panic!("oidc-provider did not start");
}

/// A browser: cookies per host, redirects followed by hand.
struct Browser {
    client: reqwest::Client,
    jars: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    fn new() -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { client, jars: HashMap::new() }
    }

    async fn go(&mut self, method: Method, url: &str, form: Option<&[(&str, &str)]>) -> (StatusCode, Option<String>, String) {
        let u = reqwest::Url::parse(url).expect("url");
        let host = format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0));
        let jar = self.jars.entry(host.clone()).or_default();
        let mut req = self.client.request(method, u.clone());
        if !jar.is_empty() {
            req = req.header("cookie", jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "));
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let r = req.send().await.expect("request");
        for c in r.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap_or("").split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        let status = r.status();
        let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(|l| u.join(l).expect("location").to_string());
        (status, location, r.text().await.unwrap_or_default())
    }

    /// Drops the cookies this browser holds for `url`'s host.
    fn forget(&mut self, url: &str) {
        let u = reqwest::Url::parse(url).expect("url");
        self.jars.remove(&format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0)));
    }
}

/// Logs `who` in at the provider from Ironcase's start URL; the callback's
/// URL. `forget_binding`: the callback arrives in another browser.
async fn through_provider(b: &mut Browser, start: &str, who: &str) -> String {
    let (status, to_provider, _) = b.go(Method::GET, start, None).await;
    assert_eq!(status, StatusCode::FOUND, "start redirects to the provider");
    let to_provider = to_provider.expect("location");
    for p in ["code_challenge_method=S256", "state=", "nonce=", "scope=openid"] {
        assert!(to_provider.contains(p), "{p} in {to_provider}");
    }
    let (_, interaction, _) = b.go(Method::GET, &to_provider, None).await;
    let interaction = interaction.expect("to the login form");
    let (_, resume, _) = b.go(Method::POST, &interaction, Some(&[("prompt", "login"), ("login", who), ("password", "x")])).await;
    let (status, callback, body) = b.go(Method::GET, &resume.expect("resume"), None).await;
    let callback = callback.unwrap_or_else(|| panic!("the provider redirects back ({status}): {body}"));
    assert!(callback.contains("/api/v1/auth/sso/callback?"), "{callback}");
    callback
}

/// A whole login in API mode: the tokens' access token.
async fn sso_login(app: &TestApp, b: &mut Browser, who: &str) -> Result<String, Value> {
    let start = format!("{}/api/v1/auth/sso/default/start?mode=api", app.base);
    // A provider may add parameters of its own.
    let callback = format!("{}&session_state=opaque", through_provider(b, &start, who).await);
    let (status, _, body) = b.go(Method::GET, &callback, None).await;
    let body: Value = serde_json::from_str(&body).expect("json");
    if status != StatusCode::OK {
        return Err(body);
    }
    let code = body["code"].as_str().expect("a one-time code").to_owned();
    let r = app.send(Method::POST, "/api/v1/auth/sso/token", None, Some(json!({ "code": code })), &[]).await.expect(200);
    // Once only.
    app.send(Method::POST, "/api/v1/auth/sso/token", None, Some(json!({ "code": code })), &[]).await.problem(401, "sso_failed");
    Ok(r.str("access_token"))
}

#[tokio::test]
async fn members_sign_in_through_their_organisations_provider() {
    let (port, idp_port) = (spare_port(), spare_port());
    let base = format!("http://127.0.0.1:{port}");
    let Some(_idp) = start_provider(idp_port, &format!("{base}/api/v1/auth/sso/callback")) else { return };
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let app = TestApp::spawn_with(|c| {
        c.bind = format!("127.0.0.1:{port}").parse().expect("addr");
        c.public_url = Some(base.clone());
        c.sso_allow_insecure_issuer = true;
        c.auth_address_limit = Some("100000/60".into());
    })
    .await;
    let owner = app.admin().await;
    let mut config = json!({
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["groups"],
        "allowed_domains": ["example.test"],
        "role_mapping": { "admins": "admin", "responders": "analyst" },
        "jit": true,
    });
    // Refused before anything is kept: a provider that does not answer, a
    // role the caller may not give.
    let mut wrong = config.clone();
    wrong["issuer"] = json!(format!("http://127.0.0.1:{}", spare_port()));
    app.put_json("/api/v1/organization/sso", &owner.token, wrong).await.problem(422, "validation_failed");
    let mut wrong = config.clone();
    wrong["role_mapping"] = json!({ "admins": "emperor" });
    app.put_json("/api/v1/organization/sso", &owner.token, wrong).await.problem(422, "validation_failed");
    app.get("/api/v1/organization/sso", &owner.token).await.problem(404, "not_found");
    let r = app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    assert!(r.body.get("client_secret").is_none(), "the secret is never returned: {}", r.body);
    assert_eq!(r.body["redirect_uri"], json!(format!("{base}/api/v1/auth/sso/callback")));
    assert!(!app.get("/api/v1/organization/sso", &owner.token).await.expect(200).body.to_string().contains(CLIENT_SECRET));

    // Alice (groups admins, responders) is made at her first login, with
    // the highest mapped role; Bob (responders) an analyst.
    let mut browser = Browser::new();
    let alice = sso_login(&app, &mut browser, "alice").await.expect("alice signs in");
    let me = app.get("/api/v1/auth/me", &alice).await.expect(200);
    assert_eq!((me.body["user"]["email"].clone(), me.body["role"].clone()), (json!("alice@example.test"), json!("admin")));
    let sessions = app.get("/api/v1/auth/sessions", &alice).await.expect(200);
    assert_eq!(sessions.body["items"][0]["method"], json!("sso"));
    let bob = sso_login(&app, &mut Browser::new(), "bob").await.expect("bob signs in");
    assert_eq!(app.get("/api/v1/auth/me", &bob).await.expect(200).body["role"], json!("analyst"));

    // The login is bound to the browser that began it: a callback carried
    // to another browser (login CSRF) is refused, and so is a replay.
    let mut b = Browser::new();
    let start = format!("{base}/api/v1/auth/sso/default/start?mode=api");
    let callback = through_provider(&mut b, &start, "alice").await;
    let mut other = Browser::new();
    let (status, _, body) = other.go(Method::GET, &callback, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("sso_failed"), "{body}");
    let (status, _, _) = b.go(Method::GET, &callback, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the state was spent by the first try");

    // Without a verified address, or from a domain not allowed: refused.
    assert!(sso_login(&app, &mut Browser::new(), "carol").await.is_err());
    assert!(sso_login(&app, &mut Browser::new(), "mallory").await.is_err());
    // An account of another organisation is not this provider's to speak for.
    let org = json!({ "name": "Other", "slug": "other", "owner": { "email": "dave@example.test", "name": "Dave", "password": PASSWORD } });
    app.post("/api/v1/admin/organizations", &owner.token, org).await.expect(201);
    let refused = sso_login(&app, &mut Browser::new(), "dave").await.expect_err("dave is refused");
    assert!(refused["detail"].as_str().unwrap_or_default().contains("account_exists_outside_the_organization"), "{refused}");
    // Nor does another organisation see this one's provider.
    let dave = app.login("dave@example.test", PASSWORD, Some("other")).await;
    app.get("/api/v1/organization/sso", &dave.token).await.problem(404, "not_found");
    app.delete("/api/v1/organization/sso", &dave.token).await.problem(404, "not_found");

    // The provider rotates its signing key: the new one is fetched.
    let rotated = reqwest::Client::new().post(format!("{issuer}/__test/rotate")).send().await.expect("rotate");
    assert!(rotated.status().is_success());
    let again = sso_login(&app, &mut Browser::new(), "alice").await.expect("alice signs in after the rotation");

    // The mapping applies at every login: Alice's admins group now maps lower.
    config["role_mapping"] = json!({ "admins": "lead", "responders": "analyst" });
    config.as_object_mut().expect("object").remove("client_secret");
    app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    let demoted = sso_login(&app, &mut Browser::new(), "alice").await.expect("alice signs in");
    assert_eq!(app.get("/api/v1/auth/me", &demoted).await.expect(200).body["role"], json!("lead"));
    assert_eq!(app.get("/api/v1/auth/me", &again).await.expect(200).body["role"], json!("lead"), "her other sessions follow");

    // Without JIT, an invited address signs in and so accepts its
    // invitation (the mapped role wins over the one offered); an address
    // neither member nor invited is refused.
    config["jit"] = json!(false);
    app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    let bob_id = app.get("/api/v1/auth/me", &bob).await.expect(200).body["user"]["id"].as_str().expect("id").to_owned();
    app.delete(&format!("/api/v1/members/{bob_id}"), &owner.token).await.expect(204);
    assert!(sso_login(&app, &mut Browser::new(), "bob").await.is_err(), "no longer a member, not invited");
    app.post("/api/v1/members", &owner.token, json!({ "email": "bob@example.test", "role": "viewer" })).await.expect(201);
    let bob = sso_login(&app, &mut Browser::new(), "bob").await.expect("the invited address signs in");
    assert_eq!(app.get("/api/v1/auth/me", &bob).await.expect(200).body["role"], json!("analyst"));
    let pending = app.get("/api/v1/invitations", &owner.token).await.expect(200);
    assert_eq!(pending.body["items"].as_array().map(Vec::len), Some(0), "accepted: {}", pending.body);

    // SSO required: a member's password login is refused, an owner's is not.
    app.member(&owner, "pw@example.test", "viewer", None).await;
    config["sso_required"] = json!(true);
    app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    app.login_raw("pw@example.test", PASSWORD, None).await.problem(403, "sso_required");
    app.admin().await;
    // Which roles keep a password (break-glass) is the organisation's
    // choice: none, or more than the owners.
    config["password_roles"] = json!([]);
    let r = app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    assert_eq!(r.body["password_roles"], json!([]));
    app.login_raw("admin@localhost", &app.admin_password, None).await.problem(403, "sso_required");
    config["password_roles"] = json!(["owner", "viewer"]);
    app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.expect(200);
    app.login_raw("pw@example.test", PASSWORD, None).await.expect(200);
    config["password_roles"] = json!(["emperor"]);
    app.put_json("/api/v1/organization/sso", &owner.token, config.clone()).await.problem(422, "validation_failed");

    // Browser mode: to the console with the one-time code in the fragment.
    let mut b = Browser::new();
    let callback = through_provider(&mut b, &format!("{base}/api/v1/auth/sso/default/start"), "bob").await;
    let (status, to_console, _) = b.go(Method::GET, &callback, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to_console = to_console.expect("location");
    assert!(to_console.starts_with(&format!("{base}/sso#code=ics_")), "{to_console}");
    b.forget(&base);
    // The console's landing page posts the code (its script reads the
    // fragment); the session is a cookie's.
    let code = to_console.split("#code=").nth(1).expect("code").to_owned();
    let mut console = crate::console::Console::new(&app);
    assert!(console.get("/sso").await.body.contains("id=\"sso-finish\""));
    let signed = console.post("/signin/sso", &[("code", &code)]).await;
    assert_eq!((signed.status.as_u16(), signed.location()), (303, "/"), "{}", signed.body);
    assert_eq!(console.get("/").await.status.as_u16(), 200);
    assert_eq!(console.post("/signin/sso", &[("code", &code)]).await.status.as_u16(), 401, "a code works once");
    // "Sign in with SSO" by the organisation's name or an address of its domain.
    let mut fresh = crate::console::Console::new(&app);
    // A page that links on (a form's redirect may not leave the origin).
    let onward = "id=\"sso-continue\" href=\"/api/v1/auth/sso/default/start\"";
    assert!(fresh.get("/signin/sso?org=default").await.body.contains(onward));
    assert!(fresh.get("/signin/sso?org=someone%40example.test").await.body.contains(onward));
    assert_eq!(fresh.get("/signin/sso?org=someone%40elsewhere.test").await.status.as_u16(), 404);

    let audit = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    for action in ["organization.sso", "sso.provisioned", "sso.role_mapped", "sso.login"] {
        assert!(audit.contains(action), "{action} audited");
    }
    assert!(!audit.contains(CLIENT_SECRET), "no secret in the audit log");
    // An unknown organisation, or one without SSO: 404.
    app.send(Method::GET, "/api/v1/auth/sso/nope/start", None, None, &[]).await.problem(404, "not_found");
    app.send(Method::GET, "/api/v1/auth/sso/other/start", None, None, &[]).await.problem(404, "not_found");
}

#[tokio::test]
async fn sso_configuration_needs_https_a_public_address_and_the_plan() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let body = json!({ "issuer": "http://idp.example.test", "client_id": "c", "client_secret": "s" });
    let r = app.put_json("/api/v1/organization/sso", &operator.token, body).await.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], json!("issuer"), "{}", r.body);
    // Not the server's own network, nor a cloud's metadata service (SSRF).
    for issuer in ["https://127.0.0.1:1/", "https://localhost/", "https://[::1]/", "https://169.254.169.254/", "https://10.0.0.1/"] {
        let body = json!({ "issuer": issuer, "client_id": "c", "client_secret": "s" });
        let r = app.put_json("/api/v1/organization/sso", &operator.token, body).await.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["field"], json!("issuer"), "{issuer}: {}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("public address")), "{issuer}: {}", r.body);
    }
    let (org, owner) = app.org(&operator, "small").await;
    let plan = format!("/api/v1/admin/organizations/{}/plan", org["id"].as_str().expect("id"));
    app.send(Method::PUT, &plan, Some(&operator.token), Some(json!({ "plan": "starter" })), &[]).await.expect(200);
    let body = json!({ "issuer": "https://idp.example.test", "client_id": "c", "client_secret": "s" });
    app.put_json("/api/v1/organization/sso", &owner.token, body).await.problem(403, "feature_not_in_plan");
    app.delete("/api/v1/organization/sso", &owner.token).await.problem(404, "not_found");
    app.send(Method::POST, "/api/v1/auth/sso/token", None, Some(json!({ "code": "ics_nope" })), &[]).await.problem(401, "sso_failed");
    app.send(Method::GET, "/api/v1/auth/sso/callback?state=nope&code=x", None, None, &[]).await.problem(401, "sso_failed");
}

/// A provider of the test's own making (discovery, keys, a token endpoint
/// that answers whatever ID token the test forged), to show that forged or
/// misdirected ID tokens are refused.
mod forged {
    use std::sync::{Arc, Mutex};

    use base64::Engine;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};

    pub struct Idp {
        pub issuer: String,
        pub token: Arc<Mutex<String>>,
        pub key: SigningKey,
        _server: tokio::task::JoinHandle<()>,
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut k = [0u8; 64];
        k[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
        let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(msg.iter().copied()).collect();
        let inner = Sha256::digest(&inner);
        let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner.iter().copied()).collect();
        Sha256::digest(&outer).to_vec()
    }

    impl Idp {
        pub async fn start() -> Idp {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let issuer = format!("http://{}", listener.local_addr().expect("addr"));
            let key = SigningKey::from_bytes(&[11u8; 32]);
            let token = Arc::new(Mutex::new(String::new()));
            let (iss, x, t) = (issuer.clone(), b64(key.verifying_key().as_bytes()), token.clone());
            let discovery = json!({
                "issuer": iss,
                "authorization_endpoint": format!("{iss}/auth"),
                "token_endpoint": format!("{iss}/token"),
                "jwks_uri": format!("{iss}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["EdDSA", "HS256"],
            });
            let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "use": "sig", "alg": "EdDSA" }] });
            let app = axum::Router::new()
                .route("/.well-known/openid-configuration", axum::routing::get(move || async move { axum::Json(discovery) }))
                .route("/jwks", axum::routing::get(move || async move { axum::Json(jwks) }))
                .route(
                    "/token",
                    axum::routing::post(move || async move {
                        let id_token = t.lock().expect("token").clone();
                        axum::Json(json!({ "access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": id_token }))
                    }),
                );
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Idp { issuer, token, key, _server: server }
        }

        /// An EdDSA ID token over `claims`, signed with the provider's key.
        pub fn signed(&self, claims: &Value) -> String {
            let head = b64(br#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#);
            let body = b64(claims.to_string().as_bytes());
            let sig = self.key.sign(format!("{head}.{body}").as_bytes());
            format!("{head}.{body}.{}", b64(&sig.to_bytes()))
        }

        /// An HS256 ID token keyed with `secret` (the client secret).
        pub fn hmac(claims: &Value, secret: &str) -> String {
            let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
            let body = b64(claims.to_string().as_bytes());
            format!("{head}.{body}.{}", b64(&hmac_sha256(secret.as_bytes(), format!("{head}.{body}").as_bytes())))
        }

        /// An unsigned ID token (`alg: none`).
        pub fn unsigned(claims: &Value) -> String {
            format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes()))
        }
    }
}

/// Makes an ID token from the login's nonce.
type Forge = Box<dyn Fn(&str) -> String>;

#[tokio::test]
async fn forged_or_misdirected_id_tokens_are_refused() {
    let idp = Arc::new(forged::Idp::start().await);
    let port = spare_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|c| {
        c.bind = format!("127.0.0.1:{port}").parse().expect("addr");
        c.public_url = Some(base.clone());
        c.sso_allow_insecure_issuer = true;
        c.auth_address_limit = Some("100000/60".into());
    })
    .await;
    let owner = app.admin().await;
    let config = json!({
        "issuer": idp.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "default_role": "viewer", "jit": true,
    });
    app.put_json("/api/v1/organization/sso", &owner.token, config).await.expect(200);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    // One login with `make` forging its ID token from the nonce: the callback's answer.
    let forged_token = idp.token.clone();
    let login = |make: Forge| {
        let (client, base, token) = (client.clone(), base.clone(), forged_token.clone());
        async move {
            let r = client.get(format!("{base}/api/v1/auth/sso/default/start?mode=api")).send().await.expect("start");
            let cookie =
                r.headers().get("set-cookie").and_then(|c| c.to_str().ok()).expect("cookie").split(';').next().expect("pair").to_owned();
            let to = reqwest::Url::parse(r.headers().get("location").and_then(|l| l.to_str().ok()).expect("location")).expect("url");
            let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
            *token.lock().expect("token") = make(&q["nonce"]);
            let r = client
                .get(format!("{base}/api/v1/auth/sso/callback?code=c&state={}", q["state"]))
                .header("cookie", cookie)
                .send()
                .await
                .expect("callback");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let now = app.clock.now().0 / 1000;
    let claims = move |nonce: &str| {
        json!({ "iss": "", "sub": "s1", "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": nonce,
                "email": "eve@example.test", "email_verified": true })
    };
    let iss = idp.issuer.clone();
    let good = move |nonce: &str| {
        let mut c = claims(nonce);
        c["iss"] = json!(iss.clone());
        c
    };
    let key = idp.clone();
    let cases: Vec<(&str, Forge)> = vec![
        ("alg none", {
            let g = good.clone();
            Box::new(move |n| forged::Idp::unsigned(&g(n)))
        }),
        ("HS256 keyed with the client secret", {
            let g = good.clone();
            Box::new(move |n| forged::Idp::hmac(&g(n), CLIENT_SECRET))
        }),
        ("another audience", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |n| {
                let mut c = g(n);
                c["aud"] = json!("someone-else");
                k.signed(&c)
            })
        }),
        ("another issuer", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |n| {
                let mut c = g(n);
                c["iss"] = json!("https://evil.example");
                k.signed(&c)
            })
        }),
        ("another nonce", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |_| k.signed(&g("not-the-nonce")))
        }),
        ("expired", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |n| {
                let mut c = g(n);
                c["exp"] = json!(now - 600);
                k.signed(&c)
            })
        }),
        ("issued long ago", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |n| {
                let mut c = g(n);
                c["iat"] = json!(now - 7200);
                k.signed(&c)
            })
        }),
        ("for another party", {
            let (g, k) = (good.clone(), key.clone());
            Box::new(move |n| {
                let mut c = g(n);
                c["azp"] = json!("someone-else");
                k.signed(&c)
            })
        }),
        ("a signature that does not verify", {
            let g = good.clone();
            Box::new(move |n| {
                let t = SigningKey::from_bytes(&[12u8; 32]);
                let head = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0";
                let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(g(n).to_string());
                format!(
                    "{head}.{body}.{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.sign(format!("{head}.{body}").as_bytes()).to_bytes())
                )
            })
        }),
    ];
    for (why, make) in cases {
        let (status, body) = login(make).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["code"], json!("sso_failed"), "{why}: {body}");
    }
    // The same harness with a true token signs in.
    let k = key.clone();
    let (status, body) = login(Box::new(move |n| k.signed(&good(n)))).await;
    assert_eq!(status, 200, "a good token: {body}");
    let audit = app.get("/api/v1/audit?limit=200", &owner.token).await.expect(200).body.to_string();
    assert!(audit.contains("id_token_invalid"), "refusals audited with their reason");
}
