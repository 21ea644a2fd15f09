//! Notification channels in the console (owners and admins): the list, a
//! new channel with its rule and templates (previewed before it is made),
//! and each channel's state, attempts and failed messages. And every
//! member's own e-mail preferences (`/account/notifications`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ironcase_app::notifications::{ChannelChange, ChannelConfig, NewChannel, Prefs, Preview, Rule, CHANNEL_KINDS};
use ironcase_app::page::{parse_keyset, PageSize};
use ironcase_app::webhooks::Family;
use ironcase_app::AppError;
use ironcase_domain::{Severity, Tlp, WebhookId};
use maud::{html, Markup};

use super::layout::{next_link, page, reasons, respond, select, sentences, when, Failure, Nav, Ref};
use super::session::{Browser, Form};
use super::webhooks::{attempts_table, dead_letters, replayed};
use crate::extract::QueryParams;
use crate::AppState;

const PER_PAGE: u32 = 50;

/// What the new-channel form was given, to show it again.
#[derive(Default)]
struct Draft {
    kind: Option<String>,
    name: String,
    url: String,
    template: String,
    subject: String,
    recipients: String,
}

fn rule_text(r: &Rule) -> String {
    let mut s = r.event_types.join(", ");
    if !r.severities.is_empty() {
        s.push_str(&format!(" · {}", r.severities.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/")));
    }
    if r.assigned_to_me {
        s.push_str(" · to the assignee");
    }
    s
}

fn preview_section(p: &Preview) -> Markup {
    html! {
        section.preview role="status" {
            h2 { "Preview" }
            @if let Some(subject) = &p.subject { p { strong { "Subject: " } (subject) } }
            pre.preview-text { (p.text) }
            details { summary { "What is sent" } pre { (serde_json::to_string_pretty(&p.payload).unwrap_or_default()) } }
        }
    }
}

async fn list_page(
    s: &AppState,
    b: &Browser,
    cursor: Option<(i64, WebhookId)>,
    draft: Draft,
    preview: Option<Preview>,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let channels = s.app.channel_list(&b.p, &b.meta, cursor, PageSize::default_of(PER_PAGE)).await?;
    let types = ironcase_app::live::EVENT_TYPES;
    let tlps: Vec<&str> = Tlp::ALL.iter().map(|t| t.as_str()).collect();
    let body = html! {
        h1 { "Notifications" }
        p { "Channels tell people what happens: by e-mail, in Slack or Teams, or to any webhook. "
            "Each member chooses what they receive by e-mail on " a href="/account/notifications" { "their own page" } "." }
        @if let Some(p) = &preview { (preview_section(p)) }
        @for e in &errors { p.error role="alert" { (e) } }
        @if channels.items.is_empty() { p.empty { "No channels yet." } } @else {
            table.channels {
                thead { tr { th scope="col" { "Channel" } th scope="col" { "Kind" } th scope="col" { "Carries" } th scope="col" { "State" } } }
                tbody {
                    @for c in &channels.items {
                        tr {
                            td { a href={ "/notifications/" (c.row.id) } { (c.row.description) } }
                            td { (c.row.kind) }
                            td { @for r in &c.config.rules { (rule_text(r)) br; } }
                            td {
                                @if !c.row.enabled { "off" @if let Some(r) = &c.row.disabled_reason { ": " (r) } }
                                @else if let Some(since) = c.row.failing_since { "failing since " (when(since)) }
                                @else { "on" }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/notifications", channels.next_cursor.as_deref()))
        form.channel-new method="post" action="/notifications" {
            h2 { "New channel" }
            input type="hidden" name="csrf" value=(b.csrf);
            label for="name" { "Name" }
            input id="name" name="name" type="text" maxlength="200" value=(draft.name);
            (select("kind", "Kind", CHANNEL_KINDS, Some(draft.kind.as_deref().unwrap_or("slack")), None))
            label for="url" { "Address (Slack or Teams incoming webhook, or any https webhook; none for e-mail)" }
            input id="url" name="url" type="url" maxlength="2000" value=(draft.url);
            fieldset {
                legend { "Events" }
                label.check { input type="checkbox" name="event" value="*"; " every event" }
                @for t in types { label.check { input type="checkbox" name="event" value=(t); " " (t) } }
            }
            fieldset {
                legend { "Severities (none: any)" }
                @for sv in Severity::ALL { label.check { input type="checkbox" name="severity" value=(sv.as_str()); " " (sv.as_str()) } }
            }
            label.check { input type="checkbox" name="assigned" value="1"; " only to the incident's assignee (e-mail)" }
            label.check { input type="checkbox" name="members" value="1"; " to members, as each one chooses (e-mail)" }
            label for="recipients" { "Other addresses (e-mail; one per line)" }
            textarea id="recipients" name="recipients" rows="2" { (draft.recipients) }
            (select("max_tlp", "Nothing marked above", &tlps, Some("amber"), None))
            label for="subject" { "Subject template (e-mail)" }
            input id="subject" name="subject" type="text" maxlength="4000" value=(draft.subject) placeholder="[Ironcase] {{ summary }}";
            label for="template" { "Message template (minijinja; empty: the default)" }
            textarea id="template" name="template" rows="4" placeholder="{{ incident.title }}: {{ summary }}" { (draft.template) }
            (select("event_type", "Preview with an example of", types, Some("incident.created"), None))
            button type="submit" name="do" value="preview" { "Preview" }
            " " button type="submit" name="do" value="create" { "Add channel" }
        }
    };
    Ok(respond(status, page("Notifications", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /notifications?cursor=`.
pub(crate) async fn list(State(s): State<AppState>, b: Browser, mut q: QueryParams) -> Result<Response, Failure> {
    let (cursor, _) = q.page(parse_keyset::<WebhookId>, PER_PAGE);
    q.finish().map_err(|e| Failure::BadRequest(reasons(&e).join("; ")))?;
    list_page(&s, &b, cursor, Draft::default(), None, Vec::new(), StatusCode::OK).await
}

fn opt(form: &Form, k: &str) -> Option<String> {
    form.opt(k).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// `POST /notifications`: previews (`do=preview`) or adds the channel.
pub(crate) async fn create(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let draft = Draft {
        kind: opt(&form, "kind"),
        name: form.get("name").to_owned(),
        url: form.get("url").to_owned(),
        template: form.get("template").to_owned(),
        subject: form.get("subject").to_owned(),
        recipients: form.get("recipients").to_owned(),
    };
    let kind = draft.kind.clone().unwrap_or_default();
    let (template, subject) = (opt(&form, "template"), opt(&form, "subject"));
    if form.get("do") == "preview" {
        let r = s.app.channel_preview(&b.p, &b.meta, &kind, form.get("event_type"), template.as_deref(), subject.as_deref()).await;
        return match r {
            Ok(p) => list_page(&s, &b, None, draft, Some(p), Vec::new(), StatusCode::OK).await,
            Err(e @ AppError::Validation(_)) => {
                let (status, errors) = sentences(e);
                list_page(&s, &b, None, draft, None, errors, status).await
            }
            Err(e) => Err(b.failure(e, "/notifications")),
        };
    }
    let mut events: Vec<String> = form.all("event").into_iter().map(str::to_owned).collect();
    if events.iter().any(|t| t == "*") {
        events = vec!["*".into()];
    }
    let severities = form.all("severity").into_iter().filter_map(Severity::parse).collect();
    let rule = Rule { event_types: events, severities, assigned_to_me: form.get("assigned") == "1" };
    let config = ChannelConfig {
        rules: vec![rule],
        template,
        subject,
        recipients: draft.recipients.split(['\n', ',']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect(),
        members: form.get("members") == "1",
        max_tlp: Tlp::parse(form.get("max_tlp")),
    };
    let input = NewChannel { name: draft.name.trim().to_owned(), kind, url: opt(&form, "url"), config, enabled: Some(true) };
    match s.app.channel_create(&b.p, &b.meta, input).await {
        Ok(c) => {
            let id = c.channel.row.id;
            match c.secret {
                Some(secret) => channel_page(&s, &b, id, Some(secret), Vec::new(), StatusCode::CREATED).await,
                None => Ok(Redirect::to(&format!("/notifications/{id}")).into_response()),
            }
        }
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            list_page(&s, &b, None, draft, None, errors, status).await
        }
        Err(e) => Err(b.failure(e, "/notifications")),
    }
}

async fn channel_page(
    s: &AppState,
    b: &Browser,
    id: WebhookId,
    secret: Option<String>,
    notes: Vec<String>,
    status: StatusCode,
) -> Result<Response, Failure> {
    let c = s.app.channel_get(&b.p, &b.meta, id).await?;
    let attempts = s.app.webhook_attempts(&b.p, &b.meta, Family::Channels, id, None, None, PageSize::default_of(50)).await?;
    let dead = s.app.webhook_messages(&b.p, &b.meta, Family::Channels, id, "failed", None, PageSize::default_of(50)).await?;
    let base = format!("/notifications/{id}");
    let body = html! {
        h1 { (c.row.description) }
        p { (c.row.kind) @if !c.row.url.is_empty() { " · " (c.row.url) } " · nothing marked above " (c.config.max_tlp.unwrap_or(Tlp::Amber).as_str()) }
        @if let Some(secret) = &secret {
            section.created role="status" {
                h2 { "The signing secret" }
                p { "Copy it now: it is shown this once. The receiver verifies each message with it (Standard Webhooks)." }
                code id="new-secret" { (secret) }
                " " button type="button" data-copy="new-secret" { "Copy" }
            }
        }
        @for n in &notes { p.notice role="status" { (n) } }
        @if let Some(r) = &c.row.disabled_reason { p.error role="alert" { "Turned off: " (r) } }
        ul.rules { @for r in &c.config.rules { li { (rule_text(r)) } } }
        @if !c.config.recipients.is_empty() || c.config.members {
            p { "To: " (c.config.recipients.join(", ")) @if c.config.members { @if !c.config.recipients.is_empty() { ", " } "members as each one chooses" } }
        }
        @if let Some(t) = &c.config.template { details { summary { "Template" } pre { (t) } } }
        div.actions {
            form.inline method="post" action={ (base) "/enabled" } {
                input type="hidden" name="csrf" value=(b.csrf);
                input type="hidden" name="enabled" value=(if c.row.enabled { "0" } else { "1" });
                button type="submit" { @if c.row.enabled { "Turn off" } @else { "Turn on" } }
            }
            form.inline method="post" action={ (base) "/delete" } {
                input type="hidden" name="csrf" value=(b.csrf);
                button type="submit" { "Delete" }
            }
        }
        (dead_letters(&base, &dead.items, &b.csrf))
        (attempts_table(&attempts.items))
        p { a href="/notifications" { "All channels" } }
    };
    Ok(respond(status, page("Channel", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

fn channel_id(raw: &str) -> Result<WebhookId, Failure> {
    raw.parse().map_err(|_| Failure::NotFound)
}

/// `GET /notifications/{id}`.
pub(crate) async fn show(State(s): State<AppState>, b: Browser, Ref(raw): Ref) -> Result<Response, Failure> {
    channel_page(&s, &b, channel_id(&raw)?, None, Vec::new(), StatusCode::OK).await
}

/// `POST /notifications/{id}/enabled` (`enabled` 1 or 0).
pub(crate) async fn enabled(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = channel_id(&raw)?;
    let change = ChannelChange { enabled: Some(form.get("enabled") == "1"), ..ChannelChange::default() };
    s.app.channel_update(&b.p, &b.meta, id, change).await.map_err(|e| b.failure(e, &format!("/notifications/{id}")))?;
    Ok(Redirect::to(&format!("/notifications/{id}")).into_response())
}

/// `POST /notifications/{id}/replay`: one message (`message`), or every failed one.
pub(crate) async fn replay(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = channel_id(&raw)?;
    let message = replayed(&form)?;
    let n = s
        .app
        .webhook_replay(&b.p, &b.meta, Family::Channels, id, message, None)
        .await
        .map_err(|e| b.failure(e, &format!("/notifications/{id}")))?;
    channel_page(&s, &b, id, None, vec![format!("{n} message(s) sent again.")], StatusCode::OK).await
}

/// `POST /notifications/{id}/delete`.
pub(crate) async fn delete(State(s): State<AppState>, b: Browser, Ref(raw): Ref, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let id = channel_id(&raw)?;
    s.app.endpoint_delete(&b.p, &b.meta, Family::Channels, id).await.map_err(|e| b.failure(e, "/notifications"))?;
    Ok(Redirect::to("/notifications").into_response())
}

async fn prefs_page(s: &AppState, b: &Browser, notes: Vec<String>, errors: Vec<String>, status: StatusCode) -> Result<Response, Failure> {
    let prefs = s.app.notification_prefs(&b.p).await?;
    let all = prefs.event_types.iter().any(|t| t == "*");
    let body = html! {
        h1 { "What I receive by e-mail" }
        p { "From this organisation's e-mail channels. Never about what you did yourself." }
        @for n in &notes { p.notice role="status" { (n) } }
        @for e in &errors { p.error role="alert" { (e) } }
        form method="post" action="/account/notifications" {
            input type="hidden" name="csrf" value=(b.csrf);
            label.check { input type="checkbox" name="email" value="1" checked[prefs.email]; " e-mail me" }
            label.check { input type="checkbox" name="only_assigned" value="1" checked[prefs.only_assigned]; " only about incidents assigned to me" }
            fieldset {
                legend { "Events" }
                label.check { input type="checkbox" name="event" value="*" checked[all]; " every event" }
                @for t in ironcase_app::live::EVENT_TYPES {
                    label.check { input type="checkbox" name="event" value=(t) checked[!all && prefs.event_types.iter().any(|x| x == t)]; " " (t) }
                }
            }
            button type="submit" { "Save" }
        }
        p { a href="/account" { "My account" } }
    };
    Ok(respond(status, page("E-mail notifications", Some(Nav { p: &b.p, csrf: &b.csrf }), body)))
}

/// `GET /account/notifications`.
pub(crate) async fn prefs(State(s): State<AppState>, b: Browser) -> Result<Response, Failure> {
    prefs_page(&s, &b, Vec::new(), Vec::new(), StatusCode::OK).await
}

/// `POST /account/notifications`.
pub(crate) async fn set_prefs(State(s): State<AppState>, b: Browser, form: Form) -> Result<Response, Failure> {
    b.check(&s, &form)?;
    let mut events: Vec<String> = form.all("event").into_iter().map(str::to_owned).collect();
    if events.iter().any(|t| t == "*") {
        events = vec!["*".into()];
    }
    let input = Prefs { email: form.get("email") == "1", event_types: events, only_assigned: form.get("only_assigned") == "1" };
    match s.app.notification_prefs_set(&b.p, &b.meta, input).await {
        Ok(_) => prefs_page(&s, &b, vec!["Saved.".into()], Vec::new(), StatusCode::OK).await,
        Err(e @ AppError::Validation(_)) => {
            let (status, errors) = sentences(e);
            prefs_page(&s, &b, Vec::new(), errors, status).await
        }
        Err(e) => Err(b.failure(e, "/account/notifications")),
    }
}
