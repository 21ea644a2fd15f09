//! Personal data breaches (GDPR Art. 33): the regulator must be told within
//! 72 hours of the organisation becoming aware; warnings at 48 and 66 hours.

use crate::incident::string_enum;
use crate::Timestamp;

/// Hours from awareness to the regulator's deadline.
pub const DEADLINE_HOURS: i64 = 72;

const HOUR_MS: i64 = 3_600_000;

string_enum!(
    /// Where a breach stands: the regulator still to be told (before the
    /// deadline, or past it), or told.
    BreachState { Open = "open", Overdue = "overdue", Notified = "notified" }
);

string_enum!(
    /// A warning raised about a breach not yet notified.
    BreachStage { Hours48 = "48h", Hours66 = "66h", Overdue = "overdue" }
);

impl BreachStage {
    /// How many warnings come before and with this one (stored as `warned`).
    pub fn rank(self) -> i64 {
        match self {
            BreachStage::Hours48 => 1,
            BreachStage::Hours66 => 2,
            BreachStage::Overdue => 3,
        }
    }
}

pub fn deadline(aware_at: Timestamp) -> Timestamp {
    Timestamp(aware_at.0 + DEADLINE_HOURS * HOUR_MS)
}

/// The latest warning due at `now` for a breach known since `aware_at`.
pub fn stage(aware_at: Timestamp, now: Timestamp) -> Option<BreachStage> {
    let hours = (now.0 - aware_at.0) / HOUR_MS;
    match hours {
        h if h >= DEADLINE_HOURS => Some(BreachStage::Overdue),
        h if h >= 66 => Some(BreachStage::Hours66),
        h if h >= 48 => Some(BreachStage::Hours48),
        _ => None,
    }
}

/// When the first warning falls due: the job looks at breaches known since
/// before `now` minus this.
pub const FIRST_WARNING_MS: i64 = 48 * HOUR_MS;

pub fn state(aware_at: Timestamp, notified_at: Option<Timestamp>, now: Timestamp) -> BreachState {
    match notified_at {
        Some(_) => BreachState::Notified,
        None if now >= deadline(aware_at) => BreachState::Overdue,
        None => BreachState::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_fall_at_48_66_and_72_hours() {
        let t0 = Timestamp(1_000_000);
        let at = |h: i64, m: i64| Timestamp(t0.0 + h * HOUR_MS + m * 60_000);
        assert_eq!(stage(t0, at(47, 59)), None);
        assert_eq!(stage(t0, at(48, 0)), Some(BreachStage::Hours48));
        assert_eq!(stage(t0, at(65, 59)), Some(BreachStage::Hours48));
        assert_eq!(stage(t0, at(66, 0)), Some(BreachStage::Hours66));
        assert_eq!(stage(t0, at(72, 0)), Some(BreachStage::Overdue));
        assert_eq!(state(t0, None, at(71, 59)), BreachState::Open);
        assert_eq!(state(t0, None, at(72, 0)), BreachState::Overdue);
        assert_eq!(state(t0, Some(at(80, 0)), at(90, 0)), BreachState::Notified);
        assert_eq!(deadline(t0), at(72, 0));
    }
}
