//! Data-subject requests in the console: make an access request (a member,
//! or anyone by address), see each request's deadline, download its
//! archive once.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::privacy::Subject;
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
        p { "What the organisation holds about someone, as a machine-readable archive (GDPR Art. 15 and 20, CCPA's right to know). Each request is answered within 30 days; its archive can be downloaded once, within 7 days." }
        @for e in &errors { p.error role="alert" { (e) } }
        form method="post" action="/privacy" {
            input type="hidden" name="csrf" value=(b.csrf);
            label for="dsr-email" { "The subject's e-mail address" }
            input id="dsr-email" name="email" type="email" required maxlength="254";
            button type="submit" { "Make an access request" }
        }
        @if found.items.is_empty() { p.empty { "No request yet." } }
        @else {
            table {
                thead { tr { th scope="col" { "Made" } th scope="col" { "Subject" } th scope="col" { "Due" } th scope="col" { "Status" } th scope="col" { "Archive" } } }
                tbody {
                    @for r in &found.items {
                        tr {
                            td { (when(r.created_at)) }
                            td { (r.subject_email.as_deref().unwrap_or("")) }
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

/// `POST /privacy`: an access request for the address typed.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    match s.app.privacy_request_create(&b.p, &b.meta, Subject::Email(form.get("email").to_owned())).await {
        Ok(_) => privacy_page(&s, &b, None, Vec::new(), StatusCode::OK).await,
        Err(e @ (AppError::Validation(_) | AppError::NotFound)) => {
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
