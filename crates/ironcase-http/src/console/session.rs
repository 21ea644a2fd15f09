//! The console's cookie and its CSRF check. The cookie holds a browser
//! secret naming the server-side session (`App::browser_principal`);
//! `HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix
//! whenever people reach the server over TLS (its public URL is `https://`,
//! or a trusted proxy says the request came so). A state-changing request
//! carries the session's CSRF token in its form and comes from this origin.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue};
use ironcase_app::{Principal, RequestMeta};

use super::layout::Failure;
use crate::extract::request_meta;
use crate::AppState;

const SECURE_NAME: &str = "__Host-ironcase";
const PLAIN_NAME: &str = "ironcase";

/// Whether this request reached people over TLS: the public URL says so, or
/// a trusted proxy does (`X-Forwarded-Proto: https`).
pub(crate) fn over_tls(state: &AppState, parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> bool {
    if state.app.settings().public_url.starts_with("https://") {
        return true;
    }
    let from_proxy =
        parts_ext.get::<ConnectInfo<SocketAddr>>().is_some_and(|c| state.config.trusted_proxies.iter().any(|p| p.contains(c.0.ip())));
    from_proxy && headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_NAME
    } else {
        PLAIN_NAME
    }
}

/// `Set-Cookie` for a new browser session (a session cookie: it ends with
/// the browser, and the server ends it sooner by its timeouts).
pub(crate) fn set_cookie(secret: &str, secure: bool) -> HeaderValue {
    let attrs = if secure { "; Secure" } else { "" };
    let v = format!("{}={secret}; Path=/; HttpOnly; SameSite=Lax{attrs}", cookie_name(secure));
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes it.
pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let attrs = if secure { "; Secure" } else { "" };
    let v = format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{attrs}", cookie_name(secure));
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// The console cookie's value, if the request has one.
fn cookie(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A signed-in person in the console: who they are, the request's facts and
/// the CSRF token their forms carry.
pub(crate) struct Browser {
    pub p: Principal,
    pub meta: RequestMeta,
    pub csrf: String,
    pub secure: bool,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let meta = request_meta(&parts.extensions, &parts.headers);
        let secure = over_tls(state, &parts.extensions, &parts.headers);
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        let Some(secret) = cookie(&parts.headers, secure) else { return Err(Failure::SignIn { next, ended: false }) };
        let p = match state.app.browser_principal(&secret, &meta).await {
            Ok(p) => p,
            Err(ironcase_app::AppError::Unauthenticated) => return Err(Failure::SignIn { next, ended: true }),
            Err(e) => return Err(e.into()),
        };
        let csrf = state.app.csrf_token(&p).unwrap_or_default();
        Ok(Browser { p, meta, csrf, secure })
    }
}

/// Whether a state-changing request comes from a page of this server: a
/// browser says where it comes from (`Sec-Fetch-Site`, `Origin`); one from
/// another site is refused whatever it carries.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), headers.get(header::HOST).and_then(|v| v.to_str().ok())) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host)),
        // No Origin: not a cross-site browser request (browsers send it on POST).
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// A posted form (`application/x-www-form-urlencoded`), its fields by
/// name (a field given twice keeps its first value there; `all` has them
/// all, for a group of checkboxes).
pub(crate) struct Form(pub HashMap<String, String>, Vec<(String, String)>);

impl Form {
    /// Every value of a field given once per ticked checkbox.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.1.iter().filter(|(name, _)| name == k).map(|(_, v)| v.as_str()).collect()
    }

    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }

    /// The field, trimmed, or `None` when empty.
    pub fn opt(&self, k: &str) -> Option<&str> {
        Some(self.get(k).trim()).filter(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        if !same_origin(req.headers()) {
            return Err(Failure::Forbidden);
        }
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")));
        if !is_form {
            return Err(Failure::BadRequest("the form did not arrive as a form".into()));
        }
        let body = Bytes::from_request(req, state).await.map_err(|_| Failure::BadRequest("the form is too large".into()))?;
        let (mut fields, mut all) = (HashMap::new(), Vec::new());
        for (k, v) in form_urlencoded::parse(&body) {
            if v.contains('\0') || k.contains('\0') {
                return Err(Failure::BadRequest("a field holds a NUL character".into()));
            }
            if all.len() >= 1000 {
                return Err(Failure::BadRequest("the form has too many fields".into()));
            }
            all.push((k.to_string(), v.to_string()));
            fields.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Ok(Form(fields, all))
    }
}

impl Browser {
    /// A refusal as a page; one for want of a recent proof of identity asks
    /// for the password, then goes on to `next`.
    pub fn failure(&self, e: ironcase_app::AppError, next: &str) -> Failure {
        match e {
            ironcase_app::AppError::Refused { code: ironcase_app::ErrorCode::ReauthenticationRequired, .. } => {
                Failure::Reauthenticate { csrf: self.csrf.clone(), next: next.to_owned() }
            }
            e => e.into(),
        }
    }

    /// Refuses a form without this session's CSRF token.
    pub fn check(&self, state: &AppState, form: &Form) -> Result<(), Failure> {
        if state.app.csrf_valid(&self.p, form.get("csrf")) {
            Ok(())
        } else {
            Err(Failure::Csrf)
        }
    }
}
