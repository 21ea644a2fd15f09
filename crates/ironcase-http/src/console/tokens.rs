//! The pages an e-mailed link opens, and asking for one: accepting an
//! invitation (`/invitation#token=…`), setting a new password
//! (`/reset-password#token=…`), and "forgot my password". The token rides in
//! the link's fragment, which never reaches a server or its logs; the page's
//! script moves it into the form.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::members::Acceptance;
use ironcase_app::AppError;
use maud::{html, Markup};

use super::layout::{page, respond, Failure};
use super::session::Form;
use super::signin::Visitor;
use crate::{ApiError, AppState};

fn problem(e: AppError) -> (StatusCode, String) {
    match e {
        AppError::NotFound => (StatusCode::NOT_FOUND, "This link is not valid any more: it was used, withdrawn or has expired.".into()),
        e => {
            let api = ApiError::from(e);
            let why = api.errors.first().map_or(api.detail.clone(), |f| format!("{}: {}", f.field, f.message));
            (api.status(), why)
        }
    }
}

fn invitation_form(name: &str, error: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "Join the organisation" }
            p { "Choose your name and a password (12 characters or more). If you already have an account, give its password." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.token-form method="post" action="/invitation" {
                input type="hidden" name="token" value="";
                label for="name" { "Your name" }
                input id="name" name="name" type="text" value=(name) autocomplete="name";
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="new-password" required;
                button type="submit" { "Join" }
            }
        }
    }
}

/// `GET /invitation`.
pub(crate) async fn invitation() -> Response {
    respond(StatusCode::OK, page("Join", None, invitation_form("", None)))
}

/// `POST /invitation`: the account joins; on to sign in.
pub(crate) async fn accept(State(s): State<AppState>, v: Visitor, form: Form) -> Result<Response, Failure> {
    let input = Acceptance {
        token: form.get("token").to_owned(),
        name: form.opt("name").map(str::to_owned),
        password: form.get("password").to_owned(),
    };
    match s.app.invitation_accept(&v.meta, input).await {
        Ok((org, _)) => {
            let to = format!("/signin?joined=1&organization={}", form_urlencoded::byte_serialize(org.slug.as_bytes()).collect::<String>());
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            let (status, why) = problem(e);
            Ok(respond(status, page("Join", None, invitation_form(form.get("name"), Some(&why)))))
        }
    }
}

fn reset_form(error: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "A new password" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.token-form method="post" action="/reset-password" {
                input type="hidden" name="token" value="";
                label for="password" { "New password (12 characters or more)" }
                input id="password" name="password" type="password" autocomplete="new-password" required;
                button type="submit" { "Set the password" }
            }
        }
    }
}

/// `GET /reset-password`.
pub(crate) async fn reset() -> Response {
    respond(StatusCode::OK, page("New password", None, reset_form(None)))
}

/// `POST /reset-password`.
pub(crate) async fn reset_confirm(State(s): State<AppState>, v: Visitor, form: Form) -> Result<Response, Failure> {
    match s.app.confirm_password_reset(form.get("token"), form.get("password").to_owned(), &v.meta).await {
        Ok(()) => Ok(Redirect::to("/signin?reset=1").into_response()),
        Err(e) => {
            let (status, why) = problem(e);
            Ok(respond(status, page("New password", None, reset_form(Some(&why)))))
        }
    }
}

fn forgot_form(note: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "Forgot your password?" }
            @if let Some(n) = note { p.notice role="status" { (n) } }
            form method="post" action="/forgot" {
                label for="email" { "E-mail" }
                input id="email" name="email" type="email" autocomplete="username" required;
                button type="submit" { "Send me a link" }
            }
        }
    }
}

/// `GET /forgot`.
pub(crate) async fn forgot() -> Response {
    respond(StatusCode::OK, page("Forgot your password?", None, forgot_form(None)))
}

/// `POST /forgot`: the same answer whether the address has an account or
/// not.
pub(crate) async fn forgot_send(State(s): State<AppState>, v: Visitor, form: Form) -> Result<Response, Failure> {
    let note = match s.app.request_password_reset(form.get("email"), &v.meta).await {
        Ok(()) => "If an account has this address, a link to set a new password is on its way. It works for 30 minutes.",
        Err(AppError::Refused { code: ironcase_app::ErrorCode::EmailUnavailable, .. }) => {
            "This server sends no e-mail: ask an administrator of your organisation to reset your password."
        }
        Err(AppError::Validation(_)) => "That is not an e-mail address.",
        Err(e) => return Err(e.into()),
    };
    Ok(respond(StatusCode::ACCEPTED, page("Forgot your password?", None, forgot_form(Some(note)))))
}
