//! Data-subject requests in the console: make an access or erasure request
//! (a member, or anyone by address), see each request's deadline, download
//! an access request's archive once.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::privacy::{Kind, Subject};
use ironcase_app::AppError;
use ironcase_domain::PrivacyRequestId;
use maud::html;

use super::layout::{next_link, page, reasons, respond, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

async fn privacy_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, PrivacyRequestId)>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let found = s.app.privacy_requests(&b.p, &b.meta, cursor, PageSize::default_of(50)).await?;
    let body = html! {
        h1 { "Data-subject requests" }
        p { "Access: what the organisation holds about someone, as a machine-readable archive (GDPR Art. 15 and 20, CCPA's right to know), to download once within 7 days. Erasure (Art. 17): their addresses, user agents and e-mail addresses in the audit log made unreadable for good, the log still verifying; a member is removed and their sessions and API keys end; their comments stay, the author shown as erased. Each request is answered within 30 days." }
        @for e in &errors { p.error role="alert" { (e) } }
        form method="post" action="/privacy" {
            input type="hidden" name="csrf" value=(b.csrf);
            label for="dsr-email" { "The subject's e-mail address" }
            input id="dsr-email" name="email" type="email" required maxlength="254";
            label for="dsr-type" { "Request" }
            select id="dsr-type" name="type" {
                option value="access" selected { "Access (an archive)" }
                option value="erasure" { "Erasure (cannot be undone)" }
            }
            button type="submit" { "Make the request" }
        }
        @if found.items.is_empty() { p.empty { "No request yet." } }
        @else {
            table {
                thead { tr { th scope="col" { "Made" } th scope="col" { "Request" } th scope="col" { "Subject" } th scope="col" { "Due" } th scope="col" { "Status" } th scope="col" { "Archive" } } }
                tbody {
                    @for r in &found.items {
                        tr {
                            td { (when(r.created_at)) }
                            td { (r.kind) }
                            td {
                                @if let Some(e) = &r.subject_email { (e) }
                                @else if let Some(u) = r.subject_id { "member " (u) }
                                @else { "erased" }
                            }
                            td { (when(r.due_at)) }
                            td { (r.status) }
                            td {
                                @if r.downloaded_at.is_none() && r.archive_sha256.is_some() {
                                    form method="post" action={ "/privacy/" (r.id) "/archive" } {
                                        input type="hidden" name="csrf" value=(b.csrf);
                                        button type="submit" { "Download (once)" }
                                    }
                                } @else if let Some(t) = r.downloaded_at { "downloaded " (when(t)) }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/privacy", found.next_cursor.as_deref()))
    };
    Ok(respond(status, page("Data-subject requests", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /privacy`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let cursor = q.parse("cursor", parse_keyset::<PrivacyRequestId>, "a cursor");
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    privacy_page(&s, &b, cursor, Vec::new(), StatusCode::OK).await
}

/// `POST /privacy`: a request (`type`: access or erasure) for the address typed.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let kind = match form.get("type") {
        "erasure" => Kind::Erasure,
        "access" | "" => Kind::Access,
        _ => return Err(Failure::BadRequest("the request is access or erasure".into())),
    };
    match s.app.privacy_request_create(&b.p, &b.meta, kind, Subject::Email(form.get("email").to_owned())).await {
        Ok(_) => privacy_page(&s, &b, None, Vec::new(), StatusCode::OK).await,
        Err(e @ (AppError::Validation(_) | AppError::NotFound | AppError::Conflict { .. })) => {
            let (status, errors) = sentences(e);
            privacy_page(&s, &b, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/privacy")),
    }
}

/// `POST /privacy/{id}/archive`: the archive, once.
pub(crate) async fn archive(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: PrivacyRequestId = raw.parse().map_err(|_| Failure::NotFound)?;
    let bytes = s.app.privacy_archive(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, "/privacy"))?;
    let mut res = bytes.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ironcase-subject-access.json\""));
    Ok(res)
}
