//! Signing in and out: the password step, the second factor when the
//! account has one, then a cookie for the session the API's own login made.
//! A failed step shows its page again with what was typed (never the
//! password) and a sentence a person can act on.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::auth::{LoginInput, TokenPair};
use ironcase_app::mfa::{LoginOutcome, SecondFactor};
use ironcase_app::{AppError, RequestMeta};
use maud::{html, Markup};

use super::layout::{page, respond, safe_next, Failure};
use super::session::{clear_cookie, over_tls, set_cookie, Browser, Form};
use crate::extract::{request_meta, QueryParams};
use crate::{ApiError, AppState};
use ironcase_app::ErrorCode;

/// What the sign-in page shows above its form, for why it was opened.
fn notice(q: &mut QueryParams) -> Option<&'static str> {
    if q.str("ended").is_some() {
        Some("Your session has ended. Sign in again to go on.")
    } else if q.str("signed_out").is_some() {
        Some("You are signed out.")
    } else if q.str("joined").is_some() {
        Some("You have joined. Sign in to begin.")
    } else if q.str("reset").is_some() {
        Some("Your password is set. Sign in with it.")
    } else {
        None
    }
}

fn password_form(next: &str, email: &str, organization: &str, error: Option<&str>, info: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "Sign in" }
            @if let Some(i) = info { p.notice role="status" { (i) } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/signin" {
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email) autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                label for="organization" { "Organisation (optional)" }
                input id="organization" name="organization" type="text" value=(organization) placeholder="its short name";
                button type="submit" { "Sign in" }
                p { a href="/forgot" { "Forgot your password?" } }
            }
            form.sso method="get" action="/signin/sso" {
                h2 { "Single sign-on" }
                label for="sso-org" { "Organisation short name, or your e-mail" }
                input id="sso-org" name="org" type="text" required;
                button type="submit" { "Sign in with SSO" }
            }
        }
    }
}

fn mfa_form(next: &str, challenge: &str, error: Option<&str>) -> Markup {
    html! {
        section.signin {
            h1 { "Second factor" }
            p { "Enter the six-digit code from your authenticator app, or one of your backup codes." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/signin/mfa" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="challenge" value=(challenge);
                label for="code" { "Code" }
                input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus;
                label.check {
                    input type="checkbox" name="backup" value="1";
                    " This is a backup code"
                }
                button type="submit" { "Verify" }
            }
        }
    }
}

/// The status and a sentence for a refused sign-in step.
fn refused(e: AppError) -> (StatusCode, String) {
    let api = ApiError::from(e);
    let sentence = match api.code {
        ErrorCode::InvalidCredentials => "The e-mail or password is not right.".into(),
        ErrorCode::InvalidMfaCode => "That code is not right, or was used already. Try the next one.".into(),
        ErrorCode::Unauthenticated | ErrorCode::MfaChallengeInvalid => "This sign-in has expired or was used up. Start again.".into(),
        ErrorCode::RateLimited => format!("Too many attempts. Try again in {} seconds.", api.retry_after.unwrap_or(60)),
        _ if api.status().is_server_error() => "Something went wrong on our side. Try again in a moment.".into(),
        _ => api.detail.clone(),
    };
    (api.status(), sentence)
}

/// Someone not signed in yet: the request's facts, and whether the cookie
/// they get will be `Secure`.
pub(crate) struct Visitor {
    pub(crate) meta: RequestMeta,
    pub(crate) secure: bool,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Visitor { meta: request_meta(&parts.extensions, &parts.headers), secure: over_tls(state, &parts.extensions, &parts.headers) })
    }
}

/// `GET /signin`.
pub(crate) async fn show(mut q: QueryParams) -> Response {
    let next = q.str("next").unwrap_or_else(|| "/".into());
    let organization = q.str("organization").unwrap_or_default();
    let info = notice(&mut q);
    respond(StatusCode::OK, page("Sign in", None, password_form(safe_next(&next), "", &organization, None, info)))
}

/// The session of a login's tokens, bound to a new cookie; on to `next`.
async fn signed_in(s: &AppState, meta: &RequestMeta, tokens: TokenPair, next: &str, secure: bool) -> Result<Response, Failure> {
    let secret = s.app.browser_bind(&tokens, meta).await?;
    let mut r = Redirect::to(safe_next(next)).into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(&secret.0, secure));
    Ok(r)
}

/// `POST /signin`.
pub(crate) async fn password(State(s): State<AppState>, Visitor { meta, secure }: Visitor, form: Form) -> Result<Response, Failure> {
    let next = safe_next(form.get("next")).to_owned();
    let (email, organization) = (form.get("email").trim().to_owned(), form.get("organization").trim().to_owned());
    let input = LoginInput {
        email: email.clone(),
        password: form.get("password").to_owned(),
        organization: form.opt("organization").map(str::to_owned),
        device_token: None,
    };
    match s.app.login(input, &meta).await {
        Ok(LoginOutcome::Tokens(tokens)) => signed_in(&s, &meta, tokens, &next, secure).await,
        Ok(LoginOutcome::MfaRequired(ch)) => Ok(respond(StatusCode::OK, page("Second factor", None, mfa_form(&next, &ch.challenge, None)))),
        Err(e) => {
            let (status, why) = refused(e);
            Ok(respond(status, page("Sign in", None, password_form(&next, &email, &organization, Some(&why), None))))
        }
    }
}

/// `POST /signin/mfa`.
pub(crate) async fn mfa(State(s): State<AppState>, Visitor { meta, secure }: Visitor, form: Form) -> Result<Response, Failure> {
    let next = safe_next(form.get("next")).to_owned();
    let challenge = form.get("challenge").to_owned();
    let code = form.get("code").trim().to_owned();
    let factor = if form.opt("backup").is_some() { SecondFactor::BackupCode(code) } else { SecondFactor::Code(code) };
    match s.app.mfa_verify(&challenge, factor, &meta).await {
        Ok(tokens) => signed_in(&s, &meta, tokens, &next, secure).await,
        Err(e) => {
            let (status, why) = refused(e);
            Ok(respond(status, page("Second factor", None, mfa_form(&next, &challenge, Some(&why)))))
        }
    }
}

/// `GET /signin/sso?org=`: to the organisation's provider (named by its
/// short name, or found by the domain of an e-mail address).
pub(crate) async fn sso(State(s): State<AppState>, mut q: QueryParams) -> Result<Response, Failure> {
    let typed = q.str("org").unwrap_or_default();
    let slug = s.app.sso_organization_for(&typed).await?;
    let Some(slug) = slug else {
        let why = "No organisation signs in with single sign-on for that address. Sign in with your password, or ask your administrator.";
        return Ok(respond(StatusCode::NOT_FOUND, page("Sign in", None, password_form("/", "", "", Some(why), None))));
    };
    let slug: String = form_urlencoded::byte_serialize(slug.as_bytes()).collect();
    // Not a redirect: a form's navigation may not end at another origin
    // (the page's `form-action 'self'`), so this page links on, and its
    // script follows the link at once.
    let body = html! {
        section.signin {
            h1 { "Single sign-on" }
            p { a id="sso-continue" href={ "/api/v1/auth/sso/" (slug) "/start" } { "Continue to your organisation's sign-in" } }
        }
    };
    Ok(respond(StatusCode::OK, page("Single sign-on", None, body)))
}

/// `GET /sso`: where a provider's login lands (the callback sends the
/// browser here with a one-time code in the URL's fragment, which the
/// server never sees); the page's script posts it.
pub(crate) async fn sso_landing() -> Response {
    let body = html! {
        section.signin {
            h1 { "Signing you in" }
            form id="sso-finish" method="post" action="/signin/sso" {
                input type="hidden" name="code" value="";
                noscript { p { "Single sign-on needs JavaScript to finish here. Sign in with your password instead." } }
                button type="submit" { "Continue" }
            }
        }
    };
    respond(StatusCode::OK, page("Signing in", None, body))
}

/// `POST /signin/sso`: the one-time code of a finished provider login, for
/// a session cookie.
pub(crate) async fn sso_finish(State(s): State<AppState>, Visitor { meta, secure }: Visitor, form: Form) -> Result<Response, Failure> {
    match s.app.sso_token(form.get("code"), &meta).await {
        Ok(tokens) => signed_in(&s, &meta, tokens, "/", secure).await,
        Err(e) => {
            let (status, why) = refused(e);
            Ok(respond(status, page("Sign in", None, password_form("/", "", "", Some(&why), None))))
        }
    }
}

/// `POST /signout`: the session ends, cookie and tokens alike.
pub(crate) async fn signout(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    s.app.logout(&b.p, &b.meta).await?;
    let mut r = Redirect::to("/signin?signed_out=1").into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie(b.secure));
    Ok(r)
}
