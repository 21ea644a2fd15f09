//! Persistence for Ironcase. Owns every SQL statement: the schema and its
//! migrations, the tenant-scoped queries, and the single writer that commits
//! concurrent requests together (group commit).
//!
//! SQLite is driven synchronously (rusqlite) on threads of its own: a read runs
//! whole on a blocking thread with a pooled connection, and every write runs on
//! the one writer thread. A request therefore crosses threads once, not once
//! per statement: profiling the first, per-statement async driver showed the
//! writer spending its time in thread wake-ups rather than in SQLite.
#![forbid(unsafe_code)]

pub mod alert;
pub mod apikey;
pub mod audit;
pub mod blob;
pub mod breach;
pub mod bulk;
pub mod compliance;
pub mod db;
pub mod event;
pub mod evidence;
pub mod incident;
pub mod invitation;
pub mod ioc;
pub mod mfa;
pub mod notification;
pub mod offboard;
pub mod org;
pub mod pg;
pub mod pipe;
pub mod privacy;
pub mod report;
pub mod reset;
pub mod retention;
pub mod role;
pub mod search;
pub mod session;
pub mod sso;
#[cfg(test)]
mod story;
pub mod webhook;
mod writer;

#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use ironcase_testkit::{as_root, postgres_url, run_server_program, server_programs};

    /// A fresh database on the test server, dropped when done.
    pub(crate) struct TempDb {
        admin_url: String,
        name: String,
        pub(crate) url: String,
    }

    impl TempDb {
        pub(crate) fn new(admin_url: &str) -> TempDb {
            let name = format!("ironcase_test_{}", uuid::Uuid::now_v7().simple());
            let mut admin = postgres::Client::connect(admin_url, postgres::NoTls).expect("connect");
            admin.batch_execute(&format!("create database {name}")).expect("create database");
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
            TempDb { admin_url: admin_url.to_owned(), url: format!("{base}/{name}"), name }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
                let _ = admin.batch_execute(&format!("drop database if exists {} with (force)", self.name));
            }
        }
    }

    /// Runs `test` on a store over a fresh database (skipped without a
    /// server), on a thread and runtime of its own; closes the store after.
    pub(crate) fn on_fresh_store<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(crate::Store, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let Some(admin_url) = crate::testing::postgres_url() else { return };
        std::thread::spawn(move || {
            let db = TempDb::new(&admin_url);
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let store = crate::Store::open_postgres(&db.url).await.expect("open");
                test(store.clone(), db.url.clone()).await;
                store.close().await;
            });
        })
        .join()
        .expect(name);
    }
}

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

pub use db::{Backend, Conn, Lookup, MemoKey, Row, Tx, Value};
pub use writer::AuthHook;

/// The small error every store call returns.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; carries the constraint text.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot serve the request now (closed, unreachable,
    /// stalled, too slow): it may be tried again.
    #[error("the database is unavailable")]
    Unavailable,
    #[error("database error: {0}")]
    Database(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, msg)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(msg.clone().unwrap_or_default())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// What a unique constraint that refused a write protects, where a client can
/// cause it (the same on both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// An organisation's slug.
    Slug,
    /// An account's e-mail address.
    Email,
    /// A membership of one account in one organisation.
    Membership,
}

impl StoreError {
    /// For a conflict: which constraint refused the write, from SQLite's
    /// message (`UNIQUE constraint failed: organization.slug`) or
    /// PostgreSQL's constraint name (`organization_slug_key`).
    pub fn taken(&self) -> Option<Taken> {
        let StoreError::Conflict(what) = self else { return None };
        let has = |sqlite: &str, pg: &str| what.contains(sqlite) || what == pg;
        if has("organization.slug", "organization_slug_key") {
            Some(Taken::Slug)
        } else if has("account.email", "account_email_key") {
            Some(Taken::Email)
        } else if has("membership.organization_id", "membership_pkey") {
            Some(Taken::Membership)
        } else {
            None
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    writer: writer::Writer,
    /// Bumped after every committed write batch.
    commits: tokio::sync::watch::Receiver<u64>,
}

enum Engine {
    Sqlite {
        path: PathBuf,
        /// Connections for point reads (`read_now`): never held long.
        readers: Pool<Connection>,
        /// Connections for scans (`read`): searches, audit verification.
        /// Kept apart so that slow scans can never starve the lookups every
        /// request makes (authentication among them).
        scanners: Pool<Connection>,
    },
    Postgres {
        /// Connections as the application's role, each read in a snapshot.
        readers: Arc<PgPool>,
        /// How to connect as the database's owner (maintenance); it may
        /// hold a password: never printed.
        /// The database's owner: for `vacuum analyze`, with no time limit.
        owner: pipe::Target,
    },
}

/// PostgreSQL read connections. The driver blocks when a connection closes,
/// which it must not do on an async thread: they are closed on a thread of
/// their own.
struct PgPool(Pool<db::PgConn>);

impl std::ops::Deref for PgPool {
    type Target = Pool<db::PgConn>;
    fn deref(&self) -> &Pool<db::PgConn> {
        &self.0
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        let conns = self.0.conns.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        let _ = std::thread::Builder::new().name("ironcase-pg-close".into()).spawn(move || drop(conns));
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.engine {
            Engine::Sqlite { path, .. } => f.debug_struct("Store").field("sqlite", path).finish_non_exhaustive(),
            // The URL may hold a password: not printed.
            Engine::Postgres { .. } => f.debug_struct("Store").field("postgres", &"…").finish_non_exhaustive(),
        }
    }
}

/// A fixed set of connections and a permit per connection.
struct Pool<C> {
    conns: Mutex<Vec<C>>,
    permits: Semaphore,
}

impl<C> Pool<C> {
    fn new(conns: Vec<C>) -> Pool<C> {
        let n = conns.len();
        Pool { conns: Mutex::new(conns), permits: Semaphore::new(n) }
    }

    fn take(&self) -> Option<C> {
        self.conns.lock().ok().and_then(|mut v| v.pop())
    }

    fn give(&self, c: C) {
        if let Ok(mut v) = self.conns.lock() {
            v.push(c);
        }
    }
}

/// A connection taken from a pool, given back when dropped: also when the
/// code using it panics (a bug), so that the pool never loses one.
struct Lease<'p, C> {
    pool: &'p Pool<C>,
    conn: Option<C>,
    on_return: fn(&C),
}

impl<'p, C> Lease<'p, C> {
    fn new(pool: &'p Pool<C>, conn: C) -> Lease<'p, C> {
        Lease { pool, conn: Some(conn), on_return: |_| {} }
    }

    /// Runs `f` on the connection before it goes back.
    fn on_return(mut self, f: fn(&C)) -> Lease<'p, C> {
        self.on_return = f;
        self
    }
}

impl<C> std::ops::Deref for Lease<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        // Present until dropped.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }
}

impl<C> Drop for Lease<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            (self.on_return)(&c);
            self.pool.give(c);
        }
    }
}

/// Read connections kept open for point reads, and for scans.
const READERS: usize = 6;
const SCANNERS: usize = 3;

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(Duration::from_secs(10))?;
    c.execute_batch(
        "pragma journal_mode = wal;
         pragma synchronous = full; -- a 201 means the row survived a power cut
         pragma foreign_keys = on;
         -- Statement journals spill to a temporary file past 64 KiB: in
         -- memory, undoing a statement walks the whole journal of the
         -- enclosing savepoint, which made large write jobs quadratic.
         pragma temp_store = file;
         pragma cache_size = -65536;",
    )?;
    c.set_prepared_statement_cache_capacity(256);
    Ok(())
}

impl Store {
    /// Opens (creating when missing) the SQLite database at `path`, applies
    /// migrations and starts the writer.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let path = path.to_owned();
        let p = path.clone();
        let (writer_conn, mut readers) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut w = Connection::open(&p)?;
            configure(&w)?;
            migrate(&mut w)?;
            let mut readers = Vec::with_capacity(READERS + SCANNERS);
            for _ in 0..READERS + SCANNERS {
                let r = Connection::open_with_flags(&p, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                r.busy_timeout(Duration::from_secs(10))?;
                // Reads map the file (up to SQLite's limit, 2 GiB by default)
                // instead of copying each page in with a system call: random
                // row lookups (search hits, facets) cost a memory access. The
                // mapped pages are the OS page cache, shared and reclaimable.
                r.execute_batch("pragma mmap_size = 17179869184;")?;
                r.set_prepared_statement_cache_capacity(256);
                readers.push(r);
            }
            Ok((w, readers))
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        let (commits_tx, commits) = tokio::sync::watch::channel(0u64);
        let writer = writer::Writer::start(writer::Owned::Sqlite(writer_conn), commits_tx)?;
        let scanners = readers.split_off(READERS);
        let engine = Engine::Sqlite { path, readers: Pool::new(readers), scanners: Pool::new(scanners) };
        Ok(Store { inner: Arc::new(Inner { engine, writer, commits }) })
    }

    /// Connects to PostgreSQL at `url` (as the owner of its database, which
    /// applies the migrations), and works from then on as the application's
    /// role, under row-level security. Several nodes may share one database.
    /// The server must answer within [`DEFAULT_WAIT`].
    pub async fn open_postgres(url: &str) -> Result<Store> {
        Self::open_postgres_within(url, DEFAULT_WAIT).await
    }

    /// As [`Store::open_postgres`]; a server silent for `wait` (stalled,
    /// gone, unreachable), or a statement running longer, fails the
    /// requests waiting on it with [`StoreError::Unavailable`], and the
    /// connection is made again for the next.
    pub async fn open_postgres_within(url: &str, wait: Duration) -> Result<Store> {
        let owner = pipe::Target::parse(url, pipe::Limits::NONE)?;
        let app = owner.with_limits(pipe::Limits::within(wait));
        let (writer_conn, readers, owner) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut pipe = pipe::Pipe::connect(&owner)?;
            pg::migrate(&mut pipe)?;
            pg::check_settings(&mut pipe);
            drop(pipe);
            let w = db::PgConn::for_writer(db::PgConn::connect(&app)?);
            let readers =
                (0..READERS + SCANNERS).map(|_| db::PgConn::connect(&app).map(db::PgConn::for_reads)).collect::<Result<Vec<_>>>()?;
            Ok((w, readers, owner))
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        let (commits_tx, commits) = tokio::sync::watch::channel(0u64);
        let writer = writer::Writer::start(writer::Owned::Postgres(Box::new(writer_conn)), commits_tx)?;
        let engine = Engine::Postgres { readers: Arc::new(PgPool(Pool::new(readers))), owner };
        Ok(Store { inner: Arc::new(Inner { engine, writer, commits }) })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.inner.engine {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Opens an existing database read-only, for offline tools.
    pub fn open_readonly(path: &Path) -> Result<Connection> {
        let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        c.busy_timeout(Duration::from_secs(10))?;
        Ok(c)
    }

    /// Runs `f` with a read connection on a blocking thread. On SQLite each
    /// statement sees a consistent snapshot; on PostgreSQL the whole of `f`
    /// does. Use `write` where consistency across statements matters.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
    {
        match &self.inner.engine {
            Engine::Sqlite { scanners, .. } => {
                let permit = scanners.permits.acquire().await.map_err(|_| E::from(StoreError::Unavailable))?;
                let conn = scanners.take().ok_or_else(|| E::from(StoreError::Unavailable))?;
                let inner = self.inner.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let Engine::Sqlite { scanners, .. } = &inner.engine else { return Err(E::from(StoreError::Unavailable)) };
                    let lease = Lease::new(scanners, conn);
                    f(&Conn::Sqlite(&lease))
                })
                .await
                .map_err(|e| E::from(StoreError::Database(format!("read task failed: {e}"))))?;
                drop(permit);
                out
            }
            Engine::Postgres { readers, .. } => pg_read(readers, true, f).await,
        }
    }

    /// Runs a short read (a lookup by key). On SQLite it runs right here on
    /// the async thread: a warm point query costs microseconds, less than
    /// handing it to another thread and back. Anything that scans belongs in
    /// [`Store::read`].
    pub async fn read_now<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
    {
        match &self.inner.engine {
            Engine::Sqlite { readers, .. } => {
                let permit = readers.permits.acquire().await.map_err(|_| E::from(StoreError::Unavailable))?;
                let conn = Lease::new(readers, readers.take().ok_or_else(|| E::from(StoreError::Unavailable))?);
                let out = f(&Conn::Sqlite(&conn));
                drop(conn);
                drop(permit);
                out
            }
            // The driver blocks: never on an async thread. Each statement is
            // its own snapshot, as on SQLite: no `begin` and `commit` around
            // a lookup.
            Engine::Postgres { readers, .. } => pg_read(readers, false, f).await,
        }
    }

    /// Runs `f` on the writer, inside the shared write transaction, in its own
    /// savepoint: its changes commit (durably) when it returns `Ok`, and vanish
    /// when it returns `Err`, without touching the other requests of the batch.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx) -> Result<T, E> + Send + 'static,
    {
        self.inner.writer.submit(f).await
    }

    /// Runs `hook` after a write that changed what a session may do (see
    /// [`session::note_auth_change`]) has committed, before its caller is
    /// answered. Set once.
    pub fn on_auth_change(&self, hook: AuthHook) {
        self.inner.writer.on_auth_change(hook);
    }

    /// From now on, audit entries keep their personal data sealed with
    /// these keys (version 2; see `audit::Personal`).
    pub fn seal_personal_with(&self, keys: Arc<dyn audit::Personal>) {
        self.inner.writer.seal_personal_with(keys);
    }

    /// Changes after every committed write: a wake-up for readers of the
    /// event log (the value itself means nothing).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.commits.clone()
    }

    /// Fresh planner statistics after a large load (and, on PostgreSQL, the
    /// search index's pending entries merged): as the database's owner, since
    /// only it may.
    pub async fn analyze(&self) -> Result<()> {
        match &self.inner.engine {
            Engine::Sqlite { .. } => self.write(bulk::finish).await,
            Engine::Postgres { owner, .. } => {
                let owner = owner.clone();
                tokio::task::spawn_blocking(move || -> Result<()> { pipe::Pipe::connect(&owner)?.batch("vacuum analyze") })
                    .await
                    .map_err(|e| StoreError::Database(e.to_string()))?
            }
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| {
            let one: i64 = query_one(c, "select cast(1 as bigint)", params![], |r| r.get(0))?;
            if one == 1 {
                Ok(())
            } else {
                Err(StoreError::Corrupt("select 1".into()))
            }
        })
        .await
    }

    /// Stops accepting writes and waits for those queued to commit.
    pub async fn close(&self) {
        self.inner.writer.close().await;
    }
}

/// A PostgreSQL read on a blocking thread, with a pooled connection: one
/// snapshot (repeatable read, read only), or with `snapshot` false a snapshot
/// per statement (an implicit transaction per wait).
async fn pg_read<T, E, F>(readers: &Arc<PgPool>, snapshot: bool, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
{
    let permit = readers.permits.acquire().await.map_err(|_| E::from(StoreError::Unavailable))?;
    let conn = readers.take().ok_or_else(|| E::from(StoreError::Unavailable))?;
    let pool = readers.clone();
    let out = tokio::task::spawn_blocking(move || {
        // Given back when the read ends, however it ends. A read that
        // began is ended first: nothing was written, so ending it either
        // way is the same, and nobody waits for it (its `commit` goes out
        // now, its answer is read by the connection's next user).
        let conn = Lease::new(&**pool, conn).on_return(db::PgConn::end_read);
        conn.revive().map_err(E::from)?;
        // A `begin` is sent with the first statement (or the scope), not on
        // its own.
        conn.start_read(snapshot);
        f(&Conn::Postgres(&conn))
    })
    .await
    .map_err(|e| E::from(StoreError::Database(format!("read task failed: {e}"))))?;
    drop(permit);
    out
}

/// How long a PostgreSQL server may keep a request waiting, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Embedded migrations, applied in order, each once, each in its own
/// transaction. A migration is never edited after release (expand/contract).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../migrations/sqlite/0001_core.sql")),
    (2, "ioc", include_str!("../migrations/sqlite/0002_ioc.sql")),
    (3, "search", include_str!("../migrations/sqlite/0003_search.sql")),
    (4, "evidence", include_str!("../migrations/sqlite/0004_evidence.sql")),
    (5, "search_per_incident", include_str!("../migrations/sqlite/0005_search_per_incident.sql")),
    (6, "api_key_tlp", include_str!("../migrations/sqlite/0006_api_key_tlp.sql")),
    (7, "plans", include_str!("../migrations/sqlite/0007_plans.sql")),
    (8, "hierarchy", include_str!("../migrations/sqlite/0008_hierarchy.sql")),
    (9, "api_key_rate", include_str!("../migrations/sqlite/0009_api_key_rate.sql")),
    (10, "live", include_str!("../migrations/sqlite/0010_live.sql")),
    (11, "account", include_str!("../migrations/sqlite/0011_account.sql")),
    (12, "auth_epoch", include_str!("../migrations/sqlite/0012_auth_epoch.sql")),
    (13, "login_source", include_str!("../migrations/sqlite/0013_login_source.sql")),
    (14, "invitation", include_str!("../migrations/sqlite/0014_invitation.sql")),
    (15, "mfa", include_str!("../migrations/sqlite/0015_mfa.sql")),
    (16, "session_detail", include_str!("../migrations/sqlite/0016_session_detail.sql")),
    (17, "account_controls", include_str!("../migrations/sqlite/0017_account_controls.sql")),
    (18, "categories_break_glass", include_str!("../migrations/sqlite/0018_categories_break_glass.sql")),
    (19, "browser_session", include_str!("../migrations/sqlite/0019_browser_session.sql")),
    (20, "incident_tally", include_str!("../migrations/sqlite/0020_incident_tally.sql")),
    (21, "webhooks", include_str!("../migrations/sqlite/0021_webhooks.sql")),
    (22, "alerts", include_str!("../migrations/sqlite/0022_alerts.sql")),
    (23, "notifications", include_str!("../migrations/sqlite/0023_notifications.sql")),
    (24, "audit_tree", include_str!("../migrations/sqlite/0024_audit_tree.sql")),
    (25, "retention", include_str!("../migrations/sqlite/0025_retention.sql")),
    (26, "erasure", include_str!("../migrations/sqlite/0026_erasure.sql")),
];

fn migrate(c: &mut Connection) -> Result<()> {
    migrate_to(c, i64::MAX)
}

/// Applies the migrations up to and including `last`.
fn migrate_to(c: &mut Connection, last: i64) -> Result<()> {
    c.execute_batch(
        "create table if not exists schema_migration (version integer primary key, name text not null, applied_at integer not null)",
    )?;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= last) {
        let done: Option<i64> =
            rusqlite::OptionalExtension::optional(
                c.query_row("select version from schema_migration where version = ?", [version], |r| r.get(0)),
            )?;
        if done.is_some() {
            continue;
        }
        let tx = c.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "insert into schema_migration (version, name, applied_at) values (?, ?, cast(strftime('%s','now') as integer) * 1000)",
            rusqlite::params![version, name],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// Reads a column (by name, or by position where the row is hot) that holds a
/// closed string enum.
pub(crate) fn parse_col<T, I: db::Idx>(row: &Row<'_, '_>, col: I, parse: fn(&str) -> Option<T>) -> Result<T> {
    row.with_str(col, |s| parse(s).ok_or_else(|| StoreError::Corrupt(format!("{col}={s}"))))
}

pub(crate) fn parse_id<T: FromStr, I: db::Idx>(row: &Row<'_, '_>, col: I) -> Result<T> {
    row.with_str(col, |s| s.parse().map_err(|_| StoreError::Corrupt(format!("{col}={s}"))))
}

pub(crate) fn parse_opt_id<T: FromStr, I: db::Idx>(row: &Row<'_, '_>, col: I) -> Result<Option<T>> {
    row.with_opt_str(col, |s| s.map(|s| s.parse().map_err(|_| StoreError::Corrupt(format!("{col}={s}")))).transpose())
}

/// Runs a query and maps every row with `f`, which may fail with a `StoreError`.
/// Runs a list's statement, in its index's order when one index serves it
/// (see [`Conn::in_index_order`]).
pub(crate) fn list_in_order<T>(c: &Conn, q: db::ListQuery, f: impl Fn(&Row<'_, '_>) -> Result<T>) -> Result<Vec<T>> {
    if q.in_index_order {
        c.in_index_order(|| query_map(c, &q.sql, q.params, f))
    } else {
        query_map(c, &q.sql, q.params, f)
    }
}

pub(crate) fn query_map<T>(c: &Conn, sql: &str, params: impl db::Params, f: impl Fn(&Row<'_, '_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    c.each_row(sql, params, |r| {
        out.push(f(r)?);
        Ok(true)
    })?;
    Ok(out)
}

/// The first row mapped with `f`, or `None`.
pub(crate) fn query_opt<T>(c: &Conn, sql: &str, params: impl db::Params, f: impl Fn(&Row<'_, '_>) -> Result<T>) -> Result<Option<T>> {
    let mut out = None;
    c.each_row(sql, params, |r| {
        out = Some(f(r)?);
        Ok(false)
    })?;
    Ok(out)
}

/// Exactly one row, or `NotFound`.
pub(crate) fn query_one<T>(c: &Conn, sql: &str, params: impl db::Params, f: impl Fn(&Row<'_, '_>) -> Result<T>) -> Result<T> {
    query_opt(c, sql, params, f)?.ok_or(StoreError::NotFound)
}

/// Executes a cached statement; returns the rows changed.
pub(crate) fn exec(c: &Conn, sql: &str, params: impl db::Params) -> Result<usize> {
    c.exec(sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that panics is undone, its caller is answered, and the
    /// writer goes on with the next ones.
    #[tokio::test]
    async fn a_panicking_write_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.expect("open");
        let org = |c: &Conn, id: &str| {
            c.exec(
                "insert into organization (organization_id, slug, name, plan, status, created_at) values (?, ?, 'N', 'free', 'active', 0)",
                params![id, id],
            )
        };
        let bad: Result<(), StoreError> = store
            .write(move |c| {
                org(c, "org_a")?;
                panic!("a bug");
            })
            .await;
        assert!(matches!(bad, Err(StoreError::Unavailable)), "{bad:?}");
        store.write(move |c| org(c, "org_b")).await.expect("the writer goes on");
        let ids = store
            .read(|c| query_map(c, "select organization_id from organization order by 1", params![], |r| r.get::<_, String>(0)))
            .await
            .expect("read");
        assert_eq!(ids, ["org_b"], "the panicking write left nothing");
        store.close().await;
    }

    /// A read that panics (a bug) gives its connection back: more panics
    /// than the pools hold connections, and reads go on.
    #[tokio::test]
    async fn panicking_reads_do_not_empty_the_pools() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.expect("open");
        panics_then_reads(&store).await;
        store.close().await;
    }

    /// Panics `READERS + SCANNERS + 1` times in each kind of read, then reads.
    pub(crate) async fn panics_then_reads(store: &Store) {
        for _ in 0..=READERS + SCANNERS {
            let s = store.clone();
            let point = tokio::spawn(async move { s.read_now(|_| -> Result<(), StoreError> { panic!("a bug") }).await });
            // In the caller's task (SQLite reads in place), or as a failed read.
            assert!(!matches!(point.await, Ok(Ok(()))));
            let scan: Result<(), StoreError> = store.read(|_| panic!("a bug")).await;
            assert!(scan.is_err());
        }
        let one = |c: &Conn| query_one(c, "select cast(1 as bigint)", params![], |r| r.get::<_, i64>(0));
        assert_eq!(store.read_now(one).await.expect("a point read"), 1);
        assert_eq!(store.read(one).await.expect("a scan"), 1);
    }

    /// A database from before the per-incident search index keeps its
    /// incidents, and they are findable once it is migrated.
    #[test]
    fn search_migration_carries_existing_data() {
        let mut c = Connection::open_in_memory().expect("open");
        migrate_to(&mut c, 4).expect("up to 4");
        c.execute_batch(
            "insert into organization (organization_id, slug, name, plan, status, created_at) values ('org_a', 'a', 'A', 'enterprise', 'active', 0);
             insert into incident (organization_id, incident_id, number, title, description, severity, category, status, tlp, tags,
                                   reporter_id, created_at, updated_at, version)
                 values ('org_a', 'inc_1', 1, 'Ransomware on files', 'encrypted shares', 'high', 'malware', 'open', 'amber', '[]', 'usr_x', 1, 1, 1),
                        ('org_a', 'inc_2', 2, 'Phishing', 'lure', 'low', 'phishing', 'open', 'amber', '[]', 'usr_x', 2, 2, 1);
             insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at)
                 values ('org_a', 'cmt_1', 'inc_2', 'usr_x', 'the lure came from bulletproof hosting', 3);
             insert into ioc (organization_id, ioc_id, type, value, tlp, tags, created_at) values ('org_a', 'ioc_1', 'domain', 'evil.example', 'amber', '[]', 1);
             insert into ioc_sighting (organization_id, ioc_id, incident_id, first_seen, last_seen) values ('org_a', 'ioc_1', 'inc_1', 1, 1);",
        )
        .expect("old rows");
        migrate(&mut c).expect("migrate the rest");
        let find = |q: &str| -> Vec<String> {
            let mut st = c
                .prepare("select i.incident_id from search_fts cross join incident i on i.row_id = search_fts.rowid where search_fts match ? order by i.number")
                .expect("prepare");
            st.query_map([q], |r| r.get(0)).expect("query").collect::<rusqlite::Result<_>>().expect("rows")
        };
        assert_eq!(find("ransomware"), ["inc_1"]);
        assert_eq!(find("phishing AND bulletproof"), ["inc_2"], "title and comment are one document");
        assert_eq!(find("\"evil.example\" AND shares"), ["inc_1"], "indicator values too");
        let numbers: Vec<i64> = c
            .prepare("select number from incident order by row_id")
            .expect("p")
            .query_map([], |r| r.get(0))
            .expect("q")
            .collect::<rusqlite::Result<_>>()
            .expect("r");
        assert_eq!(numbers, [1, 2]);
    }
}
