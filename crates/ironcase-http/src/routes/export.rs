//! `/organization/export`: the organisation's incidents, whole, as NDJSON.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use ironcase_app::export::{Export, ExportItem};
use ironcase_app::Principal;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::Meta;
use crate::routes::evidence::{CustodyRecord, EvidenceOut};
use crate::routes::incidents::{CommentOut, IncidentOut};
use crate::routes::iocs::IocSighting;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

fn line(v: serde_json::Value) -> Bytes {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    Bytes::from(b)
}

fn item_line(i: ExportItem) -> Bytes {
    let evidence: Vec<serde_json::Value> = i
        .evidence
        .into_iter()
        .map(|(e, custody)| {
            let mut v = serde_json::to_value(EvidenceOut::from(e)).unwrap_or_default();
            v["custody"] = serde_json::to_value(custody.into_iter().map(CustodyRecord::from).collect::<Vec<_>>()).unwrap_or_default();
            v
        })
        .collect();
    let mut v = serde_json::to_value(IncidentOut::from(i.incident)).unwrap_or_default();
    v["kind"] = json!("incident");
    v["comments"] = serde_json::to_value(i.comments.into_iter().map(CommentOut::from).collect::<Vec<_>>()).unwrap_or_default();
    v["indicators"] = serde_json::to_value(i.indicators.into_iter().map(IocSighting::from).collect::<Vec<_>>()).unwrap_or_default();
    v["evidence"] = json!(evidence);
    line(v)
}

enum Step {
    Header(Export),
    Pages(Export),
    Done,
}

/// Every incident of the organisation with its comments, indicators and
/// evidence metadata (with custody), oldest first, as newline-delimited
/// JSON: a `header` line, one `incident` line each, and an `end` line with
/// the count (a file without it was cut short). Streamed: memory stays flat
/// however large the organisation. Owners and admins, when the plan has
/// `export`; at most 10 an hour per credential (configurable); audited.
#[utoipa::path(get, path = "/organization/export", tag = "organization", security(("bearer" = [])),
    responses((status = 200, description = "the export", content_type = "application/x-ndjson"),
        (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn export(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<Response> {
    let d = s.app.check_export_rate(&p).await;
    if !d.allowed {
        return Ok(crate::middleware::rate_limited(&s, "export", &d, "too many exports; try again later"));
    }
    let ex = s.app.export_start(&p, &meta).await?;
    let filename = format!("ironcase-export-{}-{}.ndjson", ex.organization.slug, ex.started_at.0);
    let body = futures::stream::unfold(Step::Header(ex), |step| async move {
        match step {
            Step::Header(ex) => {
                let o = &ex.organization;
                let head = line(json!({
                    "kind": "header",
                    "format": "ironcase-export",
                    "version": 1,
                    "organization": { "id": o.id, "slug": o.slug, "name": o.name },
                    "exported_at": ex.started_at,
                }));
                Some((Ok::<_, std::io::Error>(head), Step::Pages(ex)))
            }
            Step::Pages(mut ex) => match ex.next_page().await {
                Ok(Some(items)) => {
                    let mut buf = Vec::new();
                    for i in items {
                        buf.extend_from_slice(&item_line(i));
                    }
                    Some((Ok(Bytes::from(buf)), Step::Pages(ex)))
                }
                Ok(None) => Some((Ok(line(json!({ "kind": "end", "incidents": ex.count }))), Step::Done)),
                Err(e) => {
                    // Headers are gone: say so in the body (no `end` line).
                    tracing::error!(error = %e, "export failed part way");
                    Some((Ok(line(json!({ "kind": "error", "code": "internal" }))), Step::Done))
                }
            },
            Step::Done => None,
        }
    });
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    crate::middleware::rate_headers(&mut res, &d);
    Ok(res)
}
