//! Analyzers' reports on indicators: the latest of each analyzer on each.

use ironcase_domain::{IocId, OrgId, Timestamp, WebhookId};

use crate::{exec, params, parse_id, query_map, Conn, Result, Row, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub org: OrgId,
    pub ioc: IocId,
    pub analyzer: WebhookId,
    pub analyzer_name: String,
    /// `malicious`, `suspicious`, `benign` or `unknown`.
    pub verdict: String,
    pub summary: String,
    pub link: Option<String>,
    /// The analyzer's own details (JSON, bounded).
    pub raw: String,
    pub at: Timestamp,
}

const COLS: &str = "organization_id, ioc_id, analyzer_id, analyzer_name, verdict, summary, link, raw, at";

fn report(r: &Row<'_, '_>) -> Result<ReportRow> {
    Ok(ReportRow {
        org: parse_id(r, 0)?,
        ioc: parse_id(r, 1)?,
        analyzer: parse_id(r, 2)?,
        analyzer_name: r.get(3)?,
        verdict: r.get(4)?,
        summary: r.get(5)?,
        link: r.get(6)?,
        raw: r.get(7)?,
        at: Timestamp(r.get(8)?),
    })
}

/// Keeps the report as the analyzer's latest on the indicator.
pub fn put(c: &Tx, r: &ReportRow) -> Result<()> {
    c.scope(r.org)?;
    exec(
        c,
        &format!(
            "insert into ioc_report ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (organization_id, ioc_id, analyzer_id) \
             do update set analyzer_name = excluded.analyzer_name, verdict = excluded.verdict, summary = excluded.summary, \
             link = excluded.link, raw = excluded.raw, at = excluded.at"
        ),
        params![r.org.to_string(), r.ioc.to_string(), r.analyzer.to_string(), r.analyzer_name, r.verdict, r.summary, r.link, r.raw, r.at.0],
    )?;
    Ok(())
}

/// The indicator's reports, newest first.
pub fn of_ioc(c: &Conn, org: OrgId, ioc: IocId) -> Result<Vec<ReportRow>> {
    c.scope(org)?;
    query_map(
        c,
        &format!("select {COLS} from ioc_report where organization_id = ? and ioc_id = ? order by at desc, analyzer_id"),
        [org.to_string(), ioc.to_string()],
        report,
    )
}
