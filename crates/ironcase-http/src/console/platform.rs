//! For platform operators: every organisation, a new one (with its owner,
//! plan and parent), and each one's plan and status. The app refuses anyone
//! else, as it does through the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::admin::NewOrganization;
use ironcase_app::page::PageSize;
use ironcase_app::AppError;
use ironcase_domain::plan::{Feature, OrgStatus, Overrides, PlanName, Quota};
use ironcase_domain::OrgId;
use maud::html;

use super::layout::{next_link, page, reasons, respond, select, sentences, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;
use ironcase_app::page::parse_keyset;

/// Organisations a page.
const PER_PAGE: u32 = 50;

async fn orgs_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, OrgId)>,
    notes: Vec<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let orgs = s.app.org_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let plans: Vec<&str> = PlanName::ALL.iter().map(|p| p.as_str()).collect();
    let statuses: Vec<&str> = OrgStatus::ALL.iter().map(|p| p.as_str()).collect();
    let body = html! {
        h1 { "Organisations" }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        table.orgs {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Short name" } th scope="col" { "Plan" } th scope="col" { "Status" } th scope="col" { "Parent" } } }
            tbody {
                @for o in &orgs.items {
                    tr {
                        td { (o.name) }
                        td { code { (o.slug) } }
                        td { a href={ "/platform/organizations/" (o.id) } { (o.plan) } }
                        td {
                            form.inline method="post" action={ "/platform/organizations/" (o.id) "/status" } {
                                input type="hidden" name="csrf" value=(b.csrf);
                                (select(&format!("status-{}", o.slug), "Status", &statuses, Some(o.status.as_str()), None))
                                button type="submit" aria-label={ "Set the status of " (o.name) } { "Set" }
                            }
                        }
                        td { @if let Some(parent) = o.parent_id { code { (parent) } } }
                    }
                }
            }
        }
        (next_link("/platform/organizations", orgs.next_cursor.as_deref()))
        form.org-new method="post" action="/platform/organizations" {
            h2 { "New organisation" }
            input type="hidden" name="csrf" value=(b.csrf);
            label for="name" { "Name" } input id="name" name="name" type="text" required;
            label for="slug" { "Short name" } input id="slug" name="slug" type="text" required pattern="[a-z0-9-]+";
            label for="owner_email" { "Owner's e-mail" } input id="owner_email" name="owner_email" type="email" required;
            label for="owner_name" { "Owner's name" } input id="owner_name" name="owner_name" type="text" required;
            label for="owner_password" { "Owner's first password (a new account; an existing one keeps its own)" }
            input id="owner_password" name="owner_password" type="password" autocomplete="new-password";
            (select("plan", "Plan", &plans, None, Some("the default")))
            label for="parent" { "Parent's short name (optional)" } input id="parent" name="parent" type="text";
            button type="submit" { "Create" }
        }
    };
    Ok(respond(status, page("Organisations", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

async fn refused(s: &AppState, b: &Browser, e: AppError) -> Result<Response, Failure> {
    match e {
        e @ (AppError::Validation(_) | AppError::Conflict { .. }) => {
            let (status, errors) = sentences(e);
            orgs_page(s, b, None, Vec::new(), errors, status).await
        }
        e => Err(b.failure(e, "/platform/organizations")),
    }
}

/// `GET /platform/organizations?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<OrgId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    orgs_page(&s, &b, cursor, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /platform/organizations`.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let plan = match form.opt("plan") {
        None => None,
        Some(p) => Some(PlanName::parse(p).ok_or_else(|| Failure::BadRequest("choose a plan from the list".into()))?),
    };
    let parent = match form.opt("parent") {
        None => None,
        Some(slug) => match s.app.org_by_slug(&b.p, &b.meta, slug).await? {
            Some(o) => Some(o.id),
            None => {
                let mut errs = ironcase_domain::ValidationErrors::default();
                errs.push("parent", "is not an organisation's short name");
                return refused(&s, &b, errs.into()).await;
            }
        },
    };
    let input = NewOrganization {
        name: form.get("name").trim().to_owned(),
        slug: form.get("slug").trim().to_owned(),
        owner_email: form.get("owner_email").trim().to_owned(),
        owner_name: form.get("owner_name").trim().to_owned(),
        owner_password: form.opt("owner_password").map(str::to_owned),
        plan,
        overrides: None,
        parent,
    };
    match s.app.org_create(&b.p, &b.meta, input).await {
        Ok(o) => orgs_page(&s, &b, None, vec![format!("Created {}.", o.name)], Vec::new(), StatusCode::CREATED).await,
        Err(e) => refused(&s, &b, e).await,
    }
}

fn org_id(raw: &str) -> Result<OrgId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// An override as a person writes it: empty keeps the plan's value,
/// `unlimited` lifts the quota, a whole number sets it.
fn quota_text(o: &Overrides, q: Quota) -> String {
    match o.quotas.get(&q) {
        None => String::new(),
        Some(None) => "unlimited".into(),
        Some(Some(n)) => n.to_string(),
    }
}

async fn org_page(s: &AppState, b: &Browser, id: OrgId, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let (o, plan, overrides) = s.app.org_plan(&b.p, &b.meta, id).await?;
    let plans: Vec<&str> = PlanName::ALL.iter().map(|p| p.as_str()).collect();
    let defaults = plan.defaults();
    let body = html! {
        h1 { (o.name) }
        p { code { (o.slug) } ", " (o.status) @if let Some(parent) = o.parent_id { ", a child of " code { (parent) } } }
        @for e in &errors { p.error role="alert" { (e) } }
        form.plan method="post" action={ "/platform/organizations/" (o.id) "/plan" } {
            input type="hidden" name="csrf" value=(b.csrf);
            (select("plan", "Plan", &plans, Some(plan.as_str()), None))
            fieldset {
                legend { "Quotas: empty keeps the plan's, “unlimited” lifts it" }
                @for q in Quota::ALL {
                    @let name = format!("quota-{}", q.as_str());
                    label for=(name) { (q.as_str()) " (plan: " (defaults.quota(*q).map_or("unlimited".to_owned(), |n| n.to_string())) ")" }
                    input id=(name) name=(name) type="text" inputmode="numeric" value=(quota_text(&overrides, *q));
                }
            }
            fieldset {
                legend { "Features" }
                @for f in Feature::ALL {
                    @let name = format!("feature-{}", f.as_str());
                    @let chosen = match overrides.features.get(f) { None => "plan", Some(true) => "on", Some(false) => "off" };
                    @let label = format!("{} (plan: {})", f.as_str(), if defaults.has(*f) { "on" } else { "off" });
                    (select(&name, &label, &["plan", "on", "off"], Some(chosen), None))
                }
            }
            button type="submit" { "Save the plan" }
        }
        details.danger {
            summary { "Delete this organisation for good" }
            p { "Its data keys are destroyed first (its evidence becomes unreadable at once), then its files and every row of it. You get a signed deletion certificate." }
            form method="post" action={ "/platform/organizations/" (o.id) "/offboard" } {
                input type="hidden" name="csrf" value=(b.csrf);
                label for="confirm" { "Type its slug, " code { (o.slug) } ", to confirm" }
                input id="confirm" name="confirm" type="text" required autocomplete="off";
                button type="submit" { "Delete the organisation" }
            }
        }
        p { a href="/platform/organizations" { "All organisations" } }
    };
    Ok(respond(status, page(&o.name, Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /platform/organizations/{id}`: its plan and overrides.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    let id = org_id(&raw)?;
    org_page(&s, &b, id, Vec::new(), StatusCode::OK).await
}

/// `POST /platform/organizations/{id}/plan`: the plan and every override,
/// as the form shows them (a field left empty keeps the plan's value).
pub(crate) async fn plan(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = org_id(&raw)?;
    let plan = PlanName::parse(form.get("plan")).ok_or_else(|| Failure::BadRequest("choose a plan from the list".into()))?;
    let mut overrides = Overrides::default();
    let mut errs = ironcase_domain::ValidationErrors::default();
    for q in Quota::ALL {
        let field = format!("quota-{}", q.as_str());
        match form.get(&field).trim() {
            "" => {}
            "unlimited" => {
                overrides.quotas.insert(*q, None);
            }
            n => match n.parse::<u64>() {
                Ok(n) => {
                    overrides.quotas.insert(*q, Some(n));
                }
                Err(_) => errs.push(&field, "must be empty, a whole number or “unlimited”"),
            },
        }
    }
    for f in Feature::ALL {
        match form.get(&format!("feature-{}", f.as_str())) {
            "on" => {
                overrides.features.insert(*f, true);
            }
            "off" => {
                overrides.features.insert(*f, false);
            }
            _ => {}
        }
    }
    let result = match errs.is_empty() {
        true => s.app.org_change_plan(&b.p, &b.meta, id, plan, overrides).await,
        false => Err(errs.into()),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/platform/organizations/{id}")).into_response()),
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            org_page(&s, &b, id, errors, status).await
        }
        Err(e) => Err(b.failure(e, &format!("/platform/organizations/{id}"))),
    }
}

/// `POST /platform/organizations/{id}/status` (the select is `status-{slug}`).
pub(crate) async fn status(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = org_id(&raw)?;
    let chosen = form.0.iter().find(|(k, _)| k.starts_with("status-")).and_then(|(_, v)| OrgStatus::parse(v));
    let status = chosen.ok_or_else(|| Failure::BadRequest("choose a status from the list".into()))?;
    match s.app.org_set_status(&b.p, &b.meta, id, status).await {
        Ok(_) => Ok(Redirect::to("/platform/organizations").into_response()),
        Err(e) => refused(&s, &b, e).await,
    }
}

/// `POST /platform/organizations/{id}/offboard`: deletes it; the page shows
/// the signed certificate.
pub(crate) async fn offboard(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = org_id(&raw)?;
    match s.app.org_delete(&b.p, &b.meta, id, form.get("confirm")).await {
        Ok(c) => {
            let body = html! {
                h1 { "Organisation deleted" }
                p role="status" { "Keep this certificate: it is signed with the audit key (" a href="/api/v1/audit/public-key" { "public key" } ") and kept in the platform's audit log." }
                pre.certificate { (c.note) }
                p { a href="/platform/organizations" { "All organisations" } }
            };
            Ok(respond(StatusCode::OK, page("Organisation deleted", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let (status, errors) = sentences(e);
            org_page(&s, &b, id, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/platform/organizations")),
    }
}
