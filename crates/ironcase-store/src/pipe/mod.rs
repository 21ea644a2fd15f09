//! A synchronous PostgreSQL connection that pipelines, speaking the wire
//! protocol itself (messages encoded and decoded by `postgres-protocol`,
//! values by `postgres-types`, as `tokio-postgres` does).
//!
//! The store's functions are synchronous and run on the store's own threads
//! (the writer, the readers), as with SQLite; so is this connection: a
//! blocking socket, no runtime, no task hand-offs.
//!
//! A statement whose answer nobody reads — a `savepoint`, a tenant scope, an
//! insert whose failure would be a bug — is *sent* ([`Pipe::send`]) and not
//! waited for: it waits in the outgoing buffer and goes out with the next
//! statement that must be waited for ([`Pipe::query`], [`Pipe::sync`]), or
//! when the writer ends a job ([`Pipe::flush`]).
//!
//! Why not `tokio-postgres`, which pipelines too: it ends every statement
//! with a `Sync`, and PostgreSQL answers each `Sync` with a flush of its
//! output, one system call and one wake-up of this side per statement. On
//! two cores that was a third of the server's time (measured: `send` was 16%
//! of the machine, PostgreSQL's executor 20%). Here statements sent without
//! waiting share one `Sync` with the statement that waits after them, or with
//! the end of the writer's job.
//!
//! What the protocol says happens to a group of statements before a `Sync`:
//! - Outside `begin … commit` they form one implicit transaction, which the
//!   `Sync` ends (so read connections scope their sessions, not their
//!   transactions: see `db.rs`).
//! - After an error, the server skips every statement up to the `Sync`;
//!   those statements are answered with the first error here.
//!
//! Answers come back in order, so the first failure among the statements sent
//! is what the next wait returns (inside a transaction a failed statement
//! fails every later one, so nothing after it takes effect).
//!
//! The socket blocks. To never block on writing while the server blocks on
//! writing answers nobody reads, at most [`MAX_UNREAD`] statements are left
//! unanswered before this side reads their answers, and a `Sync` is put after
//! every [`MAX_UNSYNCED`] statements.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl;
use postgres_protocol::message::backend::{self, Message};
use postgres_protocol::message::frontend;
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};

pub use target::{Limits, Target};

use crate::{Result, StoreError};

mod target;

/// Statements sent and not yet answered, at most, before this side stops to
/// read their answers (each is some tens of bytes, far below what the
/// socket buffers hold).
const MAX_UNREAD: usize = 1024;
/// Statements between two `Sync`s, at most.
const MAX_UNSYNCED: usize = 256;
/// Bytes gathered before they are written without waiting for a wait.
const WRITE_AT: usize = 64 * 1024;

/// The SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";
/// The SQLSTATE of a statement cancelled by `statement_timeout` (or by an
/// operator).
const STATEMENT_TIMEOUT: &str = "57014";

enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf),
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tls(s) => s.write_all(buf).and_then(|_| s.flush()),
        }
    }
}

/// A column of a statement's result.
#[derive(Debug)]
struct Column {
    name: String,
    ty: Type,
}

/// A statement prepared on one connection (a named server-side statement).
#[derive(Clone, Debug)]
pub struct Statement(Arc<Described>);

impl Statement {
    /// The types of its parameters, as the server inferred them.
    pub(crate) fn params(&self) -> &[Type] {
        &self.0.params
    }
}

#[derive(Debug)]
struct Described {
    name: String,
    params: Vec<Type>,
    columns: Arc<[Column]>,
}

/// One row of a result, decoded column by column on demand.
pub struct PgRow {
    columns: Arc<[Column]>,
    body: backend::DataRowBody,
    ranges: Vec<Option<Range<usize>>>,
}

impl PgRow {
    fn new(columns: Arc<[Column]>, body: backend::DataRowBody) -> std::io::Result<PgRow> {
        let ranges = body.ranges().collect()?;
        Ok(PgRow { columns, body, ranges })
    }

    /// Column `i` (a position or a name) as `T`.
    pub(crate) fn try_get<'a, I: crate::db::PgIndex + std::fmt::Display, T: FromSql<'a>>(&'a self, i: I) -> std::result::Result<T, String> {
        let at = i.position(self.columns.len(), &|n| self.columns[n].name.as_str()).ok_or_else(|| format!("no column {i}"))?;
        let ty = &self.columns[at].ty;
        if !T::accepts(ty) {
            return Err(format!("a {ty} column read as {}", std::any::type_name::<T>()));
        }
        let raw = self.ranges.get(at).cloned().flatten().map(|r| &self.body.buffer()[r]);
        T::from_sql_nullable(ty, raw).map_err(|e| e.to_string())
    }
}

/// What a message sent expects back.
enum Kind {
    /// Bind + Execute: `BindComplete`, then rows and `CommandComplete`.
    Exec {
        columns: Arc<[Column]>,
    },
    /// Parse + Describe: `ParseComplete`, `ParameterDescription`, then
    /// `RowDescription` or `NoData`.
    Prepare {
        name: String,
    },
    Close,
    Sync,
    /// A simple query: everything up to its `ReadyForQuery`.
    Simple,
}

struct Pending {
    kind: Kind,
    /// Its answer is the one the current wait returns.
    wanted: bool,
    /// Its failure concerns nobody still waiting (a read's closing `commit`).
    detached: bool,
    /// The [`Pipe::next_epoch`] it was sent in.
    epoch: u64,
}

/// What a waited-for statement gave.
enum Outcome {
    Rows(Vec<PgRow>, u64),
    Described(Statement),
    Done,
}

pub struct Pipe {
    /// `None` once the connection is gone.
    stream: Option<Stream>,
    out: BytesMut,
    inbuf: BytesMut,
    pending: VecDeque<Pending>,
    /// Statements sent since the last `Sync`.
    unsynced: usize,
    /// How many of `pending` (from the front) have been written.
    written: usize,
    /// The server skips to the next `Sync` after an error.
    skipping: bool,
    answer: Option<std::result::Result<Outcome, StoreError>>,
    /// The first failure among the statements sent since the last wait,
    /// with the epoch it was sent in.
    failed: Option<(u64, StoreError)>,
    /// Who is sending: the writer counts its jobs here, so that a failure
    /// found by one job's wait can be told apart from one an earlier job sent.
    epoch: u64,
    /// The epoch of the failure the last wait returned.
    failed_epoch: Option<u64>,
    next_name: u64,
}

/// A failure to reach the server (while connecting: the cause is said).
fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Database(format!("PostgreSQL connection: {e}"))
}

/// A failure to encode a message (a bug, or a value PostgreSQL cannot take).
fn enc_err(e: std::io::Error) -> StoreError {
    StoreError::Database(format!("cannot encode a message to PostgreSQL: {e}"))
}

/// The socket options every TCP connection gets: time-outs on reads and
/// writes, keepalive probes after `io` of silence (every third of it, three
/// times), and written bytes unacknowledged for `io` end the connection.
/// Without `io`, keepalive probes after a minute.
fn limit(s: &std::net::TcpStream, limits: &Limits) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(limits.io)?;
    s.set_write_timeout(limits.io)?;
    let idle = limits.io.unwrap_or(Duration::from_secs(60)).max(Duration::from_secs(1));
    let keepalive = socket2::TcpKeepalive::new().with_time(idle).with_interval((idle / 3).max(Duration::from_secs(1))).with_retries(3);
    let sock = socket2::SockRef::from(s);
    sock.set_tcp_keepalive(&keepalive)?;
    if let Some(io) = limits.io {
        sock.set_tcp_user_timeout(Some(io))?;
    }
    Ok(())
}

/// The server's error as the store's: a unique violation is a conflict
/// (named by its constraint), anything else a database error.
fn db_err(body: &backend::ErrorResponseBody) -> StoreError {
    let (mut code, mut message, mut detail, mut constraint) = (String::new(), String::new(), String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => code = v,
            b'M' => message = v,
            b'D' => detail = v,
            b'n' => constraint = v,
            _ => {}
        }
    }
    if code == UNIQUE_VIOLATION {
        return StoreError::Conflict(if constraint.is_empty() { message } else { constraint });
    }
    // The server cannot do it now (a statement over its time, a shutdown, a
    // lack of resources, a lost connection): the request may be tried again.
    if code == STATEMENT_TIMEOUT || code.starts_with("57P") || code.starts_with("53") || code.starts_with("08") {
        tracing::warn!(code, message, "PostgreSQL cannot serve the request now");
        return StoreError::Unavailable;
    }
    if detail.is_empty() {
        StoreError::Database(format!("{message} ({code})"))
    } else {
        StoreError::Database(format!("{message} ({code}): {detail}"))
    }
}

fn skipped() -> StoreError {
    StoreError::Database("not run: an earlier statement of its group failed".into())
}

/// The connection is gone: the request that finds it so is answered as
/// when the database cannot be reached (the cause was logged when found).
fn closed() -> StoreError {
    StoreError::Unavailable
}

fn rows_of(tag: &str) -> u64 {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl Pipe {
    /// Connects to `target` (with TLS as its `sslmode` says) and
    /// authenticates (trust, password, MD5 or SCRAM-SHA-256).
    pub fn connect(target: &Target) -> Result<Pipe> {
        let config = &target.config;
        let timeout = config.get_connect_timeout().copied().unwrap_or(std::time::Duration::from_secs(10));
        let mut last = StoreError::Database("the database URL names no host".into());
        let ports = config.get_ports();
        for (n, host) in config.get_hosts().iter().enumerate() {
            let port = ports.get(n).or(ports.first()).copied().unwrap_or(5432);
            let tls_first = target.ssl.tls_first();
            match Self::open(target, host, port, timeout, tls_first).and_then(|s| Pipe::over(s).startup(config)) {
                Ok(pipe) => return Ok(pipe),
                // `allow`: refused without TLS, it tries with it.
                Err(StoreError::Database(m)) if target.ssl == target::SslMode::Allow && m.contains("28000") => {
                    match Self::open(target, host, port, timeout, true).and_then(|s| Pipe::over(s).startup(config)) {
                        Ok(pipe) => return Ok(pipe),
                        Err(e) => last = e,
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open(target: &Target, host: &Host, port: u16, timeout: Duration, tls: bool) -> Result<Stream> {
        use std::net::ToSocketAddrs;
        match host {
            Host::Tcp(h) => {
                let mut last = None;
                for addr in (h.as_str(), port).to_socket_addrs().map_err(io_err)? {
                    match std::net::TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            limit(&s, &target.limits).map_err(io_err)?;
                            return match (&target.tls, tls) {
                                (Some(config), true) => Self::tls(s, h, config, target.ssl.tls_required()),
                                _ => Ok(Stream::Tcp(s)),
                            };
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.map_or_else(|| StoreError::Database("the database host has no address".into()), io_err))
            }
            // As libpq: no TLS over a Unix socket.
            Host::Unix(dir) => {
                let s = std::os::unix::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).map_err(io_err)?;
                s.set_read_timeout(target.limits.io).and_then(|_| s.set_write_timeout(target.limits.io)).map_err(io_err)?;
                Ok(Stream::Unix(s))
            }
        }
    }

    /// Asks the server for TLS on `tcp`; with its yes, the handshake; with
    /// its no, the connection stays plain unless TLS is required.
    fn tls(mut tcp: std::net::TcpStream, host: &str, config: &Arc<rustls::ClientConfig>, required: bool) -> Result<Stream> {
        let mut ask = BytesMut::new();
        frontend::ssl_request(&mut ask);
        tcp.write_all(&ask).map_err(io_err)?;
        let mut yes = [0u8; 1];
        tcp.read_exact(&mut yes).map_err(io_err)?;
        match yes[0] {
            b'S' => {}
            b'N' if !required => return Ok(Stream::Tcp(tcp)),
            b'N' => return Err(StoreError::Database("the PostgreSQL server does not offer TLS, which sslmode requires".into())),
            _ => return Err(StoreError::Database("the PostgreSQL server answered the TLS request with something else".into())),
        }
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| StoreError::Database(format!("{host:?} is no host name for TLS")))?;
        let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| StoreError::Database(format!("TLS: {e}")))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake now, so that a certificate refused is said so.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => StoreError::Database(format!("TLS with PostgreSQL failed: {tls}")),
                None => io_err(e),
            })?;
        }
        Ok(Stream::Tls(Box::new(stream)))
    }

    fn over(stream: Stream) -> Pipe {
        Pipe {
            stream: Some(stream),
            out: BytesMut::with_capacity(8 * 1024),
            inbuf: BytesMut::with_capacity(16 * 1024),
            pending: VecDeque::new(),
            unsynced: 0,
            written: 0,
            skipping: false,
            answer: None,
            failed: None,
            epoch: 0,
            failed_epoch: None,
            next_name: 0,
        }
    }

    fn startup(mut self, config: &tokio_postgres::Config) -> Result<Pipe> {
        let env_user = std::env::var("USER").ok();
        let user =
            config.get_user().or(env_user.as_deref()).ok_or_else(|| StoreError::Database("the database URL names no user".into()))?;
        let mut params = vec![("client_encoding", "UTF8"), ("user", user)];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        if let Some(o) = config.get_options() {
            params.push(("options", o));
        }
        params.push(("application_name", config.get_application_name().unwrap_or("ironcase")));
        frontend::startup_message(params, &mut self.out).map_err(io_err)?;
        self.write_out()?;
        let password = config.get_password();
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match self.next_message()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let pw = password.ok_or_else(|| StoreError::Database("the server asks for a password".into()))?;
                    frontend::password_message(pw, &mut self.out).map_err(io_err)?;
                    self.write_out()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let pw = password.ok_or_else(|| StoreError::Database("the server asks for a password".into()))?;
                    let hashed = postgres_protocol::authentication::md5_hash(user.as_bytes(), pw, body.salt());
                    frontend::password_message(hashed.as_bytes(), &mut self.out).map_err(io_err)?;
                    self.write_out()?;
                }
                Message::AuthenticationSasl(body) => {
                    let pw = password.ok_or_else(|| StoreError::Database("the server asks for a password".into()))?;
                    let mut mechanisms = body.mechanisms();
                    let mut scram_offered = false;
                    while let Some(m) = mechanisms.next().map_err(io_err)? {
                        scram_offered |= m == sasl::SCRAM_SHA_256;
                    }
                    if !scram_offered {
                        return Err(StoreError::Database("the server offers no SASL mechanism the store speaks".into()));
                    }
                    let s = sasl::ScramSha256::new(pw, sasl::ChannelBinding::unsupported());
                    frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut self.out).map_err(io_err)?;
                    self.write_out()?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| StoreError::Database("unexpected SASL message".into()))?;
                    s.update(body.data()).map_err(io_err)?;
                    frontend::sasl_response(s.message(), &mut self.out).map_err(io_err)?;
                    self.write_out()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| StoreError::Database("unexpected SASL message".into()))?;
                    s.finish(body.data()).map_err(io_err)?;
                }
                Message::BackendKeyData(_) => {}
                Message::ReadyForQuery(_) => return Ok(self),
                Message::ErrorResponse(body) => return Err(db_err(&body)),
                _ => return Err(StoreError::Database("unexpected message while connecting to PostgreSQL".into())),
            }
        }
    }

    /// Prepares `sql` (waits).
    pub fn prepare(&mut self, sql: &str) -> Result<Statement> {
        self.next_name += 1;
        let name = format!("s{}", self.next_name);
        let at = self.out.len();
        let written =
            frontend::parse(&name, sql, std::iter::empty(), &mut self.out).and_then(|_| frontend::describe(b'S', &name, &mut self.out));
        if let Err(e) = written {
            self.out.truncate(at);
            return Err(enc_err(e));
        }
        self.push(Kind::Prepare { name }, true, false);
        match self.wait()? {
            Outcome::Described(s) => Ok(s),
            _ => Err(StoreError::Database("no statement description".into())),
        }
    }

    /// Closes a prepared statement on the server (not waited for).
    pub(crate) fn close(&mut self, st: &Statement) {
        if frontend::close(b'S', &st.0.name, &mut self.out).is_ok() {
            self.push(Kind::Close, false, true);
        }
    }

    /// Runs a prepared statement and returns its rows (waits, for it and for
    /// everything sent before it).
    pub fn query(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<PgRow>> {
        self.bind(st, params, true, false)?;
        match self.wait()? {
            Outcome::Rows(rows, _) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    /// Runs a prepared statement and returns the rows it changed (waits).
    pub fn execute(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.bind(st, params, true, false)?;
        match self.wait()? {
            Outcome::Rows(_, n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// Runs statements without parameters (simple protocol; waits).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        // A simple query after statements still unsynced would be skipped
        // with them after an error: they are closed by a `Sync` first.
        if self.unsynced > 0 {
            self.push_sync();
        }
        frontend::query(sql, &mut self.out).map_err(enc_err)?;
        self.pending.push_back(Pending { kind: Kind::Simple, wanted: true, detached: false, epoch: self.epoch });
        self.wait().map(|_| ())
    }

    /// Sends a prepared statement without waiting for its answer.
    pub fn send(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)]) {
        if let Err(e) = self.bind(st, params, false, false) {
            self.failed.get_or_insert((self.epoch, e));
        }
    }

    /// Sends a prepared statement without parameters whose answer concerns
    /// nobody, and puts it on the wire now (a read's `commit`). Its answer is
    /// collected by whoever uses the connection next.
    pub(crate) fn send_detached(&mut self, st: &Statement) {
        if self.bind(st, &[], false, true).is_ok() {
            let _ = self.write_out();
        }
    }

    /// Ends the current group of statements with a `Sync` and writes what is
    /// gathered, without waiting for answers (the writer, after each job: the
    /// server works on one job while the next is made).
    pub fn flush(&mut self) {
        if self.unsynced > 0 {
            self.push_sync();
        }
        if let Err(e) = self.write_out() {
            self.failed.get_or_insert((self.epoch, e));
        }
    }

    /// Waits for every statement sent; returns the first failure among them.
    pub fn sync(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.unsynced == 0 {
            return match self.failed.take() {
                Some((at, e)) => {
                    self.failed_epoch = Some(at);
                    Err(e)
                }
                None => Ok(()),
            };
        }
        self.wait().map(|_| ())
    }

    /// Whether the connection is known to be gone (the server ended it, the
    /// network failed): found by the statement that failed with it.
    pub(crate) fn is_closed(&self) -> bool {
        self.stream.is_none()
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
            p.wanted = false;
        }
    }

    /// Appends Bind + Execute of `st` with `params`; with `wait`, a `Sync`
    /// after it, the answer being the one the next wait returns.
    fn bind(&mut self, st: &Statement, params: &[&(dyn ToSql + Sync)], wanted: bool, detached: bool) -> Result<()> {
        if self.stream.is_none() {
            return Err(closed());
        }
        let types = &st.0.params;
        if types.len() != params.len() {
            return Err(StoreError::Database(format!("{} parameters for a statement that takes {}", params.len(), types.len())));
        }
        let at = self.out.len();
        let bound = frontend::bind(
            "",
            &st.0.name,
            std::iter::repeat_n(1i16, params.len()),
            params.iter().zip(types),
            |(p, ty), buf| {
                p.to_sql_checked(ty, buf).map(|n| match n {
                    IsNull::No => postgres_protocol::IsNull::No,
                    IsNull::Yes => postgres_protocol::IsNull::Yes,
                })
            },
            std::iter::once(1i16),
            &mut self.out,
        );
        if let Err(e) = bound {
            self.out.truncate(at);
            return Err(match e {
                frontend::BindError::Conversion(e) => StoreError::Database(format!("cannot encode a parameter: {e}")),
                frontend::BindError::Serialization(e) => enc_err(e),
            });
        }
        if let Err(e) = frontend::execute("", 0, &mut self.out) {
            self.out.truncate(at);
            return Err(enc_err(e));
        }
        self.push(Kind::Exec { columns: st.0.columns.clone() }, wanted, detached);
        Ok(())
    }

    /// Records what a message appended to `out` expects. A `Sync` goes after
    /// a wanted (or detached) statement, and after every [`MAX_UNSYNCED`]
    /// statements; what is gathered is written only right after a `Sync`,
    /// so that every statement written has a `Sync` written after it (the
    /// server answers it without waiting for more).
    fn push(&mut self, kind: Kind, wanted: bool, detached: bool) {
        let sync_after = matches!(kind, Kind::Exec { .. } | Kind::Prepare { .. }) && (wanted || detached);
        self.pending.push_back(Pending { kind, wanted, detached, epoch: self.epoch });
        self.unsynced += 1;
        if sync_after || self.unsynced >= MAX_UNSYNCED {
            self.push_sync();
            if !wanted && !detached && self.out.len() >= WRITE_AT {
                if let Err(e) = self.write_out() {
                    self.failed.get_or_insert((self.epoch, e));
                }
            }
        }
    }

    fn push_sync(&mut self) {
        frontend::sync(&mut self.out);
        self.pending.push_back(Pending { kind: Kind::Sync, wanted: false, detached: true, epoch: self.epoch });
        self.unsynced = 0;
    }

    /// Writes what is gathered (which ends with a `Sync`). Answers already
    /// due are read first while more than [`MAX_UNREAD`] wait: the server
    /// never blocks writing them while this side blocks writing to it.
    fn write_out(&mut self) -> Result<()> {
        while self.written > MAX_UNREAD {
            self.read_front();
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else { return Err(closed()) };
        let r = stream.write_all(&self.out);
        self.out.clear();
        self.written = self.pending.len();
        r.map_err(|e| {
            self.gone(&e);
            closed()
        })
    }

    /// Sends what is gathered and reads the answers to everything sent.
    fn settle(&mut self) {
        if self.unsynced > 0 {
            self.push_sync();
        }
        // A failure to write is recorded for every statement unanswered.
        let _ = self.write_out();
        while !self.pending.is_empty() {
            self.read_front();
        }
    }

    /// Reads the answer to the oldest statement sent, recording the first
    /// failure (and the wanted answer).
    fn read_front(&mut self) {
        let Some(p) = self.pending.pop_front() else { return };
        self.written = self.written.saturating_sub(1);
        // A statement skipped after an error is not a failure of its own.
        let (result, skipped) = if self.stream.is_none() {
            (Err(closed()), false)
        } else if self.skipping && !matches!(p.kind, Kind::Sync) {
            (Err(skipped()), true)
        } else {
            (self.answer_of(&p.kind), false)
        };
        if let Err(e) = &result {
            if !p.detached && !skipped {
                self.failed.get_or_insert((p.epoch, e.clone()));
            }
        }
        if p.wanted {
            self.answer = Some(result);
        }
    }

    /// Sends what is gathered, reads every answer due; returns the wanted
    /// answer, or the first failure among the statements sent.
    fn wait(&mut self) -> Result<Outcome> {
        let epoch = self.epoch;
        self.answer = None;
        self.settle();
        let answer = self.answer.take().unwrap_or(Err(StoreError::Unavailable));
        match self.failed.take() {
            Some((at, e)) => {
                self.failed_epoch = Some(at);
                Err(e)
            }
            None => {
                if answer.is_err() {
                    self.failed_epoch = Some(epoch);
                }
                answer
            }
        }
    }

    /// Reads the messages that answer one item sent.
    fn answer_of(&mut self, kind: &Kind) -> std::result::Result<Outcome, StoreError> {
        match kind {
            Kind::Sync => match self.next_message()? {
                Message::ReadyForQuery(_) => {
                    self.skipping = false;
                    Ok(Outcome::Done)
                }
                Message::ErrorResponse(b) => Err(db_err(&b)),
                _ => Err(self.confused()),
            },
            Kind::Close => match self.next_message()? {
                Message::CloseComplete => Ok(Outcome::Done),
                Message::ErrorResponse(b) => Err(self.failed_here(&b)),
                _ => Err(self.confused()),
            },
            Kind::Prepare { name } => {
                match self.next_message()? {
                    Message::ParseComplete => {}
                    Message::ErrorResponse(b) => return Err(self.failed_here(&b)),
                    _ => return Err(self.confused()),
                }
                let params = match self.next_message()? {
                    Message::ParameterDescription(b) => {
                        let oids: Vec<u32> = b.parameters().collect().map_err(io_err)?;
                        oids.into_iter()
                            .map(|o| Type::from_oid(o).ok_or_else(|| StoreError::Database(format!("a parameter of type oid {o}"))))
                            .collect::<Result<Vec<_>>>()?
                    }
                    Message::ErrorResponse(b) => return Err(self.failed_here(&b)),
                    _ => return Err(self.confused()),
                };
                let columns: Vec<Column> = match self.next_message()? {
                    Message::RowDescription(b) => {
                        let mut cols = Vec::new();
                        let mut fields = b.fields();
                        while let Some(f) = fields.next().map_err(io_err)? {
                            cols.push(Column { name: f.name().to_owned(), ty: Type::from_oid(f.type_oid()).unwrap_or(Type::UNKNOWN) });
                        }
                        cols
                    }
                    Message::NoData => Vec::new(),
                    Message::ErrorResponse(b) => return Err(self.failed_here(&b)),
                    _ => return Err(self.confused()),
                };
                Ok(Outcome::Described(Statement(Arc::new(Described { name: name.clone(), params, columns: columns.into() }))))
            }
            Kind::Exec { columns } => {
                match self.next_message()? {
                    Message::BindComplete => {}
                    Message::ErrorResponse(b) => return Err(self.failed_here(&b)),
                    _ => return Err(self.confused()),
                }
                let mut rows = Vec::new();
                loop {
                    match self.next_message()? {
                        Message::DataRow(body) => rows.push(PgRow::new(columns.clone(), body).map_err(io_err)?),
                        Message::CommandComplete(b) => return Ok(Outcome::Rows(rows, rows_of(b.tag().map_err(io_err)?))),
                        Message::EmptyQueryResponse | Message::PortalSuspended => return Ok(Outcome::Rows(rows, 0)),
                        Message::ErrorResponse(b) => return Err(self.failed_here(&b)),
                        _ => return Err(self.confused()),
                    }
                }
            }
            Kind::Simple => {
                let mut first: Option<StoreError> = None;
                loop {
                    match self.next_message()? {
                        Message::ReadyForQuery(_) => return first.map_or(Ok(Outcome::Done), Err),
                        Message::ErrorResponse(b) => {
                            first.get_or_insert(db_err(&b));
                        }
                        Message::RowDescription(_) | Message::DataRow(_) | Message::CommandComplete(_) | Message::EmptyQueryResponse => {}
                        _ => return Err(self.confused()),
                    }
                }
            }
        }
    }

    /// An error in a group: the server skips the rest of it.
    fn failed_here(&mut self, b: &backend::ErrorResponseBody) -> StoreError {
        self.skipping = true;
        db_err(b)
    }

    /// A message out of order: the connection cannot be trusted any more.
    fn confused(&mut self) -> StoreError {
        self.stream = None;
        StoreError::Database("unexpected message from PostgreSQL; connection dropped".into())
    }

    fn gone(&mut self, e: &std::io::Error) {
        if self.stream.take().is_some() {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    }

    /// The next message that is not a notice or a parameter change.
    fn next_message(&mut self) -> Result<Message> {
        loop {
            match Message::parse(&mut self.inbuf) {
                Ok(Some(Message::NoticeResponse(_) | Message::ParameterStatus(_) | Message::NotificationResponse(_))) => continue,
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => {
                    self.gone(&e);
                    return Err(closed());
                }
            }
            let Some(stream) = self.stream.as_mut() else { return Err(closed()) };
            let len = self.inbuf.len();
            self.inbuf.resize(len + 16 * 1024, 0);
            match stream.read(&mut self.inbuf[len..]) {
                Ok(0) => {
                    self.inbuf.truncate(len);
                    let e = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    self.gone(&e);
                    return Err(closed());
                }
                Ok(n) => self.inbuf.truncate(len + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.inbuf.truncate(len),
                Err(e) => {
                    self.inbuf.truncate(len);
                    self.gone(&e);
                    return Err(closed());
                }
            }
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(s) = self.stream.as_mut() {
            let mut buf = BytesMut::new();
            frontend::terminate(&mut buf);
            let _ = s.write_all(&buf);
        }
    }
}
