//! Extractors: JSON bodies whose every bad field is reported, query strings
//! parsed field by field, the caller's principal, and request facts for audit.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use ironcase_app::page::PageSize;
use ironcase_app::ErrorCode;
use ironcase_app::{Principal, RequestMeta};
use ironcase_domain::{FieldError, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{current_request_id, ApiError};
use crate::AppState;

/// A JSON request body. Malformed JSON is 400 `malformed_json`; well-formed
/// JSON of the wrong shape is 422 `validation_failed` naming each bad field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            } else {
                ApiError::new(ErrorCode::BadRequest, "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a body, collecting every field that does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object: serde would also read a struct from an
    // array of its fields in order (`[null, null]`), which no document
    // describes.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::validation(vec![FieldError { field: "".into(), message: "the body must be a JSON object".into() }]));
    }
    // No text anywhere holds a NUL (PostgreSQL cannot store one): JSON can
    // only spell it `\u0000`, so only a body with that is looked at closer.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            if let Some(field) = nul_in(&v, String::new()) {
                return Err(ApiError::validation(vec![FieldError { field, message: NUL_MESSAGE.into() }]));
            }
        }
    }
    // The common case, a good body, pays for one parse; the field-by-field
    // report below only runs for bodies that are already refused.
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        return Ok(v);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON (line {}, column {})", e.line(), e.column()))
    })?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::validation(vec![FieldError { field: "".into(), message: "the body must be a JSON object".into() }]));
    };
    let mut errors: Vec<FieldError> = Vec::new();
    // serde stops at the first problem: note it, take that field out, try again.
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(Value::Object(map.clone())) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => break,
            Err(e) => {
                let path = e.path().to_string();
                let msg = e.inner().to_string();
                let field = if path.is_empty() || path == "." { backticked(&msg).unwrap_or_default() } else { path };
                let top = field.split(['.', '[']).next().unwrap_or("").to_owned();
                // A field already reported (e.g. a wrong type, then "missing"
                // once removed) says nothing new.
                if errors.iter().any(|f| f.field == field) {
                    break;
                }
                errors.push(FieldError { field, message: clean(&msg) });
                if !remove(&mut map, &top) {
                    break;
                }
            }
        }
    }
    Err(ApiError::validation(errors))
}

/// `deserialize_with` for a field where `null` means something (remove it)
/// and absence means unchanged: `Some(None)` for `null`.
pub fn double_option<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// `deserialize_with` for a field that holds an object (or `null`, where
/// the field is optional): anything else is refused (serde would read a
/// struct from an array of its fields).
pub fn object<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    use serde::de::Error;
    let v = <Value as serde::Deserialize>::deserialize(d)?;
    if !v.is_object() && !v.is_null() {
        return Err(D::Error::custom("must be a JSON object"));
    }
    serde_json::from_value(v).map_err(D::Error::custom)
}

const NUL_MESSAGE: &str = "must not contain a NUL character";

/// The path of the first string (or key) in `v` that holds a NUL.
fn nul_in(v: &Value, path: String) -> Option<String> {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match v {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| nul_in(x, format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| if k.contains('\0') { Some(join(k)) } else { nul_in(x, join(k)) }),
        _ => None,
    }
}

fn remove(map: &mut Map<String, Value>, key: &str) -> bool {
    map.remove(key).is_some()
}

/// The first `name` in a serde message such as "missing field `title`".
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_owned())
}

/// serde's message without its trailing position, which means nothing once the
/// value was re-read.
fn clean(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Query-string parameters, read one by one; unknown ones are refused so that
/// a misspelt filter is not silently ignored.
pub struct QueryParams {
    map: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let pairs = form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
        let mut map = HashMap::new();
        let mut errors = Vec::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                errors.push(FieldError { field: k, message: "given more than once".into() });
            }
        }
        Ok(QueryParams { map, errors })
    }
}

impl QueryParams {
    /// A parameter's value; one holding a NUL is refused (no text holds one).
    pub fn str(&mut self, name: &str) -> Option<String> {
        let v = self.raw(name)?;
        if v.contains('\0') {
            self.errors.push(FieldError { field: name.into(), message: NUL_MESSAGE.into() });
            return None;
        }
        Some(v)
    }

    /// A parameter's value as sent, for a parser that reports its own errors
    /// (the search query language).
    pub fn raw(&mut self, name: &str) -> Option<String> {
        self.map.remove(name).filter(|v| !v.is_empty())
    }

    /// A typed parameter: given, even empty, it must parse.
    pub fn parse<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Option<T>, expected: &str) -> Option<T> {
        let raw = self.map.remove(name)?;
        if raw.contains('\0') {
            self.errors.push(FieldError { field: name.into(), message: NUL_MESSAGE.into() });
            return None;
        }
        self.parsed(name, &raw, parse, expected)
    }

    fn parsed<T>(&mut self, name: &str, raw: &str, parse: impl FnOnce(&str) -> Option<T>, expected: &str) -> Option<T> {
        match parse(raw) {
            Some(v) => Some(v),
            None => {
                self.errors.push(FieldError { field: name.into(), message: format!("expected {expected}") });
                None
            }
        }
    }

    pub fn time(&mut self, name: &str) -> Option<Timestamp> {
        self.parse(name, Timestamp::parse_rfc3339, "an RFC 3339 timestamp")
    }

    /// `cursor` (read by `parse`) and `limit` (up to the lists' maximum):
    /// where a page starts and how long it is.
    pub fn page<C>(&mut self, parse: impl FnOnce(&str) -> Option<C>, default: u32) -> (Option<C>, PageSize) {
        // An empty cursor is the first page.
        let cursor = self.str("cursor").and_then(|c| self.parsed("cursor", &c, parse, "a cursor from a previous page"));
        (cursor, self.page_size(default, ironcase_app::page::MAX_PAGE))
    }

    /// `limit`: the page size, from 1 to `max`.
    pub fn page_size(&mut self, default: u32, max: u32) -> PageSize {
        self.parse("limit", |s| PageSize::new(s.parse().ok()?, max), &format!("an integer from 1 to {max}"))
            .unwrap_or(PageSize::default_of(default))
    }

    pub fn error(&mut self, name: &str, message: &str) {
        self.errors.push(FieldError { field: name.into(), message: message.into() });
    }

    /// Fails with every bad or unknown parameter.
    /// [`QueryParams::finish`] for a route whose caller may add parameters
    /// of its own (an identity provider's callback): the ones not read are
    /// let be.
    pub fn finish_ignoring_others(mut self) -> Result<(), ApiError> {
        self.map.clear();
        self.finish()
    }

    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<String> = self.map.drain().map(|(k, _)| k).collect();
        unknown.sort();
        for k in unknown {
            self.errors.push(FieldError { field: k, message: "unknown parameter".into() });
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// A typed id from the path; one that cannot parse names nothing (404).
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The bearer token (an access token or an API key) of a request, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Request facts for the audit log, from the request's parts.
pub(crate) fn request_meta(parts_ext: &axum::http::Extensions, headers: &axum::http::HeaderMap) -> RequestMeta {
    let ip = parts_ext
        .get::<crate::middleware::ClientIp>()
        .map(|c| c.0.to_string())
        .or_else(|| parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()));
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
    RequestMeta { request_id: current_request_id(), source_ip: ip, user_agent: ua }
}

/// A request's credential that did not check out, as found before the
/// handler (by the API limiter): the handler answers it without a second
/// look-up (which would count the bad credential twice).
#[derive(Clone, Copy)]
pub(crate) struct AuthFailure(pub Option<i64>);

impl AuthFailure {
    pub(crate) fn of(e: &ironcase_app::AppError) -> Option<AuthFailure> {
        match e {
            ironcase_app::AppError::Unauthenticated => Some(AuthFailure(None)),
            ironcase_app::AppError::TooManyAttempts { retry_after_secs } => Some(AuthFailure(Some(*retry_after_secs))),
            _ => None,
        }
    }

    fn error(self) -> ironcase_app::AppError {
        match self.0 {
            None => ironcase_app::AppError::Unauthenticated,
            Some(retry_after_secs) => ironcase_app::AppError::TooManyAttempts { retry_after_secs },
        }
    }
}

/// The authenticated caller. Missing or bad credentials are 401; too many
/// bad ones from one address, 429.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        if let Some(f) = parts.extensions.get::<AuthFailure>() {
            return Err(f.error().into());
        }
        let Some(token) = bearer(&parts.headers) else { return Err(ironcase_app::AppError::Unauthenticated.into()) };
        let meta = request_meta(&parts.extensions, &parts.headers);
        let p = state.app.authenticate_from(token, &meta).await?;
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

/// Request facts for the audit log.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(&parts.extensions, &parts.headers)))
    }
}
