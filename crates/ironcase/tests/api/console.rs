//! The web console through HTTP, as a browser that follows no redirects by
//! itself would use it: signing in (with and without a second factor), the
//! cookie and its flags, the queue and an incident, comments and the
//! workflow, CSRF and cross-site refusals, what a viewer is shown and may
//! post, another tenant's incident, the end of a session, the security
//! headers of every page and the assets' caching. (The same flows in a real
//! browser are the browser suite's.)

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

/// One browser: its cookie, no redirects followed.
pub(crate) struct Console {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.body[at..].split('"').next().expect("token").to_owned()
    }
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Console { base: app.base.clone(), client, cookie: None }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).header("accept", "text/html");
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(f) = form {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(f.iter()).finish();
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        }
        let r = req.send().await.expect("request");
        let (status, headers) = (r.status(), r.headers().clone());
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or("").to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        Page { status, headers, body: r.text().await.expect("body") }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form), &[]).await
    }

    pub async fn post_with(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form), headers).await
    }

    /// Signs in with a password; the page after.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.post("/signin", &[("email", email), ("password", password), ("next", "/")]).await
    }
}

fn assert_secure_headers(p: &Page, what: &str) {
    let csp = p.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    for part in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(p.headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{what}");
    assert!(p.headers.get("referrer-policy").is_some(), "{what}");
    assert!(!p.body.contains("<script>") && !p.body.contains(" style=\""), "{what}: no inline script or style");
}

#[tokio::test]
async fn a_member_signs_in_works_an_incident_and_signs_out() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let id = app.incident(&owner, "Beacon to evil.example").await.str("id");
    let mut b = Console::new(&app);

    // Not signed in: to the sign-in page, and back after.
    let p = b.get(&format!("/incidents/{id}")).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), format!("/signin?next=%2Fincidents%2F{id}"));
    let p = b.get("/signin").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "sign-in");
    assert!(p.body.contains("<label for=\"email\">"), "labelled controls");

    // A wrong password: the page again, the address kept, a sentence.
    let p = b.sign_in("admin@localhost", "not the password at all").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("The e-mail or password is not right.") && p.body.contains("value=\"admin@localhost\""), "{}", p.body);
    assert!(!p.body.contains("not the password at all"), "the password is never shown back");
    assert!(b.cookie.is_none());

    let p =
        b.post("/signin", &[("email", "admin@localhost"), ("password", &app.admin_password), ("next", &format!("/incidents/{id}"))]).await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, format!("/incidents/{id}").as_str()));
    let set = p.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("a cookie");
    assert!(
        set.starts_with("ironcase=icw_") && set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    // Off TLS the cookie cannot be `Secure`, so it cannot take `__Host-`.
    assert!(!set.contains("Secure"), "{set}");
    // Sent elsewhere than this console: home instead.
    let mut other = Console::new(&app);
    let p = other.post("/signin", &[("email", "admin@localhost"), ("password", &app.admin_password), ("next", "//evil.example/")]).await;
    assert_eq!(p.location(), "/");

    // The queue, filtered.
    let p = b.get("/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "queue");
    assert!(p.body.contains("Beacon to evil.example"), "{}", p.body);
    assert!(!b.get("/?severity=low").await.body.contains("Beacon to evil.example"), "the incident is high");

    // The incident: comment (with the session's CSRF token), then move it.
    let p = b.get(&format!("/incidents/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "incident");
    let csrf = p.csrf();
    let r = b.post(&format!("/incidents/{id}/comments"), &[("csrf", &csrf), ("body", "seen <b>twice</b> on the proxy")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = b.get(&format!("/incidents/{id}")).await;
    assert!(p.body.contains("seen &lt;b&gt;twice&lt;/b&gt; on the proxy"), "escaped, not markup: {}", p.body);
    assert!(p.body.contains("<span class=\"actor\">Administrator</span> commented"), "people are named, not numbered: {}", p.body);
    let timeline = app.get(&format!("/api/v1/incidents/{id}/timeline"), &owner.token).await.expect(200);
    assert!(timeline.body.to_string().contains("seen <b>twice</b> on the proxy"), "the same comment through the API");
    // Only the next statuses are offered; closing needs a resolution.
    assert!(p.body.contains("value=\"triaged\"") && !p.body.contains("value=\"contained\""), "{}", p.body);
    let r = b.post(&format!("/incidents/{id}/status"), &[("csrf", &csrf), ("version", "1"), ("status", "closed")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("resolution"), "{}", r.body);
    let r = b.post(&format!("/incidents/{id}/status"), &[("csrf", &csrf), ("version", "1"), ("status", "triaged")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.get(&format!("/api/v1/incidents/{id}"), &owner.token).await.expect(200).body["status"], json!("triaged"));
    // A stale page: the change is refused, with a sentence.
    let r = b.post(&format!("/incidents/{id}/status"), &[("csrf", &csrf), ("version", "1"), ("status", "in_progress")]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);

    // A new incident: a refused form keeps what was typed.
    let r = b
        .post(
            "/incidents",
            &[
                ("csrf", &csrf),
                ("title", ""),
                ("severity", "high"),
                ("category", "malware"),
                ("tlp", "amber"),
                ("description", "kept text"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("kept text") && r.body.contains("title"), "{}", r.body);
    let r = b
        .post(
            "/incidents",
            &[
                ("csrf", &csrf),
                ("title", "From the console"),
                ("severity", "low"),
                ("category", "phishing"),
                ("tlp", "green"),
                ("tags", "a, b"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let made = app.get("/api/v1/incidents?severity=low", &owner.token).await.expect(200);
    assert_eq!(made.body["items"][0]["title"], json!("From the console"));
    assert_eq!(made.body["items"][0]["tags"], json!(["a", "b"]));

    // Signing out ends the session: the cookie is gone, and a copy of it
    // is refused with the "session ended" sign-in page.
    let kept = b.cookie.clone();
    let r = b.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/signin?signed_out=1"));
    assert!(b.cookie.is_none());
    b.cookie = kept;
    let p = b.get("/").await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, "/signin?next=%2F&ended=1"));
    assert!(b.get("/signin?ended=1").await.body.contains("Your session has ended"));
    app.shutdown().await;
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_this_origin() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let id = app.incident(&owner, "csrf target").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let csrf = b.get("/").await.csrf();
    let path = format!("/incidents/{id}/comments");

    let r = b.post(&path, &[("body", "no token")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Form expired"), "{}", r.body);
    let r = b.post(&path, &[("body", "wrong token"), ("csrf", "0000")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another session's token is not this one's.
    let mut other = Console::new(&app);
    other.sign_in("admin@localhost", &app.admin_password).await;
    let theirs = other.get("/").await.csrf();
    assert_ne!(theirs, csrf);
    assert_eq!(b.post(&path, &[("body", "their token"), ("csrf", &theirs)]).await.status, StatusCode::FORBIDDEN);
    // From another site, even with the token.
    let r = b.post_with(&path, &[("body", "cross-site"), ("csrf", &csrf)], &[("origin", "http://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post_with(&path, &[("body", "cross-site"), ("csrf", &csrf)], &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A sign-in posted from another site (login CSRF) is refused too.
    let mut fresh = Console::new(&app);
    let r = fresh
        .post_with("/signin", &[("email", "admin@localhost"), ("password", &app.admin_password)], &[("origin", "http://evil.example")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(fresh.cookie.is_none());
    let timeline = app.get(&format!("/api/v1/incidents/{id}/timeline"), &owner.token).await.expect(200).body.to_string();
    assert!(!timeline.contains("comment.added"), "nothing was posted: {timeline}");
    assert_eq!(b.post(&path, &[("body", "with it"), ("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    app.shutdown().await;
}

#[tokio::test]
async fn a_viewer_sees_no_edit_controls_and_a_forced_post_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let id = app.incident(&owner, "look, do not touch").await.str("id");
    app.member(&owner, "viewer@example.com", "viewer", None).await;
    let mut b = Console::new(&app);
    assert_eq!(b.sign_in("viewer@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let p = b.get(&format!("/incidents/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("look, do not touch"));
    assert!(!p.body.contains("action=\"/incidents/") && !p.body.contains("Add comment"), "no edit controls: {}", p.body);
    let csrf = p.csrf(); // the sign-out form's
    let r = b.post(&format!("/incidents/{id}/comments"), &[("csrf", &csrf), ("body", "forced")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = b.post(&format!("/incidents/{id}/status"), &[("csrf", &csrf), ("version", "1"), ("status", "triaged")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(b.get("/incidents/new").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/v1/incidents/{id}"), &owner.token).await.expect(200).body["status"], json!("open"));
    app.shutdown().await;
}

#[tokio::test]
async fn another_organisations_incident_is_any_404_and_bad_input_a_clear_page() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, beta) = app.org(&operator, "beta").await;
    let theirs = app.incident(&beta, "beta's secret").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let foreign = b.get(&format!("/incidents/{theirs}")).await;
    let missing = b.get("/incidents/inc_00000000000000000000000000").await;
    let garbage = b.get("/incidents/%00%ff").await;
    assert_eq!((foreign.status, missing.status, garbage.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(foreign.body, missing.body, "another tenant's incident looks like any missing one");
    assert!(!foreign.body.contains("beta's secret"));
    assert_secure_headers(&foreign, "404");
    let csrf = b.get("/").await.csrf();
    let r = b.post(&format!("/incidents/{theirs}/comments"), &[("csrf", &csrf), ("body", "x")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A path that is nothing: a page for a browser, a problem for a client.
    assert_eq!(b.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
    app.send(Method::GET, "/no/such/page", None, None, &[]).await.problem(404, "not_found");

    // Bad filters and forms: a clear page, nothing changed, still serving.
    for q in ["/?status=exploded", "/?cursor=garbage", "/?limit=0", "/?severity=high&severity=low", "/?utm=1"] {
        let p = b.get(q).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert!(p.body.contains("role=\"alert\""), "{q}: {}", p.body);
    }
    let r = b.post("/incidents", &[("csrf", &csrf), ("title", "x"), ("severity", "apocalyptic"), ("category", "malware")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = b.post("/incidents", &[("csrf", &csrf), ("title", "nul\0byte"), ("severity", "low"), ("category", "malware")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = b.send(Method::POST, "/signin", None, &[("content-type", "application/json")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/incidents", &operator.token).await.expect(200).body["items"].as_array().map(Vec::len), Some(0));
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_factor_is_asked_for_and_an_ended_session_ends_the_cookie() {
    let app = TestApp::spawn_with(|c| c.login_limit = Some("1000/60".into())).await;
    app.clock.freeze();
    let owner = app.admin().await;
    let u = app.member(&owner, "two@example.com", "analyst", None).await;
    let (secret, _) = crate::mfa::enable(&app, &u).await;
    let mut b = Console::new(&app);
    let p = b.sign_in("two@example.com", PASSWORD).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Second factor") && b.cookie.is_none(), "no session before the second factor");
    let at = p.body.find("name=\"challenge\" value=\"").expect("challenge") + 24;
    let challenge = p.body[at..].split('"').next().expect("challenge").to_owned();
    let r = b.post("/signin/mfa", &[("challenge", &challenge), ("code", "000000"), ("next", "/")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("That code is not right"), "{}", r.body);
    let r = b.post("/signin/mfa", &[("challenge", &challenge), ("code", &crate::mfa::code(&app, &secret, 1)), ("next", "/")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/"), "{}", r.body);
    assert_eq!(b.get("/").await.status, StatusCode::OK);

    // Idle past the timeout (30 minutes): the session ends, with a page that says so.
    app.clock.advance_secs(31 * 60);
    let p = b.get("/").await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, "/signin?next=%2F&ended=1"));
    // Used within it, it lives on; ended through the API, it ends here too.
    let mut c = Console::new(&app);
    c.sign_in("admin@localhost", &app.admin_password).await;
    app.clock.advance_secs(20 * 60);
    assert_eq!(c.get("/").await.status, StatusCode::OK);
    app.clock.advance_secs(20 * 60);
    assert_eq!(c.get("/").await.status, StatusCode::OK, "idle 20 minutes at a time, never 30");
    let admin = app.admin().await;
    app.post("/api/v1/auth/sessions/revoke-others", &admin.token, json!({})).await.expect(200);
    assert_eq!(c.get("/").await.status, StatusCode::SEE_OTHER, "ended with the account's other sessions");
    app.shutdown().await;
}

#[tokio::test]
async fn assets_are_named_by_their_content_cached_for_a_year_and_compressed() {
    let app = TestApp::spawn().await;
    let mut b = Console::new(&app);
    let p = b.get("/signin").await;
    let css = p.body.split("href=\"").find_map(|s| s.split('"').next().filter(|h| h.ends_with(".css"))).expect("stylesheet").to_owned();
    let js = p.body.split("src=\"").find_map(|s| s.split('"').next().filter(|h| h.ends_with(".js"))).expect("script").to_owned();
    assert!(css.starts_with("/assets/console-") && js.starts_with("/assets/console-"), "{css} {js}");
    for (path, kind) in [(&css, "text/css"), (&js, "text/javascript")] {
        let r = app.client.get(app.url(path)).header("accept-encoding", "gzip").send().await.expect("asset");
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap_or("").starts_with(kind));
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(h.get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]), "{path}");
        assert!(h.get("content-security-policy").is_some());
    }
    let r = app.client.get(app.url("/assets/console-000000000000.css")).send().await.expect("asset");
    assert_eq!(r.status(), 404, "an old build's name is not served as this one");
    app.shutdown().await;
}

#[tokio::test]
async fn search_shows_highlights_and_facets_and_live_updates_stream_to_the_cookie() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, beta) = app.org(&operator, "beta").await;
    app.incident(&beta, "ransomware at beta").await;
    let body = json!({ "title": "Ransomware <script>alert(1)</script> on shares", "severity": "critical", "category": "malware" });
    let id = app.post("/api/v1/incidents", &operator.token, body).await.expect(201).str("id");
    app.incident(&operator, "quiet phishing").await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;

    let p = b.get("/search?q=ransomware").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "search");
    assert!(p.body.contains("1 incidents") && p.body.contains("<mark>"), "{}", p.body);
    assert!(!p.body.contains("<script>alert(1)"), "escaped: {}", p.body);
    assert!(!p.body.contains("ransomware at beta"), "nothing of another organisation");
    assert!(p.body.contains("href=\"/search?q=ransomware+severity%3Acritical\""), "a facet narrows the query: {}", p.body);
    let p = b.get("/search?q=severity%3A").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("role=\"alert\""));
    assert_eq!(b.get("/search?q=x&offset=-1").await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Live: the cookie opens the organisation's stream; an event arrives.
    let mut req = app.client.get(app.url(&format!("/live?incident_id={id}"))).header("cookie", b.cookie.clone().expect("cookie"));
    req = req.header("accept", "text/event-stream");
    let mut live = req.send().await.expect("live");
    assert_eq!(live.status(), 200);
    assert!(live.headers()["content-type"].to_str().unwrap_or("").starts_with("text/event-stream"));
    app.post(&format!("/api/v1/incidents/{id}/comments"), &operator.token, json!({ "body": "live one" })).await.expect(201);
    let mut seen = String::new();
    while !seen.contains("comment.added") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), live.chunk()).await.expect("an event in time").expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("more")));
    }
    assert!(seen.contains("live one"), "{seen}");
    let theirs = app.get("/api/v1/incidents", &beta.token).await.expect(200).body["items"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(b.get(&format!("/live?incident_id={theirs}")).await.status, StatusCode::NOT_FOUND);
    let mut stranger = Console::new(&app);
    assert_eq!(stranger.get("/live").await.status, StatusCode::SEE_OTHER, "no cookie, no stream");
    app.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_and_old_proofs_ask_for_the_password() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    app.member(&owner, "viewer@example.com", "viewer", None).await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/keys").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "keys");
    let csrf = p.csrf();
    let made = b.post("/keys", &[("csrf", &csrf), ("name", "siem"), ("role", "analyst"), ("tlp_max", "")]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let at = made.body.find("id=\"new-key\">").expect("the key") + 13;
    let key = made.body[at..].split('<').next().expect("key").to_owned();
    assert!(key.starts_with("ick_"), "{key}");
    assert!(made.body.contains("data-copy=\"new-key\""), "a copy button");
    assert!(!b.get("/keys").await.body.contains(&key), "shown once");
    app.get("/api/v1/incidents", &key).await.expect(200);
    let bad = b.post("/keys", &[("csrf", &csrf), ("name", ""), ("role", "analyst")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let id = app.get("/api/v1/api-keys", &owner.token).await.expect(200).body["items"][0]["id"].as_str().expect("id").to_owned();
    let r = b.post(&format!("/keys/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/keys"));
    app.get("/api/v1/incidents", &key).await.problem(401, "unauthenticated");
    assert_eq!(b.post("/keys/apk_nope/revoke", &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);

    // Eleven minutes on, a new key needs the password again.
    app.clock.advance_secs(11 * 60);
    let r = b.post("/keys", &[("csrf", &csrf), ("name", "later"), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Confirm it is you") && r.body.contains("action=\"/reauthenticate\""), "{}", r.body);
    let wrong = b.post("/reauthenticate", &[("csrf", &csrf), ("password", "not it at all!!"), ("next", "/keys")]).await;
    assert!(wrong.body.contains("role=\"alert\""), "{}", wrong.body);
    let ok = b.post("/reauthenticate", &[("csrf", &csrf), ("password", &app.admin_password), ("next", "/keys")]).await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/keys"), "{}", ok.body);
    assert_eq!(b.post("/keys", &[("csrf", &csrf), ("name", "later"), ("role", "viewer")]).await.status, StatusCode::CREATED);

    // A viewer has no keys page.
    let mut v = Console::new(&app);
    v.sign_in("viewer@example.com", PASSWORD).await;
    assert!(!v.get("/").await.body.contains("href=\"/keys\""));
    assert_eq!(v.get("/keys").await.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

#[tokio::test]
async fn my_account_ends_sessions_changes_the_password_and_turns_on_a_second_factor() {
    let app = TestApp::spawn().await;
    app.clock.freeze();
    let owner = app.admin().await;
    app.member(&owner, "me@example.com", "analyst", None).await;
    let mut b = Console::new(&app);
    b.sign_in("me@example.com", PASSWORD).await;
    let mut elsewhere = Console::new(&app);
    elsewhere.sign_in("me@example.com", PASSWORD).await;
    let p = b.get("/account").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("me@example.com") && p.body.contains("this one"), "{}", p.body);
    let csrf = p.csrf();
    let r = b.post("/account/sessions/end-others", &[("csrf", &csrf)]).await;
    assert!(r.body.contains("Ended 2 other sessions"), "the other browser and the helper's login: {}", r.body);
    assert_eq!(elsewhere.get("/").await.status, StatusCode::SEE_OTHER, "the other browser is signed out");

    let weak = b.post("/account/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", "password1234")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("role=\"alert\""));

    let e = b.post("/account/mfa", &[("csrf", &csrf)]).await;
    assert_eq!(e.status, StatusCode::OK);
    assert!(e.body.contains("src=\"data:image/svg+xml;base64,"), "the QR code, drawn here");
    let at = e.body.find("id=\"totp-secret\">").expect("secret") + 17;
    let secret = e.body[at..].split('<').next().expect("secret").to_owned();
    let wrong = b.post("/account/mfa/confirm", &[("csrf", &csrf), ("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let on = b.post("/account/mfa/confirm", &[("csrf", &csrf), ("code", &crate::mfa::code(&app, &secret, 0))]).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert!(on.body.matches('\n').count() >= 10, "ten backup codes: {}", on.body);
    assert!(b.get("/account").await.body.contains("An authenticator app is on"));
    app.shutdown().await;
}

#[tokio::test]
async fn members_are_invited_and_join_through_the_console_and_the_audit_log_verifies() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.member(&owner, "viewer@example.com", "viewer", None).await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/members").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("viewer@example.com") && p.body.contains("action=\"/members\""), "{}", p.body);
    let csrf = p.csrf();
    // No SMTP here: the link is shown once, to pass on.
    let r = b.post("/members", &[("csrf", &csrf), ("email", "new@example.com"), ("role", "analyst")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let at = r.body.find("/invitation#token=").expect("the link") + 18;
    let token: String = r.body[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let bad = b.post("/members", &[("csrf", &csrf), ("email", "not an address"), ("role", "analyst")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let mut invitee = Console::new(&app);
    assert!(invitee.get("/invitation").await.body.contains("class=\"token-form\""));
    let wrong = invitee.post("/invitation", &[("token", "inv_nope"), ("name", "New"), ("password", PASSWORD)]).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert!(wrong.body.contains("not valid any more") && wrong.body.contains("value=\"New\""), "{}", wrong.body);
    let joined = invitee.post("/invitation", &[("token", &token), ("name", "New Member"), ("password", PASSWORD)]).await;
    assert_eq!((joined.status, joined.location()), (StatusCode::SEE_OTHER, "/signin?joined=1&organization=default"), "{}", joined.body);
    assert!(invitee.get(joined.location()).await.body.contains("You have joined"));
    assert_eq!(invitee.sign_in("new@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert!(b.get("/members").await.body.contains("New Member"));

    // Withdrawn invitations and removed members.
    b.post("/members", &[("csrf", &csrf), ("email", "later@example.com"), ("role", "viewer")]).await;
    let pending = app.get("/api/v1/invitations", &owner.token).await.expect(200);
    let inv = pending.body["items"][0]["id"].as_str().expect("invitation").to_owned();
    assert_eq!(b.post(&format!("/invitations/{inv}/revoke"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let members = app.get("/api/v1/members", &owner.token).await.expect(200);
    let new_id = members.body["items"].as_array().expect("members").iter().find(|m| m["email"] == "new@example.com").expect("member")
        ["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(b.post(&format!("/members/{new_id}/remove"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(invitee.get("/").await.status, StatusCode::SEE_OTHER, "a removed member is signed out");

    // The audit log, verified.
    let a = b.get("/audit").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("The chain verifies") && a.body.contains("member.invite"), "{}", a.body);
    assert!(!b.get("/audit?action=member.remove").await.body.contains("member.invite"));
    assert_eq!(b.get("/audit?before=x").await.status, StatusCode::BAD_REQUEST);

    // A viewer reads the members, manages nothing, and has no audit log.
    let mut v = Console::new(&app);
    v.sign_in("viewer@example.com", PASSWORD).await;
    let m = v.get("/members").await;
    assert!(m.status == StatusCode::OK && !m.body.contains("action=\"/members\""), "{}", m.body);
    assert_eq!(v.get("/audit").await.status, StatusCode::FORBIDDEN);
    let forced = v.post("/members", &[("csrf", &m.csrf()), ("email", "x@example.com"), ("role", "owner")]).await;
    assert_eq!(forced.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

#[tokio::test]
async fn a_forgotten_password_gets_the_same_answer_for_any_address() {
    let app = TestApp::spawn().await;
    let mut b = Console::new(&app);
    let known = b.post("/forgot", &[("email", "admin@localhost")]).await;
    let unknown = b.post("/forgot", &[("email", "nobody@example.com")]).await;
    assert_eq!((known.status, unknown.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(known.body, unknown.body, "nothing tells whether an account exists");
    assert!(b.get("/signin").await.body.contains("href=\"/forgot\""));
    let r = b.post("/reset-password", &[("token", "rst_nope"), ("password", "a new long passphrase here")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("not valid any more"), "{}", r.body);
    app.shutdown().await;
}

#[tokio::test]
async fn the_queue_with_its_assets_weighs_under_150_kb() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    for n in 0..60 {
        let body = json!({ "title": format!("A fairly long incident title number {n} about beaconing"), "severity": "high", "category": "malware", "tags": ["a", "b"] });
        app.post("/api/v1/incidents", &owner.token, body).await.expect(201);
    }
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/").await;
    assert_eq!(p.body.matches("<tr>").count(), 51, "a header and 50 rows");
    let mut total = p.body.len();
    for asset in p.body.split('"').filter(|s| s.starts_with("/assets/")) {
        total += app.client.get(app.url(asset)).send().await.expect("asset").bytes().await.expect("bytes").len();
    }
    assert!(total <= 150 * 1024, "the queue weighs {total} bytes uncompressed with its assets");
    eprintln!("queue page with 50 rows and its assets: {total} bytes uncompressed");
    app.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_counts_the_organisations_own_incidents() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, beta) = app.org(&operator, "beta").await;
    for _ in 0..3 {
        app.incident(&beta, "beta's").await;
    }
    let body = json!({ "title": "low one", "severity": "low", "category": "other" });
    app.post("/api/v1/incidents", &operator.token, body).await.expect(201);
    app.incident(&operator, "high one").await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/dashboard").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "dashboard");
    assert_eq!(p.body.matches("<svg").count(), 3, "{}", p.body);
    assert!(p.body.contains("<th scope=\"row\">open</th><td>2</td>"), "two open, none of beta's: {}", p.body);
    assert!(p.body.contains("<th scope=\"row\">low</th><td>1</td>") && p.body.contains("<th scope=\"row\">high</th><td>1</td>"));
    assert!(p.body.contains("(2 opened, 0 closed)"), "{}", p.body);
    app.shutdown().await;
}

#[tokio::test]
async fn indicators_are_added_found_in_pasted_text_and_linked_to_the_incidents_that_saw_them() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, beta) = app.org(&operator, "beta").await;
    let theirs = app.incident(&beta, "beta's").await.str("id");
    let one = app.incident(&operator, "first sighting").await.str("id");
    let two = app.incident(&operator, "second sighting").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let csrf = b.get(&format!("/incidents/{one}")).await.csrf();
    let r = b.post(&format!("/incidents/{one}/iocs"), &[("csrf", &csrf), ("ioc-type", "domain"), ("value", "Evil.Example")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let bad = b.post(&format!("/incidents/{one}/iocs"), &[("csrf", &csrf), ("ioc-type", "ipv4"), ("value", "999.1.1.1")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("role=\"alert\"") && bad.body.contains("first sighting"), "the incident's page, with why");
    let text = "beacon to evil[.]example and hxxp://198.51.100.7/x then 198.51.100.7";
    let r = b.post(&format!("/incidents/{two}/iocs/extract"), &[("csrf", &csrf), ("text", text)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = b.get(&format!("/incidents/{two}")).await;
    assert!(p.body.contains("<code>evil.example</code>") && p.body.contains("<code>198.51.100.7</code>"), "{}", p.body);
    let l = b.get("/indicators?type=domain&value=evil.example").await;
    assert!(
        l.body.contains("Seen in 2 incidents") && l.body.contains("first sighting") && l.body.contains("second sighting"),
        "{}",
        l.body
    );
    assert_eq!(b.get("/indicators?type=nope&value=x").await.status, StatusCode::BAD_REQUEST);
    let r = b.post(&format!("/incidents/{theirs}/iocs"), &[("csrf", &csrf), ("ioc-type", "domain"), ("value", "x.example")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another organisation's incident");
    app.shutdown().await;
}

#[tokio::test]
async fn evidence_is_uploaded_downloaded_and_its_custody_shown() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (_, beta) = app.org(&operator, "beta").await;
    let theirs = app.incident(&beta, "beta's").await.str("id");
    let id = app.incident(&operator, "with a capture").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let csrf = b.get(&format!("/incidents/{id}")).await.csrf();
    let cookie = b.cookie.clone().expect("cookie");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let upload = |to: String, csrf: String| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf)
            .text("evidence-kind", "network_capture")
            .part("file", reqwest::multipart::Part::bytes(b"pcap bytes".to_vec()).file_name("c2.pcap"));
        client.post(app.url(&to)).header("cookie", cookie.clone()).multipart(form).send()
    };
    let r = upload(format!("/incidents/{id}/evidence"), "wrong".into()).await.expect("upload");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token, no upload");
    let r = upload(format!("/incidents/{theirs}/evidence"), csrf.clone()).await.expect("upload");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = upload(format!("/incidents/{id}/evidence"), csrf.clone()).await.expect("upload");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = b.get(&format!("/incidents/{id}")).await;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"pcap bytes"));
    assert!(p.body.contains("c2.pcap") && p.body.contains(&sha), "{}", p.body);
    let at = p.body.find("href=\"/evidence/").expect("evidence link") + 16;
    let evidence: String = p.body[at..].chars().take_while(|c| *c != '"' && *c != '/').collect();
    let d = b.get(&format!("/evidence/{evidence}/content")).await;
    assert_eq!((d.status, d.body.as_str()), (StatusCode::OK, "pcap bytes"));
    let page = b.get(&format!("/evidence/{evidence}")).await;
    assert!(page.body.contains("Chain of custody") && page.body.contains("uploaded") && page.body.contains("downloaded"), "{}", page.body);
    let theirs_evidence =
        app.upload(&beta.token, &theirs, json!({ "name": "x", "kind": "other" }), b"x".to_vec()).await.expect(201).str("id");
    assert_eq!(b.get(&format!("/evidence/{theirs_evidence}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get(&format!("/evidence/{theirs_evidence}/content")).await.status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn an_incident_is_edited_assigned_and_found_by_tlp_assignee_and_similarity() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let a = app.incident(&owner, "Ransomware on the file server").await.str("id");
    app.incident(&owner, "Ransomware note found on the file server").await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get(&format!("/incidents/{a}")).await;
    assert!(p.body.contains(&format!("href=\"/incidents/{a}/similar\"")), "{}", p.body);
    let sim = b.get(&format!("/incidents/{a}/similar")).await;
    assert!(sim.body.contains("Ransomware note found") && sim.body.contains("shares words"), "{}", sim.body);
    let csrf = p.csrf();
    let me = app.get("/api/v1/auth/me", &owner.token).await.expect(200).body["user"]["id"].as_str().expect("id").to_owned();
    let form = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("title", "Ransomware on FS01"),
        ("edit-severity", "critical"),
        ("edit-tlp", "red"),
        ("assignee", me.as_str()),
        ("tags", "fs01, ransomware"),
    ];
    let r = b.post(&format!("/incidents/{a}/edit"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let got = app.get(&format!("/api/v1/incidents/{a}"), &owner.token).await.expect(200);
    assert_eq!(
        (got.body["severity"].clone(), got.body["tlp"].clone(), got.body["assignee_id"].clone()),
        (json!("critical"), json!("red"), json!(me))
    );
    assert_eq!(got.body["tags"], json!(["fs01", "ransomware"]));
    let stale = b.post(&format!("/incidents/{a}/edit"), &form).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let q = b.get("/?assignee=me").await;
    assert!(q.body.contains("Ransomware on FS01") && !q.body.contains("Ransomware note found"), "{}", q.body);
    let q = b.get("/?tlp=amber").await;
    assert!(!q.body.contains("Ransomware on FS01") && q.body.contains("Ransomware note found"), "red is above amber: {}", q.body);
    assert_eq!(b.get("/?assignee=you").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.shutdown().await;
}

#[tokio::test]
async fn the_organisation_page_shows_usage_and_sets_its_policies() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.member(&owner, "viewer@example.com", "viewer", None).await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/settings").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<meter id=\"quota-storage_bytes\"") && p.body.contains("members: 2 (no limit)"), "{}", p.body);
    let csrf = p.csrf();
    let r = b.post("/settings/sessions", &[("csrf", &csrf), ("idle", "45"), ("max", "8")]).await;
    assert!(r.body.contains("Saved."), "{}", r.body);
    let policy = app.get("/api/v1/organization/session-policy", &owner.token).await.expect(200);
    assert_eq!(
        (policy.body["idle_timeout_secs"].clone(), policy.body["absolute_timeout_secs"].clone()),
        (json!(2700), json!(28800)),
        "{}",
        policy.body
    );
    let r = b.post("/settings/sessions", &[("csrf", &csrf), ("idle", "1"), ("max", "8")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = b.post("/settings/sessions", &[("csrf", &csrf), ("idle", "lots"), ("max", "8")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // An allow-list that leaves out this address is refused unless confirmed.
    let r = b.post("/settings/allowlist", &[("csrf", &csrf), ("cidrs", "10.0.0.0/8")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = b.post("/settings/allowlist", &[("csrf", &csrf), ("cidrs", "127.0.0.0/8\n::1/128")]).await;
    assert!(r.body.contains("Saved.") && r.body.contains("127.0.0.0/8"), "{}", r.body);
    // A viewer sees the usage, not the policies, and cannot post them.
    let mut v = Console::new(&app);
    v.sign_in("viewer@example.com", PASSWORD).await;
    let vp = v.get("/settings").await;
    assert!(vp.status == StatusCode::OK && !vp.body.contains("action=\"/settings/mfa\""), "{}", vp.body);
    assert_eq!(v.post("/settings/mfa", &[("csrf", &vp.csrf())]).await.status, StatusCode::FORBIDDEN);
    let r = b.post("/settings/mfa", &[("csrf", &csrf), ("required", "1")]).await;
    assert!(r.body.contains("Saved.") && r.body.contains("checked"), "{}", r.body);
    // Then a member without a second factor is sent to set one up.
    let mut late = Console::new(&app);
    late.sign_in("viewer@example.com", PASSWORD).await;
    let q = late.get("/").await;
    assert_eq!(q.status, StatusCode::FORBIDDEN);
    assert!(q.body.contains("href=\"/account\""), "{}", q.body);
    assert!(late.get("/account").await.body.contains("Set up an authenticator"));
    app.shutdown().await;
}

#[tokio::test]
async fn operators_manage_organisations_and_nobody_else_may() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.org(&owner, "beta").await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/platform/organizations").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<code>beta</code>"), "{}", p.body);
    let csrf = p.csrf();
    let made = b
        .post(
            "/platform/organizations",
            &[
                ("csrf", &csrf),
                ("name", "Gamma Corp"),
                ("slug", "gamma"),
                ("owner_email", "owner@gamma.test"),
                ("owner_name", "G"),
                ("owner_password", "a long enough first password"),
                ("plan", "starter"),
                ("parent", "beta"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let again = b
        .post(
            "/platform/organizations",
            &[
                ("csrf", &csrf),
                ("name", "Gamma again"),
                ("slug", "gamma"),
                ("owner_email", "x@gamma.test"),
                ("owner_name", "X"),
                ("owner_password", "a long enough first password"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let orgs = app.get("/api/v1/admin/organizations", &owner.token).await.expect(200);
    let gamma = orgs.body["items"].as_array().expect("orgs").iter().find(|o| o["slug"] == "gamma").expect("gamma").clone();
    assert_eq!(gamma["plan"], json!("starter"));
    let gid = gamma["id"].as_str().expect("id").to_owned();
    let r = b.post(&format!("/platform/organizations/{gid}/status"), &[("csrf", &csrf), ("status-gamma", "suspended")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = b.post(&format!("/platform/organizations/{gid}/plan"), &[("csrf", &csrf), ("plan", "enterprise")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let gamma = app.get("/api/v1/admin/organizations", &owner.token).await.expect(200).body["items"]
        .as_array()
        .expect("orgs")
        .iter()
        .find(|o| o["slug"] == "gamma")
        .cloned()
        .expect("gamma");
    assert_eq!((gamma["status"].clone(), gamma["plan"].clone()), (json!("suspended"), json!("enterprise")));
    // An organisation's owner is not an operator.
    let mut o = Console::new(&app);
    o.sign_in("owner@beta.test", PASSWORD).await;
    assert!(!o.get("/").await.body.contains("/platform/"));
    assert_eq!(o.get("/platform/organizations").await.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

/// Every console route with an id in its path, given another organisation's
/// object, answers the one 404 page; every form route refuses a body that
/// is not a form, a NUL, and a missing CSRF token; nothing answers 5xx.
#[tokio::test]
async fn every_page_route_keeps_tenants_apart_and_refuses_bad_input() {
    let app = TestApp::spawn().await;
    let operator = app.admin().await;
    let (beta_org, beta) = app.org(&operator, "beta").await;
    let beta_org = beta_org["id"].as_str().expect("id").to_owned();
    let incident = app.incident(&beta, "beta's").await.str("id");
    let evidence = app.upload(&beta.token, &incident, json!({ "name": "x", "kind": "other" }), b"x".to_vec()).await.expect(201).str("id");
    let key = app.post("/api/v1/api-keys", &beta.token, json!({ "name": "k", "role": "viewer" })).await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let me = app.get("/api/v1/auth/me", &beta.token).await.expect(200);
    let user = me.body["user"]["id"].as_str().expect("user").to_owned();
    let session =
        app.get("/api/v1/auth/sessions", &beta.token).await.expect(200).body["items"][0]["id"].as_str().expect("session").to_owned();
    app.post("/api/v1/members", &beta.token, json!({ "email": "i@beta.test", "role": "viewer" })).await.expect(201);
    let invitation = app.get("/api/v1/invitations", &beta.token).await.expect(200).body["items"][0]["id"].as_str().expect("inv").to_owned();
    let role = app.post("/api/v1/roles", &beta.token, json!({ "name": "theirs", "base": "viewer" })).await.expect(201).str("id");
    let alert_body = json!({ "source": "edr", "source_ref": "b-1", "type": "x", "title": "beta alert", "severity": "low" });
    let alert = app.post("/api/v1/alerts", &beta.token, alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let hook_body = json!({ "url": "https://93.184.215.14/beta", "event_types": ["quota.exceeded"] });
    let hook = app.post("/api/v1/webhooks", &beta.token, hook_body).await.expect(201).str("id");
    let channel_body = json!({ "name": "beta", "kind": "generic", "url": "https://93.184.215.14/c", "rules": [{ "event_types": ["*"] }] });
    let channel = app.post("/api/v1/notification-channels", &beta.token, channel_body).await.expect(201).str("id");
    let analyzer = app.post("/api/v1/analyzers", &beta.token, json!({ "name": "beta", "url": "https://93.184.215.14/a" })).await;
    let analyzer = analyzer.expect(201).str("id");
    let ioc = app.post(&format!("/api/v1/incidents/{incident}/iocs"), &beta.token, json!({ "type": "domain", "value": "b.example" })).await;
    let ioc = ioc.expect(201).str("id");

    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let csrf = b.get("/").await.csrf();
    let gets = [
        format!("/incidents/{incident}"),
        format!("/evidence/{evidence}"),
        format!("/evidence/{evidence}/content"),
        format!("/incidents/{incident}/similar"),
        format!("/live?incident_id={incident}"),
        format!("/members/{user}"),
        format!("/children/{beta_org}"),
        format!("/children/{beta_org}/audit"),
        "/members/not-an-id".to_owned(),
        "/children/x".to_owned(),
        "/platform/organizations/x".to_owned(),
        format!("/alerts/{alert}"),
        format!("/webhooks/{hook}"),
        "/alerts/x".to_owned(),
        "/webhooks/x".to_owned(),
        format!("/notifications/{channel}"),
        format!("/analyzers/{analyzer}"),
        format!("/webhooks/{channel}"),
        "/notifications/x".to_owned(),
        "/analyzers/x".to_owned(),
        "/compliance/hipaa".to_owned(),
    ];
    let not_found = b.get("/incidents/inc_00000000000000000000000000").await.body;
    for path in &gets {
        let p = b.get(path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(p.body, not_found, "{path}: like any 404");
    }
    let posts = [
        format!("/incidents/{incident}/comments"),
        format!("/incidents/{incident}/status"),
        format!("/incidents/{incident}/edit"),
        format!("/incidents/{incident}/iocs"),
        format!("/incidents/{incident}/iocs/extract"),
        format!("/keys/{key}/revoke"),
        format!("/keys/{key}/rotate"),
        format!("/keys/{key}/edit"),
        format!("/members/{user}/remove"),
        format!("/members/{user}/role"),
        format!("/members/{user}/sessions/end"),
        format!("/members/{user}/mfa/reset"),
        format!("/members/{user}/password-reset"),
        format!("/alerts/{alert}/promote"),
        format!("/alerts/{alert}/dismiss"),
        format!("/alerts/{alert}/snooze"),
        format!("/alerts/{alert}/acknowledge"),
        format!("/webhooks/{hook}/enabled"),
        format!("/webhooks/{hook}/test"),
        format!("/webhooks/{hook}/rotate-secret"),
        format!("/webhooks/{hook}/replay"),
        format!("/webhooks/{hook}/delete"),
        format!("/notifications/{channel}/enabled"),
        format!("/notifications/{channel}/replay"),
        format!("/notifications/{channel}/delete"),
        format!("/analyzers/{analyzer}/enabled"),
        format!("/analyzers/{analyzer}/replay"),
        format!("/analyzers/{analyzer}/delete"),
        format!("/indicators/{ioc}/analyze"),
        "/indicators/x/analyze".to_owned(),
        format!("/invitations/{invitation}/revoke"),
        format!("/account/sessions/{session}/end"),
        format!("/roles/{role}/delete"),
        format!("/incidents/{incident}/legal-hold"),
        format!("/incidents/{incident}/legal-hold/lift"),
        format!("/incidents/{incident}/breach"),
        format!("/incidents/{incident}/breach/remove"),
        "/privacy/dsr_00000000000000000000000000000000/archive".to_owned(),
        "/privacy/x/archive".to_owned(),
    ];
    for path in &posts {
        let fields = [
            ("csrf", csrf.as_str()),
            ("body", "x"),
            ("status", "triaged"),
            ("version", "1"),
            ("title", "x"),
            ("edit-severity", "low"),
            ("edit-tlp", "clear"),
            ("ioc-type", "domain"),
            ("value", "x.example"),
            ("text", "x.example"),
            ("reason", "x"),
            ("hours", "24"),
            ("enabled", "0"),
        ];
        let r = b.post(path, &fields).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    // Still there, all of it.
    app.get(&format!("/api/v1/incidents/{incident}"), &beta.token).await.expect(200);
    assert_eq!(app.get("/api/v1/api-keys", &beta.token).await.expect(200).body["items"][0]["revoked_at"], json!(null));
    app.get("/api/v1/auth/me", &beta.token).await.expect(200);
    assert_eq!(app.get(&format!("/api/v1/alerts/{alert}"), &beta.token).await.expect(200).body["status"], "new");
    let theirs = app.get(&format!("/api/v1/webhooks/{hook}"), &beta.token).await.expect(200);
    assert_eq!((theirs.body["enabled"].clone(), theirs.body["url"].clone()), (json!(true), json!("https://93.184.215.14/beta")));
    assert_eq!(app.get(&format!("/api/v1/notification-channels/{channel}"), &beta.token).await.expect(200).body["enabled"], true);
    assert_eq!(app.get(&format!("/api/v1/analyzers/{analyzer}"), &beta.token).await.expect(200).body["enabled"], true);
    let r = app.get(&format!("/api/v1/analyzers/{analyzer}/messages?status=pending"), &beta.token).await.expect(200);
    assert_eq!(r.body["items"], json!([]), "nothing was sent to their analyzer");

    let own = app.incident(&operator, "ours").await.str("id");
    let own_key = app.post("/api/v1/api-keys", &operator.token, json!({ "name": "mine", "role": "viewer" })).await.expect(201).str("id");
    let own_alert_body = json!({ "source": "edr", "source_ref": "o-1", "type": "x", "title": "our alert", "severity": "low" });
    let own_alert =
        app.post("/api/v1/alerts", &operator.token, own_alert_body).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let forms = [
        "/webhooks".to_owned(),
        "/notifications".to_owned(),
        "/analyzers".to_owned(),
        "/account/notifications".to_owned(),
        format!("/alerts/{own_alert}/promote"),
        format!("/alerts/{own_alert}/dismiss"),
        format!("/alerts/{own_alert}/snooze"),
        format!("/keys/{own_key}/edit"),
        format!("/platform/organizations/{beta_org}/plan"),
        format!("/platform/organizations/{beta_org}/offboard"),
        "/settings/parent-access".to_owned(),
        "/settings/audit-reads".to_owned(),
        "/privacy".to_owned(),
        "/settings/retention".to_owned(),
        "/settings/retention/preview".to_owned(),
        "/settings/retention/run".to_owned(),
        format!("/incidents/{own}/legal-hold"),
        format!("/incidents/{own}/legal-hold/lift"),
        format!("/incidents/{own}/breach"),
        format!("/incidents/{own}/breach/remove"),
        "/signin".to_owned(),
        "/signin/mfa".to_owned(),
        "/signin/sso".to_owned(),
        "/incidents".to_owned(),
        format!("/incidents/{own}/comments"),
        format!("/incidents/{own}/status"),
        format!("/incidents/{own}/edit"),
        format!("/incidents/{own}/iocs"),
        format!("/incidents/{own}/iocs/extract"),
        "/keys".to_owned(),
        "/members".to_owned(),
        "/account/sessions/end-others".to_owned(),
        "/account/password".to_owned(),
        "/account/mfa".to_owned(),
        "/account/mfa/confirm".to_owned(),
        "/reauthenticate".to_owned(),
        "/settings/mfa".to_owned(),
        "/settings/sessions".to_owned(),
        "/settings/allowlist".to_owned(),
        "/platform/organizations".to_owned(),
        "/roles".to_owned(),
        "/settings/sso".to_owned(),
        "/settings/sso/delete".to_owned(),
        "/invitation".to_owned(),
        "/reset-password".to_owned(),
        "/forgot".to_owned(),
    ];
    for path in &forms {
        let json = b.send(Method::POST, path, None, &[("content-type", "application/json")]).await;
        assert_eq!(json.status, StatusCode::BAD_REQUEST, "{path}: not a form");
        let nul = b.post(path, &[("csrf", &csrf), ("x", "a\0b")]).await;
        assert_eq!(nul.status, StatusCode::BAD_REQUEST, "{path}: a NUL");
        let cross = b.post_with(path, &[("csrf", &csrf)], &[("origin", "http://evil.example")]).await;
        assert_eq!(cross.status, StatusCode::FORBIDDEN, "{path}: from another site");
        let garbage = b.post(path, &[("csrf", &csrf), ("status", "\u{202e}x"), ("version", "-1"), ("email", "@"), ("code", "x")]).await;
        assert!(!garbage.status.is_server_error(), "{path}: {}", garbage.status);
    }
    for path in forms
        .iter()
        .filter(|p| !["/signin", "/signin/mfa", "/signin/sso", "/invitation", "/reset-password", "/forgot"].contains(&p.as_str()))
    {
        let r = b.post(path, &[("x", "y")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: without the CSRF token");
    }
    assert_eq!(b.get("/").await.status, StatusCode::OK, "still serving, still signed in");
    // Signing out, last: not a form, or without the token, it is refused.
    assert_eq!(b.send(Method::POST, "/signout", None, &[("content-type", "application/json")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(b.post("/signout", &[("x", "y")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn custom_roles_are_made_with_their_conditions_and_removed() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/roles").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("analyst (built in)"), "{}", p.body);
    let csrf = p.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "phishing desk"),
        ("base", "analyst"),
        ("grant", "audit:read"),
        ("revoke", "evidence:download"),
        ("revoke", "incident:delete"),
        ("own_or_assigned", "1"),
        ("tlp_max", "amber"),
        ("category", "phishing"),
        ("category", "malware"),
    ];
    let r = b.post("/roles", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let roles = app.get("/api/v1/roles", &owner.token).await.expect(200);
    let made = roles.body["items"].as_array().expect("roles").iter().find(|r| r["name"] == "phishing desk").cloned().expect("made");
    assert_eq!(made["revoke"], json!(["evidence:download", "incident:delete"]));
    assert_eq!(made["conditions"], json!({ "own_or_assigned": true, "tlp_max": "amber", "categories": ["malware", "phishing"] }));
    assert_eq!(b.post("/roles", &form).await.status, StatusCode::CONFLICT, "the name is taken");
    let bad = b.post("/roles", &[("csrf", csrf.as_str()), ("name", "x"), ("base", "analyst"), ("grant", "root:all")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let id = made["id"].as_str().expect("id");
    assert_eq!(b.post(&format!("/roles/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert!(!b.get("/roles").await.body.contains("phishing desk"));
    app.shutdown().await;
}

#[tokio::test]
async fn single_sign_on_is_configured_on_its_page_with_reasons_for_a_refusal() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/settings/sso").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("name=\"issuer\"") && !p.body.contains("Turn single sign-on off"), "{}", p.body);
    let csrf = p.csrf();
    let base = [("csrf", csrf.as_str()), ("client_id", "ironcase"), ("client_secret", "s3cret"), ("password_roles", "owner")];
    let mut private = base.to_vec();
    private.push(("issuer", "https://10.1.2.3/"));
    let r = b.post("/settings/sso", &private).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("public address"), "{}", r.body);
    assert!(!r.body.contains("s3cret"), "the secret is never shown back");
    let mut mapping = base.to_vec();
    mapping.extend([("issuer", "https://idp.example.test/"), ("role_mapping", "responders analyst")]);
    let r = b.post("/settings/sso", &mapping).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("group = role"), "{}", r.body);
    app.shutdown().await;
}

#[tokio::test]
async fn an_account_in_two_organisations_switches_by_signing_in_to_the_other() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let (_, beta) = app.org(&owner, "beta").await;
    app.member(&owner, "two@example.com", "analyst", None).await;
    // The same account joins beta too (it accepts with its own password).
    let token = app.invite(&beta, "two@example.com", "viewer").await;
    app.accept(&token, PASSWORD).await.expect(201);
    app.incident(&beta, "only in beta").await;
    let mut b = Console::new(&app);
    b.sign_in("two@example.com", PASSWORD).await;
    let p = b.get("/account").await;
    assert!(p.body.contains("href=\"/signin?organization=beta\""), "{}", p.body);
    let form = b.get("/signin?organization=beta").await;
    assert!(form.body.contains("value=\"beta\""), "the organisation is filled in");
    let r = b.post("/signin", &[("email", "two@example.com"), ("password", PASSWORD), ("organization", "beta"), ("next", "/")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(b.get("/").await.body.contains("only in beta"), "now in beta");
    app.shutdown().await;
}

#[tokio::test]
async fn the_keys_page_walks_past_its_largest_page() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    for n in 0..51 {
        app.post("/api/v1/api-keys", &owner.token, json!({ "name": format!("key {n:02}"), "role": "viewer" })).await.expect(201);
    }
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let first = b.get("/keys").await;
    let at = first.body.find("rel=\"next\" href=\"").expect("a next page") + 17;
    let next: String = first.body[at..].split('"').next().expect("href").replace("&amp;", "&");
    let second = b.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{next}");
    let names = |body: &str| (0..51).filter(|n| body.contains(&format!("<td>key {n:02}</td>"))).count();
    assert_eq!((names(&first.body), names(&second.body)), (50, 1), "every key once, across two pages");
    assert!(!second.body.contains("rel=\"next\""));
    assert_eq!(b.get("/keys?cursor=garbage").await.status, StatusCode::BAD_REQUEST);
    app.shutdown().await;
}

#[tokio::test]
async fn administrators_change_roles_recover_members_rotate_keys_and_set_plans() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let member = app.member(&owner, "m@localhost", "analyst", None).await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let csrf = b.get("/members").await.csrf();

    // A role changed from the list; a role that does not exist is a sentence.
    let id = member.id.clone();
    let field = format!("role-{id}");
    let r = b.post(&format!("/members/{id}/role"), &[("csrf", &csrf), (&field, "viewer")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("m@localhost is now viewer"), "{}", r.body);
    let members = app.get("/api/v1/members", &owner.token).await.expect(200);
    let row = members.body["items"].as_array().expect("members").iter().find(|m| m["user_id"] == id.as_str()).cloned().expect("member");
    assert_eq!(row["role"], "viewer");
    let r = b.post(&format!("/members/{id}/role"), &[("csrf", &csrf), (&field, "emperor")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);

    // The member's page: their sessions (a new role ended the old ones),
    // ended; a second factor they never had is a sentence; a password reset
    // link shown once (no e-mail here).
    let member = app.login("m@localhost", PASSWORD, None).await;
    let p = b.get(&format!("/members/{id}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("<td>"), "a live session is listed: {}", p.body);
    let r = b.post(&format!("/members/{id}/sessions/end"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("Ended 1 session(s)."), "{}", r.body);
    app.get("/api/v1/auth/me", &member.token).await.problem(401, "unauthenticated");
    let r = b.post(&format!("/members/{id}/mfa/reset"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("role=\"alert\"") && r.body.contains("no authenticator"), "{}", r.body);
    let r = b.post(&format!("/members/{id}/password-reset"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("/reset-password#token=icp_"), "{}", r.body);
    let audit = app.get("/api/v1/audit?action=member.sessions_ended", &owner.token).await.expect(200);
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(1));

    // A key rotated (the new secret shown once, the old one dead at once),
    // then held to an address range, with a refusal for a range that is not one.
    let made = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "viewer" })).await.expect(201);
    let (key_id, old) = (made.str("id"), made.str("key"));
    let r = b.post(&format!("/keys/{key_id}/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let at = r.body.find("<code id=\"new-key\">").expect("the new key, once") + 19;
    let new = r.body[at..].split('<').next().expect("key").to_owned();
    app.get("/api/v1/auth/me", &old).await.problem(401, "unauthenticated");
    app.get("/api/v1/auth/me", &new).await.expect(200);
    assert!(!b.get("/keys").await.body.contains(&new), "shown once");
    let r = b.post(&format!("/keys/{key_id}/edit"), &[("csrf", &csrf), ("cidrs", "not a range"), ("public_key", "")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    app.get("/api/v1/auth/me", &new).await.expect(200);
    let r = b.post(&format!("/keys/{key_id}/edit"), &[("csrf", &csrf), ("cidrs", "192.0.2.0/24\n"), ("public_key", "")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    app.get("/api/v1/auth/me", &new).await.expect(403);
    assert!(b.get("/keys").await.body.contains("192.0.2.0/24"), "the range is shown to change");

    // An operator sets a plan with overrides; what the form leaves empty is
    // the plan's, and a later save keeps what it shows.
    let (beta, beta_owner) = app.org(&owner, "beta").await;
    let beta_id = beta["id"].as_str().expect("id").to_owned();
    let p = b.get(&format!("/platform/organizations/{beta_id}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let form = [
        ("csrf", csrf.as_str()),
        ("plan", "starter"),
        ("quota-members", "3"),
        ("quota-storage_bytes", "unlimited"),
        ("feature-webhooks", "on"),
    ];
    let r = b.post(&format!("/platform/organizations/{beta_id}/plan"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let usage = app.get("/api/v1/organization/usage", &beta_owner.token).await.expect(200);
    assert_eq!(usage.body["plan"], "starter");
    let quota = |name: &str| usage.body["quotas"].as_array().expect("quotas").iter().find(|q| q["quota"] == name).cloned().expect("quota");
    assert_eq!((quota("members")["limit"].clone(), quota("storage_bytes")["limit"].clone()), (json!(3), json!(null)));
    assert_eq!(usage.body["features"]["webhooks"], true, "{}", usage.body);
    let p = b.get(&format!("/platform/organizations/{beta_id}")).await;
    assert!(p.body.contains("name=\"quota-members\" type=\"text\" inputmode=\"numeric\" value=\"3\""), "{}", p.body);
    let r = b
        .post(&format!("/platform/organizations/{beta_id}/plan"), &[("csrf", &csrf), ("plan", "starter"), ("quota-members", "lots")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("whole number"), "{}", r.body);
    assert_eq!(b.get("/platform/organizations/org_00000000000000000000000000").await.status, StatusCode::NOT_FOUND);
    // Not an operator: the page is not theirs.
    let mut beta_browser = Console::new(&app);
    beta_browser.sign_in("owner@beta.test", PASSWORD).await;
    assert_eq!(beta_browser.get(&format!("/platform/organizations/{beta_id}")).await.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

#[tokio::test]
async fn a_parent_reads_its_childs_incidents_and_audit_only_while_granted() {
    let app = TestApp::spawn().await;
    let op = app.admin().await;
    let parent_id = app.get("/api/v1/organization", &op.token).await.expect(200).str("id");
    let body = json!({ "name": "Kid", "slug": "kid", "parent_id": parent_id, "owner": { "email": "o@kid.test", "name": "O", "password": PASSWORD } });
    let kid = app.post("/api/v1/admin/organizations", &op.token, body).await.expect(201).str("id");
    let kid_owner = app.login("o@kid.test", PASSWORD, Some("kid")).await;
    app.incident(&kid_owner, "Kid's phishing").await;
    let mut parent = Console::new(&app);
    parent.sign_in("admin@localhost", &app.admin_password).await;
    let p = parent.get("/children").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Kid") && p.body.contains("<td>no</td>"), "{}", p.body);
    assert_eq!(parent.get(&format!("/children/{kid}")).await.status, StatusCode::NOT_FOUND, "not granted");

    // The child's owner grants it on the settings page.
    let mut child = Console::new(&app);
    child.sign_in("o@kid.test", PASSWORD).await;
    let s = child.get("/settings").await;
    assert!(s.body.contains("action=\"/settings/parent-access\""), "{}", s.body);
    let r = child.post("/settings/parent-access", &[("csrf", &s.csrf()), ("granted", "1")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("checked"), "{}", r.body);

    let p = parent.get(&format!("/children/{kid}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("Kid&#39;s phishing") || p.body.contains("Kid's phishing"), "{}", p.body);
    assert!(!p.body.contains("<form method=\"post\""), "read-only");
    let a = parent.get(&format!("/children/{kid}/audit")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("organization.child_read"), "each look is recorded: {}", a.body);
    assert_eq!(parent.get(&format!("/children/{kid}?cursor=%00")).await.status, StatusCode::BAD_REQUEST);

    // Withdrawn: a 404 page again.
    let s = child.get("/settings").await;
    child.post("/settings/parent-access", &[("csrf", &s.csrf())]).await;
    assert_eq!(parent.get(&format!("/children/{kid}")).await.status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn the_queue_counts_its_facets_within_the_other_filters() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let (_, beta) = app.org(&owner, "beta").await;
    app.incident(&beta, "beta's").await;
    for (title, severity, category, tags) in
        [("a", "high", "phishing", json!(["q4"])), ("b", "high", "malware", json!([])), ("c", "low", "phishing", json!(["q4"]))]
    {
        let body = json!({ "title": title, "severity": severity, "category": category, "tags": tags });
        app.post("/api/v1/incidents", &owner.token, body).await.expect(201);
    }
    let b_id = app.get("/api/v1/incidents?severity=high&category=malware", &owner.token).await.expect(200).body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.patch(&format!("/api/v1/incidents/{b_id}"), &owner.token, json!({ "status": "triaged" }), Some("\"1\"")).await.expect(200);
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let facet = |body: &str, field: &str, value: &str| -> Option<i64> {
        let href = format!("{field}={value}\"");
        let at = body.find(&href)?;
        let rest = &body[at..];
        let n = rest.find("<span class=\"count\">")? + 20;
        rest[n..].split('<').next()?.parse().ok()
    };
    // Unfiltered: the organisation's own three, by status, severity, category.
    let p = b.get("/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("aside class=\"facets\""), "{}", p.body);
    assert_eq!(facet(&p.body, "status", "open"), Some(2), "{}", p.body);
    assert_eq!(facet(&p.body, "status", "triaged"), Some(1));
    assert_eq!(facet(&p.body, "severity", "high"), Some(2));
    assert_eq!(facet(&p.body, "category", "phishing"), Some(2));
    // Filtered by status: the other facets count within it; its own still
    // shows the other statuses.
    let p = b.get("/?status=open").await;
    assert_eq!(facet(&p.body, "severity", "high"), Some(1), "{}", p.body);
    assert_eq!(facet(&p.body, "severity", "low"), Some(1));
    assert_eq!(facet(&p.body, "category", "malware"), None);
    assert!(p.body.contains("aria-current=\"true\""));
    // A tag (not kept in the tallies): counted from the incidents.
    let p = b.get("/?tag=q4").await;
    assert_eq!(facet(&p.body, "category", "phishing"), Some(2), "{}", p.body);
    assert_eq!(facet(&p.body, "status", "triaged"), None);
    assert_eq!(facet(&p.body, "severity", "low"), Some(1));
    // Deleting one takes it out of the counts.
    let c_id =
        app.get("/api/v1/incidents?severity=low", &owner.token).await.expect(200).body["items"][0]["id"].as_str().expect("id").to_owned();
    app.delete(&format!("/api/v1/incidents/{c_id}"), &owner.token).await.expect(204);
    let p = b.get("/").await;
    assert_eq!(facet(&p.body, "severity", "low"), None, "{}", p.body);
    assert_eq!(facet(&p.body, "status", "open"), Some(1));
    app.shutdown().await;
}

#[tokio::test]
async fn an_incidents_long_parts_page_on_from_its_page() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let id = app.incident(&owner, "Many indicators").await.str("id");
    let text: Vec<String> = (0..205).map(|n| format!("host{n:03}.evil.example")).collect();
    app.post(&format!("/api/v1/incidents/{id}/iocs/extract"), &owner.token, json!({ "text": text.join(" "), "save": true }))
        .await
        .expect(200);
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get(&format!("/incidents/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    let link = |body: &str, label: &str| -> String {
        let end = body.find(&format!("\">{label}</a>")).unwrap_or_else(|| panic!("a link to {label}: {body}"));
        let start = body[..end].rfind("href=\"").expect("href") + 6;
        body[start..end].replace("&amp;", "&")
    };
    let seen = |body: &str| (0..205).filter(|n| body.contains(&format!("<code>host{n:03}.evil.example</code>"))).count();
    assert_eq!(seen(&p.body), 200, "a page of indicators");
    let more = link(&p.body, "More indicators");
    assert!(more.ends_with("#indicators"), "{more}");
    let rest = b.get(more.trim_end_matches("#indicators")).await;
    assert_eq!(rest.status, StatusCode::OK);
    assert_eq!(seen(&rest.body), 5, "the rest on the next");
    assert!(!rest.body.contains(">More indicators</a>"));
    // The timeline pages on the same way.
    let later = link(&p.body, "Later events");
    let rest = b.get(later.trim_end_matches("#timeline")).await;
    assert_eq!(rest.status, StatusCode::OK);
    assert!(rest.body.contains("<section class=\"timeline\""));
    // A cursor that is not one is refused with a reason.
    let bad = b.get(&format!("/incidents/{id}?iocs=x")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.shutdown().await;
}

#[tokio::test]
async fn alerts_are_triaged_promoted_and_dismissed_in_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let seen = app.incident(&owner, "Earlier phishing").await.str("id");
    app.post(&format!("/api/v1/incidents/{seen}/iocs"), &owner.token, json!({ "type": "domain", "value": "evil.example" }))
        .await
        .expect(201);
    let send = |r: &str| {
        json!({ "source": "splunk", "source_ref": r, "type": "login", "title": format!("Impossible travel {r}"), "severity": "high",
                "observables": [{ "type": "domain", "value": "evil.example" }], "raw": { "rule": "travel" } })
    };
    let one = app.post("/api/v1/alerts", &owner.token, send("a-1")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let two = app.post("/api/v1/alerts", &owner.token, send("a-2")).await.expect(201).body["alert"]["id"].as_str().expect("id").to_owned();
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let q = b.get("/alerts").await;
    assert_eq!(q.status, StatusCode::OK);
    assert_secure_headers(&q, "alerts");
    assert!(q.body.contains("Impossible travel a-1") && q.body.contains("Impossible travel a-2") && q.body.contains("data-live=\"/live\""));
    assert!(!b.get("/alerts?status=dismissed").await.body.contains("Impossible travel"));
    assert_eq!(b.get("/alerts?status=lost").await.status, StatusCode::BAD_REQUEST);
    let p = b.get(&format!("/alerts/{one}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<code>evil.example</code>") && p.body.contains("INC-1 Earlier phishing"), "seen in: {}", p.body);
    assert!(p.body.contains("&quot;rule&quot;: &quot;travel&quot;") || p.body.contains("\"rule\": \"travel\""), "the raw payload");
    let csrf = p.csrf();
    // Promoted into a new incident: to its page, the observable an indicator.
    let r = b
        .post(&format!("/alerts/{one}/promote"), &[("csrf", &csrf), ("title", "Travel for j.doe"), ("category", "unauthorized_access")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let incident = b.get(r.location()).await;
    assert!(incident.body.contains("Travel for j.doe") && incident.body.contains("<code>evil.example</code>"), "{}", incident.body);
    let p = b.get(&format!("/alerts/{one}")).await;
    assert!(p.body.contains("Promoted into") && !p.body.contains("form class=\"promote\""), "no second promotion offered");
    let again = b.post(&format!("/alerts/{one}/promote"), &[("csrf", &csrf), ("category", "other")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("role=\"alert\""));
    // Merging into an incident that is not there is a sentence; dismissing needs a reason.
    let r = b.post(&format!("/alerts/{two}/promote"), &[("csrf", &csrf), ("incident", "INC-99")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("not an incident you can see"));
    let r = b.post(&format!("/alerts/{two}/dismiss"), &[("csrf", &csrf), ("reason", "  ")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b.post(&format!("/alerts/{two}/snooze"), &[("csrf", &csrf), ("hours", "0")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(b.post(&format!("/alerts/{two}/snooze"), &[("csrf", &csrf), ("hours", "24")]).await.status, StatusCode::SEE_OTHER);
    assert!(b.get("/alerts?status=snoozed").await.body.contains("Impossible travel a-2"));
    assert_eq!(b.post(&format!("/alerts/{two}/acknowledge"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let r = b.post(&format!("/alerts/{two}/dismiss"), &[("csrf", &csrf), ("reason", "known scanner")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let a = app.get(&format!("/api/v1/alerts/{two}"), &owner.token).await.expect(200);
    assert_eq!((a.body["status"].clone(), a.body["dismiss_reason"].clone()), (json!("dismissed"), json!("known scanner")));
    // A viewer sees the queue and no triage.
    app.member(&owner, "v@localhost", "viewer", None).await;
    let mut v = Console::new(&app);
    v.sign_in("v@localhost", PASSWORD).await;
    let p = v.get(&format!("/alerts/{two}")).await;
    assert!(p.status == StatusCode::OK && !p.body.contains("action=\"/alerts/"), "{}", p.body);
    app.shutdown().await;
}

#[tokio::test]
async fn channels_analyzers_and_preferences_are_managed_in_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/notifications").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "notifications");
    let csrf = p.csrf();

    // A preview, then a template that does not render: said, nothing made.
    let preview = [("csrf", csrf.as_str()), ("kind", "slack"), ("event_type", "incident.status_changed"), ("template", "{{ summary }}!")];
    let r = b.post("/notifications", &[&preview[..], &[("do", "preview")]].concat()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Status changed to contained!"), "{}", r.body);
    let broken = [
        ("csrf", csrf.as_str()),
        ("do", "create"),
        ("name", "x"),
        ("kind", "slack"),
        ("url", "https://93.184.215.14/s"),
        ("event", "*"),
        ("template", "{{ oops"),
    ];
    let r = b.post("/notifications", &broken).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("does not render") && r.body.contains("role=\"alert\""), "{}", r.body);
    // A Slack channel: its address is not shown again.
    let slack = [
        ("csrf", csrf.as_str()),
        ("do", "create"),
        ("name", "SOC room"),
        ("kind", "slack"),
        ("url", "https://93.184.215.14/services/T0/B0/SECRET"),
        ("event", "incident.created"),
        ("severity", "critical"),
        ("max_tlp", "green"),
    ];
    let r = b.post("/notifications", &slack).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let listed = b.get("/notifications").await;
    assert!(listed.body.contains("SOC room") && listed.body.contains("incident.created · critical"), "{}", listed.body);
    assert!(!listed.body.contains("SECRET"));
    let start = listed.body.find("href=\"/notifications/whk_").expect("a link") + 21;
    let id = listed.body[start..].split('"').next().expect("id").to_owned();
    let page = b.get(&format!("/notifications/{id}")).await;
    assert!(
        page.status == StatusCode::OK && page.body.contains("https://93.184.215.14/…") && !page.body.contains("SECRET"),
        "{}",
        page.body
    );
    assert_eq!(b.post(&format!("/notifications/{id}/enabled"), &[("csrf", &csrf), ("enabled", "0")]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get(&format!("/api/v1/notification-channels/{id}"), &owner.token).await.expect(200).body["enabled"], false);
    let r = b.post(&format!("/notifications/{id}/replay"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("0 message(s) sent again."), "{}", r.body);
    assert_eq!(b.post(&format!("/notifications/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(&format!("/notifications/{id}")).await.status, StatusCode::NOT_FOUND);

    // My e-mail preferences.
    let r =
        b.post("/account/notifications", &[("csrf", &csrf), ("email", "1"), ("only_assigned", "1"), ("event", "incident.created")]).await;
    assert!(r.status == StatusCode::OK && r.body.contains("Saved."), "{}", r.body);
    let prefs = app.get("/api/v1/auth/notifications", &owner.token).await.expect(200);
    assert_eq!(prefs.body, json!({ "email": true, "event_types": ["incident.created"], "only_assigned": true }));

    // An analyzer (its secret once), and an indicator sent to it from the indicator's page.
    let r = b
        .post(
            "/analyzers",
            &[("csrf", &csrf), ("name", "Sandbox"), ("url", "https://93.184.215.14/a"), ("type", "domain"), ("max_tlp", "amber")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.contains("id=\"new-secret\">whsec_"), "{}", r.body);
    let listed = b.get("/analyzers").await;
    assert!(listed.body.contains("Sandbox") && !listed.body.contains("whsec_"));
    let incident = app.incident(&owner, "With a domain").await.str("id");
    let ioc =
        app.post(&format!("/api/v1/incidents/{incident}/iocs"), &owner.token, json!({ "type": "ipv4", "value": "198.51.100.9" })).await;
    let ioc = ioc.expect(201).str("id");
    let look = b.get("/indicators?value=198.51.100.9").await;
    assert!(look.body.contains("No reports yet.") && look.body.contains(&format!("/indicators/{ioc}/analyze")), "{}", look.body);
    let r = b.post(&format!("/indicators/{ioc}/analyze"), &[("csrf", &csrf)]).await;
    assert!(r.status == StatusCode::OK && r.body.contains("Sent to 1 analyzer(s)"), "{}", r.body);
    let red = app
        .post(
            &format!("/api/v1/incidents/{incident}/iocs"),
            &owner.token,
            json!({ "type": "ipv4", "value": "198.51.100.10", "tlp": "red" }),
        )
        .await;
    let red = red.expect(201).str("id");
    let r = b.post(&format!("/indicators/{red}/analyze"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("no enabled analyzer may receive this indicator"), "{}", r.body);
    app.shutdown().await;
}

#[tokio::test]
async fn webhooks_are_managed_in_the_console() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let p = b.get("/webhooks").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_secure_headers(&p, "webhooks");
    let csrf = p.csrf();
    let r = b.post("/webhooks", &[("csrf", &csrf), ("url", "http://127.0.0.1/hook"), ("event", "*")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("must be https") && r.body.contains("role=\"alert\""), "{}", r.body);
    let r = b
        .post(
            "/webhooks",
            &[("csrf", &csrf), ("url", "https://93.184.215.14/hook"), ("event", "incident.created"), ("event", "alert.created")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let at = r.body.find("<code id=\"new-secret\">").expect("the secret, once") + 22;
    assert!(r.body[at..].starts_with("whsec_"));
    let listed = b.get("/webhooks").await;
    assert!(listed.body.contains("incident.created, alert.created") && !listed.body.contains("whsec_"), "shown once");
    let start = listed.body.find("href=\"/webhooks/whk_").expect("a link") + 16;
    let id = listed.body[start..].split('"').next().expect("id").to_owned();
    let page = b.get(&format!("/webhooks/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let r = b.post(&format!("/webhooks/{id}/rotate-secret"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("id=\"new-secret\">whsec_") && r.body.contains("for 24 hours"), "{}", r.body);
    let r = b.post(&format!("/webhooks/{id}/test"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("Test message msg_"), "{}", r.body);
    assert_eq!(b.post(&format!("/webhooks/{id}/enabled"), &[("csrf", &csrf), ("enabled", "0")]).await.status, StatusCode::SEE_OTHER);
    assert!(b.get("/webhooks").await.body.contains("<td>off</td>"));
    let r = b.post(&format!("/webhooks/{id}/replay"), &[("csrf", &csrf)]).await;
    assert!(r.body.contains("0 message(s) sent again."), "{}", r.body);
    assert_eq!(b.post(&format!("/webhooks/{id}/replay"), &[("csrf", &csrf), ("message", "nope")]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.post(&format!("/webhooks/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(&format!("/webhooks/{id}")).await.status, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn retention_is_set_previewed_and_applied_and_incidents_are_held_from_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let incident = app.incident(&owner, "keep me").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let page = b.get("/settings/retention").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let mut form = vec![("csrf", csrf.as_str()), ("closed_incidents", "30"), ("audit", "10"), ("alerts", ""), ("evidence", "")];
    form.extend([("events", ""), ("sessions", "")]);
    let refused = b.post("/settings/retention", &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("must be from 90"), "{}", refused.body);
    assert!(refused.body.contains(r#"value="10""#), "what was typed is kept");
    form[2] = ("audit", "365");
    let saved = b.post("/settings/retention", &form).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let policies = app.get("/api/v1/retention", &owner.token).await.expect(200);
    let days: Vec<_> = policies.body["policies"].as_array().expect("policies").iter().map(|p| p["days"].clone()).collect();
    assert_eq!(days, [json!(30), json!(null), json!(null), json!(null), json!(365), json!(null)]);
    let preview = b.post("/settings/retention/preview", &form).await;
    assert!(preview.body.contains("Would go now (nothing changed)"), "{}", preview.body);
    let run = b.post("/settings/retention/run", &[("csrf", csrf.as_str())]).await;
    assert!(run.body.contains("Removed"), "{}", run.body);

    let held = b.post(&format!("/incidents/{incident}/legal-hold"), &[("csrf", csrf.as_str()), ("reason", "matter 12")]).await;
    assert_eq!(held.status, StatusCode::SEE_OTHER);
    let page = b.get(&format!("/incidents/{incident}")).await;
    assert!(page.body.contains("Legal hold") && page.body.contains("matter 12"), "{}", page.body);
    assert_eq!(app.get(&format!("/api/v1/incidents/{incident}/legal-hold"), &owner.token).await.expect(200).body["reason"], "matter 12");
    assert!(b.get("/settings/retention").await.body.contains("matter 12"), "the holds are listed");
    let lifted = b.post(&format!("/incidents/{incident}/legal-hold/lift"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(lifted.status, StatusCode::SEE_OTHER);
    app.get(&format!("/api/v1/incidents/{incident}/legal-hold"), &owner.token).await.problem(404, "not_found");
    // Read auditing, from the organisation's settings.
    assert!(b.get("/settings").await.body.contains(r#"action="/settings/audit-reads""#));
    assert_eq!(b.post("/settings/audit-reads", &[("csrf", csrf.as_str()), ("enabled", "1")]).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/organization/audit-reads", &owner.token).await.expect(200).body["enabled"], true);
    b.get(&format!("/incidents/{incident}")).await;
    let reads = app.get(&format!("/api/v1/audit?action=incident.read&resource_id={incident}"), &owner.token).await.expect(200);
    assert_eq!(reads.body["items"][0]["details"]["view"], "page", "the console's page is a read too");
    app.shutdown().await;
}

#[tokio::test]
async fn a_personal_data_breach_is_flagged_and_its_notification_recorded_from_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let incident = app.incident(&owner, "records leaked").await.str("id");
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let page = b.get(&format!("/incidents/{incident}")).await;
    assert!(page.body.contains("Flag as a personal data breach"), "{}", page.body);
    let csrf = page.csrf();
    let bad = b.post(&format!("/incidents/{incident}/breach"), &[("csrf", csrf.as_str()), ("aware_at", "yesterday")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("give a date and time"), "{}", bad.body);
    let flagged = b.post(&format!("/incidents/{incident}/breach"), &[("csrf", csrf.as_str()), ("aware_at", "2026-01-05T10:30")]).await;
    assert_eq!(flagged.status, StatusCode::SEE_OTHER);
    let api = app.get(&format!("/api/v1/incidents/{incident}/breach"), &owner.token).await.expect(200);
    assert_eq!((api.body["aware_at"].clone(), api.body["state"].clone()), (json!("2026-01-05T10:30:00.000Z"), json!("overdue")));
    let page = b.get(&format!("/incidents/{incident}")).await;
    assert!(page.body.contains("Personal data breach") && page.body.contains("overdue"), "{}", page.body);
    let list = b.get("/breaches").await;
    assert!(list.body.contains(&incident), "{}", list.body);
    let told = [("csrf", csrf.as_str()), ("aware_at", "2026-01-05T10:30"), ("notified_at", "2026-01-07T09:00"), ("reference", "DPA-7")];
    assert_eq!(b.post(&format!("/incidents/{incident}/breach"), &told).await.status, StatusCode::SEE_OTHER);
    let api = app.get(&format!("/api/v1/incidents/{incident}/breach"), &owner.token).await.expect(200);
    assert_eq!((api.body["state"].clone(), api.body["reference"].clone()), (json!("notified"), json!("DPA-7")));
    assert_eq!(b.post(&format!("/incidents/{incident}/breach/remove"), &[("csrf", csrf.as_str())]).await.status, StatusCode::SEE_OTHER);
    app.get(&format!("/api/v1/incidents/{incident}/breach"), &owner.token).await.problem(404, "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn compliance_reports_are_pages_to_print() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.member(&owner, "viewer@localhost", "viewer", None).await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let index = b.get("/compliance").await;
    assert!(index.body.contains(r#"href="/compliance/nist-csf""#), "{}", index.body);
    let page = b.get("/compliance/soc2").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("CC6.1") && page.body.contains("status-not_met") && page.body.contains("To meet it"), "{}", page.body);
    let log = app.get("/api/v1/audit?action=compliance.report", &owner.token).await.expect(200);
    assert_eq!(log.body["items"][0]["details"]["framework"], "soc2");
    let mut v = Console::new(&app);
    v.sign_in("viewer@localhost", PASSWORD).await;
    assert_eq!(v.get("/compliance/gdpr").await.status, StatusCode::FORBIDDEN);
    app.shutdown().await;
}

#[tokio::test]
async fn a_data_subject_access_request_is_made_and_its_archive_downloaded_once_from_the_console() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    app.incident(&owner, "mail from zoe@example.org").await;
    let mut b = Console::new(&app);
    b.sign_in("admin@localhost", &app.admin_password).await;
    let page = b.get("/privacy").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let bad = b.post("/privacy", &[("csrf", csrf.as_str()), ("email", "zoe")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let made = b.post("/privacy", &[("csrf", csrf.as_str()), ("email", "zoe@example.org")]).await;
    assert!(made.body.contains("Download (once)"), "{}", made.body);
    let id = app.get("/api/v1/privacy/requests", &owner.token).await.expect(200).body["items"][0]["id"].as_str().expect("id").to_owned();
    let archive = b.post(&format!("/privacy/{id}/archive"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(archive.status, StatusCode::OK);
    let a: serde_json::Value = serde_json::from_str(&archive.body).expect("JSON");
    assert_eq!(a["held"]["incidents_mentioning"]["items"][0]["title"], "mail from zoe@example.org");
    assert_eq!(b.post(&format!("/privacy/{id}/archive"), &[("csrf", csrf.as_str())]).await.status, StatusCode::GONE);
    assert!(b.get("/privacy").await.body.contains("downloaded"));
    app.shutdown().await;
}
