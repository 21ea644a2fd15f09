//! `/admin/organizations`: platform operators only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use ironcase_app::admin::NewOrganization;
use ironcase_app::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::members::OrganizationOut;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Meta};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/organizations", post(create).get(list))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    pub email: String,
    pub name: String,
    /// Required when the e-mail is new.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    pub slug: String,
    pub owner: NewOwner,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationList {
    pub items: Vec<OrganizationOut>,
}

/// Creates an organisation with its owner.
#[utoipa::path(post, path = "/api/v1/admin/organizations", tag = "admin", request_body = CreateOrganization, security(("bearer" = [])),
    responses((status = 201, body = OrganizationOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Json(b): Json<CreateOrganization>,
) -> ApiResult<(StatusCode, axum::Json<OrganizationOut>)> {
    let input = NewOrganization {
        name: b.name,
        slug: b.slug,
        owner_email: b.owner.email,
        owner_name: b.owner.name,
        owner_password: b.owner.password,
    };
    let row = s.app.org_create(&p, &meta, input).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Every organisation on the platform.
#[utoipa::path(get, path = "/api/v1/admin/organizations", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = OrganizationList), (status = 403, body = Problem)))]
pub async fn list(State(s): State<AppState>, p: Principal, Meta(meta): Meta) -> ApiResult<axum::Json<OrganizationList>> {
    let rows = s.app.org_list(&p, &meta).await?;
    Ok(axum::Json(OrganizationList { items: rows.into_iter().map(Into::into).collect() }))
}
