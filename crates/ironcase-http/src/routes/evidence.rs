//! Evidence: streamed multipart upload, metadata, list, verified download,
//! chain of custody, deletion with a tombstone.

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ironcase_app::evidence::NewEvidence;
use ironcase_app::store::evidence::{CustodyRow, EvidenceRow};
use ironcase_app::ErrorCode;
use ironcase_app::{AppError, Principal};
use ironcase_domain::{CustodyAction, EvidenceId, EvidenceKind, IncidentId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_ref;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, path_id, Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;
use ironcase_app::page::parse_keyset;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The file streams through; its own limit (the largest evidence file)
        // is enforced while it does, not by the general body limit.
        .routes({
            let (schemas, paths, upload) = routes!(upload);
            (schemas, paths, upload.layer(DefaultBodyLimit::disable()))
        })
        .routes(routes!(list))
        .routes(routes!(read, remove))
        .routes(routes!(content))
        .routes(routes!(custody, add_custody))
}

/// The `metadata` part of an upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceMetadata {
    /// The file's name (a path is cut to its last part).
    pub name: String,
    pub kind: EvidenceKind,
    #[serde(default)]
    pub description: Option<String>,
    /// SHA-256 of the file as the client computed it; a different upload is refused.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub collected_by: Option<String>,
    /// When it was collected (RFC 3339).
    // Described inline rather than as a `oneOf` of null and a timestamp:
    // schemathesis reads such a `oneOf` in a multipart part as forbidding null.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub collected_at: Option<Timestamp>,
}

/// The multipart form: `metadata` first, then `file`, and nothing else.
/// (Never deserialised: the upload streams; `Deserialize` only lets the
/// document say that no other part is taken.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// JSON, as `EvidenceMetadata`.
    metadata: EvidenceMetadata,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Serialize, ToSchema)]
pub struct EvidenceOut {
    pub id: EvidenceId,
    pub incident_id: IncidentId,
    pub name: String,
    pub kind: EvidenceKind,
    pub description: Option<String>,
    /// Bytes of the original file.
    pub size: i64,
    /// Lower-case hex SHA-256 of the original file.
    pub sha256: String,
    pub collected_by: Option<String>,
    pub collected_at: Option<Timestamp>,
    pub uploaded_by: String,
    pub created_at: Timestamp,
    /// Set when the file was deleted; the record stays as a tombstone.
    pub deleted_at: Option<Timestamp>,
    pub deleted_by: Option<String>,
    pub delete_reason: Option<String>,
}

impl From<EvidenceRow> for EvidenceOut {
    fn from(e: EvidenceRow) -> Self {
        EvidenceOut {
            id: e.id,
            incident_id: e.incident_id,
            name: e.name,
            kind: e.kind,
            description: e.description,
            size: e.size,
            sha256: e.sha256,
            collected_by: e.collected_by,
            collected_at: e.collected_at,
            uploaded_by: e.uploaded_by,
            created_at: e.created_at,
            deleted_at: e.deleted_at,
            deleted_by: e.deleted_by,
            delete_reason: e.delete_reason,
        }
    }
}

/// Largest `metadata` part.
const MAX_METADATA: usize = 64 * 1024;
/// What a multipart body may carry besides the file: boundaries, part
/// headers, the metadata.
const ENVELOPE: u64 = MAX_METADATA as u64 + 16 * 1024;

fn interrupted(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large");
    }
    ApiError::new(ErrorCode::MalformedMultipart, "the multipart body is malformed or ended early; nothing was kept")
}

/// A well-formed body whose parts are not the ones the upload takes, in
/// order: a rule the OpenAPI document cannot state, so 422.
fn expected_part(what: &str) -> ApiError {
    ApiError::new(ErrorCode::PartsOutOfOrder, format!("expected a `{what}` part (send `metadata` first, then `file`)"))
}

async fn read_metadata(mut field: Field<'_>) -> ApiResult<EvidenceMetadata> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        if bytes.len() + chunk.len() > MAX_METADATA {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, "the metadata part is larger than 64 KiB"));
        }
        bytes.extend_from_slice(&chunk);
    }
    parse_json(&bytes)
}

/// Uploads a file as a stream: multipart with a `metadata` part (JSON) and
/// then a `file` part. The SHA-256 is computed as the file arrives and the file
/// is stored encrypted; a file over the limit is refused (413) as soon as the
/// limit is passed, and an interrupted upload leaves nothing behind.
#[utoipa::path(post, path = "/incidents/{id}/evidence", tag = "evidence", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = EvidenceOut, headers(("Location" = String))), (status = 413, body = Problem),
        (status = 400, body = Problem, description = "`malformed_multipart`"),
        (status = 422, body = Problem, description = "invalid metadata, `parts_out_of_order` or `hash_mismatch`"), (status = 404, body = Problem)))]
pub async fn upload(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let r = incident_ref(&id)?;
    let max = s.app.settings().max_evidence_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(ENVELOPE)) {
        return Err(AppError::PayloadTooLarge { limit: max }.into());
    }
    let mut form = Multipart::from_request(req, &s)
        .await
        .map_err(|_| ApiError::new(ErrorCode::UnsupportedMediaType, "send the evidence as multipart/form-data"))?;
    let field = form.next_field().await.map_err(interrupted)?.ok_or_else(|| expected_part("metadata"))?;
    if field.name() != Some("metadata") {
        return Err(expected_part("metadata"));
    }
    let m = read_metadata(field).await?;
    let input = NewEvidence {
        name: m.name,
        kind: m.kind,
        description: m.description,
        sha256: m.sha256,
        collected_by: m.collected_by,
        collected_at: m.collected_at,
    };
    let mut up = s.app.evidence_begin(&p, &meta, r, input).await?;
    let mut field = form.next_field().await.map_err(interrupted)?.ok_or_else(|| expected_part("file"))?;
    if field.name() != Some("file") {
        return Err(expected_part("file"));
    }
    while let Some(chunk) = field.chunk().await.map_err(interrupted)? {
        up.push(&chunk).await?;
    }
    drop(field);
    if form.next_field().await.map_err(interrupted)?.is_some() {
        return Err(ApiError::new(ErrorCode::PartsOutOfOrder, "nothing may follow the `file` part"));
    }
    let row = s.app.evidence_finish(up).await?;
    let location = format!("/api/v1/evidence/{}", row.id);
    let mut res = (StatusCode::CREATED, axum::Json(EvidenceOut::from(row))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The evidence of an incident, oldest first (deleted ones as tombstones).
#[utoipa::path(get, path = "/incidents/{id}/evidence", tag = "evidence", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<EvidenceOut>), (status = 404, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<EvidenceOut>>> {
    let (cursor, size) = q.page(parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.evidence_list(&p, &meta, incident_ref(&id)?, cursor, size).await?.into()))
}

/// One piece of evidence's metadata.
#[utoipa::path(get, path = "/evidence/{id}", tag = "evidence", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = EvidenceOut), (status = 404, body = Problem)))]
pub async fn read(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<EvidenceOut>> {
    Ok(axum::Json(s.app.evidence_get(&p, &meta, path_id(&id)?).await?.into()))
}

/// `attachment; filename="…"; filename*=UTF-8''…` for any name.
fn disposition(name: &str) -> String {
    let ascii: String = name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Streams the original bytes back. The stored file is checked against its
/// SHA-256 before the first byte is sent (a mismatch is 500
/// `integrity_failure`, recorded and audited, never served), and again as it
/// streams. Every download is audited and added to the chain of custody.
#[utoipa::path(get, path = "/evidence/{id}/content", tag = "evidence", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, headers(("Repr-Digest" = String))),
        (status = 404, body = Problem), (status = 410, body = Problem), (status = 500, body = Problem, description = "`integrity_failure`")))]
pub async fn content(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<Response> {
    let (row, download) = s.app.evidence_download(&p, &meta, path_id(&id)?).await?;
    Ok(streamed(&s, p, meta, row, download))
}

/// A download's bytes as a response, checked as they stream (the API's and
/// the console's).
pub(crate) fn streamed(
    s: &AppState,
    p: Principal,
    meta: ironcase_app::RequestMeta,
    row: ironcase_app::store::evidence::EvidenceRow,
    download: ironcase_app::evidence::Download,
) -> Response {
    let size = download.size();
    let (app, row2) = (s.app.clone(), row.clone());
    let stream = futures::stream::unfold(Some(download), move |state| {
        let (app, p, meta, row) = (app.clone(), p.clone(), meta.clone(), row2.clone());
        async move {
            let mut d = state?;
            match d.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(axum::body::Bytes::from(chunk)), Some(d))),
                Ok(None) => None,
                Err(_) => {
                    // Checked before sending, so this means the file changed
                    // while it streamed: cut the response short and record it.
                    app.evidence_integrity_failed(&p, &meta, &row).await;
                    Some((Err(std::io::Error::other("evidence failed its integrity check")), None))
                }
            }
        }
    });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&disposition(&row.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(raw) = hex::decode(&row.sha256) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{b64}:")) {
            h.insert("repr-digest", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", row.sha256)) {
        h.insert(header::ETAG, v);
    }
    res
}

#[derive(Serialize, ToSchema)]
pub struct CustodyRecord {
    /// 1, 2, … in the order the steps happened.
    pub seq: i64,
    pub action: CustodyAction,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub at: Timestamp,
    pub source_ip: Option<String>,
    pub reason: Option<String>,
    /// For `transferred`: to whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For `collected`: by whom, as the uploader declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected_by: Option<String>,
}

impl From<CustodyRow> for CustodyRecord {
    fn from(c: CustodyRow) -> Self {
        let collected = c.action == CustodyAction::Collected;
        CustodyRecord {
            seq: c.seq,
            action: c.action,
            actor_id: c.actor_id,
            actor_kind: c.actor_kind,
            at: c.at,
            source_ip: c.source_ip,
            reason: c.reason,
            to: if collected { None } else { c.to.clone() },
            collected_by: if collected { c.to } else { None },
        }
    }
}

/// The chain of custody, in order.
#[utoipa::path(get, path = "/evidence/{id}/custody", tag = "evidence", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 100"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<CustodyRecord>), (status = 404, body = Problem)))]
pub async fn custody(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<CustodyRecord>>> {
    let (after, size) = q.page(ironcase_app::page::parse_seq, 100);
    q.finish()?;
    Ok(axum::Json(s.app.custody_list(&p, &meta, path_id(&id)?, after, size).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCustody {
    /// Only `transferred`: the other steps are recorded by the server.
    pub action: CustodyAction,
    pub to: String,
    pub reason: String,
}

/// Records a hand-over of the evidence.
#[utoipa::path(post, path = "/evidence/{id}/custody", tag = "evidence", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = AddCustody, responses((status = 201, body = CustodyRecord), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_custody(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<AddCustody>,
) -> ApiResult<(StatusCode, axum::Json<CustodyRecord>)> {
    let row = s.app.custody_add(&p, &meta, path_id(&id)?, b.action, &b.to, &b.reason).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteEvidence {
    pub reason: String,
}

/// Deletes the file (lead and above, with a reason). The record stays as a
/// tombstone with its hash and chain of custody.
#[utoipa::path(delete, path = "/evidence/{id}", tag = "evidence", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = DeleteEvidence, responses((status = 200, body = EvidenceOut), (status = 404, body = Problem), (status = 410, body = Problem)))]
pub async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<DeleteEvidence>,
) -> ApiResult<axum::Json<EvidenceOut>> {
    Ok(axum::Json(s.app.evidence_delete(&p, &meta, path_id(&id)?, &b.reason).await?.into()))
}
