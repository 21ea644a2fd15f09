//! Alerts: what detection tools (SIEM, EDR, e-mail gateways) send before a
//! person decides it is an incident.

use crate::incident::string_enum;

string_enum!(
    /// Where an alert is in triage: `new` until someone looks, `promoted`
    /// once it became (or joined) an incident, `dismissed` with a reason,
    /// `snoozed` until a time.
    AlertStatus { New = "new", Acknowledged = "acknowledged", Promoted = "promoted", Dismissed = "dismissed", Snoozed = "snoozed" }
);

impl AlertStatus {
    /// Whether later alerts with the same dedup key may still group under it.
    pub fn open(self) -> bool {
        matches!(self, AlertStatus::New | AlertStatus::Acknowledged | AlertStatus::Snoozed)
    }
}
