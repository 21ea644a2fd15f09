//! Notifications: an organisation's channels (e-mail, Slack, Microsoft
//! Teams, a generic webhook), each with rules (event types × severities,
//! and for e-mail "assigned to me") and a message template; and what each
//! member wants by e-mail. Channels are endpoints of the webhook outbox:
//! their messages are made from the event log by cursor, rendered then (so
//! the log shows what went out), and delivered with the same leases,
//! retries, back-off and attempt log as webhooks.
//!
//! Templates are minijinja, sandboxed (no file or network access) and fed
//! a bounded amount of fuel, so a template cannot run long; what they put
//! out is cut at `MAX_TEXT`. For Slack, the values a template shows are
//! escaped first (`&`, `<`, `>`), so an incident titled `<!channel>` pings
//! nobody.

use std::collections::HashMap;
use std::sync::Arc;

use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{OrgId, Severity, Timestamp, Tlp, UserId, WebhookId};
use ironcase_store::event::EventRow;
use ironcase_store::incident::{self as incidents, IncidentRef, IncidentRow};
use ironcase_store::notification::{self as prefs, PrefRow};
use ironcase_store::webhook::{self as store, WebhookRow};
use ironcase_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::webhooks::{endpoint, room_for_one, Family, Seen};
use crate::{App, AppError, Principal, RequestMeta, Result};

/// The kinds of channel.
pub const CHANNEL_KINDS: &[&str] = &["email", "slack", "teams", "generic"];
/// The most a rendered message carries.
const MAX_TEXT: usize = 8000;
/// A template's budget of work (minijinja's fuel: about one unit per
/// instruction).
const FUEL: u64 = 50_000;
const MAX_RULES: usize = 20;
const MAX_RECIPIENTS: usize = 50;
const MAX_TEMPLATE: usize = 4000;

/// Which events a channel carries: any of the types (`*`: all), on
/// incidents (or alerts) of any of the severities (none listed: any); with
/// `assigned_to_me` (e-mail only), only to the incident's assignee.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub event_types: Vec<String>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    #[serde(default)]
    pub assigned_to_me: bool,
}

/// A channel's settings (kept as JSON on its endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelConfig {
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The message (for e-mail, its body); `None`: the default.
    #[serde(default)]
    pub template: Option<String>,
    /// An e-mail's subject; `None`: the default.
    #[serde(default)]
    pub subject: Option<String>,
    /// E-mail: fixed addresses (a team's list).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// E-mail: the organisation's members, each as their preferences say.
    #[serde(default)]
    pub members: bool,
    /// Events on incidents marked above this are not sent (default amber).
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
}

impl ChannelConfig {
    fn ceiling(&self) -> Tlp {
        self.max_tlp.unwrap_or(Tlp::Amber)
    }
}

/// A channel: its endpoint and its settings.
#[derive(Debug, Clone)]
pub struct Channel {
    pub row: WebhookRow,
    pub config: ChannelConfig,
}

impl Channel {
    fn of(row: WebhookRow) -> Channel {
        let config = serde_json::from_str(&row.config).unwrap_or_default();
        Channel { row, config }
    }
}

/// A new channel. `url`: Slack's or Teams' incoming-webhook address, or the
/// generic webhook's; none for e-mail.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub config: ChannelConfig,
    pub enabled: Option<bool>,
}

/// A change to a channel: what is `Some` changes; an empty template or
/// subject goes back to the default.
#[derive(Debug, Clone, Default)]
pub struct ChannelChange {
    pub name: Option<String>,
    pub url: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub template: Option<String>,
    pub subject: Option<String>,
    pub recipients: Option<Vec<String>>,
    pub members: Option<bool>,
    pub max_tlp: Option<Tlp>,
    pub enabled: Option<bool>,
}

/// A new channel and, for a generic webhook, its signing secret (shown
/// this once).
pub struct Created {
    pub channel: Channel,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created").field("channel", &self.channel).finish_non_exhaustive()
    }
}

/// A rendered message: its subject (e-mail), text, and the body a channel
/// of the kind would be sent.
#[derive(Debug, Clone)]
pub struct Preview {
    pub subject: Option<String>,
    pub text: String,
    pub payload: Value,
}

/// A member's e-mail preferences, with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    pub email: bool,
    pub event_types: Vec<String>,
    pub only_assigned: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs { email: true, event_types: vec!["*".into()], only_assigned: false }
    }
}

impl Prefs {
    fn of(row: Option<&PrefRow>) -> Prefs {
        row.map_or_else(Prefs::default, |r| Prefs { email: r.email, event_types: r.event_types.clone(), only_assigned: r.only_assigned })
    }

    fn wants(&self, kind: &str, assigned: bool) -> bool {
        self.email && self.event_types.iter().any(|t| t == "*" || t == kind) && (assigned || !self.only_assigned)
    }
}

/// An organisation's members with their preferences (read once per round).
#[derive(Debug, Default)]
pub struct Audience {
    members: Vec<(UserId, String, Prefs)>,
}

/// The additional data a sealed channel address is bound to.
pub(crate) fn url_aad(org: OrgId, id: WebhookId) -> String {
    format!("channel-url:{org}:{id}")
}

/// Where a secret address goes, to show instead of it.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "…".into(),
    }
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

fn render(env: &minijinja::Environment<'_>, template: &str, ctx: &Value) -> std::result::Result<String, String> {
    let out = env.render_str(template, ctx).map_err(|e| e.to_string())?;
    Ok(cut(out.trim().to_owned(), MAX_TEXT))
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

const DEFAULT_TEXT: &str = "{% if incident %}[{{ incident.severity | upper }}] #{{ incident.number }} {{ incident.title }}\n{% endif %}\
{{ summary }}{% if actor %} (by {{ actor }}){% endif %}{% if url %}\n{{ url }}{% endif %}";
const DEFAULT_SUBJECT: &str = "[Ironcase] {{ summary }}{% if incident %}: {{ incident.title }}{% endif %}";

/// What happened, in a few words.
fn summary(e: &EventRow) -> String {
    let s = |k: &str| e.data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match e.kind.as_str() {
        "incident.created" => "New incident".into(),
        "incident.updated" => {
            let fields = e.data.get("changes").and_then(Value::as_object).map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "));
            format!("Incident updated ({})", fields.unwrap_or_default())
        }
        "incident.status_changed" => format!("Status changed to {}", s("to")),
        "incident.deleted" => "Incident deleted".into(),
        "comment.added" => "New comment".into(),
        "ioc.added" => format!("Indicator added: {}", s("value")),
        "ioc.removed" => format!("Indicator removed: {}", s("value")),
        "ioc.analyzed" => format!("Indicator analyzed by {}: {}", s("analyzer"), s("verdict")),
        "evidence.added" => "Evidence added".into(),
        "evidence.deleted" => "Evidence deleted".into(),
        "alert.created" => format!("New alert: {}", s("title")),
        "alert.promoted" => "Alert promoted to an incident".into(),
        "quota.warning" => format!("Quota nearly used: {}", s("quota")),
        "quota.exceeded" => format!("Quota used up: {}", s("quota")),
        "webhook.disabled" => format!("A webhook endpoint was turned off: {}", s("reason")),
        "incident.breach_flagged" => format!("Personal data breach: the regulator must be told by {}", s("deadline")),
        "incident.breach_deadline" => format!("Personal data breach, {}: the regulator must be told by {}", s("stage"), s("deadline")),
        other => other.to_owned(),
    }
}

/// What a template sees: the event, its incident, a summary and a link.
fn context(e: &EventRow, incident: Option<&IncidentRow>, base: &str) -> Value {
    let url = match (incident, base.is_empty()) {
        (Some(i), false) => format!("{base}/incidents/{}", i.id),
        _ => String::new(),
    };
    json!({
        "type": e.kind,
        "summary": summary(e),
        "actor": e.actor_id,
        "at": e.created_at,
        "url": url,
        "data": e.data,
        "incident": incident.map(|i| json!({
            "id": i.id, "number": i.number, "title": i.title, "severity": i.severity, "status": i.status,
            "category": i.category, "tlp": i.tlp, "assignee_id": i.assignee_id, "tags": i.tags,
        })),
    })
}

/// Slack's control characters in every string of the context.
fn slack_escaped(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")),
        Value::Array(a) => Value::Array(a.into_iter().map(slack_escaped).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, slack_escaped(v))).collect()),
        other => other,
    }
}

/// The message text (and subject) for an event, from the channel's
/// templates, or the defaults where a template does not render.
fn texts(kind: &str, config: &ChannelConfig, ctx: &Value) -> (String, String) {
    let env = environment();
    let ctx = if kind == "slack" { slack_escaped(ctx.clone()) } else { ctx.clone() };
    let text = config
        .template
        .as_deref()
        .and_then(|t| render(&env, t, &ctx).ok())
        .or_else(|| render(&env, DEFAULT_TEXT, &ctx).ok())
        .unwrap_or_default();
    let subject = config
        .subject
        .as_deref()
        .and_then(|t| render(&env, t, &ctx).ok())
        .or_else(|| render(&env, DEFAULT_SUBJECT, &ctx).ok())
        .unwrap_or_default();
    (text, subject.replace(['\r', '\n'], " "))
}

/// The body a channel of `kind` posts.
fn body(kind: &str, e: &EventRow, text: &str, subject: &str, url: &str) -> Value {
    match kind {
        "slack" => json!({ "text": text, "unfurl_links": false }),
        "teams" => {
            let mut card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "wrap": true },
                    { "type": "TextBlock", "text": text, "wrap": true },
                ],
            });
            if !url.is_empty() {
                card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open in Ironcase", "url": url }]);
            }
            json!({
                "type": "message",
                "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }],
            })
        }
        _ => json!({ "type": e.kind, "timestamp": e.created_at, "text": text, "data": crate::webhooks::event_json(e) }),
    }
}

fn incident_of(c: &Tx, seen: &mut Seen, e: &EventRow) -> Result<Option<IncidentRow>> {
    let Some(id) = e.incident_id else { return Ok(None) };
    if let Some(i) = seen.incidents.get(&id) {
        return Ok(i.clone());
    }
    let i = match incidents::get(c, e.org, IncidentRef::Id(id)) {
        Ok(i) => Some(i),
        Err(ironcase_store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    seen.incidents.insert(id, i.clone());
    Ok(i)
}

fn audience_of(c: &Tx, seen: &mut Seen, org: OrgId) -> Result<Arc<Audience>> {
    if let Some(a) = seen.audiences.get(&org) {
        return Ok(a.clone());
    }
    let chosen: HashMap<UserId, PrefRow> = prefs::of_org(c, org)?.into_iter().map(|p| (p.account, p)).collect();
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = ironcase_store::org::list_members(c, org, after, 500)?;
        let Some(last) = page.last() else { break };
        after = Some((last.joined_at.0, last.user_id));
        let full = page.len() == 500;
        members.extend(page.into_iter().map(|m| {
            let p = Prefs::of(chosen.get(&m.user_id));
            (m.user_id, m.email, p)
        }));
        if !full {
            break;
        }
    }
    let a = Arc::new(Audience { members });
    seen.audiences.insert(org, a.clone());
    Ok(a)
}

/// The messages a channel makes of an event: none when no rule takes it
/// or its incident is marked above the channel's ceiling; for e-mail, one
/// per recipient (never the member who acted).
pub(crate) fn payloads(c: &Tx, w: &WebhookRow, e: &EventRow, seen: &mut Seen, base: &str, mailer: bool) -> Result<Vec<String>> {
    let config: ChannelConfig = serde_json::from_str(&w.config).unwrap_or_default();
    let incident = incident_of(c, seen, e)?;
    if incident.as_ref().is_some_and(|i| i.tlp > config.ceiling()) {
        return Ok(Vec::new());
    }
    let severity =
        incident.as_ref().map(|i| i.severity).or_else(|| e.data.get("severity").and_then(Value::as_str).and_then(Severity::parse));
    let rules: Vec<&Rule> = config
        .rules
        .iter()
        .filter(|r| r.event_types.iter().any(|t| t == "*" || *t == e.kind))
        .filter(|r| r.severities.is_empty() || severity.is_some_and(|s| r.severities.contains(&s)))
        .collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = context(e, incident.as_ref(), base);
    let (text, subject) = texts(&w.kind, &config, &ctx);
    if w.kind != "email" {
        let url = ctx["url"].as_str().unwrap_or("");
        return Ok(vec![body(&w.kind, e, &text, &subject, url).to_string()]);
    }
    if !mailer {
        return Ok(Vec::new());
    }
    let assignee = incident.as_ref().and_then(|i| i.assignee_id);
    let actor = e.actor_id.as_deref();
    let mut to: Vec<String> = Vec::new();
    let audience = if config.members || rules.iter().any(|r| r.assigned_to_me) { Some(audience_of(c, seen, e.org)?) } else { None };
    for r in rules {
        if !r.assigned_to_me {
            to.extend(config.recipients.iter().cloned());
        }
        let Some(audience) = &audience else { continue };
        for (id, email, p) in &audience.members {
            let assigned = assignee == Some(*id);
            let wanted = if r.assigned_to_me { assigned } else { config.members };
            if wanted && p.wants(&e.kind, assigned) && actor != Some(id.to_string().as_str()) {
                to.push(email.clone());
            }
        }
    }
    to.sort();
    to.dedup();
    let footer = if base.is_empty() { String::new() } else { format!("\n\n--\nChoose what Ironcase e-mails you: {base}/account") };
    Ok(to.into_iter().map(|to| json!({ "to": to, "subject": subject, "body": format!("{text}{footer}") }).to_string()).collect())
}

/// An example event of a type, for previews.
fn example(kind: &str, org: OrgId, now: Timestamp) -> (EventRow, IncidentRow) {
    let incident = IncidentRow {
        org,
        id: ironcase_domain::IncidentId::new(),
        number: 42,
        title: "Phishing wave against finance".into(),
        description: String::new(),
        severity: Severity::High,
        category: ironcase_domain::Category::Phishing,
        status: ironcase_domain::Status::Open,
        resolution: None,
        tlp: Tlp::Amber,
        tags: vec!["finance".into()],
        assignee_id: None,
        reporter_id: UserId::new(),
        created_at: now,
        updated_at: now,
        acknowledged_at: None,
        contained_at: None,
        resolved_at: None,
        closed_at: None,
        version: 1,
    };
    let data = match kind {
        "incident.status_changed" => json!({ "from": "open", "to": "contained", "resolution": null }),
        "incident.updated" => json!({ "changes": { "severity": { "from": "medium", "to": "high" } } }),
        "ioc.added" | "ioc.removed" => json!({ "ioc_id": "ioc_example", "type": "domain", "value": "login-micros0ft.example" }),
        "alert.created" => json!({ "title": "Suspicious sign-in", "severity": "high" }),
        "quota.warning" | "quota.exceeded" => json!({ "quota": "incidents_per_month" }),
        _ => json!({}),
    };
    let event = EventRow {
        id: 1,
        org,
        incident_id: Some(incident.id),
        kind: kind.to_owned(),
        actor_id: Some("usr_example".into()),
        data,
        created_at: now,
    };
    (event, incident)
}

impl App {
    /// Channels need `organization:manage`; those that post to the
    /// internet (Slack, Teams, a generic webhook) the plan's `webhooks`.
    async fn channel_allowed(&self, p: &Principal, meta: &RequestMeta, kind: &str) -> Result<()> {
        if kind == "email" {
            self.family_allowed(p, meta, Family::Channels).await
        } else {
            self.webhooks_allowed(p, meta).await
        }
    }

    fn checked_template(field: &str, t: &str, errs: &mut ValidationErrors) -> Option<String> {
        if t.trim().is_empty() {
            return None;
        }
        if t.len() > MAX_TEMPLATE {
            errs.push(field, format!("must be at most {MAX_TEMPLATE} bytes"));
            return None;
        }
        let (e, i) = example("incident.created", OrgId::new(), Timestamp(0));
        if let Err(why) = render(&environment(), t, &context(&e, Some(&i), "https://ironcase.example")) {
            errs.push(field, format!("does not render: {why}"));
        }
        Some(t.to_owned())
    }

    fn checked_rules(kind: &str, rules: &[Rule], errs: &mut ValidationErrors) -> Vec<Rule> {
        if rules.is_empty() || rules.len() > MAX_RULES {
            errs.push("rules", format!("must hold 1 to {MAX_RULES} rules"));
        }
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.assigned_to_me && kind != "email" {
                    errs.push(&format!("rules[{i}].assigned_to_me"), "is for e-mail channels only");
                }
                let mut severities = r.severities.clone();
                severities.sort();
                severities.dedup();
                Rule {
                    event_types: Self::checked_types(&format!("rules[{i}].event_types"), &r.event_types, errs),
                    severities,
                    assigned_to_me: r.assigned_to_me,
                }
            })
            .collect()
    }

    fn checked_recipients(list: &[String], errs: &mut ValidationErrors) -> Vec<String> {
        if list.len() > MAX_RECIPIENTS {
            errs.push("recipients", format!("must list at most {MAX_RECIPIENTS} addresses"));
        }
        let mut out: Vec<String> = list.iter().enumerate().map(|(i, a)| validate::email(&format!("recipients[{i}]"), a, errs)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// `POST /notification-channels`.
    pub async fn channel_create(&self, p: &Principal, meta: &RequestMeta, input: NewChannel) -> Result<Created> {
        let kind = input.kind.as_str();
        if !CHANNEL_KINDS.contains(&kind) {
            return Err(ValidationErrors::one("kind", format!("must be one of {}", CHANNEL_KINDS.join(", "))).into());
        }
        self.channel_allowed(p, meta, kind).await?;
        let mut errs = ValidationErrors::default();
        let name = validate::text("name", &input.name, 1, 200, &mut errs);
        let mut config = input.config;
        config.rules = Self::checked_rules(kind, &config.rules, &mut errs);
        config.template = config.template.as_deref().and_then(|t| Self::checked_template("template", t, &mut errs));
        config.subject = config.subject.as_deref().and_then(|t| Self::checked_template("subject", t, &mut errs));
        config.recipients = Self::checked_recipients(&config.recipients, &mut errs);
        let url = match (kind, input.url.as_deref()) {
            ("email", None) => String::new(),
            ("email", Some(_)) => {
                errs.push("url", "an e-mail channel has no URL");
                String::new()
            }
            (_, Some(u)) => self.checked_url(u, &mut errs).await,
            (_, None) => {
                errs.push("url", "is required for this kind of channel");
                String::new()
            }
        };
        if kind == "email" {
            if !self.mailer().enabled() {
                errs.push("kind", "this server does not send e-mail");
            }
            if config.recipients.is_empty() && !config.members && !config.rules.iter().any(|r| r.assigned_to_me) {
                errs.push("recipients", "an e-mail channel needs recipients, members, or a rule for the assignee");
            }
        } else if !config.recipients.is_empty() || config.members {
            errs.push("recipients", "only e-mail channels have recipients");
        }
        errs.into_result()?;
        let (org, id, now) = (p.org, WebhookId::new(), self.clock().now());
        // Slack's and Teams' addresses are secrets; a generic webhook signs.
        let secret = crate::webhooks::new_secret();
        let sealed_secret = self.inner.master.seal(secret.as_bytes(), &crate::webhooks::aad(org, id))?;
        let (shown_url, sealed_url) = match kind {
            "slack" | "teams" => (shown(&url), Some(self.inner.master.seal(url.as_bytes(), &url_aad(org, id))?)),
            _ => (url, None),
        };
        let config_json = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
        let (p2, meta2, kind_s) = (p.clone(), meta.clone(), kind.to_owned());
        let row = self
            .store()
            .write(move |c| {
                room_for_one(c, org, Family::Channels, "kind")?;
                let row = WebhookRow {
                    org,
                    id,
                    url: shown_url,
                    description: name,
                    event_types: Vec::new(),
                    enabled: input.enabled.unwrap_or(true),
                    sealed_secret,
                    sealed_previous: None,
                    previous_until: None,
                    event_cursor: store::last_event(c, org)?,
                    failing_since: None,
                    disabled_reason: None,
                    created_at: now,
                    updated_at: now,
                    kind: kind_s,
                    config: config_json,
                    sealed_url,
                };
                store::insert(c, &row)?;
                let details = json!({ "kind": row.kind, "name": row.description, "url": row.url });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "channel.create", ("channel", &id.to_string()), details))?;
                Ok::<_, AppError>(row)
            })
            .await?;
        let secret = (kind == "generic").then_some(secret);
        Ok(Created { channel: Channel::of(row), secret })
    }

    pub async fn channel_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, WebhookId)>,
        size: PageSize,
    ) -> Result<Page<Channel>> {
        self.family_allowed(p, meta, Family::Channels).await?;
        let org = p.org;
        let rows = self.store().read(move |c| store::list(c, org, CHANNEL_KINDS, cursor, size.fetch())).await?;
        Ok(Page::cut(rows.into_iter().map(Channel::of).collect(), size, |last| keyset(last.row.created_at.0, last.row.id)))
    }

    pub async fn channel_get(&self, p: &Principal, meta: &RequestMeta, id: WebhookId) -> Result<Channel> {
        self.family_allowed(p, meta, Family::Channels).await?;
        let org = p.org;
        Ok(Channel::of(self.store().read_now(move |c| endpoint(c, org, id, Family::Channels)).await?))
    }

    /// `PATCH /notification-channels/{id}`.
    pub async fn channel_update(&self, p: &Principal, meta: &RequestMeta, id: WebhookId, change: ChannelChange) -> Result<Channel> {
        let current = self.channel_get(p, meta, id).await?;
        let kind = current.row.kind.clone();
        self.channel_allowed(p, meta, &kind).await?;
        let mut errs = ValidationErrors::default();
        let mut config = current.config;
        let name = change.name.as_deref().map(|n| validate::text("name", n, 1, 200, &mut errs));
        if let Some(r) = &change.rules {
            config.rules = Self::checked_rules(&kind, r, &mut errs);
        }
        if let Some(t) = &change.template {
            config.template = Self::checked_template("template", t, &mut errs);
        }
        if let Some(t) = &change.subject {
            config.subject = Self::checked_template("subject", t, &mut errs);
        }
        if let Some(r) = &change.recipients {
            config.recipients = Self::checked_recipients(r, &mut errs);
        }
        if let Some(m) = change.members {
            config.members = m;
        }
        if change.max_tlp.is_some() {
            config.max_tlp = change.max_tlp;
        }
        if kind != "email" && (!config.recipients.is_empty() || config.members) {
            errs.push("recipients", "only e-mail channels have recipients");
        }
        let url = match (&change.url, kind.as_str()) {
            (Some(_), "email") => {
                errs.push("url", "an e-mail channel has no URL");
                None
            }
            (Some(u), _) => Some(self.checked_url(u, &mut errs).await),
            (None, _) => None,
        };
        errs.into_result()?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let sealed = match (&url, kind.as_str()) {
            (Some(u), "slack" | "teams") => Some((shown(u), Some(self.inner.master.seal(u.as_bytes(), &url_aad(org, id))?))),
            (Some(u), _) => Some((u.clone(), None)),
            (None, _) => None,
        };
        let config_json = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
        let row = self
            .store()
            .write(move |c| {
                let mut w = endpoint(c, org, id, Family::Channels)?;
                if let Some(n) = name {
                    w.description = n;
                }
                if let Some((shown, sealed)) = sealed {
                    (w.url, w.sealed_url) = (shown, sealed);
                }
                w.config = config_json;
                if let Some(on) = change.enabled {
                    crate::webhooks::switch(&mut w, on);
                }
                w.updated_at = now;
                store::update(c, &w)?;
                let details = json!({ "name": w.description, "url": w.url, "enabled": w.enabled });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "channel.update", ("channel", &id.to_string()), details))?;
                Ok::<_, AppError>(w)
            })
            .await?;
        Ok(Channel::of(row))
    }

    /// `POST /notification-channels/preview`: a template rendered for an
    /// example event of a type, as a channel of `kind` would send it.
    pub async fn channel_preview(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        kind: &str,
        event_type: &str,
        template: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Preview> {
        self.family_allowed(p, meta, Family::Channels).await?;
        let mut errs = ValidationErrors::default();
        if !CHANNEL_KINDS.contains(&kind) {
            errs.push("kind", format!("must be one of {}", CHANNEL_KINDS.join(", ")));
        }
        if !crate::live::EVENT_TYPES.contains(&event_type) {
            errs.push("event_type", format!("is not an event type ({})", crate::live::EVENT_TYPES.join(", ")));
        }
        let config = ChannelConfig {
            template: template.and_then(|t| Self::checked_template("template", t, &mut errs)),
            subject: subject.and_then(|t| Self::checked_template("subject", t, &mut errs)),
            ..ChannelConfig::default()
        };
        errs.into_result()?;
        let (e, i) = example(event_type, p.org, self.clock().now());
        let base = self.settings().public_url.trim_end_matches('/').to_owned();
        let ctx = context(&e, Some(&i), &base);
        let env = environment();
        let shown_ctx = if kind == "slack" { slack_escaped(ctx.clone()) } else { ctx.clone() };
        // A preview says why a template fails rather than falling back.
        let mut errs = ValidationErrors::default();
        for (field, t) in [("template", &config.template), ("subject", &config.subject)] {
            if let Some(Err(why)) = t.as_deref().map(|t| render(&env, t, &shown_ctx)) {
                errs.push(field, format!("does not render: {why}"));
            }
        }
        errs.into_result()?;
        let (text, subject) = texts(kind, &config, &ctx);
        let payload = match kind {
            "email" => json!({ "subject": subject, "body": text }),
            _ => body(kind, &e, &text, &subject, ctx["url"].as_str().unwrap_or("")),
        };
        Ok(Preview { subject: (kind == "email" || kind == "teams").then_some(subject), text, payload })
    }

    /// `GET /account/notifications`: what the caller wants by e-mail from
    /// this organisation's channels.
    pub async fn notification_prefs(&self, p: &Principal) -> Result<Prefs> {
        let (org, user) = (p.org, p.user_id());
        let row = self.store().read_now(move |c| prefs::get(c, org, user)).await?;
        Ok(Prefs::of(row.as_ref()))
    }

    /// `PUT /account/notifications`.
    pub async fn notification_prefs_set(&self, p: &Principal, meta: &RequestMeta, input: Prefs) -> Result<Prefs> {
        let user = p.user_id();
        let mut errs = ValidationErrors::default();
        let event_types = Self::checked_types("event_types", &input.event_types, &mut errs);
        errs.into_result()?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let row = PrefRow { org, account: user, email: input.email, event_types, only_assigned: input.only_assigned, updated_at: now };
        let out = Prefs::of(Some(&row));
        self.store()
            .write(move |c| {
                prefs::put(c, &row)?;
                let details = json!({ "email": row.email, "event_types": row.event_types, "only_assigned": row.only_assigned });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "notifications.preferences", ("user", &user.to_string()), details))?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_cannot_run_long_and_slack_values_are_escaped() {
        let env = environment();
        let busy = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}";
        assert!(render(&env, busy, &json!({})).is_err(), "out of fuel");
        let (mut e, mut i) = example("incident.created", OrgId::new(), Timestamp(0));
        i.title = "<!channel> & co".into();
        e.actor_id = None;
        let (text, _) = texts("slack", &ChannelConfig::default(), &context(&e, Some(&i), ""));
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        let (text, subject) = texts("email", &ChannelConfig::default(), &context(&e, Some(&i), ""));
        assert!(text.contains("<!channel> & co") && subject.starts_with("[Ironcase] New incident"), "{text} / {subject}");
    }
}
