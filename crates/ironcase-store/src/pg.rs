//! The PostgreSQL backend's schema (embedded migrations, applied in order,
//! each once, by the database's owner) with row-level security as the second
//! wall between tenants, and the role the nodes work as. The engine (writer,
//! readers) is in `lib.rs` and `writer.rs`; the store functions speak both
//! dialects through [`crate::db::Conn`].

use crate::pipe::Pipe;
use crate::{Result, StoreError};

/// Embedded migrations. Never edited after release (expand/contract).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/postgres/0001_schema.sql")),
    (2, "incident_search", include_str!("../migrations/postgres/0002_incident_search.sql")),
    (3, "auth_epoch", include_str!("../migrations/postgres/0003_auth_epoch.sql")),
    (4, "search_match", include_str!("../migrations/postgres/0004_search_match.sql")),
    (5, "login_source", include_str!("../migrations/postgres/0005_login_source.sql")),
    (6, "invitation", include_str!("../migrations/postgres/0006_invitation.sql")),
    (7, "mfa", include_str!("../migrations/postgres/0007_mfa.sql")),
    (8, "session_detail", include_str!("../migrations/postgres/0008_session_detail.sql")),
    (9, "account_controls", include_str!("../migrations/postgres/0009_account_controls.sql")),
    (10, "categories_break_glass", include_str!("../migrations/postgres/0010_categories_break_glass.sql")),
    (11, "browser_session", include_str!("../migrations/postgres/0011_browser_session.sql")),
    (12, "incident_tally", include_str!("../migrations/postgres/0012_incident_tally.sql")),
    (13, "webhooks", include_str!("../migrations/postgres/0013_webhooks.sql")),
    (14, "alerts", include_str!("../migrations/postgres/0014_alerts.sql")),
    (15, "notifications", include_str!("../migrations/postgres/0015_notifications.sql")),
    (16, "audit_tree", include_str!("../migrations/postgres/0016_audit_tree.sql")),
    (17, "retention", include_str!("../migrations/postgres/0017_retention.sql")),
    (18, "erasure", include_str!("../migrations/postgres/0018_erasure.sql")),
];

/// The role the application works as: it owns nothing, so row-level
/// security always applies to it.
pub const APP_ROLE: &str = "ironcase_app";

/// Applies the migrations not yet applied, in one transaction, as the
/// connecting (owner) role. Several nodes starting at once take turns.
pub(crate) fn migrate(owner: &mut Pipe) -> Result<()> {
    migrate_to(owner, i64::MAX)
}

/// Applies the migrations up to and including `last`; none if one fails.
fn migrate_to(owner: &mut Pipe, last: i64) -> Result<()> {
    // The application's role is the cluster's, not the database's: two
    // databases of one cluster migrating at once (a shared server, the
    // tests) may both create it, and the advisory lock below is the
    // database's. The one that loses finds it made.
    owner.batch(&format!(
        "do $$ begin if not exists (select from pg_roles where rolname = '{APP_ROLE}') then \
         begin create role {APP_ROLE} nologin; exception when duplicate_object or unique_violation then null; end; \
         end if; end $$"
    ))?;
    let applied = (|| {
        // One node migrates at a time; the others wait, then find it done.
        owner.batch(
            "begin; select pg_advisory_xact_lock(7160115); \
             create table if not exists schema_migration (version bigint primary key, name text not null, applied_at bigint not null)",
        )?;
        let done = owner.prepare("select version from schema_migration")?;
        let done: Vec<i64> = owner
            .query(&done, &[])?
            .iter()
            .map(|r| r.try_get::<_, i64>(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(StoreError::Corrupt)?;
        let record = owner.prepare(
            "insert into schema_migration (version, name, applied_at) values ($1, $2, (extract(epoch from now()) * 1000)::bigint)",
        )?;
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= last && !done.contains(&m.0)) {
            owner.batch(sql)?;
            owner.execute(&record, &[version, name])?;
            tracing::info!(version, name, "applied migration (PostgreSQL)");
        }
        owner.batch("commit")
    })();
    if applied.is_err() {
        let _ = owner.batch("rollback");
    }
    applied
}

/// Warns about server settings the store depends on: with autovacuum off,
/// nothing refreshes the planner's statistics or merges the search index's
/// pending entries, and plans and searches slow down as tables grow.
pub(crate) fn check_settings(owner: &mut Pipe) {
    let on = owner.prepare("select current_setting('autovacuum')").and_then(|st| owner.query(&st, &[]));
    if let Some(on) = on.ok().and_then(|rows| rows.first().and_then(|r| r.try_get::<_, String>(0).ok())) {
        if on != "on" {
            tracing::warn!(
                "PostgreSQL's autovacuum is off: run VACUUM ANALYZE regularly, or planner statistics and the search index go stale"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's own connection to `url`, with no time limits.
    fn pipe_to_checked(url: &str) -> Result<Pipe> {
        Pipe::connect(&crate::pipe::Target::parse(url, crate::pipe::Limits::NONE)?)
    }

    fn pipe_to(url: &str) -> Pipe {
        pipe_to_checked(url).expect("connect")
    }

    use crate::testing::{on_fresh_store, TempDb};

    /// Keeps the writer busy for `ms` milliseconds, so that the writes sent
    /// meanwhile queue up (in the order sent) and share its next batch.
    async fn busy_writer(store: &crate::Store, ms: u64) -> tokio::task::JoinHandle<Result<()>> {
        let store = store.clone();
        let busy = tokio::spawn(async move {
            store
                .write(move |_| {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    Ok::<_, StoreError>(())
                })
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        busy
    }

    /// A new organisation `id` (its slug too), in the platform scope.
    fn new_org(c: &crate::Conn, id: &str) -> Result<()> {
        c.platform()?;
        c.run(
            "insert into organization (organization_id, slug, name, plan, status, created_at) values (?, ?, 'N', 'free', 'active', 0)",
            crate::params![id, id],
        )
    }

    /// A database from before the search vector had its own table keeps
    /// every live incident's vector (and none of a deleted one).
    #[test]
    fn search_vectors_move_to_their_own_table() {
        let Some(admin_url) = crate::testing::postgres_url() else { return };
        std::thread::spawn(move || {
            let db = TempDb::new(&admin_url);
            let mut owner = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
            migrate_to(&mut pipe_to(&db.url), 1).expect("up to 1");
            owner
                .batch_execute(
                    "insert into organization (organization_id, slug, name, plan, status, created_at) values ('org_a', 'a', 'A', 'enterprise', 'active', 1);
                     insert into incident (organization_id, incident_id, number, title, description, severity, category, status, tlp,
                                           tags, reporter_id, created_at, updated_at, version, deleted_at, search)
                         values ('org_a', 'inc_1', 1, 'Ransomware', '', 'high', 'other', 'open', 'amber', '[]', 'usr_x', 1, 1, 1, null,
                                 to_tsvector('simple', 'Ransomware')),
                                ('org_a', 'inc_2', 2, 'Phishing', '', 'high', 'other', 'open', 'amber', '[]', 'usr_x', 1, 1, 1, 5,
                                 to_tsvector('simple', 'Phishing'));",
                )
                .expect("old rows");
            migrate(&mut pipe_to(&db.url)).expect("migrate the rest");
            let found = owner
                .query("select incident_id from incident_search where search @@ plainto_tsquery('simple', 'ransomware')", &[])
                .expect("search");
            assert_eq!(found.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(), ["inc_1"]);
            let n: i64 = owner.query_one("select count(*) from incident_search", &[]).expect("count").get(0);
            assert_eq!(n, 1, "a deleted incident has no document");
            let n: i64 = owner.query_one("select count(*) from incident", &[]).expect("count").get(0);
            assert_eq!(n, 2, "incidents stay");
        })
        .join()
        .expect("migration test");
    }

    /// Writes whose answers nobody waits for still decide the request's
    /// answer: a request whose unwaited insert fails is refused and leaves
    /// nothing; whatever else shared its batch is either answered with
    /// success and committed, or refused and absent. Memory of counters
    /// across a batch stays right when a job in the middle is undone.
    #[test]
    fn unwaited_failures_are_never_reported_as_success() {
        on_fresh_store("unwaited failures", |store, _| async move {
            let seq = ironcase_domain::OrgId::new();
            let org = new_org;
            // Alone: the failure is found by the commit's wait.
            let bad = store
                .write(move |c| {
                    org(c, "org_dup")?;
                    org(c, "org_dup")?; // refused by the key, answered later
                    Ok::<_, StoreError>(())
                })
                .await;
            assert!(bad.is_err(), "{bad:?}");
            // A write that carries on after its own statement failed (and
            // says all is well) is undone and answered with the failure, and
            // only it: the writes sharing its batch are kept.
            // The writer is kept busy meanwhile, so that all of them queue
            // up and share the next batch.
            let busy = busy_writer(&store, 200).await;
            let swallowing = {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |c| {
                            org(c, "org_s")?;
                            let dup = c.exec(
                                "insert into organization (organization_id, slug, name, plan, status, created_at) values ('org_s', 'x', 'N', 'free', 'active', 0)",
                                crate::params![],
                            );
                            assert!(dup.is_err());
                            Ok::<_, StoreError>(())
                        })
                        .await
                })
            };
            let good: Vec<_> = (0..20)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move { store.write(move |c| org(c, &format!("org_g{n}"))).await })
                })
                .collect();
            busy.await.expect("task").expect("the busy write");
            let swallowed = swallowing.await.expect("task");
            assert!(swallowed.is_err(), "{swallowed:?}");
            for g in good {
                let r = g.await.expect("task");
                assert!(r.is_ok(), "a write beside the failed one: {r:?}");
            }
            let kept = store
                .read(|c| {
                    c.platform()?;
                    crate::query_map(
                        c,
                        "select organization_id from organization where organization_id like 'org_%'",
                        crate::params![],
                        |r| r.get::<_, String>(0),
                    )
                })
                .await
                .expect("read");
            assert!(!kept.contains(&"org_s".to_owned()), "nothing of it was kept");
            assert_eq!(kept.len(), 20, "{kept:?}");
            let seq_org = store.write(move |c| org(c, &seq.to_string())).await;
            assert!(seq_org.is_ok(), "{seq_org:?}");
            // Many at once, all good: all succeed, numbered 1..=40 with the
            // counter remembered across each batch.
            let numbers = |store: crate::Store, fail: fn(usize) -> bool, base: usize| async move {
                let mut tasks = Vec::new();
                for n in base..base + 40 {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        let id = format!("org_{n}");
                        let i2 = id.clone();
                        let r = store
                            .write(move |c| {
                                // A statement that waits: it finds an earlier
                                // request's unwaited failure, if there is one.
                                let taken = crate::query_opt(c, "select 1 from organization where organization_id = ?", [&i2], |r| {
                                    r.get::<_, i32>(0)
                                })?;
                                if taken.is_some() {
                                    return Err(StoreError::Conflict(i2));
                                }
                                org(c, &i2)?;
                                if fail(n) {
                                    org(c, &i2)?; // refused by the key, answered later
                                }
                                crate::org::next_incident_number(c, seq)
                            })
                            .await;
                        let exists = store
                            .read(move |c| {
                                c.platform()?;
                                crate::query_opt(c, "select 1 from organization where organization_id = ?", [&id], |r| r.get::<_, i32>(0))
                            })
                            .await
                            .expect("read")
                            .is_some();
                        // Each answer matches what committed.
                        assert_eq!(exists, r.is_ok(), "org_{n}: answer {r:?}, committed {exists}");
                        if fail(n) {
                            assert!(r.is_err(), "org_{n}: a failed write was answered with success");
                        }
                        r.ok()
                    }));
                }
                let mut got = Vec::new();
                for t in tasks {
                    got.extend(t.await.expect("task"));
                }
                got.sort_unstable();
                got
            };
            assert_eq!(numbers(store.clone(), |_| false, 0).await, (1..=40).collect::<Vec<i64>>());
            // Some fail: a failure found in a later request of its batch
            // fails the batch (such a failure is a bug: statements sent
            // without waiting are ones that cannot be refused), never
            // silently. The numbers answered are still exactly those kept.
            let got = numbers(store.clone(), |n| n % 7 == 3, 40).await;
            assert_eq!(got, (41..41 + got.len() as i64).collect::<Vec<_>>());
            let last: i64 = store
                .read(move |c| {
                    c.platform()?;
                    crate::query_one(c, "select incident_seq from organization where organization_id = ?", [seq.to_string()], |r| r.get(0))
                })
                .await
                .expect("seq");
            assert_eq!(last, 40 + got.len() as i64);
        });
    }

    /// Rows appended to events and the audit log are held by the writer
    /// until its batch commits: a job undone drops its own, a job that
    /// declares the table finds the rows held before it (and undoing that
    /// job holds them again), one that names it without declaring it is
    /// refused (in the tests), and what commits is every kept job's rows in
    /// job order, one intact chain.
    #[test]
    fn appended_rows_are_held_until_the_batch_commits() {
        on_fresh_store("appended rows", |store, _| async move {
            let org = ironcase_domain::OrgId::new();
            store.write(move |c| new_org(c, &org.to_string())).await.expect("org");
            let entry = move |action: &str| crate::audit::NewEntry {
                tenant: org.to_string(),
                at: ironcase_domain::Timestamp(1),
                actor_kind: "system".into(),
                action: action.into(),
                outcome: "success".into(),
                details: serde_json::json!({}),
                ..Default::default()
            };
            let append = move |c: &crate::Tx, name: &str| -> Result<i64> {
                crate::event::append(c, org, None, name, None, &serde_json::json!({}), ironcase_domain::Timestamp(1))?;
                crate::audit::append(c, entry(name))
            };
            let undeclared = move |c: &crate::Conn| -> Result<Vec<String>> {
                c.scope(org)?;
                crate::query_map(c, "select type from event where organization_id = ? order by event_id", [org.to_string()], |r| r.get(0))
            };
            let events = move |c: &crate::Conn| -> Result<Vec<String>> {
                c.scope(org)?;
                c.sees(&crate::event::EVENTS)?;
                crate::query_map(c, "select type from event where organization_id = ? order by event_id", [org.to_string()], |r| r.get(0))
            };
            // The writer is kept busy, so that the jobs below queue up (in
            // the order sent) and share the next batch.
            let busy = busy_writer(&store, 300).await;
            type Job = Box<dyn FnOnce(&crate::Tx) -> Result<(i64, Vec<String>)> + Send>;
            let jobs: Vec<Job> = vec![
                Box::new(move |c| Ok((append(c, "a")?, Vec::new()))),
                // Names the table without declaring it: refused before it
                // is sent.
                Box::new(move |c| match undeclared(c) {
                    Err(StoreError::Database(why)) if why.contains("without declaring") => Err(StoreError::Conflict("refused".into())),
                    other => panic!("an undeclared statement on a table with rows held: {other:?}"),
                }),
                Box::new(move |c| {
                    append(c, "undone")?;
                    Err(StoreError::Conflict("undone".into()))
                }),
                // Declares the table: sees what is held (sent now), then is
                // undone, which takes the sent rows back with it.
                Box::new(move |c| Err(StoreError::Conflict(events(c)?.join(",")))),
                // Reads what it appended, and the rows held again.
                Box::new(move |c| Ok((append(c, "b")?, events(c)?))),
                Box::new(move |c| Ok((append(c, "c")?, Vec::new()))),
            ];
            let mut answers = Vec::new();
            for job in jobs {
                let store = store.clone();
                answers.push(tokio::spawn(async move { store.write(job).await }));
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            busy.await.expect("task").expect("the busy write");
            let mut got = Vec::new();
            for a in answers {
                got.push(a.await.expect("task"));
            }
            let refused = got.remove(1);
            assert!(matches!(&refused, Err(StoreError::Conflict(r)) if r == "refused"), "{refused:?}");
            let kept: Vec<_> = got.iter().map(|r| r.as_ref().ok().cloned()).collect();
            assert_eq!(kept[0], Some((1, vec![])));
            assert!(kept[1].is_none(), "{got:?}");
            match &got[2] {
                Err(StoreError::Conflict(seen)) => assert_eq!(seen, "a", "rows held are sent before a statement declaring their table"),
                other => panic!("{other:?}"),
            }
            assert_eq!(kept[3], Some((2, vec!["a".to_owned(), "b".to_owned()])), "the undone job's seq is taken back");
            assert_eq!(kept[4], Some((3, vec![])));
            let (committed, chain) =
                store.read(move |c| Ok::<_, StoreError>((events(c)?, crate::audit::verify(c, &org.to_string())?))).await.expect("read");
            assert_eq!(committed, ["a", "b", "c"], "every kept job's events, in job order, none of the undone");
            assert!(chain.ok, "{chain:?}");
            assert_eq!(chain.entries, 3);
            let actions = store
                .read(move |c| {
                    c.scope(org)?;
                    crate::query_map(c, "select action from audit_log where organization_id = ? order by seq", [org.to_string()], |r| {
                        r.get::<_, String>(0)
                    })
                })
                .await
                .expect("read");
            assert_eq!(actions, ["a", "b", "c"]);
        });
    }

    /// What the writer remembers within a batch follows the writes that
    /// change it: a plan or status set after it was read is what the next
    /// read of it says, and a job undone takes its changes back.
    #[test]
    fn the_batch_memory_follows_changes() {
        on_fresh_store("batch memory", |store, _| async move {
            let id = ironcase_domain::OrgId::new();
            let r = store
                .write(move |c| {
                    new_org(c, &id.to_string())?;
                    assert_eq!(crate::org::plan_of(c, id)?.0, "free");
                    assert_eq!(crate::org::plan_of(c, id)?.0, "free", "remembered");
                    crate::org::set_plan(c, id, "enterprise", "{}")?;
                    assert_eq!(crate::org::plan_of(c, id)?.0, "enterprise");
                    crate::org::set_status(c, id, "suspended")?;
                    assert_eq!(crate::org::plan_of(c, id)?.2, "suspended");
                    assert_eq!(crate::org::next_incident_number(c, id)?, 1);
                    assert_eq!(crate::org::next_incident_number(c, id)?, 2);
                    Ok::<_, StoreError>(())
                })
                .await;
            assert!(r.is_ok(), "{r:?}");
            // Undone: the numbers it took are taken back; the next job
            // (same batch or not) continues from what was kept.
            let undone = store
                .write(move |c| {
                    assert_eq!(crate::org::next_incident_number(c, id)?, 3);
                    Err::<(), _>(StoreError::Conflict("undo".into()))
                })
                .await;
            assert!(undone.is_err());
            let next = store.write(move |c| crate::org::next_incident_number(c, id)).await.expect("number");
            assert_eq!(next, 3);
        });
    }

    /// A node outlives its database connections: after the server ends them
    /// all (a restart, a failover), the requests that find them gone fail
    /// and the next ones connect again, reads and writes alike.
    #[test]
    fn connections_are_made_again_when_the_server_ends_them() {
        on_fresh_store("connections made again", |store, url| async move {
            let write = |n: usize| {
                let store = store.clone();
                async move { store.write(move |c| new_org(c, &format!("org_{n}"))).await }
            };
            let count = || {
                let store = store.clone();
                async move {
                    store
                        .read(|c| {
                            c.platform()?;
                            crate::query_one(c, "select count(*) from organization", crate::params![], |r| r.get::<_, i64>(0))
                        })
                        .await
                }
            };
            write(0).await.expect("a write");
            assert_eq!(count().await.expect("a read"), 1);
            // Every connection of the application's role, ended by the server.
            let ended: i64 = tokio::task::spawn_blocking(move || {
                let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                admin
                    .query_one(
                        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
                     where datname = current_database() and pid <> pg_backend_pid()) t",
                        &[],
                    )
                    .expect("terminate")
                    .get(0)
            })
            .await
            .expect("admin");
            assert!(ended >= 2, "the writer and the readers were connected: {ended}");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            // At most one failure per connection (1 writer + readers), then
            // every request succeeds again.
            let (mut failed, mut n) = (0, 1);
            while failed <= READERS_AND_WRITER {
                let w = write(n).await;
                let r = count().await;
                if w.is_ok() {
                    n += 1;
                }
                if w.is_err() || r.is_err() {
                    failed += 1;
                    continue;
                }
                break;
            }
            assert!(failed <= READERS_AND_WRITER, "still failing after {failed} requests");
            for _ in 0..20 {
                write(n).await.expect("a write after reconnecting");
                n += 1;
                assert_eq!(count().await.expect("a read after reconnecting"), n as i64);
            }
        });
    }

    /// A point read runs outside `begin … commit` (each wait its own
    /// implicit transaction) on a connection whose session keeps the last
    /// read's tenant scope: every statement sees the scope its read asked
    /// for, and a read that asks for none sees nothing, on a connection whose
    /// last read had a tenant.
    #[test]
    fn point_reads_see_only_the_scope_they_ask_for() {
        on_fresh_store("point read scopes", |store, _| async move {
            let (a, b) = (ironcase_domain::OrgId::new(), ironcase_domain::OrgId::new());
            store
                .write(move |c| {
                    for o in [a.to_string(), b.to_string()] {
                        let o = o.as_str();
                        new_org(c, o)?;
                        c.scope(o)?;
                        for n in 0..3 {
                            c.run(
                                "insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) values (?, ?, 'inc', 'usr', 'b', 0)",
                                crate::params![o, format!("cmt_{o}_{n}")],
                            )?;
                        }
                    }
                    Ok::<_, StoreError>(())
                })
                .await
                .expect("rows");
            let count = |c: &crate::Conn| crate::query_one(c, "select count(*) from comment", crate::params![], |r| r.get::<_, i64>(0));
            // Sequential reads take the same pooled connection.
            for _ in 0..3 {
                let seen = store
                    .read_now(move |c| {
                        c.scope(a)?;
                        // Three waits, three implicit transactions: each one
                        // scoped to the tenant asked for.
                        Ok::<_, StoreError>((count(c)?, count(c)?, crate::org::plan_of(c, a)?.0))
                    })
                    .await
                    .expect("scoped read");
                assert_eq!(seen, (3, 3, "free".to_owned()));
                let unscoped = store.read_now(move |c| count(c)).await.expect("unscoped read");
                assert_eq!(unscoped, 0, "a read that names no tenant sees no tenant's rows");
                let other = store
                    .read_now(move |c| {
                        c.scope(b)?;
                        crate::query_map(c, "select organization_id from comment", crate::params![], |r| r.get::<_, String>(0))
                    })
                    .await
                    .expect("other tenant");
                assert_eq!(other, [b.to_string(), b.to_string(), b.to_string()]);
                let snapshot = store.read(move |c| count(c)).await.expect("unscoped snapshot read");
                assert_eq!(snapshot, 0);
            }
        });
    }

    /// Jobs of one batch share the transaction's tenant scope only when they
    /// ask for the same one: a job that asks for none sees no tenant's rows
    /// after a job that scoped one, and a job undone takes its scope back.
    #[test]
    fn jobs_of_one_batch_see_only_the_scope_they_ask_for() {
        on_fresh_store("writer scopes", |store, _| async move {
            let (a, b) = (ironcase_domain::OrgId::new(), ironcase_domain::OrgId::new());
            store
                .write(move |c| {
                    new_org(c, &a.to_string())?;
                    new_org(c, &b.to_string())
                })
                .await
                .expect("organisations");
            let insert = |c: &crate::Conn, o: ironcase_domain::OrgId, id: &str| {
                c.scope(o)?;
                c.run(
                    "insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) values (?, ?, 'inc', 'usr', 'b', 0)",
                    crate::params![o.to_string(), id],
                )
            };
            let count = |c: &crate::Conn| crate::query_one(c, "select count(*) from comment", crate::params![], |r| r.get::<_, i64>(0));
            // The writer is kept busy so that the next five share a batch,
            // submitted in this order.
            let busy = store.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                Ok::<_, StoreError>(())
            });
            let (busy, first, undone, none, mine, other) = futures::join!(
                busy,
                store.write(move |c| insert(c, a, "cmt_a")),
                store.write(move |c| {
                    insert(c, b, "cmt_b")?;
                    Err::<(), _>(StoreError::Conflict("undone".into()))
                }),
                store.write(move |c| count(c)),
                store.write(move |c| {
                    c.scope(a)?;
                    count(c)
                }),
                store.write(move |c| {
                    c.scope(b)?;
                    count(c)
                }),
            );
            busy.expect("busy");
            first.expect("first");
            assert!(undone.is_err());
            assert_eq!(none.expect("no scope"), 0, "a job that names no tenant sees none, after one that did");
            assert_eq!(mine.expect("a"), 1);
            assert_eq!(other.expect("b"), 0, "the undone insert is gone");
        });
    }

    /// A new incident is indexed without reading its document back: what it
    /// is indexed under is exactly what rebuilding its document gives.
    #[test]
    fn a_new_incident_is_indexed_as_its_document_would_be() {
        on_fresh_store("new incident document", |store, _| async move {
            use ironcase_domain::{Category, IncidentId, Severity, Status, Timestamp, Tlp, UserId};
            let org = ironcase_domain::OrgId::new();
            let row = crate::incident::IncidentRow {
                org,
                id: IncidentId::new(),
                number: 1,
                title: "Ransomware on the file servers".into(),
                description: "Shares encrypted overnight; a note asks for bitcoin.\nSecond line: évasion, naïve, 東京".into(),
                severity: Severity::High,
                category: Category::Malware,
                status: Status::Open,
                resolution: None,
                tlp: Tlp::Amber,
                tags: vec!["ransomware".into()],
                assignee_id: None,
                reporter_id: UserId::new(),
                created_at: Timestamp(1),
                updated_at: Timestamp(1),
                acknowledged_at: None,
                contained_at: None,
                resolved_at: None,
                closed_at: None,
                version: 1,
            };
            let (fast, rebuilt, text, expected) = store
                .write(move |c| {
                    new_org(c, &org.to_string())?;
                    crate::incident::insert(c, &row)?;
                    crate::search::index_new(c, &row)?;
                    let vector = |c: &crate::Conn| {
                        c.scope(org)?;
                        c.sees(&crate::search::NEW_DOCUMENTS)?;
                        crate::query_one(c, "select search::text from incident_search where incident_id = ?", [row.id.to_string()], |r| {
                            r.get::<_, String>(0)
                        })
                    };
                    let fast = vector(c)?;
                    crate::search::reindex(c, org, row.id)?;
                    let rebuilt = vector(c)?;
                    let text = crate::search::document(c, org, row.id)?;
                    // Its tags replaced in the same write: the tags held for
                    // the new incident go before the statement that drops them.
                    let retagged = crate::incident::IncidentRow { tags: vec!["wiper".into()], version: 2, ..row.clone() };
                    assert!(crate::incident::update(c, &retagged, 1, true)?);
                    Ok::<_, StoreError>((fast, rebuilt, text, crate::search::new_document(&row.title, &row.description)))
                })
                .await
                .expect("indexed");
            let tags = store
                .read(move |c| {
                    c.scope(org)?;
                    crate::query_map(c, "select tag from incident_tag where organization_id = ? order by tag", [org.to_string()], |r| {
                        r.get::<_, String>(0)
                    })
                })
                .await
                .expect("tags");
            assert_eq!(tags, ["wiper"]);
            assert_eq!(fast, rebuilt);
            assert!(fast.contains("'ransomware'") && fast.contains("'東京'"), "{fast}");
            assert_eq!(text.as_deref(), Some(expected.as_str()));
        });
    }

    /// One write of thousands of statements nobody waits for, and values
    /// larger than a socket read: the connection neither blocks on itself nor
    /// loses a byte.
    #[test]
    fn long_jobs_and_large_values_pass_through_the_pipe() {
        on_fresh_store("long jobs", |store, _| async move {
            let big: String = (0..3_000_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let b2 = big.clone();
            store
                .write(move |c| {
                    new_org(c, "org_a")?;
                    c.scope("org_a")?;
                    for n in 0..5_000 {
                        c.run(
                            "insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) values ('org_a', ?, 'inc', 'usr', ?, 0)",
                            crate::params![format!("cmt_{n}"), if n == 4_321 { b2.clone() } else { "b".to_owned() }],
                        )?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await
                .expect("a long job");
            let (n, body) = store
                .read(|c| {
                    c.scope("org_a")?;
                    let n = crate::query_one(c, "select count(*) from comment", crate::params![], |r| r.get::<_, i64>(0))?;
                    let body = crate::query_one(c, "select body from comment where comment_id = 'cmt_4321'", crate::params![], |r| {
                        r.get::<_, String>(0)
                    })?;
                    Ok::<_, StoreError>((n, body))
                })
                .await
                .expect("read back");
            assert_eq!(n, 5_000);
            assert!(body == big, "a 3 MB value comes back whole");
            // Many rows in one answer.
            let all = store
                .read_now(|c| {
                    c.scope("org_a")?;
                    crate::query_map(c, "select comment_id from comment order by created_at, comment_id", crate::params![], |r| {
                        r.get::<_, String>(0)
                    })
                })
                .await
                .expect("all rows");
            assert_eq!(all.len(), 5_000);
        });
    }

    /// A PostgreSQL server of a test's own, made with `initdb`, that asks for
    /// passwords (the shared test server trusts loopback). Stopped on drop.
    struct OwnServer {
        bin: std::path::PathBuf,
        dir: tempfile::TempDir,
        port: u16,
    }

    impl OwnServer {
        /// `None` (the test skipped) without PostgreSQL's server programs,
        /// unless `CI=true`.
        fn start() -> Option<OwnServer> {
            Self::start_with(None)
        }

        /// With `tls` (a certificate and its key, PEM), a server that takes
        /// connections over TCP only with TLS.
        fn start_with(tls: Option<(&str, &str)>) -> Option<OwnServer> {
            let Some(bin) = crate::testing::server_programs() else {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "PostgreSQL's server programs are required when CI=true");
                eprintln!("skipping: PostgreSQL's server programs (initdb) are not installed");
                return None;
            };
            let root = crate::testing::as_root();
            let dir = tempfile::tempdir().expect("dir");
            let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
            let server = OwnServer { bin, dir, port };
            std::fs::write(server.dir.path().join("pw"), "owner-secret").expect("password file");
            if root {
                server.run("chown", &["-R", "postgres", &server.path("")]);
            }
            server.run(
                &server.bin("initdb"),
                &[
                    "-D",
                    &server.path("data"),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    &format!("--pwfile={}", server.path("pw")),
                    "--no-sync",
                ],
            );
            let hba = if tls.is_some() {
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n"
            } else {
                "local all all trust\n\
                 host all md5user 127.0.0.1/32 md5\n\
                 host all clearuser 127.0.0.1/32 password\n\
                 host all all 127.0.0.1/32 scram-sha-256\n"
            };
            std::fs::write(server.dir.path().join("data/pg_hba.conf"), hba).expect("pg_hba.conf");
            let mut opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", server.path(""));
            if let Some((cert, key)) = tls {
                std::fs::write(server.dir.path().join("data/server.crt"), cert).expect("certificate");
                std::fs::write(server.dir.path().join("data/server.key"), key).expect("key");
                server.run("chmod", &["600", &server.path("data/server.key")]);
                if root {
                    server.run("chown", &["postgres", &server.path("data/server.crt"), &server.path("data/server.key")]);
                }
                opts.push_str(" -c ssl=on");
            }
            server.run(&server.bin("pg_ctl"), &["-D", &server.path("data"), "-o", &opts, "-l", &server.path("log"), "-w", "start"]);
            // Roles whose passwords the server checks as MD5 and in the clear.
            server.run(
                &server.bin("psql"),
                &[
                    "-h",
                    &server.path(""),
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    "set password_encryption = 'md5'; create role md5user login password 'md5-secret'; \
                     reset password_encryption; create role clearuser login password 'clear-secret';",
                ],
            );
            Some(server)
        }

        fn path(&self, p: &str) -> String {
            self.dir.path().join(p).to_string_lossy().into_owned()
        }

        fn bin(&self, name: &str) -> String {
            self.bin.join(name).to_string_lossy().into_owned()
        }

        fn run(&self, program: &str, args: &[&str]) {
            if program == "chown" || program == "chmod" {
                let out = std::process::Command::new(program).args(args).output().expect("run");
                assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
            } else {
                crate::testing::run_server_program(std::path::Path::new(program), args).expect("a server program");
            }
        }

        fn url(&self, user: &str, password: &str) -> String {
            format!("postgres://{user}:{password}@127.0.0.1:{}/postgres", self.port)
        }
    }

    impl Drop for OwnServer {
        fn drop(&mut self) {
            let (ctl, data) = (self.bin("pg_ctl"), self.path("data"));
            let _ = crate::testing::run_server_program(std::path::Path::new(&ctl), &["-D", &data, "-m", "immediate", "stop"]);
        }
    }

    /// The store's own connections authenticate as the server asks:
    /// SCRAM-SHA-256, MD5, a password in the clear, and none over a Unix
    /// socket; a wrong password is an error, not a connection.
    #[test]
    fn connections_authenticate_as_the_server_asks() {
        let Some(server) = OwnServer::start() else { return };
        let one = |url: &str| -> Result<()> { pipe_to_checked(url)?.batch("select 1") };
        one(&server.url("postgres", "owner-secret")).expect("SCRAM-SHA-256");
        one(&server.url("md5user", "md5-secret")).expect("MD5");
        one(&server.url("clearuser", "clear-secret")).expect("a password in the clear");
        let socket = format!("postgres://postgres@/postgres?host={}&port={}", server.path(""), server.port);
        one(&socket).expect("a Unix socket");
        for (user, wrong) in [("postgres", "nope"), ("md5user", "nope"), ("clearuser", "nope")] {
            let r = one(&server.url(user, wrong));
            assert!(matches!(&r, Err(StoreError::Database(m)) if m.contains("28P01")), "{user}: {r:?}");
        }
        let r = one(&format!("postgres://postgres@127.0.0.1:{}/postgres", server.port));
        assert!(r.is_err(), "no password when one is asked for: {r:?}");
        // This server speaks no TLS: the default `prefer` goes without it,
        // `require` does not go at all.
        let r = one(&format!("{}?sslmode=require", server.url("postgres", "owner-secret")));
        assert!(matches!(&r, Err(StoreError::Database(m)) if m.contains("does not offer TLS")), "{r:?}");
    }

    /// Test certificates: a CA, a server certificate it signs for
    /// `localhost` (with its key), and an unrelated CA (PEM).
    fn certificates() -> (String, String, String, String) {
        let ca = |name: &str| {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("CA");
            (cert, key)
        };
        let (ca_cert, ca_key) = ca("Ironcase test CA");
        let (other, _) = ca("Someone else's CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server certificate");
        (ca_cert.pem(), cert.pem(), key.serialize_pem(), other.pem())
    }

    /// Whether the connection `url` makes is encrypted, as the server says.
    fn encrypted(url: &str) -> Result<bool> {
        let mut pipe = pipe_to_checked(url)?;
        let st = pipe.prepare("select ssl from pg_stat_ssl where pid = pg_backend_pid()")?;
        let rows = pipe.query(&st, &[])?;
        rows.first().ok_or(StoreError::NotFound)?.try_get::<_, bool>(0).map_err(StoreError::Corrupt)
    }

    /// `sslmode` and `sslrootcert` as libpq understands them, against a
    /// server that takes TCP connections only over TLS, with a certificate
    /// for `localhost` from the test's own CA: the certificate is checked
    /// exactly as far as the mode says, and the whole store works over it.
    #[test]
    fn tls_as_libpq_understands_it() {
        let (ca, cert, key, other_ca) = certificates();
        let Some(server) = OwnServer::start_with(Some((&cert, &key))) else { return };
        std::fs::write(server.dir.path().join("ca.pem"), &ca).expect("ca");
        std::fs::write(server.dir.path().join("other.pem"), &other_ca).expect("other ca");
        let (ca, other) = (server.path("ca.pem"), server.path("other.pem"));
        let at = |host: &str, query: &str| format!("postgres://postgres:owner-secret@{host}:{}/postgres?{query}", server.port);
        let ip = |q: &str| at("127.0.0.1", q);
        // Without TLS the server refuses; with it, every mode that allows it.
        let plain = encrypted(&ip("sslmode=disable"));
        assert!(matches!(&plain, Err(StoreError::Database(m)) if m.contains("28000")), "{plain:?}");
        for mode in ["", "sslmode=allow", "sslmode=prefer", "sslmode=require"] {
            assert!(encrypted(&ip(mode)).unwrap_or_else(|e| panic!("{mode}: {e}")), "{mode}: encrypted");
        }
        // The chain, checked; the name not (verify-ca, or require with a root).
        assert!(encrypted(&ip(&format!("sslmode=verify-ca&sslrootcert={ca}"))).expect("verify-ca"));
        assert!(encrypted(&ip(&format!("sslmode=require&sslrootcert={ca}"))).expect("require with a root"));
        for mode in ["verify-ca", "require", "verify-full"] {
            let r = encrypted(&at("localhost", &format!("sslmode={mode}&sslrootcert={other}")));
            assert!(matches!(&r, Err(StoreError::Database(m)) if m.contains("TLS with PostgreSQL failed")), "{mode}, another CA: {r:?}");
        }
        // The chain and the name.
        assert!(encrypted(&at("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"))).expect("verify-full"));
        let wrong_name = encrypted(&ip(&format!("sslmode=verify-full&sslrootcert={ca}")));
        assert!(
            matches!(&wrong_name, Err(StoreError::Database(m)) if m.contains("TLS with PostgreSQL failed") && m.contains("name")),
            "verify-full on a name the certificate does not carry: {wrong_name:?}"
        );
        let no_root = encrypted(&at("localhost", "sslmode=verify-full"));
        assert!(matches!(&no_root, Err(StoreError::Database(m)) if m.contains("sslrootcert")), "{no_root:?}");
        // The store itself: migrations as the owner, then the writer and
        // every reader, all over verified TLS.
        let url = at("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let store = crate::Store::open_postgres(&url).await.expect("open over TLS");
            store.write(|c| new_org(c, "org_tls")).await.expect("a write over TLS");
            let n = store
                .read(|c| {
                    c.platform()?;
                    crate::query_one(c, "select count(*) from organization", crate::params![], |r| r.get::<_, i64>(0))
                })
                .await
                .expect("a read over TLS");
            assert_eq!(n, 1);
            store.analyze().await.expect("the owner's connection over TLS");
            store.close().await;
        });
        // The configured test server has TLS on too (CI's does): `require`
        // reaches it. (The tests' own cluster has none.)
        if let Some(shared) = std::env::var("IRONCASE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
            let sep = if shared.contains('?') { '&' } else { '?' };
            assert!(encrypted(&format!("{shared}{sep}sslmode=require")).expect("the shared server over TLS"));
        }
    }

    /// On a fresh database whose planner has no statistics (nothing
    /// analysed: a new node, a bulk load, autovacuum off), lists stay on
    /// their indexes: no sort, no bitmap, no sequential scan. Unfiltered
    /// lists (the tenant's own index) are held to it; the same statements
    /// unheld read and sort all the tenant's rows (checked first, so this
    /// test can fail). Filtered lists are left to the planner, which takes
    /// their two-column index by itself. Once analysed, the planner finds
    /// the index for the unfiltered list too.
    #[test]
    fn lists_stay_on_their_indexes_without_statistics() {
        on_fresh_store("plans", |store, url| async move {
            let org = ironcase_domain::OrgId::new();
            let o = org.to_string();
            let load = o.clone();
            tokio::task::spawn_blocking(move || {
                let o = load;
                let mut owner = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                owner
                    .batch_execute(&format!(
                        "alter table incident set (autovacuum_enabled = off);
                         alter table audit_log set (autovacuum_enabled = off);
                         insert into organization (organization_id, slug, name, plan, status, created_at) values ('{o}', '{o}', 'A', 'free', 'active', 0);
                         insert into incident (organization_id, incident_id, number, title, description, severity, category, status, tlp,
                                               tags, reporter_id, created_at, updated_at, version)
                             select '{o}', 'inc_' || lpad(g::text, 8, '0'), g, 'Incident', '', (array['low', 'medium', 'high'])[g % 3 + 1],
                                    'other', (array['open', 'closed'])[g % 2 + 1], 'amber', '[]', 'usr_x', g, g, 1
                             from generate_series(1, 20000) g;
                         insert into audit_log (organization_id, seq, at, actor_id, actor_kind, action, resource_type, resource_id, outcome,
                                                details, prev_hash, hash)
                             select '{o}', g, g, 'usr_x', 'user', 'incident.create', 'incident', 'inc_' || g, 'success', '{{}}', '', ''
                             from generate_series(1, 20000) g;"
                    ))
                    .expect("rows, not analysed");
            })
            .await
            .expect("load");
            use crate::incident::{Filter, Sort};
            let incidents = |f: Filter, sort: Sort, after: Option<(i64, ironcase_domain::IncidentId)>| {
                crate::incident::list_query(org, &f, sort, after, 51)
            };
            let audit = |f: crate::audit::Filter, before: Option<i64>| crate::audit::list_query(&o, &f, before, 51);
            let cursor = Some((10_000, ironcase_domain::IncidentId::new()));
            let held = [
                incidents(Filter::default(), Sort::CreatedDesc, None),
                incidents(Filter::default(), Sort::CreatedAsc, cursor),
                incidents(Filter::default(), Sort::UpdatedDesc, None),
                incidents(Filter::default(), Sort::UpdatedAsc, cursor),
                audit(crate::audit::Filter::default(), None),
                audit(crate::audit::Filter::default(), Some(5_000)),
            ];
            // A filter gives the planner a two-column index condition: left
            // to it, it stays on that index by itself.
            let own = [
                incidents(Filter { status: Some(ironcase_domain::Status::Open), ..Filter::default() }, Sort::CreatedDesc, None),
                incidents(Filter { severity: Some(ironcase_domain::Severity::High), ..Filter::default() }, Sort::CreatedAsc, cursor),
                audit(crate::audit::Filter { action: Some("incident.create".into()), ..Default::default() }, None),
            ];
            let free = incidents(Filter::default(), Sort::CreatedDesc, None);
            let (plans, unheld) = store
                .read(move |c| {
                    c.scope(org)?;
                    let plan = |q: &crate::db::ListQuery| {
                        crate::query_map(c, &format!("explain {}", q.sql), q.params.clone(), |r| r.get::<_, String>(0))
                            .map(|l| l.join("\n"))
                    };
                    let unheld = plan(&free)?;
                    let mut plans = held
                        .iter()
                        .map(|q| {
                            assert!(q.in_index_order, "held: {}", q.sql);
                            c.in_index_order(|| plan(q)).map(|p| (q.sql.clone(), p))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    for q in &own {
                        assert!(!q.in_index_order, "left to the planner: {}", q.sql);
                        plans.push((q.sql.clone(), plan(q)?));
                    }
                    Ok::<_, StoreError>((plans, unheld))
                })
                .await
                .expect("plans");
            assert!(unheld.contains("Sort"), "without statistics and unheld, the planner sorts:\n{unheld}");
            // With statistics the planner chooses the index by itself (and
            // lists are no longer held: see `Conn::in_index_order`).
            store.analyze().await.expect("analyze");
            let free = incidents(Filter::default(), Sort::CreatedDesc, None);
            let analysed = store
                .read(move |c| {
                    c.scope(org)?;
                    crate::query_map(c, &format!("explain {}", free.sql), free.params.clone(), |r| r.get::<_, String>(0))
                        .map(|l| l.join("\n"))
                })
                .await
                .expect("plan");
            assert!(analysed.contains("Index Scan") && !analysed.contains("Sort"), "with statistics:\n{analysed}");
            for (sql, plan) in plans {
                assert!(
                    plan.contains("Index Scan") && !plan.contains("Sort") && !plan.contains("Bitmap") && !plan.contains("Seq Scan"),
                    "{sql}\n{plan}"
                );
            }
        });
    }

    /// A schema as both backends can describe it, in SQLite's words.
    #[derive(Default, Debug)]
    struct Schema {
        /// (table, column, type, not null)
        columns: std::collections::BTreeSet<(String, String, String, bool)>,
        /// (table, columns, unique): primary keys, unique constraints, indexes.
        indexes: std::collections::BTreeSet<(String, String, bool)>,
        /// (table, columns, referenced table, referenced columns)
        foreign_keys: std::collections::BTreeSet<(String, String, String, String)>,
        /// Tables with a tenant column (SQLite), or with row-level security
        /// on and a policy (PostgreSQL).
        walled: std::collections::BTreeSet<String>,
    }

    /// What differs on purpose: each backend's own search machinery, the
    /// migrations' bookkeeping, and PostgreSQL's row number for the search
    /// table's joins. Anything else one side has and the other lacks fails.
    fn on_purpose(table: &str, column: &str) -> bool {
        table.starts_with("search_fts")
            || table == "search_vocab"
            || table == "incident_search"
            || table == "schema_migration"
            || (table == "incident" && column == "row_id")
    }

    fn sqlite_schema() -> Schema {
        let mut c = rusqlite::Connection::open_in_memory().expect("open");
        crate::migrate(&mut c).expect("migrate");
        let mut s = Schema::default();
        let tables: Vec<String> = c
            .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("tables");
        for t in tables {
            let mut st = c.prepare(&format!("pragma table_info({t})")).expect("columns");
            let cols: Vec<(String, String, bool, i64)> = st
                .query_map([], |r| Ok((r.get(1)?, r.get::<_, String>(2)?.to_lowercase(), r.get(3)?, r.get(5)?)))
                .expect("q")
                .map(|r| r.expect("col"))
                .collect();
            let mut pk: Vec<(i64, String)> = Vec::new();
            for (name, ty, notnull, in_pk) in cols {
                if name == "organization_id" {
                    s.walled.insert(t.clone());
                }
                if in_pk > 0 {
                    pk.push((in_pk, name.clone()));
                }
                // A primary key column is never null, said or not.
                s.columns.insert((t.clone(), name, ty, notnull || in_pk > 0));
            }
            if !pk.is_empty() {
                pk.sort();
                s.indexes.insert((t.clone(), pk.into_iter().map(|(_, n)| n).collect::<Vec<_>>().join(","), true));
            }
            let mut st = c.prepare(&format!("pragma index_list({t})")).expect("indexes");
            let idx: Vec<(String, bool, String)> =
                st.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?))).expect("q").map(|r| r.expect("idx")).collect();
            for (name, unique, origin) in idx {
                if origin == "pk" {
                    continue;
                }
                let mut st = c.prepare(&format!("pragma index_info({name})")).expect("index columns");
                let cols: Vec<String> = st.query_map([], |r| r.get(2)).expect("q").map(|r| r.expect("c")).collect();
                s.indexes.insert((t.clone(), cols.join(","), unique));
            }
            let mut st = c.prepare(&format!("pragma foreign_key_list({t})")).expect("foreign keys");
            let fks: Vec<(i64, String, String, Option<String>)> =
                st.query_map([], |r| Ok((r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?))).expect("q").map(|r| r.expect("fk")).collect();
            let mut by_id: std::collections::BTreeMap<i64, (String, Vec<String>, Vec<String>)> = Default::default();
            for (id, to, from, to_col) in fks {
                let e = by_id.entry(id).or_insert_with(|| (to, Vec::new(), Vec::new()));
                e.1.push(from);
                e.2.extend(to_col);
            }
            for (_, (to, from, to_cols)) in by_id {
                s.foreign_keys.insert((t.clone(), from.join(","), to, to_cols.join(",")));
            }
        }
        s
    }

    fn postgres_schema(url: &str) -> Schema {
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        let mut s = Schema::default();
        for r in c
            .query(
                "select table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
                 from information_schema.columns where table_schema = 'public'",
                &[],
            )
            .expect("columns")
        {
            let ty = match r.get::<_, String>(2).as_str() {
                "bigint" | "integer" | "smallint" | "boolean" => "integer".to_owned(),
                "bytea" => "blob".to_owned(),
                "double precision" | "real" => "real".to_owned(),
                other => other.to_owned(),
            };
            s.columns.insert((r.get(0), r.get(1), ty, r.get(3)));
        }
        for r in c
            .query(
                "select t.relname::text, i.indisunique,
                        array_to_string(array(select a.attname::text from unnest(i.indkey) with ordinality k(n, o)
                                              join pg_attribute a on a.attrelid = t.oid and a.attnum = k.n order by k.o), ',')
                 from pg_index i join pg_class t on t.oid = i.indrelid
                 where t.relnamespace = 'public'::regnamespace",
                &[],
            )
            .expect("indexes")
        {
            s.indexes.insert((r.get(0), r.get(2), r.get(1)));
        }
        for r in c
            .query(
                "select f.conrelid::regclass::text, f.confrelid::regclass::text,
                        array_to_string(array(select a.attname::text from unnest(f.conkey) with ordinality k(n, o)
                                              join pg_attribute a on a.attrelid = f.conrelid and a.attnum = k.n order by k.o), ','),
                        array_to_string(array(select a.attname::text from unnest(f.confkey) with ordinality k(n, o)
                                              join pg_attribute a on a.attrelid = f.confrelid and a.attnum = k.n order by k.o), ',')
                 from pg_constraint f where f.contype = 'f' and f.connamespace = 'public'::regnamespace",
                &[],
            )
            .expect("foreign keys")
        {
            s.foreign_keys.insert((r.get(0), r.get(2), r.get(1), r.get(3)));
        }
        for r in c
            .query(
                "select c.relname::text from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
                   and c.relrowsecurity and exists (select 1 from pg_policies p where p.schemaname = 'public' and p.tablename = c.relname)",
                &[],
            )
            .expect("policies")
        {
            s.walled.insert(r.get(0));
        }
        s
    }

    /// The two backends' schemas, migrated from nothing, have the same
    /// tables, columns (type and nullability), keys, unique constraints,
    /// indexes and foreign keys, and every table with a tenant column is
    /// walled by row-level security on PostgreSQL: a migration written for
    /// one backend only fails here.
    #[test]
    fn both_backends_have_the_same_schema() {
        let Some(admin_url) = crate::testing::postgres_url() else { return };
        std::thread::spawn(move || {
            let db = TempDb::new(&admin_url);
            migrate(&mut pipe_to(&db.url)).expect("migrate");
            let (lite, pg) = (sqlite_schema(), postgres_schema(&db.url));
            for s in [&lite, &pg] {
                assert!(
                    s.columns.len() > 100 && s.indexes.len() > 30 && s.foreign_keys.len() > 5 && s.walled.len() > 10,
                    "a whole schema is read: {} columns, {} indexes, {} foreign keys, {} walled tables",
                    s.columns.len(),
                    s.indexes.len(),
                    s.foreign_keys.len(),
                    s.walled.len()
                );
            }
            let mut differences = Vec::new();
            let mut compare = |what: &str, a: Vec<String>, b: Vec<String>| {
                for x in a.iter().filter(|x| !b.contains(x)) {
                    differences.push(format!("{what} only on SQLite: {x}"));
                }
                for x in b.iter().filter(|x| !a.contains(x)) {
                    differences.push(format!("{what} only on PostgreSQL: {x}"));
                }
            };
            let columns = |s: &Schema| {
                s.columns
                    .iter()
                    .filter(|c| !on_purpose(&c.0, &c.1))
                    .map(|c| format!("{}.{} {} {}", c.0, c.1, c.2, if c.3 { "not null" } else { "null" }))
                    .collect()
            };
            compare("column", columns(&lite), columns(&pg));
            let indexes = |s: &Schema| {
                s.indexes
                    .iter()
                    .filter(|i| !on_purpose(&i.0, &i.1))
                    .map(|i| format!("{} ({}){}", i.0, i.1, if i.2 { " unique" } else { "" }))
                    .collect()
            };
            compare("index", indexes(&lite), indexes(&pg));
            let fks = |s: &Schema| {
                s.foreign_keys.iter().filter(|f| !on_purpose(&f.0, "")).map(|f| format!("{} ({}) -> {} ({})", f.0, f.1, f.2, f.3)).collect()
            };
            compare("foreign key", fks(&lite), fks(&pg));
            let walled = |s: &Schema| s.walled.iter().filter(|t| !on_purpose(t, "")).cloned().collect();
            compare("tenant wall", walled(&lite), walled(&pg));
            assert!(differences.is_empty(), "the backends' schemas differ:\n{}", differences.join("\n"));
        })
        .join()
        .expect("schema parity");
    }

    /// A TCP proxy between the store and the server that a test can make
    /// stall (bytes held both ways), drop (connections closed) or reset
    /// (connections aborted).
    struct Proxy {
        port: u16,
        stalled: Arc<std::sync::atomic::AtomicBool>,
        conns: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    }

    use std::sync::Arc;

    impl Proxy {
        fn to(upstream: std::net::SocketAddr) -> Proxy {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
            let (st, cs) = (stalled.clone(), conns.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                    for s in [&client, &server] {
                        if let Ok(c) = s.try_clone() {
                            cs.lock().expect("conns").push(c);
                        }
                    }
                    for (from, to) in [(client.try_clone(), server.try_clone()), (server.try_clone(), client.try_clone())] {
                        let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                        let st = st.clone();
                        std::thread::spawn(move || {
                            use std::io::{Read, Write};
                            let mut buf = [0u8; 16 * 1024];
                            loop {
                                let n = match from.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => n,
                                };
                                while st.load(std::sync::atomic::Ordering::SeqCst) {
                                    std::thread::sleep(std::time::Duration::from_millis(5));
                                }
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            });
            Proxy { port, stalled, conns }
        }

        fn stall(&self, on: bool) {
            self.stalled.store(on, std::sync::atomic::Ordering::SeqCst);
        }

        /// Ends every connection through it: closed, or reset (RST).
        fn cut(&self, reset: bool) {
            for c in self.conns.lock().expect("conns").drain(..) {
                if reset {
                    let _ = socket2::SockRef::from(&c).set_linger(Some(std::time::Duration::ZERO));
                    drop(c);
                } else {
                    let _ = c.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }

    /// Writes and reads go on while the load runs; returns each write's
    /// organisation id and whether it was acknowledged. No request may wait
    /// longer than `bound` (a request that hangs fails the test).
    async fn under_load(
        store: &crate::Store,
        bound: std::time::Duration,
        running: Arc<std::sync::atomic::AtomicBool>,
    ) -> Vec<(String, bool)> {
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let (store, running) = (store.clone(), running.clone());
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                let mut n = 0;
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = format!("org_{worker}_{n}");
                    n += 1;
                    let write = {
                        let id = id.clone();
                        store.write(move |c| new_org(c, &id))
                    };
                    let r = tokio::time::timeout(bound, write).await.unwrap_or_else(|_| panic!("a write waited more than {bound:?}"));
                    assert!(matches!(r, Ok(()) | Err(StoreError::Unavailable)), "an outage is `Unavailable`: {r:?}");
                    done.push((id, r.is_ok()));
                    let read = store.read(|c| {
                        c.platform()?;
                        crate::query_one(c, "select count(*) from organization", crate::params![], |r| r.get::<_, i64>(0))
                    });
                    let r = tokio::time::timeout(bound, read).await.unwrap_or_else(|_| panic!("a read waited more than {bound:?}"));
                    assert!(matches!(r, Ok(_) | Err(StoreError::Unavailable)), "an outage is `Unavailable`: {r:?}");
                    if r.is_err() {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                done
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("worker"));
        }
        all
    }

    /// Runs `faults` under load (every wait bounded by `wait`: a batch's
    /// read, a connection made again, a pooled reader's turn; a request
    /// waiting eight times that fails the test), then checks that the store
    /// serves again with every acknowledged write there.
    async fn survives(store: &crate::Store, wait: std::time::Duration, faults: impl std::future::Future<Output = ()>) {
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let load = tokio::spawn({
            let (store, running) = (store.clone(), running.clone());
            async move { under_load(&store, wait * 8, running).await }
        });
        faults.await;
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let done = load.await.expect("load");
        all_acknowledged_are_there(store, &done).await;
    }

    /// After the faults: the store serves again, and every acknowledged
    /// write is there.
    async fn all_acknowledged_are_there(store: &crate::Store, done: &[(String, bool)]) {
        let mut serving = false;
        for _ in 0..100 {
            if store.write(|c| new_org(c, "org_after")).await.is_ok() {
                serving = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(serving, "the store serves again once the database is back");
        let present: std::collections::HashSet<String> = store
            .read(|c| {
                c.platform()?;
                crate::query_map(c, "select organization_id from organization", crate::params![], |r| r.get::<_, String>(0))
            })
            .await
            .expect("read back")
            .into_iter()
            .collect();
        let acknowledged: Vec<&String> = done.iter().filter(|(_, ok)| *ok).map(|(id, _)| id).collect();
        let lost: Vec<&&String> = acknowledged.iter().filter(|id| !present.contains(**id)).collect();
        assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
        assert!(!acknowledged.is_empty() && acknowledged.len() < done.len(), "the load ran, and the faults failed some of it");
    }

    /// A server that stalls, or whose connections are closed or reset in
    /// the middle of batches, fails the waiting requests with `Unavailable`
    /// within the store's wait (no request hangs), loses no acknowledged
    /// write, reports no failed write as done, and is served again as soon
    /// as it is back.
    #[test]
    fn a_stalled_dropped_or_reset_database_fails_requests_in_bounded_time() {
        on_fresh_store("stalls", |_, url| async move {
            let config: tokio_postgres::Config = url.parse().expect("url");
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let proxy = Proxy::to(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
            let db = config.get_dbname().expect("database");
            let user = config.get_user().expect("user");
            let through = format!("postgres://{user}@127.0.0.1:{}/{db}?sslmode=disable", proxy.port);
            let wait = std::time::Duration::from_millis(1500);
            let store = crate::Store::open_postgres_within(&through, wait).await.expect("open through the proxy");
            let pause = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
            survives(&store, wait, async {
                pause(500).await;
                proxy.stall(true);
                pause(3_500).await;
                proxy.stall(false);
                pause(1_500).await;
                proxy.cut(false);
                pause(1_500).await;
                proxy.cut(true);
                pause(1_500).await;
                proxy.stall(true);
                pause(500).await;
                proxy.cut(true);
                proxy.stall(false);
                pause(2_000).await;
            })
            .await;
            store.close().await;
        });
    }

    /// PostgreSQL restarted (a fast shutdown, as an upgrade or a failover
    /// does) while writes go on: requests during the restart fail with
    /// `Unavailable`, none hangs, none acknowledged is lost, and the store
    /// serves again after it.
    #[test]
    fn a_database_restart_under_write_load_loses_nothing_acknowledged() {
        let Some(server) = OwnServer::start() else { return };
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let wait = std::time::Duration::from_secs(2);
            let store = crate::Store::open_postgres_within(&server.url("postgres", "owner-secret"), wait).await.expect("open");
            survives(&store, wait, async {
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                let (ctl, data, log) = (server.bin("pg_ctl"), server.path("data"), server.path("log"));
                // (Its output to the log: a server holding the pipes open
                // would keep `run` waiting.)
                tokio::task::block_in_place(|| server.run(&ctl, &["-D", &data, "-l", &log, "-m", "fast", "-w", "restart"]));
                tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
            })
            .await;
            store.close().await;
        });
    }

    /// Reads that panic give their connections back (on PostgreSQL too).
    #[test]
    fn panicking_reads_do_not_empty_the_pool() {
        on_fresh_store("panicking reads", |store, _| async move { crate::tests::panics_then_reads(&store).await });
    }

    /// The store's PostgreSQL connections: the writer's and the readers'.
    const READERS_AND_WRITER: usize = crate::READERS + crate::SCANNERS + 1;

    /// The test: a query without the tenant set returns nothing (and
    /// writes nothing); with a tenant set, only that tenant's rows exist.
    #[test]
    fn row_level_security_is_a_second_wall() {
        let Some(admin_url) = crate::testing::postgres_url() else { return };
        std::thread::spawn(move || {
            let db = TempDb::new(&admin_url);
            let mut owner = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
            migrate(&mut pipe_to(&db.url)).expect("migrate");
            migrate(&mut pipe_to(&db.url)).expect("migrating again changes nothing");
            owner
                .batch_execute(
                    "insert into organization (organization_id, slug, name, plan, status, created_at) values
                         ('org_a', 'a', 'A', 'enterprise', 'active', 1), ('org_b', 'b', 'B', 'enterprise', 'active', 1);
                     insert into incident (organization_id, incident_id, number, title, description, severity, category, status, tlp,
                                           tags, reporter_id, created_at, updated_at, version)
                         values ('org_a', 'inc_a', 1, 'A secret', '', 'high', 'other', 'open', 'amber', '[]', 'usr_x', 1, 1, 1),
                                ('org_b', 'inc_b', 1, 'B secret', '', 'high', 'other', 'open', 'amber', '[]', 'usr_y', 1, 1, 1);
                     insert into incident_search (organization_id, incident_id, search)
                         values ('org_a', 'inc_a', to_tsvector('simple', 'A secret')), ('org_b', 'inc_b', to_tsvector('simple', 'B secret'));",
                )
                .expect("rows");

            let mut app = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
            app.batch_execute(&format!("set role {APP_ROLE}")).expect("the application's role");
            let titles = |c: &mut postgres::Client| -> Vec<String> {
                c.query("select title from incident order by title", &[]).expect("select").iter().map(|r| r.get(0)).collect()
            };
            // No tenant: nothing to read, nothing to write.
            assert!(titles(&mut app).is_empty(), "no tenant set, no rows");
            let n: i64 = app.query_one("select count(*) from organization", &[]).expect("count").get(0);
            assert_eq!(n, 0);
            let denied = app.execute(
                "insert into incident (organization_id, incident_id, number, title, description, severity, category, status, tlp, \
                 tags, reporter_id, created_at, updated_at, version) \
                 values ('org_a', 'inc_x', 2, 'sneaked', '', 'low', 'other', 'open', 'amber', '[]', 'usr_x', 1, 1, 1)",
                &[],
            );
            assert!(denied.is_err(), "writes without a tenant are refused");
            assert_eq!(app.execute("update incident set title = 'pwned'", &[]).expect("update"), 0);

            // Tenant A: A's rows only, and it cannot write B's.
            let mut tx = app.transaction().expect("begin");
            tx.execute("select set_config('app.tenant_id', 'org_a', true)", &[]).expect("scope");
            let rows: Vec<String> = tx.query("select title from incident", &[]).expect("select").iter().map(|r| r.get(0)).collect();
            assert_eq!(rows, ["A secret"]);
            assert_eq!(tx.execute("update incident set title = 'pwned' where organization_id = 'org_b'", &[]).expect("update"), 0);
            let cross = tx.execute(
                "insert into comment (organization_id, comment_id, incident_id, author_id, body, created_at) \
                 values ('org_b', 'cmt_x', 'inc_b', 'usr_x', 'hi', 1)",
                &[],
            );
            assert!(cross.is_err(), "a row for another tenant fails the policy's check");
            drop(tx); // rolled back

            // Full-text matching (through the index, past the policy) keeps
            // the wall itself: the scoped tenant's rows, and only with one.
            let matched = |c: &mut postgres::Client, tenant: Option<&str>| -> (Vec<String>, i64) {
                let mut tx = c.transaction().expect("begin");
                if let Some(t) = tenant {
                    tx.execute("select set_config('app.tenant_id', $1, true)", &[&t]).expect("scope");
                }
                let ids = tx
                    .query("select incident_id from search_match(to_tsquery('simple', 'secret'), null) order by 1", &[])
                    .expect("match")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let n: i64 = tx.query_one("select search_count(to_tsquery('simple', 'secret'), 10)", &[]).expect("count").get(0);
                (ids, n)
            };
            assert_eq!(matched(&mut app, Some("org_a")), (vec!["inc_a".to_owned()], 1));
            assert_eq!(matched(&mut app, Some("org_b")), (vec!["inc_b".to_owned()], 1));
            assert_eq!(matched(&mut app, None), (vec![], 0), "no tenant, no match");
            assert_eq!(matched(&mut app, Some("*")), (vec![], 0), "no platform-wide search");
            let excluded: Vec<String> = {
                let mut tx = app.transaction().expect("begin");
                tx.execute("select set_config('app.tenant_id', 'org_a', true)", &[]).expect("scope");
                tx.query("select incident_id from search_match(to_tsquery('simple', 'secret'), to_tsquery('simple', 'a'))", &[])
                    .expect("match")
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            };
            assert!(excluded.is_empty(), "exclusions apply: {excluded:?}");

            // The scope ends with its transaction.
            assert!(titles(&mut app).is_empty());
            // The platform scope sees every tenant (sign-in, operators).
            let mut tx = app.transaction().expect("begin");
            tx.execute("select set_config('app.tenant_id', '*', true)", &[]).expect("scope");
            let n: i64 = tx.query_one("select count(*) from incident", &[]).expect("count").get(0);
            assert_eq!(n, 2);
            tx.commit().expect("commit");
            // Every table that holds a tenant column has the wall, with a policy.
            let bare: Vec<String> = owner
                .query(
                    "select c.relname::text from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attname = 'organization_id' \
                     where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace \
                     and (not c.relrowsecurity or not exists (select 1 from pg_policy p where p.polrelid = c.oid))",
                    &[],
                )
                .expect("catalog")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(bare.is_empty(), "tables with tenant rows but no row-level security: {bare:?}");
            // The application's role cannot switch the wall off.
            assert!(app.batch_execute("alter table incident disable row level security").is_err());
            let owner_titles = titles(&mut owner);
            assert_eq!(owner_titles, ["A secret", "B secret"], "nothing was changed through the wall");
        })
        .join()
        .expect("PostgreSQL row-level security");
    }
}
