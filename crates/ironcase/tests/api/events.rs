//! Live updates: the event stream over SSE and WebSocket, resumed by cursor,
//! filtered to what the caller may read, ended for slow readers, revoked
//! credentials and shutdown.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// A client holding `/api/v1/events/stream` open.
pub struct SseClient {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
    pub heartbeats: usize,
}

impl SseClient {
    pub async fn open(app: &TestApp, token: &str, query: &str, last_event_id: Option<i64>) -> SseClient {
        let mut rb = app.client.get(app.url(&format!("/api/v1/events/stream{query}"))).bearer_auth(token);
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id.to_string());
        }
        let res = rb.send().await.expect("stream request");
        assert_eq!(res.status(), 200, "stream refused");
        assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
        SseClient { body: Box::pin(res.bytes_stream()), buf: String::new(), heartbeats: 0 }
    }

    /// The next event (heartbeats counted and skipped); `None` when the
    /// server ended the stream. Fails the test after 10 s of silence.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.heartbeats += 1;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !event.is_empty() {
                    return Some(Frame { id, event, data: serde_json::from_str(&data).expect("JSON data") });
                }
            }
            match tokio::time::timeout(Duration::from_secs(10), self.body.next()).await.expect("an event within 10 s") {
                Some(Ok(b)) => self.buf.push_str(std::str::from_utf8(&b).expect("utf-8")),
                _ => return None,
            }
        }
    }

    pub async fn take(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await.expect("stream still open"));
        }
        out
    }
}

fn kinds(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|f| f.event.as_str()).collect()
}

#[tokio::test]
async fn sse_delivers_new_events_in_order_and_resumes_without_loss_or_duplicates() {
    let app = TestApp::spawn().await;
    let a = app.admin().await;
    let before = app.incident(&a, "before the stream").await.str("id");
    let mut s = SseClient::open(&app, &a.token, "", None).await;

    let inc = app.incident(&a, "Beacon to rare domain").await;
    let id = inc.str("id");
    app.post(&format!("/api/v1/incidents/{id}/comments"), &a.token, json!({ "body": "looking" })).await.expect(201);
    app.patch(&format!("/api/v1/incidents/{id}"), &a.token, json!({ "status": "in_progress" }), Some("\"1\"")).await.expect(200);
    let got = s.take(3).await;
    assert_eq!(kinds(&got), ["incident.created", "comment.added", "incident.status_changed"], "only what happened after connecting");
    assert_eq!(got[0].data["incident_id"], json!(id));
    assert_eq!(got[0].data["type"], "incident.created");
    assert_eq!(got[0].data["data"]["title"], "Beacon to rare domain");
    assert_eq!(got[1].data["data"]["body"], "looking");
    assert!(got[0].data["actor_id"].is_string() && got[0].data["at"].is_string());
    let ids: Vec<i64> = got.iter().map(|f| f.id.expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    assert_eq!(got.iter().map(|f| f.data["id"].as_i64()).collect::<Vec<_>>(), ids.iter().map(|i| Some(*i)).collect::<Vec<_>>());
    let last = *ids.last().expect("ids");
    drop(s);

    // Disconnected: events happen meanwhile.
    for n in 0..5 {
        app.post(&format!("/api/v1/incidents/{id}/comments"), &a.token, json!({ "body": format!("missed {n}") })).await.expect(201);
    }
    let mut s = SseClient::open(&app, &a.token, "", Some(last)).await;
    let missed = s.take(5).await;
    assert_eq!(
        missed.iter().map(|f| f.data["data"]["body"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    assert!(missed[0].id.expect("id") > last);
    // After the replay the same stream carries new events, once each.
    app.post(&format!("/api/v1/incidents/{id}/comments"), &a.token, json!({ "body": "live again" })).await.expect(201);
    let live = s.next().await.expect("live event");
    assert_eq!(live.data["data"]["body"], "live again");
    assert!(live.id > missed[4].id);

    // `since=0` replays the whole history, the earlier incident first.
    let mut all = SseClient::open(&app, &a.token, "?since=0", None).await;
    let first = all.next().await.expect("first event");
    assert_eq!(first.event, "incident.created");
    assert_eq!(first.data["incident_id"], json!(before));
    let rest = all.take(9).await;
    let mut seen: Vec<i64> = std::iter::once(&first).chain(rest.iter()).map(|f| f.id.expect("id")).collect();
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "no duplicates");
    assert_eq!(rest.last().map(|f| f.data["data"]["body"].clone()), Some(json!("live again")));
    app.shutdown().await;
}

#[tokio::test]
async fn streams_are_filtered_to_the_callers_organization_incident_types_and_tlp() {
    let app = TestApp::spawn().await;
    let a = app.admin().await;
    let (_, b) = app.org(&a, "beta").await;
    let one = app.incident(&a, "one").await.str("id");
    let two = app.incident(&a, "two").await.str("id");

    let mut all = SseClient::open(&app, &a.token, "", None).await;
    let mut only_one = SseClient::open(&app, &a.token, &format!("?incident_id={one}"), None).await;
    let mut comments = SseClient::open(&app, &a.token, "?types=comment.added,ioc.added", None).await;
    let mut beta = SseClient::open(&app, &b.token, "", None).await;
    // A key that sees nothing above TLP:GREEN.
    let key = app.post("/api/v1/api-keys", &a.token, json!({ "name": "siem", "role": "analyst", "tlp_max": "green" })).await.expect(201);
    let mut green = SseClient::open(&app, &key.str("key"), "", None).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.lines().any(|l| l == "ironcase_live_subscribers 5"), "five streams held open");

    app.incident(&b, "beta's own").await;
    app.post(&format!("/api/v1/incidents/{two}/comments"), &a.token, json!({ "body": "on two" })).await.expect(201);
    app.post(&format!("/api/v1/incidents/{one}/comments"), &a.token, json!({ "body": "on one" })).await.expect(201);
    let clear = app
        .post("/api/v1/incidents", &a.token, json!({ "title": "public", "severity": "low", "category": "other", "tlp": "clear" }))
        .await
        .expect(201)
        .str("id");

    let got = all.take(3).await;
    assert_eq!(kinds(&got), ["comment.added", "comment.added", "incident.created"], "nothing of beta");
    assert_eq!(got[0].data["incident_id"], json!(two));
    let got = only_one.next().await.expect("event");
    assert_eq!((got.event.as_str(), got.data["incident_id"].clone()), ("comment.added", json!(one)));
    let got = comments.take(2).await;
    assert_eq!(kinds(&got), ["comment.added", "comment.added"]);
    // Beta's stream has beta's incident, and then nothing of default's: its
    // next event is its own again.
    assert_eq!(beta.next().await.expect("event").data["data"]["title"], "beta's own");
    app.incident(&b, "beta's second").await;
    assert_eq!(beta.next().await.expect("event").data["data"]["title"], "beta's second");
    // The key's first event is the TLP:CLEAR incident: the amber comments were held back.
    let got = green.next().await.expect("event");
    assert_eq!((got.event.as_str(), got.data["incident_id"].clone()), ("incident.created", json!(clear)));
    // The incident filter obeys the ceiling too.
    let r = app.get(&format!("/api/v1/events/stream?incident_id={one}"), &key.str("key")).await;
    r.problem(404, "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn stream_requests_are_checked_before_anything_streams() {
    let app = TestApp::spawn().await;
    let a = app.admin().await;
    let (_, b) = app.org(&a, "beta").await;
    let b_inc = app.incident(&b, "beta").await.str("id");
    app.send(Method::GET, "/api/v1/events/stream", None, None, &[]).await.problem(401, "unauthenticated");
    app.get(&format!("/api/v1/events/stream?incident_id={b_inc}"), &a.token).await.problem(404, "not_found");
    app.get("/api/v1/events/stream?incident_id=INC-999", &a.token).await.problem(404, "not_found");
    for bad in ["?types=incident.exploded", "?types=,", "?since=-1", "?since=abc", "?limit=5", "?since=1&since=2"] {
        app.get(&format!("/api/v1/events/stream{bad}"), &a.token).await.problem(422, "validation_failed");
    }
    let r = app.send(Method::GET, "/api/v1/events/stream", Some(&a.token), None, &[("last-event-id", "yesterday")]).await;
    let r = r.problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "Last-Event-ID");
    // Not a WebSocket handshake.
    app.get("/api/v1/events/ws", &a.token).await.problem(426, "upgrade_required");
    app.send(Method::GET, "/api/v1/events/ws", None, None, &[]).await.problem(401, "unauthenticated");
    app.send(Method::GET, "/api/v1/events/ws?ticket=ict_forged", None, None, &[]).await.problem(401, "unauthenticated");
    app.send(Method::POST, "/api/v1/events/ticket", None, None, &[]).await.problem(401, "unauthenticated");
    app.shutdown().await;
}

/// A stream whose reader stops reading falls behind, is ended with the
/// cursor to resume from, and resuming from it loses and repeats nothing.
#[tokio::test]
async fn a_slow_reader_is_ended_with_its_cursor_and_resumes_without_loss() {
    let app = TestApp::spawn_with(|c| c.stream_buffer = 16).await;
    let a = app.admin().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A raw connection with a small receive buffer, which we stop reading.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut conn = sock.connect(addr.parse().expect("addr")).await.expect("connect");
    let req =
        format!("GET /api/v1/events/stream HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n", a.token);
    conn.write_all(req.as_bytes()).await.expect("request");
    let mut head = vec![0u8; 1024];
    let n = conn.read(&mut head).await.expect("response head");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));

    // Writers are not held up by the reader that does not read.
    let big = "x".repeat(50_000);
    let mut incidents = Vec::new();
    for i in 0..12 {
        incidents.push(app.incident(&a, &format!("flood {i}")).await.str("id"));
    }
    let mut sent = 0;
    for round in 0..10 {
        for id in &incidents {
            app.post(&format!("/api/v1/incidents/{id}/comments"), &a.token, json!({ "body": format!("{round} {big}") })).await.expect(201);
            sent += 1;
        }
    }
    assert_eq!(sent, 120);

    // Now read everything the server sent: some events, then `end`.
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut raw)).await.expect("the server ends the stream").expect("read");
    let text = String::from_utf8_lossy(&raw);
    let end_at = text.find("event: end\n").expect("an end event");
    let end_line = text[end_at..].lines().find_map(|l| l.strip_prefix("data: ")).expect("end data");
    let end: Value = serde_json::from_str(end_line).expect("end JSON");
    assert_eq!(end["code"], "too_slow", "{end}");
    let resume_from = end["resume_from"].as_i64().expect("resume_from");
    let mut ids: Vec<i64> = text[..end_at].lines().filter_map(|l| l.strip_prefix("id: ")).map(|v| v.parse().expect("id")).collect();
    assert!(ids.len() < 132, "it was cut short ({} events)", ids.len());
    assert_eq!(ids.last().copied().unwrap_or(resume_from), resume_from, "the cursor is the last event delivered");

    // Resume: exactly the rest, once each.
    let mut s = SseClient::open(&app, &a.token, "", Some(resume_from)).await;
    let total = 12 + 120;
    let first_id = ids.first().copied();
    while ids.len() < total {
        let f = s.next().await.expect("the rest");
        ids.push(f.id.expect("id"));
    }
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), total, "no duplicates");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(first_id.is_none_or(|f| f == ids[0]));
    app.shutdown().await;
}

#[tokio::test]
async fn a_stream_ends_when_its_session_is_revoked_and_when_the_server_stops() {
    let app = TestApp::spawn_with(|c| c.stream_heartbeat_secs = 1).await;
    let a = app.admin().await;
    let analyst = app.member(&a, "ana@x.test", "analyst", None).await;
    let mut s = SseClient::open(&app, &analyst.token, "", None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.incident(&a, "seen").await;
    assert_eq!(s.next().await.expect("event").event, "incident.created");
    assert!(s.heartbeats >= 1, "an idle stream gets heartbeats");
    app.send(Method::POST, "/api/v1/auth/logout", Some(&analyst.token), None, &[]).await.expect(204);
    let end = s.next().await.expect("an end event");
    assert_eq!((end.event.as_str(), end.data["code"].as_str()), ("end", Some("unauthenticated")));
    assert!(s.next().await.is_none(), "closed after the end event");

    // Shutdown ends held streams (instead of waiting on them forever) with the cursor.
    let mut held = SseClient::open(&app, &a.token, "", None).await;
    let last = app.incident(&a, "last").await;
    let got = held.next().await.expect("event");
    assert_eq!(got.data["incident_id"], json!(last.str("id")));
    let stopping = tokio::spawn(async move { app.shutdown().await });
    let end = held.next().await.expect("an end event");
    assert_eq!(end.data["code"], "shutting_down");
    assert_eq!(end.data["resume_from"].as_i64(), got.id);
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("shutdown finishes").expect("shutdown task");
}

async fn ws_connect(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, u16> {
    let url = format!("{}/api/v1/events/ws{query}", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
        req.headers_mut().insert(name, v.parse().expect("header value"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

async fn ws_next(ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s");
        match msg.expect("open").expect("message") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Close(f) => return json!({ "closed": f.map(|f| u16::from(f.code)) }),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn websocket_streams_with_a_bearer_or_a_single_use_ticket_and_checks_the_origin() {
    let app = TestApp::spawn_with(|c| c.allowed_origins = vec!["https://console.example.com".into()]).await;
    let a = app.admin().await;
    let bearer = format!("Bearer {}", a.token);

    let mut ws = ws_connect(&app, "", &[("authorization", &bearer)]).await.expect("bearer opens it");
    let inc = app.incident(&a, "over the socket").await.str("id");
    let e = ws_next(&mut ws).await;
    assert_eq!((e["type"].as_str(), e["incident_id"].clone()), (Some("incident.created"), json!(inc)));
    let first_id = e["id"].as_i64().expect("id");
    ws.close(None).await.expect("close");

    // A browser: a ticket instead of the header, from an allowed origin.
    let t = app.post("/api/v1/events/ticket", &a.token, json!({})).await.expect(201);
    let ticket = t.str("ticket");
    assert!(ticket.starts_with("ict_") && t.body["expires_at"].is_string());
    let origin = [("origin", "https://console.example.com")];
    let mut ws = ws_connect(&app, &format!("?ticket={ticket}&since={first_id}"), &origin).await.expect("ticket opens it");
    app.post(&format!("/api/v1/incidents/{inc}/comments"), &a.token, json!({ "body": "hello socket" })).await.expect(201);
    let e = ws_next(&mut ws).await;
    assert_eq!(e["data"]["body"], "hello socket", "resumed after `since`, nothing repeated: {e}");
    // Used once: never again.
    assert_eq!(ws_connect(&app, &format!("?ticket={ticket}"), &origin).await.err(), Some(401));
    // Expired tickets open nothing.
    let late = app.post("/api/v1/events/ticket", &a.token, json!({})).await.expect(201).str("ticket");
    app.clock.advance_secs(31);
    assert_eq!(ws_connect(&app, &format!("?ticket={late}"), &origin).await.err(), Some(401));
    // A ticket of a session that has since ended opens nothing.
    let other = app.admin().await;
    let orphan = app.post("/api/v1/events/ticket", &other.token, json!({})).await.expect(201).str("ticket");
    app.send(Method::POST, "/api/v1/auth/logout", Some(&other.token), None, &[]).await.expect(204);
    assert_eq!(ws_connect(&app, &format!("?ticket={orphan}"), &origin).await.err(), Some(401));
    // Another site's page may not open it, even with a good ticket.
    let t2 = app.post("/api/v1/events/ticket", &a.token, json!({})).await.expect(201).str("ticket");
    assert_eq!(ws_connect(&app, &format!("?ticket={t2}"), &[("origin", "https://evil.example")]).await.err(), Some(403));
    let r = app.send(Method::GET, "/api/v1/events/ws", Some(&a.token), None, &[("origin", "https://evil.example")]).await;
    r.problem(403, "origin_not_allowed");
    // The server's own origin may.
    let own = app.base.clone();
    let mut ws = ws_connect(&app, &format!("?ticket={t2}"), &[("origin", &own)]).await.expect("own origin");
    app.incident(&a, "own origin").await;
    assert_eq!(ws_next(&mut ws).await["type"], "incident.created");
    app.shutdown().await;
}
