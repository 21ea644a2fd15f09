//! The time source. Production reads the system clock; tests move it forward
//! to cross windows (login lockouts, expiries) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ironcase_domain::Timestamp;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> Timestamp {
        let sys = time::OffsetDateTime::now_utc();
        Timestamp(Timestamp::from_datetime(sys).0 + self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::Relaxed);
    }
}
