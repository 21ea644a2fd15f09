//! Personal data breaches in the console: the GDPR Art. 33 deadline on an
//! incident's page (flag it, record the regulator's notification, unflag
//! it), and every breach of the organisation with where it stands.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::breaches::{Breach, BreachInput};
use ironcase_app::incidents::parse_ref;
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_domain::privacy::BreachState;
use ironcase_domain::{IncidentId, Timestamp};
use maud::{html, Markup};

use super::layout::{badge, next_link, page, reasons, respond, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

/// A `datetime-local` field's value (UTC): `2026-12-06T10:30`.
fn instant(form: &Form, field: &str, errs: &mut ironcase_domain::ValidationErrors) -> Option<Timestamp> {
    let v = form.get(field).trim();
    if v.is_empty() {
        return None;
    }
    let full = if v.len() == 16 { format!("{v}:00Z") } else { format!("{v}Z") };
    let t = Timestamp::parse_rfc3339(&full);
    if t.is_none() {
        errs.push(field, "give a date and time (UTC)");
    }
    t
}

fn local(t: Timestamp) -> String {
    t.to_rfc3339().get(..16).unwrap_or_default().to_owned()
}

/// The breach part of an incident's page.
pub(crate) fn section(incident: &str, breach: Option<&Breach>, may_update: bool, csrf: &str) -> Markup {
    html! {
        @if let Some(b) = breach {
            section.breach {
                h2 { "Personal data breach" }
                p { (badge("breach", b.state.as_str())) " "
                    "Aware since " (when(b.row.aware_at)) "; the regulator must be told by " strong { (when(b.deadline)) } " (GDPR Art. 33)." }
                @if let Some(n) = b.row.notified_at {
                    p { "Regulator told " (when(n)) @if let Some(r) = &b.row.reference { ", reference " (r) } "." }
                }
                @if may_update {
                    form method="post" action={ "/incidents/" (incident) "/breach" } {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="aware_at" value=(local(b.row.aware_at));
                        label for="breach-notified" { "Regulator told at (UTC)" }
                        input id="breach-notified" name="notified_at" type="datetime-local" value=[b.row.notified_at.map(local)];
                        label for="breach-reference" { "Their reference" }
                        input id="breach-reference" name="reference" type="text" maxlength="200" value=[b.row.reference.as_deref()];
                        button type="submit" { "Record" }
                    }
                    form method="post" action={ "/incidents/" (incident) "/breach/remove" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Not a personal data breach" }
                    }
                }
            }
        } @else if may_update {
            details.breach {
                summary { "Flag as a personal data breach" }
                form method="post" action={ "/incidents/" (incident) "/breach" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="breach-aware" { "Aware since (UTC; empty: now)" }
                    input id="breach-aware" name="aware_at" type="datetime-local";
                    button type="submit" { "Flag" }
                }
            }
        }
    }
}

/// `POST /incidents/{ref}/breach`: flags the incident, or records the
/// regulator's notification.
pub(crate) async fn put(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let mut errs = ironcase_domain::ValidationErrors::default();
    let input = BreachInput {
        aware_at: instant(&form, "aware_at", &mut errs),
        notified_at: instant(&form, "notified_at", &mut errs),
        reference: Some(form.get("reference").trim().to_owned()).filter(|r| !r.is_empty()),
    };
    let done = match errs.into_result() {
        Ok(()) => s.app.breach_put(&b.p, &b.meta, r, input).await.map(|_| ()),
        Err(e) => Err(e.into()),
    };
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/incidents/{raw}")).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `POST /incidents/{ref}/breach/remove`.
pub(crate) async fn remove(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    match s.app.breach_remove(&b.p, &b.meta, r).await {
        Ok(()) => Ok(Redirect::to(&format!("/incidents/{raw}")).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `GET /breaches`: every breach, the earliest known first.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let cursor = q.parse("cursor", parse_keyset::<IncidentId>, "a cursor");
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    let found = s.app.breach_list(&b.p, &b.meta, None, cursor, PageSize::default_of(50)).await?;
    let body = html! {
        h1 { "Personal data breaches" }
        p { "The regulator must be told within 72 hours of the organisation becoming aware (GDPR Art. 33)." }
        @if found.items.is_empty() { p.empty { "No incident is flagged as a personal data breach." } }
        @else {
            table {
                thead { tr { th scope="col" { "Incident" } th scope="col" { "Aware since" } th scope="col" { "Deadline" } th scope="col" { "State" } } }
                tbody {
                    @for x in &found.items {
                        tr {
                            td { a href={ "/incidents/" (x.row.incident_id) } { (x.row.incident_id) } }
                            td { (when(x.row.aware_at)) }
                            td { (when(x.deadline)) }
                            td { (badge("breach", x.state.as_str())) @if x.state == BreachState::Notified { @if let Some(n) = x.row.notified_at { " " (when(n)) } } }
                        }
                    }
                }
            }
        }
        (next_link("/breaches", found.next_cursor.as_deref()))
    };
    Ok(respond(StatusCode::OK, page("Breaches", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
