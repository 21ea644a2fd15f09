//! Around every request: its id (taken from `x-request-id` when sane), the
//! task-local that error bodies read it from, metrics and one log line.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ironcase_app::ErrorCode;

use crate::error::REQUEST_ID;
use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Carries the matched route from the inner router out to [`request_context`].
#[derive(Clone)]
struct Route(String);

fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
}

/// The client's address, as [`crate::proxy::client_ip`] found it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

pub async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        let ip = crate::proxy::client_ip(peer, req.headers(), &state.config.trusted_proxies);
        req.extensions_mut().insert(ClientIp(ip));
    }
    let id = req.headers().get(REQUEST_ID_HEADER).and_then(sane_id).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let method = req.method().clone();
    let docs = req.uri().path().starts_with("/docs");
    let mut res = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    security_headers(res.headers_mut(), docs);
    let route = res.extensions().get::<Route>().map(|r| r.0.as_str()).unwrap_or("unmatched");
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    // Label values come from closed sets only: a client inventing methods must
    // not be able to grow the metrics without bound.
    let method_label = match method.as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    };
    state.metrics.observe(method_label, route, status, elapsed.as_secs_f64());
    tracing::debug!(request_id = %id, http.method = %method, http.route = route, http.status = status, latency_us = elapsed.as_micros() as u64, "request");
    res
}

/// What every answer says about itself to browsers: never sniff its type,
/// never frame it, run nothing it did not come with, send no referrer, and —
/// unless the route says otherwise — keep no copy (answers carry tokens, keys
/// and tenants' data).
fn security_headers(h: &mut HeaderMap, docs: bool) {
    // The API's answers are data: they may load nothing. Swagger UI loads its
    // own scripts and styles (and sets style attributes, and data: images).
    let csp = if docs {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    };
    // The console's pages set their own policy (they load its script and
    // stylesheet, and post its forms).
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    if !docs {
        h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
}

/// Inner layer: records which route answered.
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(Route(r));
    }
    res
}

/// Sets the `RateLimit-*` headers (and their `X-RateLimit-*` twins).
pub(crate) fn rate_headers(res: &mut Response, d: &ironcase_app::ratelimit::Decision) {
    let h = res.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", d.limit.to_string()),
        ("ratelimit-remaining", d.remaining.to_string()),
        ("ratelimit-reset", d.reset_secs.to_string()),
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset_secs.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

/// A request refused by a rate limit of route `class`: counted in the
/// metrics, 429 `rate_limited` with `Retry-After` and the `RateLimit-*` headers.
pub(crate) fn rate_limited(state: &AppState, class: &'static str, d: &ironcase_app::ratelimit::Decision, detail: &'static str) -> Response {
    state.metrics.rate_limited(class);
    let mut res = axum::response::IntoResponse::into_response(crate::error::ApiError {
        retry_after: d.retry_after_secs,
        ..crate::error::ApiError::new(ErrorCode::RateLimited, detail)
    });
    rate_headers(&mut res, d);
    res
}

/// Limits every authenticated API request by its credential and its
/// organisation, as the organisation's plan says. The caller is authenticated
/// here (and handed to the handler); a request that does not authenticate
/// passes through to be refused by its handler.
pub async fn limit_api(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = crate::extract::bearer(req.headers()).map(str::to_owned) else { return next.run(req).await };
    let meta = crate::extract::request_meta(req.extensions(), req.headers());
    let p = match state.app.authenticate_from(&token, &meta).await {
        Ok(p) => p,
        Err(e) => {
            if let Some(f) = crate::extract::AuthFailure::of(&e) {
                req.extensions_mut().insert(f);
            }
            return next.run(req).await;
        }
    };
    // A signed request (an API key's, RFC 9421): its signature is checked
    // now, so that what the handler sees knows it.
    let (mut req, p) = if crate::signature::is_signed(&req) {
        match crate::signature::accept(&state, req, p).await {
            Ok(accepted) => accepted,
            Err(e) => return axum::response::IntoResponse::into_response(e),
        }
    } else {
        (req, p)
    };
    // Ending a session only ever takes access away: never refuse it.
    if req.uri().path().ends_with("/auth/logout") {
        req.extensions_mut().insert(p);
        return next.run(req).await;
    }
    let decision = state.app.check_api_rate(&p).await;
    if let Err(r) = &decision {
        state.app.api_rate_refused(&p, &meta, r).await;
    }
    req.extensions_mut().insert(p);
    match decision {
        Ok(None) => next.run(req).await,
        Ok(Some(d)) => {
            let mut res = next.run(req).await;
            rate_headers(&mut res, &d);
            res
        }
        Err(r) => {
            rate_limited(&state, "api", &r.decision, "this credential or organization is over its plan's request rate; try again later")
        }
    }
}

/// Limits the unauthenticated auth routes per source address (the client's,
/// through trusted proxies).
pub async fn limit_auth_by_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let address = req.extensions().get::<ClientIp>().map(|c| c.0.to_string()).unwrap_or_default();
    let d = state.app.check_auth_rate(&address).await;
    if !d.allowed {
        return rate_limited(&state, "auth", &d, "too many requests from this address; try again later");
    }
    let mut res = next.run(req).await;
    rate_headers(&mut res, &d);
    res
}
