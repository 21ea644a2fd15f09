//! My account: the sessions of this account in this organisation (end one,
//! or all the others), a new password, and a second factor (enrolment with
//! its QR code, then the backup codes, shown once). And the step a
//! sensitive action asks for when the session's proof of identity is old:
//! the password (and a code) again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use ironcase_app::page::PageSize;
use ironcase_app::AppError;
use ironcase_domain::SessionId;
use maud::{html, Markup};

use super::layout::{page, respond, safe_next, sentences, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::AppState;

async fn account_page(s: &AppState, b: &Browser, notes: Vec<String>, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let me = s.app.me(&b.p).await?;
    let sessions = s.app.my_sessions(&b.p, None, PageSize::default_of(100)).await?;
    let orgs = s.app.my_organizations(&b.p).await?;
    let body = html! {
        h1 { "My account" }
        p { (me.user.email) " · " (me.role.as_str()) " in " (me.organization.name) }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        @if orgs.len() > 1 {
            section.switcher {
                h2 { "Organisations" }
                p { "Each organisation is its own sign-in, under its own policies." }
                ul {
                    @for (slug, name) in &orgs {
                        li {
                            @if *slug == me.organization.slug { (name) " (this one)" } @else {
                                a href={ "/signin?organization=" (slug) } { "Sign in to " (name) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Sessions" }
            table.sessions {
                thead { tr { th scope="col" { "Started" } th scope="col" { "From" } th scope="col" { "Last seen" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for v in &sessions.items {
                        tr {
                            td { (v.detail.session.created_at.to_rfc3339()) }
                            td { (v.detail.origin.source_ip.as_deref().unwrap_or("?")) " " (v.detail.origin.user_agent.as_deref().unwrap_or("")) }
                            td { (v.detail.last_seen_at.to_rfc3339()) }
                            td {
                                @if v.current { "this one" } @else {
                                    form method="post" action={ "/account/sessions/" (v.detail.session.id) "/end" } {
                                        input type="hidden" name="csrf" value=(b.csrf);
                                        button type="submit" { "End" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/account/sessions/end-others" {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "End all other sessions" }
            }
        }
        p { a href="/account/notifications" { "What I receive by e-mail" } }
        section {
            h2 { "Password" }
            form method="post" action="/account/password" {
                input type="hidden" name="csrf" value=(b.csrf);
                label for="current" { "Current password" }
                input id="current" name="current" type="password" autocomplete="current-password" required;
                label for="new" { "New password (12 characters or more)" }
                input id="new" name="new" type="password" autocomplete="new-password" required minlength="12";
                button type="submit" { "Change password" }
            }
        }
        section {
            h2 { "Second factor" }
            @if me.mfa_enabled {
                p { "An authenticator app is on. Backup codes left: " (me.backup_codes_left) "." }
            } @else {
                p { "Add an authenticator app: each sign-in then asks for its code." }
                form method="post" action="/account/mfa" {
                    input type="hidden" name="csrf" value=(b.csrf);
                    button type="submit" { "Set up an authenticator" }
                }
            }
        }
    };
    Ok(respond(status, page("My account", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /account`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    account_page(&s, &b, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /account/sessions/{id}/end`.
pub(crate) async fn end_session(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: SessionId = raw.parse().map_err(|_| Failure::NotFound)?;
    s.app.end_my_session(&b.p, &b.meta, id).await?;
    Ok(Redirect::to("/account").into_response())
}

/// `POST /account/sessions/end-others`.
pub(crate) async fn end_others(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let n = s.app.end_my_other_sessions(&b.p, &b.meta).await?;
    account_page(&s, &b, vec![format!("Ended {n} other sessions.")], Vec::new(), StatusCode::OK).await
}

/// `POST /account/password`.
pub(crate) async fn password(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.change_password(&b.p, &b.meta, form.get("current").to_owned(), form.get("new").to_owned()).await {
        Ok(n) => account_page(&s, &b, vec![format!("Password changed; {n} other sessions ended.")], Vec::new(), StatusCode::OK).await,
        Err(e @ (AppError::Validation(_) | AppError::InvalidCredentials | AppError::TooManyAttempts { .. })) => {
            let (status, errors) = sentences(e);
            account_page(&s, &b, Vec::new(), errors, status).await
        }
        Err(e) => Err(e.into()),
    }
}

fn confirm_form(b: &Browser, qr_svg: &str, secret: &str, error: Option<&str>) -> Markup {
    let qr = format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(qr_svg));
    html! {
        h1 { "Set up an authenticator" }
        p { "Scan the code with your authenticator app, or type the key into it, then enter the code it shows." }
        img.qr src=(qr) alt="QR code of the authenticator key" width="220" height="220";
        p { "Key: " code id="totp-secret" { (secret) } " " button type="button" data-copy="totp-secret" { "Copy" } }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/account/mfa/confirm" {
            input type="hidden" name="csrf" value=(b.csrf);
            label for="code" { "Code from the app" }
            input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required;
            button type="submit" { "Turn on" }
        }
    }
}

/// `POST /account/mfa`: a new authenticator key, waiting for its first code.
pub(crate) async fn mfa_enroll(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let e = s.app.totp_enroll(&b.p, &b.meta).await?;
    Ok(respond(StatusCode::OK, page("Second factor", Some(Nav { p: &b.p, csrf: &b.csrf }), confirm_form(&b, &e.qr_svg, &e.secret, None))))
}

/// `POST /account/mfa/confirm`: on, and the backup codes shown once.
pub(crate) async fn mfa_confirm(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.totp_confirm(&b.p, &b.meta, form.get("code").trim()).await {
        Ok(codes) => {
            let body = html! {
                h1 { "Second factor on" }
                p { "Keep these backup codes somewhere safe: each signs you in once without the app. They are shown this once." }
                pre id="backup-codes" { @for c in &codes { (c) "\n" } }
                button type="button" data-copy="backup-codes" { "Copy" }
                p { a href="/account" { "Back to my account" } }
            };
            Ok(respond(StatusCode::OK, page("Second factor", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
        }
        Err(e) => {
            let (status, errors) = sentences(e);
            let body = html! {
                h1 { "Set up an authenticator" }
                @for e in &errors { p.error role="alert" { (e) } }
                p { a href="/account" { "Start again from my account" } }
            };
            Ok(respond(status, page("Second factor", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
        }
    }
}

/// The form a sensitive action shows when the session's proof of identity
/// is too old: the password (and a code), then on to `next`.
pub(crate) fn reauth_page(csrf: &str, next: &str, error: Option<&str>) -> Response {
    let body = html! {
        section.signin {
            h1 { "Confirm it is you" }
            p { "This action needs your password again (and a code, when your account has a second factor)." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/reauthenticate" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(safe_next(next));
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required autofocus;
                label for="code" { "Code (if asked for one)" }
                input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code";
                button type="submit" { "Confirm" }
            }
        }
    };
    respond(StatusCode::FORBIDDEN, page("Confirm it is you", None, body))
}

/// `POST /reauthenticate`.
pub(crate) async fn reauthenticate(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let next = safe_next(form.get("next")).to_owned();
    match s.app.reauthenticate(&b.p, &b.meta, form.get("password").to_owned(), form.opt("code").map(str::to_owned)).await {
        Ok(()) => Ok(Redirect::to(&next).into_response()),
        Err(e) => {
            let (_, errors) = sentences(e);
            Ok(reauth_page(&b.csrf, &next, errors.first().map(String::as_str)))
        }
    }
}
