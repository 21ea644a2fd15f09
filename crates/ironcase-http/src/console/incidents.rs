//! The incident queue, one incident (its timeline, comments and workflow)
//! and a new incident: each a thin page over the app's use cases, so the
//! same permissions, sight and tenancy hold as through the API. Controls a
//! role may not use are not drawn, and posting them anyway is refused by
//! the app.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::incidents::{parse_ref, IfMatch, IncidentPatch, IncidentView, NewIncident, ViewCursors};
use ironcase_app::page::{parse_keyset, parse_seq};
use ironcase_app::store::event::EventRow;
use ironcase_app::store::incident::{CountBy, Filter, Sort};
use ironcase_app::AppError;
use ironcase_domain::{Category, IncidentId, Permission, Resolution, Severity, Status, Tlp};
use maud::{html, Markup};

use super::layout::{badge, more, names, page, reasons, respond, select, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

/// `GET /`: the queue, filtered and sorted, one page at a time.
pub(crate) async fn queue(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let status = q.parse("status", Status::parse, "a status");
    let severity = q.parse("severity", Severity::parse, "a severity");
    let category = q.parse("category", Category::parse, "a category");
    let tag = q.str("tag").map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
    let tlp = q.parse("tlp", Tlp::parse, "a TLP");
    let mine = q.parse("assignee", |v| (v == "me").then_some(()), "`me`").is_some();
    let sort = q.parse("sort", Sort::parse, "a sort").unwrap_or(Sort::CreatedDesc);
    let (cursor, size) = q.page(parse_keyset::<IncidentId>, 50);
    let problem = q.finish().err();
    let f = Filter {
        status,
        severity,
        category,
        tag: tag.clone(),
        assignee_id: mine.then(|| b.p.user_id()),
        // At most this TLP: a narrower sight than the credential's own.
        sight: ironcase_domain::Sight { tlp_max: tlp, categories: None },
        ..Filter::default()
    };
    let (rows, next, facets, errors) = match problem {
        Some(e) => (Vec::new(), None, Vec::new(), reasons(&e)),
        None => {
            let page = s.app.incident_list(&b.p, &b.meta, &f, sort, cursor, size).await?;
            let facets = s.app.incident_facets(&b.p, &b.meta, &f).await?;
            (page.items, page.next_cursor, facets, Vec::new())
        }
    };
    let mut filters: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("status", status.map(|v| v.as_str().to_owned())),
        ("severity", severity.map(|v| v.as_str().to_owned())),
        ("category", category.map(|v| v.as_str().to_owned())),
        ("tag", tag.clone()),
        ("tlp", tlp.map(|v| v.as_str().to_owned())),
        ("assignee", mine.then(|| "me".to_owned())),
        ("sort", Some(sort_name(sort).to_owned())),
    ] {
        if let Some(v) = v {
            filters.push((k, v));
        }
    }
    let next_href = next.map(|c| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("cursor", &c);
        format!("/?{}", pairs.finish())
    });
    // A facet's value: the queue with that value chosen, the rest kept.
    let narrowed = |field: &str, value: &str| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in filters.iter().filter(|(k, _)| *k != field) {
            pairs.append_pair(k, v);
        }
        pairs.append_pair(field, value);
        format!("/?{}", pairs.finish())
    };
    let chosen = |by: CountBy| match by {
        CountBy::Status => status.map(Status::as_str),
        CountBy::Severity => severity.map(Severity::as_str),
        CountBy::Category => category.map(Category::as_str),
    };
    let status_code = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = html! {
        h1 { "Incidents" }
        form.filters method="get" action="/" role="search" {
            (select("status", "Status", &names(Status::ALL, Status::as_str), status.map(Status::as_str), Some("any")))
            (select("severity", "Severity", &names(Severity::ALL, Severity::as_str), severity.map(Severity::as_str), Some("any")))
            (select("category", "Category", &names(Category::ALL, Category::as_str), category.map(Category::as_str), Some("any")))
            (select("tlp", "TLP at most", &names(Tlp::ALL, Tlp::as_str), tlp.map(Tlp::as_str), Some("any")))
            label for="tag" { "Tag" }
            input id="tag" name="tag" type="text" value=(tag.as_deref().unwrap_or(""));
            label.check { input type="checkbox" name="assignee" value="me" checked[mine]; " Assigned to me" }
            (select("sort", "Order", &["-created_at", "created_at", "-updated_at", "updated_at"], Some(sort_name(sort)), None))
            button type="submit" { "Filter" }
        }
        @for e in &errors { p.error role="alert" { (e) } }
        div.results id="queue" data-live="/live" {
        @if !facets.is_empty() {
            aside.facets aria-label="Facets" {
                @for by in CountBy::ALL {
                    @let field = match by { CountBy::Status => "status", CountBy::Severity => "severity", CountBy::Category => "category" };
                    section.facet {
                        h2 { (field) }
                        ul {
                            @for (_, value, n) in facets.iter().filter(|(b, _, _)| *b == by) {
                                li {
                                    a href=(narrowed(field, value)) aria-current=[(chosen(by) == Some(value.as_str())).then_some("true")] { (value.replace('_', " ")) }
                                    " " span.count { (n) }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.list {
        @if rows.is_empty() && errors.is_empty() {
            p.empty { "No incidents match." }
        } @else if !rows.is_empty() {
            table.queue {
                thead { tr { th scope="col" { "#" } th scope="col" { "Title" } th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Category" } th scope="col" { "TLP" } th scope="col" { "Updated" } } }
                tbody {
                    @for i in &rows {
                        tr {
                            td { a href={ "/incidents/" (i.id) } { "INC-" (i.number) } }
                            td { a href={ "/incidents/" (i.id) } { (i.title) } }
                            td { (badge("severity", i.severity.as_str())) }
                            td { (badge("status", i.status.as_str())) }
                            td { (i.category.as_str().replace('_', " ")) }
                            td { (badge("tlp", i.tlp.as_str())) }
                            td { time datetime=(i.updated_at.to_rfc3339()) { (when(i.updated_at)) } }
                        }
                    }
                }
            }
        }
        @if let Some(href) = next_href { p.pager { a rel="next" href=(href) { "Next page" } } }
        }
        }
    };
    Ok(respond(status_code, page("Incidents", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

fn sort_name(s: Sort) -> &'static str {
    match s {
        Sort::CreatedDesc => "-created_at",
        Sort::CreatedAsc => "created_at",
        Sort::UpdatedDesc => "-updated_at",
        Sort::UpdatedAsc => "updated_at",
    }
}

/// What an incident page shows besides the incident: a refused form's
/// sentences and what was typed into it.
#[derive(Default)]
struct Typed {
    errors: Vec<String>,
    comment: String,
    /// Where each long part starts (its previous page's cursor).
    after: ViewCursors,
}

async fn incident_page(s: &AppState, b: &Browser, raw: &str, typed: Typed, status: StatusCode) -> Result<Response, Failure> {
    let r = parse_ref(raw).ok_or(Failure::NotFound)?;
    let IncidentView { incident: i, timeline, iocs, files, names: people, hold, breach } =
        s.app.incident_view(&b.p, &b.meta, r, typed.after).await?;
    let people: std::collections::HashMap<String, String> = people.into_iter().map(|(u, n)| (u.to_string(), n)).collect();
    let members = if b.p.has(Permission::MembersRead) {
        s.app.member_list(&b.p, &b.meta, None, ironcase_app::page::PageSize::default_of(200)).await?.items
    } else {
        Vec::new()
    };
    let may_update = b.p.may_on_incident(Permission::IncidentUpdate, i.reporter_id, i.assignee_id);
    let may_comment = b.p.may_on_incident(Permission::CommentCreate, i.reporter_id, i.assignee_id);
    let body = html! {
        article.incident {
            header {
                p.number { "INC-" (i.number) }
                h1 { (i.title) }
                p.badges {
                    (badge("severity", i.severity.as_str())) " "
                    (badge("status", i.status.as_str())) " "
                    (badge("tlp", i.tlp.as_str())) " "
                    span { (i.category.as_str().replace('_', " ")) }
                    @if let Some(res) = i.resolution { " · resolved as " (res.as_str().replace('_', " ")) }
                }
                @if !i.tags.is_empty() { p.tags { @for t in &i.tags { span.tag { (t) } " " } } }
            }
            @for e in &typed.errors { p.error role="alert" { (e) } }
            (super::retention::hold_section(&i.id.to_string(), hold.as_ref(), b.p.has(Permission::OrganizationManage), &b.csrf))
            (super::breaches::section(&i.id.to_string(), breach.as_ref(), may_update, &b.csrf))
            @if may_update && !i.status.next().is_empty() {
                form.workflow method="post" action={ "/incidents/" (i.id) "/status" } {
                    input type="hidden" name="csrf" value=(b.csrf);
                    input type="hidden" name="version" value=(i.version);
                    (select("status", "Move to", &names(i.status.next(), Status::as_str), None, None))
                    @if i.status.next().contains(&Status::Closed) {
                        (select("resolution", "Resolution (to close)", &names(Resolution::ALL, Resolution::as_str), None, Some("none")))
                    }
                    button type="submit" { "Change status" }
                }
            }
            @if may_update {
                details.edit {
                    summary { "Edit the incident" }
                    form.incident-edit method="post" action={ "/incidents/" (i.id) "/edit" } {
                        input type="hidden" name="csrf" value=(b.csrf);
                        input type="hidden" name="version" value=(i.version);
                        label for="edit-title" { "Title" }
                        input id="edit-title" name="title" type="text" required maxlength="300" value=(i.title);
                        (select("edit-severity", "Severity", &names(Severity::ALL, Severity::as_str), Some(i.severity.as_str()), None))
                        (select("edit-tlp", "TLP", &names(Tlp::ALL, Tlp::as_str), Some(i.tlp.as_str()), None))
                        label for="edit-assignee" { "Assignee" }
                        select id="edit-assignee" name="assignee" {
                            option value="" selected[i.assignee_id.is_none()] { "nobody" }
                            @for m in &members {
                                option value=(m.user_id) selected[i.assignee_id == Some(m.user_id)] { (if m.name.is_empty() { &m.email } else { &m.name }) }
                            }
                        }
                        label for="edit-tags" { "Tags (comma-separated)" }
                        input id="edit-tags" name="tags" type="text" value=(i.tags.join(", "));
                        button type="submit" { "Save" }
                    }
                }
            }
            section.description {
                h2 { "Description" }
                @if i.description.is_empty() { p.empty { "No description." } } @else { div.text { (i.description) } }
            }
            (super::indicators::section(&i.id.to_string(), &iocs, may_update, &b.csrf))
            // Its own page: finding them reads the organisation's text index.
            p.similar { a href={ "/incidents/" (i.id) "/similar" } { "Similar incidents" } }
            (super::evidence::section(&i.id.to_string(), &files, b.p.may_on_incident(Permission::EvidenceCreate, i.reporter_id, i.assignee_id), &b.csrf))
            section.timeline id="timeline" aria-live="polite" data-live={ "/live?incident_id=" (i.id) } {
                h2 { "Timeline" }
                ol {
                    @for e in &timeline.items { (event(e, &people)) }
                }
                (more(&i.id.to_string(), "events", timeline.next_cursor.as_deref(), "timeline", "Later events"))
            }
            @if may_comment {
                form.comment method="post" action={ "/incidents/" (i.id) "/comments" } {
                    input type="hidden" name="csrf" value=(b.csrf);
                    label for="body" { "Comment" }
                    textarea id="body" name="body" rows="4" required { (typed.comment) }
                    button type="submit" { "Add comment" }
                }
            }
        }
    };
    let title = format!("INC-{} {}", i.number, i.title);
    Ok(respond(status, page(&title, Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// Who did it, as people call them: a member's name, an API key, a former
/// member.
fn actor(id: Option<&str>, names: &std::collections::HashMap<String, String>) -> String {
    match id {
        None => "Ironcase".into(),
        Some(id) => match names.get(id) {
            Some(n) => n.clone(),
            None if id.starts_with(ironcase_domain::ApiKeyId::PREFIX) => "an API key".into(),
            None => "a former member".into(),
        },
    }
}

fn event(e: &EventRow, names: &std::collections::HashMap<String, String>) -> Markup {
    let what = match e.kind.as_str() {
        "incident.created" => "created the incident".to_owned(),
        "comment.added" => "commented".to_owned(),
        "incident.status_changed" => format!(
            "moved it from {} to {}",
            e.data["from"].as_str().unwrap_or("?").replace('_', " "),
            e.data["to"].as_str().unwrap_or("?").replace('_', " ")
        ),
        other => other.replace(['.', '_'], " "),
    };
    html! {
        li {
            time datetime=(e.created_at.to_rfc3339()) { (when(e.created_at)) }
            " " span.actor { (actor(e.actor_id.as_deref(), names)) } " " (what)
            @if let Some(body) = e.data["body"].as_str() { div.text { (body) } }
        }
    }
}

/// `GET /incidents/{ref}/similar`: incidents that share its indicators or
/// its telling words, with the reasons.
pub(crate) async fn similar(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let i = s.app.incident_get(&b.p, &b.meta, r).await?;
    let similar = s.app.similar(&b.p, &b.meta, r, ironcase_app::page::PageSize::default_of(20)).await?;
    let body = html! {
        p.number { a href={ "/incidents/" (i.id) } { "INC-" (i.number) " " (i.title) } }
        h1 { "Similar incidents" }
        @if similar.is_empty() { p.empty { "None share its indicators or its words." } }
        ul.similar {
            @for m in &similar {
                li {
                    a href={ "/incidents/" (m.incident.id) } { "INC-" (m.incident.number) " " (m.incident.title) }
                    " · "
                    @if !m.shared_iocs.is_empty() {
                        "shares " (m.shared_iocs.len()) " indicators ("
                        (m.shared_iocs.iter().take(3).map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ")) ")"
                        @if m.text_score.is_some() { " and words" }
                    } @else { "shares words" }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page("Similar incidents", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /incidents/{ref}?events=&iocs=&files=`: each part from its cursor.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref, mut q: QueryParams) -> Result<Response, Failure> {
    let after = ViewCursors {
        events: q.parse("events", parse_seq, "a timeline cursor"),
        iocs: q.parse("iocs", parse_keyset, "an indicators cursor"),
        files: q.parse("files", parse_keyset, "a files cursor"),
    };
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    incident_page(&s, &b, &raw, Typed { after, ..Typed::default() }, StatusCode::OK).await
}

/// A refused change shown on the incident's page with what was typed; any
/// other refusal as its own page.
pub(crate) async fn refused(s: &AppState, b: &Browser, raw: &str, e: AppError, comment: String) -> Result<Response, Failure> {
    match e {
        e @ (AppError::Validation(_) | AppError::Conflict { .. } | AppError::VersionConflict | AppError::InvalidTransition(_)) => {
            let (status, errors) = sentences(e);
            incident_page(s, b, raw, Typed { errors, comment, after: ViewCursors::default() }, status).await
        }
        e => Err(e.into()),
    }
}

/// `POST /incidents/{ref}/comments`.
pub(crate) async fn comment(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let text = form.get("body").to_owned();
    match s.app.comment_create(&b.p, &b.meta, r, &text).await {
        Ok(c) => Ok(Redirect::to(&format!("/incidents/{}#timeline", c.incident_id)).into_response()),
        Err(e) => refused(&s, &b, &raw, e, text).await,
    }
}

/// `POST /incidents/{ref}/status`: to one of the next statuses, at the
/// version the page showed.
pub(crate) async fn status(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let Some(to) = Status::parse(form.get("status")) else {
        return refused(&s, &b, &raw, invalid("status", "choose one of the next statuses"), String::new()).await;
    };
    let resolution = match form.opt("resolution") {
        None => None,
        Some(v) => match Resolution::parse(v) {
            Some(r) => Some(r),
            None => return refused(&s, &b, &raw, invalid("resolution", "choose one of the resolutions"), String::new()).await,
        },
    };
    let Ok(version) = form.get("version").parse::<i64>() else {
        return refused(&s, &b, &raw, invalid("version", "the page was not loaded whole; reload it"), String::new()).await;
    };
    let patch = IncidentPatch { status: Some(to), resolution, ..IncidentPatch::default() };
    match s.app.incident_update(&b.p, &b.meta, r, IfMatch::Versions(vec![version]), patch).await {
        Ok(i) => Ok(Redirect::to(&format!("/incidents/{}", i.id)).into_response()),
        Err(e) => refused(&s, &b, &raw, e, String::new()).await,
    }
}

/// `POST /incidents/{ref}/edit`: title, severity, TLP, assignee and tags,
/// at the version the page showed.
pub(crate) async fn update(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let r = parse_ref(&raw).ok_or(Failure::NotFound)?;
    let (Some(severity), Some(tlp)) = (Severity::parse(form.get("edit-severity")), Tlp::parse(form.get("edit-tlp"))) else {
        return refused(&s, &b, &raw, invalid("severity", "choose a severity and a TLP from the lists"), String::new()).await;
    };
    let assignee = match form.opt("assignee") {
        None => None,
        Some(a) => match a.parse::<ironcase_domain::UserId>() {
            Ok(u) => Some(u),
            Err(_) => return refused(&s, &b, &raw, invalid("assignee", "choose a member from the list"), String::new()).await,
        },
    };
    let Ok(version) = form.get("version").parse::<i64>() else {
        return refused(&s, &b, &raw, invalid("version", "the page was not loaded whole; reload it"), String::new()).await;
    };
    let tags: Vec<String> = form.get("tags").split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    let patch = IncidentPatch {
        title: Some(form.get("title").to_owned()),
        severity: Some(severity),
        tlp: Some(tlp),
        assignee_id: Some(assignee),
        tags: Some(tags),
        ..IncidentPatch::default()
    };
    match s.app.incident_update(&b.p, &b.meta, r, IfMatch::Versions(vec![version]), patch).await {
        Ok(i) => Ok(Redirect::to(&format!("/incidents/{}", i.id)).into_response()),
        Err(e) => refused(&s, &b, &raw, e, String::new()).await,
    }
}

fn invalid(field: &str, message: &str) -> AppError {
    let mut errs = ironcase_domain::ValidationErrors::default();
    errs.push(field, message);
    errs.into()
}

fn new_form(b: &Browser, form: Option<&Form>, errors: &[String]) -> Markup {
    let v = |k: &str| form.map(|f| f.get(k).to_owned()).unwrap_or_default();
    let chosen = |k: &str, default: &'static str| -> String { form.and_then(|f| f.opt(k)).unwrap_or(default).to_owned() };
    let (severity, category, tlp) = (chosen("severity", "medium"), chosen("category", "other"), chosen("tlp", Tlp::DEFAULT.as_str()));
    html! {
        h1 { "New incident" }
        @for e in errors { p.error role="alert" { (e) } }
        form.incident-new method="post" action="/incidents" {
            input type="hidden" name="csrf" value=(b.csrf);
            label for="title" { "Title" }
            input id="title" name="title" type="text" required maxlength="300" value=(v("title"));
            (select("severity", "Severity", &names(Severity::ALL, Severity::as_str), Some(&severity), None))
            (select("category", "Category", &names(Category::ALL, Category::as_str), Some(&category), None))
            (select("tlp", "TLP", &names(Tlp::ALL, Tlp::as_str), Some(&tlp), None))
            label for="tags" { "Tags (comma-separated)" }
            input id="tags" name="tags" type="text" value=(v("tags"));
            label for="description" { "Description" }
            textarea id="description" name="description" rows="8" { (v("description")) }
            button type="submit" { "Create" }
        }
    }
}

/// `GET /incidents/new`.
pub(crate) async fn new(b: Browser) -> Result<Response, Failure> {
    if !b.p.has(Permission::IncidentCreate) {
        return Err(Failure::Forbidden);
    }
    Ok(respond(StatusCode::OK, page("New incident", Some(Nav { p: &b.p, csrf: &b.csrf }), new_form(&b, None, &[]))))
}

/// `POST /incidents`.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let mut errs = ironcase_domain::ValidationErrors::default();
    let severity = Severity::parse(form.get("severity"));
    let category = Category::parse(form.get("category"));
    let tlp = Tlp::parse(form.get("tlp"));
    if severity.is_none() {
        errs.push("severity", "choose a severity");
    }
    if category.is_none() {
        errs.push("category", "choose a category");
    }
    let result = match (severity, category, errs.into_result()) {
        (Some(severity), Some(category), Ok(())) => {
            let tags: Vec<String> = form.get("tags").split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
            let input = NewIncident {
                title: form.get("title").to_owned(),
                description: form.opt("description").map(str::to_owned),
                severity,
                category,
                tlp,
                tags: Some(tags),
                assignee_id: None,
            };
            s.app.incident_create(&b.p, &b.meta, input).await
        }
        (_, _, Err(e)) => Err(e.into()),
        _ => Err(invalid("severity", "choose a severity")),
    };
    match result {
        Ok(i) => Ok(Redirect::to(&format!("/incidents/{}", i.id)).into_response()),
        Err(e @ (AppError::Validation(_) | AppError::QuotaExceeded { .. })) => {
            let (status, errors) = sentences(e);
            let body = new_form(&b, Some(&form), &errors);
            Ok(respond(status, page("New incident", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
        }
        Err(e) => Err(e.into()),
    }
}
