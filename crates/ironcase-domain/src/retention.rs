//! How long an organisation keeps each kind of its data.

use crate::incident::string_enum;

string_enum!(
    /// A kind of data a retention policy applies to: closed (or deleted)
    /// incidents, counted from their closing, with their comments, timeline,
    /// sightings and evidence; evidence files alone (the record stays,
    /// marked removed); alerts; timeline and outbox events; audit entries
    /// (only up to a signed checkpoint, so what remains still verifies);
    /// ended sessions.
    RetentionKind {
        ClosedIncidents = "closed_incidents",
        Evidence = "evidence",
        Alerts = "alerts",
        Events = "events",
        Audit = "audit",
        Sessions = "sessions",
    }
);

impl RetentionKind {
    /// The days a policy of this kind may keep data: audit entries at least
    /// 90 days (a year is common), everything at most 100 years.
    pub fn days(self) -> std::ops::RangeInclusive<i64> {
        match self {
            RetentionKind::Audit => 90..=36_500,
            _ => 1..=36_500,
        }
    }
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
