//! The single writer. SQLite allows one writer at a time; rather than making
//! requests queue for the lock and fsync one by one, one task owns the write
//! connection and commits whatever is waiting together: each request runs in
//! its own savepoint, and one fsynced COMMIT makes the whole batch durable.

use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job hands back: whether its savepoint should be kept, and how to
/// deliver its result once the batch's fate is known.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

/// Most requests a single transaction carries.
const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    stopped: std::sync::Arc<tokio::sync::Notify>,
    closed: std::sync::Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Writer {
    pub(crate) fn start(conn: SqliteConnection) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let stopped = std::sync::Arc::new(tokio::sync::Notify::new());
        let handle = tokio::spawn(run(conn, rx, stopped.clone()));
        Writer { tx, stopped, closed: std::sync::Arc::new(tokio::sync::Mutex::new(Some(handle))) }
    }

    pub(crate) async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let out = f(conn).await;
                let keep = out.is_ok();
                let finish: Finish = Box::new(move |commit_err: Option<&StoreError>| {
                    let result = match (out, commit_err) {
                        (Ok(_), Some(e)) => Err(E::from(clone_err(e))),
                        (out, _) => out,
                    };
                    let _ = done_tx.send(result);
                });
                (keep, finish)
            })
        });
        self.tx.send(job).await.map_err(|_| E::from(StoreError::Unavailable))?;
        done_rx.await.map_err(|_| E::from(StoreError::Unavailable))?
    }

    pub(crate) async fn close(&self) {
        self.stopped.notify_one();
        if let Some(h) = self.closed.lock().await.take() {
            let _ = h.await;
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::Unavailable => StoreError::Unavailable,
        other => StoreError::Corrupt(format!("commit failed: {other}")),
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(&mut *conn).await?;
    Ok(())
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>, stopped: std::sync::Arc<tokio::sync::Notify>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut finishes: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            biased;
            job = rx.recv() => job,
            _ = stopped.notified() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = exec(&mut conn, "begin immediate").await {
            tracing::error!(error = %e, "writer could not begin a transaction");
            // Dropping the jobs answers their callers with `Unavailable`.
            batch.clear();
            continue;
        }
        // A savepoint that cannot be opened or closed leaves the transaction in
        // an unknown state: then the whole batch is rolled back and reported.
        let mut broken: Option<StoreError> = None;
        for job in batch.drain(..) {
            if broken.is_some() {
                continue; // dropped: its caller gets `Unavailable`
            }
            if let Err(e) = exec(&mut conn, "savepoint req").await {
                tracing::error!(error = %e, "writer could not open a savepoint");
                broken = Some(e);
                continue;
            }
            let (keep, finish) = job(&mut conn).await;
            let end = if keep {
                exec(&mut conn, "release req").await
            } else {
                match exec(&mut conn, "rollback to req").await {
                    Ok(()) => exec(&mut conn, "release req").await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "writer could not close a savepoint");
                broken = Some(e);
            }
            finishes.push(finish);
        }
        let commit = match broken {
            Some(e) => Some(e),
            None => exec(&mut conn, "commit").await.err(),
        };
        if let Some(e) = &commit {
            tracing::error!(error = %e, "group commit failed; the batch is rolled back");
            let _ = exec(&mut conn, "rollback").await;
        }
        for f in finishes.drain(..) {
            f(commit.as_ref());
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}
