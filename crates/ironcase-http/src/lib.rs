//! The HTTP API: an axum router of thin handlers over [`ironcase_app::App`],
//! the middleware around them (request ids, metrics, auth), problem+json
//! errors and the OpenAPI document.
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod proxy;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use ironcase_app::App;

pub use error::ApiError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<metrics::Metrics>,
    pub config: Arc<HttpConfig>,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<proxy::Cidr>,
    /// Origins (normalised, `scheme://host[:port]`) that may open the
    /// WebSocket stream besides the server's own.
    pub allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { max_body_bytes: 1024 * 1024, trusted_proxies: Vec::new(), allowed_origins: Vec::new() }
    }
}

/// The whole application as one router.
pub fn router(app: App, config: HttpConfig) -> Router {
    let state = AppState { app, metrics: Arc::new(metrics::Metrics::new()), config: Arc::new(config) };
    routes::router(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}
