//! Full-text search: the documents behind the index, and the search query.

use std::collections::BTreeMap;

use ironcase_domain::{IncidentId, OrgId, Severity, Status, Timestamp, Tlp, UserId};
use rusqlite::params;
use rusqlite::types::Value;

use crate::incident::{incident_from_row, IncidentRow, COLS_I};
use crate::{exec, query_map, Conn, Result};

/// Writes (or rewrites) one document of an incident.
pub fn put(c: &Conn, org: OrgId, incident: IncidentId, kind: &str, ref_id: &str, body: &str) -> Result<()> {
    exec(
        c,
        "insert into search_source (organization_id, incident_id, kind, ref_id, body) values (?, ?, ?, ?, ?) \
         on conflict (organization_id, kind, ref_id, incident_id) do update set body = excluded.body",
        params![org.to_string(), incident.to_string(), kind, ref_id, body],
    )?;
    Ok(())
}

pub fn remove(c: &Conn, org: OrgId, incident: IncidentId, kind: &str, ref_id: &str) -> Result<()> {
    exec(
        c,
        "delete from search_source where organization_id = ? and kind = ? and ref_id = ? and incident_id = ?",
        params![org.to_string(), kind, ref_id, incident.to_string()],
    )?;
    Ok(())
}

/// Drops every document of an incident (when it is deleted).
pub fn remove_incident(c: &Conn, org: OrgId, incident: IncidentId) -> Result<()> {
    exec(c, "delete from search_source where organization_id = ? and incident_id = ?", params![org.to_string(), incident.to_string()])?;
    Ok(())
}

/// A compiled search: FTS5 expressions and SQL conditions on `incident i`.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Ranks and highlights: every positive term, OR-ed. `None`: no text terms.
    pub rank_match: Option<String>,
    /// Each must match some document of the incident (per-incident AND).
    pub required: Vec<String>,
    /// No document of the incident may match this.
    pub excluded: Option<String>,
    pub severity: Vec<Severity>,
    pub status: Vec<Status>,
    pub category: Vec<ironcase_domain::Category>,
    pub tags: Vec<String>,
    pub tlp: Vec<Tlp>,
    pub assignee: Option<UserId>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// Each entry: the incident saw one of these (type, value) indicators.
    pub iocs: Vec<Vec<(String, String)>>,
    /// Lower-case words and phrases to mark in highlights.
    pub highlight: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub incident: IncidentRow,
    /// BM25 (lower is better); `None` when the query had no text.
    pub score: Option<f64>,
    pub snippet: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Facets {
    pub severity: BTreeMap<String, i64>,
    pub status: BTreeMap<String, i64>,
    pub category: BTreeMap<String, i64>,
    pub tag: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default)]
pub struct Results {
    pub hits: Vec<Hit>,
    pub total: i64,
    pub facets: Facets,
}

/// Builds `with hits as (…), matched as (…)` and its parameters. `matched`
/// holds the incident ids (and scores) of the whole result set; the
/// organisation scopes every part of it.
fn matched_cte(org: OrgId, s: &Spec, scored: bool) -> (String, Vec<Value>) {
    let mut p: Vec<Value> = vec![Value::Text(org.to_string())];
    let bind = |p: &mut Vec<Value>, v: Value| {
        p.push(v);
        format!("?{}", p.len())
    };
    let docs_matching = |m: &str| {
        format!("select s.incident_id from search_doc cross join search_source s on s.doc_id = search_doc.rowid where search_doc match {m} and s.organization_id = ?1")
    };
    let mut sql = String::new();
    match &s.rank_match {
        // Ranking needs bm25 for every matching document; counts and facets
        // only need the incident ids. FTS5 must drive the join (CROSS JOIN
        // fixes the order): the other way round evaluates the match once per
        // document of the organisation.
        Some(m) if scored => {
            let m = bind(&mut p, Value::Text(m.clone()));
            sql.push_str(&format!(
                "with docs as materialized (select s.incident_id as incident_id, bm25(search_doc) as score \
                 from search_doc cross join search_source s on s.doc_id = search_doc.rowid where search_doc match {m} and s.organization_id = ?1), \
                 hits as (select incident_id, min(score) as score from docs group by incident_id), \
                 matched as (select i.incident_id, h.score from hits h join incident i on i.organization_id = ?1 and i.incident_id = h.incident_id \
                 where i.deleted_at is null"
            ));
        }
        _ => sql.push_str(
            "with matched as (select i.incident_id, null as score from incident i where i.organization_id = ?1 and i.deleted_at is null",
        ),
    }
    for r in &s.required {
        let m = bind(&mut p, Value::Text(r.clone()));
        sql.push_str(&format!(" and i.incident_id in ({})", docs_matching(&m)));
    }
    if let Some(x) = &s.excluded {
        let m = bind(&mut p, Value::Text(x.clone()));
        sql.push_str(&format!(" and i.incident_id not in ({})", docs_matching(&m)));
    }
    let any_of = |p: &mut Vec<Value>, sql: &mut String, col: &str, vals: Vec<String>| {
        if vals.is_empty() {
            return;
        }
        let list: Vec<String> = vals.into_iter().map(|v| bind(p, Value::Text(v))).collect();
        sql.push_str(&format!(" and i.{col} in ({})", list.join(", ")));
    };
    any_of(&mut p, &mut sql, "severity", s.severity.iter().map(|v| v.as_str().to_owned()).collect());
    any_of(&mut p, &mut sql, "status", s.status.iter().map(|v| v.as_str().to_owned()).collect());
    any_of(&mut p, &mut sql, "category", s.category.iter().map(|v| v.as_str().to_owned()).collect());
    any_of(&mut p, &mut sql, "tlp", s.tlp.iter().map(|v| v.as_str().to_owned()).collect());
    for t in &s.tags {
        let v = bind(&mut p, Value::Text(t.clone()));
        sql.push_str(&format!(" and i.incident_id in (select incident_id from incident_tag where organization_id = ?1 and tag = {v})"));
    }
    if let Some(a) = s.assignee {
        let v = bind(&mut p, Value::Text(a.to_string()));
        sql.push_str(&format!(" and i.assignee_id = {v}"));
    }
    if let Some(t) = s.created_after {
        let v = bind(&mut p, Value::Integer(t.0));
        sql.push_str(&format!(" and i.created_at > {v}"));
    }
    if let Some(t) = s.created_before {
        let v = bind(&mut p, Value::Integer(t.0));
        sql.push_str(&format!(" and i.created_at < {v}"));
    }
    for forms in &s.iocs {
        let mut alts = Vec::new();
        for (kind, value) in forms {
            let (k, v) = (bind(&mut p, Value::Text(kind.clone())), bind(&mut p, Value::Text(value.clone())));
            alts.push(format!("(x.type = {k} and x.value = {v})"));
        }
        let cond = if alts.is_empty() { "0".to_owned() } else { alts.join(" or ") };
        sql.push_str(&format!(
            " and i.incident_id in (select g.incident_id from ioc_sighting g join ioc x on x.organization_id = g.organization_id \
             and x.ioc_id = g.ioc_id where g.organization_id = ?1 and ({cond}))"
        ));
    }
    sql.push_str(") ");
    (sql, p)
}

/// Runs a search: one page of hits (best first, or newest first without text
/// terms), the total, and facets over the whole result set.
pub fn run(c: &Conn, org: OrgId, s: &Spec, offset: i64, limit: i64) -> Result<Results> {
    // The whole result set once, with what ordering and facets need; the page
    // is cut from it, so the search itself runs once, not once per facet.
    let (cte, p) = matched_cte(org, s, true);
    let set_sql = format!(
        "{cte} select m.incident_id, m.score, i.created_at, i.severity, i.status, i.category \
         from matched m join incident i on i.organization_id = ?1 and i.incident_id = m.incident_id"
    );
    let mut set = query_map(c, &set_sql, rusqlite::params_from_iter(p.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<f64>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut facets = Facets::default();
    for (_, _, _, sev, st, cat) in &set {
        *facets.severity.entry(sev.clone()).or_default() += 1;
        *facets.status.entry(st.clone()).or_default() += 1;
        *facets.category.entry(cat.clone()).or_default() += 1;
    }
    let total = set.len() as i64;
    // Best first (BM25 is lower for better), then newest; without text, newest first.
    set.sort_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)).then(b.2.cmp(&a.2)).then(b.0.cmp(&a.0)));
    let page: Vec<(String, Option<f64>)> =
        set.into_iter().skip(offset.max(0) as usize).take(limit.max(0) as usize).map(|(id, score, ..)| (id, score)).collect();
    let mut hits = Vec::with_capacity(page.len());
    for (id, score) in page {
        let row = crate::query_opt(
            c,
            &format!("select {COLS_I} from incident i where i.organization_id = ?1 and i.incident_id = ?2"),
            params![org.to_string(), id],
            incident_from_row,
        )?;
        if let Some(incident) = row {
            let snippet = if s.highlight.is_empty() {
                None
            } else {
                let bodies = query_map(
                    c,
                    "select body from search_source where organization_id = ? and incident_id = ? order by doc_id",
                    params![org.to_string(), incident.id.to_string()],
                    |r| Ok(r.get::<_, String>(0)?),
                )?;
                bodies.iter().find_map(|b| highlight(b, &s.highlight))
            };
            hits.push(Hit { incident, score, snippet });
        }
    }
    if total > 0 {
        let (cte, p) = matched_cte(org, s, false);
        let tag_sql = format!(
            "{cte} select t.tag, count(*) as n from matched m join incident_tag t on t.organization_id = ?1 and t.incident_id = m.incident_id \
             group by t.tag order by n desc, t.tag limit 50"
        );
        for (k, n) in query_map(c, &tag_sql, rusqlite::params_from_iter(p.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            facets.tag.insert(k, n);
        }
    }
    Ok(Results { hits, total, facets })
}

/// The first place in `body` where one of `terms` (lower-case) stands as a
/// whole word or phrase, with about 60 characters around it, the term wrapped
/// in `<mark>`. Text outside the marks is HTML-escaped.
pub fn highlight(body: &str, terms: &[String]) -> Option<String> {
    let lower = body.to_lowercase();
    // Lower-casing can change byte lengths; only use positions when it did not.
    if lower.len() != body.len() {
        return None;
    }
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (start, len) = terms
        .iter()
        .filter_map(|t| {
            lower
                .match_indices(t.as_str())
                .find(|(i, _)| !is_word(lower[..*i].chars().last()) && !is_word(lower[i + t.len()..].chars().next()))
                .map(|(i, _)| (i, t.len()))
        })
        .min_by_key(|(i, _)| *i)?;
    let mut from = start.saturating_sub(60);
    while !body.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (start + len + 60).min(body.len());
    while !body.is_char_boundary(to) {
        to += 1;
    }
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    Some(format!(
        "{}{}<mark>{}</mark>{}{}",
        if from > 0 { "…" } else { "" },
        esc(&body[from..start]),
        esc(&body[start..start + len]),
        esc(&body[start + len..to]),
        if to < body.len() { "…" } else { "" }
    ))
}

/// One incident like another, and why.
#[derive(Debug, Clone)]
pub struct Similar {
    pub incident: IncidentRow,
    /// `(type, value)` of every indicator both incidents saw.
    pub shared_iocs: Vec<(String, String)>,
    /// BM25 of the other incident's text against this one's title words
    /// (lower is closer); `None` when the texts share nothing.
    pub text_score: Option<f64>,
}

/// Incidents that share indicators with `incident`, or whose text matches
/// `words` (an FTS5 OR-expression of its title's words), best first:
/// each shared indicator weighs more than any text match.
pub fn similar(c: &Conn, org: OrgId, incident: IncidentId, words: Option<&str>, limit: i64) -> Result<Vec<Similar>> {
    /// Per candidate incident: shared indicators, text score.
    type Reasons = (Vec<(String, String)>, Option<f64>);
    let mut by_id: BTreeMap<String, Reasons> = BTreeMap::new();
    let shared = query_map(
        c,
        "select s2.incident_id, x.type, x.value from ioc_sighting s1 \
         join ioc_sighting s2 on s2.organization_id = s1.organization_id and s2.ioc_id = s1.ioc_id and s2.incident_id <> s1.incident_id \
         join ioc x on x.organization_id = s1.organization_id and x.ioc_id = s1.ioc_id \
         where s1.organization_id = ?1 and s1.incident_id = ?2 order by x.type, x.value",
        params![org.to_string(), incident.to_string()],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
    )?;
    for (id, t, v) in shared {
        by_id.entry(id).or_default().0.push((t, v));
    }
    if let Some(w) = words {
        let text = query_map(
            c,
            "with docs as materialized (select s.incident_id as incident_id, bm25(search_doc) as score from search_doc \
             cross join search_source s on s.doc_id = search_doc.rowid where search_doc match ?1 and s.organization_id = ?2 and s.incident_id <> ?3) \
             select incident_id, min(score) as score from docs group by incident_id order by score limit 200",
            params![w, org.to_string(), incident.to_string()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)),
        )?;
        for (id, score) in text {
            by_id.entry(id).or_default().1 = Some(score);
        }
    }
    let mut ranked: Vec<(String, Reasons)> = by_id.into_iter().collect();
    ranked.sort_by(|(ia, (sa, ta)), (ib, (sb, tb))| {
        sb.len().cmp(&sa.len()).then(ta.unwrap_or(0.0).total_cmp(&tb.unwrap_or(0.0))).then(ia.cmp(ib))
    });
    let mut out = Vec::new();
    for (id, (shared_iocs, text_score)) in ranked {
        if out.len() as i64 >= limit {
            break;
        }
        let row = crate::query_opt(
            c,
            &format!("select {COLS_I} from incident i where i.organization_id = ?1 and i.incident_id = ?2 and i.deleted_at is null"),
            params![org.to_string(), id],
            incident_from_row,
        )?;
        if let Some(incident) = row {
            out.push(Similar { incident, shared_iocs, text_score });
        }
    }
    Ok(out)
}
