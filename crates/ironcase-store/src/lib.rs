//! Persistence for Ironcase. Owns every SQL statement: the schema and its
//! migrations, the tenant-scoped queries, and the single writer that commits
//! concurrent requests together (group commit).
//!
//! Reads go through a pool of connections (SQLite WAL lets them run beside the
//! writer); writes go through [`Store::write`], which runs each request's
//! closure in its own savepoint inside a shared, fsynced transaction.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod audit;
pub mod event;
pub mod incident;
pub mod org;
pub mod session;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use sqlx::SqliteConnection as Conn;
pub use writer::BoxFuture;

/// The small error every store call returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; carries the constraint text.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the writer has stopped")]
    Unavailable,
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    writer: writer::Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // A 201 means the row survived a power cut: fsync on every commit.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("temp_store", "memory")
        .pragma("cache_size", "-16000")
}

impl Store {
    /// Opens (creating when missing) the SQLite database at `path`, applies
    /// migrations and starts the writer.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let opts = options(path);
        let mut conn = sqlx::ConnectOptions::connect(&opts).await?;
        migrate(&mut conn).await?;
        let writer = writer::Writer::start(conn);
        let read = SqlitePoolOptions::new().max_connections(8).min_connections(1).connect_with(opts.read_only(true)).await?;
        Ok(Store { read, writer })
    }

    /// Opens an existing database for offline inspection (no writer, no migrations).
    pub async fn open_sqlite_readonly(path: &Path) -> Result<SqlitePool> {
        let opts = SqliteConnectOptions::from_str("sqlite://").map_err(StoreError::Database)?.filename(path).read_only(true);
        Ok(SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?)
    }

    /// A connection for reads.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.read.acquire().await?)
    }

    /// Runs `f` inside the shared write transaction, in its own savepoint: its
    /// changes commit (durably) when it returns `Ok`, and vanish when it
    /// returns `Err`, without touching the other requests of the batch.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.reader().await?;
        let one: i64 = sqlx::query("select 1").fetch_one(&mut *c).await?.try_get(0)?;
        if one == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt("select 1".into()))
        }
    }

    /// Stops accepting writes and waits for those queued to commit.
    pub async fn close(&self) {
        self.writer.close().await;
        self.read.close().await;
    }
}

/// Embedded migrations, applied in order, each once, each in its own
/// transaction. A migration is never edited after release (expand/contract).
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "core", include_str!("../migrations/sqlite/0001_core.sql"))];

async fn migrate(conn: &mut Conn) -> Result<()> {
    sqlx::query(
        "create table if not exists schema_migration (version integer primary key, name text not null, applied_at integer not null)",
    )
    .execute(&mut *conn)
    .await?;
    for (version, name, sql) in MIGRATIONS {
        let done: Option<i64> = sqlx::query("select version from schema_migration where version = ?")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if done.is_some() {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("insert into schema_migration (version, name, applied_at) values (?, ?, strftime('%s','now') * 1000)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

/// Reads a column that holds a closed string enum.
pub(crate) fn parse_col<T>(row: &sqlx::sqlite::SqliteRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col}={s}")))
}

pub(crate) fn parse_id<T: FromStr>(row: &sqlx::sqlite::SqliteRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|_| StoreError::Corrupt(format!("{col}={s}")))
}

pub(crate) fn parse_opt_id<T: FromStr>(row: &sqlx::sqlite::SqliteRow, col: &str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| s.parse().map_err(|_| StoreError::Corrupt(format!("{col}={s}")))).transpose()
}
