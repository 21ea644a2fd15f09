//! The audit entry's canonical form and the hash chain over it.
//!
//! `hash = SHA-256(canonical(entry) ‖ previous hash)`, where the canonical form
//! is the entry as compact JSON with its fields in a fixed order, so that the
//! same entry always hashes the same on every backend and every version.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::incident::string_enum;

string_enum!(
    /// What an entry is about, for compliance queries.
    AuditCategory {
        Authentication = "authentication",
        Authorization = "authorization",
        Data = "data",
        Configuration = "configuration",
        Security = "security",
        Compliance = "compliance",
    }
);

string_enum!(
    /// How much an entry matters to someone watching for trouble.
    AuditSeverity { Info = "info", Warning = "warning", Critical = "critical" }
);

/// A rule: an action equal to this, or (ending in `.`) starting with it.
/// The store turns the same tables into its SQL filters.
pub type Pattern = &'static str;

/// Each category's actions (checked in this order; the rest are configuration).
pub const CATEGORIES: &[(AuditCategory, &[Pattern])] = &[
    (
        AuditCategory::Security,
        &[
            "apikey.",
            "member.mfa_reset",
            "member.password_reset",
            "member.sessions_ended",
            "organization.ip_allowlist",
            "organization.mfa_policy",
            "organization.session_policy",
            "organization.sso",
            "organization.sso_removed",
            "evidence.integrity_failure",
            "webhook.rotate_secret",
            "auth.refresh_reuse",
            "auth.mfa.replay_refused",
        ],
    ),
    (AuditCategory::Authentication, &["auth.", "sso."]),
    (AuditCategory::Authorization, &["access.", "role.", "member.update", "organization.parent_access"]),
    (
        AuditCategory::Compliance,
        &["audit.", "organization.audit_reads", "organization.export", "organization.child_read", "privacy.", "retention.", "compliance."],
    ),
    (AuditCategory::Data, &["incident.", "comment.", "ioc.", "evidence.", "alert."]),
];

/// Actions that are signs of compromise or change what protects the rest.
pub const CRITICAL: &[Pattern] = &[
    "evidence.integrity_failure",
    "auth.refresh_reuse",
    "auth.mfa.replay_refused",
    "organization.status",
    "organization.sso_removed",
    "member.mfa_reset",
    "evidence.delete",
    "incident.delete",
];

/// Actions worth a look even when they succeed (a refusal or failure always is).
pub const WARNING: &[Pattern] = &[
    "access.denied",
    "auth.bad_credentials",
    "auth.ip_not_allowed",
    "auth.mfa.failed",
    "auth.mfa.disabled",
    "auth.mfa.backup_code_used",
    "auth.password_reset",
    "apikey.revoke",
    "member.remove",
    "role.delete",
    "webhook.disabled",
    "quota.exceeded",
    "organization.plan",
    "organization.mfa_policy",
    "organization.parent_access",
];

fn matches(action: &str, p: Pattern) -> bool {
    if p.ends_with('.') {
        action.starts_with(p)
    } else {
        action == p
    }
}

/// The entry's category, from its action.
pub fn category(action: &str) -> AuditCategory {
    CATEGORIES.iter().find(|(_, ps)| ps.iter().any(|p| matches(action, p))).map_or(AuditCategory::Configuration, |(c, _)| *c)
}

/// The entry's severity, from its action and outcome.
pub fn severity(action: &str, outcome: &str) -> AuditSeverity {
    if CRITICAL.iter().any(|p| matches(action, p)) {
        AuditSeverity::Critical
    } else if outcome != "success" || WARNING.iter().any(|p| matches(action, p)) {
        AuditSeverity::Warning
    } else {
        AuditSeverity::Info
    }
}

/// The hash that precedes the first entry of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Everything an entry says, in the order it is hashed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canonical<'a> {
    pub tenant: &'a str,
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at: i64,
    pub actor_id: Option<&'a str>,
    pub actor_kind: &'a str,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Details as compact JSON text, kept as the exact stored string.
    pub details: &'a str,
}

impl Canonical<'_> {
    /// The entry's bytes: what the chain hashes (with the previous hash)
    /// and what the Merkle tree takes as its leaf.
    pub fn bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn hash(&self, prev_hash: &str) -> String {
        chain_hash(&self.bytes(), prev_hash)
    }
}

/// One data subject's share of an entry's personal data, as the chain
/// hashes it: whose it is, and a salted commitment to it. The data itself
/// (source address, user agent, e-mail addresses) is kept sealed under a key
/// of that subject, outside the hashed bytes: destroying the key erases it
/// (crypto-shredding) and the chain, tree and checkpoints still verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PersonalPart {
    /// The data subject: an account or API key id, `email:` and a keyed
    /// hash of an address, or `anonymous`.
    pub s: String,
    /// `SHA-256(salt ‖ fields)`, hex: see [`commit`].
    pub c: String,
}

/// The commitment to a part's `fields` (compact JSON) under its 32-byte
/// random `salt`, hex. The salt is sealed with the fields: without it, the
/// commitment says nothing about them (an address cannot be guessed).
pub fn commit(salt: &[u8], fields: &str) -> String {
    hex::encode(commit_bytes(salt, fields))
}

/// [`commit`], as bytes.
pub fn commit_bytes(salt: &[u8], fields: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(fields.as_bytes());
    h.finalize().into()
}

/// The fields of `details` that are personal data: e-mail addresses
/// (`email`, or a name ending in `_email`), each kept as its own subject's.
pub fn is_personal_field(name: &str) -> bool {
    name == "email" || name.ends_with("_email")
}

/// An entry with its personal data sealed (version 2): everything it says
/// but that data, and the commitments to it, in the order it is hashed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanonicalV2<'a> {
    pub v: u8,
    pub tenant: &'a str,
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<&'a str>,
    pub actor_kind: &'a str,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    /// Details without their personal fields, as the exact stored string.
    pub details: &'a str,
    pub personal: &'a [PersonalPart],
}

impl CanonicalV2<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `SHA-256(bytes ‖ previous hash)`, hex: an entry's link in its chain.
pub fn chain_hash(bytes: &[u8], prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(prev_hash.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_severities_follow_the_action() {
        assert_eq!(category("auth.login"), AuditCategory::Authentication);
        assert_eq!(category("auth.refresh_reuse"), AuditCategory::Security);
        assert_eq!(category("access.denied"), AuditCategory::Authorization);
        assert_eq!(category("incident.update"), AuditCategory::Data);
        assert_eq!(category("audit.export"), AuditCategory::Compliance);
        assert_eq!(category("webhook.create"), AuditCategory::Configuration);
        assert_eq!(severity("incident.update", "success"), AuditSeverity::Info);
        assert_eq!(severity("incident.update", "denied"), AuditSeverity::Warning);
        assert_eq!(severity("evidence.integrity_failure", "failure"), AuditSeverity::Critical);
        assert!(CATEGORIES
            .iter()
            .flat_map(|(_, ps)| ps.iter())
            .chain(CRITICAL)
            .chain(WARNING)
            .all(|p| p.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')));
    }

    fn entry(seq: i64, action: &str) -> Canonical<'_> {
        Canonical {
            tenant: "org_x",
            seq,
            at: 1,
            actor_id: Some("usr_a"),
            actor_kind: "user",
            action,
            resource_type: None,
            resource_id: None,
            outcome: "success",
            request_id: None,
            source_ip: None,
            user_agent: None,
            details: "{}",
        }
    }

    #[test]
    fn chain_depends_on_every_field_and_the_previous_hash() {
        let a = entry(1, "auth.login").hash(GENESIS);
        assert_eq!(a.len(), 64);
        assert_eq!(a, entry(1, "auth.login").hash(GENESIS));
        assert_ne!(a, entry(2, "auth.login").hash(GENESIS));
        assert_ne!(a, entry(1, "auth.logout").hash(GENESIS));
        assert_ne!(a, entry(1, "auth.login").hash(&a));
    }

    #[test]
    fn a_commitment_binds_its_salt_and_fields() {
        let c = commit(&[1; 32], r#"{"source_ip":"192.0.2.1"}"#);
        assert_eq!(c.len(), 64);
        assert_ne!(c, commit(&[2; 32], r#"{"source_ip":"192.0.2.1"}"#));
        assert_ne!(c, commit(&[1; 32], r#"{"source_ip":"192.0.2.2"}"#));
        assert!(is_personal_field("email") && is_personal_field("owner_email") && !is_personal_field("emailed"));
    }
}
