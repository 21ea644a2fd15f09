//! A synchronous PostgreSQL connection that pipelines.
//!
//! The store's functions are synchronous and run on the store's own threads
//! (the writer, the readers), as with SQLite. A plain synchronous client waits
//! for every statement's answer before sending the next, so a request that
//! runs fifteen statements pays fifteen round trips, and on a loaded machine a
//! round trip (two wake-ups on each side) costs more than most statements.
//!
//! Here a statement whose answer nobody reads — a `savepoint`, a tenant scope,
//! an insert whose failure would be a bug — is *sent* ([`Pipe::send`]) and not
//! waited for: it goes out with the next statement that must be waited for
//! ([`Pipe::query`], [`Pipe::sync`]), and PostgreSQL answers them all in one
//! flight. Answers come back in order, so the first error among the sent
//! statements is what that wait returns (inside a transaction, a failed
//! statement fails every later one, so nothing after it takes effect).
//!
//! Built on `tokio-postgres` (which pipelines requests queued on one client)
//! with a one-thread runtime per connection, driven only while a caller waits:
//! the same shape as the `postgres` crate's client, plus the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Error, Row, Statement};

use crate::{Result, StoreError};

type Sent = Pin<Box<dyn Future<Output = std::result::Result<(), Error>> + Send>>;
type Driver = Pin<Box<dyn Future<Output = std::result::Result<(), Error>> + Send>>;

/// A statement sent and not yet answered.
struct Pending {
    answer: Sent,
    /// Its failure concerns nobody still waiting (a read's closing `commit`).
    detached: bool,
    /// The [`Pipe::epoch`] it was sent in.
    epoch: u64,
}

pub(crate) struct Pipe {
    runtime: tokio::runtime::Runtime,
    /// Does the connection's I/O; polled only while someone waits.
    driver: Option<Driver>,
    client: Arc<Client>,
    pending: VecDeque<Pending>,
    /// The first failure among the statements sent since the last wait,
    /// with the epoch it was sent in.
    failed: Option<(u64, StoreError)>,
    /// Who is sending: the writer counts its jobs here, so that a failure
    /// found by one job's wait can be told apart from one an earlier job sent.
    epoch: u64,
    /// The epoch of the failure the last wait returned.
    failed_epoch: Option<u64>,
}

/// A parameter already encoded (with the statement's own parameter type), so
/// that a sent statement owns what it sends.
#[derive(Debug)]
struct Encoded(Option<BytesMut>);

impl ToSql for Encoded {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Pipe {
    /// Connects (no TLS: the database is on loopback or a private network).
    pub(crate) fn connect(url: &str) -> Result<Pipe> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start a connection's runtime: {e}")))?;
        let (client, connection) = runtime.block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))?;
        Ok(Pipe {
            runtime,
            driver: Some(Box::pin(connection)),
            client: Arc::new(client),
            pending: VecDeque::new(),
            failed: None,
            epoch: 0,
            failed_epoch: None,
        })
    }

    /// Prepares `sql` (waits).
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let client = self.client.clone();
        self.wait(async move { client.prepare(sql).await })
    }

    /// Runs a prepared statement and returns its rows (waits, for it and for
    /// everything sent before it).
    pub(crate) fn query(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client.clone();
        self.wait(async move { client.query(st, params).await })
    }

    /// Runs a prepared statement and returns the rows it changed (waits).
    pub(crate) fn execute(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client.clone();
        self.wait(async move { client.execute(st, params).await })
    }

    /// Runs statements without parameters (simple protocol; waits).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        let client = self.client.clone();
        self.wait(async move { client.batch_execute(sql).await })
    }

    /// Sends a prepared statement without waiting for its answer.
    pub(crate) fn send(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) {
        self.send_with(st, params, false);
    }

    /// Sends a prepared statement without parameters whose answer concerns
    /// nobody, and puts it on the wire now (a read's `commit`). Its answer is
    /// collected by whoever uses the connection next.
    pub(crate) fn send_detached(&mut self, st: &Statement) {
        self.send_with(st, &[], true);
        self.flush_out();
    }

    fn send_with(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)], detached: bool) {
        let mut encoded = Vec::with_capacity(params.len());
        for (p, ty) in params.iter().zip(st.params()) {
            let mut buf = BytesMut::new();
            match p.to_sql_checked(ty, &mut buf) {
                Ok(IsNull::No) => encoded.push(Encoded(Some(buf))),
                Ok(IsNull::Yes) => encoded.push(Encoded(None)),
                Err(e) => {
                    self.failed.get_or_insert((self.epoch, StoreError::Database(format!("cannot encode a parameter: {e}"))));
                    return;
                }
            }
        }
        let (client, st) = (self.client.clone(), st.clone());
        self.push(Box::pin(async move { client.execute_raw(&st, encoded).await.map(|_| ()) }), detached);
    }

    /// Waits for every statement sent; returns the first failure among them.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.wait(async { Ok(()) })
    }

    /// Whether the connection is known to be gone (the server ended it, the
    /// network failed): found by the statement that failed with it.
    pub(crate) fn is_closed(&self) -> bool {
        self.driver.is_none() || self.client.is_closed()
    }

    /// Starts a new epoch (the writer: a new job); returns it.
    pub(crate) fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.failed_epoch = None;
        self.epoch
    }

    /// The epoch in which the statement behind the last wait's failure was
    /// sent, if a wait since [`Pipe::next_epoch`] failed.
    pub(crate) fn failed_epoch(&self) -> Option<u64> {
        self.failed_epoch
    }

    /// Forgets what was sent and not waited for: its answers (and
    /// failures) will concern nobody (a read that ended early).
    pub(crate) fn detach_all(&mut self) {
        self.failed = None;
        for p in &mut self.pending {
            p.detached = true;
        }
    }

    fn push(&mut self, mut answer: Sent, detached: bool) {
        // The first poll encodes the statement and queues it on the
        // connection, in order; nothing else in it waits.
        let mut cx = Context::from_waker(Waker::noop());
        match answer.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                if !detached {
                    self.failed.get_or_insert((self.epoch, e.into()));
                }
            }
            Poll::Pending => self.pending.push_back(Pending { answer, detached, epoch: self.epoch }),
        }
    }

    /// Writes what is queued to the socket without waiting for answers.
    fn flush_out(&mut self) {
        let Some(driver) = self.driver.as_mut() else { return };
        let _guard = self.runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = driver.as_mut().poll(&mut cx) {
            if let Err(e) = r {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
            self.driver = None;
        }
    }

    /// Drives the connection until `current` and everything sent before it
    /// are answered; the first failure of those sent wins over `current`'s
    /// own result (which, after a failure in a transaction, only says that
    /// the transaction is aborted).
    fn wait<T>(&mut self, current: impl Future<Output = std::result::Result<T, Error>>) -> Result<T> {
        let mut current = std::pin::pin!(current);
        let mut out: Option<std::result::Result<T, Error>> = None;
        let epoch = self.epoch;
        let Pipe { runtime, driver, pending, failed, failed_epoch, .. } = self;
        runtime.block_on(std::future::poll_fn(|cx| {
            loop {
                let mut progressed = false;
                // Polled first: its first poll queues it behind what was sent.
                if out.is_none() {
                    if let Poll::Ready(r) = current.as_mut().poll(cx) {
                        out = Some(r);
                        progressed = true;
                    }
                }
                if let Some(d) = driver.as_mut() {
                    if let Poll::Ready(r) = d.as_mut().poll(cx) {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "PostgreSQL connection ended");
                        }
                        *driver = None;
                        progressed = true;
                    }
                }
                while let Some(front) = pending.front_mut() {
                    match front.answer.as_mut().poll(cx) {
                        Poll::Ready(r) => {
                            if let (Err(e), false) = (r, front.detached) {
                                failed.get_or_insert((front.epoch, e.into()));
                            }
                            pending.pop_front();
                            progressed = true;
                        }
                        Poll::Pending => break,
                    }
                }
                if out.is_some() && pending.is_empty() {
                    return Poll::Ready(());
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        }));
        let out = match out {
            Some(r) => r.map_err(StoreError::from),
            None => Err(StoreError::Unavailable),
        };
        match failed.take() {
            Some((at, e)) => {
                *failed_epoch = Some(at);
                Err(e)
            }
            None => {
                if out.is_err() {
                    *failed_epoch = Some(epoch);
                }
                out
            }
        }
    }
}
