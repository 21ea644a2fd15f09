//! `/api-keys`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::apikeys::{CreatedKey, KeyChange, NewApiKey};
use ironcase_app::store::apikey::ApiKeyRow;
use ironcase_app::Principal;
use ironcase_domain::{ApiKeyId, Role, RoleId, Timestamp, Tlp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Meta, QueryParams};
use crate::page::PageOut;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(revoke, update)).routes(routes!(rotate))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// A built-in role or one of the organisation's own (by id or name),
    /// granting no more than the creator holds.
    #[schema(min_length = 1, max_length = 64)]
    pub role: String,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// The most restricted TLP the key may see: incidents (and indicators)
    /// above it do not exist for the key. Omitted: no ceiling.
    #[serde(default)]
    pub tlp_max: Option<Tlp>,
    /// Hold this key to fewer requests per minute than the plan allows.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    pub rate_per_minute: Option<u32>,
    /// The addresses and ranges the key may call from (within the
    /// organisation's allow-list), at most 100; omitted or empty: anywhere.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allowed_cidrs: Vec<String>,
    /// An Ed25519 public key (its 32 bytes, base64): the key's sensitive
    /// requests must then carry an HTTP message signature (RFC 9421).
    #[serde(default)]
    #[schema(max_length = 64)]
    pub public_key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKey {
    #[serde(default)]
    pub name: Option<String>,
    /// Replaces the ranges the key may call from; empty: anywhere.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allowed_cidrs: Option<Vec<String>>,
    /// Replaces the Ed25519 public key (base64); null: none any more.
    #[serde(default, deserialize_with = "crate::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub public_key: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: ApiKeyId,
    pub name: String,
    pub role: Role,
    /// The organisation's own role the key holds, if any.
    pub custom_role: Option<RoleId>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub tlp_max: Option<Tlp>,
    pub rate_per_minute: Option<u32>,
    pub allowed_cidrs: Vec<String>,
    /// The Ed25519 public key its sensitive requests are signed with.
    pub public_key: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyOut {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyOut {
            id: k.id,
            name: k.name,
            role: k.role,
            custom_role: k.custom_role,
            prefix: k.key_prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            tlp_max: k.tlp_max,
            rate_per_minute: k.rate_per_minute,
            allowed_cidrs: k.allowed_cidrs.ranges(),
            public_key: k.public_key,
        }
    }
}

/// A key with its secret: returned only by create and rotate.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: ApiKeyId,
    pub name: String,
    pub role: Role,
    pub custom_role: Option<RoleId>,
    /// The secret (`ick_…`). Shown only now; store it safely.
    pub key: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub tlp_max: Option<Tlp>,
    pub rate_per_minute: Option<u32>,
    pub allowed_cidrs: Vec<String>,
    pub public_key: Option<String>,
}

impl From<CreatedKey> for ApiKeyCreated {
    fn from(c: CreatedKey) -> Self {
        ApiKeyCreated {
            id: c.row.id,
            name: c.row.name,
            role: c.row.role,
            custom_role: c.row.custom_role,
            key: c.key,
            created_at: c.row.created_at,
            expires_at: c.row.expires_at,
            tlp_max: c.row.tlp_max,
            rate_per_minute: c.row.rate_per_minute,
            allowed_cidrs: c.row.allowed_cidrs.ranges(),
            public_key: c.row.public_key,
        }
    }
}

/// Creates an API key.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKey, security(("bearer" = [])),
    responses((status = 201, body = ApiKeyCreated), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, axum::Json<ApiKeyCreated>)> {
    let input = NewApiKey {
        name: b.name,
        role: b.role,
        expires_at: b.expires_at,
        tlp_max: b.tlp_max,
        rate_per_minute: b.rate_per_minute,
        allowed_cidrs: b.allowed_cidrs,
        public_key: b.public_key,
    };
    let created = s.app.apikey_create(&p, &meta, input).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Live API keys of the organisation (no secrets), oldest first.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = PageOut<ApiKeyOut>)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    mut q: QueryParams,
) -> ApiResult<axum::Json<PageOut<ApiKeyOut>>> {
    let (cursor, size) = q.page(ironcase_app::page::parse_keyset, 50);
    q.finish()?;
    Ok(axum::Json(s.app.apikey_list(&p, &meta, cursor, size).await?.into()))
}

fn key_id(raw: &str) -> ApiResult<ApiKeyId> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Revokes a key: it gets 401 from now on.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.app.apikey_revoke(&p, &meta, key_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renames a key or changes the networks it may call from.
#[utoipa::path(patch, path = "/api-keys/{id}", tag = "api-keys", request_body = UpdateApiKey, security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<UpdateApiKey>,
) -> ApiResult<axum::Json<ApiKeyOut>> {
    let change = KeyChange { name: b.name, allowed_cidrs: b.allowed_cidrs, public_key: b.public_key };
    Ok(axum::Json(s.app.apikey_update(&p, &meta, key_id(&id)?, change).await?.into()))
}

/// Replaces a key's secret; the old secret stops working at once.
#[utoipa::path(post, path = "/api-keys/{id}/rotate", tag = "api-keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyCreated), (status = 404, body = Problem)))]
pub async fn rotate(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApiKeyCreated>> {
    Ok(axum::Json(s.app.apikey_rotate(&p, &meta, key_id(&id)?).await?.into()))
}
