//! The HTTP faces of [`ironcase_app::App`]: the API (an axum router of thin
//! handlers, the middleware around them (request ids, metrics, auth),
//! problem+json errors and the OpenAPI document) and the web console.
#![forbid(unsafe_code)]

pub mod console;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod page;
pub mod proxy;
pub mod routes;
pub mod signature;

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
    /// SHA-256 (hex) of the token that opens `/metrics` to any address;
    /// `None`: loopback connections that no proxy forwarded only.
    pub metrics_token_sha256: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { max_body_bytes: 1024 * 1024, trusted_proxies: Vec::new(), allowed_origins: Vec::new(), metrics_token_sha256: None }
    }
}

/// The whole application as one router.
pub fn router(app: App, config: HttpConfig) -> Router {
    let state = AppState { app, metrics: Arc::new(metrics::Metrics::new()), config: Arc::new(config) };
    routes::router(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
///
/// One HTTP/1.1 connection per task, served by hyper directly rather than
/// through `axum::serve`: that one detects HTTP/2 on every connection (the
/// dependency tree enables it), and its connection state costs more memory
/// per held event stream than the whole HTTP/1.1 state does here.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;

    // Each connection task holds a receiver: the server waits for all of
    // them to be dropped; a send tells them to finish gracefully.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let mut signal = signal_rx.clone();
        tokio::spawn(async move {
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = signal.changed() => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(signal);
        });
    }
    drop(listener);
    drop(signal_rx);
    let _ = signal_tx.send(());
    signal_tx.closed().await;
    Ok(())
}
