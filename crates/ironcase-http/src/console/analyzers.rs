//! Analyzers in the console (owners and admins, plan feature `webhooks`):
//! the list, a new one (its signing secret shown once), and each one's
//! state, attempts and failed messages. Their reports are shown on the
//! indicator's page, which sends an indicator to them on demand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::analyzers::{AnalyzerChange, AnalyzerConfig, NewAnalyzer};
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::webhooks::Family;
use ironcase_app::AppError;
use ironcase_domain::ioc::IocType;
use ironcase_domain::{Tlp, WebhookId};
use maud::html;

use super::layout::{next_link, page, reasons, respond, select, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use super::webhooks::{attempts_table, dead_letters, replayed};
use crate::extract::QueryParams;
use crate::AppState;

const PER_PAGE: u32 = 50;

async fn list_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, WebhookId)>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let analyzers = s.app.analyzer_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let tlps: Vec<&str> = Tlp::ALL.iter().map(|t| t.as_str()).collect();
    let body = html! {
        h1 { "Analyzers" }
        p { "Services that look at an indicator and answer a verdict. Each receives indicators signed like a webhook, "
            "never one marked above its ceiling." }
        @for e in &errors { p.error role="alert" { (e) } }
        @if analyzers.items.is_empty() { p.empty { "No analyzers yet." } } @else {
            table.analyzers {
                thead { tr { th scope="col" { "Analyzer" } th scope="col" { "By itself for" } th scope="col" { "Ceiling" } th scope="col" { "State" } } }
                tbody {
                    @for a in &analyzers.items {
                        tr {
                            td { a href={ "/analyzers/" (a.row.id) } { (a.row.description) } }
                            td { (a.config.ioc_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { (a.config.ceiling().as_str()) }
                            td {
                                @if !a.row.enabled { "off" @if let Some(r) = &a.row.disabled_reason { ": " (r) } }
                                @else if let Some(since) = a.row.failing_since { "failing since " (when(since)) }
                                @else { "on" }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/analyzers", analyzers.next_cursor.as_deref()))
        form.analyzer-new method="post" action="/analyzers" {
            h2 { "New analyzer" }
            input type="hidden" name="csrf" value=(b.csrf);
            label for="name" { "Name" }
            input id="name" name="name" type="text" required maxlength="200";
            label for="url" { "Address (https)" }
            input id="url" name="url" type="url" required maxlength="2000" placeholder="https://enrich.example.com/ironcase";
            fieldset {
                legend { "Send new indicators of these types by themselves" }
                @for t in IocType::ALL { label.check { input type="checkbox" name="type" value=(t.as_str()); " " (t.as_str()) } }
            }
            (select("max_tlp", "Never send indicators marked above", &tlps, Some("amber"), None))
            button type="submit" { "Add analyzer" }
        }
    };
    Ok(respond(status, page("Analyzers", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /analyzers?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<WebhookId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    list_page(&s, &b, cursor, Vec::new(), StatusCode::OK).await
}

/// `POST /analyzers`: the new analyzer's page, with its secret shown once.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let config = AnalyzerConfig {
        ioc_types: form.all("type").into_iter().filter_map(IocType::parse).collect(),
        max_tlp: Tlp::parse(form.get("max_tlp")),
    };
    let input =
        NewAnalyzer { name: form.get("name").trim().to_owned(), url: form.get("url").trim().to_owned(), config, enabled: Some(true) };
    match s.app.analyzer_create(&b.p, &b.meta, input).await {
        Ok(a) => analyzer_page(&s, &b, a.analyzer.row.id, Some(a.secret), Vec::new(), StatusCode::CREATED).await,
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            list_page(&s, &b, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/analyzers")),
    }
}

async fn analyzer_page(
    s: &AppState,
    b: &Browser,
    id: WebhookId,
    secret: Option<String>,
    notes: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let a = s.app.analyzer_get(&b.p, &b.meta, id).await?;
    let attempts = s.app.webhook_attempts(&b.p, &b.meta, Family::Analyzers, id, None, None, PageSize::default_of(50)).await?;
    let dead = s.app.webhook_messages(&b.p, &b.meta, Family::Analyzers, id, "failed", None, PageSize::default_of(50)).await?;
    let base = format!("/analyzers/{id}");
    let body = html! {
        h1 { (a.row.description) }
        p { (a.row.url) " · nothing marked above " (a.config.ceiling().as_str()) }
        @if let Some(secret) = &secret {
            section.created role="status" {
                h2 { "The signing secret" }
                p { "Copy it now: it is shown this once. The analyzer verifies each request with it (Standard Webhooks)." }
                code id="new-secret" { (secret) }
                " " button type="button" data-copy="new-secret" { "Copy" }
            }
        }
        @for n in &notes { p.notice role="status" { (n) } }
        @if let Some(r) = &a.row.disabled_reason { p.error role="alert" { "Turned off: " (r) } }
        div.actions {
            form.inline method="post" action={ (base) "/enabled" } {
                input type="hidden" name="csrf" value=(b.csrf);
                input type="hidden" name="enabled" value=(if a.row.enabled { "0" } else { "1" });
                button type="submit" { @if a.row.enabled { "Turn off" } @else { "Turn on" } }
            }
            form.inline method="post" action={ (base) "/delete" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Delete" }
            }
        }
        (dead_letters(&base, &dead.items, &b.csrf))
        (attempts_table(&attempts.items))
        p { a href="/analyzers" { "All analyzers" } }
    };
    Ok(respond(status, page("Analyzer", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

fn analyzer_id(raw: &str) -> Result<WebhookId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /analyzers/{id}`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    analyzer_page(&s, &b, analyzer_id(&raw)?, None, Vec::new(), StatusCode::OK).await
}

/// `POST /analyzers/{id}/enabled` (`enabled` 1 or 0).
pub(crate) async fn enabled(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = analyzer_id(&raw)?;
    let change = AnalyzerChange { enabled: Some(form.get("enabled") == "1"), ..AnalyzerChange::default() };
    s.app.analyzer_update(&b.p, &b.meta, id, change).await.map_err(|e| b.failure(e, &format!("/analyzers/{id}")))?;
    Ok(Redirect::to(&format!("/analyzers/{id}")).into_response())
}

/// `POST /analyzers/{id}/replay`: one message (`message`), or every failed one.
pub(crate) async fn replay(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = analyzer_id(&raw)?;
    let message = replayed(&form)?;
    let n = s
        .app
        .webhook_replay(&b.p, &b.meta, Family::Analyzers, id, message, None)
        .await
        .map_err(|e| b.failure(e, &format!("/analyzers/{id}")))?;
    analyzer_page(&s, &b, id, None, vec![format!("{n} message(s) sent again.")], StatusCode::OK).await
}

/// `POST /analyzers/{id}/delete`.
pub(crate) async fn delete(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = analyzer_id(&raw)?;
    s.app.endpoint_delete(&b.p, &b.meta, Family::Analyzers, id).await.map_err(|e| b.failure(e, "/analyzers"))?;
    Ok(Redirect::to("/analyzers").into_response())
}
