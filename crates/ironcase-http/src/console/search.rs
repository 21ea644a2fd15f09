//! `GET /search?q=`: the query language over the organisation's incidents,
//! with highlights and facets whose counts narrow the query when followed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ironcase_app::page::PageSize;
use maud::{html, Markup, PreEscaped};

use super::layout::{page, respond, Failure, Nav};
use super::session::Browser;
use crate::extract::QueryParams;
use crate::{ApiError, AppState};

const PER_PAGE: u32 = 25;

fn href(q: &str, offset: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("q", q);
    if offset > 0 {
        s.append_pair("offset", &offset.to_string());
    }
    format!("/search?{}", s.finish())
}

fn facet(q: &str, field: &str, counts: &std::collections::BTreeMap<String, i64>) -> Markup {
    html! {
        @if !counts.is_empty() {
            section.facet {
                h2 { (field) }
                ul {
                    @for (value, n) in counts {
                        @let narrowed = format!("{q} {field}:{value}");
                        li { a href=(href(narrowed.trim(), 0)) { (value.replace('_', " ")) } " " span.count { (n) } }
                    }
                }
            }
        }
    }
}

pub(crate) async fn search(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let text = q.str("q").unwrap_or_default();
    let offset = q.parse("offset", |v| v.parse::<i64>().ok().filter(|n| (0..=10_000).contains(n)), "0 to 10000").unwrap_or(0);
    let (mut error, mut results) = (q.finish().err().map(|e| e.detail), None);
    if error.is_none() && !text.trim().is_empty() {
        match s.app.search(&b.p, &b.meta, &text, offset, PageSize::default_of(PER_PAGE)).await {
            Ok(r) => results = Some(r),
            Err(e @ ironcase_app::AppError::InvalidQuery { .. }) => error = Some(ApiError::from(e).detail),
            Err(e) => return Err(e.into()),
        }
    }
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let body = html! {
        h1 { "Search" }
        form.search method="get" action="/search" role="search" {
            label for="q" { "Query" }
            input id="q" name="q" type="search" value=(text) placeholder="ransomware severity:high tag:finance";
            button type="submit" { "Search" }
        }
        p.hint { "Words match titles, descriptions and comments; narrow with " code { "severity:" } ", " code { "status:" } ", "
            code { "category:" } ", " code { "tag:" } ", " code { "assignee:me" } ", " code { "tlp:" } ", " code { "created:>2026-01-01" } ", " code { "ioc:" } "." }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        @if let Some(r) = &results {
            div.results {
                aside.facets aria-label="Facets" {
                    (facet(&text, "severity", &r.facets.severity))
                    (facet(&text, "status", &r.facets.status))
                    (facet(&text, "category", &r.facets.category))
                    (facet(&text, "tag", &r.facets.tag))
                }
                section.hits {
                    p { (r.total) " incidents" }
                    ol {
                        @for h in &r.hits {
                            li {
                                a href={ "/incidents/" (h.incident.id) } { "INC-" (h.incident.number) " " (h.incident.title) }
                                // The store escapes the text and adds only <mark>.
                                @if let Some(snippet) = &h.snippet { p.snippet { (PreEscaped(snippet)) } }
                            }
                        }
                    }
                    @if offset + i64::from(PER_PAGE) < r.total { p.pager { a rel="next" href=(href(&text, offset + i64::from(PER_PAGE))) { "Next page" } } }
                }
            }
        }
    };
    Ok(respond(status, page("Search", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
