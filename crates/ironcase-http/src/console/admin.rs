//! Organisation administration: members and invitations (a role for each;
//! an invitation e-mailed, or its link shown once when the server sends no
//! e-mail), and the audit log with its verification status.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::members::NewMember;
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::store::audit::Filter as AuditFilter;
use ironcase_app::AppError;
use ironcase_domain::{InvitationId, Permission, Role, UserId};
use maud::html;

use super::layout::{next_link, page, reasons, respond, select, sentences, Failure, Nav, Ref};
use super::session::{Browser, Form};
use crate::extract::QueryParams;
use crate::AppState;

/// Members a page.
const PER_PAGE: u32 = 50;

async fn members_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, UserId)>,
    notes: Vec<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let members = s.app.member_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let manage = b.p.has(Permission::MembersManage);
    let invitations = if manage { s.app.invitation_list(&b.p, &b.meta, None, PageSize::default_of(200)).await?.items } else { Vec::new() };
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    // A member's role may also be one of the organisation's own (by name).
    let custom: Vec<String> = if manage {
        s.app.roles_list(&b.p, &b.meta).await?.into_iter().filter_map(|r| r.custom.map(|c| c.name)).collect()
    } else {
        Vec::new()
    };
    let assignable: Vec<&str> = roles.iter().copied().chain(custom.iter().map(String::as_str)).collect();
    let body = html! {
        h1 { "Members" }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        table.members {
            thead { tr { th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Role" } th scope="col" { "Joined" } @if manage { th scope="col" { span.visually-hidden { "Actions" } } } } }
            tbody {
                @for m in &members.items {
                    tr {
                        td { @if manage { a href={ "/members/" (m.user_id) } { (m.name) } } @else { (m.name) } }
                        td { (m.email) }
                        td {
                            @if manage && m.user_id != b.p.user_id() && m.custom_role.is_none() {
                                form.inline method="post" action={ "/members/" (m.user_id) "/role" } {
                                    input type="hidden" name="csrf" value=(b.csrf);
                                    (select(&format!("role-{}", m.user_id), &format!("Role of {}", m.email), &assignable, Some(m.role.as_str()), None))
                                    button type="submit" aria-label={ "Set the role of " (m.email) } { "Set" }
                                }
                            } @else {
                                (m.role.as_str()) @if m.custom_role.is_some() { " (custom)" }
                            }
                        }
                        td { (m.joined_at.to_rfc3339().get(..10).unwrap_or("")) }
                        @if manage {
                            td {
                                @if m.user_id != b.p.user_id() {
                                    form method="post" action={ "/members/" (m.user_id) "/remove" } {
                                        input type="hidden" name="csrf" value=(b.csrf);
                                        button type="submit" aria-label={ "Remove " (m.email) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/members", members.next_cursor.as_deref()))
        @if manage {
            h2 { "Pending invitations" }
            @if invitations.is_empty() { p.empty { "None." } } @else {
                ul.invitations {
                    @for i in &invitations {
                        li {
                            (i.email) " as " (i.role.as_str()) " until " (i.expires_at.to_rfc3339().get(..10).unwrap_or(""))
                            form.inline method="post" action={ "/invitations/" (i.id) "/revoke" } {
                                input type="hidden" name="csrf" value=(b.csrf);
                                button type="submit" aria-label={ "Withdraw the invitation of " (i.email) } { "Withdraw" }
                            }
                        }
                    }
                }
            }
            form.invite method="post" action="/members" {
                h2 { "Invite" }
                input type="hidden" name="csrf" value=(b.csrf);
                label for="email" { "E-mail" }
                input id="email" name="email" type="email" required;
                (select("role", "Role", &roles, Some("analyst"), None))
                button type="submit" { "Invite" }
            }
        }
    };
    Ok(respond(status, page("Members", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /members?cursor=`.
pub(crate) async fn members(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<UserId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    members_page(&s, &b, cursor, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /members`: an invitation; its link shown once when no e-mail goes out.
pub(crate) async fn invite(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let input = NewMember { email: form.get("email").trim().to_owned(), role: form.get("role").to_owned() };
    match s.app.member_invite(&b.p, &b.meta, input).await {
        Ok((inv, token)) => {
            let note = match token {
                Some(t) => format!("Invited {}. Pass on this link (shown once): {}", inv.email, s.app.link("invitation", &t)),
                None => format!("Invited {}: the link is on its way by e-mail.", inv.email),
            };
            members_page(&s, &b, None, vec![note], Vec::new(), StatusCode::CREATED).await
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. } | AppError::QuotaExceeded { .. })) => {
            let (status, errors) = sentences(e);
            members_page(&s, &b, None, Vec::new(), errors, status).await
        }
        Err(e) => Err(b.failure(e, "/members")),
    }
}

/// `POST /members/{id}/remove`.
pub(crate) async fn remove(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: UserId = raw.parse().map_err(|_| Failure::NotFound)?;
    s.app.member_remove(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, "/members"))?;
    Ok(Redirect::to("/members").into_response())
}

fn member_id(raw: &str) -> Result<UserId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `POST /members/{id}/role` (the select is `role-{id}`): a built-in role
/// or one of the organisation's own, by name.
pub(crate) async fn set_role(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = member_id(&raw)?;
    let role = form.get(&format!("role-{id}")).to_owned();
    match s.app.member_set_role(&b.p, &b.meta, id, &role).await {
        Ok(m) => members_page(&s, &b, None, vec![format!("{} is now {}.", m.email, role)], Vec::new(), StatusCode::OK).await,
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. } | AppError::FeatureNotInPlan(_))) => {
            let (status, errors) = sentences(e);
            members_page(&s, &b, None, Vec::new(), errors, status).await
        }
        Err(e) => Err(b.failure(e, "/members")),
    }
}

async fn member_page(
    s: &AppState,
    b: &Browser,
    id: UserId,
    notes: Vec<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let sessions = s.app.member_sessions(&b.p, &b.meta, id, None, PageSize::default_of(100)).await?;
    let name = s.app.member_names(&b.p, &b.meta, vec![id]).await?.into_iter().next().map_or_else(|| id.to_string(), |(_, n)| n);
    let body = html! {
        h1 { (name) }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        section {
            h2 { "Sessions here" }
            @if sessions.items.is_empty() { p.empty { "None live." } } @else {
                table.sessions {
                    thead { tr { th scope="col" { "Started" } th scope="col" { "From" } th scope="col" { "Last seen" } } }
                    tbody {
                        @for v in &sessions.items {
                            tr {
                                td { (v.detail.session.created_at.to_rfc3339()) }
                                td { (v.detail.origin.source_ip.as_deref().unwrap_or("?")) " " (v.detail.origin.user_agent.as_deref().unwrap_or("")) }
                                td { (v.detail.last_seen_at.to_rfc3339()) }
                            }
                        }
                    }
                }
            }
            form method="post" action={ "/members/" (id) "/sessions/end" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "End every session of " (name) }
            }
        }
        section {
            h2 { "Recovery" }
            p { "For a member who lost their authenticator or password. Each is recorded in the audit log." }
            form method="post" action={ "/members/" (id) "/mfa/reset" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Remove their second factor" }
            }
            form method="post" action={ "/members/" (id) "/password-reset" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Send a password reset" }
            }
        }
        p { a href="/members" { "All members" } }
    };
    Ok(respond(status, page(&name, Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /members/{id}`: a member's sessions, and their recovery (owners and
/// admins over the member's role).
pub(crate) async fn member(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    member_page(&s, &b, member_id(&raw)?, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /members/{id}/sessions/end`.
pub(crate) async fn end_sessions(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = member_id(&raw)?;
    let n = s.app.end_member_sessions(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, &format!("/members/{id}")))?;
    member_page(&s, &b, id, vec![format!("Ended {n} session(s).")], Vec::new(), StatusCode::OK).await
}

/// `POST /members/{id}/mfa/reset`.
pub(crate) async fn reset_mfa(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = member_id(&raw)?;
    match s.app.member_mfa_reset(&b.p, &b.meta, id).await {
        Ok(()) => {
            let note = "Their second factor is removed and their sessions here ended: they enrol again at the next sign-in.";
            member_page(&s, &b, id, vec![note.into()], Vec::new(), StatusCode::OK).await
        }
        Err(e @ AppError::Conflict { .. }) => {
            let (status, errors) = sentences(e);
            member_page(&s, &b, id, Vec::new(), errors, status).await
        }
        Err(e) => Err(b.failure(e, &format!("/members/{id}"))),
    }
}

/// `POST /members/{id}/password-reset`: the link by e-mail, or shown once
/// when the server sends none.
pub(crate) async fn reset_password(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = member_id(&raw)?;
    let link = s.app.member_password_reset(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, &format!("/members/{id}")))?;
    let note = match link {
        Some(l) => format!("Pass on this link (shown once): {}", l.url),
        None => "The reset link is on its way by e-mail.".into(),
    };
    member_page(&s, &b, id, vec![note], Vec::new(), StatusCode::OK).await
}

/// `POST /invitations/{id}/revoke`.
pub(crate) async fn withdraw(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id: InvitationId = raw.parse().map_err(|_| Failure::NotFound)?;
    s.app.invitation_revoke(&b.p, &b.meta, id).await.map_err(|e| b.failure(e, "/members"))?;
    Ok(Redirect::to("/members").into_response())
}

/// `GET /audit`: the newest entries, filtered by action or outcome, with
/// whether the organisation's chain verifies.
pub(crate) async fn audit(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let action = q.str("action").map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let outcome = q.str("outcome").filter(|o| !o.is_empty());
    let before = q.parse("before", |v| v.parse::<i64>().ok().filter(|n| *n > 0), "an entry's sequence number");
    q.finish().map_err(|e| Failure::BadRequest(e.errors.first().map_or(e.detail.clone(), |f| format!("{}: {}", f.field, f.message))))?;
    let f = AuditFilter { action: action.clone(), outcome: outcome.clone(), ..AuditFilter::default() };
    let entries = s.app.audit_list(&b.p, &b.meta, &f, before, PageSize::default_of(100)).await?;
    let verified = s.app.audit_verify(&b.p, &b.meta).await?;
    let next = entries.next_cursor.as_ref().map(|c| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &action {
            pairs.append_pair("action", a);
        }
        if let Some(o) = &outcome {
            pairs.append_pair("outcome", o);
        }
        pairs.append_pair("before", c);
        format!("/audit?{}", pairs.finish())
    });
    let body = html! {
        h1 { "Audit log" }
        @if verified.ok {
            p.notice role="status" { "The chain verifies: " (verified.entries) " entries, each sealing the one before." }
        } @else {
            p.error role="alert" { "The chain does not verify from entry " (verified.first_bad_seq.unwrap_or(0)) ": " (verified.reason.as_deref().unwrap_or("")) }
        }
        form.filters method="get" action="/audit" {
            label for="action" { "Action" }
            input id="action" name="action" type="text" value=(action.as_deref().unwrap_or("")) placeholder="incident.create";
            (select("outcome", "Outcome", &["success", "denied", "failure"], outcome.as_deref(), Some("any")))
            button type="submit" { "Filter" }
        }
        table.audit {
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "On" } th scope="col" { "Outcome" } th scope="col" { "From" } } }
            tbody {
                @for e in &entries.items {
                    tr {
                        td { (e.seq) }
                        td { (e.at.to_rfc3339()) }
                        td { (e.actor_id.as_deref().unwrap_or("—")) }
                        td { (e.action) }
                        td { (e.resource_type.as_deref().unwrap_or("")) " " (e.resource_id.as_deref().unwrap_or("")) }
                        td { (e.outcome) }
                        td { @if let Some(ip) = &e.source_ip { (ip) } @else if e.erased { "erased" } }
                    }
                }
            }
        }
        @if let Some(href) = next { p.pager { a rel="next" href=(href) { "Older entries" } } }
    };
    Ok(respond(StatusCode::OK, page("Audit log", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}
