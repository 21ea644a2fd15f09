//! An in-process rate limiter: GCRA (the generic cell rate algorithm) per key,
//! one timestamp of state per key, sharded to keep lock hold times short, and
//! bounded in memory: a key whose allowance is full again carries no state and
//! is dropped first, so a flood of distinct keys cannot grow it without bound.

use std::collections::HashMap;
use std::sync::Mutex;

use ironcase_domain::Timestamp;

/// `burst` requests per `period_ms`, refilled evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub period_ms: i64,
}

impl Quota {
    pub const fn per_minute(n: u32) -> Quota {
        Quota { burst: n, period_ms: 60_000 }
    }

    pub const fn per_day(n: u32) -> Quota {
        Quota { burst: n, period_ms: 86_400_000 }
    }

    pub(crate) fn interval(self) -> i64 {
        (self.period_ms / i64::from(self.burst.max(1))).max(1)
    }
}

/// The answer for one request, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the allowance is full again.
    pub reset_secs: i64,
    /// Seconds to wait, when refused.
    pub retry_after_secs: Option<i64>,
}

const SHARDS: usize = 16;

pub struct Limiter {
    /// Names its keys where they are shared (Redis).
    name: &'static str,
    quota: Quota,
    max_keys_per_shard: usize,
    shards: Vec<Mutex<HashMap<String, i64>>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("quota", &self.quota).finish_non_exhaustive()
    }
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap, and the keys are not attacker-chosen hash-flood material
    // for a std HashMap (which is randomly seeded anyway).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % SHARDS
}

impl Limiter {
    /// A limiter keeping at most `max_keys` keys.
    pub fn new(quota: Quota, max_keys: usize) -> Limiter {
        Limiter {
            name: "local",
            quota,
            max_keys_per_shard: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Names the limiter: its keys are `name:key` where nodes share them.
    pub fn named(mut self, name: &'static str) -> Limiter {
        self.name = name;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Counts one request for `key` at `now` and says whether it may pass.
    pub fn check(&self, key: &str, now: Timestamp) -> Decision {
        self.check_with(key, self.quota, now)
    }

    /// As [`Limiter::check`], with the quota of this key (plans differ).
    pub fn check_with(&self, key: &str, q: Quota, now: Timestamp) -> Decision {
        let Ok(mut map) = self.shards[shard_of(key)].lock() else {
            // A poisoned shard must not take the service down: let it pass.
            return Decision { allowed: true, limit: q.burst, remaining: q.burst, reset_secs: 0, retry_after_secs: None };
        };
        let (d, new_tat) = gcra(map.get(key).copied(), q, now.0);
        if let Some(new_tat) = new_tat {
            if !map.contains_key(key) && map.len() >= self.max_keys_per_shard {
                evict(&mut map, now.0, self.max_keys_per_shard);
            }
            map.insert(key.to_owned(), new_tat);
        }
        d
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One GCRA step: from the stored theoretical arrival time (when the
/// allowance is full again; `None` when nothing is stored), the decision and,
/// when the request passes, the time to store. The Redis script in
/// `shared.rs` does the same arithmetic.
pub(crate) fn gcra(tat: Option<i64>, q: Quota, now: i64) -> (Decision, Option<i64>) {
    let t = q.interval();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + t;
    if new_tat - now > q.period_ms {
        let retry_ms = new_tat - q.period_ms - now;
        let d = Decision {
            allowed: false,
            limit: q.burst,
            remaining: 0,
            reset_secs: ceil_secs(tat - now),
            retry_after_secs: Some(ceil_secs(retry_ms).max(1)),
        };
        return (d, None);
    }
    let remaining = ((q.period_ms - (new_tat - now)) / t).clamp(0, i64::from(q.burst)) as u32;
    (Decision { allowed: true, limit: q.burst, remaining, reset_secs: ceil_secs(new_tat - now), retry_after_secs: None }, Some(new_tat))
}

fn ceil_secs(ms: i64) -> i64 {
    (ms.max(0) + 999) / 1000
}

/// Makes room in a full shard: first every key whose allowance is full again
/// (no state lost), then, while still full, the key closest to full (the one
/// that loses least by being forgotten).
fn evict(map: &mut HashMap<String, i64>, now: i64, max: usize) {
    map.retain(|_, tat| *tat > now);
    while map.len() >= max {
        let Some(k) = map.iter().min_by_key(|(_, tat)| **tat).map(|(k, _)| k.clone()) else { break };
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = Limiter::new(Quota { burst: 5, period_ms: 60_000 }, 1000);
        let t0 = Timestamp(1_000_000);
        for i in 0..5 {
            let d = l.check("a", t0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
            assert_eq!(d.limit, 5);
        }
        let d = l.check("a", t0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after_secs, Some(12), "one slot refills every 12 s");
        // Another key is independent.
        assert!(l.check("b", t0).allowed);
        // One interval later, exactly one more passes.
        let t1 = Timestamp(t0.0 + 12_000);
        assert!(l.check("a", t1).allowed);
        assert!(!l.check("a", t1).allowed);
        // After a full period, the whole burst is back.
        let t2 = Timestamp(t1.0 + 60_000);
        for _ in 0..5 {
            assert!(l.check("a", t2).allowed);
        }
        assert!(!l.check("a", t2).allowed);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let l = Limiter::new(Quota::per_minute(10), 1_600);
        let now = Timestamp(5_000_000);
        for i in 0..100_000 {
            l.check(&format!("198.51.{}.{}", i / 256, i % 256), now);
        }
        assert!(l.len() <= 1_600 + SHARDS, "{} keys kept", l.len());
        // A key that is being limited right now survives the flood of idle ones
        // arriving later.
        let later = Timestamp(now.0 + 120_000);
        for _ in 0..10 {
            l.check("hot", later);
        }
        assert!(!l.check("hot", later).allowed);
        for i in 0..50_000 {
            l.check(&format!("10.0.{}.{}", i / 256, i % 256), Timestamp(later.0 + 61_000));
        }
        assert!(l.len() <= 1_600 + SHARDS);
    }
}
