//! Liveness, readiness and metrics.

use std::net::SocketAddr;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Problem;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: its database answers. With Redis configured, its
/// state is reported too; a node whose Redis is away still serves (limiting
/// locally), so that is `degraded`, not unready.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready, or degraded"), (status = 503, description = "not ready")))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let redis = s.app.redis_healthy();
    let redis_check = redis.map(|ok| if ok { "ok" } else { "unreachable" });
    match s.app.ready().await {
        Ok(()) => {
            let status = if redis == Some(false) { "degraded" } else { "ready" };
            let mut checks = json!({ "database": "ok" });
            if let Some(r) = redis_check {
                checks["redis"] = json!(r);
            }
            (StatusCode::OK, Json(json!({ "status": status, "checks": checks })))
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut checks = json!({ "database": "failing" });
            if let Some(r) = redis_check {
                checks["redis"] = json!(r);
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "checks": checks })))
        }
    }
}

/// Prometheus text exposition: to a connection from this machine that no
/// proxy forwarded, or to whoever presents the configured metrics token.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearer" = [])),
    responses((status = 200, description = "metrics", content_type = "text/plain"),
        (status = 404, description = "not for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(s): State<AppState>, req: Request) -> Response {
    let (peer, headers) = (req.extensions().get::<ConnectInfo<SocketAddr>>(), req.headers());
    let from_here =
        peer.is_some_and(|p| p.0.ip().is_loopback()) && !headers.contains_key("x-forwarded-for") && !headers.contains_key("forwarded");
    let with_token = match (&s.config.metrics_token_sha256, crate::extract::bearer(headers)) {
        (Some(want), Some(got)) => ironcase_app::crypto::ct_eq(ironcase_app::crypto::sha256_hex(got).as_bytes(), want.as_bytes()),
        _ => false,
    };
    if !(from_here || with_token) {
        // As if there were no such route: nothing to learn here.
        return crate::error::ApiError::new(ironcase_app::ErrorCode::NotFound, "no such route").into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(s.app.live().subscribers(), s.app.session_lookups()),
    )
        .into_response()
}
