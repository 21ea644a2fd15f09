//! Alerts: the queue of what detection tools sent (filtered, live as new
//! ones arrive), and one alert with its observables (and the incidents that
//! saw them), promoted into a new incident, merged into one, dismissed with
//! a reason, snoozed or acknowledged.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::alerts::Promotion;
use ironcase_app::incidents::parse_ref;
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::store::alert::Filter;
use ironcase_app::AppError;
use ironcase_domain::{AlertId, AlertStatus, Category, Permission, Severity, Timestamp};
use maud::html;

use super::layout::{badge, names, page, reasons, respond, select, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

const PER_PAGE: u32 = 50;

/// `GET /alerts?status=&severity=&source=&q=`.
pub(crate) async fn queue(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let status = q.parse("status", AlertStatus::parse, "an alert status");
    let severity = q.parse("severity", Severity::parse, "a severity");
    let source = q.str("source").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let text = q.str("q").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let (cursor, _) = q.page(parse_keyset::<AlertId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    let f = Filter { status, severity, source: source.clone(), text: text.clone(), ..Filter::default() };
    let alerts = s.app.alert_list(&b.p, &b.meta, f, cursor, PageSize::default_of(PER_PAGE)).await?;
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", status.map(AlertStatus::as_str)),
        ("severity", severity.map(Severity::as_str)),
        ("source", source.as_deref()),
        ("q", text.as_deref()),
    ] {
        if let Some(v) = v {
            kept.append_pair(k, v);
        }
    }
    let kept = kept.finish();
    let next = alerts.next_cursor.as_ref().map(|c| {
        let mut pairs = form_urlencoded::Serializer::new(kept.clone());
        pairs.append_pair("cursor", c);
        format!("/alerts?{}", pairs.finish())
    });
    let body = html! {
        h1 { "Alerts" }
        form.filters method="get" action="/alerts" role="search" {
            (select("status", "Status", &names(AlertStatus::ALL, AlertStatus::as_str), status.map(AlertStatus::as_str), Some("any")))
            (select("severity", "Severity", &names(Severity::ALL, Severity::as_str), severity.map(Severity::as_str), Some("any")))
            label for="source" { "Source" }
            input id="source" name="source" type="text" value=(source.as_deref().unwrap_or(""));
            label for="q" { "Title has" }
            input id="q" name="q" type="search" value=(text.as_deref().unwrap_or(""));
            button type="submit" { "Filter" }
        }
        div id="alerts" data-live="/live" {
            @if alerts.items.is_empty() { p.empty { "No alerts match." } } @else {
                table.queue {
                    thead { tr { th scope="col" { "Title" } th scope="col" { "Source" } th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Seen" } th scope="col" { "Last" } } }
                    tbody {
                        @for a in &alerts.items {
                            tr {
                                td { a href={ "/alerts/" (a.id) } { (a.title) } }
                                td { (a.source) }
                                td { (badge("severity", a.severity.as_str())) }
                                td { (badge("status", a.status.as_str())) }
                                td { (a.count) "×" }
                                td { time datetime=(a.last_seen.to_rfc3339()) { (when(a.last_seen)) } }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = next { p.pager { a rel="next" href=(href) { "Next page" } } }
        }
    };
    Ok(respond(StatusCode::OK, page("Alerts", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

async fn alert_page(s: &AppState, b: &Browser, id: AlertId, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let v = s.app.alert_get(&b.p, &b.meta, id).await?;
    let a = &v.alert;
    let open = !matches!(a.status, AlertStatus::Promoted);
    let may_promote = open && b.p.has(Permission::IncidentCreate);
    let may_triage = open && b.p.has(Permission::IncidentUpdate);
    let raw = a
        .raw
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|r| serde_json::to_string_pretty(&r).ok());
    let body = html! {
        article.alert {
            header {
                p.number { (a.source) " · " code { (a.source_ref) } " · " (a.kind) }
                h1 { (a.title) }
                p.badges {
                    (badge("severity", a.severity.as_str())) " " (badge("status", a.status.as_str())) " " (badge("tlp", a.tlp.as_str()))
                    " · seen " (a.count) "×, last " (when(a.last_seen))
                }
                @if let Some(inc) = a.incident_id { p { "Promoted into " a href={ "/incidents/" (inc) } { "its incident" } "." } }
                @if let Some(r) = &a.dismiss_reason { p { "Dismissed: " (r) } }
                @if let (AlertStatus::Snoozed, Some(u)) = (a.status, a.snoozed_until) { p { "Snoozed until " (when(u)) "." } }
            }
            @for e in &errors { p.error role="alert" { (e) } }
            @if !a.description.is_empty() { div.text { (a.description) } }
            section.observables {
                h2 { "Observables" }
                @if a.observables.as_array().is_none_or(|o| o.is_empty()) { p.empty { "None." } } @else {
                    ul {
                        @for o in a.observables.as_array().into_iter().flatten() {
                            @let value = o["value"].as_str().unwrap_or("");
                            li {
                                span.badge { (o["type"].as_str().unwrap_or("")) } " " code { (value) }
                                @if let Some(seen) = v.seen_in.iter().find(|x| x.value == value) {
                                    " · seen in "
                                    @for (i, (id, n, title)) in seen.incidents.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        a href={ "/incidents/" (id) } { "INC-" (n) " " (title) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if may_promote {
                form.promote method="post" action={ "/alerts/" (a.id) "/promote" } {
                    h2 { "Promote into a new incident" }
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="title" { "Title" }
                    input id="title" name="title" type="text" value=(a.title) maxlength="300";
                    (select("category", "Category", &names(Category::ALL, Category::as_str), Some("other"), None))
                    button type="submit" { "Promote" }
                }
            }
            @if may_triage {
                form.merge method="post" action={ "/alerts/" (a.id) "/promote" } {
                    h2 { "Or add it to an incident" }
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="incident" { "Incident (INC-n or its id)" }
                    input id="incident" name="incident" type="text" required;
                    button type="submit" { "Merge" }
                }
                form.dismiss method="post" action={ "/alerts/" (a.id) "/dismiss" } {
                    h2 { "Or dismiss it" }
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="reason" { "Reason" }
                    input id="reason" name="reason" type="text" required maxlength="1000";
                    button type="submit" { "Dismiss" }
                }
                form.snooze method="post" action={ "/alerts/" (a.id) "/snooze" } {
                    input type="hidden" name="csrf" value=(b.csrf);
                    (select("hours", "Snooze for (hours)", &["1", "4", "24", "72", "168"], Some("24"), None))
                    button type="submit" { "Snooze" }
                }
                @if a.status != AlertStatus::Acknowledged {
                    form.acknowledge method="post" action={ "/alerts/" (a.id) "/acknowledge" } {
                        input type="hidden" name="csrf" value=(b.csrf);
                        button type="submit" { "I am looking at it" }
                    }
                }
            }
            @if let Some(raw) = raw { details.raw { summary { "As the source sent it" } pre { code { (raw) } } } }
        }
    };
    Ok(respond(status, page(&a.title, Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

fn alert_id(raw: &str) -> Result<AlertId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /alerts/{id}`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    alert_page(&s, &b, alert_id(&raw)?, Vec::new(), StatusCode::OK).await
}

/// A refusal a person can fix, on the alert's page; any other, its own page.
async fn refused(s: &AppState, b: &Browser, id: AlertId, e: AppError) -> Result<Response, Failure> {
    match e {
        e @ (AppError::Validation(_) | AppError::Conflict { .. } | AppError::QuotaExceeded { .. }) => {
            let (status, errors) = sentences(e);
            alert_page(s, b, id, errors, status).await
        }
        e => Err(b.failure(e, &format!("/alerts/{id}"))),
    }
}

/// `POST /alerts/{id}/promote`: into a new incident (`title`, `category`),
/// or into an existing one (`incident`); to the incident's page.
pub(crate) async fn promote(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = alert_id(&raw)?;
    let how = match form.opt("incident") {
        Some(r) => match parse_ref(r.trim()) {
            Some(r) => Promotion { incident: Some(r), ..Promotion::default() },
            None => {
                return refused(&s, &b, id, ironcase_domain::ValidationErrors::one("incident", "is not an incident's number or id").into())
                    .await
            }
        },
        None => {
            let category = match form.opt("category") {
                None => None,
                Some(c) => Some(Category::parse(c).ok_or_else(|| Failure::BadRequest("choose a category from the list".into()))?),
            };
            Promotion { title: form.opt("title").map(str::to_owned), category, ..Promotion::default() }
        }
    };
    match s.app.alert_promote(&b.p, &b.meta, id, how).await {
        Ok((_, incident)) => Ok(Redirect::to(&format!("/incidents/{}", incident.id)).into_response()),
        Err(AppError::NotFound) if form.opt("incident").is_some() => {
            refused(&s, &b, id, ironcase_domain::ValidationErrors::one("incident", "is not an incident you can see").into()).await
        }
        Err(e) => refused(&s, &b, id, e).await,
    }
}

/// `POST /alerts/{id}/dismiss`.
pub(crate) async fn dismiss(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = alert_id(&raw)?;
    match s.app.alert_dismiss(&b.p, &b.meta, id, form.get("reason")).await {
        Ok(_) => Ok(Redirect::to("/alerts").into_response()),
        Err(e) => refused(&s, &b, id, e).await,
    }
}

/// `POST /alerts/{id}/snooze` for `hours`.
pub(crate) async fn snooze(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = alert_id(&raw)?;
    let hours: i64 = form
        .get("hours")
        .parse()
        .ok()
        .filter(|h| (1..=24 * 90).contains(h))
        .ok_or_else(|| Failure::BadRequest("choose how long".into()))?;
    let until = Timestamp(s.app.clock().now().0 + hours * 3600 * 1000);
    match s.app.alert_snooze(&b.p, &b.meta, id, until).await {
        Ok(_) => Ok(Redirect::to("/alerts").into_response()),
        Err(e) => refused(&s, &b, id, e).await,
    }
}

/// `POST /alerts/{id}/acknowledge`.
pub(crate) async fn acknowledge(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = alert_id(&raw)?;
    match s.app.alert_acknowledge(&b.p, &b.meta, id).await {
        Ok(_) => Ok(Redirect::to(&format!("/alerts/{id}")).into_response()),
        Err(e) => refused(&s, &b, id, e).await,
    }
}
