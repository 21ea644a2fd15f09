//! The console's stylesheet and script, built into the binary and served
//! under names that carry a hash of their content, so that a browser keeps
//! them for a year (`immutable`) and a new build is fetched at once. Each is
//! compressed once (gzip) for clients that accept it.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    path: String,
    body: &'static [u8],
    gzip: Vec<u8>,
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let gzip = gz.write_all(body.as_bytes()).and_then(|_| gz.finish()).unwrap_or_default();
    Asset { path: format!("/assets/{stem}-{hash}.{ext}"), body: body.as_bytes(), gzip, content_type }
}

fn all() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            asset("console", "css", include_str!("../../assets/console.css"), "text/css; charset=utf-8"),
            asset("console", "js", include_str!("../../assets/console.js"), "text/javascript; charset=utf-8"),
        ]
    })
}

pub(crate) fn css_path() -> &'static str {
    &all()[0].path
}

pub(crate) fn js_path() -> &'static str {
    &all()[1].path
}

/// `GET /assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = all().iter().find(|a| a.path.strip_prefix("/assets/") == Some(name.as_str())) else {
        return super::layout::not_found();
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")));
    let mut r = if gzip_ok && !a.gzip.is_empty() {
        let mut r = (StatusCode::OK, a.gzip.clone()).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, a.body).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    r
}
