//! `ironcase bench --wire`: does the store's own PostgreSQL connection
//! (`ironcase_store::pipe`) still pay for itself against `tokio-postgres`?
//!
//! Both run the writer's pattern on one connection: a batch is `begin`, 32
//! jobs, `commit`; a job is a savepoint, eight inserts whose answers nobody
//! waits for, and its release. The pipe sends a job's statements without a
//! `Sync` between them and writes the job out at its end (as the writer
//! does); `tokio-postgres` pipelines the whole batch's statements (all of
//! them issued before any answer is awaited), each with its own `Sync`, as
//! it does. Each side runs on one thread (the pipe blocks; `tokio-postgres`
//! on a current-thread runtime), alternately, three rounds. Printed: jobs
//! per second, and per job the CPU of this process and of the connection's
//! PostgreSQL backend (from `/proc`, so the server must be on this machine).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ironcase_store::pipe::{Limits, Pipe, Target};

const JOBS_PER_BATCH: usize = 32;
const INSERTS_PER_JOB: usize = 8;

const CREATE: &str = "create table if not exists wire_bench (organization_id text not null, row_id text not null, n bigint not null, \
                      body text not null, primary key (organization_id, row_id))";
const INSERT: &str = "insert into wire_bench (organization_id, row_id, n, body) values ($1, $2, $3, $4)";

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_of(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses).
    let after = stat.rsplit_once(')').map(|(_, a)| a).context("a /proc stat line")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// One side's figures for `jobs` jobs.
struct Figures {
    jobs_per_s: f64,
    client_us: f64,
    server_us: f64,
}

fn measure(jobs: usize, backend: u32, run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Figures> {
    let (me, server) = (cpu_of(std::process::id())?, cpu_of(backend)?);
    let started = Instant::now();
    run()?;
    let wall = started.elapsed().as_secs_f64();
    let (me, server) = (cpu_of(std::process::id())? - me, cpu_of(backend)? - server);
    let per = 1e6 / jobs as f64;
    Ok(Figures { jobs_per_s: jobs as f64 / wall, client_us: me * per, server_us: server * per })
}

fn row(round: usize, job: usize, k: usize) -> (String, String, i64, String) {
    let id = format!("r{round}_{job}_{k}");
    ("org_bench".to_owned(), id, (job * INSERTS_PER_JOB + k) as i64, "an incident's worth of text, about so long".to_owned())
}

/// The PostgreSQL backend of the connection named `name`.
fn backend_named(url: &str, name: &str) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client.query_one("select pid from pg_stat_activity where application_name = $1", &[&name]).await?;
        anyhow::Ok(row.get(0))
    })
}

fn with_pipe(url: &str, round: usize, jobs: usize) -> anyhow::Result<Figures> {
    // Named, so that its backend can be found by another connection.
    let name = format!("ironcase_wire_{}_{round}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut pipe = Pipe::connect(&Target::parse(&format!("{url}{sep}application_name={name}"), Limits::NONE)?)?;
    let backend = backend_named(url, &name)?;
    let prepare = |pipe: &mut Pipe, sql: &str| pipe.prepare(sql).map_err(anyhow::Error::from);
    let (begin, savepoint, release, commit, insert) = (
        prepare(&mut pipe, "begin")?,
        prepare(&mut pipe, "savepoint req")?,
        prepare(&mut pipe, "release req")?,
        prepare(&mut pipe, "commit")?,
        prepare(&mut pipe, INSERT)?,
    );
    measure(jobs, backend as u32, || {
        for batch in 0..jobs.div_ceil(JOBS_PER_BATCH) {
            pipe.send(&begin, &[]);
            for j in 0..JOBS_PER_BATCH.min(jobs - batch * JOBS_PER_BATCH) {
                pipe.send(&savepoint, &[]);
                for k in 0..INSERTS_PER_JOB {
                    let (o, id, n, body) = row(round, batch * JOBS_PER_BATCH + j, k);
                    pipe.send(&insert, &[&o, &id, &n, &body]);
                }
                pipe.send(&release, &[]);
                pipe.flush();
            }
            pipe.execute(&commit, &[])?;
        }
        Ok(())
    })
}

fn with_tokio_postgres(url: &str, round: usize, jobs: usize) -> anyhow::Result<Figures> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (client, backend, savepoint, release, insert) = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let backend: i32 = client.query_one("select pg_backend_pid()", &[]).await?.get(0);
        let (savepoint, release, insert) =
            (client.prepare("savepoint req").await?, client.prepare("release req").await?, client.prepare(INSERT).await?);
        anyhow::Ok((client, backend, savepoint, release, insert))
    })?;
    measure(jobs, backend as u32, || {
        rt.block_on(async {
            for batch in 0..jobs.div_ceil(JOBS_PER_BATCH) {
                client.batch_execute("begin").await?;
                let rows: Vec<_> = (0..JOBS_PER_BATCH.min(jobs - batch * JOBS_PER_BATCH))
                    .flat_map(|j| (0..INSERTS_PER_JOB).map(move |k| row(round, batch * JOBS_PER_BATCH + j, k)))
                    .collect();
                // Every statement of the batch issued before any answer is
                // awaited, in order: tokio-postgres's pipelining.
                let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 4]> =
                    rows.iter().map(|(o, id, n, body)| [o as _, id as _, n as _, body as _]).collect();
                let mut pending = Vec::new();
                for job in params.chunks(INSERTS_PER_JOB) {
                    pending.push(client.execute(&savepoint, &[]));
                    for p in job {
                        pending.push(client.execute(&insert, p));
                    }
                    pending.push(client.execute(&release, &[]));
                }
                futures::future::try_join_all(pending).await?;
                client.batch_execute("commit").await?;
            }
            anyhow::Ok(())
        })
    })
}

/// Three rounds of `jobs` jobs each way, alternating, on the database `url`.
pub async fn run(url: &str, jobs: u64) -> anyhow::Result<ExitCode> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let jobs = (jobs as usize).max(JOBS_PER_BATCH);
        Pipe::connect(&Target::parse(&url, Limits::NONE)?)?.batch(CREATE)?;
        println!(
            "ironcase bench --wire: {jobs} jobs a run ({JOBS_PER_BATCH} a commit; a savepoint, {INSERTS_PER_JOB} inserts and a release each)"
        );
        for round in 0..3 {
            for (name, figures) in [
                ("pipe (ironcase-store)", with_pipe(&url, round * 2, jobs)?),
                ("tokio-postgres", with_tokio_postgres(&url, round * 2 + 1, jobs)?),
            ] {
                println!(
                    "{name:<24} {:>8.0} jobs/s   cpu/job: this process {:>6.1} µs, PostgreSQL {:>6.1} µs",
                    figures.jobs_per_s, figures.client_us, figures.server_us
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await?
}
