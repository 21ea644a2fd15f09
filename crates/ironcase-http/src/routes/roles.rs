//! `/roles`: the built-in roles and the organisation's own (feature
//! `custom_roles`), each with what it grants.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ironcase_app::roles::{RoleInput, RoleView};
use ironcase_app::store::role::CustomRoleRow;
use ironcase_app::Principal;
use ironcase_domain::{Category, Permission, Role, RoleId, Scope, Timestamp, Tlp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::{path_id, Json, Meta};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Changes to incidents (update, delete, comments, evidence) only on
    /// those the holder reported or is assigned to.
    #[serde(default)]
    pub own_or_assigned: bool,
    /// Incidents (and indicators) above this TLP do not exist for the
    /// holder.
    #[serde(default)]
    pub tlp_max: Option<Tlp>,
    /// Only incidents of these categories exist for the holder (and their
    /// events, sightings and similar incidents); `null`: every category.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 9)]
    pub categories: Option<Vec<Category>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The built-in role it extends: what it grants to begin with, and its
    /// rank.
    pub base: Role,
    /// Permissions added to the base's (on every incident).
    #[serde(default)]
    pub grant: Vec<Permission>,
    /// Permissions taken from the base's.
    #[serde(default)]
    pub revoke: Vec<Permission>,
    #[serde(default, deserialize_with = "crate::extract::object")]
    pub conditions: Conditions,
}

impl From<RoleIn> for RoleInput {
    fn from(b: RoleIn) -> Self {
        RoleInput {
            name: b.name,
            base: b.base,
            grant: b.grant,
            revoke: b.revoke,
            own_or_assigned: b.conditions.own_or_assigned,
            tlp_max: b.conditions.tlp_max,
            categories: b.conditions.categories,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Grant {
    pub permission: Permission,
    /// `all`, or `own_or_assigned` (the holder's own or assigned incidents).
    pub scope: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct RoleOut {
    /// A built-in role's name, or the organisation's role's id.
    pub id: String,
    pub name: String,
    pub builtin: bool,
    pub base: Role,
    pub grant: Vec<Permission>,
    pub revoke: Vec<Permission>,
    pub conditions: Conditions,
    /// What the role grants in effect.
    pub permissions: Vec<Grant>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

fn grants(g: &ironcase_domain::Grants) -> Vec<Grant> {
    g.list().map(|(permission, s)| Grant { permission, scope: if s == Scope::All { "all" } else { "own_or_assigned" } }).collect()
}

impl From<CustomRoleRow> for RoleOut {
    fn from(r: CustomRoleRow) -> Self {
        RoleOut {
            id: r.id.to_string(),
            permissions: grants(&r.grants()),
            name: r.name,
            builtin: false,
            base: r.base,
            grant: r.grant,
            revoke: r.revoke,
            conditions: Conditions { own_or_assigned: r.own_or_assigned, tlp_max: r.tlp_max, categories: r.categories.map(|c| c.list()) },
            created_at: Some(r.created_at),
            updated_at: Some(r.updated_at),
        }
    }
}

impl From<RoleView> for RoleOut {
    fn from(v: RoleView) -> Self {
        match (v.custom, v.builtin) {
            (Some(c), _) => c.into(),
            (None, builtin) => {
                let r = builtin.unwrap_or(Role::Viewer);
                RoleOut {
                    id: r.to_string(),
                    name: r.to_string(),
                    builtin: true,
                    base: r,
                    grant: Vec::new(),
                    revoke: Vec::new(),
                    conditions: Conditions::default(),
                    permissions: grants(&v.grants),
                    created_at: None,
                    updated_at: None,
                }
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    /// The built-in roles, then the organisation's own by name (at most 100).
    pub items: Vec<RoleOut>,
}

/// The built-in roles and the organisation's own, with what each grants.
#[utoipa::path(get, path = "/roles", tag = "organization", security(("bearer" = [])),
    responses((status = 200, body = RoleList), (status = 403, body = Problem)))]
pub async fn list(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<RoleList>> {
    Ok(axum::Json(RoleList { items: s.app.roles_list(&p, &meta).await?.into_iter().map(Into::into).collect() }))
}

/// Creates a role of the organisation's own (feature `custom_roles`),
/// granting no more than the caller holds.
#[utoipa::path(post, path = "/roles", tag = "organization", security(("bearer" = [])), request_body = RoleIn,
    responses((status = 201, body = RoleOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<RoleIn>,
) -> ApiResult<(StatusCode, axum::Json<RoleOut>)> {
    Ok((StatusCode::CREATED, axum::Json(s.app.role_create(&p, &meta, b.into()).await?.into())))
}

/// One of the organisation's own roles.
#[utoipa::path(get, path = "/roles/{id}", tag = "organization", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RoleOut), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<axum::Json<RoleOut>> {
    let id: RoleId = path_id(&id)?;
    Ok(axum::Json(s.app.role_get(&p, &meta, id).await?.into()))
}

/// Replaces one of the organisation's own roles (the whole role, as
/// created); every session and key holding it follows at its next request.
#[utoipa::path(patch, path = "/roles/{id}", tag = "organization", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RoleIn,
    responses((status = 200, body = RoleOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    Json(b): Json<RoleIn>,
) -> ApiResult<axum::Json<RoleOut>> {
    let id: RoleId = path_id(&id)?;
    Ok(axum::Json(s.app.role_update(&p, &meta, id, b.into()).await?.into()))
}

/// Deletes one of the organisation's own roles that nobody holds (else 409
/// `role_in_use`).
#[utoipa::path(delete, path = "/roles/{id}", tag = "organization", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(State(s): State<AppState>, p: Principal, Meta(meta): Meta, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id: RoleId = path_id(&id)?;
    s.app.role_delete(&p, &meta, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
