//! Incidents, their tags and comments.

use ironcase_domain::{Category, CommentId, IncidentId, OrgId, Resolution, Severity, Status, Timestamp, Tlp, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{parse_col, parse_id, parse_opt_id, Conn, Result, StoreError};

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

fn ts(r: &SqliteRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(Timestamp))
}

fn incident(r: &SqliteRow) -> Result<IncidentRow> {
    let tags: String = r.try_get("tags")?;
    let resolution: Option<String> = r.try_get("resolution")?;
    Ok(IncidentRow {
        org: parse_id(r, "organization_id")?,
        id: parse_id(r, "incident_id")?,
        number: r.try_get("number")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        severity: parse_col(r, "severity", Severity::parse)?,
        category: parse_col(r, "category", Category::parse)?,
        status: parse_col(r, "status", Status::parse)?,
        resolution: resolution.map(|s| Resolution::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("resolution={s}")))).transpose()?,
        tlp: parse_col(r, "tlp", Tlp::parse)?,
        tags: serde_json::from_str(&tags).map_err(|_| StoreError::Corrupt("tags".into()))?,
        assignee_id: parse_opt_id(r, "assignee_id")?,
        reporter_id: parse_id(r, "reporter_id")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
        acknowledged_at: ts(r, "acknowledged_at")?,
        contained_at: ts(r, "contained_at")?,
        resolved_at: ts(r, "resolved_at")?,
        closed_at: ts(r, "closed_at")?,
        version: r.try_get("version")?,
    })
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

async fn write_tags(c: &mut Conn, i: &IncidentRow) -> Result<()> {
    sqlx::query("delete from incident_tag where organization_id = ? and incident_id = ?")
        .bind(i.org.to_string())
        .bind(i.id.to_string())
        .execute(&mut *c)
        .await?;
    for t in &i.tags {
        sqlx::query("insert into incident_tag (organization_id, tag, incident_id) values (?, ?, ?)")
            .bind(i.org.to_string())
            .bind(t)
            .bind(i.id.to_string())
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn insert(c: &mut Conn, i: &IncidentRow) -> Result<()> {
    sqlx::query(&format!("insert into incident ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(i.org.to_string())
        .bind(i.id.to_string())
        .bind(i.number)
        .bind(&i.title)
        .bind(&i.description)
        .bind(i.severity.as_str())
        .bind(i.category.as_str())
        .bind(i.status.as_str())
        .bind(i.resolution.map(|r| r.as_str()))
        .bind(i.tlp.as_str())
        .bind(tags_json(&i.tags))
        .bind(i.assignee_id.map(|u| u.to_string()))
        .bind(i.reporter_id.to_string())
        .bind(i.created_at.0)
        .bind(i.updated_at.0)
        .bind(i.acknowledged_at.map(|t| t.0))
        .bind(i.contained_at.map(|t| t.0))
        .bind(i.resolved_at.map(|t| t.0))
        .bind(i.closed_at.map(|t| t.0))
        .bind(i.version)
        .execute(&mut *c)
        .await?;
    if !i.tags.is_empty() {
        write_tags(c, i).await?;
    }
    Ok(())
}

/// Writes every mutable field of `i` when the stored version is `expected`;
/// `Ok(false)` when someone else changed it first.
pub async fn update(c: &mut Conn, i: &IncidentRow, expected: i64, tags_changed: bool) -> Result<bool> {
    let n = sqlx::query(
        "update incident set title = ?, description = ?, severity = ?, category = ?, status = ?, resolution = ?, tlp = ?, tags = ?, \
         assignee_id = ?, updated_at = ?, acknowledged_at = ?, contained_at = ?, resolved_at = ?, closed_at = ?, version = ? \
         where organization_id = ? and incident_id = ? and version = ? and deleted_at is null",
    )
    .bind(&i.title)
    .bind(&i.description)
    .bind(i.severity.as_str())
    .bind(i.category.as_str())
    .bind(i.status.as_str())
    .bind(i.resolution.map(|r| r.as_str()))
    .bind(i.tlp.as_str())
    .bind(tags_json(&i.tags))
    .bind(i.assignee_id.map(|u| u.to_string()))
    .bind(i.updated_at.0)
    .bind(i.acknowledged_at.map(|t| t.0))
    .bind(i.contained_at.map(|t| t.0))
    .bind(i.resolved_at.map(|t| t.0))
    .bind(i.closed_at.map(|t| t.0))
    .bind(i.version)
    .bind(i.org.to_string())
    .bind(i.id.to_string())
    .bind(expected)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 1 && tags_changed {
        write_tags(c, i).await?;
    }
    Ok(n == 1)
}

pub async fn soft_delete(c: &mut Conn, org: OrgId, id: IncidentId, at: Timestamp) -> Result<()> {
    let n = sqlx::query(
        "update incident set deleted_at = ?, version = version + 1 where organization_id = ? and incident_id = ? and deleted_at is null",
    )
    .bind(at.0)
    .bind(org.to_string())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query("delete from incident_tag where organization_id = ? and incident_id = ?")
        .bind(org.to_string())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// How an incident is named in a path: its id or its number.
#[derive(Debug, Clone, Copy)]
pub enum IncidentRef {
    Id(IncidentId),
    Number(i64),
}

pub async fn get(c: &mut Conn, org: OrgId, r: IncidentRef) -> Result<IncidentRow> {
    let row = match r {
        IncidentRef::Id(id) => {
            sqlx::query(&format!("select {COLS} from incident where organization_id = ? and incident_id = ? and deleted_at is null"))
                .bind(org.to_string())
                .bind(id.to_string())
                .fetch_one(&mut *c)
                .await?
        }
        IncidentRef::Number(n) => {
            sqlx::query(&format!("select {COLS} from incident where organization_id = ? and number = ? and deleted_at is null"))
                .bind(org.to_string())
                .bind(n)
                .fetch_one(&mut *c)
                .await?
        }
    };
    incident(&row)
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
}

/// One page after the cursor `(key, id)`.
pub async fn list(
    c: &mut Conn,
    org: OrgId,
    f: &Filter,
    sort: Sort,
    after: Option<(i64, IncidentId)>,
    limit: i64,
) -> Result<Vec<IncidentRow>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!("select {COLS} from incident where organization_id = "));
    q.push_bind(org.to_string());
    q.push(" and deleted_at is null");
    if let Some(s) = f.status {
        q.push(" and status = ").push_bind(s.as_str());
    }
    if let Some(s) = f.severity {
        q.push(" and severity = ").push_bind(s.as_str());
    }
    if let Some(s) = f.category {
        q.push(" and category = ").push_bind(s.as_str());
    }
    if let Some(a) = f.assignee_id {
        q.push(" and assignee_id = ").push_bind(a.to_string());
    }
    if let Some(t) = &f.tag {
        q.push(" and incident_id in (select incident_id from incident_tag where organization_id = ")
            .push_bind(org.to_string())
            .push(" and tag = ")
            .push_bind(t.clone())
            .push(")");
    }
    if let Some(t) = f.created_after {
        q.push(" and created_at > ").push_bind(t.0);
    }
    if let Some(t) = f.created_before {
        q.push(" and created_at < ").push_bind(t.0);
    }
    let col = sort.column();
    let (cmp, dir) = if sort.desc() { ("<", "desc") } else { (">", "asc") };
    if let Some((key, id)) = after {
        q.push(format!(" and ({col}, incident_id) {cmp} (")).push_bind(key).push(", ").push_bind(id.to_string()).push(")");
    }
    q.push(format!(" order by {col} {dir}, incident_id {dir} limit ")).push_bind(limit);
    let rows = q.build().fetch_all(&mut *c).await?;
    rows.iter().map(incident).collect()
}

#[derive(Debug, Clone)]
pub struct CommentRow {
    pub org: OrgId,
    pub id: CommentId,
    pub incident_id: IncidentId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: Timestamp,
}

pub async fn insert_comment(c: &mut Conn, m: &CommentRow) -> Result<()> {
    sqlx::query("insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) values (?, ?, ?, ?, ?, ?)")
        .bind(m.org.to_string())
        .bind(m.id.to_string())
        .bind(m.incident_id.to_string())
        .bind(m.author_id.to_string())
        .bind(&m.body)
        .bind(m.created_at.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}
