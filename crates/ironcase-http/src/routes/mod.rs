//! Every route, each resource in its own module with its own `router()`.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod analyzers;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod breaches;
pub mod compliance;
pub mod events;
pub mod evidence;
pub mod export;
pub mod hierarchy;
pub mod incidents;
pub mod iocs;
pub mod members;
pub mod mfa;
pub mod notifications;
pub mod ops;
pub mod policy;
pub mod privacy;
pub mod retention;
pub mod roles;
pub mod search;
pub mod sessions;
pub mod sso;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use ironcase_app::ErrorCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::{middleware, openapi, AppState};

/// The router and the OpenAPI document, from one declaration per route
/// (each handler's `#[utoipa::path]`, registered with `routes!`).
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::new()
        .merge(auth::router(state.clone()))
        .merge(mfa::router(state.clone()))
        .merge(sessions::router())
        .merge(account::router(state.clone()))
        .merge(policy::router())
        .merge(roles::router())
        .merge(sso::router(state.clone()))
        .merge(admin::router())
        .merge(members::router())
        .merge(apikeys::router())
        .merge(incidents::router())
        .merge(iocs::router())
        .merge(evidence::router())
        .merge(hierarchy::router())
        .merge(audit::router())
        .merge(search::router())
        .merge(events::router())
        .merge(export::router())
        .merge(webhooks::router())
        .merge(notifications::router())
        .merge(analyzers::router())
        .merge(alerts::router())
        .merge(retention::router())
        .merge(breaches::router())
        .merge(compliance::router())
        .merge(privacy::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::limit_api));
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).nest("/api/v1", api).merge(ops::router()).split_for_parts();
    routes
        .route_layer(axum::middleware::from_fn(middleware::record_route))
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi::finish(doc)))
        .merge(crate::console::router())
        // A browser asking for a page gets the console's; anyone else a problem.
        .fallback(|headers: axum::http::HeaderMap| async move {
            if crate::console::wants_html(&headers) {
                crate::console::not_found_page()
            } else {
                axum::response::IntoResponse::into_response(ApiError::new(ErrorCode::NotFound, "no such route"))
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method") })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::request_context))
        .with_state(state)
}
