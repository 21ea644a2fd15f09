//! A parent organisation's view of its children: each child, whether it
//! lets the parent read, and (where it does) its incidents and audit log,
//! read-only. The app records every such read in both organisations; a
//! child that has not granted access is a 404 page like any other tenant.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::store::incident::{Filter, Sort};
use ironcase_domain::{IncidentId, OrgId};
use maud::html;

use super::layout::{next_link, page, reasons, respond, Failure, Nav, Ref};
use super::session::Browser;
use crate::extract::QueryParams;
use crate::AppState;

/// Rows a page.
const PER_PAGE: u32 = 50;

fn bad(e: crate::error::ApiError) -> Failure {
    Failure::BadRequest(reasons(&e).join("; "))
}

/// `GET /children?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<OrgId>, PER_PAGE);
    q.finish().map_err(bad)?;
    let children = s.app.children(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let body = html! {
        h1 { "Organisations under this one" }
        @if children.items.is_empty() { p.empty { "None." } } @else {
            table.children {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Short name" } th scope="col" { "Lets us read" } } }
                tbody {
                    @for (o, granted) in &children.items {
                        tr {
                            td { @if *granted { a href={ "/children/" (o.id) } { (o.name) } } @else { (o.name) } }
                            td { code { (o.slug) } }
                            td { @if *granted { "yes" } @else { "no" } }
                        }
                    }
                }
            }
        }
        (next_link("/children", children.next_cursor.as_deref()))
    };
    Ok(respond(StatusCode::OK, page("Organisations under this one", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

fn child_id(raw: &str) -> Result<OrgId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /children/{org}?cursor=`: the child's incidents, newest first.
pub(crate) async fn incidents(State(s): State<AppState>, b: Browser, Ref(raw): Ref, mut q: QueryParams) -> Result<Response, Failure> {
    let id = child_id(&raw)?;
    let (cursor, _) = q.page(parse_keyset::<IncidentId>, PER_PAGE);
    q.finish().map_err(bad)?;
    let child = s.app.as_parent_of(&b.p, &b.meta, id, "incidents").await?;
    let list = s.app.incident_list(&child, &b.meta, &Filter::default(), Sort::CreatedDesc, cursor, PageSize::default_of(PER_PAGE)).await?;
    let body = html! {
        h1 { "Incidents of a child organisation" }
        p { "Read-only. Each look is recorded in its audit log and ours. " a href={ "/children/" (id) "/audit" } { "Its audit log" } }
        @if list.items.is_empty() { p.empty { "No incidents." } } @else {
            table.queue {
                thead { tr { th scope="col" { "#" } th scope="col" { "Title" } th scope="col" { "Status" } th scope="col" { "Severity" } th scope="col" { "TLP" } th scope="col" { "Opened" } } }
                tbody {
                    @for i in &list.items {
                        tr {
                            td { (i.number) }
                            td { (i.title) }
                            td { (i.status.as_str().replace('_', " ")) }
                            td { span class={ "sev " (i.severity.as_str()) } { (i.severity.as_str()) } }
                            td { (i.tlp.as_str()) }
                            td { (i.created_at.to_rfc3339().get(..10).unwrap_or("")) }
                        }
                    }
                }
            }
        }
        (next_link(&format!("/children/{id}"), list.next_cursor.as_deref()))
    };
    Ok(respond(StatusCode::OK, page("Child organisation", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /children/{org}/audit?before=`: the child's audit log, newest first.
pub(crate) async fn audit(State(s): State<AppState>, b: Browser, Ref(raw): Ref, mut q: QueryParams) -> Result<Response, Failure> {
    let id = child_id(&raw)?;
    let before = q.parse("before", |v| v.parse::<i64>().ok().filter(|n| *n > 0), "an entry's sequence number");
    q.finish().map_err(bad)?;
    let entries = s.app.child_audit(&b.p, &b.meta, id, before, PageSize::default_of(100)).await?;
    let body = html! {
        h1 { "Audit log of a child organisation" }
        table.audit {
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Outcome" } } }
            tbody {
                @for e in &entries.items {
                    tr {
                        td { (e.seq) }
                        td { (e.at.to_rfc3339()) }
                        td { (e.actor_id.as_deref().unwrap_or("—")) }
                        td { (e.action) }
                        td { (e.outcome) }
                    }
                }
            }
        }
        @if let Some(c) = &entries.next_cursor { p.pager { a rel="next" href={ "/children/" (id) "/audit?before=" (c) } { "Older entries" } } }
    };
    Ok(respond(StatusCode::OK, page("Child organisation", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
