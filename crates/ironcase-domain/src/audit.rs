//! The audit entry's canonical form and the hash chain over it.
//!
//! `hash = SHA-256(canonical(entry) ‖ previous hash)`, where the canonical form
//! is the entry as compact JSON with its fields in a fixed order, so that the
//! same entry always hashes the same on every backend and every version.

use serde::Serialize;
use sha2::{Digest, Sha256};

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
        let bytes = self.bytes();
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(prev_hash.as_bytes());
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
