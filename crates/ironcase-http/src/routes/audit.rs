//! `/audit`: the organisation's audit log and its verification.

use axum::extract::State;
use ironcase_app::page::parse_seq;
use ironcase_app::store::audit::{EntryRow, Filter};
use ironcase_app::Principal;
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
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(verify))
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
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<EntryRow> for AuditEntryOut {
    fn from(e: EntryRow) -> Self {
        AuditEntryOut {
            seq: e.seq,
            at: e.at,
            actor_id: e.actor_id,
            actor_kind: e.actor_kind,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            request_id: e.request_id,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])),
    params(("action" = Option<String>, Query), ("actor_id" = Option<String>, Query), ("resource_type" = Option<String>, Query),
        ("resource_id" = Option<String>, Query), ("outcome" = Option<String>, Query), ("from" = Option<String>, Query),
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
