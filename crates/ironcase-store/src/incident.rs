//! Incidents, their tags and comments.

use crate::db::Appendable;
use crate::Value;
use crate::{params, Row};
use ironcase_domain::{Category, CommentId, IncidentId, OrgId, Resolution, Severity, Sight, Status, Timestamp, Tlp, UserId};

use crate::{exec, parse_col, parse_id, parse_opt_id, query_map, query_one, Conn, Result, StoreError, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub org: OrgId,
    pub id: IncidentId,
    pub number: i64,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub category: Category,
    pub status: Status,
    pub resolution: Option<Resolution>,
    pub tlp: Tlp,
    pub tags: Vec<String>,
    pub assignee_id: Option<UserId>,
    pub reporter_id: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub contained_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub version: i64,
}

const COLS: &str = "organization_id, incident_id, number, title, description, severity, category, status, resolution, tlp, tags, \
    assignee_id, reporter_id, created_at, updated_at, acknowledged_at, contained_at, resolved_at, closed_at, version";

/// `COLS` qualified with the alias `i`, for joins; same order.
pub(crate) const COLS_I: &str = "i.organization_id, i.incident_id, i.number, i.title, i.description, i.severity, i.category, i.status, i.resolution, i.tlp, i.tags, i.assignee_id, i.reporter_id, i.created_at, i.updated_at, i.acknowledged_at, i.contained_at, i.resolved_at, i.closed_at, i.version";

/// Maps the first 20 columns of a row selected with `COLS` or `COLS_I`.
pub(crate) fn incident_from_row(r: &Row<'_, '_>) -> Result<IncidentRow> {
    incident(r)
}

fn ts(r: &Row<'_, '_>, col: usize) -> Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(col)?.map(Timestamp))
}

/// Maps a row selected with `COLS`, by position (name look-ups were a fifth
/// of a list's cost).
fn incident(r: &Row<'_, '_>) -> Result<IncidentRow> {
    let tags = r.with_str(10, |t| serde_json::from_str::<Vec<String>>(t).map_err(|e| StoreError::Corrupt(format!("tags: {e}"))))?;
    let resolution: Option<String> = r.get(8)?;
    Ok(IncidentRow {
        org: parse_id(r, 0)?,
        id: parse_id(r, 1)?,
        number: r.get(2)?,
        title: r.get(3)?,
        description: r.get(4)?,
        severity: parse_col(r, 5, Severity::parse)?,
        category: parse_col(r, 6, Category::parse)?,
        status: parse_col(r, 7, Status::parse)?,
        resolution: resolution.map(|s| Resolution::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("resolution={s}")))).transpose()?,
        tlp: parse_col(r, 9, Tlp::parse)?,
        tags,
        assignee_id: parse_opt_id(r, 11)?,
        reporter_id: parse_id(r, 12)?,
        created_at: Timestamp(r.get(13)?),
        updated_at: Timestamp(r.get(14)?),
        acknowledged_at: ts(r, 15)?,
        contained_at: ts(r, 16)?,
        resolved_at: ts(r, 17)?,
        closed_at: ts(r, 18)?,
        version: r.get(19)?,
    })
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

fn write_tags(c: &Tx, i: &IncidentRow, replace: bool) -> Result<()> {
    let (org, id) = (i.org.to_string(), i.id.to_string());
    if replace {
        c.sees(&TAGS)?;
        c.run("delete from incident_tag where organization_id = ? and incident_id = ?", [&org, &id])?;
    }
    if i.tags.is_empty() {
        return Ok(());
    }
    for t in &i.tags {
        c.append(&TAGS, vec![Value::Text(org.clone()), Value::Text(t.clone()), Value::Text(id.clone())])?;
    }
    Ok(())
}

/// An incident's tags are replaced by statements that name the table (and
/// are unique per incident: `validate::tags`).
pub(crate) static TAGS: Appendable = Appendable {
    table: "incident_tag",
    one: "insert into incident_tag (organization_id, tag, incident_id) values (?, ?, ?)",
    many: "insert into incident_tag (organization_id, tag, incident_id) select * from unnest(?::text[], ?::text[], ?::text[])",
};

pub fn insert(c: &Tx, i: &IncidentRow) -> Result<()> {
    c.scope(i.org)?;
    // Its number and id are new: a failure here would be a bug, not an answer.
    c.run(
        &format!("insert into incident ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            i.org.to_string(),
            i.id.to_string(),
            i.number,
            i.title,
            i.description,
            i.severity.as_str(),
            i.category.as_str(),
            i.status.as_str(),
            i.resolution.map(|r| r.as_str()),
            i.tlp.as_str(),
            tags_json(&i.tags),
            i.assignee_id.map(|u| u.to_string()),
            i.reporter_id.to_string(),
            i.created_at.0,
            i.updated_at.0,
            i.acknowledged_at.map(|t| t.0),
            i.contained_at.map(|t| t.0),
            i.resolved_at.map(|t| t.0),
            i.closed_at.map(|t| t.0),
            i.version
        ],
    )?;
    write_tags(c, i, false)
}

/// Writes every mutable field of `i` when the stored version is `expected`;
/// `Ok(false)` when someone else changed it first.
pub fn update(c: &Tx, i: &IncidentRow, expected: i64, tags_changed: bool) -> Result<bool> {
    c.scope(i.org)?;
    let n = exec(
        c,
        "update incident set title = ?, description = ?, severity = ?, category = ?, status = ?, resolution = ?, tlp = ?, tags = ?, \
         assignee_id = ?, updated_at = ?, acknowledged_at = ?, contained_at = ?, resolved_at = ?, closed_at = ?, version = ? \
         where organization_id = ? and incident_id = ? and version = ? and deleted_at is null",
        params![
            i.title,
            i.description,
            i.severity.as_str(),
            i.category.as_str(),
            i.status.as_str(),
            i.resolution.map(|r| r.as_str()),
            i.tlp.as_str(),
            tags_json(&i.tags),
            i.assignee_id.map(|u| u.to_string()),
            i.updated_at.0,
            i.acknowledged_at.map(|t| t.0),
            i.contained_at.map(|t| t.0),
            i.resolved_at.map(|t| t.0),
            i.closed_at.map(|t| t.0),
            i.version,
            i.org.to_string(),
            i.id.to_string(),
            expected
        ],
    )?;
    if n == 1 && tags_changed {
        write_tags(c, i, true)?;
    }
    Ok(n == 1)
}

pub fn soft_delete(c: &Tx, org: OrgId, id: IncidentId, at: Timestamp) -> Result<()> {
    c.scope(org)?;
    let n = exec(
        c,
        "update incident set deleted_at = ?, version = version + 1 where organization_id = ? and incident_id = ? and deleted_at is null",
        params![at.0, org.to_string(), id.to_string()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    c.sees(&TAGS)?;
    exec(c, "delete from incident_tag where organization_id = ? and incident_id = ?", [org.to_string(), id.to_string()])?;
    Ok(())
}

/// How an incident is named in a path: its id or its number.
#[derive(Debug, Clone, Copy)]
pub enum IncidentRef {
    Id(IncidentId),
    Number(i64),
}

pub fn get(c: &Conn, org: OrgId, r: IncidentRef) -> Result<IncidentRow> {
    c.scope(org)?;
    match r {
        IncidentRef::Id(id) => query_one(
            c,
            &format!("select {COLS} from incident where organization_id = ? and incident_id = ? and deleted_at is null"),
            [org.to_string(), id.to_string()],
            incident,
        ),
        IncidentRef::Number(n) => query_one(
            c,
            &format!("select {COLS} from incident where organization_id = ? and number = ? and deleted_at is null"),
            params![org.to_string(), n],
            incident,
        ),
    }
}

/// Sort orders for lists; each pairs a column with the id as tie-breaker so
/// that keyset cursors stay exact while rows are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        match s {
            "-created_at" => Some(Sort::CreatedDesc),
            "created_at" => Some(Sort::CreatedAsc),
            "-updated_at" => Some(Sort::UpdatedDesc),
            "updated_at" => Some(Sort::UpdatedAsc),
            _ => None,
        }
    }
    fn column(self) -> &'static str {
        match self {
            Sort::CreatedDesc | Sort::CreatedAsc => "created_at",
            Sort::UpdatedDesc | Sort::UpdatedAsc => "updated_at",
        }
    }
    fn desc(self) -> bool {
        matches!(self, Sort::CreatedDesc | Sort::UpdatedDesc)
    }
    /// The cursor key of a row under this order.
    pub fn key(self, i: &IncidentRow) -> i64 {
        match self {
            Sort::CreatedDesc | Sort::CreatedAsc => i.created_at.0,
            Sort::UpdatedDesc | Sort::UpdatedAsc => i.updated_at.0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub assignee_id: Option<UserId>,
    pub tag: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// Only incidents in the caller's sight (its TLP ceiling and categories).
    pub sight: Sight,
}

/// `and tlp in (…)` for a ceiling: the levels are a closed set, written as
/// literals so that no parameter numbering is disturbed.
/// The condition that keeps only incidents in `sight` (`alias`: the
/// incident table's, with its dot). The values are the closed enums' own.
pub(crate) fn sight_clause(alias: &str, sight: Sight) -> String {
    let mut sql = tlp_clause(alias, sight.tlp_max);
    if let Some(set) = sight.categories {
        let list: Vec<String> = set.list().iter().map(|c| format!("'{}'", c.as_str())).collect();
        match list.is_empty() {
            true => sql.push_str(" and 1 = 0"),
            false => sql.push_str(&format!(" and {alias}category in ({})", list.join(", "))),
        }
    }
    sql
}

pub(crate) fn tlp_clause(alias: &str, max: Option<Tlp>) -> String {
    match max {
        None => String::new(),
        Some(m) => {
            let levels: Vec<String> = m.at_or_below().iter().map(|t| format!("'{}'", t.as_str())).collect();
            format!(" and {alias}tlp in ({})", levels.join(", "))
        }
    }
}

/// What the organisation's live incidents are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBy {
    Status,
    Severity,
    Category,
}

impl CountBy {
    pub const ALL: [CountBy; 3] = [CountBy::Status, CountBy::Severity, CountBy::Category];

    fn column(self) -> &'static str {
        match self {
            CountBy::Status => "status",
            CountBy::Severity => "severity",
            CountBy::Category => "category",
        }
    }
}

/// The conditions of `f` (but its sight), each a clause with one `$` for
/// its value, handed to `bind`; `except`'s own condition left out (a
/// facet's). The list and the facets filter alike through it.
fn conditions(f: &Filter, except: Option<CountBy>, bind: &mut dyn FnMut(&str, Value)) {
    let dims = [
        (CountBy::Status, f.status.map(Status::as_str)),
        (CountBy::Severity, f.severity.map(Severity::as_str)),
        (CountBy::Category, f.category.map(Category::as_str)),
    ];
    for (d, v) in dims {
        if let (Some(v), false) = (v, except == Some(d)) {
            bind(&format!(" and {} = $", d.column()), Value::Text(v.into()));
        }
    }
    if let Some(a) = f.assignee_id {
        bind(" and assignee_id = $", Value::Text(a.to_string()));
    }
    if let Some(t) = &f.tag {
        bind(" and incident_id in (select incident_id from incident_tag where organization_id = ?1 and tag = $)", Value::Text(t.clone()));
    }
    if let Some(t) = f.created_after {
        bind(" and created_at > $", Value::Integer(t.0));
    }
    if let Some(t) = f.created_before {
        bind(" and created_at < $", Value::Integer(t.0));
    }
}

/// The queue's facets: for each of status, severity and category, how many
/// incidents matching `f` have each value, leaving out `f`'s own condition
/// on that column (so the other choices show what they would find). From
/// the tallies when `f` is only on those columns; from the incidents, by
/// the same conditions as the list, when it names an assignee, a tag or a
/// time.
pub fn facets(c: &Conn, org: OrgId, f: &Filter) -> Result<Vec<(CountBy, String, i64)>> {
    c.scope(org)?;
    let tallied = f.assignee_id.is_none() && f.tag.is_none() && f.created_after.is_none() && f.created_before.is_none();
    if f.tag.is_some() {
        c.sees(&TAGS)?;
    }
    let mut out = Vec::new();
    for by in CountBy::ALL {
        let (from, count) = if tallied { ("incident_tally", "sum(n)") } else { ("incident", "count(*)") };
        let col = by.column();
        let mut sql = format!("select {col}, cast({count} as bigint) from {from} where organization_id = ?1");
        if !tallied {
            sql.push_str(" and deleted_at is null");
        }
        sql.push_str(&sight_clause("", f.sight));
        let mut p: Vec<Value> = vec![Value::Text(org.to_string())];
        let mut bind = |sql: &mut String, clause: &str, v: Value| {
            p.push(v);
            sql.push_str(&clause.replace('$', &format!("?{}", p.len())));
        };
        conditions(f, Some(by), &mut |clause, v| bind(&mut sql, clause, v));
        sql.push_str(&format!(" group by {col} having {count} > 0 order by {col}"));
        let rows: Vec<(String, i64)> = query_map(c, &sql, p, |r| Ok((r.get(0)?, r.get(1)?)))?;
        out.extend(rows.into_iter().map(|(v, n)| (by, v, n)));
    }
    Ok(out)
}

/// How many of the organisation's live incidents in `sight` have each value
/// of the column, from the tally the `incident` triggers keep (migration 20
/// on SQLite, 12 on PostgreSQL): a few hundred rows at any size.
pub fn counts(c: &Conn, org: OrgId, sight: Sight, by: CountBy) -> Result<Vec<(String, i64)>> {
    c.scope(org)?;
    let col = by.column();
    query_map(
        c,
        &format!(
            "select {col}, cast(sum(n) as bigint) from incident_tally where organization_id = ?{} group by {col} having sum(n) > 0 order by {col}",
            sight_clause("", sight)
        ),
        [org.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Incidents opened, and closed, per UTC day since `since`: `(day, opened,
/// closed)` for the days that had any, the day as days since 1970; from the
/// per-day tally the `incident` triggers keep.
pub fn per_day(c: &Conn, org: OrgId, sight: Sight, since: Timestamp) -> Result<Vec<(i64, i64, i64)>> {
    c.scope(org)?;
    query_map(
        c,
        &format!(
            "select day, cast(sum(opened) as bigint), cast(sum(closed) as bigint) from incident_day where organization_id = ? and day >= ?{} \
             group by day having sum(opened) > 0 or sum(closed) > 0 order by day",
            sight_clause("", sight)
        ),
        params![org.to_string(), since.0.div_euclid(86_400_000)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// One page after the cursor `(key, id)`.
pub fn list(c: &Conn, org: OrgId, f: &Filter, sort: Sort, after: Option<(i64, IncidentId)>, limit: i64) -> Result<Vec<IncidentRow>> {
    c.scope(org)?;
    if f.tag.is_some() {
        c.sees(&TAGS)?;
    }
    crate::list_in_order(c, list_query(org, f, sort, after, limit), incident)
}

/// The list's statement. The tenant's incidents, unfiltered, are read down
/// their index whatever the statistics; filters are left to the planner.
pub(crate) fn list_query(org: OrgId, f: &Filter, sort: Sort, after: Option<(i64, IncidentId)>, limit: i64) -> crate::db::ListQuery {
    let mut sql = format!("select {COLS} from incident where organization_id = ?1 and deleted_at is null{}", sight_clause("", f.sight));
    let mut p: Vec<Value> = vec![Value::Text(org.to_string())];
    let mut bind = |sql: &mut String, clause: &str, v: Value| {
        p.push(v);
        sql.push_str(&clause.replace('$', &format!("?{}", p.len())));
    };
    conditions(f, None, &mut |clause, v| bind(&mut sql, clause, v));
    let col = sort.column();
    let (cmp, dir) = if sort.desc() { ("<", "desc") } else { (">", "asc") };
    if let Some((key, id)) = after {
        bind(&mut sql, &format!(" and ({col}, incident_id) {cmp} ($"), Value::Integer(key));
        bind(&mut sql, ", $)", Value::Text(id.to_string()));
    }
    bind(&mut sql, &format!(" order by {col} {dir}, incident_id {dir} limit $"), Value::Integer(limit));
    // Only the tenant's own index (`incident_created`, `incident_updated`)
    // needs holding: a filter on status, severity, category or assignee
    // gives the planner a two-column index condition, which it takes even
    // without statistics (checked by the same test).
    let filtered = f.status.is_some() || f.severity.is_some() || f.category.is_some() || f.assignee_id.is_some() || f.tag.is_some();
    let in_index_order = !filtered && (col == "created_at" || (f.created_after.is_none() && f.created_before.is_none()));
    crate::db::ListQuery { sql, params: p, in_index_order }
}

#[derive(Debug, Clone)]
pub struct CommentRow {
    pub org: OrgId,
    pub id: CommentId,
    pub incident_id: IncidentId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: Timestamp,
    /// The organisation erased the author (the comment is its record and
    /// stays; who wrote it is shown as erased).
    pub author_erased: bool,
}

pub fn insert_comment(c: &Tx, m: &CommentRow) -> Result<()> {
    c.scope(m.org)?;
    c.run(
        "insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) values (?, ?, ?, ?, ?, ?)",
        params![m.org.to_string(), m.id.to_string(), m.incident_id.to_string(), m.author_id.to_string(), m.body, m.created_at.0],
    )?;
    Ok(())
}

/// Every comment of an incident, oldest first.
pub fn comments(c: &Conn, org: OrgId, incident: IncidentId) -> Result<Vec<CommentRow>> {
    c.scope(org)?;
    query_map(
        c,
        "select m.comment_id, m.author_id, m.body, m.created_at, e.user_id is not null from comment m \
         left join erased_subject e on e.organization_id = m.organization_id and e.user_id = m.author_id \
         where m.organization_id = ? and m.incident_id = ? order by m.created_at, m.comment_id",
        [org.to_string(), incident.to_string()],
        |r| {
            Ok(CommentRow {
                org,
                id: parse_id(r, 0)?,
                incident_id: incident,
                author_id: parse_id(r, 1)?,
                body: r.get(2)?,
                created_at: Timestamp(r.get(3)?),
                author_erased: r.get(4)?,
            })
        },
    )
}
