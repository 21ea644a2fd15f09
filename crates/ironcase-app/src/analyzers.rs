//! Enrichment: an organisation's analyzers, HTTPS services that receive an
//! indicator (signed like a webhook) and answer a report — a verdict
//! (malicious, suspicious, benign, unknown), a summary, a link and their
//! own details. They run on demand (`POST /iocs/{id}/analyze`) or by
//! themselves for new indicators of the types they take. Analyzers are
//! endpoints of the webhook outbox (same leases, retries and attempt log);
//! an answer that is not a report is a failed attempt, retried. Each keeps
//! its latest report on the indicator, and an `ioc.analyzed` event says so.
//!
//! An analyzer has a TLP ceiling (default amber): an indicator marked above
//! it is never sent to it.

use ironcase_domain::ioc::IocType;
use ironcase_domain::validate::{self, ValidationErrors};
use ironcase_domain::{IocId, MessageId, OrgId, Permission, Timestamp, Tlp, WebhookId};
use ironcase_store::event::{self, EventRow};
use ironcase_store::ioc::{self as iocs, IocRow};
use ironcase_store::report::{self as reports, ReportRow};
use ironcase_store::webhook::{self as store, MessageRow, WebhookRow};
use ironcase_store::{Conn, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::by;
use crate::page::{keyset, Page, PageSize};
use crate::webhooks::{endpoint, room_for_one, Family};
use crate::{App, AppError, Principal, RequestMeta, Result};

pub const VERDICTS: &[&str] = &["malicious", "suspicious", "benign", "unknown"];
const MAX_SUMMARY: usize = 2000;
const MAX_RAW: usize = 32 * 1024;

/// An analyzer's settings (kept as JSON on its endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyzerConfig {
    /// New indicators of these types are sent by themselves.
    #[serde(default)]
    pub ioc_types: Vec<IocType>,
    /// Indicators marked above this are never sent (default amber).
    #[serde(default)]
    pub max_tlp: Option<Tlp>,
}

impl AnalyzerConfig {
    pub fn ceiling(&self) -> Tlp {
        self.max_tlp.unwrap_or(Tlp::Amber)
    }
}

#[derive(Debug, Clone)]
pub struct Analyzer {
    pub row: WebhookRow,
    pub config: AnalyzerConfig,
}

impl Analyzer {
    fn of(row: WebhookRow) -> Analyzer {
        let config = serde_json::from_str(&row.config).unwrap_or_default();
        Analyzer { row, config }
    }
}

#[derive(Debug, Clone)]
pub struct NewAnalyzer {
    pub name: String,
    pub url: String,
    pub config: AnalyzerConfig,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct AnalyzerChange {
    pub name: Option<String>,
    pub url: Option<String>,
    pub ioc_types: Option<Vec<IocType>>,
    pub max_tlp: Option<Tlp>,
    pub enabled: Option<bool>,
}

/// A new analyzer and its signing secret, shown this once.
pub struct AnalyzerCreated {
    pub analyzer: Analyzer,
    pub secret: String,
}

impl std::fmt::Debug for AnalyzerCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyzerCreated").field("analyzer", &self.analyzer).finish_non_exhaustive()
    }
}

/// A report as an analyzer answered it, checked.
#[derive(Debug, Clone)]
pub struct Report {
    pub ioc: IocId,
    pub verdict: String,
    pub summary: String,
    pub link: Option<String>,
    pub raw: String,
}

/// An indicator sent to an analyzer: the message that carries it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub analyzer: WebhookId,
    pub message: MessageId,
}

/// What an analyzer receives.
fn payload(ioc: &IocRow, at: Timestamp) -> String {
    let data = json!({ "ioc": { "id": ioc.id, "type": ioc.kind, "value": ioc.value, "tlp": ioc.tlp, "tags": ioc.tags } });
    json!({ "type": "ioc.analyze", "timestamp": at, "data": data }).to_string()
}

/// The message an analyzer makes of an event: an indicator newly added,
/// of a type it takes, marked at or below its ceiling.
pub(crate) fn payloads(c: &Tx, w: &WebhookRow, e: &EventRow) -> Result<Vec<String>> {
    if e.kind != "ioc.added" {
        return Ok(Vec::new());
    }
    let config: AnalyzerConfig = serde_json::from_str(&w.config).unwrap_or_default();
    let kind = e.data.get("type").and_then(Value::as_str).and_then(IocType::parse);
    let id = e.data.get("ioc_id").and_then(Value::as_str).and_then(|s| s.parse::<IocId>().ok());
    let (Some(kind), Some(id)) = (kind, id) else { return Ok(Vec::new()) };
    if !config.ioc_types.contains(&kind) {
        return Ok(Vec::new());
    }
    let ioc = match iocs::get(c, w.org, id) {
        Ok(i) => i,
        Err(ironcase_store::StoreError::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if ioc.tlp > config.ceiling() {
        return Ok(Vec::new());
    }
    Ok(vec![payload(&ioc, e.created_at)])
}

/// Reads an analyzer's answer as a report on the indicator its message
/// carried; why not, when it is not one.
pub(crate) fn parse_report(m: &MessageRow, answer: &[u8]) -> std::result::Result<Report, String> {
    let sent: Value = serde_json::from_str(&m.payload).map_err(|_| "the message carries no indicator".to_owned())?;
    let ioc = sent["data"]["ioc"]["id"].as_str().and_then(|s| s.parse::<IocId>().ok()).ok_or("the message carries no indicator")?;
    let v: Value = serde_json::from_slice(answer).map_err(|_| "the answer is not a JSON report".to_owned())?;
    let verdict = v.get("verdict").and_then(Value::as_str).filter(|s| VERDICTS.contains(s));
    let Some(verdict) = verdict else {
        return Err(format!("the report's verdict must be one of {}", VERDICTS.join(", ")));
    };
    let summary = match v.get("summary") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.chars().filter(|c| !c.is_control() || *c == '\n').take(MAX_SUMMARY).collect(),
        Some(_) => return Err("the report's summary must be text".into()),
    };
    let link = match v.get("link") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 2000 && reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) => {
            Some(s.clone())
        }
        Some(_) => return Err("the report's link must be an http(s) URL".into()),
    };
    let raw = v.get("raw").cloned().unwrap_or(Value::Null).to_string();
    if raw.len() > MAX_RAW {
        return Err(format!("the report's raw details must be at most {MAX_RAW} bytes"));
    }
    Ok(Report { ioc, verdict: verdict.to_owned(), summary, link, raw })
}

/// Keeps a report as the analyzer's latest on its indicator (unless the
/// indicator is gone), with an `ioc.analyzed` event.
pub(crate) fn keep(c: &Tx, w: &WebhookRow, r: Report, now: Timestamp) -> Result<()> {
    match iocs::get(c, w.org, r.ioc) {
        Ok(_) => {}
        Err(ironcase_store::StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let data = json!({ "ioc_id": r.ioc, "analyzer_id": w.id, "analyzer": w.description, "verdict": r.verdict });
    reports::put(
        c,
        &ReportRow {
            org: w.org,
            ioc: r.ioc,
            analyzer: w.id,
            analyzer_name: w.description.clone(),
            verdict: r.verdict,
            summary: r.summary,
            link: r.link,
            raw: r.raw,
            at: now,
        },
    )?;
    event::append(c, w.org, None, "ioc.analyzed", None, &data, now)?;
    Ok(())
}

/// The indicator, if the principal may see it: within its TLP ceiling and
/// on at least one incident it sees.
fn visible_ioc(c: &Conn, p: &Principal, org: OrgId, id: IocId) -> Result<IocRow> {
    let ioc = iocs::get(c, org, id)?;
    let seen = p.sight.sees_tlp(ioc.tlp) && iocs::sightings(c, org, id)?.iter().any(|s| p.sight.sees(s.incident_tlp, s.incident_category));
    if !seen {
        return Err(AppError::NotFound);
    }
    Ok(ioc)
}

impl App {
    /// `POST /analyzers`.
    pub async fn analyzer_create(&self, p: &Principal, meta: &RequestMeta, input: NewAnalyzer) -> Result<AnalyzerCreated> {
        self.family_allowed(p, meta, Family::Analyzers).await?;
        let mut errs = ValidationErrors::default();
        let name = validate::text("name", &input.name, 1, 200, &mut errs);
        let url = self.checked_url(&input.url, &mut errs).await;
        errs.into_result()?;
        let mut config = input.config;
        config.ioc_types.sort();
        config.ioc_types.dedup();
        let (org, id, now, secret) = (p.org, WebhookId::new(), self.clock().now(), crate::webhooks::new_secret());
        let sealed = self.inner.master.seal(secret.as_bytes(), &crate::webhooks::aad(org, id))?;
        let config_json = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
        let (p2, meta2) = (p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                room_for_one(c, org, Family::Analyzers, "url")?;
                let row = WebhookRow {
                    org,
                    id,
                    url,
                    description: name,
                    event_types: Vec::new(),
                    enabled: input.enabled.unwrap_or(true),
                    sealed_secret: sealed,
                    sealed_previous: None,
                    previous_until: None,
                    event_cursor: store::last_event(c, org)?,
                    failing_since: None,
                    disabled_reason: None,
                    created_at: now,
                    updated_at: now,
                    kind: "analyzer".into(),
                    config: config_json,
                    sealed_url: None,
                };
                store::insert(c, &row)?;
                let details = json!({ "name": row.description, "url": row.url, "config": config });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "analyzer.create", ("analyzer", &id.to_string()), details))?;
                Ok::<_, AppError>(row)
            })
            .await?;
        Ok(AnalyzerCreated { analyzer: Analyzer::of(row), secret })
    }

    pub async fn analyzer_list(
        &self,
        p: &Principal,
        meta: &RequestMeta,
        cursor: Option<(i64, WebhookId)>,
        size: PageSize,
    ) -> Result<Page<Analyzer>> {
        self.family_allowed(p, meta, Family::Analyzers).await?;
        let org = p.org;
        let rows = self.store().read(move |c| store::list(c, org, Family::Analyzers.kinds(), cursor, size.fetch())).await?;
        Ok(Page::cut(rows.into_iter().map(Analyzer::of).collect(), size, |last| keyset(last.row.created_at.0, last.row.id)))
    }

    pub async fn analyzer_get(&self, p: &Principal, meta: &RequestMeta, id: WebhookId) -> Result<Analyzer> {
        self.family_allowed(p, meta, Family::Analyzers).await?;
        let org = p.org;
        Ok(Analyzer::of(self.store().read_now(move |c| endpoint(c, org, id, Family::Analyzers)).await?))
    }

    /// `PATCH /analyzers/{id}`.
    pub async fn analyzer_update(&self, p: &Principal, meta: &RequestMeta, id: WebhookId, change: AnalyzerChange) -> Result<Analyzer> {
        self.family_allowed(p, meta, Family::Analyzers).await?;
        let mut errs = ValidationErrors::default();
        let name = change.name.as_deref().map(|n| validate::text("name", n, 1, 200, &mut errs));
        let url = match &change.url {
            Some(u) => Some(self.checked_url(u, &mut errs).await),
            None => None,
        };
        errs.into_result()?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let row = self
            .store()
            .write(move |c| {
                let mut w = endpoint(c, org, id, Family::Analyzers)?;
                let mut config: AnalyzerConfig = serde_json::from_str(&w.config).unwrap_or_default();
                if let Some(mut t) = change.ioc_types {
                    t.sort();
                    t.dedup();
                    config.ioc_types = t;
                }
                if change.max_tlp.is_some() {
                    config.max_tlp = change.max_tlp;
                }
                w.config = serde_json::to_string(&config).map_err(|e| AppError::Internal(e.to_string()))?;
                if let Some(n) = name {
                    w.description = n;
                }
                if let Some(u) = url {
                    w.url = u;
                }
                if let Some(on) = change.enabled {
                    crate::webhooks::switch(&mut w, on);
                }
                w.updated_at = now;
                store::update(c, &w)?;
                let details = json!({ "name": w.description, "url": w.url, "enabled": w.enabled, "config": config });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "analyzer.update", ("analyzer", &id.to_string()), details))?;
                Ok::<_, AppError>(w)
            })
            .await?;
        Ok(Analyzer::of(row))
    }

    /// `POST /iocs/{id}/analyze`: sends the indicator to the analyzers
    /// named (or every enabled one) whose ceiling allows it; what was sent.
    pub async fn ioc_analyze(&self, p: &Principal, meta: &RequestMeta, id: IocId, only: Option<Vec<WebhookId>>) -> Result<Vec<Queued>> {
        self.require(p, meta, Permission::IncidentUpdate).await?;
        let (org, now, p2, meta2) = (p.org, self.clock().now(), p.clone(), meta.clone());
        let queued = self
            .store()
            .write(move |c| {
                let ioc = visible_ioc(c, &p2, org, id)?;
                let chosen: Vec<WebhookRow> = match &only {
                    Some(ids) => {
                        let mut errs = ValidationErrors::default();
                        let mut rows = Vec::new();
                        for (i, a) in ids.iter().enumerate() {
                            match endpoint(c, org, *a, Family::Analyzers) {
                                Ok(w) if !w.enabled => errs.push(&format!("analyzers[{i}]"), "is disabled"),
                                Ok(w) if ioc.tlp > Analyzer::of(w.clone()).config.ceiling() => {
                                    errs.push(&format!("analyzers[{i}]"), "may not receive indicators marked this high (its TLP ceiling)")
                                }
                                Ok(w) => rows.push(w),
                                Err(AppError::NotFound) => errs.push(&format!("analyzers[{i}]"), "is not an analyzer of this organisation"),
                                Err(e) => return Err(e),
                            }
                        }
                        errs.into_result()?;
                        rows
                    }
                    None => store::list(c, org, Family::Analyzers.kinds(), None, 1000)?
                        .into_iter()
                        .filter(|w| w.enabled && ioc.tlp <= Analyzer::of(w.clone()).config.ceiling())
                        .collect(),
                };
                if chosen.is_empty() {
                    return Err(ValidationErrors::one("analyzers", "no enabled analyzer may receive this indicator").into());
                }
                let mut queued = Vec::new();
                for w in chosen {
                    let m = MessageRow {
                        org,
                        id: MessageId::new(),
                        webhook_id: w.id,
                        event_id: None,
                        kind: "ioc.analyze".into(),
                        payload: payload(&ioc, now),
                        status: "pending".into(),
                        attempts: 0,
                        next_at: now,
                        created_at: now,
                        finished_at: None,
                    };
                    store::insert_message(c, &m)?;
                    queued.push(Queued { analyzer: w.id, message: m.id });
                }
                let details = json!({ "analyzers": queued.iter().map(|q| q.analyzer).collect::<Vec<_>>() });
                ironcase_store::audit::append(c, by(&p2, &meta2, now, "ioc.analyze", ("ioc", &id.to_string()), details))?;
                Ok(queued)
            })
            .await?;
        Ok(queued)
    }

    /// The indicator's type and value, if the principal sees it.
    pub async fn ioc_identity(&self, p: &Principal, meta: &RequestMeta, id: IocId) -> Result<(IocType, String)> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, p2) = (p.org, p.clone());
        let ioc = self.store().read_now(move |c| visible_ioc(c, &p2, org, id)).await?;
        Ok((ioc.kind, ioc.value))
    }

    /// `GET /iocs/{id}/reports`: each analyzer's latest, newest first.
    pub async fn ioc_reports(&self, p: &Principal, meta: &RequestMeta, id: IocId) -> Result<Vec<ReportRow>> {
        self.require(p, meta, Permission::IncidentRead).await?;
        let (org, p2) = (p.org, p.clone());
        self.store()
            .read_now(move |c| {
                visible_ioc(c, &p2, org, id)?;
                Ok(reports::of_ioc(c, org, id)?)
            })
            .await
    }
}
