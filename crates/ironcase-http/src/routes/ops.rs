//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
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

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", content_type = "text/plain")))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(s.app.live().subscribers(), s.app.session_lookups()),
    )
}
