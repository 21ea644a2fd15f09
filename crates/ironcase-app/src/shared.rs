//! What nodes share through Redis when one is configured: rate-limit state
//! (GCRA as one atomic script per request, never read-then-write), wake-ups
//! for live updates (pub/sub), and the count of changes to what sessions may
//! do (see `sessions.rs`). Redis holds nothing that is not also
//! safe to lose: while it is unreachable a node limits with its own in-process
//! limiter, streams catch up by polling the event table once a second, and a
//! background task reconnects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use ironcase_domain::Timestamp;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::live::Hub;
use crate::ratelimit::{self, Decision, Quota};

/// The pub/sub channel that carries wake-ups.
const WAKE_CHANNEL: &str = "ironcase:wake";
/// The count of changes to what sessions may do.
const AUTH_EPOCH: &str = "ironcase:auth_epoch";
/// How long a command may take before the node stops waiting for Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the connection is checked (and re-made).
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// GCRA over several keys at once, in order, stopping at the first refusal.
/// KEYS: the limit keys. ARGV: now, then (interval, period) per key, all in
/// milliseconds. Returns, per key evaluated, its theoretical arrival time
/// before this request (the caller recomputes the same decision from it).
/// An allowed request stores the new time with an expiry at which the
/// allowance is full again, so idle keys vanish by themselves.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  out[i] = tat
  local new_tat = tat + interval
  if new_tat - now > period then
    return out
  end
  redis.call('SET', key, new_tat, 'PX', new_tat - now + 1000)
end
return out
";

/// A connection URL (Redis, PostgreSQL), which may carry a password: never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

/// The Redis URL.
pub type RedisUrl = SecretUrl;

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl([redacted])")
    }
}

pub struct Redis {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    healthy: AtomicBool,
    /// Times Redis stopped answering: what this node remembers under one
    /// count is not trusted under the next (a restarted Redis starts again
    /// from nothing, and notices sent meanwhile were lost).
    outages: AtomicU64,
    /// This node, so that it can ignore its own wake-ups.
    node: String,
    gcra: redis::Script,
}

impl std::fmt::Debug for Redis {
    // The URL may carry a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("healthy", &self.healthy()).finish_non_exhaustive()
    }
}

impl Redis {
    /// Parses the URL; connects later, in the background.
    pub fn new(url: &RedisUrl) -> Result<Arc<Redis>, String> {
        let client = redis::Client::open(url.expose()).map_err(|_| "not a valid redis:// URL".to_owned())?;
        Ok(Arc::new(Redis {
            client,
            conn: Mutex::new(None),
            healthy: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            node: uuid::Uuid::now_v7().simple().to_string(),
            gcra: redis::Script::new(GCRA),
        }))
    }

    /// Whether Redis answered the last check.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn conn(&self) -> Option<ConnectionManager> {
        if !self.healthy() {
            return None;
        }
        self.conn.lock().ok().and_then(|c| c.clone())
    }

    fn failed(&self, what: &str, e: &redis::RedisError) {
        self.outages.fetch_add(1, Ordering::AcqRel);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, what, "Redis is unreachable: limiting locally until it is back");
        }
    }

    /// Counts one request against each `(key, quota)` in order, stopping at
    /// the first refusal. `None`: Redis did not answer; use the local limiter.
    pub(crate) async fn check(&self, checks: &[(String, Quota)], now: Timestamp) -> Option<Vec<Decision>> {
        let mut conn = self.conn()?;
        let mut inv = self.gcra.prepare_invoke();
        inv.arg(now.0);
        for (key, q) in checks {
            // Hashed: login keys hold e-mail and source addresses, which have
            // no business sitting in a cache in the clear.
            inv.key(format!("ironcase:rl:{}", &crate::crypto::sha256_hex(key)[..32]));
            inv.arg(q.interval()).arg(q.period_ms);
        }
        let tats: Vec<i64> = match inv.invoke_async(&mut conn).await {
            Ok(t) => t,
            Err(e) => {
                self.failed("rate limit", &e);
                return None;
            }
        };
        Some(tats.iter().zip(checks).map(|(tat, (_, q))| ratelimit::gcra(Some(*tat), *q, now.0).0).collect())
    }

    /// The count of changes to what sessions may do, and this node's count
    /// of outages; `None` while Redis does not answer (nothing remembered may
    /// then be used).
    pub(crate) async fn auth_epoch(&self) -> Option<(i64, u64)> {
        let outages = self.outages.load(Ordering::Acquire);
        let mut conn = self.conn()?;
        let r: redis::RedisResult<Option<i64>> = redis::cmd("GET").arg(AUTH_EPOCH).query_async(&mut conn).await;
        match r {
            // An outage that began meanwhile: not to be trusted.
            Ok(Some(n)) if self.outages.load(Ordering::Acquire) == outages && self.healthy() => Some((n, outages)),
            Ok(Some(_)) => None,
            // A new (or restarted) Redis: the count starts from a random
            // value, never from one a node may have remembered sessions under.
            Ok(None) => {
                let start = i64::from(rand::random::<u32>()) << 16;
                let _: redis::RedisResult<Option<String>> =
                    redis::cmd("SET").arg(AUTH_EPOCH).arg(start).arg("NX").query_async(&mut conn).await;
                None
            }
            Err(e) => {
                self.failed("session check", &e);
                None
            }
        }
    }

    /// Increments the count of changes to what sessions may do; false when
    /// Redis did not answer (the database's count still moved).
    pub(crate) async fn bump_auth_epoch(&self) -> bool {
        let Some(mut conn) = self.conn.lock().ok().and_then(|c| c.clone()) else { return false };
        let r: redis::RedisResult<i64> = redis::cmd("INCR").arg(AUTH_EPOCH).query_async(&mut conn).await;
        match r {
            Ok(_) => true,
            Err(e) => {
                self.failed("session change notice", &e);
                false
            }
        }
    }

    /// Tells the other nodes that events were committed.
    pub(crate) async fn publish_wake(&self) {
        let Some(mut conn) = self.conn() else { return };
        let r: redis::RedisResult<i64> = redis::cmd("PUBLISH").arg(WAKE_CHANNEL).arg(&self.node).query_async(&mut conn).await;
        if let Err(e) = r {
            self.failed("publish", &e);
        }
    }

    /// Keeps the connection made and checked, and wakes `hub` when another
    /// node says it wrote events. Runs until the hub closes.
    pub(crate) async fn run(self: Arc<Self>, hub: Arc<Hub>) {
        let mut closed = hub.closed_signal();
        tokio::select! {
            _ = self.clone().keep_connected() => {},
            _ = self.listen(&hub) => {},
            _ = closed.changed() => {},
        }
    }

    async fn keep_connected(self: Arc<Self>) {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        loop {
            let current = self.conn.lock().ok().and_then(|c| c.clone());
            match current {
                None => match self.client.get_connection_manager_with_config(config.clone()).await {
                    Ok(c) => {
                        if let Ok(mut g) = self.conn.lock() {
                            *g = Some(c);
                        }
                        continue;
                    }
                    Err(e) => self.failed("connect", &e),
                },
                Some(mut c) => {
                    let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
                    match r {
                        Ok(_) => {
                            if !self.healthy.swap(true, Ordering::Relaxed) {
                                tracing::info!("Redis is reachable: rate limits are shared across nodes");
                            }
                        }
                        Err(e) => self.failed("ping", &e),
                    }
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    async fn listen(&self, hub: &Hub) {
        loop {
            if let Ok(Ok(mut ps)) = tokio::time::timeout(Duration::from_secs(2), self.client.get_async_pubsub()).await {
                if ps.subscribe(WAKE_CHANNEL).await.is_ok() {
                    // Whatever was written while nobody could say so.
                    hub.wake();
                    let mut messages = ps.into_on_message();
                    while let Some(m) = messages.next().await {
                        let from: String = m.get_payload().unwrap_or_default();
                        if from != self.node {
                            hub.wake();
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
