//! The organisation's single sign-on (plan feature `sso`): its OpenID
//! provider, how groups map to roles, and whether members must use it. The
//! client secret is written, never shown; left empty it stays as it is.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::sso::SsoInput;
use ironcase_app::AppError;
use ironcase_domain::Role;
use maud::html;

use super::layout::{page, respond, sentences, Failure, Nav};
use super::session::{Browser, Form};
use crate::AppState;

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

async fn sso_page(s: &AppState, b: &Browser, notes: Vec<String>, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let current = match s.app.sso_config(&b.p, &b.meta).await {
        Ok(c) => Some(c),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(b.failure(e, "/settings/sso")),
    };
    let c = current.as_ref();
    let mapping = c.map(|c| c.role_mapping.iter().map(|(g, r)| format!("{g} = {r}")).collect::<Vec<_>>().join("\n")).unwrap_or_default();
    let password_roles: Vec<Role> = c.map_or(vec![Role::Owner], |c| c.password_roles.clone());
    let body = html! {
        h1 { "Single sign-on" }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        @if let Some(c) = c { p { "Register this redirect address at the provider: " code { (c.redirect_uri) } } }
        form.sso-config method="post" action="/settings/sso" {
            input type="hidden" name="csrf" value=(b.csrf);
            label for="issuer" { "Issuer (https://…)" } input id="issuer" name="issuer" type="url" required value=(c.map_or("", |c| c.issuer.as_str()));
            label for="client_id" { "Client id" } input id="client_id" name="client_id" type="text" required value=(c.map_or("", |c| c.client_id.as_str()));
            label for="client_secret" { "Client secret" @if c.is_some() { " (empty: keep the one set)" } }
            input id="client_secret" name="client_secret" type="password" autocomplete="off";
            label for="scopes" { "Scopes besides openid and email" } input id="scopes" name="scopes" type="text" value=(c.map_or(String::new(), |c| c.scopes.join(" ")));
            label for="allowed_domains" { "E-mail domains that may sign in (empty: any)" } input id="allowed_domains" name="allowed_domains" type="text" value=(c.map_or(String::new(), |c| c.allowed_domains.join(" ")));
            label for="group_claim" { "Groups claim" } input id="group_claim" name="group_claim" type="text" value=(c.map_or("groups", |c| c.group_claim.as_str()));
            label for="role_mapping" { "Groups to roles, one per line: group = role" }
            textarea id="role_mapping" name="role_mapping" rows="4" { (mapping) }
            label for="default_role" { "Role of an account in no mapped group (empty: refused)" }
            input id="default_role" name="default_role" type="text" value=(c.and_then(|c| c.default_role.as_deref()).unwrap_or(""));
            label.check { input type="checkbox" name="jit" value="1" checked[c.is_some_and(|c| c.jit)]; " Make accounts at their first sign-in" }
            label.check { input type="checkbox" name="sso_required" value="1" checked[c.is_some_and(|c| c.sso_required)]; " Members must sign in through the provider" }
            fieldset { legend { "Roles that may still use a password (break-glass)" }
                @for r in Role::ALL { label.check { input type="checkbox" name="password_roles" value=(r.as_str()) checked[password_roles.contains(r)]; " " (r.as_str()) } } }
            button type="submit" { "Save" }
        }
        @if c.is_some() {
            form method="post" action="/settings/sso/delete" {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Turn single sign-on off" }
            }
        }
    };
    Ok(respond(status, page("Single sign-on", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /settings/sso`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    sso_page(&s, &b, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /settings/sso`.
pub(crate) async fn save(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let mut role_mapping = BTreeMap::new();
    for line in form.get("role_mapping").lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((group, role)) = line.split_once('=') else {
            return sso_page(
                &s,
                &b,
                Vec::new(),
                vec![format!("role mapping: write “group = role”, not “{line}”")],
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        };
        role_mapping.insert(group.trim().to_owned(), role.trim().to_owned());
    }
    let password_roles = form
        .all("password_roles")
        .into_iter()
        .map(|r| Role::parse(r).ok_or_else(|| Failure::BadRequest("tick only roles from the list".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let input = SsoInput {
        issuer: form.get("issuer").trim().to_owned(),
        client_id: form.get("client_id").trim().to_owned(),
        client_secret: form.opt("client_secret").map(str::to_owned),
        scopes: words(form.get("scopes")),
        allowed_domains: words(form.get("allowed_domains")),
        group_claim: form.opt("group_claim").unwrap_or("groups").to_owned(),
        role_mapping,
        default_role: form.opt("default_role").map(str::to_owned),
        jit: form.opt("jit").is_some(),
        sso_required: form.opt("sso_required").is_some(),
        password_roles,
    };
    match s.app.set_sso_config(&b.p, &b.meta, input).await {
        Ok(_) => sso_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let (status, errors) = sentences(e);
            sso_page(&s, &b, Vec::new(), errors, status).await
        }
        Err(e) => Err(b.failure(e, "/settings/sso")),
    }
}

/// `POST /settings/sso/delete`.
pub(crate) async fn delete(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    s.app.delete_sso_config(&b.p, &b.meta).await.map_err(|e| b.failure(e, "/settings/sso"))?;
    Ok(Redirect::to("/settings/sso").into_response())
}
