//! `GET /live`: the organisation's events for a signed-in browser, as the
//! API streams them (the same filter by tenant and sight), for the pages'
//! script to refresh what changed. `?incident_id=` narrows it to one
//! incident.

use axum::extract::State;
use axum::response::Response;
use ironcase_app::incidents::parse_ref;
use ironcase_app::live::StreamFilter;

use super::layout::Failure;
use super::session::Browser;
use crate::extract::QueryParams;
use crate::AppState;

pub(crate) async fn stream(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let incident = match q.str("incident_id") {
        Some(raw) => Some(parse_ref(&raw).ok_or(Failure::NotFound)?),
        None => None,
    };
    q.finish().map_err(|e| Failure::BadRequest(e.detail))?;
    let es = s.app.open_stream(&b.p, &b.meta, None, StreamFilter { incident, types: None }).await?;
    Ok(crate::routes::events::sse(&s, es))
}
