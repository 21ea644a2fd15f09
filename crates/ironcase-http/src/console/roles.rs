//! The organisation's own roles (plan feature `custom_roles`): the built-in
//! roles and its own with what each grants, a new role from a base with
//! permissions added and taken away and its conditions, and removing one
//! no one holds. Nobody makes a role that grants or sees more than they do
//! (the app refuses it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::roles::RoleInput;
use ironcase_app::AppError;
use ironcase_domain::{Category, Permission, Role, RoleId, Tlp};
use maud::html;

use super::layout::{page, respond, select, sentences, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::AppState;

async fn roles_page(s: &AppState, b: &Browser, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let roles = s.app.roles_list(&b.p, &b.meta).await?;
    let bases: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let tlps: Vec<&str> = Tlp::ALL.iter().map(|t| t.as_str()).collect();
    let manage = b.p.has(Permission::MembersManage);
    let body = html! {
        h1 { "Roles" }
        @for e in &errors { p.error role="alert" { (e) } }
        @for r in &roles {
            details.role {
                summary {
                    @if let Some(c) = &r.custom { (c.name) " (from " (c.base.as_str()) ")" } @else { (r.builtin.map_or("", Role::as_str)) " (built in)" }
                }
                p { (r.grants.list().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")) }
                @if let (Some(c), true) = (&r.custom, manage) {
                    form method="post" action={ "/roles/" (c.id) "/delete" } {
                        input type="hidden" name="csrf" value=(b.csrf);
                        button type="submit" aria-label={ "Delete the role " (c.name) } { "Delete" }
                    }
                }
            }
        }
        @if manage {
            form.role-new method="post" action="/roles" {
                h2 { "New role" }
                input type="hidden" name="csrf" value=(b.csrf);
                label for="name" { "Name" } input id="name" name="name" type="text" required maxlength="64";
                (select("base", "Based on", &bases, Some("analyst"), None))
                fieldset { legend { "Also grant" }
                    @for p in Permission::ALL { label.check { input type="checkbox" name="grant" value=(p.as_str()); " " (p.as_str()) } } }
                fieldset { legend { "Take away" }
                    @for p in Permission::ALL { label.check { input type="checkbox" name="revoke" value=(p.as_str()); " " (p.as_str()) } } }
                label.check { input type="checkbox" name="own_or_assigned" value="1"; " Changes only to incidents they reported or are assigned to" }
                (select("tlp_max", "Sees incidents up to TLP", &tlps, None, Some("any")))
                fieldset { legend { "Sees only these categories (none ticked: all)" }
                    @for c in Category::ALL { label.check { input type="checkbox" name="category" value=(c.as_str()); " " (c.as_str().replace('_', " ")) } } }
                button type="submit" { "Create role" }
            }
        }
    };
    Ok(respond(status, page("Roles", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /roles`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    roles_page(&s, &b, Vec::new(), StatusCode::OK).await
}

fn parsed<T>(values: Vec<&str>, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Failure> {
    values.into_iter().map(|v| parse(v).ok_or_else(|| Failure::BadRequest("tick only choices from the list".into()))).collect()
}

/// `POST /roles`.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let base = Role::parse(form.get("base")).ok_or_else(|| Failure::BadRequest("choose a base role from the list".into()))?;
    let tlp_max = match form.opt("tlp_max") {
        None => None,
        Some(t) => Some(Tlp::parse(t).ok_or_else(|| Failure::BadRequest("choose a TLP from the list".into()))?),
    };
    let categories = parsed(form.all("category"), Category::parse)?;
    let input = RoleInput {
        name: form.get("name").trim().to_owned(),
        base,
        grant: parsed(form.all("grant"), Permission::parse)?,
        revoke: parsed(form.all("revoke"), Permission::parse)?,
        own_or_assigned: form.opt("own_or_assigned").is_some(),
        tlp_max,
        categories: (!categories.is_empty()).then_some(categories),
    };
    match s.app.role_create(&b.p, &b.meta, input).await {
        Ok(_) => Ok(Redirect::to("/roles").into_response()),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let (status, errors) = sentences(e);
            roles_page(&s, &b, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/roles")),
    }
}

/// `POST /roles/{id}/delete`.
pub(crate) async fn delete(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: RoleId = raw.parse().map_err(|_| Failure::NotFound)?;
    match s.app.role_delete(&b.p, &b.meta, id).await {
        Ok(()) => Ok(Redirect::to("/roles").into_response()),
        Err(e @ AppError::Conflict { .. }) => {
            let (status, errors) = sentences(e);
            roles_page(&s, &b, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/roles")),
    }
}
