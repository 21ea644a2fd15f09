//! `/search`: incidents, comments and indicators, ranked, with facets.

use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::{Path, State};
use ironcase_app::Principal;
use serde::Serialize;
use utoipa::ToSchema;

use super::incidents::IncidentOut;
use crate::error::{ApiResult, Problem};
use crate::extract::{Meta, QueryParams};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search)).routes(routes!(similar))
}

#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    pub incident: IncidentOut,
    /// BM25 relevance (lower is better); null for queries made only of filters.
    pub score: Option<f64>,
    /// Matching text with `<mark>` around the matched terms.
    pub highlights: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchFacets {
    pub severity: BTreeMap<String, i64>,
    pub status: BTreeMap<String, i64>,
    pub category: BTreeMap<String, i64>,
    /// The 50 most frequent tags.
    pub tag: BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    /// Incidents in the whole result set.
    pub total: i64,
    /// Counts over the whole result set.
    pub facets: SearchFacets,
}

/// Searches incident titles and descriptions, comments and indicator values.
///
/// Query language: words (all must match), `"phrases"`, `-excluded`, `a OR b`,
/// and filters `severity:`, `status:`, `category:`, `tag:`, `tlp:`,
/// `assignee:me`, `created:>2026-01-01` / `created:<…`, `ioc:<any form>`.
#[utoipa::path(get, path = "/search", tag = "search", security(("bearer" = [])),
    params(("q" = String, Query, min_length = 1, pattern = r"^[^\x00-\x08\x0E-\x1F\x7F-\x84\x86-\x9F]*[^\s\x00-\x08\x0E-\x1F\x7F-\x84\x86-\x9F][^\x00-\x08\x0E-\x1F\x7F-\x84\x86-\x9F]*$", description = "the query language; no control characters but whitespace"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = SearchResults), (status = 400, body = Problem, description = "invalid_query, with the position")))]
pub async fn search(State(s): State<AppState>, p: Principal, Meta(meta): Meta, mut q: QueryParams) -> ApiResult<axum::Json<SearchResults>> {
    // The query language reports its own errors, with their position.
    let text = q.raw("q");
    if text.is_none() {
        q.error("q", "is required");
    }
    let offset =
        q.parse("cursor", |c| c.parse::<i64>().ok().filter(|n| (0..=100_000).contains(n)), "a cursor from a previous page").unwrap_or(0);
    let size = q.page_size(20, ironcase_app::search::MAX_PAGE);
    q.finish()?;
    let r = s.app.search(&p, &meta, &text.unwrap_or_default(), offset, size).await?;
    let next = offset + r.hits.len() as i64;
    let next_cursor = (next < r.total && !r.hits.is_empty()).then(|| next.to_string());
    Ok(axum::Json(SearchResults {
        items: r
            .hits
            .into_iter()
            .map(|h| SearchHit { incident: h.incident.into(), score: h.score, highlights: h.snippet.into_iter().collect() })
            .collect(),
        next_cursor,
        total: r.total,
        facets: SearchFacets { severity: r.facets.severity, status: r.facets.status, category: r.facets.category, tag: r.facets.tag },
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SharedIoc {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Serialize, ToSchema)]
pub struct SimilarIncident {
    pub incident: IncidentOut,
    /// Indicators both incidents saw: the strongest reason.
    pub shared_iocs: Vec<SharedIoc>,
    /// How closely the texts match (BM25, lower is closer); null when they share no words.
    pub text_score: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct SimilarList {
    pub items: Vec<SimilarIncident>,
}

/// Incidents like this one: by shared indicators, then by text, with the reasons.
#[utoipa::path(get, path = "/incidents/{id}/similar", tag = "search", security(("bearer" = [])),
    params(("id" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 10")),
    responses((status = 200, body = SimilarList), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn similar(
    State(s): State<AppState>,
    p: Principal,
    Meta(meta): Meta,
    Path(id): Path<String>,
    mut q: QueryParams,
) -> ApiResult<axum::Json<SimilarList>> {
    let size = q.page_size(10, ironcase_app::search::MAX_PAGE);
    q.finish()?;
    let rows = s.app.similar(&p, &meta, super::incidents::incident_ref(&id)?, size).await?;
    Ok(axum::Json(SimilarList {
        items: rows
            .into_iter()
            .map(|r| SimilarIncident {
                incident: r.incident.into(),
                shared_iocs: r.shared_iocs.into_iter().map(|(kind, value)| SharedIoc { kind, value }).collect(),
                text_score: r.text_score,
            })
            .collect(),
    }))
}
