//! The single writer. SQLite allows one writer at a time; rather than making
//! requests queue for the lock and fsync one by one, one thread owns the write
//! connection and commits whatever is waiting together: each request runs in
//! its own savepoint, and one fsynced COMMIT makes the whole batch durable.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot, watch};

use crate::db::{PgConn, Tx};
use crate::{Conn, StoreError};

/// The connection the writer thread owns.
pub(crate) enum Owned {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// How a job's result is delivered once the batch's fate is known (or the
/// job's own failure, when it carried on after a statement failed), and
/// whether the job changed what a session may do.
type Finish = Box<dyn FnOnce(Option<&StoreError>, bool) + Send>;

/// What runs after a committed write that changed what a session may do,
/// before its caller is answered (the application: every node forgets the
/// sessions it remembers).
pub type AuthHook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

thread_local! {
    /// Set by [`note_auth_change`] while a job runs on the writer thread.
    static AUTH_CHANGED: Cell<bool> = const { Cell::new(false) };
}

/// The job running on this (the writer's) thread changed what a session may
/// do: its caller is answered only after the auth hook has run.
pub(crate) fn note_auth_change() {
    AUTH_CHANGED.with(|c| c.set(true));
}
/// A job runs on the writer thread; it says whether to keep its savepoint.
type Job = Box<dyn FnOnce(&Tx) -> (bool, Finish) + Send>;

/// Most requests a single transaction carries.
const MAX_BATCH: usize = 512;

pub(crate) struct Writer {
    tx: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    done: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
    auth_hook: OnceLock<AuthHook>,
    /// The application's keys for audit entries' personal data, set once.
    personal: Arc<OnceLock<Arc<dyn crate::audit::Personal>>>,
}

impl Writer {
    /// `commits` counts committed batches: live updates wait on it.
    pub(crate) fn start(conn: Owned, commits: watch::Sender<u64>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>(8192);
        let (done_tx, done_rx) = oneshot::channel();
        let personal: Arc<OnceLock<Arc<dyn crate::audit::Personal>>> = Arc::default();
        let keys = personal.clone();
        std::thread::Builder::new()
            .name("ironcase-writer".into())
            .spawn(move || {
                run(conn, rx, &commits, &keys);
                let _ = done_tx.send(());
            })
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        Ok(Writer { tx: std::sync::Mutex::new(Some(tx)), done: std::sync::Mutex::new(Some(done_rx)), auth_hook: OnceLock::new(), personal })
    }

    pub(crate) async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx) -> Result<T, E> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<(Result<T, E>, bool)>();
        let job: Job = Box::new(move |tx: &Tx| {
            let out = f(tx);
            let keep = out.is_ok();
            let finish: Finish = Box::new(move |commit_err: Option<&StoreError>, auth_changed: bool| {
                let result = match (out, commit_err) {
                    (Ok(_), Some(e)) => Err(E::from(match e {
                        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
                        StoreError::Unavailable => StoreError::Unavailable,
                        e => StoreError::Database(format!("write failed: {e}")),
                    })),
                    (out, _) => out,
                };
                let _ = done_tx.send((result, auth_changed));
            });
            (keep, finish)
        });
        let sender = self.tx.lock().ok().and_then(|g| g.clone()).ok_or_else(|| E::from(StoreError::Unavailable))?;
        sender.send(job).await.map_err(|_| E::from(StoreError::Unavailable))?;
        let (result, auth_changed) = done_rx.await.map_err(|_| E::from(StoreError::Unavailable))?;
        if auth_changed && result.is_ok() {
            if let Some(hook) = self.auth_hook.get() {
                hook().await;
            }
        }
        result
    }

    pub(crate) fn on_auth_change(&self, hook: AuthHook) {
        let _ = self.auth_hook.set(hook);
    }

    pub(crate) fn seal_personal_with(&self, keys: Arc<dyn crate::audit::Personal>) {
        let _ = self.personal.set(keys);
    }

    /// Refuses new writes, lets the queued ones commit, and waits for the thread.
    pub(crate) async fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let done = self.done.lock().ok().and_then(|mut g| g.take());
        if let Some(d) = done {
            let _ = d.await;
        }
    }
}

fn run(owned: Owned, mut rx: mpsc::Receiver<Job>, commits: &watch::Sender<u64>, keys: &OnceLock<Arc<dyn crate::audit::Personal>>) {
    let (conn, begin, pg): (Conn, &[&str], _) = match &owned {
        Owned::Sqlite(c) => (Conn::Sqlite(c), &["begin immediate"], None),
        // Write transactions take turns across nodes: one advisory lock,
        // taken before anything else, held until commit. Event ids then grow
        // in commit order (live-update cursors stay exact), audit chains and
        // custody sequences cannot fork, and no two batches can deadlock on
        // each other's row locks. Each node still commits many requests per
        // turn (group commit).
        Owned::Postgres(p) => (Conn::Postgres(p), &["begin", "select pg_advisory_xact_lock(7160117)"], Some(&**p)),
    };
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut finishes: Vec<(Finish, Option<StoreError>, bool)> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // Sent ahead of the first job's statements, in the same flight (on a
        // connection made anew if the last one is gone).
        if let Err(e) = pg.map_or(Ok(()), PgConn::revive).and_then(|_| begin.iter().try_for_each(|s| conn.later(s))) {
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
            // Each job starts asking for no tenant scope (PostgreSQL); the one
            // it asks for is sent with its first statement, unless the last
            // job left the same one.
            let epoch = pg.map(PgConn::next_job);
            if let Err(e) = conn.later("savepoint req") {
                tracing::error!(error = %e, "writer could not open a savepoint");
                broken = Some(e);
                continue;
            }
            // A job that panics (a bug) is undone like one that failed, and
            // the writer goes on; its caller is answered `Unavailable`.
            AUTH_CHANGED.with(|c| c.set(false));
            let (mut keep, finish) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&Tx(conn, keys.get().map(|k| &**k)))))
                .unwrap_or_else(|_| {
                    tracing::error!("a write panicked; it is undone");
                    (false, Box::new(|_: Option<&StoreError>, _: bool| {}))
                });
            let auth_changed = AUTH_CHANGED.with(|c| c.replace(false));
            // On PostgreSQL a job's statements whose answer nobody reads are
            // waited for by the next statement that waits, perhaps in the
            // next job, or by the commit. A failure found in one job that an
            // earlier job sent means that earlier job's answer is wrong: the
            // batch is rolled back, and every request in it fails.
            let earlier = |p: Option<&PgConn>| p.zip(epoch).is_some_and(|(p, e)| p.failed_before(e));
            if earlier(pg) {
                broken = Some(StoreError::Database("a write of an earlier request in the batch failed".into()));
                finishes.push((finish, None, false));
                continue;
            }
            // A job that carried on after one of its statements failed (and
            // returned success) is undone and answered with the failure: on
            // PostgreSQL nothing after that statement took effect.
            let mut own = None;
            if keep && pg.zip(epoch).is_some_and(|(p, e)| p.failed_itself(e)) {
                tracing::error!("a write carried on after a failed statement; it is undone");
                own = Some(StoreError::Database("a statement of this write failed".into()));
                keep = false;
            }
            if keep {
                if let Err(e) = conn.later("release req") {
                    broken = Some(e);
                }
            } else {
                // Answers still due: an earlier job's failure among them
                // breaks the batch; the job's own concern nobody now.
                let drained = conn.sync();
                if drained.is_err() && earlier(pg) {
                    broken = Some(StoreError::Database("a write of an earlier request in the batch failed".into()));
                } else if let Err(e) = conn.batch("rollback to req; release req") {
                    tracing::error!(error = %e, "writer could not close a savepoint");
                    broken = Some(e);
                }
                // Undone with the savepoint: the scope is back to what it was
                // then, and the batch remembers what it did before the job.
                if let Some(p) = pg {
                    p.undo_job();
                }
            }
            finishes.push((finish, own, keep && auth_changed));
            // Out now: the server works on this job while the next is made.
            if let Some(p) = pg {
                p.flush();
            }
        }
        // The rows the batch kept in memory are written once, then it commits.
        let rows = match (&broken, pg) {
            (None, Some(p)) => p.send_rows().err(),
            _ => None,
        };
        let owed = pg.map(PgConn::end_batch).unwrap_or_default();
        let commit = match broken.or(rows) {
            Some(e) => Some(e),
            None => (|| {
                if !owed.is_empty() {
                    conn.platform()?;
                    for (sql, params) in owed {
                        conn.run(sql, params)?;
                    }
                }
                conn.batch("commit")
            })()
            .err(),
        };
        if let Some(e) = &commit {
            tracing::error!(error = %e, "group commit failed; the batch is rolled back");
            let _ = conn.sync();
            let _ = conn.batch("rollback");
        }
        if let Some(p) = pg {
            p.forget_scope();
        }
        // The connection went during the batch (the server stalled, ended
        // it, or went away): whatever failed, failed because of that, and
        // the requests may be tried again.
        let gone = pg.is_some_and(PgConn::is_gone);
        let outage = |e: Option<StoreError>| e.map(|e| if gone { StoreError::Unavailable } else { e });
        let commit = outage(commit);
        if commit.is_none() {
            commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        for (f, own, auth_changed) in finishes.drain(..) {
            f(outage(own).as_ref().or(commit.as_ref()), auth_changed);
        }
    }
    if let Owned::Sqlite(c) = &owned {
        // Refreshes the query planner's statistics of tables that changed
        // much (bounded work), as SQLite advises before closing.
        let _ = c.execute_batch("pragma analysis_limit = 1000; pragma optimize;");
    }
}
