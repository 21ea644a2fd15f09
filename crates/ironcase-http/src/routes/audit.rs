//! `/audit`: the organisation's audit log and its verification.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use ironcase_app::checkpoints::{Consistency, ExportLine, Inclusion};
use ironcase_app::page::parse_seq;
use ironcase_app::store::audit::{CheckpointRow, EntryRow, Filter};
use ironcase_app::Principal;
use ironcase_domain::audit::{AuditCategory, AuditSeverity};
use ironcase_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify))
        .routes(routes!(public_key))
        .routes(routes!(checkpoint))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(export))
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub seq: i64,
    pub at: Timestamp,
    pub actor_id: Option<String>,
    pub actor_kind: String,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    /// From the action: authentication, authorization, data, configuration, security or compliance.
    pub category: AuditCategory,
    /// From the action and outcome: info, warning or critical.
    pub severity: AuditSeverity,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Some of the entry's personal data (its source address, user agent,
    /// an e-mail address in its details) was erased at a data subject's
    /// request: it is missing here, and the entry still verifies.
    pub personal_data_erased: bool,
    pub prev_hash: String,
    pub hash: String,
}

impl From<EntryRow> for AuditEntryOut {
    fn from(e: EntryRow) -> Self {
        let (category, severity) = (ironcase_domain::audit::category(&e.action), ironcase_domain::audit::severity(&e.action, &e.outcome));
        AuditEntryOut {
            seq: e.seq,
            at: e.at,
            actor_id: e.actor_id,
            actor_kind: e.actor_kind,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            category,
            severity,
            outcome: e.outcome,
            request_id: e.request_id,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            personal_data_erased: e.erased,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])),
    params(("action" = Option<String>, Query), ("actor_id" = Option<String>, Query), ("resource_type" = Option<String>, Query),
        ("resource_id" = Option<String>, Query), ("outcome" = Option<String>, Query),
        ("category" = Option<String>, Query, description = "authentication, authorization, data, configuration, security or compliance"),
        ("severity" = Option<String>, Query, description = "info, warning or critical"),
        ("source_ip" = Option<String>, Query), ("request_id" = Option<String>, Query, description = "every entry of one request (correlation)"),
        ("from" = Option<String>, Query),
        ("to" = Option<String>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<AuditEntryOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<AuditEntryOut>>> {
    let f = Filter {
        action: q.str("action"),
        actor_id: q.str("actor_id"),
        resource_type: q.str("resource_type"),
        resource_id: q.str("resource_id"),
        outcome: q.str("outcome"),
        source_ip: q.str("source_ip"),
        source_ip_tag: None,
        request_id: q.str("request_id"),
        category: q.parse("category", AuditCategory::parse, "authentication, authorization, data, configuration, security or compliance"),
        severity: q.parse("severity", AuditSeverity::parse, "info, warning or critical"),
        from: q.time("from"),
        to: q.time("to"),
    };
    let (before, size) = q.page(parse_seq, 50);
    q.finish()?;
    Ok(axum::Json(s.app.audit_list(&p, &meta, &f, before, size).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyOut {
    pub ok: bool,
    pub entries: i64,
    /// Hash of the newest entry.
    pub head: Option<String>,
    /// The first sequence number that does not check out.
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Recomputes the organisation's hash chain.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerifyOut), (status = 403, body = Problem)))]
pub async fn verify(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<VerifyOut>> {
    let v = s.app.audit_verify(&p, &meta).await?;
    Ok(axum::Json(VerifyOut { ok: v.ok, entries: v.entries, head: v.head, first_bad_seq: v.first_bad_seq, reason: v.reason }))
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeyOut {
    pub id: String,
    /// The verifier key as C2SP signed notes write it: `name+hash+base64(0x01 ‖ Ed25519 key)`.
    pub vkey: String,
    /// Whether it signs new checkpoints (the others verified older ones).
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeys {
    pub keys: Vec<PublicKeyOut>,
}

/// The keys that sign audit checkpoints. Public: anyone holding a
/// checkpoint checks it with them.
#[utoipa::path(get, path = "/audit/public-key", tag = "audit", responses((status = 200, body = PublicKeys)))]
pub async fn public_key(State(s): State<AppState>) -> axum::Json<PublicKeys> {
    let keys = s.app.audit_public_keys().into_iter().map(|k| PublicKeyOut { id: k.id, vkey: k.vkey, current: k.current }).collect();
    axum::Json(PublicKeys { keys })
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointOut {
    /// Entries in the tree.
    pub size: i64,
    /// The RFC 6962 root, base64.
    pub root: String,
    /// The C2SP signed note: origin, size, root, and a signature line.
    pub note: String,
    pub signed_at: Timestamp,
}

fn b64_hex(hex_str: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hex::decode(hex_str).unwrap_or_default())
}

impl From<CheckpointRow> for CheckpointOut {
    fn from(k: CheckpointRow) -> Self {
        CheckpointOut { size: k.size, root: b64_hex(&k.root), note: k.note, signed_at: k.at }
    }
}

/// The organisation's latest signed checkpoint of its audit log; 404 until
/// the first is signed.
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn checkpoint(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<CheckpointOut>> {
    Ok(axum::Json(s.app.audit_checkpoint(&p, &meta).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct InclusionOut {
    pub seq: i64,
    /// The tree size the proof is for.
    pub size: i64,
    /// The leaf's index in the tree (`seq - 1`).
    pub leaf_index: i64,
    /// `SHA-256(0x00 ‖ entry)`, base64.
    pub leaf_hash: String,
    /// The root at `size`, base64.
    pub root: String,
    /// The audit path, leaf to root, base64 (RFC 6962).
    pub proof: Vec<String>,
}

impl From<Inclusion> for InclusionOut {
    fn from(i: Inclusion) -> Self {
        InclusionOut {
            seq: i.seq,
            size: i.size,
            leaf_index: i.seq - 1,
            leaf_hash: i.leaf_hash.to_string(),
            root: i.root.to_string(),
            proof: i.proof.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Proves that entry `seq` is in the tree of `size` entries (default: the
/// latest checkpoint's).
#[utoipa::path(get, path = "/audit/proof/inclusion", tag = "audit", security(("bearer" = [])),
    params(("seq" = i64, Query, minimum = 1), ("size" = Option<i64>, Query, minimum = 1)),
    responses((status = 200, body = InclusionOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn inclusion(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<InclusionOut>> {
    let seq = q.parse("seq", |v| v.parse::<i64>().ok(), "an entry's sequence number");
    let size = q.parse("size", |v| v.parse::<i64>().ok(), "a tree size");
    if seq.is_none() {
        q.error("seq", "is required: an entry's sequence number");
    }
    q.finish()?;
    Ok(axum::Json(s.app.audit_inclusion(&p, &meta, seq.unwrap_or(0), size).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyOut {
    pub from: i64,
    pub to: i64,
    /// The roots at `from` and `to`, base64.
    pub from_root: String,
    pub to_root: String,
    /// The consistency proof, base64 (RFC 6962).
    pub proof: Vec<String>,
}

impl From<Consistency> for ConsistencyOut {
    fn from(c: Consistency) -> Self {
        ConsistencyOut {
            from: c.from,
            to: c.to,
            from_root: c.from_root.to_string(),
            to_root: c.to_root.to_string(),
            proof: c.proof.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Proves that the tree of `to` entries (default: the latest checkpoint's)
/// extends the tree of `from`: nothing before `from` was changed.
#[utoipa::path(get, path = "/audit/proof/consistency", tag = "audit", security(("bearer" = [])),
    params(("from" = i64, Query, minimum = 1), ("to" = Option<i64>, Query, minimum = 1)),
    responses((status = 200, body = ConsistencyOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn consistency(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<ConsistencyOut>> {
    let from = q.parse("from", |v| v.parse::<i64>().ok(), "a tree size");
    let to = q.parse("to", |v| v.parse::<i64>().ok(), "a tree size");
    if from.is_none() {
        q.error("from", "is required: a tree size");
    }
    q.finish()?;
    Ok(axum::Json(s.app.audit_consistency(&p, &meta, from.unwrap_or(0), to).await?.into()))
}

fn line(l: &ExportLine) -> Bytes {
    let mut b = serde_json::to_vec(l).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// The CSV export's columns.
const CSV_COLUMNS: [&str; 16] = [
    "seq",
    "at",
    "actor_id",
    "actor_kind",
    "action",
    "category",
    "severity",
    "resource_type",
    "resource_id",
    "outcome",
    "request_id",
    "source_ip",
    "user_agent",
    "details",
    "hash",
    "personal_data_erased",
];

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or
/// a carriage return first) is neutralised with a leading `'`.
fn cell(v: &str) -> std::borrow::Cow<'_, str> {
    match v.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{v}").into(),
        _ => v.into(),
    }
}

fn csv_rows(lines: &[ExportLine], header: bool) -> Bytes {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    if header {
        let _ = w.write_record(CSV_COLUMNS);
    }
    for l in lines {
        let ExportLine::Entry(e) = l else { continue };
        let at = Timestamp(e.at).to_rfc3339();
        let (category, severity) = (ironcase_domain::audit::category(&e.action), ironcase_domain::audit::severity(&e.action, &e.outcome));
        let seq = e.seq.to_string();
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let row = [
            seq,
            at,
            o(&e.actor_id),
            e.actor_kind.clone(),
            e.action.clone(),
            category.as_str().to_owned(),
            severity.as_str().to_owned(),
            o(&e.resource_type),
            o(&e.resource_id),
            e.outcome.clone(),
            o(&e.request_id),
            o(&e.source_ip),
            o(&e.user_agent),
            e.details.clone(),
            e.hash.clone(),
            e.personal_data_erased.to_string(),
        ];
        let _ = w.write_record(row.iter().map(|v| cell(v).into_owned()));
    }
    Bytes::from(w.into_inner().unwrap_or_default())
}

/// The organisation's whole audit log. `format=ndjson` (the default) is
/// for `ironcase audit verify --export`: a `header` line (the log's origin),
/// one `entry` line each (every field the chain hashes) — or, for an entry
/// whose personal data is sealed, a `sealed_entry` line (the commitments to
/// it) after a `personal` line with the data that can still be read —
/// every signed `checkpoint`, and an `end` line with the count. `format=csv` is for
/// people: one row per entry (RFC 4180; columns `seq, at, actor_id,
/// actor_kind, action, category, severity, resource_type, resource_id,
/// outcome, request_id, source_ip, user_agent, details, hash,
/// personal_data_erased`), cells a
/// spreadsheet would run as formulas neutralised. Streamed; a recent sign-in
/// needed; audited.
#[utoipa::path(get, path = "/audit/export", tag = "audit", security(("bearer" = [])),
    params(("format" = Option<String>, Query, description = "ndjson (default) or csv")),
    responses((status = 200, description = "the log", content(("application/x-ndjson"), ("text/csv"))),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn export(State(s): State<AppState>, p: Principal, Meta(meta): Meta, mut q: QueryParams) -> ApiResult<Response> {
    let csv = q.parse("format", |v| matches!(v, "ndjson" | "csv").then(|| v == "csv"), "ndjson or csv").unwrap_or(false);
    q.finish()?;
    let ex = s.app.audit_export_start(&p, &meta, csv).await?;
    if csv {
        let body = futures::stream::unfold((true, Some(ex)), |(first, ex)| async move {
            let mut ex = ex?;
            match ex.next_lines().await {
                Ok(Some(lines)) => Some((Ok::<_, std::io::Error>(csv_rows(&lines, first)), (false, Some(ex)))),
                Ok(None) if first => Some((Ok(csv_rows(&[], true)), (false, None))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "the audit export stopped");
                    Some((Err(std::io::Error::other("the export stopped")), (false, None)))
                }
            }
        });
        let mut res = Response::new(Body::from_stream(body));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        res.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ironcase-audit.csv\""));
        return Ok(res);
    }
    let header = ExportLine::Header { tenant: p.org.to_string(), origin: ex.origin.clone(), exported_at: ex.started_at };
    let body = futures::stream::unfold((Some(header), Some(ex), 0i64), |(header, ex, count)| async move {
        if let Some(h) = header {
            return Some((Ok::<_, std::io::Error>(line(&h)), (None, ex, count)));
        }
        let mut ex = ex?;
        match ex.next_lines().await {
            Ok(Some(lines)) => {
                let n = lines.iter().filter(|l| matches!(l, ExportLine::Entry(_) | ExportLine::SealedEntry(_))).count() as i64;
                let mut buf = Vec::new();
                for l in &lines {
                    buf.extend_from_slice(&line(l));
                }
                Some((Ok(Bytes::from(buf)), (None, Some(ex), count + n)))
            }
            Ok(None) => Some((Ok(line(&ExportLine::End { entries: count })), (None, None, count))),
            Err(e) => {
                tracing::error!(error = %e, "the audit export stopped");
                Some((Err(std::io::Error::other("the export stopped")), (None, None, count)))
            }
        }
    });
    let mut res = Response::new(Body::from_stream(body));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    res.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ironcase-audit.ndjson\""));
    Ok(res)
}
