//! The time source. Production reads the system clock; tests move it forward
//! to cross windows (login lockouts, expiries) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ironcase_domain::Timestamp;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    /// When non-zero, time stands still at this instant (tests).
    frozen_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    pub fn now(&self) -> Timestamp {
        let frozen = self.frozen_ms.load(Ordering::Relaxed);
        if frozen != 0 {
            return Timestamp(frozen);
        }
        let sys = time::OffsetDateTime::now_utc();
        Timestamp(Timestamp::from_datetime(sys).0 + self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance_secs(&self, secs: i64) {
        if self.frozen_ms.load(Ordering::Relaxed) != 0 {
            self.frozen_ms.fetch_add(secs * 1000, Ordering::Relaxed);
        } else {
            self.offset_ms.fetch_add(secs * 1000, Ordering::Relaxed);
        }
    }

    /// Stops this clock (and every clone) at the current instant, so that a
    /// test's timing does not depend on how fast the machine runs it.
    pub fn freeze(&self) {
        let now = self.now().0;
        self.frozen_ms.store(now, Ordering::Relaxed);
    }
}
