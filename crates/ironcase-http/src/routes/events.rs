//! `/events`: the organisation's events, live, over Server-Sent Events or a
//! WebSocket, resumable by cursor (the event id).

use std::convert::Infallible;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ironcase_app::live::{End, EventStream, StreamFilter};
use ironcase_app::ErrorCode;
use ironcase_app::{AppError, Principal};
use ironcase_domain::{FieldError, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Meta, QueryParams};
use crate::AppState;

/// How long a WebSocket write may wait for a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream)).routes(routes!(ws)).routes(routes!(ticket))
}

/// `?incident_id=&types=a,b&since=N`, and `Last-Event-ID` (which wins: it is
/// what a reconnecting EventSource sends).
fn stream_query(q: &mut QueryParams, headers: &HeaderMap) -> ApiResult<(Option<i64>, StreamFilter)> {
    let since = q.parse("since", |s| s.parse::<i64>().ok().filter(|n| *n >= 0), "a non-negative event id");
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).filter(|n| *n >= 0) {
            Some(n) => Some(n),
            None => {
                return Err(ApiError::validation(vec![FieldError {
                    field: "Last-Event-ID".into(),
                    message: "expected a non-negative event id".into(),
                }]))
            }
        },
    };
    let incident = match q.str("incident_id") {
        Some(raw) => Some(ironcase_app::incidents::parse_ref(&raw).ok_or_else(ApiError::not_found)?),
        None => None,
    };
    let types = q.str("types").map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>());
    if types.as_ref().is_some_and(|t| t.is_empty() || t.len() > 32) {
        q.error("types", "expected 1 to 32 comma-separated event types");
    }
    Ok((last_event_id.or(since), StreamFilter { incident, types }))
}

/// The organisation's events as Server-Sent Events: `id` (the cursor),
/// `event` (the type) and `data` (`{id, type, incident_id, actor_id, at,
/// data}`), only what the caller may read. Without a cursor the stream starts
/// with the next event; with `Last-Event-ID` (or `since`) it first replays
/// every event after it. A comment line is sent as a heartbeat. A stream that
/// falls too far behind, whose credential is revoked, or whose server shuts
/// down ends with an `end` event `{code, detail, resume_from?}`.
#[utoipa::path(get, path = "/events/stream", tag = "events", security(("bearer" = [])),
    params(
        ("since" = Option<i64>, Query, description = "replay events after this id"),
        ("incident_id" = Option<String>, Query, description = "only this incident's events"),
        ("types" = Option<String>, Query, description = "comma-separated event types"),
        ("Last-Event-ID" = Option<i64>, Header, description = "as `since`; sent by reconnecting clients"),
    ),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream"),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn stream(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut q: QueryParams,
) -> ApiResult<Response> {
    let (since, filter) = stream_query(&mut q, &headers)?;
    q.finish()?;
    let es = s.app.open_stream(&p, &meta, since, filter).await?;
    Ok(sse(&s, es))
}

/// An open stream as Server-Sent Events (the API's and the console's).
pub(crate) fn sse(s: &AppState, es: EventStream) -> Response {
    let body = futures::stream::unfold(Some(es), |state| async move {
        let mut es = state?;
        match es.next().await {
            Ok(e) => Some((Ok::<_, Infallible>(Event::default().id(e.id.to_string()).event(&e.kind).data(&e.json)), Some(es))),
            Err(end) => Some((Ok(Event::default().event("end").data(end.json())), None)),
        }
    });
    let heartbeat = s.app.settings().stream_heartbeat;
    let mut res = Sse::new(body).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")).into_response();
    // Proxies that buffer responses (nginx) would hold events back.
    res.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    res
}

/// `scheme://host[:port]`, lower-cased, or `None` when it is not an origin.
pub fn normalize_origin(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('/');
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let ok_host = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ((scheme == "http" || scheme == "https") && ok_host).then(|| format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

/// A browser's WebSocket carries the page's `Origin`; only the server's own
/// origin and the configured ones may open the stream. Clients that are not
/// browsers send none.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Some(origin) = origin.to_str().ok().and_then(normalize_origin) else { return false };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
    let same = host.is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"));
    same || allowed.contains(&origin)
}

/// The same events over a WebSocket, one JSON text message each (`since`
/// resumes after an id). Browsers, which cannot set `Authorization` here,
/// pass `?ticket=` from `POST /events/ticket`. A ping is sent as a heartbeat.
/// The server ends a stream with a last `{code, detail, resume_from?}` text
/// message and a close frame: 4008 too slow, 4001 credential no longer valid,
/// 1001 server shutting down.
#[utoipa::path(get, path = "/events/ws", tag = "events", security(("bearer" = [])),
    params(
        ("ticket" = Option<String>, Query, description = "a ticket from POST /api/v1/events/ticket, instead of a bearer token"),
        ("since" = Option<i64>, Query, description = "replay events after this id"),
        ("incident_id" = Option<String>, Query, description = "only this incident's events"),
        ("types" = Option<String>, Query, description = "comma-separated event types"),
    ),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 426, body = Problem)))]
pub async fn ws(
    State(s): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut q: QueryParams,
    principal: Option<axum::Extension<Principal>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !origin_allowed(&headers, &s.config.allowed_origins) {
        return Err(ApiError::new(ErrorCode::OriginNotAllowed, "this origin may not open the event stream"));
    }
    let ticket = q.str("ticket");
    let p = match (ticket, principal) {
        (Some(t), _) => s.app.redeem_ticket(&t, &meta).await?,
        (None, Some(axum::Extension(p))) => p,
        (None, None) => match crate::extract::bearer(&headers) {
            Some(token) => s.app.authenticate_from(token, &meta).await?,
            None => return Err(AppError::Unauthenticated.into()),
        },
    };
    let (since, filter) = stream_query(&mut q, &HeaderMap::new())?;
    q.finish()?;
    let es = s.app.open_stream(&p, &meta, since, filter).await?;
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this route speaks the WebSocket protocol only"));
    };
    let heartbeat = s.app.settings().stream_heartbeat;
    Ok(upgrade.max_message_size(64 * 1024).on_upgrade(move |socket| serve_ws(socket, es, heartbeat)))
}

async fn serve_ws(mut socket: WebSocket, mut es: EventStream, heartbeat: Duration) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        tokio::select! {
            next = es.next() => match next {
                Ok(e) => {
                    let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(e.json.clone().into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return; // gone, or not reading: dropping the socket closes it
                    }
                }
                Err(end) => {
                    let (code, reason) = match &end {
                        End::TooSlow { .. } => (4008, "too_slow"),
                        End::Unauthenticated => (4001, "unauthenticated"),
                        End::ShuttingDown { .. } => (1001, "shutting_down"),
                    };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(end.json().into()))).await;
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
                    return;
                }
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Clients have nothing to say on this stream; pongs and the
                // like are read and dropped.
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TicketOut {
    /// Pass as `?ticket=` to `/api/v1/events/ws`; it works once.
    pub ticket: String,
    pub expires_at: Timestamp,
}

/// A single-use ticket, valid for 30 seconds, that opens the WebSocket stream
/// as the caller (for browsers, which cannot set `Authorization` there).
#[utoipa::path(post, path = "/events/ticket", tag = "events", security(("bearer" = [])),
    responses((status = 201, body = TicketOut), (status = 401, body = Problem)))]
pub async fn ticket(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<(StatusCode, axum::Json<TicketOut>)> {
    let (ticket, expires_at) = s.app.stream_ticket(&p, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(TicketOut { ticket, expires_at })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_and_match() {
        assert_eq!(normalize_origin("HTTPS://Console.Example.com/"), Some("https://console.example.com".into()));
        assert_eq!(normalize_origin("http://127.0.0.1:8080"), Some("http://127.0.0.1:8080".into()));
        for bad in ["", "console.example.com", "ftp://x", "https://", "https://a b", "https://x/path?q"] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        assert!(origin_allowed(&h, &[]), "no Origin: not a browser");
        h.insert(header::HOST, HeaderValue::from_static("ironcase.example:8443"));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://ironcase.example:8443"));
        assert!(origin_allowed(&h, &[]), "the server's own origin");
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_allowed(&h, &[]));
        assert!(origin_allowed(&h, &["https://evil.example".into()]));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h, &["https://evil.example".into()]));
    }
}
