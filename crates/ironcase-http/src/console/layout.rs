//! The page every console screen sits in, and the pages a failure shows.
//! Maud writes the HTML: every value is escaped unless marked otherwise
//! (nothing here is), and a page that does not type-check does not build.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::{AppError, Principal};
use ironcase_domain::Permission;
use maud::{html, Markup, DOCTYPE};

use super::assets;
use crate::ApiError;

/// What the navigation shows of the signed-in person.
pub(crate) struct Nav<'a> {
    pub p: &'a Principal,
    pub csrf: &'a str,
}

/// A whole page: `title`, the navigation when someone is signed in, and
/// `body`.
pub(crate) fn page(title: &str, nav: Option<Nav<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ironcase" }
                link rel="stylesheet" href=(assets::css_path());
                script type="module" src=(assets::js_path()) {}
            }
            body {
                header.top {
                    a.brand href="/" { "Ironcase" }
                    @if let Some(n) = nav {
                        nav aria-label="Main" {
                            a href="/" { "Incidents" }
                            @if n.p.has(Permission::IncidentRead) { a href="/alerts" { "Alerts" } a href="/breaches" { "Breaches" } }
                            a href="/search" { "Search" }
                            a href="/dashboard" { "Dashboard" }
                            @if n.p.has(Permission::IncidentCreate) { a href="/incidents/new" { "New incident" } }
                            @if n.p.has(Permission::MembersRead) { a href="/members" { "Members" } a href="/roles" { "Roles" } }
                            @if n.p.has(Permission::ApiKeysManage) { a href="/keys" { "API keys" } }
                            @if n.p.has(Permission::AuditRead) { a href="/audit" { "Audit" } a href="/compliance" { "Compliance" } }
                            @if n.p.has(Permission::OrganizationRead) { a href="/settings" { "Organisation" } }
                            a href="/account" { "My account" }
                            @if n.p.is_operator { a href="/platform/organizations" { "Platform" } }
                        }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(n.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page answered with `status`.
pub(crate) fn respond(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, axum::response::Html(m.into_string())).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An id from the path (`{id}`); one that is not even text is as missing
/// as any other.
pub(crate) struct Ref(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ref {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Failure> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Ref(v))
            .map_err(|_| Failure::NotFound)
    }
}

/// Why a console request did not get its page.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Not signed in (or the session ended): to the sign-in page, then back.
    SignIn {
        next: String,
        ended: bool,
    },
    NotFound,
    Forbidden,
    /// A form without its session's CSRF token.
    Csrf,
    BadRequest(String),
    /// A sensitive action whose session proved itself too long ago: the
    /// password again, then on to `next`.
    Reauthenticate {
        csrf: String,
        next: String,
    },
    /// Anything else the app refused, as the API would say it.
    App(ApiError),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        match e {
            AppError::NotFound => Failure::NotFound,
            AppError::Unauthenticated => Failure::SignIn { next: "/".into(), ended: true },
            e => Failure::App(ApiError::from(e)),
        }
    }
}

/// A refusal as the status and the sentences a page shows: each bad
/// field's reason, else the refusal's own.
pub(crate) fn sentences(e: AppError) -> (StatusCode, Vec<String>) {
    let api = ApiError::from(e);
    (api.status(), reasons(&api))
}

/// Each bad field's reason, else the refusal's own.
pub(crate) fn reasons(api: &ApiError) -> Vec<String> {
    if api.errors.is_empty() {
        vec![api.detail.clone()]
    } else {
        api.errors.iter().map(|f| format!("{}: {}", f.field.replace('_', " "), f.message)).collect()
    }
}

/// Where the sign-in page sends someone back to: a path of this console
/// only (never another site).
pub(crate) fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.contains(['\r', '\n']) {
        next
    } else {
        "/"
    }
}

fn message(status: StatusCode, title: &str, sentence: &str) -> Response {
    respond(
        status,
        page(
            title,
            None,
            html! {
                section.message {
                    h1 { (title) }
                    p { (sentence) }
                    p { a href="/" { "Back to the incidents" } }
                }
            },
        ),
    )
}

/// The page any missing thing shows: another organisation's incident looks
/// exactly like one that never was.
pub(crate) fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "There is nothing here, or nothing you may see.")
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::SignIn { next, ended } => {
                let next = safe_next(&next);
                let mut to = format!("/signin?next={}", form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
                if ended {
                    to.push_str("&ended=1");
                }
                Redirect::to(&to).into_response()
            }
            Failure::NotFound => not_found(),
            Failure::Forbidden => {
                message(StatusCode::FORBIDDEN, "Not allowed", "Your role does not allow this, or the request did not come from this site.")
            }
            Failure::Csrf => message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from a page of your current session. Go back, reload the page and try again.",
            ),
            Failure::BadRequest(why) => message(StatusCode::BAD_REQUEST, "Bad request", &why),
            Failure::Reauthenticate { csrf, next } => super::account::reauth_page(&csrf, &next, None),
            Failure::App(e) if e.code == ironcase_app::ErrorCode::MfaEnrollmentRequired => respond(
                StatusCode::FORBIDDEN,
                page(
                    "Second factor needed",
                    None,
                    html! {
                        section.message {
                            h1 { "Second factor needed" }
                            p { "Your organisation requires a second factor. Set one up to go on." }
                            p { a href="/account" { "Set up an authenticator" } }
                        }
                    },
                ),
            ),
            Failure::App(e) => {
                let status = e.status();
                let title = status.canonical_reason().unwrap_or("Error");
                let sentence =
                    if status.is_server_error() { "Something went wrong on our side. Try again in a moment." } else { &e.detail };
                message(status, title, sentence)
            }
        }
    }
}

/// The link to the page after this one of a list, when there is one.
pub(crate) fn next_link(path: &str, cursor: Option<&str>) -> Markup {
    html! {
        @if let Some(c) = cursor {
            p.pager { a rel="next" href={ (path) "?cursor=" (form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()) } { "Next page" } }
        }
    }
}

/// The `as_str` names of a closed set, for a select.
pub(crate) fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| f(*v)).collect()
}

/// A time as a person reads it: `2026-12-04T21:49:49.123Z` as `2026-12-04 21:49`.
pub(crate) fn when(t: ironcase_domain::Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(..16).map(|d| d.replace('T', " ")).unwrap_or(s)
}

/// A value as a coloured badge (`severity-high`, `status-open`, `tlp-amber`).
pub(crate) fn badge(kind: &str, value: &str) -> Markup {
    html! { span class={ "badge " (kind) "-" (value.replace('+', "-")) } { (value.replace('_', " ")) } }
}

/// The link to the next part of one section of an incident's page (its
/// timeline, indicators or files), back at that section.
pub(crate) fn more(incident: &str, param: &str, cursor: Option<&str>, section: &str, label: &str) -> Markup {
    html! {
        @if let Some(c) = cursor {
            p.pager {
                a rel="next" href={ "/incidents/" (incident) "?" (param) "=" (form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()) "#" (section) } { (label) }
            }
        }
    }
}

/// One labelled select of a closed set, with `current` chosen and an
/// "any" choice first when `any` is given.
pub(crate) fn select(name: &str, label: &str, options: &[&str], current: Option<&str>, any: Option<&str>) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            @if let Some(a) = any {
                option value="" selected[current.is_none()] { (a) }
            }
            @for o in options {
                option value=(o) selected[current == Some(*o)] { (o.replace('_', " ")) }
            }
        }
    }
}
