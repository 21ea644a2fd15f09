//! The one connection type every store function takes, over either backend.
//!
//! Store functions write their SQL once, with `?` (or `?N`) placeholders, and
//! bind parameters that both drivers can bind ([`Param`]: the compiler checks
//! each one for both); rows are read through [`Row`], by position or name, into
//! types both drivers can read. SQLite runs the text as it is; PostgreSQL gets
//! `$N` placeholders. Where the dialects differ (search), a function asks
//! [`Conn::backend`].

use std::cell::{Cell, RefCell};
use std::fmt::Display;

use crate::{Result, StoreError};

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection (inside the store's transaction, on the writer) or a read
/// connection: every statement either may run. What only a write may do is
/// on [`Tx`].
#[derive(Clone, Copy)]
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a PgConn),
}

/// A PostgreSQL connection, working as the application's role, and the
/// tenant scope its current transaction has been given.
pub struct PgConn {
    pub(crate) client: RefCell<crate::pipe::Pipe>,
    /// The `app.tenant_id` of the current transaction, as this side last set
    /// it (`None`: none). On the writer, the scope a job asked for is sent
    /// before its first statement only when it differs: consecutive jobs of
    /// one tenant share it.
    pub(crate) scope: RefCell<Option<String>>,
    /// The writer: the scope when the current job's savepoint was taken,
    /// which undoing the job returns to.
    at_savepoint: RefCell<Option<String>>,
    /// A read connection. Its tenant scope is the session's
    /// (`set_config(…, false)`, outside any one transaction: point reads run
    /// outside `begin … commit`), sent before a read's first statement only
    /// when the read asks for another scope than the connection has. A read
    /// that asks for none gets none: the scope is cleared for it.
    reader: bool,
    /// The current read is one snapshot (`begin … commit`).
    snapshot: Cell<bool>,
    /// The scope the current read (or the writer's current job) asked for.
    wanted: RefCell<Option<String>>,
    /// The session's `app.tenant_id` as this side knows it (`""`: none);
    /// `None` when not known (a statement failed after one was sent, and a
    /// failed transaction takes a setting back).
    server_scope: RefCell<Option<String>>,
    /// A scope was sent and no wait has yet found everything before it done.
    unconfirmed: Cell<bool>,
    /// Statements prepared on this connection, by their SQL text: one round
    /// trip per statement instead of two.
    statements: RefCell<std::collections::HashMap<String, Prepared>>,
    /// A `begin …` to send with the first statement of a read (saves a round
    /// trip); `None` once sent, and always on the writer.
    pub(crate) pending_begin: RefCell<Option<&'static str>>,
    /// The writer's memory of rows it has read or written in the current
    /// write batch ([`Tx::memo`]); `None` on read connections.
    memo: Option<RefCell<BatchMemo>>,
    /// Where to connect again when the connection is gone (it may hold a
    /// password: never printed).
    target: Option<Box<crate::pipe::Target>>,
    /// When the last attempt to connect again failed.
    failed_at: Cell<Option<std::time::Instant>>,
    /// Whether the lists' tables have planner statistics, and when that
    /// was asked ([`Conn::in_index_order`]).
    statistics: Cell<Option<(std::time::Instant, bool)>>,
}

/// What the writer remembers of a row in the current batch, and the write
/// that brings the row up to date, if one is owed.
#[derive(Clone)]
struct Memo {
    value: (i64, String),
    owed: Option<(&'static str, Vec<Value>)>,
}

/// The writer's memory of a write batch, and what it was when the current
/// job began (restored if the job is undone).
#[derive(Default)]
struct BatchMemo {
    now: std::collections::BTreeMap<MemoKey, Memo>,
    at_job_start: std::collections::BTreeMap<MemoKey, Memo>,
    /// Rows appended in this batch ([`Tx::append`]), in order; the first
    /// `sent` of them have gone to the server.
    rows: Vec<(&'static Appendable, Vec<Value>)>,
    sent: usize,
    /// The tables of the rows not yet sent.
    unsent_tables: Vec<&'static Appendable>,
    /// `rows.len()` and `sent` when the current job began.
    rows_at_job_start: (usize, usize),
}

/// A row the PostgreSQL writer remembers for the rest of a write batch
/// ([`Tx::memo`]), and the one function that writes it: a row remembered is
/// changed nowhere else, or the batch would go on with a stale value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemoKey {
    /// A tenant's audit chain head (`audit_head`): written only by
    /// `audit::append`, behind.
    AuditHead(String),
    /// An organisation's plan, overrides and status (`organization`): read
    /// by `org::plan_of`; `org::set_plan` and `org::set_status` forget it.
    Plan(String),
    /// A periodic quota's counter (`usage_counter`): written only by
    /// `org::usage_add`, behind.
    Usage { org: String, quota: String, period: String },
    /// An organisation's last incident number (`organization.incident_seq`):
    /// written only by `org::next_incident_number`, behind.
    IncidentSeq(String),
    /// A data subject's sealed key (`subject_key`, as text): made only by
    /// `audit::append`; `audit::shred` forgets it.
    SubjectKey(String, String),
}

/// The rows a write adds to a table that writes only ever add to, or that
/// a write changes only by statements naming it: events, the audit log, an
/// incident's tags and search document. On the PostgreSQL writer they are
/// held until the batch commits and then sent as one statement per table
/// (one array per column), instead of one statement per row: per request,
/// several statements fewer for the server to run. A statement that reads
/// or changes such a table declares it first ([`Conn::sees`]), which sends
/// the rows held for it, so that it finds them there; in the tests a
/// writer statement that names a table with rows held and did not declare
/// it fails.
pub struct Appendable {
    /// The table's name, as statements name it.
    pub table: &'static str,
    /// One row: `insert into … values (?, …)`, a parameter per column.
    pub one: &'static str,
    /// Many rows (PostgreSQL): `insert into … select … from unnest(?::text[], …)`,
    /// an array per column (`text[]` or `bigint[]`), in the order of `one`'s
    /// parameters.
    pub many: &'static str,
}

/// One column of many rows, as an array parameter.
enum Column {
    Integer(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

impl Column {
    /// An empty column for a parameter of type `ty` (an array).
    fn of(ty: &tokio_postgres::types::Type, table: &str) -> Result<Column> {
        match *ty {
            tokio_postgres::types::Type::INT8_ARRAY => Ok(Column::Integer(Vec::new())),
            tokio_postgres::types::Type::TEXT_ARRAY => Ok(Column::Text(Vec::new())),
            _ => Err(StoreError::Database(format!("rows of {table}: a parameter of type {ty}, not text[] or bigint[]"))),
        }
    }

    fn push(&mut self, v: &Value, table: &str) -> Result<()> {
        match (self, v) {
            (Column::Integer(c), Value::Integer(i)) => c.push(Some(*i)),
            (Column::Integer(c), Value::Null) => c.push(None),
            (Column::Text(c), Value::Text(t)) => c.push(Some(t.clone())),
            (Column::Text(c), Value::Null) => c.push(None),
            _ => return Err(StoreError::Database(format!("rows of {table}: a value of the wrong kind"))),
        }
        Ok(())
    }

    fn param(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Column::Integer(v) => v,
            Column::Text(v) => v,
        }
    }
}

/// Whether `sql` names `table` (as a whole word).
fn names(sql: &str, table: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(table)
        .any(|(at, _)| !sql[..at].chars().next_back().is_some_and(word) && !sql[at + table.len()..].chars().next().is_some_and(word))
}

/// Adds `table` to `tables` unless it is there.
fn note_table(tables: &mut Vec<&'static Appendable>, table: &'static Appendable) {
    if !tables.iter().any(|t| std::ptr::eq(*t, table)) {
        tables.push(table);
    }
}

/// A statement prepared on a connection, and when to prepare it again.
///
/// PostgreSQL plans a prepared statement for its parameters five times, then
/// keeps one generic plan for the connection's life. A plan made while a
/// table was nearly empty (a new database, a new tenant) may pick an index
/// that costs nothing there and a scan of the tenant's every row later (seen:
/// `incident_assignee` for a lookup by id, all the tenant's incidents read per
/// create). So a statement is prepared anew after 100, 1,000, 10,000, …
/// executions and at least every ten minutes: plans follow the data.
struct Prepared {
    statement: crate::pipe::Statement,
    uses: u64,
    renew_at: u64,
    prepared_at: std::time::Instant,
}

/// Sets the tenant scope for the rest of the current transaction.
const SET_SCOPE: &str = "select set_config('app.tenant_id', ?, true)";
/// Sets a read connection's tenant scope, until it is set again.
const SET_SESSION_SCOPE: &str = "select set_config('app.tenant_id', ?, false)";

/// A list's statement, and whether one index gives its rows in its order
/// (then it is read in that order whatever the planner's statistics say:
/// see [`Conn::in_index_order`]).
pub(crate) struct ListQuery {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
    pub(crate) in_index_order: bool,
}

/// Whether the lists' tables were ever analysed or vacuumed (PostgreSQL
/// says -1 tuples until then).
const HAS_STATISTICS: &str =
    "select coalesce(bool_and(reltuples >= 0), false) from pg_class where oid in (to_regclass('incident'), to_regclass('audit_log'))";
/// How often a connection asks again while the lists' tables have none.
const STATISTICS_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// The planner held to index order (for the rest of the transaction).
const INDEX_ORDER: &str = "select set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)";
/// The planner free again.
const PLANNER_FREE: &str = "select set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true)";

/// How long a connection that could not be made again answers
/// `Unavailable` at once before it tries again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

const RENEW_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Most prepared statements a connection keeps (search builds its SQL).
const MAX_STATEMENTS: usize = 512;

impl PgConn {
    pub(crate) fn new(client: crate::pipe::Pipe) -> PgConn {
        PgConn {
            client: RefCell::new(client),
            scope: RefCell::new(None),
            at_savepoint: RefCell::new(None),
            reader: false,
            snapshot: Cell::new(false),
            wanted: RefCell::new(None),
            server_scope: RefCell::new(Some(String::new())),
            unconfirmed: Cell::new(false),
            statements: RefCell::new(std::collections::HashMap::new()),
            pending_begin: RefCell::new(None),
            memo: None,
            target: None,
            failed_at: Cell::new(None),
            statistics: Cell::new(None),
        }
    }

    /// Connects to `target` and works as the application's role.
    pub(crate) fn connect(target: &crate::pipe::Target) -> Result<PgConn> {
        Ok(PgConn { target: Some(Box::new(target.clone())), ..PgConn::new(Self::open(target)?) })
    }

    fn open(target: &crate::pipe::Target) -> Result<crate::pipe::Pipe> {
        let mut c = crate::pipe::Pipe::connect(target)?;
        let mut setup = format!("set role {}", crate::pg::APP_ROLE);
        if let Some(t) = target.limits.statement {
            setup.push_str(&format!("; set statement_timeout = {}", t.as_millis().max(1)));
        }
        c.batch(&setup)?;
        Ok(c)
    }

    /// Connects again if the connection is gone (a restarted server, a
    /// network failure), before it is used: the request that found it gone
    /// failed, the next ones do not. Nothing of the old connection is kept
    /// (prepared statements, scope). `Unavailable` while the server cannot
    /// be reached; after a failed attempt, at once for [`RETRY_AFTER`], so
    /// that requests during an outage fail fast rather than each waiting
    /// for a connection that will not come.
    pub(crate) fn revive(&self) -> Result<()> {
        let Some(target) = &self.target else { return Ok(()) };
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        if self.failed_at.get().is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return Err(StoreError::Unavailable);
        }
        let fresh = Self::open(target).map_err(|e| {
            tracing::warn!(error = %e, "cannot connect to PostgreSQL again");
            self.failed_at.set(Some(std::time::Instant::now()));
            StoreError::Unavailable
        })?;
        self.failed_at.set(None);
        tracing::info!("connected to PostgreSQL again");
        *self.client.borrow_mut() = fresh;
        self.statements.borrow_mut().clear();
        self.scope.borrow_mut().take();
        self.pending_begin.borrow_mut().take();
        *self.server_scope.borrow_mut() = Some(String::new());
        self.unconfirmed.set(false);
        Ok(())
    }

    /// Whether the lists' tables have planner statistics; asked again
    /// every [`STATISTICS_RECHECK`] until they do (then they keep them).
    fn has_statistics(&self, c: &Conn) -> Result<bool> {
        if let Some((at, known)) = self.statistics.get() {
            if known || at.elapsed() < STATISTICS_RECHECK {
                return Ok(known);
            }
        }
        let known: bool = crate::query_one(c, HAS_STATISTICS, crate::params![], |r| r.get(0))?;
        self.statistics.set(Some((std::time::Instant::now(), known)));
        Ok(known)
    }

    /// Whether the connection is gone (found so by a statement that failed).
    pub(crate) fn is_gone(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// A read connection (see [`PgConn::reader`]).
    pub(crate) fn for_reads(conn: PgConn) -> PgConn {
        PgConn { reader: true, ..conn }
    }

    /// The writer's connection: remembers rows within a write batch.
    pub(crate) fn for_writer(conn: PgConn) -> PgConn {
        PgConn { memo: Some(RefCell::new(BatchMemo::default())), ..conn }
    }

    /// A new job of the writer begins: what the batch remembers now is what
    /// undoing the job returns to.
    pub(crate) fn next_job(&self) -> u64 {
        if let Some(m) = &self.memo {
            let mut m = m.borrow_mut();
            m.at_job_start = m.now.clone();
            m.rows_at_job_start = (m.rows.len(), m.sent);
        }
        // A job starts asking for no tenant: it sees none until it says whose.
        self.wanted.borrow_mut().take();
        *self.at_savepoint.borrow_mut() = self.scope.borrow().clone();
        self.client.borrow_mut().next_epoch()
    }

    /// The job was undone (back to its savepoint): so is what it made the
    /// batch remember, and the scope it set.
    pub(crate) fn undo_job(&self) {
        if let Some(m) = &self.memo {
            let mut m = m.borrow_mut();
            m.now = m.at_job_start.clone();
            // Its rows are dropped; rows of earlier jobs that it sent were
            // taken back with its savepoint, and are held again.
            let (len, sent) = m.rows_at_job_start;
            m.rows.truncate(len);
            m.sent = sent;
            let mut unsent = Vec::new();
            for (table, _) in &m.rows[sent..] {
                note_table(&mut unsent, table);
            }
            m.unsent_tables = unsent;
        }
        *self.scope.borrow_mut() = self.at_savepoint.borrow_mut().take();
    }

    /// The writes the batch owes (run before its commit); the batch's
    /// memory is then empty.
    pub(crate) fn end_batch(&self) -> Vec<(&'static str, Vec<Value>)> {
        let Some(m) = &self.memo else { return Vec::new() };
        let mut m = m.borrow_mut();
        m.at_job_start.clear();
        m.rows.clear();
        m.unsent_tables.clear();
        (m.sent, m.rows_at_job_start) = (0, (0, 0));
        std::mem::take(&mut m.now).into_values().filter_map(|e| e.owed).collect()
    }

    /// Sends the appended rows held (the writer, before its commit): one
    /// statement per table, in platform scope (the rows are many tenants').
    pub(crate) fn send_rows(&self) -> Result<()> {
        let Some(m) = &self.memo else { return Ok(()) };
        let mut m = m.borrow_mut();
        for table in m.unsent_tables.clone() {
            let st = self.statement(table.many)?;
            let mut columns = st.params().iter().map(|ty| Column::of(ty, table.table)).collect::<Result<Vec<_>>>()?;
            for (_, row) in m.rows[m.sent..].iter().filter(|(a, _)| std::ptr::eq(*a, table)) {
                if row.len() != columns.len() {
                    return Err(StoreError::Database(format!("a row of {} has {} columns, not {}", table.table, row.len(), columns.len())));
                }
                for (col, v) in columns.iter_mut().zip(row) {
                    col.push(v, table.table)?;
                }
            }
            let asked = self.wanted.replace(Some("*".to_owned()));
            let scoped = self.ensure_scope();
            *self.wanted.borrow_mut() = asked;
            scoped?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = columns.iter().map(Column::param).collect();
            self.client.borrow_mut().send(&st, &params);
        }
        m.sent = m.rows.len();
        m.unsent_tables.clear();
        Ok(())
    }

    /// Before a statement that reads or changes `table` (declared with
    /// [`Conn::sees`]): the rows held for it go first.
    fn sees(&self, table: &'static Appendable) -> Result<()> {
        let Some(m) = &self.memo else { return Ok(()) };
        let held = m.borrow().unsent_tables.iter().any(|a| std::ptr::eq(*a, table));
        if held {
            self.send_rows()?;
        }
        Ok(())
    }

    /// In builds with debug assertions (the tests), a writer statement that
    /// names a table whose rows are held refuses to run: it did not declare
    /// the table with [`Conn::sees`] and would miss them. Nothing in
    /// release builds.
    fn before_statement(&self, sql: &str) -> Result<()> {
        if cfg!(debug_assertions) {
            if let Some(m) = &self.memo {
                if let Some(t) = m.borrow().unsent_tables.iter().find(|a| names(sql, a.table)) {
                    return Err(StoreError::Database(format!(
                        "a statement names {}, whose rows are held, without declaring it (Conn::sees): {sql}",
                        t.table
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether a wait during the current job failed because of a statement
    /// an earlier job sent (and that job's outcome is then wrong).
    pub(crate) fn failed_before(&self, job: u64) -> bool {
        self.client.borrow().failed_epoch().is_some_and(|e| e < job)
    }

    /// Whether a wait during the current job failed because of a statement
    /// of its own: on PostgreSQL its transaction is then aborted until the
    /// job's savepoint is undone, whatever the job made of the failure.
    pub(crate) fn failed_itself(&self, job: u64) -> bool {
        self.client.borrow().failed_epoch() == Some(job)
    }

    /// Sends a pending `begin` (reads) ahead of the first statement, in the
    /// same flight.
    fn begin_if_pending(&self) -> Result<()> {
        let pending = self.pending_begin.borrow_mut().take();
        if let Some(b) = pending {
            self.send_now(b)?;
        }
        Ok(())
    }

    /// Sends one statement without parameters, prepared (no parse or plan
    /// on the server after the first time), without waiting.
    fn send_now(&self, sql: &str) -> Result<()> {
        let st = self.statement(sql)?;
        self.client.borrow_mut().send(&st, &[]);
        Ok(())
    }

    /// Starts a read: in one snapshot (`begin` sent with its first
    /// statement), or a point read whose statements are each their own.
    pub(crate) fn start_read(&self, snapshot: bool) {
        if snapshot {
            *self.pending_begin.borrow_mut() = Some("begin isolation level repeatable read read only");
        }
        self.snapshot.set(snapshot);
        self.wanted.borrow_mut().take();
    }

    /// Ends a read: a snapshot's `commit` goes out now, and nobody waits for
    /// it (read only, and every statement of it answered: it cannot fail).
    pub(crate) fn end_read(&self) {
        let begun = self.pending_begin.borrow_mut().take().is_none();
        self.client.borrow_mut().detach_all();
        if self.snapshot.replace(false) && begun {
            // A connection that cannot prepare it is gone: made anew on its
            // next use.
            if let Ok(st) = self.statement("commit") {
                self.client.borrow_mut().send_detached(&st);
            }
        } else {
            // Whatever was sent last goes out, closed by a `Sync`.
            self.client.borrow_mut().flush();
        }
        if self.unconfirmed.replace(false) {
            self.server_scope.borrow_mut().take();
        }
        self.wanted.borrow_mut().take();
        self.forget_scope();
    }

    /// Notes what a wait found (readers): success means every statement sent
    /// before it took effect, a scope among them; a failure, that a scope
    /// sent may have been taken back.
    fn waited<T>(&self, r: Result<T>) -> Result<T> {
        if self.reader {
            match &r {
                Ok(_) => self.unconfirmed.set(false),
                Err(_) => {
                    self.unconfirmed.set(false);
                    self.server_scope.borrow_mut().take();
                }
            }
        }
        r
    }

    fn statement(&self, sql: &str) -> Result<crate::pipe::Statement> {
        self.begin_if_pending()?;
        let renew_at = match self.statements.borrow_mut().get_mut(sql) {
            Some(p) if p.uses < p.renew_at && p.prepared_at.elapsed() < RENEW_AFTER => {
                p.uses += 1;
                return Ok(p.statement.clone());
            }
            Some(p) => p.renew_at.saturating_mul(10),
            None => 100,
        };
        let statement = self.waited(self.client.borrow_mut().prepare(&numbered(sql)))?;
        let mut m = self.statements.borrow_mut();
        let mut client = self.client.borrow_mut();
        if m.len() >= MAX_STATEMENTS {
            for (_, old) in m.drain() {
                client.close(&old.statement);
            }
        }
        let p = Prepared { statement: statement.clone(), uses: 1, renew_at, prepared_at: std::time::Instant::now() };
        if let Some(old) = m.insert(sql.to_owned(), p) {
            client.close(&old.statement);
        }
        Ok(statement)
    }

    /// The scope asked for, sent before the next statement when the
    /// connection (reads) or the transaction (the writer) has another, or
    /// might have. Nothing asked, the scope cleared: row-level security then
    /// shows no tenant's rows.
    fn ensure_scope(&self) -> Result<()> {
        if !self.reader {
            let desired = self.wanted.borrow().clone();
            if *self.scope.borrow() == desired {
                return Ok(());
            }
            let st = self.statement(SET_SCOPE)?;
            self.client.borrow_mut().send(&st, &[&desired.as_deref().unwrap_or("")]);
            *self.scope.borrow_mut() = desired;
            return Ok(());
        }
        let desired = self.wanted.borrow().clone().unwrap_or_default();
        if self.server_scope.borrow().as_deref() == Some(desired.as_str()) {
            return Ok(());
        }
        let st = self.statement(SET_SESSION_SCOPE)?;
        self.client.borrow_mut().send(&st, &[&desired]);
        *self.server_scope.borrow_mut() = Some(desired);
        self.unconfirmed.set(true);
        Ok(())
    }

    /// The writer ends a job: what it sent goes out (closed by a `Sync`),
    /// so the server works on it while the next job is made.
    pub(crate) fn flush(&self) {
        self.client.borrow_mut().flush();
    }

    /// Forgets the scope (a transaction ended, or a savepoint was undone).
    pub(crate) fn forget_scope(&self) {
        self.scope.borrow_mut().take();
    }
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({:?})", self.backend())
    }
}

/// A value both drivers can bind.
pub trait Param: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync {}
impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync> Param for T {}

/// A value both drivers can read.
pub trait Col: rusqlite::types::FromSql + for<'r> tokio_postgres::types::FromSql<'r> {}
impl<T: rusqlite::types::FromSql + for<'r> tokio_postgres::types::FromSql<'r>> Col for T {}

/// A column index (a position or a name) both drivers understand.
pub trait Idx: rusqlite::RowIndex + PgIndex + Display + Copy {}
impl<T: rusqlite::RowIndex + PgIndex + Display + Copy> Idx for T {}

/// A column index into a PostgreSQL row: a position, or a name.
pub trait PgIndex {
    /// The position among `len` columns named by `name_at`.
    fn position<'c>(&self, len: usize, name_at: &dyn Fn(usize) -> &'c str) -> Option<usize>;
}

impl PgIndex for usize {
    fn position<'c>(&self, len: usize, _: &dyn Fn(usize) -> &'c str) -> Option<usize> {
        (*self < len).then_some(*self)
    }
}

impl PgIndex for &str {
    fn position<'c>(&self, len: usize, name_at: &dyn Fn(usize) -> &'c str) -> Option<usize> {
        (0..len).find(|&i| name_at(i) == *self)
    }
}

/// A value built at run time, for statements whose parameters vary.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Text(String),
    Null,
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Integer(i) => i.to_sql(),
            Value::Text(s) => s.to_sql(),
            Value::Null => Ok(rusqlite::types::ToSqlOutput::Owned(rusqlite::types::Value::Null)),
        }
    }
}

impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Integer(i) => i.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Null => Ok(tokio_postgres::types::IsNull::Yes),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <i64 as tokio_postgres::types::ToSql>::accepts(ty) || <String as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The parameters of one statement.
pub trait Params {
    fn each(&self) -> impl Iterator<Item = &dyn Param>;
}

/// What `params![…]` builds.
pub struct List<'a>(pub &'a [&'a dyn Param]);

impl Params for List<'_> {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        self.0.iter().copied()
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        self.iter().map(|p| p as &dyn Param)
    }
}

impl Params for Vec<Value> {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        self.iter().map(|p| p as &dyn Param)
    }
}

/// `params![a, b, …]`: parameters of differing types.
#[macro_export]
macro_rules! params {
    () => { $crate::db::List(&[]) };
    ($($p:expr),+ $(,)?) => { $crate::db::List(&[$(&$p as &dyn $crate::db::Param),+]) };
}

/// One row of a result.
pub enum Row<'a, 'r> {
    Sqlite(&'a rusqlite::Row<'r>),
    Postgres(&'a crate::pipe::PgRow),
}

impl Row<'_, '_> {
    /// The column `i` (a position from 0, or a name) as `T`.
    pub fn get<I: Idx, T: Col>(&self, i: I) -> Result<T> {
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Postgres(r) => r.try_get(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}"))),
        }
    }

    /// The text of column `i` handed to `f` without copying it.
    pub fn with_str<I: Idx, T>(&self, i: I, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        match self {
            Row::Sqlite(r) => f(r.get_ref(i)?.as_str().map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?),
            Row::Postgres(r) => f(r.try_get::<_, &str>(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?),
        }
    }

    /// As [`Row::with_str`] for a column that may be null.
    pub fn with_opt_str<I: Idx, T>(&self, i: I, f: impl FnOnce(Option<&str>) -> Result<T>) -> Result<T> {
        match self {
            Row::Sqlite(r) => f(r.get_ref(i)?.as_str_or_null().map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?),
            Row::Postgres(r) => f(r.try_get::<_, Option<&str>>(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?),
        }
    }
}

/// `?` and `?N` placeholders as PostgreSQL's `$N`. Text inside single quotes
/// is left alone.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0usize;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    next += 1;
                    next
                } else {
                    digits.parse().unwrap_or(0)
                };
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(ch),
        }
    }
    out
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, FTS5).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Runs `sql` and hands every row to `f`, which may stop early by
    /// returning `Ok(false)`.
    pub fn each_row(&self, sql: &str, params: impl Params, mut f: impl FnMut(&Row<'_, '_>) -> Result<bool>) -> Result<()> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.each()))?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Conn::Postgres(c) => {
                let p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.each().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                c.before_statement(sql)?;
                let st = c.statement(sql)?;
                c.ensure_scope()?;
                let rows = c.waited(c.client.borrow_mut().query(&st, &p))?;
                for r in &rows {
                    if !f(&Row::Postgres(r))? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Executes a statement; returns the rows changed.
    pub fn exec(&self, sql: &str, params: impl Params) -> Result<usize> {
        match self {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.each()))?),
            Conn::Postgres(c) => {
                let p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.each().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                c.before_statement(sql)?;
                let st = c.statement(sql)?;
                c.ensure_scope()?;
                Ok(c.waited(c.client.borrow_mut().execute(&st, &p))? as usize)
            }
        }
    }

    /// Executes a statement whose outcome the caller does not look at: on
    /// PostgreSQL it is sent without waiting and goes out with the next
    /// statement that waits; its failure, if any, is what that wait (or the
    /// end of the write) returns. Not for statements whose failure is an
    /// answer (a unique key that means "taken": use [`Conn::exec`]).
    pub fn run(&self, sql: &str, params: impl Params) -> Result<()> {
        match self {
            Conn::Sqlite(c) => {
                c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.each()))?;
                Ok(())
            }
            Conn::Postgres(c) => {
                let p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.each().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                c.before_statement(sql)?;
                let st = c.statement(sql)?;
                c.ensure_scope()?;
                c.client.borrow_mut().send(&st, &p);
                Ok(())
            }
        }
    }

    /// Runs `list` (one statement that reads a page in an index's order)
    /// with PostgreSQL's planner held to that order while the lists' tables
    /// have no statistics: no sort, no bitmap scan for the rest of the
    /// transaction. Without statistics (a new database, a bulk load,
    /// autovacuum off) the planner takes a tenant's rows for a handful and
    /// reads and sorts them all for one page: seen at 260,000 incidents,
    /// 125–206 ms a page instead of under one. With statistics (analysed or
    /// vacuumed once, even long ago: the planner scales them by the table's
    /// size) it chooses well, and the hold would only cost two statements.
    /// Only for lists whose one index condition is the tenant: a filter
    /// on a second indexed column the planner takes by itself, and held, it
    /// would walk the index past every row a filter drops.
    pub fn in_index_order<T>(&self, list: impl FnOnce() -> Result<T>) -> Result<T> {
        match self {
            Conn::Sqlite(_) => list(),
            Conn::Postgres(p) if p.has_statistics(self)? => list(),
            Conn::Postgres(_) => {
                self.run(INDEX_ORDER, crate::params![])?;
                let out = list()?;
                // For what else the same transaction reads (a snapshot read).
                self.run(PLANNER_FREE, crate::params![])?;
                Ok(out)
            }
        }
    }

    /// Runs one statement without parameters; on PostgreSQL sent without
    /// waiting, like [`Conn::run`].
    pub fn later(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            // The writer's own statements (begin, savepoints): no job's scope.
            Conn::Postgres(c) => c.send_now(sql),
        }
    }

    /// Waits for every statement sent without waiting; returns the first
    /// failure among them.
    pub fn sync(&self) -> Result<()> {
        match self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Postgres(c) => c.waited(c.client.borrow_mut().sync()),
        }
    }

    /// Runs several statements without parameters.
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => {
                c.begin_if_pending()?;
                // The writer's batches are its own statements (a savepoint
                // undone, a commit): no scope of a job's.
                if c.reader {
                    c.ensure_scope()?;
                }
                c.waited(c.client.borrow_mut().batch(sql))
            }
        }
    }

    /// Says whose rows the rest of this transaction touches: an organisation
    /// id, or `platform` scope ([`Conn::platform`]). PostgreSQL's row-level
    /// security then hides every other tenant's rows; SQLite has no such
    /// wall, and this costs it nothing.
    pub fn scope(&self, tenant: impl Display) -> Result<()> {
        let Conn::Postgres(c) = self else { return Ok(()) };
        let tenant = tenant.to_string();
        // Sent with the next statement, if the connection (or transaction)
        // has another.
        *c.wanted.borrow_mut() = Some(tenant);
        Ok(())
    }

    /// Declares that the next statement reads or changes `table`, whose
    /// rows a write may hold ([`Tx::append`]): on the PostgreSQL writer the
    /// rows held for it are sent first, so the statement finds them.
    /// Nothing elsewhere (reads and SQLite hold nothing).
    pub fn sees(&self, table: &'static Appendable) -> Result<()> {
        match self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Postgres(c) => c.sees(table),
        }
    }

    /// Every tenant: for the few operations that find a tenant by a secret
    /// (a session, a key, an e-mail) or act for the platform operator.
    pub fn platform(&self) -> Result<()> {
        self.scope("*")
    }
}

/// The writer's connection, inside a write batch: every statement a
/// [`Conn`] runs (it derefs to one), and what only a write may do: rows
/// remembered for the batch, written behind, appended rows held until the
/// commit. [`crate::Store::write`] hands one to its closure; reads get a
/// `Conn` and cannot reach these.
#[derive(Clone, Copy)]
pub struct Tx<'a>(pub(crate) Conn<'a>, pub(crate) Option<&'a dyn crate::audit::Personal>);

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Conn<'a>;

    fn deref(&self) -> &Conn<'a> {
        &self.0
    }
}

/// What a look-up runs on: a read's [`Conn`], or a write's [`Tx`], on
/// which a row the batch remembers ([`MemoKey`]) is not read again.
pub trait Lookup {
    fn conn(&self) -> Conn<'_>;
    /// The write, when it is one.
    fn tx(&self) -> Option<Tx<'_>>;
}

impl Lookup for Conn<'_> {
    fn conn(&self) -> Conn<'_> {
        *self
    }

    fn tx(&self) -> Option<Tx<'_>> {
        None
    }
}

impl Lookup for Tx<'_> {
    fn conn(&self) -> Conn<'_> {
        self.0
    }

    fn tx(&self) -> Option<Tx<'_>> {
        Some(*self)
    }
}

impl Tx<'_> {
    /// A value the writer remembers for the rest of the current write batch
    /// (PostgreSQL): a chain's head, a counter. Valid because write batches
    /// take turns under one lock across nodes (`writer.rs`), every change of
    /// those rows goes through the function that remembers it, and the
    /// writer forgets everything when a job is undone or a batch ends. Saves
    /// waiting for a read that the batch already knows the answer to. Always
    /// `None` elsewhere (SQLite reads cost microseconds; read connections).
    pub fn memo(&self, key: &MemoKey) -> Option<(i64, String)> {
        match self.0 {
            Conn::Postgres(PgConn { memo: Some(m), .. }) => m.borrow().now.get(key).map(|e| e.value.clone()),
            _ => None,
        }
    }

    /// Remembers `value` (what the database holds now) under `key` for the
    /// rest of the batch ([`Tx::memo`]).
    pub fn remember(&self, key: MemoKey, value: (i64, String)) {
        if let Conn::Postgres(PgConn { memo: Some(m), .. }) = self.0 {
            let mut m = m.borrow_mut();
            let owed = m.now.remove(&key).and_then(|e| e.owed);
            m.now.insert(key, Memo { value, owed });
        }
    }

    /// Forgets what the batch remembered under `key` (its row was changed
    /// by a plain write). Not for rows kept with [`Tx::write_behind`].
    pub fn forget(&self, key: &MemoKey) {
        if let Conn::Postgres(PgConn { memo: Some(m), .. }) = self.0 {
            let mut m = m.borrow_mut();
            if m.now.get(key).is_some_and(|e| e.owed.is_none()) {
                m.now.remove(key);
            }
        }
    }

    /// Sets a remembered row to `value`, written by `sql` with `params`: on
    /// the PostgreSQL writer once, just before the batch commits (a row
    /// written by every request of a batch would otherwise pile up one
    /// version per request, each found again by the next lookup); elsewhere
    /// now.
    pub fn write_behind(&self, key: MemoKey, value: (i64, String), sql: &'static str, params: Vec<Value>) -> Result<()> {
        match self.0 {
            Conn::Postgres(PgConn { memo: Some(m), .. }) => {
                m.borrow_mut().now.insert(key, Memo { value, owed: Some((sql, params)) });
                Ok(())
            }
            _ => self.run(sql, params),
        }
    }

    /// Adds a row to an [`Appendable`] table: on the PostgreSQL writer held
    /// until the batch commits (or a statement declares the table with
    /// [`Conn::sees`]), and
    /// dropped if the job is undone; elsewhere now. Not for rows whose
    /// insert may fail as an answer (a taken key): a failure of held rows
    /// fails the whole batch.
    pub fn append(&self, table: &'static Appendable, row: Vec<Value>) -> Result<()> {
        match self.0 {
            Conn::Postgres(PgConn { memo: Some(m), .. }) => {
                let mut m = m.borrow_mut();
                note_table(&mut m.unsent_tables, table);
                m.rows.push((table, row));
                Ok(())
            }
            _ => self.run(table.one, row),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(numbered("select a from t where b = ? and c = ?"), "select a from t where b = $1 and c = $2");
        assert_eq!(numbered("where x = ?1 and y = ?2 and z = ?1"), "where x = $1 and y = $2 and z = $1");
        assert_eq!(numbered("where t in ('a?', 'b') and u = ?"), "where t in ('a?', 'b') and u = $1");
    }

    fn story(c: &Conn) {
        c.batch("create table t (k text primary key, n bigint not null, b bytea, f boolean not null)").expect("create");
        let blob = vec![1u8, 2, 3];
        assert_eq!(c.exec("insert into t (k, n, b, f) values (?, ?, ?, ?)", crate::params!["a", 1i64, blob, true]).expect("insert"), 1);
        assert_eq!(c.exec("insert into t (k, n, b, f) values (?1, ?2, null, ?3)", crate::params!["b", 2i64, false]).expect("insert"), 1);
        let dup = c.exec("insert into t (k, n, b, f) values (?, ?, null, ?)", crate::params!["a", 3i64, false]);
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        // A statement run without waiting is seen by the next one…
        c.run("insert into t (k, n, b, f) values (?, ?, null, ?)", crate::params!["c", 0i64, false]).expect("sent");
        let count = |c: &Conn| {
            let mut n = 0i64;
            c.each_row("select count(*) from t", crate::params![], |r| {
                n = r.get(0)?;
                Ok(false)
            })
            .map(|_| n)
        };
        assert_eq!(count(c).expect("count"), 3);
        // …and its failure is what the next wait returns, once.
        let late = c.run("insert into t (k, n, b, f) values (?, ?, null, ?)", crate::params!["a", 4i64, false]).and_then(|_| c.sync());
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
        assert_eq!(count(c).expect("count after a failure"), 3);
        c.exec("delete from t where k = ?", crate::params!["c"]).expect("delete");
        let mut seen = Vec::new();
        c.each_row("select k, n, b, f from t where n >= ? order by n", vec![Value::Integer(1)], |r| {
            let k = r.with_str(0, |s| Ok(s.to_owned()))?;
            let b: Option<Vec<u8>> = r.get("b")?;
            seen.push((k, r.get::<_, i64>(1)?, b, r.get::<_, bool>(3)?));
            Ok(true)
        })
        .expect("select");
        assert_eq!(seen, [("a".to_owned(), 1, Some(vec![1, 2, 3]), true), ("b".to_owned(), 2, None, false)]);
    }

    #[test]
    fn one_story_on_sqlite() {
        let c = rusqlite::Connection::open_in_memory().expect("open");
        story(&Conn::Sqlite(&c));
    }

    /// The same on PostgreSQL, in a schema of its own, wherever the tests
    /// have a server (`ironcase_testkit::postgres_url`).
    #[test]
    fn one_story_on_postgres() {
        let Some(url) = crate::testing::postgres_url() else { return };
        let client = std::thread::spawn(move || {
            let target = crate::pipe::Target::parse(&url, crate::pipe::Limits::NONE).expect("url");
            let mut client = crate::pipe::Pipe::connect(&target).expect("connect");
            let schema = format!("story_{}", uuid::Uuid::now_v7().simple());
            client.batch(&format!("create schema {schema}; set search_path = {schema}")).expect("schema");
            let pg = PgConn::new(client);
            story(&Conn::Postgres(&pg));
            let mut client = pg.client.into_inner();
            client.batch(&format!("drop schema {schema} cascade")).expect("drop");
        });
        client.join().expect("story on PostgreSQL");
    }
}
