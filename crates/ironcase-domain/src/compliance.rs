//! Compliance reports: the checks this platform bears on, judged from an
//! organisation's live figures, and how each framework's controls map onto
//! them. Pure: the figures are read by the store, the rules live here.

use serde::Serialize;
use serde_json::json;

use crate::incident::string_enum;
use crate::retention::RetentionKind;

string_enum!(
    /// A framework a report is made for.
    Framework { Soc2 = "soc2", Iso27001 = "iso27001", NistCsf = "nist-csf", Gdpr = "gdpr", Ccpa = "ccpa" }
);

string_enum!(
    /// Where a control (or a check) stands.
    ControlStatus { Met = "met", Partly = "partly", NotMet = "not_met", NotApplicable = "not_applicable" }
);

impl ControlStatus {
    /// How bad: a control is as bad as its worst applicable check.
    fn rank(self) -> u8 {
        match self {
            ControlStatus::NotApplicable => 0,
            ControlStatus::Met => 1,
            ControlStatus::Partly => 2,
            ControlStatus::NotMet => 3,
        }
    }
}

/// Everything the checks look at, read from the organisation's live data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub members: i64,
    pub members_with_mfa: i64,
    pub mfa_required: bool,
    pub sso_configured: bool,
    pub sso_required: bool,
    pub owners_and_admins: i64,
    pub custom_roles: i64,
    /// Role and membership changes audited in the last 90 days.
    pub role_changes_90d: i64,
    pub ip_allowlist: bool,
    pub session_policy_custom: bool,
    pub api_keys_live: i64,
    pub api_keys_without_expiry: i64,
    pub api_keys_unused_90d: i64,
    pub audit_entries: i64,
    pub checkpoint_size: Option<i64>,
    pub checkpoint_age_secs: Option<i64>,
    /// The server's checkpoint settings (entries, seconds).
    pub checkpoint_every: i64,
    pub checkpoint_interval_secs: i64,
    pub audit_reads: bool,
    pub data_keys: i64,
    pub oldest_data_key_days: Option<i64>,
    /// Each kind with a policy, and its days.
    pub retention: Vec<(RetentionKind, i64)>,
    pub legal_holds: i64,
    /// Incidents closed in the last 90 days, and their mean times (seconds).
    pub closed_90d: i64,
    pub mean_acknowledge_secs: Option<i64>,
    pub mean_contain_secs: Option<i64>,
    pub mean_resolve_secs: Option<i64>,
    /// Live incidents not yet resolved, and those past their severity's
    /// resolution target ([`RESOLVE_TARGET_DAYS`]).
    pub open: i64,
    pub open_past_target: i64,
    pub breaches_open: i64,
    pub breaches_overdue: i64,
    pub breaches_notified_on_time: i64,
    pub breaches_notified_late: i64,
    /// Data-subject requests made, answered after their 30 days, and still
    /// open past them.
    pub dsr_requests: i64,
    pub dsr_answered_late: i64,
    pub dsr_open_overdue: i64,
}

/// Days to resolve an incident, by severity (low, medium, high, critical).
pub const RESOLVE_TARGET_DAYS: [(crate::Severity, i64); 4] =
    [(crate::Severity::Low, 90), (crate::Severity::Medium, 30), (crate::Severity::High, 7), (crate::Severity::Critical, 3)];

/// One check's verdict, with the figures behind it and what would meet it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: ControlStatus,
    pub figures: serde_json::Value,
    pub action: Option<String>,
}

/// A framework's control: its own id and title, and its checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    pub status: ControlStatus,
    pub checks: Vec<Check>,
}

fn pct(n: i64, d: i64) -> i64 {
    if d == 0 {
        100
    } else {
        n * 100 / d
    }
}

fn check(id: &'static str, f: &Figures) -> Check {
    use ControlStatus::*;
    let c = |status, figures, action: Option<&str>| Check { check: id, status, figures, action: action.map(str::to_owned) };
    match id {
        "mfa" => {
            let share = pct(f.members_with_mfa, f.members);
            let figures =
                json!({ "members": f.members, "with_mfa": f.members_with_mfa, "share_percent": share, "required": f.mfa_required });
            match (f.mfa_required || share == 100, share >= 50) {
                (true, _) => c(Met, figures, None),
                (false, true) => c(Partly, figures, Some("require a second factor for every member (organization mfa-policy)")),
                _ => c(NotMet, figures, Some("require a second factor for every member (organization mfa-policy)")),
            }
        }
        "sso" => {
            let figures = json!({ "configured": f.sso_configured, "required": f.sso_required });
            match (f.sso_configured, f.sso_required) {
                (true, true) => c(Met, figures, None),
                (true, false) => c(Partly, figures, Some("require single sign-on for members")),
                _ if f.mfa_required => c(Partly, figures, Some("connect the organisation's identity provider (OpenID Connect)")),
                _ => c(NotMet, figures, Some("connect the organisation's identity provider, or require a second factor")),
            }
        }
        "privileged_access" => {
            let figures = json!({
                "members": f.members, "owners_and_admins": f.owners_and_admins, "custom_roles": f.custom_roles,
                "role_changes_90d": f.role_changes_90d,
            });
            if f.owners_and_admins <= (f.members / 5).max(2) {
                c(Met, figures, None)
            } else {
                c(Partly, figures, Some("give fewer members the owner or admin role; use narrower roles"))
            }
        }
        "network_and_sessions" => {
            let figures = json!({ "ip_allowlist": f.ip_allowlist, "session_policy": f.session_policy_custom });
            if f.ip_allowlist {
                c(Met, figures, None)
            } else {
                c(Partly, figures, Some("limit the addresses members and keys may call from (organization ip-allowlist)"))
            }
        }
        "api_keys" => {
            let figures = json!({
                "live": f.api_keys_live, "without_expiry": f.api_keys_without_expiry, "unused_90d": f.api_keys_unused_90d,
            });
            match (f.api_keys_live, f.api_keys_without_expiry + f.api_keys_unused_90d) {
                (0, _) => c(NotApplicable, figures, None),
                (_, 0) => c(Met, figures, None),
                _ => c(Partly, figures, Some("give every API key an expiry; revoke those unused for 90 days")),
            }
        }
        "audit_integrity" => {
            let unsigned = f.audit_entries - f.checkpoint_size.unwrap_or(0);
            let figures = json!({
                "entries": f.audit_entries, "signed_checkpoint_size": f.checkpoint_size,
                "checkpoint_age_secs": f.checkpoint_age_secs, "unsigned_entries": unsigned,
            });
            let fresh = f.checkpoint_age_secs.is_some_and(|a| a <= 2 * f.checkpoint_interval_secs) || unsigned == 0;
            match (f.audit_entries, f.checkpoint_size) {
                (0, _) => c(NotApplicable, figures, None),
                (_, None) => c(NotMet, figures, Some("run the server's checkpoint job: no signed checkpoint yet")),
                _ if fresh && unsigned <= f.checkpoint_every => c(Met, figures, None),
                _ => c(Partly, figures, Some("the latest signed checkpoint is behind the log: check the checkpoint job")),
            }
        }
        "read_auditing" => {
            let figures = json!({ "audit_reads": f.audit_reads });
            if f.audit_reads {
                c(Met, figures, None)
            } else {
                c(Partly, figures, Some("record every read of incidents, evidence and indicators (organization audit-reads)"))
            }
        }
        "encryption" => {
            let figures = json!({
                "evidence_encrypted": true, "data_keys": f.data_keys, "oldest_data_key_days": f.oldest_data_key_days,
            });
            if f.oldest_data_key_days.is_some_and(|d| d > 365) {
                c(Partly, figures, Some("rotate the organisation's data key: the oldest is over a year old"))
            } else {
                c(Met, figures, None)
            }
        }
        "backup" => c(
            NotApplicable,
            json!({ "recorded_backups": 0 }),
            Some("the platform does not record backups and restore tests yet; keep their evidence outside it"),
        ),
        "incident_response" => {
            let figures = json!({
                "closed_90d": f.closed_90d, "mean_acknowledge_secs": f.mean_acknowledge_secs,
                "mean_contain_secs": f.mean_contain_secs, "mean_resolve_secs": f.mean_resolve_secs,
                "open": f.open, "open_past_target": f.open_past_target,
                "resolve_target_days": RESOLVE_TARGET_DAYS.iter().map(|(s, d)| (s.as_str(), *d)).collect::<std::collections::BTreeMap<_, _>>(),
            });
            let action = Some(format!("resolve the {} open incidents past their target", f.open_past_target));
            match (f.open + f.closed_90d, f.open_past_target) {
                (0, _) => c(NotApplicable, figures, None),
                (_, 0) => c(Met, figures, None),
                (_, late) if late * 10 <= f.open => c(Partly, figures, action.as_deref()),
                _ => c(NotMet, figures, action.as_deref()),
            }
        }
        "retention" => {
            let has = |k: RetentionKind| f.retention.iter().any(|(x, _)| *x == k);
            let figures = json!({
                "policies": f.retention.iter().map(|(k, d)| (k.as_str(), *d)).collect::<std::collections::BTreeMap<_, _>>(),
                "legal_holds": f.legal_holds,
            });
            match (has(RetentionKind::ClosedIncidents) && has(RetentionKind::Audit), f.retention.is_empty()) {
                (true, _) => c(Met, figures, None),
                (false, false) => c(Partly, figures, Some("set how long closed incidents and audit entries are kept (retention)")),
                _ => c(NotMet, figures, Some("set retention policies: everything is kept forever")),
            }
        }
        "breach_notification" => {
            let figures = json!({
                "open": f.breaches_open, "overdue": f.breaches_overdue,
                "notified_on_time": f.breaches_notified_on_time, "notified_late": f.breaches_notified_late,
            });
            match (
                f.breaches_open + f.breaches_overdue + f.breaches_notified_on_time + f.breaches_notified_late,
                f.breaches_overdue,
                f.breaches_notified_late,
            ) {
                (0, _, _) => c(NotApplicable, figures, None),
                (_, o, _) if o > 0 => c(NotMet, figures, Some("notify the regulator of the overdue personal data breaches")),
                (_, _, l) if l > 0 => c(Partly, figures, Some("some breaches were notified after their 72-hour deadline")),
                _ => c(Met, figures, None),
            }
        }
        _ => {
            let figures = json!({
                "requests": f.dsr_requests, "answered_late": f.dsr_answered_late, "open_overdue": f.dsr_open_overdue,
                "erasure": "not yet offered by the platform",
            });
            match (f.dsr_requests, f.dsr_open_overdue, f.dsr_answered_late) {
                (0, _, _) => c(NotApplicable, figures, None),
                (_, o, _) if o > 0 => c(NotMet, figures, Some("answer the data-subject requests past their 30 days")),
                (_, _, l) if l > 0 => c(Partly, figures, Some("some data-subject requests were answered after 30 days")),
                _ => c(Met, figures, None),
            }
        }
    }
}

type Catalogue = &'static [(&'static str, &'static str, &'static [&'static str])];

const SOC2: Catalogue = &[
    ("CC6.1", "Logical access security", &["mfa", "sso", "network_and_sessions", "api_keys", "encryption"]),
    ("CC6.3", "Role-based access and least privilege", &["privileged_access"]),
    ("CC7.2", "Monitoring of system components", &["audit_integrity", "read_auditing"]),
    ("CC7.4", "Incident response", &["incident_response", "breach_notification"]),
    ("A1.2", "Backup and recovery", &["backup"]),
    ("C1.2", "Disposal of confidential information", &["retention"]),
];

const ISO27001: Catalogue = &[
    ("A.5.15", "Access control", &["privileged_access", "network_and_sessions", "api_keys"]),
    ("A.8.5", "Secure authentication", &["mfa", "sso"]),
    ("A.8.24", "Use of cryptography", &["encryption"]),
    ("A.8.15", "Logging", &["audit_integrity", "read_auditing"]),
    ("A.5.26", "Response to information security incidents", &["incident_response"]),
    ("A.8.13", "Information backup", &["backup"]),
    ("A.8.10", "Information deletion", &["retention"]),
    ("A.5.34", "Privacy and protection of PII", &["breach_notification", "data_subject_rights"]),
];

const NIST_CSF: Catalogue = &[
    ("PR.AA-03", "Users, services and hardware are authenticated", &["mfa", "sso"]),
    ("PR.AA-05", "Access permissions are managed with least privilege", &["privileged_access", "network_and_sessions", "api_keys"]),
    ("PR.DS-01", "Data at rest is protected", &["encryption"]),
    ("PR.DS-11", "Backups are created, protected, maintained and tested", &["backup"]),
    ("PR.PS-04", "Log records are generated and made available", &["audit_integrity", "read_auditing"]),
    ("RS.MA-01", "The incident response plan is executed", &["incident_response"]),
    ("RS.CO-02", "Internal and external stakeholders are notified of incidents", &["breach_notification"]),
];

const GDPR: Catalogue = &[
    ("Art. 32", "Security of processing", &["mfa", "sso", "privileged_access", "encryption", "backup"]),
    ("Art. 5(1)(e)", "Storage limitation", &["retention"]),
    ("Art. 5(2)", "Accountability: records of processing", &["audit_integrity", "read_auditing"]),
    ("Art. 33", "Notification of a personal data breach to the supervisory authority", &["breach_notification"]),
    ("Art. 15–17", "Data subjects' rights of access and erasure", &["data_subject_rights"]),
];

const CCPA: Catalogue = &[
    ("1798.150", "Reasonable security procedures", &["mfa", "privileged_access", "encryption", "audit_integrity"]),
    ("1798.100(a)(3)", "Retention of personal information", &["retention"]),
    ("1798.105–110", "Rights to know and to delete", &["data_subject_rights"]),
    ("1798.82", "Notification of security breaches", &["breach_notification"]),
];

impl Framework {
    fn catalogue(self) -> Catalogue {
        match self {
            Framework::Soc2 => SOC2,
            Framework::Iso27001 => ISO27001,
            Framework::NistCsf => NIST_CSF,
            Framework::Gdpr => GDPR,
            Framework::Ccpa => CCPA,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Framework::Soc2 => "SOC 2 (Trust Services Criteria)",
            Framework::Iso27001 => "ISO/IEC 27001:2022 Annex A",
            Framework::NistCsf => "NIST Cybersecurity Framework 2.0",
            Framework::Gdpr => "GDPR",
            Framework::Ccpa => "CCPA / CPRA",
        }
    }
}

/// How many controls stand at each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub met: usize,
    pub partly: usize,
    pub not_met: usize,
    pub not_applicable: usize,
}

pub fn summary(controls: &[Control]) -> Summary {
    let n = |s: ControlStatus| controls.iter().filter(|c| c.status == s).count();
    Summary {
        met: n(ControlStatus::Met),
        partly: n(ControlStatus::Partly),
        not_met: n(ControlStatus::NotMet),
        not_applicable: n(ControlStatus::NotApplicable),
    }
}

/// The framework's controls, each judged from `f`.
pub fn evaluate(framework: Framework, f: &Figures) -> Vec<Control> {
    framework
        .catalogue()
        .iter()
        .map(|(id, title, checks)| {
            let checks: Vec<Check> = checks.iter().map(|c| check(c, f)).collect();
            let status = checks.iter().map(|c| c.status).max_by_key(|s| s.rank()).unwrap_or(ControlStatus::NotApplicable);
            Control { id, title, status, checks }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_is_as_bad_as_its_worst_applicable_check() {
        let mut f =
            Figures { members: 4, members_with_mfa: 4, checkpoint_every: 1000, checkpoint_interval_secs: 300, ..Default::default() };
        let soc2 = evaluate(Framework::Soc2, &f);
        let cc61 = soc2.iter().find(|c| c.id == "CC6.1").expect("CC6.1");
        assert_eq!(cc61.status, ControlStatus::NotMet, "no SSO nor required MFA: {cc61:?}");
        f.mfa_required = true;
        f.ip_allowlist = true;
        let cc61 = evaluate(Framework::Soc2, &f).into_iter().find(|c| c.id == "CC6.1").expect("CC6.1");
        assert_eq!(cc61.status, ControlStatus::Partly, "SSO not connected");
        assert_eq!(evaluate(Framework::Soc2, &f).iter().find(|c| c.id == "A1.2").map(|c| c.status), Some(ControlStatus::NotApplicable));
        f.open = 10;
        f.open_past_target = 5;
        let ir = evaluate(Framework::Iso27001, &f).into_iter().find(|c| c.id == "A.5.26").expect("A.5.26");
        assert_eq!(ir.status, ControlStatus::NotMet);
        assert_eq!(ir.checks[0].figures["open_past_target"], 5);
        for fw in Framework::ALL {
            assert!(!evaluate(*fw, &f).is_empty());
        }
    }
}
