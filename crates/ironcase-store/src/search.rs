//! Full-text search: the documents behind the index, and the search query.

use std::collections::BTreeMap;

use crate::db::Appendable;
use crate::params;
use crate::Value;
use ironcase_domain::{IncidentId, OrgId, Severity, Sight, Status, Timestamp, Tlp, UserId};

use crate::incident::{incident_from_row, sight_clause, tlp_clause, IncidentRow, COLS_I};
use crate::{exec, query_map, query_opt, Backend, Conn, Result, Tx};

/// What search covers of an incident, as one text, in document order: title
/// and description, comments, evidence names and descriptions, indicator
/// values, one per line. Defined once, in SQL (both dialects), so that the
/// index is rebuilt by one statement that nobody waits for (PostgreSQL) and
/// highlights read the same text. Parameters: `?1` organisation, `?2`
/// incident, `?3` the separator (a newline). No row for a deleted incident.
const DOCUMENT: &str = "select i.row_id as row_id, i.title || cast(?3 as text) || i.description \
     || coalesce((select cast(?3 as text) || string_agg(m.body, cast(?3 as text) order by m.created_at, m.comment_id) \
                  from comment m where m.organization_id = i.organization_id and m.incident_id = i.incident_id), '') \
     || coalesce((select cast(?3 as text) || string_agg(e.name || coalesce(' ' || e.description, ''), cast(?3 as text) \
                         order by e.created_at, e.evidence_id) \
                  from evidence e where e.organization_id = i.organization_id and e.incident_id = i.incident_id \
                  and e.deleted_at is null), '') \
     || coalesce((select cast(?3 as text) || string_agg(x.value, cast(?3 as text) order by g.first_seen, x.ioc_id) \
                  from ioc_sighting g join ioc x on x.organization_id = g.organization_id and x.ioc_id = g.ioc_id \
                  where g.organization_id = i.organization_id and g.incident_id = i.incident_id), '') as body \
     from incident i where i.organization_id = ?1 and i.incident_id = ?2 and i.deleted_at is null";

/// The statements built on [`DOCUMENT`], made once.
struct Statements {
    /// PostgreSQL: the incident's `tsvector` row, written anew.
    pg_reindex: String,
    /// SQLite: the FTS5 row, inserted from the same text.
    fts_insert: String,
    /// The text alone (highlights).
    text: String,
}

fn statements() -> &'static Statements {
    static S: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    S.get_or_init(|| Statements {
        pg_reindex: format!(
            "insert into incident_search (organization_id, incident_id, search) \
             select ?1, ?2, to_tsvector('simple', d.body) from ({DOCUMENT}) d \
             on conflict (organization_id, incident_id) do update set search = excluded.search"
        ),
        fts_insert: format!("insert into search_fts (rowid, body) select d.row_id, d.body from ({DOCUMENT}) d"),
        text: format!("select d.body from ({DOCUMENT}) d"),
    })
}

/// Rebuilds the incident's document, in the caller's transaction: call it
/// after any change to what search covers (the incident's text, its
/// comments, evidence and indicators).
pub fn reindex(c: &Tx, org: OrgId, incident: IncidentId) -> Result<()> {
    c.scope(org)?;
    let (o, i) = (org.to_string(), incident.to_string());
    if c.backend() == Backend::Postgres {
        c.sees(&NEW_DOCUMENTS)?;
        return c.run(&statements().pg_reindex, params![o, i, "\n"]);
    }
    let Some(row_id) = row_id(c, org, incident)? else { return Ok(()) };
    exec(c, "delete from search_fts where rowid = ?", [row_id])?;
    c.run(&statements().fts_insert, params![o, i, "\n"])
}

/// The document of an incident that nothing refers to yet (no comment,
/// evidence or indicator): [`DOCUMENT`]'s first line (a test holds the two
/// together).
pub fn new_document(title: &str, description: &str) -> String {
    format!("{title}\n{description}")
}

/// Indexes an incident just inserted, in the caller's transaction. On
/// PostgreSQL its document is known without reading anything back
/// ([`new_document`]): one insert instead of [`DOCUMENT`]'s four look-ups
/// (measured by `pg_stat_statements`: 90 → ~50 µs per create); elsewhere as
/// [`reindex`].
pub fn index_new(c: &Tx, i: &IncidentRow) -> Result<()> {
    if c.backend() != Backend::Postgres {
        return reindex(c, i.org, i.id);
    }
    c.scope(i.org)?;
    c.append(&NEW_DOCUMENTS, vec![i.org.to_string().into(), i.id.to_string().into(), new_document(&i.title, &i.description).into()])
}

/// A document is changed or dropped only by statements that declare the
/// table ([`Conn::sees`]).
pub(crate) static NEW_DOCUMENTS: Appendable = Appendable {
    table: "incident_search",
    one: "insert into incident_search (organization_id, incident_id, search) values (?, ?, to_tsvector('simple', ?))",
    many: "insert into incident_search (organization_id, incident_id, search) \
           select o, i, to_tsvector('simple', d) from unnest(?::text[], ?::text[], ?::text[]) as t (o, i, d)",
};

/// Drops an incident's document (when it is deleted).
pub fn remove_incident(c: &Tx, org: OrgId, incident: IncidentId) -> Result<()> {
    c.scope(org)?;
    if c.backend() == Backend::Postgres {
        c.sees(&NEW_DOCUMENTS)?;
        return c.run(
            "delete from incident_search where organization_id = ? and incident_id = ?",
            params![org.to_string(), incident.to_string()],
        );
    }
    if let Some(row_id) = row_id(c, org, incident)? {
        exec(c, "delete from search_fts where rowid = ?", [row_id])?;
    }
    Ok(())
}

fn row_id(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Option<i64>> {
    query_opt(
        c,
        "select row_id from incident where organization_id = ? and incident_id = ?",
        params![org.to_string(), incident.to_string()],
        |r| r.get(0),
    )
}

/// What search covers of an incident ([`DOCUMENT`]); `None` once deleted.
pub fn document(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Option<String>> {
    c.scope(org)?;
    query_opt(c, &statements().text, params![org.to_string(), incident.to_string(), "\n"], |r| r.get(0))
}

/// A compiled search: FTS5 expressions and SQL conditions on `incident i`.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Each must match the incident's text (OR-groups, AND-ed together).
    pub required: Vec<Vec<String>>,
    /// The incident's text may not match this.
    pub excluded: Vec<String>,
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
    /// The caller's sight: nothing outside it is part of the result.
    pub sight: Sight,
}

/// A term as an FTS5 string: a phrase of its tokens, quotes doubled.
fn fts5_term(t: &str) -> String {
    format!("\"{}\"", t.replace('"', "\"\""))
}

fn fts5_any(terms: &[String]) -> String {
    terms.iter().map(|t| fts5_term(t)).collect::<Vec<_>>().join(" OR ")
}

impl Spec {
    /// The FTS5 expression every hit must match, when the query has words.
    fn fts5_match(&self) -> Option<String> {
        if self.required.is_empty() {
            return None;
        }
        let all = self.required.iter().map(|g| format!("({})", fts5_any(g))).collect::<Vec<_>>().join(" AND ");
        Some(if self.excluded.is_empty() { all } else { format!("({all}) NOT ({})", fts5_any(&self.excluded)) })
    }
}

/// A PostgreSQL tsquery expression over bound phrases: each term a phrase
/// (`phraseto_tsquery`), a group any of its terms, groups all together.
fn ts_any(terms: &[String], bind: &mut dyn FnMut(String) -> String) -> String {
    let parts: Vec<String> = terms.iter().map(|t| format!("phraseto_tsquery('simple', {})", bind(t.clone()))).collect();
    format!("({})", parts.join(" || "))
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

/// The query for the whole result set: each hit's key, score, and what
/// ordering and facets need. The organisation scopes it; with words, FTS5
/// drives (CROSS JOIN fixes the order) and each hit joins its incident by
/// integer key.
fn result_set_sql(backend: Backend, org: OrgId, s: &Spec) -> (String, Vec<Value>) {
    let mut p: Vec<Value> = vec![Value::Text(org.to_string())];
    let bind = |p: &mut Vec<Value>, v: Value| {
        p.push(v);
        format!("?{}", p.len())
    };
    const WANT: &str = "i.row_id, i.created_at, i.severity, i.status, i.category, i.tags";
    let mut sql = match backend {
        Backend::Sqlite => match s.fts5_match() {
            Some(m) => {
                let m = bind(&mut p, Value::Text(m));
                format!(
                    "select {WANT}, bm25(search_fts) from search_fts cross join incident i on i.row_id = search_fts.rowid \
                     where search_fts match {m} and i.organization_id = ?1 and i.deleted_at is null"
                )
            }
            None => {
                let mut sql = format!("select {WANT}, null from incident i where i.organization_id = ?1 and i.deleted_at is null");
                if !s.excluded.is_empty() {
                    let m = bind(&mut p, Value::Text(fts5_any(&s.excluded)));
                    sql.push_str(&format!(" and i.row_id not in (select rowid from search_fts where search_fts match {m})"));
                }
                sql
            }
        },
        Backend::Postgres => {
            let mut b = |t: String| bind(&mut p, Value::Text(t));
            let required: Vec<String> = s.required.iter().map(|g| ts_any(g, &mut b)).collect();
            let excluded = (!s.excluded.is_empty()).then(|| ts_any(&s.excluded, &mut b));
            if required.is_empty() {
                let mut sql = format!("select {WANT}, null::float8 from incident i where i.organization_id = ?1 and i.deleted_at is null");
                if let Some(x) = excluded {
                    sql.push_str(&format!(
                        " and not exists (select 1 from incident_search s where s.organization_id = i.organization_id \
                         and s.incident_id = i.incident_id and s.search @@ {x})"
                    ));
                }
                sql
            } else {
                // Matched through the GIN index by `search_match`, which
                // applies the tenant wall itself (migration 0004: under the
                // policy `@@` cannot use the index). ts_rank is higher for
                // better; negated, lower is better, as BM25.
                let q = required.join(" && ");
                let x = excluded.unwrap_or_else(|| "null::tsquery".to_owned());
                format!(
                    "select {WANT}, -m.rank::float8 from search_match({q}, {x}) m \
                     join incident i on i.organization_id = ?1 and i.incident_id = m.incident_id \
                     where i.deleted_at is null"
                )
            }
        }
    };
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
    sql.push_str(&sight_clause("i.", s.sight));
    for t in &s.tags {
        let v = bind(&mut p, Value::Text(t.clone()));
        sql.push_str(&format!(
            " and exists (select 1 from incident_tag t where t.organization_id = ?1 and t.tag = {v} and t.incident_id = i.incident_id)"
        ));
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
        let cond = if alts.is_empty() { "1 = 0".to_owned() } else { alts.join(" or ") };
        sql.push_str(&format!(
            " and i.incident_id in (select g.incident_id from ioc x join ioc_sighting g on g.organization_id = x.organization_id \
             and g.ioc_id = x.ioc_id where x.organization_id = ?1 and ({cond}){})",
            tlp_clause("x.", s.sight.tlp_max)
        ));
    }
    (sql, p)
}

/// Most tags a facet lists.
const TAG_FACETS: usize = 50;

/// Runs a search: one page of hits (best first, or newest first without
/// words), the total, and facets over the whole result set.
pub fn run(c: &Conn, org: OrgId, s: &Spec, offset: i64, limit: i64) -> Result<Results> {
    c.scope(org)?;
    c.sees(&NEW_DOCUMENTS)?;
    c.sees(&crate::incident::TAGS)?;
    // The whole result set once, with what ordering and facets need; the page
    // is cut from it, so the search itself runs once, not once per facet.
    let (sql, p) = result_set_sql(c.backend(), org, s);
    let mut facets = Facets::default();
    let mut tags: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    // (score, created_at, row_id) per hit.
    let mut set: Vec<(Option<f64>, i64, i64)> = Vec::new();
    {
        c.each_row(&sql, p, |r| {
            let row_id: i64 = r.get(0)?;
            let created: i64 = r.get(1)?;
            for (col, map) in [(2, &mut facets.severity), (3, &mut facets.status), (4, &mut facets.category)] {
                r.with_str(col, |v| {
                    match map.get_mut(v) {
                        Some(n) => *n += 1,
                        None => {
                            map.insert(v.to_owned(), 1);
                        }
                    }
                    Ok(())
                })?;
            }
            r.with_str(5, |t| {
                if t != "[]" {
                    for tag in serde_json::from_str::<Vec<String>>(t).unwrap_or_default() {
                        *tags.entry(tag).or_default() += 1;
                    }
                }
                Ok(())
            })?;
            set.push((r.get(6)?, created, row_id));
            Ok(true)
        })?;
    }
    let mut tags: Vec<(String, i64)> = tags.into_iter().collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    facets.tag = tags.into_iter().take(TAG_FACETS).collect();
    let total = set.len() as i64;
    // Best first (BM25 is lower for better), then newest; without words, newest first.
    let (offset, limit) = (offset.max(0) as usize, limit.max(0) as usize);
    let order = |a: &(Option<f64>, i64, i64), b: &(Option<f64>, i64, i64)| {
        a.0.unwrap_or(0.0).total_cmp(&b.0.unwrap_or(0.0)).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2))
    };
    let want = (offset + limit).min(set.len());
    if want > 0 && want < set.len() {
        set.select_nth_unstable_by(want - 1, order);
        set.truncate(want);
    }
    set.sort_by(order);
    let mut hits = Vec::with_capacity(limit);
    for (score, _, row_id) in set.into_iter().skip(offset).take(limit) {
        let row = crate::query_opt(
            c,
            &format!("select {COLS_I} from incident i where i.row_id = ?1 and i.organization_id = ?2"),
            params![row_id, org.to_string()],
            incident_from_row,
        )?;
        if let Some(incident) = row {
            let snippet = if s.highlight.is_empty() {
                None
            } else {
                document(c, org, incident.id)?.and_then(|d| d.lines().find_map(|l| highlight(l, &s.highlight)))
            };
            hits.push(Hit { incident, score, snippet });
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

/// How many incidents a word of a text-similarity query may occur in, summed
/// over the chosen words: bounds the work of ranking the candidates.
const SIMILAR_BUDGET: i64 = 20_000;
/// Most words of an incident a text-similarity query uses.
const SIMILAR_WORDS: usize = 6;
/// Most words whose frequency is looked up (each lookup reads the word's
/// list of incidents).
const SIMILAR_CANDIDATES: usize = 12;

/// On PostgreSQL a word's count reads every incident that has it (SQLite's
/// vocabulary table holds the counts): words are first counted no further
/// than this, and those that reach it only counted whole if fewer than
/// [`SIMILAR_WORDS`] words fell below it (else they could not be chosen).
const SIMILAR_FIRST_COUNT: i64 = 1_000;

/// The telling words among `words`: those in the fewest other incidents,
/// within [`SIMILAR_BUDGET`]. Words no other incident has tell nothing.
fn telling_words(c: &Conn, words: &[String]) -> Result<Vec<String>> {
    // Longer words tend to be rarer: look those up first.
    let mut candidates: Vec<&String> = words.iter().collect();
    candidates.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    candidates.truncate(SIMILAR_CANDIDATES);
    // Within the organisation (the scope), by the GIN index; a word past the
    // cap is counted as the cap.
    let pg_count = |w: &str, cap: i64| -> Result<Option<i64>> {
        query_opt(c, "select search_count(plainto_tsquery('simple', ?), cast(? as bigint))", params![w, cap], |r| r.get(0))
    };
    let mut counted = Vec::new();
    let mut unresolved = Vec::new();
    for w in candidates {
        let n: Option<i64> = match c.backend() {
            Backend::Sqlite => query_opt(c, "select doc from search_vocab where term = ?", [w], |r| r.get(0))?,
            Backend::Postgres => match pg_count(w, SIMILAR_FIRST_COUNT)? {
                Some(n) if n >= SIMILAR_FIRST_COUNT => {
                    unresolved.push(w);
                    continue;
                }
                n => n,
            },
        };
        if let Some(n) = n.filter(|n| *n >= 2) {
            counted.push((n, w.clone()));
        }
    }
    // Only if they could be chosen: a word past the budget never is.
    if counted.len() < SIMILAR_WORDS {
        for w in unresolved {
            if let Some(n) = pg_count(w, SIMILAR_BUDGET + 1)? {
                counted.push((n, w.clone()));
            }
        }
    }
    counted.sort();
    let mut spent = 0;
    let mut out = Vec::new();
    for (n, w) in counted {
        if out.len() == SIMILAR_WORDS || spent + n > SIMILAR_BUDGET {
            break;
        }
        spent += n;
        out.push(w);
    }
    Ok(out)
}

/// Incidents that share indicators with `incident`, or whose text shares its
/// telling `words` (lower-case, as the index tokenizes them), best first:
/// each shared indicator weighs more than any text match.
pub fn similar(c: &Conn, org: OrgId, incident: IncidentId, words: &[String], sight: Sight, limit: i64) -> Result<Vec<Similar>> {
    c.scope(org)?;
    let ceiling = sight_clause("i.", sight);
    /// Per candidate incident: shared indicators, text score.
    type Reasons = (Vec<(String, String)>, Option<f64>);
    let mut by_id: BTreeMap<String, Reasons> = BTreeMap::new();
    let shared = query_map(
        c,
        &format!(
            "select s2.incident_id, x.type, x.value from ioc_sighting s1 \
             join ioc_sighting s2 on s2.organization_id = s1.organization_id and s2.ioc_id = s1.ioc_id and s2.incident_id <> s1.incident_id \
             join ioc x on x.organization_id = s1.organization_id and x.ioc_id = s1.ioc_id \
             where s1.organization_id = ?1 and s1.incident_id = ?2{} order by x.type, x.value limit 10000",
            tlp_clause("x.", sight.tlp_max)
        ),
        params![org.to_string(), incident.to_string()],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
    )?;
    for (id, t, v) in shared {
        by_id.entry(id).or_default().0.push((t, v));
    }
    let telling = telling_words(c, words)?;
    if !telling.is_empty() {
        let sql = match c.backend() {
            Backend::Sqlite => format!(
                "select i.incident_id, bm25(search_fts) from search_fts cross join incident i on i.row_id = search_fts.rowid \
                 where search_fts match ?1 and i.organization_id = ?2 and i.incident_id <> ?3 and i.deleted_at is null{ceiling} \
                 order by bm25(search_fts) limit 200"
            ),
            Backend::Postgres => format!(
                "select i.incident_id, -m.rank::float8 from search_match(to_tsquery('simple', ?1), null) m \
                 join incident i on i.organization_id = ?2 and i.incident_id = m.incident_id \
                 where m.incident_id <> ?3 and i.deleted_at is null{ceiling} order by 2 limit 200"
            ),
        };
        let expr = match c.backend() {
            Backend::Sqlite => fts5_any(&telling),
            // Words as the index holds them (no operators): quoted lexemes, OR-ed.
            Backend::Postgres => {
                telling.iter().map(|w| format!("'{}'", w.replace('\\', "").replace('\'', "''"))).collect::<Vec<_>>().join(" | ")
            }
        };
        let text = query_map(c, &sql, params![expr, org.to_string(), incident.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
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
            &format!(
                "select {COLS_I} from incident i where i.organization_id = ?1 and i.incident_id = ?2 and i.deleted_at is null{ceiling}"
            ),
            params![org.to_string(), id],
            incident_from_row,
        )?;
        if let Some(incident) = row {
            out.push(Similar { incident, shared_iocs, text_score });
        }
    }
    Ok(out)
}
