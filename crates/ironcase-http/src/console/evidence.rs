//! Evidence in the console: an incident's files (upload, with a progress bar
//! drawn by the page's script; download; each one's hash), and one file's
//! chain of custody. Uploads stream to the evidence store as the API's do.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::evidence::NewEvidence;
use ironcase_app::incidents::parse_ref;
use ironcase_app::page::{Page, PageSize};
use ironcase_app::store::evidence::EvidenceRow;
use ironcase_domain::{EvidenceId, EvidenceKind};
use maud::{html, Markup};

use super::layout::{more, page, respond, select, Failure, Nav, Ref};
use super::session::{same_origin, Browser};
use crate::AppState;

fn size(n: i64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The incident page's section: its files, and the upload form when
/// `may_add`.
pub(crate) fn section(incident: &str, rows: &Page<EvidenceRow>, may_add: bool, csrf: &str) -> Markup {
    let kinds: Vec<&str> = EvidenceKind::ALL.iter().map(|k| k.as_str()).collect();
    html! {
        section.evidence id="evidence" {
            h2 { "Evidence" }
            @if rows.items.is_empty() { p.empty { "No files yet." } } @else {
                ul {
                    @for e in &rows.items {
                        li {
                            a href={ "/evidence/" (e.id) } { (e.name) } " · " (e.kind.as_str().replace('_', " ")) " · " (size(e.size))
                            @if e.blob_key.is_some() { " · " a href={ "/evidence/" (e.id) "/content" } download { "download" } } @else { " · deleted" }
                            br;
                            span.hash { "SHA-256 " code { (e.sha256) } }
                        }
                    }
                }
            }
            (more(incident, "files", rows.next_cursor.as_deref(), "evidence", "More files"))
            @if may_add {
                // The fields come before the file: the server reads them first.
                form.evidence-upload method="post" action={ "/incidents/" (incident) "/evidence" } enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    (select("evidence-kind", "Kind", &kinds, Some("other"), None))
                    label for="evidence-file" { "File" }
                    input id="evidence-file" name="file" type="file" required;
                    progress hidden max="100" value="0" aria-label="Upload progress" {}
                    button type="submit" { "Upload" }
                }
            }
        }
    }
}

/// `POST /incidents/{ref}/evidence`: `csrf`, `evidence-kind`, then `file`.
pub(crate) async fn upload(State(s): State<AppState>, b: Browser, Ref(raw): Ref, req: Request) -> Result<Response, Failure> {
    if !same_origin(req.headers()) {
        return Err(Failure::Forbidden);
    }
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let bad = |why: &str| Failure::BadRequest(why.to_owned());
    let mut form = Multipart::from_request(req, &s).await.map_err(|_| bad("the upload did not arrive as a form with a file"))?;
    let mut fields = std::collections::HashMap::new();
    let mut file = loop {
        let Some(field) = form.next_field().await.map_err(|_| bad("the upload was cut short"))? else {
            return Err(bad("the form has no file"));
        };
        match field.name() {
            Some("file") => break field,
            Some(name @ ("csrf" | "evidence-kind")) => {
                let name = name.to_owned();
                let value = field.text().await.map_err(|_| bad("the upload was cut short"))?;
                fields.insert(name, value);
            }
            _ => return Err(bad("the form has a field it should not")),
        }
    };
    if !s.app.csrf_valid(&b.p, fields.get("csrf").map_or("", String::as_str)) {
        return Err(Failure::Csrf);
    }
    let kind = fields.get("evidence-kind").and_then(|k| EvidenceKind::parse(k)).ok_or_else(|| bad("choose a kind of evidence"))?;
    let name = file.file_name().map(str::to_owned).filter(|n| !n.is_empty()).unwrap_or_else(|| "upload".into());
    let input = NewEvidence { name, kind, description: None, sha256: None, collected_by: None, collected_at: None };
    let mut up = s.app.evidence_begin(&b.p, &b.meta, r, input).await?;
    while let Some(chunk) = file.chunk().await.map_err(|_| bad("the upload was cut short"))? {
        up.push(&chunk).await?;
    }
    let row = s.app.evidence_finish(up).await?;
    Ok(Redirect::to(&format!("/incidents/{}#evidence", row.incident_id)).into_response())
}

/// `GET /evidence/{id}`: one file and its chain of custody.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    let id: EvidenceId = raw.parse().map_err(|_| Failure::NotFound)?;
    let e = s.app.evidence_get(&b.p, &b.meta, id).await?;
    let custody = s.app.custody_list(&b.p, &b.meta, id, None, PageSize::default_of(200)).await?;
    let body = html! {
        h1 { (e.name) }
        p { (e.kind.as_str().replace('_', " ")) " · " (size(e.size)) " · " a href={ "/incidents/" (e.incident_id) } { "its incident" } }
        p { "SHA-256 " code { (e.sha256) } }
        @if e.blob_key.is_some() { p { a href={ "/evidence/" (e.id) "/content" } download { "Download" } } }
        h2 { "Chain of custody" }
        ol.custody {
            @for c in &custody.items {
                li { (c.at.to_rfc3339()) " · " (c.action.as_str()) " by " (c.actor_id.as_deref().unwrap_or("Ironcase"))
                    @if let Some(ip) = &c.source_ip { " from " (ip) }
                    @if let Some(r) = &c.reason { " · " (r) } }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(&e.name, Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /evidence/{id}/content`: the file, checked as it streams, added to
/// its chain of custody.
pub(crate) async fn download(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    let id: EvidenceId = raw.parse().map_err(|_| Failure::NotFound)?;
    let (row, d) = s.app.evidence_download(&b.p, &b.meta, id).await?;
    Ok(crate::routes::evidence::streamed(&s, b.p, b.meta, row, d))
}
