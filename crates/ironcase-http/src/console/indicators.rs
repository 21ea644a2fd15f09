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
use ironcase_app::AppError;
use ironcase_domain::ioc::IocType;
use ironcase_domain::IocId;
use maud::{html, Markup};

use super::layout::{badge, more, page, respond, select, sentences, when, Failure, Nav, Ref};
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
    lookup_page(&s, &b, kind, &value, Vec::new(), StatusCode::OK).await
}

/// The indicators of that value, each with the incidents that saw it, the
/// analyzers' reports, and a button that sends it to them.
async fn lookup_page(
    s: &AppState,
    b: &Browser,
    kind: Option<IocType>,
    value: &str,
    notes: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let found = if value.trim().is_empty() { Vec::new() } else { s.app.ioc_lookup(&b.p, &b.meta, kind, value).await? };
    let mut reports = Vec::with_capacity(found.len());
    for l in &found {
        reports.push(s.app.ioc_reports(&b.p, &b.meta, l.ioc.id).await?);
    }
    let body = html! {
        h1 { "Indicator" }
        form.filters method="get" action="/indicators" role="search" {
            label for="value" { "Value" }
            input id="value" name="value" type="text" value=(value);
            button type="submit" { "Look up" }
        }
        @for n in &notes { p.notice role="status" { (n) } }
        @if found.is_empty() && !value.trim().is_empty() { p.empty { "No incident saw it." } }
        @for (l, reports) in found.iter().zip(&reports) {
            section {
                h2 { (l.ioc.kind.as_str()) " " code { (l.ioc.value) } }
                p { "Seen in " (l.sightings.len()) " incidents:" }
                ul {
                    @for s in &l.sightings {
                        li { a href={ "/incidents/" (s.incident_id) } { "INC-" (s.incident_number) " " (s.incident_title) } }
                    }
                }
                h3 { "Analysis" }
                @if reports.is_empty() { p.empty { "No reports yet." } } @else {
                    ul.reports {
                        @for r in reports {
                            li {
                                (badge("verdict", &r.verdict)) " " strong { (r.analyzer_name) } " · " (when(r.at))
                                @if !r.summary.is_empty() { " — " (r.summary) }
                                @if let Some(link) = &r.link { " " a href=(link) rel="noopener noreferrer" target="_blank" { "details" } }
                            }
                        }
                    }
                }
                form.inline method="post" action={ "/indicators/" (l.ioc.id) "/analyze" } {
                    input type="hidden" name="csrf" value=(b.csrf);
                    button type="submit" { "Send to the analyzers" }
                }
            }
        }
    };
    Ok(respond(status, page("Indicator", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `POST /indicators/{id}/analyze`: sent to every analyzer that may have
/// it; the indicator's page says so, or why not.
pub(crate) async fn analyze(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: IocId = raw.parse().map_err(|_| Failure::NotFound)?;
    let (kind, value) = s.app.ioc_identity(&b.p, &b.meta, id).await?;
    let note = match s.app.ioc_analyze(&b.p, &b.meta, id, None).await {
        Ok(q) => format!("Sent to {} analyzer(s); their reports appear here when they answer.", q.len()),
        Err(e @ AppError::Validation(_)) => sentences(e).1.join(" "),
        Err(e) => return Err(b.failure(e, &lookup_href(kind, &value))),
    };
    lookup_page(&s, &b, Some(kind), &value, vec![note], StatusCode::OK).await
}
