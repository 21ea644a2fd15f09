//! The organisation's webhooks (owners and admins, plan feature
//! `webhooks`): its endpoints, a new one (the secret shown once, with a copy
//! button), and each endpoint's attempts, dead letters (replayed one at a
//! time or all at once), a test message, a new secret, on and off.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::store::webhook::{AttemptRow, MessageRow};
use ironcase_app::webhooks::{Family, NewWebhook, WebhookChange};
use ironcase_app::AppError;
use ironcase_domain::{MessageId, WebhookId};
use maud::{html, Markup};

use super::layout::{badge, next_link, page, reasons, respond, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

const PER_PAGE: u32 = 50;

fn shown_once(secret: &Option<String>) -> Markup {
    html! {
        @if let Some(secret) = secret {
            section.created role="status" {
                h2 { "The signing secret" }
                p { "Copy it now: it is shown this once. Receivers verify each delivery with it (Standard Webhooks)." }
                code id="new-secret" { (secret) }
                " " button type="button" data-copy="new-secret" { "Copy" }
            }
        }
    }
}

async fn list_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, WebhookId)>,
    secret: Option<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let hooks = s.app.webhook_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let types = ironcase_app::live::EVENT_TYPES;
    let body = html! {
        h1 { "Webhooks" }
        (shown_once(&secret))
        @for e in &errors { p.error role="alert" { (e) } }
        @if hooks.items.is_empty() { p.empty { "No endpoints yet." } } @else {
            table.webhooks {
                thead { tr { th scope="col" { "Address" } th scope="col" { "Events" } th scope="col" { "State" } } }
                tbody {
                    @for w in &hooks.items {
                        tr {
                            td { a href={ "/webhooks/" (w.id) } { (w.url) } }
                            td { (w.event_types.join(", ")) }
                            td {
                                @if !w.enabled { "off" @if let Some(r) = &w.disabled_reason { ": " (r) } }
                                @else if let Some(since) = w.failing_since { "failing since " (when(since)) }
                                @else { "on" }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/webhooks", hooks.next_cursor.as_deref()))
        form.webhook-new method="post" action="/webhooks" {
            h2 { "New endpoint" }
            input type="hidden" name="csrf" value=(b.csrf);
            label for="url" { "Address (https)" }
            input id="url" name="url" type="url" required maxlength="2000" placeholder="https://soar.example.com/ironcase";
            label for="description" { "Description" }
            input id="description" name="description" type="text" maxlength="500";
            fieldset {
                legend { "Events" }
                label.check { input type="checkbox" name="event" value="*" checked; " every event" }
                @for t in types { label.check { input type="checkbox" name="event" value=(t); " " (t) } }
            }
            button type="submit" { "Add endpoint" }
        }
    };
    Ok(respond(status, page("Webhooks", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /webhooks?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<WebhookId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    list_page(&s, &b, cursor, None, Vec::new(), StatusCode::OK).await
}

/// `POST /webhooks`: the new endpoint's secret, shown once.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let mut types: Vec<String> = form.all("event").into_iter().map(str::to_owned).collect();
    if types.iter().any(|t| t == "*") {
        types = vec!["*".into()];
    }
    let input = NewWebhook {
        url: form.get("url").trim().to_owned(),
        description: form.opt("description").map(str::to_owned),
        event_types: types,
        enabled: Some(true),
    };
    match s.app.webhook_create(&b.p, &b.meta, input).await {
        Ok(w) => list_page(&s, &b, None, Some(w.secret), Vec::new(), StatusCode::CREATED).await,
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            list_page(&s, &b, None, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/webhooks")),
    }
}

async fn endpoint_page(
    s: &AppState,
    b: &Browser,
    id: WebhookId,
    secret: Option<String>,
    notes: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let w = s.app.webhook_get(&b.p, &b.meta, id).await?;
    let attempts = s.app.webhook_attempts(&b.p, &b.meta, Family::Webhooks, id, None, None, PageSize::default_of(50)).await?;
    let dead = s.app.webhook_messages(&b.p, &b.meta, Family::Webhooks, id, "failed", None, PageSize::default_of(50)).await?;
    let body = html! {
        h1 { (w.url) }
        p { (w.description) }
        p { "Events: " (w.event_types.join(", ")) }
        (shown_once(&secret))
        @for n in &notes { p.notice role="status" { (n) } }
        @if let Some(r) = &w.disabled_reason { p.error role="alert" { "Turned off: " (r) } }
        div.actions {
            form.inline method="post" action={ "/webhooks/" (w.id) "/enabled" } {
                input type="hidden" name="csrf" value=(b.csrf);
                input type="hidden" name="enabled" value=(if w.enabled { "0" } else { "1" });
                button type="submit" { @if w.enabled { "Turn off" } @else { "Turn on" } }
            }
            form.inline method="post" action={ "/webhooks/" (w.id) "/test" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Send a test message" }
            }
            form.inline method="post" action={ "/webhooks/" (w.id) "/rotate-secret" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "New secret" }
            }
            form.inline method="post" action={ "/webhooks/" (w.id) "/delete" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Delete" }
            }
        }
        (dead_letters(&format!("/webhooks/{}", w.id), &dead.items, &b.csrf))
        (attempts_table(&attempts.items))
        p { a href="/webhooks" { "All endpoints" } }
    };
    Ok(respond(status, page("Webhook", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// An endpoint's failed messages (of any family), each replayable, and
/// all at once; `base` is the endpoint's page.
pub(super) fn dead_letters(base: &str, dead: &[MessageRow], csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Failed messages" }
            @if dead.is_empty() { p.empty { "None." } } @else {
                form method="post" action={ (base) "/replay" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Send every failed message again" }
                }
                ul.dead {
                    @for m in dead {
                        li {
                            code { (m.id) } " " (m.kind) " · " (m.attempts) " attempts · " (when(m.created_at))
                            form.inline method="post" action={ (base) "/replay" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="message" value=(m.id);
                                button type="submit" aria-label={ "Send " (m.id) " again" } { "Send again" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An endpoint's attempts, newest first.
pub(super) fn attempts_table(attempts: &[AttemptRow]) -> Markup {
    html! {
        section {
            h2 { "Attempts" }
            @if attempts.is_empty() { p.empty { "None yet." } } @else {
                table.attempts {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Message" } th scope="col" { "Answer" } th scope="col" { "Time" } } }
                    tbody {
                        @for a in attempts {
                            tr {
                                td { (when(a.at)) }
                                td { code { (a.message_id) } }
                                td {
                                    (badge("outcome", if a.success { "delivered" } else { "failed" })) " "
                                    @if let Some(c) = a.status_code { (c) " " } (a.error.as_deref().unwrap_or(""))
                                }
                                td { (a.latency_ms) " ms" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `message` from a replay form: one message, or (absent) every failed one.
pub(super) fn replayed(form: &Form) -> Result<Option<MessageId>, Failure> {
    match form.opt("message") {
        Some(m) => m.parse::<MessageId>().map(Some).map_err(|_| Failure::NotFound),
        None => Ok(None),
    }
}

fn hook_id(raw: &str) -> Result<WebhookId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /webhooks/{id}`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    endpoint_page(&s, &b, hook_id(&raw)?, None, Vec::new(), StatusCode::OK).await
}

/// `POST /webhooks/{id}/enabled` (`enabled` 1 or 0).
pub(crate) async fn enabled(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = hook_id(&raw)?;
    let change = WebhookChange { enabled: Some(form.get("enabled") == "1"), ..WebhookChange::default() };
    s.app.webhook_update(&b.p, &b.meta, id, change).await.map_err(|e| b.failure(e, &format!("/webhooks/{id}")))?;
    Ok(Redirect::to(&format!("/webhooks/{id}")).into_response())
}

/// `POST /webhooks/{id}/test`.
pub(crate) async fn test(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = hook_id(&raw)?;
    let m = s.app.webhook_test(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, &format!("/webhooks/{id}")))?;
    endpoint_page(&s, &b, id, None, vec![format!("Test message {m} is on its way.")], StatusCode::OK).await
}

/// `POST /webhooks/{id}/rotate-secret`: the new secret, shown once.
pub(crate) async fn rotate(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = hook_id(&raw)?;
    let w = s.app.webhook_rotate(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, &format!("/webhooks/{id}")))?;
    let note = "The old secret still signs, beside the new one, for 24 hours.".to_owned();
    endpoint_page(&s, &b, id, Some(w.secret), vec![note], StatusCode::OK).await
}

/// `POST /webhooks/{id}/replay`: one message (`message`), or every failed one.
pub(crate) async fn replay(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = hook_id(&raw)?;
    let message = replayed(&form)?;
    let n = s
        .app
        .webhook_replay(&b.p, &b.meta, Family::Webhooks, id, message, None)
        .await
        .map_err(|e| b.failure(e, &format!("/webhooks/{id}")))?;
    endpoint_page(&s, &b, id, None, vec![format!("{n} message(s) sent again.")], StatusCode::OK).await
}

/// `POST /webhooks/{id}/delete`.
pub(crate) async fn delete(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = hook_id(&raw)?;
    s.app.endpoint_delete(&b.p, &b.meta, Family::Webhooks, id).await.map_err(|e| b.failure(e, "/webhooks"))?;
    Ok(Redirect::to("/webhooks").into_response())
}
