//! HTTP Message Signatures (RFC 9421) for API keys. A key registered with
//! an Ed25519 public key must sign its sensitive requests (those a session
//! would need a recent proof of identity for) over `@method`, `@target-uri`
//! and `content-digest` (RFC 9530; the HTTP layer checks the digest against
//! the body), with `created` within the last five minutes; each signature is
//! accepted once, on every node (the store remembers it). The HTTP layer
//! parses the headers and builds the signature base; this checks it.

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use ironcase_domain::ValidationErrors;
use ironcase_store::apikey;

use crate::{crypto, App, AppError, ErrorCode, Principal, Result};

/// How old a signature may be, and how far ahead of this server's clock.
pub const MAX_AGE_SECS: i64 = 300;
const AHEAD_SECS: i64 = 60;

/// A signed request as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signature base (RFC 9421 section 2.5) the client signed.
    pub base: String,
    pub signature: Vec<u8>,
    pub created: i64,
    pub expires: Option<i64>,
    pub keyid: String,
}

/// The 32 bytes of an Ed25519 public key given as base64 (standard or URL
/// alphabet, padded or not), if it is one.
pub fn public_key(raw: &str) -> Option<[u8; 32]> {
    let raw = raw.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
        .ok()?;
    let key: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&key).ok().map(|_| key)
}

/// A public key for an API key, checked: its canonical base64.
pub(crate) fn checked_public_key(raw: &str, errs: &mut ValidationErrors) -> Option<String> {
    match public_key(raw) {
        Some(k) => Some(base64::engine::general_purpose::STANDARD.encode(k)),
        None => {
            errs.push("public_key", "must be an Ed25519 public key: its 32 bytes in base64");
            None
        }
    }
}

fn invalid(why: &str) -> AppError {
    AppError::Refused { code: ErrorCode::SignatureInvalid, detail: format!("the request signature is not accepted: {why}") }
}

impl App {
    /// `p` with its request's signature accepted: by the key's public key,
    /// fresh, and never seen before.
    pub async fn accept_signature(&self, mut p: Principal, s: Signed) -> Result<Principal> {
        let Some(key) = p.signing_key else { return Err(invalid("this API key has no public key")) };
        if s.keyid != p.actor_id() {
            return Err(invalid("keyid is not this API key's id"));
        }
        let now = self.clock().now();
        let secs = now.0 / 1000;
        if s.created > secs + AHEAD_SECS || s.created < secs - MAX_AGE_SECS || s.expires.is_some_and(|e| e <= secs) {
            return Err(invalid("created is not within the last five minutes, or it expired"));
        }
        let verifying = VerifyingKey::from_bytes(&key).map_err(|_| invalid("the key's public key is unusable"))?;
        let signature = Signature::from_slice(&s.signature).map_err(|_| invalid("not an Ed25519 signature"))?;
        if verifying.verify_strict(s.base.as_bytes(), &signature).is_err() {
            return Err(invalid("the signature does not verify"));
        }
        let hash = crypto::sha256_hex(&base64::engine::general_purpose::STANDARD.encode(&s.signature));
        let until = ironcase_domain::Timestamp((s.created + MAX_AGE_SECS + AHEAD_SECS) * 1000);
        let fresh = self.store().write(move |c| Ok::<_, AppError>(apikey::remember_signature(c, &hash, until, now)?)).await?;
        if !fresh {
            return Err(invalid("this signature was used before"));
        }
        p.signed = true;
        Ok(p)
    }
}
