//! Retention in the console: the organisation's policies (days per kind,
//! empty for forever), what they would remove now, applying them now, and
//! the legal holds; and the hold on an incident's page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::incidents::parse_ref;
use ironcase_app::page::PageSize;
use ironcase_app::retention::{Policy, Tally};
use ironcase_app::store::retention::HoldRow;
use ironcase_app::AppError;
use ironcase_domain::retention::RetentionKind;
use maud::{html, Markup};

use super::layout::{page, respond, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::AppState;

fn label(k: RetentionKind) -> &'static str {
    match k {
        RetentionKind::ClosedIncidents => "Closed incidents (with their comments, timeline, indicators' sightings and files)",
        RetentionKind::Evidence => "Evidence files (the record of each stays)",
        RetentionKind::Alerts => "Alerts",
        RetentionKind::Events => "Timeline and outbox events",
        RetentionKind::Audit => "Audit entries (at least 90 days; up to a signed checkpoint)",
        RetentionKind::Sessions => "Ended sessions",
    }
}

/// The form's days per kind: a number, or empty for forever.
fn policies_of(form: &Form) -> Result<Vec<Policy>, AppError> {
    let mut errs = ironcase_domain::ValidationErrors::default();
    let mut out = Vec::new();
    for k in RetentionKind::ALL {
        let v = form.get(k.as_str()).trim();
        let days = if v.is_empty() {
            None
        } else if let Ok(d) = v.parse::<i64>() {
            Some(d)
        } else {
            errs.push(k.as_str(), "give a whole number of days, or leave it empty to keep forever");
            continue;
        };
        out.push(Policy { kind: *k, days });
    }
    errs.into_result()?;
    Ok(out)
}

async fn retention_page(
    s: &AppState,
    b: &Browser,
    shown: Option<Vec<Policy>>,
    tallies: Option<(&str, Vec<Tally>)>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let policies = match shown {
        Some(p) => p,
        None => s.app.retention_policies(&b.p, &b.meta).await?,
    };
    let holds = s.app.legal_holds(&b.p, &b.meta, None, PageSize::default_of(50)).await?;
    let body = html! {
        h1 { "Retention" }
        @for e in &errors { p.error role="alert" { (e) } }
        p { "How long the organisation keeps each kind of its data. A job applies these every few minutes; incidents under a legal hold are never removed." }
        form method="post" action="/settings/retention" {
            input type="hidden" name="csrf" value=(b.csrf);
            @for p in &policies {
                label for={ "keep-" (p.kind.as_str()) } { (label(p.kind)) ": days kept (empty: forever)" }
                input id={ "keep-" (p.kind.as_str()) } name=(p.kind.as_str()) type="number" min=(p.kind.days().start()) max=(p.kind.days().end())
                    value=[p.days];
            }
            button type="submit" { "Save" }
            " "
            button type="submit" formaction="/settings/retention/preview" { "Preview what would go" }
        }
        @if let Some((title, tallies)) = &tallies {
            section.tallies role="status" {
                h2 { (title) }
                table {
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Older than" } th scope="col" { "Count" } } }
                    tbody {
                        @for t in tallies {
                            tr { td { (t.kind.as_str().replace('_', " ")) } td { (t.cutoff.map(when).unwrap_or_else(|| "kept forever".into())) } td { (t.count) } }
                        }
                    }
                }
            }
        }
        form method="post" action="/settings/retention/run" {
            input type="hidden" name="csrf" value=(b.csrf);
            button type="submit" { "Apply the policies now" }
        }
        section {
            h2 { "Legal holds" }
            @if holds.items.is_empty() { p.empty { "No incident is held." } }
            ul {
                @for h in &holds.items {
                    li { a href={ "/incidents/" (h.incident_id) } { (h.incident_id) } " — " (h.reason) " (since " (when(h.set_at)) ")" }
                }
            }
        }
    };
    Ok(respond(status, page("Retention", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

async fn refused(s: &AppState, b: &Browser, shown: Option<Vec<Policy>>, e: AppError) -> Result<Response, Failure> {
    match e {
        e @ AppError::Validation(_) => {
            let (status, errors) = sentences(e);
            retention_page(s, b, shown, None, errors, status).await
        }
        e => Err(b.failure(e, "/settings/retention")),
    }
}

/// `GET /settings/retention`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    retention_page(&s, &b, None, None, Vec::new(), StatusCode::OK).await
}

/// `POST /settings/retention`: saves every kind as typed.
pub(crate) async fn save(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let policies = match policies_of(&form) {
        Ok(p) => p,
        Err(e) => return refused(&s, &b, None, e).await,
    };
    match s.app.set_retention(&b.p, &b.meta, policies.clone()).await {
        Ok(saved) => retention_page(&s, &b, Some(saved), None, Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, Some(policies), e).await,
    }
}

/// `POST /settings/retention/preview`: what the typed policies would remove now.
pub(crate) async fn preview(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let policies = match policies_of(&form) {
        Ok(p) => p,
        Err(e) => return refused(&s, &b, None, e).await,
    };
    match s.app.retention_preview(&b.p, &b.meta, policies.clone()).await {
        Ok(t) => retention_page(&s, &b, Some(policies), Some(("Would go now (nothing changed)", t)), Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, Some(policies), e).await,
    }
}

/// `POST /settings/retention/run`.
pub(crate) async fn run(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.retention_run(&b.p, &b.meta).await {
        Ok(t) => retention_page(&s, &b, None, Some(("Removed", t)), Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, None, e).await,
    }
}

/// The hold on an incident's page: shown to all, placed and lifted by
/// those who manage the organisation.
pub(crate) fn hold_section(incident: &str, hold: Option<&HoldRow>, manage: bool, csrf: &str) -> Markup {
    html! {
        @if let Some(h) = hold {
            p.hold role="note" { strong { "Legal hold" } ": " (h.reason) " (since " (when(h.set_at)) "). No retention policy removes this incident." }
            @if manage {
                form method="post" action={ "/incidents/" (incident) "/legal-hold/lift" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Lift the legal hold" }
                }
            }
        } @else if manage {
            details.hold {
                summary { "Place a legal hold" }
                form method="post" action={ "/incidents/" (incident) "/legal-hold" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="hold-reason" { "Why (a matter, a request)" }
                    input id="hold-reason" name="reason" type="text" required maxlength="500";
                    button type="submit" { "Hold" }
                }
            }
        }
    }
}

/// `POST /incidents/{ref}/legal-hold`.
pub(crate) async fn hold(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    match s.app.legal_hold_put(&b.p, &b.meta, r, form.get("reason")).await {
        Ok(h) => Ok(Redirect::to(&format!("/incidents/{}", h.incident_id)).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `POST /incidents/{ref}/legal-hold/lift`.
pub(crate) async fn lift(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    match s.app.legal_hold_remove(&b.p, &b.meta, r).await {
        Ok(()) => Ok(Redirect::to(&format!("/incidents/{raw}")).into_response()),
        Err(e) => super::incidents::refused(&s, &b, &raw, e, String::new()).await,
    }
}
