//! Indicators in the console: an incident's (add one, or paste text and
//! keep every indicator found in it), and one indicator with every incident
//! that saw it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::incidents::parse_ref;
use ironcase_app::iocs::NewIoc;
use ironcase_app::page::Page;
use ironcase_app::store::ioc::SightingRow;
use ironcase_domain::ioc::IocType;
use maud::{html, Markup};

use super::layout::{more, page, respond, select, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

fn lookup_href(kind: IocType, value: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("type", kind.as_str()).append_pair("value", value);
    format!("/indicators?{}", q.finish())
}

/// The incident page's section: its indicators, and the forms to add some
/// when `may_change`.
pub(crate) fn section(incident: &str, rows: &Page<SightingRow>, may_change: bool, csrf: &str) -> Markup {
    let kinds: Vec<&str> = IocType::ALL.iter().map(|k| k.as_str()).collect();
    html! {
        section.indicators id="indicators" {
            h2 { "Indicators" }
            @if rows.items.is_empty() { p.empty { "None yet." } } @else {
                ul {
                    @for s in &rows.items {
                        li {
                            span.badge { (s.ioc.kind.as_str()) } " "
                            a href=(lookup_href(s.ioc.kind, &s.ioc.value)) { code { (s.ioc.value) } }
                            " " span class={ "badge tlp-" (s.ioc.tlp.as_str().replace('+', "-")) } { (s.ioc.tlp.as_str()) }
                        }
                    }
                }
            }
            (more(incident, "iocs", rows.next_cursor.as_deref(), "indicators", "More indicators"))
            @if may_change {
                form.ioc-add method="post" action={ "/incidents/" (incident) "/iocs" } {
                    input type="hidden" name="csrf" value=(csrf);
                    (select("ioc-type", "Type", &kinds, Some("domain"), None))
                    label for="ioc-value" { "Value" }
                    input id="ioc-value" name="value" type="text" required;
                    button type="submit" { "Add indicator" }
                }
                form.ioc-extract method="post" action={ "/incidents/" (incident) "/iocs/extract" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="ioc-text" { "Paste text to find indicators in (defanged ones too)" }
                    textarea id="ioc-text" name="text" rows="4" required {}
                    button type="submit" { "Find and add" }
                }
            }
        }
    }
}

/// `POST /incidents/{ref}/iocs` (the select is named `ioc-type`).
pub(crate) async fn add(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let kind = IocType::parse(form.get("ioc-type")).ok_or_else(|| Failure::BadRequest("choose an indicator type from the list".into()))?;
    let input = NewIoc { kind, value: form.get("value").trim().to_owned(), tlp: None, tags: None, note: None };
    match s.app.ioc_add(&b.p, &b.meta, r, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/{raw}#indicators")).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `POST /incidents/{ref}/iocs/extract`: every indicator found in the text, kept.
pub(crate) async fn extract(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    match s.app.ioc_extract(&b.p, &b.meta, r, form.get("text").to_owned(), true).await {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/{raw}#indicators")).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `GET /indicators?type=&value=`: an indicator and the incidents that saw it.
pub(crate) async fn lookup(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let kind = q.parse("type", IocType::parse, "an indicator type");
    let value = q.str("value").unwrap_or_default();
    q.finish().map_err(|e| Failure::BadRequest(e.errors.first().map_or(e.detail.clone(), |f| format!("{}: {}", f.field, f.message))))?;
    let found = if value.trim().is_empty() { Vec::new() } else { s.app.ioc_lookup(&b.p, &b.meta, kind, &value).await? };
    let body = html! {
        h1 { "Indicator" }
        form.filters method="get" action="/indicators" role="search" {
            label for="value" { "Value" }
            input id="value" name="value" type="text" value=(value);
            button type="submit" { "Look up" }
        }
        @if found.is_empty() && !value.trim().is_empty() { p.empty { "No incident saw it." } }
        @for l in &found {
            section {
                h2 { (l.ioc.kind.as_str()) " " code { (l.ioc.value) } }
                p { "Seen in " (l.sightings.len()) " incidents:" }
                ul {
                    @for s in &l.sightings {
                        li { a href={ "/incidents/" (s.incident_id) } { "INC-" (s.incident_number) " " (s.incident_title) } }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page("Indicator", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
