//! The web console, served at `/` by the same binary as the API: pages
//! rendered on the server (maud) over the same app use cases as the API, a
//! cookie bound to the same server-side session as tokens, CSRF tokens on
//! every state-changing form, and a strict Content-Security-Policy (no
//! inline script or style; the one script and stylesheet are ours, with
//! content-hashed names).

mod account;
mod admin;
mod alerts;
mod analyzers;
mod assets;
mod breaches;
mod children;
mod compliance;
mod dashboard;
mod evidence;
mod incidents;
mod indicators;
mod keys;
mod layout;
mod live;
mod notifications;
mod platform;
mod privacy;
mod retention;
mod roles;
mod search;
mod session;
mod settings;
mod signin;
mod sso;
mod tokens;
mod webhooks;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

/// Every console answer's security headers.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
}

async fn with_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    secure_headers(r.headers_mut());
    r
}

/// The console's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(incidents::queue))
        .route("/signin", get(signin::show).post(signin::password))
        .route("/signin/mfa", post(signin::mfa))
        .route("/signin/sso", get(signin::sso).post(signin::sso_finish))
        .route("/sso", get(signin::sso_landing))
        .route("/signout", post(signin::signout))
        .route("/search", get(search::search))
        .route("/alerts", get(alerts::queue))
        .route("/alerts/{id}", get(alerts::show))
        .route("/alerts/{id}/promote", post(alerts::promote))
        .route("/alerts/{id}/dismiss", post(alerts::dismiss))
        .route("/alerts/{id}/snooze", post(alerts::snooze))
        .route("/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/dashboard", get(dashboard::show))
        .route("/live", get(live::stream))
        .route("/incidents", post(incidents::create))
        .route("/incidents/new", get(incidents::new))
        .route("/incidents/{id}", get(incidents::show))
        .route("/incidents/{id}/similar", get(incidents::similar))
        .route("/incidents/{id}/comments", post(incidents::comment))
        .route("/incidents/{id}/status", post(incidents::status))
        .route("/incidents/{id}/edit", post(incidents::update))
        .route("/incidents/{id}/iocs", post(indicators::add))
        .route("/incidents/{id}/iocs/extract", post(indicators::extract))
        .route("/indicators", get(indicators::lookup))
        .route("/indicators/{id}/analyze", post(indicators::analyze))
        .route("/incidents/{id}/evidence", post(evidence::upload).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/evidence/{id}", get(evidence::show))
        .route("/evidence/{id}/content", get(evidence::download))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/keys/{id}/rotate", post(keys::rotate))
        .route("/keys/{id}/edit", post(keys::edit))
        .route("/account", get(account::show))
        .route("/account/sessions/{id}/end", post(account::end_session))
        .route("/account/sessions/end-others", post(account::end_others))
        .route("/account/password", post(account::password))
        .route("/account/mfa", post(account::mfa_enroll))
        .route("/account/mfa/confirm", post(account::mfa_confirm))
        .route("/reauthenticate", post(account::reauthenticate))
        .route("/members", get(admin::members).post(admin::invite))
        .route("/members/{id}", get(admin::member))
        .route("/members/{id}/role", post(admin::set_role))
        .route("/members/{id}/sessions/end", post(admin::end_sessions))
        .route("/members/{id}/mfa/reset", post(admin::reset_mfa))
        .route("/members/{id}/password-reset", post(admin::reset_password))
        .route("/members/{id}/remove", post(admin::remove))
        .route("/invitations/{id}/revoke", post(admin::withdraw))
        .route("/audit", get(admin::audit))
        .route("/roles", get(roles::list).post(roles::create))
        .route("/roles/{id}/delete", post(roles::delete))
        .route("/platform/organizations", get(platform::list).post(platform::create))
        .route("/platform/organizations/{id}", get(platform::show))
        .route("/platform/organizations/{id}/plan", post(platform::plan))
        .route("/platform/organizations/{id}/status", post(platform::status))
        .route("/platform/organizations/{id}/offboard", post(platform::offboard))
        .route("/settings", get(settings::show))
        .route("/settings/mfa", post(settings::mfa))
        .route("/settings/sessions", post(settings::sessions))
        .route("/settings/allowlist", post(settings::allowlist))
        .route("/settings/parent-access", post(settings::parent_access))
        .route("/settings/audit-reads", post(settings::audit_reads))
        .route("/settings/retention", get(retention::show).post(retention::save))
        .route("/settings/retention/preview", post(retention::preview))
        .route("/settings/retention/run", post(retention::run))
        .route("/incidents/{id}/legal-hold", post(retention::hold))
        .route("/incidents/{id}/legal-hold/lift", post(retention::lift))
        .route("/incidents/{id}/breach", post(breaches::put))
        .route("/incidents/{id}/breach/remove", post(breaches::remove))
        .route("/breaches", get(breaches::list))
        .route("/compliance", get(compliance::index))
        .route("/privacy", get(privacy::list).post(privacy::create))
        .route("/privacy/{id}/archive", post(privacy::archive))
        .route("/compliance/{framework}", get(compliance::show))
        .route("/children", get(children::list))
        .route("/children/{id}", get(children::incidents))
        .route("/children/{id}/audit", get(children::audit))
        .route("/settings/sso", get(sso::show).post(sso::save))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show))
        .route("/webhooks/{id}/enabled", post(webhooks::enabled))
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/webhooks/{id}/rotate-secret", post(webhooks::rotate))
        .route("/webhooks/{id}/replay", post(webhooks::replay))
        .route("/webhooks/{id}/delete", post(webhooks::delete))
        .route("/notifications", get(notifications::list).post(notifications::create))
        .route("/notifications/{id}", get(notifications::show))
        .route("/notifications/{id}/enabled", post(notifications::enabled))
        .route("/notifications/{id}/replay", post(notifications::replay))
        .route("/notifications/{id}/delete", post(notifications::delete))
        .route("/account/notifications", get(notifications::prefs).post(notifications::set_prefs))
        .route("/analyzers", get(analyzers::list).post(analyzers::create))
        .route("/analyzers/{id}", get(analyzers::show))
        .route("/analyzers/{id}/enabled", post(analyzers::enabled))
        .route("/analyzers/{id}/replay", post(analyzers::replay))
        .route("/analyzers/{id}/delete", post(analyzers::delete))
        .route("/settings/sso/delete", post(sso::delete))
        .route("/invitation", get(tokens::invitation).post(tokens::accept))
        .route("/reset-password", get(tokens::reset).post(tokens::reset_confirm))
        .route("/forgot", get(tokens::forgot).post(tokens::forgot_send))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(with_headers))
}

/// Whether a request is a browser's asking for a page (it accepts HTML).
pub(crate) fn wants_html(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The console's page for a path that is nothing.
pub(crate) fn not_found_page() -> Response {
    let mut r = layout::not_found().into_response();
    secure_headers(r.headers_mut());
    r
}
