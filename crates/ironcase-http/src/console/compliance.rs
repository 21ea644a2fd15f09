//! Compliance reports in the console: one page per framework, made to be
//! printed (the page's chrome is left off paper).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ironcase_domain::compliance::Framework;
use maud::html;

use super::layout::{badge, page, respond, when, Failure, Nav};
use super::session::Browser;
use crate::AppState;

/// `GET /compliance`: the frameworks.
pub(crate) async fn index(b: Browser) -> Result<Response, Failure> {
    let body = html! {
        h1 { "Compliance reports" }
        p { "Each report judges the organisation's live settings and data against a framework's controls. Making one is audited." }
        ul { @for f in Framework::ALL { li { a href={ "/compliance/" (f.as_str()) } { (f.title()) } } } }
    };
    Ok(respond(StatusCode::OK, page("Compliance", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /compliance/{framework}`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Path(framework): Path<String>) -> Result<Response, Failure> {
    let framework = Framework::parse(&framework).ok_or(Failure::NotFound)?;
    let r = s.app.compliance_report(&b.p, &b.meta, framework).await?;
    let body = html! {
        h1 { (framework.title()) }
        p { "Generated " (when(r.generated_at)) " from the organisation's live settings and data." }
        p.no-print { a href="/compliance" { "Other frameworks" } " · use your browser's print to keep a copy" }
        table.controls {
            thead { tr { th scope="col" { "Control" } th scope="col" { "Status" } th scope="col" { "Checks, figures and actions" } } }
            tbody {
                @for c in &r.controls {
                    tr {
                        td { strong { (c.id) } br; (c.title) }
                        td { (badge("status", c.status.as_str())) }
                        td {
                            @for k in &c.checks {
                                p { strong { (k.check.replace('_', " ")) } " " (badge("status", k.status.as_str())) }
                                @if let Some(o) = k.figures.as_object() {
                                    dl { @for (name, v) in o { dt { (name.replace('_', " ")) } dd { (v.to_string().trim_matches('"')) } } }
                                }
                                @if let Some(a) = &k.action { p { "To meet it: " (a) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(framework.title(), Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
