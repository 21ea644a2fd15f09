//! A node's memory of the sessions behind the access tokens it has checked,
//! so that most requests authenticate without a database read. Kept with
//! Redis, which tells every node at once that it must forget, and with the
//! embedded store, which has one node (see the last point):
//!
//! - Every write that changes what a session may do (a session revoked, a
//!   role changed, a member removed, an organisation's status set) calls
//!   `session::note_auth_change` in its transaction: a count in the database
//!   (`auth_epoch`) moves with it, and after the commit, before the write's
//!   caller is answered, the node that made it forgets what it remembers and
//!   increments a count in Redis.
//! - Every request reads Redis's count first. A remembered session is used
//!   only if it was looked up under the same count (and the same Redis
//!   incarnation as this node sees it: no outage since), so a change answered
//!   on any node is seen by the next request on every node.
//! - While Redis does not answer, nothing is remembered and every request
//!   reads the database (fail closed). A node that could not increment Redis's
//!   count (Redis unreachable from it alone) still moved the database's: every
//!   node reads that once a second and forgets everything when it moves.
//! - Only sessions that would be let in are remembered, never longer than
//!   [`MAX_AGE`]; one that looks expired is read again (a refresh moves the
//!   expiry forward without a notice).
//! - With the embedded store and no Redis, the one node's own count of the
//!   changes it committed stands in for Redis's ([`SessionCache::changed_here`]):
//!   every change goes through it. A change written by another process into
//!   the same file (a CLI command) is found by the poll of the database's
//!   count within a second. PostgreSQL without Redis remembers nothing:
//!   several nodes may share it with nothing to tell them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ironcase_domain::{OrgId, SessionId, Timestamp};
use ironcase_store::session::SessionAuth;

/// Sessions remembered at most (all are forgotten when it is reached).
const MAX_ENTRIES: usize = 100_000;
/// The longest a looked-up session is used without being read again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);
/// How often the database's count of changes is read.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);

/// What a looked-up session is valid under: Redis's count of changes, this
/// node's count of Redis outages, and the database's count as last polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) redis: i64,
    pub(crate) outages: u64,
    pub(crate) db: i64,
}

struct Entry {
    auth: SessionAuth,
    tag: Tag,
    at: Instant,
}

pub(crate) struct SessionCache {
    entries: Mutex<HashMap<SessionId, Entry>>,
    /// The database's count of changes as last polled; -1 before the first.
    db_epoch: AtomicI64,
    /// Changes committed on this node (the embedded store's stand-in for
    /// Redis's count).
    local: AtomicI64,
    /// Sessions of access tokens found here, and read from the database.
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache {
            entries: Mutex::new(HashMap::new()),
            db_epoch: AtomicI64::new(-1),
            local: AtomicI64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

/// Whether a session as read would let its holder in as a member of `org`.
fn admits(a: &SessionAuth, org: OrgId, now: Timestamp) -> bool {
    let s = &a.session;
    s.revoked_at.is_none() && s.expires_at > now && s.org == org && a.role.is_some() && a.org_status == "active"
}

impl SessionCache {
    /// The database's count as last polled.
    pub(crate) fn db_epoch(&self) -> i64 {
        self.db_epoch.load(Ordering::Acquire)
    }

    /// The poll read the database's count: a new value forgets everything
    /// (and entries made under the old one no longer match).
    pub(crate) fn polled(&self, epoch: i64) {
        if self.db_epoch.swap(epoch, Ordering::AcqRel) != epoch {
            self.clear();
        }
    }

    /// The session `id`, if it was looked up under `tag` recently and lets
    /// its holder into `org` now.
    pub(crate) fn get(&self, id: SessionId, org: OrgId, tag: Tag, now: Timestamp) -> Option<SessionAuth> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(&id)?;
        (e.tag == tag && e.at.elapsed() < MAX_AGE && admits(&e.auth, org, now)).then(|| e.auth.clone())
    }

    /// Remembers a session read from the database under `tag` (read before
    /// the database was), if it lets its holder in.
    pub(crate) fn put(&self, id: SessionId, org: OrgId, tag: Tag, auth: &SessionAuth, now: Timestamp) {
        if !admits(auth, org, now) {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(id, Entry { auth: auth.clone(), tag, at: Instant::now() });
        }
    }

    /// What a session looked up now is valid under, with the embedded store.
    pub(crate) fn local_tag(&self) -> Tag {
        Tag { redis: self.local.load(Ordering::Acquire), outages: 0, db: self.db_epoch() }
    }

    /// A change to what sessions may do committed on this node (the
    /// embedded store): what was looked up before it is stale.
    pub(crate) fn changed_here(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
        self.clear();
    }

    /// Forgets every session.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironcase_domain::{Role, UserId};
    use ironcase_store::session::SessionRow;

    fn auth(org: OrgId, revoked: bool) -> SessionAuth {
        SessionAuth {
            session: SessionRow {
                id: SessionId::new(),
                org,
                user: UserId::new(),
                created_at: Timestamp(0),
                expires_at: Timestamp(1_000),
                revoked_at: revoked.then_some(Timestamp(5)),
            },
            role: Some(Role::Analyst),
            is_operator: false,
            mfa_pending: false,
            org_status: "active".into(),
            authenticated_at: Timestamp(0),
            policy: Default::default(),
            ip_allowlist: Default::default(),
            custom_role: None,
            audit_reads: false,
        }
    }

    #[test]
    fn a_session_is_used_only_under_the_tag_it_was_read_under() {
        let c = SessionCache::default();
        let org = OrgId::new();
        let a = auth(org, false);
        let id = a.session.id;
        c.polled(7);
        let tag = Tag { redis: 3, outages: 0, db: c.db_epoch() };
        c.put(id, org, tag, &a, Timestamp(10));
        assert!(c.get(id, org, tag, Timestamp(10)).is_some());
        for other in [Tag { redis: 4, ..tag }, Tag { outages: 1, ..tag }, Tag { db: 8, ..tag }] {
            assert!(c.get(id, org, other, Timestamp(10)).is_none(), "{other:?}");
        }
        assert!(c.get(id, OrgId::new(), tag, Timestamp(10)).is_none(), "another organisation");
        assert!(c.get(id, org, tag, Timestamp(1_000)).is_none(), "looks expired: read again");
        // A poll that finds the database's count moved forgets everything.
        c.polled(7);
        assert!(c.get(id, org, tag, Timestamp(10)).is_some(), "same count: kept");
        c.polled(8);
        assert!(c.get(id, org, tag, Timestamp(10)).is_none());
    }

    #[test]
    fn sessions_that_would_be_refused_are_not_remembered() {
        let c = SessionCache::default();
        let org = OrgId::new();
        let tag = Tag { redis: 0, outages: 0, db: 0 };
        let revoked = auth(org, true);
        c.put(revoked.session.id, org, tag, &revoked, Timestamp(10));
        assert!(c.entries.lock().map(|e| e.is_empty()).unwrap_or(false));
        let mut no_role = auth(org, false);
        no_role.role = None;
        c.put(no_role.session.id, org, tag, &no_role, Timestamp(10));
        let mut suspended = auth(org, false);
        suspended.org_status = "suspended".into();
        c.put(suspended.session.id, org, tag, &suspended, Timestamp(10));
        assert!(c.entries.lock().map(|e| e.is_empty()).unwrap_or(false));
    }
}
