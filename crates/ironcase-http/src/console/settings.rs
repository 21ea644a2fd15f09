//! The organisation's settings: its plan's quotas as bars of what is used,
//! the features, and (for owners and admins) the policies: a second factor
//! for everyone, session timeouts, and the address allow-list (which, like
//! the API, refuses to lock out the address in use unless confirmed).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ironcase_app::store::org::SessionPolicy;
use ironcase_app::AppError;
use ironcase_domain::Permission;
use maud::html;

use super::layout::{page, respond, sentences, Failure, Nav};
use super::session::{Browser, Form};
use crate::AppState;

async fn settings_page(
    s: &AppState,
    b: &Browser,
    notes: Vec<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let usage = s.app.usage(&b.p, &b.meta).await?;
    let manage = b.p.has(Permission::OrganizationManage);
    let policies = if manage {
        Some((
            s.app.mfa_policy(&b.p, &b.meta).await?,
            s.app.session_policy(&b.p, &b.meta).await?,
            s.app.ip_allowlist(&b.p, &b.meta).await?.ranges(),
            s.app.parent_access(&b.p, &b.meta).await?,
            s.app.audit_reads(&b.p, &b.meta).await?,
        ))
    } else {
        None
    };
    let body = html! {
        h1 { "Organisation" }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        section {
            h2 { "Plan: " (usage.plan.as_str()) }
            @for q in &usage.quotas {
                @match (q.limit, q.used) {
                    (Some(limit), Some(used)) => div.quota {
                        label for={ "quota-" (q.quota.as_str()) } { (q.quota.as_str().replace('_', " ")) ": " (used) " of " (limit) }
                        meter id={ "quota-" (q.quota.as_str()) } min="0" max=(limit) low=(limit * 8 / 10) high=(limit * 9 / 10) optimum="0" value=(used) {}
                    },
                    (None, Some(used)) => p.quota { (q.quota.as_str().replace('_', " ")) ": " (used) " (no limit)" },
                    _ => {}
                }
            }
            p { "Features: "
                @for (f, on) in &usage.features { span class={ "badge " @if *on { "on" } @else { "off" } } { (f.as_str().replace('_', " ")) } " " } }
        }
        @if let Some((mfa, timeouts, ranges, parent, reads)) = &policies {
            section {
                h2 { "Policies" }
                p { a href="/settings/sso" { "Single sign-on" } " · " a href="/webhooks" { "Webhooks" } " · " a href="/notifications" { "Notifications" } " · " a href="/analyzers" { "Analyzers" } " · " a href="/settings/retention" { "Retention" } " · " a href="/privacy" { "Data-subject requests" } }
                form method="post" action="/settings/mfa" {
                    input type="hidden" name="csrf" value=(b.csrf);
                    label.check { input type="checkbox" name="required" value="1" checked[*mfa]; " Every member needs a second factor" }
                    button type="submit" { "Save" }
                }
                form method="post" action="/settings/sessions" {
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="idle" { "Sign out after this many idle minutes" }
                    input id="idle" name="idle" type="number" min="5" max="1440" value=(timeouts.idle_secs / 60);
                    label for="max" { "…and after this many hours in all" }
                    input id="max" name="max" type="number" min="1" max="720" value=(timeouts.max_secs / 3600);
                    button type="submit" { "Save" }
                }
                form method="post" action="/settings/allowlist" {
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="cidrs" { "Allowed addresses (one range per line; empty: anywhere)" }
                    textarea id="cidrs" name="cidrs" rows="4" { (ranges.join("\n")) }
                    label.check { input type="checkbox" name="confirm" value="1"; " Even if it leaves out the address I am using now" }
                    button type="submit" { "Save" }
                }
                form method="post" action="/settings/audit-reads" {
                    input type="hidden" name="csrf" value=(b.csrf);
                    label.check { input type="checkbox" name="enabled" value="1" checked[*reads];
                        " Record every read of an incident, its evidence and indicators in the audit log" }
                    button type="submit" { "Save" }
                }
                @if let Some(granted) = parent {
                    form method="post" action="/settings/parent-access" {
                        input type="hidden" name="csrf" value=(b.csrf);
                        label.check { input type="checkbox" name="granted" value="1" checked[*granted];
                            " Let the parent organisation read (never change) our incidents, evidence details and audit log" }
                        button type="submit" { "Save" }
                    }
                }
                p { a href="/children" { "Organisations under this one" } }
            }
        }
    };
    Ok(respond(status, page("Organisation", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// A refused change, shown on the page with its reasons.
async fn refused(s: &AppState, b: &Browser, e: AppError) -> Result<Response, Failure> {
    match e {
        e @ (AppError::Validation(_) | AppError::Conflict { .. }) => {
            let (status, errors) = sentences(e);
            settings_page(s, b, Vec::new(), errors, status).await
        }
        e => Err(b.failure(e, "/settings")),
    }
}

/// `GET /settings`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    settings_page(&s, &b, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /settings/mfa`.
pub(crate) async fn mfa(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.set_mfa_policy(&b.p, &b.meta, form.opt("required").is_some()).await {
        Ok(_) => settings_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, e).await,
    }
}

/// `POST /settings/sessions`: minutes idle and hours in all.
pub(crate) async fn sessions(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let (Ok(idle), Ok(max)) = (form.get("idle").trim().parse::<i64>(), form.get("max").trim().parse::<i64>()) else {
        let mut errs = ironcase_domain::ValidationErrors::default();
        errs.push("timeouts", "give whole numbers of minutes and hours");
        return refused(&s, &b, errs.into()).await;
    };
    let policy = SessionPolicy { idle_secs: Some(idle.saturating_mul(60)), max_secs: Some(max.saturating_mul(3600)) };
    match s.app.set_session_policy(&b.p, &b.meta, policy).await {
        Ok(_) => settings_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, e).await,
    }
}

/// `POST /settings/allowlist`.
pub(crate) async fn allowlist(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let ranges: Vec<String> = form.get("cidrs").lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect();
    match s.app.set_ip_allowlist(&b.p, &b.meta, &ranges, form.opt("confirm").is_some()).await {
        Ok(_) => settings_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, e).await,
    }
}

/// `POST /settings/audit-reads`.
pub(crate) async fn audit_reads(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.set_audit_reads(&b.p, &b.meta, form.opt("enabled").is_some()).await {
        Ok(_) => settings_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, e).await,
    }
}

/// `POST /settings/parent-access`.
pub(crate) async fn parent_access(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.parent_access_set(&b.p, &b.meta, form.opt("granted").is_some()).await {
        Ok(_) => settings_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e) => refused(&s, &b, e).await,
    }
}
